/** The operator command: where the VM is (lib/vmTarget.ts) and its arguments (scripts/onevm.ts). */
import { parseArgs } from "../../scripts/onevm";
import { ConfigJson, knownHostsLine, resolveVmTarget } from "../../lib/vmTarget";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey";
const vm = { app: "shop", host: "203.0.113.10", port: 2222, user: "ops", hostPublicKey: HOST_KEY };
const cfg = (o: Record<string, string>): ConfigJson => Object.fromEntries(Object.entries(o).map(([k, value]) => [`onevm:${k}`, { value, secret: true }]));

test("the vm output and the configured key", () => {
    expect(resolveVmTarget(cfg({ sshPrivateKey: KEY }), { vm }, "s")).toEqual({ ...vm, privateKey: KEY });
});

test("a droplet: the generated deploy key from the secret output", () => {
    expect(resolveVmTarget({}, { vm: { ...vm, port: 22 }, deployPrivateKey: KEY }, "s")).toMatchObject({ port: 22, privateKey: KEY });
});

test("says what is missing from the stack, naming it", () => {
    expect(() => resolveVmTarget(cfg({ sshPrivateKey: KEY }), {}, "prod")).toThrow("stack prod: has no `vm` output yet: run `pulumi up` on it first");
    expect(() => resolveVmTarget({}, { vm }, "prod")).toThrow(/stack prod: no onevm:sshPrivateKey in the config and no generated `deployPrivateKey` output/);
    expect(() => resolveVmTarget(cfg({ sshPrivateKey: KEY }), { vm: { ...vm, hostPublicKey: undefined } }, "prod")).toThrow(/the `vm` output has no hostPublicKey/);
});

test("values that reach a shell are checked by the config rules", () => {
    expect(() => resolveVmTarget(cfg({ sshPrivateKey: KEY }), { vm: { ...vm, host: "h; rm -rf /" } }, "s")).toThrow(/host must be/);
    expect(() => resolveVmTarget(cfg({ sshPrivateKey: KEY }), { vm: { ...vm, app: "$(x)" } }, "s")).toThrow(/app must be/);
    expect(() => resolveVmTarget(cfg({ sshPrivateKey: KEY }), { vm: { ...vm, user: "a b" } }, "s")).toThrow(/user must be/);
});

test("the pinned host key as a known_hosts line", () => {
    expect(knownHostsLine({ host: "h", port: 22, hostPublicKey: HOST_KEY })).toBe(`h ${HOST_KEY}\n`);
    expect(knownHostsLine({ host: "h", port: 2222, hostPublicKey: HOST_KEY })).toBe(`[h]:2222 ${HOST_KEY}\n`);
});

test("arguments: verb, stack, flags with values, the command after --", () => {
    expect(parseArgs(["exec", "--stack", "prod", "api", "--", "ls", "-la", "--stack"])).toMatchObject({ verb: "exec", stack: "prod", rest: ["api", "ls", "-la", "--stack"] });
    expect(parseArgs(["logs", "api", "--stack=prod", "--follow", "--since", "10m"]).flags).toMatchObject({ "--follow": true, "--since": "10m", "--stack": "prod" });
    expect(parseArgs(["lock", "--message", "db maintenance", "--stack", "p"]).flags["--message"]).toBe("db maintenance");
    expect(() => parseArgs(["logs", "--since"])).toThrow("--since needs a value");
});
