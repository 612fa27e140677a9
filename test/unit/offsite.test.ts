/** Off-host backup copies: config rules and the files rendered for shared/offsite/. */
import { ConfigError, parseConfig } from "../../lib/config";
import { renderKnownHosts, renderOffsiteFiles, renderOffsiteTargets, renderS3Curlrc } from "../../lib/render/offsite";
import { installOffsiteCommand, removeOffsiteCommand } from "../../lib/remote";
import { SHOP_SECRET_KEYS, shopConfig } from "./shopConfig";

const STORE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\ncanary-offsite-ssh-41f0\n-----END OPENSSH PRIVATE KEY-----\n";
const S3_SECRET = "canary-s3-secret/\"q\\b+Z";
const STORE_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStoreKey store";

const base: Record<string, string> = {};
const ssh = { host: "172.17.0.3", user: "deploy", path: "backups/bot", hostPublicKey: STORE_HOST_KEY };
const s3 = { endpoint: "https://fra1.digitaloceanspaces.com", region: "fra1", bucket: "bot-backups" };
const withTargets: Record<string, string> = {
    ...base,
    offsiteSsh: JSON.stringify(ssh),
    offsiteSshPrivateKey: STORE_KEY,
    offsiteS3: JSON.stringify(s3),
    offsiteS3AccessKeyId: "DO00EXAMPLEKEY",
    offsiteS3SecretAccessKey: S3_SECRET,
};

/** onevm keys without their namespace, over the unit tests' base config. */
function parse(values: Record<string, string | undefined>) {
    const all = shopConfig(Object.fromEntries(Object.entries(values).map(([k, v]) => [`onevm:${k}`, v])));
    return parseConfig((key) => all[key], { operator: "tester", isSecret: (k) => SHOP_SECRET_KEYS.includes(k) });
}

function problems(values: Record<string, string | undefined>): string[] {
    try {
        parse(values);
    } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).problems;
    }
    throw new Error("expected a ConfigError");
}

