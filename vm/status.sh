#!/usr/bin/env bash
# status.sh: one JSON object saying how the app on this VM is: releases, services, backups, disk, locks.
# shellcheck disable=SC2016  # jq programs sit in single quotes
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: status.sh [--app-dir /opt/APP]

Prints one JSON object on stdout, read by `npm run onevm -- status|releases`:
  app, current, previous        the running release and the one before it (state/previous)
  releases                      [{id, installed_at, current, previous}]: every installed
                                release (releases/<id> with COMPLETE), which can be rolled back to
  overall_status, services      one attempt of the current release's health gate
                                (health-check.sh --retries 1 --json): each service's status,
                                role, state, health; "none" without a current release
  backup                        {last, file, age_s} from backups/LAST_SUCCESS (nulls: none yet)
  disk                          {path, free_mb} of the backups' file system
  locks                         {deploy: the holder of state/deploy.lock or null,
                                 operator: state/operator.lock {by, message, since} or null}
It changes nothing.

Options:
  --app-dir DIR   app directory (default: derived from the script's place)
  -h, --help      this help

Exit codes:
  0   the current release is healthy
  1   it is not (or there is none); the JSON says why
  64  usage error
Log: APP_DIR/logs/status.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

# releases_json CURRENT PREVIOUS: the installed releases as a JSON array.
releases_json() {
  local current="$1" previous="$2" dir id at
  for dir in "$APP_DIR"/releases/*/; do
    id="$(basename -- "$dir")"
    installed "$id" || continue
    at="$(sed -n 's/^installed_at=//p' "$dir/COMPLETE" 2>/dev/null | head -n 1)"
    jq -cn --arg id "$id" --arg at "$at" --arg current "$current" --arg previous "$previous" \
      '{id: $id, installed_at: (if $at == "" then null else $at end), current: ($id == $current), previous: ($id == $previous)}'
  done | jq -cs 'sort_by(.installed_at)'
}

# deploy_lock_holder: who holds state/deploy.lock ("" when free). Tries it without waiting.
deploy_lock_holder() {
  local file="$APP_DIR/state/deploy.lock"
  [[ -f "$file" ]] || return 0
  exec 7<"$file"
  if flock -n -s 7; then
    exec 7<&-
    return 0
  fi
  exec 7<&-
  lock_holder "$file"
}

main() {
  local current previous health='{"overall_status":"none","services":{}}' rc=1 last="" free_mb lock operator
  while (($#)); do
    case "$1" in
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  use_app_dir "$APP_DIR_ARG"
  current="$(current_release)"
  previous="$(cat -- "$APP_DIR/state/previous" 2>/dev/null || true)"
  if [[ -n "$current" ]]; then
    rc=0
    health="$(bash "$SCRIPT_DIR/health-check.sh" --app-dir "$APP_DIR" --retries 1 --json 2>/dev/null)" || rc=1
  fi
  last="$(cat -- "$APP_DIR/backups/LAST_SUCCESS" 2>/dev/null || true)"
  free_mb="$(df -Pm -- "$APP_DIR/backups" 2>/dev/null | awk 'NR == 2 { print $4 }')"
  lock="$(deploy_lock_holder)"
  operator="$(cat -- "$(operator_lock_file)" 2>/dev/null || true)"
  jq -n --arg app "$APP" --arg current "$current" --arg previous "$previous" \
    --argjson releases "$(releases_json "$current" "$previous")" --argjson health "$health" \
    --arg last "$last" --argjson now "$(date +%s)" --arg path "$APP_DIR/backups" --arg free "${free_mb:-0}" \
    --arg lock "$lock" --arg operator "$operator" \
    'def n: if . == "" then null else . end;
     ($last | split(" ")) as $l
     | {app: $app, current: ($current | n), previous: ($previous | n), releases: $releases,
        overall_status: $health.overall_status, services: ($health.services // {}),
        backup: {last: ($l[0] // "" | n), file: ($l[1] // "" | n),
                 age_s: (if ($l[0] // "") == "" then null else ($now - ($l[0] | fromdateiso8601)) end)},
        disk: {path: $path, free_mb: ($free | tonumber)},
        locks: {deploy: ($lock | n), operator: (if $operator == "" then null else ($operator | fromjson) end)}}'
  return "$rc"
}

main "$@"
