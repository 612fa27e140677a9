/**
 * Issue 5, restore half, rehearsed for real on one fresh sandbox: a backup is restored with
 * the operator command the README documents (`npm run restore`), corrupt and truncated
 * backups are refused, the cron entry really runs, and the status command reports the
 * last verified backup's time and age.
 */
import { spawnSync } from "child_process";
import { buildImages, newStack, removeStack, ROOT, Sandbox, sandboxDown, sandboxUp, ssh, stackConfig, TestStack } from "./harness";

jest.setTimeout(1_800_000);

const NAME = "bk-rehearsal";
const BACKUPS = "/opt/bot/backups";
let vm: Sandbox;
let t: TestStack;

/** psql inside the postgres container as the app's role, the query on stdin; `db` defaults to the app's database. */
const sql = (query: string, db = '"$POSTGRES_DB"') =>
    ssh(vm, `docker exec -i bot-postgres-1 sh -c 'psql -X -tA -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d ${db} -f -'`, { input: query }).out;
/** Every row of every table the app owns, in a stable order: what "exactly as before" means. */
const tableDump = (db?: string) =>
    ["bookings", "alembic_version"].map((table) => `-- ${table}\n${sql(`SELECT * FROM ${table} ORDER BY 1`, db)}`).join("");
const lastSuccess = () => ssh(vm, `cat ${BACKUPS}/LAST_SUCCESS`).out.trim();
const index = (): Array<Record<string, unknown>> => JSON.parse(ssh(vm, `cat ${BACKUPS}/backup_index.json`).out).backups;
const entry = (id: string) => index().find((b) => b.backup_id === id);
const apiStartedAt = () =>
    ssh(vm, "docker inspect -f '{{.State.StartedAt}}' $(docker ps -q --filter label=com.docker.compose.project=bot --filter label=com.docker.compose.service=bot-api)").out.trim();

