#!/usr/bin/env bash
# End-to-end test of scripts/remote/*.sh on a real sandbox VM (scripts/sandbox.sh): a
# Debian trixie container with systemd and sshd, no Docker until bootstrap-host.sh
# installs it. Nothing is mocked: real Docker Engine, Compose v2, PostgreSQL, the sample
# app's images (scripts/build-images.sh), systemd, cron.d and a VM reboot.
#
# Usage: test/remote/run.sh [--keep] [--only REGEX]
#   --keep        leave the sandbox running at the end (default: tear it down)
#   --only REGEX  run only the tests whose name matches (setup tests always run)
# Env:   ONEVM_REMOTE_TEST_SANDBOX  sandbox name (default remote-test)
# Output: one line per test (PASS/FAIL, seconds), a summary, logs of failures.
# Exit:  0 all passed, 1 a test failed, 2 bad usage, 3 the images cannot be built.
# shellcheck disable=SC2317,SC2016  # tests run through run_test; single-quoted lines run in the VM
set -euo pipefail

ROOT="$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)"
FIX="$ROOT/test/remote/fixtures"
SB="$ROOT/scripts/sandbox.sh"
NAME="${ONEVM_REMOTE_TEST_SANDBOX:-${ONEVM_SANDBOX_PREFIX:-}remote-test}"
A=/opt/bot
BIN=/opt/bot/bin
KEEP=0
ONLY=""
while (($#)); do
  case "$1" in
    --keep) KEEP=1; shift ;;
    --only) ONLY="${2:?--only needs a regex}"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

WORK="$(mktemp -d /tmp/onevm-remote-test.XXXXXX)"
RESULTS=()
FAILED=0
T_START=$SECONDS

say() { printf '[%s] %s\n' "$(date -u '+%H:%M:%S')" "$*" >&2; }
# vm CMD: run a shell command line in the sandbox as deploy.
vm() { "$SB" ssh "$NAME" -- "$1"; }
fail() {
  printf 'ASSERTION FAILED: %s\n' "$*" >&2
  exit 1
}
assert_eq() { [[ "$1" == "$2" ]] || fail "${3:-value}: got '$1', want '$2'"; }
assert_match() { [[ "$1" =~ $2 ]] || fail "${3:-value}: '$1' does not match /$2/"; }
assert_contains() { grep -qF -- "$2" <<<"$1" || fail "${3:-output} does not contain '$2'"; }
# rc_of CMD: the exit status of a vm command line.
rc_of() {
  local rc=0
  vm "$1" >"$WORK/last.out" 2>"$WORK/last.err" || rc=$?
  printf '%s\n' "$rc"
}
current() { vm "readlink $A/current || true"; }
rows() { vm "docker exec bot-postgres-1 psql -U bot -d bot -tAc 'select count(*) from bookings'"; }
last_history() { vm "tail -n 1 $A/state/history.jsonl"; }
healthy() { vm "$BIN/health-check.sh --retries ${1:-1} --interval 2 >/dev/null 2>&1"; }

