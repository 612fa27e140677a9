# shellcheck shell=bash
# journal.sh: activate.sh's locks and journal: the deploy and host locks, the
# activation-in-progress marker (and a killed run's), state/history.jsonl, state/previous,
# state/applied (no-op detection), the traps and finish. Reads and writes the shared state
# declared in activate.sh. Sourced after common.sh, never run.
# shellcheck disable=SC2016  # jq programs sit in single quotes
[[ "${BASH_SOURCE[0]}" != "$0" ]] || { echo "lib/journal.sh is sourced by vm/activate.sh, not run" >&2; exit 64; }

HOST_ACTIVATE_LOCK=/var/lib/onevm/activate.lock
marker() { printf '%s\n' "$APP_DIR/state/activation-in-progress"; }
history_file() { printf '%s\n' "$APP_DIR/state/history.jsonl"; }

# take_activation_locks: state/deploy.lock (fd 9), then the host's activation lock (fd 8),
# so apps sharing the host never activate at once; each waits LOCK_WAIT seconds (exit 4).
take_activation_locks() {
  take_lock 9 "$APP_DIR/state/deploy.lock" "$LOCK_WAIT" \
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
}

write_marker() {
  jq -cn --arg release "$RELEASE" --arg previous "$PREVIOUS" --arg pp "$PREV_PREVIOUS" \
    --argjson switching "$SWITCHING" --argjson pid "$$" --arg operator "$OPERATOR" \
    --arg started "$STARTED_AT" --arg phase "$PHASE" --arg backup "$BACKUP_PATH" \
    '{release: $release, previous: $previous, prev_previous: $pp, switching: $switching,
      pid: $pid, operator: $operator, started_at: $started, phase: $phase,
      backup: $backup, history_written: false}' | atomic_write "$(marker)" 644
}

# set_phase PHASE: recorded in the marker. Testing aid: ONEVM_TEST_HOLD_PHASE=PHASE pauses
# ONEVM_TEST_HOLD_SECONDS (default 60) here.
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

# append_history RESULT EXIT_CODE REASON: one JSON line for this attempt, to
# state/history.jsonl and stdout.
append_history() {
  local result="$1" code="$2" reason="$3" line
  line="$(jq -cn --arg release "$RELEASE" --arg previous "$PREVIOUS" --arg started "$STARTED_AT" \
    --arg finished "$(iso_now)" --argjson duration "$(($(date +%s) - $(date -d "$STARTED_AT" +%s)))" \
    --arg result "$result" --arg operator "$OPERATOR" --arg backup "$BACKUP_PATH" --argjson code "$code" \
    --arg phase "$PHASE" --arg reason "$reason" --arg incident "$INCIDENT" \
    --arg current "$(current_release 2>/dev/null)" --arg recovered "$RECOVERED" --argjson pid "$$" \
    'def n: if . == "" then null else . end;
     {release: $release, previous: ($previous | n), started_at: $started, finished_at: $finished,
      duration_s: $duration, result: $result, operator: $operator, backup: ($backup | n),
      exit_code: $code, phase: $phase, reason: ($reason | n), incident: ($incident | n),
      current_after: ($current | n), recovered_interrupted: ($recovered | n), pid: $pid}')"
  printf '%s\n' "$line" >>"$(history_file)"
  printf '%s\n' "$line"
}

# finish RESULT EXIT_CODE MESSAGE: record the attempt, drop the marker, exit.
finish() {
  local result="$1" code="$2" msg="$3"
  FINISHED=true
  append_history "$result" "$code" "$msg"
  rm -f -- "$(marker)"
  if [[ "$code" -eq 0 ]]; then log INFO "$msg"; else log ERROR "$msg"; fi
  exit "$code"
}

# refuse EXIT_CODE RESULT MESSAGE: record a run refused before it began and exit; a killed
# run's marker stays for the next run to resolve.
refuse() {
  local code="$1" result="$2" msg="$3"
  FINISHED=true
  append_history "$result" "$code" "$msg"
  log ERROR "$msg"
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
  if [[ -f "$(marker)" ]]; then
    jq -c '.history_written = true' "$(marker)" 2>/dev/null | atomic_write "$(marker)" 644 || true
  fi
  log ERROR "activation of $RELEASE ended unexpectedly (exit $rc) in phase $PHASE; current is '$(current_release 2>/dev/null)'; rerun activate.sh --release $RELEASE to converge"
}

write_state_previous() {
  if [[ -n "$1" ]]; then
    printf '%s\n' "$1" | atomic_write "$APP_DIR/state/previous" 644
  else
    rm -f -- "$APP_DIR/state/previous"
  fi
}

