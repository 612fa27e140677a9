/**
 * End-to-end harness: fresh sandbox VMs (scripts/sandbox.sh), locally built images
 * (scripts/build-images.sh), and the real Pulumi engine through the Automation API with
 * a throwaway local backend.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigMap, LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { parse as parseYaml } from "yaml";

export const ROOT = path.resolve(__dirname, "..", "..");
export const IMAGE_DIR = path.join(ROOT, "build", "images");

export interface Sandbox {
    name: string;
    /** The sandbox's docker container (the "VM"). */
    container: string;
    host: string;
    port: number;
    user: string;
    privateKeyPath: string;
    hostPublicKey: string;
    knownHostsPath: string;
    httpPort: number;
    httpsPort: number;
}

function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
    return execFileSync(cmd, args, {
        cwd: ROOT,
        input: opts.input,
        encoding: "utf8",
        timeout: opts.timeoutMs ?? 600_000,
        stdio: ["pipe", "pipe", "inherit"],
    });
}

/**
 * Sandbox names are global on this machine; ONEVM_SANDBOX_PREFIX (e.g. "bn-") lets
 * engineers working in parallel run the same e2e file without removing each other's VM.
 */
const sandboxName = (name: string) => `${process.env.ONEVM_SANDBOX_PREFIX ?? ""}${name}`;

/**
 * A fresh sandbox VM. `withDocker`: Docker Engine and Compose v2 preinstalled, for tests
 * that do not test bootstrap-host.sh's Docker install (it then only checks them).
 */
export function sandboxUp(name: string, o: { withDocker?: boolean } = {}): Sandbox {
    return JSON.parse(run("bash", ["scripts/sandbox.sh", "up", sandboxName(name), ...(o.withDocker ? ["--with-docker"] : [])]));
}

export function sandboxReboot(name: string): Sandbox {
    return JSON.parse(run("bash", ["scripts/sandbox.sh", "reboot", sandboxName(name)]));
}

export function sandboxDown(name: string): void {
    spawnSync("bash", ["scripts/sandbox.sh", "down", sandboxName(name)], { cwd: ROOT, stdio: "inherit" });
}

/** Runs a shell command on the sandbox as the deploy user, host key pinned. */
export function ssh(vm: Sandbox, command: string, opts: { input?: string; allowFailure?: boolean } = {}): { code: number; out: string; err: string } {
    const r = spawnSync(
        "ssh",
        [
            "-i", vm.privateKeyPath,
            "-p", String(vm.port),
            "-o", `UserKnownHostsFile=${vm.knownHostsPath}`,
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR",
            `${vm.user}@${vm.host}`,
            command,
        ],
        { input: opts.input, encoding: "utf8", timeout: 300_000 },
    );
    const result = { code: r.status ?? -1, out: r.stdout ?? "", err: r.stderr ?? "" };
    if (result.code !== 0 && !opts.allowFailure) {
        throw new Error(`ssh ${vm.name}: '${command}' exited ${result.code}: ${result.err}`);
    }
    return result;
}

/** Per release ID, the images that change per release (what onevm:images takes). */
export type ReleaseImages = Record<string, Record<string, string>>;

/**
 * Builds an example's releases (scripts/build-images.sh, Docker's layer cache makes a
 * rebuild take seconds) and saves every image it uses as an archive for `archive`
 * transport, the proxy's stand-in (PROXY_IMAGE) included.
 */
export function buildExampleImages(example: string, releases: string[]): ReleaseImages {
    const out = run("bash", ["scripts/build-images.sh", "--example", example, ...releases.flatMap((r) => ["--release", r]), "--proxy", "--save", IMAGE_DIR], {
        timeoutMs: 1_800_000,
    });
    const objects = out
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l));
    if (objects.length !== releases.length) {
        throw new Error(`expected ${releases.length} image sets from build-images.sh, got: ${out}`);
    }
    return Object.fromEntries(releases.map((r, i) => [r, objects[i]]));
}

/** The example's own stack config (examples/NAME/stack.yaml), as the Automation API takes it. */
export function exampleConfig(example: string): ConfigMap {
    const doc = parseYaml(fs.readFileSync(path.join(ROOT, "examples", example, "stack.yaml"), "utf8")) as { config: Record<string, unknown> };
    return Object.fromEntries(
        Object.entries(doc.config).map(([key, value]) => [key, { value: typeof value === "string" ? value : JSON.stringify(value) }]),
    );
}

export interface TestStack {
    stack: Stack;
    backendDir: string;
    /** PULUMI_BACKEND_URL of that directory. */
    backendUrl: string;
    /** Everything the engine printed, across all operations: for canary checks. */
    output: string[];
}

