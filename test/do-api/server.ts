/**
 * An in-memory stand-in for the part of the public DigitalOcean v2 API that the official
 * digitalocean provider (the bridged Terraform provider, through godo) calls for onevm's
 * resources: droplets and their actions, tags, SSH keys, firewalls, volumes and their
 * actions, reserved IPs and their actions, and /v2/actions. Tests only: HTTP on
 * 127.0.0.1 with a random port, one bearer token, every request recorded.
 *
 * It answers as the API reference documents (docs.digitalocean.com/reference/api):
 * resources wrapped in their singular key (`{"droplet": …}`), lists in their plural key
 * with `links` and `meta.total` and `page`/`per_page` pagination, errors as
 * `{"id", "message", "request_id"}`, creates as 201/202 and deletes as 204. Everything
 * completes at once: a new droplet is "new" in the create response and "active" from the
 * first read, and every action is "completed" with a `completed_at`, so each of the
 * provider's waits ends at its first poll (the waits' own initial delays remain: ~10 s).
 */
import { createHash, randomUUID } from "crypto";
import * as http from "http";
import { AddressInfo } from "net";

type Obj = Record<string, any>;

export interface RecordedRequest {
    method: string;
    path: string;
    query: Record<string, string>;
    body?: Obj;
    auth?: string;
}

export interface FakeDoApi {
    url: string;
    token: string;
    /** Every request, in order. */
    requests: RecordedRequest[];
    droplets: Map<string, Obj>;
    keys: Map<string, Obj>;
    firewalls: Map<string, Obj>;
    volumes: Map<string, Obj>;
    reservedIps: Map<string, Obj>;
    actions: Map<string, Obj>;
    tags: Map<string, Obj>;
    close(): Promise<void>;
}

export interface FakeDoOptions {
    token?: string;
    /** Reads of a new droplet that still answer status "new" before it is "active" (default 0). */
    bootPolls?: number;
    /** Public IPv4 of every droplet created (default 203.0.113.10, 11, ...). */
    dropletIp?: string;
}

class ApiError extends Error {
    constructor(
        readonly status: number,
        readonly id: string,
        message: string,
    ) {
        super(message);
    }
}
const notFound = () => new ApiError(404, "not_found", "The resource you were accessing could not be found.");
const unprocessable = (message: string) => new ApiError(422, "unprocessable_entity", message);

/** The API's timestamps: RFC 3339, whole seconds, UTC. */
const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

const REGIONS: Record<string, string> = { fra1: "Frankfurt 1", ams3: "Amsterdam 3", nyc3: "New York 3", lon1: "London 1", sfo3: "San Francisco 3", sgp1: "Singapore 1" };
const region = (slug: string) => ({
    slug,
    name: REGIONS[slug] ?? slug,
    sizes: ["s-1vcpu-1gb", "s-2vcpu-4gb", "s-4vcpu-8gb"],
    features: ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"],
    available: true,
});
const SIZES: Record<string, { memory: number; vcpus: number; disk: number; price_monthly: number; price_hourly: number }> = {
    "s-1vcpu-1gb": { memory: 1024, vcpus: 1, disk: 25, price_monthly: 6, price_hourly: 0.00893 },
    "s-2vcpu-4gb": { memory: 4096, vcpus: 2, disk: 80, price_monthly: 24, price_hourly: 0.03571 },
    "s-4vcpu-8gb": { memory: 8192, vcpus: 4, disk: 160, price_monthly: 48, price_hourly: 0.07143 },
};

/** An OpenSSH public key line's MD5 fingerprint, as DigitalOcean shows it (aa:bb:…). */
export function md5Fingerprint(publicKey: string): string {
    const blob = Buffer.from(publicKey.trim().split(/\s+/)[1] ?? "", "base64");
    return createHash("md5").update(blob).digest("hex").match(/../g)!.join(":");
}

