#!/usr/bin/env bash
# Smoke check of the local sandbox VMs (scripts/sandbox.sh), run for real: brings up two
# sandboxes, ssh's into both as deploy with the host key pinned from `status`, checks
# systemd, passwordless sudo, no Docker engine, key-only sshd, apt through NAT, then
# reboots them (from the host and from inside) and checks ssh comes back with the same
# host key and the data on /opt kept; finally tears both down.
#
# Usage: test/sandbox-smoke.sh [--help] [--keep]
#   --keep   leave the sandboxes running at the end (default: remove them)
# Env:   SMOKE_NAMES  two sandbox names (default "smoke-a smoke-b")
#        ONEVM_CACHE  as for scripts/sandbox.sh
# Output: one PASS/FAIL line per check, timings, then "N passed, N failed".
# Exit:  0 every check passed, 1 a check failed, 2 bad usage

# Remote commands are single-quoted on purpose: they expand on the sandbox.
# shellcheck disable=SC2016
set -euo pipefail

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
keep=0
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --keep) keep=1 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
sandbox=$root/scripts/sandbox.sh
read -r A B <<<"${SMOKE_NAMES:-smoke-a smoke-b}"
if [ -z "${A:-}" ] || [ -z "${B:-}" ] || [ "$A" = "$B" ]; then
  echo "SMOKE_NAMES needs two different names" >&2; exit 2
fi
command -v jq >/dev/null 2>&1 || { echo "jq is needed (apt-get install jq)" >&2; exit 2; }

tmp=$(mktemp -d)
pass=0 fail=0
failed=()
timings=()

log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# check "what" command...: runs the command, records PASS/FAIL, shows its output on FAIL.
check() {
  local what=$1; shift
  if "$@" >"$tmp/check.out" 2>&1; then
    pass=$((pass + 1)); log PASS "$what"
  else
    local rc=$?
    fail=$((fail + 1)); failed+=("$what"); log FAIL "$what (exit $rc)"
    sed 's/^/    | /' "$tmp/check.out" | tail -n 25
  fi
}

cleanup() {
  local rc=$?
  if [ "$keep" = 0 ]; then
    "$sandbox" down "$A" >/dev/null 2>&1 || true
    "$sandbox" down "$B" >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

# --- helpers over a status JSON file ----------------------------------------------------

field() { jq -er ".$2" "$tmp/$1.json"; }

# known_hosts built only from what `status` reports (the "cloud console"), so the pinning
# below proves the status JSON carries the right key.
pin() { printf '[%s]:%s %s\n' "$(field "$1" host)" "$(field "$1" port)" "$(field "$1" hostPublicKey)" >"$tmp/$1.known"; }

# vssh NAME [KNOWN_HOSTS_FILE] -- CMD: ssh as deploy with strict host key checking.
vssh() {
  local n=$1 known=$tmp/$1.known; shift
  if [ "$1" != -- ]; then known=$1; shift; fi
  shift
  ssh -F /dev/null -i "$(field "$n" privateKeyPath)" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$known" -o GlobalKnownHostsFile=/dev/null \
    -o ConnectTimeout=5 -o LogLevel=ERROR -p "$(field "$n" port)" "$(field "$n" user)@$(field "$n" host)" "$@" </dev/null
}

status_ok() {
  local j=$tmp/$1.json
  jq -e --arg n "$1" '
    .name == $n and .container == ("onevm-sandbox-" + $n) and .running == true and
    .host == "127.0.0.1" and .user == "deploy" and
    (.port | type == "number") and (.httpPort | type == "number") and (.httpsPort | type == "number") and
    (.hostPublicKey | test("^ssh-ed25519 AAAA[A-Za-z0-9+/=]+$")) and
    (.privateKeyPath | type == "string")' "$j" && test -s "$(field "$1" privateKeyPath)"
}

must_fail() { if "$@"; then echo "expected a failure, but it succeeded"; return 1; fi; return 0; }

system_running() {
  local s
  s=$(vssh "$1" -- 'timeout 60 systemctl is-system-running --wait' || true)
  echo "systemctl is-system-running: $s"
  case "$s" in running|degraded) ;; *) vssh "$1" -- 'systemctl --failed --no-legend' || true; return 1 ;; esac
}

no_docker() {
  vssh "$1" -- '! command -v docker && ! command -v dockerd && ! command -v containerd &&
    ! dpkg-query -W -f="\${Status}" docker.io 2>/dev/null | grep -q "install ok installed"'
}

is_deploy() { local who; who=$(vssh "$1" -- whoami); echo "whoami: $who"; [ "$who" = deploy ]; }

