#!/usr/bin/env bash
# Runs one example's release lifecycle for real with `docker compose`, inside a sandbox
# VM (scripts/sandbox.sh: this host has no compose), straight from the example's own
# Compose file and test hooks, without onevm:
#   v1 up and healthy, release readable, SQL insert hook -> v2 (migration applied, rows
#   kept) -> v1 again on v2's schema (rollback) -> broken (unhealthy within ~30 s) ->
#   badmigrate (migrate exits non-zero, schema unchanged) -> v2 healthy. Then `down -v`.
# It installs docker.io/docker-cli/docker-compose in the sandbox when missing, builds
# the images (scripts/build-images.sh --all --save) and loads the archives there.
#
# Usage: examples/check.sh [--help] --sandbox NAME [--no-build] [--keep] EXAMPLE
#   --sandbox NAME  a running sandbox (scripts/sandbox.sh up NAME)
#   --no-build      use the archives in build/check-images/EXAMPLE as they are
#   --keep          leave the stack running at the end
# Reads: examples/EXAMPLE/{compose.yaml,stack.yaml,test-hooks.json}.
# Output: one PASS/FAIL line per check on stdout, then 'N passed, N failed'.
# Exit:  0 all passed, 1 a check failed, 2 bad usage, 3 sandbox or build problem.
# `A && pass ... || fail ...` is safe here: pass() always returns 0.
# shellcheck disable=SC2015
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }

sandbox="" build=1 keep=0 ex=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --sandbox) [ $# -ge 2 ] || { usage >&2; exit 2; }; sandbox=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --keep) keep=1; shift ;;
    -*) log ERROR "unknown option: $1"; usage >&2; exit 2 ;;
    *) ex=$1; shift ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/examples/$ex"
[ -n "$sandbox" ] && [ -n "$ex" ] && [ -f "$dir/compose.yaml" ] && [ -f "$dir/test-hooks.json" ] ||
  { usage >&2; exit 2; }
container=onevm-sandbox-$sandbox
[ "$(docker container inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" = true ] ||
  { log ERROR "sandbox $sandbox is not running (scripts/sandbox.sh up $sandbox)"; exit 3; }

vm() { docker exec -i "$container" "$@"; }
hook() { jq -r "$1 // empty" "$dir/test-hooks.json"; }

