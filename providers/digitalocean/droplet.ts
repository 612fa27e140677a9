/**
 * digitalocean:index/droplet:Droplet. Replaced when what the droplet was born with changes
 * (image, region, user data, SSH keys, networking, monitoring); resized and retagged in place.
 */
import { ResourceType } from "../common/serve";
import { hasUnknown, makeSecret, WireMap } from "../common/values";
import { api, poll, waitAction } from "./client";
import { autoName, changed, defined, Plain, plain, required, sha1, sortedStrings } from "./props";

export const DROPLET_REPLACE_KEYS = ["image", "region", "userData", "sshKeys", "vpcUuid", "ipv6", "monitoring", "backups", "privateNetworking"] as const;
export const DROPLET_UPDATE_KEYS = ["size", "tags", "name", "volumeIds", "resizeDisk", "gracefulShutdown"] as const;

const OPTIONAL_COMPUTED = new Set(["region", "vpcUuid", "ipv6", "backups", "privateNetworking", "monitoring", "volumeIds", "resizeDisk", "gracefulShutdown"]);

/** API droplet JSON -> the SDK's output properties. */
export function dropletOutputs(d: Plain, inputs: Plain): WireMap {
    const v4 = (type: string) => d.networks?.v4?.find((n: Plain) => n.type === type)?.ip_address ?? "";
    return defined({
        ...inputs,
        userData: typeof inputs.userData === "string" ? sha1(inputs.userData) : inputs.userData,
        name: d.name,
        region: d.region?.slug ?? inputs.region,
        size: d.size_slug ?? inputs.size,
        image: inputs.image ?? d.image?.slug,
        status: d.status,
        locked: d.locked ?? false,
        memory: d.memory,
        vcpus: d.vcpus,
        disk: d.disk,
        createdAt: d.created_at,
        ipv4Address: v4("public"),
        ipv4AddressPrivate: v4("private"),
        ipv6Address: d.networks?.v6?.find((n: Plain) => n.type === "public")?.ip_address ?? "",
        priceHourly: d.size?.price_hourly ?? 0,
        priceMonthly: d.size?.price_monthly ?? 0,
        dropletUrn: `do:droplet:${d.id}`,
        tags: d.tags ?? inputs.tags,
        volumeIds: d.volume_ids ?? [],
        vpcUuid: d.vpc_uuid ?? inputs.vpcUuid ?? "",
        monitoring: inputs.monitoring ?? false,
        backups: inputs.backups ?? false,
        ipv6: inputs.ipv6 ?? false,
        privateNetworking: d.vpc_uuid ? true : inputs.privateNetworking ?? false,
        publicNetworking: true,
        resizeDisk: inputs.resizeDisk ?? true,
        gracefulShutdown: inputs.gracefulShutdown ?? false,
    });
}

async function getDroplet(id: string): Promise<Plain | undefined> {
    return (await api<{ droplet: Plain }>("GET", `/droplets/${id}`, undefined, { allow404: true }))?.droplet;
}

async function action(log: import("../common/log").Logger, id: string, body: Plain): Promise<void> {
    log.info(`droplet ${id}: ${body.type}`);
    const r = await api<{ action: { id: number; type: string } }>("POST", `/droplets/${id}/actions`, body);
    await waitAction(log, r!.action);
}

/** SSH keys may be numeric IDs or fingerprints; the API takes both. */
const sshKeyRefs = (keys: unknown) => (Array.isArray(keys) ? keys.map((k) => (/^\d+$/.test(String(k)) ? Number(k) : String(k))) : []);

