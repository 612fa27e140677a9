#!/usr/bin/env bash
# Local "fresh cloud VM" sandboxes: Docker containers running systemd, sshd (key-only)
# and a sudo user `deploy`, with no Docker engine inside, reachable on 127.0.0.1.
#
# Usage: scripts/sandbox.sh COMMAND [NAME]        (NAME defaults to "default")
#   up [NAME] [--with-docker]
#                          create/boot the sandbox, wait until ssh as deploy works,
#                          print its status JSON (a running sandbox: just the status);
#                          --with-docker: Docker Engine and Compose v2 preinstalled
#                          (sandbox/vm-docker), for tests that do not test their install
#   down [NAME]            remove the container, its volumes and its state
#   reboot [NAME]          restart the container like a VM reboot (volumes and host key
#                          kept), wait for ssh, print the status JSON
#   ssh NAME [-- CMD...]   ssh in as deploy with the pinned host key
#   status [NAME]          print one JSON object: name, container, running, host, port,
#                          user, privateKeyPath, hostPublicKey, httpPort, httpsPort,
#                          knownHostsPath, stateDir
#   list                   one line per sandbox: NAME RUNNING SSH HTTP HTTPS CONTAINER
#   -h, --help             this text
# Env:   ONEVM_CACHE (default ~/.cache/onevm): state in $ONEVM_CACHE/sandboxes/NAME/
#        ONEVM_SANDBOX_WAIT seconds to wait for ssh after a boot (default 120)
# Output: JSON on stdout; progress as "[YYYY-MM-DD HH:MM:SS] LEVEL: msg" on stderr.
# Exit:  0 ok; 1 failure (engine, image build, container); 2 bad usage;
#        3 no such sandbox; 4 timed out waiting for ssh; `ssh` returns the remote
#        command's status (255: ssh itself failed)
set -euo pipefail

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }
die() { log ERROR "$2"; exit "$1"; }

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${ONEVM_CACHE:-$HOME/.cache/onevm}
wait_s=${ONEVM_SANDBOX_WAIT:-120}
base_image=onevm/debian:trixie
vm_dir=$root/sandbox/vm
user=deploy
host=127.0.0.1
lockdir=/run/lock; [ -w "$lockdir" ] || lockdir=/tmp

cmd=${1:-}
case "$cmd" in
  -h|--help|help) usage; exit 0 ;;
  up|down|reboot|status|ssh) shift; name=${1:-default}; if [ $# -gt 0 ]; then shift; fi ;;
  list) shift ;;
  "") usage >&2; exit 2 ;;
  *) log ERROR "unknown command: $cmd"; usage >&2; exit 2 ;;
