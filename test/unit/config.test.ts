import { ConfigError, parseConfig } from "../../lib/config";
import { CANARY_KEY, CANARY_STRIPE, SHOP_SECRET_KEYS, shopConfig } from "./shopConfig";

function parse(overrides: Record<string, string | undefined> = {}, secretKeys = SHOP_SECRET_KEYS) {
    const values = shopConfig(overrides);
    return parseConfig((key) => values[key], { operator: "tester", isSecret: (k) => secretKeys.includes(k) });
}

function problems(overrides: Record<string, string | undefined>, secretKeys = SHOP_SECRET_KEYS): string[] {
    try {
        parse(overrides, secretKeys);
    } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).problems;
    }
    throw new Error("expected a ConfigError");
}

test("a valid existing-host config parses with documented defaults", () => {
    const cfg = parse();
    expect(cfg).toMatchObject({
        app: undefined,
        target: { kind: "existing", address: "127.0.0.1", port: 2222, user: "deploy" },
        releaseId: "v1",
        imageTransport: "registry",
        healthRetries: 60,
        healthIntervalSeconds: 1,
        keepReleases: 5,
        backupSchedule: "17 3 * * *",
        backupKeep: 7,
        operator: "tester",
        proxy: { mode: "loopback" },
    });
    expect(cfg.appDescription).toMatchObject({
        composeFile: "test/unit/fixtures/shop/compose.yaml",
        web: { service: "api", port: 8000, hostPort: 8080, checks: [{ path: "/healthz", status: 200, json: { status: "ok" } }] },
        migrate: "migrate",
        database: { service: "postgres", user: "app", name: "app", clients: ["api", "migrate"], urlKey: "DATABASE_URL", urlScheme: "postgresql", urlQuery: "" },
        secrets: { STRIPE_KEY: ["api"] },
        defaultLimits: { memory: "512m", cpus: "1.0" },
        logMaxSize: "10m",
        logMaxFiles: 3,
    });
    expect(cfg.secrets.appEnv).toEqual({ STRIPE_KEY: CANARY_STRIPE });
});

test("the database user defaults to the app name with '_' for '-'", () => {
    expect(parse({ "onevm:app": "my-shop" }).appDescription.database).toMatchObject({ user: "my_shop", name: "my_shop" });
});

test("web: hostPort defaults to port, health to GET /health answering 200, a list of checks is kept in order", () => {
    const web = (value: object) => parse({ "onevm:web": JSON.stringify(value) }).appDescription.web;
    expect(web({ service: "api", port: 8000 })).toEqual({ service: "api", port: 8000, hostPort: 8000, checks: [{ path: "/health", status: 200 }] });
    expect(web({ service: "api", port: "8000", health: [{ path: "/up" }, { path: "/metrics", contains: "http_requests_total" }] })!.checks).toEqual([
        { path: "/up", status: 200 },
        { path: "/metrics", status: 200, contains: ["http_requests_total"] },
    ]);
});

test("no web, migrate or database role: an app without HTTP or PostgreSQL", () => {
    const d = parse({ "onevm:web": undefined, "onevm:migrate": undefined, "onevm:database": undefined, "onevm:secrets": undefined }).appDescription;
    expect(d.web).toBeUndefined();
    expect(d.migrate).toBeUndefined();
    expect(d.database).toBeUndefined();
    expect(d.secrets).toEqual({});
});

