#!/usr/bin/env bash
# prune-releases.sh: delete the oldest release directories beyond N, never one in use.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: prune-releases.sh --keep N [--dry-run] [--lock-wait S] [--app-dir /opt/APP]

Keeps the N newest installed releases (by the mtime of their COMPLETE file) and deletes
older ones. Never deleted, whatever their age: the release current points to, the one
in state/previous, those named by an in-progress activation, and any release that a
container of compose project APP was created from (its working_dir label). Holds
state/deploy.lock while it works, so it never races an activation. A deleted release is
first renamed to releases/.trash-ID-PID, so it never exists half-deleted under its name.
Leftovers of killed uploads (releases/.tmp-ID-PID* whose PID is gone) and .trash-* are
removed too.

Options:
  --keep N        releases to keep (at least 1)
  --dry-run       only report what would be deleted
  --lock-wait S   seconds to wait for state/deploy.lock (default 300)
  --app-dir DIR   app directory (default: derived from the script's place)
  -h, --help      this help

Exit codes:
  0   done (or nothing to do)
  1   error
  4   lock busy (an activation holds state/deploy.lock)
  64  usage error
Log: APP_DIR/logs/prune-releases.log
USAGE
}

# --- common: keep this block identical in every scripts/remote/*.sh (test/remote/lint.sh checks) ---
SCRIPT_NAME="$(basename -- "${BASH_SOURCE[0]}" .sh)"
SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
LOG_FILE=""
EX_USAGE=64

# shellcheck disable=SC2317  # not every script uses every common helper
ts() { date -u '+%Y-%m-%d %H:%M:%S'; }
# shellcheck disable=SC2317  # not every script uses every common helper
iso_now() { date -u '+%Y-%m-%dT%H:%M:%SZ'; }

