#!/usr/bin/env bash
# Operator command: restore / list / status of the VM's database backups over SSH.
# Usage: npm run restore -- --stack NAME (--backup BACKUP_ID | --list | --status) [--app bot]
# Reads onevm:host, onevm:sshPort, onevm:sshUser, onevm:sshPrivateKey (secret) and
# onevm:hostPublicKey from the stack's config (target `existing`); the host key is pinned
# with a temporary known_hosts. Exit code: that of /opt/APP/bin/restore.sh (seed 003).
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "$0")/env.sh"
cd "$ONEVM_ROOT"
stack="" backup="" mode="" app="bot"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stack) stack="$2"; shift 2 ;;
    --backup) backup="$2"; mode=restore; shift 2 ;;
    --list) mode=list; shift ;;
    --status) mode=status; shift ;;
    --app) app="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 64 ;;
  esac
done
[[ -n "$stack" && -n "$mode" ]] || { echo "need --stack NAME and one of --backup ID, --list, --status" >&2; exit 64; }
[[ "$app" =~ ^[a-z0-9][a-z0-9_-]{0,62}$ ]] || { echo "bad --app" >&2; exit 64; }
cfg() { pulumi config get --stack "$stack" --show-secrets "onevm:$1" 2>/dev/null || printf '%s' "${2:-}"; }
host="$(cfg host)"; port="$(cfg sshPort 22)"; user="$(cfg sshUser deploy)"; hostkey="$(cfg hostPublicKey)"
[[ -n "$host" && -n "$hostkey" ]] || { echo "stack $stack has no onevm:host / onevm:hostPublicKey" >&2; exit 1; }
tmp="$(mktemp -d)"; trap 'rm -rf -- "$tmp"' EXIT
cfg sshPrivateKey >"$tmp/key"; echo >>"$tmp/key"; chmod 600 "$tmp/key"
if [[ "$port" == 22 ]]; then echo "$host $hostkey" >"$tmp/kh"; else echo "[$host]:$port $hostkey" >"$tmp/kh"; fi
ssh_vm() {
  ssh -i "$tmp/key" -p "$port" -o UserKnownHostsFile="$tmp/kh" -o StrictHostKeyChecking=yes \
    -o BatchMode=yes -o IdentitiesOnly=yes "$user@$host" "$@"
}
dir="/opt/$app"
case "$mode" in
  restore)
    [[ "$backup" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "bad backup id: $backup" >&2; exit 64; }
    ssh_vm "sudo bash $dir/bin/restore.sh --app-dir $dir --backup $backup --yes" ;;
  list)
    ssh_vm "cat $dir/backups/backup_index.json" |
      jq -r '["CREATED","TYPE","SIZE_MB","VERIFIED","BACKUP_ID"], (.backups | sort_by(.created_at)[] | [.created_at, .backup_type, .file_size_mb, .verified, .backup_id]) | @tsv' ;;
  status)
    line="$(ssh_vm "cat $dir/backups/LAST_SUCCESS" 2>/dev/null || true)"
    [[ -n "$line" ]] || { echo "no verified backup yet (no LAST_SUCCESS)"; exit 1; }
    t="${line%% *}"; age=$(( $(date -u +%s) - $(date -u -d "$t" +%s) ))
    printf 'last verified backup: %s  age: %dh%02dm  file: %s\n' "$t" $((age / 3600)) $((age % 3600 / 60)) "${line#* }" ;;
esac
