#!/bin/sh
# The official image's entrypoint, reduced to what apps rely on: for `nginx ...`, render
# /etc/nginx/templates/*.template into /etc/nginx/conf.d/ (envsubst with only the
# variables that are set, so nginx's own $vars survive), then exec the command as PID 1.
set -eu

if [ "${1:-}" = nginx ] || [ "${1:-}" = nginx-debug ]; then
  if [ -d /etc/nginx/templates ]; then
    vars=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
    for t in /etc/nginx/templates/*.template; do
      [ -f "$t" ] || continue
      out=/etc/nginx/conf.d/$(basename "$t" .template)
      if [ -w /etc/nginx/conf.d ]; then
        envsubst "$vars" <"$t" >"$out"
        echo "$0: rendered $t to $out" >&2
      else
        echo "$0: /etc/nginx/conf.d is not writable: $t not rendered" >&2
      fi
    done
  fi
fi
exec "$@"
