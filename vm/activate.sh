#!/usr/bin/env bash
# activate.sh: the release lifecycle: backup, images, migrate, hand over, switch, start, verify, roll back.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: activate.sh --release ID [--health-retries N] [--health-interval S]
                   [--operator NAME] [--skip-backup] [--lock-wait S]
                   [--backup-min-free-mb N] [--timeout S] [--app-dir /opt/APP]

Makes installed release ID (APP_DIR/releases/ID with COMPLETE) the running one. Its roles
(web, migrate, database, proxy) and settings come from releases/ID/release.json; a
rollback uses the previous release's own release.json.
  1. takes state/deploy.lock (flock), then the host's activation lock (apps sharing the
     host never activate at once; /var/lib/onevm/activate.lock, made by the deploy's first
     step), each waiting at most --lock-wait seconds and naming the holder; resolves a
     state/activation-in-progress marker left by a killed run
  2. no-op when current already points to ID, neither shared/.env nor the release's
     release.json or compose.yaml changed since it was started (state/applied), every
     service runs the image the release names and one health check passes (never right
     after an interrupted run)
  3. pre-deploy backup (backup.sh --type pre_deployment) when the release has a database
     role and its container exists
  4. images from release.json / the compose file: `docker load` of releases/ID/images/*.tar
     and APP_DIR/images/*.tar holding missing ones, else `docker pull`
  5. with a migrate role M, with the NEW compose file: `up -d --wait` of the services M
     depends_on (else the database role), then M itself, once, to its exit (`up --no-deps
     --exit-code-from M M`); on failure the current release keeps serving (its services
     are re-applied)
  6. behind the proxy (the release has a proxy and a web role W, the proxy and one W
     container run, and W's config changes): the proxy is pinned to the running W, the
     new release's W starts beside it (`up --no-recreate --scale W=2 W`) and must pass
     the web checks on its own address (else: rollback with nothing switched)
  7. state/previous := old release; current -> releases/ID (ln -s temp + mv -T)
  8. after a step 6 hand-over: the proxy moves to the new W, the old one drains (docker
     stop -t 30) and goes, the proxy reloads its Caddyfile; then `docker compose -p APP
     --project-directory releases/ID -f releases/ID/compose.yaml --env-file shared/.env
     up -d --remove-orphans` of every service but M (it ran in step 5), then the health
     gate (health-check.sh --release-dir releases/ID)
  9. unhealthy: current -> previous release, `up -d` it, its own health gate, write
     state/incidents/<UTC>-<ID>.md, restore state/previous
  (health-check.sh and backup.sh are run with bash from this script's directory.)
Every attempt appends one JSON line to state/history.jsonl (also printed on stdout):
release, previous, started_at, finished_at, duration_s, result
(success|noop|rolled_back|migrate_failed|failed|interrupted|locked), operator, backup, exit_code,
phase, reason, incident. A run killed at any point leaves current on the old or the new
release; the next run (same ID) detects the marker, records the killed attempt as
"interrupted" and converges.

Options:
  --release ID            release to activate (required)
  --health-retries N      health-check attempts (default: the release's
                          settings.health_retries, else 60; a rollback gets at least 60)
  --health-interval S     seconds between attempts (default: settings.health_interval, else 1)
  --operator NAME         recorded in history and incidents (default: $SUDO_USER or user)
  --skip-backup           no pre-deploy backup
  --lock-wait S           seconds to wait for each lock (default 300)
  --backup-min-free-mb N  backup.sh --min-free-mb of the pre-deploy backup (default: the
                          release's settings.backup_min_free_mb, else backup.sh's default)
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
  7   refused: an operator locked deploys (lock.sh); nothing changed
  5   new release unhealthy: rolled back, previous release restored and healthy
  6   new release unhealthy and no healthy rollback (no previous release, or the
      previous one failed its health check too): needs an operator
  64  usage error
Log: APP_DIR/logs/activate.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/checks.sh"
# shellcheck source-path=SCRIPTDIR source=lib/journal.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/journal.sh"
# shellcheck source-path=SCRIPTDIR source=lib/images.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/images.sh"
# shellcheck source-path=SCRIPTDIR source=lib/migrations.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/migrations.sh"
# shellcheck source-path=SCRIPTDIR source=lib/handover.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/handover.sh"
# shellcheck source-path=SCRIPTDIR source=lib/rollback.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/rollback.sh"

# ---- shared state: the only globals the phase modules (lib/*.sh) read and write -----
# shellcheck disable=SC2034  # written here, read by the modules
{
  # Set once, from the arguments and the new release's settings.
  RELEASE=""          # the release to activate
  OPERATOR=""         # recorded in history and incidents
  HEALTH_RETRIES=""   # health gate attempts
  HEALTH_INTERVAL=""  # seconds between them
  BACKUP_MIN_FREE=""  # the pre-deploy backup's --min-free-mb ("" = backup.sh's default)
  SKIP_BACKUP=false   # no pre-deploy backup
  LOCK_WAIT=300       # seconds to wait for each lock
  # The run, as journal.sh records it in the marker and the history.
  STARTED_AT=""       # ISO time the run began
  PHASE=start         # backup|images|migrate|handover|switch|up|health|rollback
  CURRENT=""          # release current pointed to when the run began ("" = none)
  PREVIOUS=""         # the rollback target
  PREV_PREVIOUS=""    # state/previous before this run (a rollback restores it)
  SWITCHING=false     # this run moves current (false: it re-applies the current release)
  BACKUP_PATH=""      # the pre-deploy backup
  INCIDENT=""         # the incident note of a rollback
  RECOVERED=""        # the release of a killed run this one resolved
  FINISHED=false      # the history line is written (the EXIT trap writes none)
  SIGNAL=""           # the signal that ends the run
  HOLD_PID=""         # the test hold's sleep
  # The hand-over (handover.sh).
  OLD_WEB=""          # the web container serving when the hand-over began
  NEXT_WEB=""         # the new release's web container started beside it
  PINNED=false        # the proxy is pinned to one container
  PROXY_JSON=""       # the proxy's Caddyfile adapted to JSON (once per run)
}

# health DIR ARGS...: the health gate of the release in DIR.
health() {
  local dir="$1"
  shift
  bash "$SCRIPT_DIR/health-check.sh" --app-dir "$APP_DIR" --release-dir "$dir" "$@"
}

# parse_args ARGS...: the options into the shared state (and COMPOSE_TIMEOUT, APP_DIR_ARG).
parse_args() {
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
      --timeout) need_value "$@"; COMPOSE_TIMEOUT="$2"; shift 2 ;;
      --timeout=*) COMPOSE_TIMEOUT="${1#*=}"; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  [[ -n "$RELEASE" ]] || usage_error "--release is required"
  valid_release_id "$RELEASE" || usage_error "invalid release id '$RELEASE'"
  [[ "$LOCK_WAIT" =~ ^[0-9]+$ ]] || usage_error "--lock-wait must be a number of seconds"
  [[ "$COMPOSE_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout must be a positive integer"
  OPERATOR="${OPERATOR:-${SUDO_USER:-$(id -un)}}"
  [[ "$OPERATOR" =~ ^[A-Za-z0-9@._+\ -]{1,64}$ ]] || usage_error "--operator may hold letters, digits, space and @._+- (64 at most)"
}

# apply_settings DIR: flags not given take the release's settings.
apply_settings() {
  HEALTH_RETRIES="${HEALTH_RETRIES:-$(rel_setting "$1" health_retries 60)}"
  HEALTH_INTERVAL="${HEALTH_INTERVAL:-$(rel_setting "$1" health_interval 1)}"
  BACKUP_MIN_FREE="${BACKUP_MIN_FREE:-$(rel_setting "$1" backup_min_free_mb "")}"
  [[ "$HEALTH_RETRIES" =~ ^[1-9][0-9]*$ ]] || usage_error "--health-retries (or settings.health_retries) must be a positive integer"
  [[ "$HEALTH_INTERVAL" =~ ^[0-9]+([.][0-9]+)?$ ]] || usage_error "--health-interval (or settings.health_interval) must be a number"
  [[ -z "$BACKUP_MIN_FREE" || "$BACKUP_MIN_FREE" =~ ^[0-9]+$ ]] || usage_error "--backup-min-free-mb (or settings.backup_min_free_mb) must be an integer"
}

# decide DIR: a switch from CURRENT, a re-apply of RELEASE, or a no-op (finishes the run).
decide() {
  local dir="$1"
  if [[ "$CURRENT" != "$RELEASE" ]]; then
    PREVIOUS="$CURRENT"
    SWITCHING=true
  elif [[ -n "$RECOVERED" ]]; then
    # A killed run left work undone: no shortcut, run every step again (all idempotent).
    log WARN "completing the interrupted activation: release $RELEASE is current${PREVIOUS:+ (rollback target $PREVIOUS)}"
  elif ! applied_matches "$RELEASE"; then
    log INFO "release $RELEASE is current but shared/.env or its release files changed since it was started: re-applying it"
  elif stack_matches_release "$dir" && health "$dir" --retries 1 --interval 0 >/dev/null 2>&1; then
    finish noop 0 "release $RELEASE is already current and healthy: nothing to do"
  else
    log WARN "release $RELEASE is current but its stack is not healthy or runs other images: re-applying it"
  fi
  log INFO "release $RELEASE; previous: ${PREVIOUS:-none}"
}

main() {
  local dir hc_json hc_rc=0 up_rc=0 handover=false cmd locked
  parse_args "$@"
  use_app_dir "$APP_DIR_ARG"
  for cmd in docker jq flock curl; do
    command -v "$cmd" >/dev/null 2>&1 || die 1 "$cmd is not installed (run bootstrap-host.sh)"
  done
  [[ -d "$APP_DIR/state" ]] || die 1 "$APP_DIR/state does not exist (run bootstrap-host.sh first)"
  mkdir -p -- "$APP_DIR/state/incidents"
  dir="$(release_dir "$RELEASE")"
  installed "$RELEASE" || die 1 "release $RELEASE is not installed ($dir with COMPLETE and compose.yaml)"
  [[ -f "$APP_DIR/shared/.env" ]] || die 1 "$APP_DIR/shared/.env is missing (write-env.sh)"
  apply_settings "$dir"

  STARTED_AT="$(iso_now)"
  take_activation_locks
  locked="$(operator_lock_text)"
  [[ -z "$locked" ]] || refuse 7 locked "deploys are locked by $locked; nothing changed (unlock: npm run onevm -- unlock, or $SCRIPT_DIR/lock.sh --release)"
  log INFO "Starting activation of $RELEASE (operator $OPERATOR)"
  cleanup_leftovers "$dir"
  CURRENT="$(current_release)"
  PREV_PREVIOUS="$(cat -- "$APP_DIR/state/previous" 2>/dev/null || true)"
  resolve_stale_marker
  decide "$dir"

  set_phase backup
  pre_deploy_backup "$dir"
  set_phase images
  ensure_images "$dir"
  set_phase migrate
  run_migrations "$dir"

  if handover_applies "$dir"; then
    set_phase handover
    if start_next "$dir"; then
      handover=true
    else
      # Nothing switched yet: the running release never stopped serving.
      [[ "$SWITCHING" == true ]] && rollback "the new release's web container never passed its checks; the running release kept serving"
      log WARN "continuing without a hand-over: the web service is away while it is recreated"
    fi
  fi

  set_phase switch
  if [[ "$CURRENT" != "$RELEASE" ]]; then
    write_state_previous "$PREVIOUS"
    atomic_symlink "releases/$RELEASE" "$APP_DIR/current"
    log INFO "current -> releases/$RELEASE (was ${CURRENT:-none})"
  fi

  set_phase up
  [[ "$handover" != true ]] || hand_over "$dir"
  log INFO "Starting services of $RELEASE"
  up_release "$dir" || up_rc=$?

  set_phase health
  if [[ "$up_rc" -ne 0 ]]; then
    hc_json="$(health "$dir" --retries 1 --interval 0 --json 2>/dev/null)" || true
    rollback "docker compose up -d failed (exit $up_rc); $(jq -r '.summary // ""' <<<"$hc_json" 2>/dev/null || true)"
  fi
  log INFO "Running health checks ($HEALTH_RETRIES x ${HEALTH_INTERVAL}s)"
  hc_json="$(health "$dir" --retries "$HEALTH_RETRIES" --interval "$HEALTH_INTERVAL" --json)" || hc_rc=$?
  if [[ "$hc_rc" -ne 0 ]]; then
    rollback "health check failed (health-check.sh exit $hc_rc after $HEALTH_RETRIES x ${HEALTH_INTERVAL}s): $(jq -r '.summary // ""' <<<"$hc_json" 2>/dev/null || true)"
  fi
  record_applied "$RELEASE"
  finish success 0 "Deployment successful: $RELEASE (previous: ${PREVIOUS:-none})"
}

main "$@"
