#!/usr/bin/env bash
# health-check.sh: is the app's compose stack healthy? (HTTP /health, /metrics, compose states)
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: health-check.sh [--retries N] [--interval S] [--json] [--url URL] [--app-dir /opt/APP]

One attempt checks, all at once:
  - GET URL/health answers the JSON body {"status":"ok","service":"bot-api"}
  - GET URL/metrics holds the families bot_api_service_health bot_api_requests_total
    bot_api_request_latency_seconds bot_api_booking_outcomes_total
    bot_api_abuse_outcomes_total
  - `docker compose -p APP ps -a --format json`: migrate exited with code 0; bot-api,
    postgres and redis are running and healthy (APP = basename of the app dir)
Attempts repeat every S seconds until one passes or N attempts were made. A migrate
container that exited non-zero fails at once (it will not recover by waiting).

Options:
  --retries N     attempts (default 30)
  --interval S    seconds between attempts (default 2)
  --url URL       base URL of bot-api (default http://127.0.0.1:8080)
  --json          print the last attempt's result as one JSON object on stdout
  --app-dir DIR   app directory (default: derived from the script's place)
  -h, --help      this help

Exit codes:
  0   healthy
  1   unhealthy: the last attempt got answers and something was wrong
      (wrong /health body, missing metric families, a container not running/healthy,
      migrate exited non-zero)
  2   timeout: after N attempts /health still did not answer at all, or Docker did not
  64  usage error
Log: APP_DIR/logs/health-check.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

readonly FAMILIES=(bot_api_service_health bot_api_requests_total bot_api_request_latency_seconds
  bot_api_booking_outcomes_total bot_api_abuse_outcomes_total)
readonly EXPECTED_HEALTH='{"service":"bot-api","status":"ok"}'

# Results of the last attempt.
HEALTH_OK=false HEALTH_DETAIL="" METRICS_OK=false MISSING_FAMILIES=() SERVICES_JSON='{}'
SERVICES_OK=false ANSWERED=false DEFINITIVE=false

# check_http URL: sets HEALTH_*, METRICS_*, ANSWERED.
check_http() {
  local url="$1" out code body fam metrics rc
  HEALTH_OK=false METRICS_OK=false ANSWERED=false MISSING_FAMILIES=()
  rc=0
  out="$(curl -s --max-time 5 -w '\n%{http_code}' -- "$url/health" 2>/dev/null)" || rc=$?
  if [[ "$rc" -eq 0 ]]; then
    ANSWERED=true
    code="${out##*$'\n'}"
    body="${out%$'\n'*}"
    if [[ "$(jq -cS . <<<"$body" 2>/dev/null || true)" == "$EXPECTED_HEALTH" ]]; then
      HEALTH_OK=true
      HEALTH_DETAIL="HTTP $code $body"
    else
      HEALTH_DETAIL="HTTP $code $(head -c 200 <<<"$body" | tr -d '\n')"
    fi
  else
    case "$rc" in
      7) HEALTH_DETAIL="no answer (connection refused)" ;;
      28) HEALTH_DETAIL="no answer (timed out after 5s)" ;;
      52) HEALTH_DETAIL="no answer (empty reply)" ;;
      56) HEALTH_DETAIL="no answer (connection reset)" ;;
      *) HEALTH_DETAIL="no answer (curl exit $rc)" ;;
    esac
  fi
  if metrics="$(curl -fsS --max-time 5 -- "$url/metrics" 2>/dev/null)"; then
    for fam in "${FAMILIES[@]}"; do
      grep -Eq "^(# (HELP|TYPE) )?${fam}([_{ ]|$)" <<<"$metrics" || MISSING_FAMILIES+=("$fam")
    done
  else
    MISSING_FAMILIES=("${FAMILIES[@]}")
  fi
  if [[ "${#MISSING_FAMILIES[@]}" -eq 0 ]]; then METRICS_OK=true; fi
}