/** `page`/`per_page` (default 20, at most 200) of a list, with the API's links and meta. */
export function paginate(base: string, key: string, items: Obj[], query: Record<string, string>): Obj {
    const perPage = Math.min(Math.max(Number(query.per_page) || 20, 1), 200);
    const lastPage = Math.max(Math.ceil(items.length / perPage), 1);
    const page = Math.min(Math.max(Number(query.page) || 1, 1), lastPage);
    const href = (p: number) => `${base}?page=${p}&per_page=${perPage}`;
    const pages: Obj = {};
    if (page > 1) Object.assign(pages, { first: href(1), prev: href(page - 1) });
    if (page < lastPage) Object.assign(pages, { next: href(page + 1), last: href(lastPage) });
    return { [key]: items.slice((page - 1) * perPage, page * perPage), links: Object.keys(pages).length ? { pages } : {}, meta: { total: items.length } };
}

export async function startFakeDoApi(o: FakeDoOptions = {}): Promise<FakeDoApi> {
    const token = o.token ?? "fake-do-token";
    let seq = 3164444;
    let ipSeq = 10;
    const droplets = new Map<string, Obj>();
    const keys = new Map<string, Obj>();
    const firewalls = new Map<string, Obj>();
    const volumes = new Map<string, Obj>();
    const reservedIps = new Map<string, Obj>();
    const actions = new Map<string, Obj>();
    const tags = new Map<string, Obj>();
    const requests: RecordedRequest[] = [];
    const readsLeft = new Map<number, number>();
    let url = "";

    /** A completed action on a resource (resource_id is an integer: a reserved IP's is its address as a number). */
    function action(type: string, resourceId: number | null, resourceType: string, regionSlug?: string): Obj {
        const t = now();
        const a = {
            id: ++seq, status: "completed", type, started_at: t, completed_at: t, resource_id: resourceId, resource_type: resourceType,
            region: regionSlug ? region(regionSlug) : null, region_slug: regionSlug ?? null,
        };
        actions.set(String(a.id), a);
        return a;
    }
    const ipNumber = (ip: string) => ip.split(".").reduce((n, part) => n * 256 + Number(part), 0);

    function ensureTags(names: unknown): string[] {
        if (names === undefined || names === null) return [];
        if (!Array.isArray(names) || names.some((n) => typeof n !== "string" || !/^[A-Za-z0-9:_-]{1,255}$/.test(n))) {
            throw unprocessable("tags must be strings of letters, numbers, colons, dashes and underscores");
        }
        for (const n of names) if (!tags.has(n)) tags.set(n, { name: n });
        return [...new Set(names as string[])];
    }
    function tagView(name: string): Obj {
        const count = (m: Map<string, Obj>) => [...m.values()].filter((r) => (r.tags ?? []).includes(name)).length;
        const dropletCount = count(droplets), volumeCount = count(volumes);
        return {
            name,
            resources: {
                count: dropletCount + volumeCount,
                droplets: { count: dropletCount },
                volumes: { count: volumeCount },
                images: { count: 0 }, volume_snapshots: { count: 0 }, databases: { count: 0 },
            },
        };
    }

    function findDroplet(id: unknown): Obj {
        const d = droplets.get(String(id));
        if (!d) throw notFound();
        return d;
    }
    function findKey(ref: unknown): Obj | undefined {
        return keys.get(String(ref)) ?? [...keys.values()].find((k) => k.fingerprint === ref);
    }
    /** The droplet as the API shows it: volume_ids current, without the fields kept for the tests. */
    function dropletView(d: Obj): Obj {
        const { user_data: _u, ssh_key_ids: _k, monitoring: _m, public_ip: _p, ...shown } = d;
        return { ...shown, volume_ids: [...volumes.values()].filter((v) => v.droplet_ids.includes(d.id)).map((v) => v.id) };
    }
    function reservedIpView(ip: Obj): Obj {
        const d = ip.droplet_id !== null ? droplets.get(String(ip.droplet_id)) : undefined;
        return { ip: ip.ip, region: region(ip.region), droplet: d ? dropletView(d) : null, locked: false, project_id: ip.project_id };
    }

    function validateRules(b: Obj): void {
        const rules: Array<[Obj, "sources" | "destinations"]> = [
            ...(b.inbound_rules ?? []).map((r: Obj) => [r, "sources"] as [Obj, "sources"]),
            ...(b.outbound_rules ?? []).map((r: Obj) => [r, "destinations"] as [Obj, "destinations"]),
        ];
        if (rules.length === 0) throw unprocessable("at least one inbound or outbound rule is required");
        for (const [r, side] of rules) {
            if (!["tcp", "udp", "icmp"].includes(r.protocol)) throw unprocessable(`invalid protocol ${JSON.stringify(r.protocol)}: must be tcp, udp or icmp`);
            if (r.protocol !== "icmp" && !r.ports) throw unprocessable(`ports is required for protocol ${r.protocol}`);
            if (r.ports && !/^(all|0|\d{1,5}(-\d{1,5})?)$/.test(String(r.ports))) throw unprocessable(`invalid ports ${JSON.stringify(r.ports)}`);
            const t = r[side] ?? {};
            const n = ["addresses", "droplet_ids", "load_balancer_uids", "kubernetes_ids", "tags"].reduce((s, k) => s + (t[k]?.length ?? 0), 0);
            if (n === 0) throw unprocessable(`each rule needs at least one of ${side}.addresses, droplet_ids, load_balancer_uids, kubernetes_ids or tags`);
        }
        if (!b.name || !/^[A-Za-z0-9.-]{1,255}$/.test(b.name)) throw unprocessable("name must be 1-255 letters, numbers, dots and dashes");
        for (const id of b.droplet_ids ?? []) findDroplet(id);
    }
    const firewallFields = (b: Obj) => ({
        name: b.name,
        inbound_rules: b.inbound_rules ?? [],
        outbound_rules: b.outbound_rules ?? [],
        droplet_ids: b.droplet_ids ?? [],
        tags: ensureTags(b.tags),
    });

    type Handler = (m: RegExpMatchArray, b: Obj, q: Record<string, string>, path: string) => { status: number; body?: Obj };
    const ok = (body: Obj, status = 200) => ({ status, body });
    const noContent = () => ({ status: 204 });
    const routes: Array<[string, RegExp, Handler]> = [
        ["GET", /^\/v2\/account$/, () => ok({ account: { droplet_limit: 25, volume_limit: 100, floating_ip_limit: 3, email: "e2e@example.com", uuid: "fake-account", email_verified: true, status: "active", status_message: "" } })],
        // Actions
        ["GET", /^\/v2\/actions$/, (_m, _b, q, p) => ok(paginate(url + p, "actions", [...actions.values()].reverse(), q))],
        ["GET", /^\/v2\/actions\/(\d+)$/, (m) => ok({ action: actions.get(m[1]) ?? throwIt(notFound()) })],
        // SSH keys
        ["GET", /^\/v2\/account\/keys$/, (_m, _b, q, p) => ok(paginate(url + p, "ssh_keys", [...keys.values()], q))],
        ["POST", /^\/v2\/account\/keys$/, (_m, b) => {
            if (!b.name) throw unprocessable("name is required");
            const publicKey = String(b.public_key ?? "").trim();
            if (!/^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*( .*)?$/.test(publicKey)) throw unprocessable("Key invalid, key should be of the format `type key [comment]`");
            const fingerprint = md5Fingerprint(publicKey);
            if ([...keys.values()].some((k) => k.fingerprint === fingerprint)) throw unprocessable("SSH Key is already in use on your account");
            const k = { id: ++seq, fingerprint, public_key: publicKey, name: b.name };
            keys.set(String(k.id), k);
            return ok({ ssh_key: k }, 201);
        }],
        ["GET", /^\/v2\/account\/keys\/([^/]+)$/, (m) => ok({ ssh_key: findKey(m[1]) ?? throwIt(notFound()) })],
        ["PUT", /^\/v2\/account\/keys\/([^/]+)$/, (m, b) => {
            const k = findKey(m[1]) ?? throwIt(notFound());
            if (b.name) k.name = b.name;
            return ok({ ssh_key: k });
        }],
        ["DELETE", /^\/v2\/account\/keys\/([^/]+)$/, (m) => {
            const k = findKey(m[1]) ?? throwIt(notFound());
            keys.delete(String(k.id));
            return noContent();
        }],
        // Droplets
        ["GET", /^\/v2\/droplets$/, (_m, _b, q, p) => ok(paginate(url + p, "droplets", [...droplets.values()].filter((d) => !q.tag_name || d.tags.includes(q.tag_name)).map(dropletView), q))],
        ["POST", /^\/v2\/droplets$/, (_m, b) => {
            for (const f of ["name", "region", "size", "image"]) if (b[f] === undefined || b[f] === "") throw unprocessable(`${f} is required`);
            if (!/^[A-Za-z0-9.-]{1,253}$/.test(b.name)) throw unprocessable("Name Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)");
            if (!REGIONS[b.region]) throw unprocessable(`Region is not available: ${b.region}`);
            if (!SIZES[b.size]) throw unprocessable(`Size is not available: ${b.size}`);
            const sshKeys = (b.ssh_keys ?? []).map((ref: unknown) => findKey(ref) ?? throwIt(unprocessable(`SSH key ${ref} not found`)));
            for (const v of b.volumes ?? []) if (!volumes.has(String(typeof v === "object" ? v.id : v))) throw unprocessable(`volume ${JSON.stringify(v)} not found`);
            if (b.user_data !== undefined && Buffer.byteLength(String(b.user_data)) > 64 * 1024) throw unprocessable("user_data is limited to 64 KiB");
            const id = ++seq;
            const ip = o.dropletIp ?? `203.0.113.${ipSeq++}`;
            const s = SIZES[b.size];
            const d: Obj = {
                id, name: b.name, memory: s.memory, vcpus: s.vcpus, disk: s.disk, locked: false, status: "new", kernel: null,
                created_at: now(), features: [...(b.monitoring ? ["monitoring"] : []), ...(b.backups ? ["backups"] : []), ...(b.ipv6 ? ["ipv6"] : []), "droplet_agent", "private_networking"],
                backup_ids: [], next_backup_window: null, snapshot_ids: [],
                image: typeof b.image === "number"
                    ? { id: b.image, name: "custom image", distribution: "Unknown", slug: null, public: false, regions: [b.region], type: "custom" }
                    : { id: 1_000_000 + (ipSeq % 1000), name: b.image, distribution: b.image.split("-")[0], slug: b.image, public: true, regions: Object.keys(REGIONS), type: "base", min_disk_size: 7, size_gigabytes: 2.36, status: "available", created_at: "2026-04-25T00:00:00Z" },
                size: { slug: b.size, memory: s.memory, vcpus: s.vcpus, disk: s.disk, transfer: 4, price_monthly: s.price_monthly, price_hourly: s.price_hourly, regions: Object.keys(REGIONS), available: true, description: "Basic" },
                size_slug: b.size,
                networks: { v4: [] as Obj[], v6: [] as Obj[] },
                region: region(b.region),
                tags: ensureTags(b.tags),
                vpc_uuid: b.vpc_uuid ?? "5a4981aa-9653-4bd1-bef5-d6bff52042e4",
                // Not part of the API's droplet (user data is write-only there): kept for the tests.
                user_data: b.user_data, ssh_key_ids: sshKeys.map((k: Obj) => k.id), monitoring: !!b.monitoring,
                public_ip: ip,
            };
            droplets.set(String(id), d);
            for (const v of b.volumes ?? []) volumes.get(String(typeof v === "object" ? v.id : v))!.droplet_ids = [id];
            readsLeft.set(id, o.bootPolls ?? 0);
            const a = action("create", id, "droplet", b.region);
            return ok({ droplet: dropletView(d), links: { actions: [{ id: a.id, rel: "create", href: `${url}/v2/actions/${a.id}` }] } }, 202);
        }],
        ["GET", /^\/v2\/droplets\/(\d+)$/, (m) => {
            const d = findDroplet(m[1]);
            const left = readsLeft.get(d.id) ?? 0;
            if (left > 0) readsLeft.set(d.id, left - 1);
            else if (d.status === "new") boot(d);
            return ok({ droplet: dropletView(d) });
        }],
        ["DELETE", /^\/v2\/droplets\/(\d+)$/, (m) => {
            const d = findDroplet(m[1]);
            for (const v of volumes.values()) v.droplet_ids = v.droplet_ids.filter((x: number) => x !== d.id);
            for (const ip of reservedIps.values()) if (ip.droplet_id === d.id) ip.droplet_id = null;
            for (const f of firewalls.values()) f.droplet_ids = f.droplet_ids.filter((x: number) => x !== d.id);
            droplets.delete(m[1]);
            return noContent();
        }],
        ["GET", /^\/v2\/droplets\/(\d+)\/actions$/, (m, _b, q, p) => {
            const d = findDroplet(m[1]);
            return ok(paginate(url + p, "actions", [...actions.values()].filter((a) => a.resource_type === "droplet" && a.resource_id === d.id).reverse(), q));
        }],
        ["GET", /^\/v2\/droplets\/(\d+)\/actions\/(\d+)$/, (m) => {
            const a = actions.get(m[2]);
            if (!a || a.resource_type !== "droplet" || a.resource_id !== Number(m[1])) throw notFound();
            return ok({ action: a });
        }],
        ["POST", /^\/v2\/droplets\/(\d+)\/actions$/, (m, b) => {
            const d = findDroplet(m[1]);
            switch (b.type) {
                case "power_off": case "shutdown": d.status = "off"; break;
                case "power_on": case "reboot": case "power_cycle": d.status = "active"; break;
                case "resize":
                    if (d.status !== "off") throw unprocessable("Droplet must be powered off to resize");
                    if (!SIZES[b.size]) throw unprocessable(`Size is not available: ${b.size}`);
                    Object.assign(d, { size_slug: b.size, size: { ...d.size, slug: b.size, ...SIZES[b.size] }, memory: SIZES[b.size].memory, vcpus: SIZES[b.size].vcpus });
                    break;
                case "rename":
                    if (!b.name) throw unprocessable("name is required");
                    d.name = b.name;
                    break;
                case "enable_backups": d.features = [...new Set([...d.features, "backups"])]; break;
                case "disable_backups": d.features = d.features.filter((f: string) => f !== "backups"); break;
                case "enable_ipv6": d.features = [...new Set([...d.features, "ipv6"])]; break;
                case "enable_private_networking": break;
                default: throw unprocessable(`unsupported action type ${JSON.stringify(b.type)}`);
            }
            return ok({ action: action(b.type, d.id, "droplet", d.region.slug) }, 201);
        }],
        // Tags
        ["GET", /^\/v2\/tags$/, (_m, _b, q, p) => ok(paginate(url + p, "tags", [...tags.keys()].map(tagView), q))],
        ["POST", /^\/v2\/tags$/, (_m, b) => {
            // Creating a tag that exists returns it: tags are plain names.
            ensureTags([b.name]);
            return ok({ tag: tagView(b.name) }, 201);
        }],
        ["GET", /^\/v2\/tags\/([^/]+)$/, (m) => {
            const name = decodeURIComponent(m[1]);
            if (!tags.has(name)) throw notFound();
            return ok({ tag: tagView(name) });
        }],
        ["DELETE", /^\/v2\/tags\/([^/]+)$/, (m) => {
            const name = decodeURIComponent(m[1]);
            if (!tags.delete(name)) throw notFound();
            for (const r of [...droplets.values(), ...volumes.values()]) r.tags = r.tags.filter((t: string) => t !== name);
            return noContent();
        }],
        ["POST|DELETE", /^\/v2\/tags\/([^/]+)\/resources$/, (m, b, _q, _p) => {
            const name = decodeURIComponent(m[1]);
            if (!tags.has(name)) throw notFound();
            const add = b.__method === "POST";
            for (const r of b.resources ?? []) {
                const target = r.resource_type === "droplet" ? droplets.get(String(r.resource_id)) : r.resource_type === "volume" ? volumes.get(String(r.resource_id)) : undefined;
                if (!target) throw unprocessable(`resource ${r.resource_type} ${r.resource_id} not found`);
                target.tags = add ? [...new Set([...target.tags, name])] : target.tags.filter((t: string) => t !== name);
            }
            return noContent();
        }],
        // Firewalls
        ["GET", /^\/v2\/firewalls$/, (_m, _b, q, p) => ok(paginate(url + p, "firewalls", [...firewalls.values()], q))],
        ["POST", /^\/v2\/firewalls$/, (_m, b) => {
            validateRules(b);
            const f = { id: randomUUID(), status: "succeeded", created_at: now(), pending_changes: [], ...firewallFields(b) };
            firewalls.set(f.id, f);
            return ok({ firewall: f }, 202);
        }],
        ["GET", /^\/v2\/firewalls\/([\w-]+)$/, (m) => ok({ firewall: firewalls.get(m[1]) ?? throwIt(notFound()) })],
        ["PUT", /^\/v2\/firewalls\/([\w-]+)$/, (m, b) => {
            const f = firewalls.get(m[1]) ?? throwIt(notFound());
            validateRules(b);
            return ok({ firewall: Object.assign(f, firewallFields(b)) });
        }],
        ["DELETE", /^\/v2\/firewalls\/([\w-]+)$/, (m) => {
            if (!firewalls.delete(m[1])) throw notFound();
            return noContent();
        }],
        // Volumes
        ["GET", /^\/v2\/volumes$/, (_m, _b, q, p) => ok(paginate(url + p, "volumes", [...volumes.values()].filter((v) => (!q.name || v.name === q.name) && (!q.region || v.region.slug === q.region)), q))],
        ["POST", /^\/v2\/volumes$/, (_m, b) => {
            if (!b.name || !/^[a-z0-9][a-z0-9-]{0,63}$/.test(b.name)) throw unprocessable("name must be lowercase letters, numbers and dashes, starting with a letter or number");
            if (!REGIONS[b.region]) throw unprocessable(`Region is not available: ${b.region}`);
            if (!Number.isInteger(b.size_gigabytes) || b.size_gigabytes < 1 || b.size_gigabytes > 16384) throw unprocessable("size_gigabytes must be between 1 and 16384");
            if (b.filesystem_type && !["ext4", "xfs"].includes(b.filesystem_type)) throw unprocessable("filesystem_type must be ext4 or xfs");
            if ([...volumes.values()].some((v) => v.name === b.name && v.region.slug === b.region)) throw new ApiError(409, "conflict", `a volume named ${b.name} already exists in ${b.region}`);
            const v = {
                id: randomUUID(), name: b.name, region: region(b.region), size_gigabytes: b.size_gigabytes, description: b.description ?? "",
                droplet_ids: [] as number[], created_at: now(), filesystem_type: b.filesystem_type ?? "", filesystem_label: b.filesystem_label ?? "", tags: ensureTags(b.tags),
            };
            volumes.set(v.id, v);
            return ok({ volume: v }, 201);
        }],
        ["GET", /^\/v2\/volumes\/([\w-]+)$/, (m) => ok({ volume: volumes.get(m[1]) ?? throwIt(notFound()) })],
        ["DELETE", /^\/v2\/volumes\/([\w-]+)$/, (m) => {
            const v = volumes.get(m[1]) ?? throwIt(notFound());
            if (v.droplet_ids.length > 0) throw new ApiError(409, "conflict", "Volume is currently attached to a Droplet: detach it first");
            volumes.delete(m[1]);
            return noContent();
        }],
        ["POST", /^\/v2\/volumes\/([\w-]+)\/actions$/, (m, b) => {
            const v = volumes.get(m[1]) ?? throwIt(notFound());
            if (b.type === "attach") {
                const d = findDroplet(b.droplet_id);
                if (d.region.slug !== v.region.slug) throw unprocessable("volume and droplet must be in the same region");
                if (v.droplet_ids.length > 0 && v.droplet_ids[0] !== d.id) throw unprocessable("Volume is already attached to another Droplet");
                v.droplet_ids = [d.id];
            } else if (b.type === "detach") {
                if (!v.droplet_ids.includes(Number(b.droplet_id))) throw unprocessable(`Volume is not attached to Droplet ${b.droplet_id}`);
                v.droplet_ids = [];
            } else if (b.type === "resize") {
                if (!(b.size_gigabytes > v.size_gigabytes)) throw unprocessable("volumes can only grow: size_gigabytes must be larger than the current size");
                v.size_gigabytes = b.size_gigabytes;
            } else {
                throw unprocessable(`unsupported action type ${JSON.stringify(b.type)}`);
            }
            return ok({ action: action(`${b.type}_volume`, null, "volume", v.region.slug) }, 202);
        }],
        ["GET", /^\/v2\/volumes\/([\w-]+)\/actions\/(\d+)$/, (m) => ok({ action: actions.get(m[2]) ?? throwIt(notFound()) })],
        // Reserved IPs
        ["GET", /^\/v2\/reserved_ips$/, (_m, _b, q, p) => ok(paginate(url + p, "reserved_ips", [...reservedIps.values()].map(reservedIpView), q))],
        ["POST", /^\/v2\/reserved_ips$/, (_m, b) => {
            let regionSlug = b.region;
            let dropletId: number | null = null;
            if (b.droplet_id !== undefined) {
                const d = findDroplet(b.droplet_id);
                regionSlug = d.region.slug;
                dropletId = d.id;
            } else if (!REGIONS[regionSlug]) {
                throw unprocessable("region or droplet_id is required");
            }
            const ip = { ip: `198.51.100.${++ipSeq}`, region: regionSlug, droplet_id: dropletId, project_id: "746c6152-2fa2-11ed-92d3-27aaa54e4988" };
            reservedIps.set(ip.ip, ip);
            return ok({ reserved_ip: reservedIpView(ip), links: {} }, 202);
        }],
        ["GET", /^\/v2\/reserved_ips\/([\d.]+)$/, (m) => ok({ reserved_ip: reservedIpView(reservedIps.get(m[1]) ?? throwIt(notFound())) })],
        ["DELETE", /^\/v2\/reserved_ips\/([\d.]+)$/, (m) => {
            if (!reservedIps.delete(m[1])) throw notFound();
            return noContent();
        }],
        ["POST", /^\/v2\/reserved_ips\/([\d.]+)\/actions$/, (m, b) => {
            const ip = reservedIps.get(m[1]) ?? throwIt(notFound());
            if (b.type === "assign") {
                const d = findDroplet(b.droplet_id);
                if (d.region.slug !== ip.region) throw unprocessable("the reserved IP and the droplet must be in the same region");
                ip.droplet_id = d.id;
            } else if (b.type === "unassign") {
                if (ip.droplet_id === null) throw unprocessable("The reserved IP is not assigned to a Droplet");
                ip.droplet_id = null;
            } else {
                throw unprocessable(`unsupported action type ${JSON.stringify(b.type)}`);
            }
            return ok({ action: action(`${b.type}_ip`, ipNumber(ip.ip), "reserved_ip", ip.region) }, 201);
        }],
        ["GET", /^\/v2\/reserved_ips\/([\d.]+)\/actions$/, (m, _b, q, p) => {
            if (!reservedIps.has(m[1])) throw notFound();
            return ok(paginate(url + p, "actions", [...actions.values()].filter((a) => a.resource_type === "reserved_ip" && a.resource_id === ipNumber(m[1])).reverse(), q));
        }],
        ["GET", /^\/v2\/reserved_ips\/([\d.]+)\/actions\/(\d+)$/, (m) => {
            const a = actions.get(m[2]);
            if (!a || a.resource_type !== "reserved_ip" || a.resource_id !== ipNumber(m[1])) throw notFound();
            return ok({ action: a });
        }],
    ];

    function boot(d: Obj): void {
        d.status = "active";
        d.networks = {
            v4: [
                { ip_address: d.public_ip, netmask: "255.255.240.0", gateway: d.public_ip.replace(/\.\d+$/, ".1"), type: "public" },
                { ip_address: `10.114.0.${(d.id % 250) + 2}`, netmask: "255.255.240.0", gateway: "10.114.0.1", type: "private" },
            ],
            v6: [],
        };
    }

    function route(method: string, path: string, body: Obj, query: Record<string, string>): { status: number; body?: Obj } {
        for (const [methods, pattern, handler] of routes) {
            const m = path.match(pattern);
            if (m && methods.split("|").includes(method)) return handler(m, { ...body, __method: method }, query, path);
        }
        throw notFound();
    }

    let requestSeq = 0;
    const server = http.createServer((req, res) => {
        let raw = "";
        req.on("data", (c) => (raw += c));
        req.on("end", () => {
            const parsed = new URL(req.url ?? "/", "http://x");
            const path = parsed.pathname.replace(/\/+$/, "");
            const query = Object.fromEntries(parsed.searchParams.entries());
            const requestId = `fake-${++requestSeq}`;
            const answer = (status: number, b?: Obj) => {
                const headers: http.OutgoingHttpHeaders = { "ratelimit-limit": "5000", "ratelimit-remaining": String(5000 - requestSeq), "ratelimit-reset": String(Math.floor(Date.now() / 1000) + 60), "x-request-id": requestId };
                if (b) headers["content-type"] = "application/json; charset=utf-8";
                res.writeHead(status, headers);
                res.end(b ? JSON.stringify(b) : undefined);
            };
            let body: Obj = {};
            try {
                body = raw ? JSON.parse(raw) : {};
            } catch {
                requests.push({ method: req.method ?? "", path, query, auth: req.headers.authorization });
                return answer(400, { id: "bad_request", message: "the request body is not valid JSON", request_id: requestId });
            }
            requests.push({ method: req.method ?? "", path, query, body: raw ? body : undefined, auth: req.headers.authorization });
            if (req.headers.authorization !== `Bearer ${token}`) {
                return answer(401, { id: "Unauthorized", message: "Unable to authenticate you", request_id: requestId });
            }
            try {
                const r = route(req.method ?? "", path, body, query);
                answer(r.status, r.body);
            } catch (e) {
                if (!(e instanceof ApiError)) throw e;
                answer(e.status, { id: e.id, message: e.message, request_id: requestId });
            }
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
        url,
        token,
        requests,
        droplets,
        keys,
        firewalls,
        volumes,
        reservedIps,
        actions,
        tags,
        close: () =>
            new Promise((resolve) => {
                server.closeAllConnections();
                server.close(() => resolve());
            }),
    };
}

function throwIt(e: Error): never {
    throw e;
}
