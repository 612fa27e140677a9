/** `npm run restore`: where the VM is, from the stack's config and outputs (lib/restoreTarget.ts). */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigJson, knownHostsLine, resolveRestoreTarget } from "../../lib/restoreTarget";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey host";
const cfg = (o: Record<string, string>): ConfigJson => Object.fromEntries(Object.entries(o).map(([k, value]) => [`onevm:${k}`, { value }]));

describe("target existing: everything from the config", () => {
    const existing = { host: "203.0.113.10", sshPort: "2222", sshUser: "ops", hostPublicKey: HOST_KEY, sshPrivateKey: KEY, app: "shop" };

    test("host, port, user, app, keys", () => {
        expect(resolveRestoreTarget(cfg(existing), {}, "s")).toEqual({
            target: "existing", host: "203.0.113.10", port: 2222, user: "ops", app: "shop", backupMinFreeMb: 2048, hostPublicKey: HOST_KEY, privateKey: KEY,
        });
    });
    test("defaults: port 22, user deploy, app bot; outputs are not consulted", () => {
        const t = resolveRestoreTarget(cfg({ host: "vps.example.com", hostPublicKey: HOST_KEY, sshPrivateKey: KEY }), { address: "198.51.100.1" }, "s");
        expect(t).toMatchObject({ host: "vps.example.com", port: 22, user: "deploy", app: "bot" });
    });
    test.each([
        ["host", /no onevm:host/],
        ["hostPublicKey", /no onevm:hostPublicKey/],
        ["sshPrivateKey", /no onevm:sshPrivateKey/],
    ])("missing %s is an error naming the stack", (key, message) => {
        const c: Record<string, string> = { ...existing };
        delete c[key];
        expect(() => resolveRestoreTarget(cfg(c), {}, "prod")).toThrow(message);
        expect(() => resolveRestoreTarget(cfg(c), {}, "prod")).toThrow(/stack prod/);
    });
    test("values that would reach a shell are checked by the config rules", () => {
        expect(() => resolveRestoreTarget(cfg({ ...existing, host: "h; rm -rf /" }), {}, "s")).toThrow(/host must be/);
        expect(() => resolveRestoreTarget(cfg({ ...existing, app: "$(x)" }), {}, "s")).toThrow(/onevm:app/);
        expect(() => resolveRestoreTarget(cfg({ ...existing, backupMinFreeMb: "lots" }), {}, "s")).toThrow(/onevm:backupMinFreeMb/);
        expect(resolveRestoreTarget(cfg({ ...existing, backupMinFreeMb: "100" }), {}, "s").backupMinFreeMb).toBe(100);
        expect(() => resolveRestoreTarget(cfg({ ...existing, sshUser: "a b" }), {}, "s")).toThrow(/onevm:sshUser/);
        expect(() => resolveRestoreTarget(cfg({ ...existing, sshPort: "0" }), {}, "s")).toThrow(/onevm:sshPort/);
    });
});

describe("target digitalocean: address and host key from the stack outputs", () => {
    const outputs = { address: "198.51.100.7", sshHostPublicKey: HOST_KEY, deployPrivateKey: KEY };

    test("generated deploy key from the secret output; port 22", () => {
        expect(resolveRestoreTarget(cfg({ target: "digitalocean", host: "ignored.example.com" }), outputs, "s")).toEqual({
            target: "digitalocean", host: "198.51.100.7", port: 22, user: "deploy", app: "bot", backupMinFreeMb: 2048, hostPublicKey: HOST_KEY, privateKey: KEY,
        });
    });
    test("the operator's own key (config) wins over the output", () => {
        const own = KEY.replace("abc", "own");
        const t = resolveRestoreTarget(cfg({ target: "digitalocean", sshPrivateKey: own }), { ...outputs, deployPrivateKey: "" }, "s");
        expect(t.privateKey).toBe(own);
    });
    test("before the first `up` (no outputs) it says so", () => {
        expect(() => resolveRestoreTarget(cfg({ target: "digitalocean" }), {}, "s")).toThrow(/no `address` stack output: run `pulumi up` first/);
        expect(() => resolveRestoreTarget(cfg({ target: "digitalocean" }), { address: "198.51.100.7" }, "s")).toThrow(/sshHostPublicKey/);
        expect(() => resolveRestoreTarget(cfg({ target: "digitalocean" }), { ...outputs, deployPrivateKey: "" }, "s")).toThrow(/deployPrivateKey/);
    });
    test("an unknown target is an error", () => {
        expect(() => resolveRestoreTarget(cfg({ target: "aws" }), outputs, "s")).toThrow(/onevm:target 'aws'/);
    });
});

test("known_hosts line: bare host on port 22, [host]:port otherwise", () => {
    expect(knownHostsLine({ host: "h", port: 22, hostPublicKey: HOST_KEY })).toBe(`h ${HOST_KEY}\n`);
    expect(knownHostsLine({ host: "h", port: 2222, hostPublicKey: HOST_KEY })).toBe(`[h]:2222 ${HOST_KEY}\n`);
});

test("scripts/restore-target.ts writes the key 0600 and the pin, prints the target line, fails with a message", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "restore-target-"));
    try {
        const cli = ["-r", "ts-node/register/transpile-only", path.join(__dirname, "../../scripts/restore-target.ts"), "prod", dir];
        const input = JSON.stringify({ config: cfg({ target: "digitalocean" }), outputs: { address: "198.51.100.7", sshHostPublicKey: HOST_KEY, deployPrivateKey: KEY } });
        expect(execFileSync(process.execPath, cli, { input, encoding: "utf8" })).toBe("digitalocean 198.51.100.7 22 deploy bot 2048\n");
        expect(fs.readFileSync(path.join(dir, "key"), "utf8")).toBe(KEY);
        expect(fs.statSync(path.join(dir, "key")).mode & 0o777).toBe(0o600);
        expect(fs.readFileSync(path.join(dir, "known_hosts"), "utf8")).toBe(`198.51.100.7 ${HOST_KEY}\n`);
        const bad = spawnSync(process.execPath, cli, { input: JSON.stringify({ config: cfg({ target: "digitalocean" }), outputs: {} }), encoding: "utf8" });
        expect(bad.status).toBe(1);
        expect(bad.stderr).toMatch(/stack prod: no `address` stack output/);
        expect(bad.stdout).toBe("");
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
