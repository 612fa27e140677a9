/** The bench's pure parts: probe statistics, interval union, verdicts and the table. */
import * as http from "http";
import { AddressInfo } from "net";
import { Probe, probeOnce, Prober, summarize } from "../../bench/prober";
import { infoRow, millis, msFromLog, renderTable, targetRow, unionMs } from "../../bench/report";

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

test("targets: PASS at or under the limit, MISS over it, and the table names what was missed", () => {
    const pass = targetRow("switch downtime", 1000, 1000, millis, "30-60 s");
    const miss = targetRow("rollback wall", 31_000, 30_000, millis, "3-5 min");
    expect(pass.verdict).toBe("PASS");
    expect(miss.verdict).toBe("MISS");
    const table = renderTable([pass, miss, infoRow("sandbox boot", "3.0 s")]);
    expect(table).toMatch(/\| switch downtime +\| 1000 ms +\| <= 1000 ms +\| PASS +\| 30-60 s/);
    expect(table).toMatch(/MISSED TARGETS \(1\): rollback wall = 31000 ms \(target <= 30000 ms\)/);
    expect(renderTable([pass])).toMatch(/All targets met\./);
});

test("msFromLog reads the remote scripts' duration lines", () => {
    const log = "[2026-12-01 03:00:00] INFO: package installs (apt-get update + install) took 41234 ms\n";
    expect(msFromLog(log, /package installs \(apt-get update \+ install\) took (\d+) ms/)).toBe(41234);
    expect(msFromLog(log, /load\/pull took (\d+) ms/)).toBeUndefined();
});
