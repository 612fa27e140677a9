#!/usr/bin/env bash
# offsite-copy.sh: copy one verified backup to the off-host targets, read each copy back
# to verify it, record it in the backup index, and apply the same retention off-host.
# shellcheck disable=SC2016  # jq filters sit in single quotes
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: offsite-copy.sh BACKUP [--keep N] [--lock-held] [--lock-wait S] [--app-dir /opt/APP]
       offsite-copy.sh --fetch BACKUP_ID --from ssh|s3 [--lock-wait S] [--app-dir /opt/APP]

Copy: BACKUP (a path, file name or backup_id of a *verified* .dump in APP_DIR/backups)
goes to every target configured in APP_DIR/shared/offsite/ (written by
install-offsite.sh):
  ssh  sftp to USER@HOST:PORT, host key pinned (ssh_known_hosts, StrictHostKeyChecking=yes),
       key shared/offsite/ssh_key; uploaded as .NAME.part, then renamed to NAME.
  s3   HTTPS PUT to ENDPOINT/BUCKET/PREFIX+NAME, AWS SigV4 signed by curl (payload
       sha256 signed too, so the server rejects a damaged upload), whose
       credentials come from shared/offsite/s3.curlrc (curl -K): never on a command line.
Each copy is then downloaded again and its size and sha256 compared with the local file.
The backup's entry in backups/backup_index.json gets "offsite_copies": one object per
target {target, location, size_bytes, sha256, copied_at, verified, error}. Retention
then keeps the newest N APP_*.dump backups on each target (files of other names are
never touched). A failing target does not stop the others; the local backup is never
changed.

--fetch downloads BACKUP_ID.dump back from one target into APP_DIR/backups (for a
restore after the VM lost its backups), compares its sha256 with the index entry when
there is one, and prints its path; check it with `backup.sh --verify BACKUP_ID`.

