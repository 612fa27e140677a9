/**
 * The downtime prober of `npm run bench`: one HTTP(S) GET of /health every `intervalMs`
 * (20 Hz by default), each on a new connection with a short timeout, started on a fixed
 * schedule whether or not the previous probe has answered. The statistics are pure
 * functions (test/unit/bench.test.ts).
 */
import * as http from "http";
import * as https from "https";

export interface Probe {
    /** ms since the epoch when the request was sent, and when it succeeded or failed. */
    startMs: number;
    endMs: number;
    ok: boolean;
    error?: string;
}

export interface ProbeSummary {
    probes: number;
    failed: number;
    /** failed probes × the probe interval: the downtime figure. */
    downtimeMs: number;
    /** Longest time between the starts of two successive successful probes (~interval when nothing failed). */
    longestGapMs: number;
    /** Slowest successful probe: a proxy that holds requests shows up here, not as a failure. */
    maxLatencyMs: number;
    /** First error seen, for the report (e.g. ECONNRESET, timeout, status 502). */
    firstError?: string;
}

export function summarize(probes: Probe[], intervalMs: number): ProbeSummary {
    const sorted = [...probes].sort((a, b) => a.startMs - b.startMs);
    const failures = sorted.filter((p) => !p.ok);
    const okStarts = sorted.filter((p) => p.ok).map((p) => p.startMs);
    let longestGapMs = 0;
    if (okStarts.length === 0 && sorted.length > 0) {
        longestGapMs = sorted[sorted.length - 1].endMs - sorted[0].startMs;
    }
    for (let i = 1; i < okStarts.length; i++) longestGapMs = Math.max(longestGapMs, okStarts[i] - okStarts[i - 1]);
    const latencies = sorted.filter((p) => p.ok).map((p) => p.endMs - p.startMs);
    return {
        probes: sorted.length,
        failed: failures.length,
        downtimeMs: failures.length * intervalMs,
        longestGapMs,
        maxLatencyMs: latencies.length ? Math.max(...latencies) : 0,
        ...(failures.length ? { firstError: failures[0].error } : {}),
    };
}

export interface ProbeTarget {
    protocol: "http" | "https";
    host: string;
    port: number;
    path: string;
    /** https: the name to send as SNI and Host, and the CA to trust. */
    servername?: string;
    ca?: string;
}

/** One GET on a fresh connection; resolves only for status 200 within timeoutMs. */
export function probeOnce(target: ProbeTarget, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
        const options: https.RequestOptions = {
            host: target.host,
            port: target.port,
            path: target.path,
            agent: false,
            headers: target.servername ? { host: target.servername } : {},
            ...(target.protocol === "https" ? { servername: target.servername, ca: target.ca } : {}),
        };
        const req = (target.protocol === "https" ? https : http).get(options, (res) => {
            // The body of a failed answer tells who failed it: the app's JSON, or the proxy's empty one.
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (chunk: string) => (body = (body + chunk).slice(0, 200)));
            res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}: ${body || "(empty body)"}`))));
            res.on("error", reject);
        });
        const timer = setTimeout(() => req.destroy(new Error(`timeout ${timeoutMs} ms`)), timeoutMs);
        req.on("error", reject);
        req.on("close", () => clearTimeout(timer));
    });
}

/** Probes on a fixed schedule (start time + k × interval) until stopped. */
export class Prober {
    private readonly probes: Probe[] = [];
    private readonly inFlight = new Set<Promise<void>>();
    private timer?: NodeJS.Timeout;

    constructor(
        private readonly probe: () => Promise<void>,
        readonly intervalMs = 50,
    ) {}

    start(): void {
        const t0 = Date.now();
        let k = 0;
        const tick = () => {
            this.fire();
            k += 1;
            this.timer = setTimeout(tick, Math.max(0, t0 + k * this.intervalMs - Date.now()));
        };
        tick();
    }

    private fire(): void {
        const startMs = Date.now();
        const p = this.probe().then(
            () => void this.probes.push({ startMs, endMs: Date.now(), ok: true }),
            (e: Error) => void this.probes.push({ startMs, endMs: Date.now(), ok: false, error: e.message }),
        );
        this.inFlight.add(p);
        void p.finally(() => this.inFlight.delete(p));
    }

    /** Stops scheduling, waits for the probes in flight, returns all of them. */
    async stop(): Promise<Probe[]> {
        if (this.timer) clearTimeout(this.timer);
        await Promise.all([...this.inFlight]);
        return [...this.probes];
    }
}
