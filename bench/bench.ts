/**
 * `npm run bench` (bench/run.sh drives it; bench/README.md explains the figures).
 *
 * `measure --root DIR --label NAME --out FILE [--noop-runs N]`: on a fresh sandbox VM, with
 * the checkout DIR's own program, harness (DIR/test/e2e/harness.ts) and Pulumi toolchain
 * (whatever DIR/scripts/env.sh put on PATH before this runs), deploys the booking bot
 * (examples/booking-bot) v1, then times, each as one `pulumi` CLI process from launch to
 * exit (what `npm run pulumi -- up --yes --skip-preview` makes an operator wait for):
 *   - the release switch v1 -> v2 and the rollback v2 -> v1 (`onevm:releaseId` and
 *     `onevm:images` set back), under a 20 Hz /health prober for the downtime;
 *   - N no-op `pulumi preview`s and no-op `pulumi up`s, alternated (every summary must
 *     read "N unchanged").
 * Each operation is split into phases from the engine's own events, read from the CLI's
 * --event-log as it is written (bench/report.ts: phases). Writes the figures as JSON.
 *
 * `report --before FILE --after FILE`: prints the one before/after table with the targets
 * and writes bench/results/latest.json.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import type * as Harness from "../test/e2e/harness";
import { probeOnce, Prober, ProbeSummary, ProbeTarget, summarize } from "./prober";
import { activationMilestones, median, millis, msFromLog, Phases, phases, renderTable, row, Row, seconds, textRow, TimedEvent } from "./report";

const INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 1000;
/** Probing before and after each `up`, so the switch is inside the window. */
const SETTLE_MS = 3000;
/** The next targets: a no-op preview within 2 s, a rollback within 15 s; no failed probe beyond 1 s at a switch. */
const TARGETS = { noopPreviewMs: 2000, rollbackMs: 15_000, downtimeMs: 1000 };
const APP = "booking-bot";
const RESULTS = path.join(__dirname, "results");

type H = typeof Harness;
type Sandbox = Harness.Sandbox;
type TestStack = Harness.TestStack;

interface SwitchResult {
    from: string;
    to: string;
    phases: Phases;
    probe: ProbeSummary;
    sshSessions: number;
}

interface Measurement {
    label: string;
    root: string;
    commit: string;
    pulumi: { cli: string; languageHost: string; plugins: string };
    load: { start: number[]; end: number[] };
    startedAt: string;
    finishedAt: string;
    sandboxBootMs: number;
    imageBuildMs: number;
    fresh: { wallMs: number; healthy: boolean; imageLoadMs: number | null; phases: Phases };
    switch: SwitchResult;
    rollback: SwitchResult;
    /** activate.sh's own milestones in the rollback (its log, whole seconds). */
    rollbackActivation: { atS: number; message: string }[];
    noop: { preview: Phases[]; up: Phases[]; previewSshSessions: number; upSshSessions: number };
    stateBytes: number;
}

