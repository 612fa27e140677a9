#!/usr/bin/env bash
# Operator command: restore / list / status of the VM's database backups over SSH.
# Usage: npm run restore -- --stack NAME (--backup BACKUP_ID | --list | --status)
#   --backup ID  restore that backup (/opt/APP/bin/restore.sh --yes: verify, safety backup,
#                stop bot-api, pg_restore, row counts, restart, health gate)
#   --list       the backup index: time, type, size MB, verified, id
#   --status     time and age of the last verified backup (LAST_SUCCESS)
# Where the VM is: target `existing` reads onevm:host, onevm:sshPort, onevm:sshUser, secret
# onevm:sshPrivateKey and onevm:hostPublicKey from the stack config; target `digitalocean`
# reads the `address` and `sshHostPublicKey` stack outputs and onevm:sshPrivateKey or the
# generated key (secret output `deployPrivateKey`). The host key is pinned with a temporary
# known_hosts; APP is onevm:app. The stack backend is the one `npm run pulumi` uses
# (PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE[_FILE] honoured).
# Exit codes: 64 usage error; 1 the stack does not say where the VM is, or SSH failed;
# --backup: restore.sh's (0 restored and healthy, 1 failed, 2 backup not found, corrupt,
# truncated or unverified, 3 database connection failed, 4 lock busy); --status: 1 no
# verified backup yet.
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "$0")/env.sh"
cd "$ONEVM_ROOT"
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }
stack="" backup="" mode=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --stack) [[ $# -ge 2 ]] || { echo "--stack needs a value" >&2; exit 64; }; stack="$2"; shift 2 ;;
    --backup) [[ $# -ge 2 ]] || { echo "--backup needs a value" >&2; exit 64; }; backup="$2"; mode=restore; shift 2 ;;
    --list) mode=list; shift ;;
    --status) mode=status; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
  esac
done
[[ -n "$stack" && -n "$mode" ]] || { echo "need --stack NAME and one of --backup ID, --list, --status (see --help)" >&2; exit 64; }
if [[ "$mode" == restore && ! "$backup" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]]; then
  echo "bad backup id: $backup" >&2; exit 64
fi

tmp="$(mktemp -d)"; trap 'rm -rf -- "$tmp"' EXIT
config="$(pulumi config --stack "$stack" --json --show-secrets)" || { echo "cannot read the config of stack $stack" >&2; exit 1; }
outputs="$(pulumi stack output --stack "$stack" --json --show-secrets 2>/dev/null)" || outputs='{}'
# Secrets (the SSH key) travel on stdin and land in a 0600 file, never on a command line.
read -r target host port user app min_free_mb < <(
  printf '{"config":%s,"outputs":%s}' "$config" "$outputs" |
    node -r ts-node/register/transpile-only scripts/restore-target.ts "$stack" "$tmp" || echo FAIL
)
[[ "$target" != FAIL && -n "$min_free_mb" ]] || exit 1
ssh_vm() {
  ssh -i "$tmp/key" -p "$port" -o UserKnownHostsFile="$tmp/known_hosts" -o StrictHostKeyChecking=yes \
    -o BatchMode=yes -o IdentitiesOnly=yes -o LogLevel=ERROR "$user@$host" "$@"
}
dir="/opt/$app"
case "$mode" in
  restore)
    echo "restoring $backup on $user@$host:$port ($target, app $app)" >&2
    ssh_vm "sudo bash $dir/bin/restore.sh --app-dir $dir --backup $backup --min-free-mb $min_free_mb --yes" ;;
  list)
    ssh_vm "cat $dir/backups/backup_index.json" |
      jq -r '["CREATED","TYPE","SIZE_MB","VERIFIED","BACKUP_ID"], (.backups | sort_by(.created_at)[] | [.created_at // "-", .backup_type // "-", .file_size_mb // "-", .verified, .backup_id]) | @tsv' ;;
  status)
    line="$(ssh_vm "cat $dir/backups/LAST_SUCCESS 2>/dev/null || true")"
    [[ -n "$line" ]] || { echo "no verified backup yet (no $dir/backups/LAST_SUCCESS)"; exit 1; }
    t="${line%% *}"; age=$(( $(date -u +%s) - $(date -u -d "$t" +%s) ))
    printf 'last verified backup: %s  age: %dh%02dm  file: %s\n' "$t" $((age / 3600)) $((age % 3600 / 60)) "${line#* }" ;;
esac
