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

# --- common: keep this block identical in every scripts/remote/*.sh (test/remote/lint.sh checks) ---
SCRIPT_NAME="$(basename -- "${BASH_SOURCE[0]}" .sh)"
SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
LOG_FILE=""
EX_USAGE=64

# shellcheck disable=SC2317  # not every script uses every common helper
ts() { date -u '+%Y-%m-%d %H:%M:%S'; }
# shellcheck disable=SC2317  # not every script uses every common helper
iso_now() { date -u '+%Y-%m-%dT%H:%M:%SZ'; }

# log LEVEL MESSAGE...: "[YYYY-MM-DD HH:MM:SS] LEVEL: message" (UTC) to stderr and the log file.
# shellcheck disable=SC2317  # not every script uses every common helper
log() {
  local level="$1" line
  shift
  line="[$(ts)] ${level}: $*"
  printf '%s\n' "$line" >&2
  if [[ -n "$LOG_FILE" ]]; then
    printf '%s\n' "$line" >>"$LOG_FILE" 2>/dev/null || true
  fi
}
# shellcheck disable=SC2317  # not every script uses every common helper
die() {
  local code="$1"
  shift
  log ERROR "$*"
  exit "$code"
}
# shellcheck disable=SC2317  # not every script uses every common helper
usage_error() {
  log ERROR "$*"
  printf 'Try: %s --help\n' "$SCRIPT_NAME.sh" >&2
  exit "$EX_USAGE"
}
# need_value "$@": the option in $1 must be followed by a value.
# shellcheck disable=SC2317  # not every script uses every common helper
need_value() {
  [[ $# -ge 2 && -n "$2" ]] || usage_error "option $1 needs a value"
}

# Default --app-dir: /opt/APP/bin/x.sh -> /opt/APP (also when bin -> tools/<hash>);
# /opt/APP/releases/ID/bin/x.sh -> /opt/APP; /opt/APP/tools/<hash>/x.sh -> /opt/APP.
# shellcheck disable=SC2317  # not every script uses every common helper
default_app_dir() {
  local parent phys
  if [[ "$(basename -- "$SCRIPT_DIR")" == "bin" ]]; then
    parent="$(dirname -- "$SCRIPT_DIR")"
    if [[ "$(basename -- "$(dirname -- "$parent")")" == "releases" ]]; then
      dirname -- "$(dirname -- "$parent")"
    else
      printf '%s\n' "$parent"
    fi
    return 0
  fi
  phys="$(cd -P -- "$SCRIPT_DIR" && pwd)"
  if [[ "$(basename -- "$(dirname -- "$phys")")" == "tools" ]]; then
    dirname -- "$(dirname -- "$phys")"
    return 0
  fi
  return 1
}

# resolve_app_dir VALUE: prints the absolute app dir (VALUE, else derived from the script's place).
# shellcheck disable=SC2317  # not every script uses every common helper
resolve_app_dir() {
  local dir="$1"
  if [[ -z "$dir" ]]; then
    dir="$(default_app_dir)" || usage_error "cannot derive the app dir from $SCRIPT_DIR: pass --app-dir /opt/APP"
  fi
  [[ "$dir" == /* ]] || usage_error "--app-dir must be an absolute path: $dir"
  printf '%s\n' "${dir%/}"
}

# Compose project names: lowercase letters, digits, '-' and '_', starting with a letter or digit.
# shellcheck disable=SC2317  # not every script uses every common helper
valid_app_name() { [[ "$1" =~ ^[a-z0-9][a-z0-9_-]{0,62}$ ]]; }
# shellcheck disable=SC2317  # not every script uses every common helper
valid_release_id() { [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ && "$1" != *..* ]]; }

# setup_logging APP_DIR: also append to APP_DIR/logs/<script>.log when that dir exists.
# shellcheck disable=SC2317  # not every script uses every common helper
setup_logging() {
  local dir="$1/logs" file
  [[ -d "$dir" ]] || return 0
  file="$dir/$SCRIPT_NAME.log"
  if [[ ! -e "$file" ]]; then
    : >>"$file" 2>/dev/null || return 0
    # Created by root (sudo): hand it to the app dir's owner, who writes it next time.
    if [[ "$EUID" -eq 0 ]]; then chown --reference="$1" -- "$file" 2>/dev/null || true; fi
  fi
  if [[ -w "$file" ]]; then LOG_FILE="$file"; fi
}

# atomic_write DEST MODE < content: temp file in DEST's dir, fsync, chmod, rename over DEST.
# shellcheck disable=SC2317  # not every script uses every common helper
atomic_write() {
  local dest="$1" mode="$2" tmp
  tmp="$(mktemp -- "$(dirname -- "$dest")/.$(basename -- "$dest").tmp-XXXXXX")" || return 1
  if cat >"$tmp" && chmod "$mode" -- "$tmp" && sync -- "$tmp" && mv -T -- "$tmp" "$dest"; then
    return 0
  fi
  rm -f -- "$tmp"
  return 1
}

# atomic_symlink TARGET LINK: LINK -> TARGET via a temp link and rename (never missing, never dangling).
# shellcheck disable=SC2317  # not every script uses every common helper
atomic_symlink() {
  local target="$1" link="$2" tmp
  tmp="$link.tmp-$$"
  rm -f -- "$tmp"
  ln -s -- "$target" "$tmp" && mv -T -- "$tmp" "$link"
}

# take_lock FD FILE WAIT_S HOLDER_INFO: flock FILE on FD (8 or 9), waiting at most WAIT_S
# seconds, naming the holder while waiting; exits 4 when still busy. Writes HOLDER_INFO
# into the file once held. Child processes inherit the FD, so an orphaned child of a
# killed script keeps the lock until it ends (nothing can run beside it).
# shellcheck disable=SC2317  # not every script uses every common helper
take_lock() {
  local fd="$1" file="$2" wait_s="$3" info="$4" holder
  case "$fd" in
    8) exec 8<>"$file" || die 1 "cannot open lock file $file" ;;
    9) exec 9<>"$file" || die 1 "cannot open lock file $file" ;;
    *) die 1 "take_lock: unsupported fd $fd" ;;
  esac
  if [[ "$EUID" -eq 0 ]]; then chown --reference="$(dirname -- "$file")" -- "$file" 2>/dev/null || true; fi
  if ! flock -n "$fd"; then
    holder="$(lock_holder "$file")"
    log WARN "lock $file is held by: $holder; waiting up to ${wait_s}s"
    if ! flock -w "$wait_s" "$fd"; then
      holder="$(lock_holder "$file")"
      die 4 "lock $file still busy after ${wait_s}s, held by: $holder"
    fi
  fi
  printf '%s\n' "$info" >"$file"
}
# shellcheck disable=SC2317  # not every script uses every common helper
lock_holder() {
  local info pid
  info="$(head -c 400 -- "$1" 2>/dev/null | tr '\n' ' ')"
  info="${info% }"
  [[ -n "$info" ]] || info="unknown"
  pid="$(sed -n 's/.*pid=\([0-9][0-9]*\).*/\1/p' <<<"$info")"
  if [[ -n "$pid" && ! -d "/proc/$pid" ]]; then
    info="$info (that process is gone; a child it started still holds the lock)"
  fi
  printf '%s\n' "$info"
}
# --- end common ---

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
