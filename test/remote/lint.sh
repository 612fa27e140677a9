#!/usr/bin/env bash
# Static checks of the VM engine (vm/): shellcheck -x of every file; each entry script
# (vm/*.sh): strict mode, executable in the repo, sources lib/common.sh, --help (exit 0,
# Usage, documented exit codes), unknown flags exit 64, runs with `bash` when uploaded
# without execute bits, and starts the others with `bash`; each module (vm/lib/*.sh): no
# shebang, not executable, refuses to run (exit 64), at most 260 lines; and no script
# names the sample app (its services, port, metric families) as a concept.
# Usage: test/remote/lint.sh
# Exit: 0 clean, 1 problems found.
set -euo pipefail

ROOT="$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/vm"
# shellcheck disable=SC2016  # the literal line each script must contain
SOURCE_LINE='source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"'
# The sample app's names: the engine must know none of them (the roles come from release.json).
# (PostgreSQL's own POSTGRES_* variables are the database role's contract, not the sample's.)
SAMPLE_NAMES='bot-api|bot_api|redis|telegram|8080'
fail=0
problem() { echo "FAIL $*"; fail=1; }

command -v shellcheck >/dev/null || { echo "shellcheck missing (apt-get install -y shellcheck)"; exit 1; }
# As uploaded by CopyToRemote: no execute bits anywhere.
COPY="$(mktemp -d)"
trap 'rm -rf -- "$COPY"' EXIT
cp -r "$DIR/." "$COPY/"
chmod -R a-x,u+rwX "$COPY"

# One run for all: each entry script's sources are followed (-x) and read once.
shellcheck -x "$DIR"/*.sh "$DIR"/lib/*.sh || problem "shellcheck (above)"
for f in "$DIR"/lib/*.sh; do
  name="lib/$(basename "$f")"
  [[ "$(head -c 2 "$f")" != '#!' ]] || problem "$name has a shebang: modules are sourced, never run"
  [[ ! -x "$f" ]] || problem "$name is executable: modules are sourced, never run"
  rc=0; bash "$f" >/dev/null 2>&1 || rc=$?
  [[ "$rc" -eq 64 ]] || problem "$name run on its own exits $rc, want 64"
  if [[ "$name" != lib/common.sh && "$(wc -l <"$f")" -gt 260 ]]; then problem "$name has $(wc -l <"$f") lines (at most 260)"; fi
done
for f in "$DIR"/*.sh; do
  name="$(basename "$f")"
  grep -q '^set -euo pipefail$' "$f" || problem "$name: no 'set -euo pipefail'"
  [[ -x "$f" ]] || problem "$name: not executable"
  grep -qxF -- "$SOURCE_LINE" "$f" || problem "$name: does not source lib/common.sh"
  if ! help="$(bash "$COPY/$name" --help 2>&1)"; then problem "$name --help exits non-zero (run with bash, no execute bits)"; fi
  grep -q '^Exit codes:' <<<"$help" || problem "$name --help documents no exit codes"
  grep -q '^Usage:' <<<"$help" || problem "$name --help has no Usage line"
  # Unknown flags are usage errors (64).
  rc=0; bash "$COPY/$name" --no-such-flag >/dev/null 2>&1 || rc=$?
  [[ "$rc" -eq 64 ]] || problem "$name --no-such-flag exits $rc, want 64"
  # Another script of the engine runs with bash: uploaded files may lack execute bits.
  # shellcheck disable=SC2016  # a literal $SCRIPT_DIR
  if grep -nE '(^|[^h] )"\$SCRIPT_DIR/[A-Za-z0-9_-]+\.sh"' "$f"; then problem "$name runs a script without bash"; fi
done
if grep -rniE "$SAMPLE_NAMES" "$DIR" || grep -rnE '\bpostgres\b' "$DIR"; then problem "the engine names the sample app (above)"; fi
if [[ "$fail" -eq 0 ]]; then
  n=("$DIR"/*.sh "$DIR"/lib/*.sh)
  echo "lint: ${#n[@]} files clean"
fi
exit "$fail"
