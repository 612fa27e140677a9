#!/bin/sh
# The official image's entrypoint contract: `redis-server ...` runs the server in the
# foreground as PID 1 (SIGTERM: a fast, clean stop); options alone (`--save ""`) or a
# config file path mean redis-server too; any other command runs as given.
# The official build has protected mode off by default; Debian's has it on, which would
# refuse every client on the compose network (no password), so it is turned off here
# unless a config file is given (that file decides, as with the official image).
set -eu

case "${1:-}" in
  -*|*.conf) set -- redis-server "$@" ;;
esac
if [ "${1:-}" = redis-server ]; then
  shift
  case "${1:-}" in
    ""|-*) set -- redis-server --protected-mode no "$@" ;;
    *) set -- redis-server "$@" ;;
  esac
fi
exec "$@"
