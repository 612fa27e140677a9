/**
 * digitalocean:index/reservedIp:ReservedIp and ...reservedIpAssignment:ReservedIpAssignment.
 * The address is the ID; a new region replaces it, a new droplet reassigns it.
 */
import { Logger } from "../common/log";
import { ResourceType } from "../common/serve";
import { api, waitAction } from "./client";
import { changed, defined, Plain, plain, required } from "./props";

const outputs = (ip: Plain) =>
    defined({ ipAddress: ip.ip, region: ip.region?.slug, dropletId: ip.droplet?.id, reservedIpUrn: `do:reservedip:${ip.ip}` });

async function ipAction(log: Logger, ip: string, body: Plain): Promise<void> {
    log.info(`reserved IP ${ip}: ${body.type}${body.droplet_id ? ` to droplet ${body.droplet_id}` : ""}`);
    const r = await api<{ action: { id: number; type: string } }>("POST", `/reserved_ips/${ip}/actions`, body);
    await waitAction(log, r!.action);
}

async function getIp(ip: string): Promise<Plain | undefined> {
    return (await api<{ reserved_ip: Plain }>("GET", `/reserved_ips/${ip}`, undefined, { allow404: true }))?.reserved_ip;
}

export const reservedIp: ResourceType = {
    async check(_olds, news) {
        return { inputs: news, failures: required(news, ["region"]) };
    },
    async diff(olds, news) {
        const replaces = changed(olds, news, ["region", ...(news.ipAddress !== undefined ? ["ipAddress"] : [])]);
        const updates = changed(olds, news, ["dropletId"]);
        return replaces.length + updates.length === 0 ? { changes: false } : { changes: true, replaces };
    },
    async create(ctx, inputs) {
        const p = plain(inputs);
        const r = await api<{ reserved_ip: Plain }>("POST", "/reserved_ips", { region: p.region });
        const ip = r!.reserved_ip.ip as string;
        if (p.dropletId !== undefined) await ipAction(ctx.log, ip, { type: "assign", droplet_id: Number(p.dropletId) });
        return { id: ip, outs: outputs((await getIp(ip))!) };
    },
    async update(ctx, id, olds, news) {
        const p = plain(news);
        if (olds.dropletId !== undefined) await ipAction(ctx.log, id, { type: "unassign" });
        if (p.dropletId !== undefined) await ipAction(ctx.log, id, { type: "assign", droplet_id: Number(p.dropletId) });
        return { outs: outputs((await getIp(id))!) };
    },
    async delete(_ctx, id) {
        await api("DELETE", `/reserved_ips/${id}`, undefined, { allow404: true });
    },
    async read(_ctx, id) {
        const ip = await getIp(id);
        return ip && { id, props: outputs(ip) };
    },
};

export const reservedIpAssignment: ResourceType = {
    async check(_olds, news) {
        return { inputs: news, failures: required(news, ["dropletId", "ipAddress"]) };
    },
    async diff(olds, news) {
        const replaces = changed(olds, news, ["dropletId", "ipAddress"]);
        return replaces.length === 0 ? { changes: false } : { changes: true, replaces };
    },
    async create(ctx, inputs) {
        const p = plain(inputs);
        await ipAction(ctx.log, p.ipAddress, { type: "assign", droplet_id: Number(p.dropletId) });
        return { id: `${p.ipAddress}-${p.dropletId}`, outs: { ipAddress: p.ipAddress, dropletId: Number(p.dropletId) } };
    },
    async delete(ctx, _id, props) {
        const p = plain(props);
        const ip = await getIp(p.ipAddress);
        // Unassign only if it still points at this droplet (a replacement may have moved it).
        if (ip?.droplet?.id === Number(p.dropletId)) await ipAction(ctx.log, p.ipAddress, { type: "unassign" });
    },
    async read(_ctx, id, props) {
        const p = plain(props);
        const ip = await getIp(p.ipAddress);
        return ip?.droplet?.id === Number(p.dropletId) ? { id, props } : undefined;
    },
};
