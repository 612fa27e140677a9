#!/usr/bin/env bash
# Builds the Pulumi CLI from the Go module proxy (no vendor download site is
# reachable), caches it by version outside the repository, and installs onevm's
# Node.js language host beside it.
#
# Usage: scripts/install-toolchain.sh [--help]
# Env:   ONEVM_CACHE (default ~/.cache/onevm)  PULUMI_VERSION (default from package.json)
# Exit:  0 ok, 1 build failed, 2 bad usage
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; "") ;; *) usage >&2; exit 2 ;; esac

log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${ONEVM_CACHE:-$HOME/.cache/onevm}
version=${PULUMI_VERSION:-$(node -p "require('$root/package.json').devDependencies['@pulumi/pulumi'] || require('$root/package.json').dependencies['@pulumi/pulumi']")}
version=v${version#v}
bin="$cache/pulumi-$version/bin"

# The engine looks for language hosts next to its own binary first: point it at onevm's
# (toolchain/language-host.ts) through ONEVM_ROOT, so one cached CLI serves any checkout.
install_language_host() {
  cat > "$1/pulumi-language-nodejs.tmp" <<'SH'
#!/usr/bin/env bash
: "${ONEVM_ROOT:?run the Pulumi CLI through onevm (npm run pulumi), which sets ONEVM_ROOT}"
exec "$ONEVM_ROOT/toolchain/bin/pulumi-language-nodejs" "$@"
SH
  chmod 755 "$1/pulumi-language-nodejs.tmp"
  mv -f "$1/pulumi-language-nodejs.tmp" "$1/pulumi-language-nodejs"
}

if [ -x "$bin/pulumi" ] && "$bin/pulumi" version >/dev/null 2>&1; then
  install_language_host "$bin"
  log INFO "pulumi $version already built: $bin/pulumi"
  exit 0
fi

export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local
src=$(mktemp -d "$cache/src.XXXXXX" 2>/dev/null || { mkdir -p "$cache"; mktemp -d "$cache/src.XXXXXX"; })
trap 'rm -rf "$src"' EXIT

log INFO "downloading github.com/pulumi/pulumi/{pkg,sdk}/v3@$version from the Go module proxy"
dir_of() { (cd "$src" && go mod download -json "$1@$version") | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);if(j.Error){console.error(j.Error);process.exit(1)}console.log(j.Dir)})'; }
pkg_dir=$(dir_of github.com/pulumi/pulumi/pkg/v3)
sdk_dir=$(dir_of github.com/pulumi/pulumi/sdk/v3)
# pkg/go.mod says `replace github.com/pulumi/pulumi/sdk/v3 => ../sdk`: lay them out side by side.
cp -r "$pkg_dir" "$src/pkg"; cp -r "$sdk_dir" "$src/sdk"; chmod -R u+w "$src"

log INFO "building pulumi $version (cold builds take tens of minutes on 2 cores)"
mkdir -p "$bin.tmp"
(cd "$src/pkg" && go build -trimpath -tags osusergo,grpcnotrace \
  -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
  -o "$bin.tmp/pulumi" ./cmd/pulumi) || { log ERROR "go build of the pulumi CLI failed"; exit 1; }
# The dynamic-provider shim ships in the sdk module; the engine looks for it next to the CLI.
cp "$src/sdk/nodejs/dist/pulumi-resource-pulumi-nodejs" "$bin.tmp/"
install_language_host "$bin.tmp"
chmod 755 "$bin.tmp/"*
rm -rf "$bin"; mkdir -p "$(dirname "$bin")"; mv -T "$bin.tmp" "$bin"
log INFO "pulumi $version built: $bin/pulumi"
