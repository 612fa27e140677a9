/**
 * The DigitalOcean API stand-in (test/do-api/server.ts) itself: the shapes, status codes,
 * actions and pagination the official provider's client (godo) reads, checked over HTTP.
 * The official provider against it is test/e2e/prod-preview.e2e.test.ts.
 */
import { FakeDoApi, md5Fingerprint, startFakeDoApi } from "./server";

const PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHb5Eqh0hwWH7T1Ey3a9+Y9yUIzq4u5J1oG3l2k3b1Ts deploy";
let api: FakeDoApi;

beforeAll(async () => {
    api = await startFakeDoApi();
});
afterAll(() => api.close());

async function call(method: string, path: string, body?: object, token = api.token): Promise<{ status: number; body: any }> {
    const res = await fetch(`${api.url}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

let keySeq = 0;
/** A distinct valid ed25519 public key line (the API refuses a key already on the account). */
function publicKey(): string {
    const blob = Buffer.alloc(51);
    blob.writeUInt32BE(11, 0);
    blob.write("ssh-ed25519", 4);
    blob.writeUInt32BE(32, 15);
    blob.writeUInt32BE(++keySeq, 19);
    return `ssh-ed25519 ${blob.toString("base64")} k${keySeq}`;
}

async function newDroplet(extra: object = {}): Promise<any> {
    const key = (await call("POST", "/v2/account/keys", { name: "deploy", public_key: publicKey() })).body.ssh_key;
    const r = await call("POST", "/v2/droplets", { name: "bot", region: "fra1", size: "s-2vcpu-4gb", image: "ubuntu-24-04-x64", monitoring: true, tags: ["onevm"], ssh_keys: [key.id], user_data: "#cloud-config\n", ...extra });
    expect(r.status).toBe(202);
    return r.body.droplet;
}

test("every request needs the bearer token; errors carry id, message and request_id", async () => {
    const r = await call("GET", "/v2/account", undefined, "wrong");
    expect(r).toEqual({ status: 401, body: { id: "Unauthorized", message: "Unable to authenticate you", request_id: expect.any(String) } });
    expect((await call("GET", "/v2/droplets/1")).body).toMatchObject({ id: "not_found", message: expect.any(String) });
    expect(api.requests.at(-1)).toMatchObject({ method: "GET", path: "/v2/droplets/1", auth: `Bearer ${api.token}` });
});

test("SSH keys: created with DigitalOcean's MD5 fingerprint, found by id or fingerprint, refused when invalid or duplicate", async () => {
    const r = await call("POST", "/v2/account/keys", { name: "deploy", public_key: PUB });
    expect(r.status).toBe(201);
    expect(r.body.ssh_key).toEqual({ id: expect.any(Number), name: "deploy", public_key: PUB, fingerprint: md5Fingerprint(PUB) });
    expect(r.body.ssh_key.fingerprint).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    expect((await call("GET", `/v2/account/keys/${r.body.ssh_key.fingerprint}`)).body.ssh_key.id).toBe(r.body.ssh_key.id);
    expect((await call("POST", "/v2/account/keys", { name: "again", public_key: PUB })).status).toBe(422);
    expect((await call("POST", "/v2/account/keys", { name: "bad", public_key: "not a key" })).status).toBe(422);
    expect((await call("PUT", `/v2/account/keys/${r.body.ssh_key.id}`, { name: "renamed" })).body.ssh_key.name).toBe("renamed");
    expect((await call("DELETE", `/v2/account/keys/${r.body.ssh_key.id}`)).status).toBe(204);
    expect((await call("GET", `/v2/account/keys/${r.body.ssh_key.id}`)).status).toBe(404);
});

test("lists are paginated with links and meta.total", async () => {
    for (let i = 0; i < 3; i++) await call("POST", "/v2/account/keys", { name: `k${i}`, public_key: publicKey() });
    const total = api.keys.size;
    const first = (await call("GET", "/v2/account/keys?per_page=2")).body;
    expect(first.ssh_keys).toHaveLength(2);
    expect(first.meta).toEqual({ total });
    expect(first.links.pages.next).toBe(`${api.url}/v2/account/keys?page=2&per_page=2`);
    const last = (await call("GET", `/v2/account/keys?page=${Math.ceil(total / 2)}&per_page=2`)).body;
    expect(last.links.pages).toMatchObject({ first: `${api.url}/v2/account/keys?page=1&per_page=2` });
    expect(last.links.pages.next).toBeUndefined();
});

test("droplet: 'new' with a create action link, 'active' with its addresses from the first read; actions complete at once", async () => {
    const d = await newDroplet();
    expect(d).toMatchObject({ status: "new", networks: { v4: [], v6: [] }, size_slug: "s-2vcpu-4gb", region: { slug: "fra1" }, tags: ["onevm"], volume_ids: [] });
    expect(d).not.toHaveProperty("user_data");
    const read = (await call("GET", `/v2/droplets/${d.id}`)).body.droplet;
    expect(read).toMatchObject({ status: "active", locked: false, size: { slug: "s-2vcpu-4gb", price_monthly: 24 }, features: expect.arrayContaining(["monitoring"]) });
    expect(read.networks.v4.find((n: any) => n.type === "public").ip_address).toMatch(/^203\.0\.113\./);
    const actions = (await call("GET", `/v2/droplets/${d.id}/actions?page=1&per_page=50`)).body;
    expect(actions.actions).toEqual([expect.objectContaining({ type: "create", status: "completed", resource_id: d.id, resource_type: "droplet", completed_at: expect.stringMatching(/Z$/) })]);
    const rename = await call("POST", `/v2/droplets/${d.id}/actions`, { type: "rename", name: "bot2" });
    expect(rename.status).toBe(201);
    expect((await call("GET", `/v2/actions/${rename.body.action.id}`)).body.action).toMatchObject({ status: "completed", type: "rename" });
    expect((await call("POST", `/v2/droplets/${d.id}/actions`, { type: "resize", size: "s-4vcpu-8gb" })).status).toBe(422);
    expect(api.droplets.get(String(d.id))).toMatchObject({ name: "bot2", user_data: "#cloud-config\n", monitoring: true });
    expect((await call("DELETE", `/v2/droplets/${d.id}`)).status).toBe(204);
    expect((await call("GET", `/v2/droplets/${d.id}`)).status).toBe(404);
});

test("droplet: unknown SSH keys, regions and sizes are refused", async () => {
    expect((await call("POST", "/v2/droplets", { name: "x", region: "fra1", size: "s-2vcpu-4gb", image: "ubuntu-24-04-x64", ssh_keys: [1] })).body).toMatchObject({ id: "unprocessable_entity" });
    expect((await call("POST", "/v2/droplets", { name: "x", region: "mars1", size: "s-2vcpu-4gb", image: "ubuntu-24-04-x64" })).status).toBe(422);
    expect((await call("POST", "/v2/droplets", { name: "x", region: "fra1", size: "huge", image: "ubuntu-24-04-x64" })).status).toBe(422);
});

test("tags: creating an existing tag returns it; resources are tagged and untagged", async () => {
    const d = await newDroplet();
    expect((await call("POST", "/v2/tags", { name: "prod" })).status).toBe(201);
    expect((await call("POST", "/v2/tags", { name: "prod" })).body.tag.name).toBe("prod");
    const resources = { resources: [{ resource_id: String(d.id), resource_type: "droplet" }] };
    expect((await call("POST", "/v2/tags/prod/resources", resources)).status).toBe(204);
    expect(api.droplets.get(String(d.id))!.tags).toEqual(["onevm", "prod"]);
    expect((await call("GET", "/v2/tags/prod")).body.tag.resources.droplets.count).toBe(1);
    expect((await call("DELETE", "/v2/tags/onevm/resources", resources)).status).toBe(204);
    expect(api.droplets.get(String(d.id))!.tags).toEqual(["prod"]);
});

test("volume: created, attached (shown on the droplet), refused deletion while attached, detached, deleted", async () => {
    const d = await newDroplet();
    const v = await call("POST", "/v2/volumes", { name: "bot-data", region: "fra1", size_gigabytes: 20, filesystem_type: "ext4", description: "pg" });
    expect(v.status).toBe(201);
    expect(v.body.volume).toMatchObject({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), droplet_ids: [], filesystem_type: "ext4", region: { slug: "fra1" }, created_at: expect.any(String) });
    const id = v.body.volume.id;
    const attach = await call("POST", `/v2/volumes/${id}/actions`, { type: "attach", droplet_id: d.id, region: "fra1" });
    expect(attach.body.action).toMatchObject({ type: "attach_volume", status: "completed", resource_type: "volume" });
    expect((await call("GET", `/v2/droplets/${d.id}`)).body.droplet.volume_ids).toEqual([id]);
    expect((await call("DELETE", `/v2/volumes/${id}`)).status).toBe(409);
    expect((await call("POST", `/v2/volumes/${id}/actions`, { type: "resize", size_gigabytes: 10, region: "fra1" })).status).toBe(422);
    expect((await call("POST", `/v2/volumes/${id}/actions`, { type: "detach", droplet_id: d.id, region: "fra1" })).status).toBe(202);
    expect((await call("POST", `/v2/volumes/${id}/actions`, { type: "detach", droplet_id: d.id, region: "fra1" })).status).toBe(422);
    expect((await call("DELETE", `/v2/volumes/${id}`)).status).toBe(204);
});

test("reserved IP: created in a region, assigned (action with an integer resource_id), shown with its droplet, unassigned, deleted", async () => {
    const d = await newDroplet();
    const ip = (await call("POST", "/v2/reserved_ips", { region: "fra1" })).body.reserved_ip;
    expect(ip).toMatchObject({ ip: expect.stringMatching(/^198\.51\.100\./), region: { slug: "fra1" }, droplet: null, locked: false });
    const assign = await call("POST", `/v2/reserved_ips/${ip.ip}/actions`, { type: "assign", droplet_id: d.id });
    expect(assign.status).toBe(201);
    expect(assign.body.action).toMatchObject({ type: "assign_ip", status: "completed", resource_type: "reserved_ip", resource_id: expect.any(Number) });
    expect((await call("GET", `/v2/reserved_ips/${ip.ip}/actions/${assign.body.action.id}`)).body.action.status).toBe("completed");
    expect((await call("GET", `/v2/reserved_ips/${ip.ip}`)).body.reserved_ip.droplet).toMatchObject({ id: d.id, region: { slug: "fra1" } });
    expect((await call("POST", `/v2/reserved_ips/${ip.ip}/actions`, { type: "unassign" })).status).toBe(201);
    expect((await call("POST", `/v2/reserved_ips/${ip.ip}/actions`, { type: "unassign" })).status).toBe(422);
    expect((await call("DELETE", `/v2/reserved_ips/${ip.ip}`)).status).toBe(204);
});

test("firewall: rules are validated; PUT replaces the whole firewall; a deleted droplet leaves it", async () => {
    const d = await newDroplet();
    const rules = {
        name: "bot-firewall",
        droplet_ids: [d.id],
        inbound_rules: [{ protocol: "tcp", ports: "22", sources: { addresses: ["203.0.113.7/32"] } }],
        outbound_rules: [{ protocol: "icmp", destinations: { addresses: ["0.0.0.0/0", "::/0"] } }],
    };
    expect((await call("POST", "/v2/firewalls", { ...rules, inbound_rules: [{ protocol: "tcp", sources: { addresses: ["0.0.0.0/0"] } }] })).status).toBe(422);
    expect((await call("POST", "/v2/firewalls", { ...rules, inbound_rules: [{ protocol: "tcp", ports: "22", sources: {} }] })).status).toBe(422);
    const f = await call("POST", "/v2/firewalls", rules);
    expect(f.status).toBe(202);
    expect(f.body.firewall).toMatchObject({ ...rules, status: "succeeded", pending_changes: [], tags: [] });
    const wider = { ...rules, inbound_rules: [{ protocol: "tcp", ports: "22", sources: { addresses: ["203.0.113.7/32", "198.51.100.0/24"] } }] };
    expect((await call("PUT", `/v2/firewalls/${f.body.firewall.id}`, wider)).body.firewall.inbound_rules).toEqual(wider.inbound_rules);
    await call("DELETE", `/v2/droplets/${d.id}`);
    expect((await call("GET", `/v2/firewalls/${f.body.firewall.id}`)).body.firewall.droplet_ids).toEqual([]);
    expect((await call("DELETE", `/v2/firewalls/${f.body.firewall.id}`)).status).toBe(204);
});