# bundle ID TAG [EXTRA]: builds a release bundle per docs/vm-contract.md in $WORK/ID;
# prints its content hash. EXTRA (a comment line) changes the content, not the id.
bundle() {
  local id="$1" tag="$2" extra="${3:-}" d="$WORK/bundle-$1" hash
  rm -rf "$d"
  mkdir -p "$d/bin"
  sed -e "s/@RELEASE@/$id/g" -e "s/@TAG@/$tag/g" "$FIX/compose.yaml.in" >"$d/compose.yaml"
  [[ -z "$extra" ]] || printf '# %s\n' "$extra" >>"$d/compose.yaml"
  sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1=/p' "$FIX/env" >"$d/.env.example"
  cp "$ROOT"/scripts/remote/*.sh "$d/bin/"
  hash="$(cd "$d" && find . -type f ! -name release.json -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)"
  jq -n --arg id "$id" --arg tag "$tag" --arg hash "$hash" \
    '{release_id: $id, app: "bot", content_hash: $hash, created_at: "2026-01-01T00:00:00Z",
      images: {postgres: "onevm/postgres:17", redis: "onevm/redis:8",
               migrate: ("onevm/migrate:" + $tag), "bot-api": ("onevm/bot-api:" + $tag)}}' >"$d/release.json"
  printf '%s\n' "$hash"
}
# install_release ID TAG [EXTRA]: exit status of install-release.sh for that bundle.
install_release() {
  local hash rc=0
  hash="$(bundle "$@")"
  tar -C "$WORK/bundle-$1" -czf - . | base64 -w0 |
    "$SB" ssh "$NAME" -- "$BIN/install-release.sh --id $1 --hash $hash" >"$WORK/last.out" 2>"$WORK/last.err" || rc=$?
  return "$rc"
}
# activate ARGS: exit status of activate.sh (stdout/stderr in $WORK/last.*).
activate() { rc_of "$BIN/activate.sh $*"; }

# bg_activate TAG ARGS (env prefix allowed in ARGS via ENV=..): starts activate.sh in its
# own session in the VM; prints its pid. Output in /tmp/act-TAG.{out,err,rc}.
bg_activate() {
  local tag="$1"
  shift
  vm "rm -f /tmp/act-$tag.rc; setsid sh -c '$* $BIN/activate.sh \"\$@\"; echo \$? >/tmp/act-$tag.rc' sh $ACT_ARGS </dev/null >/tmp/act-$tag.out 2>/tmp/act-$tag.err & echo \$!"
}
# wait_phase PHASE [SECONDS]: in-VM poll (50 ms) until the marker shows PHASE.
wait_phase() {
  vm "for i in \$(seq $((${2:-120} * 20))); do
        p=\$(jq -r .phase $A/state/activation-in-progress 2>/dev/null || true)
        [ \"\$p\" = '$1' ] && exit 0; sleep 0.05; done; exit 1"
}
wait_rc() {
  vm "for i in \$(seq $((${2:-300} * 10))); do [ -s /tmp/act-$1.rc ] && { cat /tmp/act-$1.rc; exit 0; }; sleep 0.1; done; echo timeout; exit 1"
}

run_test() {
  local name="$1" fn="$2" t0 rc
  if [[ -n "$ONLY" && "${3:-}" != setup && ! "$name" =~ $ONLY ]]; then return 0; fi
  t0=$SECONDS
  say "RUN  $name"
  set +e
  (set -e; "$fn") >"$WORK/$fn.log" 2>&1
  rc=$?
  set -e
  if [[ "$rc" -eq 0 ]]; then
    RESULTS+=("PASS  $(printf '%4ss' $((SECONDS - t0)))  $name")
    say "PASS $name ($((SECONDS - t0)) s)"
  else
    RESULTS+=("FAIL  $(printf '%4ss' $((SECONDS - t0)))  $name")
    FAILED=1
    say "FAIL $name ($((SECONDS - t0)) s); last lines of its log:"
    tail -n 25 "$WORK/$fn.log" | sed 's/^/    /' >&2
    [[ -s "$WORK/last.err" ]] && { echo "    --- stderr of the last VM command:" >&2; tail -n 15 "$WORK/last.err" | sed 's/^/    /' >&2; }
  fi
  [[ "${3:-}" != setup || "$rc" -eq 0 ]] || { summary; exit 1; }
}

summary() {
  printf '\n==== test/remote/run.sh summary (%s s total) ====\n' "$((SECONDS - T_START))"
  printf '%s\n' "${RESULTS[@]}"
  if [[ "$FAILED" -eq 0 ]]; then echo "RESULT: PASS (${#RESULTS[@]} tests)"; else echo "RESULT: FAIL"; fi
}

teardown() {
  if [[ "$KEEP" -eq 1 ]]; then
    say "sandbox $NAME kept (scripts/sandbox.sh down $NAME to remove it)"
  else
    "$SB" down "$NAME" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}

# ---- tests -----------------------------------------------------------------------------

t_lint() { "$ROOT/test/remote/lint.sh"; }

t_images_built() {
  local img
  for img in onevm/postgres:17 onevm/redis:8 onevm/bot-api:{v1,v2,broken,badmigrate} onevm/migrate:{v1,v2,broken,badmigrate}; do
    docker image inspect "$img" >/dev/null 2>&1 && continue
    "$ROOT/scripts/build-images.sh" --all >/dev/null || exit 3
    break
  done
}

t_sandbox_up() {
  "$SB" down "$NAME" >/dev/null 2>&1 || true
  "$SB" up "$NAME" >/dev/null
  vm 'test "$(id -un)" = deploy && ! command -v dockerd' || fail "sandbox is not a fresh VM"
}

t_bootstrap() {
  local out ms
  vm "sudo install -d -o deploy -g deploy -m 755 $A $BIN"
  tar -C "$ROOT/scripts/remote" -cf - . | vm "tar -C $BIN -xf - && chmod 755 $BIN/*.sh"
  vm "sudo $BIN/bootstrap-host.sh --app bot --user deploy" 2>"$WORK/last.err" || fail "bootstrap failed"
  vm 'docker compose version' >/dev/null || fail "docker compose not usable by deploy"
  assert_eq "$(vm "stat -c '%a %U' $A/shared")" "700 deploy" "shared/ mode"
  for d in releases backups state state/incidents logs images; do
    assert_eq "$(vm "stat -c '%a %U' $A/$d")" "755 deploy" "$d/ mode"
  done
  out="$(vm "s=\$(date +%s%N); sudo $BIN/bootstrap-host.sh --app bot --user deploy 2>&1; echo ms=\$(( (\$(date +%s%N) - s) / 1000000 ))")"
  assert_contains "$out" "already bootstrapped" "second bootstrap"
  ms="$(sed -n 's/^ms=//p' <<<"$out")"
  echo "second bootstrap: ${ms} ms (a figure, not a check: timings belong in benchmarks)"
  ! grep -Eq 'installing|created|chmod|chown|enabled|started|added' <<<"$out" || fail "second bootstrap changed something: $out"
  # --tools names the scripts version bin must point at (here bin is a plain dir): refused.
  out="$(vm "sudo $BIN/bootstrap-host.sh --app bot --user deploy --tools 0123abcd 2>&1; echo rc=\$?")"
  assert_contains "$out" "does not point at tools/0123abcd" "bootstrap --tools mismatch"
  assert_contains "$out" "rc=1" "bootstrap --tools mismatch exit code"
}

t_install_tls_check() {
  local d="$WORK/tls" out text
  mkdir -p "$d"
  printf 'http://:8080 {\n\treverse_proxy bot-api:8080\n}\n' >"$d/Caddyfile"
  # The Caddyfile given in the command line must be the archive's, byte for byte.
  out="$(tar -C "$d" -czf - Caddyfile | base64 -w0 |
    "$SB" ssh "$NAME" -- "sudo $BIN/install-tls.sh --app-dir $A --caddyfile 'http://:8080 {}' 2>&1; echo rc=\$?")"
  assert_contains "$out" "differs from the one given with --caddyfile" "install-tls mismatch"
  assert_contains "$out" "rc=2" "install-tls mismatch exit code"
  vm "test ! -e $A/shared/tls/Caddyfile" || fail "a refused Caddyfile was installed"
  # onevm passes it single-quoted, newlines and all ($(...) would drop the last newline).
  text="$(cat "$d/Caddyfile"; echo x)"; text="${text%x}"
  out="$(tar -C "$d" -czf - Caddyfile | base64 -w0 |
    "$SB" ssh "$NAME" -- "sudo $BIN/install-tls.sh --app-dir $A --caddyfile '$text' 2>&1; echo rc=\$?")"
  assert_contains "$out" "rc=0" "install-tls with the matching Caddyfile"
  vm "sudo cmp $A/shared/tls/Caddyfile -" <"$d/Caddyfile" || fail "installed Caddyfile differs"
  vm "sudo rm -rf $A/shared/tls"
}

t_ship_images() {
  docker save onevm/postgres:17 onevm/redis:8 onevm/bot-api:{v1,v2,broken,badmigrate} \
    onevm/migrate:{v1,v2,broken,badmigrate} | vm 'docker load' >/dev/null
  assert_eq "$(vm "docker images --format '{{.Repository}}:{{.Tag}}' | grep -c '^onevm/'")" "10" "images in the VM"
}

t_write_env() {
  local sum want mtime
  want="$(sha256sum <"$FIX/env" | cut -c1-64)"
  sum="$("$SB" ssh "$NAME" -- "$BIN/write-env.sh" <"$FIX/env" 2>/dev/null)"
  assert_eq "$sum" "$want" "printed sha256"
  assert_eq "$(vm "stat -c '%a %U' $A/shared/.env")" "600 deploy" ".env mode"
  mtime="$(vm "stat -c %Y.%i $A/shared/.env")"
  "$SB" ssh "$NAME" -- "$BIN/write-env.sh" <"$FIX/env" 2>"$WORK/last.err" >/dev/null
  assert_contains "$(cat "$WORK/last.err")" "unchanged" "second write-env"
  assert_eq "$(vm "stat -c %Y.%i $A/shared/.env")" "$mtime" ".env untouched by the 2nd run"
  [[ "$(: | "$SB" ssh "$NAME" -- "$BIN/write-env.sh" 2>/dev/null; echo $?)" == "2" ]] || fail "empty .env not refused"
}

t_install_releases() {
  local id before
  for id in v1 v2 broken badmigrate; do
    install_release "$id" "$id" || fail "install $id: $(cat "$WORK/last.err")"
  done
  vm "test -f $A/releases/v1/COMPLETE && test -x $A/releases/v1/bin/activate.sh"
  # Same id, same content: no-op.
  install_release v1 v1 || fail "re-install of v1 with the same hash"
  assert_contains "$(cat "$WORK/last.err")" "nothing to do" "same-hash re-install"
  # Same id, other content: refused with 3, nothing changed.
  before="$(vm "sha256sum $A/releases/v1/compose.yaml; stat -c %Y $A/releases/v1/COMPLETE")"
  local rc=0
  install_release v1 v1 "other content" || rc=$?
  assert_eq "$rc" "3" "exit of a different hash for v1"
  assert_contains "$(cat "$WORK/last.err")" "release IDs are immutable" "refusal message"
  assert_eq "$(vm "sha256sum $A/releases/v1/compose.yaml; stat -c %Y $A/releases/v1/COMPLETE")" "$before" "v1 after the refusal"
  assert_eq "$(rc_of "echo x | base64 | $BIN/install-release.sh --id ../evil --hash h")" "2" "exit for id ../evil"
  assert_eq "$(vm "ls -a $A/releases | grep -c '^\\.tmp' || true")" "0" "no temp dirs left"
}

t_activate_first() {
  local i
  assert_eq "$(activate --release v1)" "0" "activate v1"
  assert_eq "$(current)" "releases/v1" "current"
  healthy || fail "v1 not healthy"
  assert_match "$(last_history)" '"result":"success"' "history"
  for i in 1 2 3; do
    vm "curl -fsS -X POST -H 'content-type: application/json' -d '{\"client_id\":\"c$i\",\"slot\":\"2030-01-0${i}T10:00:00Z\"}' http://127.0.0.1:8080/bookings" >/dev/null
  done
  assert_eq "$(rows)" "3" "rows"
}

t_rerun_noop() {
  local t0=$SECONDS
  assert_eq "$(activate --release v1)" "0" "re-activate v1"
  assert_match "$(last_history)" '"result":"noop"' "history"
  ((SECONDS - t0 < 5)) || fail "no-op took $((SECONDS - t0)) s"
  assert_contains "$(cat "$WORK/last.err")" "nothing to do" "log"
}

t_activate_v2() {
  local h bk
  assert_eq "$(activate --release v2 --operator tester)" "0" "activate v2"
  assert_eq "$(current)" "releases/v2" "current"
  assert_eq "$(vm "cat $A/state/previous")" "v1" "state/previous"
  h="$(last_history)"
  assert_match "$h" '"result":"success"' "history"
  bk="$(jq -r .backup <<<"$h")"
  assert_match "$bk" "^$A/backups/bot_[0-9]{8}_[0-9]{6}_pre_deployment\\.dump\$" "pre-deploy backup path"
  vm "test -s $bk" || fail "backup file $bk missing"
  assert_eq "$(vm "jq -r --arg f $bk '.backups[] | select(.file_path == \$f) | \"\\(.backup_type) \\(.verified) \\(.artifact_id)\"' $A/backups/backup_index.json")" \
    "pre_deployment true v1" "index entry of the pre-deploy backup"
  assert_eq "$(rows)" "3" "rows after v2"
  assert_contains "$(vm 'curl -fsS http://127.0.0.1:8080/version')" "v2" "/version"
}

t_broken_rolls_back() {
  local inc
  assert_eq "$(activate --release broken --health-retries 10 --health-interval 2 --operator alice)" "5" "exit of broken"
  assert_contains "$(cat "$WORK/last.err")" "rolled back to v2" "message"
  assert_eq "$(current)" "releases/v2" "current after rollback"
  assert_eq "$(vm "cat $A/state/previous")" "v1" "state/previous restored"
  healthy || fail "v2 not healthy after rollback"
  assert_eq "$(rows)" "3" "rows after rollback"
  assert_match "$(last_history)" '"result":"rolled_back"' "history"
  inc="$(vm "cat \$(ls -1 $A/state/incidents/*-broken.md | tail -n 1)")"
  echo "$inc"
  assert_match "$inc" "Failed release: broken" "incident"
  assert_match "$inc" "Failed at \\(UTC\\): 20[0-9-]+T[0-9:]+Z" "incident timestamp"
  assert_match "$inc" "Trigger: health check failed" "incident trigger"
  assert_match "$inc" "Rollback operator: alice" "incident operator"
  assert_match "$inc" "Restored release: v2" "incident restored"
  assert_match "$inc" "Health verification after rollback: PASSED" "incident verification"
}

t_badmigrate() {
  assert_eq "$(activate --release badmigrate --health-retries 10)" "3" "exit of badmigrate"
  assert_match "$(cat "$WORK/last.err")" "pre-deploy backup: $A/backups/bot_[0-9_]+_pre_deployment\\.dump" "backup path printed"
  assert_eq "$(current)" "releases/v2" "current unchanged"
  healthy || fail "v2 not healthy after failed migration"
  assert_eq "$(rows)" "3" "rows"
  assert_match "$(last_history)" '"result":"migrate_failed"' "history"
  assert_eq "$(vm "docker exec bot-postgres-1 psql -U bot -d bot -tAc 'select version_num from alembic_version'")" "0002_booking_note" "schema revision"
  # A pre-deploy backup that cannot be taken aborts before anything changes.
  assert_eq "$(activate --release v1 --backup-min-free-mb 999999999)" "2" "exit when the backup fails"
  assert_eq "$(current)" "releases/v2" "current after the aborted activation"
  assert_match "$(last_history)" '"result":"failed".*"exit_code":2' "history of the aborted activation"
  vm "! test -e $A/state/activation-in-progress" || fail "marker left after exit 2"
}

t_backup() {
  local f e n
  f="$(vm "$BIN/backup.sh --type manual" 2>"$WORK/last.err")" || fail "manual backup"
  assert_match "$f" "^$A/backups/bot_[0-9]{8}_[0-9]{6}_manual\\.dump\$" "path"
  e="$(vm "jq -c --arg f $f '.backups[] | select(.file_path == \$f)' $A/backups/backup_index.json")"
  echo "index entry: $e"
  for k in backup_id created_at backup_type file_path file_size_mb verified verified_at retention_until artifact_id; do
    [[ "$(jq -r --arg k "$k" 'has($k)' <<<"$e")" == true ]] || fail "index entry lacks $k"
  done
  assert_eq "$(jq -r '"\(.backup_type) \(.verified) \(.artifact_id) \(.file_size_mb | type)"' <<<"$e")" "manual true v2 number" "entry"
  assert_match "$(vm "cat $A/backups/LAST_SUCCESS")" "^20[0-9-]+T[0-9:]+Z $f\$" "LAST_SUCCESS"
  # The dump restores: into a scratch database, same rows.
  vm "docker exec bot-postgres-1 createdb -U bot scratch && docker exec -i bot-postgres-1 pg_restore -U bot -d scratch --no-owner < $f"
  assert_eq "$(vm "docker exec bot-postgres-1 psql -U bot -d scratch -tAc 'select count(*) from bookings'")" "3" "rows restored"
  vm "docker exec bot-postgres-1 dropdb -U bot scratch"
  # Disk space.
  n="$(vm "ls $A/backups | wc -l")"
  assert_eq "$(rc_of "$BIN/backup.sh --min-free-mb 999999999")" "3" "exit with too little space"
  assert_eq "$(vm "ls $A/backups | wc -l")" "$n" "no file written without space"
  # Lock busy.
  vm "setsid flock $A/state/backup.lock sleep 6 </dev/null >/dev/null 2>&1 &"
  sleep 0.5
  assert_eq "$(rc_of "$BIN/backup.sh --lock-wait 1")" "4" "exit with the lock busy"
  assert_contains "$(cat "$WORK/last.err")" "still busy" "lock message"
  # Corruption: a truncated dump (PGDMP header intact) and garbage.
  vm "truncate -s 300 $f"
  assert_eq "$(rc_of "$BIN/backup.sh --verify $f --lock-wait 10")" "2" "verify of a truncated dump"
  vm "test -f $f.unverified && ! test -e $f" || fail "corrupt dump not renamed to .unverified"
  assert_eq "$(vm "jq -r --arg id \$(basename $f .dump) '.backups[] | select(.backup_id == \$id) | .verified' $A/backups/backup_index.json")" "false" "index after corruption"
  vm "! grep -qF $f $A/backups/LAST_SUCCESS" || fail "LAST_SUCCESS still names the corrupt dump"
  f="$(vm "$BIN/backup.sh --type manual" 2>/dev/null)"
  vm "head -c 4096 /dev/urandom > $f"
  assert_eq "$(rc_of "$BIN/backup.sh --verify \$(basename $f)")" "2" "verify of garbage"
  assert_contains "$(cat "$WORK/last.err")" "no PGDMP header" "garbage detection"
  assert_eq "$(rc_of "$BIN/backup.sh --verify $(vm "cut -d' ' -f2 $A/backups/LAST_SUCCESS")")" "0" "verify of a good dump"
  # Retention: keep 2, never the newest verified one.
  f="$(vm "$BIN/backup.sh --type scheduled --keep 2" 2>"$WORK/last.err")" || fail "scheduled backup"
  assert_eq "$(vm "ls $A/backups | grep -c '^bot_'")" "2" "files after --keep 2"
  vm "test -f $f" || fail "newest backup deleted"
  assert_eq "$(vm "jq '.backups | length' $A/backups/backup_index.json")" "2" "index entries after --keep 2"
}

# kill_at PHASE TARGET WHERE: SIGKILL the activation's process group while it holds in
# PHASE; WHERE (old|new) is where current must be; then a rerun converges.
kill_at() {
  local phase="$1" target="$2" where="$3" before pid cur
  before="$(current)"
  ACT_ARGS="--release $target"
  pid="$(bg_activate "k$phase" "ONEVM_TEST_HOLD_PHASE=$phase ONEVM_TEST_HOLD_SECONDS=120")"
  wait_phase "$phase" || fail "activation never reached phase $phase"
  vm "kill -9 -- -$pid"
  sleep 1
  cur="$(current)"
  echo "killed in $phase: current $cur (before $before, target $target)"
  vm "test -f \"\$(readlink -f $A/current)/COMPLETE\"" || fail "current is dangling after a kill in $phase"
  if [[ "$where" == old ]]; then assert_eq "$cur" "$before" "current after a kill in $phase"; fi
  if [[ "$where" == new ]]; then assert_eq "$cur" "releases/$target" "current after a kill in $phase"; fi
  vm "test -f $A/state/activation-in-progress" || fail "no marker after a kill"
  assert_eq "$(activate --release "$target" --lock-wait 120)" "0" "rerun after a kill in $phase"
  assert_contains "$(cat "$WORK/last.err")" "interrupted activation" "rerun log"
  assert_eq "$(current)" "releases/$target" "current after the rerun"
  vm "! test -e $A/state/activation-in-progress" || fail "marker left after the rerun"
  healthy || fail "not healthy after the rerun"
  assert_match "$(vm "tail -n 2 $A/state/history.jsonl | head -n 1")" "\"release\":\"$target\".*\"result\":\"interrupted\"" "history of the killed run"
  assert_eq "$(rows)" "3" "rows"
}
t_kill_backup() { kill_at backup v1 old; }
t_kill_migrate() { kill_at migrate v2 old; }
t_kill_switch() { kill_at switch v1 old; }
t_kill_up() { kill_at up v2 new; }
t_kill_health() { kill_at health v1 new; }

# SIGKILL of activate.sh alone while `docker compose up` runs: the orphaned compose keeps
# the lock until it ends; the rerun waits for it, then converges.
t_kill_orphan() {
  ACT_ARGS="--release v2"
  bg_activate korphan "" >/dev/null
  # The marker's pid is activate.sh itself (its children live on).
  vm "m=$A/state/activation-in-progress; for i in \$(seq 2400); do p=\$(jq -r .phase \$m 2>/dev/null || true)
        [ \"\$p\" = up ] && { kill -9 \$(jq -r .pid \$m); exit 0; }; sleep 0.05; done; exit 1" || fail "never saw phase up"
  vm "test -f \"\$(readlink -f $A/current)/COMPLETE\"" || fail "current dangling"
  assert_eq "$(activate --release v2 --lock-wait 120)" "0" "rerun"
  assert_eq "$(current)" "releases/v2" "current"
  healthy || fail "not healthy"
}

t_kill_rollback() {
  local pid
  assert_eq "$(current)" "releases/v2" "precondition"
  ACT_ARGS="--release broken --health-retries 3 --health-interval 1"
  pid="$(bg_activate krollback "ONEVM_TEST_HOLD_PHASE=rollback ONEVM_TEST_HOLD_SECONDS=120")"
  wait_phase rollback 180 || fail "never reached rollback"
  vm "kill -9 -- -$pid"
  sleep 1
  assert_eq "$(current)" "releases/broken" "current when killed before switching back"
  assert_eq "$(activate --release broken --health-retries 3 --health-interval 1)" "5" "rerun of broken"
  assert_eq "$(current)" "releases/v2" "current after the rerun"
  assert_eq "$(vm "cat $A/state/previous")" "v1" "state/previous"
  healthy 5 || fail "v2 not healthy"
}

# SIGTERM is trapped: the run records itself as interrupted (no duplicate by the rerun).
t_sigterm() {
  local apid
  assert_eq "$(current)" "releases/v2" "precondition"
  ACT_ARGS="--release v1"
  bg_activate term "ONEVM_TEST_HOLD_PHASE=migrate ONEVM_TEST_HOLD_SECONDS=120" >/dev/null
  wait_phase migrate || fail "never reached migrate"
  apid="$(vm "jq -r .pid $A/state/activation-in-progress")"
  vm "kill -TERM $apid"
  assert_eq "$(wait_rc term 30)" "143" "exit on SIGTERM"
  assert_match "$(last_history)" "\"result\":\"interrupted\".*\"pid\":$apid" "history written by the trap"
  assert_eq "$(vm "jq -r .history_written $A/state/activation-in-progress")" "true" "marker notes the history line"
  assert_eq "$(current)" "releases/v2" "current after SIGTERM in migrate"
  assert_eq "$(activate --release v1 --lock-wait 10)" "0" "rerun"
  assert_eq "$(vm "grep -c '\"pid\":$apid' $A/state/history.jsonl")" "1" "one history line for the terminated run"
  assert_match "$(vm "tail -n 2 $A/state/history.jsonl | head -n 1")" "\"pid\":$apid" "no extra line from the rerun"
  assert_eq "$(current)" "releases/v1" "current after rerun"
}

# A rotated secret (changed shared/.env) makes the same release re-apply, then no-op.
t_env_rotation() {
  assert_eq "$(current)" "releases/v1" "precondition"
  { cat "$FIX/env"; printf 'EXTRA_SETTING="rotated value"\n'; } >"$WORK/env2"
  "$SB" ssh "$NAME" -- "$BIN/write-env.sh" <"$WORK/env2" >/dev/null 2>&1
  assert_eq "$(activate --release v1)" "0" "activate v1 after rotation"
  assert_match "$(last_history)" '"result":"success"' "re-applied, not a no-op"
  assert_contains "$(cat "$WORK/last.err")" "shared/.env or its compose file changed" "reason"
  assert_eq "$(vm "docker exec bot-bot-api-1 printenv EXTRA_SETTING")" "rotated value" "new value in the container"
  assert_eq "$(activate --release v1)" "0" "activate v1 again"
  assert_match "$(last_history)" '"result":"noop"' "then a no-op"
}

t_concurrent() {
  local pid out
  assert_eq "$(current)" "releases/v1" "precondition"
  ACT_ARGS="--release v2"
  bg_activate ca "ONEVM_TEST_HOLD_PHASE=backup ONEVM_TEST_HOLD_SECONDS=12" >/dev/null
  wait_phase backup || fail "A never started"
  pid="$(vm "jq -r .pid $A/state/activation-in-progress")"
  assert_eq "$(activate --release v2 --lock-wait 2)" "4" "exit of B (lock busy)"
  out="$(cat "$WORK/last.err")"
  assert_contains "$out" "held by: pid=$pid script=activate.sh release=v2" "B names the holder"
  ACT_ARGS="--release v2 --lock-wait 120"
  bg_activate cc "" >/dev/null
  assert_eq "$(wait_rc ca)" "0" "exit of A"
  assert_eq "$(wait_rc cc)" "0" "exit of C (waited)"
  assert_contains "$(vm 'cat /tmp/act-cc.err')" "waiting up to 120s" "C waited"
  assert_match "$(last_history)" '"result":"noop"' "C found v2 active"
  assert_eq "$(current)" "releases/v2" "current"
}

t_unit_cron_reboot() {
  local out t0
  "$SB" ssh "$NAME" -- "sudo $BIN/install-unit.sh --name bot.service" <"$FIX/bot.service" 2>"$WORK/last.err" || fail "install-unit"
  vm 'systemctl is-enabled bot.service && systemctl is-active bot.service' >/dev/null || fail "unit not enabled+active"
  out="$("$SB" ssh "$NAME" -- "sudo $BIN/install-unit.sh --name bot.service" <"$FIX/bot.service" 2>&1)"
  assert_contains "$out" "nothing to do" "second install-unit"
  "$SB" ssh "$NAME" -- "sudo $BIN/install-cron.sh --name onevm-bot-backup" <"$FIX/backup.cron" 2>"$WORK/last.err" || fail "install-cron"
  assert_eq "$(vm "stat -c '%a %U' /etc/cron.d/onevm-bot-backup")" "644 root" "cron file"
  out="$("$SB" ssh "$NAME" -- "sudo $BIN/install-cron.sh --name onevm-bot-backup" <"$FIX/backup.cron" 2>&1)"
  assert_contains "$out" "unchanged" "second install-cron"
  [[ "$(echo 'not a cron line' | "$SB" ssh "$NAME" -- "sudo $BIN/install-cron.sh --name bad" 2>/dev/null; echo $?)" == 2 ]] || fail "invalid cron accepted"
  vm '! test -e /etc/cron.d/bad' || fail "invalid cron written"
  t0=$SECONDS
  "$SB" reboot "$NAME" >/dev/null
  vm "$BIN/health-check.sh --retries 60 --interval 2" 2>"$WORK/last.err" || fail "stack not healthy after reboot"
  echo "reboot to healthy: $((SECONDS - t0)) s"
  vm 'systemctl is-active bot.service' >/dev/null || fail "unit not active after reboot"
  vm "sudo journalctl -b -u bot.service --no-pager | grep -Eq 'Started|Finished'" || fail "the unit did not start the stack after boot"
  assert_eq "$(current)" "releases/v2" "current after reboot"
  assert_eq "$(rows)" "3" "rows after reboot"
}

t_prune() {
  local id left
  for id in p1 p2 p3; do install_release "$id" v2 "$id" || fail "install $id"; sleep 1.1; done
  vm "$BIN/prune-releases.sh --keep 2" 2>"$WORK/last.err" || fail "prune"
  left="$(vm "ls $A/releases | sort | tr '\n' ' '")"
  assert_eq "$left" "p2 p3 v1 v2 " "releases after --keep 2 (current v2, previous v1)"
  vm "$BIN/prune-releases.sh --keep 2" 2>"$WORK/last.err" || fail "prune twice"
  assert_contains "$(cat "$WORK/last.err")" "deleted 0" "second prune"
}

t_no_secrets() {
  local pw
  pw="Test-pw with space"
  vm "! grep -rlF '$pw' $A/logs $A/state $A/backups/backup_index.json $A/backups/LAST_SUCCESS" || fail "the password appears in logs/state"
  vm "! grep -rlF 'test-token-not-real' $A/logs $A/state" || fail "the bot token appears in logs/state"
}

t_uninstall() {
  local out
  vm "rm -rf /tmp/rb && cp -r $BIN /tmp/rb"
  out="$(vm "sudo $BIN/uninstall.sh --app bot --unit bot.service --cron onevm-bot-backup" 2>"$WORK/last.err")" || fail "uninstall"
  echo "$out"
  assert_contains "$out" "Kept:" "report"
  assert_contains "$out" "bot_pgdata" "volume in the report"
  assert_eq "$(vm "docker ps -aq --filter label=com.docker.compose.project=bot | wc -l")" "0" "containers left"
  vm 'docker volume inspect bot_pgdata >/dev/null' || fail "volume removed"
  vm "ls $A/backups/bot_*.dump >/dev/null" || fail "backups removed"
  vm "! test -e $A/releases && ! test -e $A/current && ! test -e $A/bin && ! test -e $A/shared/.env" || fail "app files left"
  vm "! test -e /etc/systemd/system/bot.service && ! test -e /etc/cron.d/onevm-bot-backup" || fail "unit/cron left"
  vm "test -s $A/state/history.jsonl" || fail "history removed"
  out="$(vm "sudo /tmp/rb/uninstall.sh --app bot --unit bot.service --cron onevm-bot-backup" 2>&1)" || fail "second uninstall"
  assert_contains "$out" "Kept:" "second uninstall report"
  # The kept volume really holds the data: reinstall and find the rows. The scripts go
  # in the layout lib/remote.ts uses: tools/<hash>/ with bin -> tools/<hash>.
  tar -C "$ROOT/scripts/remote" -cf - . | vm "sudo install -d -o deploy -g deploy $A $A/tools/h1 && tar -C $A/tools/h1 -xf - && ln -sfn tools/h1 $A/.bin.tmp && mv -T $A/.bin.tmp $BIN"
  vm "sudo $BIN/bootstrap-host.sh --app bot --user deploy" 2>/dev/null
  "$SB" ssh "$NAME" -- "$BIN/write-env.sh" <"$FIX/env" >/dev/null 2>&1
  install_release v2 v2 || fail "reinstall v2"
  # A broken first deployment has nothing to roll back to: exit 6, no current.
  install_release broken broken || fail "reinstall broken"
  assert_eq "$(activate --release broken --health-retries 3 --health-interval 1)" "6" "broken first deployment"
  vm "! test -e $A/current && ! test -L $A/current" || fail "current left pointing at a failed first deployment"
  assert_match "$(vm "cat \$(ls -1t $A/state/incidents/*-broken.md | head -n 1)")" "Restored release: none" "incident of the first deployment"
  assert_eq "$(activate --release v2)" "0" "activate after reinstall"
  assert_eq "$(rows)" "3" "rows after uninstall + reinstall"
  vm "test -L $BIN && $A/tools/h1/health-check.sh --retries 1 >/dev/null 2>&1" || fail "scripts in tools/<hash> do not find the app dir"
}

# ---- main ------------------------------------------------------------------------------

trap 'teardown' EXIT
say "work dir $WORK; sandbox $NAME"
run_test "lint: shellcheck, --help, exit 64, sources common.sh" t_lint setup
run_test "sample images built on the host" t_images_built setup
run_test "sandbox VM up (fresh, no Docker)" t_sandbox_up setup
run_test "bootstrap-host: Docker+Compose, dirs, second run changes nothing" t_bootstrap setup
run_test "install-tls: the --caddyfile given must equal the archive's (exit 2)" t_install_tls_check
run_test "images shipped (docker save | ssh docker load)" t_ship_images setup
run_test "write-env: 600, atomic, unchanged on rerun, sha only" t_write_env setup
run_test "install-release: 4 releases, same-hash no-op, immutable ids (exit 3)" t_install_releases setup
run_test "activate v1: first deployment healthy" t_activate_first setup
run_test "activate v1 again: no-op" t_rerun_noop
run_test "activate v2: pre-deploy backup, rows kept" t_activate_v2
run_test "activate broken: rollback to v2, incident, exit 5" t_broken_rolls_back
run_test "activate badmigrate: exit 3, current unchanged; failed backup: exit 2" t_badmigrate
run_test "backup: index, restore, space (3), lock (4), corruption (2), retention" t_backup
run_test "SIGKILL in backup phase, rerun converges" t_kill_backup
run_test "SIGKILL in migrate phase, rerun converges" t_kill_migrate
run_test "SIGKILL in switch phase, rerun converges" t_kill_switch
run_test "SIGKILL in up phase (after switch), rerun converges" t_kill_up
run_test "SIGKILL in health phase, rerun converges" t_kill_health
run_test "SIGKILL of activate.sh alone during compose up (orphan keeps lock)" t_kill_orphan
run_test "SIGKILL during rollback, rerun rolls back again" t_kill_rollback
run_test "SIGTERM: trapped, recorded once, rerun converges" t_sigterm
run_test "rotated .env: same release re-applies, then no-op" t_env_rotation
run_test "concurrent activation: refuses (4) / waits" t_concurrent
run_test "unit + cron install, VM reboot brings the stack back" t_unit_cron_reboot
run_test "prune-releases: keeps current, previous, newest" t_prune
run_test "no secret in logs, state or backup index" t_no_secrets
run_test "uninstall keeps backups + volume; broken 1st deploy exits 6; reinstall finds the rows" t_uninstall
summary
exit "$FAILED"
