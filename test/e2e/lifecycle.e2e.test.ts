/**
 * Issue 4 end to end: releases forward and back, a dry run, the health gate's automatic
 * rollback, a failing migration, immutable release IDs, secret canaries, an interrupted
 * `pulumi up`, and two stacks activating on one VM at once.
 */
import { spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import {
    acceptedLogins,
    buildImages,
    newStack,
    removeStack,
    ROOT,
    Sandbox,
    sandboxDown,
    sandboxUp,
    ssh,
    stackConfig,
    TestStack,
} from "./harness";

jest.setTimeout(2_400_000);

const NAME = "e2e-life";
const TOKEN = "canary-life-7c1d 'single' \"double\" $VAR #hash =eq \\back";
let vm: Sandbox;
let t: TestStack;
let refs: Record<string, Record<string, string>>;

const version = () => ssh(vm, "curl -fsS http://127.0.0.1:8080/version").out;
const bookings = () => Number(ssh(vm, sql("select count(*) from bookings")).out.trim());
const current = () => ssh(vm, "readlink -f /opt/bot/current").out.trim();
const history = () =>
    ssh(vm, "cat /opt/bot/state/history.jsonl").out.trim().split("\n").map((l) => JSON.parse(l));
/** A query run by psql inside the postgres container, as the app's role. */
const sql = (query: string) =>
    `docker exec bot-postgres-1 sh -c 'psql -X -tA -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "${query}"'`;

async function deploy(release: string, images = refs[release]) {
    await t.stack.setConfig("onevm:releaseId", { value: release });
    await t.stack.setConfig("onevm:images", { value: JSON.stringify(images) });
    return t.stack.up({ onOutput: (o) => t.output.push(o) });
}

async function expectUpToFail(release: string, images = refs[release]): Promise<string> {
    let message = "";
    await deploy(release, images).then(
        () => {
            throw new Error(`pulumi up of ${release} unexpectedly succeeded`);
        },
        (e: Error) => {
            message = e.message;
        },
    );
    return message;
}

function stateFiles(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? stateFiles(path.join(dir, e.name)) : [path.join(dir, e.name)],
    );
}

beforeAll(async () => {
    refs = buildImages(["v1", "v2", "v3", "broken", "badmigrate"]);
    sandboxDown(NAME);
    vm = sandboxUp(NAME);
    t = await newStack(NAME, stackConfig(vm, {
        "onevm:releaseId": { value: "v1" },
        "onevm:images": { value: JSON.stringify(refs.v1) },
        "onevm:telegramBotToken": { value: TOKEN, secret: true },
        "onevm:healthRetries": { value: "15" },
    }));
    await t.stack.up({ onOutput: (o) => t.output.push(o) });
    for (const client of ["alice", "bob", "carol"]) {
        ssh(vm, `curl -fsS -o /dev/null -H 'content-type: application/json' -d '{"client_id":"${client}","slot":"2026-12-01T10:00:00"}' http://127.0.0.1:8080/bookings`);
    }
});

afterAll(async () => {
    if (t) await removeStack(t);
    sandboxDown(NAME);
});

test("preview of v2 is a dry run: the switch, the compose lines, and no SSH session", async () => {
    await t.stack.setConfig("onevm:releaseId", { value: "v2" });
    await t.stack.setConfig("onevm:images", { value: JSON.stringify(refs.v2) });
    const before = acceptedLogins(vm);
    const out: string[] = [];
    await t.stack.preview({ diff: true, onOutput: (o) => out.push(o) });
    expect(acceptedLogins(vm) - before).toBe(1);
    const text = out.join("");
    expect(text).toMatch(/--release v1 .*=> .*--release v2|- .*--release v1[\s\S]*\+ .*--release v2/);
    // Pulumi shows the compose file (a trigger of the activation) as a structured YAML diff.
    expect(text).toMatch(/image\s*: "onevm\/bot-api:v1" => "onevm\/bot-api:v2"/);
    expect(current()).toBe("/opt/bot/releases/v1");
});

/**
 * Probes the app's loopback port on the VM ten times a second (curl, new connection each,
 * 2 s timeout) until the returned function stops it; that returns every probe's status.
 */
