#!/usr/bin/env bash
# pin-images.sh: write a release's images.lock (each service's image pinned by digest).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: pin-images.sh --id RELEASE --image SERVICE=REPOSITORY@sha256:DIGEST [--image ...]
                     [--lock-wait S] [--app-dir /opt/APP]

Writes APP_DIR/releases/RELEASE/images.lock, the digest each service of the release runs:
a JSON object SERVICE -> REPOSITORY@sha256:<64 hex> (mode 644, atomic). activate.sh pulls
each pinned image that is missing (docker pull by digest verifies the bytes), checks it,
and tags it as the reference release.json names for SERVICE before any `docker compose up`
of the release (a reference that pins a digest itself is used as it is). So a tag moved
in the registry later never changes what RELEASE runs, and a rollback to it pulls the same
bytes. Every SERVICE must be one of release.json's images. Identical content changes
nothing; a changed lock is written under state/deploy.lock (never during an activation),
and the next activation of RELEASE applies it.

Options:
  --id RELEASE            an installed release (releases/RELEASE with COMPLETE)
  --image SERVICE=PINNED  one service's pinned image (repeatable, at least one)
  --lock-wait S           seconds to wait for state/deploy.lock (default 300)
  --app-dir DIR           app directory (default: derived from the script's place)
  -h, --help              this help

Exit codes:
  0   written, or unchanged
  1   error (release not installed, I/O failure)
  2   invalid input (a malformed --image, a service release.json does not name)
  4   lock busy (state/deploy.lock held by an activation)
  64  usage error
Log: APP_DIR/logs/pin-images.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

main() {
  local id="" lock_wait=300 entry service pinned dir json
  local entries=()
  while (($#)); do
    case "$1" in
      --id) need_value "$@"; id="$2"; shift 2 ;;
      --id=*) id="${1#*=}"; shift ;;
      --image) need_value "$@"; entries+=("$2"); shift 2 ;;
      --image=*) entries+=("${1#*=}"); shift ;;
      --lock-wait) need_value "$@"; lock_wait="$2"; shift 2 ;;
      --lock-wait=*) lock_wait="${1#*=}"; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  [[ -n "$id" ]] || usage_error "--id is required"
  ((${#entries[@]} > 0)) || usage_error "at least one --image SERVICE=PINNED is required"
  [[ "$lock_wait" =~ ^[0-9]+$ ]] || usage_error "--lock-wait must be a number of seconds"
  use_app_dir "$APP_DIR_ARG"
  valid_release_id "$id" || die 2 "invalid release id '$id'"
  installed "$id" || die 1 "release $id is not installed (install-release.sh first)"
  dir="$(release_dir "$id")"

  json='{}'
  for entry in "${entries[@]}"; do
    service="${entry%%=*}"
    pinned="${entry#*=}"
    [[ "$entry" == *=* && "$service" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die 2 "invalid --image '$entry' (SERVICE=REPOSITORY@sha256:DIGEST)"
    [[ "$pinned" =~ ^[a-z0-9][a-z0-9._:/-]*@sha256:[a-f0-9]{64}$ ]] || die 2 "invalid pinned image for $service: '$pinned' (REPOSITORY@sha256:<64 hex>)"
    # shellcheck disable=SC2016  # $s is jq's
    [[ -n "$(rel_get "$dir" '.images[$s]' --arg s "$service")" ]] || die 2 "release $id names no image for service $service (release.json images)"
    json="$(jq -cS --arg s "$service" --arg p "$pinned" '. + {($s): $p}' <<<"$json")"
  done

  if [[ -f "$dir/images.lock" ]] && cmp -s -- "$dir/images.lock" <(jq -S . <<<"$json"); then
    log INFO "images.lock of $id is unchanged (${#entries[@]} images)"
    return 0
  fi
  take_lock 9 "$APP_DIR/state/deploy.lock" "$lock_wait" "pid=$$ script=pin-images.sh release=$id since=$(iso_now)"
  jq -S . <<<"$json" | atomic_write "$dir/images.lock" 644 || die 1 "cannot write $dir/images.lock"
  log INFO "images.lock of $id: $(jq -r 'to_entries | map("\(.key)=\(.value)") | join(" ")' <<<"$json")"
}

main "$@"
