/**
 * The program under Pulumi mocks: which resources it registers, with which inputs,
 * dependencies and secrets — read from the registration requests the engine would get.
 */
import { parse } from "yaml";
import { isSecret, Registration, reveal, runProgramUnderMocks } from "./mockProgram";

const CANARY_TOKEN = "canary-tg-0f9e'\"$# x";
const CANARY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\ncanary-ssh-77aa\n-----END OPENSSH PRIVATE KEY-----\n";
const CANARY_APPENV = "canary-appenv-5d5d";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyPinned sandbox";

let registrations: Registration[] = [];
let preflights: object[] = [];

beforeAll(async () => {
    ({ registrations, preflights } = await runProgramUnderMocks({
        stack: "unit",
        config: {
            "onevm:host": "127.0.0.1",
            "onevm:sshPort": "2222",
            "onevm:sshPrivateKey": CANARY_KEY,
            "onevm:hostPublicKey": HOST_KEY,
            "onevm:releaseId": "v1",
            "onevm:images": JSON.stringify({ "bot-api": "onevm/bot-api:v1", migrate: "onevm/migrate:v1", postgres: "onevm/postgres:17", redis: "onevm/redis:8" }),
            "onevm:telegramBotToken": CANARY_TOKEN,
            "onevm:appEnv": JSON.stringify({ EXTRA_SECRET: CANARY_APPENV }),
            "onevm:operator": "tester",
        },
        secretKeys: ["onevm:sshPrivateKey", "onevm:telegramBotToken", "onevm:appEnv"],
    }));
});

const byName = (name: string) => {
    const r = registrations.find((x) => x.name === name);
    if (!r) {
        throw new Error(`no resource named ${name}; have ${registrations.map((x) => x.name).join(", ")}`);
    }
    return r;
};
const urnOf = (name: string) => byName(name).urn!;

/** Every string in the registration, with whether it sits inside a secret. */
function strings(v: any, secret = false, out: Array<{ s: string; secret: boolean }> = []) {
    if (typeof v === "string") {
        out.push({ s: v, secret });
    } else if (v && typeof v === "object") {
        const inSecret = secret || isSecret(v);
        for (const child of Object.values(v)) {
            strings(child, inSecret, out);
        }
    }
    return out;
}

test("one component per concern, children parented to them", () => {
    const components = registrations.filter((r) => r.type.startsWith("onevm:")).map((r) => `${r.type} ${r.name}`);
    expect(components.sort()).toEqual([
        "onevm:index:BackupCron backup",
        "onevm:index:ExistingHost vm",
        "onevm:index:HostSetup host",
        "onevm:index:Release release",
        "onevm:index:SecretsFile secrets",
        "onevm:index:SystemdUnit unit",
        "onevm:index:TlsIngress tls",
    ]);
    const commands = registrations.filter((r) => r.type === "command:remote:Command");
    expect(commands.map((c) => c.name).sort()).toEqual([
        "backup-cron",
        "host-bootstrap",
        "host-dirs",
        "host-tools",
        "release-activate",
        "release-bundle",
        "secrets-db-password",
        "secrets-env",
        "tls-files",
        "unit-unit",
    ]);
    for (const c of commands) {
        expect(registrations.find((r) => r.urn === c.parent)?.type).toMatch(/^onevm:index:/);
    }
});

