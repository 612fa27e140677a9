/**
 * An in-memory stand-in for the part of the DigitalOcean v2 API the digitalocean plugin
 * uses (droplets, actions, tags, SSH keys, firewalls, volumes, reserved IPs). Tests only:
 * HTTP on 127.0.0.1 with a random port, one bearer token, every request recorded.
 */
import * as http from "http";
import { AddressInfo } from "net";

type Obj = Record<string, any>;

export interface FakeDoApi {
    url: string;
    token: string;
    /** Every request, in order: method, path and parsed JSON body. */
    requests: Array<{ method: string; path: string; body?: Obj; auth?: string }>;
    droplets: Map<string, Obj>;
    keys: Map<string, Obj>;
    firewalls: Map<string, Obj>;
    volumes: Map<string, Obj>;
    reservedIps: Map<string, Obj>;
    close(): Promise<void>;
}

export interface FakeDoOptions {
    token?: string;
    /** GETs a new droplet answers with status "new" before it is "active". */
    bootPolls?: number;
    /** Public IPv4 of every droplet created (default 203.0.113.10, 11, ...). */
    dropletIp?: string;
}

export async function startFakeDoApi(o: FakeDoOptions = {}): Promise<FakeDoApi> {
    const token = o.token ?? "fake-do-token";
    let seq = 1000;
    let ipSeq = 10;
    const droplets = new Map<string, Obj>();
    const keys = new Map<string, Obj>();
    const firewalls = new Map<string, Obj>();
    const volumes = new Map<string, Obj>();
    const reservedIps = new Map<string, Obj>();
    const actions = new Map<string, Obj>();
    const tags = new Set<string>();
    const requests: FakeDoApi["requests"] = [];
    const pollsLeft = new Map<string, number>();

    const action = (type: string, resourceId: string | number, resourceType: string) => {
        const a = { id: ++seq, type, status: "completed", resource_id: resourceId, resource_type: resourceType };
        actions.set(String(a.id), a);
        return { action: a };
    };
    const regionOf = (slug: string) => ({ slug, name: slug });
    const notFound = { status: 404, body: { id: "not_found", message: "The resource you were accessing could not be found." } };
    const bad = (message: string) => ({ status: 422, body: { id: "unprocessable_entity", message } });

    function route(method: string, path: string, b: Obj): { status: number; body?: Obj } {
        let m: RegExpMatchArray | null;
        const ok = (body: Obj, status = 200) => ({ status, body });
        if (method === "GET" && (m = path.match(/^\/v2\/actions\/(\d+)$/))) {
            const a = actions.get(m[1]);
            return a ? ok({ action: a }) : notFound;
        }
        // SSH keys
        if (method === "POST" && path === "/v2/account/keys") {
            if (!/^ssh-(ed25519|rsa) /.test(b.public_key ?? "")) return bad("Key invalid type, we support 'ssh-rsa', 'ssh-ed25519'");
            const k = { id: ++seq, name: b.name, public_key: b.public_key, fingerprint: `fp:${seq}` };
            keys.set(String(k.id), k);
            return ok({ ssh_key: k }, 201);
        }
        if ((m = path.match(/^\/v2\/account\/keys\/(\d+)$/))) {
            const k = keys.get(m[1]);
            if (!k) return notFound;
            if (method === "GET") return ok({ ssh_key: k });
            if (method === "PUT") return ok({ ssh_key: Object.assign(k, { name: b.name }) });
            if (method === "DELETE") return keys.delete(m[1]), { status: 204 };
        }
        // Droplets
        if (method === "POST" && path === "/v2/droplets") {
            for (const f of ["name", "region", "size", "image"]) if (!b[f]) return bad(`${f} is required`);
            for (const k of b.ssh_keys ?? []) if (!keys.has(String(k))) return bad(`ssh key ${k} not found`);
            const id = String(++seq);
            const ip = o.dropletIp ?? `203.0.113.${ipSeq++}`;
            const d = {
                id: Number(id), name: b.name, status: "new", memory: 4096, vcpus: 2, disk: 80, locked: false,
                created_at: new Date().toISOString(), region: regionOf(b.region), size_slug: b.size,
                size: { slug: b.size, price_hourly: 0.03571, price_monthly: 24 }, image: { slug: b.image },
                networks: { v4: [{ ip_address: ip, type: "public" }, { ip_address: `10.114.0.${ipSeq}`, type: "private" }], v6: [] },
                tags: b.tags ?? [], volume_ids: b.volumes ?? [], vpc_uuid: "vpc-fake", monitoring: b.monitoring, user_data: b.user_data, ssh_keys: b.ssh_keys,
            };
            droplets.set(id, d);
            pollsLeft.set(id, o.bootPolls ?? 1);
            return ok({ droplet: d }, 202);
        }
        if ((m = path.match(/^\/v2\/droplets\/(\d+)$/))) {
            const d = droplets.get(m[1]);
            if (!d) return notFound;
            if (method === "GET") {
                const left = pollsLeft.get(m[1]) ?? 0;
                if (left > 0) pollsLeft.set(m[1], left - 1);
                else if (d.status === "new") d.status = "active";
                return ok({ droplet: d });
            }
            if (method === "DELETE") {
                for (const v of volumes.values()) if (v.droplet_ids.includes(d.id)) v.droplet_ids = v.droplet_ids.filter((x: number) => x !== d.id);
                for (const ip of reservedIps.values()) if (ip.droplet?.id === d.id) ip.droplet = null;
                for (const f of firewalls.values()) f.droplet_ids = f.droplet_ids.filter((x: number) => x !== d.id);
                droplets.delete(m[1]);
                return { status: 204 };
            }
        }
        if (method === "POST" && (m = path.match(/^\/v2\/droplets\/(\d+)\/actions$/))) {
            const d = droplets.get(m[1]);
            if (!d) return notFound;
            if (b.type === "resize") {
                if (d.status !== "off") return bad("Droplet must be powered off to resize");
                d.size_slug = b.size;
                d.size = { ...d.size, slug: b.size };
            } else if (b.type === "power_off") d.status = "off";
            else if (b.type === "power_on") d.status = "active";
            else if (b.type === "rename") d.name = b.name;
            else return bad(`unsupported droplet action ${b.type}`);
            return ok(action(b.type, d.id, "droplet"), 201);
        }
        // Tags
        if (method === "POST" && path === "/v2/tags") {
            if (tags.has(b.name)) return bad("tag already exists");
            tags.add(b.name);
            return ok({ tag: { name: b.name } }, 201);
        }
        if ((m = path.match(/^\/v2\/tags\/([^/]+)\/resources$/))) {
            const tag = decodeURIComponent(m[1]);
            for (const r of b.resources ?? []) {
                const target = r.resource_type === "droplet" ? droplets.get(String(r.resource_id)) : volumes.get(String(r.resource_id));
                if (!target) return notFound;
                target.tags = method === "POST" ? [...new Set([...target.tags, tag])] : target.tags.filter((t: string) => t !== tag);
            }
            return { status: 204 };
        }
        // Firewalls
        const checkRules = (f: Obj) => {
            for (const r of [...(f.inbound_rules ?? []), ...(f.outbound_rules ?? [])]) {
                if (!["tcp", "udp", "icmp"].includes(r.protocol)) return `invalid protocol ${r.protocol}`;
            }
            for (const id of f.droplet_ids ?? []) if (!droplets.has(String(id))) return `droplet ${id} not found`;
            return undefined;
        };
        if (method === "POST" && path === "/v2/firewalls") {
            const problem = checkRules(b);
            if (problem) return bad(problem);
            const f = { ...b, id: `fw-${++seq}`, status: "succeeded", created_at: new Date().toISOString(), pending_changes: [] };
            firewalls.set(f.id, f);
            return ok({ firewall: f }, 202);
        }
        if ((m = path.match(/^\/v2\/firewalls\/([\w-]+)$/))) {
            const f = firewalls.get(m[1]);
            if (!f) return notFound;
            if (method === "GET") return ok({ firewall: f });
            if (method === "PUT") {
                const problem = checkRules(b);
                if (problem) return bad(problem);
                return ok({ firewall: Object.assign(f, b, { id: f.id }) });
            }
            if (method === "DELETE") return firewalls.delete(m[1]), { status: 204 };
        }
        // Volumes
        if (method === "POST" && path === "/v2/volumes") {
            if (!b.name || !b.region || !b.size_gigabytes) return bad("name, region and size_gigabytes are required");
            const v = {
                id: `vol-${++seq}`, name: b.name, region: regionOf(b.region), size_gigabytes: b.size_gigabytes, description: b.description,
                droplet_ids: [] as number[], filesystem_type: b.filesystem_type ?? "", filesystem_label: b.filesystem_label ?? "", tags: b.tags ?? [],
            };
            volumes.set(v.id, v);
            return ok({ volume: v }, 201);
        }
        if ((m = path.match(/^\/v2\/volumes\/([\w-]+)$/))) {
            const v = volumes.get(m[1]);
            if (!v) return notFound;
            if (method === "GET") return ok({ volume: v });
            if (method === "DELETE") {
                if (v.droplet_ids.length > 0) return { status: 409, body: { id: "conflict", message: "volume is attached to a droplet" } };
                return volumes.delete(m[1]), { status: 204 };
            }
        }
        if (method === "POST" && (m = path.match(/^\/v2\/volumes\/([\w-]+)\/actions$/))) {
            const v = volumes.get(m[1]);
            if (!v) return notFound;
            if (b.type === "attach") {
                if (!droplets.has(String(b.droplet_id))) return notFound;
                if (v.droplet_ids.length > 0) return bad("volume is already attached");
                v.droplet_ids = [b.droplet_id];
                droplets.get(String(b.droplet_id))!.volume_ids.push(v.id);
            } else if (b.type === "detach") {
                v.droplet_ids = v.droplet_ids.filter((x: number) => x !== b.droplet_id);
                const d = droplets.get(String(b.droplet_id));
                if (d) d.volume_ids = d.volume_ids.filter((x: string) => x !== v.id);
            } else if (b.type === "resize") {
                if (b.size_gigabytes < v.size_gigabytes) return bad("volumes cannot shrink");
                v.size_gigabytes = b.size_gigabytes;
            } else return bad(`unsupported volume action ${b.type}`);
            return ok(action(b.type, v.id, "volume"), 202);
        }
        // Reserved IPs
        if (method === "POST" && path === "/v2/reserved_ips") {
            const ip = { ip: `198.51.100.${++ipSeq}`, region: regionOf(b.region), droplet: null as Obj | null };
            reservedIps.set(ip.ip, ip);
            return ok({ reserved_ip: ip }, 202);
        }
        if ((m = path.match(/^\/v2\/reserved_ips\/([\d.]+)$/))) {
            const ip = reservedIps.get(m[1]);
            if (!ip) return notFound;
            if (method === "GET") return ok({ reserved_ip: ip });
            if (method === "DELETE") return reservedIps.delete(m[1]), { status: 204 };
        }
        if (method === "POST" && (m = path.match(/^\/v2\/reserved_ips\/([\d.]+)\/actions$/))) {
            const ip = reservedIps.get(m[1]);
            if (!ip) return notFound;
            if (b.type === "assign") {
                const d = droplets.get(String(b.droplet_id));
                if (!d) return notFound;
                ip.droplet = { id: d.id, name: d.name };
            } else if (b.type === "unassign") ip.droplet = null;
            else return bad(`unsupported reserved IP action ${b.type}`);
            return ok(action(b.type, ip.ip, "reserved_ip"), 201);
        }
        return notFound;
    }

    const server = http.createServer((req, res) => {
        let raw = "";
        req.on("data", (c) => (raw += c));
        req.on("end", () => {
            const path = (req.url ?? "").split("?")[0];
            let body: Obj = {};
            try {
                body = raw ? JSON.parse(raw) : {};
            } catch {
                /* left empty: the route reports what is missing */
            }
            requests.push({ method: req.method ?? "", path, body: raw ? body : undefined, auth: req.headers.authorization });
            const answer = (status: number, b?: Obj) => {
                res.writeHead(status, b ? { "Content-Type": "application/json" } : {});
                res.end(b ? JSON.stringify(b) : undefined);
            };
            if (req.headers.authorization !== `Bearer ${token}`) {
                return answer(401, { id: "Unauthorized", message: "Unable to authenticate you" });
            }
            const r = route(req.method ?? "", path, body);
            answer(r.status, r.body);
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return {
        url: `http://127.0.0.1:${port}`,
        token,
        requests,
        droplets,
        keys,
        firewalls,
        volumes,
        reservedIps,
        close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
    };
}
