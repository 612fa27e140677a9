/**
 * The program under Pulumi mocks with TLS ingress on (certificate mode): the CA and
 * server certificate chain, what is secret, what goes to the VM and in which order.
 */
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { gunzipSync } from "zlib";
import { isSecret, Registration, reveal, runProgramUnderMocks } from "./mockProgram";

const KEY_CANARY = "canary-tls-key-31c4";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyPinned sandbox";

let registrations: Registration[] = [];
let outputs: Record<string, any> = {};

beforeAll(async () => {
    const run = await runProgramUnderMocks({
        stack: "unit",
        computed: (args) => {
            const pem = (kind: string) => `-----BEGIN ${kind}-----\n${args.name}\n-----END ${kind}-----\n`;
            return {
                "tls:index/privateKey:PrivateKey": { privateKeyPem: `-----BEGIN EC PRIVATE KEY-----\n${KEY_CANARY}-${args.name}\n-----END EC PRIVATE KEY-----\n` },
                "tls:index/selfSignedCert:SelfSignedCert": { certPem: pem("CERTIFICATE") },
                "tls:index/certRequest:CertRequest": { certRequestPem: pem("CERTIFICATE REQUEST") },
                "tls:index/locallySignedCert:LocallySignedCert": { certPem: pem("CERTIFICATE") },
            };
        },
        config: {
            "onevm:host": "127.0.0.1",
            "onevm:sshPort": "2222",
            "onevm:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nssh\n-----END OPENSSH PRIVATE KEY-----\n",
            "onevm:hostPublicKey": HOST_KEY,
            "onevm:releaseId": "v1",
            "onevm:images": JSON.stringify({ "bot-api": "onevm/bot-api:v1", migrate: "onevm/migrate:v1", postgres: "onevm/postgres:17", redis: "onevm/redis:8" }),
            "onevm:telegramBotToken": "token",
            "onevm:operator": "tester",
            "onevm:tlsIngress": "true",
            "onevm:tlsDomain": "bot.onevm.test",
        },
        secretKeys: ["onevm:sshPrivateKey", "onevm:telegramBotToken"],
    });
    registrations = run.registrations;
    const read = (o: any) => new Promise((resolve) => (pulumi.output(o) as any).apply(resolve));
    outputs = { tlsCaCertificate: await read(run.program.tlsCaCertificate), httpsUrl: await read(run.program.httpsUrl), images: run.program.images };
    await new Promise((r) => setTimeout(r, 200));
});

const byName = (name: string) => {
    const r = registrations.find((x) => x.name === name);
    if (!r) throw new Error(`no resource named ${name}; have ${registrations.map((x) => x.name).join(", ")}`);
    return r;
};
const urnOf = (name: string) => byName(name).urn!;

function strings(v: any, secret = false, out: Array<{ s: string; secret: boolean }> = []) {
    if (typeof v === "string") out.push({ s: v, secret });
    else if (v && typeof v === "object") for (const child of Object.values(v)) strings(child, secret || isSecret(v), out);
    return out;
}

/** Files of a tar.gz (base64): name -> content. */
function untar(b64: string): Record<string, string> {
    const tar = gunzipSync(Buffer.from(b64, "base64"));
    const files: Record<string, string> = {};
    for (let off = 0; off + 512 <= tar.length; ) {
        const name = tar.subarray(off, off + 100).toString("utf8").replace(/\0.*$/s, "");
        if (!name) break;
        const size = parseInt(tar.subarray(off + 124, off + 136).toString("utf8").trim(), 8);
        files[name] = tar.subarray(off + 512, off + 512 + size).toString("utf8");
        off += 512 + Math.ceil(size / 512) * 512;
    }
    return files;
}

