# shellcheck shell=bash
# handover.sh: activate.sh's zero-downtime hand-over behind the proxy. The proxy reaches
# the web role's service by its name, which resolves to every container of it; while the
# new release's web container starts beside the running one, the proxy is pinned to one
# container (a graceful config load through Caddy's admin API): the running one until the
# new one passes the web checks, then the new one; the Caddyfile (the service name) comes
# back once the old one is gone. The app starts once per switch.
# Only what the official caddy image has runs in the proxy container: the caddy binary
# (`caddy adapt`, `caddy reload`); the JSON is edited with jq on the host.
# Reads and writes the hand-over state declared in activate.sh (OLD_WEB, NEXT_WEB, PINNED,
# PROXY_JSON). Sourced after common.sh, checks.sh and journal.sh, never run.
# shellcheck disable=SC2016  # jq programs sit in single quotes
[[ "${BASH_SOURCE[0]}" != "$0" ]] || { echo "lib/handover.sh is sourced by vm/activate.sh, not run" >&2; exit 64; }

PROXY_CADDYFILE=/etc/caddy/Caddyfile

# proxy_container DIR: the running container of the proxy role of the release in DIR
# (onevm-proxy when the release names none).
proxy_container() {
  local svc
  svc="$(rel_role "$1" proxy)"
  running_container "${svc:-$ONEVM_PROXY_SERVICE}"
}

# pin_proxy DIR DIAL: point every reverse_proxy upstream of the running proxy at DIAL
# (container-name:port). The Caddyfile is adapted to JSON once per activation.
pin_proxy() {
  local proxy
  proxy="$(proxy_container "$1")"
  [[ -n "$proxy" ]] || return 1
  if [[ -z "$PROXY_JSON" ]]; then
    PROXY_JSON="$(docker exec "$proxy" caddy adapt --config "$PROXY_CADDYFILE" 2>/dev/null)" || return 1
  fi
  PINNED=true
  jq -c --arg dial "$2" 'walk(if type == "object" and has("upstreams") then .upstreams = [{dial: $dial}] else . end)' <<<"$PROXY_JSON" |
    docker exec -i "$proxy" caddy reload --config /dev/stdin >/dev/null 2>&1
}

# unpin_proxy DIR: load the Caddyfile again (gracefully). A no-op when the proxy runs it
# already, so it also undoes the pin of a killed activation.
unpin_proxy() {
  local proxy
  proxy="$(proxy_container "$1")"
  [[ -n "$proxy" ]] || return 0
  docker exec "$proxy" caddy reload --config "$PROXY_CADDYFILE" >/dev/null 2>&1 ||
    log WARN "could not reload the proxy's Caddyfile: it may still be pinned to one web container"
  PINNED=false
}

