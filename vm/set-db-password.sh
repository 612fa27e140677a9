#!/usr/bin/env bash
# set-db-password.sh: set the database role's password in the running PostgreSQL.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: set-db-password.sh --service SVC [--app-dir /opt/APP] < alter-role.sql

Reads one statement on stdin, ALTER ROLE "role" PASSWORD 'SCRAM-SHA-256$...', and runs
it in the running container of the compose service SVC (the database role's service;
named here because this may run before any release exists) as the container's
POSTGRES_USER over the local socket.
onevm computes the SCRAM verifier itself, so no plaintext password reaches SQL, logs or
the process list; the statement travels on stdin only. PostgreSQL keeps the password it
was initialised with, so a rotated password must be set here before the services
restart with the new shared/.env.

With no running container of SVC (first deploy) there is nothing to change: the first
start initialises the role from shared/.env. Running the same statement again changes
nothing.

Options:
  --service SVC   the database service (required)
  --app-dir DIR   app directory (default: derived from the script's place)
  -h, --help      this help

Exit codes:
  0   applied, or no container of SVC running yet
  1   psql failed (the password is unchanged)
  2   invalid input (not a single ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...' statement)
  64  usage error
Log: APP_DIR/logs/set-db-password.log
USAGE
}

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"

main() {
  local service="" sql statement_re container
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --service) need_value "$@"; service="$2"; shift 2 ;;
      --service=*) service="${1#*=}"; shift ;;
      *) common_option "$@"; shift "$ARGS_USED" ;;
    esac
  done
  [[ -n "$service" ]] || usage_error "--service is required"
  [[ "$service" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || usage_error "invalid --service '$service'"
  use_app_dir "$APP_DIR_ARG"

  sql="$(cat)"
  statement_re='^ALTER ROLE "[a-z_][a-z0-9_]{0,62}" PASSWORD '"'"'SCRAM-SHA-256[$][0-9]+:[A-Za-z0-9+/=]+[$][A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+'"'"';$'
  [[ "$sql" =~ $statement_re ]] || die 2 "stdin is not a single ALTER ROLE ... PASSWORD 'SCRAM-SHA-256\$...' statement"

  container="$(running_container "$service")"
  if [[ -z "$container" ]]; then
    log INFO "no running $service container for $APP: its first start takes the password from shared/.env"
    return 0
  fi

  # The container's own environment names its superuser and database; the socket is local.
  if ! printf '%s\n' "$sql" | docker exec -i "$container" \
      sh -c 'exec psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"' >/dev/null; then
    die 1 "psql could not set the role password; it is unchanged"
  fi
  log INFO "database role password set in $service (SCRAM verifier)"
}

main "$@"