Options:
  --keep N          backups kept on each target (default: the current release's
                    settings.backup_keep, else 7; at least 1)
  --lock-held       the caller (backup.sh) already holds state/backup.lock
  --lock-wait S     seconds to wait for state/backup.lock (default 300)
  --fetch ID        fetch a backup back instead of copying one
  --from T          --fetch: the target to fetch from, ssh or s3
  --app-dir DIR     app directory (default: derived from the script's place)
  -h, --help        this help

Exit codes:
  0   every configured target holds a verified copy (--fetch: fetched and checked)
  1   error (no target configured, backup not found, index or config unreadable)
  2   the backup is not verified locally: nothing copied
  4   lock busy (state/backup.lock)
  5   a copy failed or did not verify on at least one target (logged per target)
  64  usage error
Log: APP_DIR/logs/offsite-copy.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib/backups.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/backups.sh"

NET_TIMEOUT=3600

# The off-host names backup.sh gives: APP_YYYYmmdd_HHMMSS_TYPE.dump. Nothing else is deleted.
backup_name_re() { printf '^%s_[0-9]{8}_[0-9]{6}_(scheduled|pre_deployment|manual)\\.dump$' "$APP"; }

target_field() { jq -r --arg t "$1" --arg f "$2" '.[$t][$f] // empty' "$CONF/targets.json"; }

# --- ssh (sftp) -----------------------------------------------------------------------

SFTP_OPTS=()
ssh_setup() {
  local host port user
  host="$(target_field ssh host)"
  port="$(target_field ssh port)"
  user="$(target_field ssh user)"
  SSH_DIR="$(target_field ssh path)"
  [[ -n "$host" && -n "$port" && -n "$user" && -n "$SSH_DIR" ]] || return 1
  [[ -f "$CONF/ssh_key" && -f "$CONF/ssh_known_hosts" ]] || return 1
  SSH_DEST="$user@$host"
  SSH_LOCATION="sftp://$user@$host:$port/${SSH_DIR#/}"
  [[ "$SSH_DIR" == /* ]] && SSH_LOCATION="sftp://$user@$host:$port$SSH_DIR"
  SFTP_OPTS=(-b - -P "$port" -i "$CONF/ssh_key"
    -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes
    -o "UserKnownHostsFile=$CONF/ssh_known_hosts" -o GlobalKnownHostsFile=/dev/null
    -o ConnectTimeout=15 -o ServerAliveInterval=15 -o LogLevel=ERROR)
}

# sftp_batch < commands: one sftp session; a failing command (not prefixed '-') fails it.
sftp_batch() { timeout "$NET_TIMEOUT" sftp "${SFTP_OPTS[@]}" "$SSH_DEST"; }

ssh_put() {
  local file="$1" name="$2" dir="" part
  {
    # sftp's mkdir makes one level: create each one ('-': an existing one is fine).
    for part in ${SSH_DIR//\// }; do
      dir="${dir:+$dir/}$part"
      [[ "$SSH_DIR" == /* && "$dir" != /* ]] && dir="/$dir"
      printf -- '-mkdir "%s"\n' "$dir"
    done
    printf 'put "%s" "%s/.%s.part"\nrename "%s/.%s.part" "%s/%s"\n' \
      "$file" "$SSH_DIR" "$name" "$SSH_DIR" "$name" "$SSH_DIR" "$name"
  } | sftp_batch >/dev/null
}
ssh_get() { printf 'get "%s/%s" "%s"\n' "$SSH_DIR" "$1" "$2" | sftp_batch >/dev/null; }
ssh_list() {
  printf 'ls -1 "%s"\n' "$SSH_DIR" | sftp_batch | grep -v '^sftp>' | sed 's#.*/##'
}
ssh_delete() { printf 'rm "%s/%s"\n' "$SSH_DIR" "$1" | sftp_batch >/dev/null; }

# --- s3 (curl, SigV4) -----------------------------------------------------------------

s3_setup() {
  local endpoint bucket
  endpoint="$(target_field s3 endpoint)"
  bucket="$(target_field s3 bucket)"
  S3_PREFIX="$(target_field s3 prefix)"
  [[ -n "$endpoint" && -n "$bucket" && -f "$CONF/s3.curlrc" ]] || return 1
  S3_BUCKET_URL="${endpoint%/}/$bucket"
  S3_LOCATION="s3://$bucket/$S3_PREFIX"
}
s3_curl() {
  timeout "$NET_TIMEOUT" curl -sS --fail --connect-timeout 15 --max-time "$NET_TIMEOUT" \
    -K "$CONF/s3.curlrc" "$@"
}
# PUT FILE NAME SHA256: the signed payload hash lets the server reject a body damaged in transit.
s3_put() { s3_curl -o /dev/null -H "x-amz-content-sha256: $3" -T "$1" "$S3_BUCKET_URL/$S3_PREFIX$2"; }
s3_get() { s3_curl -o "$2" "$S3_BUCKET_URL/$S3_PREFIX$1"; }
s3_list() {
  local encoded
  encoded="$(jq -rn --arg p "$S3_PREFIX" '$p | @uri')"
  s3_curl "$S3_BUCKET_URL?list-type=2&prefix=$encoded" |
    grep -o '<Key>[^<]*</Key>' | sed -e 's#^<Key>##' -e 's#</Key>$##' -e "s#^$S3_PREFIX##"
}
s3_delete() { s3_curl -o /dev/null -X DELETE "$S3_BUCKET_URL/$S3_PREFIX$1"; }

# --- shared ---------------------------------------------------------------------------

configured_targets() {
  [[ -f "$CONF/targets.json" ]] || return 0
  jq -r 'keys[] | select(. == "ssh" or . == "s3")' "$CONF/targets.json"
}

setup_target() {
  case "$1" in
    ssh) ssh_setup ;;
    s3) s3_setup ;;
    *) return 1 ;;
  esac
}
location_of() { if [[ "$1" == ssh ]]; then printf '%s/%s' "$SSH_LOCATION" "$2"; else printf '%s%s' "$S3_LOCATION" "$2"; fi; }

# capture ERRFILE CMD...: run CMD with stderr to ERRFILE; on failure print its last lines.
ERR_TEXT=""
capture() {
  local errfile="$1"
  shift
  ERR_TEXT=""
  if "$@" 2>"$errfile"; then return 0; fi
  ERR_TEXT="$(tail -n 3 -- "$errfile" | tr '\n' ' ' | head -c 300)"
  return 1
}

record_copy() {
  local id="$1" copy="$2" index="$BACKUPS/backup_index.json"
  [[ -f "$index" ]] || return 0
  jq --arg id "$id" --argjson c "$copy" \
    '.backups |= map(if .backup_id == $id then .offsite_copies = ([(.offsite_copies // [])[] | select(.target != $c.target)] + [$c]) else . end)' \
    "$index" | atomic_write "$index" 644 || die 1 "cannot update backup_index.json"
}

