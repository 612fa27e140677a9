#!/usr/bin/env bash
# End-to-end test of vm/*.sh (the on-VM engine) on a real sandbox VM (scripts/sandbox.sh):
# a Debian trixie container with systemd and sshd, no Docker until bootstrap-host.sh
# installs it. Nothing is mocked: real Docker Engine, Compose v2, PostgreSQL, the sample
# app's images, the caddy:2 stand-in (the official image's tools: no curl), systemd, cron.d and a VM
# reboot. Fixture releases are compose.yaml in onevm's rendered shape plus a release.json
# with the roles (docs/vm-contract.md), built by bundle() below.
#
# Usage: test/remote/run.sh [--keep] [--only REGEX]
#   --keep        leave the sandbox running at the end (default: tear it down)
#   --only REGEX  run only the tests whose name matches (setup tests always run)
# Env:   ONEVM_REMOTE_TEST_SANDBOX  sandbox name (default remote-test), prefixed with
#        ONEVM_SANDBOX_PREFIX (e.g. "vm-": sandbox names are global on the machine)
# Output: one line per test (PASS/FAIL, seconds), a summary, logs of failures.
# Exit:  0 all passed, 1 a test failed, 2 bad usage, 3 the images cannot be built.
# shellcheck disable=SC2317,SC2016  # tests run through run_test; single-quoted lines run in the VM
set -euo pipefail

ROOT="$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)"
FIX="$ROOT/test/remote/fixtures"
SB="$ROOT/scripts/sandbox.sh"
NAME="${ONEVM_SANDBOX_PREFIX:-}${ONEVM_REMOTE_TEST_SANDBOX:-remote-test}"
A=/opt/bot
BIN=/opt/bot/bin
# Prefix of the engine's command lines: "bash " runs them without execute bits.
X=""
KEEP=0
ONLY=""
while (($#)); do
  case "$1" in
    --keep) KEEP=1; shift ;;
    --only) ONLY="${2:?--only needs a regex}"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

# The sample app's images. The only place that knows how they are built (the sample app
# and its build script may move): build_sample_images makes every one of them.
SAMPLE_IMAGES=(postgres:17 redis:8 booking-bot/bot-api:{v1,v2,broken,badmigrate} booking-bot/migrate:{v1,v2,broken,badmigrate})
build_sample_images() { "$ROOT/scripts/build-images.sh" --example booking-bot --all --proxy >/dev/null; }
PROXY_IMAGE=caddy:2

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
# proxy_dials: the upstream dial addresses the running proxy uses (from its admin API,
# read with the proxy's own busybox wget; jq runs here).
proxy_dials() { vm "docker exec bot-onevm-proxy-1 wget -qO- http://127.0.0.1:2019/config/" | jq -r '[.. | .dial? // empty] | join(" ")'; }

