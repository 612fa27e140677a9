/**
 * Off-host backup copies, end to end: a real `pulumi up` configures two off-host targets
 * on os-app — sftp to a second sandbox (os-store, host key pinned) and an S3 bucket (the
 * stand-in in test/s3/server.ts, which checks every SigV4 signature) — then manual backups
 * land on both with the same sha256, retention applies off-host, a target that is down
 * leaves the local backup verified and exits 5, a copy fetched back verifies, and the
 * canary secrets appear nowhere in plaintext.
 */
import { execFileSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildExampleImages, exampleStack, removeStack, Sandbox, sandboxDown, sandboxUp, ssh, TestStack } from "./harness";
import { FakeS3, spawnFakeS3 } from "../s3/server";

jest.setTimeout(2_400_000);

const APP = "os-app";
const STORE = "os-store";
const S3_KEY_ID = "OSE2EACCESSKEY";
const S3_SECRET = "canary-s3-secret-4e1b/\"q\\Z";
const BUCKET = "onevm-e2e";
const STORE_DIR = "offsite/bot";
const BIN = "/opt/worker-bot/bin";

let app: Sandbox;
let store: Sandbox;
let storeKey: string;
let s3: FakeS3;
let s3Dir: string;
let t: TestStack;

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");
const bridge = (container: string, field: "IPAddress" | "Gateway") =>
    execFileSync("docker", ["inspect", "-f", `{{.NetworkSettings.Networks.bridge.${field}}}`, container], { encoding: "utf8" }).trim();
const containerIp = (container: string) => bridge(container, "IPAddress");
const index = () => JSON.parse(ssh(app, "cat /opt/worker-bot/backups/backup_index.json").out).backups as any[];
const entry = (id: string) => index().find((b) => b.backup_id === id);
const localSha = (file: string) => ssh(app, `sha256sum ${file}`).out.split(" ")[0];
const storeFiles = () =>
    ssh(store, `ls -1 ${STORE_DIR}`).out.trim().split("\n").filter((f) => f !== "").sort();
const bucketFiles = () => [...s3.objects().keys()].filter((k) => k.startsWith("bot/")).map((k) => k.slice(4)).sort();
const idOf = (file: string) => path.basename(file, ".dump");

/** A manual backup; returns its exit code, path (stdout) and stderr. */
function backup(keep: number) {
    const r = ssh(app, `${BIN}/backup.sh --type manual --keep ${keep} --min-free-mb 100`, { allowFailure: true });
    return { code: r.code, file: r.out.trim(), err: r.err };
}

beforeAll(async () => {
    // The worker bot: an app with a database, the lightest example to ship.
    const images = buildExampleImages("worker-bot", ["v1"]);
    sandboxDown(APP);
    sandboxDown(STORE);
    app = sandboxUp(APP, { withDocker: true });
    store = sandboxUp(STORE);
    storeKey = fs.readFileSync(store.privateKeyPath, "utf8");
    s3Dir = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-os-s3-"));
    s3 = await spawnFakeS3({ dir: path.join(s3Dir, "objects"), host: bridge(app.container, "Gateway"), accessKeyId: S3_KEY_ID, secretAccessKey: S3_SECRET, region: "us-east-1", bucket: BUCKET });
    t = await exampleStack("e2e-offsite", "worker-bot", app, {
        release: "v1",
        images: images.v1,
        secrets: { TELEGRAM_BOT_TOKEN: "offsite-token" },
        extra: {
        "onevm:offsiteSsh": {
            value: JSON.stringify({ host: containerIp(store.container), port: 22, user: store.user, path: STORE_DIR, hostPublicKey: store.hostPublicKey }),
        },
        "onevm:offsiteSshPrivateKey": { value: storeKey, secret: true },
        "onevm:offsiteS3": { value: JSON.stringify({ endpoint: s3.url, region: "us-east-1", bucket: BUCKET, prefix: "bot/", allowHttp: true }) },
        "onevm:offsiteS3AccessKeyId": { value: S3_KEY_ID, secret: true },
        "onevm:offsiteS3SecretAccessKey": { value: S3_SECRET, secret: true },
        },
    });
    await t.stack.up({ onOutput: (o) => t.output.push(o) });
});

