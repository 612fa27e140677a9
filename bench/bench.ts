/**
 * `npm run bench` (issue 7): on fresh sandbox VMs with the real engine, in one run,
 *   1. fresh sandbox -> healthy stack, split into package installs, image work and the rest;
 *   2. release switch v1 -> v2 and 3. rollback by config v2 -> v1: `pulumi up` wall time (launch
 *      to the engine's summary, as `pulumi up --yes --skip-preview` takes it; the Automation
 *      API's extra `stack output` and `stack history` calls are reported beside it) and
 *      the downtime a 20 Hz /health prober sees from this host;
 *   4. a no-op `pulumi up` against `pulumi preview`, and SSH sessions per activation;
 *   5. the seed runbook's figures beside them.
 * Scenario "default" probes the app's loopback port (127.0.0.1:8080 on the VM, served by
 * the loopback proxy, reached through an SSH port forward opened before the switch,
 * because the default path publishes nothing beyond the VM's loopback); "noproxy" the
 * same with `onevm:loopbackProxy: false` (bot-api publishes the port itself, plain
 * recreate); "tls" probes the Caddy proxy on the sandbox's published https port. Writes
 * bench/results/latest.json (and each VM's activate/health-check logs to
 * bench/results/<scenario>-vm.log, with the proxy's warnings, errors and failed health checks) and prints the table.
 * Usage: npm run bench [-- --only default|noproxy|tls] [--noop-runs N]
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { EngineEvent } from "@pulumi/pulumi/automation";
import { acceptedLogins, buildExampleImages, exampleStack, removeStack, ROOT, Sandbox, sandboxDown, sandboxUp, ssh, TestStack } from "../test/e2e/harness";
import { Probe, probeOnce, Prober, ProbeSummary, ProbeTarget, summarize } from "./prober";
import { infoRow, Interval, millis, msFromLog, renderTable, Row, seconds, targetRow, unionMs } from "./report";

const INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 1000;
/** Probing before and after each `up`, so the switch is inside the window. */
const SETTLE_MS = 3000;
const DOMAIN = "bot.onevm.test";
const TARGETS = { downtimeMs: 1000, rollbackWallMs: 30_000, noopRatio: 1.3 };
const SEED = {
    deploy: "5-10 min per deploy, 30-60 s downtime",
    rollback: "3-5 min",
    zeroDowntime: "blue-green: 15-20 min per deploy (not set up); Kamal: 0 s via its proxy",
};

const SCENARIOS = ["default", "noproxy", "tls"] as const;
type Scenario = (typeof SCENARIOS)[number];

interface SwitchResult {
    from: string;
    to: string;
    /**
     * What the operator waits for: from launching `pulumi up --yes --skip-preview` to the
     * engine's summary event (update done, state saved).
     */
    upWallMs: number;
    /** The whole Automation API `up()` call: it also runs `stack output` and `stack history` afterwards. */
    automationUpMs: number;
    /** The activation command's span in the engine (activate.sh on the VM), and what came before it. */
    activateMs: number | null;
    beforeActivateMs: number | null;
    probe: ProbeSummary;
    sshSessions: number;
}

interface ScenarioResult {
    scenario: Scenario;
    sandboxBootMs: number;
    fresh: {
        upWallMs: number;
        packageInstallMs: number | null;
        imageUploadMs: number;
        imageLoadMs: number | null;
        onevmOwnMs: number;
        healthy: boolean;
    };
    switch: SwitchResult;
    rollback: SwitchResult;
    noop?: { previewMs: number[]; upMs: number[]; ratio: number; upSshSessions: number; previewSshSessions: number };
}

function arg(name: string): string | undefined {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString()}] ${msg}\n`);

function machine() {
    return {
        date: new Date().toISOString(),
        nproc: os.cpus().length,
        cpu: os.cpus()[0]?.model ?? "unknown",
        memoryGiB: Math.round(os.totalmem() / 2 ** 30),
        kernel: execFileSync("uname", ["-sr"], { encoding: "utf8" }).trim(),
        loadAvgAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
    };
}

/**
 * Per-resource engine timeline (ms since the epoch), keyed by URN, from the event stream:
 * from the first step's start to the end of that step. A replacement emits more steps for
 * the same URN (create-replacement, replace, delete-original): only the first one counts.
 * `summaryMs`: when the engine reported the update done.
 */
function timeline() {
    const spans = new Map<string, Interval & { done: boolean }>();
    let summaryMs: number | undefined;
    const onEvent = (e: EngineEvent) => {
        const now = Date.now();
        if (e.summaryEvent) summaryMs = now;
        const started = e.resourcePreEvent?.metadata.urn;
        if (started && !spans.has(started)) spans.set(started, { startMs: now, endMs: now, done: false });
        const span = spans.get(e.resOutputsEvent?.metadata.urn ?? "");
        if (span && !span.done) Object.assign(span, { endMs: now, done: true });
    };
    const matching = (re: RegExp) => [...spans].filter(([urn]) => re.test(urn)).map(([, s]) => s);
    return { onEvent, matching, summaryMs: () => summaryMs };
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
    const t0 = Date.now();
    const r = await f();
    return [r, Date.now() - t0];
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

/** An SSH local forward 127.0.0.1:<local> -> the VM's 127.0.0.1:8080, up once a probe answers. */
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

/** Waits (at most 2 minutes) until the target answers a probe: the baseline before a switch. */
async function untilAnswers(target: ProbeTarget): Promise<void> {
    for (let i = 0; i < 240; i++) {
        if (await probeOnce(target, PROBE_TIMEOUT_MS).then(() => true, () => false)) return;
        await sleep(500);
    }
    throw new Error(`${target.protocol}://${target.host}:${target.port}${target.path} never answered`);
}