function arg(name: string): string | undefined {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
}
function required(name: string): string {
    const v = arg(name);
    if (!v) throw new Error(`--${name} is required`);
    return v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const loadavg = () => os.loadavg().map((l) => Number(l.toFixed(2)));
let label = "";
const log = (msg: string) => process.stderr.write(`[bench ${label} ${new Date().toISOString()}] ${msg}\n`);

/** The same login count for both checkouts (the current harness's robust reading: waits for its own journal line). */
function acceptedLogins(h: H, vm: Sandbox): number {
    const script = [
        "own=$(echo \"$SSH_CLIENT\" | cut -d' ' -f2)",
        "accepted() { sudo -n journalctl -b -u ssh.service --no-pager -o cat | grep '^Accepted publickey'; }",
        "for i in $(seq 50); do accepted | grep -q \" port $own ssh2\" && break; sleep 0.2; done",
        "accepted | grep -c -v \" port $own ssh2\" || true",
    ].join("\n");
    return Number(h.ssh(vm, script).out.trim());
}

/**
 * One `pulumi` CLI process on the stack, from launch to exit, with the engine's events as
 * they arrive in its --event-log (polled every 20 ms; a line is stamped when read).
 */
async function cli(t: TestStack, args: string[]): Promise<{ out: string; phases: Phases }> {
    const ws = t.stack.workspace;
    const eventLog = path.join(os.tmpdir(), `onevm-bench-${process.pid}-${Date.now()}.jsonl`);
    const events: TimedEvent[] = [];
    let offset = 0;
    let partial = "";
    const drain = () => {
        let fd: number;
        try {
            fd = fs.openSync(eventLog, "r");
        } catch {
            return;
        }
        try {
            const buf = Buffer.alloc(1 << 20);
            for (;;) {
                const n = fs.readSync(fd, buf, 0, buf.length, offset);
                if (n <= 0) break;
                offset += n;
                partial += buf.subarray(0, n).toString("utf8");
            }
        } finally {
            fs.closeSync(fd);
        }
        const lines = partial.split("\n");
        partial = lines.pop() ?? "";
        const atMs = Date.now();
        for (const line of lines) {
            if (!line.trim()) continue;
            const e = JSON.parse(line);
            if (e.preludeEvent) events.push({ atMs, kind: "prelude" });
            else if (e.summaryEvent) events.push({ atMs, kind: "summary" });
            else if (e.resourcePreEvent) events.push({ atMs, kind: "pre", urn: e.resourcePreEvent.metadata.urn });
            else if (e.resOutputsEvent) events.push({ atMs, kind: "outputs", urn: e.resOutputsEvent.metadata.urn });
        }
    };
    const t0 = Date.now();
    const child = spawn("pulumi", [...args, "--stack", t.stack.name, "--non-interactive", "--color", "never", "--event-log", eventLog], {
        cwd: ws.workDir,
        // PULUMI_DEBUG_COMMANDS: the CLI takes --event-log only then (the Automation API sets it too).
        env: { ...process.env, ...ws.envVars, PULUMI_DEBUG_COMMANDS: "true" },
        stdio: ["ignore", "pipe", "pipe"],
    });
    const poll = setInterval(drain, 20);
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    const exitMs = Date.now();
    clearInterval(poll);
    drain();
    fs.rmSync(eventLog, { force: true });
    t.output.push(out);
    if (code !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${code}:\n${out.slice(-3000)}`);
    return { out, phases: phases(events, t0, exitMs) };
}

function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.listen(0, "127.0.0.1", () => {
            const port = (srv.address() as net.AddressInfo).port;
            srv.close(() => resolve(port));
        });
        srv.on("error", reject);
    });
}

/** Waits (at most 2 minutes) until the target answers a probe: the baseline before a switch. */
async function untilAnswers(target: ProbeTarget): Promise<void> {
    for (let i = 0; i < 240; i++) {
        if (await probeOnce(target, PROBE_TIMEOUT_MS).then(() => true, () => false)) return;
        await sleep(500);
    }
    throw new Error(`${target.protocol}://${target.host}:${target.port}${target.path} never answered`);
}

/**
 * An SSH local forward 127.0.0.1:<local> -> the VM's 127.0.0.1:8080 (the web service's
 * loopback port, behind onevm's proxy: nothing else is published), up once a probe answers.
 */
async function openTunnel(vm: Sandbox): Promise<{ port: number; proc: ChildProcess }> {
    const port = await freePort();
    const proc = spawn("ssh", [
        "-N", "-i", vm.privateKeyPath, "-p", String(vm.port),
        "-o", `UserKnownHostsFile=${vm.knownHostsPath}`, "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR",
        "-L", `127.0.0.1:${port}:127.0.0.1:8080`, `${vm.user}@${vm.host}`,
    ], { stdio: "ignore" });
    try {
        await untilAnswers({ protocol: "http", host: "127.0.0.1", port, path: "/health" });
    } catch (e) {
        proc.kill();
        throw e;
    }
    return { port, proc };
}

/** `pulumi up` to release `to` under the prober; SSH sessions the up opened. */
async function probedSwitch(h: H, t: TestStack, vm: Sandbox, target: ProbeTarget, from: string, to: string, images: Record<string, string>): Promise<SwitchResult> {
    await t.stack.setConfig("onevm:releaseId", { value: to });
    await t.stack.setConfig("onevm:images", { value: JSON.stringify(images) });
    const before = acceptedLogins(h, vm);
    const prober = new Prober(() => probeOnce(target, PROBE_TIMEOUT_MS), INTERVAL_MS);
    prober.start();
    await sleep(SETTLE_MS);
    const up = await cli(t, ["up", "--yes", "--skip-preview"]);
    await sleep(SETTLE_MS);
    const probe = summarize(await prober.stop(), INTERVAL_MS);
    const sshSessions = acceptedLogins(h, vm) - before - 1;
    const release = (await t.stack.outputs()).releaseId?.value;
    if (release !== to) throw new Error(`up to ${to} left release ${release}`);
    log(`${from} -> ${to}: ${JSON.stringify(up.phases)}; ${probe.failed}/${probe.probes} probes failed, longest gap ${probe.longestGapMs} ms${probe.firstError ? ` (${probe.firstError})` : ""}`);
    return { from, to, phases: up.phases, probe, sshSessions };
}

/** A stack deploying the example with the checkout's own harness (exampleStack, or what it was built from). */
async function appStack(h: H, name: string, vm: Sandbox, images: Record<string, string>): Promise<TestStack> {
    const secrets = { TELEGRAM_BOT_TOKEN: "bench-token" };
    if (typeof h.exampleStack === "function") return h.exampleStack(name, APP, vm, { release: "v1", images, secrets });
    // The checkout before the toolchain merge: exampleStack's parts, and the same proxy
    // image (the caddy:2 stand-in, saved by proxyArchive) as the current harness sets.
    return h.newStack(name, {
        ...h.exampleConfig(APP),
        ...h.stackConfig(vm, {}),
        "onevm:proxyImage": { value: "caddy:2" },
        "app:TELEGRAM_BOT_TOKEN": { value: secrets.TELEGRAM_BOT_TOKEN, secret: true },
        "onevm:releaseId": { value: "v1" },
        "onevm:images": { value: JSON.stringify(images) },
    });
}

function toolchain(): Measurement["pulumi"] {
    const which = (cmd: string) => {
        for (const dir of (process.env.PATH ?? "").split(":")) {
            const p = path.join(dir, cmd);
            if (fs.existsSync(p)) return p;
        }
        return "not on PATH";
    };
    const cliPath = which("pulumi");
    // The engine takes the language host beside its own binary first.
    const beside = path.join(path.dirname(fs.realpathSync(cliPath)), "pulumi-language-nodejs");
    const lh = fs.existsSync(beside) ? beside : which("pulumi-language-nodejs");
    const script = fs.existsSync(lh) && fs.readFileSync(lh).subarray(0, 2).toString() === "#!";
    return {
        cli: cliPath,
        languageHost: `${lh}${script ? " (a script: onevm's stand-in)" : " (a Go binary: the official one)"}`,
        plugins: process.env.ONEVM_BENCH_PLUGINS ?? "",
    };
}

async function measure(): Promise<void> {
    const root = path.resolve(required("root"));
    label = required("label");
    const out = required("out");
    const noopRuns = Number(arg("noop-runs") ?? 5);
    const h = require(path.join(root, "test", "e2e", "harness")) as H;
    const startedAt = new Date().toISOString();
    const loadStart = loadavg();
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    const pulumi = toolchain();
    log(`${root} at ${commit}; load ${loadStart.join(" ")}; ${JSON.stringify(pulumi)}`);

    const t1 = Date.now();
    const refs = h.buildExampleImages(APP, ["v1", "v2"]);
    // An older harness saves no proxy stand-in (the current one passes --proxy itself).
    if (h.PROXY_IMAGE === undefined) execFileSync("bash", ["scripts/build-images.sh", "--proxy", "--save", h.IMAGE_DIR], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
    const imageBuildMs = Date.now() - t1;
    const name = `bn-bench-${label}`;
    h.sandboxDown(name);
    const t2 = Date.now();
    const vm = h.sandboxUp(name, { withDocker: true });
    const sandboxBootMs = Date.now() - t2;
    let t: TestStack | undefined;
    let tunnel: ChildProcess | undefined;
    try {
        t = await appStack(h, name, vm, refs.v1);
        log("fresh sandbox -> v1");
        const fresh = await cli(t, ["up", "--yes", "--skip-preview"]);
        const healthy = h.ssh(vm, "curl -fsS http://127.0.0.1:8080/health", { allowFailure: true }).code === 0;
        const activateLog = h.ssh(vm, `cat /opt/${APP}/logs/activate.log`, { allowFailure: true }).out;
        const imageLoadMs = msFromLog(activateLog, /images present \(load\/pull took (\d+) ms\)/) ?? null;
        log(`fresh: ${JSON.stringify(fresh.phases)}, healthy ${healthy}`);

        const tn = await openTunnel(vm);
        tunnel = tn.proc;
        const target: ProbeTarget = { protocol: "http", host: "127.0.0.1", port: tn.port, path: "/health" };
        const sw = await probedSwitch(h, t, vm, target, "v1", "v2", refs.v2);
        const rb = await probedSwitch(h, t, vm, target, "v2", "v1", refs.v1);
        const rollbackActivation = activationMilestones(h.ssh(vm, `cat /opt/${APP}/logs/activate.log`).out);

        const preview: Phases[] = [];
        const up: Phases[] = [];
        let previewSshSessions = 0;
        let upSshSessions = 0;
        for (let i = 0; i < noopRuns; i++) {
            for (const what of ["preview", "up"] as const) {
                const before = acceptedLogins(h, vm);
                const r = await cli(t, what === "preview" ? ["preview"] : ["up", "--yes", "--skip-preview"]);
                const sessions = acceptedLogins(h, vm) - before - 1;
                // The summary must read "N unchanged" and nothing else.
                const lines = r.out.slice(r.out.lastIndexOf("Resources:")).split("\n").slice(1).map((l) => l.trim());
                const summary = lines.slice(0, lines.indexOf(""));
                if (summary.length !== 1 || !/^\d+ unchanged$/.test(summary[0])) throw new Error(`the no-op ${what} changed something: ${summary.join(", ")}`);
                if (what === "preview") {
                    preview.push(r.phases);
                    previewSshSessions = sessions;
                } else {
                    up.push(r.phases);
                    upSshSessions = sessions;
                }
            }
        }
        log(`no-op previews ${preview.map((p) => p.wallMs).join(", ")} ms; ups ${up.map((p) => p.wallMs).join(", ")} ms`);
        const stateBytes = stateSize(t.backendDir);
        fs.mkdirSync(RESULTS, { recursive: true });
        // The VM's own account of the run, kept beside the figures.
        fs.writeFileSync(path.join(RESULTS, `${label}-vm.log`), h.ssh(vm, `cat /opt/${APP}/logs/activate.log /opt/${APP}/logs/health-check.log`, { allowFailure: true }).out);
        const m: Measurement = {
            label, root, commit, pulumi, startedAt, finishedAt: new Date().toISOString(), load: { start: loadStart, end: loadavg() },
            sandboxBootMs, imageBuildMs, fresh: { wallMs: fresh.phases.wallMs, healthy, imageLoadMs, phases: fresh.phases },
            switch: sw, rollback: rb, rollbackActivation, noop: { preview, up, previewSshSessions, upSshSessions }, stateBytes,
        };
        fs.writeFileSync(out, JSON.stringify(m, null, 2) + "\n");
    } finally {
        tunnel?.kill();
        if (t) await h.removeStack(t);
        h.sandboxDown(name);
    }
}

/** Size of the stack's checkpoint (the file the engine rewrites at every step and at the end). */
function stateSize(dir: string): number {
    const files = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(d, e.name)) : [path.join(d, e.name)]));
    const stacks = files(dir).filter((f) => /\/\.pulumi\/stacks\/.*\.json$/.test(f) && !f.includes(".bak"));
    return stacks.reduce((n, f) => Math.max(n, fs.statSync(f).size), 0);
}

