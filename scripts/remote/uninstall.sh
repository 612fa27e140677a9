#!/usr/bin/env bash
# uninstall.sh: remove the app from the host, keeping its data (backups, database volume).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: sudo uninstall.sh --app APP [--unit NAME] [--cron NAME] [--app-dir /opt/APP]
                         [--lock-wait S]

Removes:  the systemd unit NAME (disable --now, file, daemon-reload), /etc/cron.d/NAME,
          the compose project's containers and networks (`docker compose -p APP down
          --remove-orphans`, WITHOUT -v), APP_DIR/releases/, APP_DIR/current,
          APP_DIR/bin/ and APP_DIR/tools/ (the scripts), APP_DIR/images/, APP_DIR/shared/.env (secrets do not outlive
          the app) and lock/marker files in state/.
Keeps:    APP_DIR/backups/ (database dumps), the compose volumes of APP (e.g.
          APP_pgdata, the live database), APP_DIR/state/history.jsonl and
          state/incidents/ (audit trail), APP_DIR/logs/, and Docker images.
Prints what it kept and why on stdout. Running it again removes nothing more.
Waits for state/deploy.lock so it never races an activation. Must run as root.

Options:
  --app APP       app name (compose project)
  --unit NAME     systemd unit to remove (e.g. APP.service)
  --cron NAME     /etc/cron.d file to remove
  --app-dir DIR   default /opt/APP
  --lock-wait S   seconds to wait for state/deploy.lock (default 300)
  -h, --help      this help

Exit codes:
  0   removed (or already absent)
  1   error (not root, docker compose down failed, ...)
  4   lock busy (an activation holds state/deploy.lock)
  64  usage error
Log: APP_DIR/logs/uninstall.log
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

remove_path() {
  local path="$1"
  if [[ -e "$path" || -L "$path" ]]; then
    rm -rf -- "$path"
    log INFO "removed $path"
  fi
}

main() {
  local app="" unit="" cron="" app_dir="" lock_wait=300 vols n
  while (($#)); do
    case "$1" in
      --app) need_value "$@"; app="$2"; shift 2 ;;
      --app=*) app="${1#*=}"; shift ;;
      --unit) need_value "$@"; unit="$2"; shift 2 ;;
      --unit=*) unit="${1#*=}"; shift ;;
      --cron) need_value "$@"; cron="$2"; shift 2 ;;
      --cron=*) cron="${1#*=}"; shift ;;
      --app-dir) need_value "$@"; app_dir="$2"; shift 2 ;;
      --app-dir=*) app_dir="${1#*=}"; shift ;;
      --lock-wait) need_value "$@"; lock_wait="$2"; shift 2 ;;
      --lock-wait=*) lock_wait="${1#*=}"; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown argument: $1" ;;
    esac
  done
  [[ -n "$app" ]] || usage_error "--app is required"
  valid_app_name "$app" || usage_error "invalid --app '$app'"
  if [[ -n "$unit" ]]; then
    [[ "$unit" =~ ^[A-Za-z0-9@._-]+\.(service|timer)$ && "$unit" != .* ]] || usage_error "invalid --unit '$unit'"
  fi
  if [[ -n "$cron" ]]; then
    [[ "$cron" =~ ^[A-Za-z0-9_-]+$ ]] || usage_error "invalid --cron '$cron'"
  fi
  [[ "$lock_wait" =~ ^[0-9]+$ ]] || usage_error "--lock-wait must be a number of seconds"
  APP_DIR="${app_dir:-/opt/$app}"
  APP_DIR="${APP_DIR%/}"
  [[ "$APP_DIR" == /* && "$(basename -- "$APP_DIR")" == "$app" ]] || usage_error "--app-dir must be an absolute path ending in /$app"
  [[ "$EUID" -eq 0 ]] || die 1 "must run as root (sudo)"
  setup_logging "$APP_DIR"
  log INFO "uninstalling $app ($APP_DIR)"

  if [[ -d "$APP_DIR/state" ]]; then
    take_lock 9 "$APP_DIR/state/deploy.lock" "$lock_wait" "pid=$$ script=uninstall.sh since=$(iso_now)"
  fi

  if [[ -n "$unit" ]]; then
    if [[ -f "/etc/systemd/system/$unit" ]] || systemctl cat "$unit" >/dev/null 2>&1; then
      systemctl disable --now "$unit" >/dev/null 2>&1 || log WARN "systemctl disable --now $unit failed"
      rm -f -- "/etc/systemd/system/$unit"
      systemctl daemon-reload
      systemctl reset-failed "$unit" >/dev/null 2>&1 || true
      log INFO "removed systemd unit $unit"
    fi
  fi
  if [[ -n "$cron" && -e "/etc/cron.d/$cron" ]]; then
    rm -f -- "/etc/cron.d/$cron"
    log INFO "removed /etc/cron.d/$cron"
  fi

  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    n="$(docker ps -a -q --filter "label=com.docker.compose.project=$app" | wc -l)"
    if [[ "$n" -gt 0 ]]; then
      log INFO "docker compose -p $app down --remove-orphans ($n containers; volumes are kept)"
      (cd / && docker compose -p "$app" down --remove-orphans) >&2 || die 1 "docker compose -p $app down failed"
    fi
    vols="$(docker volume ls -q --filter "label=com.docker.compose.project=$app" | tr '\n' ' ')"
  else
    log WARN "no Docker engine answers: containers (if any) were not removed"
    vols=""
  fi

  remove_path "$APP_DIR/current"
  for n in "$APP_DIR"/current.tmp-*; do remove_path "$n"; done
  remove_path "$APP_DIR/releases"
  remove_path "$APP_DIR/images"
  remove_path "$APP_DIR/shared/.env"
  for n in "$APP_DIR"/shared/.env.tmp-*; do remove_path "$n"; done
  remove_path "$APP_DIR/shared/tls"
  remove_path "$APP_DIR/state/activation-in-progress"
  remove_path "$APP_DIR/state/previous"
  remove_path "$APP_DIR/state/applied"
  remove_path "$APP_DIR/bin"
  remove_path "$APP_DIR/tools"

  {
    printf 'uninstalled %s. Kept:\n' "$app"
    printf '  %s/backups/  database dumps (%s files): your data, restorable with pg_restore\n' \
      "$APP_DIR" "$(find "$APP_DIR/backups" -maxdepth 1 -type f -name '*.dump*' 2>/dev/null | wc -l)"
    printf '  docker volumes: %s the live database; remove with: docker volume rm %s\n' \
      "${vols:-none found}" "${vols:-VOLUME}"
    printf '  %s/state/history.jsonl and state/incidents/  the deployment audit trail\n' "$APP_DIR"
    printf '  %s/logs/  script logs\n' "$APP_DIR"
    printf '  docker images  may be shared with other projects; remove with docker image prune\n'
    printf 'Removed: unit %s, cron %s, containers and networks, releases/, current, bin/, tools/, images/, shared/.env and shared/tls/ (secrets)\n' \
      "${unit:-(none given)}" "${cron:-(none given)}"
  }
  log INFO "uninstall of $app complete (kept backups/, volumes ${vols:-none}, state history, logs)"
}

main "$@"
