#!/usr/bin/env bash
# Builds the sample app's images from app/ on top of onevm/debian:trixie (no registry):
#   onevm/postgres:17  onevm/redis:8  onevm/bot-api:<release>  onevm/migrate:<release>
#   and the ingress proxy onevm/caddy:2 (Caddy 2.6 from Debian; the default of
#   onevm:proxyImage; not part of the JSON lines below, its ref is fixed)
# Docker's layer cache makes a rebuild of unchanged sources take seconds.
#
# Usage: scripts/build-images.sh [--help] [--release ID]... [--all] [--save DIR] [--verbose]
#   --release ID  build bot-api and migrate for release ID (repeatable; default: v1).
#                 Profiles: v1, v2 (+migration 0002, bookings.note), broken (/health
#                 answers 500), badmigrate (migration exits 1); any other ID builds
#                 like v2 and reports its own ID (see app/README.md).
#   --all         the four profiles: v1 v2 broken badmigrate (plus any --release).
#   --save DIR    also write one `docker save` archive per image: DIR/<name>_<tag>.tar
#                 (name without the onevm/ prefix); an archive already holding the same
#                 image ID is left alone, so running twice rewrites nothing. Beside
#                 each: <archive>.sha256, which spares the engine hashing the archive.
#   --verbose     stream docker build output to stderr (default: only on failure).
# Output: stdout, one JSON line per release, in order:
#   {"bot-api":"onevm/bot-api:v1","migrate":"onevm/migrate:v1","postgres":"onevm/postgres:17","redis":"onevm/redis:8"}
# Env:   ONEVM_BASE_IMAGE (default onevm/debian:trixie); made by scripts/base-image.sh
#        when missing, as the engine is by scripts/install-docker.sh.
# Exit:  0 images built (and saved), 1 a build or save failed, 2 bad usage,
#        3 no Docker engine or base image.
set -euo pipefail

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }

releases=()
save_dir=""
verbose=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --release)
      [ $# -ge 2 ] || { log ERROR "--release needs an ID"; exit 2; }
      releases+=("$2"); shift 2 ;;
    --release=*) releases+=("${1#--release=}"); shift ;;
    --all) releases+=(v1 v2 broken badmigrate); shift ;;
    --save)
      [ $# -ge 2 ] || { log ERROR "--save needs a directory"; exit 2; }
      save_dir=$2; shift 2 ;;
    --save=*) save_dir=${1#--save=}; shift ;;
    --verbose) verbose=1; shift ;;
    *) log ERROR "unknown argument: $1"; usage >&2; exit 2 ;;
  esac
done
[ ${#releases[@]} -gt 0 ] || releases=(v1)

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

root=$(cd "$(dirname "$0")/.." && pwd)
app="$root/app"
base=${ONEVM_BASE_IMAGE:-onevm/debian:trixie}
pg_ref=onevm/postgres:17
redis_ref=onevm/redis:8
proxy_ref=onevm/caddy:2

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
trap 'rm -f "$build_log"' EXIT

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
build "$pg_ref" "$app/images/postgres" || exit 1
build "$redis_ref" "$app/images/redis" || exit 1
build "$proxy_ref" "$app/images/caddy" || exit 1
for r in "${ordered[@]}"; do
  build "onevm/bot-api:$r" "$app/bot-api" --build-arg "RELEASE=$r" --target bot-api || exit 1
  build "onevm/migrate:$r" "$app/bot-api" --build-arg "RELEASE=$r" --target migrate || exit 1
done

if [ -n "$save_dir" ]; then
  mkdir -p "$save_dir"
  save "$pg_ref" || exit 1
  save "$redis_ref" || exit 1
  save "$proxy_ref" || exit 1
  for r in "${ordered[@]}"; do
    save "onevm/bot-api:$r" || exit 1
    save "onevm/migrate:$r" || exit 1
  done
fi

for r in "${ordered[@]}"; do
  printf '{"bot-api":"onevm/bot-api:%s","migrate":"onevm/migrate:%s","postgres":"%s","redis":"%s"}\n' \
    "$r" "$r" "$pg_ref" "$redis_ref"
done
log INFO "done in $((SECONDS - total_start)) s: releases ${ordered[*]}"