passed=0 failed=0
pass() { passed=$((passed + 1)); printf 'PASS %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }

# --- the sandbox's Docker and the images -------------------------------------------------
if ! vm docker compose version >/dev/null 2>&1; then
  log INFO "installing docker.io docker-cli docker-compose in $sandbox"
  vm bash -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io docker-cli docker-compose >/dev/null && systemctl start docker' ||
    { log ERROR "cannot install Docker in the sandbox"; exit 3; }
fi

images="$root/build/check-images/$ex"
if [ "$build" = 1 ]; then
  refs=$(bash "$root/scripts/build-images.sh" --example "$ex" --all --save "$images") || exit 3
  mkdir -p "$images" && printf '%s\n' "$refs" >"$images/refs.jsonl"
fi
[ -s "$images/refs.jsonl" ] || { log ERROR "no $images/refs.jsonl: run without --no-build"; exit 3; }
mapfile -t variants < <(node "$root/scripts/compose-plan.js" "$dir/compose.yaml" | sed -n "s/^'variants' //p" | tr -d "'" | tr ' ' '\n')
declare -A refs_of=()
i=0
while IFS= read -r line; do refs_of[${variants[$i]}]=$line; i=$((i + 1)); done <"$images/refs.jsonl"

for tar in "$images"/*.tar; do
  ref=$(tar -xOf "$tar" manifest.json | jq -r '.[0].RepoTags[0]')
  want=$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)
  have=$(vm docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)
  if [ -n "$want" ] && [ "$want" = "$have" ]; then continue; fi
  log INFO "loading $ref into $sandbox"
  vm docker load -q <"$tar" >/dev/null || { log ERROR "docker load of $tar failed"; exit 3; }
done

# --- the app's files, .env and per-release overrides ----------------------------------
stack=$(node -e '
  const y = require(process.argv[1]); const fs = require("fs");
  const c = y.parse(fs.readFileSync(process.argv[2], "utf8")).config;
  const db = c["onevm:database"] || {};
  process.stdout.write(JSON.stringify({ db: db.service || "", user: db.user || "", name: db.name || db.user || "",
    migrate: c["onevm:migrate"] || "", web: c["onevm:web"] || null, secrets: Object.keys(c["onevm:secrets"] || {}) }));
' "$root/node_modules/yaml" "$dir/stack.yaml")
db_service=$(jq -r .db <<<"$stack") db_user=$(jq -r .user <<<"$stack") db_name=$(jq -r .name <<<"$stack")
migrate=$(jq -r .migrate <<<"$stack") web_service=$(jq -r '.web.service // empty' <<<"$stack")
web_port=$(jq -r '.web.port // empty' <<<"$stack")
project=ex-$ex
appdir=/srv/onevm-examples/$ex

vm rm -rf "$appdir"
vm mkdir -p "$appdir"
tar -C "$dir" -c . | vm tar -C "$appdir" -x
pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
{
  printf 'POSTGRES_USER=%s\nPOSTGRES_PASSWORD=%s\nPOSTGRES_DB=%s\n' "$db_user" "$pw" "$db_name"
  printf 'DATABASE_URL=postgresql://%s:%s@%s:5432/%s\n' "$db_user" "$pw" "$db_service" "$db_name"
  for k in $(jq -r '.secrets[]' <<<"$stack"); do printf '%s=%s\n' "$k" "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"; done
} | vm sh -c "umask 077; cat > $appdir/.env"
for r in "${variants[@]}"; do
  jq -r --arg r "$r" 'to_entries | map("  \(.key):\n    image: \(.value)\n    pull_policy: never") | "services:\n" + join("\n")' \
    <<<"${refs_of[$r]}" | vm sh -c "cat > $appdir/release-$r.yaml"
done

dc() { local r=$1; shift; vm docker compose -p "$project" --project-directory "$appdir" -f "$appdir/compose.yaml" -f "$appdir/release-$r.yaml" "$@"; }
cleanup() {
  if [ "$keep" = 0 ]; then dc v1 down -v --remove-orphans >/dev/null 2>&1 || true; vm rm -rf "$appdir" || true
  else log INFO "stack left running in $sandbox: docker compose -p $project --project-directory $appdir ..."; fi
}
trap cleanup EXIT
dc v1 down -v --remove-orphans >/dev/null 2>&1 || true

# shellcheck disable=SC2016 # \$POSTGRES_* expand in the container
psql_db() { vm docker exec -i "$project-$db_service-1" sh -c 'psql -X -qtA -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'; }
sql() { printf '%s\n' "$1" | psql_db; }

web_url() {
  local hp
  hp=$(dc v1 port "$web_service" "$web_port" 2>/dev/null | tail -n 1)
  printf 'http://127.0.0.1:%s' "${hp##*:}"
}

# container_states: "service state health exitcode" per container of the project
container_states() {
  vm sh -c "docker ps -a --filter label=com.docker.compose.project=$project -q | xargs -r docker inspect -f '{{index .Config.Labels \"com.docker.compose.service\"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.State.ExitCode}}'"
}

# healthy_within SECONDS: every service running (healthy where it has a healthcheck), the
# migrate service exited 0, and the web health checks of stack.yaml pass.
healthy_within() {
  local limit=$1 start=$SECONDS ok states
  while :; do
    ok=1
    states=$(container_states)
    while read -r svc state health code; do
      [ -n "$svc" ] || continue
      if [ "$svc" = "$migrate" ]; then [ "$state" = exited ] && [ "$code" = 0 ] || ok=0
      else [ "$state" = running ] && { [ "$health" = - ] || [ "$health" = healthy ]; } || ok=0; fi
    done <<<"$states"
    if [ "$ok" = 1 ] && [ -n "$web_service" ]; then web_ok || ok=0; fi
    if [ "$ok" = 1 ]; then echo $((SECONDS - start)); return 0; fi
    if [ $((SECONDS - start)) -ge "$limit" ]; then printf '%s\n' "$states" >&2; return 1; fi
    sleep 1
  done
}

# web_ok: every onevm:web health check (path, status, json fields, substrings) passes.
web_ok() {
  local base n i path status body code
  base=$(web_url)
  n=$(jq -r '.web.health | if . == null then 1 elif type == "array" then length else 1 end' <<<"$stack")
  for ((i = 0; i < n; i++)); do
    local check
    check=$(jq -c --argjson i "$i" '.web.health | if . == null then {path: "/health"} elif type == "array" then .[$i] else . end' <<<"$stack")
    path=$(jq -r .path <<<"$check") status=$(jq -r '.status // 200' <<<"$check")
    body=$(vm curl -sS -m 5 -o - -w '\n%{http_code}' "$base$path" 2>/dev/null) || return 1
    code=${body##*$'\n'} body=${body%$'\n'*}
    [ "$code" = "$status" ] || return 1
    if jq -e '.json' <<<"$check" >/dev/null; then
      jq -e --argjson want "$(jq -c .json <<<"$check")" '. as $b | $want | to_entries | all(.value == $b[.key])' <<<"$body" >/dev/null 2>&1 || return 1
    fi
    while IFS= read -r s; do [ -z "$s" ] || [[ $body == *"$s"* ]] || return 1; done < <(jq -r '.contains // [] | .[]' <<<"$check")
  done
}

release_is() {
  local want=$1 got="" start=$SECONDS
  while [ $((SECONDS - start)) -lt 30 ]; do
    if [ -n "$(hook .release.http)" ]; then
      got=$(vm curl -fsS -m 5 "$(web_url)$(hook .release.http)" 2>/dev/null | jq -r ".$(hook .release.field)" 2>/dev/null || true)
    else
      got=$(sql "$(hook .release.sql)" 2>/dev/null || true)
    fi
    [ "$got" = "$want" ] && return 0
    sleep 1
  done
  echo "release reads '$got'" >&2
  return 1
}

migrate_exit() { container_states | awk -v m="$migrate" '$1 == m { print $4 }'; }

up() { local r=$1; log INFO "$ex: up $r"; dc "$r" up -d --no-build --remove-orphans >/dev/null 2>&1; }

# --- the lifecycle ---------------------------------------------------------------------
up v1 && t=$(healthy_within 120) && pass "v1 up and healthy (${t}s after up returned)" || fail "v1 up and healthy"
release_is v1 && pass "release reads v1" || fail "release reads v1"
before=$(sql "SELECT count(*) FROM $(hook .table)" || true)
sql "$(hook .insertSql | sed "s/{n}/1/")" && after=$(sql "SELECT count(*) FROM $(hook .table)") && [ "$after" = $((before + 1)) ] &&
  pass "SQL insert hook adds one row to $(hook .table) ($before -> $after)" || fail "SQL insert hook"
rows_v1=$(sql "$(hook .rowsSql)" || true)
schema_v1=$(sql "$(hook .schemaVersionSql)" 2>/dev/null || true)

up v2 && t=$(healthy_within 120) && pass "v2 up and healthy (${t}s)" || fail "v2 up and healthy"
release_is v2 && pass "release reads v2" || fail "release reads v2"
[ "$(sql "$(hook .v2SchemaSql)")" = 1 ] && pass "v2 migration applied (schema ${schema_v1:-none} -> $(sql "$(hook .schemaVersionSql)" | tr '\n' ' '))" || fail "v2 migration applied"
[ "$(sql "$(hook .rowsSql)")" = "$rows_v1" ] && pass "rows kept across v2's migration" || fail "rows kept across v2's migration"
schema_v2=$(sql "$(hook .schemaVersionSql)" 2>/dev/null || true)

up v1 && t=$(healthy_within 120) && pass "v1 runs on v2's schema (rollback, ${t}s)" || fail "v1 runs on v2's schema"
release_is v1 && pass "release reads v1 after the rollback" || fail "release reads v1 after the rollback"
[ -z "$migrate" ] || { [ "$(migrate_exit)" = 0 ] && pass "v1's migrate exits 0 on the newer schema" || fail "v1's migrate exits 0 on the newer schema"; }
[ "$(sql "$(hook .schemaVersionSql)" 2>/dev/null || true)" = "$schema_v2" ] && pass "schema left at v2's version by v1" || fail "schema left at v2's version by v1"

up broken || true
start=$SECONDS unhealthy=""
while [ $((SECONDS - start)) -lt 60 ]; do
  if container_states | awk '$3 == "unhealthy" || ($2 != "running" && $2 != "exited")' | grep -q .; then unhealthy=$((SECONDS - start)); break; fi
  sleep 1
done
[ -n "$unhealthy" ] && [ "$unhealthy" -le 35 ] && pass "broken turns unhealthy ${unhealthy}s after up returned" || fail "broken turns unhealthy within ~30 s (${unhealthy:-never})"
if [ -n "$web_service" ]; then
  web_ok && fail "broken's web health checks fail" || pass "broken's web health checks fail"
fi

if [[ " ${variants[*]} " == *" badmigrate "* ]]; then
  up v2 && healthy_within 120 >/dev/null || fail "back to v2 before badmigrate"
  schema_before=$(sql "$(hook .schemaVersionSql)" || true)
  if up badmigrate; then fail "badmigrate: compose up should fail on the migrate service"; else pass "badmigrate: compose up stops at the migrate service"; fi
  code=$(migrate_exit)
  [ -n "$code" ] && [ "$code" != 0 ] && pass "badmigrate's migrate exits $code" || fail "badmigrate's migrate exits non-zero (got '${code}')"
  [ "$(sql "$(hook .badmigrateSchemaSql)")" = 0 ] && [ "$(sql "$(hook .schemaVersionSql)")" = "$schema_before" ] &&
    pass "badmigrate left the schema unchanged ($schema_before)" || fail "badmigrate left the schema unchanged"
fi

up v2 && t=$(healthy_within 120) && pass "v2 healthy again (${t}s)" || fail "v2 healthy again"
[ "$(sql "$(hook .rowsSql)")" = "$rows_v1" ] && pass "rows intact at the end" || fail "rows intact at the end"

# Stop times: how long each service takes to stop on SIGTERM (switch time matters).
for svc in $(container_states | awk -v m="$migrate" '$2 == "running" && $1 != m { print $1 }'); do
  t0=$(date +%s%N)
  dc v2 stop "$svc" >/dev/null 2>&1
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ "$ms" -lt 5000 ] && pass "$svc stops in ${ms} ms" || fail "$svc stops in ${ms} ms (over 5 s)"
done

printf '%s passed, %s failed\n' "$passed" "$failed"
[ "$failed" = 0 ]