# handover_applies DIR: the release in DIR has a proxy and a web role, the proxy and one
# container of the web service run, and DIR's web service differs from the running one (so
# `up -d` would recreate it): the new one can start beside it. Sets OLD_WEB.
handover_applies() {
  local dir="$1" web want have
  local running=()
  web="$(rel_role "$dir" web)"
  [[ -n "$web" && -n "$(rel_role "$dir" proxy)" && -n "$(proxy_container "$dir")" ]] || return 1
  mapfile -t running < <(service_containers "$web")
  # None: nothing to keep serving. Several: a killed hand-over; `up -d` converges.
  ((${#running[@]} == 1)) || return 1
  OLD_WEB="${running[0]}"
  want="$(compose "$dir" config --hash "$web" 2>/dev/null | awk '{print $2}')"
  have="$(docker inspect -f '{{index .Config.Labels "com.docker.compose.config-hash"}}' "$OLD_WEB")"
  [[ -z "$want" || "$want" != "$have" ]]
}

# web_dial DIR CONTAINER: CONTAINER's name and the web role's port in the release in DIR.
web_dial() { printf '%s:%s\n' "$(container_name "$2")" "$(rel_get "$1" '.web.port')"; }

# start_next DIR: pin the proxy to the running web container, start DIR's web service as a
# second container (`up --no-recreate --scale WEB=2` keeps the old one as it is) and wait
# until it passes the web checks on its own address (every 0.25 s: Docker's own check runs
# less often; without checks, until Docker calls it running and healthy). Returns 1, with
# the new container removed and the proxy unpinned, when it does not within the health
# budget (at least 60 s).
start_next() {
  local dir="$1" web port old_dir status="" budget deadline ip nchecks line
  web="$(rel_role "$dir" web)"
  port="$(rel_get "$dir" '.web.port')"
  nchecks="$(rel_get "$dir" '.web.checks // [] | length')"
  old_dir="$dir"
  if [[ -n "$CURRENT" && "$(rel_role "$(release_dir "$CURRENT")" web)" == "$web" ]]; then old_dir="$(release_dir "$CURRENT")"; fi
  if ! pin_proxy "$dir" "$(web_dial "$old_dir" "$OLD_WEB")"; then
    log WARN "could not pin the proxy to the running $web container"
    unpin_proxy "$dir"
    return 1
  fi
  log INFO "starting $(rel_get "$dir" .release_id)'s $web beside the running one; the proxy serves from the running one meanwhile"
  # Not --no-deps: compose drops depends_on from a service started that way, so its config
  # hash would differ from the file's and the `up -d` after the hand-over would recreate it.
  # --no-recreate also holds for its dependencies (the migrations just brought them up).
  if ! run_logged compose "$dir" up -d --no-recreate --scale "$web=2" "$web"; then
    NEXT_WEB="$(service_containers "$web" | grep -vxF "$OLD_WEB" | head -n 1 || true)"
    remove_next "$dir"
    return 1
  fi
  NEXT_WEB="$(service_containers "$web" | grep -vxF "$OLD_WEB" | head -n 1 || true)"
  budget="$(awk -v r="$HEALTH_RETRIES" -v i="$HEALTH_INTERVAL" 'BEGIN { b = r * i; print (b < 60 ? 60 : int(b)) }')"
  deadline=$(($(date +%s) + budget))
  while [[ -n "$NEXT_WEB" ]] && (($(date +%s) < deadline)); do
    status="$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$NEXT_WEB" 2>/dev/null || echo gone)"
    case "$status" in
      running*unhealthy | exited* | dead* | gone) break ;;
    esac
    ip="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$NEXT_WEB" 2>/dev/null | cut -d' ' -f1)"
    if [[ "$nchecks" -gt 0 && -n "$ip" ]] && web_checks "$dir" "http://$ip:$port" 2 >/dev/null; then
      log INFO "the new $web ($(container_name "$NEXT_WEB")) passes the web checks on $ip:$port"
      return 0
    fi
    if [[ "$nchecks" -eq 0 && ("$status" == "running healthy" || "$status" == "running ") ]]; then
      log INFO "the new $web ($(container_name "$NEXT_WEB")) is $status"
      return 0
    fi
    sleep 0.25
  done
  log ERROR "the new $web is ${status:-not started} after up to ${budget}s; its last log lines:"
  [[ -z "$NEXT_WEB" ]] || docker logs --tail 20 "$NEXT_WEB" 2>&1 | while IFS= read -r line; do log ERROR "  $line"; done || true
  remove_next "$dir"
  return 1
}

# remove_next DIR: a failed hand-over: drop the new container, the proxy back to the Caddyfile.
remove_next() {
  [[ -z "$NEXT_WEB" ]] || docker rm -f "$NEXT_WEB" >/dev/null 2>&1 || true
  NEXT_WEB=""
  [[ "$PINNED" != true ]] || unpin_proxy "$1"
}

# hand_over DIR: the proxy moves to the new web container (open requests finish on the old
# one), the old one drains (`docker stop -t 30`: the app finishes in-flight requests on
# SIGTERM) and goes, then the proxy uses the service name again. The `up -d` afterwards
# keeps the new container as it is.
hand_over() {
  local dir="$1"
  pin_proxy "$dir" "$(web_dial "$dir" "$NEXT_WEB")" ||
    log WARN "could not move the proxy to the new web container; requests are retried on it once the old one stops"
  docker stop -t 30 "$OLD_WEB" >/dev/null 2>&1 || log WARN "docker stop of the old web container failed"
  docker rm -f "$OLD_WEB" >/dev/null 2>&1 || log WARN "docker rm of the old web container failed"
  NEXT_WEB=""
  unpin_proxy "$dir"
  log INFO "the proxy serves from the new web container; the old one drained and removed"
}
