#!/bin/bash
# First start: initdb into $PGDATA, create POSTGRES_USER (superuser, scram password)
# and POSTGRES_DB, allow scram-sha-256 from any non-local address, listen on all
# addresses. Later starts: just exec the server. Always ends in `exec postgres` as the
# postgres user, so the server is PID 1 and gets the stop signal (SIGINT = fast shutdown).
set -euo pipefail

log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }

# Like the official image: options alone (`-c shared_buffers=256MB`) mean the server.
first=${1:-}
if [ "${first:0:1}" = "-" ]; then
  set -- postgres "$@"
fi
if [ "${1:-}" != "postgres" ]; then
  exec "$@"
fi

PGDATA=${PGDATA:-/var/lib/postgresql/data}

# Started as root (e.g. `user: root` or a bind mount owned by someone else): fix the
# ownership of the data dir, then come back as postgres.
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set and non-empty to initialise the database}"
  POSTGRES_USER=${POSTGRES_USER:-postgres}
  POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
  log INFO "initialising a new cluster in $PGDATA (user and database from the environment)"
  # Never a password on a command line: initdb gets none (local trust), the role's
  # password is set through psql's stdin with a psql variable quoted as a literal.
  initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --encoding=UTF8 \
    --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  {
    printf '\n# onevm\n'
    printf "listen_addresses = '*'\n"
    printf "password_encryption = 'scram-sha-256'\n"
    printf "jit = off\n"
  } >> "$PGDATA/postgresql.conf"
  {
    printf '\n# onevm: password (scram-sha-256) from any non-local address\n'
    printf 'host all all all scram-sha-256\n'
  } >> "$PGDATA/pg_hba.conf"

  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql" \
    -w -t 60 start >/dev/null
  psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER" -d postgres \
    -v pw="$POSTGRES_PASSWORD" -v usr="$POSTGRES_USER" -v db="$POSTGRES_DB" <<'SQL'
ALTER ROLE :"usr" WITH PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'usr')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
  # Any *.sql / *.sh dropped into /docker-entrypoint-initdb.d runs once, like upstream.
  if [ -d /docker-entrypoint-initdb.d ]; then
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sql) log INFO "running $f"; psql -X -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$f" ;;
        *.sh)  log INFO "running $f"; bash "$f" ;;
      esac
    done
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  log INFO "initialisation done"
fi

exec "$@" -D "$PGDATA"
