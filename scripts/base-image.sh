#!/usr/bin/env bash
# Builds the base image onevm/debian:trixie without a container registry:
# `debootstrap --variant=minbase trixie` from the Debian mirror this host's apt uses,
# then `docker import`. Cached: does nothing when the image already exists.
#
# Usage: scripts/base-image.sh [--help] [--force]
# Env:   ONEVM_DEBIAN_MIRROR  mirror URL (default: the first .../debian URI in this host's
#                             /etc/apt/sources.list(.d), else http://deb.debian.org/debian)
#        ONEVM_BASE_IMAGE     image name (default onevm/debian:trixie)
# Exit:  0 image present, 1 build failed, 2 bad usage
set -euo pipefail

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
force=0
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --force) force=1 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }

image=${ONEVM_BASE_IMAGE:-onevm/debian:trixie}
suite=trixie

have_image() { docker image inspect "$image" >/dev/null 2>&1; }
if [ "$force" = 0 ] && have_image; then exit 0; fi

here=$(cd "$(dirname "$0")" && pwd)
"$here/install-docker.sh"

# One build at a time on this host; a concurrent caller waits and then finds the image.
lockdir=/run/lock; [ -w "$lockdir" ] || lockdir=/tmp
exec 9>"$lockdir/onevm-base-image.lock"
flock -w 900 9 || { log ERROR "timed out waiting for another base-image.sh"; exit 1; }
if [ "$force" = 0 ] && have_image; then exit 0; fi

host_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    # deb822 "URIs: a b" lines and one-line "deb [opts] URI suite ..." entries.
    sed -n -e 's/^URIs:[[:space:]]*//p' -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\{0,1\}\([^[:space:]]\+\).*/\2/p' "$f"
  done | tr ' ' '\n' | grep -E '^https?://[^[:space:]]+/debian/?$' | head -n 1 || true
}
mirror=${ONEVM_DEBIAN_MIRROR:-$(host_mirror)}
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}

export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null 2>&1; then
  log INFO "installing debootstrap"
  { apt-get -o DPkg::Lock::Timeout=300 update -qq &&
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends debootstrap >/dev/null; } ||
    { log ERROR "could not install debootstrap"; exit 1; }
fi

dir=$(mktemp -d /var/tmp/onevm-rootfs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
log INFO "debootstrap --variant=minbase $suite from $mirror (about 30 s)"
start=$SECONDS
if ! debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$dir.log" 2>&1; then
  log ERROR "debootstrap failed; last lines of its log:"
  tail -n 30 "$dir.log" >&2
  tail -n 30 "$dir/debootstrap/debootstrap.log" >&2 2>/dev/null || true
  rm -f "$dir.log"
  exit 1
fi
rm -f "$dir.log"
# Leave no downloaded packages or package lists in the image (apt-get update refills them).
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/tmp/* "$dir"/var/tmp/*
log INFO "importing the root filesystem as $image"
tar --numeric-owner -C "$dir" -c . |
  docker import \
    --change 'CMD ["/bin/bash"]' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.opencontainers.image.title=onevm-base org.opencontainers.image.description=debootstrap-minbase-$suite" \
    --message "debootstrap --variant=minbase $suite $mirror" \
    - "$image" >/dev/null
log INFO "built $image in $((SECONDS - start)) s ($(docker image inspect -f '{{.Size}}' "$image") bytes)"
