/**
 * I/O half of lib/restoreTarget.ts for scripts/restore.sh. Usage:
 *   { echo '{"config":' CONFIG_JSON ',"outputs":' OUTPUTS_JSON '}'; } | restore-target.ts STACK DIR
 * Writes DIR/key (0600) and DIR/known_hosts (the pinned host key), prints
 * "TARGET HOST PORT USER APP BACKUP_MIN_FREE_MB" on one line (each value checked by a config rule: no shell
 * metacharacters). Exit 1 with a message when the stack does not say where the VM is.
 */
import * as fs from "fs";
import * as path from "path";
import { knownHostsLine, resolveRestoreTarget, RestoreTargetError } from "../lib/restoreTarget";

const [stack, dir] = process.argv.slice(2);
try {
    const { config, outputs } = JSON.parse(fs.readFileSync(0, "utf8"));
    const t = resolveRestoreTarget(config ?? {}, outputs ?? {}, stack);
    fs.writeFileSync(path.join(dir, "key"), t.privateKey.endsWith("\n") ? t.privateKey : `${t.privateKey}\n`, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, "known_hosts"), knownHostsLine(t), { mode: 0o600 });
    process.stdout.write(`${t.target} ${t.host} ${t.port} ${t.user} ${t.app} ${t.backupMinFreeMb}\n`);
} catch (e) {
    process.stderr.write(`${e instanceof RestoreTargetError ? e.message : `cannot read the stack: ${(e as Error).message}`}\n`);
    process.exit(1);
}
