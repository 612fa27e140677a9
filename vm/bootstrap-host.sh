#!/usr/bin/env bash
# bootstrap-host.sh: Docker Engine + Compose v2, the deploy user's docker group, /opt/APP layout.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: sudo bootstrap-host.sh --app APP --user USER [--data-dir DIR]... [--tools HASH]
                             [--app-dir /opt/APP]

Prepares a Debian 13 (trixie) or Ubuntu 24.04 host for onevm, changing only what is
missing (fast no-op when done):
  - Docker Engine + Compose v2 from the distribution (Debian: docker.io docker-cli
    docker-compose; Ubuntu: docker.io docker-compose-v2), plus jq curl tar gzip;
    apt waits up to 300 s for the dpkg lock
  - docker.service enabled and started (systemd)
  - USER in the docker group (takes effect on USER's next login)
  - APP_DIR and its releases/ shared/ (700) backups/ state/ state/incidents/ logs/
    images/ bin/, owned by USER, mode 755 unless noted
  - each --data-dir DIR when missing (root, 755; e.g. a database volume's directory on a
    mounted DigitalOcean volume, which the compose file binds; an existing one is left
    as it is: the container that owns its data sets its owner)
Must run as root.

Options:
  --app APP       app name: compose project name ([a-z0-9][a-z0-9_-]*)
  --user USER     deploy user (must exist)
  --data-dir DIR  a data directory to create when missing (absolute; repeatable)
  --app-dir DIR   default /opt/APP
  --tools HASH    the version of onevm's scripts this run belongs to: APP_DIR/bin must
                  point at tools/HASH (onevm passes it, so a new version re-runs bootstrap)
  -h, --help      this help

Exit codes:
  0   host ready
  1   error (not root, no systemd, unknown user, Docker did not start)
  2   unsupported distribution (no Compose v2 package known for it)
  3   package installation failed
  64  usage error
Log: APP_DIR/logs/bootstrap-host.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

CHANGED=0
APT_MS=0

# ensure_dir PATH MODE USER GROUP
ensure_dir() {
  local path="$1" mode="$2" user="$3" group="$4"
  if [[ ! -d "$path" ]]; then
    install -d -m "$mode" -o "$user" -g "$group" -- "$path"
    log INFO "created $path ($mode, $user:$group)"
    CHANGED=1
    return 0
  fi
  if [[ "$(stat -c '%U:%G' -- "$path")" != "$user:$group" ]]; then
    chown -- "$user:$group" "$path"
    log INFO "chown $user:$group $path"
    CHANGED=1
  fi
  if [[ "$(stat -c '%a' -- "$path")" != "$mode" ]]; then
    chmod -- "$mode" "$path"
    log INFO "chmod $mode $path"
    CHANGED=1
  fi
}

compose_ok() { docker compose version >/dev/null 2>&1; }

apt_install() {
  local t0
  t0="$(date +%s%N)"
  export DEBIAN_FRONTEND=noninteractive
  log INFO "installing: $*"
  apt-get -o DPkg::Lock::Timeout=300 update -qq || die 3 "apt-get update failed"
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >&2 ||
    die 3 "apt-get install $* failed"
  APT_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
  CHANGED=1
}

install_packages() {
  local id="" version="" like="" pkgs=()
  # shellcheck disable=SC1091
  if [[ -r /etc/os-release ]]; then
    id="$(. /etc/os-release && printf '%s' "${ID:-}")"
    version="$(. /etc/os-release && printf '%s' "${VERSION_ID:-}")"
    like="$(. /etc/os-release && printf '%s' "${ID_LIKE:-}")"
  fi
  command -v jq >/dev/null 2>&1 || pkgs+=(jq)
  command -v curl >/dev/null 2>&1 || pkgs+=(curl ca-certificates)
  command -v tar >/dev/null 2>&1 || pkgs+=(tar)
  command -v gzip >/dev/null 2>&1 || pkgs+=(gzip)
  command -v flock >/dev/null 2>&1 || pkgs+=(util-linux)
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1 || ! compose_ok; then
    case "$id" in
      debian)
        [[ "${version%%.*}" =~ ^[0-9]+$ && "${version%%.*}" -ge 13 ]] ||
          die 2 "Debian $version has no Compose v2 package: use Debian 13 (trixie) or newer, or install Docker first"
        command -v dockerd >/dev/null 2>&1 || pkgs+=(docker.io)
        command -v docker >/dev/null 2>&1 || pkgs+=(docker-cli)
        compose_ok || pkgs+=(docker-compose)
        ;;
      ubuntu)
        [[ "${version%%.*}" =~ ^[0-9]+$ && "${version%%.*}" -ge 24 ]] ||
          die 2 "Ubuntu $version is not supported: use Ubuntu 24.04 or newer, or install Docker first"
        command -v dockerd >/dev/null 2>&1 || pkgs+=(docker.io)
        compose_ok || pkgs+=(docker-compose-v2)
        ;;
      *)
        die 2 "unsupported distribution '${id:-unknown}'${like:+ (like $like)}: install Docker Engine and Compose v2 first"
        ;;
    esac
  fi
  if [[ "${#pkgs[@]}" -gt 0 ]]; then apt_install "${pkgs[@]}"; fi
  compose_ok || die 3 "docker compose (v2) is still not available after installing packages"
}