test("the loopback proxy by default: its Caddyfile installed before the release; no TLS key or certificate", () => {
    expect(registrations.filter((r) => r.type.startsWith("tls:"))).toEqual([]);
    const files = byName("tls-files").object;
    expect(files.create).toMatch(/ --caddyfile '# Rendered by onevm[^']*\nhttp:\/\/:8080 {\n\treverse_proxy bot-api:8080 {/);
    expect(files.create).not.toMatch(/:443|tls /);
    expect(byName("release").dependencies).toContain(urnOf("tls-files"));
});

test("every connection is secret, pins the host key, and keeps previous output out of the remote env", () => {
    for (const c of registrations.filter((r) => r.type === "command:remote:Command")) {
        expect(isSecret(c.object.connection)).toBe(true);
        expect(reveal(c.object.connection)).toMatchObject({ host: "127.0.0.1", port: 2222, user: "deploy", hostKey: HOST_KEY });
        expect(reveal(c.object.connection).privateKey).toBe(CANARY_KEY);
        expect(c.object.addPreviousOutputInEnv).toBe(false);
        // sshd accepts only LANG/LC_* (AcceptEnv): the command provider fails on any other variable.
        expect(c.object.environment).toBeUndefined();
    }
});

test("uploads are re-done on another machine (the provider only updates a changed connection); nothing that deletes is ever replaced", () => {
    for (const c of registrations.filter((r) => r.type === "command:remote:CopyToRemote")) {
        expect(c.object.triggers).toEqual(["127.0.0.1", HOST_KEY]);
    }
    // A replacement creates the new resource, then runs the old one's delete: uninstall, rm shared/tls...
    for (const c of registrations.filter((r) => r.type === "command:remote:Command" && r.object.delete)) {
        expect([c.name, c.object.triggers]).toEqual([c.name, undefined]);
    }
});

test("the host key is checked before any remote command: every connection waits on the pre-flight", () => {
    expect(preflights).toEqual([{ host: "127.0.0.1", port: 2222, user: "deploy", hostKey: HOST_KEY, pinnedBy: "onevm:hostPublicKey" }]);
});

test("the bootstrap re-runs when onevm's scripts change: their hash is in its command", () => {
    expect(byName("host-bootstrap").object.create).toMatch(/^sudo -n \/opt\/bot\/bin\/bootstrap-host.sh --app bot --user deploy --tools [0-9a-f]{64}$/);
    expect(byName("host-bootstrap").object.create).toContain(byName("host-tools").object.create.match(/tools\/([0-9a-f]{64})/)[1]);
});

test("canaries: secret values appear only inside secret-wrapped inputs", () => {
    const canaries = [CANARY_TOKEN, "canary-ssh-77aa", CANARY_APPENV, "generated-db-pw"];
    const leaks = registrations.flatMap((r) =>
        strings(r.object)
            .filter(({ s, secret }) => !secret && canaries.some((c) => s.includes(c)))
            .map(({ s }) => `${r.type} ${r.name}: ${s.slice(0, 60)}`),
    );
    expect(leaks).toEqual([]);
    // ...and they do reach the VM, through the .env written on stdin.
    const env = byName("secrets-env").object;
    expect(isSecret(env.stdin)).toBe(true);
    expect(reveal(env.stdin)).toContain(`TELEGRAM_BOT_TOKEN="${CANARY_TOKEN.replace(/"/g, '\\"').replace(/\$/g, "\\$")}"`);
    expect(reveal(env.stdin)).toContain(`EXTRA_SECRET='${CANARY_APPENV}'`);
    expect(reveal(env.stdin)).toContain("POSTGRES_PASSWORD='generated-db-pw'");
    expect(env.create).toBe("/opt/bot/bin/write-env.sh --app-dir /opt/bot");
    // The role's new password goes in first, as a SCRAM verifier: no plaintext on the VM's SQL.
    const rotate = byName("secrets-db-password").object;
    expect(isSecret(rotate.stdin)).toBe(true);
    expect(reveal(rotate.stdin)).toMatch(/^ALTER ROLE "bot" PASSWORD 'SCRAM-SHA-256\$4096:/);
    expect(byName("secrets-env").dependencies).toContain(urnOf("secrets-db-password"));
});

test("the database password is generated, rotatable through its keeper", () => {
    const pw = byName("db-password");
    expect(pw.type).toBe("random:index/randomPassword:RandomPassword");
    expect(pw.object).toMatchObject({ length: 32, special: false, keepers: { version: "1" } });
});

test("activation runs after the bundle and the .env, with the release switch visible in its command", () => {
    const activate = byName("release-activate");
    expect(activate.object.create).toMatch(/^\/opt\/bot\/bin\/activate.sh --app-dir \/opt\/bot --release v1 --operator tester /);
    expect(activate.dependencies).toEqual(expect.arrayContaining([urnOf("release-bundle")]));
    // Component dependencies reach the engine as their children's URNs.
    expect(byName("release").dependencies).toEqual(expect.arrayContaining([urnOf("secrets-env"), urnOf("host-bootstrap")]));
    // The compose file is a trigger: `pulumi preview --diff` shows its changed lines.
    const [id, compose, envHash] = activate.object.triggers;
    expect(id).toBe("v1");
    expect(parse(compose).services["bot-api"].image).toBe("onevm/bot-api:v1");
    expect(isSecret(envHash)).toBe(true);
});

test("the bundle goes up through stdin, identified by its content hash", () => {
    const bundle = byName("release-bundle").object;
    expect(bundle.create).toMatch(/^\/opt\/bot\/bin\/install-release.sh --app-dir \/opt\/bot --id v1 --hash [0-9a-f]{64}$/);
    expect(Buffer.from(bundle.stdin, "base64").subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
});

test("unit and cron carry their rendered text; unit after the first activation", () => {
    const unit = byName("unit-unit");
    expect(unit.object.create).toBe("sudo -n /opt/bot/bin/install-unit.sh --name bot.service");
    expect(unit.object.stdin).toContain("ExecStart=/usr/bin/docker compose --project-name bot");
    expect(byName("unit").dependencies).toContain(urnOf("release-activate"));
    const cron = byName("backup-cron");
    expect(cron.object.stdin).toContain("17 3 * * * deploy /opt/bot/bin/backup.sh");
});

test("destroy uninstalls through the bootstrap's delete, keeping data (scripts/remote/uninstall.sh)", () => {
    expect(byName("host-bootstrap").object.delete).toBe(
        "sudo -n /opt/bot/bin/uninstall.sh --app bot --unit bot.service --cron onevm-bot-backup --owner organization/onevm/unit",
    );
});

test("the first remote command claims the app dir for this stack (org/project/stack)", () => {
    expect(byName("host-dirs").object.create).toMatch(/ onevm-claim \/opt\/bot \S+ organization\/onevm\/unit \/var\/lib\/onevm$/);
});
