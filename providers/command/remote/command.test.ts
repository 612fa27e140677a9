import * as fs from "fs";
import { isSecret, reveal, WireMap } from "../../common/values";
import { capturingLogger, freePort, opContext, secret, sleep } from "../../test/helpers";
import { newHostKey, startSshServer, TestSshServer } from "../../test/sshServer";
import { generateKey } from "../../tls/privateKey";
import { remoteCommand } from "./command";
import { dial } from "./dial";
import { BOOTSTRAP } from "./script";

const TYPE = "command:remote:Command";
const clientKey = generateKey("ED25519", 2048, "P224");

/** Values that break naive quoting, argv passing or line-based protocols. */
const TRICKY = [
    `it's "quoted" with $HOME, \`uname\`, $(id) and # no comment`,
    "two  spaces\tand a tab",
    "line1\nline2\n",
    "back\\slash \\n \\\\ \\x41 \\'",
    "unicode: héllo ✓ 日本",
    "",
    "-n",
    "trailing newlines\n\n",
    "'; touch /tmp/onevm-injected #",
    "\x01\x1b[31m\x7f control",
];

let server: TestSshServer;

beforeAll(async () => {
    server = await startSshServer({ user: "deploy" });
});
afterAll(() => server.close());

function connection(extra: Record<string, unknown> = {}): WireMap["connection"] {
    return secret({
        host: "127.0.0.1",
        port: server.port,
        user: "deploy",
        privateKey: clientKey.privateKeyOpenssh,
        hostKey: server.hostKey,
        dialErrorLimit: 0,
        perDialTimeout: 5,
        ...extra,
    } as WireMap);
}

async function create(inputs: WireMap) {
    const ctx = opContext(TYPE);
    const { failures } = await remoteCommand.check({}, inputs);
    expect(failures).toEqual([]);
    const result = await remoteCommand.create(ctx, inputs);
    return { ...result, log: ctx.log.lines };
}

const decodeLines = (stdout: string) => stdout.split("\n").map((l) => Buffer.from(l, "base64").toString("utf8"));