password_refused() { # only "publickey" may be offered, and the login must fail
  local out
  if out=$(ssh -F /dev/null -o BatchMode=yes -o PubkeyAuthentication=no \
      -o PreferredAuthentications=password,keyboard-interactive -o StrictHostKeyChecking=yes \
      -o UserKnownHostsFile="$tmp/$1.known" -o GlobalKnownHostsFile=/dev/null \
      -p "$(field "$1" port)" deploy@127.0.0.1 true </dev/null 2>&1); then
    echo "a login without a key succeeded"; return 1
  fi
  echo "$out"; grep -q 'Permission denied (publickey)' <<<"$out"
}

root_refused() {
  must_fail ssh -F /dev/null -i "$(field "$1" privateKeyPath)" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$tmp/$1.known" -o GlobalKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -p "$(field "$1" port)" root@127.0.0.1 true </dev/null
}

listed_running() { # NAME...
  local out n; out=$("$sandbox" list); echo "$out"
  for n in "$@"; do awk -v n="$n" '$1 == n && $2 == "true" { f = 1 } END { exit !f }' <<<"$out" || return 1; done
}

gone() {
  local rc=0
  ! docker container inspect "onevm-sandbox-$1" >/dev/null 2>&1 || { echo "container left"; return 1; }
  ! docker volume inspect "onevm-sandbox-$1-docker" >/dev/null 2>&1 || { echo "docker volume left"; return 1; }
  ! docker volume inspect "onevm-sandbox-$1-opt" >/dev/null 2>&1 || { echo "opt volume left"; return 1; }
  [ ! -e "${ONEVM_CACHE:-$HOME/.cache/onevm}/sandboxes/$1" ] || { echo "state dir left"; return 1; }
  "$sandbox" status "$1" >/dev/null 2>&1 || rc=$?
  [ "$rc" = 3 ] || { echo "status exit $rc, expected 3"; return 1; }
}

same_json() { # FILE FILE JQ-FILTER
  local a b; a=$(jq -c "$3" "$1"); b=$(jq -c "$3" "$2"); echo "$a"; echo "$b"; [ "$a" = "$b" ]
}

differ() { # FILE FILE JQ-FILTER
  local a b; a=$(jq -c "$3" "$1"); b=$(jq -c "$3" "$2"); echo "$a"; echo "$b"; [ "$a" != "$b" ]
}

wait_ssh() { # NAME SECONDS
  local end=$((SECONDS + $2))
  until vssh "$1" -- true 2>/dev/null; do
    [ "$SECONDS" -lt "$end" ] || { vssh "$1" -- true; return 1; }
    sleep 0.3
  done
}

# --- the run -----------------------------------------------------------------------------