export const droplet: ResourceType = {
    async check(olds, news) {
        const inputs: WireMap = { ...news, name: autoName(olds, news, "droplet") };
        // userData holds secrets (host key): keep it secret in the engine's view.
        if (inputs.userData !== undefined && !hasUnknown(inputs.userData)) inputs.userData = makeSecret(inputs.userData);
        return { inputs, failures: required(news, ["image", "size"]) };
    },

    async diff(olds, news) {
        // State holds the SHA-1 of the user data (like upstream); compare like with like.
        const n = plain(news);
        const comparable: WireMap = { ...news, userData: typeof n.userData === "string" ? sha1(n.userData) : news.userData };
        // Optional properties the API fills in (region, vpcUuid, ...) only count when set.
        const set = (k: string) => !OPTIONAL_COMPUTED.has(k) || comparable[k] !== undefined;
        const replaces = changed(olds, comparable, DROPLET_REPLACE_KEYS.filter(set));
        const updates = changed(olds, comparable, DROPLET_UPDATE_KEYS.filter(set)).filter((k) => !(k === "tags" && sameSet(olds.tags, comparable.tags)));
        if (replaces.length === 0 && updates.length === 0) return { changes: false };
        return { changes: true, replaces, deleteBeforeReplace: false };
    },

    async create(ctx, inputs) {
        const p = plain(inputs);
        const body = {
            name: p.name,
            region: p.region,
            size: p.size,
            image: /^\d+$/.test(String(p.image)) ? Number(p.image) : p.image,
            ssh_keys: sshKeyRefs(p.sshKeys),
            backups: p.backups ?? false,
            ipv6: p.ipv6 ?? false,
            monitoring: p.monitoring ?? false,
            tags: p.tags ?? [],
            user_data: p.userData,
            vpc_uuid: p.vpcUuid,
            volumes: p.volumeIds ?? [],
        };
        const r = await api<{ droplet: Plain }>("POST", "/droplets", defined(body));
        const id = String(r!.droplet.id);
        ctx.log.info(`droplet ${p.name} created with ID ${id}; waiting for it to become active`);
        const d = await poll(ctx.log, `droplet ${id} to become active`, async () => {
            const cur = await getDroplet(id);
            return cur?.status === "active" ? cur : undefined;
        });
        return { id, outs: dropletOutputs(d, p) };
    },

    async update(ctx, id, olds, news) {
        const o = plain(olds);
        const n = plain(news);
        if (n.size !== o.size) {
            await action(ctx.log, id, { type: "power_off" });
            await action(ctx.log, id, { type: "resize", size: n.size, disk: n.resizeDisk ?? true });
            await action(ctx.log, id, { type: "power_on" });
        }
        if (n.name !== o.name) await action(ctx.log, id, { type: "rename", name: n.name });
        const oldTags = sortedStrings(o.tags);
        const newTags = sortedStrings(n.tags);
        for (const tag of newTags.filter((t) => !oldTags.includes(t))) {
            await api("POST", "/tags", { name: tag }).catch(() => undefined); // exists already: fine
            await api("POST", `/tags/${encodeURIComponent(tag)}/resources`, { resources: [{ resource_id: id, resource_type: "droplet" }] });
        }
        for (const tag of oldTags.filter((t) => !newTags.includes(t))) {
            await api("DELETE", `/tags/${encodeURIComponent(tag)}/resources`, { resources: [{ resource_id: id, resource_type: "droplet" }] });
        }
        const d = await poll(ctx.log, `droplet ${id} to become active`, async () => {
            const cur = await getDroplet(id);
            return cur?.status === "active" ? cur : undefined;
        });
        // userData cannot change in place (it replaces), so the old hash carries over.
        return { outs: { ...dropletOutputs(d, n), userData: olds.userData } };
    },

    async delete(ctx, id) {
        await api("DELETE", `/droplets/${id}`, undefined, { allow404: true });
        await poll(ctx.log, `droplet ${id} to be deleted`, async () => ((await getDroplet(id)) === undefined ? true : undefined));
    },

    async read(_ctx, id, props) {
        const d = await getDroplet(id);
        return d && { id, props: { ...dropletOutputs(d, plain(props)), userData: props.userData } };
    },
};

function sameSet(a: unknown, b: unknown): boolean {
    return !hasUnknown(b as never) && JSON.stringify(sortedStrings(a)) === JSON.stringify(sortedStrings(b));
}
