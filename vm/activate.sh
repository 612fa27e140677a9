#!/usr/bin/env bash
# activate.sh: the release lifecycle: backup, images, migrate, switch, start, verify, roll back.
# shellcheck disable=SC2016  # jq filters sit in single quotes
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: activate.sh --release ID [--health-retries N] [--health-interval S]
                   [--operator NAME] [--skip-backup] [--lock-wait S]
                   [--backup-min-free-mb N] [--timeout S] [--app-dir /opt/APP]

Makes installed release ID (APP_DIR/releases/ID with COMPLETE) the running one:
  1. takes state/deploy.lock (flock), then the host's activation lock (apps sharing the
     host never activate at once; /var/lib/onevm/activate.lock, made by the deploy's first
     step), each waiting at most --lock-wait seconds and naming the holder; resolves a state/activation-in-progress marker left by a killed run
  2. no-op when current already points to ID, neither shared/.env nor its compose.yaml
     changed since it was started (state/applied), every service runs the image the
     release names and one health check passes (never right after an interrupted run)
  3. pre-deploy backup (backup.sh --type pre_deployment) when APP has a postgres container
  4. images from release.json / the compose file: `docker load` of releases/ID/images/*.tar
     and APP_DIR/images/*.tar holding missing ones, else `docker pull`
  5. migrate with the NEW compose file: `up -d --wait postgres redis`, then the migrate
     service itself, once, to its exit (`up --no-deps --exit-code-from migrate migrate`);
     on failure the current release keeps serving (its services are re-applied)
  (health-check.sh and backup.sh are run with bash from this script's directory.)
  6. behind the ingress proxy (the release has a `proxy` service, the proxy and one
     bot-api container run, and bot-api's config changes): the proxy is pinned to the
     running bot-api, the new release's bot-api starts beside it (`up --no-recreate
     --scale bot-api=2 bot-api`) and must answer /health (else: rollback with nothing switched)
  7. state/previous := old release; current -> releases/ID (ln -s temp + mv -T)
  8. after a step 6 handover: the proxy moves to the new bot-api, the old one drains
     (docker stop -t 30) and goes, the proxy reloads its Caddyfile; then
     `docker compose -p APP --project-directory releases/ID -f releases/ID/compose.yaml
     --env-file shared/.env up -d --remove-orphans` of every service but migrate (it ran
     in step 5; `up` would run it again; a handed-over bot-api is kept), then health-check.sh
  9. unhealthy: current -> previous release, `up -d` it, health-check it, write
     state/incidents/<UTC>-<ID>.md, restore state/previous
Every attempt appends one JSON line to state/history.jsonl (also printed on stdout):
release, previous, started_at, finished_at, duration_s, result
(success|noop|rolled_back|migrate_failed|failed|interrupted), operator, backup, exit_code,
phase, reason, incident. A run killed at any point leaves current on the old or the new
release; the next run (same ID) detects the marker, records the killed attempt as
"interrupted" and converges.

Options:
  --release ID            release to activate (required)
  --health-retries N      health-check attempts (default 60; a rollback gets at least 60)
  --health-interval S     seconds between attempts (default 1)
  --operator NAME         recorded in history and incidents (default: $SUDO_USER or user)
  --skip-backup           no pre-deploy backup
  --lock-wait S           seconds to wait for each lock (default 300)
  --backup-min-free-mb N  passed to backup.sh --min-free-mb (default 2048)
  --timeout S             limit for each docker compose call (default 600)
  --app-dir DIR           app directory (default: derived from the script's place)
  -h, --help              this help
Testing aid: ONEVM_TEST_HOLD_PHASE=<phase> pauses ONEVM_TEST_HOLD_SECONDS (default 60)
after entering that phase (backup, images, migrate, handover, switch, up, health, rollback).

Exit codes:
  0   activated, or already active and healthy (no-op)
  1   error before anything changed (release not installed, images unavailable, ...)
  2   pre-deploy backup failed: activation aborted, nothing changed
  3   migration failed: current unchanged, the old release keeps serving
  4   lock busy (another activation holds state/deploy.lock or the host's activation lock)
  5   new release unhealthy: rolled back, previous release restored and healthy
  6   new release unhealthy and no healthy rollback (no previous release, or the
      previous one failed its health check too): needs an operator
  64  usage error
Log: APP_DIR/logs/activate.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

# ---- state -------------------------------------------------------------------------
RELEASE="" OPERATOR="" HEALTH_RETRIES=60 HEALTH_INTERVAL=1 SKIP_BACKUP=false LOCK_WAIT=300
BACKUP_MIN_FREE=2048 TIMEOUT=600
HOST_ACTIVATE_LOCK=/var/lib/onevm/activate.lock
APP="" ENV_FILE="" STATE="" MARKER="" HISTORY=""
STARTED_AT="" START_S=0 PHASE="start" FINISHED=false SIGNAL=""
CURRENT="" PREVIOUS="" PREV_PREVIOUS="" SWITCHING=false BACKUP_PATH="" INCIDENT="" RECOVERED=""
HOLD_PID="" NEXT_APP="" PINNED=false PROXY_JSON=""
OLD_APP=()
STALE_RELEASE="" STALE_PREVIOUS="" STALE_PREV_PREVIOUS="" STALE_SWITCH=false

# run_logged CMD...: run, copying its output to stderr and the log file; returns its status.
run_logged() {
  if [[ -n "$LOG_FILE" ]]; then
    # Compose's attached output (the migrate run) clears lines with terminal escapes, even
    # with --ansi never (2.26): strip them from the log.
    "$@" 2>&1 | sed -u 's/\x1b\[[0-9;]*[A-Za-z]//g' | tee -a -- "$LOG_FILE" >&2
  else
    "$@" >&2
  fi
}

# compose DIR ARGS...: docker compose for the release in DIR (project APP, shared .env).
compose() {
  local dir="$1"
  shift
  timeout "$TIMEOUT" docker compose -p "$APP" --project-directory "$dir" -f "$dir/compose.yaml" \
    --env-file "$ENV_FILE" "$@"
}

release_dir() { printf '%s\n' "$APP_DIR/releases/$1"; }
installed() { [[ -n "$1" && -f "$APP_DIR/releases/$1/COMPLETE" && -f "$APP_DIR/releases/$1/compose.yaml" ]]; }

# current_release: the id current points to ("" when absent or not an installed release).
current_release() {
  local target id
  target="$(readlink -- "$APP_DIR/current" 2>/dev/null)" || return 0
  id="$(basename -- "$target")"
  if installed "$id"; then
    printf '%s\n' "$id"
  else
    log WARN "current points to '$target', which is not an installed release: ignoring it"
  fi
}

write_state_previous() {
  if [[ -n "$1" ]]; then
    printf '%s\n' "$1" | atomic_write "$STATE/previous" 644
  else
    rm -f -- "$STATE/previous"
  fi
}

# service_containers [--all] SERVICE: ids of SERVICE's running containers, with --all the
# stopped ones too (bot-api has two only during a handover).
service_containers() {
  local all=()
  if [[ "$1" == --all ]]; then
    all=(-a)
    shift
  fi
  docker ps "${all[@]}" -q --filter "label=com.docker.compose.project=$APP" \
    --filter "label=com.docker.compose.service=$1" --filter "label=com.docker.compose.oneoff=False"
}

# running_container SERVICE: id of the running container of SERVICE ("" when none).
running_container() { service_containers "$1" | head -n 1; }

postgres_container() { service_containers --all postgres | head -n 1; }

write_marker() {
  jq -cn --arg release "$RELEASE" --arg previous "$PREVIOUS" --arg pp "$PREV_PREVIOUS" \
    --argjson switching "$SWITCHING" --argjson pid "$$" --arg operator "$OPERATOR" \
    --arg started "$STARTED_AT" --arg phase "$PHASE" --arg backup "$BACKUP_PATH" \
    '{release: $release, previous: $previous, prev_previous: $pp, switching: $switching,
      pid: $pid, operator: $operator, started_at: $started, phase: $phase,
      backup: $backup, history_written: false}' | atomic_write "$MARKER" 644
}

set_phase() {
  PHASE="$1"
  write_marker
  if [[ -n "${ONEVM_TEST_HOLD_PHASE:-}" && "$ONEVM_TEST_HOLD_PHASE" == "$PHASE" ]]; then
    log WARN "test hold: pausing ${ONEVM_TEST_HOLD_SECONDS:-60}s in phase $PHASE"
    sleep "${ONEVM_TEST_HOLD_SECONDS:-60}" &
    HOLD_PID="$!"
    wait "$HOLD_PID"
    HOLD_PID=""
  fi
}

# history_line RESULT EXIT_CODE REASON: the JSON line for this attempt.
history_line() {
  local result="$1" code="$2" reason="$3" finished now_s
  finished="$(iso_now)"
  now_s="$(date +%s)"
  jq -cn --arg release "$RELEASE" --arg previous "$PREVIOUS" --arg started "$STARTED_AT" \
    --arg finished "$finished" --argjson duration "$((now_s - START_S))" --arg result "$result" \
    --arg operator "$OPERATOR" --arg backup "$BACKUP_PATH" --argjson code "$code" \
    --arg phase "$PHASE" --arg reason "$reason" --arg incident "$INCIDENT" \
    --arg current "$(current_release 2>/dev/null)" --arg recovered "$RECOVERED" --argjson pid "$$" \
    'def n: if . == "" then null else . end;
     {release: $release, previous: ($previous | n), started_at: $started, finished_at: $finished,
      duration_s: $duration, result: $result, operator: $operator, backup: ($backup | n),
      exit_code: $code, phase: $phase, reason: ($reason | n), incident: ($incident | n),
      current_after: ($current | n), recovered_interrupted: ($recovered | n), pid: $pid}'
}

append_history() {
  local line
  line="$(history_line "$@")"
  printf '%s\n' "$line" >>"$HISTORY"
  printf '%s\n' "$line"
}

# finish RESULT EXIT_CODE MESSAGE: record the attempt, drop the marker, exit.
finish() {
  local result="$1" code="$2" msg="$3"
  FINISHED=true
  append_history "$result" "$code" "$msg"
  rm -f -- "$MARKER"
  if [[ "$code" -eq 0 ]]; then log INFO "$msg"; else log ERROR "$msg"; fi
  exit "$code"
}

# shellcheck disable=SC2317  # invoked by trap
on_signal() {
  SIGNAL="$1"
  log WARN "received SIG$1 in phase $PHASE"
  if [[ -n "$HOLD_PID" ]]; then kill "$HOLD_PID" 2>/dev/null || true; fi
  case "$1" in INT) exit 130 ;; HUP) exit 129 ;; *) exit 143 ;; esac
}

# shellcheck disable=SC2317  # invoked by trap
on_exit() {
  local rc=$? result=failed
  [[ "$FINISHED" == true ]] && return 0
  [[ -n "$SIGNAL" ]] && result=interrupted
  FINISHED=true
  append_history "$result" "$rc" "ended unexpectedly (exit $rc${SIGNAL:+, SIG$SIGNAL}) in phase $PHASE" >/dev/null || true
  if [[ -f "$MARKER" ]]; then
    jq -c '.history_written = true' "$MARKER" 2>/dev/null | atomic_write "$MARKER" 644 || true
  fi
  log ERROR "activation of $RELEASE ended unexpectedly (exit $rc) in phase $PHASE; current is '$(current_release 2>/dev/null)'; rerun activate.sh --release $RELEASE to converge"
}

# resolve_stale_marker: a marker while we hold the lock means a run was killed.
resolve_stale_marker() {
  local m hw started phase pid operator
  [[ -f "$MARKER" ]] || return 0
  m="$(cat -- "$MARKER")"
  if ! jq -e 'type == "object"' >/dev/null 2>&1 <<<"$m"; then
    log WARN "unreadable $MARKER from an interrupted activation: removing it"
    rm -f -- "$MARKER"
    RECOVERED="unknown"
    return 0
  fi
  STALE_RELEASE="$(jq -r '.release // ""' <<<"$m")"
  STALE_PREVIOUS="$(jq -r '.previous // ""' <<<"$m")"
  STALE_PREV_PREVIOUS="$(jq -r '.prev_previous // ""' <<<"$m")"
  STALE_SWITCH="$(jq -r 'if .switching == true then "true" else "false" end' <<<"$m")"
  hw="$(jq -r '.history_written // false' <<<"$m")"
  started="$(jq -r '.started_at // ""' <<<"$m")"
  phase="$(jq -r '.phase // ""' <<<"$m")"
  pid="$(jq -r '.pid // ""' <<<"$m")"
  operator="$(jq -r '.operator // ""' <<<"$m")"
  RECOVERED="$STALE_RELEASE"
  log WARN "found an interrupted activation of '$STALE_RELEASE' (pid $pid, operator $operator, started $started, phase $phase); current is '${CURRENT:-none}': resolving"
  if [[ "$hw" != "true" ]]; then
    jq -cn --arg release "$STALE_RELEASE" --arg previous "$STALE_PREVIOUS" --arg started "$started" \
      --arg finished "$(iso_now)" --arg operator "$operator" --arg phase "$phase" \
      --arg backup "$(jq -r '.backup // ""' <<<"$m")" --arg current "$CURRENT" --arg by "$$" \
      'def n: if . == "" then null else . end;
       {release: $release, previous: ($previous | n), started_at: $started, finished_at: $finished,
        duration_s: null, result: "interrupted", operator: $operator, backup: ($backup | n),
        exit_code: null, phase: $phase, reason: ("killed in phase " + $phase + "; detected by pid " + $by),
        incident: null, current_after: ($current | n)}' >>"$HISTORY"
  fi
  # Make state/previous match where current actually is.
  if [[ "$STALE_SWITCH" == true && -n "$CURRENT" && "$CURRENT" == "$STALE_RELEASE" ]]; then
    write_state_previous "$STALE_PREVIOUS"
  else
    write_state_previous "$STALE_PREV_PREVIOUS"
  fi
  rm -f -- "$MARKER"
}

cleanup_leftovers() {
  local ids
  rm -f -- "$APP_DIR"/current.tmp-*
  # A killed handover may have left the proxy pinned to one app container.
  [[ ! -f "$MARKER" ]] || unpin_proxy
  # One-off `run` containers survive only a killed run; nothing else runs while we hold the lock.
  ids="$(docker ps -a -q --filter "label=com.docker.compose.project=$APP" --filter "label=com.docker.compose.oneoff=True")"
  if [[ -n "$ids" ]]; then
    log INFO "removing leftover one-off containers of $APP"
    # shellcheck disable=SC2086  # container ids
    docker rm -f $ids >/dev/null || true
  fi
}

# stack_matches_release DIR: every service's container runs the image DIR's compose file names.
stack_matches_release() {
  local dir="$1" svc img have id
  local pairs=()
  mapfile -t pairs < <(compose "$dir" config --format json 2>/dev/null |
    jq -r '.services | to_entries[] | "\(.key) \(.value.image // "")"' 2>/dev/null)
  [[ "${#pairs[@]}" -gt 0 ]] || return 1
  for svc in "${pairs[@]}"; do
    img="${svc#* }"
    svc="${svc%% *}"
    id="$(service_containers --all "$svc" | head -n 1)"
    [[ -n "$id" ]] || return 1
    have="$(docker inspect -f '{{.Config.Image}}' "$id" 2>/dev/null)" || return 1
    if [[ "$have" != "$img" ]]; then
      log INFO "service $svc runs $have, release $RELEASE wants $img"
      return 1
    fi
  done
  return 0
}

# fingerprint ID: what a stack of release ID started now would be made of (release,
# sha256 of its compose.yaml and of shared/.env). Recorded in state/applied after a
# successful start; a no-op needs it unchanged, so a rotated secret is applied.
fingerprint() {
  local id="$1" c e
  c="$(sha256sum <"$(release_dir "$id")/compose.yaml" | cut -c1-64)"
  e="$(sha256sum <"$ENV_FILE" | cut -c1-64)"
  printf 'release=%s compose=%s env=%s\n' "$id" "$c" "$e"
}
record_applied() {
  fingerprint "$1" | atomic_write "$STATE/applied" 644 || log WARN "cannot write $STATE/applied"
}
applied_matches() {
  [[ -f "$STATE/applied" && "$(cat -- "$STATE/applied")" == "$(fingerprint "$1")" ]]
}

health() {
  bash "$SCRIPT_DIR/health-check.sh" --app-dir "$APP_DIR" "$@"
}

# ensure_images: every image the release needs is present locally.
ensure_images() {
  local rel_dir="$1" img tar tag loaded=false t0
  t0="$(date +%s%N)"
  local images=() missing=() tags=()
  mapfile -t images < <( {
    jq -r '.images // {} | .[]? | strings' "$rel_dir/release.json" 2>/dev/null || true
    compose "$rel_dir" config --images 2>/dev/null || true
  } | sort -u | sed '/^$/d')
  [[ "${#images[@]}" -gt 0 ]] || die 1 "cannot determine the images of release $RELEASE (release.json images / compose config --images)"
  for img in "${images[@]}"; do
    docker image inspect "$img" >/dev/null 2>&1 || missing+=("$img")
  done
  if [[ "${#missing[@]}" -eq 0 ]]; then
    log INFO "all ${#images[@]} images present: ${images[*]}"
    return 0
  fi
  log INFO "missing images: ${missing[*]}"
  for tar in "$rel_dir"/images/*.tar "$APP_DIR"/images/*.tar; do
    [[ -f "$tar" ]] || continue
    mapfile -t tags < <(tar -xOf "$tar" manifest.json 2>/dev/null | jq -r '.[].RepoTags[]?' 2>/dev/null || true)
    for tag in ${tags[@]+"${tags[@]}"}; do
      for img in "${missing[@]}"; do
        if [[ "$tag" == "$img" ]]; then
          log INFO "docker load -i $tar"
          run_logged docker load -i "$tar" || die 1 "docker load -i $tar failed"
          loaded=true
          break 2
        fi
      done
    done
  done
  [[ "$loaded" == true ]] || true
  local still=()
  for img in "${missing[@]}"; do
    docker image inspect "$img" >/dev/null 2>&1 || still+=("$img")
  done
  for img in ${still[@]+"${still[@]}"}; do
    log INFO "docker pull $img"
    run_logged timeout "$TIMEOUT" docker pull "$img" || log WARN "docker pull $img failed"
  done
  missing=()
  for img in "${images[@]}"; do
    docker image inspect "$img" >/dev/null 2>&1 || missing+=("$img")
  done
  if [[ "${#missing[@]}" -gt 0 ]]; then
    finish failed 1 "images not available (no archive, pull failed): ${missing[*]}; nothing changed"
  fi
  log INFO "all ${#images[@]} images present (load/pull took $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
}

pre_deploy_backup() {
  local pg rc=0
  if [[ "$SKIP_BACKUP" == true ]]; then
    log WARN "no pre-deploy backup (--skip-backup)"
    return 0
  fi
  pg="$(postgres_container)"
  if [[ -z "$pg" ]]; then
    log INFO "no postgres container for $APP yet (first deployment): no pre-deploy backup"
    return 0
  fi
  if [[ "$(docker inspect -f '{{.State.Running}}' "$pg" 2>/dev/null)" != "true" ]]; then
    if [[ -n "$CURRENT" ]]; then
      log INFO "postgres is stopped: starting it with release $CURRENT for the backup"
      run_logged compose "$(release_dir "$CURRENT")" up -d --wait postgres ||
        finish failed 2 "cannot start postgres for the pre-deploy backup; activation aborted, nothing changed"
    else
      finish failed 2 "postgres container exists but is stopped and no current release can start it; use --skip-backup to proceed without a backup"
    fi
  fi
  log INFO "Creating pre-deployment backup"
  BACKUP_PATH="$(bash "$SCRIPT_DIR/backup.sh" --app-dir "$APP_DIR" --type pre_deployment \
    --release "${CURRENT:-$RELEASE}" --min-free-mb "$BACKUP_MIN_FREE")" || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    BACKUP_PATH=""
    finish failed 2 "pre-deploy backup failed (backup.sh exit $rc): activation of $RELEASE aborted, nothing changed"
  fi
  log INFO "Backup created: $BACKUP_PATH"
  write_marker
}

run_migrations() {
  local rel_dir="$1" rc=0 why=""
  log INFO "Running database migrations with release $RELEASE's compose file"
  if ! run_logged compose "$rel_dir" up -d --wait postgres redis; then
    rc=1
    why="postgres/redis of release $RELEASE did not become healthy"
  elif ! run_logged compose "$rel_dir" up --no-deps --no-log-prefix --exit-code-from migrate migrate; then
    rc=1
    why="the migrate service of release $RELEASE failed"
  fi
  if [[ "$rc" -eq 0 ]]; then
    log INFO "Migrations applied successfully"
    return 0
  fi
  log ERROR "$why"
  if [[ -n "$CURRENT" ]]; then
    log INFO "re-applying release $CURRENT's services (postgres/redis may have been recreated)"
    run_logged compose "$(release_dir "$CURRENT")" up -d --remove-orphans || log WARN "docker compose up -d of $CURRENT failed"
    if health --retries "$HEALTH_RETRIES" --interval "$HEALTH_INTERVAL" >/dev/null; then
      log INFO "release $CURRENT is still serving and healthy"
    else
      log ERROR "release $CURRENT is not healthy after the failed migration: check it"
    fi
  fi
  log ERROR "pre-deploy backup: ${BACKUP_PATH:-none (no database yet or --skip-backup)}"
  finish migrate_failed 3 "$why: current unchanged (${CURRENT:-none}); pre-deploy backup: ${BACKUP_PATH:-none}"
}

container_name() { docker inspect -f '{{.Name}}' "$1" | sed 's,^/,,'; }

# The proxied handover. The proxy reaches the app by its service name, which resolves to
# every bot-api container; while a new one starts beside the old one the proxy is pinned
# to one container by name instead (a graceful config load through Caddy's admin API):
# the old one until the new one answers /health, then the new one; the Caddyfile (the
# service name) comes back once the old one is gone. The app starts once per switch.

# pin_proxy NAME: point every reverse_proxy upstream of the running proxy at NAME:8080.
# The Caddyfile is adapted to JSON once per activation (it does not change meanwhile).
pin_proxy() {
  local proxy
  proxy="$(running_container proxy)"
  [[ -n "$proxy" ]] || return 1
  if [[ -z "$PROXY_JSON" ]]; then
    PROXY_JSON="$(docker exec "$proxy" caddy adapt --config /etc/caddy/Caddyfile 2>/dev/null)" || return 1
  fi
  PINNED=true
  jq -c --arg dial "$1:8080" 'walk(if type == "object" and has("upstreams") then .upstreams = [{dial: $dial}] else . end)' <<<"$PROXY_JSON" |
    docker exec -i "$proxy" curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @- \
      http://localhost:2019/load
}

# unpin_proxy: load the Caddyfile again (gracefully). A no-op when the proxy runs it already,
# so it also undoes the pin of a killed activation.
unpin_proxy() {
  local proxy
  proxy="$(running_container proxy)"
  [[ -n "$proxy" ]] || return 0
  docker exec "$proxy" caddy reload --config /etc/caddy/Caddyfile >/dev/null 2>&1 ||
    log WARN "could not reload the proxy's Caddyfile: it may still be pinned to one app container"
  PINNED=false
}

# handover_applies DIR SERVICE...: the release has the ingress proxy, the proxy and one
# bot-api container run, and DIR's bot-api differs from the running one (so `up -d` would
# recreate it): the new one can start beside it.
handover_applies() {
  local dir="$1" want have
  shift
  printf '%s\n' "$@" | grep -qx proxy || return 1
  [[ -n "$(running_container proxy)" ]] || return 1
  mapfile -t OLD_APP < <(service_containers bot-api)
  # None: nothing to keep serving. Several: a killed handover; `up -d` converges.
  ((${#OLD_APP[@]} == 1)) || return 1
  want="$(compose "$dir" config --hash bot-api 2>/dev/null | awk '{print $2}')"
  have="$(docker inspect -f '{{index .Config.Labels "com.docker.compose.config-hash"}}' "${OLD_APP[0]}")"
  [[ -z "$want" || "$want" != "$have" ]]
}

# start_next DIR: pin the proxy to the running bot-api, start DIR's bot-api as a second
# container of the service (`up --no-recreate --scale bot-api=2` keeps the old one as it
# is) and wait until it answers /health on its network address (every 0.25 s: Docker's
# own check runs only every second). Returns 1, with the new container removed and the
# proxy unpinned, when it does not within the health budget (at least 60 s).
start_next() {
  local dir="$1" status="" budget deadline ip
  if ! pin_proxy "$(container_name "${OLD_APP[0]}")"; then
    log WARN "could not pin the proxy to the running bot-api"
    unpin_proxy
    return 1
  fi
  log INFO "starting $RELEASE's bot-api beside the running one; the proxy serves from the running one meanwhile"
  # Not --no-deps: compose drops depends_on from a service started that way, so its config
  # hash would differ from the file's and the `up -d` after the handover would recreate it.
  # --no-recreate also holds for postgres and redis (migrate just brought them up).
  if ! run_logged compose "$dir" up -d --no-recreate --scale bot-api=2 bot-api; then
    NEXT_APP="$(service_containers bot-api | grep -vx "${OLD_APP[0]}" | head -n 1 || true)"
    remove_next
    return 1
  fi
  NEXT_APP="$(service_containers bot-api | grep -vx "${OLD_APP[0]}" | head -n 1 || true)"
  budget="$(awk -v r="$HEALTH_RETRIES" -v i="$HEALTH_INTERVAL" 'BEGIN { b = r * i; print (b < 60 ? 60 : int(b)) }')"
  deadline=$(($(date +%s) + budget))
  while [[ -n "$NEXT_APP" ]] && (($(date +%s) < deadline)); do
    status="$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$NEXT_APP" 2>/dev/null || echo gone)"
    case "$status" in
      running*unhealthy | exited* | dead* | gone) break ;;
    esac
    ip="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$NEXT_APP" 2>/dev/null | cut -d' ' -f1)"
    if [[ -n "$ip" ]] && curl -fsS --max-time 2 -o /dev/null "http://$ip:8080/health" 2>/dev/null; then
      log INFO "the new bot-api ($(container_name "$NEXT_APP"), id $NEXT_APP) answers /health"
      return 0
    fi
    sleep 0.25
  done
  log ERROR "the new bot-api is ${status:-not started} after up to ${budget}s; its last log lines:"
  [[ -z "$NEXT_APP" ]] || docker logs --tail 20 "$NEXT_APP" 2>&1 | while IFS= read -r line; do log ERROR "  $line"; done || true
  remove_next
  return 1
}

# remove_next: a failed handover: drop the new container, the proxy back to the Caddyfile.
remove_next() {
  [[ -z "$NEXT_APP" ]] || docker rm -f "$NEXT_APP" >/dev/null 2>&1 || true
  NEXT_APP=""
  [[ "$PINNED" != true ]] || unpin_proxy
}

# hand_over: the proxy moves to the new bot-api (open requests finish on the old one),
# the old one drains (uvicorn finishes in-flight requests on SIGTERM) and goes, then the
# proxy uses the service name again. `up -d` afterwards keeps the new container as it is.
hand_over() {
  local old="${OLD_APP[0]}"
  pin_proxy "$(container_name "$NEXT_APP")" || log WARN "could not move the proxy to the new bot-api; requests are retried on it once the old one stops"
  docker stop -t 30 "$old" >/dev/null 2>&1 || log WARN "docker stop of the old bot-api failed"
  docker rm -f "$old" >/dev/null 2>&1 || log WARN "docker rm of the old bot-api failed"
  NEXT_APP=""
  unpin_proxy
  log INFO "the proxy serves from the new bot-api; the old one drained and removed"
}

write_incident() {
  local trigger="$1" rb_result="$2" rb_detail="$3" failed_at="$4" file stamp
  stamp="$(date -u -d "$failed_at" '+%Y%m%dT%H%M%SZ')"
  file="$STATE/incidents/$stamp-$RELEASE.md"
  {
    printf '# Incident: release %s failed its activation\n\n' "$RELEASE"
    printf -- '- Failed release: %s\n' "$RELEASE"
    printf -- '- Failed at (UTC): %s\n' "$failed_at"
    printf -- '- Trigger: %s\n' "$trigger"
    printf -- '- Rollback operator: %s (automatic rollback by activate.sh, pid %s)\n' "$OPERATOR" "$$"
    printf -- '- Restored release: %s\n' "${PREVIOUS:-none (no previous release to roll back to)}"
    printf -- '- Health verification after rollback: %s\n' "$rb_result"
    printf -- '- Health detail after rollback: %s\n' "$rb_detail"
    printf -- '- Pre-deploy backup: %s\n' "${BACKUP_PATH:-none}"
    printf -- '- Activation started (UTC): %s\n' "$STARTED_AT"
    printf -- '- Logs: %s/logs/activate.log, %s/logs/health-check.log\n' "$APP_DIR" "$APP_DIR"
  } | atomic_write "$file" 644
  INCIDENT="$file"
  log INFO "incident note: $file"
}

rollback() {
  local trigger="$1" failed_at rb_json rb_rc=0 rb_result rb_detail prev_dir
  failed_at="$(iso_now)"
  set_phase rollback
  log ERROR "release $RELEASE failed: $trigger"
  remove_next
  if ! installed "$PREVIOUS"; then
    if [[ "$SWITCHING" == true ]]; then
      # First deployment: go back to "no current release".
      rm -f -- "$APP_DIR/current"
      write_state_previous "$PREV_PREVIOUS"
    fi
    write_incident "$trigger" "not attempted: no previous release to roll back to" "-" "$failed_at"
    finish failed 6 "release $RELEASE is unhealthy and there is no previous release to roll back to: needs an operator (incident: $INCIDENT)"
  fi
  prev_dir="$(release_dir "$PREVIOUS")"
  log WARN "Rolling back to $PREVIOUS"
  atomic_symlink "releases/$PREVIOUS" "$APP_DIR/current"
  write_state_previous "$PREV_PREVIOUS"
  run_logged compose "$prev_dir" up -d --remove-orphans || log ERROR "docker compose up -d of $PREVIOUS failed"
  # The previous release was healthy: give it at least the default budget before calling
  # for an operator, even when the new release was tested with a short one.
  rb_json="$(health --retries "$((HEALTH_RETRIES > 60 ? HEALTH_RETRIES : 60))" --interval "$HEALTH_INTERVAL" --json)" || rb_rc=$?
  rb_detail="$(jq -r '.summary // ""' <<<"$rb_json" 2>/dev/null || true)"
  if [[ "$rb_rc" -eq 0 ]]; then
    rb_result="PASSED (health-check.sh exit 0 at $(iso_now): /health ok, metrics present, all services healthy)"
    rb_detail="${rb_detail:-all checks passed}"
  else
    rb_result="FAILED (health-check.sh exit $rb_rc at $(iso_now))"
  fi
  write_incident "$trigger" "$rb_result" "$rb_detail" "$failed_at"
  if [[ "$rb_rc" -eq 0 ]]; then
    record_applied "$PREVIOUS"
    finish rolled_back 5 "release $RELEASE failed ($trigger); rolled back to $PREVIOUS, which is healthy (incident: $INCIDENT)"
  fi
  finish failed 6 "release $RELEASE failed and the rollback to $PREVIOUS is NOT healthy: needs an operator (incident: $INCIDENT)"
}

main() {
  local app_dir="" rel_dir hc_json hc_rc=0 up_rc=0 trigger services=() HANDOVER=false
  while (($#)); do
    case "$1" in
      --release) need_value "$@"; RELEASE="$2"; shift 2 ;;
      --release=*) RELEASE="${1#*=}"; shift ;;
      --health-retries) need_value "$@"; HEALTH_RETRIES="$2"; shift 2 ;;
      --health-retries=*) HEALTH_RETRIES="${1#*=}"; shift ;;
      --health-interval) need_value "$@"; HEALTH_INTERVAL="$2"; shift 2 ;;
      --health-interval=*) HEALTH_INTERVAL="${1#*=}"; shift ;;
      --operator) need_value "$@"; OPERATOR="$2"; shift 2 ;;
      --operator=*) OPERATOR="${1#*=}"; shift ;;
      --skip-backup) SKIP_BACKUP=true; shift ;;
      --lock-wait) need_value "$@"; LOCK_WAIT="$2"; shift 2 ;;
      --lock-wait=*) LOCK_WAIT="${1#*=}"; shift ;;
      --backup-min-free-mb) need_value "$@"; BACKUP_MIN_FREE="$2"; shift 2 ;;
      --backup-min-free-mb=*) BACKUP_MIN_FREE="${1#*=}"; shift ;;
      --timeout) need_value "$@"; TIMEOUT="$2"; shift 2 ;;
      --timeout=*) TIMEOUT="${1#*=}"; shift ;;
      --app-dir) need_value "$@"; app_dir="$2"; shift 2 ;;
      --app-dir=*) app_dir="${1#*=}"; shift ;;
      -h|--help) usage; exit 0 ;;
      *) usage_error "unknown argument: $1" ;;
    esac
  done
  [[ -n "$RELEASE" ]] || usage_error "--release is required"
  valid_release_id "$RELEASE" || usage_error "invalid release id '$RELEASE'"
  [[ "$HEALTH_RETRIES" =~ ^[1-9][0-9]*$ ]] || usage_error "--health-retries must be a positive integer"
  [[ "$HEALTH_INTERVAL" =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "--health-interval must be a number"
  [[ "$LOCK_WAIT" =~ ^[0-9]+$ ]] || usage_error "--lock-wait must be a number of seconds"
  [[ "$BACKUP_MIN_FREE" =~ ^[0-9]+$ ]] || usage_error "--backup-min-free-mb must be an integer"
  [[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout must be a positive integer"
  OPERATOR="${OPERATOR:-${SUDO_USER:-$(id -un)}}"
  [[ "$OPERATOR" =~ ^[A-Za-z0-9@._+\ -]{1,64}$ ]] || usage_error "--operator may hold letters, digits, space and @._+- (64 at most)"

  APP_DIR="$(resolve_app_dir "$app_dir")"
  setup_logging "$APP_DIR"
  APP="$(basename -- "$APP_DIR")"
  valid_app_name "$APP" || die 1 "app dir name '$APP' is not a valid compose project name"
  ENV_FILE="$APP_DIR/shared/.env"
  STATE="$APP_DIR/state"
  MARKER="$STATE/activation-in-progress"
  HISTORY="$STATE/history.jsonl"
  rel_dir="$(release_dir "$RELEASE")"
  for cmd in docker jq flock curl; do
    command -v "$cmd" >/dev/null 2>&1 || die 1 "$cmd is not installed (run bootstrap-host.sh)"
  done
  [[ -d "$STATE" ]] || die 1 "$STATE does not exist (run bootstrap-host.sh first)"
  mkdir -p -- "$STATE/incidents"
  installed "$RELEASE" || die 1 "release $RELEASE is not installed ($rel_dir with COMPLETE and compose.yaml)"
  [[ -f "$ENV_FILE" ]] || die 1 "$ENV_FILE is missing (write-env.sh)"

  STARTED_AT="$(iso_now)"
  START_S="$(date +%s)"
  take_lock 9 "$STATE/deploy.lock" "$LOCK_WAIT" \
    "pid=$$ script=activate.sh release=$RELEASE operator=$OPERATOR since=$STARTED_AT"
  if [[ -w "$HOST_ACTIVATE_LOCK" ]]; then
    take_lock 8 "$HOST_ACTIVATE_LOCK" "$LOCK_WAIT" \
      "pid=$$ app=$APP release=$RELEASE operator=$OPERATOR since=$(iso_now)"
  else
    log WARN "$HOST_ACTIVATE_LOCK is missing or not writable: not serialised with other apps on this host"
  fi
  trap on_exit EXIT
  trap 'on_signal TERM' TERM
  trap 'on_signal INT' INT
  trap 'on_signal HUP' HUP
  log INFO "Starting activation of $RELEASE (operator $OPERATOR)"

  cleanup_leftovers
  CURRENT="$(current_release)"
  resolve_stale_marker
  PREV_PREVIOUS="$(cat -- "$STATE/previous" 2>/dev/null || true)"

  if [[ "$CURRENT" == "$RELEASE" ]]; then
    if [[ -n "$RECOVERED" ]]; then
      # A killed run left work undone: no shortcut, run every step again (all idempotent).
      if [[ "$STALE_RELEASE" == "$RELEASE" && "$STALE_SWITCH" == true ]]; then
        # It had already switched: finish its work, with its rollback target.
        PREVIOUS="$STALE_PREVIOUS"
        PREV_PREVIOUS="$STALE_PREV_PREVIOUS"
        SWITCHING=true
      fi
      log WARN "completing the interrupted activation: release $RELEASE is current${PREVIOUS:+ (rollback target $PREVIOUS)}"
    elif ! applied_matches "$RELEASE"; then
      log INFO "release $RELEASE is current but shared/.env or its compose file changed since it was started: re-applying it"
    elif stack_matches_release "$rel_dir" && health --retries 1 --interval 0 >/dev/null 2>&1; then
      finish noop 0 "release $RELEASE is already current and healthy: nothing to do"
    else
      log WARN "release $RELEASE is current but its stack is not healthy or runs other images: re-applying it"
    fi
  else
    PREVIOUS="$CURRENT"
    SWITCHING=true
  fi
  log INFO "release $RELEASE; previous: ${PREVIOUS:-none}"

  set_phase backup
  pre_deploy_backup

  set_phase images
  ensure_images "$rel_dir"

  set_phase migrate
  run_migrations "$rel_dir"

  # The services `up` starts: all but migrate, whose container already ran this release's
  # migrations to exit 0 (the gate checks that exit); naming it would start it once more.
  mapfile -t services < <(compose "$rel_dir" config --services 2>/dev/null | grep -vx migrate)

  if handover_applies "$rel_dir" "${services[@]}"; then
    set_phase handover
    if start_next "$rel_dir"; then
      HANDOVER=true
    else
      # Nothing switched yet: the running release never stopped serving.
      [[ "$SWITCHING" == true ]] && rollback "the new release's bot-api never answered /health; the running release kept serving"
      log WARN "continuing without a handover: bot-api is away while it is recreated"
    fi
  fi

  set_phase switch
  if [[ "$CURRENT" != "$RELEASE" ]]; then
    write_state_previous "$PREVIOUS"
    atomic_symlink "releases/$RELEASE" "$APP_DIR/current"
    log INFO "current -> releases/$RELEASE (was ${CURRENT:-none})"
  fi

  set_phase up
  [[ "$HANDOVER" != true ]] || hand_over
  log INFO "Starting services of $RELEASE"
  run_logged compose "$rel_dir" up -d --remove-orphans "${services[@]}" || up_rc=$?

  set_phase health
  if [[ "$up_rc" -ne 0 ]]; then
    hc_json="$(health --retries 1 --interval 0 --json 2>/dev/null)" || true
    trigger="docker compose up -d failed (exit $up_rc); $(jq -r '.summary // ""' <<<"$hc_json" 2>/dev/null || true)"
    rollback "$trigger"
  fi
  log INFO "Running health checks ($HEALTH_RETRIES x ${HEALTH_INTERVAL}s)"
  hc_json="$(health --retries "$HEALTH_RETRIES" --interval "$HEALTH_INTERVAL" --json)" || hc_rc=$?
  if [[ "$hc_rc" -ne 0 ]]; then
    trigger="health check failed (health-check.sh exit $hc_rc after $HEALTH_RETRIES x ${HEALTH_INTERVAL}s): $(jq -r '.summary // ""' <<<"$hc_json" 2>/dev/null || true)"
    rollback "$trigger"
  fi
  record_applied "$RELEASE"
  finish success 0 "Deployment successful: $RELEASE (previous: ${PREVIOUS:-none})"
}

main "$@"