# apply_remote_retention TARGET KEEP: delete all but the newest KEEP backups of this app.
apply_remote_retention() {
  local t="$1" keep="$2" names=() i re
  re="$(backup_name_re)"
  if ! mapfile -t names < <("${t}_list" 2>>"$WORK_ERR" | grep -E "$re" | sort -r); then
    log WARN "[$t] cannot list backups for retention"
    return 0
  fi
  for ((i = keep; i < ${#names[@]}; i++)); do
    if "${t}_delete" "${names[$i]}" 2>>"$WORK_ERR"; then
      log INFO "[$t] deleted expired off-host backup ${names[$i]}"
    else
      log WARN "[$t] could not delete expired off-host backup ${names[$i]}"
    fi
  done
}

# copy_to TARGET FILE: upload, read back and compare, record; 0 when the copy verified.
copy_to() {
  local t="$1" file="$2" name id sum size back back_sum back_size location copy now
  name="$(basename -- "$file")"
  id="${name%.dump}"
  sum="$(sha256sum -- "$file" | cut -d' ' -f1)"
  size="$(stat -c %s -- "$file")"
  now="$(iso_now)"
  if ! setup_target "$t"; then
    ERR_TEXT="incomplete configuration in $CONF"
  else
    location="$(location_of "$t" "$name")"
    log INFO "[$t] copying $name ($size bytes) to $location"
    back="$BACKUPS/.offsite-check-$$.dump"
    TMP_FILES+=("$back")
    rm -f -- "$back"
    if capture "$WORK_ERR" "${t}_put" "$file" "$name" "$sum" && capture "$WORK_ERR" "${t}_get" "$name" "$back"; then
      back_sum="$(sha256sum -- "$back" | cut -d' ' -f1)"
      back_size="$(stat -c %s -- "$back")"
      rm -f -- "$back"
      if [[ "$back_sum" == "$sum" && "$back_size" == "$size" ]]; then
        copy="$(jq -cn --arg t "$t" --arg l "$location" --argjson s "$size" --arg h "$sum" --arg at "$now" \
          '{target: $t, location: $l, size_bytes: $s, sha256: $h, copied_at: $at, verified: true, error: null}')"
        record_copy "$id" "$copy"
        log INFO "[$t] verified copy at $location (sha256 $sum)"
        return 0
      fi
      ERR_TEXT="the copy read back differs: $back_size bytes sha256 $back_sum, want $size bytes sha256 $sum"
    fi
  fi
  log ERROR "[$t] off-host copy of $name failed: $ERR_TEXT"
  copy="$(jq -cn --arg t "$t" --arg l "${location:-}" --argjson s "$size" --arg h "$sum" --arg at "$now" --arg e "$ERR_TEXT" \
    '{target: $t, location: $l, size_bytes: $s, sha256: $h, copied_at: $at, verified: false, error: $e}')"
  record_copy "$id" "$copy"
  return 1
}

do_copy() {
  local target="$1" keep="$2" file id verified t failed=0 targets=()
  mapfile -t targets < <(configured_targets)
  [[ ${#targets[@]} -gt 0 ]] || die 1 "no off-host target is configured ($CONF/targets.json)"
  file="$(resolve_backup "$target" "$BACKUPS")" || die 1 "backup not found: $target"
  [[ "$file" == "$BACKUPS/"*.dump ]] || die 2 "$file is not a verified backup (*.dump in $BACKUPS): nothing copied"
  id="$(basename -- "$file" .dump)"
  verified="$(jq -r --arg id "$id" '[.backups[]? | select(.backup_id == $id)][0].verified // false' "$BACKUPS/backup_index.json" 2>/dev/null || echo false)"
  [[ "$verified" == "true" ]] || die 2 "$id is not recorded as verified in backup_index.json: nothing copied"
  for t in "${targets[@]}"; do
    if copy_to "$t" "$file"; then
      apply_remote_retention "$t" "$keep"
    else
      failed=$((failed + 1))
    fi
  done
  if [[ "$failed" -gt 0 ]]; then
    die 5 "$failed of ${#targets[@]} off-host copies of $id failed (the local backup is unchanged)"
  fi
  log INFO "$id copied to ${#targets[@]} off-host target(s): ${targets[*]}"
}

do_fetch() {
  local id="$1" t="$2" name dest part want got
  id="${id%.dump}"
  [[ "$id.dump" =~ $(backup_name_re) ]] || die 1 "not a backup id of $APP: $id"
  name="$id.dump"
  dest="$BACKUPS/$name"
  [[ ! -e "$dest" && ! -e "$dest.unverified" ]] || die 1 "$dest already exists: nothing fetched"
  setup_target "$t" || die 1 "target $t is not configured in $CONF"
  part="$BACKUPS/.offsite-fetch-$$.dump"
  TMP_FILES+=("$part")
  log INFO "[$t] fetching $(location_of "$t" "$name")"
  capture "$WORK_ERR" "${t}_get" "$name" "$part" || die 5 "[$t] fetch of $name failed: $ERR_TEXT"
  got="$(sha256sum -- "$part" | cut -d' ' -f1)"
  want="$(jq -r --arg id "$id" --arg t "$t" '[.backups[]? | select(.backup_id == $id) | .offsite_copies[]? | select(.target == $t and .verified) | .sha256][0] // empty' "$BACKUPS/backup_index.json" 2>/dev/null || true)"
  if [[ -n "$want" && "$want" != "$got" ]]; then
    die 5 "[$t] fetched $name has sha256 $got, the index recorded $want: discarded"
  fi
  mv -T -- "$part" "$dest"
  log INFO "[$t] fetched $dest (sha256 $got${want:+, matches the index}); check it with backup.sh --verify $id"
  printf '%s\n' "$dest"
}

main() {
  local keep="" lock_held=0 lock_wait=300 fetch="" from="" backup=""
  while (($#)); do
    case "$1" in
      --keep) need_value "$@"; keep="$2"; shift 2 ;;
      --keep=*) keep="${1#*=}"; shift ;;
      --lock-held) lock_held=1; shift ;;
      --lock-wait) need_value "$@"; lock_wait="$2"; shift 2 ;;
      --lock-wait=*) lock_wait="${1#*=}"; shift ;;
      --fetch) need_value "$@"; fetch="$2"; shift 2 ;;
      --fetch=*) fetch="${1#*=}"; shift ;;
      --from) need_value "$@"; from="$2"; shift 2 ;;
      --from=*) from="${1#*=}"; shift ;;
      -*) common_option "$@"; shift "$ARGS_USED" ;;
      *) [[ -z "$backup" ]] || usage_error "one backup at a time"; backup="$1"; shift ;;
    esac
  done
  [[ "$lock_wait" =~ ^[0-9]+$ ]] || usage_error "--lock-wait must be a number of seconds"
  if [[ -n "$fetch" ]]; then
    [[ -z "$backup" ]] || usage_error "--fetch takes no BACKUP argument"
    [[ "$from" == ssh || "$from" == s3 ]] || usage_error "--fetch needs --from ssh or --from s3"
  else
    [[ -n "$backup" ]] || usage_error "name the backup to copy"
  fi
  use_app_dir "$APP_DIR_ARG"
  keep="${keep:-$(rel_setting "$APP_DIR/current" backup_keep 7)}"
  [[ "$keep" =~ ^[1-9][0-9]*$ ]] || usage_error "--keep (or settings.backup_keep) must be a positive integer"
  BACKUPS="$APP_DIR/backups"
  CONF="$APP_DIR/shared/offsite"
  [[ -d "$BACKUPS" && -d "$APP_DIR/state" ]] || die 1 "$BACKUPS or $APP_DIR/state missing (run bootstrap-host.sh first)"
  command -v jq >/dev/null 2>&1 || die 1 "jq is not installed"

  if [[ "$lock_held" -eq 0 ]]; then
    take_lock 8 "$APP_DIR/state/backup.lock" "$lock_wait" "pid=$$ script=offsite-copy.sh since=$(iso_now)"
  fi
  trap remove_tmp_files EXIT
  umask 077
  WORK_ERR="$(mktemp -- "$BACKUPS/.offsite-err-XXXXXX")"
  TMP_FILES+=("$WORK_ERR")
  if [[ -n "$fetch" ]]; then
    do_fetch "$fetch" "$from"
  else
    do_copy "$backup" "$keep"
  fi
}

main "$@"
