#!/usr/bin/env bash
# uninstall.sh: remove the app from the host, keeping its data (backups, database volume).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: sudo uninstall.sh --app APP [--unit NAME] [--cron NAME] [--app-dir /opt/APP]
                         [--lock-wait S] [--owner ORG/PROJECT/STACK]

Removes:  the systemd unit NAME (disable --now, file, daemon-reload), /etc/cron.d/NAME,
          the compose project's containers and networks (`docker compose -p APP down
          --remove-orphans`, WITHOUT -v), APP_DIR/releases/, APP_DIR/current,
          APP_DIR/bin/ and APP_DIR/tools/ (the scripts), APP_DIR/images/, APP_DIR/shared/.env (secrets do not outlive
          the app), lock/marker files in state/ and state/owner (the stack's claim).
Keeps:    APP_DIR/backups/ (database dumps), the compose volumes of APP (the live
          database's among them) and data directories bound into them,
          APP_DIR/state/history.jsonl and
          state/incidents/ (audit trail), APP_DIR/logs/, and Docker images.
Prints what it kept and why on stdout. Running it again removes nothing more.
Waits for state/deploy.lock so it never races an activation. With --owner it first
checks state/owner: another stack's app is left alone (exit 5). Must run as root.

Options:
  --app APP       app name (compose project)
  --unit NAME     systemd unit to remove (e.g. APP.service)
  --cron NAME     /etc/cron.d file to remove
  --app-dir DIR   default /opt/APP
  --lock-wait S   seconds to wait for state/deploy.lock (default 300)
  --owner ID      the uninstalling stack (org/project/stack); refuse if another owns APP
  -h, --help      this help

Exit codes:
  0   removed (or already absent)
  1   error (not root, docker compose down failed, ...)
  4   lock busy (an activation holds state/deploy.lock)
  5   APP is owned by another stack than --owner: nothing removed
  64  usage error
Log: APP_DIR/logs/uninstall.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

remove_path() {
  local path="$1"
  if [[ -e "$path" || -L "$path" ]]; then
    rm -rf -- "$path"
    log INFO "removed $path"
  fi
}

main() {
  local app="" unit="" cron="" lock_wait=300 owner="" held vols n
  while (($#)); do
    case "$1" in
      --app) need_value "$@"; app="$2"; shift 2 ;;
      --app=*) app="${1#*=}"; shift ;;
      --unit) need_value "$@"; unit="$2"; shift 2 ;;
      --unit=*) unit="${1#*=}"; shift ;;
      --cron) need_value "$@"; cron="$2"; shift 2 ;;
      --cron=*) cron="${1#*=}"; shift ;;
      --lock-wait) need_value "$@"; lock_wait="$2"; shift 2 ;;
      --lock-wait=*) lock_wait="${1#*=}"; shift ;;
      --owner) need_value "$@"; owner="$2"; shift 2 ;;
      --owner=*) owner="${1#*=}"; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
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
  APP_DIR="${APP_DIR_ARG:-/opt/$app}"
  APP_DIR="${APP_DIR%/}"
  [[ "$APP_DIR" == /* && "$(basename -- "$APP_DIR")" == "$app" ]] || usage_error "--app-dir must be an absolute path ending in /$app"
  [[ "$EUID" -eq 0 ]] || die 1 "must run as root (sudo)"
  setup_logging "$APP_DIR"
  log INFO "uninstalling $app ($APP_DIR)"

  if [[ -n "$owner" && -f "$APP_DIR/state/owner" ]]; then
    held="$(sed -n 's/^stack=//p' "$APP_DIR/state/owner")"
    [[ "$held" == "$owner" ]] || die 5 "app $app on this host is managed by stack ${held:-unknown}, not $owner: leaving it installed"
  fi
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
  # Last: the app is gone, any stack may deploy it here again.
  remove_path "$APP_DIR/state/owner"

  {
    printf 'uninstalled %s. Kept:\n' "$app"
    printf '  %s/backups/  database dumps (%s files): your data, restorable with pg_restore\n' \
      "$APP_DIR" "$(find "$APP_DIR/backups" -maxdepth 1 -type f -name '*.dump*' 2>/dev/null | wc -l)"
    printf '  docker volumes: %s (app data, the live database among them); remove with: docker volume rm %s\n' \
      "${vols:-none found}" "${vols:-VOLUME}"
    printf '  %s/state/history.jsonl and state/incidents/  the deployment audit trail\n' "$APP_DIR"
    printf '  %s/logs/  script logs\n' "$APP_DIR"
    printf '  docker images  may be shared with other projects; remove with docker image prune\n'
    printf 'Removed: unit %s, cron %s, containers and networks, releases/, current, bin/, tools/, images/, shared/.env and shared/tls/ (secrets), state/owner (the claim)\n' \
      "${unit:-(none given)}" "${cron:-(none given)}"
  }
  log INFO "uninstall of $app complete (kept backups/, volumes ${vols:-none}, state history, logs)"
}

main "$@"
