/**
 * Benchmark (not a test): `npm run bench:backup`. On a fresh sandbox (bk-bench) it deploys
 * v1 with the real engine, fills the app's database to ~1 GB, then in the same run times a
 * plain `docker exec pg_dump -Fc > file` and `backup.sh --type manual` (pg_dump -Fc plus
 * verification: `pg_restore --list` and a full read, index, LAST_SUCCESS, retention), and
 * prints both figures and their ratio. Writes bench/results/backup.json.
 * Env: BENCH_ROWS (default 3_000_000 rows of ~360 bytes on disk), ONEVM_KEEP_SANDBOX=1 keeps it.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { buildExampleImages, exampleStack, removeStack, ROOT, Sandbox, sandboxDown, sandboxUp, TestStack } from "../test/e2e/harness";

const NAME = "bk-bench";
const ROWS = Number(process.env.BENCH_ROWS ?? 3_000_000);

/** Like the harness's ssh, without its 5-minute limit: filling and dumping 1 GB on a busy host takes longer. */
function ssh(vm: Sandbox, command: string, opts: { input?: string } = {}): { out: string } {
    const r = spawnSync(
        "ssh",
        ["-i", vm.privateKeyPath, "-p", String(vm.port), "-o", `UserKnownHostsFile=${vm.knownHostsPath}`, "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ServerAliveInterval=30", `${vm.user}@${vm.host}`, command],
        { input: opts.input, encoding: "utf8", timeout: 3_600_000 },
    );
    if (r.status !== 0) throw new Error(`ssh ${vm.name}: '${command}' exited ${r.status}: ${r.stderr}`);
    return { out: r.stdout };
}

async function main() {
    let t: TestStack | undefined;
    try {
        const refs = buildExampleImages("booking-bot", ["v1"]);
        sandboxDown(NAME);
        const vm = sandboxUp(NAME, { withDocker: true });
        t = await exampleStack(NAME, "booking-bot", vm, {
            release: "v1",
            images: refs.v1,
            secrets: { TELEGRAM_BOT_TOKEN: "bench" },
            extra: { "onevm:healthRetries": { value: "15" }, "onevm:proxyImage": { value: "caddy:2" } },
        });
        console.log("deploying v1 on", NAME);
        await t.stack.up();
        const psql = (query: string) =>
            ssh(vm, `docker exec -i booking-bot-postgres-1 sh -c 'psql -X -tA -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f -'`, { input: query }).out.trim();
        console.log(`filling bench_fill with ${ROWS} rows`);
        // md5 text: realistic compressibility (a repeat() padding would compress to nothing).
        psql("CREATE TABLE bench_fill (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, padding text NOT NULL)");
        const batch = 500_000;
        for (let from = 1; from <= ROWS; from += batch) {
            const to = Math.min(ROWS, from + batch - 1);
            // Ten md5s of distinct numbers per row: no string repeats across rows.
            psql(`INSERT INTO bench_fill SELECT g, now(),
                  ${Array.from({ length: 10 }, (_, k) => `md5((g + ${k * ROWS})::text)`).join(" || ")}
                  FROM generate_series(${from}, ${to}) AS g`);
            console.log(`  ${to} rows`);
        }
        psql("VACUUM ANALYZE bench_fill; CHECKPOINT;");
        const dbBytes = Number(psql("SELECT pg_database_size(current_database())"));
        console.log(`database size: ${(dbBytes / 2 ** 20).toFixed(0)} MB`);

        // Both timed on the VM, back to back, in this one run.
        // CMD prints nothing on stdout of its own (its output goes to a file, or is backup.sh's path).
        const timed = (cmd: string) => {
            const out = ssh(vm, `s=$(date +%s.%N); ${cmd}; e=$(date +%s.%N); echo "$s $e"`).out.trim().split("\n").pop()!;
            const [s, e] = out.split(" ").map(Number);
            return e - s;
        };
        const plainSeconds = timed(`docker exec booking-bot-postgres-1 sh -c 'pg_dump -Fc -U "$POSTGRES_USER" "$POSTGRES_DB"' > /tmp/plain.dump`);
        const plainBytes = Number(ssh(vm, "stat -c %s /tmp/plain.dump && rm -f /tmp/plain.dump").out.trim());
        const scriptSeconds = timed("/opt/booking-bot/bin/backup.sh --type manual --min-free-mb 100 >/dev/null");
        const last = ssh(vm, "cat /opt/booking-bot/backups/LAST_SUCCESS").out.trim().split(" ")[1];
        const scriptBytes = Number(ssh(vm, `stat -c %s ${last}`).out.trim());
        const result = {
            when: new Date().toISOString(),
            rows: ROWS,
            databaseMb: Math.round(dbBytes / 2 ** 20),
            plainPgDump: { seconds: Number(plainSeconds.toFixed(1)), dumpMb: Math.round(plainBytes / 2 ** 20) },
            backupSh: { seconds: Number(scriptSeconds.toFixed(1)), dumpMb: Math.round(scriptBytes / 2 ** 20) },
            ratio: Number((scriptSeconds / plainSeconds).toFixed(2)),
            note: "sandbox VM (docker container) on a shared 2-core host; backup.sh adds verification (pg_restore --list and a full read of the dump)",
        };
        console.log(`plain pg_dump -Fc: ${result.plainPgDump.seconds} s (${result.plainPgDump.dumpMb} MB)`);
        console.log(`backup.sh --type manual: ${result.backupSh.seconds} s (${result.backupSh.dumpMb} MB)`);
        console.log(`ratio backup.sh / plain: ${result.ratio}`);
        const file = path.join(ROOT, "bench", "results", "backup.json");
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, JSON.stringify(result, null, 2) + "\n");
        console.log(`written ${file}`);
    } finally {
        if (t) await removeStack(t);
        if (!process.env.ONEVM_KEEP_SANDBOX) sandboxDown(NAME);
    }
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
