/**
 * Pure parts of `npm run bench`: the phases of one engine operation from its event
 * timeline, interval arithmetic, the before/after table with its targets and verdicts.
 */

export interface Interval {
    startMs: number;
    endMs: number;
}

/** Total time covered by possibly overlapping intervals (parallel spans count once). */
export function unionMs(intervals: Interval[]): number {
    const sorted = intervals.filter((i) => i.endMs > i.startMs).sort((a, b) => a.startMs - b.startMs);
    let total = 0;
    let curStart = -Infinity;
    let curEnd = -Infinity;
    for (const i of sorted) {
        if (i.startMs > curEnd) {
            if (curEnd > curStart) total += curEnd - curStart;
            curStart = i.startMs;
            curEnd = i.endMs;
        } else {
            curEnd = Math.max(curEnd, i.endMs);
        }
    }
    if (curEnd > curStart) total += curEnd - curStart;
    return total;
}

/**
 * One engine event as the bench saw it: when it arrived (ms since the epoch, read from
 * the CLI's --event-log as it is written) and the little the phases need from it.
 */
export interface TimedEvent {
    atMs: number;
    kind: "prelude" | "pre" | "outputs" | "summary" | "other";
    urn?: string;
}

/**
 * Where one CLI operation's wall time went, in ms, consecutive and adding up to `wallMs`:
 *  - cliStartMs: launch to the engine's prelude (CLI start, stack and state load, secrets);
 *  - programStartMs: prelude to the first resource step (language host and program start,
 *    up to the program's first registration);
 *  - beforeActivateMs: first step to the activation command's step (every other resource's
 *    check and diff, provider plugins' start-up, uploads); the whole step phase when
 *    nothing activates (a no-op);
 *  - activateMs: the activation command (activate.sh on the VM), 0 when it did not run;
 *  - afterActivateMs: its end to the summary (the steps after it, the final state save);
 *  - shutdownMs: summary to exit (plugins and language host stopped, CLI exit).
 * The resource plugins start when the program first uses them, inside the step phases.
 */
export interface Phases {
    wallMs: number;
    cliStartMs: number;
    programStartMs: number;
    beforeActivateMs: number;
    activateMs: number;
    afterActivateMs: number;
    shutdownMs: number;
    /** Resource steps the engine reported (one per resource, replacements count once). */
    steps: number;
    /** The longest resource steps (custom resources only, the activation excluded): name and ms. */
    slowest: { name: string; ms: number }[];
    /**
     * The longest waits in the step phases for a resource's step to start, from the event
     * before it: the program reaching that registration, a plugin starting, the provider's
     * Check and Diff (a no-op's steps themselves take no time).
     */
    waits: { name: string; ms: number }[];
}

/** A URN's resource type (the last of its type chain) and name. */
function typeAndName(urn: string): [string, string] {
    const parts = urn.split("::");
    const types = (parts[2] ?? "").split("$");
    return [types[types.length - 1], parts.slice(3).join("::")];
}

export function phases(events: TimedEvent[], t0: number, exitMs: number, activateUrn: RegExp = /::[^:]*-activate$/): Phases {
    const sorted = [...events].sort((a, b) => a.atMs - b.atMs);
    const first = (f: (e: TimedEvent) => boolean) => sorted.find(f)?.atMs;
    const last = (f: (e: TimedEvent) => boolean) => [...sorted].reverse().find(f)?.atMs;
    const spans = new Map<string, Interval>();
    for (const e of sorted) {
        if (!e.urn) continue;
        if (e.kind === "pre" && !spans.has(e.urn)) spans.set(e.urn, { startMs: e.atMs, endMs: e.atMs });
        const s = spans.get(e.urn);
        if (e.kind === "outputs" && s && s.endMs === s.startMs) s.endMs = e.atMs;
    }
    const prelude = first((e) => e.kind === "prelude") ?? t0;
    const firstStep = first((e) => e.kind === "pre") ?? prelude;
    const lastStep = last((e) => e.kind === "outputs" || e.kind === "pre") ?? firstStep;
    const summary = first((e) => e.kind === "summary") ?? exitMs;
    const activate = [...spans].find(([urn]) => activateUrn.test(urn))?.[1];
    const activateStart = activate?.startMs ?? lastStep;
    const activateEnd = activate ? activate.endMs : lastStep;
    return {
        wallMs: exitMs - t0,
        cliStartMs: prelude - t0,
        programStartMs: firstStep - prelude,
        beforeActivateMs: activateStart - firstStep,
        activateMs: activateEnd - activateStart,
        afterActivateMs: summary - activateEnd,
        shutdownMs: exitMs - summary,
        steps: spans.size,
        slowest: [...spans]
            .filter(([urn]) => !activateUrn.test(urn))
            .map(([urn, sp]) => [typeAndName(urn), sp.endMs - sp.startMs] as const)
            // Component resources (onevm:*) and the stack span their children.
            .filter(([[type], ms]) => !type.startsWith("onevm:") && type !== "pulumi:pulumi:Stack" && ms >= 100)
            .sort((x, y) => y[1] - x[1])
            .slice(0, 3)
            .map(([[type, name], ms]) => ({ name: `${name} (${type})`, ms })),
        waits: sorted
            .map((e, i) => ({ e, ms: i > 0 ? e.atMs - sorted[i - 1].atMs : 0 }))
            .filter(({ e }) => e.kind === "pre" && e.urn && e.atMs > firstStep)
            .sort((x, y) => y.ms - x.ms)
            .slice(0, 3)
            .map(({ e, ms }) => {
                const [type, name] = typeAndName(e.urn as string);
                return { name: `${name} (${type})`, ms };
            }),
    };
}