/** The median run's phases (by wall time). */
function medianRun(runs: Phases[]): Phases {
    const m = median(runs.map((r) => r.wallMs));
    return runs.find((r) => r.wallMs === m) as Phases;
}

function rows(b: Measurement, a: Measurement): Row[] {
    const out: Row[] = [];
    const phaseRows = (what: string, pb: Phases, pa: Phases, limit?: number, activation = true) => {
        out.push(row(`${what}: wall (launch to exit)`, pb.wallMs, pa.wallMs, seconds, limit));
        out.push(row(`  CLI start, stack + state load (to prelude)`, pb.cliStartMs, pa.cliStartMs));
        out.push(row(`  language host + program start (to 1st step)`, pb.programStartMs, pa.programStartMs));
        out.push(row(activation ? `  steps before activation (plugins start)` : `  resource steps (plugins start, diff)`, pb.beforeActivateMs, pa.beforeActivateMs));
        if (activation) out.push(row(`  activation (activate.sh on the VM)`, pb.activateMs, pa.activateMs));
        out.push(row(activation ? `  after activation to summary (state save)` : `  to summary (state save)`, pb.afterActivateMs, pa.afterActivateMs));
        out.push(row(`  summary to exit (plugins stop, CLI exit)`, pb.shutdownMs, pa.shutdownMs));
    };
    const n = b.noop.preview.length;
    phaseRows(`no-op preview (median of ${n})`, medianRun(b.noop.preview), medianRun(a.noop.preview), TARGETS.noopPreviewMs, false);
    phaseRows(`rollback v2 -> v1`, b.rollback.phases, a.rollback.phases, TARGETS.rollbackMs);
    phaseRows(`switch v1 -> v2`, b.switch.phases, a.switch.phases);
    for (const [what, sb, sa] of [["switch", b.switch, a.switch], ["rollback", b.rollback, a.rollback]] as const) {
        out.push(row(`${what}: failed probes x 50 ms`, sb.probe.downtimeMs, sa.probe.downtimeMs, millis, TARGETS.downtimeMs));
        out.push(textRow(`${what}: SSH sessions opened`, String(sb.sshSessions), String(sa.sshSessions)));
    }
    out.push(row(`no-op up (median of ${n})`, median(b.noop.up.map((p) => p.wallMs)), median(a.noop.up.map((p) => p.wallMs))));
    out.push(textRow(`no-op SSH sessions: preview / up`, `${b.noop.previewSshSessions} / ${b.noop.upSshSessions}`, `${a.noop.previewSshSessions} / ${a.noop.upSshSessions}`));
    out.push(textRow(`no-op preview runs`, b.noop.preview.map((p) => seconds(p.wallMs)).join(", "), a.noop.preview.map((p) => seconds(p.wallMs)).join(", ")));
    out.push(textRow(`resources in the stack / state file`, `${b.rollback.phases.steps} / ${Math.round(b.stateBytes / 1024)} KiB`, `${a.rollback.phases.steps} / ${Math.round(a.stateBytes / 1024)} KiB`));
    out.push(row(`fresh sandbox -> v1 healthy: wall`, b.fresh.wallMs, a.fresh.wallMs));
    out.push(textRow(`load average (1 5 15 min) at start / end`, `${b.load.start.join(" ")} / ${b.load.end.join(" ")}`, `${a.load.start.join(" ")} / ${a.load.end.join(" ")}`));
    return out;
}

