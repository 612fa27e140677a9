#!/usr/bin/env bash
# backup.sh: verified pg_dump -Fc of the app's PostgreSQL, with an index and retention.
# shellcheck disable=SC2016  # jq filters and container-side shell code sit in single quotes
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: backup.sh [--type scheduled|pre_deployment|manual] [--min-free-mb N] [--keep N]
                 [--release ID] [--release-dir DIR] [--lock-wait S] [--no-offsite]
                 [--app-dir /opt/APP]
       backup.sh --verify FILE|BACKUP_ID [--release-dir DIR] [--app-dir /opt/APP]

The database is the database role of the release in DIR (default APP_DIR/current):
release.json's database {service, user, name}; --keep and --min-free-mb default to its
settings (backup_keep, backup_min_free_mb), so a backup run by hand honours the stack's
free-space floor too.
Backup: checks free space in APP_DIR/backups, runs `pg_dump -Fc` inside the running
container of the database service (as the role's user, over the container's local
socket: no credential passes through this script), writes
backups/.tmp-PID.dump, verifies it (PGDMP header, `pg_restore --list` lists entries, and
`pg_restore -f /dev/null` reads every data block: a truncated file fails),
then renames it to backups/<APP>_<YYYYmmdd_HHMMSS>_<type>.dump, records it in
backups/backup_index.json, writes LAST_SUCCESS ("<ISO time> <file>") and applies
retention. Prints the backup file path on stdout. When off-host targets are configured
(APP_DIR/shared/offsite, see offsite-copy.sh) a verified scheduled or manual backup is then
copied there; pre_deployment backups stay local (a deploy never waits on the network).
A dump that fails verification is kept as <name>.dump.unverified, recorded with
"verified": false, and LAST_SUCCESS is left alone.

Retention: the newest N backup files (verified or not) are kept, and always the newest
verified one; older ones and their index entries are deleted. Index entries whose file
is gone are dropped. retention_until = created_at + N days (N daily copies).

--verify re-checks an existing backup (path, file name or backup_id) and updates its
index entry (a file with no entry gets one); a corrupt .dump is renamed to
.dump.unverified (and LAST_SUCCESS moved to the newest verified backup).

