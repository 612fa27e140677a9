/**
 * onevm's exposure policy, checked before anything is registered: the database, the cache
 * and the app port are never reachable from outside the VM, and SSH is open to the whole
 * internet only when the operator said so. Pure; the program throws PolicyError.
 */
import { parse } from "yaml";
import { InboundRule } from "./render/firewall";

/** Ports that stay inside the VM: PostgreSQL, Redis, the app (behind the proxy). */
export const INTERNAL_PORTS: Record<number, string> = { 5432: "PostgreSQL", 6379: "Redis", 8080: "the app's HTTP port" };
const WORLD = ["0.0.0.0/0", "::/0"];
const LOOPBACK = ["127.0.0.1", "::1", "[::1]", "localhost"];

export interface PolicyInput {
    /** The firewall's inbound rules (none for an existing host). */
    inbound: InboundRule[];
    /** The rendered compose file. */
    composeText: string;
    allowWorldSsh: boolean;
}

export class PolicyError extends Error {
    constructor(readonly violations: string[]) {
        super(`onevm policy refuses this stack (nothing was changed):\n${violations.map((v) => `  - ${v}`).join("\n")}`);
        this.name = "PolicyError";
    }
}

/** Does a DigitalOcean port range ("22", "8000-9000", "all", absent = all) include port? */
export function portInRange(port: number, range: string | undefined): boolean {
    if (range === undefined || range === "" || range === "all" || range === "0") return true;
    const [lo, hi] = range.split("-").map(Number);
    return port >= lo && port <= (hi ?? lo);
}

/** compose port "[ip:]host:container[/proto]" -> bind address and ports. */
function parsePort(p: unknown): { ip: string; ports: number[] } {
    if (typeof p === "object" && p !== null) {
        const o = p as Record<string, unknown>;
        return { ip: String(o.host_ip ?? ""), ports: [Number(o.published), Number(o.target)] };
    }
    const s = String(p).replace(/\/(tcp|udp)$/, "");
    const m = s.match(/^(?:(\[[^\]]+\]|[^:]+):)?(\d+(?:-\d+)?):(\d+(?:-\d+)?)$/) ?? s.match(/^()(\d+)$/);
    if (!m) return { ip: "", ports: [] };
    const ip = m[1] ?? "";
    const expand = (r?: string) => {
        if (!r) return [];
        const [a, b] = r.split("-").map(Number);
        return Array.from({ length: (b ?? a) - a + 1 }, (_, i) => a + i);
    };
    return { ip, ports: [...expand(m[2]), ...expand(m[3])] };
}

export function checkPolicy(i: PolicyInput): string[] {
    const v: string[] = [];
    for (const r of i.inbound) {
        if (r.protocol === "icmp") continue;
        for (const [port, what] of Object.entries(INTERNAL_PORTS)) {
            if (portInRange(Number(port), r.portRange)) {
                v.push(`firewall inbound ${r.protocol} ${r.portRange ?? "all"} from ${r.sourceAddresses.join(", ")} exposes ${port} (${what}); it must stay internal`);
            }
        }
        const world = r.sourceAddresses.filter((s) => WORLD.includes(s));
        if (r.protocol === "tcp" && portInRange(22, r.portRange) && world.length > 0 && !i.allowWorldSsh) {
            v.push(`firewall inbound tcp ${r.portRange ?? "all"} opens SSH to ${world.join(", ")}; set onevm:allowWorldSsh true to allow it on purpose`);
        }
    }
    const services = (parse(i.composeText)?.services ?? {}) as Record<string, { ports?: unknown[] }>;
    for (const [name, svc] of Object.entries(services)) {
        for (const p of svc.ports ?? []) {
            const { ip, ports } = parsePort(p);
            const exposed = ports.filter((x) => x in INTERNAL_PORTS);
            if (exposed.length > 0 && !LOOPBACK.includes(ip)) {
                v.push(`compose service ${name} publishes ${JSON.stringify(p)} on ${ip || "all interfaces"}: ${[...new Set(exposed)].join(", ")} must bind to 127.0.0.1 only`);
            }
        }
    }
    return v;
}
