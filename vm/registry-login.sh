#!/usr/bin/env bash
# registry-login.sh: log the deploy user's Docker in to the app's registry (password on stdin).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: registry-login.sh --server HOST[:PORT] --username USER [--ca-certificate PEM]
                         [--app-dir /opt/APP] < password
       registry-login.sh --logout --server HOST[:PORT] [--ca-certificate PEM] [--app-dir /opt/APP]

Logs the user running it (the deploy user, who pulls the release's images) in to the
registry: `docker login SERVER --username USER --password-stdin` with the first line of
stdin, the password or access token. It reaches docker on a pipe only: never a command
line, a log line or a file of its own. Docker keeps the credentials in
~/.docker/config.json, which is set to mode 600 (its directory 700).
With --ca-certificate (the PEM of a private CA the registry's TLS certificate chains to)
the CA is first installed as /etc/docker/certs.d/SERVER/ca.crt (root, 644, atomic, with
sudo), where the Docker daemon trusts it for that registry; an identical file is left alone.
Running it again with the same input logs in again (a rotated password is this).

--logout: `docker logout SERVER`, and the CA file removed when it is the one given.

Options:
  --server HOST[:PORT]    the registry, as image references name it (required)
  --username USER         the registry user (required to log in)
  --ca-certificate PEM    the registry's private CA
  --logout                log out instead
  --app-dir DIR           app directory (default: derived from the script's place)
  -h, --help              this help

Exit codes:
  0   logged in (or out)
  1   error (no docker, the CA could not be installed, docker login failed otherwise)
  2   invalid input (empty stdin, bad server, user or certificate)
  3   the registry refused the credentials
  4   the registry could not be reached
  5   the registry's TLS certificate is not trusted (give its CA with --ca-certificate)
  64  usage error
Log: APP_DIR/logs/registry-login.log (never the password)
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

CERTS_DIR=/etc/docker/certs.d

# install_ca SERVER PEM: /etc/docker/certs.d/SERVER/ca.crt holds PEM (written only when it differs).
install_ca() {
  local server="$1" pem="$2" dir tmp
  dir="$CERTS_DIR/$server"
  if sudo -n cat -- "$dir/ca.crt" 2>/dev/null | cmp -s - <(printf '%s\n' "$pem"); then
    log INFO "the CA of $server is installed already ($dir/ca.crt)"
    return 0
  fi
  tmp="$(mktemp)"
  TMP_FILES+=("$tmp")
  printf '%s\n' "$pem" >"$tmp"
  if ! { sudo -n install -d -m 755 -- "$dir" &&
    sudo -n install -m 644 -o root -g root -- "$tmp" "$dir/.ca.crt.tmp" &&
    sudo -n mv -T -- "$dir/.ca.crt.tmp" "$dir/ca.crt"; }; then
    die 1 "cannot install the CA of $server in $dir (sudo)"
  fi
  log INFO "installed the CA of $server as $dir/ca.crt ($(openssl_subject "$tmp"))"
}

# openssl_subject FILE: the certificate's subject, when openssl is there.
openssl_subject() {
  if command -v openssl >/dev/null 2>&1; then
    openssl x509 -noout -subject -in "$1" 2>/dev/null || printf 'subject unknown'
  else
    printf 'subject not shown: no openssl'
  fi
}

# remove_ca SERVER PEM: the CA file goes when it holds PEM (installed by this script).
remove_ca() {
  local server="$1" pem="$2" dir="$CERTS_DIR/$1"
  if sudo -n cat -- "$dir/ca.crt" 2>/dev/null | cmp -s - <(printf '%s\n' "$pem"); then
    sudo -n rm -f -- "$dir/ca.crt" || log WARN "cannot remove $dir/ca.crt"
    sudo -n rmdir -- "$dir" 2>/dev/null || true
    log INFO "removed the CA of $server ($dir/ca.crt)"
  fi
}

# failure OUTPUT: the exit code and reason of a failed docker login.
failure() {
  case "$1" in
    *"connection refused"* | *"no such host"* | *"i/o timeout"* | *"no route to host"* | *"network is unreachable"* | *"Client.Timeout"* | *"TLS handshake timeout"* | *"dial tcp"*)
      printf '4 could not be reached' ;;
    *x509* | *"certificate signed by unknown authority"*)
      printf '5 its TLS certificate is not trusted (onevm:registry.caCertificate)' ;;
    *unauthorized* | *"Unauthorized"* | *"authentication required"* | *"incorrect username or password"* | *denied*)
      printf '3 refused the credentials (onevm:registry.username, onevm:registryPassword)' ;;
    *) printf '1 did not log in' ;;
  esac
}

main() {
  local server="" user="" ca="" logout=false password="" out rc=0 why code config
  while (($#)); do
    case "$1" in
      --server) need_value "$@"; server="$2"; shift 2 ;;
      --server=*) server="${1#*=}"; shift ;;
      --username) need_value "$@"; user="$2"; shift 2 ;;
      --username=*) user="${1#*=}"; shift ;;
      --ca-certificate) need_value "$@"; ca="$2"; shift 2 ;;
      --ca-certificate=*) ca="${1#*=}"; shift ;;
      --logout) logout=true; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  [[ -n "$server" ]] || usage_error "--server is required"
  [[ "$logout" == true || -n "$user" ]] || usage_error "--username is required"
  use_app_dir "$APP_DIR_ARG"
  trap remove_tmp_files EXIT
  [[ "$server" =~ ^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$ ]] || die 2 "invalid --server '$server' (host[:port])"
  [[ -z "$user" || "$user" =~ ^[!-~]{1,256}$ ]] || die 2 "invalid --username (1-256 printable characters, no spaces)"
  if [[ -n "$ca" ]]; then
    [[ "$ca" == *"-----BEGIN CERTIFICATE-----"*"-----END CERTIFICATE-----"* && "$ca" != *"PRIVATE KEY"* ]] ||
      die 2 "--ca-certificate is not a PEM certificate"
  fi
  command -v docker >/dev/null 2>&1 || die 1 "docker is not installed (run bootstrap-host.sh)"

  if [[ "$logout" == true ]]; then
    docker logout "$server" >/dev/null 2>&1 || log WARN "docker logout $server failed"
    log INFO "logged out of $server"
    [[ -z "$ca" ]] || remove_ca "$server" "$ca"
    return 0
  fi

  IFS= read -r password || [[ -n "$password" ]] || true
  [[ -n "$password" ]] || die 2 "no password on stdin"
  [[ -z "$ca" ]] || install_ca "$server" "$ca"
  # printf is a builtin: the password is on no process's command line.
  out="$(printf '%s\n' "$password" | timeout 120 docker login "$server" --username "$user" --password-stdin 2>&1)" || rc=$?
  password=""
  out="$(grep -v -e 'WARNING! Your password will be stored unencrypted' -e 'credential-stores' -e '^$' <<<"$out" || true)"
  if [[ "$rc" -ne 0 ]]; then
    why="$(failure "$out")"
    code="${why%% *}"
    log ERROR "docker login: $(tr '\n' ' ' <<<"$out")"
    die "$code" "the registry $server ${why#* } (docker login as $user, exit $rc)"
  fi
  config="${DOCKER_CONFIG:-$HOME/.docker}"
  chmod 700 -- "$config" 2>/dev/null || true
  chmod 600 -- "$config/config.json" 2>/dev/null || true
  log INFO "logged in to $server as $user (credentials in $config/config.json, mode 600)"
}

main "$@"
