import { ConfigError, parseConfig } from "../../lib/config";

const CANARY_TOKEN = "canary-token-7f3a'\"$#x";
const CANARY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\ncanary-key-9b2c\n-----END OPENSSH PRIVATE KEY-----\n";

const valid: Record<string, string> = {
    host: "127.0.0.1",
    sshPort: "2222",
    sshPrivateKey: CANARY_KEY,
    hostPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey sandbox",
    releaseId: "v1",
    images: JSON.stringify({ "bot-api": "onevm/bot-api:v1", migrate: "onevm/migrate:v1", postgres: "onevm/postgres:17", redis: "onevm/redis:8" }),
    telegramBotToken: CANARY_TOKEN,
};

function parse(overrides: Record<string, string | undefined> = {}) {
    const values = { ...valid, ...overrides };
    return parseConfig((key) => values[key], { operator: "tester" });
}

function problems(overrides: Record<string, string | undefined>): string[] {
    try {
        parse(overrides);
    } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).problems;
    }
    throw new Error("expected a ConfigError");
}

test("a valid existing-host config parses with documented defaults", () => {
    const cfg = parse();
    expect(cfg).toMatchObject({
        app: "bot",
        target: "existing",
        host: { address: "127.0.0.1", port: 2222, user: "deploy" },
        releaseId: "v1",
        imageTransport: "registry",
        healthRetries: 60,
        healthIntervalSeconds: 1,
        keepReleases: 5,
        backupSchedule: "17 3 * * *",
        backupKeep: 7,
        operator: "tester",
    });
    expect(cfg.secrets.telegramBotToken).toBe(CANARY_TOKEN);
});

test.each([
    ["releaseId", "../v1", /onevm:releaseId = "..\/v1" must be/],
    ["releaseId", "v1; rm -rf /", /onevm:releaseId .* must be 1-64 characters/],
    ["app", "Bot", /onevm:app = "Bot" must be 2-31 lowercase/],
    ["sshPort", "70000", /onevm:sshPort = "70000" must be an integer port/],
    ["sshPort", "22x", /onevm:sshPort = "22x" must be an integer$/],
    ["backupSchedule", "0 25 * * *", /onevm:backupSchedule = "0 25 \* \* \*" hour field '25' must stay within 0-23/],
    ["backupKeep", "0", /onevm:backupKeep = "0" must be an integer between 1 and 1000/],
    ["keepReleases", "1", /onevm:keepReleases = "1" must be an integer between 2 and 100/],
    ["images", JSON.stringify({ "bot-api": "onevm/bot-api", migrate: "m:1", postgres: "p:1", redis: "r:1" }), /onevm:images.bot-api = "onevm\/bot-api" must pin a tag or a digest/],
    ["images", JSON.stringify({ "bot-api": "a:1", migrate: "m:1", postgres: "p:1" }), /onevm:images.redis is required/],
    ["images", "not json{", /onevm:images = "not json\{" must be structured config/],
    ["hostPublicKey", "AAAA", /onevm:hostPublicKey = "AAAA" must be one OpenSSH public key line/],
    ["imageTransport", "scp", /onevm:imageTransport = "scp" must be one of: registry, archive/],
    ["healthRetries", "-1", /onevm:healthRetries = "-1" must be an integer between 1 and 600/],
    ["postgresUser", "Robert'); DROP", /onevm:postgresUser .* must be a lowercase PostgreSQL identifier/],
])("%s=%j is refused with the key, the problem and the rule", (key, value, message) => {
    expect(problems({ [key]: value })).toEqual(expect.arrayContaining([expect.stringMatching(message)]));
});

test.each(["releaseId", "images", "telegramBotToken", "host", "hostPublicKey", "sshPrivateKey"])(
    "missing %s is reported as required with the command that sets it",
    (key) => {
        const found = problems({ [key]: undefined });
        expect(found).toEqual([expect.stringMatching(new RegExp(`onevm:${key} is required: set it with \`pulumi config set|onevm:${key} is required`))]);
    },
);

test("secret values never appear in error messages", () => {
    const found = problems({ sshPrivateKey: "not a key but a canary-secret-1234", appEnv: JSON.stringify({ "bad key": "canary-secret-5678" }) });
    const text = found.join("\n");
    expect(text).toMatch(/onevm:sshPrivateKey \(secret value hidden\) must be a PEM/);
    expect(text).toMatch(/onevm:appEnv key "bad key" must be an upper-case/);
    expect(text).not.toMatch(/canary-secret/);
});

test("all problems are reported at once", () => {
    expect(problems({ releaseId: "a/b", sshPort: "0", backupSchedule: "x" })).toHaveLength(3);
});

test("appEnv: extra secrets pass through; onevm-managed keys cannot be overridden", () => {
    expect(parse({ appEnv: JSON.stringify({ STRIPE_KEY: "s k'$#\n" }) }).secrets.appEnv).toEqual({ STRIPE_KEY: "s k'$#\n" });
    expect(problems({ appEnv: JSON.stringify({ DATABASE_URL: "x" }) })).toEqual([
        expect.stringMatching(/appEnv key "DATABASE_URL" is managed by onevm/),
    ]);
});

describe("digitalocean target", () => {
    const doBase = { target: "digitalocean", host: undefined, hostPublicKey: undefined, sshPrivateKey: undefined };

    test("requires SSH CIDRs and validates each", () => {
        expect(problems({ ...doBase })).toEqual([expect.stringMatching(/onevm:sshAllowedCidrs is required/)]);
        expect(problems({ ...doBase, sshAllowedCidrs: JSON.stringify(["203.0.113.7"]) })).toEqual([
            expect.stringMatching(/sshAllowedCidrs entry "203.0.113.7" must be a CIDR block/),
        ]);
    });

    test("refuses SSH open to the world unless allowWorldSsh is set", () => {
        expect(problems({ ...doBase, sshAllowedCidrs: JSON.stringify(["0.0.0.0/0"]) })).toEqual([
            expect.stringMatching(/opens SSH to the whole internet \(0.0.0.0\/0\); refused unless onevm:allowWorldSsh is true/),
        ]);
        const cfg = parse({ ...doBase, sshAllowedCidrs: JSON.stringify(["0.0.0.0/0", "::/0"]), allowWorldSsh: "true" });
        expect(cfg.digitalocean?.sshAllowedCidrs).toEqual(["0.0.0.0/0", "::/0"]);
    });

    test("defaults: Ubuntu 24.04, s-2vcpu-4gb", () => {
        expect(parse({ ...doBase, sshAllowedCidrs: JSON.stringify(["203.0.113.7/32"]) }).digitalocean).toMatchObject({
            region: "fra1",
            size: "s-2vcpu-4gb",
            image: "ubuntu-24-04-x64",
            tags: ["onevm"],
            allowWorldSsh: false,
            tlsIngress: false,
        });
    });
});