t_all=$(now)
check "shellcheck of the sandbox scripts" \
  shellcheck "$root/scripts/sandbox.sh" "$root/scripts/install-docker.sh" "$root/scripts/base-image.sh" \
  "$root"/sandbox/vm/rootfs/usr/local/sbin/* "$0"
"$sandbox" down "$A" >/dev/null 2>&1 || true
"$sandbox" down "$B" >/dev/null 2>&1 || true

# Engine and images first (cached after the first run), so the "up" timings are boots.
t=$(now)
check "engine and base image" bash -c '"$1/scripts/install-docker.sh" && "$1/scripts/base-image.sh"' _ "$root"
timings+=("engine + base image: $(since "$t") s")

t=$(now)
"$sandbox" up "$A" >"$tmp/$A.json" 2>"$tmp/$A.up.log" & pa=$!
"$sandbox" up "$B" >"$tmp/$B.json" 2>"$tmp/$B.up.log" & pb=$!
rca=0; wait "$pa" || rca=$?; ta=$(since "$t")
rcb=0; wait "$pb" || rcb=$?; tb=$(since "$t")
timings+=("up $A and $B in parallel (incl. any VM image build): $ta s / $tb s")
check "up $A" test "$rca" = 0
check "up $B" test "$rcb" = 0
if [ "$rca" != 0 ] || [ "$rcb" != 0 ]; then
  cat "$tmp/$A.up.log" "$tmp/$B.up.log" >&2
  log FAIL "cannot go on without both sandboxes"
  echo "$pass passed, $((fail + 1)) failed"; exit 1
fi
grep -h -E 'built|ready after' "$tmp/$A.up.log" "$tmp/$B.up.log" | sed 's/^/    /'

for n in "$A" "$B"; do
  check "$n: status JSON has every field" status_ok "$n"
  pin "$n"
  check "$n: ssh as deploy with the pinned host key" is_deploy "$n"
  check "$n: systemd is PID 1 and the system is running|degraded" system_running "$n"
  check "$n: sudo works without a password" vssh "$n" -- 'sudo -n true && [ "$(sudo -n id -u)" = 0 ]'
  check "$n: no Docker engine installed" no_docker "$n"
  check "$n: root login refused, even with deploy's key" root_refused "$n"
  check "$n: no password/keyboard-interactive auth offered" password_refused "$n"
  check "$n: /var/lib/docker and /opt are volumes" vssh "$n" -- 'findmnt -n /var/lib/docker && findmnt -n /opt'
  check "$n: sandbox.sh ssh works" "$sandbox" ssh "$n" -- true
done
check "$A: sshd config is key-only" vssh "$A" -- 'sudo sshd -T | grep -qx "passwordauthentication no" &&
  sudo sshd -T | grep -qx "permitrootlogin no" && sudo sshd -T | grep -qx "kbdinteractiveauthentication no"'

check "host key pinning is enforced (B's key for A is refused)" must_fail \
  vssh "$A" "$tmp/$B.known" -- true
check "the two sandboxes have distinct ssh ports" differ "$tmp/$A.json" "$tmp/$B.json" .port
check "the two sandboxes have distinct host keys" differ "$tmp/$A.json" "$tmp/$B.json" .hostPublicKey
check "no port is shared" bash -c '[ "$(jq -s "[.[] | .port, .httpPort, .httpsPort] | unique | length" "$1" "$2")" = 6 ]' \
  _ "$tmp/$A.json" "$tmp/$B.json"

t=$(now)
check "$A: apt-get installs a package through NAT to the Debian mirror" vssh "$A" -- \
  'sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hello >/dev/null && hello'
timings+=("apt-get update + install inside: $(since "$t") s")

# Reboot from the host: the VM's disk (host key, machine-id, /opt) survives, /run does not.
vssh "$A" -- 'echo kept | sudo tee /opt/smoke-marker >/dev/null; sudo touch /run/smoke-before-reboot; cat /etc/machine-id' >"$tmp/mid.before" || true
cp "$tmp/$A.json" "$tmp/$A.before.json"
t=$(now)
rc=0; "$sandbox" reboot "$A" >"$tmp/$A.json" 2>"$tmp/$A.reboot.log" || rc=$?
timings+=("reboot $A to ssh-ready: $(since "$t") s")
check "$A: sandbox.sh reboot" test "$rc" = 0
[ "$rc" = 0 ] || cat "$tmp/$A.reboot.log"
check "$A: same host key and ports after reboot" \
  same_json "$tmp/$A.before.json" "$tmp/$A.json" '[.hostPublicKey,.port,.httpPort,.httpsPort,.running]'
check "$A: ssh with the key pinned before the reboot" vssh "$A" -- true
check "$A: it really rebooted (/run emptied), /opt and machine-id kept" vssh "$A" -- \
  "[ ! -e /run/smoke-before-reboot ] && [ \"\$(cat /opt/smoke-marker)\" = kept ] && [ \"\$(cat /etc/machine-id)\" = '$(cat "$tmp/mid.before")' ]"
check "$A: system running|degraded after reboot" system_running "$A"

# Reboot from inside, as an operator would: the container's restart policy boots it again.
vssh "$B" -- 'sudo touch /run/smoke-before-reboot' || true
t=$(now)
vssh "$B" -- 'sudo systemctl reboot' >/dev/null 2>&1 || true
sleep 1
check "$B: back after an in-VM 'systemctl reboot'" wait_ssh "$B" 90
timings+=("in-VM reboot of $B to ssh-ready: $(since "$t") s")
check "$B: it really rebooted, same pinned host key" vssh "$B" -- '[ ! -e /run/smoke-before-reboot ]'

t=$(now)
rc=0; "$sandbox" up "$A" >"$tmp/$A.again.json" 2>/dev/null || rc=$?
timings+=("up on a running sandbox: $(since "$t") s")
check "$A: up again exits 0" test "$rc" = 0
check "$A: up again is idempotent (same status)" same_json "$tmp/$A.json" "$tmp/$A.again.json" .
check "list shows both running" listed_running "$A" "$B"

if [ "$keep" = 0 ]; then
  t=$(now)
  for n in "$A" "$B"; do
    check "$n: down" "$sandbox" down "$n"
    check "$n: container, volumes and state are gone" gone "$n"
  done
  timings+=("down both: $(since "$t") s")
fi

timings+=("whole smoke run: $(since "$t_all") s")
echo "Timings:"
printf '  %s\n' "${timings[@]}"
if [ "$fail" -gt 0 ]; then
  echo "Failed checks:"
  printf '  - %s\n' "${failed[@]}"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