# log LEVEL MESSAGE...: "[YYYY-MM-DD HH:MM:SS] LEVEL: message" (UTC) to stderr and the log file.
# shellcheck disable=SC2317  # not every script uses every common helper
log() {
  local level="$1" line
  shift
  line="[$(ts)] ${level}: $*"
  printf '%s\n' "$line" >&2
  if [[ -n "$LOG_FILE" ]]; then
    printf '%s\n' "$line" >>"$LOG_FILE" 2>/dev/null || true
  fi
}
# shellcheck disable=SC2317  # not every script uses every common helper
die() {
  local code="$1"
  shift
  log ERROR "$*"
  exit "$code"
}
# shellcheck disable=SC2317  # not every script uses every common helper
usage_error() {
  log ERROR "$*"
  printf 'Try: %s --help\n' "$SCRIPT_NAME.sh" >&2
  exit "$EX_USAGE"
}
# need_value "$@": the option in $1 must be followed by a value.
# shellcheck disable=SC2317  # not every script uses every common helper
need_value() {
  [[ $# -ge 2 && -n "$2" ]] || usage_error "option $1 needs a value"
}

# Default --app-dir: /opt/APP/bin/x.sh -> /opt/APP (also when bin -> tools/<hash>);
# /opt/APP/releases/ID/bin/x.sh -> /opt/APP; /opt/APP/tools/<hash>/x.sh -> /opt/APP.
# shellcheck disable=SC2317  # not every script uses every common helper
default_app_dir() {
  local parent phys
  if [[ "$(basename -- "$SCRIPT_DIR")" == "bin" ]]; then
    parent="$(dirname -- "$SCRIPT_DIR")"
    if [[ "$(basename -- "$(dirname -- "$parent")")" == "releases" ]]; then
      dirname -- "$(dirname -- "$parent")"
    else
      printf '%s\n' "$parent"
    fi
    return 0
  fi
  phys="$(cd -P -- "$SCRIPT_DIR" && pwd)"
  if [[ "$(basename -- "$(dirname -- "$phys")")" == "tools" ]]; then
    dirname -- "$(dirname -- "$phys")"
    return 0
  fi
  return 1
}

# resolve_app_dir VALUE: prints the absolute app dir (VALUE, else derived from the script's place).
# shellcheck disable=SC2317  # not every script uses every common helper
resolve_app_dir() {
  local dir="$1"
  if [[ -z "$dir" ]]; then
    dir="$(default_app_dir)" || usage_error "cannot derive the app dir from $SCRIPT_DIR: pass --app-dir /opt/APP"
  fi
  [[ "$dir" == /* ]] || usage_error "--app-dir must be an absolute path: $dir"
  printf '%s\n' "${dir%/}"
}

# Compose project names: lowercase letters, digits, '-' and '_', starting with a letter or digit.
# shellcheck disable=SC2317  # not every script uses every common helper
valid_app_name() { [[ "$1" =~ ^[a-z0-9][a-z0-9_-]{0,62}$ ]]; }
# shellcheck disable=SC2317  # not every script uses every common helper
valid_release_id() { [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ && "$1" != *..* ]]; }

# setup_logging APP_DIR: also append to APP_DIR/logs/<script>.log when that dir exists.
# shellcheck disable=SC2317  # not every script uses every common helper
setup_logging() {
  local dir="$1/logs" file
  [[ -d "$dir" ]] || return 0
  file="$dir/$SCRIPT_NAME.log"
  if [[ ! -e "$file" ]]; then
    : >>"$file" 2>/dev/null || return 0
    # Created by root (sudo): hand it to the app dir's owner, who writes it next time.
    if [[ "$EUID" -eq 0 ]]; then chown --reference="$1" -- "$file" 2>/dev/null || true; fi
  fi
  if [[ -w "$file" ]]; then LOG_FILE="$file"; fi
}

# atomic_write DEST MODE < content: temp file in DEST's dir, fsync, chmod, rename over DEST.
# shellcheck disable=SC2317  # not every script uses every common helper
atomic_write() {
  local dest="$1" mode="$2" tmp
  tmp="$(mktemp -- "$(dirname -- "$dest")/.$(basename -- "$dest").tmp-XXXXXX")" || return 1
  if cat >"$tmp" && chmod "$mode" -- "$tmp" && sync -- "$tmp" && mv -T -- "$tmp" "$dest"; then
    return 0
  fi
  rm -f -- "$tmp"
  return 1
}

# atomic_symlink TARGET LINK: LINK -> TARGET via a temp link and rename (never missing, never dangling).
# shellcheck disable=SC2317  # not every script uses every common helper
atomic_symlink() {
  local target="$1" link="$2" tmp
  tmp="$link.tmp-$$"
  rm -f -- "$tmp"
  ln -s -- "$target" "$tmp" && mv -T -- "$tmp" "$link"
}

# take_lock FD FILE WAIT_S HOLDER_INFO: flock FILE on FD (8 or 9), waiting at most WAIT_S
# seconds, naming the holder while waiting; exits 4 when still busy. Writes HOLDER_INFO
# into the file once held. Child processes inherit the FD, so an orphaned child of a
# killed script keeps the lock until it ends (nothing can run beside it).
# shellcheck disable=SC2317  # not every script uses every common helper
take_lock() {
  local fd="$1" file="$2" wait_s="$3" info="$4" holder
  case "$fd" in
    8) exec 8<>"$file" || die 1 "cannot open lock file $file" ;;
    9) exec 9<>"$file" || die 1 "cannot open lock file $file" ;;
    *) die 1 "take_lock: unsupported fd $fd" ;;
  esac
  if [[ "$EUID" -eq 0 ]]; then chown --reference="$(dirname -- "$file")" -- "$file" 2>/dev/null || true; fi
  if ! flock -n "$fd"; then
    holder="$(lock_holder "$file")"
    log WARN "lock $file is held by: $holder; waiting up to ${wait_s}s"
    if ! flock -w "$wait_s" "$fd"; then
      holder="$(lock_holder "$file")"
      die 4 "lock $file still busy after ${wait_s}s, held by: $holder"
    fi
  fi
  printf '%s\n' "$info" >"$file"
}
# shellcheck disable=SC2317  # not every script uses every common helper
lock_holder() {
  local info pid
  info="$(head -c 400 -- "$1" 2>/dev/null | tr '\n' ' ')"
  info="${info% }"
  [[ -n "$info" ]] || info="unknown"
  pid="$(sed -n 's/.*pid=\([0-9][0-9]*\).*/\1/p' <<<"$info")"
  if [[ -n "$pid" && ! -d "/proc/$pid" ]]; then
    info="$info (that process is gone; a child it started still holds the lock)"
  fi
  printf '%s\n' "$info"
}
# --- end common ---

main() {
  local app_dir="" keep="" dry=false lock_wait=300 releases app id path pid i deleted=0
  local -A protect=()
  local all=() rest=()
  while (($#)); do
    case "$1" in
      --keep) need_value "$@"; keep="$2"; shift 2 ;;
      --keep=*) keep="${1#*=}"; shift ;;
      --dry-run) dry=true; shift ;;
      --lock-wait) need_value "$@"; lock_wait="$2"; shift 2 ;;
      --lock-wait=*) lock_wait="${1#*=}"; shift ;;
      --app-dir) need_value "$@"; app_dir="$2"; shift 2 ;;
      --app-dir=*) app_dir="${1#*=}"; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown argument: $1" ;;
    esac
  done
  [[ "$keep" =~ ^[1-9][0-9]*$ ]] || usage_error "--keep N (a positive integer) is required"
  [[ "$lock_wait" =~ ^[0-9]+$ ]] || usage_error "--lock-wait must be a number of seconds"
  APP_DIR="$(resolve_app_dir "$app_dir")"
  setup_logging "$APP_DIR"
  app="$(basename -- "$APP_DIR")"
  releases="$APP_DIR/releases"
  [[ -d "$releases" && -d "$APP_DIR/state" ]] || die 1 "$releases or $APP_DIR/state missing"

  take_lock 9 "$APP_DIR/state/deploy.lock" "$lock_wait" "pid=$$ script=prune-releases.sh since=$(iso_now)"

  # What must stay.
  id="$(basename -- "$(readlink -- "$APP_DIR/current" 2>/dev/null || true)")"
  [[ -n "$id" && "$id" != "." ]] && protect["$id"]="current"
  id="$(cat -- "$APP_DIR/state/previous" 2>/dev/null || true)"
  [[ -n "$id" ]] && protect["$id"]="previous"
  if [[ -f "$APP_DIR/state/activation-in-progress" ]] && command -v jq >/dev/null 2>&1; then
    while IFS= read -r id; do
      [[ -n "$id" ]] && protect["$id"]="named by an in-progress activation"
    done < <(jq -r '.release // empty, .previous // empty, .prev_previous // empty' "$APP_DIR/state/activation-in-progress" 2>/dev/null || true)
  fi
  if command -v docker >/dev/null 2>&1; then
    while IFS= read -r path; do
      [[ "$path" == "$releases/"* ]] || continue
      id="${path#"$releases/"}"
      id="${id%%/*}"
      [[ -n "$id" ]] && protect["$id"]="in use by a container"
    done < <(docker ps -a --filter "label=com.docker.compose.project=$app" \
      --format '{{.Label "com.docker.compose.project.working_dir"}}' 2>/dev/null | sort -u)
  fi

  # Leftovers of killed uploads and deletions.
  for path in "$releases"/.tmp-* "$releases"/.trash-*; do
    [[ -e "$path" ]] || continue
    pid="${path##*-}"
    pid="${pid%.tgz}"
    if [[ "$pid" =~ ^[0-9]+$ && -d "/proc/$pid" ]]; then continue; fi
    if [[ "$dry" == true ]]; then
      log INFO "would remove leftover $path"
    else
      rm -rf -- "$path"
      log INFO "removed leftover $path"
    fi
  done

  mapfile -t all < <(find "$releases" -mindepth 2 -maxdepth 2 -name COMPLETE -type f -printf '%T@ %h\n' |
    sort -rn | awk '{ sub(/^[^ ]+ /, ""); print }')
  for ((i = 0; i < ${#all[@]}; i++)); do
    id="$(basename -- "${all[$i]}")"
    [[ "$id" == .* ]] && continue
    if ((i < keep)); then continue; fi
    rest+=("$id")
  done
  for id in ${rest[@]+"${rest[@]}"}; do
    if [[ -n "${protect[$id]:-}" ]]; then
      log INFO "keeping $id: ${protect[$id]}"
      continue
    fi
    if [[ "$dry" == true ]]; then
      log INFO "would delete release $id"
      continue
    fi
    mv -T -- "$releases/$id" "$releases/.trash-$id-$$"
    rm -rf -- "${releases:?}/.trash-$id-$$"
    deleted=$((deleted + 1))
    log INFO "deleted release $id"
  done
  log INFO "kept the newest $keep of ${#all[@]} releases (plus those in use); deleted $deleted"
}

main "$@"