afterAll(async () => {
    if (t) {
        await removeStack(t);
    }
    await s3?.stop();
    if (s3Dir) {
        fs.rmSync(s3Dir, { recursive: true, force: true });
    }
    sandboxDown(APP);
    sandboxDown(STORE);
});

test("the targets' files are on the VM, 600, and pulumi up copied nothing yet", () => {
    const modes = ssh(app, "stat -c '%a %n' /opt/worker-bot/shared/offsite /opt/worker-bot/shared/offsite/*").out.trim().split("\n");
    expect(modes).toEqual([
        "700 /opt/worker-bot/shared/offsite",
        "600 /opt/worker-bot/shared/offsite/s3.curlrc",
        "600 /opt/worker-bot/shared/offsite/ssh_key",
        "600 /opt/worker-bot/shared/offsite/ssh_known_hosts",
        "600 /opt/worker-bot/shared/offsite/targets.json",
    ]);
    expect(bucketFiles()).toEqual([]);
});

let first: string;
let psLog: string;

test("a manual backup is copied to os-store and the bucket, verified by sha256 and recorded", () => {
    // Sample the VM's process list while the backup runs: keys must never be in an argv.
    const r = ssh(
        app,
        `( while :; do ps -eo args >>/tmp/ps.log; done ) & sampler=$!; ` +
            `${BIN}/backup.sh --type manual --keep 2 --min-free-mb 100; rc=$?; kill $sampler; echo "rc=$rc"`,
    );
    expect(r.out).toMatch(/rc=0\n$/);
    first = r.out.trim().split("\n")[0];
    expect(first).toMatch(/^\/opt\/worker-bot\/backups\/worker-bot_\d{8}_\d{6}_manual\.dump$/);
    psLog = ssh(app, "cat /tmp/ps.log").out;
    const name = path.basename(first);
    const sum = localSha(first);

    expect(storeFiles()).toEqual([name]);
    expect(ssh(store, `sha256sum ${STORE_DIR}/${name}`).out.split(" ")[0]).toBe(sum);
    expect(bucketFiles()).toEqual([name]);
    expect(sha256(s3.objects().get(`bot/${name}`)!)).toBe(sum);
    // Every request the bucket saw carried a valid signature made with the configured secret.
    expect(s3.requests().length).toBeGreaterThanOrEqual(3);
    expect(s3.requests().filter((q) => !q.signed)).toEqual([]);

    const copies = entry(idOf(first)).offsite_copies;
    expect(copies).toHaveLength(2);
    expect(copies).toEqual(
        expect.arrayContaining([
            expect.objectContaining({ target: "ssh", verified: true, sha256: sum, error: null, location: `sftp://deploy@${containerIp(store.container)}:22/${STORE_DIR}/${name}` }),
            expect.objectContaining({ target: "s3", verified: true, sha256: sum, error: null, location: `s3://${BUCKET}/bot/${name}` }),
        ]),
    );
});

test("the process list never showed a credential while sftp and curl ran", () => {
    expect(psLog).toMatch(/sftp -b - -P 22 -i \/opt\/worker-bot\/shared\/offsite\/ssh_key/);
    expect(psLog).not.toContain(S3_SECRET);
    expect(psLog).not.toContain(S3_KEY_ID);
});

test("retention keeps the newest --keep backups off-host too", () => {
    const more = [backup(2), backup(2)];
    expect(more.map((b) => b.code)).toEqual([0, 0]);
    const newest = more.map((b) => path.basename(b.file)).sort();
    expect(storeFiles()).toEqual(newest);
    expect(bucketFiles()).toEqual(newest);
    expect(newest).not.toContain(path.basename(first));
});

