/**
 * The program with `target: digitalocean` under Pulumi mocks: the inputs it sends for the
 * droplet, keys, volume, firewall and reserved IP, read from the registration requests.
 */
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { isSecret, Registration, reveal, runProgramUnderMocks, value } from "./mockProgram";
import { SHOP_SECRET_KEYS, shopConfig } from "./shopConfig";

let registrations: Registration[] = [];
let outputs: Record<string, any> = {};
let preflights: object[] = [];

beforeAll(async () => {
    const run = await runProgramUnderMocks({
        stack: "prod",
        computed: (args) => ({
            "tls:index/privateKey:PrivateKey": { publicKeyOpenssh: `ssh-ed25519 AAAA${args.name}\n`, privateKeyOpenssh: `PRIVATE-${args.name}` },
            "digitalocean:index/droplet:Droplet": { ipv4Address: "203.0.113.50" },
            "digitalocean:index/reservedIp:ReservedIp": { ipAddress: "198.51.100.7" },
        }),
        id: (args) => (args.type.startsWith("digitalocean:index/droplet") ? "4242" : `${args.name}-id`),
        config: shopConfig({
            "onevm:host": undefined,
            "onevm:sshPort": undefined,
            "onevm:sshPrivateKey": undefined,
            "onevm:hostPublicKey": undefined,
            "onevm:target": "digitalocean",
            "onevm:region": "ams3",
            "onevm:size": "s-2vcpu-4gb",
            "onevm:sshAllowedCidrs": JSON.stringify(["203.0.113.7/32", "2001:db8::/48"]),
            "onevm:tags": JSON.stringify(["onevm", "prod"]),
            "onevm:reservedIp": "true",
        }),
        secretKeys: SHOP_SECRET_KEYS,
    });
    expect(run.error).toBeUndefined();
    ({ registrations, outputs, preflights } = run);
});

const byType = (type: string) => registrations.filter((r) => r.type === `digitalocean:index/${type}`);
const one = (type: string) => {
    const all = byType(type);
    expect(all).toHaveLength(1);
    return all[0];
};

test("the droplet: image, size, region, tags, monitoring, the SSH key, protected", () => {
    const d = one("droplet:Droplet");
    expect(d.object).toMatchObject({ name: "shop", image: "ubuntu-24-04-x64", size: "s-2vcpu-4gb", region: "ams3", tags: ["onevm", "prod"], monitoring: true, sshKeys: ["vm-ssh-key-id"] });
    expect(d.protect).toBe(true);
    expect(one("sshKey:SshKey").object).toMatchObject({ name: "shop-deploy", publicKey: "ssh-ed25519 AAAAvm-deploy-key\n" });
});

test("user data is secret and pins the generated host key, creates deploy, mounts the volume", () => {
    const ud = one("droplet:Droplet").object.userData;
    expect(isSecret(ud)).toBe(true);
    const doc = parse(reveal(ud));
    expect(doc.ssh_keys).toEqual({ ed25519_private: "PRIVATE-vm-host-key", ed25519_public: "ssh-ed25519 AAAAvm-host-key" });
    expect(doc.users[1]).toMatchObject({ name: "deploy", ssh_authorized_keys: ["ssh-ed25519 AAAAvm-deploy-key"] });
    expect(doc.write_files[0].content).toContain("scsi-0DO_Volume_shop-data");
});

test("the volume is protected and attached (detached first on replacement)", () => {
    const v = one("volume:Volume");
    expect(v.object).toMatchObject({ name: "shop-data", region: "ams3", size: 20, initialFilesystemType: "ext4" });
    expect(v.protect).toBe(true);
    const a = one("volumeAttachment:VolumeAttachment");
    expect(a.object).toEqual({ dropletId: 4242, volumeId: "vm-data-id" });
    expect(a.deleteBeforeReplace).toBe(true);
});

test("the firewall: 22 from the configured CIDRs only, no 80/443 without TLS, never 8080/5432/6379; outbound open", () => {
    const f = one("firewall:Firewall").object;
    expect(f.dropletIds).toEqual([4242]);
    expect(f.inboundRules).toEqual([{ protocol: "tcp", portRange: "22", sourceAddresses: ["203.0.113.7/32", "2001:db8::/48"] }]);
    expect(f.outboundRules.every((r: any) => r.destinationAddresses.includes("0.0.0.0/0"))).toBe(true);
});

test("the reserved IP is assigned and is the address every remote command uses", () => {
    expect(one("reservedIp:ReservedIp").object).toEqual({ region: "ams3" });
    expect(one("reservedIpAssignment:ReservedIpAssignment").object).toEqual({ ipAddress: "198.51.100.7", dropletId: 4242 });
    const commands = registrations.filter((r) => r.type === "command:remote:Command");
    expect(commands.length).toBeGreaterThan(0);
    for (const c of commands) {
        expect(reveal(c.object.connection)).toMatchObject({ host: "198.51.100.7", port: 22, user: "deploy", hostKey: "ssh-ed25519 AAAAvm-host-key", privateKey: "PRIVATE-vm-deploy-key" });
    }
});

test("remote commands wait for cloud-init and for the volume; compose keeps the database's volume on it", () => {
    // The first remote command (the directory set-up) waits; everything else depends on it.
    expect(registrations.find((r) => r.name === "host-dirs")!.object.create).toContain("cloud-init status --wait");
    const attachmentUrn = one("volumeAttachment:VolumeAttachment").urn!;
    expect(registrations.find((r) => r.name === "host")!.dependencies).toContain(attachmentUrn);
    const activate = registrations.find((r) => r.name === "release-activate")!;
    expect(parse(activate.object.triggers[1]).volumes.pgdata.driver_opts).toEqual({ type: "none", o: "bind", device: "/mnt/shop-data/pgdata" });
    expect(registrations.find((r) => r.name === "host-bootstrap")!.object.create).toMatch(/^sudo -n \/opt\/shop\/bin\/bootstrap-host.sh --app shop --user deploy --tools [0-9a-f]{64} --data-dir \/mnt\/shop-data\/pgdata$/);
});

test("outputs for `npm run onevm`: the pinned host key, and the generated deploy key as a secret", async () => {
    expect(await value(outputs.sshHostPublicKey)).toBe("ssh-ed25519 AAAAvm-host-key");
    expect(await value(outputs.deployPrivateKey)).toBe("PRIVATE-vm-deploy-key");
    expect(await (pulumi.output(outputs.deployPrivateKey) as any).isSecret).toBe(true);
});

test("the host key check waits for the droplet's address (the reserved IP) and pins the generated host key", () => {
    expect(preflights).toEqual([
        { host: "198.51.100.7", port: 22, user: "deploy", hostKey: "ssh-ed25519 AAAAvm-host-key", pinnedBy: "the stack's generated host key (output sshHostPublicKey)" },
    ]);
});
