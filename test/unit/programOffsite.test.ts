/**
 * The program under Pulumi mocks with both off-host targets configured: one component
 * writes shared/offsite through stdin, its secrets stay secret, and it runs after setup.
 */
import { isSecret, Registration, reveal, runProgramUnderMocks } from "./mockProgram";
import { SHOP_SECRET_KEYS, shopConfig } from "./shopConfig";

const STORE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\ncanary-offsite-key-8d21\n-----END OPENSSH PRIVATE KEY-----\n";
const S3_SECRET = "canary-offsite-s3-93ab";
const S3_KEY_ID = "canaryOffsiteKeyId";

let registrations: Registration[] = [];

beforeAll(async () => {
    ({ registrations } = await runProgramUnderMocks({
        stack: "unit",
        config: shopConfig({
            "onevm:offsiteSsh": JSON.stringify({ host: "172.17.0.3", user: "deploy", path: "offsite/shop", hostPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStore store" }),
            "onevm:offsiteSshPrivateKey": STORE_KEY,
            "onevm:offsiteS3": JSON.stringify({ endpoint: "https://fra1.digitaloceanspaces.com", region: "fra1", bucket: "shop-backups" }),
            "onevm:offsiteS3AccessKeyId": S3_KEY_ID,
            "onevm:offsiteS3SecretAccessKey": S3_SECRET,
        }),
        secretKeys: [...SHOP_SECRET_KEYS, "onevm:offsiteSshPrivateKey", "onevm:offsiteS3AccessKeyId", "onevm:offsiteS3SecretAccessKey"],
    }));
});

const byName = (name: string) => registrations.find((r) => r.name === name)!;

function plainStrings(v: any, out: string[] = []): string[] {
    if (typeof v === "string") {
        out.push(v);
    } else if (v && typeof v === "object" && !isSecret(v)) {
        Object.values(v).forEach((child) => plainStrings(child, out));
    }
    return out;
}

test("one OffsiteTargets component whose command installs shared/offsite from stdin, after host setup", () => {
    const component = registrations.filter((r) => r.type === "onevm:index:OffsiteTargets");
    expect(component.map((r) => r.name)).toEqual(["offsite"]);
    const files = byName("offsite-files");
    expect(files.parent).toBe(component[0].urn);
    expect(files.object.create).toBe("/opt/shop/bin/install-offsite.sh --app-dir /opt/shop");
    expect(files.object.delete).toBe("/opt/shop/bin/install-offsite.sh --remove --app-dir /opt/shop");
    expect(files.object.addPreviousOutputInEnv).toBe(false);
    expect(files.deleteBeforeReplace).toBe(true);
    // Component dependencies reach the engine on the component, as its children's URNs.
    expect(byName("offsite").dependencies).toContain(byName("host-bootstrap").urn);
});

test("the keys reach the VM only inside the secret stdin", () => {
    const stdin = byName("offsite-files").object.stdin;
    expect(isSecret(stdin)).toBe(true);
    const files = JSON.parse(reveal(stdin)).files;
    expect(files.ssh_key).toBe(STORE_KEY);
    expect(files["s3.curlrc"]).toContain(`user = "${S3_KEY_ID}:${S3_SECRET}"`);
    expect(JSON.parse(files["targets.json"]).s3).toEqual({ endpoint: "https://fra1.digitaloceanspaces.com", region: "fra1", bucket: "shop-backups", prefix: "shop/" });
    const leaks = registrations.flatMap((r) => plainStrings(r.object).filter((s) => [S3_SECRET, S3_KEY_ID, "canary-offsite-key-8d21"].some((c) => s.includes(c))));
    expect(leaks).toEqual([]);
});
