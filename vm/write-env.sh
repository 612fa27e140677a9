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

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

main() {
  local dest tmp sum size
  while (($#)); do
    case "$1" in
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  use_app_dir "$APP_DIR_ARG"
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
