/**
 * The operator command: day-2 work on a stack's VM over SSH, with the host key pinned.
 * Run it as `npm run onevm -- <verb> --stack STACK [...]` (scripts/env.sh's environment:
 * the same backend, passphrase and CLI `npm run pulumi` uses; PULUMI_BACKEND_URL and
 * PULUMI_CONFIG_PASSPHRASE[_FILE] are honoured, so any Pulumi backend works).
 */
import { spawnSync, SpawnSyncOptions } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { shq } from "../lib/remote";
import { ConfigJson, knownHostsLine, resolveVmTarget, VmTarget, VmTargetError } from "../lib/vmTarget";

const USAGE = `Usage: npm run onevm -- VERB --stack STACK [options]

  status                        release and previous release, each service's state and
                                health, last verified backup and its age, free disk, locks
  logs [SERVICE] [--follow] [--since DURATION] [--tail N]
                                the services' logs (docker compose logs in current/)
  exec SERVICE -- COMMAND...    run a command in a service's running container
  ssh [-- COMMAND...]           a shell (or one command) on the VM as the deploy user
  releases                      releases on the VM and which can be rolled back to
  history [--limit N]           deploys, automatic and operator rollbacks, newest first
  lock --message TEXT           refuse deploys until unlocked (names you and TEXT)
  unlock                        remove the operator lock
  backup                        a verified manual backup now (off-host copies as configured)
  restore --list | --status | --backup BACKUP_ID
                                the backups; the age of the last verified one; restore one
                                (verified first; a safety backup is taken; never implicit)
Options:
  --stack STACK                 the Pulumi stack (required)
  --json                        status, releases, history: JSON instead of a table
  -h, --help                    this text

Exit codes: the remote command's own (see each VM script's --help); 1 the stack does not
say where the VM is or SSH failed; 64 usage error.`;

class UsageError extends Error {}

interface Args {
    verb: string;
    stack: string;
    json: boolean;
    rest: string[];
    flags: Record<string, string | true>;
}

/** Flags that take a value. */
const VALUE_FLAGS = new Set(["--stack", "--since", "--tail", "--limit", "--message", "--backup"]);

export function parseArgs(argv: string[]): Args {
    const flags: Record<string, string | true> = {};
    const rest: string[] = [];
    let verb = "";
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--") {
            rest.push(...argv.slice(i + 1));
            break;
        }
        if (a.startsWith("--")) {
            const [name, inline] = a.split(/=(.*)/s, 2);
            if (VALUE_FLAGS.has(name)) {
                const value = inline ?? argv[++i];
                if (value === undefined) throw new UsageError(`${name} needs a value`);
                flags[name] = value;
            } else {
                flags[name] = true;
            }
        } else if (a === "-h") {
            flags["--help"] = true;
        } else if (!verb) {
            verb = a;
        } else {
            rest.push(a);
        }
    }
    const stack = typeof flags["--stack"] === "string" ? flags["--stack"] : "";
    return { verb, stack, json: flags["--json"] === true, rest, flags };
}

