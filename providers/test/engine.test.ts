/**
 * Drives the real Pulumi engine (the CLI built by scripts/install-toolchain.sh) against the
 * plugins in providers/bin, with the official SDK classes, through the Automation API's
 * inline-program mode (no language host binary needed). The SSH "VM" is an in-process server.
 */
import * as pulumi from "@pulumi/pulumi";
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { local, remote } from "@pulumi/command";
import * as random from "@pulumi/random";
import * as tls from "@pulumi/tls";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { startSshServer, TestSshServer } from "./sshServer";
import { imageArchivePaths } from "../../lib/artifacts";
import { archiveAsset } from "../../components/release";

const REPO = path.resolve(__dirname, "../..");
const PLUGINS = path.join(REPO, "providers/bin");
const SDK_VERSION: string = require("@pulumi/pulumi/package.json").version;
const CLI_ROOT = path.join(process.env.ONEVM_CACHE ?? path.join(os.homedir(), ".cache/onevm"), `pulumi-v${SDK_VERSION}`);

jest.setTimeout(300_000);

let server: TestSshServer;
let tmp: string;
let stack: Stack;
/** What the program's trigger is set to on the next run. */
let trigger = "one";

function program(vm: string, bundle: string) {
    return async () => {
        const password = new random.RandomPassword("db-password", { length: 24, special: false });
        const key = new tls.PrivateKey("deploy-key", { algorithm: "ED25519" });
        const connection = {
            host: "127.0.0.1",
            port: server.port,
            user: "deploy",
            privateKey: key.privateKeyOpenssh,
            hostKey: server.hostKey,
        };
        const copy = new remote.CopyToRemote("bundle", {
            connection,
            source: new pulumi.asset.FileArchive(bundle),
            remotePath: path.join(vm, "releases"),
        });
        const cmd = new remote.Command(
            "install",
            {
                connection,
                create: 'printf %s "$PASSWORD" > "$VM/installed-$RUN"; echo "installed $RUN"',
                delete: 'echo "removed after: $PULUMI_COMMAND_STDOUT" >> "$VM/removed"',
                environment: { PASSWORD: password.result, VM: vm, RUN: trigger },
                triggers: [trigger],
            },
            { dependsOn: copy },
        );
        return { stdout: cmd.stdout, publicKey: key.publicKeyOpenssh, password: password.result };
    };
}

interface StackSpec {
    name: string;
    program: () => Promise<Record<string, unknown>>;
    /** Extra Pulumi.yaml lines. */
    yaml?: string[];
    /** Extra PATH entries for the CLI. */
    path?: string[];
}

async function newStack(spec: StackSpec): Promise<Stack> {
    const work = path.join(tmp, spec.name);
    fs.mkdirSync(work);
    fs.writeFileSync(path.join(work, "Pulumi.yaml"), [`name: ${spec.name}`, "runtime: nodejs", ...(spec.yaml ?? []), ""].join("\n"));
    return LocalWorkspace.createOrSelectStack(
        { stackName: "dev", projectName: spec.name, program: spec.program },
        {
            workDir: work,
            pulumiHome: path.join(tmp, "home"),
            pulumiCommand: await PulumiCommand.get({ root: CLI_ROOT }),
            envVars: {
                PULUMI_BACKEND_URL: `file://${path.join(tmp, "state")}`,
                PULUMI_CONFIG_PASSPHRASE: "test",
                PULUMI_SKIP_UPDATE_CHECK: "true",
                PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
                PATH: [...(spec.path ?? []), path.dirname(process.execPath), path.join(CLI_ROOT, "bin"), process.env.PATH].join(":"),
            },
        },
    );
}

beforeAll(async () => {
    if (!fs.existsSync(path.join(CLI_ROOT, "bin/pulumi"))) {
        throw new Error(`no Pulumi CLI at ${CLI_ROOT}: run scripts/install-toolchain.sh`);
    }
    server = await startSshServer({ user: "deploy" });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-engine-"));
    const [vm, bundle] = ["vm", "bundle"].map((d) => path.join(tmp, d));
    for (const d of [vm, bundle, path.join(tmp, "state"), path.join(tmp, "home")]) fs.mkdirSync(d);
    fs.writeFileSync(path.join(bundle, "compose.yaml"), "name: bot\n");
    stack = await newStack({
        name: "onevm-engine-test",
        program: program(vm, bundle),
        // What the project's Pulumi.yaml declares, so the engine uses these plugins and downloads nothing.
        yaml: ["plugins:", "  providers:", ...["command", "random", "tls"].flatMap((n) => [`    - name: ${n}`, `      path: ${PLUGINS}`])],
    });
});