function startVmProber(): () => string[] {
    const script = [
        "rm -f /tmp/probe.log /tmp/probe.stop",
        "while [ ! -e /tmp/probe.stop ]; do",
        "  curl -s -o /dev/null -w '%{http_code}\\n' --max-time 2 http://127.0.0.1:8080/health >>/tmp/probe.log",
        "  sleep 0.1",
        "done",
    ].join("\n");
    ssh(vm, `cat >/tmp/probe.sh <<'EOF'\n${script}\nEOF\nnohup bash /tmp/probe.sh </dev/null >/dev/null 2>&1 &`);
    return () => {
        ssh(vm, "touch /tmp/probe.stop; sleep 2.5");
        return ssh(vm, "cat /tmp/probe.log").out.trim().split("\n");
    };
}

test("up v2: backup, migrate, switch, gate, record; data kept; the loopback proxy answers every request", async () => {
    const stopProber = startVmProber();
    const res = await deploy("v2");
    const probes = stopProber();
    expect(probes.length).toBeGreaterThan(50);
    expect(probes.filter((p) => p !== "200")).toEqual([]);
    const log = ssh(vm, "cat /opt/bot/logs/activate.log").out;
    const run = log.slice(log.lastIndexOf("Starting activation of v2"));
    const started = run.match(/the new bot-api \(bot-bot-api-\d+, id (\w+)\) answers \/health[\s\S]*the proxy serves from the new bot-api/);
    expect(started).not.toBeNull();
    // The container that proved itself is the one serving (started once, not recreated).
    const serving = ssh(vm, "docker ps -q --filter label=com.docker.compose.project=bot --filter label=com.docker.compose.service=bot-api").out.trim();
    expect(serving).toBe(started![1]);
    expect(res.outputs.releaseId.value).toBe("v2");
    expect(res.outputs.previousReleaseId.value).toBe("v1");
    expect(version()).toContain('"v2"');
    expect(current()).toBe("/opt/bot/releases/v2");
    expect(bookings()).toBe(3);
    const last = history().pop();
    expect(last).toMatchObject({ release: "v2", previous: "v1", result: "success", operator: "e2e" });
    expect(last.backup).toMatch(/^\/opt\/bot\/backups\/bot_\d{8}_\d{6}_pre_deployment\.dump$/);
    expect(ssh(vm, `test -s ${last.backup} && echo ok`).out.trim()).toBe("ok");
});

test("a release that fails its health gate is switched back automatically, with an incident note", async () => {
    const message = await expectUpToFail("broken");
    expect(message).toMatch(/broken/);
    expect(message).toMatch(/v2/);
    expect(current()).toBe("/opt/bot/releases/v2");
    expect(version()).toContain('"v2"');
    expect(bookings()).toBe(3);
    const incident = ssh(vm, "cat $(ls -t /opt/bot/state/incidents/*.md | head -1)").out;
    expect(incident).toMatch(/broken/);
    expect(incident).toMatch(/v2/);
    expect(history().pop()).toMatchObject({ release: "broken", result: "rolled_back" });
});

test("the next up with a good release needs no manual repair", async () => {
    const res = await deploy("v3");
    expect(res.summary.result).toBe("succeeded");
    expect(version()).toContain('"v3"');
    expect(bookings()).toBe(3);
});

test("a failing migration never switches; the output names the pre-deploy backup", async () => {
    const message = await expectUpToFail("badmigrate");
    expect(message).toMatch(/\/opt\/bot\/backups\/bot_\d{8}_\d{6}_pre_deployment\.dump/);
    expect(current()).toBe("/opt/bot/releases/v3");
    expect(version()).toContain('"v3"');
    expect(history().pop()).toMatchObject({ release: "badmigrate", result: "migrate_failed" });
});

