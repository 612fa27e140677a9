#!/usr/bin/env bash
# install-offsite.sh: install the off-host backup targets' files from stdin (mode 600, atomic).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: install-offsite.sh [--app-dir /opt/APP] < {"files":{"NAME":"content",...}}
       install-offsite.sh --remove [--app-dir /opt/APP]

Reads a JSON object on stdin whose "files" map names to contents (rendered by onevm's
lib/render/offsite.ts: targets.json, ssh_key, ssh_known_hosts, s3.curlrc) and installs
them as APP_DIR/shared/offsite/NAME, every file mode 600: written into a new directory
(umask 077), which then replaces shared/offsite by rename. Secrets (the SSH key, the S3
keys) arrive only here, on stdin; nothing of the content is printed or logged, only its
sha256. Identical content changes nothing. --remove deletes shared/offsite (no off-host
copies any more).

Options:
  --remove        remove the off-host configuration
  --app-dir DIR   app directory (default: derived from the script's place)
  -h, --help      this help

Exit codes:
  0   installed, unchanged, or removed
  1   error (no APP_DIR/shared, I/O failure, jq missing)
  2   invalid input (not JSON, unknown file name, empty)
  64  usage error
Log: APP_DIR/logs/install-offsite.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

ALLOWED_FILES=(targets.json ssh_key ssh_known_hosts s3.curlrc)

main() {
  local remove=0 dest input new old sum name names=() allowed
  while (($#)); do
    case "$1" in
      --remove) remove=1; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  use_app_dir "$APP_DIR_ARG"
  [[ -d "$APP_DIR/shared" ]] || die 1 "$APP_DIR/shared does not exist (run bootstrap-host.sh first)"
  dest="$APP_DIR/shared/offsite"
  if [[ "$remove" -eq 1 ]]; then
    rm -rf -- "$dest"
    log INFO "off-host backup configuration removed"
    return 0
  fi
  command -v jq >/dev/null 2>&1 || die 1 "jq is not installed"

  umask 077
  input="$(cat)" || die 1 "cannot read stdin"
  jq -e '.files | type == "object" and length > 0' >/dev/null 2>&1 <<<"$input" ||
    die 2 "stdin must be a JSON object {\"files\": {NAME: content}} with at least one file"
  mapfile -t names < <(jq -r '.files | keys[]' <<<"$input")
  for name in "${names[@]}"; do
    allowed=0
    [[ " ${ALLOWED_FILES[*]} " == *" $name "* ]] && allowed=1
    [[ "$allowed" -eq 1 ]] || die 2 "unknown file name in the off-host configuration: $name"
  done
  sum="$(sha256sum <<<"$input" | cut -d' ' -f1)"
  if [[ -f "$dest/.sha256" && "$(cat -- "$dest/.sha256")" == "$sum" ]]; then
    log INFO "off-host configuration unchanged (sha256 $sum)"
    printf '%s\n' "$sum"
    return 0
  fi

  new="$(mktemp -d -- "$APP_DIR/shared/.offsite.new-XXXXXX")" || die 1 "cannot create a temp dir in $APP_DIR/shared"
  old="$APP_DIR/shared/.offsite.old-$$"
  # shellcheck disable=SC2064  # expand now: the paths are fixed
  trap "rm -rf -- '$new' '$old'" EXIT
  for name in "${names[@]}"; do
    jq -j --arg n "$name" '.files[$n]' <<<"$input" >"$new/$name" || die 1 "cannot write $name"
    chmod 600 -- "$new/$name"
  done
  printf '%s\n' "$sum" >"$new/.sha256"
  chmod 700 -- "$new"
  sync -- "$new"/* 2>/dev/null || true
  if [[ -e "$dest" ]]; then mv -T -- "$dest" "$old"; fi
  mv -T -- "$new" "$dest" || die 1 "cannot rename the new configuration into $dest"
  log INFO "off-host configuration installed: ${names[*]} (sha256 $sum)"
  printf '%s\n' "$sum"
}

main "$@"
