#!/usr/bin/env bash
# install-release.sh: unpack a rendered release bundle (base64 tar.gz on stdin) into releases/<id>.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: install-release.sh --id RELEASE --hash CONTENT_HASH --release-hash RELEASE_HASH
                          [--lock-wait S] [--app-dir /opt/APP] < bundle.tgz.b64

Reads a base64-encoded tar.gz release bundle on stdin and installs it as
APP_DIR/releases/RELEASE. The bundle holds compose.yaml, release.json, .env.example,
optionally systemd/, images/*.tar and the files the compose file binds by relative path
(subdirectories of plain files), at its top level (or under one top-level directory).
release.json's content_hash must equal --hash, its release_hash --release-hash and its
release_id RELEASE. The release dir gets `.env -> ../../shared/.env`, so `docker compose
ps|logs` typed in APP_DIR/current work as typed.

A new release is unpacked into releases/.tmp-RELEASE-PID, COMPLETE is written inside, and
the directory is renamed to releases/RELEASE with mv -T: a release directory never exists
without COMPLETE.

An installed RELEASE (with COMPLETE):
  - same content hash: a no-op (stdin is drained)
  - same release hash, another content hash (the stack's host configuration changed: the
    release is re-rendered): under state/deploy.lock, each file of the bundle replaces its
    installed copy by an atomic rename (release.json last), files no longer in the bundle
    are removed and COMPLETE is rewritten; also when RELEASE is current (activate.sh then
    re-applies it). An interrupted re-render is completed by running it again.
  - another release hash: refused (release IDs are immutable), nothing changes
Bundle members must be regular files or directories with relative paths and no "..";
a member named .env, COMPLETE or images.lock is refused.

Options:
  --id RELEASE                ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$, no ".."
  --hash CONTENT_HASH         expected release.json content_hash (this rendered bundle)
  --release-hash RELEASE_HASH expected release.json release_hash (the release's identity)
  --lock-wait S               seconds a re-render waits for state/deploy.lock (default 300)
  --app-dir DIR               app directory (default: derived from the script's place)
  -h, --help                  this help

Prints APP_DIR/releases/RELEASE on stdout.

Exit codes:
  0   installed, re-rendered, or already installed with the same content hash
  1   error (no APP_DIR/releases, I/O failure)
  2   invalid input (bad id or hash, stdin not base64/tar.gz, unsafe member,
      release.json missing/invalid, content_hash, release_hash or release_id mismatch,
      no compose.yaml)
  3   RELEASE is installed with another release hash (release IDs are immutable)
  4   lock busy (a re-render waits for state/deploy.lock, held by an activation)
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

# hash_of DIR FIELD: content_hash or release_hash of DIR/release.json ("" when unreadable).
hash_of() { rel_get "$1" ".$2 | strings"; }

# bundle_root: the bundle's top directory in TMP_DIR (TMP_DIR, or its one subdirectory
# holding release.json).
bundle_root() {
  local entries=()
  mapfile -t entries < <(find "$TMP_DIR" -mindepth 1 -maxdepth 1)
  if [[ ! -f "$TMP_DIR/release.json" && "${#entries[@]}" -eq 1 && -f "${entries[0]}/release.json" ]]; then
    printf '%s\n' "${entries[0]}"
  else
    printf '%s\n' "$TMP_DIR"
  fi
}

# unpack ID HASH RELEASE_HASH: stdin into TMP_DIR (releases/.tmp-ID-PID), checked.
unpack() {
  local id="$1" hash="$2" rhash="$3" root entries member bad types
  log INFO "receiving release $id (content hash $hash, release hash $rhash)"
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

  root="$(bundle_root)"
  [[ -f "$root/release.json" ]] || die 2 "the bundle has no release.json"
  jq -e 'type == "object"' "$root/release.json" >/dev/null 2>&1 || die 2 "release.json is not a JSON object"
  [[ "$(hash_of "$root" content_hash)" == "$hash" ]] ||
    die 2 "content hash mismatch: release.json says '$(hash_of "$root" content_hash)', expected '$hash'"
  [[ "$(hash_of "$root" release_hash)" == "$rhash" ]] ||
    die 2 "release hash mismatch: release.json says '$(hash_of "$root" release_hash)', expected '$rhash'"
  member="$(rel_get "$root" '.release_id')"
  [[ -z "$member" || "$member" == "$id" ]] || die 2 "release.json is for release '$member', not '$id'"
  [[ -f "$root/compose.yaml" ]] || die 2 "the bundle has no compose.yaml"
  [[ ! -e "$root/.env" && ! -e "$root/COMPLETE" && ! -e "$root/images.lock" ]] ||
    die 2 "the bundle holds a .env, COMPLETE or images.lock file (the VM makes those)"
  chmod 755 -- "$root"
}

# complete DIR HASH RELEASE_HASH: the .env link and COMPLETE (atomically) in DIR.
complete() {
  [[ -L "$1/.env" ]] || ln -s ../../shared/.env "$1/.env"
  printf 'installed_at=%s\ncontent_hash=%s\nrelease_hash=%s\n' "$(iso_now)" "$2" "$3" | atomic_write "$1/COMPLETE" 644
}

# rerender ROOT DEST HASH RELEASE_HASH: replace DEST's files with ROOT's, one atomic rename
# each (release.json last), remove the files ROOT no longer has, rewrite COMPLETE.
rerender() {
  local root="$1" dest="$2" f n=0 gone=0
  local -A bundle=()
  while IFS= read -r -d '' f; do bundle["$f"]=1; done < <(cd "$root" && find . -type f -printf '%P\0')
  for f in "${!bundle[@]}"; do
    [[ "$f" != release.json ]] || continue
    mkdir -p -- "$(dirname -- "$dest/$f")"
    mv -T -- "$root/$f" "$dest/$f"
    n=$((n + 1))
  done
  while IFS= read -r -d '' f; do
    if [[ "$f" != COMPLETE && "$f" != images.lock && -z "${bundle[$f]:-}" ]]; then
      rm -f -- "${dest:?}/$f"
      gone=$((gone + 1))
    fi
  done < <(cd "$dest" && find . -type f -printf '%P\0')
  find "$dest" -mindepth 1 -type d -empty -delete
  sync -f -- "$dest" 2>/dev/null || true
  mv -T -- "$root/release.json" "$dest/release.json"
  complete "$dest" "$3" "$4"
  log INFO "release $(basename -- "$dest") re-rendered in place: $((n + 1)) files replaced, $gone removed (content hash $3)"
}

main() {
  local id="" hash="" rhash="" lock_wait=300 releases dest root current_target
  while (($#)); do
    case "$1" in
      --id) need_value "$@"; id="$2"; shift 2 ;;
      --id=*) id="${1#*=}"; shift ;;
      --hash) need_value "$@"; hash="$2"; shift 2 ;;
      --hash=*) hash="${1#*=}"; shift ;;
      --release-hash) need_value "$@"; rhash="$2"; shift 2 ;;
      --release-hash=*) rhash="${1#*=}"; shift ;;
      --lock-wait) need_value "$@"; lock_wait="$2"; shift 2 ;;
      --lock-wait=*) lock_wait="${1#*=}"; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  [[ -n "$id" ]] || usage_error "--id is required"
  [[ -n "$hash" ]] || usage_error "--hash is required"
  [[ -n "$rhash" ]] || usage_error "--release-hash is required"
  [[ "$lock_wait" =~ ^[0-9]+$ ]] || usage_error "--lock-wait must be a number of seconds"
  use_app_dir "$APP_DIR_ARG"
  valid_release_id "$id" || die 2 "invalid release id '$id' (must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\$ without '..')"
  [[ "$hash" =~ ^[A-Za-z0-9:._+/=-]{1,200}$ ]] || die 2 "invalid --hash value"
  [[ "$rhash" =~ ^[A-Za-z0-9:._+/=-]{1,200}$ ]] || die 2 "invalid --release-hash value"
  command -v jq >/dev/null 2>&1 || die 1 "jq is not installed (run bootstrap-host.sh)"
  releases="$APP_DIR/releases"
  [[ -d "$releases" ]] || die 1 "$releases does not exist (run bootstrap-host.sh first)"
  dest="$releases/$id"
  TMP_BUNDLE="$releases/.tmp-$id-$$.tgz"
  TMP_DIR="$releases/.tmp-$id-$$"
  trap cleanup EXIT
  umask 022

  if [[ -f "$dest/COMPLETE" ]]; then
    if [[ "$(hash_of "$dest" content_hash)" == "$hash" ]]; then
      cat >/dev/null || true
      [[ -L "$dest/.env" ]] || ln -s ../../shared/.env "$dest/.env"
      log INFO "release $id is already installed with content hash $hash: nothing to do"
      printf '%s\n' "$dest"
      exit 0
    fi
    if [[ "$(hash_of "$dest" release_hash)" != "$rhash" ]]; then
      cat >/dev/null || true
      die 3 "release IDs are immutable: $id is installed with release hash $(hash_of "$dest" release_hash | grep . || echo unknown), refusing a bundle with release hash $rhash (nothing changed; use a new release id)"
    fi
    unpack "$id" "$hash" "$rhash"
    root="$(bundle_root)"
    take_lock 9 "$APP_DIR/state/deploy.lock" "$lock_wait" "pid=$$ script=install-release.sh release=$id since=$(iso_now)"
    rerender "$root" "$dest" "$hash" "$rhash"
    printf '%s\n' "$dest"
    exit 0
  fi
  if [[ -e "$dest" || -L "$dest" ]]; then
    # Not written by this script (it renames only complete directories): set it aside.
    current_target="$(readlink -- "$APP_DIR/current" 2>/dev/null || true)"
    if [[ "${current_target%/}" == "releases/$id" || "${current_target%/}" == "$dest" ]]; then
      die 1 "$dest has no COMPLETE but 'current' points to it: repair by hand"
    fi
    log WARN "$dest exists without COMPLETE (an interrupted manual copy?): removing it"
    mv -T -- "$dest" "$releases/.trash-$id-$$"
    rm -rf -- "$releases/.trash-$id-$$"
  fi

  unpack "$id" "$hash" "$rhash"
  root="$(bundle_root)"
  complete "$root" "$hash" "$rhash"
  if ! mv -T -- "$root" "$dest" 2>/dev/null; then
    # Another upload of the same id won the race.
    [[ -f "$dest/COMPLETE" && "$(hash_of "$dest" content_hash)" == "$hash" ]] ||
      die 1 "cannot rename the unpacked bundle to $dest"
  fi
  log INFO "release $id installed in $dest"
  printf '%s\n' "$dest"
}

main "$@"
