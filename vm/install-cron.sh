#!/usr/bin/env bash
# install-cron.sh: install an /etc/cron.d file from stdin (validated, atomic, idempotent).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: sudo install-cron.sh --name NAME [--app-dir /opt/APP] < cron.d-text

Validates the cron.d text on stdin and writes it to /etc/cron.d/NAME (temp file in the
same directory + mv -T, mode 644, root-owned). Cron notices the change by itself.
Identical content changes nothing. A missing final newline is added (cron ignores an
unterminated last line). Must run as root.

Each line must be empty, a comment, an environment assignment (NAME=value), or
"m h dom mon dow USER command" / "@daily USER command" with an existing USER.

Options:
  --name NAME     file name in /etc/cron.d: [A-Za-z0-9_-]+ (cron skips names with dots)
  --app-dir DIR   app directory for the log file (default: derived from the script's place)
  -h, --help      this help

Exit codes:
  0   installed, or unchanged
  1   error (not root, write failed)
  2   invalid cron text (the offending line number is logged)
  64  usage error
Log: APP_DIR/logs/install-cron.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

# check_line TEXT: 0 when TEXT is a valid cron.d line.
check_line() {
  local line="$1" f=()
  [[ "$line" =~ ^[[:space:]]*(#.*)?$ ]] && return 0
  [[ "$line" =~ ^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*[[:space:]]*= ]] && return 0
  read -r -a f <<<"$line"
  if [[ "${f[0]}" == @* ]]; then
    [[ "${f[0]}" =~ ^@(reboot|yearly|annually|monthly|weekly|daily|midnight|hourly)$ && "${#f[@]}" -ge 3 ]] || return 1
    getent passwd "${f[1]}" >/dev/null || return 1
    return 0
  fi
  [[ "${#f[@]}" -ge 7 ]] || return 1
  local i
  for ((i = 0; i < 5; i++)); do
    [[ "${f[$i]}" =~ ^[0-9A-Za-z*/,-]+$ ]] || return 1
  done
  getent passwd "${f[5]}" >/dev/null || return 1
}

main() {
  local name="" dest tmp size n=0 line
  while (($#)); do
    case "$1" in
      --name) need_value "$@"; name="$2"; shift 2 ;;
      --name=*) name="${1#*=}"; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  [[ -n "$name" ]] || usage_error "--name is required"
  [[ "$name" =~ ^[A-Za-z0-9_-]+$ ]] || usage_error "invalid cron.d name '$name' (letters, digits, _ and - only)"
  if APP_DIR="$(resolve_app_dir "$APP_DIR_ARG" 2>/dev/null)"; then setup_logging "$APP_DIR"; fi
  [[ "$EUID" -eq 0 ]] || die 1 "must run as root (sudo)"
  [[ -d /etc/cron.d ]] || die 1 "/etc/cron.d does not exist (is cron installed?)"

  dest="/etc/cron.d/$name"
  tmp="$(mktemp -- "/etc/cron.d/.$name.tmp-XXXXXX")" || die 1 "cannot create a temp file in /etc/cron.d"
  # shellcheck disable=SC2064  # expand now: the path is fixed
  trap "rm -f -- '$tmp'" EXIT
  cat >"$tmp"
  size="$(stat -c %s -- "$tmp")"
  [[ "$size" -gt 0 ]] || die 2 "refusing empty cron text"
  [[ "$(tr -d '\000' <"$tmp" | wc -c)" == "$size" ]] || die 2 "refusing cron text with NUL bytes"
  if [[ "$(tail -c 1 -- "$tmp" | od -An -c | tr -d ' ')" != '\n' ]]; then
    printf '\n' >>"$tmp"
  fi
  while IFS= read -r line || [[ -n "$line" ]]; do
    n=$((n + 1))
    check_line "$line" || die 2 "invalid cron line $n (want 'm h dom mon dow USER command', '@daily USER command', NAME=value or # comment)"
  done <"$tmp"
  if ! command -v cron >/dev/null 2>&1 && ! command -v crond >/dev/null 2>&1; then
    log WARN "no cron daemon found on this host: the entry will not run until cron is installed"
  fi

  if [[ -f "$dest" ]] && cmp -s -- "$tmp" "$dest"; then
    log INFO "$dest unchanged"
    return 0
  fi
  chmod 644 -- "$tmp"
  chown root:root -- "$tmp"
  sync -- "$tmp"
  mv -T -- "$tmp" "$dest" || die 1 "cannot install $dest"
  log INFO "$dest written ($n lines)"
}

main "$@"
