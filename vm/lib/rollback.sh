# shellcheck shell=bash
# rollback.sh: activate.sh's automatic rollback to the previous release (its own
# release.json: roles and checks) and the incident note. Reads the shared state declared
# in activate.sh. Sourced after common.sh, journal.sh and handover.sh, never run.
[[ "${BASH_SOURCE[0]}" != "$0" ]] || { echo "lib/rollback.sh is sourced by vm/activate.sh, not run" >&2; exit 64; }

# write_incident TRIGGER RB_RESULT RB_DETAIL FAILED_AT: state/incidents/<UTC>-<release>.md.
write_incident() {
  local trigger="$1" rb_result="$2" rb_detail="$3" failed_at="$4" file
  file="$APP_DIR/state/incidents/$(date -u -d "$failed_at" '+%Y%m%dT%H%M%SZ')-$RELEASE.md"
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

# hand_back DIR: when the failed release's web container had already taken over behind the
# proxy, the web service of the release in DIR (the previous one) starts beside it and takes
# over the same way, so the rollback drops no request either; `up` then keeps it.
hand_back() {
  local dir="$1"
  handover_applies "$dir" || return 0
  log INFO "handing the proxy back to $PREVIOUS's web service"
  if start_next "$dir"; then
    hand_over "$dir"
  else
    log WARN "$PREVIOUS's web container did not pass its checks beside the failed one: it is recreated instead"
  fi
}

# rollback TRIGGER: current back to PREVIOUS, its services up, its own health gate, an
# incident note; finishes the run: 5 (rolled back, healthy) or 6 (needs an operator).
rollback() {
  local trigger="$1" failed_at rb_json rb_rc=0 rb_result rb_detail prev_dir
  failed_at="$(iso_now)"
  set_phase rollback
  log ERROR "release $RELEASE failed: $trigger"
  remove_next "$(release_dir "$RELEASE")"
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
  hand_back "$prev_dir"
  up_release "$prev_dir" || log ERROR "docker compose up -d of $PREVIOUS failed"
  # The previous release was healthy: give it at least the default budget before calling
  # for an operator, even when the new release was tested with a short one.
  rb_json="$(health "$prev_dir" --retries "$((HEALTH_RETRIES > 60 ? HEALTH_RETRIES : 60))" --interval "$HEALTH_INTERVAL" --json)" || rb_rc=$?
  rb_detail="$(jq -r '.summary // ""' <<<"$rb_json" 2>/dev/null || true)"
  if [[ "$rb_rc" -eq 0 ]]; then
    rb_result="PASSED (health-check.sh exit 0 at $(iso_now): $PREVIOUS's web checks passed and its services are healthy)"
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
