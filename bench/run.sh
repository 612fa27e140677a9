#!/usr/bin/env bash
# npm run bench: the benchmark of issue 7 on fresh sandboxes (see bench/bench.ts).
# Not part of npm test. Arguments go to bench.ts (--only default|tls, --noop-runs N).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh >&2
# shellcheck source=scripts/env.sh
source scripts/env.sh
exec ts-node --transpile-only bench/bench.ts "$@"
