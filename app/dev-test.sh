#!/usr/bin/env bash
# End-to-end test of the sample app's images on this host with app/compose.dev.yaml
# (project onevm-appdev, bot-api on 127.0.0.1:$APPDEV_PORT only):
#   v1 up + smoke + startup log + secrets arrive exactly (env-check)
#   -> v2 (migration 0002 applied, v1 data kept) -> back to v1 (schema ahead: migrate
#   exits 0, app healthy) -> broken (bot-api unhealthy, /health 500) -> badmigrate
#   (migrate exits 1, schema unchanged) -> v2 again healthy. Then tears everything down.
#
# Usage: app/dev-test.sh [--help] [--keep] [--no-build]
#   --keep      leave the stack (and its volume) running at the end
#   --no-build  use the images already built (default: scripts/build-images.sh --all)
# Env:   APPDEV_PORT (default 18080); COMPOSE (command, default `docker compose`, else a
#        Compose v2 `docker-compose` on PATH)
# Exit:  0 all passed, 1 a check failed, 2 bad usage or no Compose v2.
# `A && pass ... || fail ...` is safe here: pass() always returns 0.
# shellcheck disable=SC2015
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }

keep=0
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --keep) keep=1; shift ;;
    --no-build) build=0; shift ;;
    *) log ERROR "unknown argument: $1"; usage >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
port=${APPDEV_PORT:-18080}
base="http://127.0.0.1:$port"
project=onevm-appdev

if [ -n "${COMPOSE:-}" ]; then
  read -r -a compose_cmd <<<"$COMPOSE"
elif docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1 && docker-compose version 2>/dev/null | grep -qv 'version 1\.'; then
  compose_cmd=(docker-compose)
else
  log ERROR "no Docker Compose v2 (set COMPOSE to one)"; exit 2
fi

work=$(mktemp -d /tmp/onevm-appdev.XXXXXX)
env_file="$work/dev.env"
export APPDEV_ENV_FILE="$env_file" APPDEV_PORT="$port"
dc() { "${compose_cmd[@]}" -p "$project" -f "$here/compose.dev.yaml" "$@"; }

