/**
 * The digitalocean plugin's resource types against the in-memory DO API stand-in:
 * CRUD of each resource, the bearer token on every call, replace-vs-update decisions,
 * and errors that say what is wrong. check/diff must work with no API at all.
 */
import { configure } from "../../providers/digitalocean/client";
import { droplet } from "../../providers/digitalocean/droplet";
import { firewall } from "../../providers/digitalocean/firewall";
import { reservedIp, reservedIpAssignment } from "../../providers/digitalocean/reservedIp";
import { sshKey } from "../../providers/digitalocean/sshKey";
import { volume, volumeAttachment } from "../../providers/digitalocean/volume";
import { opContext, secret } from "../../providers/test/helpers";
import { unknownValue } from "@pulumi/pulumi/runtime/rpc";
import { FakeDoApi, startFakeDoApi } from "./server";

const PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeDeployKey\n";
let api: FakeDoApi;

beforeAll(async () => {
    api = await startFakeDoApi({ bootPolls: 2 });
});
afterAll(() => api.close());
beforeEach(() => configure({ token: secret(api.token), apiEndpoint: api.url }, { ONEVM_DO_POLL_INTERVAL: "0.01", ONEVM_DO_POLL_LIMIT: "20" }));

async function newKey() {
    const { inputs } = await sshKey.check({}, { name: "deploy", publicKey: PUB });
    return sshKey.create(opContext("digitalocean:index/sshKey:SshKey"), inputs!);
}

async function newDroplet(extra: Record<string, any> = {}) {
    const key = await newKey();
    const news = { name: "bot", image: "ubuntu-24-04-x64", region: "fra1", size: "s-2vcpu-4gb", monitoring: true, tags: ["onevm"], userData: "#cloud-config\n", sshKeys: [key.id], ...extra };
    const { inputs, failures } = await droplet.check({}, news);
    expect(failures).toEqual([]);
    const ctx = opContext("digitalocean:index/droplet:Droplet", "bot");
    return { ...(await droplet.create(ctx, inputs!)), ctx, inputs: inputs! };
}

test("ssh key: create, read, rename in place, new key replaces, delete", async () => {
    const k = await newKey();
    expect(k.outs).toMatchObject({ name: "deploy", publicKey: PUB.trim(), fingerprint: expect.any(String) });
    expect(api.keys.get(k.id)?.public_key).toBe(PUB.trim());
    expect(await sshKey.diff(k.outs!, { name: "deploy", publicKey: PUB })).toEqual({ changes: false });
    expect(await sshKey.diff(k.outs!, { name: "deploy", publicKey: "ssh-ed25519 AAAAother" })).toMatchObject({ replaces: ["publicKey"] });
    expect(await sshKey.diff(k.outs!, { name: "renamed", publicKey: PUB })).toEqual({ changes: true, replaces: [] });
    const ctx = opContext("digitalocean:index/sshKey:SshKey");
    expect((await sshKey.update!(ctx, k.id, k.outs!, { name: "renamed", publicKey: PUB })).outs).toMatchObject({ name: "renamed" });
    expect((await sshKey.read!(ctx, k.id, {}))?.props).toMatchObject({ name: "renamed" });
    await sshKey.delete!(ctx, k.id, k.outs!);
    expect(api.keys.has(k.id)).toBe(false);
    expect(await sshKey.read!(ctx, k.id, {})).toBeUndefined();
});

test("droplet: create waits (logged, bounded) for active and reports the SDK's outputs", async () => {
    const d = await newDroplet();
    expect(d.outs).toMatchObject({
        status: "active",
        ipv4Address: expect.stringMatching(/^203\.0\.113\./),
        dropletUrn: `do:droplet:${d.id}`,
        image: "ubuntu-24-04-x64",
        region: "fra1",
        size: "s-2vcpu-4gb",
        monitoring: true,
        tags: ["onevm"],
    });
    // Like upstream, state keeps only the SHA-1 of the user data (it carries the host key).
    expect(d.outs!.userData).toMatch(/^[0-9a-f]{40}$/);
    expect(d.ctx.log.lines.some((l) => /waiting for droplet \d+ to become active \(poll 1\/20\)/.test(l))).toBe(true);
    const sent = api.requests.find((r) => r.method === "POST" && r.path === "/v2/droplets")!.body!;
    expect(sent).toMatchObject({ image: "ubuntu-24-04-x64", size: "s-2vcpu-4gb", region: "fra1", monitoring: true, user_data: "#cloud-config\n", tags: ["onevm"] });
    expect(sent.ssh_keys).toEqual([expect.any(Number)]);
});

