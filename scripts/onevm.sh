#!/usr/bin/env bash
# The operator command (scripts/onevm.ts) in onevm's environment (scripts/env.sh: the
# backend, passphrase and Pulumi CLI `npm run pulumi` uses). See: npm run onevm -- --help
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "$0")/env.sh"
cd "$ONEVM_ROOT"
exec node -r ts-node/register/transpile-only scripts/onevm.ts "$@"