/**
 * One CLI command on the stack, timed from spawn to exit: what an operator waits for.
 * (The Automation API's `up()` also runs `stack output` and `stack history` afterwards,
 * two more CLI starts that `preview()` does not pay, so it would skew the ratio.)
 */
async function timedCli(t: TestStack, args: string[]): Promise<[string, number]> {
    const ws = t.stack.workspace;
    const env = { ...process.env, ...ws.envVars };
    return timed(async () => {
        const out = execFileSync("pulumi", [...args, "--stack", t.stack.name, "--non-interactive", "--color", "never"], { cwd: ws.workDir, env, encoding: "utf8", maxBuffer: 64 << 20 });
        t.output.push(out);
        return out;
    });
}

async function deploy(t: TestStack, release: string, images: Record<string, string>) {
    await t.stack.setConfig("onevm:releaseId", { value: release });
    await t.stack.setConfig("onevm:images", { value: JSON.stringify(images) });
}

/** `pulumi up` to `to` under the prober; SSH sessions the up opened (the reading's own login excluded). */
async function probedSwitch(t: TestStack, vm: Sandbox, target: ProbeTarget, from: string, to: string, images: Record<string, string>): Promise<SwitchResult> {
    await deploy(t, to, images);
    const before = acceptedLogins(vm);
    const prober = new Prober(() => probeOnce(target, PROBE_TIMEOUT_MS), INTERVAL_MS);
    prober.start();
    await sleep(SETTLE_MS);
    const engine = timeline();
    const t0 = Date.now();
    const [res, automationUpMs] = await timed(() => t.stack.up({ onOutput: (o) => t.output.push(o), onEvent: engine.onEvent }));
    const summaryMs = engine.summaryMs();
    if (summaryMs === undefined) throw new Error(`up to ${to} sent no summary event`);
    const upWallMs = summaryMs - t0;
    const activate = engine.matching(/::[^:]*-activate$/)[0];
    await sleep(SETTLE_MS);
    const probes: Probe[] = await prober.stop();
    const sshSessions = acceptedLogins(vm) - before - 1;
    if (res.outputs.releaseId.value !== to) throw new Error(`up to ${to} left release ${res.outputs.releaseId.value}`);
    const probe = summarize(probes, INTERVAL_MS);
    log(`${from} -> ${to}: up ${seconds(upWallMs)} (Automation API call ${seconds(automationUpMs)}), ${probe.failed}/${probe.probes} probes failed, longest gap ${probe.longestGapMs} ms${probe.firstError ? ` (${probe.firstError})` : ""}`);
    const activateMs = activate ? activate.endMs - activate.startMs : null;
    const beforeActivateMs = activate ? activate.startMs - t0 : null;
    return { from, to, upWallMs, automationUpMs, activateMs, beforeActivateMs, probe, sshSessions };
}

/** The app the bench deploys: the booking bot (examples/booking-bot). */
const APP = "booking-bot";