test("droplet: image, region, userData and sshKeys replace; size and tags update; same inputs change nothing", async () => {
    const d = await newDroplet();
    const news = { ...d.inputs };
    expect(await droplet.diff(d.outs!, news)).toEqual({ changes: false });
    for (const [key, value] of [["image", "debian-12-x64"], ["region", "ams3"], ["userData", "#cloud-config\n# changed\n"], ["sshKeys", ["999"]]] as const) {
        expect(await droplet.diff(d.outs!, { ...news, [key]: value })).toMatchObject({ changes: true, replaces: [key] });
    }
    expect(await droplet.diff(d.outs!, { ...news, userData: unknownValue })).toMatchObject({ replaces: ["userData"] });
    expect(await droplet.diff(d.outs!, { ...news, size: "s-4vcpu-8gb" })).toMatchObject({ changes: true, replaces: [] });
    expect(await droplet.diff(d.outs!, { ...news, tags: ["onevm", "prod"] })).toMatchObject({ changes: true, replaces: [] });
    expect(await droplet.diff(d.outs!, { ...news, tags: ["onevm"] })).toEqual({ changes: false });

    const up = await droplet.update!(d.ctx, d.id, d.outs!, { ...news, size: "s-4vcpu-8gb", tags: ["onevm", "prod"] });
    expect(up.outs).toMatchObject({ size: "s-4vcpu-8gb", tags: ["onevm", "prod"], status: "active", userData: d.outs!.userData });
    const actions = api.requests.filter((r) => r.path === `/v2/droplets/${d.id}/actions`).map((r) => r.body!.type);
    expect(actions).toEqual(["power_off", "resize", "power_on"]);
});

test("droplet: read and delete (waits until gone); a vanished droplet reads as gone", async () => {
    const d = await newDroplet();
    expect((await droplet.read!(d.ctx, d.id, d.outs!))?.props).toMatchObject({ status: "active", userData: d.outs!.userData });
    await droplet.delete!(d.ctx, d.id, d.outs!);
    expect(api.droplets.has(d.id)).toBe(false);
    expect(await droplet.read!(d.ctx, d.id, d.outs!)).toBeUndefined();
    await droplet.delete!(d.ctx, d.id, d.outs!); // idempotent
});

test("droplet: check needs no API and keeps user data secret; missing image/size fail", async () => {
    configure({}, {}); // no token, no endpoint: check and diff still work
    const { inputs, failures } = await droplet.check({}, { size: "s-1vcpu-1gb", userData: "#cloud-config\n" });
    expect(failures).toEqual([{ property: "image", reason: "image is required" }]);
    expect(inputs!.userData).toEqual(secret("#cloud-config\n"));
    expect(inputs!.name).toMatch(/^droplet-[0-9a-f]{7}$/);
});

test("firewall: create, update in place, read, delete; bad rules fail check", async () => {
    const d = await newDroplet();
    const news = {
        name: "bot-fw",
        dropletIds: [Number(d.id)],
        inboundRules: [{ protocol: "tcp", portRange: "22", sourceAddresses: ["203.0.113.7/32"] }],
        outboundRules: [{ protocol: "tcp", portRange: "all", destinationAddresses: ["0.0.0.0/0", "::/0"] }, { protocol: "icmp", destinationAddresses: ["0.0.0.0/0"] }],
    };
    const ctx = opContext("digitalocean:index/firewall:Firewall");
    const f = await firewall.create(ctx, (await firewall.check({}, news)).inputs!);
    expect(api.firewalls.get(f.id)).toMatchObject({
        droplet_ids: [Number(d.id)],
        inbound_rules: [{ protocol: "tcp", ports: "22", sources: { addresses: ["203.0.113.7/32"] } }],
        outbound_rules: [{ protocol: "tcp", ports: "all" }, { protocol: "icmp", destinations: { addresses: ["0.0.0.0/0"] } }],
    });
    expect(await firewall.diff(f.outs!, news)).toEqual({ changes: false });
    const wider = { ...news, inboundRules: [...news.inboundRules, { protocol: "tcp", portRange: "443", sourceAddresses: ["0.0.0.0/0"] }] };
    expect(await firewall.diff(f.outs!, wider)).toEqual({ changes: true, replaces: [] });
    await firewall.update!(ctx, f.id, f.outs!, wider);
    expect(api.firewalls.get(f.id)!.inbound_rules).toHaveLength(2);
    expect((await firewall.read!(ctx, f.id, f.outs!))?.props).toMatchObject({ status: "succeeded" });
    await firewall.delete!(ctx, f.id, f.outs!);
    expect(api.firewalls.has(f.id)).toBe(false);
    const bad = await firewall.check({}, { inboundRules: [{ protocol: "tcp", sourceAddresses: ["0.0.0.0/0"] }] });
    expect(bad.failures![0].reason).toMatch(/portRange/);
});

