#!/usr/bin/env bash
# Installs everything onevm needs on a fresh Debian machine, idempotently:
# Debian packages, the Docker engine and Compose v2, npm packages (with Node 22), and the
# Pulumi CLI, the official Node.js language host and provider plugins built from source
# (scripts/install-toolchain.sh). Later runs take seconds.
#
# Usage: scripts/setup.sh [--help]
# Exit:  0 ready, 1 a step failed, 2 bad usage
set -euo pipefail

case "${1:-}" in -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; "") ;; *) echo "usage: $0 [--help]" >&2; exit 2 ;; esac
log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

packages=(debootstrap openssh-client shellcheck jq curl ca-certificates tar gzip patch)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  log INFO "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash scripts/install-docker.sh
bash scripts/install-compose.sh

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.onevm-lock-hash 2>/dev/null)" != "$lock_hash" ]; then
  log INFO "installing npm packages (npm ci)"
  # Install scripts stay off: @pulumi/command's would try to download a plugin.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
  echo "$lock_hash" > node_modules/.onevm-lock-hash
fi

bash scripts/install-toolchain.sh
log INFO "setup complete"