test("a target that is down: the local backup stays verified, exit 5, the failure logged and recorded", async () => {
    await s3.stop();
    const b = backup(2);
    await s3.start();
    expect(b.code).toBe(5);
    expect(b.file).toMatch(/_manual\.dump$/);
    const e = entry(idOf(b.file));
    expect(e.verified).toBe(true);
    expect(ssh(app, "cat /opt/worker-bot/backups/LAST_SUCCESS").out).toContain(b.file);
    const byTarget = Object.fromEntries(e.offsite_copies.map((c: any) => [c.target, c]));
    expect(byTarget.ssh).toMatchObject({ verified: true });
    expect(byTarget.s3).toMatchObject({ verified: false });
    expect(byTarget.s3.error).toMatch(/curl|connect/i);
    const log = ssh(app, "cat /opt/worker-bot/logs/offsite-copy.log").out;
    expect(log).toContain(`ERROR: [s3] off-host copy of ${path.basename(b.file)} failed`);
    expect(log).toMatch(/ERROR: 1 of 2 off-host copies of .* failed \(the local backup is unchanged\)/);
    expect(ssh(app, "cat /opt/worker-bot/logs/backup.log").out).toContain(`Backup complete: ${b.file}`);
});

test("a copy fetched back from os-store (and from the bucket) passes backup.sh --verify", () => {
    // The newest backup both targets hold (the bucket missed the one taken while it was down).
    const newestOnStore = storeFiles().filter((f) => bucketFiles().includes(f)).pop()!;
    expect(newestOnStore).toBeDefined();
    const id = idOf(newestOnStore);
    for (const from of ["ssh", "s3"]) {
        ssh(app, `rm /opt/worker-bot/backups/${newestOnStore}`);
        const fetched = ssh(app, `${BIN}/offsite-copy.sh --fetch ${id} --from ${from}`).out.trim();
        expect(fetched).toBe(`/opt/worker-bot/backups/${newestOnStore}`);
        expect(localSha(fetched)).toBe(entry(id).offsite_copies.find((c: any) => c.target === "ssh").sha256);
        expect(ssh(app, `${BIN}/backup.sh --verify ${id}; echo "rc=$?"`).out).toMatch(/rc=0\n$/);
    }
    // A fetched copy must match what the index recorded: a tampered one is discarded.
    ssh(store, `printf 'PGDMPtampered' > ${STORE_DIR}/${newestOnStore}`);
    ssh(app, `rm /opt/worker-bot/backups/${newestOnStore}`);
    const r = ssh(app, `${BIN}/offsite-copy.sh --fetch ${id} --from ssh`, { allowFailure: true });
    expect(r.code).toBe(5);
    expect(r.err).toMatch(/the index recorded [0-9a-f]{64}: discarded/);
    expect(ssh(app, `ls /opt/worker-bot/backups/${newestOnStore} 2>&1 || true`).out).toMatch(/No such file/);
});

test("a changed host key on the SSH target is refused, not learned", () => {
    ssh(app, "cp /opt/worker-bot/shared/offsite/ssh_known_hosts /tmp/kh && sed -i 's/ssh-ed25519 AAAA[^ ]*/ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/' /opt/worker-bot/shared/offsite/ssh_known_hosts");
    const b = backup(2);
    ssh(app, "cp /tmp/kh /opt/worker-bot/shared/offsite/ssh_known_hosts");
    expect(b.code).toBe(5);
    const e = entry(idOf(b.file));
    expect(e.offsite_copies.find((c: any) => c.target === "ssh")).toMatchObject({ verified: false });
    expect(storeFiles()).not.toContain(path.basename(b.file));
});

test("canaries: the off-host secrets never appear in engine output, state, VM logs or the process list", () => {
    const keyBody = storeKey.split("\n").filter((l) => l && !l.startsWith("-----")).join("");
    const canaries = [S3_SECRET, keyBody.slice(20, 60)];
    const engine = t.output.join("");
    const state = stateFiles(t.backendDir).map((f) => fs.readFileSync(f, "utf8")).join("\n");
    const logs = ssh(app, "cat /opt/worker-bot/logs/*.log").out;
    for (const c of canaries) {
        expect(engine).not.toContain(c);
        expect(state).not.toContain(c);
        expect(logs).not.toContain(c);
        expect(psLog).not.toContain(c);
    }
    // ...and they are really there, where they belong.
    expect(ssh(app, "cat /opt/worker-bot/shared/offsite/s3.curlrc").out).toContain(S3_SECRET.replace(/\\/g, "\\\\").replace(/"/g, '\\"'));
});

function stateFiles(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? stateFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}
