#!/usr/bin/env bash
# Runs every test: set-up (idempotent), shellcheck, type check, unit tests under mocks,
# then end-to-end tests with the real Pulumi engine against fresh sandbox VMs.
#
# Usage: scripts/test.sh [--unit-only] [jest args...]
# Exit:  jest's exit code; 1 when shellcheck or the type check fails
# Ends with the plain line 'N passed, N failed, N skipped', then the suite's wall time.
set -euo pipefail
started=$SECONDS
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh

echo "== shellcheck"
mapfile -t shell_files < <(git ls-files '*.sh' 2>/dev/null)
shellcheck -x "${shell_files[@]}"
echo "== tsc"
tsc --noEmit -p .

projects=(--selectProjects unit e2e)
if [ "${1:-}" = "--unit-only" ]; then projects=(--selectProjects unit); shift; fi
echo "== jest"
results=$(mktemp)
status=0
jest "${projects[@]}" --runInBand --json --outputFile "$results" "$@" || status=$?
# The plain closing line CI reads, from jest's own counts.
# shellcheck disable=SC2016 # JavaScript template literal, not shell.
node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`)' "$results" || true
rm -f "$results"
elapsed=$((SECONDS - started))
printf 'npm test took %dm%02ds (set-up included)\n' $((elapsed / 60)) $((elapsed % 60))
exit "$status"
