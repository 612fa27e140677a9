/**
 * `pulumi up` killed at several points of an activation: the VM stays on one coherent
 * release (current never dangling or half-switched); the README's recovery (cancel the
 * dead update's lock, refresh away its interrupted operations), run literally, leaves a
 * stack whose next `pulumi up` converges without a warning about the interruption.
 */
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { buildExampleImages, exampleStack, healthy, ReleaseImages, removeStack, ROOT, Sandbox, sandboxDown, sandboxUp, ssh, TestStack } from "./harness";

jest.setTimeout(2_400_000);

const NAME = "e2e-kill";
// The booking bot: image uploads, migrations and a web hand-over to be killed in.
const APP = "booking-bot";
let vm: Sandbox;
let t: TestStack;
let refs: ReleaseImages;

/**
 * Runs `pulumi up` for the stack as the operator would, and SIGKILLs the CLI's process
 * group `afterMs` after its output shows `phase` (or after 5 minutes). Resolves whether it
 * was killed. The official language host and plugins run in process groups of their own:
 * they outlive the CLI until their health check notices it is gone (up to 5 minutes), and
 * a remote command the command provider had started runs to its end meanwhile.
 */
function killedUp(phase: RegExp, afterMs: number): Promise<boolean> {
    const child = spawn("pulumi", ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", NAME], {
        cwd: ROOT,
        env: { ...process.env, PULUMI_BACKEND_URL: t.backendUrl, PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase" },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
    });
    const kill = () => {
        try {
            process.kill(-child.pid!, "SIGKILL");
        } catch {
            // Already finished: nothing to interrupt.
        }
    };
    let seen = "";
    let armed = false;
    child.stdout!.on("data", (d) => {
        seen += d;
        if (!armed && phase.test(seen)) {
            armed = true;
            setTimeout(kill, afterMs);
        }
    });
    child.stderr!.resume();
    return new Promise((resolve) => {
        const timer = setTimeout(kill, 300_000);
        child.on("exit", (_code, signal) => {
            clearTimeout(timer);
            resolve(signal === "SIGKILL");
        });
    });
}

/** README "Interrupted up": the operator's commands, literally (npm run pulumi -- …), for this stack. */
function readmeRecovery(): string {
    const env = { ...process.env, PULUMI_BACKEND_URL: t.backendUrl, PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase" };
    const run = (args: string[]) => execFileSync("npm", ["run", "-s", "pulumi", "--", ...args, "--stack", NAME], { cwd: ROOT, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return run(["cancel", "--yes"]) + run(["refresh", "--clear-pending-creates", "--yes"]);
}

/** What a killed up left in the file backend: its lock files and the interrupted operations. */
function leftBehind(): { locks: string[]; pending: string[] } {
    const lockDir = path.join(t.backendDir, ".pulumi", "locks");
    const locks = fs.existsSync(lockDir) ? fs.readdirSync(lockDir, { recursive: true }).map(String).filter((f) => f.endsWith(".json")) : [];
    const state = JSON.parse(fs.readFileSync(path.join(t.backendDir, ".pulumi", "stacks", "onevm", `${NAME}.json`), "utf8"));
    const pending = (state.checkpoint.latest?.pending_operations ?? []).map((o: { type: string; resource: { urn: string } }) => `${o.type} ${o.resource.urn.split("::").pop()}`);
    return { locks, pending };
}

/** current resolves to a complete release directory, whatever happened. */
function coherentRelease(): string {
    const r = ssh(vm, 'r=$(readlink -f /opt/booking-bot/current) && test -f "$r/COMPLETE" && test -f "$r/compose.yaml" && basename "$r"');
    return r.out.trim();
}

beforeAll(async () => {
    refs = buildExampleImages(APP, ["v1", "v2", "v3"]);
    sandboxDown(NAME);
    vm = sandboxUp(NAME, { withDocker: true });
    t = await exampleStack(NAME, APP, vm, { release: "v1", images: refs.v1, secrets: { TELEGRAM_BOT_TOKEN: "kill-test-token" } });
    await t.stack.up({ onOutput: (o) => t.output.push(o) });
});

afterAll(async () => {
    if (t) await removeStack(t);
    sandboxDown(NAME);
});

// Killed in different phases of the deploy, as the engine's output shows them: image
// upload (2 s in: the engine records a step's start in the state just after it shows it),
// migrations, the switch (the new app answers, current is about to move).
test.each([
    ["v2", "upload", /CopyToRemote release-image-\S+ creating/, 2000],
    ["v3", "migrate", /Running database migrations/, 0],
    ["v2", "switch", /passes the web checks/, 0],
])("killed while deploying %s (%s): coherent; after the README's recovery the next up converges without a warning", async (release, _phase, phase, afterMs) => {
    await t.stack.setConfig("onevm:releaseId", { value: release });
    await t.stack.setConfig("onevm:images", { value: JSON.stringify(refs[release]) });
    const killed = await killedUp(phase, afterMs);
    expect(killed).toBe(true);
    expect(["v1", "v2", "v3"]).toContain(coherentRelease());

    // The killed CLI left its lock and the operations it had started ("interrupted while ...").
    const left = leftBehind();
    console.log(`killed in ${_phase}: left behind ${JSON.stringify(left)}`);
    expect(left.locks).toHaveLength(1);
    expect(left.pending.length).toBeGreaterThan(0);
    readmeRecovery();
    expect(leftBehind()).toEqual({ locks: [], pending: [] });

    const out: string[] = [];
    const res = await t.stack.up({ onOutput: (o) => out.push(o) });
    t.output.push(...out);
    expect(res.summary.result).toBe("succeeded");
    // The next up runs clean: no word of the interrupted one (the engine's warning names
    // "pending operations from previous deployment ... interrupted while creating").
    expect(out.join("")).not.toMatch(/pending operations?|interrupted while|currently locked/i);
    expect(coherentRelease()).toBe(release);
    expect(healthy(vm, APP)).toBe(true);
    expect(ssh(vm, "curl -fsS http://127.0.0.1:8080/version").out).toContain(`"${release}"`);
});