# resolve_stale_marker: a marker while we hold the lock means a run was killed: records it
# in the history (unless its trap did), sets RECOVERED, and puts state/previous (and
# PREV_PREVIOUS) where current actually is. When that run had already switched current to
# RELEASE, this run takes over its rollback target (PREVIOUS, PREV_PREVIOUS, SWITCHING).
resolve_stale_marker() {
  local m stale prev pp switched
  [[ -f "$(marker)" ]] || return 0
  m="$(cat -- "$(marker)")"
  if ! jq -e 'type == "object"' >/dev/null 2>&1 <<<"$m"; then
    log WARN "unreadable $(marker) from an interrupted activation: removing it"
    rm -f -- "$(marker)"
    RECOVERED="unknown"
    return 0
  fi
  stale="$(jq -r '.release // ""' <<<"$m")"
  prev="$(jq -r '.previous // ""' <<<"$m")"
  pp="$(jq -r '.prev_previous // ""' <<<"$m")"
  switched="$(jq -r 'if .switching == true then "true" else "false" end' <<<"$m")"
  RECOVERED="$stale"
  log WARN "found an interrupted activation: $(jq -r '"\(.release) (pid \(.pid), operator \(.operator), started \(.started_at), phase \(.phase))"' <<<"$m"); current is '${CURRENT:-none}': resolving"
  if [[ "$(jq -r '.history_written // false' <<<"$m")" != "true" ]]; then
    jq -c --arg finished "$(iso_now)" --arg current "$CURRENT" --arg by "$$" \
      'def n: if . == "" or . == null then null else . end;
       {release: .release, previous: (.previous | n), started_at: .started_at, finished_at: $finished,
        duration_s: null, result: "interrupted", operator: .operator, backup: (.backup | n),
        exit_code: null, phase: .phase, reason: ("killed in phase " + .phase + "; detected by pid " + $by),
        incident: null, current_after: ($current | n)}' <<<"$m" >>"$(history_file)"
  fi
  if [[ "$switched" == true && -n "$CURRENT" && "$CURRENT" == "$stale" ]]; then
    PREV_PREVIOUS="$prev"
  else
    PREV_PREVIOUS="$pp"
  fi
  write_state_previous "$PREV_PREVIOUS"
  if [[ "$switched" == true && "$CURRENT" == "$RELEASE" && "$stale" == "$RELEASE" ]]; then
    PREVIOUS="$prev"
    PREV_PREVIOUS="$pp"
    SWITCHING=true
  fi
  rm -f -- "$(marker)"
}

# cleanup_leftovers DIR: what a killed run may leave: a temp link, a pinned proxy, one-off
# containers (nothing else runs while we hold the lock).
cleanup_leftovers() {
  local ids
  rm -f -- "$APP_DIR"/current.tmp-*
  [[ ! -f "$(marker)" ]] || unpin_proxy "$1"
  ids="$(docker ps -a -q --filter "label=com.docker.compose.project=$APP" --filter "label=com.docker.compose.oneoff=True")"
  if [[ -n "$ids" ]]; then
    log INFO "removing leftover one-off containers of $APP"
    # shellcheck disable=SC2086  # container ids
    docker rm -f $ids >/dev/null || true
  fi
}

# fingerprint ID: what a stack of release ID started now is made of (release, sha256 of its
# release.json, which holds its content hash, its compose.yaml, shared/.env and its
# images.lock when it has one). Recorded in
# state/applied after a successful start; a no-op needs it unchanged, so a rotated secret or
# a release re-rendered in place is applied.
fingerprint() {
  local dir lock=""
  dir="$(release_dir "$1")"
  [[ ! -f "$dir/images.lock" ]] || lock=" lock=$(sha256sum <"$dir/images.lock" | cut -c1-64)"
  printf 'release=%s release_json=%s compose=%s env=%s%s\n' "$1" \
    "$(sha256sum <"$dir/release.json" | cut -c1-64)" "$(sha256sum <"$dir/compose.yaml" | cut -c1-64)" \
    "$(sha256sum <"$APP_DIR/shared/.env" | cut -c1-64)" "$lock"
}
record_applied() {
  fingerprint "$1" | atomic_write "$APP_DIR/state/applied" 644 || log WARN "cannot write state/applied"
}
applied_matches() {
  [[ -f "$APP_DIR/state/applied" && "$(cat -- "$APP_DIR/state/applied")" == "$(fingerprint "$1")" ]]
}
