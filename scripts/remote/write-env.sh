#!/usr/bin/env bash
# write-env.sh: install the app's shared/.env from stdin (mode 600, atomic, idempotent).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: write-env.sh [--app-dir /opt/APP] < dotenv-text

Reads the complete .env text on stdin and installs it as APP_DIR/shared/.env:
mode 600, written to a temp file in shared/ (umask 077), fsynced, renamed over the old
file with mv -T. Identical content changes nothing ("unchanged"). Prints only the
sha256 of the content on stdout; the content itself is never printed or logged.

Options:
  --app-dir DIR   app directory (default: derived from the script's place,
                  /opt/APP/bin/write-env.sh -> /opt/APP)
  -h, --help      this help

Exit codes:
  0   written, or unchanged
  1   error (no APP_DIR/shared, I/O failure)
  2   invalid input (empty stdin, NUL bytes)
  64  usage error
Log: APP_DIR/logs/write-env.log
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
  local app_dir="" dest tmp sum size
  while (($#)); do
    case "$1" in
      --app-dir) need_value "$@"; app_dir="$2"; shift 2 ;;
      --app-dir=*) app_dir="${1#*=}"; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown argument: $1" ;;
    esac
  done
  APP_DIR="$(resolve_app_dir "$app_dir")"
  setup_logging "$APP_DIR"
  [[ -d "$APP_DIR/shared" ]] || die 1 "$APP_DIR/shared does not exist (run bootstrap-host.sh first)"

  umask 077
  dest="$APP_DIR/shared/.env"
  tmp="$(mktemp -- "$APP_DIR/shared/.env.tmp-XXXXXX")" || die 1 "cannot create a temp file in $APP_DIR/shared"
  # shellcheck disable=SC2064  # expand now: the path is fixed
  trap "rm -f -- '$tmp'" EXIT
  cat >"$tmp" || die 1 "cannot read stdin"
  [[ -s "$tmp" ]] || die 2 "refusing an empty .env on stdin"
  size="$(stat -c %s -- "$tmp")"
  if [[ "$(tr -d '\000' <"$tmp" | wc -c)" != "$size" ]]; then
    die 2 "refusing a .env that contains NUL bytes"
  fi
  sum="$(sha256sum <"$tmp" | cut -d' ' -f1)"

  if [[ -f "$dest" && ! -L "$dest" ]] && cmp -s -- "$tmp" "$dest"; then
    if [[ "$(stat -c %a -- "$dest")" != "600" ]]; then
      chmod 600 -- "$dest"
      log INFO "shared/.env content unchanged; mode reset to 600"
    else
      log INFO "shared/.env unchanged (sha256 $sum)"
    fi
  else
    chmod 600 -- "$tmp"
    if [[ "$EUID" -eq 0 ]]; then chown --reference="$APP_DIR/shared" -- "$tmp"; fi
    sync -- "$tmp"
    mv -T -- "$tmp" "$dest" || die 1 "cannot rename the temp file over $dest"
    sync -- "$APP_DIR/shared" 2>/dev/null || true
    log INFO "shared/.env written ($size bytes, sha256 $sum)"
  fi
  printf '%s\n' "$sum"
}

main "$@"