test.each([
    ["onevm:releaseId", "../v1", /onevm:releaseId = "..\/v1" must be/],
    ["onevm:releaseId", "v1; rm -rf /", /onevm:releaseId .* must be 1-64 characters/],
    ["onevm:app", "Bot", /onevm:app = "Bot" must be 2-31 lowercase/],
    ["onevm:sshPort", "70000", /onevm:sshPort = "70000" must be an integer port/],
    ["onevm:sshPort", "22x", /onevm:sshPort = "22x" must be an integer$/],
    ["onevm:backupSchedule", "0 25 * * *", /onevm:backupSchedule = "0 25 \* \* \*" hour field '25' must stay within 0-23/],
    ["onevm:backupKeep", "0", /onevm:backupKeep = "0" must be an integer between 1 and 1000/],
    ["onevm:keepReleases", "1", /onevm:keepReleases = "1" must be an integer between 2 and 100/],
    ["onevm:images", JSON.stringify({ api: "registry.example.com/shop/api" }), /onevm:images.api = .* must pin a tag or a digest/],
    ["onevm:images", JSON.stringify({ "bad service!": "a:1" }), /onevm:images.bad service! = "a:1" must be a Compose service name/],
    ["onevm:images", "not json{", /onevm:images = "not json\{" must be structured config/],
    ["onevm:hostPublicKey", "AAAA", /onevm:hostPublicKey = "AAAA" must be an OpenSSH public key line/],
    ["onevm:imageTransport", "scp", /onevm:imageTransport = "scp" must be one of: registry, archive/],
    ["onevm:healthRetries", "-1", /onevm:healthRetries = "-1" must be an integer between 1 and 600/],
    ["onevm:composeFile", "/etc/compose.yaml", /onevm:composeFile = "\/etc\/compose.yaml" must be a relative path/],
    ["onevm:web", JSON.stringify({ port: 8000 }), /onevm:web.service is required/],
    ["onevm:web", JSON.stringify({ service: "api", port: 80000 }), /onevm:web.port = 80000 must be an integer port/],
    ["onevm:web", JSON.stringify({ service: "api", port: 8000, healthz: "/x" }), /onevm:web.healthz is not a setting \(known: service, port, hostPort, health\)/],
    ["onevm:web", JSON.stringify({ service: "api", port: 8000, health: { path: "healthz" } }), /onevm:web.health.path = "healthz" must be a URL path starting with '\/'/],
    ["onevm:web", JSON.stringify({ service: "api", port: 8000, health: [{ path: "/x", status: 99 }] }), /onevm:web.health\[0\].status = 99 must be an HTTP status code/],
    ["onevm:web", JSON.stringify({ service: "api", port: 8000, health: { path: "/x", json: ["ok"] } }), /onevm:web.health.json must be an object/],
    ["onevm:database", JSON.stringify({ service: "postgres", user: "Robert'); DROP" }), /onevm:database.user = .* must be a lowercase PostgreSQL identifier/],
    ["onevm:database", JSON.stringify({ service: "postgres", clients: "api" }), /onevm:database.clients must be a list of service names/],
    ["onevm:database", JSON.stringify({ service: "postgres", urlQuery: "?sslmode=disable" }), /onevm:database.urlQuery = .* must be a query string/],
    ["onevm:secrets", JSON.stringify({ "stripe-key": ["api"] }), /onevm:secrets.stripe-key must be an upper-case environment variable name/],
    ["onevm:secrets", JSON.stringify({ POSTGRES_PASSWORD: ["api"] }), /onevm:secrets.POSTGRES_PASSWORD is written by onevm for the database role/],
    ["onevm:limits", JSON.stringify({ api: { memory: "lots" } }), /onevm:limits.api = .* memory must be a size such as 512m/],
    ["onevm:limits", JSON.stringify({ api: { swap: "1g" } }), /onevm:limits.api = .* has swap: only memory and cpus are settings/],
    ["onevm:logMaxFiles", "0", /onevm:logMaxFiles = "0" must be an integer between 1 and 100/],
])("%s=%j is refused with the key, the problem and the rule", (key, value, message) => {
    expect(problems({ [key]: value })).toEqual(expect.arrayContaining([expect.stringMatching(message)]));
});

test.each(["onevm:releaseId", "onevm:host", "onevm:hostPublicKey", "onevm:sshPrivateKey"])("missing %s is reported as required with the command that sets it", (key) => {
    expect(problems({ [key]: undefined })).toEqual([expect.stringMatching(new RegExp(`^${key} is required: set it with \`pulumi config set`))]);
});

test("a declared secret needs its value in app:KEY, set as a secret", () => {
    expect(problems({ "app:STRIPE_KEY": undefined })).toEqual([
        "app:STRIPE_KEY is required by onevm:secrets.STRIPE_KEY: set it with `pulumi config set --secret app:STRIPE_KEY <value>`",
    ]);
    expect(problems({}, ["onevm:sshPrivateKey"])).toEqual([
        "app:STRIPE_KEY is stored in plain text: set it again with `pulumi config set --secret app:STRIPE_KEY <value>`",
    ]);
});

test("every problem is reported at once", () => {
    expect(problems({ "onevm:releaseId": undefined, "onevm:sshPort": "x", "onevm:backupKeep": "0" })).toHaveLength(3);
});