test("a TlsIngress component owns the CA, the server key, request and certificate, and the upload", () => {
    const tls = byName("tls");
    expect(tls.type).toBe("onevm:index:TlsIngress");
    const children = registrations.filter((r) => r.parent === tls.urn).map((r) => `${r.type} ${r.name}`);
    expect(children.sort()).toEqual([
        "command:remote:Command tls-files",
        "tls:index/certRequest:CertRequest tls-server-request",
        "tls:index/locallySignedCert:LocallySignedCert tls-server",
        "tls:index/privateKey:PrivateKey tls-ca-key",
        "tls:index/privateKey:PrivateKey tls-server-key",
        "tls:index/selfSignedCert:SelfSignedCert tls-ca",
    ]);
});

test("the CA is a CA; the server certificate names the domain and the VM's IP and is for server_auth (the tls provider's names for key usages)", () => {
    expect(byName("tls-ca").object).toMatchObject({ isCaCertificate: true, allowedUses: ["cert_signing", "crl_signing", "digital_signature"] });
    expect(byName("tls-server-request").object).toMatchObject({ dnsNames: ["bot.onevm.test"], ipAddresses: ["127.0.0.1"], subject: { commonName: "bot.onevm.test" } });
    expect(byName("tls-server").object).toMatchObject({ allowedUses: ["digital_signature", "key_encipherment", "server_auth"], validityPeriodHours: 2160, earlyRenewalHours: 720 });
    expect(byName("tls-ca-key").object).toMatchObject({ algorithm: "ECDSA", ecdsaCurve: "P256" });
});

test("private keys are secret everywhere; the key reaches the VM only inside the secret stdin archive", () => {
    const leaks = registrations.flatMap((r) =>
        strings(r.object)
            .filter(({ s, secret }) => !secret && s.includes(KEY_CANARY))
            .map(({ s }) => `${r.type} ${r.name}: ${s.slice(0, 60)}`),
    );
    expect(leaks).toEqual([]);
    const files = byName("tls-files").object;
    expect(isSecret(files.stdin)).toBe(true);
    expect(files.create).toMatch(/^sudo -n \/opt\/bot\/bin\/install-tls.sh --app-dir \/opt\/bot --proxy-uid 480 --caddyfile '/);
    expect(files.create).not.toContain(KEY_CANARY);
    const archive = untar(reveal(files.stdin));
    expect(Object.keys(archive).sort()).toEqual(["Caddyfile", "cert.pem", "key.pem"]);
    expect(archive["key.pem"]).toContain(`${KEY_CANARY}-tls-server-key`);
    // The chain: server certificate, then the CA.
    expect(archive["cert.pem"]).toBe("-----BEGIN CERTIFICATE-----\ntls-server\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\ntls-ca\n-----END CERTIFICATE-----\n");
    expect(archive.Caddyfile).toContain("default_sni bot.onevm.test");
    // The Caddyfile also rides in the command line, unencrypted, so preview --diff shows it;
    // no value travels in the environment (sshd refuses it: AcceptEnv).
    expect(files.create).toBe(`sudo -n /opt/bot/bin/install-tls.sh --app-dir /opt/bot --proxy-uid 480 --caddyfile '${archive.Caddyfile}'`);
    expect(files.environment).toBeUndefined();
});

test("the files go up after the host bootstrap and before the release starts", () => {
    expect(byName("tls").dependencies).toContain(urnOf("host-bootstrap"));
    expect(byName("release").dependencies).toEqual(expect.arrayContaining([urnOf("tls-files")]));
});

test("the release's compose file runs the proxy on 80/443 and the app's loopback port; bot-api publishes none", () => {
    const compose = parse(byName("release-activate").object.triggers[1]);
    expect(compose.services.proxy.ports).toEqual(["0.0.0.0:80:80", "0.0.0.0:443:443", "127.0.0.1:8080:8080"]);
    expect(compose.services.proxy.image).toBe("onevm/caddy:2");
    expect(compose.services["bot-api"].ports).toBeUndefined();
});

test("outputs: the CA certificate (not secret: clients need it) and the https URL", () => {
    expect(outputs.tlsCaCertificate).toBe("-----BEGIN CERTIFICATE-----\ntls-ca\n-----END CERTIFICATE-----\n");
    expect(outputs.httpsUrl).toBe("https://bot.onevm.test/");
});
