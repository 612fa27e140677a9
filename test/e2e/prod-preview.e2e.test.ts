/**
 * The DigitalOcean target with the real engine and the official digitalocean provider, no
 * real API: an offline preview of a prod-like stack (dummy token; the API endpoint is a
 * recording stand-in that must see no request), then `up`, an update, a no-op preview,
 * a refused replacement, a replacement on purpose and `destroy` against the in-memory DO
 * API (test/do-api, reached through digitalocean:apiEndpoint) with
 * onevm:infrastructureOnly — a fake droplet has no sshd, so the VM layer is proven by the
 * sandbox e2e tests, which run the same remote commands.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ConfigMap, EngineEvent } from "@pulumi/pulumi/automation";
import { parse as parseYaml } from "yaml";
import { FakeDoApi, startFakeDoApi } from "../do-api/server";
import { newStack, removeStack, ROOT, TestStack } from "./harness";

jest.setTimeout(600_000);

const NAME = "e2e-do";
let api: FakeDoApi;
let t: TestStack;

/** The committed Pulumi.prod.yaml with its secrets set, one tag less (the update adds it back) and release v1. */
const prodLike = (endpoint: string, token: string): ConfigMap => {
    const doc = parseYaml(fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8")) as { config: Record<string, unknown> };
    const file = Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k, { value: typeof v === "string" ? v : JSON.stringify(v) }]));
    return {
        ...file,
        "onevm:tags": { value: JSON.stringify(["onevm"]) },
        "onevm:releaseId": { value: "v1" },
        "app:TELEGRAM_BOT_TOKEN": { value: "tg-e2e", secret: true },
        "onevm:registryPassword": { value: "registry-e2e", secret: true },
        "onevm:operator": { value: "e2e" },
        "digitalocean:token": { value: token, secret: true },
        "digitalocean:apiEndpoint": { value: endpoint },
    };
};

/** op and type of every resource step the engine reported. */
function steps(events: EngineEvent[]): Array<{ op: string; type: string; name: string }> {
    return events
        .map((e) => e.resourcePreEvent?.metadata)
        .filter((m): m is NonNullable<typeof m> => !!m)
        .map((m) => ({ op: m.op, type: m.type, name: m.urn.split("::").pop()! }));
}

