/** The bench's pure parts: probe statistics, interval union, verdicts and the table. */
import * as http from "http";
import { AddressInfo } from "net";
import { Probe, probeOnce, Prober, summarize } from "../../bench/prober";
import { activationMilestones, millis, msFromLog, phases, renderTable, row, textRow, TimedEvent, unionMs } from "../../bench/report";

const probe = (startMs: number, ok: boolean, latency = 5): Probe => ({ startMs, endMs: startMs + latency, ok, ...(ok ? {} : { error: "ECONNRESET" }) });

describe("summarize", () => {
    test("no failure: downtime 0, gap = interval", () => {
        const s = summarize([0, 50, 100, 150].map((t) => probe(t, true)), 50);
        expect(s).toEqual({ probes: 4, failed: 0, downtimeMs: 0, longestGapMs: 50, maxLatencyMs: 5 });
    });

    test("failures: downtime = failed x interval, gap spans the failed run, unordered input", () => {
        const probes = [probe(300, true), probe(0, true), probe(50, true), probe(100, false), probe(150, false), probe(200, false), probe(250, true, 40)];
        const s = summarize(probes, 50);
        expect(s.failed).toBe(3);
        expect(s.downtimeMs).toBe(150);
        expect(s.longestGapMs).toBe(200);
        expect(s.maxLatencyMs).toBe(40);
        expect(s.firstError).toBe("ECONNRESET");
    });

    test("nothing succeeded: the gap is the whole window", () => {
        expect(summarize([probe(0, false), probe(50, false)], 50)).toMatchObject({ failed: 2, downtimeMs: 100, longestGapMs: 55 });
    });
});

describe("prober against a real server that goes away", () => {
    test("counts the probes made while the server is down as failures", async () => {
        let up = true;
        const server = http.createServer((_req, res) => {
            res.statusCode = up ? 200 : 503;
            res.end(up ? "ok" : '{"status":"unavailable"}');
        });
        await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
        const port = (server.address() as AddressInfo).port;
        const prober = new Prober(() => probeOnce({ protocol: "http", host: "127.0.0.1", port, path: "/health" }, 500), 20);
        prober.start();
        await new Promise((r) => setTimeout(r, 300));
        up = false;
        await new Promise((r) => setTimeout(r, 300));
        up = true;
        await new Promise((r) => setTimeout(r, 300));
        const s = summarize(await prober.stop(), 20);
        server.close();
        expect(s.probes).toBeGreaterThan(25);
        expect(s.failed).toBeGreaterThan(5);
        expect(s.failed).toBeLessThan(s.probes - 10);
        // The body says who failed the request (the app's JSON, or a proxy's empty answer).
        expect(s.firstError).toBe('status 503: {"status":"unavailable"}');
        expect(s.longestGapMs).toBeGreaterThanOrEqual(200);
    });
});

test("unionMs counts overlapping intervals once", () => {
    expect(unionMs([])).toBe(0);
    expect(unionMs([{ startMs: 0, endMs: 10 }, { startMs: 5, endMs: 20 }, { startMs: 30, endMs: 40 }, { startMs: 32, endMs: 35 }])).toBe(30);
});

test("targets: the after value PASSes at or under the limit, MISSes over it; the ratio is after/before; the table names what was missed", () => {
    const pass = row("no-op preview", 2500, 2000, millis, 2000);
    const miss = row("rollback", 26_000, 31_000, millis, 15_000);
    expect(pass).toMatchObject({ verdict: "PASS", ratio: "0.80x", target: "<= 2000 ms" });
    expect(miss.verdict).toBe("MISS");
    expect(row("unmeasured", null, 1000).before).toBe("n/a");
    const table = renderTable([pass, miss, textRow("SSH sessions", "1", "1")]);
    expect(table).toMatch(/\| no-op preview +\| 2500 ms +\| 2000 ms +\| 0.80x +\| <= 2000 ms +\| PASS +\|/);
    expect(table).toMatch(/MISSED TARGETS \(1\): rollback = 31000 ms \(target <= 15000 ms\)/);
    expect(renderTable([pass])).toMatch(/All targets met\./);
});

