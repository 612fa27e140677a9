#!/usr/bin/env bash
# install-tls.sh: install the TLS ingress proxy's Caddyfile, certificate and key from stdin.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: install-tls.sh [--proxy-uid UID] [--app-dir /opt/APP] < base64-tar.gz

Reads a base64 tar.gz on stdin holding Caddyfile and, in certificate mode, cert.pem and
key.pem, and installs them in APP_DIR/shared/tls/ (the proxy mounts it read-only at
/etc/caddy): Caddyfile and cert.pem mode 644, key.pem mode 600 owned by UID (the proxy
image's user, default 480) so nothing else but root can read it. Each file is written
to a temp name in the same directory and renamed over the old one: the directory itself
is never replaced, because a running container's bind mount keeps the directory it was
given. Files absent from the archive (acme mode: no cert/key) are removed. When a file
changed and the proxy container (compose service "proxy" of project APP) runs, its
configuration is reloaded gracefully (`caddy reload --force`: open connections finish).
Prints the sha256 of the archive only; the key is never printed or logged.
Run as root (sudo): the key's owner is the proxy's uid.

Options:
  --proxy-uid UID  owner of key.pem (default 480, the user of onevm/caddy:2)
  --app-dir DIR    app directory (default: derived from the script's place)
  -h, --help       this help

Exit codes:
  0   installed (and the proxy reloaded), or unchanged
  1   error (no APP_DIR/shared, I/O failure, the running proxy rejected the new config)
  2   invalid input (not a base64 tar.gz, no Caddyfile, unexpected file names)
  64  usage error
Log: APP_DIR/logs/install-tls.log
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

FILES=(Caddyfile cert.pem key.pem)

proxy_container() {
  docker ps -q --no-trunc \
    --filter "label=com.docker.compose.project=$1" \
    --filter "label=com.docker.compose.service=proxy" \
    --filter "label=com.docker.compose.oneoff=False" 2>/dev/null | head -n 1
}

main() {
  local app_dir="" uid=480 dir tmp f changed=false sum c extra
  while (($#)); do
    case "$1" in
      --proxy-uid) need_value "$@"; uid="$2"; shift 2 ;;
      --proxy-uid=*) uid="${1#*=}"; shift ;;
      --app-dir) need_value "$@"; app_dir="$2"; shift 2 ;;
      --app-dir=*) app_dir="${1#*=}"; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown argument: $1" ;;
    esac
  done
  [[ "$uid" =~ ^[0-9]+$ ]] || usage_error "--proxy-uid must be a numeric uid"
  APP_DIR="$(resolve_app_dir "$app_dir")"
  setup_logging "$APP_DIR"
  [[ -d "$APP_DIR/shared" ]] || die 1 "$APP_DIR/shared does not exist (run bootstrap-host.sh first)"
  [[ "$EUID" -eq 0 ]] || die 1 "run as root (sudo): key.pem is owned by the proxy's uid $uid"

  umask 077
  dir="$APP_DIR/shared/tls"
  install -d -m 755 -o "$(stat -c %u -- "$APP_DIR")" -g "$(stat -c %g -- "$APP_DIR")" -- "$dir" ||
    die 1 "cannot create $dir"
  tmp="$(mktemp -d -- "$APP_DIR/shared/.tls.tmp-XXXXXX")" || die 1 "cannot create a temp dir in $APP_DIR/shared"
  # shellcheck disable=SC2064  # expand now: the path is fixed
  trap "rm -rf -- '$tmp'" EXIT
  mkdir -- "$tmp/in"
  cat >"$tmp/archive.b64" || die 1 "cannot read stdin"
  sum="$(sha256sum <"$tmp/archive.b64" | cut -d' ' -f1)"
  base64 -d <"$tmp/archive.b64" 2>/dev/null | tar -xzf - -C "$tmp/in" --no-same-owner --no-same-permissions 2>/dev/null ||
    die 2 "stdin is not a base64 tar.gz"
  tmp="$tmp/in"
  [[ -f "$tmp/Caddyfile" ]] || die 2 "stdin is not a base64 tar.gz holding a Caddyfile"
  extra="$(find "$tmp" -mindepth 1 ! -name Caddyfile ! -name cert.pem ! -name key.pem -printf '%P ' | head -c 300)"
  [[ -z "$extra" ]] || die 2 "unexpected files in the archive: $extra"
  if [[ -f "$tmp/key.pem" && ! -f "$tmp/cert.pem" ]] || [[ -f "$tmp/cert.pem" && ! -f "$tmp/key.pem" ]]; then
    die 2 "cert.pem and key.pem come together"
  fi

  for f in "${FILES[@]}"; do
    if [[ ! -f "$tmp/$f" ]]; then
      if [[ -e "$dir/$f" ]]; then rm -f -- "$dir/$f"; changed=true; log INFO "removed $dir/$f"; fi
      continue
    fi
    if [[ "$f" == key.pem ]]; then
      chown "$uid:$uid" -- "$tmp/$f" && chmod 600 -- "$tmp/$f"
    else
      chown "$(stat -c %u -- "$APP_DIR"):$(stat -c %g -- "$APP_DIR")" -- "$tmp/$f" && chmod 644 -- "$tmp/$f"
    fi
    if [[ -f "$dir/$f" ]] && cmp -s -- "$tmp/$f" "$dir/$f" &&
      [[ "$(stat -c %u:%a -- "$dir/$f")" == "$(stat -c %u:%a -- "$tmp/$f")" ]]; then
      continue
    fi
    sync -- "$tmp/$f"
    # Same file system (both under shared/): rename(2) replaces the file atomically.
    mv -T -- "$tmp/$f" "$dir/$f" || die 1 "cannot install $dir/$f"
    changed=true
    log INFO "installed $dir/$f"
  done

  if [[ "$changed" != true ]]; then
    log INFO "TLS files unchanged (archive sha256 $sum)"
    printf 'unchanged %s\n' "$sum"
    exit 0
  fi
  c="$(proxy_container "$(basename -- "$APP_DIR")")"
  if [[ -n "$c" ]]; then
    log INFO "reloading the running proxy ${c:0:12}"
    docker exec "$c" caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile --force >&2 ||
      die 1 "the running proxy rejected the new configuration (it keeps serving the old one)"
  else
    log INFO "no proxy container running yet: the next activation starts it"
  fi
  printf 'installed %s\n' "$sum"
}

main "$@"