/**
 * Against the targets, the after side's operations phase by phase with its slowest
 * resource steps (the table's rows give the same phases for both sides).
 */
function whereTimeGoes(b: Measurement, a: Measurement): string {
    const pct = (ms: number, of: number) => `${Math.round((100 * ms) / of)}%`;
    const ops: [string, Phases, Phases, number | undefined][] = [
        ["no-op preview (median run)", medianRun(b.noop.preview), medianRun(a.noop.preview), TARGETS.noopPreviewMs],
        ["rollback", b.rollback.phases, a.rollback.phases, TARGETS.rollbackMs],
        ["switch", b.switch.phases, a.switch.phases, undefined],
    ];
    const out = ["Where the time goes (after; before in brackets):"];
    for (const [what, pb, pa, target] of ops) {
        const over = target === undefined ? "" : pa.wallMs > target ? `, ${seconds(pa.wallMs - target)} over the ${seconds(target)} target` : `, within the ${seconds(target)} target`;
        out.push(`- ${what}: ${seconds(pa.wallMs)} [${seconds(pb.wallMs)}]${over}`);
        const parts: [string, number, number][] = [
            ["CLI start, state load", pa.cliStartMs, pb.cliStartMs],
            ["language host + program start", pa.programStartMs, pb.programStartMs],
            [pa.activateMs || pb.activateMs ? "steps before the activation" : "resource steps", pa.beforeActivateMs, pb.beforeActivateMs],
            ["activation", pa.activateMs, pb.activateMs],
            ["to the summary (state save)", pa.afterActivateMs, pb.afterActivateMs],
            ["CLI exit", pa.shutdownMs, pb.shutdownMs],
        ];
        out.push(`    ${parts.filter(([, x, y]) => x || y).map(([n, x, y]) => `${n} ${seconds(x)} (${pct(x, pa.wallMs)}) [${seconds(y)}]`).join("; ")}`);
        if (pa.waits?.length) out.push(`    longest waits for a step to start: ${pa.waits.map((s) => `${s.name} ${seconds(s.ms)}`).join(", ")}`);
        if (pb.waits?.length) out.push(`    [before: ${pb.waits.map((s) => `${s.name} ${seconds(s.ms)}`).join(", ")}]`);
        if (pa.slowest?.length) out.push(`    slowest steps: ${pa.slowest.map((s) => `${s.name} ${seconds(s.ms)}`).join(", ")}`);
        if (pb.slowest?.length) out.push(`    [before: ${pb.slowest.map((s) => `${s.name} ${seconds(s.ms)}`).join(", ")}]`);
    }
    for (const m of [a, b]) {
        if (m.rollbackActivation?.length) out.push(`- ${m.label}: activate.sh in the rollback, from its log (whole seconds): ${m.rollbackActivation.map((x) => `+${x.atS} s ${x.message}`).join("; ")}`);
    }
    return out.join("\n");
}

