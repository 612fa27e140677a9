#!/usr/bin/env bash
# install-tls.sh: install the TLS ingress proxy's Caddyfile, certificate and key from stdin.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: install-tls.sh [--proxy-uid UID] [--app-dir /opt/APP] [--caddyfile TEXT] < base64-tar.gz

Reads a base64 tar.gz on stdin holding Caddyfile and, in certificate mode, cert.pem and
key.pem, and installs them in APP_DIR/shared/tls/ (the proxy mounts it read-only at
/etc/caddy): Caddyfile and cert.pem mode 644, key.pem mode 600 owned by UID (the proxy
image's user, default 480) so nothing else but root can read it. Each file is written
to a temp name in the same directory and renamed over the old one: the directory itself
is never replaced, because a running container's bind mount keeps the directory it was
given. Files absent from the archive (acme mode: no cert/key) are removed. When a file
changed and the proxy container runs (compose service onevm-proxy of project APP, or the
proxy role's service of the current release), its configuration is reloaded gracefully
(`caddy reload --force`: open connections finish).
Prints the sha256 of the archive only; the key is never printed or logged.
Run as root (sudo): the key's owner is the proxy's uid.

Options:
  --proxy-uid UID  owner of key.pem (default 480, the user of onevm/caddy:2)
  --app-dir DIR    app directory (default: derived from the script's place)
  --caddyfile TEXT the Caddyfile the archive must hold, byte for byte (onevm passes it
                   in the command line, where `pulumi preview --diff` shows it); exit 2
                   when the archive's differs
  -h, --help       this help

Exit codes:
  0   installed (and the proxy reloaded), or unchanged
  1   error (no APP_DIR/shared, I/O failure, the running proxy rejected the new config)
  2   invalid input (not a base64 tar.gz, no Caddyfile, unexpected file names)
  64  usage error
Log: APP_DIR/logs/install-tls.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

FILES=(Caddyfile cert.pem key.pem)

main() {
  local uid=480 dir tmp f changed=false sum c extra proxy caddyfile="" check_caddyfile=false
  while (($#)); do
    case "$1" in
      --proxy-uid) need_value "$@"; uid="$2"; shift 2 ;;
      --proxy-uid=*) uid="${1#*=}"; shift ;;
      --caddyfile) need_value "$@"; caddyfile="$2"; check_caddyfile=true; shift 2 ;;
      --caddyfile=*) caddyfile="${1#*=}"; check_caddyfile=true; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  [[ "$uid" =~ ^[0-9]+$ ]] || usage_error "--proxy-uid must be a numeric uid"
  use_app_dir "$APP_DIR_ARG"
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
  if [[ "$check_caddyfile" == true ]] && ! printf '%s' "$caddyfile" | cmp -s - "$tmp/Caddyfile"; then
    die 2 "the archive's Caddyfile differs from the one given with --caddyfile"
  fi
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
  proxy="$(rel_role "$APP_DIR/current" proxy)"
  c="$(running_container "${proxy:-$ONEVM_PROXY_SERVICE}")"
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