afterAll(async () => {
    await server?.close();
});

const vmFile = (name: string) => path.join(tmp, "vm", name);

describe("the real engine with onevm's plugins", () => {
    test("preview runs nothing on the host", async () => {
        const preview = await stack.preview();
        expect(preview.changeSummary).toEqual({ create: 5 });
        expect(server.connections).toBe(0);
    });

    test("up creates everything; the command gets the secret through its environment", async () => {
        let cli = "";
        const up = await stack.up({ onOutput: (out) => (cli += out) });
        expect(up.summary.result).toBe("succeeded");
        // Secret because the command was given a secret it could have printed.
        expect(up.outputs.stdout).toEqual({ value: "installed one", secret: true });
        expect(up.outputs.password.secret).toBe(true);
        expect(fs.readFileSync(vmFile("installed-one"), "utf8")).toBe(up.outputs.password.value);
        expect(fs.readFileSync(vmFile("releases/bundle/compose.yaml"), "utf8")).toBe("name: bot\n");
        // tls.PrivateKey's OpenSSH key is what authenticated.
        expect(server.authenticatedKeys).toContain(up.outputs.publicKey.value.split(" ")[1].trim());
        expect(server.execs.join()).not.toContain(up.outputs.password.value);
        // The command's output reached the CLI through the engine's log; the secret did not.
        expect(cli).toContain("installed one");
        expect(cli).not.toContain(up.outputs.password.value);
    });

    test("a second up without changes changes nothing and opens no SSH connection", async () => {
        const before = server.connections;
        const up = await stack.up();
        expect(up.summary.result).toBe("succeeded");
        expect(up.summary.resourceChanges).toEqual({ same: 5 });
        expect(server.connections).toBe(before);
    });

    test("changed bundle content re-uploads it; a changed trigger replaces the command (create new, then delete old)", async () => {
        fs.writeFileSync(path.join(tmp, "bundle/compose.yaml"), "name: bot2\n");
        trigger = "two";
        const before = server.connections;
        expect((await stack.preview()).changeSummary).toEqual({ same: 3, update: 1, replace: 1 });
        expect(server.connections).toBe(before);
        const up = await stack.up();
        expect(up.summary.resourceChanges).toEqual({ same: 3, update: 1, replace: 1 });
        expect(fs.readFileSync(vmFile("releases/bundle/compose.yaml"), "utf8")).toBe("name: bot2\n");
        expect(fs.existsSync(vmFile("installed-two"))).toBe(true);
        expect(fs.readFileSync(vmFile("removed"), "utf8")).toBe("removed after: installed one\n");
    });

    test("destroy runs the delete command", async () => {
        const destroy = await stack.destroy();
        expect(destroy.summary.resourceChanges).toEqual({ delete: 5 });
        expect(fs.readFileSync(vmFile("removed"), "utf8")).toBe("removed after: installed one\nremoved after: installed two\n");
    });
});

