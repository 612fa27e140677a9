#!/usr/bin/env bash
# health-check.sh: the health gate of a release: its web checks and its containers' states.
# shellcheck disable=SC2016  # jq programs sit in single quotes
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: health-check.sh [SERVICE] [--release-dir DIR] [--retries N] [--interval S]
                       [--url BASE] [--json] [--app-dir /opt/APP]

The roles and checks come from DIR/release.json (default: APP_DIR/current). One attempt
checks, all at once:
  - every check of the web role (web.checks[]: path, status, json, contains) answers on
    BASE<path> (BASE default http://127.0.0.1:<web.host_port>) with its status (default
    200), each `json` field equal to the body's (compared as JSON values, nested objects
    as subsets) and each `contains` substring in the body
  - the migrate role's container exited with code 0
  - every other service's containers (release.json `services`) are running, and
    `healthy` when the container has a healthcheck
An app without a web role is gated by its containers alone. With SERVICE only that
service is checked (and the web checks when it is the web role's service).
Attempts repeat every S seconds until one passes or N attempts were made. A migrate
container that exited non-zero fails at once (waiting will not mend it).

Options:
  SERVICE            check only this service of the release
  --release-dir DIR  the release whose roles and checks apply (default APP_DIR/current)
  --retries N        attempts (default: settings.health_retries of the release, else 60)
  --interval S       seconds between attempts (default: settings.health_interval, else 1)
  --url BASE         base URL of the web checks (default http://127.0.0.1:<web.host_port>)
  --json             print the last attempt as one JSON object on stdout: timestamp,
                     release, overall_status (healthy|unhealthy|timeout), attempts, url,
                     services {NAME: {status (healthy|unhealthy), role, state, health,
                     exit_code, containers, checks (web role: [{path, ok, status,
                     response_time_ms, detail}])}}, summary
  --app-dir DIR      app directory (default: derived from the script's place)
  -h, --help         this help

Exit codes:
  0   healthy
  1   unhealthy: the last attempt got answers and something was wrong (a web check
      failed, a container not running/healthy, migrate exited non-zero)
  2   timeout: after N attempts the web checks still got no HTTP answer at all, or
      Docker did not answer
  3   nothing to check: DIR has no release.json, or SERVICE is not a service of it
  64  usage error
Log: APP_DIR/logs/health-check.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/checks.sh"

# service_states SERVICES_JSON ROLES_JSON: one object per service of the compose project's
# containers {ok, status, role, state, health, exit_code, containers}, or {"docker":
# {ok: false, detail}} when Docker does not answer.
service_states() {
  local names="$1" roles="$2" raw
  # From / so no compose file in the working directory is picked up: project name only.
  if ! raw="$(cd / && timeout 20 docker compose -p "$APP" ps -a --format json 2>&1)"; then
    jq -cn --arg e "$(head -c 200 <<<"$raw")" '{docker: {ok: false, status: "unhealthy", detail: $e}}'
    return 0
  fi
  # Compose prints a JSON array (< 2.21) or one object per line (>= 2.21).
  jq -cs --argjson svcs "$names" --argjson roles "$roles" '
    [ .[] | if type == "array" then .[] else . end ] as $all
    | reduce $svcs[] as $s ({}; . + {($s): (
        [ $all[] | select(.Service == $s) ] as $c
        | ($roles[$s] // null) as $role
        | (if ($c | length) == 0 then false
           elif $role == "migrate" then ($c | all(.State == "exited" and ((.ExitCode | tonumber? // -1) == 0)))
           else ($c | all(.State == "running" and ((.Health // "") == "" or .Health == "healthy"))) end) as $ok
        | {ok: $ok, status: (if $ok then "healthy" else "unhealthy" end), role: $role,
           state: (if ($c | length) == 0 then "missing" else ($c | map(.State) | join(",")) end),
           health: ($c | map(.Health // "") | join(",")),
           exit_code: ($c | map(.ExitCode) | .[0]), containers: ($c | length)}
      )})' <<<"$raw" 2>/dev/null || printf '{"docker":{"ok":false,"status":"unhealthy","detail":"unparsable compose ps output"}}\n'
}

# summary STATES_JSON: one line naming what is wrong ("" when nothing is).
summary() {
  jq -r '[ to_entries[] | select(.value.ok | not) | .key as $k | .value
           | if has("detail") then "\($k): \(.detail)"
             else "\($k)=\(.state // "?")\(if (.health // "") != "" then "/" + .health else "" end)\(if .exit_code != null and .state == "exited" then "(exit \(.exit_code))" else "" end)"
                  + ([ (.checks // [])[] | select(.ok | not) | ", \(.path): \(.detail)" ] | join(""))
             end ] | join("; ")' <<<"$1"
}

main() {
  local dir="" retries="" interval="" url="" json=false only="" attempt=0 rc=2
  local web="" roles names states checks now_summary last_summary="" status definitive answered
  while (($#)); do
    case "$1" in
      --release-dir) need_value "$@"; dir="$2"; shift 2 ;;
      --release-dir=*) dir="${1#*=}"; shift ;;
      --retries) need_value "$@"; retries="$2"; shift 2 ;;
      --retries=*) retries="${1#*=}"; shift ;;
      --interval) need_value "$@"; interval="$2"; shift 2 ;;
      --interval=*) interval="${1#*=}"; shift ;;
      --url) need_value "$@"; url="$2"; shift 2 ;;
      --url=*) url="${1#*=}"; shift ;;
      --json) json=true; shift ;;
      -*) common_option "$@"; shift "$ARGS_USED" ;;
      *) [[ -z "$only" ]] || usage_error "one SERVICE at a time"; only="$1"; shift ;;
    esac
  done
  if [[ -n "$url" ]]; then
    [[ "$url" =~ ^https?://[^[:space:]]+$ ]] || usage_error "--url must be an http(s) URL"
  fi
  use_app_dir "$APP_DIR_ARG"
  command -v jq >/dev/null 2>&1 || die 1 "jq is not installed"
  command -v curl >/dev/null 2>&1 || die 1 "curl is not installed"
  dir="${dir:-$APP_DIR/current}"
  dir="$(cd -P -- "$dir" 2>/dev/null && pwd)" || die 3 "no release to check: $dir does not exist"
  [[ -f "$dir/release.json" ]] || die 3 "no release to check: $dir/release.json is missing"
  retries="${retries:-$(rel_setting "$dir" health_retries 60)}"
  interval="${interval:-$(rel_setting "$dir" health_interval 1)}"
  [[ "$retries" =~ ^[1-9][0-9]*$ ]] || usage_error "--retries must be a positive integer"
  [[ "$interval" =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "--interval must be a number of seconds"

  web="$(rel_role "$dir" web)"
  roles="$(jq -c '[ {web: .web.service?, migrate: (.migrate | if type == "object" then .service else . end),
    database: .database.service?, proxy: .proxy.service?} | to_entries[] | select(.value != null)
    | {(.value): .key} ] | add // {}' "$dir/release.json")"
  names="$(rel_services "$dir" | jq -Rsc 'split("\n") | map(select(. != ""))')"
  if [[ -n "$only" ]]; then
    jq -e --arg s "$only" 'index($s) != null' <<<"$names" >/dev/null ||
      die 3 "$only is not a service of release $(basename -- "$dir") (services: $(jq -r 'join(" ")' <<<"$names"))"
    names="$(jq -cn --arg s "$only" '[$s]')"
    [[ "$only" == "$web" ]] || web=""
  fi
  if [[ -n "$web" && -z "$url" ]]; then
    url="http://127.0.0.1:$(rel_get "$dir" '.web.host_port // .web.port')"
  fi
  url="${url%/}"

  log INFO "checking ${only:-$APP} of release $(basename -- "$dir")${web:+ (web checks on $url)}, up to $retries x ${interval}s"
  while ((attempt < retries)); do
    attempt=$((attempt + 1))
    states="$(service_states "$names" "$roles")"
    answered=true
    if [[ -n "$web" ]]; then
      checks="$(web_checks "$dir" "$url")" || true
      jq -e 'length == 0 or any(.[]; .answered)' <<<"$checks" >/dev/null || answered=false
      states="$(jq -c --arg w "$web" --argjson checks "$checks" '
        .[$w] = ((.[$w] // {ok: true, role: "web"}) | .checks = $checks | .ok = (.ok and all($checks[]; .ok))
                 | .status = (if .ok then "healthy" else "unhealthy" end))' <<<"$states")"
    fi
    if jq -e 'all(.[]; .ok)' <<<"$states" >/dev/null; then
      rc=0
      break
    fi
    definitive="$(jq -r '[ .[] | select(.role == "migrate" and .state == "exited" and ((.exit_code | tonumber? // 0) != 0)) ] | length' <<<"$states")"
    now_summary="$(summary "$states")"
    if [[ "$now_summary" != "$last_summary" || "$attempt" -eq "$retries" || "$definitive" != 0 ]]; then
      log INFO "attempt $attempt/$retries: not healthy yet: $now_summary"
      last_summary="$now_summary"
    fi
    if [[ "$definitive" != 0 ]]; then
      log ERROR "the migrate service exited non-zero: giving up without waiting"
      rc=1
      break
    fi
    if ((attempt < retries)); then sleep "$interval"; fi
  done
  if [[ "$rc" -ne 0 ]]; then
    rc=1
    if [[ "$answered" != true ]] || jq -e 'has("docker")' <<<"$states" >/dev/null; then rc=2; fi
  fi
  case "$rc" in
    0) status=healthy; log INFO "healthy: $(jq -r 'keys | join(", ")' <<<"$states")${web:+, web checks passed on $url} (attempt $attempt)" ;;
    1) status=unhealthy; log ERROR "unhealthy after $attempt attempt(s): $(summary "$states")" ;;
    *) status=timeout; log ERROR "timeout after $attempt attempt(s): $(summary "$states")" ;;
  esac
  if [[ "$json" == true ]]; then
    jq -cn --arg ts "$(iso_now)" --arg release "$(basename -- "$dir")" --arg status "$status" \
      --argjson attempts "$attempt" --arg url "$url" --argjson services "$states" --arg summary "$(summary "$states")" \
      '{timestamp: $ts, release: $release, overall_status: $status, attempts: $attempts,
        url: (if $url == "" then null else $url end), services: $services, summary: $summary}'
  fi
  exit "$rc"
}

main "$@"