esac
with_docker=0
if [ "$cmd" = up ] && [ "${1:-}" = --with-docker ]; then with_docker=1; shift; fi
if [ "$cmd" != ssh ] && [ "$cmd" != list ] && [ $# -gt 0 ]; then
  die 2 "unexpected arguments after '$cmd ${name}': $*"
fi
if [ "$cmd" = list ] && [ $# -gt 0 ]; then die 2 "list takes no arguments"; fi
if [ "$cmd" != list ] && ! [[ $name =~ ^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$ ]]; then
  die 2 "bad sandbox name '$name': lowercase letters, digits and inner '-', at most 32"
fi

container=onevm-sandbox-${name:-}
state=$cache/sandboxes/${name:-}
key=$state/id_ed25519
known=$state/known_hosts

# --- small helpers ---------------------------------------------------------------------

json_str() { local s=$1; s=${s//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

container_exists() { docker container inspect "$container" >/dev/null 2>&1; }
container_running() { [ "$(docker container inspect -f '{{.State.Running}}' "$container" 2>/dev/null)" = true ]; }

# ports file: "ssh=N http=N https=N"
read_ports() {
  ssh_port='' http_port='' https_port=''
  [ -r "$state/ports" ] || return 1
  local k v
  while IFS='=' read -r k v; do
    case "$k" in ssh) ssh_port=$v ;; http) http_port=$v ;; https) https_port=$v ;; esac
  done <"$state/ports"
  [ -n "$ssh_port" ] && [ -n "$http_port" ] && [ -n "$https_port" ]
}

port_taken() {
  local p=$1 f
  if ss -Htan "( sport = :$p )" 2>/dev/null | grep -q .; then return 0; fi
  for f in "$cache"/sandboxes/*/ports; do
    [ -r "$f" ] && grep -qx "[a-z]*=$p" "$f" && return 0
  done
  return 1
}

# Free loopback ports below Linux's ephemeral range, recorded so that they stay the same
# for this sandbox across reboots. Call with the global lock held.
allocate_ports() {
  command -v ss >/dev/null 2>&1 || die 1 "ss (iproute2) is needed to find free ports"
  local picked=() p tries=0
  while [ "${#picked[@]}" -lt 3 ]; do
    tries=$((tries + 1)); [ "$tries" -le 500 ] || die 1 "found no free loopback port"
    p=$((20000 + RANDOM % 12000))
    port_taken "$p" && continue
    [[ " ${picked[*]} " == *" $p "* ]] && continue
    picked+=("$p")
  done
  printf 'ssh=%s\nhttp=%s\nhttps=%s\n' "${picked[@]}" >"$state/ports.tmp"
  mv -f "$state/ports.tmp" "$state/ports"
  read_ports
}

ssh_opts() {
  read_ports || die 3 "sandbox '$name' has no state in $state (run: $0 up $name)"
  SSH_OPTS=(-F /dev/null -i "$key" -o IdentitiesOnly=yes -o BatchMode=yes
    -o UserKnownHostsFile="$known" -o GlobalKnownHostsFile=/dev/null
    -o StrictHostKeyChecking=yes -o LogLevel=ERROR -o ConnectTimeout=5
    -o ServerAliveInterval=15 -p "$ssh_port")
}

# The host key as the "cloud console" shows it: read from the VM's disk, not over ssh.
console_host_key() {
  local k
  k=$(docker exec "$container" cat /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null) || return 1
  k=$(printf '%s\n' "$k" | awk 'NR == 1 && $1 == "ssh-ed25519" && $2 ~ /^AAAA[A-Za-z0-9+\/=]+$/ { print $1 " " $2 }')
  [ -n "$k" ] && printf '%s\n' "$k"
}

pinned_host_key() { [ -r "$known" ] && awk 'NR == 1 { print $2 " " $3 }' "$known"; }

# image_tag REPO DIR FROM_IMAGE: REPO:<hash of DIR's files and FROM_IMAGE's id>.
image_tag() {
  local h
  h=$( { (cd "$2" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
        docker image inspect -f '{{.Id}}' "$3"; } | sha256sum | cut -c1-12)
  printf '%s:%s\n' "$1" "$h"
}

# build_image IMAGE DIR [docker build args...]: builds IMAGE from DIR unless it exists.
build_image() {
  local image=$1 dir=$2 t0=$SECONDS blog
  shift 2
  docker image inspect "$image" >/dev/null 2>&1 && return 0
  exec 6>"$lockdir/onevm-sandbox-build.lock"
  flock -w 900 6 || die 1 "timed out waiting for another build of a sandbox VM image"
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    log INFO "building $image from ${dir#"$root"/}"
    blog=$(mktemp)
    if ! DOCKER_BUILDKIT=0 docker build --label "onevm.context=${image#*:}" -t "$image" "$@" "$dir" >"$blog" 2>&1; then
      tail -n 30 "$blog" >&2; rm -f "$blog"
      die 1 "docker build of $image failed"
    fi
    rm -f "$blog"
    log INFO "built $image in $((SECONDS - t0)) s"
  fi
  exec 6>&-
}

# build_vm_image: sets image to the VM image to run (the Docker flavour with --with-docker).
build_vm_image() {
  "$root/scripts/install-docker.sh" || die 1 "no Docker engine"
  "$root/scripts/base-image.sh" || die 1 "base image $base_image could not be built"
  image=$(image_tag onevm/sandbox-vm "$vm_dir" "$base_image")
  build_image "$image" "$vm_dir"
  if [ "$with_docker" = 1 ]; then
    local plain=$image
    image=$(image_tag onevm/sandbox-vm-docker "$root/sandbox/vm-docker" "$plain")
    build_image "$image" "$root/sandbox/vm-docker" --build-arg "VM_IMAGE=$plain"
  fi
}

# Wait (bounded, with visible progress) until the VM generated its host key and ssh as
# deploy works. $1: "pin" to (re)pin the key read out of band, "check" to require the
# already pinned one.
wait_ready() {
  local mode=$1 t0=$SECONDS deadline=$((SECONDS + wait_s)) k='' last=0
  ssh_opts
  log INFO "waiting for $container to boot (host key, then ssh $user@$host:$ssh_port; up to ${wait_s}s)"
  until k=$(console_host_key); do
    container_running || { docker logs --tail 20 "$container" >&2 2>&1 || true; die 1 "$container stopped while booting"; }
    [ "$SECONDS" -lt "$deadline" ] || die 4 "no SSH host key in $container after ${wait_s}s"
    sleep 0.2
  done
  if [ "$mode" = pin ] || [ ! -s "$known" ]; then
    printf '[%s]:%s %s\n' "$host" "$ssh_port" "$k" >"$known.tmp"
    mv -f "$known.tmp" "$known"
  elif [ "$(pinned_host_key)" != "$k" ]; then
    die 1 "host key of $container changed: pinned '$(pinned_host_key)', console shows '$k'"
  fi
  until ssh "${SSH_OPTS[@]}" -o ConnectTimeout=2 "$user@$host" true </dev/null 2>/dev/null; do
    container_running || { docker logs --tail 20 "$container" >&2 2>&1 || true; die 1 "$container stopped while booting"; }
    if [ "$SECONDS" -ge "$deadline" ]; then
      ssh "${SSH_OPTS[@]}" -o ConnectTimeout=2 "$user@$host" true </dev/null || true
      die 4 "ssh $user@$host:$ssh_port did not work within ${wait_s}s"
    fi
    if [ $((SECONDS - last)) -ge 5 ]; then log INFO "  ... still waiting for ssh ($((SECONDS - t0)) s)"; last=$SECONDS; fi
    sleep 0.2
  done
  log INFO "ssh $user@$host:$ssh_port ready after $((SECONDS - t0)) s"
}

print_status() {
  local running=false k=''
  [ -d "$state" ] || container_exists || die 3 "no sandbox named '$name'"
  read_ports || true
  if container_running; then running=true; k=$(console_host_key || true); fi
  [ -n "$k" ] || k=$(pinned_host_key || true)
  printf '{"name":%s,"container":%s,"running":%s,"host":%s,"port":%s,"user":%s,"privateKeyPath":%s,"hostPublicKey":%s,"httpPort":%s,"httpsPort":%s,"knownHostsPath":%s,"stateDir":%s}\n' \
    "$(json_str "$name")" "$(json_str "$container")" "$running" "$(json_str "$host")" \
    "${ssh_port:-null}" "$(json_str "$user")" "$(json_str "$key")" \
    "$(if [ -n "$k" ]; then json_str "$k"; else printf null; fi)" \
    "${http_port:-null}" "${https_port:-null}" "$(json_str "$known")" "$(json_str "$state")"
}

# --- commands ---------------------------------------------------------------------------

# One command at a time per sandbox.
name_lock() {
  mkdir -p "$cache/sandboxes"
  exec 8>"$cache/sandboxes/.$name.lock"
  flock -w 300 8 || die 1 "another sandbox.sh command on '$name' is still running"
}

cmd_up() {
  "$root/scripts/install-docker.sh" || die 1 "no Docker engine"
  name_lock
  if container_running; then
    log INFO "$container is already running"
    wait_ready check
    print_status; return 0
  fi
  if container_exists; then
    log INFO "starting the stopped $container (a powered-off VM)"
    docker start "$container" >/dev/null || die 1 "docker start $container failed"
    wait_ready check
    print_status; return 0
  fi

  build_vm_image
  mkdir -p "$state/seed"
  chmod 700 "$state"
  if [ ! -s "$key" ] || [ ! -s "$key.pub" ]; then
    rm -f "$key" "$key.pub"
    ssh-keygen -q -t ed25519 -N '' -C "$user@$container" -f "$key"
  fi
  cp "$key.pub" "$state/seed/authorized_keys.tmp"
  mv -f "$state/seed/authorized_keys.tmp" "$state/seed/authorized_keys"
  chmod 755 "$state/seed"; chmod 644 "$state/seed/authorized_keys"

  local v attempt fresh=0 out
  for v in docker opt; do
    docker volume inspect "$container-$v" >/dev/null 2>&1 ||
      docker volume create --label "onevm.sandbox=$name" "$container-$v" >/dev/null
  done
  for attempt in 1 2 3; do
    exec 7>"$lockdir/onevm-sandbox-ports.lock"
    flock -w 120 7 || die 1 "timed out waiting for the port allocation lock"
    if ! read_ports; then allocate_ports; fresh=1; fi
    log INFO "creating $container from $image (ssh 127.0.0.1:$ssh_port, http :$http_port, https :$https_port)"
    if out=$(docker run -d --name "$container" --hostname "sandbox-$name" \
        --label "onevm.sandbox=$name" --label "onevm.sandbox.state=$state" \
        --cap-add ALL --cap-drop SYS_RESOURCE \
        --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
        --security-opt systempaths=unconfined --device-cgroup-rule 'a *:* rwm' \
        --cgroupns=private --tmpfs /run --tmpfs /run/lock \
        --stop-timeout 60 --restart on-failure \
        -v "$container-docker:/var/lib/docker" -v "$container-opt:/opt" \
        -v "$state/seed:/var/lib/onevm-seed:ro" \
        -p "$host:$ssh_port:22" -p "$host:$http_port:80" -p "$host:$https_port:443" \
        "$image" 2>&1); then
      exec 7>&-
      break
    fi
    exec 7>&-
    docker rm -f "$container" >/dev/null 2>&1 || true
    if [ "$fresh" = 1 ] && [ "$attempt" -lt 3 ] && [[ $out == *"already"* || $out == *"in use"* ]]; then
      log WARN "port clash ($out); picking other ports"
      rm -f "$state/ports"; continue
    fi
    printf '%s\n' "$out" >&2
    die 1 "docker run of $container failed"
  done
  wait_ready pin
  print_status
}

cmd_reboot() {
  "$root/scripts/install-docker.sh" || die 1 "no Docker engine"
  name_lock
  container_exists || die 3 "no container $container (run: $0 up $name)"
  if container_running; then
    log INFO "rebooting $container (systemd shuts down, then boots again)"
    local t0=$SECONDS
    docker restart -t 60 "$container" >/dev/null || die 1 "docker restart $container failed"
    log INFO "container restarted in $((SECONDS - t0)) s"
  else
    log INFO "$container was stopped; booting it"
    docker start "$container" >/dev/null || die 1 "docker start $container failed"
  fi
  wait_ready check
  print_status
}

cmd_down() {
  "$root/scripts/install-docker.sh" || die 1 "no Docker engine"
  name_lock
  if container_exists; then
    log INFO "removing $container"
    docker rm -f "$container" >/dev/null || die 1 "docker rm $container failed"
  fi
  local v
  for v in docker opt; do
    if docker volume inspect "$container-$v" >/dev/null 2>&1; then
      docker volume rm "$container-$v" >/dev/null || die 1 "docker volume rm $container-$v failed"
    fi
  done
  rm -rf "$state"
  log INFO "sandbox '$name' is gone"
}

cmd_ssh() {
  container_exists || die 3 "no container $container (run: $0 up $name)"
  if [ ! -s "$key" ] || [ ! -s "$known" ]; then
    die 3 "sandbox '$name' has no key or pinned host key in $state"
  fi
  ssh_opts
  if [ "${1:-}" = -- ]; then shift; fi
  local tty=()
  if [ $# -eq 0 ] && [ -t 0 ]; then tty=(-t); fi
  exec ssh "${SSH_OPTS[@]}" "${tty[@]}" "$user@$host" "$@"
}

cmd_list() {
  local names n
  names=$( { docker ps -a --filter label=onevm.sandbox --format '{{.Label "onevm.sandbox"}}' 2>/dev/null || true
             for n in "$cache"/sandboxes/*/; do [ -d "$n" ] && basename "$n"; done; } | sort -u)
  printf '%-20s %-8s %-6s %-6s %-6s %s\n' NAME RUNNING SSH HTTP HTTPS CONTAINER
  for n in $names; do
    name=$n container=onevm-sandbox-$n state=$cache/sandboxes/$n
    read_ports || true
    local r=false; container_running && r=true
    container_exists || r=absent
    printf '%-20s %-8s %-6s %-6s %-6s %s\n' "$n" "$r" "${ssh_port:--}" "${http_port:--}" "${https_port:--}" "$container"
  done
}

case "$cmd" in
  up) cmd_up ;;
  down) cmd_down ;;
  reboot) cmd_reboot ;;
  status) print_status ;;
  ssh) cmd_ssh "$@" ;;
  list) cmd_list ;;
esac
