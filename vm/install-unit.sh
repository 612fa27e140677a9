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

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

main() {
  local name="" start=true dest tmp changed=false size
  while (($#)); do
    case "$1" in
      --name) need_value "$@"; name="$2"; shift 2 ;;
      --name=*) name="${1#*=}"; shift ;;
      --no-start) start=false; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  [[ -n "$name" ]] || usage_error "--name is required"
  [[ "$name" =~ ^[A-Za-z0-9@._-]+\.(service|timer)$ && "$name" != .* ]] || usage_error "invalid unit name '$name'"
  if APP_DIR="$(resolve_app_dir "$APP_DIR_ARG" 2>/dev/null)"; then setup_logging "$APP_DIR"; fi
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