export async function newStack(stackName: string, config: ConfigMap): Promise<TestStack> {
    const backendDir = fs.mkdtempSync(path.join(os.tmpdir(), `onevm-${stackName}-`));
    const backendUrl = fileBackendUrl(backendDir);
    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(process.env.ONEVM_PULUMI_BIN ?? "") });
    const stack = await LocalWorkspace.createOrSelectStack(
        { stackName, workDir: ROOT },
        {
            pulumiCommand,
            envVars: { PULUMI_BACKEND_URL: backendUrl, PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase" },
        },
    );
    await stack.setAllConfig(config);
    return { stack, backendDir, backendUrl, output: [] };
}

/**
 * A file state backend without the ".attrs" sidecars (as scripts/env.sh sets it): those are
 * rewritten in place, and the program's read of its own stack (StackReference self) could
 * catch one empty during a checkpoint write ("failed to load checkpoint: EOF").
 */
export function fileBackendUrl(dir: string): string {
    return `file://${dir}?metadata=skip`;
}

/** The stand-in of the official caddy:2 image the tests run as onevm's proxy (no registry here). */
export const PROXY_IMAGE = "caddy:2";

export function stackConfig(vm: Sandbox, extra: ConfigMap): ConfigMap {
    return {
        "onevm:proxyImage": { value: PROXY_IMAGE },
        "onevm:host": { value: vm.host },
        "onevm:sshPort": { value: String(vm.port) },
        "onevm:sshUser": { value: vm.user },
        "onevm:sshPrivateKey": { value: fs.readFileSync(vm.privateKeyPath, "utf8"), secret: true },
        "onevm:hostPublicKey": { value: vm.hostPublicKey },
        "onevm:imageTransport": { value: "archive" },
        "onevm:imageArchiveDir": { value: IMAGE_DIR },
        "onevm:backupMinFreeMb": { value: "100" },
        "onevm:operator": { value: "e2e" },
        ...extra,
    };
}

/**
 * SSH logins sshd has accepted since boot, this query's own login excluded: two readings
 * around an operation differ by 1 (the first reading's login) exactly when the operation
 * opened no SSH session. Under load sshd's journal lines arrive late, so a reading first
 * waits (up to 10 s) for its own login's line: the lines of earlier logins came before it.
 */
export function acceptedLogins(vm: Sandbox): number {
    const r = ssh(vm, ACCEPTED_LOGINS_EXCEPT_OWN);
    return Number(r.out.trim());
}
/** Shell run on the VM: counts sshd's "Accepted publickey" journal lines, except this session's (by its client port). */
export const ACCEPTED_LOGINS_EXCEPT_OWN = [
    "own=$(echo \"$SSH_CLIENT\" | cut -d' ' -f2)",
    "accepted() { sudo -n journalctl -b -u ssh.service --no-pager -o cat | grep '^Accepted publickey'; }",
    "for i in $(seq 50); do accepted | grep -q \" port $own ssh2\" && break; sleep 0.2; done",
    "accepted | grep -c -v \" port $own ssh2\" || true",
].join("\n");

export async function removeStack(t: TestStack): Promise<void> {
    // ONEVM_E2E_OUTPUT_DIR: keep everything the engine printed, one file per stack (debugging).
    if (process.env.ONEVM_E2E_OUTPUT_DIR) {
        fs.mkdirSync(process.env.ONEVM_E2E_OUTPUT_DIR, { recursive: true });
        fs.writeFileSync(path.join(process.env.ONEVM_E2E_OUTPUT_DIR, `${t.stack.name}.log`), t.output.join(""));
    }
    await t.stack.workspace.removeStack(t.stack.name, { force: true }).catch(() => undefined);
    fs.rmSync(t.backendDir, { recursive: true, force: true });
    fs.rmSync(path.join(ROOT, `Pulumi.${t.stack.name}.yaml`), { force: true });
}

/**
 * A stack that deploys an example to a sandbox VM by archive transport: the example's
 * stack.yaml, the VM's connection, the secret values (app:KEY), a release and its images.
 */
export async function exampleStack(
    name: string,
    example: string,
    vm: Sandbox,
    o: { release: string; images: Record<string, string>; secrets: Record<string, string>; extra?: ConfigMap },
): Promise<TestStack> {
    return newStack(name, {
        ...exampleConfig(example),
        ...stackConfig(vm, {}),
        ...Object.fromEntries(Object.entries(o.secrets).map(([k, v]) => [`app:${k}`, { value: v, secret: true }])),
        "onevm:releaseId": { value: o.release },
        "onevm:images": { value: JSON.stringify(o.images) },
        ...o.extra,
    });
}

/** One attempt of the app's health gate on the VM (health-check.sh exit 0). */
export function healthy(vm: Sandbox, app: string): boolean {
    return ssh(vm, `/opt/${app}/bin/health-check.sh --retries 1`, { allowFailure: true }).code === 0;
}
