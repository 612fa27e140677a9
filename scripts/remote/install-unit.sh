#!/usr/bin/env bash
# install-unit.sh: install a systemd unit from stdin (atomic, idempotent), enable it, start if inactive.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: sudo install-unit.sh --name UNIT [--no-start] [--app-dir /opt/APP] < unit-file-text

Writes the unit text from stdin to /etc/systemd/system/UNIT (temp file in the same
directory + mv -T, mode 644), runs `systemctl daemon-reload` when it changed, enables
the unit, and starts it when it is not active (a oneshot `docker compose up -d` unit is
idempotent, and this makes a reboot bring the stack up). An already active unit is not
restarted: a changed unit takes effect at its next start. Unchanged, enabled and active:
nothing happens. Must run as root.

Options:
  --name UNIT     unit file name, [A-Za-z0-9@._-]+ ending in .service or .timer
  --no-start      enable only
  --app-dir DIR   app directory for the log file (default: derived from the script's place)
  -h, --help      this help

Exit codes:
  0   unit installed (or unchanged), enabled and active
  1   error (not root, no systemd, write failed, enable failed)
  2   invalid unit text (empty, no [Unit]/[Service]/[Timer] section, NUL bytes)
  3   installed and enabled, but starting it failed (see journalctl -u UNIT)
  64  usage error
Log: APP_DIR/logs/install-unit.log
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
  local app_dir="" name="" start=true dest tmp changed=false size
  while (($#)); do
    case "$1" in
      --name) need_value "$@"; name="$2"; shift 2 ;;
      --name=*) name="${1#*=}"; shift ;;
      --no-start) start=false; shift ;;
      --app-dir) need_value "$@"; app_dir="$2"; shift 2 ;;
      --app-dir=*) app_dir="${1#*=}"; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown argument: $1" ;;
    esac
  done
  [[ -n "$name" ]] || usage_error "--name is required"
  [[ "$name" =~ ^[A-Za-z0-9@._-]+\.(service|timer)$ && "$name" != .* ]] || usage_error "invalid unit name '$name'"
  if APP_DIR="$(resolve_app_dir "$app_dir" 2>/dev/null)"; then setup_logging "$APP_DIR"; fi
  [[ "$EUID" -eq 0 ]] || die 1 "must run as root (sudo)"
  [[ -d /run/systemd/system ]] || die 1 "systemd is not running on this host"

  dest="/etc/systemd/system/$name"
  tmp="$(mktemp -- "/etc/systemd/system/.$name.tmp-XXXXXX")" || die 1 "cannot create a temp file in /etc/systemd/system"
  # shellcheck disable=SC2064  # expand now: the path is fixed
  trap "rm -f -- '$tmp'" EXIT
  cat >"$tmp"
  size="$(stat -c %s -- "$tmp")"
  [[ "$size" -gt 0 ]] || die 2 "refusing an empty unit"
  [[ "$(tr -d '\000' <"$tmp" | wc -c)" == "$size" ]] || die 2 "refusing a unit with NUL bytes"
  grep -qE '^\[(Unit|Service|Timer)\]' "$tmp" || die 2 "the unit text has no [Unit], [Service] or [Timer] section"
  if [[ "$name" == *.service ]]; then
    grep -qE '^\[Service\]' "$tmp" || die 2 "a .service unit needs a [Service] section"
  fi

  if [[ -f "$dest" ]] && cmp -s -- "$tmp" "$dest"; then
    log INFO "$dest unchanged"
  else
    chmod 644 -- "$tmp"
    sync -- "$tmp"
    mv -T -- "$tmp" "$dest" || die 1 "cannot install $dest"
    changed=true
    log INFO "$dest written"
    systemctl daemon-reload || die 1 "systemctl daemon-reload failed"
    if command -v systemd-analyze >/dev/null 2>&1; then
      systemd-analyze verify "$dest" >/dev/null 2>&1 || log WARN "systemd-analyze verify reports problems in $name (systemd-analyze verify $dest)"
    fi
  fi

  if ! systemctl is-enabled --quiet "$name" 2>/dev/null; then
    systemctl enable "$name" >/dev/null 2>&1 || die 1 "systemctl enable $name failed"
    log INFO "$name enabled"
    changed=true
  fi
  if [[ "$start" == true ]] && ! systemctl is-active --quiet "$name"; then
    log INFO "starting $name"
    systemctl start "$name" || die 3 "systemctl start $name failed (journalctl -u $name)"
    changed=true
  elif [[ "$changed" == true ]] && systemctl is-active --quiet "$name"; then
    log INFO "$name is active: not restarted (the change applies at its next start)"
  fi
  if [[ "$changed" == false ]]; then log INFO "$name unchanged, enabled and active: nothing to do"; fi
}

main "$@"
