/**
 * The program under Pulumi mocks with TLS ingress on (certificate mode): the CA and
 * server certificate chain, what is secret, what goes to the VM and in which order.
 */
import { parse } from "yaml";
import { gunzipSync } from "zlib";
import { isSecret, Registration, reveal, runProgramUnderMocks, value } from "./mockProgram";
import { SHOP_SECRET_KEYS, shopConfig } from "./shopConfig";

const KEY_CANARY = "canary-tls-key-31c4";

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
        config: shopConfig({ "onevm:tlsIngress": "true", "onevm:tlsDomain": "shop.onevm.test", "onevm:proxyImage": "caddy:2.10.2" }),
        secretKeys: SHOP_SECRET_KEYS,
    });
    expect(run.error).toBeUndefined();
    registrations = run.registrations;
    outputs = { tlsCaCertificate: await value(run.outputs.tlsCaCertificate), httpsUrl: await value(run.outputs.httpsUrl) };
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

test("a Proxy component owns the CA, the server key, request and certificate, and the upload", () => {
    const tls = byName("proxy");
    expect(tls.type).toBe("onevm:index:Proxy");
    const children = registrations.filter((r) => r.parent === tls.urn).map((r) => `${r.type} ${r.name}`);
    expect(children.sort()).toEqual([
        "command:remote:Command proxy-files",
        "tls:index/certRequest:CertRequest proxy-server-request",
        "tls:index/locallySignedCert:LocallySignedCert proxy-server",
        "tls:index/privateKey:PrivateKey proxy-ca-key",
        "tls:index/privateKey:PrivateKey proxy-server-key",
        "tls:index/selfSignedCert:SelfSignedCert proxy-ca",
    ]);
});

test("the CA is a CA; the server certificate names the domain and the VM's IP and is for server_auth (the tls provider's names for key usages)", () => {
    expect(byName("proxy-ca").object).toMatchObject({ isCaCertificate: true, allowedUses: ["cert_signing", "crl_signing", "digital_signature"] });
    expect(byName("proxy-server-request").object).toMatchObject({ dnsNames: ["shop.onevm.test"], ipAddresses: ["127.0.0.1"], subject: { commonName: "shop.onevm.test" } });
    expect(byName("proxy-server").object).toMatchObject({ allowedUses: ["digital_signature", "key_encipherment", "server_auth"], validityPeriodHours: 2160, earlyRenewalHours: 720 });
    expect(byName("proxy-ca-key").object).toMatchObject({ algorithm: "ECDSA", ecdsaCurve: "P256" });
});

test("private keys are secret everywhere; the key reaches the VM only inside the secret stdin archive", () => {
    const leaks = registrations.flatMap((r) =>
        strings(r.object)
            .filter(({ s, secret }) => !secret && s.includes(KEY_CANARY))
            .map(({ s }) => `${r.type} ${r.name}: ${s.slice(0, 60)}`),
    );
    expect(leaks).toEqual([]);
    const files = byName("proxy-files").object;
    expect(isSecret(files.stdin)).toBe(true);
    expect(files.create).toMatch(/^sudo -n \/opt\/shop\/bin\/install-tls.sh --app-dir \/opt\/shop --caddyfile '/);
    expect(files.create).not.toContain(KEY_CANARY);
    const archive = untar(reveal(files.stdin));
    expect(Object.keys(archive).sort()).toEqual(["Caddyfile", "cert.pem", "key.pem"]);
    expect(archive["key.pem"]).toContain(`${KEY_CANARY}-proxy-server-key`);
    // The chain: server certificate, then the CA.
    expect(archive["cert.pem"]).toBe("-----BEGIN CERTIFICATE-----\nproxy-server\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nproxy-ca\n-----END CERTIFICATE-----\n");
    expect(archive.Caddyfile).toContain("default_sni shop.onevm.test");
    // The Caddyfile also rides in the command line, unencrypted, so preview --diff shows it;
    // no value travels in the environment (sshd refuses it: AcceptEnv).
    expect(files.create).toBe(`sudo -n /opt/shop/bin/install-tls.sh --app-dir /opt/shop --caddyfile '${archive.Caddyfile}'`);
    expect(files.environment).toBeUndefined();
});

test("the files go up after the host bootstrap and before the release starts", () => {
    expect(byName("proxy").dependencies).toContain(urnOf("host-bootstrap"));
    expect(byName("release").dependencies).toEqual(expect.arrayContaining([urnOf("proxy-files")]));
});

test("the release's compose file runs the proxy on 80/443 and the app's loopback port; the web service publishes none", () => {
    const compose = parse(byName("release-activate").object.triggers[1]);
    expect(compose.services["onevm-proxy"].ports).toEqual(["0.0.0.0:80:80", "0.0.0.0:443:443", "127.0.0.1:8080:8080"]);
    expect(compose.services["onevm-proxy"].image).toBe("caddy:2.10.2");
    expect(compose.services.api.ports).toBeUndefined();
});

test("outputs: the CA certificate (not secret: clients need it) and the https URL", () => {
    expect(outputs.tlsCaCertificate).toBe("-----BEGIN CERTIFICATE-----\nproxy-ca\n-----END CERTIFICATE-----\n");
    expect(outputs.httpsUrl).toBe("https://shop.onevm.test/");
});