start_docker() {
  local i
  if ! systemctl is-enabled --quiet docker.service 2>/dev/null; then
    systemctl enable docker.service >/dev/null 2>&1 || die 1 "systemctl enable docker failed"
    log INFO "docker.service enabled"
    CHANGED=1
  fi
  if ! systemctl is-active --quiet docker.service; then
    systemctl start docker.service || die 1 "systemctl start docker failed (journalctl -u docker)"
    log INFO "docker.service started"
    CHANGED=1
  fi
  for ((i = 0; i < 60; i++)); do
    if docker info >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die 1 "the Docker engine does not answer (journalctl -u docker)"
}

main() {
  local app="" user="" tools="" group d t0
  local data_dirs=()
  t0="$(date +%s%N)"
  while (($#)); do
    case "$1" in
      --app) need_value "$@"; app="$2"; shift 2 ;;
      --app=*) app="${1#*=}"; shift ;;
      --user) need_value "$@"; user="$2"; shift 2 ;;
      --user=*) user="${1#*=}"; shift ;;
      --data-dir) need_value "$@"; data_dirs+=("$2"); shift 2 ;;
      --data-dir=*) data_dirs+=("${1#*=}"); shift ;;
      --tools) need_value "$@"; tools="$2"; shift 2 ;;
      --tools=*) tools="${1#*=}"; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  [[ -n "$app" ]] || usage_error "--app is required"
  [[ -n "$user" ]] || usage_error "--user is required"
  valid_app_name "$app" || usage_error "--app must match [a-z0-9][a-z0-9_-]* (a compose project name)"
  APP_DIR="${APP_DIR_ARG:-/opt/$app}"
  [[ "$APP_DIR" == /* ]] || usage_error "--app-dir must be absolute"
  APP_DIR="${APP_DIR%/}"
  [[ "$(basename -- "$APP_DIR")" == "$app" ]] || usage_error "the app dir's name must be the app name ($app): the scripts derive the compose project from it"
  for d in ${data_dirs[@]+"${data_dirs[@]}"}; do
    [[ "$d" == /?* && "/$d/" != */../* && "/$d/" != */./* ]] || usage_error "--data-dir must be an absolute path without . or .. components: $d"
  done
  [[ "$EUID" -eq 0 ]] || die 1 "must run as root (sudo)"
  [[ -d /run/systemd/system ]] || die 1 "systemd is not running on this host"
  id -u "$user" >/dev/null 2>&1 || die 1 "user '$user' does not exist"
  if [[ -n "$tools" && "$(readlink -- "$APP_DIR/bin")" != "tools/$tools" ]]; then
    die 1 "$APP_DIR/bin does not point at tools/$tools, the scripts this run belongs to"
  fi
  setup_logging "$APP_DIR"

  install_packages
  start_docker
  if ! getent group docker >/dev/null; then
    groupadd --system docker
    CHANGED=1
  fi
  if ! id -nG "$user" | tr ' ' '\n' | grep -qx docker; then
    usermod -aG docker "$user"
    log INFO "added $user to the docker group (effective at $user's next login)"
    CHANGED=1
  fi

  group="$(id -gn "$user")"
  ensure_dir "$APP_DIR" 755 "$user" "$group"
  setup_logging "$APP_DIR"
  for d in releases backups state state/incidents logs images bin; do
    ensure_dir "$APP_DIR/$d" 755 "$user" "$group"
  done
  ensure_dir "$APP_DIR/shared" 700 "$user" "$group"
  setup_logging "$APP_DIR"
  for d in ${data_dirs[@]+"${data_dirs[@]}"}; do
    if [[ ! -d "$d" ]]; then
      install -d -m 755 -- "$d"
      log INFO "created data directory $d"
      CHANGED=1
    fi
  done

  if [[ "$CHANGED" -eq 0 ]]; then
    log INFO "host already bootstrapped for $app ($(docker compose version --short 2>/dev/null), $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
  else
    # Logged here, not in apt_install: on a fresh host the log file exists only now (npm run bench reads it).
    [[ "$APT_MS" -eq 0 ]] || log INFO "package installs (apt-get update + install) took $APT_MS ms"
    log INFO "host ready for $app${tools:+ (onevm scripts $tools)}: Docker $(docker version --format '{{.Server.Version}}' 2>/dev/null), Compose $(docker compose version --short 2>/dev/null), $APP_DIR owned by $user"
  fi
}

main "$@"
