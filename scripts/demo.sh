#!/usr/bin/env bash
# The main job: sets up this machine (scripts/setup.sh), starts a local sandbox VM (a fresh
# Debian VM with sshd and no Docker: onevm installs it), builds an example app's images,
# and deploys it with the real `pulumi up` on stack `demo-EXAMPLE`, with the example's own
# stack config (examples/EXAMPLE/stack.yaml). Prints where the app answers. Run it again
# to converge (a no-op when nothing changed); ONEVM_DEMO_RELEASE=v2 deploys another release.
#
# Usage: scripts/demo.sh [EXAMPLE] [--help]
#   EXAMPLE  booking-bot (default), web-platform, go-api, nginx-bot or worker-bot
# Exit:  0 deployed; 1 a step failed (pulumi's own output says which); 2 bad usage
set -euo pipefail

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }
example=booking-bot
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  -*) usage >&2; exit 2 ;;
  *) example=$1 ;;
esac
[ $# -le 1 ] || { usage >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -f "examples/$example/stack.yaml" ] || { log ERROR "no example '$example' (examples/*/stack.yaml: $(find examples -mindepth 2 -maxdepth 2 -name stack.yaml -printf '%h ' | sed 's,examples/,,g'))"; exit 2; }
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh

release=${ONEVM_DEMO_RELEASE:-v1}
stack=demo-$example
log INFO "starting sandbox VM '$stack'"
vm=$(bash scripts/sandbox.sh up "$stack")
field() { node -e 'process.stdout.write(String(JSON.parse(process.argv[1])[process.argv[2]]))' "$vm" "$1"; }

log INFO "building $example's images for release $release (and the proxy's)"
images=$(bash scripts/build-images.sh --example "$example" --release "$release" --proxy --save build/images | tail -n 1)

pulumi stack select "$stack" --create >/dev/null
# The example's own config, what onevm must know about the app (docs/app-model.md), with
# this release's images: `pulumi config set-all --json` takes objects as they are.
config_json=$(node -e '
  const { parse } = require("yaml");
  const config = parse(require("fs").readFileSync(process.argv[1], "utf8")).config;
  config["onevm:images"] = JSON.parse(process.argv[2]);
  const out = {};
  for (const [key, value] of Object.entries(config)) {
    out[key] = typeof value === "object" ? { value: JSON.stringify(value), objectValue: value, secret: false } : { value: String(value), secret: false };
  }
  process.stdout.write(JSON.stringify(out));' "examples/$example/stack.yaml" "$images")
pulumi config set-all --json "$config_json"
# The sandbox VM: where it is, its pinned host key, the login key.
pulumi config set onevm:host "$(field host)"
pulumi config set onevm:sshPort "$(field port)"
pulumi config set onevm:sshUser "$(field user)"
pulumi config set --secret onevm:sshPrivateKey < "$(field privateKeyPath)"
pulumi config set onevm:hostPublicKey "$(field hostPublicKey)"
pulumi config set onevm:releaseId "$release"
pulumi config set onevm:imageTransport archive
pulumi config set onevm:imageArchiveDir "$root/build/images"
pulumi config set onevm:proxyImage caddy:2
pulumi config set onevm:backupMinFreeMb 100
# Demo values for the example's secrets (the examples talk to no outside service).
for key in $(node -e 'const c=require("yaml").parse(require("fs").readFileSync(process.argv[1],"utf8")).config; console.log(Object.keys(c["onevm:secrets"]||{}).join(" "))' "examples/$example/stack.yaml"); do
  if ! pulumi config get "app:$key" >/dev/null 2>&1; then
    head -c 24 /dev/urandom | base64 | tr -d '/+=' | pulumi config set --secret "app:$key"
  fi
done

pulumi up --yes --stack "$stack"

log INFO "deployed $example release $release to sandbox '$stack'"
echo "Day-2 commands: npm run onevm -- status --stack $stack   (logs, exec, ssh, releases, history, backup, restore)"
npm run -s onevm -- status --stack "$stack"