function report(): void {
    const b = JSON.parse(fs.readFileSync(required("before"), "utf8")) as Measurement;
    const a = JSON.parse(fs.readFileSync(required("after"), "utf8")) as Measurement;
    const table = renderTable(rows(b, a));
    const machine = `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "unknown"}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.release()}`;
    const sides = [b, a].map((m) => `${m.label}: commit ${m.commit}, ${m.startedAt} to ${m.finishedAt}; language host ${m.pulumi.languageHost}; plugins: ${m.pulumi.plugins}`);
    const text = [machine, ...sides, "", table, "", whereTimeGoes(b, a)].join("\n");
    fs.mkdirSync(RESULTS, { recursive: true });
    fs.writeFileSync(path.join(RESULTS, "latest.json"), JSON.stringify({ targets: TARGETS, probe: { intervalMs: INTERVAL_MS, timeoutMs: PROBE_TIMEOUT_MS }, before: b, after: a, table: text }, null, 2) + "\n");
    process.stdout.write(text + "\n");
}

const mode = process.argv[2];
(mode === "measure" ? measure() : mode === "report" ? Promise.resolve(report()) : Promise.reject(new Error("usage: bench.ts measure --root DIR --label NAME --out FILE [--noop-runs N] | report --before FILE --after FILE"))).catch((e) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
});
