/**
 * Seed 000 end to end: a clean VM (no Docker) to a running stack with the real engine,
 * then the post-deploy checklist, reboot persistence, a no-op update, and destroy.
 */
import * as fs from "fs";
import * as path from "path";
import { acceptedLogins, buildImages, newStack, removeStack, Sandbox, sandboxDown, sandboxReboot, sandboxUp, ssh, stackConfig, TestStack } from "./harness";

jest.setTimeout(1_800_000);

const NAME = "e2e-deploy";
const TOKEN = "tg-e2e-token 'q' \"d\" $HOME #not-a-comment";
let vm: Sandbox;
let t: TestStack;
let refs: Record<string, Record<string, string>>;

function stateFiles(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? stateFiles(path.join(dir, e.name)) : [path.join(dir, e.name)],
    );
}

const HEALTH = '{"status":"ok","service":"bot-api"}';
const FAMILIES = [
    "bot_api_service_health",
    "bot_api_requests_total",
    "bot_api_request_latency_seconds",
    "bot_api_booking_outcomes_total",
    "bot_api_abuse_outcomes_total",
];
const compose = "docker compose --project-name bot --project-directory /opt/bot/current -f /opt/bot/current/compose.yaml --env-file /opt/bot/shared/.env";

beforeAll(async () => {
    refs = buildImages(["v1"]);
    sandboxDown(NAME);
    vm = sandboxUp(NAME);
    t = await newStack(NAME, stackConfig(vm, {
        "onevm:releaseId": { value: "v1" },
        "onevm:images": { value: JSON.stringify(refs.v1) },
        "onevm:telegramBotToken": { value: TOKEN, secret: true },
    }));
});

afterAll(async () => {
    if (t) await removeStack(t);
    sandboxDown(NAME);
});

test("the VM starts without Docker, as a fresh droplet does", () => {
    expect(ssh(vm, "command -v docker", { allowFailure: true }).code).not.toBe(0);
});

test("pulumi up takes the clean VM to a running stack", async () => {
    const res = await t.stack.up({ onOutput: (o) => t.output.push(o) });
    expect(res.summary.result).toBe("succeeded");
    expect(res.outputs.releaseId.value).toBe("v1");
});

describe("seed 000 post-deploy checklist", () => {
    test("compose states: migrate Exited (0); bot-api, postgres, redis healthy", () => {
        const ps = ssh(vm, `${compose} ps -a --format json`).out;
        const services = Object.fromEntries(
            ps.trim().split("\n").flatMap((line) => (line.trim().startsWith("[") ? JSON.parse(line) : [JSON.parse(line)])).map((s: any) => [s.Service, s]),
        );
        expect(services.migrate).toMatchObject({ State: "exited", ExitCode: 0 });
        for (const s of ["bot-api", "postgres", "redis"]) {
            expect(services[s]).toMatchObject({ State: "running", Health: "healthy" });
        }
    });

    test("/health body and the five metric families", () => {
        expect(ssh(vm, "curl -fsS http://127.0.0.1:8080/health").out.trim()).toBe(HEALTH);
        const metrics = ssh(vm, "curl -fsS http://127.0.0.1:8080/metrics").out;
        for (const family of FAMILIES) {
            expect(metrics).toMatch(new RegExp(`^# TYPE ${family} `, "m"));
        }
    });

    test("structured startup log line", () => {
        expect(ssh(vm, `${compose} logs bot-api --tail=50`).out).toContain('"event": "startup"');
    });

    test("smoke path: a booking, then the one-active-booking rejection", () => {
        const post = (client: string) =>
            ssh(vm, `curl -sS -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d '{"client_id":"${client}","slot":"2026-12-01T10:00:00"}' http://127.0.0.1:8080/bookings`).out;
        expect(post("e2e-client")).toBe("201");
        expect(post("e2e-client")).toBe("409");
    });

    test("layout: current -> releases/v1, .env mode 600 owned by deploy", () => {
        expect(ssh(vm, "readlink -f /opt/bot/current").out.trim()).toBe("/opt/bot/releases/v1");
        expect(ssh(vm, "stat -c '%a %U' /opt/bot/shared/.env").out.trim()).toBe("600 deploy");
        expect(ssh(vm, "cat /opt/bot/current/release.json").out).toContain('"release_id": "v1"');
    });

    test("the secret reaches the container exactly, and no file in the release holds it", () => {
        const sha = require("crypto").createHash("sha256").update(TOKEN).digest("hex");
        expect(ssh(vm, "curl -fsS 'http://127.0.0.1:8080/env-check?name=TELEGRAM_BOT_TOKEN'").out).toContain(sha);
        expect(ssh(vm, "grep -rlF 'tg-e2e-token' /opt/bot/releases /opt/bot/tools /opt/bot/logs || true").out.trim()).toBe("");
    });

    test("systemd unit enabled and active; backup cron entry present", () => {
        expect(ssh(vm, "systemctl is-enabled bot.service; systemctl is-active bot.service").out.split("\n").slice(0, 2)).toEqual(["enabled", "active"]);
        expect(ssh(vm, "cat /etc/cron.d/onevm-bot-backup").out).toMatch(/^17 3 \* \* \* deploy \/opt\/bot\/bin\/backup.sh /m);
    });
});

test("after a reboot the stack is healthy again with no one touching it", () => {
    vm = sandboxReboot(NAME);
    let body = "";
    for (let i = 0; i < 90 && body !== HEALTH; i++) {
        body = ssh(vm, "curl -fsS http://127.0.0.1:8080/health || sleep 2", { allowFailure: true }).out.trim();
    }
    expect(body).toBe(HEALTH);
});

test("a second pulumi up with no change runs no remote command; preview reports no changes", async () => {
    const before = acceptedLogins(vm);
    const preview = await t.stack.preview({ onOutput: (o) => t.output.push(o) });
    const up = await t.stack.up({ onOutput: (o) => t.output.push(o) });
    const after = acceptedLogins(vm);
    // The only non-"same" step is the local read of this stack's own previous outputs.
    const changes = (summary: Record<string, number>) => Object.keys(summary).filter((k) => k !== "same" && k !== "read");
    expect(changes(preview.changeSummary)).toEqual([]);
    expect(changes(up.summary.resourceChanges ?? {})).toEqual([]);
    expect(after - before).toBe(1); // only the second reading's own login
});

test("the engine's output and the state files never hold the secrets", async () => {
    // Read the backend's files themselves: the Automation API's exportStack decrypts.
    const state = stateFiles(t.backendDir).map((f) => fs.readFileSync(f, "utf8")).join("\n");
    expect(state).toContain('"ciphertext"');
    for (const text of [t.output.join(""), state]) {
        expect(text).not.toContain("tg-e2e-token");
        expect(text).not.toContain("BEGIN OPENSSH PRIVATE KEY");
    }
});

test("pulumi destroy removes what onevm installed and keeps the data", async () => {
    const res = await t.stack.destroy({ onOutput: (o) => t.output.push(o) });
    expect(res.summary.result).toBe("succeeded");
    expect(ssh(vm, "systemctl list-unit-files bot.service --no-legend | wc -l").out.trim()).toBe("0");
    expect(ssh(vm, "test ! -e /etc/cron.d/onevm-bot-backup && test ! -e /opt/bot/releases && test ! -e /opt/bot/current && echo gone").out.trim()).toBe("gone");
    expect(ssh(vm, "docker volume ls --format '{{.Name}}'").out).toContain("bot_pgdata");
    expect(ssh(vm, "test -d /opt/bot/backups && echo kept").out.trim()).toBe("kept");
    expect(t.output.join("")).toMatch(/kept/i);
});
