/** Pure pieces of the DigitalOcean target: cloud-init text, firewall rules, the policy, compose dataDir, the cloud-init wait. */
import { parse } from "yaml";
import { checkPolicy, portInRange } from "../../lib/policy";
import { claimAppDirCommand } from "../../lib/remote";
import { renderCloudInit, renderMountScript } from "../../lib/render/cloudInit";
import { renderCompose } from "../../lib/render/compose";
import { firewallRules } from "../../lib/render/firewall";

const images = { "bot-api": "r/bot-api:v1", migrate: "r/migrate:v1", postgres: "r/postgres:17", redis: "r/redis:8" };
const ci = {
    app: "bot",
    user: "deploy",
    authorizedKey: "ssh-ed25519 AAAAdeploy\n",
    hostKeyPrivate: "-----BEGIN OPENSSH PRIVATE KEY-----\nhostkey\n-----END OPENSSH PRIVATE KEY-----\n",
    hostKeyPublic: "ssh-ed25519 AAAAhost\n",
    volumeName: "bot-data",
};

describe("cloud-init user data", () => {
    const text = renderCloudInit(ci);
    const doc = parse(text);
    test("is a #cloud-config document", () => expect(text.startsWith("#cloud-config\n")).toBe(true));
    test("creates the deploy user with passwordless sudo and the authorized key", () => {
        expect(doc.users[1]).toMatchObject({ name: "deploy", sudo: "ALL=(ALL) NOPASSWD:ALL", lock_passwd: true, ssh_authorized_keys: ["ssh-ed25519 AAAAdeploy"] });
        expect(doc.ssh_pwauth).toBe(false);
    });
    test("installs exactly the generated ed25519 host key (pinned from the first connection)", () => {
        expect(doc.ssh_keys).toEqual({ ed25519_private: ci.hostKeyPrivate, ed25519_public: "ssh-ed25519 AAAAhost" });
        expect(doc.ssh_deletekeys).toBe(true);
        expect(doc.ssh_genkeytypes).toEqual([]);
    });
    test("installs Docker Engine and Compose v2 from Ubuntu 24.04's packages", () => {
        expect(doc.packages).toEqual(["docker.io", "docker-compose-v2"]);
    });
    test("mounts the DO volume by id at /mnt/<app>-data with nofail, formatting only a blank disk", () => {
        const script = renderMountScript(ci);
        expect(doc.write_files[0].content).toBe(script);
        expect(doc.runcmd[0]).toEqual(["/usr/local/sbin/onevm-mount-data"]);
        expect(script).toContain("dev=/dev/disk/by-id/scsi-0DO_Volume_bot-data");
        expect(script).toContain('if ! blkid -o value -s TYPE "$dev" >/dev/null 2>&1; then mkfs.ext4');
        expect(script).toContain("/mnt/bot-data ext4 defaults,nofail,discard,noatime 0 2");
        expect(script).toContain("mkdir -p /mnt/bot-data/postgres");
        expect(script).toMatch(/for i in \$\(seq 1 600\)/);
    });
});

describe("firewall rules", () => {
    test("SSH only from the configured CIDRs; no 80/443 without TLS ingress; outbound open", () => {
        const r = firewallRules({ sshAllowedCidrs: ["203.0.113.7/32"], tlsIngress: false });
        expect(r.inbound).toEqual([{ protocol: "tcp", portRange: "22", sourceAddresses: ["203.0.113.7/32"] }]);
        expect(r.outbound.map((o) => o.protocol)).toEqual(["tcp", "udp", "icmp"]);
    });
    test("80 and 443 from anywhere with TLS ingress", () => {
        const r = firewallRules({ sshAllowedCidrs: ["203.0.113.7/32"], tlsIngress: true });
        expect(r.inbound.map((x) => x.portRange)).toEqual(["22", "80", "443"]);
    });
});