function pulumiJson(args: string[]): unknown {
    const r = spawnSync("pulumi", [...args, "--json"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (r.error) throw new VmTargetError(`cannot run pulumi: ${r.error.message}`);
    if (r.status !== 0) throw new VmTargetError(`pulumi ${args.join(" ")} failed: ${(r.stderr || r.stdout).trim()}`);
    return JSON.parse(r.stdout || "{}");
}

function readTarget(stack: string): VmTarget {
    const config = pulumiJson(["config", "--stack", stack, "--show-secrets"]) as ConfigJson;
    const outputs = pulumiJson(["stack", "output", "--stack", stack, "--show-secrets"]) as Record<string, unknown>;
    return resolveVmTarget(config, outputs, stack);
}

/** Runs ssh to the VM with the key in a 0600 file and the host key pinned; never the key on a command line. */
function sshTo(t: VmTarget, remote: string | undefined, o: { tty?: boolean; capture?: boolean } = {}): { status: number; stdout: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-ssh-"));
    try {
        fs.writeFileSync(path.join(dir, "key"), t.privateKey.endsWith("\n") ? t.privateKey : `${t.privateKey}\n`, { mode: 0o600 });
        fs.writeFileSync(path.join(dir, "known_hosts"), knownHostsLine(t), { mode: 0o600 });
        const args = [
            "-F", "/dev/null",
            "-i", path.join(dir, "key"),
            "-p", String(t.port),
            "-o", `UserKnownHostsFile=${path.join(dir, "known_hosts")}`,
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "LogLevel=ERROR",
            ...(o.tty ? ["-t"] : ["-o", "BatchMode=yes"]),
            `${t.user}@${t.host}`,
            ...(remote === undefined ? [] : [remote]),
        ];
        const opts: SpawnSyncOptions = o.capture ? { encoding: "utf8", stdio: ["inherit", "pipe", "inherit"], maxBuffer: 64 * 1024 * 1024 } : { stdio: "inherit" };
        const r = spawnSync("ssh", args, opts);
        return { status: r.status ?? 1, stdout: o.capture ? String(r.stdout) : "" };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** `docker compose` in the current release, as a remote command line. */
function compose(t: VmTarget, args: string[]): string {
    return `cd /opt/${t.app}/current && docker compose --ansi never ${args.map(shq).join(" ")}`;
}

function table(rows: string[][]): string {
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
    return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ")).join("\n");
}

function age(seconds: number): string {
    const h = Math.floor(seconds / 3600);
    return h >= 48 ? `${Math.floor(h / 24)}d${h % 24}h` : `${h}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")}m`;
}

interface Status {
    app: string;
    current: string | null;
    previous: string | null;
    releases: Array<{ id: string; installed_at: string | null; current: boolean; previous: boolean }>;
    services: Record<string, { status: string; state?: string; health?: string; detail?: string }>;
    overall_status: string;
    backup: { last: string | null; file: string | null; age_s: number | null };
    disk: { path: string; free_mb: number };
    locks: { deploy: string | null; operator: { by: string; message: string; since: string } | null };
}

function printStatus(s: Status): void {
    const lines = [
        `app ${s.app}: ${s.overall_status}`,
        `release  ${s.current ?? "(none)"}    previous ${s.previous ?? "(none)"}`,
        "",
        table([["SERVICE", "STATUS", "STATE", "HEALTH"], ...Object.entries(s.services).map(([name, v]) => [name, v.status, v.state ?? "", v.health ?? ""])]),
        "",
        s.backup.last ? `last verified backup  ${s.backup.last} (${age(s.backup.age_s ?? 0)} ago)  ${s.backup.file}` : "last verified backup  none yet",
        `free disk  ${s.disk.free_mb} MB on ${s.disk.path}`,
        `deploy lock  ${s.locks.deploy ?? "free"}`,
        `operator lock  ${s.locks.operator ? `${s.locks.operator.by} since ${s.locks.operator.since}: ${s.locks.operator.message}` : "none"}`,
    ];
    console.log(lines.join("\n"));
}

function run(a: Args): number {
    const t = readTarget(a.stack);
    const dir = `/opt/${t.app}`;
    const bin = `${dir}/bin`;
    switch (a.verb) {
        case "status": {
            const r = sshTo(t, `bash ${bin}/status.sh --app-dir ${dir}`, { capture: true });
            if (r.status !== 0 && !r.stdout.trim().startsWith("{")) return r.status;
            const s = JSON.parse(r.stdout) as Status;
            if (a.json) console.log(JSON.stringify(s, null, 2));
            else printStatus(s);
            return r.status;
        }
        case "logs": {
            const args = ["logs", ...(a.flags["--follow"] ? ["--follow"] : []), "--tail", String(a.flags["--tail"] ?? "200")];
            if (typeof a.flags["--since"] === "string") args.push("--since", a.flags["--since"]);
            // Compose 2.26 writes terminal escapes into its output even with --ansi never.
            return sshTo(t, `set -o pipefail; ${compose(t, [...args, ...a.rest])} 2>&1 | sed -u 's/\x1b\[[0-9;]*[A-Za-z]//g'`).status;
        }
        case "exec": {
            const [service, ...command] = a.rest;
            if (!service || command.length === 0) throw new UsageError("exec needs SERVICE -- COMMAND...");
            const tty = process.stdin.isTTY === true;
            return sshTo(t, compose(t, ["exec", ...(tty ? [] : ["-T"]), service, ...command]), { tty }).status;
        }
        case "ssh":
            return sshTo(t, a.rest.length > 0 ? a.rest.map(shq).join(" ") : undefined, { tty: a.rest.length === 0 && process.stdin.isTTY === true }).status;
        case "releases": {
            const r = sshTo(t, `bash ${bin}/status.sh --app-dir ${dir}`, { capture: true });
            if (!r.stdout.trim().startsWith("{")) return r.status || 1;
            const s = JSON.parse(r.stdout) as Status;
            const releases = [...s.releases].sort((x, y) => String(y.installed_at).localeCompare(String(x.installed_at)));
            if (a.json) {
                console.log(JSON.stringify(releases, null, 2));
            } else {
                console.log(
                    table([
                        ["RELEASE", "INSTALLED", "ROLE"],
                        ...releases.map((x) => [x.id, x.installed_at ?? "-", x.current ? "current" : x.previous ? "previous (roll back: set onevm:releaseId)" : "can be rolled back to"]),
                    ]),
                );
            }
            return 0;
        }
        case "history": {
            const r = sshTo(t, `cat ${dir}/state/history.jsonl 2>/dev/null || true`, { capture: true });
            const limit = Number(a.flags["--limit"] ?? 20);
            const entries = r.stdout
                .trim()
                .split("\n")
                .filter((l) => l.trim() !== "")
                .map((l) => JSON.parse(l) as Record<string, unknown>)
                .reverse()
                .slice(0, limit);
            if (a.json) {
                console.log(JSON.stringify(entries, null, 2));
            } else if (entries.length === 0) {
                console.log("no deploys yet");
            } else {
                console.log(
                    table([
                        ["FINISHED", "RELEASE", "RESULT", "PREVIOUS", "OPERATOR", "SECONDS", "DETAIL"],
                        ...entries.map((e) => [String(e.finished_at ?? "-"), String(e.release), String(e.result), String(e.previous ?? "-"), String(e.operator ?? "-"), String(e.duration_s ?? "-"), String(e.incident ?? e.reason ?? "")]),
                    ]),
                );
            }
            return r.status;
        }
        case "lock": {
            const message = a.flags["--message"];
            if (typeof message !== "string" || message.trim() === "") throw new UsageError("lock needs --message TEXT (why deploys must wait)");
            return sshTo(t, `bash ${bin}/lock.sh --app-dir ${dir} --by ${shq(os.userInfo().username)} --message ${shq(message)}`).status;
        }
        case "unlock":
            return sshTo(t, `bash ${bin}/lock.sh --app-dir ${dir} --release`).status;
        case "backup":
            return sshTo(t, `bash ${bin}/backup.sh --app-dir ${dir} --type manual`).status;
        case "restore": {
            if (a.flags["--list"]) {
                return sshTo(
                    t,
                    `jq -r '["CREATED","TYPE","SIZE_MB","VERIFIED","BACKUP_ID"], (.backups | sort_by(.created_at) | reverse[] | [.created_at // "-", .backup_type // "-", .file_size_mb // "-", .verified, .backup_id]) | @tsv' ${dir}/backups/backup_index.json`,
                ).status;
            }
            if (a.flags["--status"]) {
                const r = sshTo(t, `cat ${dir}/backups/LAST_SUCCESS 2>/dev/null || true`, { capture: true });
                const line = r.stdout.trim();
                if (!line) {
                    console.log(`no verified backup yet (no ${dir}/backups/LAST_SUCCESS)`);
                    return 1;
                }
                const [when, file] = line.split(" ");
                console.log(`last verified backup: ${when}  age: ${age((Date.now() - Date.parse(when)) / 1000)}  file: ${file}`);
                return 0;
            }
            const id = a.flags["--backup"];
            if (typeof id !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id)) throw new UsageError("restore needs --list, --status or --backup BACKUP_ID");
            console.error(`restoring ${id} on ${t.user}@${t.host}:${t.port} (app ${t.app})`);
            return sshTo(t, `sudo -n bash ${bin}/restore.sh --app-dir ${dir} --backup ${shq(id)} --yes`).status;
        }
        default:
            throw new UsageError(a.verb ? `unknown verb: ${a.verb}` : "a verb is required");
    }
}

function main(): number {
    let a: Args;
    try {
        a = parseArgs(process.argv.slice(2));
        if (a.flags["--help"]) {
            console.log(USAGE);
            return 0;
        }
        if (!a.stack) throw new UsageError("--stack STACK is required");
        return run(a);
    } catch (e) {
        if (e instanceof UsageError) {
            console.error(`onevm: ${e.message}\n\n${USAGE}`);
            return 64;
        }
        if (e instanceof VmTargetError) {
            console.error(`onevm: ${e.message}`);
            return 1;
        }
        throw e;
    }
}

if (require.main === module) {
    process.exitCode = main();
}