describe("CopyToRemote of a big file already on the host", () => {
    test("is skipped while the remote copy and its sha256 sidecar match; a changed remote copy is sent again", async () => {
        const big = path.join(tmp, "image.tar");
        fs.writeFileSync(big, Buffer.alloc(2 << 20, "a"));
        const remoteFile = path.join(tmp, "vm", "image.tar");
        const sha = require("crypto").createHash("sha256").update(fs.readFileSync(big)).digest("hex");
        let copyTrigger = "one";
        const copies = await newStack({
            name: "onevm-bigcopy-test",
            program: async () => {
                const key = new tls.PrivateKey("key", { algorithm: "ED25519" });
                const connection = { host: "127.0.0.1", port: server.port, user: "deploy", privateKey: key.privateKeyOpenssh, hostKey: server.hostKey };
                new remote.CopyToRemote("image", { connection, source: new pulumi.asset.FileAsset(big), remotePath: remoteFile, triggers: [copyTrigger] });
                return {};
            },
            yaml: ["plugins:", "  providers:", ...["command", "tls"].flatMap((n) => [`    - name: ${n}`, `      path: ${PLUGINS}`])],
        });
        await copies.up();
        expect(fs.readFileSync(remoteFile).equals(fs.readFileSync(big))).toBe(true);
        expect(fs.readFileSync(`${remoteFile}.sha256`, "utf8")).toMatch(new RegExp(`^${sha}\n${2 << 20} \\d{4}-`));

        // Same content there: a replacement (new trigger) does not send it again.
        const old = new Date("2001-01-01T00:00:00Z");
        fs.utimesSync(remoteFile, old, old);
        copyTrigger = "two";
        expect((await copies.up()).summary.resourceChanges).toEqual({ same: 2, replace: 1 });
        expect(fs.statSync(remoteFile).mtime.getTime()).toBe(old.getTime());

        // The remote copy changed after its sidecar (same size): hashed again, differs, sent.
        fs.writeFileSync(remoteFile, Buffer.alloc(2 << 20, "b"));
        copyTrigger = "three";
        await copies.up();
        expect(fs.readFileSync(remoteFile).equals(fs.readFileSync(big))).toBe(true);
        expect(fs.readFileSync(`${remoteFile}.sha256`, "utf8")).toMatch(new RegExp(`^${sha}\n${2 << 20} \\d{4}-`));
        await copies.destroy();
    });
});

describe("an image archive with a recorded sha256 (build-images.sh's <archive>.sha256)", () => {
    test("the engine takes the record as the content hash instead of hashing the file; a stale record is ignored", async () => {
        const dir = path.join(tmp, "archives");
        fs.mkdirSync(dir);
        const file = path.join(dir, "image_t.tar");
        fs.writeFileSync(file, Buffer.alloc(1 << 20, "c"));
        const sha = require("crypto").createHash("sha256").update(fs.readFileSync(file)).digest("hex");
        const record = (hash: string) => fs.writeFileSync(`${file}.sha256`, `${hash}  image_t.tar\n`);
        const stack = await newStack({
            name: "onevm-recorded-hash-test",
            program: async () => {
                const key = new tls.PrivateKey("key", { algorithm: "ED25519" });
                const connection = { host: "127.0.0.1", port: server.port, user: "deploy", privateKey: key.privateKeyOpenssh, hostKey: server.hostKey };
                const [archive] = imageArchivePaths({ image: "onevm/image:t" }, dir);
                new remote.CopyToRemote("image", { connection, source: archiveAsset(archive), remotePath: path.join(tmp, "vm", "image_t.tar") });
                return {};
            },
            yaml: ["plugins:", "  providers:", ...["command", "tls"].flatMap((n) => [`    - name: ${n}`, `      path: ${PLUGINS}`])],
        });
        const sourceHash = async () => {
            const state = await stack.exportStack();
            return state.deployment.resources.find((r: { type: string }) => r.type === "command:remote:CopyToRemote").inputs.source.hash;
        };

        record(sha);
        await stack.up();
        expect(await sourceHash()).toBe(sha);
        expect((await stack.preview()).changeSummary).toEqual({ same: 3 });

        // A record that does not match the file: the engine believes it (it did not read the file).
        record("0".repeat(64));
        expect((await stack.preview()).changeSummary).toEqual({ same: 2, update: 1 });

        // The archive rewritten after that record: the record is ignored and the engine hashes the file.
        const later = new Date(Date.now() + 5_000);
        fs.utimesSync(file, later, later);
        expect((await stack.preview()).changeSummary).toEqual({ same: 3 });
        await stack.destroy();
    });
});

describe("plugins found on PATH instead of through Pulumi.yaml", () => {
    test("up and destroy work with the ambient plugins", async () => {
        const ambient = await newStack({
            name: "onevm-ambient-test",
            path: [PLUGINS],
            program: async () => {
                const pw = new random.RandomPassword("pw", { length: 8 });
                const key = new tls.PrivateKey("key", { algorithm: "ED25519" });
                const echo = new local.Command("echo", { create: "echo local", environment: { PW: pw.result } });
                return { out: echo.stdout, pub: key.publicKeyOpenssh };
            },
        });
        const up = await ambient.up();
        expect(up.outputs.out).toEqual({ value: "local", secret: true });
        expect(up.outputs.pub.value).toMatch(/^ssh-ed25519 /);
        expect((await ambient.destroy()).summary.resourceChanges).toEqual({ delete: 4 });
    });
});