async function runScenario(scenario: Scenario, refs: Record<string, Record<string, string>>, noopRuns: number): Promise<ScenarioResult> {
    const name = `bn-bench-${scenario}`;
    sandboxDown(name);
    const [vm, sandboxBootMs] = await timed(async () => sandboxUp(name));
    let t: TestStack | undefined;
    let tunnel: ChildProcess | undefined;
    try {
        const scenarioConfig: Record<string, Record<string, { value: string }>> = {
            default: {},
            noproxy: { "onevm:loopbackProxy": { value: "false" } },
            tls: { "onevm:tlsIngress": { value: "true" }, "onevm:tlsMode": { value: "certificate" }, "onevm:tlsDomain": { value: DOMAIN } },
        };
        t = await exampleStack(name, APP, vm, {
            release: "v1",
            images: refs.v1,
            secrets: { TELEGRAM_BOT_TOKEN: "bench-token" },
            extra: { "onevm:proxyImage": { value: "caddy:2" }, ...scenarioConfig[scenario] },
        });
        const stack = t;

        log(`${scenario}: fresh sandbox -> healthy stack`);
        const engine = timeline();
        const [fresh, upWallMs] = await timed(() => stack.stack.up({ onOutput: (o) => stack.output.push(o), onEvent: engine.onEvent }));
        const healthy = ssh(vm, "curl -fsS http://127.0.0.1:8080/health", { allowFailure: true }).code === 0;
        const logs = ssh(vm, "cat /opt/booking-bot/logs/bootstrap-host.log /opt/booking-bot/logs/activate.log").out;
        const packageInstallMs = msFromLog(logs, /package installs \(apt-get update \+ install\) took (\d+) ms/) ?? null;
        const imageLoadMs = msFromLog(logs, /images present \(load\/pull took (\d+) ms\)/) ?? null;
        // apt runs first inside the bootstrap command: its interval starts with that resource's.
        const bootstrap = engine.matching(/::[^:]*-bootstrap$/)[0];
        const uploads = engine.matching(/::[^:]*-image-[^:]*$/);
        const aptSpan = bootstrap && packageInstallMs ? [{ startMs: bootstrap.startMs, endMs: bootstrap.startMs + packageInstallMs }] : [];
        const imageUploadMs = unionMs(uploads);
        const outsideOnevm = unionMs([...aptSpan, ...uploads]) + (imageLoadMs ?? 0);
        const freshResult = { upWallMs, packageInstallMs, imageUploadMs, imageLoadMs, onevmOwnMs: upWallMs - outsideOnevm, healthy };
        log(`${scenario}: fresh ${JSON.stringify(freshResult)}`);

        let target: ProbeTarget;
        if (scenario === "tls") {
            target = { protocol: "https", host: "127.0.0.1", port: vm.httpsPort, path: "/health", servername: DOMAIN, ca: fresh.outputs.tlsCaCertificate.value as string };
            await untilAnswers(target);
        } else {
            const tn = await openTunnel(vm);
            tunnel = tn.proc;
            target = { protocol: "http", host: "127.0.0.1", port: tn.port, path: "/health" };
        }
        const sw = await probedSwitch(stack, vm, target, "v1", "v2", refs.v2);
        const rb = await probedSwitch(stack, vm, target, "v2", "v1", refs.v1);

        let noop: ScenarioResult["noop"];
        if (noopRuns > 0) {
            const previewMs: number[] = [];
            const upMs: number[] = [];
            let upSshSessions = 0;
            let previewSshSessions = 0;
            for (let i = 0; i < noopRuns; i++) {
                let before = acceptedLogins(vm);
                const [pv, p] = await timedCli(stack, ["preview"]);
                previewSshSessions = acceptedLogins(vm) - before - 1;
                before = acceptedLogins(vm);
                const [up, u] = await timedCli(stack, ["up", "--yes", "--skip-preview"]);
                upSshSessions = acceptedLogins(vm) - before - 1;
                // Both summaries must read "N unchanged" and nothing else.
                for (const [what, out] of [["preview", pv], ["up", up]]) {
                    const lines = out.slice(out.lastIndexOf("Resources:")).split("\n").slice(1).map((l) => l.trim());
                    const summary = lines.slice(0, lines.indexOf(""));
                    if (summary.length !== 1 || !/^\d+ unchanged$/.test(summary[0])) {
                        throw new Error(`the no-op ${what} changed something: ${summary.join(", ")}`);
                    }
                }
                previewMs.push(p);
                upMs.push(u);
            }
            noop = { previewMs, upMs, ratio: median(upMs) / median(previewMs), upSshSessions, previewSshSessions };
            log(`${scenario}: no-op ${JSON.stringify(noop)}`);
        }
        // The VM's own account of the run, kept beside the figures.
        fs.writeFileSync(path.join(ROOT, "bench/results", `${scenario}-vm.log`), ssh(vm, "cat /opt/booking-bot/logs/activate.log /opt/booking-bot/logs/health-check.log; echo '== proxy: warnings, errors, failed health checks'; docker logs $(docker ps -aq --filter label=com.docker.compose.service=onevm-proxy) 2>&1 | grep -E '\"level\":\"(warn|error)\"|health_checker' || true").out);
        return { scenario, sandboxBootMs, fresh: freshResult, switch: sw, rollback: rb, noop };
    } finally {
        tunnel?.kill();
        if (t) await removeStack(t);
        sandboxDown(name);
    }
}