describe("policy", () => {
    const compose = renderCompose({ app: "bot", releaseId: "v1", images });
    const ssh = { protocol: "tcp" as const, portRange: "22", sourceAddresses: ["203.0.113.7/32"] };
    test("passes onevm's own stack (both TLS settings)", () => {
        for (const tlsIngress of [false, true]) {
            expect(checkPolicy({ inbound: firewallRules({ sshAllowedCidrs: ["203.0.113.7/32"], tlsIngress }).inbound, composeText: compose, allowWorldSsh: false })).toEqual([]);
        }
    });
    test.each([[5432], [6379], [8080]])("a firewall rule exposing %i fails", (port) => {
        const v = checkPolicy({ inbound: [ssh, { protocol: "tcp", portRange: String(port), sourceAddresses: ["10.0.0.0/8"] }], composeText: compose, allowWorldSsh: false });
        expect(v).toEqual([expect.stringContaining(`exposes ${port}`)]);
    });
    test("a range or 'all' that covers internal ports fails", () => {
        expect(checkPolicy({ inbound: [{ protocol: "tcp", portRange: "8000-9000", sourceAddresses: ["0.0.0.0/0"] }], composeText: compose, allowWorldSsh: false })).toEqual([expect.stringContaining("exposes 8080")]);
        expect(checkPolicy({ inbound: [{ protocol: "udp", portRange: "all", sourceAddresses: ["::/0"] }], composeText: compose, allowWorldSsh: false })).toHaveLength(3);
    });
    test.each([["8080:8080"], ["0.0.0.0:5432:5432"], ["6379"]])("a compose port %s not on 127.0.0.1 fails", (port) => {
        const doc = parse(compose);
        doc.services.redis.ports = [port];
        const v = checkPolicy({ inbound: [ssh], composeText: JSON.stringify(doc), allowWorldSsh: false });
        expect(v).toEqual([expect.stringContaining("must bind to 127.0.0.1 only")]);
    });
    test("SSH from 0.0.0.0/0 or ::/0 fails unless allowWorldSsh", () => {
        for (const world of ["0.0.0.0/0", "::/0"]) {
            const inbound = [{ ...ssh, sourceAddresses: [world] }];
            expect(checkPolicy({ inbound, composeText: compose, allowWorldSsh: false })).toEqual([expect.stringContaining("onevm:allowWorldSsh")]);
            expect(checkPolicy({ inbound, composeText: compose, allowWorldSsh: true })).toEqual([]);
        }
    });
    test("port ranges", () => {
        expect([portInRange(22, "22"), portInRange(22, "all"), portInRange(22, undefined), portInRange(22, "20-25"), portInRange(22, "80")]).toEqual([true, true, true, true, false]);
    });
});

describe("compose dataDir", () => {
    test("unset: pgdata stays a Docker-managed volume", () => {
        expect(parse(renderCompose({ app: "bot", releaseId: "v1", images })).volumes).toEqual({ pgdata: {} });
    });
    test("set: pgdata binds the volume's directory", () => {
        expect(parse(renderCompose({ app: "bot", releaseId: "v1", images, dataDir: "/mnt/bot-data/postgres" })).volumes).toEqual({
            pgdata: { driver: "local", driver_opts: { type: "none", o: "bind", device: "/mnt/bot-data/postgres" } },
        });
    });
});

describe("waiting for cloud-init", () => {
    test("existing hosts: the first command is the ownership claim", () => {
        expect(claimAppDirCommand("bot", "deploy", "o/p/s")).toMatch(/^sudo -n sh -c '.*' onevm-claim \/opt\/bot deploy o\/p\/s \/var\/lib\/onevm$/s);
    });
    test("droplets: a bounded `cloud-init status --wait` first, failing visibly", () => {
        const cmd = claimAppDirCommand("bot", "deploy", "o/p/s", { cloudInitTimeoutSeconds: 900 });
        expect(cmd.split("\n").slice(0, 2)).toEqual(["onevm_ci=0", "sudo -n timeout 900 cloud-init status --wait </dev/null >/dev/null || onevm_ci=$?"]);
        expect(cmd).toContain('echo "cloud-init did not finish within 900s or failed (exit $onevm_ci):" >&2');
        expect(cmd.split("\n").slice(7).join("\n")).toBe(claimAppDirCommand("bot", "deploy", "o/p/s"));
    });
    test("the wait is valid POSIX sh", () => {
        const { spawnSync } = require("child_process");
        expect(spawnSync("sh", ["-n"], { input: claimAppDirCommand("bot", "deploy", "o/p/s", { cloudInitTimeoutSeconds: 5 }) }).status).toBe(0);
    });
});