describe("command:remote:Command", () => {
    test("environment values and stdin reach the command byte for byte", async () => {
        const environment = Object.fromEntries(TRICKY.map((v, i) => [`V${i}`, v]));
        const big = "x".repeat(100_000);
        const stdin = TRICKY.join("\n--\n") + "no final newline";
        const names = [...TRICKY.keys()].map((i) => `V${i}`).concat("BIG").join(" ");
        const { outs } = await create({
            connection: connection(),
            environment: { ...environment, BIG: secret(big) },
            stdin,
            create: `for v in ${names}; do printf '%s' "\${!v}" | base64 -w0; echo; done; base64 -w0`,
            logging: "none",
        });
        const lines = decodeLines(reveal(outs.stdout) as string);
        expect(lines.slice(0, TRICKY.length)).toEqual(TRICKY);
        expect(lines[TRICKY.length]).toEqual(big);
        expect(lines[TRICKY.length + 1]).toEqual(stdin);
        expect(fs.existsSync("/tmp/onevm-injected")).toBe(false);
    });

    test("without stdin the command reads end-of-file at once; unread stdin does no harm", async () => {
        expect((await create({ connection: connection(), create: "cat; echo done" })).outs.stdout).toBe("done");
        const ignored = await create({ connection: connection(), stdin: "y\n".repeat(500_000), create: "echo ignored" });
        expect(ignored.outs.stdout).toBe("ignored");
    });

    test("the exec request carries only the constant bootstrap: no values, no command text, no env requests", async () => {
        const before = server.execs.length;
        await create({ connection: connection(), environment: { TOKEN: secret("tok-123456789") }, create: "echo marker-cmd-text" });
        const sent = server.execs.slice(before);
        expect(sent).toEqual([BOOTSTRAP]);
        expect(sent.join()).not.toContain("tok-123456789");
        expect(sent.join()).not.toContain("marker-cmd-text");
        expect(server.envRequests).toEqual([]);
    });

    test("outputs that may echo secret inputs are secret; others are plain", async () => {
        const plain = await create({ connection: connection(), create: "echo hello" });
        expect(plain.outs.stdout).toBe("hello");
        const withSecret = await create({ connection: connection(), environment: { P: secret("pw-abcdef") }, create: 'echo "$P"' });
        expect(isSecret(withSecret.outs.stdout)).toBe(true);
        expect(reveal(withSecret.outs.stdout)).toBe("pw-abcdef");
        expect(isSecret(withSecret.outs.connection)).toBe(true);
    });

    test("a failing command reports exit code and stderr tail, never its command, stdin or secrets", async () => {
        const inputs: WireMap = {
            connection: connection(),
            environment: { SECRET: secret("hunter2-very-secret") },
            stdin: secret("stdin-secret-text"),
            create: 'echo "leak: $SECRET" >&2; cat >&2; echo; echo "visible problem" >&2; exit 3',
            logging: "none",
        };
        const err: Error = await remoteCommand.create(opContext(TYPE), inputs).then(
            () => Promise.reject(new Error("expected a failure")),
            (e: Error) => e,
        );
        expect(err.message).toMatch(/exited with code 3/);
        expect(err.message).toContain("visible problem");
        expect(err.message).toContain("leak: [secret]");
        expect(err.message).not.toContain("hunter2-very-secret");
        expect(err.message).not.toContain("stdin-secret-text");
        expect(err.message).not.toContain("echo");
    });

    test("logging chooses which streams reach the engine log, with secrets scrubbed", async () => {
        const cmd = 'echo "out $S"; echo err >&2';
        const env = { S: secret("s3cret-value") };
        const both = await create({ connection: connection(), environment: env, create: cmd });
        expect(both.log).toEqual(["out [secret]", "err"]);
        const stdoutOnly = await create({ connection: connection(), environment: env, create: cmd, logging: "stdout" });
        expect(stdoutOnly.log).toEqual(["out [secret]"]);
        const none = await create({ connection: connection(), environment: env, create: cmd, logging: "none" });
        expect(none.log).toEqual([]);
    });

    test("update falls back to create; update and delete see the previous output", async () => {
        const dir = fs.mkdtempSync("/tmp/onevm-cmd-");
        const inputs: WireMap = {
            connection: connection(),
            environment: { OUT: `${dir}/deleted` },
            create: 'echo "run prev=[$PULUMI_COMMAND_STDOUT]"',
            delete: 'echo "$PULUMI_COMMAND_STDOUT" > "$OUT"',
        };
        const created = await create(inputs);
        expect(created.outs.stdout).toBe("run prev=[]");
        const updated = await remoteCommand.update!(opContext(TYPE), created.id, created.outs, { ...inputs, triggers: [1] });
        expect(updated.outs.stdout).toBe("run prev=[run prev=[]]");
        await remoteCommand.delete!(opContext(TYPE), created.id, updated.outs);
        expect(fs.readFileSync(`${dir}/deleted`, "utf8")).toBe("run prev=[run prev=[]]\n");
        const noPrev = await remoteCommand.update!(opContext(TYPE), created.id, created.outs, { ...inputs, addPreviousOutputInEnv: false });
        expect(noPrev.outs.stdout).toBe("run prev=[]");
    });

    test("an unknown host key is refused before anything runs", async () => {
        const before = { connections: server.connections, execs: server.execs.length };
        const inputs: WireMap = { connection: connection({ hostKey: undefined }), create: "echo hi" };
        const { failures } = await remoteCommand.check({}, inputs);
        expect(failures).toEqual([expect.objectContaining({ property: "connection.hostKey", reason: expect.stringMatching(/is required/) })]);
        await expect(remoteCommand.create(opContext(TYPE), inputs)).rejects.toThrow(/hostKey is required/);
        expect(server.connections).toBe(before.connections);
        expect(server.execs.length).toBe(before.execs);
    });

    test("a host key mismatch is refused without retrying or authenticating", async () => {
        const before = { execs: server.execs.length, auths: server.authenticatedKeys.length };
        const ctx = opContext(TYPE);
        const inputs: WireMap = { connection: connection({ hostKey: newHostKey().publicKey, dialErrorLimit: 5 }), create: "echo hi" };
        await expect(remoteCommand.create(ctx, inputs)).rejects.toThrow(/host key mismatch .* expected ssh-ed25519 SHA256:.*server presented ssh-ed25519 SHA256:/);
        expect(ctx.log.lines).toEqual([]);
        expect(server.execs.length).toBe(before.execs);
        expect(server.authenticatedKeys.length).toBe(before.auths);

        const rsa = generateKey("RSA", 2048, "P224").publicKeyOpenssh;
        const wrongType: WireMap = { connection: connection({ hostKey: rsa }), create: "echo hi" };
        await expect(remoteCommand.create(opContext(TYPE), wrongType)).rejects.toThrow(/server has no ssh-rsa host key/);
    });

    test("the client key from tls.PrivateKey authenticates", () => {
        const blob = clientKey.publicKeyOpenssh.split(" ")[1].trim();
        expect(server.authenticatedKeys).toContain(blob);
    });

    test("dialing retries until a late sshd listens, logging each failed attempt", async () => {
        const port = await freePort();
        const hostKey = newHostKey();
        const log = capturingLogger();
        const endpoint = {
            host: "127.0.0.1",
            port,
            user: "deploy",
            privateKey: clientKey.privateKeyOpenssh,
            hostKey: hostKey.publicKey,
            dialErrorLimit: 20,
            perDialTimeout: 5,
        };
        const dialing = dial(endpoint, { log, retryDelayMs: () => 200 });
        await sleep(700);
        const late = await startSshServer({ port }, hostKey);
        try {
            (await dialing).end();
        } finally {
            await late.close();
        }
        expect(log.lines.length).toBeGreaterThanOrEqual(2);
        expect(log.lines[0]).toMatch(/^ssh deploy@127\.0\.0\.1:\d+: attempt 1\/21 failed \(.*ECONNREFUSED.*\); retrying in 0\.2s$/);
    });

    test("dialing gives up after dialErrorLimit tolerated failures", async () => {
        const port = await freePort();
        const endpoint = { host: "127.0.0.1", port, user: "x", hostKey: server.hostKey, dialErrorLimit: 2, perDialTimeout: 1 };
        const log = capturingLogger();
        await expect(dial(endpoint, { log, retryDelayMs: () => 10 })).rejects.toThrow(/giving up after 3 failed attempts; last error: .*ECONNREFUSED/);
        expect(log.lines).toHaveLength(2);
    });

    test("connects through a proxy (bastion) host", async () => {
        const bastion = await startSshServer();
        try {
            const { outs } = await create({
                connection: connection({
                    proxy: {
                        host: "127.0.0.1",
                        port: bastion.port,
                        user: "jump",
                        privateKey: clientKey.privateKeyOpenssh,
                        hostKey: bastion.hostKey,
                    },
                }),
                create: "echo via-proxy",
            });
            expect(outs.stdout).toBe("via-proxy");
            expect(bastion.connections).toBe(1);
            expect(bastion.execs).toEqual([]);
        } finally {
            await bastion.close();
        }
    });
});

