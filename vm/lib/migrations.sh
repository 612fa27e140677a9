# shellcheck shell=bash
# migrations.sh: activate.sh's database phases: the pre-deploy backup (releases with a
# database role) and the migrate role's run with the new release's compose file. Reads and
# writes the shared state declared in activate.sh. Sourced after common.sh and journal.sh,
# never run.
[[ "${BASH_SOURCE[0]}" != "$0" ]] || { echo "lib/migrations.sh is sourced by vm/activate.sh, not run" >&2; exit 64; }

# pre_deploy_backup DIR: backup.sh --type pre_deployment of the running database when the
# release in DIR has a database role and its container exists (a stopped one is started
# with the current release first). The backup uses the current release's database role
# (the database that runs now), else DIR's. Finishes the run with exit 2 when it fails.
pre_deploy_backup() {
  local dir="$1" db bdir id rc=0
  local floor=()
  if [[ "$SKIP_BACKUP" == true ]]; then
    log WARN "no pre-deploy backup (--skip-backup)"
    return 0
  fi
  if [[ -z "$(rel_role "$dir" database)" ]]; then
    log INFO "release $RELEASE has no database role: no pre-deploy backup"
    return 0
  fi
  bdir="$dir"
  if [[ -n "$CURRENT" && -n "$(rel_role "$(release_dir "$CURRENT")" database)" ]]; then bdir="$(release_dir "$CURRENT")"; fi
  db="$(rel_role "$bdir" database)"
  id="$(service_containers --all "$db" | head -n 1)"
  if [[ -z "$id" ]]; then
    log INFO "no $db container for $APP yet (first deployment): no pre-deploy backup"
    return 0
  fi
  if [[ "$(docker inspect -f '{{.State.Running}}' "$id" 2>/dev/null)" != "true" ]]; then
    if [[ -n "$CURRENT" ]]; then
      log INFO "$db is stopped: starting it with release $CURRENT for the backup"
      run_logged compose "$(release_dir "$CURRENT")" up -d --wait "$db" ||
        finish failed 2 "cannot start $db for the pre-deploy backup; activation aborted, nothing changed"
    else
      finish failed 2 "the $db container exists but is stopped and no current release can start it; use --skip-backup to proceed without a backup"
    fi
  fi
  [[ -z "$BACKUP_MIN_FREE" ]] || floor=(--min-free-mb "$BACKUP_MIN_FREE")
  log INFO "Creating pre-deployment backup"
  BACKUP_PATH="$(bash "$SCRIPT_DIR/backup.sh" --app-dir "$APP_DIR" --release-dir "$bdir" --type pre_deployment \
    --release "${CURRENT:-$RELEASE}" ${floor[@]+"${floor[@]}"})" || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    BACKUP_PATH=""
    finish failed 2 "pre-deploy backup failed (backup.sh exit $rc): activation of $RELEASE aborted, nothing changed"
  fi
  log INFO "Backup created: $BACKUP_PATH"
  write_marker
}

# run_migrations DIR: the migrate role of the release in DIR, once, to its exit (after the
# services it depends on). On failure the current release's migrate service and services
# are applied again and the run finishes with exit 3.
run_migrations() {
  local dir="$1" m rc=0 why
  m="$(rel_role "$dir" migrate)"
  if [[ -z "$m" ]]; then
    log INFO "release $RELEASE has no migrate role: no migrations to run"
    return 0
  fi
  log INFO "Running database migrations ($m) with release $RELEASE's compose file"
  run_migrate "$dir" || rc=$?
  case "$rc" in
    0) log INFO "Migrations applied successfully"; return 0 ;;
    1) why="the services $m of release $RELEASE depends on did not become healthy" ;;
    *) why="the migrate service $m of release $RELEASE failed" ;;
  esac
  log ERROR "$why"
  if [[ -n "$CURRENT" ]]; then
    # Its dependencies may have been recreated, and the failed container of the migrate
    # service stands for the current release in the gate: run the current release's once
    # more (its migrations are applied: a no-op) and apply its services again.
    log INFO "re-applying release $CURRENT: its migrate service, then its services"
    run_migrate "$(release_dir "$CURRENT")" || log WARN "the migrate service of $CURRENT failed too"
    up_release "$(release_dir "$CURRENT")" || log WARN "docker compose up -d of $CURRENT failed"
    if health "$(release_dir "$CURRENT")" --retries "$HEALTH_RETRIES" --interval "$HEALTH_INTERVAL" >/dev/null; then
      log INFO "release $CURRENT is still serving and healthy"
    else
      log ERROR "release $CURRENT is not healthy after the failed migration: check it"
    fi
  fi
  log ERROR "pre-deploy backup: ${BACKUP_PATH:-none (no database yet or --skip-backup)}"
  finish migrate_failed 3 "$why: current unchanged (${CURRENT:-none}); pre-deploy backup: ${BACKUP_PATH:-none}"
}
