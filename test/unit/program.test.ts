/**
 * The program under Pulumi mocks: which resources it registers, with which inputs,
 * dependencies and secrets — read from the registration requests the engine would get.
 */
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { isSecret, Registration, reveal, runProgramUnderMocks, value } from "./mockProgram";
import { CANARY_KEY, CANARY_STRIPE, HOST_KEY, SHOP_SECRET_KEYS, shopConfig } from "./shopConfig";

let registrations: Registration[] = [];
let outputs: Record<string, any> = {};
let preflights: object[] = [];

beforeAll(async () => {
    const run = await runProgramUnderMocks({ stack: "unit", config: shopConfig(), secretKeys: SHOP_SECRET_KEYS });
    expect(run.error).toBeUndefined();
    ({ registrations, outputs, preflights } = run);
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

test("one component per concern, children parented to them; what runs on the VM is one component", () => {
    const components = registrations.filter((r) => r.type.startsWith("onevm:")).map((r) => `${r.type} ${r.name}`);
    expect(components.sort()).toEqual([
        "onevm:index:BackupCron backup",
        "onevm:index:ExistingHost vm",
        "onevm:index:HostSetup host",
        "onevm:index:Proxy proxy",
        "onevm:index:Release release",
        "onevm:index:SecretsFile secrets",
        "onevm:index:SystemdUnit unit",
        "onevm:index:VmDeployment app",
    ]);
    const deployment = byName("app").urn;
    for (const name of ["backup", "host", "proxy", "release", "secrets", "unit"]) {
        expect(byName(name).parent).toBe(deployment);
    }
    const commands = registrations.filter((r) => r.type === "command:remote:Command");
    expect(commands.map((c) => c.name).sort()).toEqual([
        "backup-cron",
        "host-bootstrap",
        "host-dirs",
        "host-tools",
        "proxy-files",
        "release-activate",
        "release-bundle",
        "release-images-lock",
        "secrets-db-password",
        "secrets-env",
        "unit-unit",
    ]);
    for (const c of commands) {
        expect(registrations.find((r) => r.urn === c.parent)?.type).toMatch(/^onevm:index:/);
    }
});

test("the loopback proxy by default: its Caddyfile reaches the web service and is installed before the release", () => {
    expect(registrations.filter((r) => r.type.startsWith("tls:"))).toEqual([]);
    const files = byName("proxy-files").object;
    // The Caddyfile is in the command line (not secret): preview --diff shows its change.
    expect(files.create).toMatch(/ --caddyfile '# Rendered by onevm[^']*\nhttp:\/\/:8080 {\n\treverse_proxy api:8000 {/);
    expect(files.create).not.toMatch(/:443|tls /);
    expect(byName("release").dependencies).toContain(urnOf("proxy-files"));
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
    expect(byName("host-bootstrap").object.create).toMatch(/^sudo -n \/opt\/shop\/bin\/bootstrap-host.sh --app shop --user deploy --tools [0-9a-f]{64}$/);
    expect(byName("host-bootstrap").object.create).toContain(byName("host-tools").object.create.match(/tools\/([0-9a-f]{64})/)[1]);
});

test("canaries: secret values appear only inside secret-wrapped inputs", () => {
    const canaries = [CANARY_STRIPE, "canary-ssh-77aa", "generated-db-pw"];
    const leaks = registrations.flatMap((r) =>
        strings(r.object)
            .filter(({ s, secret }) => !secret && canaries.some((c) => s.includes(c)))
            .map(({ s }) => `${r.type} ${r.name}: ${s.slice(0, 60)}`),
    );
    expect(leaks).toEqual([]);
    // ...and they do reach the VM, through the .env written on stdin.
    const env = byName("secrets-env").object;
    expect(isSecret(env.stdin)).toBe(true);
    expect(reveal(env.stdin)).toContain(`STRIPE_KEY="${CANARY_STRIPE.replace(/"/g, '\\"').replace(/\$/g, "\\$")}"`);
    expect(reveal(env.stdin)).toContain("POSTGRES_PASSWORD='generated-db-pw'");
    expect(reveal(env.stdin)).toContain("DATABASE_URL='postgresql://app:generated-db-pw@postgres:5432/app'");
    expect(env.create).toBe("/opt/shop/bin/write-env.sh --app-dir /opt/shop");
    // The role's new password goes in first, as a SCRAM verifier: no plaintext on the VM's SQL.
    const rotate = byName("secrets-db-password").object;
    expect(rotate.create).toBe("/opt/shop/bin/set-db-password.sh --app-dir /opt/shop --service postgres");
    expect(isSecret(rotate.stdin)).toBe(true);
    expect(reveal(rotate.stdin)).toMatch(/^ALTER ROLE "app" PASSWORD 'SCRAM-SHA-256\$4096:/);
    expect(byName("secrets-env").dependencies).toContain(urnOf("secrets-db-password"));
});

test("the database password is generated, rotatable through its keeper", () => {
    const pw = byName("db-password");
    expect(pw.type).toBe("random:index/randomPassword:RandomPassword");
    expect(pw.object).toMatchObject({ length: 32, special: false, keepers: { version: "1" } });
});

test("activation runs after the bundle and the .env, with the release switch visible in its command", () => {
    const activate = byName("release-activate");
    expect(activate.object.create).toMatch(/^\/opt\/shop\/bin\/activate.sh --app-dir \/opt\/shop --release v1 --operator tester /);
    expect(activate.dependencies).toEqual(expect.arrayContaining([urnOf("release-bundle")]));
    // Component dependencies reach the engine as their children's URNs.
    expect(byName("release").dependencies).toEqual(expect.arrayContaining([urnOf("secrets-env"), urnOf("host-bootstrap")]));
    // The compose file is a trigger: `pulumi preview --diff` shows its changed lines.
    const [id, compose, envHash] = activate.object.triggers;
    expect(id).toBe("v1");
    expect(parse(compose).services.api.image).toBe("registry.example.com/shop/api:v1");
    expect(isSecret(envHash)).toBe(true);
});

test("the bundle goes up through stdin, identified by its content hash and the release's identity", () => {
    const bundle = byName("release-bundle").object;
    expect(bundle.create).toMatch(/^\/opt\/shop\/bin\/install-release.sh --app-dir \/opt\/shop --id v1 --hash [0-9a-f]{64} --release-hash [0-9a-f]{64}$/);
    expect(Buffer.from(bundle.stdin, "base64").subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
});

test("unit and cron carry their rendered text; unit after the first activation", () => {
    const unit = byName("unit-unit");
    expect(unit.object.create).toBe("sudo -n /opt/shop/bin/install-unit.sh --name shop.service");
    expect(unit.object.stdin).toContain("ExecStart=/usr/bin/docker compose --project-name shop");
    expect(byName("unit").dependencies).toContain(urnOf("release-activate"));
    const cron = byName("backup-cron");
    expect(cron.object.stdin).toContain("17 3 * * * deploy /opt/shop/bin/backup.sh");
    expect(cron.object.delete).toBe("sudo -n rm -f -- /etc/cron.d/onevm-shop-backup");
});

test("destroy uninstalls through the bootstrap's delete, keeping data (vm/uninstall.sh)", () => {
    expect(byName("host-bootstrap").object.delete).toBe(
        "sudo -n /opt/shop/bin/uninstall.sh --app shop --unit shop.service --cron onevm-shop-backup --owner organization/onevm/unit",
    );
});

test("the first remote command claims the app dir for this stack (org/project/stack)", () => {
    expect(byName("host-dirs").object.create).toMatch(/ onevm-claim \/opt\/shop \S+ organization\/onevm\/unit \/var\/lib\/onevm$/);
});

test("outputs: the release record holds what the release pinned, for a rollback by ID alone", async () => {
    expect(await value(outputs.releaseId)).toBe("v1");
    expect(await value(outputs.previousReleaseId)).toBe("");
    const releases = (await value(outputs.releases)) as Record<string, any>;
    expect(Object.keys(releases)).toEqual(["v1"]);
    expect(releases.v1.hash).toBe(await value(outputs.releaseHash));
    expect(releases.v1.content.images.api).toBe("registry.example.com/shop/api:v1");
    expect(releases.v1.content.files).toEqual([{ path: "nginx/default.conf", content: expect.stringContaining("proxy_pass http://api:8000") }]);
    expect(await value(outputs.healthCheck)).toBe("ssh onevm-shop-unit curl -fsS http://127.0.0.1:8080/healthz");
});

test("outputs: where the VM is, and an ssh_config block that pins its host key", async () => {
    expect(await value(outputs.vm)).toEqual({ app: "shop", host: "127.0.0.1", port: 2222, user: "deploy", hostPublicKey: HOST_KEY });
    expect(await value(outputs.sshConfig)).toBe(
        [
            "Host onevm-shop-unit",
            "  HostName 127.0.0.1",
            "  Port 2222",
            "  User deploy",
            "  IdentityFile ~/.ssh/onevm-shop-unit",
            "  IdentitiesOnly yes",
            "  StrictHostKeyChecking yes",
            "  UserKnownHostsFile /dev/null",
            `  KnownHostsCommand /bin/echo %H ${HOST_KEY}`,
            "",
        ].join("\n"),
    );
    expect(outputs.sshCommand).toBe("ssh onevm-shop-unit");
});

test("a rendered file that `docker compose config` refuses stops the program with compose's message, before any VM resource", async () => {
    const run = await runProgramUnderMocks({
        stack: "unit",
        config: shopConfig({ "onevm:composeFile": "test/unit/fixtures/broken/compose.yaml", "onevm:images": undefined, "onevm:web": undefined, "onevm:migrate": undefined, "onevm:database": undefined, "onevm:secrets": undefined }),
        secretKeys: SHOP_SECRET_KEYS,
    });
    expect(pulumi.RunError.isInstance(run.error)).toBe(true);
    expect(run.error?.message).toMatch(/^Invalid onevm configuration \(nothing was changed\):\n {2}- the rendered Compose file does not pass `docker compose config`: .*depends on undefined service/s);
    expect(run.registrations.filter((r) => r.type.startsWith("command:"))).toEqual([]);
});

test("a config problem stops the program with one clean block naming every key, before any resource", async () => {
    const run = await runProgramUnderMocks({ stack: "unit", config: shopConfig({ "onevm:releaseId": "v1;rm", "onevm:backupKeep": "0" }), secretKeys: SHOP_SECRET_KEYS });
    expect(pulumi.RunError.isInstance(run.error)).toBe(true);
    expect(run.error?.message).toBe('Invalid onevm configuration (nothing was changed):\n  - onevm:releaseId = "v1;rm" must be 1-64 characters of letters, digits, \'.\', \'_\' or \'-\', starting with a letter or digit (no \'/\', spaces or shell metacharacters)\n  - onevm:backupKeep = "0" must be an integer between 1 and 1000');
    expect(run.registrations).toEqual([]);
});
