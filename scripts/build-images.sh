#!/usr/bin/env bash
# Builds an example app's images the way its own Compose file says, without a registry
# and without `docker compose` (this host has none), on top of onevm/debian:trixie:
#   - for each release ID, every service of examples/NAME/compose.yaml with a `build:`
#     section (context, dockerfile, target relative to the compose file; its args plus
#     RELEASE=<id>), tagged <image name without tag>:<id>;
#   - the official images the file names (postgres:17, redis:8, nginx:1.27), as
#     stand-ins built from Debian's packages in examples/images/ (stand-ins.json);
#   - with --proxy, a stand-in of onevm's proxy image, the official caddy:2 (examples/images/caddy).
# Docker's layer cache makes a rebuild of unchanged sources take seconds.
#
# Usage: scripts/build-images.sh --example NAME [--release ID]... [--all] [--save DIR]
#                                [--proxy] [--verbose] [--help]
#        scripts/build-images.sh --proxy [--save DIR]      (the proxy image alone)
#   --example NAME  the app in examples/NAME/ (booking-bot, web-platform, go-api,
#                   nginx-bot, worker-bot); its Compose file is examples/NAME/compose.yaml
#   --release ID    build the release ID (repeatable; default: v1). Every example knows
#                   v1, v2, broken and (with a migrate service) badmigrate; any other ID
#                   builds like v2 and reports its own ID (examples/NAME/README.md)
#   --all           all the variants the example defines (plus any --release)
#   --save DIR      also write one `docker save` archive per image, the release images
#                   and the stand-ins (and the proxy with --proxy): DIR/<name>_<tag>.tar
#                   (name = last path component); an archive already holding the same
#                   image ID is left alone, so running twice rewrites nothing. Beside
#                   each: <archive>.sha256, which spares the engine hashing the archive.
#   --proxy         also build the caddy:2 stand-in (not part of the JSON lines below)
#   --verbose       stream docker build output to stderr (default: only on failure)
# Output: stdout, one JSON line per release, in order: the per-release images of the
#   services that are built here (exactly what onevm:images takes), e.g.
#   {"migrate":"booking-bot/migrate:v1","bot-api":"booking-bot/bot-api:v1"}
# Env:   ONEVM_BASE_IMAGE (default onevm/debian:trixie), passed as build arg BASE_IMAGE;
#        made by scripts/base-image.sh when missing, as the engine is by
#        scripts/install-docker.sh. Build args written as ${VAR} in the Compose file
#        come from the environment, as with compose.
#        A Dockerfile with `ARG GOPROXY` gets the host's Go module cache as its proxy
#        (this machine's containers reach none): `go mod download` on the host, served
#        on loopback to a build on the host's network. ONEVM_GOPROXY_FROM_HOST=0: off.
# Exit:  0 images built (and saved), 1 a build or save failed, 2 bad usage (or a
#        Compose file this cannot build), 3 no Docker engine or base image.
set -euo pipefail

usage() { sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; }
log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }

