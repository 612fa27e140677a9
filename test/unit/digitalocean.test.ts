/** Pure pieces of the DigitalOcean target: cloud-init text, firewall rules, the policy, the cloud-init wait. */
import { parse } from "yaml";
import { checkPolicy, portInRange } from "../../lib/policy";
import { claimAppDirCommand } from "../../lib/remote";
import { renderCloudInit, renderMountScript } from "../../lib/render/cloudInit";
import { firewallRules, InboundRule } from "../../lib/render/firewall";

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
        expect(script).not.toContain("mkdir -p /mnt/bot-data/");
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
    const compose = (ports: Record<string, unknown[]>) => JSON.stringify({ services: Object.fromEntries(Object.entries(ports).map(([s, p]) => [s, { image: "x:1", ports: p }])) });
    const own = compose({ api: [], postgres: ["127.0.0.1:5432:5432"], "onevm-proxy": ["127.0.0.1:8080:8080"] });
    const ssh = { protocol: "tcp" as const, portRange: "22", sourceAddresses: ["203.0.113.7/32"] };
    const check = (inbound: InboundRule[], composeText = own, o: { allowWorldSsh?: boolean; tlsIngress?: boolean } = {}) =>
        checkPolicy({ inbound, composeText, allowWorldSsh: o.allowWorldSsh ?? false, tlsIngress: o.tlsIngress ?? false });
    test("passes onevm's own stack (both TLS settings)", () => {
        expect(check(firewallRules({ sshAllowedCidrs: ["203.0.113.7/32"], tlsIngress: false }).inbound)).toEqual([]);
        const tls = compose({ "onevm-proxy": ["0.0.0.0:80:80", "0.0.0.0:443:443", "127.0.0.1:8080:8080"] });
        expect(check(firewallRules({ sshAllowedCidrs: ["203.0.113.7/32"], tlsIngress: true }).inbound, tls, { tlsIngress: true })).toEqual([]);
    });
    test.each([["5432"], ["8080"], ["8000-9000"], ["all"], ["80"]])("a firewall rule opening %s fails", (range) => {
        expect(check([ssh, { protocol: "tcp", portRange: range, sourceAddresses: ["10.0.0.0/8"] }])).toEqual([expect.stringContaining("opens more than SSH")]);
    });
    test("80 and 443 are allowed with TLS ingress only", () => {
        expect(check([ssh, { protocol: "tcp", portRange: "443", sourceAddresses: ["0.0.0.0/0"] }], own, { tlsIngress: true })).toEqual([]);
    });
    test.each([["8080:8080"], ["0.0.0.0:5432:5432"], ["6379"]])("a compose port %s not on loopback fails", (port) => {
        expect(check([ssh], compose({ redis: [port] }))).toEqual([expect.stringContaining("only the proxy's 80/443 may leave the VM's loopback")]);
    });
    test("the proxy's 80/443 leave loopback only with TLS ingress", () => {
        const tls = compose({ "onevm-proxy": ["0.0.0.0:443:443"] });
        expect(check([ssh], tls, { tlsIngress: false })).toHaveLength(1);
        expect(check([ssh], tls, { tlsIngress: true })).toEqual([]);
    });
    test("SSH from 0.0.0.0/0 or ::/0 fails unless allowWorldSsh", () => {
        for (const world of ["0.0.0.0/0", "::/0"]) {
            const inbound = [{ ...ssh, sourceAddresses: [world] }];
            expect(check(inbound)).toEqual([expect.stringContaining("onevm:allowWorldSsh")]);
            expect(check(inbound, own, { allowWorldSsh: true })).toEqual([]);
        }
    });
    test("port ranges", () => {
        expect([portInRange(22, "22"), portInRange(22, "all"), portInRange(22, undefined), portInRange(22, "20-25"), portInRange(22, "80")]).toEqual([true, true, true, true, false]);
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
