/**
 * `pulumi up` killed at several points of an activation: the VM stays on one coherent
 * release (current never dangling or half-switched), and the next `pulumi up` converges.
 */
import { spawn } from "child_process";
import { buildImages, newStack, removeStack, ROOT, Sandbox, sandboxDown, sandboxUp, ssh, stackConfig, TestStack } from "./harness";

jest.setTimeout(2_400_000);

const NAME = "e2e-kill";
const HEALTH = '{"status":"ok","service":"bot-api"}';
let vm: Sandbox;
let t: TestStack;
let refs: Record<string, Record<string, string>>;

/** Runs `pulumi up` for the stack as the operator would, and SIGKILLs the whole process group after `ms`. */
function killedUp(ms: number): Promise<void> {
    const child = spawn("pulumi", ["up", "--yes", "--skip-preview", "--non-interactive", "--stack", NAME], {
        cwd: ROOT,
        env: { ...process.env, PULUMI_BACKEND_URL: t.backendUrl, PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase" },
        stdio: "ignore",
        detached: true,
    });
    return new Promise((resolve) => {
        const timer = setTimeout(() => {
            try {
                process.kill(-child.pid!, "SIGKILL");
            } catch {
                // Already finished: nothing to interrupt.
            }
        }, ms);
        child.on("exit", () => {
            clearTimeout(timer);
            resolve();
        });
    });
}

/** current resolves to a complete release directory, whatever happened. */
function coherentRelease(): string {
    const r = ssh(vm, 'r=$(readlink -f /opt/bot/current) && test -f "$r/COMPLETE" && test -f "$r/compose.yaml" && basename "$r"');
    return r.out.trim();
}

beforeAll(async () => {
    refs = buildImages(["v1", "v2", "v3"]);
    sandboxDown(NAME);
    vm = sandboxUp(NAME);
    t = await newStack(NAME, stackConfig(vm, {
        "onevm:releaseId": { value: "v1" },
        "onevm:images": { value: JSON.stringify(refs.v1) },
        "onevm:telegramBotToken": { value: "kill-test-token", secret: true },
    }));
    await t.stack.up({ onOutput: (o) => t.output.push(o) });
});

afterAll(async () => {
    if (t) await removeStack(t);
    sandboxDown(NAME);
});

// Delays chosen to land in different phases: upload, migrate/switch, start/health gate.
test.each([
    ["v2", 2500],
    ["v3", 7000],
    ["v2", 12000],
])("killed while deploying %s after %i ms: coherent, then the next up converges", async (release, ms) => {
    await t.stack.setConfig("onevm:releaseId", { value: release });
    await t.stack.setConfig("onevm:images", { value: JSON.stringify(refs[release]) });
    await killedUp(ms);
    expect(["v1", "v2", "v3"]).toContain(coherentRelease());

    // A killed CLI leaves Pulumi's state lock behind, and says so; `pulumi cancel` is the
    // operator's documented step. It fails when the CLI had already finished: nothing to release.
    await t.stack.cancel().catch(() => undefined);
    const res = await t.stack.up({ onOutput: (o) => t.output.push(o) });
    expect(res.summary.result).toBe("succeeded");
    expect(coherentRelease()).toBe(release);
    expect(ssh(vm, "curl -fsS http://127.0.0.1:8080/health").out.trim()).toBe(HEALTH);
    expect(ssh(vm, "curl -fsS http://127.0.0.1:8080/version").out).toContain(`"${release}"`);
});