function rows(results: ScenarioResult[], imageBuildMs: number): Row[] {
    const out: Row[] = [infoRow("host: build + save image archives (docker cache as found)", seconds(imageBuildMs))];
    for (const r of results) {
        const p = `[${r.scenario}]`;
        const f = r.fresh;
        out.push(
            infoRow(`${p} sandbox boot (stand-in for VM creation)`, seconds(r.sandboxBootMs)),
            infoRow(`${p} fresh sandbox -> healthy: pulumi up wall`, seconds(f.upWallMs) + (f.healthy ? "" : " (NOT healthy)"), SEED.deploy),
            infoRow(`${p}   of which package installs (apt, on VM)`, f.packageInstallMs === null ? "n/a" : seconds(f.packageInstallMs)),
            infoRow(`${p}   of which image upload (engine, parallel spans)`, seconds(f.imageUploadMs)),
            infoRow(`${p}   of which docker load (on VM)`, f.imageLoadMs === null ? "n/a" : seconds(f.imageLoadMs)),
            infoRow(`${p}   onevm's own (engine, ssh, scripts, app start)`, seconds(f.onevmOwnMs)),
        );
        const zero = r.scenario === "tls";
        for (const [what, s] of [["switch", r.switch], ["rollback", r.rollback]] as const) {
            const label = `${p} ${what} ${s.from} -> ${s.to}`;
            out.push(
                what === "rollback"
                    ? targetRow(`${label}: pulumi up wall`, s.upWallMs, TARGETS.rollbackWallMs, seconds, SEED.rollback)
                    : infoRow(`${label}: pulumi up wall`, seconds(s.upWallMs), SEED.deploy),
                infoRow(`${label}:   the Automation API's up() call (+ stack output, history)`, seconds(s.automationUpMs)),
                zero
                    ? targetRow(`${label}: failed probes x 50 ms`, s.probe.downtimeMs, 0, millis, SEED.zeroDowntime, "0 ms (proxy path)")
                    : targetRow(`${label}: failed probes x 50 ms`, s.probe.downtimeMs, TARGETS.downtimeMs, millis, what === "switch" ? "30-60 s" : ""),
                infoRow(`${label}:   engine before activate.sh / activate.sh`, `${s.beforeActivateMs === null ? "n/a" : seconds(s.beforeActivateMs)} / ${s.activateMs === null ? "n/a" : seconds(s.activateMs)}`),
                infoRow(`${label}: longest gap / slowest ok probe`, `${millis(s.probe.longestGapMs)} / ${millis(s.probe.maxLatencyMs)}`, `${s.probe.failed}/${s.probe.probes} failed`),
                infoRow(`${label}: SSH sessions opened by the up`, String(s.sshSessions)),
            );
        }
        if (r.noop) {
            out.push(
                infoRow(`${p} no-op preview (median of ${r.noop.previewMs.length})`, seconds(median(r.noop.previewMs))),
                infoRow(`${p} no-op up (median of ${r.noop.upMs.length})`, seconds(median(r.noop.upMs))),
                targetRow(`${p} no-op up / preview`, r.noop.ratio, TARGETS.noopRatio, (n) => `${n.toFixed(2)}x`, ""),
                infoRow(`${p} SSH sessions: no-op up / preview`, `${r.noop.upSshSessions} / ${r.noop.previewSshSessions}`),
            );
        }
    }
    return out;
}

async function main() {
    const only = arg("only");
    const noopRuns = Number(arg("noop-runs") ?? 3);
    const scenarios: Scenario[] = SCENARIOS.includes(only as Scenario) ? [only as Scenario] : [...SCENARIOS];
    const host = machine();
    log(`machine: ${JSON.stringify(host)}`);
    const [refs, imageBuildMs] = await timed(async () => buildExampleImages(APP, ["v1", "v2"]));
    const results: ScenarioResult[] = [];
    const failures: string[] = [];
    for (const s of scenarios) {
        // One scenario failing still reports the others.
        await runScenario(s, refs, s === "default" ? noopRuns : 0).then(
            (r) => void results.push(r),
            (e: Error) => void failures.push(`scenario ${s} FAILED: ${e.message.split("\n")[0]}`),
        );
    }
    const table = [renderTable(rows(results, imageBuildMs)), ...failures].join("\n");
    const machineLine = `Machine: ${host.nproc} cores (${host.cpu}), ${host.memoryGiB} GiB, ${host.kernel}; load average at start ${host.loadAvgAtStart.join(" ")}; ${host.date}`;
    const dir = path.join(ROOT, "bench", "results");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "latest.json"), JSON.stringify({ machine: host, targets: TARGETS, seed: SEED, probe: { intervalMs: INTERVAL_MS, timeoutMs: PROBE_TIMEOUT_MS }, imageBuildMs, results, table }, null, 2) + "\n");
    process.stdout.write(`${machineLine}\n\n${table}\n`);
    if (failures.length) process.exitCode = 1;
}

main().catch((e) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
});