describe("command:remote:Command diff", () => {
    const base: WireMap = {
        connection: secret({ host: "10.0.0.1", port: 22, user: "root", hostKey: "k" }),
        create: "echo hi",
        triggers: ["a"],
    };
    const outs: WireMap = { ...base, stdout: "hi", stderr: "" };

    test("no change, or only secretness changed: no diff", async () => {
        expect(await remoteCommand.diff(outs, { ...base })).toEqual({ changes: false });
        expect(await remoteCommand.diff(outs, { ...base, create: secret("echo hi") })).toEqual({ changes: false });
    });

    test("triggers replace", async () => {
        expect(await remoteCommand.diff(outs, { ...base, triggers: ["b"] })).toEqual({ changes: true, replaces: ["triggers"] });
    });

    test("another host replaces; other connection changes update", async () => {
        const moved = secret({ host: "10.0.0.2", port: 22, user: "root", hostKey: "k" });
        expect(await remoteCommand.diff(outs, { ...base, connection: moved })).toEqual({ changes: true, replaces: ["connection"] });
        const otherUser = secret({ host: "10.0.0.1", port: 22, user: "deploy", hostKey: "k" });
        expect(await remoteCommand.diff(outs, { ...base, connection: otherUser })).toEqual({ changes: true, replaces: [] });
    });

    test("other input changes update in place", async () => {
        expect(await remoteCommand.diff(outs, { ...base, create: "echo bye" })).toEqual({ changes: true, replaces: [] });
        expect(await remoteCommand.diff(outs, { ...base, environment: { A: "1" } })).toEqual({ changes: true, replaces: [] });
    });
});
