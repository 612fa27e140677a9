#!/usr/bin/env bash
# The main job: sets up this machine (scripts/setup.sh), starts the local sandbox VM,
# builds the sample app's images, and deploys them with the real `pulumi up` on stack
# `sandbox`. Prints where the app answers. Run it again to converge (no-op when nothing
# changed); ONEVM_DEMO_RELEASE=v2 npm run demo deploys another release.
#
# Usage: scripts/demo.sh [--help]
# Exit:  0 deployed; 1 a step failed (pulumi's own output says which); 2 bad usage
set -euo pipefail

case "${1:-}" in -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; "") ;; *) echo "usage: $0 [--help]" >&2; exit 2 ;; esac
log() { printf '[%s] %s: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$1" "$2" >&2; }
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh

release=${ONEVM_DEMO_RELEASE:-v1}
stack=${ONEVM_DEMO_STACK:-sandbox}
log INFO "starting sandbox VM '$stack'"
vm=$(bash scripts/sandbox.sh up "$stack")
field() { node -e 'process.stdout.write(String(JSON.parse(process.argv[1])[process.argv[2]]))' "$vm" "$1"; }

log INFO "building the sample app's images for release $release"
refs=$(bash scripts/build-images.sh --release "$release" --save build/images | tail -n 1)

pulumi stack select "$stack" --create >/dev/null
pulumi config set onevm:host "$(field host)"
pulumi config set onevm:sshPort "$(field port)"
pulumi config set onevm:sshUser "$(field user)"
pulumi config set --secret onevm:sshPrivateKey < "$(field privateKeyPath)"
pulumi config set onevm:hostPublicKey "$(field hostPublicKey)"
pulumi config set onevm:releaseId "$release"
for service in bot-api migrate postgres redis; do
  pulumi config set --path "onevm:images.$service" \
    "$(node -e 'process.stdout.write(JSON.parse(process.argv[1])[process.argv[2]])' "$refs" "$service")"
done
pulumi config set onevm:imageTransport archive
pulumi config set onevm:imageArchiveDir "$root/build/images"
pulumi config set onevm:backupMinFreeMb 100
if ! pulumi config get onevm:telegramBotToken >/dev/null 2>&1; then
  # A demo token: the sample bot never calls Telegram.
  pulumi config set --secret onevm:telegramBotToken "demo-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
fi

pulumi up --yes --stack "$stack"

log INFO "deployed release $release to sandbox '$stack'"
echo "The app answers on the VM's loopback port 8080 (internal only, as in production):"
echo "  npm run sandbox -- ssh $stack -- curl -fsS http://127.0.0.1:8080/health"
bash scripts/sandbox.sh ssh "$stack" -- curl -fsS http://127.0.0.1:8080/health
echo