test("rollback by config: v1 again, exactly, and the preview says the database is not restored", async () => {
    await t.stack.setConfig("onevm:releaseId", { value: "v1" });
    await t.stack.setConfig("onevm:images", { value: JSON.stringify(refs.v1) });
    const out: string[] = [];
    await t.stack.preview({ onOutput: (o) => out.push(o) });
    expect(out.join("")).toMatch(/Rolling back from v3 to v1: .*The database is NOT restored/);
    const res = await t.stack.up({ onOutput: (o) => t.output.push(o) });
    expect(res.outputs.releaseId.value).toBe("v1");
    expect(version()).toContain('"v1"');
    expect(current()).toBe("/opt/bot/releases/v1");
    expect(ssh(vm, "grep -c 'image: onevm/bot-api:v1' /opt/bot/current/compose.yaml").out.trim()).toBe("1");
    expect(bookings()).toBe(3);
});

test("a release ID reused with other content is refused before anything changes", async () => {
    const before = acceptedLogins(vm);
    const message = await expectUpToFail("v1", refs.v2);
    expect(message).toMatch(/release v1 was deployed before with different content .*release IDs are immutable/);
    expect(acceptedLogins(vm) - before).toBe(1);
    expect(current()).toBe("/opt/bot/releases/v1");
    await t.stack.setConfig("onevm:images", { value: JSON.stringify(refs.v1) });
});

test("rotating a secret: .env replaced (0600), only its readers recreated, the value arrives exactly", async () => {
    // Keyed by compose service: a recreated bot-api is a new container under a new number.
    const containers = () =>
        Object.fromEntries(
            ssh(vm, "docker ps --filter label=com.docker.compose.project=bot --format '{{.Label \"com.docker.compose.service\"}} {{.ID}}'")
                .out.trim()
                .split("\n")
                .map((l) => l.split(" ")),
        );
    const before = containers();
    const rotated = "rotated canary-life-7c1d 'q' \"d\" $V #h =e \\b";
    await t.stack.setConfig("onevm:telegramBotToken", { value: rotated, secret: true });
    await t.stack.up({ onOutput: (o) => t.output.push(o) });
    const after = containers();
    expect(Object.keys(after).sort()).toEqual(["bot-api", "postgres", "proxy", "redis"]);
    expect(after["bot-api"]).not.toBe(before["bot-api"]);
    expect(after.postgres).toBe(before.postgres);
    expect(after.redis).toBe(before.redis);
    expect(after.proxy).toBe(before.proxy);
    expect(ssh(vm, "stat -c '%a %U' /opt/bot/shared/.env").out.trim()).toBe("600 deploy");
    const sha = createHash("sha256").update(rotated).digest("hex");
    expect(ssh(vm, "curl -fsS 'http://127.0.0.1:8080/env-check?name=TELEGRAM_BOT_TOKEN'").out).toContain(sha);
});

test("rotating the database password changes it inside PostgreSQL; the app keeps working", async () => {
    const verifier = () => ssh(vm, sql("select rolpassword from pg_authid where rolname = current_user")).out.trim();
    const old = verifier();
    expect(old).toMatch(/^SCRAM-SHA-256\$4096:/);
    await t.stack.setConfig("onevm:dbPasswordVersion", { value: "2" });
    await t.stack.up({ onOutput: (o) => t.output.push(o) });
    expect(verifier()).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(verifier()).not.toBe(old);
    expect(ssh(vm, "curl -fsS http://127.0.0.1:8080/health").out.trim()).toBe('{"status":"ok","service":"bot-api"}');
    expect(bookings()).toBe(3);
});

test("canary, after deploys, a failed release and rotations: the secret is in no output, state file, process list, release file or log", async () => {
    const canary = "canary-life-7c1d";
    const state = stateFiles(t.backendDir).map((f) => fs.readFileSync(f, "utf8")).join("\n");
    expect(t.output.join("")).not.toContain(canary);
    expect(state).not.toContain(canary);
    expect(ssh(vm, "ps auxww").out).not.toContain(canary);
    // The pattern goes on stdin: on a sudo command line it would itself be logged.
    const files = ssh(vm, "sudo -n grep -rlF -f - /opt/bot/releases /opt/bot/tools /opt/bot/logs /opt/bot/state /var/log || true", { input: `${canary}\n` });
    expect(files.out.trim()).toBe("");
    expect(spawnSync("git", ["grep", "-l", canary, "--", ":!test/"], { cwd: ROOT, encoding: "utf8" }).stdout.trim()).toBe("");
});
