#!/usr/bin/env bash
# install-release.sh: unpack a release bundle (base64 tar.gz on stdin) into releases/<id>.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: install-release.sh --id RELEASE --hash CONTENT_HASH [--app-dir /opt/APP] < bundle.tgz.b64

Reads a base64-encoded tar.gz release bundle on stdin and installs it as
APP_DIR/releases/RELEASE. The bundle holds compose.yaml, release.json, .env.example and
optionally bin/ and images/*.tar, at its top level (or under one top-level directory).
It is unpacked into releases/.tmp-RELEASE-PID, release.json's content_hash must equal
--hash (and its release_id, when present, RELEASE), COMPLETE is written inside, and the
directory is renamed to releases/RELEASE with mv -T: a release directory never exists
without COMPLETE, and it is never modified afterwards.

Release IDs are immutable: RELEASE already installed with the same hash is a no-op
(stdin is drained); with a different hash the upload is refused and nothing changes.
Bundle members must be regular files or directories with relative paths and no "..".

Options:
  --id RELEASE          ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$, no ".."
  --hash CONTENT_HASH   expected release.json content_hash
  --app-dir DIR         app directory (default: derived from the script's place)
  -h, --help            this help

Prints APP_DIR/releases/RELEASE on stdout.

Exit codes:
  0   installed, or already installed with the same hash
  1   error (no APP_DIR/releases, I/O failure)
  2   invalid input (bad id or hash, stdin not base64/tar.gz, unsafe member,
      release.json missing/invalid, content_hash or release_id mismatch, no compose.yaml)
  3   RELEASE is installed with a different content hash (release IDs are immutable)
  64  usage error
Log: APP_DIR/logs/install-release.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

TMP_BUNDLE=""
TMP_DIR=""
cleanup() {
  if [[ -n "$TMP_BUNDLE" ]]; then rm -f -- "$TMP_BUNDLE"; fi
  if [[ -n "$TMP_DIR" && -d "$TMP_DIR" ]]; then rm -rf -- "$TMP_DIR"; fi
}

# installed_hash DIR: content_hash of an installed release ("" when unreadable).
installed_hash() {
  jq -r '.content_hash // empty' "$1/release.json" 2>/dev/null || true
}

# same_or_refuse DIR ID HASH: exit 0 (no-op) when DIR holds HASH, else exit 3.
same_or_refuse() {
  local dir="$1" id="$2" hash="$3" have
  have="$(installed_hash "$dir")"
  if [[ "$have" == "$hash" ]]; then
    log INFO "release $id is already installed with content hash $hash: nothing to do"
    printf '%s\n' "$dir"
    exit 0
  fi
  die 3 "release IDs are immutable: $id is installed with content hash ${have:-unknown}, refusing a bundle with content hash $hash (nothing changed; use a new release id)"
}

main() {
  local app_dir="" id="" hash="" releases dest root entries member bad types current_target
  while (($#)); do
    case "$1" in
      --id) need_value "$@"; id="$2"; shift 2 ;;
      --id=*) id="${1#*=}"; shift ;;
      --hash) need_value "$@"; hash="$2"; shift 2 ;;
      --hash=*) hash="${1#*=}"; shift ;;
      --app-dir) need_value "$@"; app_dir="$2"; shift 2 ;;
      --app-dir=*) app_dir="${1#*=}"; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown argument: $1" ;;
    esac
  done
  [[ -n "$id" ]] || usage_error "--id is required"
  [[ -n "$hash" ]] || usage_error "--hash is required"
  APP_DIR="$(resolve_app_dir "$app_dir")"
  setup_logging "$APP_DIR"
  valid_release_id "$id" || die 2 "invalid release id '$id' (must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\$ without '..')"
  [[ "$hash" =~ ^[A-Za-z0-9:._+/=-]{1,200}$ ]] || die 2 "invalid --hash value"
  command -v jq >/dev/null 2>&1 || die 1 "jq is not installed (run bootstrap-host.sh)"
  releases="$APP_DIR/releases"
  [[ -d "$releases" ]] || die 1 "$releases does not exist (run bootstrap-host.sh first)"
  dest="$releases/$id"

  if [[ -e "$dest" || -L "$dest" ]]; then
    if [[ -f "$dest/COMPLETE" ]]; then
      cat >/dev/null || true
      same_or_refuse "$dest" "$id" "$hash"
    fi
    # Not written by this script (it renames only complete directories): set it aside.
    current_target="$(readlink -- "$APP_DIR/current" 2>/dev/null || true)"
    if [[ "${current_target%/}" == "releases/$id" || "${current_target%/}" == "$dest" ]]; then
      die 1 "$dest has no COMPLETE but 'current' points to it: repair by hand"
    fi
    log WARN "$dest exists without COMPLETE (an interrupted manual copy?): removing it"
    mv -T -- "$dest" "$releases/.trash-$id-$$"
    rm -rf -- "$releases/.trash-$id-$$"
  fi

  trap cleanup EXIT
  TMP_BUNDLE="$releases/.tmp-$id-$$.tgz"
  TMP_DIR="$releases/.tmp-$id-$$"
  umask 022
  log INFO "receiving release $id (content hash $hash)"
  base64 -d >"$TMP_BUNDLE" || die 2 "stdin is not valid base64"
  gzip -t -- "$TMP_BUNDLE" 2>/dev/null || die 2 "the bundle is not a valid gzip stream"

  # Refuse absolute paths, '..' components, links and device files before unpacking.
  entries="$(tar -tzf "$TMP_BUNDLE")" || die 2 "the bundle is not a valid tar.gz"
  [[ -n "$entries" ]] || die 2 "the bundle is empty"
  while IFS= read -r member; do
    case "/$member/" in
      //*|*/../*) die 2 "unsafe member path in the bundle: $member" ;;
    esac
  done <<<"$entries"
  types="$(tar -tvzf "$TMP_BUNDLE" | cut -c1 | sort -u | tr -d '\n')"
  bad="${types//[-d]/}"
  [[ -z "$bad" ]] || die 2 "the bundle holds members that are not regular files or directories (types: $bad)"

  mkdir -m 755 -- "$TMP_DIR"
  tar -xzf "$TMP_BUNDLE" -C "$TMP_DIR" --no-same-owner || die 2 "cannot unpack the bundle"
  rm -f -- "$TMP_BUNDLE"
  TMP_BUNDLE=""

  root="$TMP_DIR"
  if [[ ! -f "$root/release.json" ]]; then
    # One top-level directory holding the bundle is accepted too.
    mapfile -t entries < <(find "$TMP_DIR" -mindepth 1 -maxdepth 1)
    if [[ "${#entries[@]}" -eq 1 && -f "${entries[0]}/release.json" ]]; then
      root="${entries[0]}"
    fi
  fi
  [[ -f "$root/release.json" ]] || die 2 "the bundle has no release.json"
  jq -e 'type == "object"' "$root/release.json" >/dev/null 2>&1 || die 2 "release.json is not a JSON object"
  [[ "$(installed_hash "$root")" == "$hash" ]] ||
    die 2 "content hash mismatch: release.json says '$(installed_hash "$root")', expected '$hash'"
  member="$(jq -r '.release_id // empty' "$root/release.json")"
  [[ -z "$member" || "$member" == "$id" ]] || die 2 "release.json is for release '$member', not '$id'"
  [[ -f "$root/compose.yaml" ]] || die 2 "the bundle has no compose.yaml"
  rm -f -- "$root/COMPLETE"
  chmod 755 -- "$root"

  printf 'installed_at=%s\ncontent_hash=%s\n' "$(iso_now)" "$hash" >"$root/COMPLETE"
  sync -f -- "$root/COMPLETE" 2>/dev/null || sync
  if ! mv -T -- "$root" "$dest" 2>/dev/null; then
    # Another upload of the same id won the race.
    if [[ -f "$dest/COMPLETE" ]]; then same_or_refuse "$dest" "$id" "$hash"; fi
    die 1 "cannot rename the unpacked bundle to $dest"
  fi
  log INFO "release $id installed in $dest"
  printf '%s\n' "$dest"
}

main "$@"
