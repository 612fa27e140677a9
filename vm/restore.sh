#!/usr/bin/env bash
# restore.sh: restore the database role's PostgreSQL from a verified backup (explicit operator command only).
# shellcheck disable=SC2016  # container-side shell code sits in single quotes
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: restore.sh --backup FILE|BACKUP_ID [--app-dir /opt/APP] [--lock-wait S]
                  [--min-free-mb N] [--yes]

Restores the database of the current release's database role (release.json database
{service, user, name}) from a backup taken by backup.sh:
 1. takes state/deploy.lock (never overlaps an activation)
 2. verifies the backup (PGDMP header, `pg_restore --list` non-empty, a full read of every
    data block); refuses a backup the index marks verified:false, a *.dump.unverified file,
    or a corrupt/truncated file, before anything is stopped
 3. takes a safety backup (backup.sh --type manual --no-offsite: local only)
 4. stops every service of the release except the database role's and the proxy's
 5. pg_restore --clean --if-exists --single-transaction inside the database container,
    reading the dump on stdin
 6. verifies: lists the public tables and logs their row counts
 7. runs the release's migrate role once (a backup from an older release gets the running
    schema; as activate.sh does: its dependencies `up -d --wait`, then `up --no-deps
    --exit-code-from M M`), starts every other service (`up -d`) and runs the health gate
    (health-check.sh)
It never runs by itself. Without --yes it asks for confirmation on a terminal.