/** One line of the table: a measure, its value before and after, after/before, the target. */
export interface Row {
    measure: string;
    before: string;
    after: string;
    ratio: string;
    target: string;
    /** The after value against the target; "" when the row has none. */
    verdict: "PASS" | "MISS" | "";
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
export const millis = (ms: number) => `${Math.round(ms)} ms`;

/**
 * A measured row: values (null = not measured) formatted with `fmt`; with `limitMs` the
 * after value gets PASS (at or under it) or MISS.
 */
export function row(measure: string, before: number | null, after: number | null, fmt: (n: number) => string = seconds, limit?: number): Row {
    const ratio = before !== null && after !== null && before > 0 ? `${(after / before).toFixed(2)}x` : "";
    const verdict = limit === undefined || after === null ? "" : after <= limit ? "PASS" : "MISS";
    return {
        measure,
        before: before === null ? "n/a" : fmt(before),
        after: after === null ? "n/a" : fmt(after),
        ratio,
        target: limit === undefined ? "" : `<= ${fmt(limit)}`,
        verdict,
    };
}

/** A row of text values (no ratio, no target). */
export function textRow(measure: string, before: string, after: string): Row {
    return { measure, before, after, ratio: "", target: "", verdict: "" };
}

/** A Markdown table (readable as plain text too), then the missed targets. */
export function renderTable(rows: Row[]): string {
    const header = ["measure", "before", "after", "after/before", "target", "verdict"];
    const lines = [header, ...rows.map((r) => [r.measure, r.before, r.after, r.ratio, r.target, r.verdict])];
    const widths = header.map((_, c) => Math.max(...lines.map((l) => l[c].length), 3));
    const fmt = (l: string[]) => `| ${l.map((s, c) => s.padEnd(widths[c])).join(" | ")} |`;
    const out = [fmt(lines[0]), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...lines.slice(1).map(fmt)];
    const missed = rows.filter((r) => r.verdict === "MISS");
    out.push("");
    out.push(missed.length ? `MISSED TARGETS (${missed.length}): ${missed.map((r) => `${r.measure.trim()} = ${r.after} (target ${r.target})`).join("; ")}` : "All targets met.");
    return out.join("\n");
}

/** Finds "<label> took N ms"-style figures in remote log text; the first match wins. */
export function msFromLog(log: string, pattern: RegExp): number | undefined {
    const m = pattern.exec(log);
    return m ? Number(m[1]) : undefined;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The last activation's own milestones from activate.sh's log (its INFO lines, whole
 * seconds): each line's offset from "Starting activation", e.g. "+4 s Migrations applied".
 */
export function activationMilestones(log: string): { atS: number; message: string }[] {
    const lines = log.split("\n").map((l) => /^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] INFO: (.*)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null);
    const start = lines.map((m) => m[2]).lastIndexOf(lines.map((m) => m[2]).filter((m) => m.startsWith("Starting activation")).pop() ?? "");
    if (start < 0) return [];
    const t = (m: RegExpExecArray) => Date.parse(`${m[1].replace(" ", "T")}Z`) / 1000;
    const block = lines.slice(start);
    const end = block.findIndex((m) => m[2].startsWith("Deployment successful"));
    return block.slice(0, end < 0 ? undefined : end + 1).map((m) => ({ atS: t(m) - t(block[0]), message: m[2] }));
}