root=$(cd "$(dirname "$0")/.." && pwd)
examples_dir="$root/examples"
list_examples() {
  local d
  for d in "$examples_dir"/*/compose.yaml; do [ -f "$d" ] && basename "$(dirname "$d")"; done | paste -sd " " -
}

example=""
releases=()
all=0
save_dir=""
proxy=0
verbose=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --example)
      [ $# -ge 2 ] || { log ERROR "--example needs a NAME"; exit 2; }
      example=$2; shift 2 ;;
    --example=*) example=${1#--example=}; shift ;;
    --release)
      [ $# -ge 2 ] || { log ERROR "--release needs an ID"; exit 2; }
      releases+=("$2"); shift 2 ;;
    --release=*) releases+=("${1#--release=}"); shift ;;
    --all) all=1; shift ;;
    --save)
      [ $# -ge 2 ] || { log ERROR "--save needs a directory"; exit 2; }
      save_dir=$2; shift 2 ;;
    --save=*) save_dir=${1#--save=}; shift ;;
    --proxy) proxy=1; shift ;;
    --verbose) verbose=1; shift ;;
    *) log ERROR "unknown argument: $1"; usage >&2; exit 2 ;;
  esac
done

if [ -z "$example" ]; then
  if [ "$proxy" = 0 ]; then
    log ERROR "--example NAME is required (one of: $(list_examples))"; usage >&2; exit 2
  fi
  if [ ${#releases[@]} -gt 0 ] || [ "$all" = 1 ]; then
    log ERROR "--release and --all need --example"; exit 2
  fi
elif ! [[ $example =~ ^[a-z0-9][a-z0-9-]*$ ]] || [ ! -f "$examples_dir/$example/compose.yaml" ]; then
  log ERROR "no example '$example' (examples/NAME/compose.yaml; one of: $(list_examples))"; exit 2
fi

# The plan: eval'd records of scripts/compose-plan.js (each word shell-quoted there).
builds=() externals=() release_services=() variants=() words=() project=""
if [ -n "$example" ]; then
  compose_file="$examples_dir/$example/compose.yaml"
  plan=$(node "$root/scripts/compose-plan.js" "$compose_file" "$examples_dir/images") || {
    log ERROR "cannot read the build plan of ${compose_file#"$root"/}"; exit 2; }
  while IFS= read -r line; do
    eval "words=($line)"
    case "${words[0]}" in
      project) project=${words[1]} ;;
      build) builds+=("$line") ;;
      release) release_services+=("${words[1]}=${words[2]}") ;;
      external) externals+=("$line") ;;
      variants) variants=("${words[@]:1}") ;;
    esac
  done <<<"$plan"
  [ "$all" = 0 ] || releases=("${variants[@]}" "${releases[@]}")
  [ ${#releases[@]} -gt 0 ] || releases=(v1)
fi

# Validate and de-duplicate, keeping the order given.
declare -A seen=()
ordered=()
for r in "${releases[@]}"; do
  if ! [[ $r =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] || [[ $r == *..* ]]; then
    log ERROR "invalid release ID: '$r' (must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\$, no '..')"
    exit 2
  fi
  # Docker tags allow at most 128 chars of [A-Za-z0-9_.-] not starting with . or -: implied.
  if [ -z "${seen[$r]:-}" ]; then seen[$r]=1; ordered+=("$r"); fi
done

base=${ONEVM_BASE_IMAGE:-onevm/debian:trixie}
proxy_ref=caddy:2

if [ -x "$root/scripts/install-docker.sh" ]; then
  "$root/scripts/install-docker.sh" || { log ERROR "no Docker engine (scripts/install-docker.sh failed)"; exit 3; }
fi
if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  log ERROR "no Docker engine answers"; exit 3
fi
if ! docker image inspect "$base" >/dev/null 2>&1; then
  if [ -x "$root/scripts/base-image.sh" ] && [ "$base" = onevm/debian:trixie ]; then
    log INFO "base image $base missing: building it with scripts/base-image.sh"
    "$root/scripts/base-image.sh" || { log ERROR "scripts/base-image.sh failed"; exit 3; }
  else
    log ERROR "base image $base not found"; exit 3
  fi
fi

build_log=$(mktemp /tmp/onevm-build-images.XXXXXX)
goproxy_pid=""
cleanup() {
  rm -f "$build_log" "$build_log.port"
  if [ -n "$goproxy_pid" ]; then kill "$goproxy_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

# A Dockerfile that declares `ARG GOPROXY` downloads Go modules in the build. This
# machine's containers reach no module proxy, its own Go does: the host downloads the
# modules go.sum pins into its module cache (`go mod download`), and the build gets them
# from that cache served as a GOPROXY on the host's loopback (the build shares the
# host's network). ONEVM_GOPROXY_FROM_HOST=0 leaves the Dockerfile's own GOPROXY.
goproxy_url=""
host_goproxy() {
  local ctx=$1 dir
  (cd "$ctx" && go mod download) >"$build_log" 2>&1 || {
    log ERROR "go mod download in ${ctx#"$root"/} failed"; tail -n 20 "$build_log" >&2; return 1; }
  [ -z "$goproxy_url" ] || return 0
  dir="$(go env GOMODCACHE)/cache/download"
  python3 -u -c '
import functools, http.server, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=sys.argv[1]))
print(server.server_address[1], flush=True)
server.serve_forever()' "$dir" >"$build_log.port" 2>/dev/null &
  goproxy_pid=$!
  for _ in $(seq 50); do
    if [[ $(cat "$build_log.port" 2>/dev/null) =~ ^[0-9]+$ ]]; then
      goproxy_url="http://127.0.0.1:$(cat "$build_log.port")"
      log INFO "serving the host's Go module cache to the build at $goproxy_url"
      return 0
    fi
    sleep 0.1
  done
  log ERROR "the module cache server did not start"; return 1
}

# build REF CONTEXT [docker build args...]
build() {
  local ref=$1 ctx=$2 start=$SECONDS rc=0
  shift 2
  log INFO "building $ref from ${ctx#"$root"/}"
  if [ "$verbose" = 1 ]; then
    docker build --build-arg "BASE_IMAGE=$base" -t "$ref" "$@" "$ctx" >&2 || rc=$?
  else
    docker build --build-arg "BASE_IMAGE=$base" -t "$ref" "$@" "$ctx" >"$build_log" 2>&1 || rc=$?
  fi
  if [ "$rc" -ne 0 ]; then
    log ERROR "docker build of $ref failed (exit $rc)"
    [ "$verbose" = 1 ] || tail -n 40 "$build_log" >&2
    return 1
  fi
  log INFO "built $ref ($(docker image inspect -f '{{.Id}}' "$ref" | cut -c1-19), $((SECONDS - start)) s)"
}

# record_sha256 FILE: FILE.sha256 in sha256sum's format, unless a newer record is there.
# The program hands it to the engine, which then does not read the archive to hash it on
# every preview and up.
record_sha256() {
  local file=$1
  [ "$file.sha256" -nt "$file" ] && return 0
  (cd "$(dirname "$file")" && sha256sum "$(basename "$file")") > "$file.sha256.tmp.$$" &&
    mv -f "$file.sha256.tmp.$$" "$file.sha256"
}

# save REF: DIR/<name>_<tag>.tar (and its .sha256) unless an archive of the same image ID
# is already there.
save() {
  local ref=$1 name tag file id manifest tmp
  name=${ref%%:*}; name=${name##*/}; tag=${ref##*:}
  file="$save_dir/${name}_${tag}.tar"
  id=$(docker image inspect -f '{{.Id}}' "$ref"); id=${id#sha256:}
  if [ -f "$file" ]; then
    # manifest.json names the config blob (<id>.json, or blobs/sha256/<id> in OCI
    # layout) and the repo tags: same ID and tag means the archive is current.
    manifest=$(tar -xOf "$file" manifest.json 2>/dev/null || true)
    if [[ $manifest == *"$id"* && $manifest == *"\"$ref\""* ]]; then
      log INFO "$file is up to date ($ref)"
      record_sha256 "$file"
      return
    fi
  fi
  tmp="$save_dir/.${name}_${tag}.tar.tmp.$$"
  if ! docker save -o "$tmp" "$ref"; then
    rm -f "$tmp"; log ERROR "docker save $ref failed"; return 1
  fi
  mv -f "$tmp" "$file"
  record_sha256 "$file" || { log ERROR "cannot record the sha256 of $file"; return 1; }
  log INFO "saved $ref to $file ($(du -h "$file" | cut -f1))"
}

total_start=$SECONDS
to_save=()

# The images the file names but does not build: a stand-in, or already on this host.
for line in ${externals[@]+"${externals[@]}"}; do
  eval "words=($line)"
  svc=${words[1]} ref=${words[2]} dir=${words[3]}
  if [ -n "$dir" ]; then
    build "$ref" "$dir" || exit 1
  elif docker image inspect "$ref" >/dev/null 2>&1; then
    log INFO "$svc uses $ref as it is on this host (no stand-in in examples/images)"
  else
    log ERROR "$svc: image $ref is neither built by the Compose file, nor a stand-in (examples/images/stand-ins.json), nor on this host"
    exit 1
  fi
  to_save+=("$ref")
done

if [ "$proxy" = 1 ]; then
  build "$proxy_ref" "$root/examples/images/caddy" || exit 1
  to_save+=("$proxy_ref")
fi

for r in ${ordered[@]+"${ordered[@]}"}; do
  for line in ${builds[@]+"${builds[@]}"}; do
    eval "words=($line)"
    image=${words[2]} ctx=${words[3]} dockerfile=${words[4]} target=${words[5]}
    args=(-f "$dockerfile")
    [ -z "$target" ] || args+=(--target "$target")
    for a in "${words[@]:6}"; do args+=(--build-arg "$a"); done
    if [ "${ONEVM_GOPROXY_FROM_HOST:-1}" != 0 ] && grep -Eq '^[[:space:]]*ARG[[:space:]]+GOPROXY([=[:space:]]|$)' "$dockerfile" &&
        [ -f "$ctx/go.mod" ] && command -v go >/dev/null 2>&1; then
      host_goproxy "$ctx" || exit 1
      args+=(--network host --build-arg "GOPROXY=$goproxy_url")
    fi
    args+=(--build-arg "RELEASE=$r")
    build "$image:$r" "$ctx" "${args[@]}" || exit 1
    to_save+=("$image:$r")
  done
done

if [ -n "$save_dir" ]; then
  mkdir -p "$save_dir"
  declare -A saved=()
  for ref in ${to_save[@]+"${to_save[@]}"}; do
    [ -z "${saved[$ref]:-}" ] || continue
    saved[$ref]=1
    save "$ref" || exit 1
  done
fi

for r in ${ordered[@]+"${ordered[@]}"}; do
  json="" sep=""
  for pair in ${release_services[@]+"${release_services[@]}"}; do
    # Service names and image names are checked by compose-plan.js: no quoting needed.
    json+="$sep\"${pair%%=*}\":\"${pair#*=}:$r\""; sep=","
  done
  printf '{%s}\n' "$json"
done
if [ -n "$example" ]; then
  log INFO "done in $((SECONDS - total_start)) s: $example ($project), releases ${ordered[*]}"
else
  log INFO "done in $((SECONDS - total_start)) s: $proxy_ref"
fi