Options:
  --type T          scheduled | pre_deployment | manual (default manual)
  --min-free-mb N   required free space in MB (default: settings.backup_min_free_mb, else 2048)
  --keep N          backups to keep (default: settings.backup_keep, else 7; at least 1)
  --release ID      artifact_id recorded in the index (default: DIR's release id)
  --release-dir DIR the release whose database role and settings apply (default
                    APP_DIR/current)
  --lock-wait S     seconds to wait for state/backup.lock (default 300)
  --verify X        verify an existing backup instead of taking one
  --no-offsite      do not copy the backup to the off-host targets
  --app-dir DIR     app directory (default: derived from the script's place)
  -h, --help        this help

Exit codes:
  0   backup taken and verified (or --verify: the backup is valid)
  1   pg_dump failed (or no release, no database role, its container not running, or
      another error)
  2   verification failed (file kept as *.unverified, verified:false in the index)
  3   insufficient disk space
  4   lock busy (another backup holds state/backup.lock)
  5   backup taken and verified locally, but its off-host copy failed on a target
      (offsite-copy.sh; details in logs/offsite-copy.log and the index's offsite_copies)
  64  usage error
Log: APP_DIR/logs/backup.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib/backups.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/backups.sh"

read_index() {
  local index="$BACKUPS/backup_index.json"
  if [[ -f "$index" ]]; then
    if jq -e '.backups | type == "array"' "$index" >/dev/null 2>&1; then
      cat -- "$index"
      return 0
    fi
    log WARN "backup_index.json is not valid; keeping it as backup_index.json.corrupt and starting a new index"
    cp -f -- "$index" "$index.corrupt"
  fi
  printf '{"backups":[]}\n'
}

# write_index JQ_FILTER [jq args...]: apply a filter to the index and replace it atomically.
write_index() {
  local filter="$1" current
  shift
  current="$(read_index)"
  jq "$@" "$filter" <<<"$current" | atomic_write "$BACKUPS/backup_index.json" 644 ||
    die 1 "cannot update backup_index.json"
}

write_last_success() {
  local when="$1" file="$2"
  printf '%s %s\n' "$when" "$file" | atomic_write "$BACKUPS/LAST_SUCCESS" 644 ||
    die 1 "cannot write LAST_SUCCESS"
}

size_mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }

apply_retention() {
  local keep="$1" newest_verified="" f i deleted=0
  local files=()
  mapfile -t files < <(find "$BACKUPS" -maxdepth 1 -type f \( -name "${APP}_*.dump" -o -name "${APP}_*.dump.unverified" \) -printf '%f\n' | sort -r)
  for f in ${files[@]+"${files[@]}"}; do
    if [[ "$f" == *.dump ]]; then newest_verified="$f"; break; fi
  done
  log INFO "Cleaning up old backups (keep newest $keep${newest_verified:+, and always $newest_verified})"
  for ((i = keep; i < ${#files[@]}; i++)); do
    f="${files[$i]}"
    [[ "$f" == "$newest_verified" ]] && continue
    rm -f -- "${BACKUPS:?}/$f"
    deleted=$((deleted + 1))
    log INFO "deleted expired backup $f"
  done
  # Drop index entries whose file is gone (deleted above or by hand).
  local present
  present="$(find "$BACKUPS" -maxdepth 1 -type f \( -name '*.dump' -o -name '*.dump.unverified' \) -printf '%p\n' | jq -R . | jq -cs .)"
  write_index '.backups |= map(select(.file_path as $p | any($present[]; . == $p)))' --argjson present "$present"
  log INFO "Deleted $deleted expired backups"
}

# do_verify X DIR: re-check backup X with the database container of the release in DIR.
do_verify() {
  local target="$1" dir="$2" file pg id now newest
  file="$(resolve_backup "$target")" || die 2 "backup not found: $target"
  pg="$(database_container "$dir" 1)"
  id="$(basename -- "$file")"
  id="${id%.unverified}"
  id="${id%.dump}"
  log INFO "Verifying backup $file"
  now="$(iso_now)"
  if verify_dump "$file" "$pg"; then
    if [[ "$file" == *.unverified ]]; then
      mv -T -- "$file" "${file%.unverified}"
      file="${file%.unverified}"
    fi
    write_index '.backups |= map(if .backup_id == $id then .verified = true | .verified_at = $now | .file_path = $file else . end)' \
      --arg id "$id" --arg now "$now" --arg file "$file"
    log INFO "Verification successful: $VERIFY_DETAIL"
    printf '%s\n' "$file"
    return 0
  fi
  log ERROR "Verification failed for $file: $VERIFY_DETAIL"
  if [[ "$file" == *.dump ]]; then
    mv -T -- "$file" "$file.unverified"
    file="$file.unverified"
    log ERROR "kept as $file"
  fi
  # A file placed by hand has no entry yet: record it, so the index says it is unverified.
  write_index 'if any(.backups[]; .backup_id == $id)
    then .backups |= map(if .backup_id == $id then .verified = false | .verified_at = null | .verification_error = $err | .file_path = $file else . end)
    else .backups += [{backup_id: $id, created_at: null, file_path: $file, verified: false, verified_at: null, verification_error: $err}] end' \
    --arg id "$id" --arg err "$VERIFY_DETAIL" --arg file "$file"
  if grep -qF -- " ${file%.unverified}" "$BACKUPS/LAST_SUCCESS" 2>/dev/null; then
    newest="$(read_index | jq -r '[.backups[] | select(.verified == true)] | sort_by(.created_at) | last | "\(.verified_at) \(.file_path)" // empty')"
    if [[ -n "$newest" && "$newest" != "null null" ]]; then
      printf '%s\n' "$newest" | atomic_write "$BACKUPS/LAST_SUCCESS" 644
      log WARN "LAST_SUCCESS now names ${newest#* }"
    else
      rm -f -- "$BACKUPS/LAST_SUCCESS"
      log WARN "no verified backup is left: LAST_SUCCESS removed"
    fi
  fi
  return 2
}

main() {
  local type="manual" min_free="" keep="" release="" dir="" lock_wait=300 verify="" offsite=1
  local free_mb pg tmp err rc stamp name final created_at bytes mb verified_at entry retention_until
  local identity=()
  while (($#)); do
    case "$1" in
      --type) need_value "$@"; type="$2"; shift 2 ;;
      --type=*) type="${1#*=}"; shift ;;
      --min-free-mb) need_value "$@"; min_free="$2"; shift 2 ;;
      --min-free-mb=*) min_free="${1#*=}"; shift ;;
      --keep) need_value "$@"; keep="$2"; shift 2 ;;
      --keep=*) keep="${1#*=}"; shift ;;
      --release) need_value "$@"; release="$2"; shift 2 ;;
      --release=*) release="${1#*=}"; shift ;;
      --release-dir) need_value "$@"; dir="$2"; shift 2 ;;
      --release-dir=*) dir="${1#*=}"; shift ;;
      --lock-wait) need_value "$@"; lock_wait="$2"; shift 2 ;;
      --lock-wait=*) lock_wait="${1#*=}"; shift ;;
      --verify) need_value "$@"; verify="$2"; shift 2 ;;
      --verify=*) verify="${1#*=}"; shift ;;
      --no-offsite) offsite=0; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  case "$type" in scheduled|pre_deployment|manual) ;; *) usage_error "--type must be scheduled, pre_deployment or manual" ;; esac
  [[ "$lock_wait" =~ ^[0-9]+$ ]] || usage_error "--lock-wait must be a number of seconds"
  if [[ -n "$release" ]] && ! valid_release_id "$release"; then usage_error "invalid --release id"; fi
  use_app_dir "$APP_DIR_ARG"
  dir="$(cd -P -- "${dir:-$APP_DIR/current}" 2>/dev/null && pwd)" || dir="${dir:-$APP_DIR/current}"
  min_free="${min_free:-$(rel_setting "$dir" backup_min_free_mb 2048)}"
  keep="${keep:-$(rel_setting "$dir" backup_keep 7)}"
  [[ "$min_free" =~ ^[0-9]+$ ]] || usage_error "--min-free-mb (or settings.backup_min_free_mb) must be a non-negative integer"
  [[ "$keep" =~ ^[1-9][0-9]*$ ]] || usage_error "--keep (or settings.backup_keep) must be a positive integer"
  BACKUPS="$APP_DIR/backups"
  [[ -d "$BACKUPS" && -d "$APP_DIR/state" ]] || die 1 "$BACKUPS or $APP_DIR/state missing (run bootstrap-host.sh first)"
  command -v jq >/dev/null 2>&1 || die 1 "jq is not installed"
  command -v docker >/dev/null 2>&1 || die 1 "docker is not installed"

  take_lock 8 "$APP_DIR/state/backup.lock" "$lock_wait" \
    "pid=$$ script=backup.sh type=${verify:+verify}${verify:-$type} since=$(iso_now)"
  trap remove_tmp_files EXIT
  # Only the lock holder writes temp files: any left over are from a killed run.
  find "$BACKUPS" -maxdepth 1 -name '.tmp-*' -type f -delete

  if [[ -n "$verify" ]]; then
    rc=0
    do_verify "$verify" "$dir" || rc=$?
    exit "$rc"
  fi

  [[ -n "$release" || ! -f "$dir/release.json" ]] || release="$(basename -- "$dir")"
  log INFO "Starting database backup (type: $type)"
  free_mb="$(df -Pm -- "$BACKUPS" | awk 'NR == 2 { print $4 }')"
  log INFO "Available disk space: ${free_mb} MB"
  if [[ "$free_mb" -lt "$min_free" ]]; then
    die 3 "Insufficient disk space: ${free_mb} MB available, ${min_free} MB required"
  fi
  pg="$(database_container "$dir" 1)"
  mapfile -t identity < <(db_identity "$dir")

  tmp="$BACKUPS/.tmp-$$.dump"
  err="$BACKUPS/.tmp-$$.err"
  TMP_FILES+=("$tmp" "$err")
  log INFO "Creating backup with pg_dump -Fc in container ${pg:0:12}"
  rc=0
  # Single quotes: the container's shell falls back to its own POSTGRES_USER / POSTGRES_DB.
  timeout "$PG_TIMEOUT" docker exec "$pg" sh -c \
    'u="${1:-$POSTGRES_USER}"; exec pg_dump -Fc -U "$u" "${2:-${POSTGRES_DB:-$u}}"' sh "${identity[0]:-}" "${identity[1]:-}" \
    >"$tmp" 2>"$err" || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    die 1 "pg_dump failed (exit $rc): $(tail -n 3 -- "$err" | tr '\n' ' ' | head -c 400)"
  fi
  [[ -s "$tmp" ]] || die 1 "pg_dump produced no output"
  sync -- "$tmp"

  created_at="$(iso_now)"
  stamp="$(date -u -d "$created_at" '+%Y%m%d_%H%M%S')"
  name="${APP}_${stamp}_${type}"
  # Two backups in one second: wait for the next second rather than reuse a name.
  while [[ -e "$BACKUPS/$name.dump" || -e "$BACKUPS/$name.dump.unverified" ]]; do
    sleep 1
    created_at="$(iso_now)"
    stamp="$(date -u -d "$created_at" '+%Y%m%d_%H%M%S')"
    name="${APP}_${stamp}_${type}"
  done
  bytes="$(stat -c %s -- "$tmp")"
  mb="$(size_mb "$bytes")"
  log INFO "Backup created: $name.dump ($mb MB)"
  retention_until="$(date -u -d "$created_at + $keep days" '+%Y-%m-%dT%H:%M:%SZ')"
  entry="$(jq -cn --arg id "$name" --arg created "$created_at" --arg type "$type" \
    --argjson mb "$mb" --argjson bytes "$bytes" --arg until "$retention_until" --arg rel "$release" --arg app "$APP" \
    '{backup_id: $id, created_at: $created, backup_type: $type, file_path: null,
      file_size_mb: $mb, file_size_bytes: $bytes, verified: false, verified_at: null,
      retention_until: $until, artifact_id: (if $rel == "" then null else $rel end), app: $app}')"

  log INFO "Verifying backup integrity"
  if ! verify_dump "$tmp" "$pg"; then
    final="$BACKUPS/$name.dump.unverified"
    mv -T -- "$tmp" "$final"
    entry="$(jq -c --arg f "$final" --arg e "$VERIFY_DETAIL" '.file_path = $f | .verification_error = $e' <<<"$entry")"
    write_index '.backups = ([.backups[] | select(.backup_id != $e.backup_id)] + [$e])' --argjson e "$entry"
    die 2 "Verification failed: $VERIFY_DETAIL (kept as $final, verified:false in the index)"
  fi
  verified_at="$(iso_now)"
  log INFO "Verification successful: $VERIFY_DETAIL"
  final="$BACKUPS/$name.dump"
  mv -T -- "$tmp" "$final"
  sync -- "$BACKUPS" 2>/dev/null || true
  entry="$(jq -c --arg f "$final" --arg v "$verified_at" '.file_path = $f | .verified = true | .verified_at = $v' <<<"$entry")"
  write_index '.backups = ([.backups[] | select(.backup_id != $e.backup_id)] + [$e])' --argjson e "$entry"
  write_last_success "$verified_at" "$final"
  apply_retention "$keep"
  log INFO "Backup complete: $final"
  printf '%s\n' "$final"
  if [[ "$offsite" -eq 1 && "$type" != pre_deployment && -f "$APP_DIR/shared/offsite/targets.json" ]]; then
    # The local backup stays verified whatever happens off-host; exit 5 says the copy failed.
    bash "$SCRIPT_DIR/offsite-copy.sh" "$final" --keep "$keep" --lock-held --app-dir "$APP_DIR" >&2 || {
      rc=$?
      [[ "$rc" -eq 5 ]] || log ERROR "offsite-copy.sh exited $rc"
      exit 5
    }
  fi
}

main "$@"
