#!/usr/bin/env bash
# restore.sh: restore the app's PostgreSQL from a verified backup (explicit operator command only).
# shellcheck disable=SC2016  # container-side shell code sits in single quotes
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: restore.sh --backup FILE|BACKUP_ID [--app-dir /opt/APP] [--lock-wait S]
                  [--min-free-mb N] [--yes]

Restores the database of compose project APP from a backup taken by backup.sh:
 1. takes state/deploy.lock (never overlaps an activation)
 2. verifies the backup (PGDMP header, `pg_restore --list` non-empty, a full read of every
    data block); refuses a backup the index marks verified:false, a *.dump.unverified file,
    or a corrupt/truncated file, before anything is stopped
 3. takes a safety backup (backup.sh --type manual --no-offsite: local only)
 4. stops the app service bot-api (postgres keeps running)
 5. pg_restore --clean --if-exists --single-transaction inside the postgres container,
    reading the dump on stdin
 6. verifies: lists the public tables and logs their row counts
 7. runs the current release's migrate (a backup from an older release gets the running
    schema), starts bot-api again and runs the health gate (health-check.sh)
It never runs by itself. Without --yes it asks for confirmation on a terminal.

Options:
  --backup X     backup path, file name or backup_id (required)
  --lock-wait S  seconds to wait for state/deploy.lock (default 300)
  --min-free-mb N  free space the safety backup requires (default 2048)
  --yes          do not ask for confirmation
  --app-dir DIR  app directory (default: derived from the script's place)
  -h, --help     this help

Exit codes:
  0   restored, verified and healthy
  1   restore failed (pg_restore, safety backup, verification, restart or health gate)
  2   backup not found, corrupt, truncated or marked verified:false
  3   database connection failed (no running postgres container / pg not ready)
  4   lock busy (state/deploy.lock held by an activation or another restore)
  64  usage error
Log: APP_DIR/logs/restore.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

PG_TIMEOUT="${PG_TIMEOUT:-600}"
APP_SERVICES=(bot-api)

postgres_container() {
  docker ps -a -q --no-trunc \
    --filter "label=com.docker.compose.project=$1" \
    --filter "label=com.docker.compose.service=postgres" \
    --filter "label=com.docker.compose.oneoff=False" | head -n 1
}

compose() {
  local dir
  dir="$(cd -P -- "$APP_DIR/current" && pwd)" || return 1
  timeout "$PG_TIMEOUT" docker compose -p "$APP" --project-directory "$dir" -f "$dir/compose.yaml" \
    --env-file "$APP_DIR/shared/.env" "$@"
}

main() {
  local backup="" app_dir="" lock_wait=300 yes=0 min_free=2048
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --backup) need_value "$@"; backup="$2"; shift 2 ;;
      --app-dir) need_value "$@"; app_dir="$2"; shift 2 ;;
      --lock-wait) need_value "$@"; lock_wait="$2"; shift 2 ;;
      --min-free-mb) need_value "$@"; min_free="$2"; shift 2 ;;
      --yes) yes=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown argument: $1" ;;
    esac
  done
  [[ -n "$backup" ]] || usage_error "--backup is required"
  [[ "$lock_wait" =~ ^[0-9]+$ ]] || usage_error "--lock-wait must be a number"
  [[ "$min_free" =~ ^[0-9]+$ ]] || usage_error "--min-free-mb must be a number of MB"
  APP_DIR="$(resolve_app_dir "$app_dir")"
  APP="$(basename -- "$APP_DIR")"
  valid_app_name "$APP" || usage_error "not a valid app name: $APP"
  setup_logging "$APP_DIR"
  local backups="$APP_DIR/backups" file id verified pg list
  command -v docker >/dev/null 2>&1 || die 1 "docker is not installed"

  take_lock 9 "$APP_DIR/state/deploy.lock" "$lock_wait" "restore pid=$$ backup=$backup started=$(iso_now)"

  file=""
  for c in "$backup" "$backups/$backup" "$backups/$backup.dump" "$backups/$backup.dump.unverified"; do
    if [[ -f "$c" ]]; then file="$(cd -P -- "$(dirname -- "$c")" && pwd)/$(basename -- "$c")"; break; fi
  done
  [[ -n "$file" ]] || die 2 "backup not found: $backup"
  [[ "$file" != *.unverified ]] || die 2 "backup is marked unverified: $file"
  id="$(basename -- "$file" .dump)"
  if [[ -f "$backups/backup_index.json" ]]; then
    verified="$(jq -r --arg id "$id" '[.backups[] | select(.backup_id == $id)] | first | if . == null then "missing" else (.verified | tostring) end' "$backups/backup_index.json" 2>/dev/null || echo missing)"
    [[ "$verified" != "false" ]] || die 2 "backup_index.json marks $id verified:false; refusing"
  fi

  pg="$(postgres_container "$APP")"
  [[ -n "$pg" && "$(docker inspect -f '{{.State.Running}}' "$pg" 2>/dev/null)" == "true" ]] ||
    die 3 "no running postgres container for compose project $APP"
  timeout 30 docker exec "$pg" sh -c 'pg_isready -q -U "$POSTGRES_USER" -d "$POSTGRES_DB"' ||
    die 3 "postgres in $pg is not accepting connections"

  log INFO "verifying $file"
  [[ "$(head -c 5 -- "$file")" == "PGDMP" ]] || die 2 "backup is corrupt: not a pg_dump custom-format file: $file"
  if ! list="$(timeout "$PG_TIMEOUT" docker exec -i "$pg" pg_restore --list <"$file" 2>&1)" ||
    ! grep -qv '^;' <<<"$list"; then
    die 2 "backup is truncated or corrupt (pg_restore --list fails or lists nothing): $file"
  fi
  # A truncated file can still have a readable TOC: restore it to nowhere to read every block.
  if ! timeout "$PG_TIMEOUT" docker exec -i "$pg" pg_restore -f /dev/null <"$file" >/dev/null 2>&1; then
    die 2 "backup is truncated or corrupt (pg_restore cannot read its data): $file"
  fi

  if [[ "$yes" -ne 1 ]]; then
    [[ -t 0 ]] || usage_error "not a terminal: pass --yes to confirm the restore"
    local answer
    read -r -p "Restore $APP from $file (current data is replaced)? [y/N] " answer
    [[ "$answer" == y || "$answer" == Y ]] || die 1 "cancelled"
  fi

  log INFO "taking a safety backup"
  local safety
  # Local only: a restore must not wait on (or fail with) an off-host target.
  safety="$(bash "$SCRIPT_DIR/backup.sh" --app-dir "$APP_DIR" --type manual --min-free-mb "$min_free" --no-offsite)" ||
    die 1 "safety backup failed; nothing restored"
  log INFO "safety backup: $safety"

  log INFO "stopping ${APP_SERVICES[*]}"
  compose stop "${APP_SERVICES[@]}" >&2 || die 1 "cannot stop ${APP_SERVICES[*]}"

  log INFO "restoring $file"
  if ! timeout "$PG_TIMEOUT" docker exec -i "$pg" sh -c \
    'pg_restore -U "$POSTGRES_USER" -d "$POSTGRES_DB" --clean --if-exists --single-transaction --no-owner --exit-on-error' \
    <"$file" >&2; then
    log ERROR "pg_restore failed (single transaction: database unchanged); restarting ${APP_SERVICES[*]}"
    compose up -d "${APP_SERVICES[@]}" >&2 || true
    exit 1
  fi

  local counts
  counts="$(timeout 120 docker exec "$pg" sh -c 'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -At -c "SELECT table_name FROM information_schema.tables WHERE table_schema = '"'"'public'"'"' ORDER BY 1" | while read -r t; do printf "%s=%s\n" "$t" "$(psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -At -c "SELECT count(*) FROM public.\"$t\"")"; done')" ||
    die 1 "cannot read tables after restore"
  [[ -n "$counts" ]] || die 1 "no tables after restore"
  log INFO "row counts: $(tr '\n' ' ' <<<"$counts")"

  # A backup from an older release is brought up to the running release's schema first.
  log INFO "running the current release's migrate"
  compose run --rm -T migrate >&2 || die 1 "migrate failed on the restored database (safety backup: $safety)"
  log INFO "starting ${APP_SERVICES[*]}"
  compose up -d "${APP_SERVICES[@]}" >&2 || die 1 "cannot start ${APP_SERVICES[*]}"
  if ! bash "$SCRIPT_DIR/health-check.sh" --app-dir "$APP_DIR" >&2; then
    die 1 "health gate failed after restore (safety backup: $safety)"
  fi
  log INFO "restore of $file done and healthy (safety backup: $safety)"
}

main "$@"
