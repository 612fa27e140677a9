#!/usr/bin/env bash
# npm run bench: the no-op preview, the release switch and the rollback, before and after
# the move to the official Pulumi toolchain, in one run and one table (bench/README.md).
#   before: the last commit before the toolchain merge (onevm's own TypeScript language
#           host and provider plugins), checked out in a git worktree under ONEVM_CACHE
#           (kept for the next run) with its npm packages and its stand-in language host;
#   after:  this checkout (the official language host and plugins, scripts/setup.sh).
# Both run the same measurement (bench/bench.ts measure) with the checkout's own program,
# harness and toolchain, one after the other on their own fresh sandbox VM; then one
# table, also written to bench/results/latest.json. Not part of npm test.
#
# Usage: npm run bench [-- --noop-runs N]        (default 5)
# Env:   ONEVM_BENCH_BEFORE  the "before" commit (default: the toolchain merge's first parent)
# Exit:  0 table printed, 1 a step failed, 2 bad usage
set -euo pipefail

noop_runs=5
while [ $# -gt 0 ]; do
  case $1 in
    --noop-runs) noop_runs=${2:?--noop-runs needs a number}; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: npm run bench [-- --noop-runs N]" >&2; exit 2 ;;
  esac
done

log() { printf '[bench %s] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" >&2; }
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
started=$SECONDS
log "load: $(uptime)"
bash scripts/setup.sh >&2

cache=${ONEVM_CACHE:-$HOME/.cache/onevm}
# f4b12b5: the first parent of 7e205f0 "Merge branch 'toolchain'", with providers/,
# toolchain/ and Pulumi.yaml's plugins: block.
before_commit=${ONEVM_BENCH_BEFORE:-f4b12b5a02add5c523c261e83e3c9fd7e8f0decf}
before=$cache/bench-before
before_cache=$cache/bench-before-toolchain
ts_node=(node -r "$root/node_modules/ts-node/register/transpile-only" "$root/bench/bench.ts")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- before: the checkout, its npm packages, its language host beside a copy of the CLI --------
if [ ! -e "$before/.git" ]; then
  log "checking out $before_commit into $before"
  git worktree add --detach "$before" "$before_commit" >&2
elif [ "$(git -C "$before" rev-parse HEAD)" != "$(git rev-parse "$before_commit^{commit}")" ]; then
  git -C "$before" checkout --quiet --detach "$before_commit"
fi
for d in providers toolchain; do
  [ -d "$before/$d" ] || { log "ERROR: $before_commit has no $d/: not a commit with onevm's stand-in toolchain"; exit 1; }
done
lock_hash=$(sha256sum "$before/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$before/node_modules/.onevm-lock-hash" 2>/dev/null)" != "$lock_hash" ]; then
  log "installing the before checkout's npm packages (npm ci)"
  (cd "$before" && npm ci --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >&2)
  echo "$lock_hash" > "$before/node_modules/.onevm-lock-hash"
fi
# Its own install-toolchain.sh puts a wrapper to toolchain/ beside the CLI it finds in its
# cache (the engine takes the language host beside its own binary first): so a separate
# cache, seeded with a copy (not a link: the engine resolves its own path) of the same
# CLI version built by scripts/install-toolchain.sh, which that script would build alike.
(
  # shellcheck source=scripts/env.sh
  source scripts/env.sh
  version=$(sed -n 's/.*"@pulumi\/pulumi": "\([0-9.]*\)".*/\1/p' "$before/package.json")
  seed=$before_cache/pulumi-v$version/bin
  if [ "$ONEVM_PULUMI_BIN" = "$ONEVM_CACHE/pulumi-v$version/bin" ] && ! cmp -s "$ONEVM_PULUMI_BIN/pulumi" "$seed/pulumi"; then
    mkdir -p "$seed"
    cp "$ONEVM_PULUMI_BIN/pulumi" "$ONEVM_PULUMI_BIN/pulumi-resource-pulumi-nodejs" "$seed/"
  fi
)
(cd "$before" && ONEVM_CACHE=$before_cache bash scripts/install-toolchain.sh >&2)
bash "$before/providers/build.sh" >&2

# --- the two measurements --------------------------------------------------------------
log "before ($before_commit): load $(cut -d' ' -f1-3 /proc/loadavg)"
# Its own env.sh, from a clean slate: its cache, PULUMI_HOME and backend, not this checkout's.
(cd "$before" && env -u PULUMI_HOME -u PULUMI_BACKEND_URL -u ONEVM_PULUMI_BIN -u ONEVM_ROOT \
  ONEVM_CACHE="$before_cache" \
  ONEVM_BENCH_PLUGINS="onevm's TypeScript stand-ins ($before/providers/bin, Pulumi.yaml plugins:)" \
  bash -c 'source scripts/env.sh && exec "$@"' bash \
  "${ts_node[@]}" measure --root "$before" --label before --out "$tmp/before.json" --noop-runs "$noop_runs")
log "after ($(git rev-parse --short HEAD)): load $(cut -d' ' -f1-3 /proc/loadavg)"
(
  # shellcheck source=scripts/env.sh
  source scripts/env.sh
  ONEVM_BENCH_PLUGINS="official, $(pulumi plugin ls 2>/dev/null | awk '$2 == "resource" { printf "%s%s %s", sep, $1, $3; sep = ", " }')"
  export ONEVM_BENCH_PLUGINS
  "${ts_node[@]}" measure --root "$root" --label after --out "$tmp/after.json" --noop-runs "$noop_runs"
)

# shellcheck source=scripts/env.sh
source scripts/env.sh
"${ts_node[@]}" report --before "$tmp/before.json" --after "$tmp/after.json"
echo "Bench wall time: $((SECONDS - started)) s; load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