Options:
  --backup X       backup path, file name or backup_id (required)
  --lock-wait S    seconds to wait for state/deploy.lock (default 300)
  --min-free-mb N  free space the safety backup requires (default: backup.sh's, i.e. the
                   release's settings.backup_min_free_mb)
  --yes            do not ask for confirmation
  --app-dir DIR    app directory (default: derived from the script's place)
  -h, --help       this help

Exit codes:
  0   restored, verified and healthy
  1   restore failed (pg_restore, safety backup, verification, restart or health gate)
  2   backup not found, corrupt, truncated or marked verified:false
  3   database connection failed (no current release, no database role, its container
      not running or PostgreSQL not ready)
  4   lock busy (state/deploy.lock held by an activation or another restore)
  64  usage error
Log: APP_DIR/logs/restore.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib/backups.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/backups.sh"

# psql_in CONTAINER USER DB SQL: one psql -At query in the database container.
psql_in() {
  timeout 120 docker exec "$1" sh -c 'u="${1:-$POSTGRES_USER}"; exec psql -U "$u" -d "${2:-${POSTGRES_DB:-$u}}" -At -c "$3"' sh "$2" "$3" "$4"
}

main() {
  local backup="" lock_wait=300 yes=0 min_free="" dir file id verified db answer safety t tables counts m
  local identity=() floor=() stop=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --backup) need_value "$@"; backup="$2"; shift 2 ;;
      --backup=*) backup="${1#*=}"; shift ;;
      --lock-wait) need_value "$@"; lock_wait="$2"; shift 2 ;;
      --lock-wait=*) lock_wait="${1#*=}"; shift ;;
      --min-free-mb) need_value "$@"; min_free="$2"; shift 2 ;;
      --min-free-mb=*) min_free="${1#*=}"; shift ;;
      --yes) yes=1; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  [[ -n "$backup" ]] || usage_error "--backup is required"
  [[ "$lock_wait" =~ ^[0-9]+$ ]] || usage_error "--lock-wait must be a number"
  [[ -z "$min_free" || "$min_free" =~ ^[0-9]+$ ]] || usage_error "--min-free-mb must be a number of MB"
  use_app_dir "$APP_DIR_ARG"
  command -v docker >/dev/null 2>&1 || die 1 "docker is not installed"

  take_lock 9 "$APP_DIR/state/deploy.lock" "$lock_wait" "restore pid=$$ backup=$backup started=$(iso_now)"

  file="$(resolve_backup "$backup")" || die 2 "backup not found: $backup"
  [[ "$file" != *.unverified ]] || die 2 "backup is marked unverified: $file"
  id="$(basename -- "$file" .dump)"
  if [[ -f "$APP_DIR/backups/backup_index.json" ]]; then
    verified="$(jq -r --arg id "$id" '[.backups[] | select(.backup_id == $id)] | first | if . == null then "missing" else (.verified | tostring) end' "$APP_DIR/backups/backup_index.json" 2>/dev/null || echo missing)"
    [[ "$verified" != "false" ]] || die 2 "backup_index.json marks $id verified:false; refusing"
  fi

  dir="$(current_dir)"
  [[ -n "$dir" ]] || die 3 "no current release: nothing to restore into"
  db="$(database_container "$dir" 3)"
  mapfile -t identity < <(db_identity "$dir")
  timeout 30 docker exec "$db" sh -c 'u="${1:-$POSTGRES_USER}"; pg_isready -q -U "$u" -d "${2:-${POSTGRES_DB:-$u}}"' sh "${identity[0]:-}" "${identity[1]:-}" ||
    die 3 "PostgreSQL in $db is not accepting connections"

  log INFO "verifying $file"
  verify_dump "$file" "$db" || die 2 "backup is corrupt or truncated: $VERIFY_DETAIL: $file"

  if [[ "$yes" -ne 1 ]]; then
    [[ -t 0 ]] || usage_error "not a terminal: pass --yes to confirm the restore"
    read -r -p "Restore $APP from $file (current data is replaced)? [y/N] " answer
    [[ "$answer" == y || "$answer" == Y ]] || die 1 "cancelled"
  fi

  log INFO "taking a safety backup"
  [[ -z "$min_free" ]] || floor=(--min-free-mb "$min_free")
  # Local only: a restore must not wait on (or fail with) an off-host target.
  safety="$(bash "$SCRIPT_DIR/backup.sh" --app-dir "$APP_DIR" --release-dir "$dir" --type manual --no-offsite ${floor[@]+"${floor[@]}"})" ||
    die 1 "safety backup failed; nothing restored"
  log INFO "safety backup: $safety"

  mapfile -t stop < <(rel_services "$dir" | grep -vxF -e "$(rel_role "$dir" database)" -e "$(rel_role "$dir" proxy)")
  log INFO "stopping ${stop[*]:-nothing} (the database and the proxy keep running)"
  if ((${#stop[@]} > 0)); then
    run_logged compose "$dir" stop "${stop[@]}" || die 1 "cannot stop ${stop[*]}"
  fi

  log INFO "restoring $file"
  if ! timeout "$PG_TIMEOUT" docker exec -i "$db" sh -c \
    'u="${1:-$POSTGRES_USER}"; exec pg_restore -U "$u" -d "${2:-${POSTGRES_DB:-$u}}" --clean --if-exists --single-transaction --no-owner --exit-on-error' \
    sh "${identity[0]:-}" "${identity[1]:-}" <"$file" >&2; then
    log ERROR "pg_restore failed (single transaction: database unchanged); starting the services again"
    up_release "$dir" || true
    exit 1
  fi

  tables="$(psql_in "$db" "${identity[0]:-}" "${identity[1]:-}" \
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")" ||
    die 1 "cannot read tables after restore"
  counts=""
  while IFS= read -r t; do
    [[ -n "$t" ]] || continue
    counts+="$t=$(psql_in "$db" "${identity[0]:-}" "${identity[1]:-}" "SELECT count(*) FROM public.\"$t\"") " ||
      die 1 "cannot count the rows of $t after restore"
  done <<<"$tables"
  [[ -n "$counts" ]] || die 1 "no tables after restore"
  log INFO "row counts: $counts"

  # A backup from an older release is brought up to the running release's schema first.
  m="$(rel_role "$dir" migrate)"
  if [[ -n "$m" ]]; then
    log INFO "running the current release's migrate service $m"
    run_migrate "$dir" || die 1 "migrate ($m) failed on the restored database (safety backup: $safety)"
  fi
  log INFO "starting the services of $(basename -- "$dir")"
  up_release "$dir" || die 1 "cannot start the services"
  if ! bash "$SCRIPT_DIR/health-check.sh" --app-dir "$APP_DIR" --release-dir "$dir" >&2; then
    die 1 "health gate failed after restore (safety backup: $safety)"
  fi
  log INFO "restore of $file done and healthy (safety backup: $safety)"
}

main "$@"
