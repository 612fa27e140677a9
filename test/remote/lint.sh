#!/usr/bin/env bash
# Static checks of scripts/remote/*.sh: shellcheck, strict mode, --help (exit 0, lists exit
# codes), and the shared "common" block identical in every script.
# Usage: test/remote/lint.sh [--fix-common]   (--fix-common copies activate.sh's block to all)
# Exit: 0 clean, 1 problems found.
set -euo pipefail

ROOT="$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="$ROOT/scripts/remote"
CANON="$DIR/activate.sh"
BEGIN='^# --- common: keep this block identical'
END='^# --- end common ---'
fail=0

common_of() { sed -n "/$BEGIN/,/$END/p" "$1"; }

if [[ "${1:-}" == "--fix-common" ]]; then
  block="$(common_of "$CANON")"
  for f in "$DIR"/*.sh; do
    [[ "$f" == "$CANON" ]] && continue
    tmp="$(mktemp)"
    BLOCK="$block" awk -v begin="${BEGIN#^}" -v end="${END#^}" '
      index($0, begin) == 1 { print ENVIRON["BLOCK"]; skip = 1; next }
      skip && index($0, end) == 1 { skip = 0; next }
      !skip { print }' "$f" >"$tmp"
    cat "$tmp" >"$f"
    rm -f "$tmp"
  done
  echo "common block copied from activate.sh"
fi

command -v shellcheck >/dev/null || { echo "shellcheck missing (apt-get install -y shellcheck)"; exit 1; }
canon="$(common_of "$CANON")"
for f in "$DIR"/*.sh; do
  name="$(basename "$f")"
  if ! shellcheck -x "$f"; then echo "FAIL shellcheck $name"; fail=1; fi
  grep -q '^set -euo pipefail$' "$f" || { echo "FAIL $name: no 'set -euo pipefail'"; fail=1; }
  [[ -x "$f" ]] || { echo "FAIL $name: not executable"; fail=1; }
  [[ "$(common_of "$f")" == "$canon" ]] || { echo "FAIL $name: common block differs from activate.sh's"; fail=1; }
  if ! help="$(bash "$f" --help 2>&1)"; then echo "FAIL $name --help exits non-zero"; fail=1; fi
  grep -q '^Exit codes:' <<<"$help" || { echo "FAIL $name --help documents no exit codes"; fail=1; }
  grep -q '^Usage:' <<<"$help" || { echo "FAIL $name --help has no Usage line"; fail=1; }
  # Unknown flags are usage errors (64).
  rc=0; bash "$f" --no-such-flag >/dev/null 2>&1 || rc=$?
  [[ "$rc" -eq 64 ]] || { echo "FAIL $name --no-such-flag exits $rc, want 64"; fail=1; }
done
if [[ "$fail" -eq 0 ]]; then n=("$DIR"/*.sh); echo "lint: ${#n[@]} scripts clean"; fi
exit "$fail"
