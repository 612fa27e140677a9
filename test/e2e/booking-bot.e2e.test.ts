/**
 * The booking bot (examples/booking-bot: FastAPI bot-api, one-shot Alembic migrate,
 * PostgreSQL, Redis) from a VM with no Docker at all to its whole life with the real
 * engine: the post-deploy checklist its team ran by hand, a dry run, the standard
 * lifecycle (examples), a failing migration, a reused release ID, secret and database
 * password rotation, a reboot, a no-op up, secret canaries, and destroy keeping the data.
 */
import { spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { describeExampleLifecycle, exampleRun } from "./exampleLifecycle";
import { acceptedLogins, ROOT, sandboxReboot, ssh } from "./harness";

jest.setTimeout(1_800_000);

const TOKEN = "canary-booking-7c1d 'single' \"double\" $VAR #hash =eq \\back";
const spec = {
    example: "booking-bot",
    secrets: { TELEGRAM_BOT_TOKEN: TOKEN },
    releases: { first: "v1", second: "v2", broken: "broken", more: ["v3", "badmigrate"] },
    // bootstrap-host.sh installs Docker here, as on a new droplet.
    withDocker: false,
    database: true,
};
const run = exampleRun(spec);
const app = "/opt/booking-bot";
const HEALTH = '{"status":"ok","service":"bot-api"}';
const FAMILIES = ["bot_api_service_health", "bot_api_requests_total", "bot_api_request_latency_seconds", "bot_api_booking_outcomes_total", "bot_api_abuse_outcomes_total"];

function stateFiles(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? stateFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

const containers = () =>
    Object.fromEntries(
        ssh(run.vm, "docker ps --filter label=com.docker.compose.project=booking-bot --format '{{.Label \"com.docker.compose.service\"}} {{.ID}}'")
            .out.trim()
            .split("\n")
            .map((l) => l.split(" ")),
    );

test("the VM starts without Docker, as a fresh droplet does", () => {
    expect(ssh(run.vm, "command -v docker", { allowFailure: true }).code).not.toBe(0);
});

describeExampleLifecycle(spec, run, {
    afterDeploy() {
        describe("the team's post-deploy checklist", () => {
            test("compose states typed in current/: migrate Exited (0); bot-api, postgres, redis healthy", () => {
                const ps = ssh(run.vm, `cd ${app}/current && docker compose ps -a --format json`).out;
                const services = Object.fromEntries(
                    ps.trim().split("\n").flatMap((l) => (l.trim().startsWith("[") ? JSON.parse(l) : [JSON.parse(l)])).map((s: any) => [s.Service, s]),
                );
                expect(services.migrate).toMatchObject({ State: "exited", ExitCode: 0 });
                for (const s of ["bot-api", "postgres", "redis"]) expect(services[s]).toMatchObject({ State: "running", Health: "healthy" });
            });

            test("/health body and the five metric families", () => {
                expect(ssh(run.vm, "curl -fsS http://127.0.0.1:8080/health").out.trim()).toBe(HEALTH);
                const metrics = ssh(run.vm, "curl -fsS http://127.0.0.1:8080/metrics").out;
                for (const family of FAMILIES) expect(metrics).toMatch(new RegExp(`^# TYPE ${family} `, "m"));
            });

            test("structured startup log line", () => {
                expect(ssh(run.vm, `cd ${app}/current && docker compose logs bot-api --tail=50`).out).toContain('"event": "startup"');
            });

            test("smoke path: a booking, then the one-active-booking rejection", () => {
                const post = () =>
                    ssh(run.vm, `curl -sS -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d '{"client_id":"e2e-client","slot":"2026-12-01T10:00:00"}' http://127.0.0.1:8080/bookings`).out;
                expect(post()).toBe("201");
                expect(post()).toBe("409");
            });

            test("layout: current -> releases/v1, .env 600 owned by deploy, release.json, unit and cron", () => {
                expect(ssh(run.vm, `stat -c '%a %U' ${app}/shared/.env`).out.trim()).toBe("600 deploy");
                expect(JSON.parse(ssh(run.vm, `cat ${app}/current/release.json`).out)).toMatchObject({ release_id: "v1", app: "booking-bot", web: { service: "bot-api" } });
                expect(ssh(run.vm, "systemctl is-enabled booking-bot.service; systemctl is-active booking-bot.service").out.split("\n").slice(0, 2)).toEqual(["enabled", "active"]);
                expect(ssh(run.vm, "cat /etc/cron.d/onevm-booking-bot-backup").out).toMatch(/^17 3 \* \* \* deploy \/opt\/booking-bot\/bin\/backup.sh /m);
            });

            test("the secret reaches the container exactly, and no file of the release holds it", () => {
                const sha = createHash("sha256").update(TOKEN).digest("hex");
                expect(ssh(run.vm, "curl -fsS 'http://127.0.0.1:8080/env-check?name=TELEGRAM_BOT_TOKEN'").out).toContain(sha);
                expect(ssh(run.vm, `grep -rlF canary-booking ${app}/releases ${app}/tools ${app}/logs || true`).out.trim()).toBe("");
            });
        });

        test("preview of v2 is a dry run: the switch, the compose lines, and no SSH session", async () => {
            await run.t.stack.setConfig("onevm:releaseId", { value: "v2" });
            await run.t.stack.setConfig("onevm:images", { value: JSON.stringify(run.images.v2) });
            const before = acceptedLogins(run.vm);
            const out: string[] = [];
            await run.t.stack.preview({ diff: true, onOutput: (o) => out.push(o) });
            // The second reading counts the first one's login: nothing else logged in.
            expect(acceptedLogins(run.vm) - before).toBe(1);
            const text = out.join("");
            expect(text).toMatch(/--release v1 .*=> .*--release v2|- .*--release v1[\s\S]*\+ .*--release v2/);
            expect(text).toMatch(/image\s*: "booking-bot\/bot-api:v1" => "booking-bot\/bot-api:v2"/);
            expect(run.current()).toBe(`${app}/releases/v1`);
        });
    },

    afterBroken() {
        test("a failing migration never switches; the output names the pre-deploy backup", async () => {
            const message = await run.expectUpToFail("badmigrate");
            expect(message).toMatch(/\/opt\/booking-bot\/backups\/booking-bot_\d{8}_\d{6}_pre_deployment\.dump/);
            expect(run.current()).toBe(`${app}/releases/v2`);
            expect(run.runningRelease()).toBe("v2");
            expect(run.history().pop()).toMatchObject({ release: "badmigrate", result: "migrate_failed" });
        });

        test("the current release ID with other images is refused before anything changes", async () => {
            const before = acceptedLogins(run.vm);
            await run.t.stack.setConfig("onevm:releaseId", { value: "v2" });
            await run.t.stack.setConfig("onevm:images", { value: JSON.stringify(run.images.v3) });
            const message = await run.t.stack.up({ onOutput: (o) => run.t.output.push(o) }).then(
                () => "succeeded",
                (e: Error) => e.message,
            );
            expect(message).toMatch(/release v2 was deployed before with different content .*release IDs are immutable/);
            expect(acceptedLogins(run.vm) - before).toBe(1);
            expect(run.current()).toBe(`${app}/releases/v2`);
        });
    },

    afterRollback() {
        test("rotating a secret: .env replaced (600), only its reader recreated, the value arrives exactly", async () => {
            const before = containers();
            const rotated = "rotated canary-booking-7c1d 'q' \"d\" $V #h =e \\b";
            await run.t.stack.setConfig("app:TELEGRAM_BOT_TOKEN", { value: rotated, secret: true });
            await run.t.stack.up({ onOutput: (o) => run.t.output.push(o) });
            const after = containers();
            expect(Object.keys(after).sort()).toEqual(["bot-api", "onevm-proxy", "postgres", "redis"]);
            expect(after["bot-api"]).not.toBe(before["bot-api"]);
            expect([after.postgres, after.redis, after["onevm-proxy"]]).toEqual([before.postgres, before.redis, before["onevm-proxy"]]);
            expect(ssh(run.vm, `stat -c '%a %U' ${app}/shared/.env`).out.trim()).toBe("600 deploy");
            const sha = createHash("sha256").update(rotated).digest("hex");
            expect(ssh(run.vm, "curl -fsS 'http://127.0.0.1:8080/env-check?name=TELEGRAM_BOT_TOKEN'").out).toContain(sha);
        });

        test("rotating the database password changes it inside PostgreSQL; the app keeps working", async () => {
            const verifier = () => run.sql("select rolpassword from pg_authid where rolname = current_user").trim();
            const old = verifier();
            expect(old).toMatch(/^SCRAM-SHA-256\$4096:/);
            await run.t.stack.setConfig("onevm:dbPasswordVersion", { value: "2" });
            await run.t.stack.up({ onOutput: (o) => run.t.output.push(o) });
            expect(verifier()).toMatch(/^SCRAM-SHA-256\$4096:/);
            expect(verifier()).not.toBe(old);
            expect(ssh(run.vm, "curl -fsS http://127.0.0.1:8080/health").out.trim()).toBe(HEALTH);
        });

        test("after a reboot the stack is healthy again with no one touching it", () => {
            run.vm = sandboxReboot("ex-booking-bot");
            let body = "";
            for (let i = 0; i < 90 && body !== HEALTH; i++) {
                body = ssh(run.vm, "curl -fsS http://127.0.0.1:8080/health || sleep 2", { allowFailure: true }).out.trim();
            }
            expect(body).toBe(HEALTH);
        });

        test("a pulumi up with nothing changed runs no remote command and opens no SSH session", async () => {
            const before = acceptedLogins(run.vm);
            const preview = await run.t.stack.preview({ onOutput: (o) => run.t.output.push(o) });
            const up = await run.t.stack.up({ onOutput: (o) => run.t.output.push(o) });
            // The only non-"same" step is the read of this stack's own previous outputs.
            const changes = (summary: Record<string, number>) => Object.keys(summary).filter((k) => k !== "same" && k !== "read");
            expect(changes(preview.changeSummary)).toEqual([]);
            expect(changes(up.summary.resourceChanges ?? {})).toEqual([]);
            // The second reading counts the first one's login: nothing else logged in.
            expect(acceptedLogins(run.vm) - before).toBe(1);
        });

        test("canary: the secret is in no engine output, state file, process list, release file or log", () => {
            const canary = "canary-booking-7c1d";
            const state = stateFiles(run.t.backendDir).map((f) => fs.readFileSync(f, "utf8")).join("\n");
            expect(state).toContain('"ciphertext"');
            expect(run.t.output.join("")).not.toContain(canary);
            expect(state).not.toContain(canary);
            expect(state).not.toContain("BEGIN OPENSSH PRIVATE KEY");
            expect(ssh(run.vm, "ps auxww").out).not.toContain(canary);
            // The pattern goes on stdin: on a sudo command line it would itself be logged.
            const files = ssh(run.vm, `sudo -n grep -rlF -f - ${app}/releases ${app}/tools ${app}/logs ${app}/state /var/log || true`, { input: `${canary}\n` });
            expect(files.out.trim()).toBe("");
            expect(spawnSync("git", ["grep", "-l", canary, "--", ":!test/"], { cwd: ROOT, encoding: "utf8" }).stdout.trim()).toBe("");
        });
    },
});

test("pulumi destroy removes what onevm installed and keeps the data", async () => {
    const res = await run.t.stack.destroy({ onOutput: (o) => run.t.output.push(o) });
    expect(res.summary.result).toBe("succeeded");
    expect(ssh(run.vm, "systemctl list-unit-files booking-bot.service --no-legend | wc -l").out.trim()).toBe("0");
    expect(ssh(run.vm, `test ! -e /etc/cron.d/onevm-booking-bot-backup && test ! -e ${app}/releases && test ! -e ${app}/current && echo gone`).out.trim()).toBe("gone");
    expect(ssh(run.vm, "docker volume ls --format '{{.Name}}'").out).toContain("booking-bot_pgdata");
    expect(ssh(run.vm, `test -d ${app}/backups && echo kept`).out.trim()).toBe("kept");
});
