#!/usr/bin/env bash
# lock.sh: the operator lock: while it is set, every activation is refused, naming who and why.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: lock.sh --message TEXT [--by NAME] [--app-dir /opt/APP]
       lock.sh --release [--app-dir /opt/APP]
       lock.sh --show [--app-dir /opt/APP]

Sets, removes or shows APP_DIR/state/operator.lock, one JSON object {by, message, since}.
While it exists activate.sh refuses to run (exit 7) and names it: a deploy cannot start
during an operator's maintenance (a migration by hand, a restore rehearsal). Setting it
again replaces it. It does not stop a running activation (that holds state/deploy.lock).

Options:
  --message TEXT  why deploys must wait (required to lock; 200 characters at most)
  --by NAME       who holds it (default: $SUDO_USER or the user)
  --release       remove the lock (a no-op when there is none)
  --show          print the lock's JSON, or nothing when unlocked
  --app-dir DIR   app directory (default: derived from the script's place)
  -h, --help      this help

Exit codes:
  0   locked, released or shown
  1   error (no APP_DIR/state)
  64  usage error
Log: APP_DIR/logs/lock.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

main() {
  local mode="" message="" by="" file
  while (($#)); do
    case "$1" in
      --message) need_value "$@"; mode=lock; message="$2"; shift 2 ;;
      --message=*) mode=lock; message="${1#*=}"; shift ;;
      --by) need_value "$@"; by="$2"; shift 2 ;;
      --by=*) by="${1#*=}"; shift ;;
      --release) mode=release; shift ;;
      --show) mode=show; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  [[ -n "$mode" ]] || usage_error "one of --message TEXT, --release or --show is required"
  use_app_dir "$APP_DIR_ARG"
  [[ -d "$APP_DIR/state" ]] || die 1 "$APP_DIR/state does not exist (run bootstrap-host.sh first)"
  file="$(operator_lock_file)"
  case "$mode" in
    show) [[ ! -f "$file" ]] || cat -- "$file" ;;
    release)
      if [[ -f "$file" ]]; then
        rm -f -- "$file"
        log INFO "operator lock released (deploys may run again)"
      else
        log INFO "no operator lock to release"
      fi
      ;;
    lock)
      [[ -n "${message//[[:space:]]/}" && "${#message}" -le 200 ]] || usage_error "--message must be 1-200 characters"
      by="${by:-${SUDO_USER:-$(id -un)}}"
      jq -cn --arg by "$by" --arg message "$message" --arg since "$(iso_now)" '{by: $by, message: $message, since: $since}' |
        atomic_write "$file" 644 || die 1 "cannot write $file"
      log INFO "operator lock set by $by: $message (deploys are refused until: lock.sh --release)"
      ;;
  esac
}

main "$@"
