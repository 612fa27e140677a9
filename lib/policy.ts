/**
 * onevm's exposure policy, checked before anything is registered: from outside the VM
 * only SSH (and 80/443 with TLS ingress, through the proxy) is reachable, every port the
 * compose file publishes is on the VM's loopback (the proxy's 80/443 excepted), and SSH
 * is open to the whole internet only when the operator said so. Pure.
 */
import { parse } from "yaml";
import { PROXY_SERVICE } from "./app";
import { InboundRule } from "./render/firewall";

const WORLD = ["0.0.0.0/0", "::/0"];
const LOOPBACK = ["127.0.0.1", "::1", "[::1]", "localhost"];

export interface PolicyInput {
    /** The firewall's inbound rules (none for an existing host). */
    inbound: InboundRule[];
    /** The rendered compose file. */
    composeText: string;
    allowWorldSsh: boolean;
    /** TLS ingress: the proxy may publish 80 and 443 on every interface. */
    tlsIngress: boolean;
}

/** Does a DigitalOcean port range ("22", "8000-9000", "all", absent = all) include port? */
export function portInRange(port: number, range: string | undefined): boolean {
    if (range === undefined || range === "" || range === "all" || range === "0") return true;
    const [lo, hi] = range.split("-").map(Number);
    return port >= lo && port <= (hi ?? lo);
}

/** compose port "[ip:][host:]container[/proto]" or long syntax -> bind address and published ports. */
function published(p: unknown): { ip: string; ports: number[] } {
    if (typeof p === "object" && p !== null) {
        const o = p as Record<string, unknown>;
        return { ip: String(o.host_ip ?? ""), ports: o.published === undefined ? [] : [Number(o.published)] };
    }
    const s = String(p).replace(/\/(tcp|udp|sctp)$/, "");
    const m = /^(?:(\[[^\]]+\]|[^:[\]]*):)?(\d*(?:-\d+)?):(\d+(?:-\d+)?)$/.exec(s);
    if (!m) return { ip: "", ports: [] };
    const [a, b] = (m[2] || "0").split("-").map(Number);
    return { ip: m[1] ?? "", ports: Array.from({ length: (b ?? a) - a + 1 }, (_, i) => a + i) };
}

export function checkPolicy(i: PolicyInput): string[] {
    const v: string[] = [];
    const allowed = new Set([22, ...(i.tlsIngress ? [80, 443] : [])]);
    for (const r of i.inbound) {
        if (r.protocol === "icmp") continue;
        const opened = r.portRange === undefined || r.portRange === "all" || r.portRange === "0" || r.portRange === "" || !r.portRange.split("-").every((x) => allowed.has(Number(x)));
        if (opened) {
            v.push(`firewall inbound ${r.protocol} ${r.portRange ?? "all"} from ${r.sourceAddresses.join(", ")} opens more than SSH${i.tlsIngress ? " and 80/443" : ""}`);
        }
        const world = r.sourceAddresses.filter((s) => WORLD.includes(s));
        if (r.protocol === "tcp" && portInRange(22, r.portRange) && world.length > 0 && !i.allowWorldSsh) {
            v.push(`firewall inbound tcp ${r.portRange ?? "all"} opens SSH to ${world.join(", ")}; set onevm:allowWorldSsh true to allow it on purpose`);
        }
    }
    const services = (parse(i.composeText)?.services ?? {}) as Record<string, { ports?: unknown[] }>;
    for (const [name, svc] of Object.entries(services)) {
        for (const p of svc.ports ?? []) {
            const { ip, ports } = published(p);
            if (LOOPBACK.includes(ip)) continue;
            const proxyTls = name === PROXY_SERVICE && i.tlsIngress && ports.every((x) => x === 80 || x === 443);
            if (!proxyTls) {
                v.push(`compose service ${name} publishes ${JSON.stringify(p)} on ${ip || "all interfaces"}: only the proxy's 80/443 may leave the VM's loopback`);
            }
        }
    }
    return v;
}