function cli(args: string[]): string {
    return execFileSync(path.join(process.env.ONEVM_PULUMI_BIN ?? "", "pulumi"), [...args, "--stack", NAME, "--cwd", ROOT], {
        env: { ...process.env, PULUMI_BACKEND_URL: t.backendUrl, PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase" },
        encoding: "utf8",
    });
}

beforeAll(async () => {
    api = await startFakeDoApi();
});

afterAll(async () => {
    if (t) await removeStack(t);
    await api?.close();
});

test("offline preview of a prod-like stack: droplet, SSH key, volume and firewall would be created, no API call", async () => {
    t = await newStack(NAME, prodLike(api.url, "dummy-token-not-valid-anywhere"));
    const events: EngineEvent[] = [];
    const res = await t.stack.preview({ onEvent: (e) => events.push(e), onOutput: (o) => t.output.push(o) });
    const creates = steps(events).filter((s) => s.op === "create").map((s) => s.type);
    for (const type of ["Droplet", "SshKey", "Volume", "VolumeAttachment", "Firewall", "ReservedIp", "ReservedIpAssignment"]) {
        expect(creates).toContain(`digitalocean:index/${type.charAt(0).toLowerCase() + type.slice(1)}:${type}`);
    }
    expect(creates).toContain("command:remote:Command");
    expect(res.changeSummary.create).toBeGreaterThan(10);
    expect(api.requests).toEqual([]);
});

describe("up and destroy against the in-memory DO API (infrastructure layer only)", () => {
    beforeAll(async () => {
        await t.stack.setAllConfig({ "digitalocean:token": { value: api.token, secret: true }, "onevm:infrastructureOnly": { value: "true" } });
    });

    test("up creates the droplet, key, volume, attachment, firewall and reserved IP through the API", async () => {
        const res = await t.stack.up({ onOutput: (o) => t.output.push(o) });
        expect(res.summary.result).toBe("succeeded");
        expect(api.droplets.size).toBe(1);
        const [d] = api.droplets.values();
        expect(d).toMatchObject({ name: "booking-bot", monitoring: true, size_slug: "s-2vcpu-4gb", status: "active" });
        expect(d.user_data).toContain("ed25519_private");
        const [v] = api.volumes.values();
        expect(v.droplet_ids).toEqual([d.id]);
        expect(d.tags).toEqual(["onevm"]);
        expect(d.ssh_key_ids).toEqual([...api.keys.values()].map((k) => k.id));
        const [f] = api.firewalls.values();
        expect(f.droplet_ids).toEqual([d.id]);
        expect(f.inbound_rules).toEqual([{ protocol: "tcp", ports: "22", sources: { addresses: ["203.0.113.7/32"] } }]);
        const [ip] = api.reservedIps.values();
        expect(ip.droplet_id).toBe(d.id);
        expect(res.outputs.address.value).toBe(ip.ip);
        // Plain ssh works as printed once the sshConfig output is in ~/.ssh/config.
        expect(res.outputs.sshCommand.value).toBe(`ssh onevm-booking-bot-${NAME}`);
        expect(res.outputs.sshConfig.value).toContain(`Host onevm-booking-bot-${NAME}\n  HostName ${ip.ip}\n  Port 22\n  User deploy\n`);
        expect(api.requests.every((r) => r.auth === `Bearer ${api.token}`)).toBe(true);
        // The user data (it holds the host private key) is not in the state file in clear text.
        const state = fs.readFileSync(path.join(t.backendDir, ".pulumi", "stacks", "onevm", `${NAME}.json`), "utf8");
        expect(state).toContain("vm-droplet");
        expect(state).not.toContain("PRIVATE KEY");
    });

    test("an update: wider SSH CIDRs and another tag change the firewall and the droplet's tags in place", async () => {
        const [d] = api.droplets.values();
        await t.stack.setAllConfig({
            "onevm:sshAllowedCidrs": { value: JSON.stringify(["203.0.113.7/32", "198.51.100.0/24"]) },
            "onevm:tags": { value: JSON.stringify(["onevm", "prod"]) },
        });
        const before = api.requests.length;
        const events: EngineEvent[] = [];
        const res = await t.stack.up({ onEvent: (e) => events.push(e), onOutput: (o) => t.output.push(o) });
        expect(steps(events).filter((s) => s.op !== "same" && s.op !== "read").map((s) => `${s.op} ${s.name}`).sort()).toEqual(["update firewall-rules", "update vm-droplet"]);
        expect(res.summary.resourceChanges).toMatchObject({ update: 2 });
        expect([...api.droplets.keys()]).toEqual([String(d.id)]);
        expect(d.tags).toEqual(["onevm", "prod"]);
        const [f] = api.firewalls.values();
        expect(f.inbound_rules).toEqual([{ protocol: "tcp", ports: "22", sources: { addresses: ["203.0.113.7/32", "198.51.100.0/24"] } }]);
        const writes = api.requests.slice(before).filter((r) => r.method !== "GET").map((r) => `${r.method} ${r.path.replace(/\/([0-9a-f-]{36}|\d+)(?=\/|$)/g, "/ID")}`);
        expect(writes.sort()).toEqual(["POST /v2/tags", "POST /v2/tags/prod/resources", "PUT /v2/firewalls/ID"]);
    });

    test("a no-op preview plans no change and calls no API", async () => {
        const before = api.requests.length;
        const events: EngineEvent[] = [];
        const res = await t.stack.preview({ onEvent: (e) => events.push(e), onOutput: (o) => t.output.push(o) });
        // The only other step is the local read of this stack's own outputs (StackReference self).
        expect(steps(events).filter((s) => s.op !== "same" && s.op !== "read")).toEqual([]);
        expect(Object.keys(res.changeSummary).filter((k) => k !== "same" && k !== "read")).toEqual([]);
        expect(api.requests.slice(before)).toEqual([]);
    });

    test("a second up changes nothing and makes no write call", async () => {
        const before = api.requests.length;
        const events: EngineEvent[] = [];
        const res = await t.stack.up({ onEvent: (e) => events.push(e), onOutput: (o) => t.output.push(o) });
        const changedSteps = events.map((e) => e.resourcePreEvent?.metadata).filter((m) => m && m.op !== "same" && m.op !== "read").map((m) => `${m!.op} ${m!.urn.split("::").pop()} ${m!.diffs?.join(",")}`);
        expect(changedSteps).toEqual([]);
        expect(res.summary.resourceChanges).not.toHaveProperty("update");
        expect(res.summary.resourceChanges).not.toHaveProperty("replace");
        expect(api.requests.slice(before).filter((r) => r.method !== "GET")).toEqual([]);
    });

    test("a user-data change: preview plans a replacement of the protected droplet and refuses it", async () => {
        // A new login user changes the cloud-init text (and the unit, hence a new release ID).
        await t.stack.setAllConfig({ "onevm:sshUser": { value: "deploy2" }, "onevm:releaseId": { value: "v2" } });
        const out: string[] = [];
        const err = await t.stack.preview({ diff: true, onOutput: (o) => out.push(o) }).then(
            () => undefined,
            (e: Error) => e,
        );
        const text = out.join("") + String(err ?? "");
        t.output.push(text);
        expect(err).toBeDefined();
        expect(text).toMatch(/\+-digitalocean:index\/droplet:Droplet: \(replace\) 🔒/);
        expect(text).toMatch(/unable to replace resource "urn:[^"]*vm-droplet"\s+as it is currently marked for protection/);
        // The volume holding the data is not touched by it.
        expect(text).not.toMatch(/digitalocean:index\/volume:Volume: \((update|replace)\)/);
        expect(text).not.toContain("release v1 was deployed before");
        await t.stack.removeConfig("onevm:sshUser");
        await t.stack.setConfig("onevm:releaseId", { value: "v1" });
    });

    test("replacing on purpose: unprotect the droplet, up; the volume moves to the new droplet and stays", async () => {
        const [oldId] = api.droplets.keys();
        const [volumeId] = api.volumes.keys();
        await t.stack.setAllConfig({ "onevm:sshUser": { value: "deploy2" }, "onevm:releaseId": { value: "v2" } });
        const urn = JSON.parse(cli(["stack", "export"])).deployment.resources.find((r: { urn: string }) => r.urn.endsWith("::vm-droplet")).urn;
        cli(["state", "unprotect", urn, "--yes"]);
        const res = await t.stack.up({ onOutput: (o) => t.output.push(o) });
        expect(res.summary.resourceChanges?.replace).toBeGreaterThanOrEqual(1);
        expect([...api.droplets.keys()]).not.toContain(oldId);
        const [newDroplet] = api.droplets.values();
        expect(api.volumes.get(volumeId)!.droplet_ids).toEqual([newDroplet.id]);
        expect(newDroplet.user_data).toContain("name: deploy2");
        // The program protects the new droplet again.
        const again = JSON.parse(cli(["stack", "export"])).deployment.resources.find((r: { urn: string }) => r.urn.endsWith("::vm-droplet"));
        expect(again.protect).toBe(true);
    });

    test("destroy stops at the protected droplet, volume and IP (their dependents go first); after unprotect it removes everything", async () => {
        const [d] = api.droplets.values();
        await expect(t.stack.destroy({ onOutput: (o) => t.output.push(o) })).rejects.toThrow(/protect/i);
        // The engine deletes the unprotected dependents before it reaches a protected resource:
        // the firewall, the volume attachment and the IP assignment are gone (README says so).
        expect([...api.droplets.keys()]).toEqual([String(d.id)]);
        expect([api.volumes.size, api.reservedIps.size, api.keys.size]).toEqual([1, 1, 1]);
        expect([api.firewalls.size, [...api.volumes.values()][0].droplet_ids, [...api.reservedIps.values()][0].droplet_id]).toEqual([0, [], null]);
        cli(["state", "unprotect", "--all", "--yes"]);
        const res = await t.stack.destroy({ onOutput: (o) => t.output.push(o) });
        expect(res.summary.result).toBe("succeeded");
        expect([api.droplets.size, api.volumes.size, api.firewalls.size, api.keys.size, api.reservedIps.size]).toEqual([0, 0, 0, 0, 0]);
        // Every call the official provider made carried the token and was answered.
        expect(api.requests.every((r) => r.auth === `Bearer ${api.token}`)).toBe(true);
    });
});
