/** digitalocean:index/firewall:Firewall. Every change is an in-place PUT of the whole firewall. */
import { ResourceType } from "../common/serve";
import { api } from "./client";
import { autoName, changed, defined, Plain, plain } from "./props";

const KEYS = ["name", "inboundRules", "outboundRules", "dropletIds", "tags"] as const;

const ports = (r: Plain) => (r.protocol === "icmp" ? undefined : r.portRange ?? "all");

/** SDK rule shape -> API rule shape. */
export function toApi(p: Plain): Plain {
    return {
        name: p.name,
        droplet_ids: p.dropletIds ?? [],
        tags: p.tags ?? [],
        inbound_rules: (p.inboundRules ?? []).map((r: Plain) => ({
            protocol: r.protocol,
            ports: ports(r),
            sources: defined({ addresses: r.sourceAddresses, droplet_ids: r.sourceDropletIds, tags: r.sourceTags, load_balancer_uids: r.sourceLoadBalancerUids, kubernetes_ids: r.sourceKubernetesIds }),
        })),
        outbound_rules: (p.outboundRules ?? []).map((r: Plain) => ({
            protocol: r.protocol,
            ports: ports(r),
            destinations: defined({ addresses: r.destinationAddresses, droplet_ids: r.destinationDropletIds, tags: r.destinationTags, load_balancer_uids: r.destinationLoadBalancerUids, kubernetes_ids: r.destinationKubernetesIds }),
        })),
    };
}

function outputs(f: Plain, inputs: Plain) {
    return defined({
        ...inputs,
        name: f.name,
        status: f.status,
        createdAt: f.created_at,
        pendingChanges: (f.pending_changes ?? []).map((c: Plain) => defined({ dropletId: c.droplet_id, removing: c.removing, status: c.status })),
        dropletIds: f.droplet_ids ?? [],
    });
}

function validate(news: Plain) {
    const failures = [];
    for (const [key, rules] of [["inboundRules", news.inboundRules], ["outboundRules", news.outboundRules]] as const) {
        for (const r of (Array.isArray(rules) ? rules : []) as Plain[]) {
            if (!["tcp", "udp", "icmp"].includes(r?.protocol)) failures.push({ property: key, reason: `protocol must be tcp, udp or icmp, got ${JSON.stringify(r?.protocol)}` });
            else if (r.protocol !== "icmp" && !r.portRange) failures.push({ property: key, reason: `${r.protocol} rules need a portRange ("22", "8000-9000" or "all")` });
        }
    }
    return failures;
}

export const firewall: ResourceType = {
    async check(olds, news) {
        return { inputs: { ...news, name: autoName(olds, news, "firewall") }, failures: validate(plain(news)) };
    },
    async diff(olds, news) {
        return changed(olds, news, KEYS).length === 0 ? { changes: false } : { changes: true, replaces: [] };
    },
    async create(_ctx, inputs) {
        const p = plain(inputs);
        const r = await api<{ firewall: Plain }>("POST", "/firewalls", toApi(p));
        return { id: r!.firewall.id, outs: outputs(r!.firewall, p) };
    },
    async update(_ctx, id, _olds, news) {
        const p = plain(news);
        const r = await api<{ firewall: Plain }>("PUT", `/firewalls/${id}`, toApi(p));
        return { outs: outputs(r!.firewall, p) };
    },
    async delete(_ctx, id) {
        await api("DELETE", `/firewalls/${id}`, undefined, { allow404: true });
    },
    async read(_ctx, id, props) {
        const r = await api<{ firewall: Plain }>("GET", `/firewalls/${id}`, undefined, { allow404: true });
        return r && { id, props: outputs(r.firewall, plain(props)) };
    },
};
