/**
 * The nginx bot (examples/nginx-bot: a bot with its own nginx in front, PostgreSQL, Redis,
 * Alembic) with the real engine: the standard lifecycle, the file the Compose file binds
 * (nginx's config) shipped in the release, per-service health, and the operator command
 * (`npm run onevm`) as an operator uses it: status, logs, exec, history, releases, a lock
 * that refuses a deploy, a backup and a restore.
 */
import { spawnSync } from "child_process";
import { describeExampleLifecycle, exampleRun, insertRow } from "./exampleLifecycle";
import { ROOT, ssh } from "./harness";

jest.setTimeout(1_800_000);

const spec = {
    example: "nginx-bot",
    secrets: { BOT_TOKEN: "canary-nginx-bot-2f4c" },
    releases: { first: "v1", second: "v2", broken: "broken" },
    database: true,
    // The team's nginx is the web entry and stays; the bot behind it is recreated at a
    // switch, so requests that reach the bot wait out its restart (nginx answers 502).
    probe: false as const,
};
const run = exampleRun(spec);

/** npm run onevm -- ARGS against this file's stack and backend. */
function onevm(...args: string[]): { code: number; out: string; err: string } {
    const r = spawnSync("bash", ["scripts/onevm.sh", args[0], "--stack", run.t.stack.name, ...args.slice(1)], {
        cwd: ROOT,
        encoding: "utf8",
        env: { ...process.env, PULUMI_BACKEND_URL: run.t.backendUrl, PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase" },
        timeout: 300_000,
    });
    return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describeExampleLifecycle(spec, run, {
    afterDeploy() {
        test("the nginx config the Compose file binds by relative path travels in the release", () => {
            expect(ssh(run.vm, "cat /opt/nginx-bot/current/nginx/default.conf").out).toContain("location = /nginx-health");
            expect(ssh(run.vm, "curl -fsS -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/nginx-health").out).toBe("200");
        });

        test("per-service health: health-check.sh SERVICE and --json, one entry per service", () => {
            const gate = JSON.parse(ssh(run.vm, "/opt/nginx-bot/bin/health-check.sh --retries 1 --json").out);
            expect(gate.overall_status).toBe("healthy");
            expect(Object.keys(gate.services).sort()).toEqual(["bot", "migrate", "nginx", "onevm-proxy", "postgres", "redis"]);
            expect(gate.services.nginx).toMatchObject({ status: "healthy", role: "web" });
            const redis = JSON.parse(ssh(run.vm, "/opt/nginx-bot/bin/health-check.sh redis --retries 1 --json").out);
            expect(Object.keys(redis.services)).toEqual(["redis"]);
        });

        test("npm run onevm -- status: the release, every service healthy, the last backup, disk and locks", () => {
            const r = onevm("status", "--json");
            expect(r.code).toBe(0);
            const status = JSON.parse(r.out);
            expect(status).toMatchObject({ app: "nginx-bot", current: "v1", overall_status: "healthy", locks: { deploy: null, operator: null } });
            expect(status.services.bot.status).toBe("healthy");
            expect(status.disk.free_mb).toBeGreaterThan(0);
            expect(onevm("status").out).toMatch(/^app nginx-bot: healthy$/m);
        });

        test("npm run onevm -- logs, exec, ssh", () => {
            expect(onevm("logs", "bot", "--tail", "20").code).toBe(0);
            expect(onevm("exec", "postgres", "--", "pg_isready", "-q").code).toBe(0);
            expect(onevm("ssh", "--", "readlink", "/opt/nginx-bot/current").out.trim()).toBe("releases/v1");
        });
    },

    afterSwitch() {
        test("npm run onevm -- lock: a deploy is refused naming who and why, nothing changes; unlock lets it run", async () => {
            expect(onevm("lock", "--message", "restore rehearsal").code).toBe(0);
            expect(JSON.parse(onevm("status", "--json").out).locks.operator).toMatchObject({ message: "restore rehearsal" });
            const message = await run.expectUpToFail("v1");
            expect(message).toMatch(/deploys are locked by \S+ since \S+: restore rehearsal; nothing changed/);
            expect(run.current()).toBe("/opt/nginx-bot/releases/v2");
            expect(run.history().pop()).toMatchObject({ release: "v1", result: "locked", exit_code: 7 });
            expect(onevm("unlock").code).toBe(0);
            // Back to the second release's config for the next standard test.
            await run.t.stack.setConfig("onevm:releaseId", { value: "v2" });
            await run.t.stack.setConfig("onevm:images", { value: JSON.stringify(run.images.v2) });
        });

        test("npm run onevm -- history and releases, newest first", () => {
            const history = JSON.parse(onevm("history", "--json").out);
            expect(history.slice(0, 2).map((h: any) => [h.release, h.result])).toEqual([["v1", "locked"], ["v2", "success"]]);
            const releases = JSON.parse(onevm("releases", "--json").out);
            expect(releases.map((r: any) => [r.id, r.current, r.previous])).toEqual([["v2", true, false], ["v1", false, true]]);
        });
    },

    afterRollback() {
        test("npm run onevm -- backup, then restore --list, --status and --backup ID: every row as it was", () => {
            const before = run.sql(run.hooks.rowsSql);
            expect(onevm("backup").code).toBe(0);
            const list = onevm("restore", "--list").out.trim().split("\n");
            expect(list[0]).toBe("CREATED\tTYPE\tSIZE_MB\tVERIFIED\tBACKUP_ID");
            const newest = list[1].split("\t");
            expect(newest[1]).toBe("manual");
            expect(newest[3]).toBe("true");
            expect(onevm("restore", "--status").out).toMatch(/^last verified backup: \S+ {2}age: 0h0\dm {2}file: /);
            run.sql(`${insertRow(run)}; ${insertRow(run)}`);
            expect(run.sql(run.hooks.rowsSql)).not.toBe(before);
            const r = onevm("restore", "--backup", newest[4]);
            expect(r.code).toBe(0);
            expect(run.sql(run.hooks.rowsSql)).toBe(before);
        });
    },
});
