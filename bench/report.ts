/**
 * Pure parts of `npm run bench`: interval arithmetic for the fresh-deploy split, the
 * targets of issue 7 with their PASS/MISS verdicts, and the printed table.
 */

export interface Interval {
    startMs: number;
    endMs: number;
}

/** Total time covered by possibly overlapping intervals (parallel uploads count once). */
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

export interface Row {
    measure: string;
    value: string;
    target: string;
    /** PASS/MISS against the target; "-" when the row has no target. */
    verdict: "PASS" | "MISS" | "-";
    seed: string;
}

/** A row with a numeric target: PASS when value <= limit. */
export function targetRow(measure: string, value: number, limit: number, fmt: (n: number) => string, seed: string, targetText?: string): Row {
    return { measure, value: fmt(value), target: targetText ?? `<= ${fmt(limit)}`, verdict: value <= limit ? "PASS" : "MISS", seed };
}

export function infoRow(measure: string, value: string, seed = ""): Row {
    return { measure, value, target: "", verdict: "-", seed };
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
export const millis = (ms: number) => `${Math.round(ms)} ms`;

/** A Markdown table (readable as plain text too) plus the list of missed targets. */
export function renderTable(rows: Row[]): string {
    const header: Row = { measure: "measure", value: "value", target: "target", verdict: "-", seed: "seed runbook (001) / Kamal" };
    const cells = (r: Row, verdict: string) => [r.measure, r.value, r.target, verdict, r.seed];
    const lines = [cells(header, "verdict"), ...rows.map((r) => cells(r, r.verdict === "-" ? "" : r.verdict))];
    const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length), 3));
    const fmt = (l: string[]) => `| ${l.map((s, c) => s.padEnd(widths[c])).join(" | ")} |`;
    const out = [fmt(lines[0]), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...lines.slice(1).map(fmt)];
    const missed = rows.filter((r) => r.verdict === "MISS");
    out.push("");
    out.push(missed.length ? `MISSED TARGETS (${missed.length}): ${missed.map((r) => `${r.measure} = ${r.value} (target ${r.target})`).join("; ")}` : "All targets met.");
    return out.join("\n");
}

/** Finds "<label> took N ms"-style figures in remote log text; the first match wins. */
export function msFromLog(log: string, pattern: RegExp): number | undefined {
    const m = pattern.exec(log);
    return m ? Number(m[1]) : undefined;
}
