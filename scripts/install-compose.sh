#!/usr/bin/env bash
# Makes sure `docker compose` (Compose v2) runs on this machine: the program checks every
# rendered release with `docker compose config` before anything reaches the VM. When it is
# missing, installs the Compose v2 plugin from Debian trixie's docker-compose package (the
# version Debian's VMs run; this machine's own Debian release may have only Compose v1)
# into /usr/local/lib/docker/cli-plugins. Idempotent; returns at once when present.
#
# Usage: scripts/install-compose.sh [--help]
# Env:   ONEVM_DEBIAN_MIRROR (default http://deb.debian.org/debian)
# Exit:  0 compose answers, 1 download or install failed, 2 bad usage
set -euo pipefail

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
case "${1:-}" in -h|--help) usage; exit 0 ;; "") ;; *) usage >&2; exit 2 ;; esac
log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }

if docker compose version >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  log ERROR "docker compose is missing and installing it needs root (or install Docker Compose v2 yourself)"
  exit 1
fi

mirror=${ONEVM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /tmp/onevm-compose.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb $mirror trixie main" >"$work/sources.list"
# A private apt state: this machine's own sources and package lists stay untouched.
apt_opts=(-qq -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Get::List-Cleanup=0
  -o APT::Sandbox::User=root)
log INFO "installing Compose v2 from Debian trixie's docker-compose package"
apt-get "${apt_opts[@]}" update || { log ERROR "apt-get update of $mirror trixie failed"; exit 1; }
(cd "$work" && apt-get "${apt_opts[@]}" download docker-compose) || { log ERROR "apt-get download docker-compose failed"; exit 1; }
dpkg-deb -x "$work"/docker-compose_*.deb "$work/root"
install -d /usr/local/lib/docker/cli-plugins
install -m 755 "$work/root/usr/libexec/docker/cli-plugins/docker-compose" /usr/local/lib/docker/cli-plugins/docker-compose.tmp
mv -f /usr/local/lib/docker/cli-plugins/docker-compose.tmp /usr/local/lib/docker/cli-plugins/docker-compose
docker compose version >/dev/null 2>&1 || { log ERROR "docker compose does not answer after the install"; exit 1; }
log INFO "$(docker compose version)"