cleanup() {
  if [ "$keep" = 0 ]; then
    dc down -v --remove-orphans >/dev/null 2>&1 || true
  else
    log INFO "stack left running: RELEASE=<id> APPDEV_ENV_FILE=$env_file ${compose_cmd[*]} -p $project -f $here/compose.dev.yaml ..."
  fi
  [ "$keep" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

failures=0
pass() { log INFO "ok: $1"; }
fail() { log ERROR "FAILED: $1"; failures=$((failures + 1)); }

# Secrets with quotes, $, #, spaces, @ : / % (single-quoted dotenv values are literal).
# shellcheck disable=SC2016  # literal $ on purpose
pg_password='p@ss:w/rd %41 "q" $HOME #x'
# shellcheck disable=SC2016
token='123456:ABC-def"ghi $USER #frag'
enc_password=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$pg_password")
umask 077
cat >"$env_file" <<EOF
POSTGRES_USER=bot
POSTGRES_PASSWORD='$pg_password'
POSTGRES_DB=bot
DATABASE_URL='postgresql://bot:$enc_password@postgres:5432/bot'
REDIS_URL=redis://redis:6379/0
TELEGRAM_BOT_TOKEN='$token'
TELEGRAM_UPDATES_MODE=polling
EOF
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

if [ "$build" = 1 ]; then
  "$root/scripts/build-images.sh" --all >/dev/null
fi

# wait_health SERVICE WANT SECONDS: the container's health status becomes WANT
wait_health() {
  local svc=$1 want=$2 deadline=$((SECONDS + $3)) cid status=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    cid=$(dc ps -q "$svc" 2>/dev/null || true)
    if [ -n "$cid" ]; then
      status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$cid" 2>/dev/null || true)
      [ "$status" = "$want" ] && return 0
    fi
    sleep 1
  done
  log ERROR "$svc is '$status', wanted '$want' within $3 s"
  return 1
}
migrate_exit() { docker inspect -f '{{.State.ExitCode}}' "$(dc ps -a -q migrate)"; }
psql_c() { dc exec -T postgres psql -X -At -U bot -d bot -c "$1"; }

# up RELEASE: compose up -d; prints nothing, returns compose's exit code
up() {
  local start=$SECONDS rc=0
  RELEASE=$1 dc up -d --remove-orphans >"$work/up.log" 2>&1 || rc=$?
  log INFO "compose up RELEASE=$1 -> exit $rc ($((SECONDS - start)) s)"
  return "$rc"
}

dc down -v --remove-orphans >/dev/null 2>&1 || true

# --- image-level: configuration errors --------------------------------------------------
rc=0; out=$(docker run --rm --network none -e TELEGRAM_BOT_TOKEN= -e REDIS_URL=redis://r:6379/0 \
  -e DATABASE_URL=postgresql://u:p@db:5432/d onevm/bot-api:v1 2>&1) || rc=$?
[ "$rc" = 2 ] && grep -qF TELEGRAM_BOT_TOKEN <<<"$out" && pass "bot-api exits 2 without TELEGRAM_BOT_TOKEN" \
  || fail "bot-api without a token: exit $rc: $out"
rc=0; docker run --rm --network none -e MIGRATE_WAIT_SECONDS=2 \
  -e DATABASE_URL=postgresql://u:p@db:5432/d onevm/migrate:v1 >/dev/null 2>&1 || rc=$?
[ "$rc" = 3 ] && pass "migrate exits 3 when the database never answers" || fail "migrate without a database: exit $rc"

# --- v1 ------------------------------------------------------------------------------
t0=$SECONDS
if up v1 && wait_health bot-api healthy 90; then
  pass "v1 healthy $((SECONDS - t0)) s after compose up (cold volume: initdb + migrate)"
else
  fail "v1 did not come up"; cat "$work/up.log" >&2; dc logs --tail=40 >&2 || true
fi
[ "$(migrate_exit)" = 0 ] && pass "v1 migrate exited 0" || fail "v1 migrate exit $(migrate_exit)"
"$here/smoke.sh" --expect-release v1 "$base" || fail "smoke v1"
if dc logs bot-api --tail=50 2>/dev/null | grep -F '"event": "startup"' | grep -qF '"release": "v1"'; then
  pass 'startup log line ("event": "startup", release v1) within logs --tail=50'
else
  fail "no startup log line"
fi
if dc logs 2>/dev/null | grep -qF -e "$token" -e "$pg_password"; then fail "a secret appears in the logs"
else pass "no secret value in any log"; fi
for pair in "TELEGRAM_BOT_TOKEN:$token" "POSTGRES_PASSWORD:$pg_password"; do
  name=${pair%%:*} value=${pair#*:}
  got=$(curl -fsS "$base/env-check?name=$name" | jq -r .sha256)
  [ "$got" = "$(sha "$value")" ] && pass "$name arrives byte for byte (sha256)" || fail "$name differs in the container"
done
curl -fsS -X POST -H 'Content-Type: application/json' \
  -d '{"client_id":"keeper","slot":"2030-01-01T10:00:00Z"}' "$base/bookings" >/dev/null \
  && pass "kept booking created under v1" || fail "could not create the kept booking"
rc=0; docker run --rm --network "${project}_default" -e MIGRATE_WAIT_SECONDS=30 \
  -e DATABASE_URL=postgresql://bot:wrong@postgres:5432/bot onevm/migrate:v1 >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] && pass "migrate exits 2 at once on a wrong password" || fail "migrate with a wrong password: exit $rc"
[ "$(psql_c 'SELECT version_num FROM alembic_version')" = 0001_bookings ] \
  && pass "schema at 0001_bookings" || fail "schema not at 0001"
t=$SECONDS; dc stop postgres >/dev/null 2>&1; dc start postgres >/dev/null 2>&1
log INFO "postgres stop+start took $((SECONDS - t)) s (SIGINT fast shutdown)"
wait_health postgres healthy 60 || fail "postgres not healthy after restart"
wait_health bot-api healthy 60 || fail "bot-api not healthy after a postgres restart"

# --- v2: migration applied, data kept --------------------------------------------------
t0=$SECONDS
if up v2 && wait_health bot-api healthy 90; then pass "v2 healthy $((SECONDS - t0)) s after compose up"
else fail "v2 did not come up"; cat "$work/up.log" >&2; fi
[ "$(migrate_exit)" = 0 ] && pass "v2 migrate exited 0" || fail "v2 migrate exit $(migrate_exit)"
[ "$(psql_c 'SELECT version_num FROM alembic_version')" = 0002_booking_note ] \
  && pass "schema at 0002_booking_note" || fail "schema not at 0002"
[ "$(curl -fsS "$base/bookings?client_id=keeper" | jq length)" = 1 ] \
  && pass "v1 booking kept across the switch" || fail "v1 booking lost"
"$here/smoke.sh" --expect-release v2 "$base" || fail "smoke v2"
note=$(curl -fsS -X POST -H 'Content-Type: application/json' \
  -d '{"client_id":"noted","slot":"2030-01-02T10:00:00Z","note":"hello v2"}' "$base/bookings" | jq -r .note)
[ "$note" = "hello v2" ] && pass "v2 stores a booking note" || fail "v2 note -> $note"
sleep 20  # four container healthchecks later the startup line is still in the last 50
dc logs bot-api --tail=50 2>/dev/null | grep -F '"event": "startup"' | grep -qF '"release": "v2"' \
  && pass "v2 startup line still within logs --tail=50 after 20 s" || fail "v2 startup line not in the last 50 log lines"

# --- back to v1 on the v2 schema --------------------------------------------------------
if up v1 && wait_health bot-api healthy 90; then pass "v1 runs again on the v2 schema"
else fail "rollback to v1 did not come up"; cat "$work/up.log" >&2; fi
[ "$(migrate_exit)" = 0 ] && pass "v1 migrate exits 0 on a newer schema" || fail "v1 migrate on newer schema exit $(migrate_exit)"
dc logs migrate 2>/dev/null | grep -qF '"event": "migrate_schema_ahead"' && pass "migrate logged schema ahead" || fail "no schema-ahead log"
"$here/smoke.sh" --expect-release v1 "$base" || fail "smoke v1 after rollback"

# --- broken: migrations fine, app unhealthy ------------------------------------------
if up broken; then pass "broken: compose up returns 0 (migrate ok)"; else fail "broken: compose up failed"; fi
wait_health bot-api unhealthy 90 && pass "broken: bot-api turns unhealthy" || fail "broken: bot-api never unhealthy"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$base/health" || true)
[ "$code" = 500 ] && pass "broken: /health -> 500" || fail "broken: /health -> $code"

# --- badmigrate: migrate exits non-zero, schema unchanged ----------------------------
if up badmigrate; then fail "badmigrate: compose up returned 0"
else pass "badmigrate: compose up fails (migrate did not complete successfully)"; fi
[ "$(migrate_exit)" = 1 ] && pass "badmigrate: migrate exited 1" || fail "badmigrate: migrate exit $(migrate_exit)"
[ "$(psql_c 'SELECT version_num FROM alembic_version')" = 0002_booking_note ] \
  && pass "badmigrate: schema still at 0002" || fail "badmigrate changed alembic_version"
[ "$(psql_c "SELECT count(*) FROM information_schema.columns WHERE table_name='bookings' AND column_name='half_done'")" = 0 ] \
  && pass "badmigrate: its half-done DDL was rolled back" || fail "badmigrate left a column behind"

# --- and v2 again ---------------------------------------------------------------------
if up v2 && wait_health bot-api healthy 90; then pass "v2 healthy again after badmigrate"
else fail "v2 did not come back"; fi
"$here/smoke.sh" --expect-release v2 "$base" || fail "smoke v2 at the end"

if [ "$failures" -gt 0 ]; then log ERROR "$failures check(s) failed"; exit 1; fi
log INFO "all dev-test checks passed"