test("secret values never appear in error messages", () => {
    const found = problems({ "onevm:sshPrivateKey": "not a key but a canary-secret-1234", "app:STRIPE_KEY": "nul\0canary-secret-5678" });
    const text = found.join("\n");
    expect(text).toMatch(/onevm:sshPrivateKey \(secret value hidden\) must be a PEM/);
    expect(text).toMatch(/app:STRIPE_KEY \(secret value hidden\) must not contain a NUL/);
    expect(text).not.toMatch(/canary-secret/);
    expect(text).not.toContain(CANARY_KEY);
});

test("ssh-keyscan output is accepted for the host key: the ed25519 line is pinned", () => {
    const keyscan = [
        "# 203.0.113.10:22 SSH-2.0-OpenSSH_9.6",
        "203.0.113.10 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC",
        "203.0.113.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyscanned",
    ].join("\n");
    const cfg = parse({ "onevm:hostPublicKey": keyscan });
    expect(cfg.target).toMatchObject({ kind: "existing", hostPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyscanned" });
});

describe("target digitalocean", () => {
    const droplet = { "onevm:target": "digitalocean", "onevm:host": undefined, "onevm:hostPublicKey": undefined, "onevm:sshPrivateKey": undefined };

    test("parses with defaults; no host keys needed", () => {
        const cfg = parse({ ...droplet, "onevm:sshAllowedCidrs": JSON.stringify(["203.0.113.7/32"]) });
        expect(cfg.target).toEqual({
            kind: "digitalocean",
            region: "fra1",
            size: "s-2vcpu-4gb",
            image: "ubuntu-24-04-x64",
            sshAllowedCidrs: ["203.0.113.7/32"],
            allowWorldSsh: false,
            tags: ["onevm"],
            volumeSizeGb: 20,
            reservedIp: false,
            deployPublicKey: undefined,
            user: "deploy",
            infrastructureOnly: false,
        });
    });

    test("SSH CIDRs are required, checked, and the world only on purpose", () => {
        expect(problems(droplet)).toEqual([expect.stringMatching(/onevm:sshAllowedCidrs is required/)]);
        expect(problems({ ...droplet, "onevm:sshAllowedCidrs": JSON.stringify(["203.0.113.7/24"]) })).toEqual([expect.stringMatching(/has host bits set beyond \/24/)]);
        expect(problems({ ...droplet, "onevm:sshAllowedCidrs": JSON.stringify(["0.0.0.0/0"]) })).toEqual([expect.stringMatching(/refused unless onevm:allowWorldSsh is true/)]);
        expect(parse({ ...droplet, "onevm:sshAllowedCidrs": JSON.stringify(["0.0.0.0/0"]), "onevm:allowWorldSsh": "true" }).target).toMatchObject({ allowWorldSsh: true });
    });

    test("your own deploy key needs its private key", () => {
        expect(problems({ ...droplet, "onevm:sshAllowedCidrs": JSON.stringify(["203.0.113.7/32"]), "onevm:deployPublicKey": "ssh-ed25519 AAAAC3Nz me" })).toEqual([
            expect.stringMatching(/onevm:sshPrivateKey is required with onevm:deployPublicKey/),
        ]);
    });
});

describe("proxy and TLS", () => {
    test("the proxy is on by default, on the loopback port, with the official image pinned by digest", () => {
        expect(parse().proxy).toEqual({ mode: "loopback", image: expect.stringMatching(/^caddy:2\.[0-9.]+@sha256:[0-9a-f]{64}$/) });
        expect(parse({ "onevm:loopbackProxy": "false" }).proxy).toBeUndefined();
    });

    test("TLS ingress: certificate mode by default; acme needs a domain", () => {
        expect(parse({ "onevm:tlsIngress": "true" })).toMatchObject({ tls: { mode: "certificate" }, proxy: { mode: "certificate" } });
        expect(problems({ "onevm:tlsIngress": "true", "onevm:tlsMode": "acme" })).toEqual([expect.stringMatching(/onevm:tlsDomain is required/)]);
        expect(parse({ "onevm:tlsIngress": "true", "onevm:tlsMode": "acme", "onevm:tlsDomain": "shop.example.com" }).tls).toEqual({
            mode: "acme",
            domain: "shop.example.com",
            email: undefined,
        });
    });
});