# bundle ID TAG [--proxy|--noweb] [--extra TEXT] [--identity TEXT] [--floor MB] [--no-unit]:
# builds a rendered release bundle per docs/vm-contract.md in $WORK/bundle-ID; prints
# "CONTENT_HASH RELEASE_HASH". The web role is bot-api (its checks are the sample's old
# gate: /health's JSON, /metrics' families) unless --noweb; --proxy fronts it with
# onevm-proxy. Host configuration (--extra: a comment in compose.yaml, --floor:
# settings.backup_min_free_mb, --no-unit: no systemd/ file) changes the content hash only;
# --identity changes the release hash (another compose document, image or bound file).
bundle() {
  local id="$1" tag="$2" mode=direct extra="" identity="" floor=512 unit=1 d content rhash
  shift 2
  while (($#)); do
    case "$1" in
      --proxy) mode=proxy; shift ;;
      --noweb) mode=noweb; shift ;;
      --extra) extra="$2"; shift 2 ;;
      --identity) identity="$2"; shift 2 ;;
      --floor) floor="$2"; shift 2 ;;
      --no-unit) unit=0; shift ;;
      *) fail "bundle: unknown option $1" ;;
    esac
  done
  d="$WORK/bundle-$id"
  rm -rf "$d"
  mkdir -p "$d/conf" "$d/systemd"
  sed -e "s/@RELEASE@/$id/g" -e "s/@TAG@/$tag/g" "$FIX/compose.yaml.in" >"$d/compose.yaml"
  [[ "$mode" == direct ]] || sed -i '/# \[direct\]$/d' "$d/compose.yaml"
  [[ "$mode" != proxy ]] || cat "$FIX/proxy.yaml.in" >>"$d/compose.yaml"
  [[ -z "$extra" ]] || printf '# %s\n' "$extra" >>"$d/compose.yaml"
  printf 'note of release %s%s\n' "$id" "${identity:+ ($identity)}" >"$d/conf/note.txt"
  sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1=/p' "$FIX/env" >"$d/.env.example"
  if [[ "$unit" -eq 1 ]]; then cp "$FIX/bot.service" "$d/systemd/bot.service"; else rmdir "$d/systemd"; fi
  rhash="$(printf '%s %s %s %s' "$id" "$tag" "$mode" "$identity" | sha256sum | cut -c1-64)"
  jq -n --arg id "$id" --arg tag "$tag" --arg mode "$mode" --arg rhash "$rhash" --argjson floor "$floor" \
    '{release_id: $id, app: "bot", release_hash: $rhash,
      images: ({postgres: "postgres:17", redis: "redis:8",
                migrate: ("booking-bot/migrate:" + $tag), "bot-api": ("booking-bot/bot-api:" + $tag)}
               + (if $mode == "proxy" then {"onevm-proxy": "'"$PROXY_IMAGE"'"} else {} end)),
      services: (["postgres", "redis", "migrate", "bot-api"] + (if $mode == "proxy" then ["onevm-proxy"] else [] end)),
      web: (if $mode == "noweb" then null else
        {service: "bot-api", port: 8080, host_port: 8080,
         checks: [{path: "/health", status: 200, json: {status: "ok", service: "bot-api"}, contains: []},
                  {path: "/metrics", contains: ["bot_api_service_health", "bot_api_requests_total",
                    "bot_api_request_latency_seconds", "bot_api_booking_outcomes_total", "bot_api_abuse_outcomes_total"]}]} end),
      migrate: "migrate",
      database: {service: "postgres", user: "bot", name: "bot"},
      proxy: (if $mode == "proxy" then {service: "onevm-proxy", listen_port: 8080} else null end),
      settings: {health_retries: 60, health_interval: 1, backup_keep: 7, backup_min_free_mb: $floor}}' >"$d/release.json"
  # The content hash covers every file, release.json (without the hash itself) included.
  content="$(cd "$d" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)"
  jq --arg h "$content" '.content_hash = $h' "$d/release.json" >"$d/release.json.tmp" && mv "$d/release.json.tmp" "$d/release.json"
  printf '%s %s\n' "$content" "$rhash"
}
# install_release ID TAG [bundle options]: exit status of install-release.sh for that bundle.
install_release() {
  local hashes rc=0
  hashes="$(bundle "$@")"
  tar -C "$WORK/bundle-$1" -czf - . | base64 -w0 |
    "$SB" ssh "$NAME" -- "$X$BIN/install-release.sh --id $1 --hash ${hashes% *} --release-hash ${hashes#* }" >"$WORK/last.out" 2>"$WORK/last.err" || rc=$?
  return "$rc"
}
# activate ARGS: exit status of activate.sh (stdout/stderr in $WORK/last.*).
activate() { rc_of "$X$BIN/activate.sh $*"; }

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
# probe_start / probe_stop: GET 127.0.0.1:8080/health every 50 ms in the VM meanwhile;
# probe_stop prints "TOTAL FAILED" (a failure: any answer but 200, or none within 10 s).
probe_start() {
  vm "rm -f /tmp/probe.log /tmp/probe.stop; setsid sh -c 'while [ ! -e /tmp/probe.stop ]; do curl -s -o /dev/null -w \"%{http_code}\n\" --max-time 10 http://127.0.0.1:8080/health >>/tmp/probe.log; sleep 0.05; done' </dev/null >/dev/null 2>&1 &"
}
probe_stop() {
  vm "touch /tmp/probe.stop; sleep 1; echo \$(wc -l </tmp/probe.log) \$(grep -cvx 200 /tmp/probe.log || true)"
}

run_test() {
  local name="$1" fn="$2" t0 rc
  if [[ -n "$ONLY" && "${3:-}" != setup && ! "$name" =~ $ONLY ]]; then return 0; fi
  t0=$SECONDS
  say "RUN  $name"
  : >"$WORK/last.err"
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
  for img in "${SAMPLE_IMAGES[@]}"; do
    docker image inspect "$img" >/dev/null 2>&1 && continue
    build_sample_images || exit 3
    break
  done
  docker image inspect "$PROXY_IMAGE" >/dev/null 2>&1 || build_sample_images || exit 3
}