describe("offsite config", () => {
    test("absent: no targets", () => {
        expect(parse(base).offsite).toEqual({ ssh: undefined, s3: undefined });
    });

    test("both targets parse with defaults (port 22; the prefix <app>/ is applied when the app is known)", () => {
        const cfg = parse(withTargets);
        expect(cfg.offsite.ssh).toEqual({ ...ssh, hostPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStoreKey", port: 22 });
        expect(cfg.offsite.s3).toEqual({ ...s3, prefix: undefined });
        expect(cfg.secrets).toMatchObject({ offsiteSshPrivateKey: STORE_KEY, offsiteS3AccessKeyId: "DO00EXAMPLEKEY", offsiteS3SecretAccessKey: S3_SECRET });
    });

    test("port as number or string, http only with allowHttp", () => {
        const cfg = parse({
            ...withTargets,
            offsiteSsh: JSON.stringify({ ...ssh, port: "2222" }),
            offsiteS3: JSON.stringify({ ...s3, endpoint: "http://172.17.0.1:9000", allowHttp: true, prefix: "x/y/" }),
        });
        expect(cfg.offsite.ssh!.port).toBe(2222);
        expect(cfg.offsite.s3).toMatchObject({ endpoint: "http://172.17.0.1:9000", prefix: "x/y/" });
    });

    test.each([
        ["offsiteSsh", { ...ssh, host: "bad host" }, /onevm:offsiteSsh.host = "bad host" must be a DNS name/],
        ["offsiteSsh", { ...ssh, port: 0 }, /onevm:offsiteSsh.port = 0 must be an integer port/],
        ["offsiteSsh", { ...ssh, user: "Root;" }, /onevm:offsiteSsh.user = "Root;" must be a valid Unix user/],
        ["offsiteSsh", { ...ssh, path: "a b" }, /onevm:offsiteSsh.path = "a b" must be a directory path/],
        ["offsiteSsh", { ...ssh, path: "../etc" }, /onevm:offsiteSsh.path = "..\/etc" must be a directory path/],
        ["offsiteSsh", { ...ssh, hostPublicKey: "AAAA" }, /onevm:offsiteSsh.hostPublicKey = "AAAA" must be an OpenSSH public key line/],
        ["offsiteSsh", { host: "h" }, /onevm:offsiteSsh.user is required/],
        ["offsiteSsh", { ...ssh, hots: "typo" }, /onevm:offsiteSsh.hots is not a setting/],
        ["offsiteSsh", ["a"], /onevm:offsiteSsh must be an object/],
        ["offsiteS3", { ...s3, endpoint: "http://s3.example.com" }, /onevm:offsiteS3.endpoint = "http:\/\/s3.example.com" must use https/],
        ["offsiteS3", { ...s3, endpoint: "https://s3.example.com/bucket" }, /must be only scheme:\/\/host\[:port\]/],
        ["offsiteS3", { ...s3, endpoint: "https://s3.example.com/" }, /must be only scheme:\/\/host\[:port\]/],
        ["offsiteS3", { ...s3, endpoint: "https://k:s@s3.example.com" }, /without path, query, credentials/],
        ["offsiteS3", { ...s3, endpoint: "not a url" }, /must be a URL/],
        ["offsiteS3", { ...s3, region: "FRA 1" }, /onevm:offsiteS3.region = "FRA 1" must be a region name/],
        ["offsiteS3", { ...s3, bucket: "Bad_Bucket" }, /onevm:offsiteS3.bucket = "Bad_Bucket" must be an S3 bucket name/],
        ["offsiteS3", { ...s3, prefix: "no-slash" }, /onevm:offsiteS3.prefix = "no-slash" must be empty or path segments/],
        ["offsiteS3", { ...s3, prefix: "a/../" }, /onevm:offsiteS3.prefix = "a\/..\/" must be empty or path segments/],
        ["offsiteS3", { ...s3, allowHttp: "yes" }, /onevm:offsiteS3.allowHttp must be true or false/],
        ["offsiteS3", { region: "fra1" }, /onevm:offsiteS3.endpoint is required/],
    ])("%s %j is refused", (key, value, message) => {
        expect(problems({ ...withTargets, [key]: JSON.stringify(value) })).toEqual(expect.arrayContaining([expect.stringMatching(message)]));
    });

    test("each target requires its secrets", () => {
        const p = problems({ ...withTargets, offsiteSshPrivateKey: undefined, offsiteS3AccessKeyId: undefined, offsiteS3SecretAccessKey: undefined });
        expect(p).toEqual(
            expect.arrayContaining([
                expect.stringMatching(/^onevm:offsiteSshPrivateKey is required: set it with `pulumi config set --secret/),
                expect.stringMatching(/^onevm:offsiteS3AccessKeyId is required/),
                expect.stringMatching(/^onevm:offsiteS3SecretAccessKey is required/),
            ]),
        );
    });

    test("secret values are checked but never echoed", () => {
        const p = problems({ ...withTargets, offsiteSshPrivateKey: "canary-not-a-key", offsiteS3AccessKeyId: "a b", offsiteS3SecretAccessKey: "canary s3 with space" });
        expect(p).toEqual(
            expect.arrayContaining([
                "onevm:offsiteSshPrivateKey (secret value hidden) must be a PEM/OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY----- ...)",
                expect.stringMatching(/^onevm:offsiteS3AccessKeyId \(secret value hidden\) must be 3-128/),
                expect.stringMatching(/^onevm:offsiteS3SecretAccessKey \(secret value hidden\) must be 8-256 printable/),
            ]),
        );
        expect(p.join("\n")).not.toMatch(/canary/);
    });

    test("credentials without their target are refused", () => {
        const p = problems({ ...base, offsiteSshPrivateKey: STORE_KEY, offsiteS3SecretAccessKey: S3_SECRET });
        expect(p).toEqual([
            "onevm:offsiteSshPrivateKey is set but onevm:offsiteSsh is not: set the target or remove the key",
            "onevm:offsiteS3SecretAccessKey is set but onevm:offsiteS3 is not: set the target or remove the key",
        ]);
    });
});

describe("shared/offsite files", () => {
    const cfg = parse({ ...withTargets, offsiteSsh: JSON.stringify({ ...ssh, port: 2222 }) });
    const options = {
        ssh: { ...cfg.offsite.ssh!, privateKey: STORE_KEY.trimEnd() },
        s3: { ...cfg.offsite.s3!, prefix: cfg.offsite.s3!.prefix ?? "bot/", accessKeyId: "DO00EXAMPLEKEY", secretAccessKey: S3_SECRET },
    };

    test("targets.json holds no secret", () => {
        const text = renderOffsiteTargets(options);
        expect(JSON.parse(text)).toEqual({
            ssh: { host: "172.17.0.3", port: 2222, user: "deploy", path: "backups/bot" },
            s3: { endpoint: "https://fra1.digitaloceanspaces.com", region: "fra1", bucket: "bot-backups", prefix: "bot/" },
        });
        expect(text).not.toMatch(/canary|DO00EXAMPLEKEY/);
    });

    test("known_hosts pins the key as OpenSSH looks it up", () => {
        expect(renderKnownHosts("172.17.0.3", 2222, STORE_HOST_KEY)).toBe("[172.17.0.3]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStoreKey\n");
        expect(renderKnownHosts("store.example.com", 22, ` ${STORE_HOST_KEY} `)).toBe("store.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStoreKey\n");
    });

    test("curl config quotes the keys the way curl unquotes them", () => {
        expect(renderS3Curlrc("fra1", "AK", S3_SECRET)).toBe(
            "# Managed by onevm: S3 credentials of the off-host backup copies (curl -K).\n" +
                'user = "AK:canary-s3-secret/\\"q\\\\b+Z"\n' +
                'aws-sigv4 = "aws:amz:fra1:s3"\n',
        );
    });

    test("one JSON document with every file; the key ends in a newline", () => {
        const files = JSON.parse(renderOffsiteFiles(options)).files;
        expect(Object.keys(files).sort()).toEqual(["s3.curlrc", "ssh_key", "ssh_known_hosts", "targets.json"]);
        expect(files.ssh_key).toBe(STORE_KEY);
        expect(files["targets.json"]).toBe(renderOffsiteTargets(options));
        const sshOnly = JSON.parse(renderOffsiteFiles({ ssh: options.ssh })).files;
        expect(Object.keys(sshOnly).sort()).toEqual(["ssh_key", "ssh_known_hosts", "targets.json"]);
        expect(JSON.parse(sshOnly["targets.json"])).not.toHaveProperty("s3");
    });

    test("install and remove commands carry no secret", () => {
        expect(installOffsiteCommand("bot")).toBe("/opt/bot/bin/install-offsite.sh --app-dir /opt/bot");
        expect(removeOffsiteCommand("bot")).toBe("/opt/bot/bin/install-offsite.sh --remove --app-dir /opt/bot");
    });
});
