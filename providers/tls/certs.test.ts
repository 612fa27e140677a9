/**
 * SelfSignedCert, CertRequest and LocallySignedCert: the certificates are parsed back
 * with openssl (and Node's X509Certificate), SANs, CA flag and usages checked, and the
 * chain server -> CA verified by `openssl verify`.
 */
import { execFileSync } from "child_process";
import { X509Certificate } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { isSecret, reveal, Wire, WireMap } from "../common/values";
import { opContext, secret } from "../test/helpers";
import { certRequest } from "./certRequest";
import { locallySignedCert } from "./locallySignedCert";
import { generateKey } from "./privateKey";
import { selfSignedCert } from "./selfSignedCert";

const SELF = "tls:index/selfSignedCert:SelfSignedCert";
const CSR = "tls:index/certRequest:CertRequest";
const LOCAL = "tls:index/locallySignedCert:LocallySignedCert";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-certs-"));
function file(name: string, text: string): string {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
}
function openssl(args: string[]): string {
    return execFileSync("openssl", args, { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}
const text = (pem: string) => openssl(["x509", "-noout", "-text", "-in", file(`c-${Math.random()}.pem`, pem)]);

async function create(type: ReturnType<typeof opContext>, res: typeof selfSignedCert, news: WireMap) {
    const { inputs, failures } = await res.check({}, news);
    expect(failures).toEqual([]);
    return res.create(type, inputs);
}

async function caAndServer(algorithm: string) {
    const caKey = generateKey(algorithm, 2048, "P256");
    const ca = await create(opContext(SELF), selfSignedCert, {
        privateKeyPem: secret(caKey.privateKeyPem),
        isCaCertificate: true,
        allowedUses: ["certSigning", "crlSigning", "digitalSignature"],
        validityPeriodHours: 24 * 365,
        subject: { commonName: "onevm test CA", organization: "onevm" },
    });
    const serverKey = generateKey(algorithm, 2048, "P256");
    const csr = await create(opContext(CSR), certRequest as typeof selfSignedCert, {
        privateKeyPem: secret(serverKey.privateKeyPem),
        subject: { commonName: "bot.onevm.test" },
        dnsNames: ["bot.onevm.test", "localhost"],
        ipAddresses: ["127.0.0.1", "::1"],
    });
    const server = await create(opContext(LOCAL), locallySignedCert, {
        certRequestPem: csr.outs!.certRequestPem,
        caCertPem: ca.outs!.certPem,
        caPrivateKeyPem: secret(caKey.privateKeyPemPkcs8),
        allowedUses: ["digitalSignature", "keyEncipherment", "serverAuth"],
        validityPeriodHours: 24 * 30,
    });
    return { caKey, ca, csr, serverKey, server };
}

describe.each(["ECDSA", "RSA", "ED25519"])("%s: CA + request + locally signed server certificate", (algorithm) => {
    let r: Awaited<ReturnType<typeof caAndServer>>;
    beforeAll(async () => {
        r = await caAndServer(algorithm);
    });

    test("the CA certificate is a critical CA:TRUE certificate with a key identifier and certSign usage", () => {
        const pem = r.ca.outs!.certPem as string;
        expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
        const t = text(pem);
        expect(t).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE/);
        expect(t).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
        expect(t).toContain("X509v3 Subject Key Identifier");
        expect(t).toMatch(/Subject: O ?= ?onevm, CN ?= ?onevm test CA/);
        const x = new X509Certificate(pem);
        expect(x.ca).toBe(true);
        expect(x.checkIssued(x)).toBe(true);
        expect(r.ca.outs!.keyAlgorithm).toBe(algorithm);
        expect(r.ca.id).toBe(BigInt(`0x${x.serialNumber}`).toString(10));
    });

    test("the request carries subject and SANs and is signed by the server key", () => {
        const req = r.csr.outs!.certRequestPem as string;
        const t = openssl(["req", "-noout", "-text", "-verify", "-in", file(`${algorithm}.csr`, req)]);
        expect(t).toContain("CN = bot.onevm.test");
        expect(t).toMatch(/DNS:bot\.onevm\.test, DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
        expect(r.csr.outs!.keyAlgorithm).toBe(algorithm);
    });

    test("the server certificate has the request's SANs, CA:FALSE, serverAuth, and chains to the CA", () => {
        const pem = r.server.outs!.certPem as string;
        const x = new X509Certificate(pem);
        expect(x.ca).toBe(false);
        expect(x.subjectAltName).toBe("DNS:bot.onevm.test, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
        expect(x.checkHost("bot.onevm.test")).toBe("bot.onevm.test");
        expect(x.checkIP("127.0.0.1")).toBe("127.0.0.1");
        expect(x.checkHost("other.example")).toBeUndefined();
        const t = text(pem);
        expect(t).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
        expect(t).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication/);
        expect(t).toContain("X509v3 Authority Key Identifier");
        expect(t).toMatch(/Issuer: O ?= ?onevm, CN ?= ?onevm test CA/);
        const out = openssl(["verify", "-CAfile", file(`${algorithm}-ca.pem`, r.ca.outs!.certPem as string), "-purpose", "sslserver", file(`${algorithm}-srv.pem`, pem)]);
        expect(out.trim()).toMatch(/: OK$/);
        expect(r.server.outs!.caKeyAlgorithm).toBe(algorithm);
    });

    test("validity: start now, end after validityPeriodHours; not ready for renewal", () => {
        const o = r.server.outs!;
        const start = Date.parse(o.validityStartTime as string);
        const end = Date.parse(o.validityEndTime as string);
        expect(Math.abs(start - Date.now())).toBeLessThan(60_000);
        expect(end - start).toBe(24 * 30 * 3_600_000);
        expect(o.validityEndTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        expect(o.readyForRenewal).toBe(false);
        expect(new X509Certificate(o.certPem as string).validTo).toBe(new Date(end).toUTCString().replace(/^\w+, (\d+) (\w+) (\d+) (.*) GMT$/, (_m, d, mo, y, t) => `${mo} ${String(Number(d)).padStart(2, " ")} ${t} ${y} GMT`));
    });
});

describe("resource behaviour", () => {
    test("private keys stay secret in the outputs; certificates and requests do not", async () => {
        const r = await caAndServer("ECDSA");
        expect(isSecret(r.ca.outs!.privateKeyPem)).toBe(true);
        expect(isSecret(r.csr.outs!.privateKeyPem)).toBe(true);
        expect(isSecret(r.server.outs!.caPrivateKeyPem)).toBe(true);
        for (const o of [r.ca.outs!.certPem, r.csr.outs!.certRequestPem, r.server.outs!.certPem]) expect(isSecret(o as Wire)).toBe(false);
    });

    test("check applies upstream's defaults and names bad inputs", async () => {
        const key = generateKey("ECDSA", 2048, "P256").privateKeyPem;
        const ok = await selfSignedCert.check({}, { privateKeyPem: key, allowedUses: ["serverAuth"], validityPeriodHours: 1 });
        expect(ok.inputs).toMatchObject({ earlyRenewalHours: 0, isCaCertificate: false, maxPathLength: 0, setSubjectKeyId: false, setAuthorityKeyId: false });
        const bad = await selfSignedCert.check({}, { privateKeyPemWo: "x", allowedUses: ["flying"], ipAddresses: ["not-an-ip"] });
        expect(bad.failures!.map((f) => f.property).sort()).toEqual(["allowedUses", "ipAddresses", "privateKeyPem", "privateKeyPemWo", "validityPeriodHours"]);
        const badLocal = await locallySignedCert.check({}, { allowedUses: [], validityPeriodHours: 1 });
        expect(badLocal.failures!.map((f) => f.property).sort()).toEqual(["caCertPem", "caPrivateKeyPem", "certRequestPem"]);
    });

    test("a CA key that is not the CA certificate's is refused", async () => {
        const r = await caAndServer("ECDSA");
        const other = generateKey("ECDSA", 2048, "P256").privateKeyPem;
        const { inputs } = await locallySignedCert.check({}, { ...(r.server.outs as WireMap), caPrivateKeyPem: secret(other) });
        await expect(locallySignedCert.create(opContext(LOCAL), inputs)).rejects.toThrow(/not the private key of caCertPem/);
    });

    test("diff: any input replaces, earlyRenewalHours updates in place, a due renewal replaces", async () => {
        const r = await caAndServer("ECDSA");
        const outs = r.ca.outs as WireMap;
        const inputs = { ...outs };
        expect(await selfSignedCert.diff(outs, inputs)).toEqual({ changes: false });
        expect(await selfSignedCert.diff(outs, { ...inputs, dnsNames: ["x.example"] })).toEqual({ changes: true, replaces: ["dnsNames"] });
        expect(await selfSignedCert.diff(outs, { ...inputs, earlyRenewalHours: 1 })).toEqual({ changes: true });
        // Within earlyRenewalHours of the end: replaced, as upstream's readyForRenewal.
        expect(await selfSignedCert.diff(outs, { ...inputs, earlyRenewalHours: 24 * 366 })).toEqual({ changes: true, replaces: ["readyForRenewal"] });
        const updated = await selfSignedCert.update!(opContext(SELF), r.ca.id, outs, { ...inputs, earlyRenewalHours: 5 });
        expect(updated.outs).toMatchObject({ earlyRenewalHours: 5, certPem: outs.certPem });
        expect(reveal(updated.outs!.privateKeyPem as Wire)).toBe(reveal(outs.privateKeyPem));
    });

    test("a non-CA self-signed certificate with maxPathLength on a CA sets pathlen", async () => {
        const key = generateKey("RSA", 2048, "P256").privateKeyPem;
        const leaf = await create(opContext(SELF), selfSignedCert, { privateKeyPem: key, allowedUses: ["serverAuth"], validityPeriodHours: 1, dnsNames: ["a.test"] });
        expect(text(leaf.outs!.certPem as string)).toMatch(/CA:FALSE/);
        const ca = await create(opContext(SELF), selfSignedCert, { privateKeyPem: key, isCaCertificate: true, maxPathLength: 2, allowedUses: ["certSigning"], validityPeriodHours: 1 });
        expect(text(ca.outs!.certPem as string)).toMatch(/CA:TRUE, pathlen:2/);
    });
});