t_sandbox_up() {
  "$SB" down "$NAME" >/dev/null 2>&1 || true
  "$SB" up "$NAME" >/dev/null
  vm 'test "$(id -un)" = deploy && ! command -v dockerd' || fail "sandbox is not a fresh VM"
}

t_bootstrap() {
  local out ms
  vm "sudo install -d -o deploy -g deploy -m 755 $A $BIN"
  tar -C "$ROOT/vm" -cf - . | vm "tar -C $BIN -xf - && chmod 755 $BIN/*.sh"
  vm "sudo $BIN/bootstrap-host.sh --app bot --user deploy --data-dir /mnt/bot-data/db --data-dir /mnt/bot-data/files" 2>"$WORK/last.err" || fail "bootstrap failed"
  vm 'docker compose version' >/dev/null || fail "docker compose not usable by deploy"
  assert_eq "$(vm "stat -c '%a %U' $A/shared")" "700 deploy" "shared/ mode"
  for d in releases backups state state/incidents logs images; do
    assert_eq "$(vm "stat -c '%a %U' $A/$d")" "755 deploy" "$d/ mode"
  done
  assert_eq "$(vm "stat -c '%a %U' /mnt/bot-data/db /mnt/bot-data/files")" "$(printf '755 root\n755 root')" "data dirs"
  out="$(vm "s=\$(date +%s%N); sudo $BIN/bootstrap-host.sh --app bot --user deploy --data-dir /mnt/bot-data/db --data-dir /mnt/bot-data/files 2>&1; echo ms=\$(( (\$(date +%s%N) - s) / 1000000 ))")"
  assert_contains "$out" "already bootstrapped" "second bootstrap"
  ms="$(sed -n 's/^ms=//p' <<<"$out")"
  echo "second bootstrap: ${ms} ms (a figure, not a check: timings belong in benchmarks)"
  ! grep -Eq 'installing|created|chmod|chown|enabled|started|added' <<<"$out" || fail "second bootstrap changed something: $out"
  assert_eq "$(rc_of "sudo $BIN/bootstrap-host.sh --app bot --user deploy --data-dir relative/dir")" "64" "relative --data-dir"
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
  docker save "${SAMPLE_IMAGES[@]}" "$PROXY_IMAGE" | vm 'docker load' >/dev/null
  assert_eq "$(vm "docker images --format '{{.Repository}}:{{.Tag}}'" | grep -cxF -f <(printf '%s\n' "${SAMPLE_IMAGES[@]}" "$PROXY_IMAGE"))" "$((${#SAMPLE_IMAGES[@]} + 1))" "images in the VM"
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
  local id before rc=0
  for id in v1 v2 broken badmigrate; do
    install_release "$id" "$id" || fail "install $id: $(cat "$WORK/last.err")"
  done
  vm "test -f $A/releases/v1/COMPLETE && test -f $A/releases/v1/conf/note.txt && test -f $A/releases/v1/systemd/bot.service" ||
    fail "release files (subdirectories included) not installed"
  assert_eq "$(vm "readlink $A/releases/v1/.env")" "../../shared/.env" ".env link in the release"
  assert_contains "$(vm "cat $A/releases/v1/COMPLETE")" "release_hash=" "COMPLETE"
  # Same id, same content: no-op.
  install_release v1 v1 || fail "re-install of v1 with the same hash"
  assert_contains "$(cat "$WORK/last.err")" "nothing to do" "same-hash re-install"
  # Same id, another identity (release hash): refused with 3, nothing changed.
  before="$(vm "sha256sum $A/releases/v1/compose.yaml $A/releases/v1/conf/note.txt; stat -c %Y $A/releases/v1/COMPLETE")"
  install_release v1 v1 --identity "another image" || rc=$?
  assert_eq "$rc" "3" "exit of another release hash for v1"
  assert_contains "$(cat "$WORK/last.err")" "release IDs are immutable" "refusal message"
  assert_eq "$(vm "sha256sum $A/releases/v1/compose.yaml $A/releases/v1/conf/note.txt; stat -c %Y $A/releases/v1/COMPLETE")" "$before" "v1 after the refusal"
  assert_eq "$(rc_of "echo x | base64 | $BIN/install-release.sh --id ../evil --hash h --release-hash r")" "2" "exit for id ../evil"
  assert_eq "$(rc_of "echo x | base64 | $BIN/install-release.sh --id v9 --hash h")" "64" "exit without --release-hash"
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

# A no-op is recognised as one (nothing restarted); its speed is npm run bench's.
t_rerun_noop() {
  assert_eq "$(activate --release v1)" "0" "re-activate v1"
  assert_match "$(last_history)" '"result":"noop"' "history"
  assert_contains "$(cat "$WORK/last.err")" "nothing to do" "log"
}

# The release dir's .env link: compose typed by hand in current/ finds the project, the
# file and the secrets it interpolates (a missing variable would fail: ${KEY?...}).
t_compose_typed() {
  local out
  out="$(vm "cd $A/current && docker compose ps --format '{{.Service}} {{.State}}' | sort" 2>"$WORK/last.err")" || fail "docker compose ps in current/"
  assert_eq "$out" "$(printf 'bot-api running\npostgres running\nredis running')" "docker compose ps in current/"
  vm "cd $A/current && docker compose logs --tail 5 bot-api" >/dev/null 2>"$WORK/last.err" || fail "docker compose logs in current/"
  vm "cd $A/current && docker compose config --quiet" 2>"$WORK/last.err" || fail "docker compose config in current/"
  [[ ! -s "$WORK/last.err" ]] || fail "compose warned: $(cat "$WORK/last.err")"
}

# health-check.sh per service and its --json shape (one object per service).
t_health_service() {
  local j
  j="$(vm "$BIN/health-check.sh --json --retries 1" 2>"$WORK/last.err")" || fail "gate of v1"
  echo "$j"
  assert_eq "$(jq -r '.overall_status, .release, (.services | keys | join(","))' <<<"$j" | tr '\n' ' ')" \
    "healthy v1 bot-api,migrate,postgres,redis " "whole gate"
  assert_eq "$(jq -r '.services | [.[] | .status] | unique | join(",")' <<<"$j")" "healthy" "every service healthy"
  j="$(vm "$BIN/health-check.sh bot-api --json --retries 1" 2>"$WORK/last.err")" || fail "bot-api alone"
  assert_eq "$(jq -c '[(.services | keys), .services["bot-api"].role, (.services["bot-api"].checks | map(.ok))]' <<<"$j")" \
    '[["bot-api"],"web",[true,true]]' "bot-api with its web checks"
  j="$(vm "$BIN/health-check.sh postgres --json --retries 1" 2>"$WORK/last.err")" || fail "postgres alone"
  assert_eq "$(jq -c '[(.services | keys), .services.postgres.role, .services.postgres.health, (.services.postgres | has("checks")), .url]' <<<"$j")" \
    '[["postgres"],"database","healthy",false,null]' "postgres alone, no web checks"
  j="$(vm "$BIN/health-check.sh migrate --json --retries 1" 2>"$WORK/last.err")" || fail "migrate alone"
  assert_eq "$(jq -c '.services.migrate | [.status, .state, .exit_code]' <<<"$j")" '["healthy","exited",0]' "migrate exited 0"
  assert_eq "$(rc_of "$BIN/health-check.sh no-such-service --retries 1")" "3" "exit for an unknown service"
  # No answer on the URL given: a timeout (2), named per check.
  assert_eq "$(rc_of "$BIN/health-check.sh bot-api --url http://127.0.0.1:9 --retries 2 --interval 0 --json")" "2" "exit with no answer"
  assert_eq "$(jq -r '.overall_status, .services["bot-api"].checks[0].detail' "$WORK/last.out" | tr '\n' ' ')" \
    "timeout no answer (connection refused) " "detail of a check without an answer"
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

# restore.sh: a verified backup back in place (rows added since are gone), the database
# and the proxy kept running meanwhile, the migrate role run once, the gate passed.
t_restore() {
  local f u
  f="$(vm "$BIN/backup.sh --type manual --no-offsite" 2>"$WORK/last.err")" || fail "backup before the restore"
  vm "curl -fsS -X POST -H 'content-type: application/json' -d '{\"client_id\":\"c9\",\"slot\":\"2030-02-01T10:00:00Z\"}' http://127.0.0.1:8080/bookings" >/dev/null
  assert_eq "$(rows)" "4" "rows before the restore"
  u="$(vm "ls $A/backups/*.dump.unverified 2>/dev/null | head -n 1")"
  if [[ -n "$u" ]]; then
    assert_eq "$(rc_of "$BIN/restore.sh --backup $u --yes")" "2" "restore of an unverified backup"
  fi
  assert_eq "$(rc_of "$BIN/restore.sh --backup $(basename "$f" .dump) --yes")" "0" "restore"
  cat "$WORK/last.err"
  assert_contains "$(cat "$WORK/last.err")" "stopping redis migrate bot-api (the database and the proxy keep running)" "what the restore stops"
  assert_contains "$(cat "$WORK/last.err")" "running the current release's migrate service migrate" "migrate once"
  assert_match "$(cat "$WORK/last.err")" "row counts: .*bookings=3" "row counts logged"
  assert_eq "$(rows)" "3" "rows after the restore"
  healthy || fail "not healthy after the restore"
  assert_eq "$(rc_of "$BIN/restore.sh --backup no-such-backup --yes")" "2" "restore of a missing backup"
}

# set-db-password.sh --service: an ALTER ROLE with a SCRAM verifier (here of the password
# the app already uses, so it keeps connecting) runs in that service's container.
t_set_db_password() {
  local stmt
  stmt="$(python3 - <<'PY'
import base64, hashlib, hmac, os
pw = b'Test-pw with space & "quote" #hash'
salt = os.urandom(16)
salted = hashlib.pbkdf2_hmac("sha256", pw, salt, 4096)
stored = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
server = hmac.new(salted, b"Server Key", "sha256").digest()
b = lambda x: base64.b64encode(x).decode()
print(f"""ALTER ROLE "bot" PASSWORD 'SCRAM-SHA-256$4096:{b(salt)}${b(stored)}:{b(server)}';""")
PY
)"
  assert_eq "$(printf '%s\n' "$stmt" | "$SB" ssh "$NAME" -- "$BIN/set-db-password.sh --service postgres" 2>"$WORK/last.err"; echo $?)" "0" "set-db-password"
  assert_contains "$(cat "$WORK/last.err")" "password set in postgres" "log"
  assert_eq "$(vm "docker exec bot-postgres-1 psql -U bot -d bot -tAc \"select rolpassword like 'SCRAM-SHA-256\\\$4096:%' from pg_authid where rolname = 'bot'\"")" "t" "verifier stored"
  vm "curl -fsS -X POST -H 'content-type: application/json' -d '{\"client_id\":\"c8\",\"slot\":\"2030-03-01T10:00:00Z\"}' http://127.0.0.1:8080/bookings" >/dev/null || fail "the app lost its database"
  vm "docker exec bot-postgres-1 psql -U bot -d bot -tAc \"delete from bookings where client_id = 'c8'\"" >/dev/null
  assert_eq "$(printf '%s\n' "$stmt" | "$SB" ssh "$NAME" -- "$BIN/set-db-password.sh --service no-such-db" 2>"$WORK/last.err"; echo $?)" "0" "no container of the service: nothing to do"
  assert_eq "$(echo 'DROP ROLE bot;' | "$SB" ssh "$NAME" -- "$BIN/set-db-password.sh --service postgres" 2>/dev/null; echo $?)" "2" "anything but ALTER ROLE ... SCRAM is refused"
  assert_eq "$(rc_of "$BIN/set-db-password.sh </dev/null")" "64" "--service is required"
  assert_eq "$(rows)" "3" "rows"
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
  assert_contains "$(cat "$WORK/last.err")" "shared/.env or its release files changed" "reason"
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

# Host configuration changed: the same release (release hash) arrives with another content
# hash and is re-rendered in place, also while current; activate.sh then re-applies it.
# Its settings drive the backups: a floor above the free space refuses a manual backup and
# the pre-deploy one. Another release hash for an installed ID is refused (3).
t_rerender() {
  local before
  assert_eq "$(current)" "releases/v2" "precondition"
  before="$(vm "stat -c %i $A/releases/v2/compose.yaml")"
  install_release v2 v2 --extra "host configuration 2" --floor 999999999 --no-unit || fail "re-render of v2: $(cat "$WORK/last.err")"
  assert_contains "$(cat "$WORK/last.err")" "re-rendered in place" "install log"
  vm "! test -e $A/releases/v2/systemd/bot.service && ! test -e $A/releases/v2/systemd" || fail "a file no longer in the bundle was kept"
  assert_contains "$(vm "tail -n 1 $A/releases/v2/compose.yaml")" "host configuration 2" "compose.yaml replaced"
  [[ "$(vm "stat -c %i $A/releases/v2/compose.yaml")" != "$before" ]] || fail "compose.yaml rewritten in place, not replaced by a rename"
  assert_eq "$(vm "jq -r .settings.backup_min_free_mb $A/releases/v2/release.json")" "999999999" "release.json replaced"
  assert_contains "$(vm "cat $A/releases/v2/COMPLETE")" "content_hash=$(jq -r .content_hash "$WORK/bundle-v2/release.json")" "COMPLETE updated"
  assert_eq "$(vm "readlink $A/releases/v2/.env")" "../../shared/.env" ".env link kept"
  assert_eq "$(current)" "releases/v2" "current unchanged by a re-render"
  # The floor of the current release's settings applies to a backup run by hand.
  assert_eq "$(rc_of "$BIN/backup.sh --type manual")" "3" "manual backup below the settings' floor"
  assert_contains "$(cat "$WORK/last.err")" "999999999 MB required" "floor message"
  assert_eq "$(rc_of "$BIN/backup.sh --type manual --min-free-mb 1 --no-offsite")" "0" "--min-free-mb overrides the settings"
  # ... and to the pre-deploy backup of the re-application.
  assert_eq "$(activate --release v2)" "2" "re-apply with the floor: pre-deploy backup refused"
  assert_eq "$(activate --release v2 --backup-min-free-mb 1)" "0" "re-apply with the floor given"
  assert_contains "$(cat "$WORK/last.err")" "re-applying it" "a changed release is re-applied, not a no-op"
  # Back to the normal host configuration: re-rendered again, re-applied, then a no-op.
  install_release v2 v2 || fail "second re-render of v2"
  vm "test -f $A/releases/v2/systemd/bot.service" || fail "systemd/bot.service not back"
  assert_eq "$(activate --release v2)" "0" "re-apply"
  assert_match "$(last_history)" '"result":"success"' "re-applied"
  assert_eq "$(activate --release v2)" "0" "then"
  assert_match "$(last_history)" '"result":"noop"' "a no-op"
  # Another identity for an installed ID: refused, nothing changed.
  before="$(vm "sha256sum $A/releases/v2/release.json")"
  assert_eq "$(install_release v2 v2 --identity "other images"; echo $?)" "3" "another release hash for v2"
  assert_eq "$(vm "sha256sum $A/releases/v2/release.json")" "$before" "v2 after the refusal"
  assert_eq "$(rows)" "3" "rows"
}

# An app with no web role: the gate is its containers' health alone.
t_noweb() {
  local j
  install_release noweb v2 --noweb || fail "install noweb"
  install_release nowebbroken broken --noweb || fail "install nowebbroken"
  assert_eq "$(activate --release noweb)" "0" "activate noweb"
  j="$(vm "$BIN/health-check.sh --json --retries 1" 2>"$WORK/last.err")" || fail "gate of noweb"
  assert_eq "$(jq -c '[.url, ([.services[] | has("checks")] | any), (.services | keys)]' <<<"$j")" \
    '[null,false,["bot-api","migrate","postgres","redis"]]' "gate without web checks"
  vm '! curl -s -o /dev/null --max-time 2 http://127.0.0.1:8080/health' || fail "bot-api publishes a port without a web role"
  # bot-api answers 500 on /health, so Docker's own healthcheck marks it unhealthy.
  assert_eq "$(activate --release nowebbroken --health-retries 20 --health-interval 2)" "5" "activate nowebbroken"
  assert_contains "$(cat "$WORK/last.err")" "bot-api=running/unhealthy" "the container's health failed the gate"
  assert_eq "$(current)" "releases/noweb" "current after the rollback"
  assert_eq "$(activate --release v2)" "0" "back to v2"
  assert_eq "$(rows)" "3" "rows"
}

# The proxied switch: onevm-proxy (no curl in it) in front of bot-api; a switch starts
# the new bot-api beside the old one, the proxy pinned with caddy adapt/reload only.
t_proxy() {
  local out p
  tar -C "$FIX" -czf - Caddyfile | base64 -w0 | "$SB" ssh "$NAME" -- "sudo $BIN/install-tls.sh --app-dir $A" >/dev/null 2>"$WORK/last.err" ||
    fail "install-tls"
  assert_contains "$(cat "$WORK/last.err")" "no proxy container running yet" "install-tls before the proxy"
  for p in px1:v1 px2:v2 pxbroken:broken; do
    install_release "${p%%:*}" "${p#*:}" --proxy || fail "install ${p%%:*}"
  done
  assert_eq "$(activate --release px1)" "0" "activate px1 (adds the proxy)"
  vm '! docker exec bot-onevm-proxy-1 sh -c "command -v curl"' || fail "the proxy image has curl"
  assert_eq "$(vm "docker port bot-bot-api-1 | wc -l")" "0" "bot-api publishes no port behind the proxy"
  assert_contains "$(vm 'curl -fsS http://127.0.0.1:8080/version')" "px1" "/version through the proxy"
  probe_start
  assert_eq "$(activate --release px2)" "0" "activate px2 (hand-over)"
  out="$(probe_stop)"
  echo "probes during the hand-over: $out (total failed)"
  assert_contains "$(cat "$WORK/last.err")" "passes the web checks on" "the new bot-api was checked on its own address"
  assert_contains "$(cat "$WORK/last.err")" "the proxy serves from the new web container" "hand-over"
  assert_eq "${out#* }" "0" "failed probes during the hand-over"
  ((${out% *} > 20)) || fail "too few probes: $out"
  assert_eq "$(proxy_dials)" "bot-api:8080" "the proxy runs its Caddyfile again"
  assert_eq "$(vm "docker ps -q --filter label=com.docker.compose.service=bot-api | wc -l")" "1" "bot-api containers"
  assert_contains "$(vm 'curl -fsS http://127.0.0.1:8080/version')" "px2" "/version after the hand-over"
  # A changed Caddyfile reaches the running onevm-proxy (graceful reload).
  { cat "$FIX/Caddyfile"; printf '# changed\n'; } >"$WORK/Caddyfile"
  tar -C "$WORK" -czf - Caddyfile | base64 -w0 | "$SB" ssh "$NAME" -- "sudo $BIN/install-tls.sh --app-dir $A" >/dev/null 2>"$WORK/last.err" ||
    fail "install-tls with the proxy running"
  assert_contains "$(cat "$WORK/last.err")" "reloading the running proxy" "install-tls reloads onevm-proxy"
  # A new bot-api that never passes its checks: nothing switched, the old one kept serving.
  probe_start
  assert_eq "$(activate --release pxbroken --health-retries 10 --health-interval 1)" "5" "activate pxbroken"
  out="$(probe_stop)"
  echo "probes during the failed hand-over: $out"
  assert_contains "$(cat "$WORK/last.err")" "never passed its checks" "trigger"
  assert_eq "${out#* }" "0" "failed probes during the failed hand-over"
  assert_eq "$(current)" "releases/px2" "current"
  assert_eq "$(proxy_dials)" "bot-api:8080" "proxy unpinned after the failed hand-over"
  assert_eq "$(rows)" "3" "rows"
}

# SIGKILL while the proxy is pinned and the new bot-api starts beside the old one: the
# rerun unpins the proxy and converges to one bot-api of the release.
t_kill_handover() {
  local pid dials
  assert_eq "$(current)" "releases/px2" "precondition"
  ACT_ARGS="--release px1"
  pid="$(bg_activate khandover "")"
  vm "for i in \$(seq 1200); do p=\$(jq -r .phase $A/state/activation-in-progress 2>/dev/null || true)
        [ \"\$p\" = handover ] && [ \$(docker ps -aq --filter label=com.docker.compose.service=bot-api | wc -l) -ge 2 ] && exit 0
        sleep 0.05; done; exit 1" || fail "never saw the second bot-api"
  dials="$(proxy_dials)"
  vm "kill -9 -- -$pid"
  echo "killed with the proxy dialling: $dials"
  [[ "$dials" != "bot-api:8080" ]] || fail "the proxy was not pinned when killed"
  assert_eq "$(current)" "releases/px2" "current after a kill in the hand-over"
  assert_eq "$(activate --release px1 --lock-wait 120)" "0" "rerun"
  assert_contains "$(cat "$WORK/last.err")" "interrupted activation" "rerun log"
  assert_eq "$(proxy_dials)" "bot-api:8080" "the rerun unpinned the proxy"
  assert_eq "$(vm "docker ps -aq --filter label=com.docker.compose.service=bot-api | wc -l")" "1" "bot-api containers"
  assert_contains "$(vm 'curl -fsS http://127.0.0.1:8080/version')" "px1" "/version"
  healthy || fail "not healthy"
}

# From the proxy back to a release without it: the proxy goes, bot-api publishes the port.
t_proxy_removed() {
  assert_eq "$(activate --release v2)" "0" "activate v2"
  assert_eq "$(vm "docker ps -aq --filter label=com.docker.compose.service=onevm-proxy | wc -l")" "0" "proxy containers"
  assert_contains "$(vm 'curl -fsS http://127.0.0.1:8080/version')" "v2" "/version from bot-api itself"
  assert_eq "$(rows)" "3" "rows"
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
  for id in p1 p2 p3; do install_release "$id" v2 --extra "$id" || fail "install $id"; sleep 1.1; done
  vm "$BIN/prune-releases.sh --keep 2" 2>"$WORK/last.err" || fail "prune"
  cat "$WORK/last.err"
  left="$(vm "ls $A/releases | sort | tr '\n' ' '")"
  # v1 made the postgres and redis containers (their working_dir label), px1 is previous.
  assert_eq "$left" "p2 p3 px1 v1 v2 " "releases after --keep 2 (newest two, current v2, previous px1, in use v1)"
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
  # in the layout lib/remote.ts uses: tools/<hash>/ with bin -> tools/<hash>, and as
  # CopyToRemote leaves them: without execute bits, so every one runs with bash.
  tar -C "$ROOT/vm" -cf - . | vm "sudo install -d -o deploy -g deploy $A $A/tools/h1 && tar -C $A/tools/h1 -xf - --no-same-permissions && chmod -R a-x,u+rwX,go+rX $A/tools/h1 && ln -sfn tools/h1 $A/.bin.tmp && mv -T $A/.bin.tmp $BIN"
  vm "! test -x $BIN/activate.sh" || fail "the uploaded scripts are executable"
  X="bash "
  vm "sudo bash $BIN/bootstrap-host.sh --app bot --user deploy" 2>/dev/null
  "$SB" ssh "$NAME" -- "bash $BIN/write-env.sh" <"$FIX/env" >/dev/null 2>&1
  install_release v2 v2 || fail "reinstall v2"
  # A broken first deployment has nothing to roll back to: exit 6, no current.
  install_release broken broken || fail "reinstall broken"
  assert_eq "$(activate --release broken --health-retries 3 --health-interval 1)" "6" "broken first deployment"
  vm "! test -e $A/current && ! test -L $A/current" || fail "current left pointing at a failed first deployment"
  assert_match "$(vm "cat \$(ls -1t $A/state/incidents/*-broken.md | head -n 1)")" "Restored release: none" "incident of the first deployment"
  assert_eq "$(activate --release v2)" "0" "activate after reinstall"
  assert_eq "$(rows)" "3" "rows after uninstall + reinstall"
  vm "test -L $BIN && bash $A/tools/h1/health-check.sh --retries 1 >/dev/null 2>&1" || fail "scripts in tools/<hash> do not find the app dir"
}

# ---- main ------------------------------------------------------------------------------

trap 'teardown' EXIT
say "work dir $WORK; sandbox $NAME"
run_test "lint: shellcheck, conventions, modules sourced only, no sample names" t_lint setup
run_test "sample images built on the host" t_images_built setup
run_test "sandbox VM up (fresh, no Docker)" t_sandbox_up setup
run_test "bootstrap-host: Docker+Compose, dirs, second run changes nothing" t_bootstrap setup
run_test "install-tls: the --caddyfile given must equal the archive's (exit 2)" t_install_tls_check
run_test "images shipped (docker save | ssh docker load)" t_ship_images setup
run_test "write-env: 600, atomic, unchanged on rerun, sha only" t_write_env setup
run_test "install-release: 4 releases, .env link, same-hash no-op, immutable ids (exit 3)" t_install_releases setup
run_test "activate v1: first deployment healthy" t_activate_first setup
run_test "activate v1 again: no-op" t_rerun_noop
run_test "docker compose ps|logs|config typed in current/ as deploy" t_compose_typed
run_test "health-check.sh SERVICE, --json per service, unknown service (3), no answer (2)" t_health_service
run_test "activate v2: pre-deploy backup, rows kept" t_activate_v2
run_test "activate broken: rollback to v2, incident, exit 5" t_broken_rolls_back
run_test "activate badmigrate: exit 3, current unchanged; failed backup: exit 2" t_badmigrate
run_test "backup: index, restore, space (3), lock (4), corruption (2), retention" t_backup
run_test "restore.sh: verified backup back, services but database stopped, migrate once, gate" t_restore
run_test "set-db-password.sh --service: ALTER ROLE in that service's container; none running: no-op" t_set_db_password
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
run_test "re-render in place (same release hash), settings' backup floor (3/2), other release hash (3)" t_rerender
run_test "no web role: gated by container health alone (pass, and rollback on unhealthy)" t_noweb
run_test "proxy without curl: zero-downtime hand-over, failed hand-over keeps serving" t_proxy
run_test "SIGKILL during the hand-over (proxy pinned), rerun unpins and converges" t_kill_handover
run_test "proxy removed by a release without it" t_proxy_removed
run_test "unit + cron install, VM reboot brings the stack back" t_unit_cron_reboot
run_test "prune-releases: keeps current, previous, newest" t_prune
run_test "no secret in logs, state or backup index" t_no_secrets
run_test "uninstall keeps backups + volume; broken 1st deploy exits 6; reinstall finds the rows" t_uninstall
summary
exit "$FAILED"
