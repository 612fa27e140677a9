#!/usr/bin/env bash
# Makes sure a Docker engine answers on this host: installs Debian's docker.io when
# dockerd is missing, and starts dockerd by hand in the background when no engine
# answers (these hosts have no systemd). Idempotent; returns at once when the engine runs.
#
# Usage: scripts/install-docker.sh [--help]
# Env:   ONEVM_DOCKERD_WAIT seconds to wait for a started engine (default 60)
# Log:   dockerd's output goes to /var/log/onevm-dockerd.log
# Exit:  0 engine answers, 1 install or start failed, 2 bad usage
set -euo pipefail

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
case "${1:-}" in -h|--help) usage; exit 0 ;; "") ;; *) usage >&2; exit 2 ;; esac

log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }

engine_up() { command -v docker >/dev/null 2>&1 && timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# Fast path: an engine already answers.
if engine_up; then exit 0; fi

if [ "$(id -u)" -ne 0 ]; then
  log ERROR "no Docker engine answers and installing/starting one needs root"
  exit 1
fi

# Serialize concurrent callers (several test suites may start at once).
lockdir=/run/lock; [ -w "$lockdir" ] || lockdir=/tmp
exec 9>"$lockdir/onevm-install-docker.lock"
flock -w 600 9 || { log ERROR "timed out waiting for another install-docker.sh"; exit 1; }
if engine_up; then exit 0; fi

export DEBIAN_FRONTEND=noninteractive
if ! command -v dockerd >/dev/null 2>&1; then
  log INFO "dockerd missing: installing Debian's docker.io"
  apt-get -o DPkg::Lock::Timeout=300 update -qq || { log ERROR "apt-get update failed"; exit 1; }
  # A policy-rc.d refusing starts keeps the package's init script from starting its own
  # dockerd (logging elsewhere); we start it below, the same way on every host.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; own_policy=1
  fi
  # Debian 13+ ships the client as docker-cli (only recommended by docker.io); Debian 12's
  # docker.io contains it. Name it where it exists, unless a client is already there.
  pkgs=(docker.io)
  if ! command -v docker >/dev/null 2>&1 && apt-cache show docker-cli >/dev/null 2>&1; then pkgs+=(docker-cli); fi
  rc=0
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null || rc=$?
  if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi
  if [ "$rc" -ne 0 ] || ! command -v dockerd >/dev/null 2>&1; then
    log ERROR "apt-get install ${pkgs[*]} failed (exit $rc)"; exit 1
  fi
  log INFO "installed $(dockerd --version)"
fi
if ! command -v docker >/dev/null 2>&1; then
  log ERROR "dockerd is installed but no docker client is on PATH"; exit 1
fi

if pgrep -x dockerd >/dev/null 2>&1; then
  log INFO "dockerd is running but not answering yet; waiting for it"
else
  log INFO "starting dockerd in the background (log: /var/log/onevm-dockerd.log)"
  # setsid: the engine must outlive this script and its caller's process group. It must
  # not inherit any lock fd (ours or a caller's), or it would hold it for as long as it runs.
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid -f dockerd >>/var/log/onevm-dockerd.log 2>&1 </dev/null
  )
fi

wait_s=${ONEVM_DOCKERD_WAIT:-60}
deadline=$((SECONDS + wait_s))
until engine_up; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    log ERROR "no Docker engine answered within ${wait_s}s; last lines of /var/log/onevm-dockerd.log:"
    tail -n 20 /var/log/onevm-dockerd.log >&2 || true
    exit 1
  fi
  sleep 0.5
done
log INFO "Docker engine $(docker version --format '{{.Server.Version}}') answers"
