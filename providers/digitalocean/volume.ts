/**
 * digitalocean:index/volume:Volume and digitalocean:index/volumeAttachment:VolumeAttachment.
 * A volume grows in place (never shrinks); an attachment is replaced on any change.
 */
import { CheckFailure } from "@pulumi/pulumi/provider";
import { ResourceType } from "../common/serve";
import { hasUnknown } from "../common/values";
import { api, waitAction } from "./client";
import { autoName, changed, defined, Plain, plain, required, sortedStrings } from "./props";

const REPLACE = ["name", "region", "description", "snapshotId", "initialFilesystemType", "initialFilesystemLabel", "filesystemType"] as const;

function outputs(v: Plain, inputs: Plain) {
    return defined({
        ...inputs,
        name: v.name,
        region: v.region?.slug ?? inputs.region,
        size: v.size_gigabytes,
        dropletIds: v.droplet_ids ?? [],
        filesystemType: v.filesystem_type ?? inputs.initialFilesystemType ?? "",
        filesystemLabel: v.filesystem_label ?? inputs.initialFilesystemLabel ?? "",
        volumeUrn: `do:volume:${v.id}`,
        tags: v.tags ?? inputs.tags,
    });
}

export const volume: ResourceType = {
    async check(olds, news) {
        const failures: CheckFailure[] = required(news, ["region", "size"]);
        const p = plain(news);
        if (!hasUnknown(news.size) && typeof p.size === "number" && typeof olds.size === "number" && p.size < olds.size) {
            failures.push({ property: "size", reason: `volumes cannot shrink (${olds.size} GB -> ${p.size} GB)` });
        }
        return { inputs: { ...news, name: autoName(olds, news, "volume") }, failures };
    },
    async diff(olds, news) {
        const replaces = changed(olds, news, REPLACE.filter((k) => news[k] !== undefined || k === "name"));
        const tagsChanged = JSON.stringify(sortedStrings(olds.tags)) !== JSON.stringify(sortedStrings(plain(news).tags)) || hasUnknown(news.tags);
        const updates = [...changed(olds, news, ["size"]), ...(tagsChanged ? ["tags"] : [])];
        return replaces.length + updates.length === 0 ? { changes: false } : { changes: true, replaces };
    },
    async create(_ctx, inputs) {
        const p = plain(inputs);
        const r = await api<{ volume: Plain }>("POST", "/volumes", defined({
            name: p.name,
            region: p.region,
            size_gigabytes: p.size,
            description: p.description,
            snapshot_id: p.snapshotId,
            filesystem_type: p.initialFilesystemType,
            filesystem_label: p.initialFilesystemLabel,
            tags: p.tags,
        }));
        return { id: r!.volume.id, outs: outputs(r!.volume, p) };
    },
    async update(ctx, id, olds, news) {
        const p = plain(news);
        if (p.size !== olds.size) {
            ctx.log.info(`volume ${id}: resize to ${p.size} GB`);
            const r = await api<{ action: { id: number; type: string } }>("POST", `/volumes/${id}/actions`, { type: "resize", size_gigabytes: p.size, region: p.region });
            await waitAction(ctx.log, r!.action);
        }
        const old = new Set<string>((olds.tags as string[]) ?? []);
        const now = new Set<string>(p.tags ?? []);
        for (const t of [...now].filter((t) => !old.has(t))) {
            await api("POST", "/tags", { name: t }).catch(() => undefined);
            await api("POST", `/tags/${encodeURIComponent(t)}/resources`, { resources: [{ resource_id: id, resource_type: "volume" }] });
        }
        for (const t of [...old].filter((t) => !now.has(t))) {
            await api("DELETE", `/tags/${encodeURIComponent(t)}/resources`, { resources: [{ resource_id: id, resource_type: "volume" }] });
        }
        const r = await api<{ volume: Plain }>("GET", `/volumes/${id}`);
        return { outs: outputs(r!.volume, p) };
    },
    async delete(_ctx, id) {
        await api("DELETE", `/volumes/${id}`, undefined, { allow404: true });
    },
    async read(_ctx, id, props) {
        const r = await api<{ volume: Plain }>("GET", `/volumes/${id}`, undefined, { allow404: true });
        return r && { id, props: outputs(r.volume, plain(props)) };
    },
};

async function volumeAction(ctx: { log: import("../common/log").Logger }, volumeId: string, type: "attach" | "detach", dropletId: number) {
    const v = await api<{ volume: Plain }>("GET", `/volumes/${volumeId}`);
    ctx.log.info(`volume ${volumeId}: ${type} droplet ${dropletId}`);
    const r = await api<{ action: { id: number; type: string } }>("POST", `/volumes/${volumeId}/actions`, { type, droplet_id: dropletId, region: v!.volume.region?.slug });
    await waitAction(ctx.log, r!.action);
}

export const volumeAttachment: ResourceType = {
    async check(_olds, news) {
        return { inputs: news, failures: required(news, ["dropletId", "volumeId"]) };
    },
    async diff(olds, news) {
        const replaces = changed(olds, news, ["dropletId", "volumeId"]);
        return replaces.length === 0 ? { changes: false } : { changes: true, replaces };
    },
    async create(ctx, inputs) {
        const p = plain(inputs);
        await volumeAction(ctx, p.volumeId, "attach", Number(p.dropletId));
        return { id: `${p.dropletId}-${p.volumeId}`, outs: { dropletId: Number(p.dropletId), volumeId: p.volumeId } };
    },
    async delete(ctx, _id, props) {
        const p = plain(props);
        const v = await api<{ volume: Plain }>("GET", `/volumes/${p.volumeId}`, undefined, { allow404: true });
        if (!v || !(v.volume.droplet_ids ?? []).includes(Number(p.dropletId))) return; // already detached or gone
        await volumeAction(ctx, p.volumeId, "detach", Number(p.dropletId));
    },
    async read(_ctx, id, props) {
        const p = plain(props);
        const v = await api<{ volume: Plain }>("GET", `/volumes/${p.volumeId}`, undefined, { allow404: true });
        return v && (v.volume.droplet_ids ?? []).includes(Number(p.dropletId)) ? { id, props } : undefined;
    },
};
