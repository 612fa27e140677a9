/**
 * Two stacks, one VM, with the real engine: two `pulumi up` for the same app at the same
 * moment (one wins, the other is refused before it changes anything), the host-wide
 * activation lock, and destroy releasing the claim for the other stack.
 */
import { buildExampleImages, exampleStack, healthy, removeStack, Sandbox, sandboxDown, sandboxUp, ssh, TestStack } from "./harness";

jest.setTimeout(1_800_000);

const VM = "cc-vm";
// The worker bot: an app with a database, the lightest example to ship twice.
const APP = "worker-bot";
let vm: Sandbox;
const stacks: Record<string, TestStack> = {};
let winner: string;
let loser: string;

/** Each stack's own secret value: tells whose .env is on the VM. */
const token = (name: string) => `token-of-${name}`;
const identity = (name: string) => `organization/onevm/${name}`;

type Outcome = { name: string; ok: boolean; error: string };
async function up(name: string): Promise<Outcome> {
    const t = stacks[name];
    try {
        await t.stack.up({ onOutput: (o) => t.output.push(o) });
        return { name, ok: true, error: "" };
    } catch (e) {
        return { name, ok: false, error: String(e) };
    }
}

/** The remote Commands/uploads a stack's state records: what it did on the VM. */
async function remoteResources(name: string): Promise<string[]> {
    const state = await stacks[name].stack.exportStack();
    return (state.deployment.resources ?? []).map((r: { type: string }) => r.type).filter((t: string) => t.startsWith("command:"));
}

const history = () =>
    ssh(vm, "cat /opt/worker-bot/state/history.jsonl").out.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));

beforeAll(async () => {
    const images = buildExampleImages(APP, ["v1"]);
    sandboxDown(VM);
    vm = sandboxUp(VM, { withDocker: true });
    for (const name of ["cc-a", "cc-b"]) {
        stacks[name] = await exampleStack(name, APP, vm, { release: "v1", images: images.v1, secrets: { TELEGRAM_BOT_TOKEN: token(name) } });
    }
});

afterAll(async () => {
    for (const t of Object.values(stacks)) await removeStack(t);
    sandboxDown(VM);
});

test("two stacks `up` the same app at the same moment: exactly one succeeds, the other is refused naming the owner", async () => {
    const outcomes = await Promise.all(["cc-a", "cc-b"].map(up));
    const won = outcomes.filter((o) => o.ok);
    expect(won).toHaveLength(1);
    winner = won[0].name;
    loser = outcomes.find((o) => !o.ok)!.name;
    const refusal = outcomes.find((o) => !o.ok)!.error;
    expect(refusal).toMatch(
        new RegExp(`app worker-bot on this host is managed by stack ${identity(winner)} \\(claimed \\d{4}-\\d\\d-\\d\\dT[\\d:]+Z\\); deploy from that stack, or pick another onevm:app`),
    );
    expect(ssh(vm, "sudo -n cat /opt/worker-bot/state/owner").out).toMatch(new RegExp(`^stack=${identity(winner)}\nclaimed_at=`));
});

test("the VM has one coherent release with the winner's secrets, and is healthy with the winner's DB password", () => {
    const r = ssh(vm, 'r=$(readlink -f /opt/worker-bot/current) && test -f "$r/COMPLETE" && basename "$r"');
    expect(r.out.trim()).toBe("v1");
    const env = ssh(vm, "cat /opt/worker-bot/shared/.env").out;
    expect(env).toContain(token(winner));
    expect(env).not.toContain(token(loser));
    // The worker reaches postgres with DATABASE_URL from .env (its healthcheck asks the database): the role has the winner's password.
    expect(healthy(vm, APP)).toBe(true);
    const lines = history();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ release: "v1", result: "success" });
});

test("the loser changed nothing: its state holds no remote step, the VM one tools version and one activation", async () => {
    expect(await remoteResources(loser)).toEqual([]);
    expect((await remoteResources(winner)).length).toBeGreaterThan(5);
    expect(ssh(vm, "ls /opt/worker-bot/tools | wc -l").out.trim()).toBe("1");
});

test("the loser's next `up` is refused again", async () => {
    const again = await up(loser);
    expect(again.ok).toBe(false);
    expect(again.error).toContain(`managed by stack ${identity(winner)}`);
    expect(history()).toHaveLength(1);
});

test("activations of different apps never interleave: activate.sh waits for the host's activation lock, naming the holder", () => {
    expect(ssh(vm, "stat -c %a /var/lib/onevm/activate.lock").out.trim()).toBe("666");
    // Another app's activation holds the host-wide lock for 20 s.
    ssh(vm, "nohup flock /var/lib/onevm/activate.lock sh -c 'echo pid=$$ app=other release=x1 > /var/lib/onevm/activate.lock; sleep 20; date -u +%Y-%m-%dT%H:%M:%SZ > /tmp/other.done' >/dev/null 2>&1 &");
    ssh(vm, "for i in $(seq 50); do grep -q app=other /var/lib/onevm/activate.lock && exit 0; sleep 0.2; done; exit 1");
    const busy = ssh(vm, "/opt/worker-bot/bin/activate.sh --release v1 --lock-wait 2", { allowFailure: true });
    expect(busy.code).toBe(4);
    expect(busy.err).toMatch(/lock \/var\/lib\/onevm\/activate\.lock still busy after 2s, held by: pid=\d+ app=other release=x1/);

    const waited = ssh(vm, "/opt/worker-bot/bin/activate.sh --release v1 --lock-wait 120");
    expect(waited.err).toMatch(/lock \/var\/lib\/onevm\/activate\.lock is held by: pid=\d+ app=other release=x1; waiting up to 120s/);
    const otherDone = ssh(vm, "cat /tmp/other.done").out.trim();
    const lines = history();
    const last = lines[lines.length - 1];
    expect(last.result).toBe("noop");
    // It ran only after the other app's activation had let go.
    expect(Date.parse(last.finished_at)).toBeGreaterThanOrEqual(Date.parse(otherDone));
});

test("uninstall for another stack than the owner is refused and removes nothing", () => {
    const r = ssh(vm, `sudo -n /opt/worker-bot/bin/uninstall.sh --app worker-bot --owner ${identity(loser)}`, { allowFailure: true });
    expect(r.code).toBe(5);
    expect(r.err).toContain(`managed by stack ${identity(winner)}, not ${identity(loser)}`);
    expect(healthy(vm, APP)).toBe(true);
});

test("destroying the owner releases the claim; then the other stack deploys and the app is healthy with its password", async () => {
    await stacks[winner].stack.destroy({ onOutput: (o) => stacks[winner].output.push(o) });
    expect(ssh(vm, "test -e /opt/worker-bot/state/owner", { allowFailure: true }).code).not.toBe(0);
    // Uninstall keeps the database volume, initialised with the old stack's password, which
    // set-db-password.sh cannot change while no postgres runs: start from an empty database,
    // as uninstall's own message says (`docker volume rm`).
    ssh(vm, "docker volume rm worker-bot_pgdata");

    const second = await up(loser);
    expect(second.error).toBe("");
    expect(ssh(vm, "sudo -n cat /opt/worker-bot/state/owner").out).toContain(`stack=${identity(loser)}\n`);
    expect(ssh(vm, "cat /opt/worker-bot/shared/.env").out).toContain(token(loser));
    expect(healthy(vm, APP)).toBe(true);
});
