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

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

main() {
  local keep="" dry=false lock_wait=300 releases id path pid i deleted=0
  local -A protect=()
  local all=() rest=()
  while (($#)); do
    case "$1" in
      --keep) need_value "$@"; keep="$2"; shift 2 ;;
      --keep=*) keep="${1#*=}"; shift ;;
      --dry-run) dry=true; shift ;;
      --lock-wait) need_value "$@"; lock_wait="$2"; shift 2 ;;
      --lock-wait=*) lock_wait="${1#*=}"; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  [[ "$keep" =~ ^[1-9][0-9]*$ ]] || usage_error "--keep N (a positive integer) is required"
  [[ "$lock_wait" =~ ^[0-9]+$ ]] || usage_error "--lock-wait must be a number of seconds"
  use_app_dir "$APP_DIR_ARG"
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
    done < <(docker ps -a --filter "label=com.docker.compose.project=$APP" \
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
