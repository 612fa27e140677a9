#!/usr/bin/env bash
# Runs the Pulumi CLI built by scripts/install-toolchain.sh in onevm's offline environment
# (see scripts/env.sh). Usage: npm run pulumi -- <pulumi args>   e.g. `npm run pulumi -- preview --stack sandbox --diff`
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "$0")/env.sh"
if [ ! -x "$ONEVM_PULUMI_BIN/pulumi" ]; then
  echo "onevm: the Pulumi CLI is not built yet; run: npm run setup" >&2
  exit 2
fi
cd "$ONEVM_ROOT"
exec pulumi "$@"