describe("phases", () => {
    const urn = (name: string, type = "command:remote:Command") => `urn:pulumi:s::onevm::${type}::${name}`;
    test("consecutive phases around the activation add up to the wall time", () => {
        const events: TimedEvent[] = [
            { atMs: 1300, kind: "prelude" },
            { atMs: 2000, kind: "pre", urn: urn("s", "pulumi:pulumi:Stack") },
            { atMs: 2100, kind: "pre", urn: urn("default", "pulumi:providers:command") },
            { atMs: 2600, kind: "outputs", urn: urn("default", "pulumi:providers:command") },
            { atMs: 3000, kind: "pre", urn: urn("app-activate") },
            { atMs: 9000, kind: "outputs", urn: urn("app-activate") },
            { atMs: 9500, kind: "outputs", urn: urn("s", "pulumi:pulumi:Stack") },
            { atMs: 10_000, kind: "summary" },
        ];
        const p = phases(events, 1000, 10_400);
        expect(p).toEqual({
            wallMs: 9400, cliStartMs: 300, programStartMs: 700, beforeActivateMs: 1000, activateMs: 6000,
            afterActivateMs: 1000, shutdownMs: 400, steps: 3,
            slowest: [{ name: "default (pulumi:providers:command)", ms: 500 }],
            waits: [{ name: "app-activate (command:remote:Command)", ms: 400 }, { name: "default (pulumi:providers:command)", ms: 100 }],
        });
        expect(p.cliStartMs + p.programStartMs + p.beforeActivateMs + p.activateMs + p.afterActivateMs + p.shutdownMs).toBe(p.wallMs);
    });

    test("no activation (a no-op): the steps run to the last event, activation 0", () => {
        const events: TimedEvent[] = [
            { atMs: 1500, kind: "prelude" },
            { atMs: 1900, kind: "pre", urn: urn("a") },
            { atMs: 2400, kind: "outputs", urn: urn("a") },
            { atMs: 2600, kind: "summary" },
        ];
        expect(phases(events, 1000, 2800)).toMatchObject({ cliStartMs: 500, programStartMs: 400, beforeActivateMs: 500, activateMs: 0, afterActivateMs: 200, shutdownMs: 200 });
    });
});

test("msFromLog reads the remote scripts' duration lines", () => {
    const log = "[2026-12-01 03:00:00] INFO: package installs (apt-get update + install) took 41234 ms\n";
    expect(msFromLog(log, /package installs \(apt-get update \+ install\) took (\d+) ms/)).toBe(41234);
    expect(msFromLog(log, /load\/pull took (\d+) ms/)).toBeUndefined();
});

test("activationMilestones: the last activation's INFO lines, offsets from its start", () => {
    const log = [
        "[2026-12-05 02:24:00] INFO: Starting activation of v2 (operator e2e)",
        "[2026-12-05 02:24:09] INFO: Deployment successful: v2 (previous: v1)",
        "[2026-12-05 02:24:37] INFO: Starting activation of v1 (operator e2e)",
        " Container booking-bot-postgres-1  Running",
        "[2026-12-05 02:24:40] INFO: Migrations applied successfully",
        "[2026-12-05 02:24:48] INFO: Deployment successful: v1 (previous: v2)",
        "[2026-12-05 02:23:52] INFO: checking booking-bot of release v1",
    ].join("\n");
    expect(activationMilestones(log)).toEqual([
        { atS: 0, message: "Starting activation of v1 (operator e2e)" },
        { atS: 3, message: "Migrations applied successfully" },
        { atS: 11, message: "Deployment successful: v1 (previous: v2)" },
    ]);
    expect(activationMilestones("nothing")).toEqual([]);
});