# check_services APP: sets SERVICES_JSON, SERVICES_OK, DEFINITIVE.
check_services() {
  local app="$1" raw
  SERVICES_OK=false DEFINITIVE=false
  # From / so no compose file in the working directory is picked up: project name only.
  if ! raw="$(cd / && timeout 20 docker compose -p "$app" ps -a --format json 2>&1)"; then
    SERVICES_JSON="$(jq -cn --arg e "$(head -c 200 <<<"$raw")" '{"docker":{"ok":false,"detail":$e}}')"
    return 0
  fi
  # Compose prints a JSON array (< 2.21) or one object per line (>= 2.21).
  SERVICES_JSON="$(jq -cs '
    [ .[] | if type == "array" then .[] else . end ] as $all
    | def st($svc): [ $all[] | select(.Service == $svc) ];
      def one($svc; $want):
        st($svc) as $c
        | if ($c | length) == 0 then {ok: false, state: "missing", health: "", exit_code: null}
          else {
            ok: ($c | all(if $want == "exited0" then (.State == "exited" and (.ExitCode | tonumber? // -1) == 0)
                          else (.State == "running" and .Health == "healthy") end)),
            state: ($c | map(.State) | join(",")),
            health: ($c | map(.Health // "") | join(",")),
            exit_code: ($c | map(.ExitCode) | .[0])
          } end;
    {
      "migrate":  one("migrate"; "exited0"),
      "bot-api":  one("bot-api"; "healthy"),
      "postgres": one("postgres"; "healthy"),
      "redis":    one("redis"; "healthy")
    }' <<<"$raw" 2>/dev/null)" || SERVICES_JSON='{"docker":{"ok":false,"detail":"unparsable compose ps output"}}'
  if jq -e 'all(.[]; .ok)' <<<"$SERVICES_JSON" >/dev/null; then SERVICES_OK=true; fi
  if jq -e '.migrate.state == "exited" and .migrate.exit_code != null and (.migrate.exit_code | tonumber? // 0) != 0' \
    <<<"$SERVICES_JSON" >/dev/null 2>&1; then
    DEFINITIVE=true
  fi
}

summary() {
  local parts=()
  [[ "$HEALTH_OK" == true ]] || parts+=("/health: $HEALTH_DETAIL")
  [[ "$METRICS_OK" == true ]] || parts+=("/metrics missing: ${MISSING_FAMILIES[*]}")
  if [[ "$SERVICES_OK" != true ]]; then
    parts+=("$(jq -r '[to_entries[] | select(.value.ok | not)
      | "\(.key)=\(.value.state // "?")\(if (.value.health // "") != "" then "/" + .value.health else "" end)\(if .value.exit_code != null and .value.state == "exited" then "(exit \(.value.exit_code))" else "" end)\(.value.detail // "")"]
      | "services: " + join(" ")' <<<"$SERVICES_JSON")")
  fi
  local out="" p
  for p in ${parts[@]+"${parts[@]}"}; do out="${out:+$out; }$p"; done
  printf '%s' "$out"
}

result_json() {
  local status="$1" attempts="$2" url="$3"
  jq -cn --arg ts "$(iso_now)" --arg status "$status" --argjson attempts "$attempts" --arg url "$url" \
    --argjson hok "$HEALTH_OK" --arg hdet "$HEALTH_DETAIL" --argjson mok "$METRICS_OK" \
    --argjson services "$SERVICES_JSON" --arg summary "$(summary)" \
    '{timestamp: $ts, overall_status: $status, attempts: $attempts, url: $url,
      checks: {health: {ok: $hok, detail: $hdet},
               metrics: {ok: $mok, missing: ($ARGS.positional)},
               services: $services},
      summary: $summary}' --args ${MISSING_FAMILIES[@]+"${MISSING_FAMILIES[@]}"}
}

main() {
  local app_dir="" retries=30 interval=2 url="http://127.0.0.1:8080" json=false app attempt
  local last_summary="" now_summary rc status
  while (($#)); do
    case "$1" in
      --retries) need_value "$@"; retries="$2"; shift 2 ;;
      --retries=*) retries="${1#*=}"; shift ;;
      --interval) need_value "$@"; interval="$2"; shift 2 ;;
      --interval=*) interval="${1#*=}"; shift ;;
      --url) need_value "$@"; url="$2"; shift 2 ;;
      --url=*) url="${1#*=}"; shift ;;
      --json) json=true; shift ;;
      --app-dir) need_value "$@"; app_dir="$2"; shift 2 ;;
      --app-dir=*) app_dir="${1#*=}"; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown argument: $1" ;;
    esac
  done
  [[ "$retries" =~ ^[1-9][0-9]*$ ]] || usage_error "--retries must be a positive integer"
  [[ "$interval" =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "--interval must be a number of seconds"
  [[ "$url" =~ ^https?://[^[:space:]]+$ ]] || usage_error "--url must be an http(s) URL"
  url="${url%/}"
  APP_DIR="$(resolve_app_dir "$app_dir")"
  setup_logging "$APP_DIR"
  app="$(basename -- "$APP_DIR")"
  valid_app_name "$app" || die 1 "app dir name '$app' is not a valid compose project name"
  command -v jq >/dev/null 2>&1 || die 1 "jq is not installed"
  command -v curl >/dev/null 2>&1 || die 1 "curl is not installed"

  log INFO "checking $app health ($url, up to $retries x ${interval}s)"
  rc=2
  attempt=0
  while ((attempt < retries)); do
    attempt=$((attempt + 1))
    check_http "$url"
    check_services "$app"
    if [[ "$HEALTH_OK" == true && "$METRICS_OK" == true && "$SERVICES_OK" == true ]]; then
      rc=0
      break
    fi
    now_summary="$(summary)"
    if [[ "$now_summary" != "$last_summary" || "$attempt" -eq "$retries" || "$DEFINITIVE" == true ]]; then
      log INFO "attempt $attempt/$retries: not healthy yet: $now_summary"
      last_summary="$now_summary"
    fi
    if [[ "$DEFINITIVE" == true ]]; then
      log ERROR "migrate exited non-zero: giving up without waiting"
      break
    fi
    if ((attempt < retries)); then sleep "$interval"; fi
  done
  if [[ "$rc" -ne 0 ]]; then
    if [[ "$ANSWERED" == true || "$DEFINITIVE" == true ]]; then rc=1; fi
    if jq -e 'has("docker")' <<<"$SERVICES_JSON" >/dev/null && [[ "$DEFINITIVE" != true ]]; then rc=2; fi
  fi
  case "$rc" in
    0) status=healthy; log INFO "healthy: /health ok, ${#FAMILIES[@]} metric families, migrate exited 0, bot-api/postgres/redis healthy (attempt $attempt)" ;;
    1) status=unhealthy; log ERROR "unhealthy after $attempt attempt(s): $(summary)" ;;
    *) status=timeout; log ERROR "timeout after $attempt attempt(s): $(summary)" ;;
  esac
  if [[ "$json" == true ]]; then result_json "$status" "$attempt" "$url"; fi
  exit "$rc"
}

main "$@"