test("volume and attachment: create, attach, grow in place, never shrink, detach, delete", async () => {
    const d = await newDroplet();
    const ctx = opContext("digitalocean:index/volume:Volume");
    const news = { name: "bot-data", region: "fra1", size: 20, initialFilesystemType: "ext4", description: "pg" };
    const v = await volume.create(ctx, (await volume.check({}, news)).inputs!);
    expect(v.outs).toMatchObject({ name: "bot-data", size: 20, filesystemType: "ext4", volumeUrn: `do:volume:${v.id}` });
    const actx = opContext("digitalocean:index/volumeAttachment:VolumeAttachment");
    const att = await volumeAttachment.create(actx, { dropletId: Number(d.id), volumeId: v.id });
    expect(api.volumes.get(v.id)!.droplet_ids).toEqual([Number(d.id)]);
    expect(await volumeAttachment.diff(att.outs!, { dropletId: 1, volumeId: v.id })).toMatchObject({ replaces: ["dropletId"] });
    expect(await volume.diff(v.outs!, news)).toEqual({ changes: false }); // the API's tags: [] equals no tags
    expect(await volume.diff(v.outs!, { ...news, size: 40 })).toEqual({ changes: true, replaces: [] });
    expect(await volume.diff(v.outs!, { ...news, name: "other" })).toMatchObject({ replaces: ["name"] });
    expect((await volume.check(v.outs!, { ...news, size: 10 })).failures![0].reason).toMatch(/cannot shrink/);
    expect((await volume.update!(ctx, v.id, v.outs!, { ...news, size: 40 })).outs).toMatchObject({ size: 40 });
    // Deleting an attached volume is refused by the API, and the error says so.
    await expect(volume.delete!(ctx, v.id, v.outs!)).rejects.toThrow(/DELETE \/volumes\/vol-\d+ returned 409 \(conflict: volume is attached/);
    await volumeAttachment.delete!(actx, att.id, att.outs!);
    expect(await volumeAttachment.read!(actx, att.id, att.outs!)).toBeUndefined();
    await volume.delete!(ctx, v.id, v.outs!);
    expect(api.volumes.has(v.id)).toBe(false);
});

test("reserved IP and assignment: create, assign, unassign, delete", async () => {
    const d = await newDroplet();
    const ctx = opContext("digitalocean:index/reservedIp:ReservedIp");
    const ip = await reservedIp.create(ctx, { region: "fra1" });
    expect(ip.outs).toMatchObject({ ipAddress: ip.id, region: "fra1", reservedIpUrn: `do:reservedip:${ip.id}` });
    expect(await reservedIp.diff(ip.outs!, { region: "ams3" })).toMatchObject({ replaces: ["region"] });
    const actx = opContext("digitalocean:index/reservedIpAssignment:ReservedIpAssignment");
    const a = await reservedIpAssignment.create(actx, { ipAddress: ip.id, dropletId: Number(d.id) });
    expect(api.reservedIps.get(ip.id)!.droplet.id).toBe(Number(d.id));
    expect((await reservedIpAssignment.read!(actx, a.id, a.outs!))?.id).toBe(a.id);
    await reservedIpAssignment.delete!(actx, a.id, a.outs!);
    expect(api.reservedIps.get(ip.id)!.droplet).toBeNull();
    await reservedIp.delete!(ctx, ip.id, ip.outs!);
    expect(api.reservedIps.has(ip.id)).toBe(false);
});

test("every call carries the bearer token; a wrong token or none fails clearly", async () => {
    expect(api.requests.length).toBeGreaterThan(0);
    expect(api.requests.every((r) => r.auth === `Bearer ${api.token}`)).toBe(true);
    configure({ token: "wrong", apiEndpoint: api.url });
    await expect(newKey()).rejects.toThrow(/POST \/account\/keys returned 401 \(Unauthorized: Unable to authenticate you\)/);
    configure({ apiEndpoint: api.url }, {});
    await expect(newKey()).rejects.toThrow(/token is not set: run `pulumi config set --secret digitalocean:token/);
    configure({ token: "t", apiEndpoint: "http://127.0.0.1:1" }, {});
    await expect(newKey()).rejects.toThrow(/POST http:\/\/127.0.0.1:1\/v2\/account\/keys failed/);
});

test("config comes from digitalocean:token/apiEndpoint, else the official provider's env vars", async () => {
    const { settingsFrom } = await import("../../providers/digitalocean/client");
    expect(settingsFrom({}, {})).toMatchObject({ token: undefined, apiEndpoint: "https://api.digitalocean.com" });
    expect(settingsFrom({}, { DIGITALOCEAN_TOKEN: "a", DIGITALOCEAN_API_URL: "http://x/" })).toMatchObject({ token: "a", apiEndpoint: "http://x" });
    expect(settingsFrom({}, { DIGITALOCEAN_ACCESS_TOKEN: "b" }).token).toBe("b");
    expect(settingsFrom({ token: secret("c") }, { DIGITALOCEAN_TOKEN: "a" }).token).toBe("c");
});
