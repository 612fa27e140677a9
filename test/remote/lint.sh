#!/usr/bin/env bash
# Static checks of vm/*.sh: shellcheck, strict mode, --help (exit 0, lists exit
# codes), unknown flags exit 64, and every script sourcing the shared helpers in common.sh.
# Usage: test/remote/lint.sh
# Exit: 0 clean, 1 problems found.
set -euo pipefail

ROOT="$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/vm"
# shellcheck disable=SC2016  # the literal line each script must contain
SOURCE_LINE='source "$(dirname -- "${BASH_SOURCE[0]}")/lib/common.sh"'
fail=0

command -v shellcheck >/dev/null || { echo "shellcheck missing (apt-get install -y shellcheck)"; exit 1; }
shellcheck -x "$DIR/lib/common.sh" || { echo "FAIL shellcheck common.sh"; fail=1; }
for f in "$DIR"/*.sh; do
  name="$(basename "$f")"
  [[ "$name" == common.sh ]] && continue
  if ! shellcheck -x "$f"; then echo "FAIL shellcheck $name"; fail=1; fi
  grep -q '^set -euo pipefail$' "$f" || { echo "FAIL $name: no 'set -euo pipefail'"; fail=1; }
  [[ -x "$f" ]] || { echo "FAIL $name: not executable"; fail=1; }
  grep -qxF -- "$SOURCE_LINE" "$f" || { echo "FAIL $name: does not source common.sh"; fail=1; }
  if ! help="$(bash "$f" --help 2>&1)"; then echo "FAIL $name --help exits non-zero"; fail=1; fi
  grep -q '^Exit codes:' <<<"$help" || { echo "FAIL $name --help documents no exit codes"; fail=1; }
  grep -q '^Usage:' <<<"$help" || { echo "FAIL $name --help has no Usage line"; fail=1; }
  # Unknown flags are usage errors (64).
  rc=0; bash "$f" --no-such-flag >/dev/null 2>&1 || rc=$?
  [[ "$rc" -eq 64 ]] || { echo "FAIL $name --no-such-flag exits $rc, want 64"; fail=1; }
done
if [[ "$fail" -eq 0 ]]; then n=("$DIR"/*.sh); echo "lint: ${#n[@]} files clean"; fi
exit "$fail"