/** The operator command exactly as the README documents it, against this test's stack backend. */
function npmRestore(...args: string[]): { code: number; out: string } {
    const r = spawnSync("npm", ["run", "--silent", "restore", "--", "--stack", NAME, ...args], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 900_000,
        env: { ...process.env, PULUMI_BACKEND_URL: t.backendUrl, PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase" },
    });
    return { code: r.status ?? -1, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}
/** Fails with everything the command printed, not just its exit code. */
function expectExit(r: { code: number; out: string }, code: number) {
    if (r.code !== code) throw new Error(`npm run restore exited ${r.code}, expected ${code}:\n${r.out}`);
}

beforeAll(async () => {
    const refs = buildImages(["v1"]);
    sandboxDown(NAME);
    vm = sandboxUp(NAME);
    t = await newStack(NAME, stackConfig(vm, {
        "onevm:releaseId": { value: "v1" },
        "onevm:images": { value: JSON.stringify(refs.v1) },
        "onevm:telegramBotToken": { value: "bk-token", secret: true },
        "onevm:backupKeep": { value: "50" },
        "onevm:healthRetries": { value: "15" },
    }));
    await t.stack.up({ onOutput: (o) => t.output.push(o) });
});

afterAll(async () => {
    if (t) await removeStack(t);
    if (!process.env.ONEVM_KEEP_SANDBOX) sandboxDown(NAME);
});

let backupId = "";

test("restore brings the rows back exactly; the safety backup holds the state it replaced", () => {
    for (const client of ["alice", "bob", "carol", "dave"]) {
        ssh(vm, `curl -fsS -o /dev/null -H 'content-type: application/json' -d '{"client_id":"${client}","slot":"2026-12-01T10:00:00"}' http://127.0.0.1:8080/bookings`);
    }
    const atBackup = tableDump();
    expect(atBackup.match(/\|(alice|bob|carol|dave)\|/g)).toHaveLength(4);

    const file = ssh(vm, `/opt/bot/bin/backup.sh --type manual --min-free-mb 100`).out.trim();
    expect(file).toMatch(/^\/opt\/bot\/backups\/bot_\d{8}_\d{6}_manual\.dump$/);
    backupId = file.replace(/^.*\//, "").replace(/\.dump$/, "");
    expect(entry(backupId)).toMatchObject({ verified: true, backup_type: "manual", file_path: file });

    sql("UPDATE bookings SET status = 'cancelled', cancelled_at = now(), cancelled_by = 'rehearsal' WHERE client_id = 'alice'");
    sql("DELETE FROM bookings WHERE client_id = 'bob'");
    sql("INSERT INTO bookings (client_id, slot) VALUES ('eve', '2026-12-02T09:00:00Z')");
    const changed = tableDump();
    expect(changed).not.toBe(atBackup);

    const r = npmRestore("--backup", backupId);
    expectExit(r, 0);
    expect(tableDump()).toBe(atBackup);

    // The health gate ran after the restart, and the app answers.
    expect(r.out).toMatch(/health/i);
    expect(r.out).toMatch(/restore of \S+ done and healthy/);
    expect(ssh(vm, "curl -fsS http://127.0.0.1:8080/health").out).toContain('"ok"');

    // The safety backup, restored into a scratch database, shows the changed state.
    const safety = /safety backup: (\/opt\/bot\/backups\/bot_\d{8}_\d{6}_manual\.dump)/.exec(r.out)?.[1];
    expect(safety).toBeDefined();
    expect(safety).not.toBe(file);
    ssh(vm, `docker exec -i bot-postgres-1 sh -c 'createdb -U "$POSTGRES_USER" scratch && pg_restore -U "$POSTGRES_USER" -d scratch --no-owner --exit-on-error' < ${safety}`);
    expect(tableDump("scratch")).toBe(changed);
    sql("DROP DATABASE scratch", "postgres");

    // Index and LAST_SUCCESS: both backups verified, LAST_SUCCESS names the newest (the safety one).
    expect(entry(backupId)).toMatchObject({ verified: true });
    const safetyId = safety!.replace(/^.*\//, "").replace(/\.dump$/, "");
    expect(entry(safetyId)).toMatchObject({ verified: true, backup_type: "manual", file_path: safety });
    expect(lastSuccess()).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ ${safety}$`));
    expect(ssh(vm, `cat /opt/bot/logs/restore.log`).out).toMatch(/row counts: .*bookings=4/);
});

test("a truncated and a garbage backup: --verify fails, LAST_SUCCESS kept, index verified:false, restore refuses and stops nothing", () => {
    const truncated = "bot_20200101_000000_manual";
    const garbage = "bot_20200101_000001_manual";
    ssh(vm, `f=${BACKUPS}/${backupId}.dump; head -c $(( $(stat -c %s "$f") * 2 / 3 )) "$f" > ${BACKUPS}/${truncated}.dump`);
    ssh(vm, `{ printf PGDMP; head -c 20000 /dev/urandom; } > ${BACKUPS}/${garbage}.dump`);
    const rows = tableDump();
    const started = apiStartedAt();
    const success = lastSuccess();
    const restoreLogLines = () => ssh(vm, "cat /opt/bot/logs/restore.log 2>/dev/null | wc -l").out.trim();

    // Never verified yet: restore's own check catches the truncated file and stops nothing.
    const logBefore = restoreLogLines();
    const refusedFresh = npmRestore("--backup", truncated);
    expectExit(refusedFresh, 2);
    expect(refusedFresh.out).toMatch(/truncated or corrupt|verification failed/i);
    expect(refusedFresh.out).not.toMatch(/safety backup|stopping/);
    expect(ssh(vm, `sed -n '${Number(logBefore) + 1},$p' /opt/bot/logs/restore.log 2>/dev/null || true`).out).not.toMatch(/stopping|safety backup:/);

    for (const id of [truncated, garbage]) {
        const v = ssh(vm, `/opt/bot/bin/backup.sh --verify ${id}`, { allowFailure: true });
        expect(v.code).toBe(2);
        expect(v.err).toMatch(/Verification failed/);
        expect(lastSuccess()).toBe(success);
        expect(entry(id)).toMatchObject({ verified: false, file_path: `${BACKUPS}/${id}.dump.unverified` });

        const refused = npmRestore("--backup", id);
        expectExit(refused, 2);
        expect(refused.out).toMatch(new RegExp(`${id}.*(unverified|verified:false)`));
    }
    expect(tableDump()).toBe(rows);
    expect(apiStartedAt()).toBe(started);
    expect(lastSuccess()).toBe(success);
});

test("npm run restore -- --status prints the last verified backup's time and age; --list shows the index", () => {
    const [time, file] = lastSuccess().split(" ");
    const r = npmRestore("--status");
    expectExit(r, 0);
    const m = /last verified backup: (\S+)\s+age: (\d+)h(\d\d)m\s+file: (\S+)/.exec(r.out);
    expect(m).not.toBeNull();
    expect(m![1]).toBe(time);
    expect(m![4]).toBe(file);
    const ageMinutes = Number(m![2]) * 60 + Number(m![3]);
    const expected = (Date.now() - Date.parse(time)) / 60_000;
    expect(Math.abs(ageMinutes - expected)).toBeLessThanOrEqual(1.5);

    const list = npmRestore("--list");
    expectExit(list, 0);
    expect(list.out).toMatch(new RegExp(`manual\\s+\\S+\\s+true\\s+${backupId}`));
    expect(list.out).toMatch(/\tfalse\tbot_20200101_000000_manual$/m);
});

test("the cron entry from onevm:backupSchedule really runs a verified scheduled backup", async () => {
    await t.stack.setConfig("onevm:backupSchedule", { value: "* * * * *" });
    await t.stack.up({ onOutput: (o) => t.output.push(o) });
    expect(ssh(vm, "cat /etc/cron.d/onevm-bot-backup").out).toMatch(/^\* \* \* \* \* deploy \/opt\/bot\/bin\/backup\.sh .*--type scheduled/m);
    const deadline = Date.now() + 150_000;
    let scheduled: Record<string, unknown> | undefined;
    while (!scheduled && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10_000));
        scheduled = index().find((b) => b.backup_type === "scheduled" && b.verified === true);
    }
    expect(scheduled).toBeDefined();
    expect(ssh(vm, `test -s ${scheduled!.file_path} && echo ok`).out.trim()).toBe("ok");
    expect(ssh(vm, "cat /opt/bot/logs/backup.log").out).toMatch(/Starting database backup \(type: scheduled\)/);
});
