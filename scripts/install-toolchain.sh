#!/usr/bin/env bash
# Builds, from source, the Pulumi toolchain onevm runs offline, and installs it:
#   - the Pulumi CLI (tagged Go modules from the Go module proxy) and the official
#     Node.js language host beside it;
#   - the official resource plugins command, random, tls, digitalocean and docker, from
#     the upstream source tarballs in ONEVM_UPSTREAM (recipe: its SOURCES.md), each
#     installed into PULUMI_HOME with `pulumi plugin install resource NAME VERSION --file`.
# Every binary is cached by name and version under ONEVM_CACHE: a second run takes seconds.
# A machine with internet and a vendor-installed Pulumi needs none of this.
#
# Usage: scripts/install-toolchain.sh [--help]
# Env:   ONEVM_CACHE (default ~/.cache/onevm)  ONEVM_UPSTREAM (default <repo>/../shared/upstream)
#        PULUMI_VERSION (default: the @pulumi/pulumi version in package.json)
# Exit:  0 ok, 1 a build or install failed, 2 bad usage, 3 an upstream tarball is missing
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; "") ;; *) usage >&2; exit 2 ;; esac

log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }

root=$(cd "$(dirname "$0")/.." && pwd)
# env.sh: PULUMI_HOME (the plugin cache the engine reads), ONEVM_CACHE, ONEVM_PULUMI_BIN, node on PATH.
# shellcheck source=scripts/env.sh
source "$root/scripts/env.sh"
cache=$ONEVM_CACHE
upstream=${ONEVM_UPSTREAM:-$root/../shared/upstream}
version=${PULUMI_VERSION:-$(node -p "require('$root/package.json').dependencies['@pulumi/pulumi']")}
version=v${version#v}
bin=$ONEVM_PULUMI_BIN
mkdir -p "$cache"

# The official plugins: NAME VERSION (the tarball is pulumi-NAME-VERSION.tar.gz). The npm
# SDKs in package.json ask for these versions or older ones; the engine takes any at least as new.
plugins=(
  "command 1.2.1"
  "random 4.21.1"
  "tls 5.5.1"
  "digitalocean 4.76.0"
  "docker 5.1.0"
)

export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local
# Runs a go command without its thousands of "go: downloading" lines (errors still show).
quiet() { "$@" 2> >(grep -v '^go: downloading ' >&2); }

scratch=""
cleanup() { if [ -n "$scratch" ]; then chmod -R u+w "$scratch" 2>/dev/null || true; rm -rf "$scratch"; fi; }
trap cleanup EXIT
# A fresh scratch dir under the cache (same file system as the cache: the final mv is atomic).
new_scratch() { cleanup; scratch=$(mktemp -d "$cache/src.XXXXXX"); }

tarball() {
  local f="$upstream/$1.tar.gz"
  if [ ! -f "$f" ]; then
    log ERROR "upstream source $f not found (set ONEVM_UPSTREAM to the directory holding the tarballs and SOURCES.md)"
    exit 3
  fi
  printf '%s\n' "$f"
}

# Atomically puts directory $1.tmp in place as $1.
commit_dir() { chmod 755 "$1.tmp"/*; rm -rf "$1"; mv -T "$1.tmp" "$1"; }

# --- The CLI and the language host -------------------------------------------------------
# Both from the same tree: pkg/v3 and sdk/v3 at $version from the Go module proxy, laid out
# as in the upstream repository, with the language host's module (from its tarball) at
# sdk/nodejs/cmd/pulumi-language-nodejs, where its own go.mod's replaces (pkg => ../../../../pkg,
# sdk => ../../..) point at that very pkg and sdk. The language host then compiles the
# same sources as SOURCES.md's recipe (dropping those replaces and requiring pkg/sdk
# $version from the proxy), but every package it shares with the CLI is already in Go's
# build cache: it links in seconds instead of recompiling pkg and sdk.
lh_cache="$cache/pulumi-language-nodejs-$version"
cli_ok() { [ -x "$bin/pulumi" ] && "$bin/pulumi" version >/dev/null 2>&1; }
lh_ok() { [ -x "$lh_cache/pulumi-language-nodejs" ]; }

if ! cli_ok || ! lh_ok; then
  lh_tar=$(tarball "pulumi-language-nodejs-${version#v}")
  new_scratch
  log INFO "downloading github.com/pulumi/pulumi/{pkg,sdk}/v3@$version from the Go module proxy"
  dir_of() { (cd "$scratch" && go mod download -json "$1@$version") | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);if(j.Error){console.error(j.Error);process.exit(1)}console.log(j.Dir)})'; }
  pkg_dir=$(dir_of github.com/pulumi/pulumi/pkg/v3)
  sdk_dir=$(dir_of github.com/pulumi/pulumi/sdk/v3)
  # pkg/go.mod says `replace github.com/pulumi/pulumi/sdk/v3 => ../sdk`: lay them out side by side.
  cp -r "$pkg_dir" "$scratch/pkg"; cp -r "$sdk_dir" "$scratch/sdk"; chmod -R u+w "$scratch"

  if ! cli_ok; then
    start=$SECONDS
    log INFO "building pulumi $version (about 4 minutes cold on 2 cores)"
    mkdir -p "$bin.tmp"
    (cd "$scratch/pkg" && quiet go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
      -o "$bin.tmp/pulumi" ./cmd/pulumi) || { log ERROR "go build of the pulumi CLI failed"; exit 1; }
    # The dynamic-provider shim ships in the sdk module; the engine looks for it next to the CLI.
    cp "$scratch/sdk/nodejs/dist/pulumi-resource-pulumi-nodejs" "$bin.tmp/"
    commit_dir "$bin"
    log INFO "pulumi $version built in $((SECONDS - start)) s: $bin/pulumi"
  fi

  if ! lh_ok; then
    start=$SECONDS
    log INFO "building the official pulumi-language-nodejs $version from $lh_tar"
    tar -xzf "$lh_tar" -C "$scratch" --strip-components=1 pulumi-language-nodejs/sdk/nodejs/cmd/pulumi-language-nodejs \
      || { log ERROR "$lh_tar does not hold pulumi-language-nodejs/sdk/nodejs/cmd/pulumi-language-nodejs"; exit 1; }
    mkdir -p "$lh_cache.tmp"
    (cd "$scratch/sdk/nodejs/cmd/pulumi-language-nodejs" && quiet go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
      -o "$lh_cache.tmp/pulumi-language-nodejs" .) || { log ERROR "go build of pulumi-language-nodejs failed"; exit 1; }
    commit_dir "$lh_cache"
    log INFO "pulumi-language-nodejs $version built in $((SECONDS - start)) s"
  fi
  cleanup; scratch=""
fi

# The engine looks for the language host next to its own binary first.
if ! cmp -s "$lh_cache/pulumi-language-nodejs" "$bin/pulumi-language-nodejs"; then
  cp "$lh_cache/pulumi-language-nodejs" "$bin/.pulumi-language-nodejs.tmp"
  mv -f "$bin/.pulumi-language-nodejs.tmp" "$bin/pulumi-language-nodejs"
  log INFO "installed pulumi-language-nodejs $version beside the CLI"
fi

# --- The resource plugins ----------------------------------------------------------------
# build_plugin NAME VERSION OUT_DIR: SOURCES.md's recipe, in a scratch copy of the tarball.
build_plugin() {
  local name=$1 ver=$2 out=$3 src module
  src=$(tarball "pulumi-$name-$ver")
  new_scratch
  tar -xzf "$src" -C "$scratch" || { log ERROR "cannot unpack $src"; return 1; }
  src=$(find "$scratch" -mindepth 1 -maxdepth 1 -type d)
  module=$(sed -n 's/^module //p' "$src/provider/go.mod")
  case $name in
    tls)
      # Upstream pins terraform-provider-tls v4.3.0's pseudo-version, which the proxy refuses;
      # v4.2.1's is served and differs only in go.mod/go.sum (same schema).
      local tf_tls=github.com/hashicorp/terraform-provider-tls@v1.2.1-0.20260130152455-857b38cda3fc
      (cd "$src/provider/shim" && go mod edit -require="$tf_tls" && quiet go mod tidy) || return 1
      (cd "$src/provider" && go mod edit -require="$tf_tls") || return 1
      ;;
    digitalocean)
      # go.mod takes godo from upstream/vendor (left out of the tarball); the proxy serves the
      # same sources at the version go.mod names.
      (cd "$src/provider" && go mod edit -dropreplace github.com/digitalocean/godo) || return 1
      ;;
    docker)
      local p
      for p in "$src"/patches/*.patch; do
        (cd "$src/upstream" && patch -p1 --quiet < "$p") || { log ERROR "patch $(basename "$p") did not apply"; return 1; }
      done
      ;;
  esac
  if [ "$name" != command ]; then
    # Bridged providers embed schema-embed.json, which upstream generates and does not commit.
    # -trimpath as in the build below: the packages both compile are then compiled once.
    (cd "$src/provider/cmd/pulumi-resource-$name" && VERSION=$ver quiet go run -trimpath ./generate.go) || return 1
  fi
  mkdir -p "$out.tmp"
  (cd "$src/provider" && quiet go build -trimpath -ldflags "-X $module/pkg/version.Version=$ver" \
    -o "$out.tmp/pulumi-resource-$name" "./cmd/pulumi-resource-$name") || return 1
  commit_dir "$out"
}

for entry in "${plugins[@]}"; do
  read -r name ver <<<"$entry"
  out="$cache/plugins/pulumi-resource-$name-v$ver"
  if [ ! -x "$out/pulumi-resource-$name" ]; then
    start=$SECONDS
    log INFO "building the official pulumi-resource-$name $ver (cold: minutes)"
    mkdir -p "$cache/plugins"
    build_plugin "$name" "$ver" "$out" || { log ERROR "build of pulumi-resource-$name $ver failed"; exit 1; }
    cleanup; scratch=""
    log INFO "pulumi-resource-$name $ver built in $((SECONDS - start)) s"
  fi
  installed="$PULUMI_HOME/plugins/resource-$name-v$ver"
  if [ ! -x "$installed/pulumi-resource-$name" ] || [ -e "$installed.partial" ] \
    || ! cmp -s "$out/pulumi-resource-$name" "$installed/pulumi-resource-$name"; then
    if ! msg=$("$bin/pulumi" plugin install resource "$name" "$ver" --file "$out/pulumi-resource-$name" --reinstall 2>&1); then
      log ERROR "pulumi plugin install resource $name $ver failed: $msg"; exit 1
    fi
    log INFO "installed resource plugin $name $ver into $PULUMI_HOME"
  fi
done
log INFO "toolchain ready: pulumi $version, pulumi-language-nodejs $version, plugins: ${plugins[*]}"
