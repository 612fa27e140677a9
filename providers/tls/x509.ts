/**
 * X.509 building blocks shared by SelfSignedCert, CertRequest and LocallySignedCert,
 * written with @peculiar/x509 on Node's WebCrypto. They follow what the official
 * provider (Go's crypto/x509) puts in a certificate, so a client sees the same thing:
 * - basicConstraints always present and critical (CA:TRUE only for isCaCertificate,
 *   pathlen only when maxPathLength > 0), keyUsage critical, extKeyUsage not critical;
 * - a CA certificate always carries a subject key identifier (Go generates one), and a
 *   locally signed certificate names its CA's as authority key identifier;
 * - SHA-256 signatures (SHA-384/512 for P-384/P-521 keys, pure Ed25519);
 * - a random positive 128-bit serial number; PEM with "\n" line ends.
 */
import "./reflectMetadata";
import { createHash, createPrivateKey, createPublicKey, KeyObject, randomBytes, webcrypto } from "crypto";
import { isIP } from "net";
import * as x509 from "@peculiar/x509";
import { CheckFailure } from "@pulumi/pulumi/provider";
import { Wire, WireMap } from "../common/values";

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** Import @peculiar/x509 through this module only: it needs the Reflect shim loaded first. */
export { x509 };

/** allowedUses names -> keyUsage bits (RFC 5280 4.2.1.3). */
export const KEY_USAGES: Record<string, x509.KeyUsageFlags> = {
    digitalSignature: x509.KeyUsageFlags.digitalSignature,
    contentCommitment: x509.KeyUsageFlags.nonRepudiation,
    keyEncipherment: x509.KeyUsageFlags.keyEncipherment,
    dataEncipherment: x509.KeyUsageFlags.dataEncipherment,
    keyAgreement: x509.KeyUsageFlags.keyAgreement,
    certSigning: x509.KeyUsageFlags.keyCertSign,
    crlSigning: x509.KeyUsageFlags.cRLSign,
    encipherOnly: x509.KeyUsageFlags.encipherOnly,
    decipherOnly: x509.KeyUsageFlags.decipherOnly,
};

/** allowedUses names -> extended key usage OIDs (RFC 5280 4.2.1.12 and vendors'). */
export const EXT_KEY_USAGES: Record<string, string> = {
    anyExtended: "2.5.29.37.0",
    serverAuth: "1.3.6.1.5.5.7.3.1",
    clientAuth: "1.3.6.1.5.5.7.3.2",
    codeSigning: "1.3.6.1.5.5.7.3.3",
    emailProtection: "1.3.6.1.5.5.7.3.4",
    ipsecEndSystem: "1.3.6.1.5.5.7.3.5",
    ipsecTunnel: "1.3.6.1.5.5.7.3.6",
    ipsecUser: "1.3.6.1.5.5.7.3.7",
    timestamping: "1.3.6.1.5.5.7.3.8",
    ocspSigning: "1.3.6.1.5.5.7.3.9",
    microsoftServerGatedCrypto: "1.3.6.1.4.1.311.10.3.3",
    netscapeServerGatedCrypto: "2.16.840.1.113730.4.1",
    microsoftCommercialCodeSigning: "1.3.6.1.4.1.311.2.1.22",
    microsoftKernelCodeSigning: "1.3.6.1.4.1.311.61.1.1",
};

/** Subject properties -> attribute types, in Go's pkix.Name order. */
const SUBJECT_ATTRIBUTES: Array<[string, string]> = [
    ["country", "C"],
    ["province", "ST"],
    ["locality", "L"],
    ["streetAddresses", "2.5.4.9"],
    ["postalCode", "2.5.4.17"],
    ["organization", "O"],
    ["organizationalUnit", "OU"],
    ["commonName", "CN"],
    ["serialNumber", "2.5.4.5"],
    ["emailAddress", "1.2.840.113549.1.9.1"],
];

/** A signing key as both WebCrypto needs it and as upstream names its algorithm. */
export interface SigningKey {
    /** "RSA", "ECDSA" or "ED25519", as upstream's keyAlgorithm outputs. */
    algorithm: string;
    keys: CryptoKeyPair;
    signingAlgorithm: Algorithm | EcdsaParams;
}

const CURVES: Record<string, { namedCurve: string; hash: string }> = {
    prime256v1: { namedCurve: "P-256", hash: "SHA-256" },
    secp384r1: { namedCurve: "P-384", hash: "SHA-384" },
    secp521r1: { namedCurve: "P-521", hash: "SHA-512" },
};

function webAlgorithm(key: KeyObject): { algorithm: string; importParams: Algorithm | RsaHashedImportParams | EcKeyImportParams; signing: Algorithm | EcdsaParams } {
    switch (key.asymmetricKeyType) {
        case "rsa":
            return {
                algorithm: "RSA",
                importParams: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as RsaHashedImportParams,
                signing: { name: "RSASSA-PKCS1-v1_5" },
            };
        case "ec": {
            const curve = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ""];
            if (!curve) throw new Error(`ECDSA curve ${key.asymmetricKeyDetails?.namedCurve} cannot sign certificates here (use P256, P384 or P521)`);
            return {
                algorithm: "ECDSA",
                importParams: { name: "ECDSA", namedCurve: curve.namedCurve } as EcKeyImportParams,
                signing: { name: "ECDSA", hash: curve.hash } as EcdsaParams,
            };
        }
        case "ed25519":
            return { algorithm: "ED25519", importParams: { name: "Ed25519" }, signing: { name: "Ed25519" } };
        default:
            throw new Error(`unsupported private key type ${key.asymmetricKeyType}`);
    }
}

/** Reads a PEM private key in any of PrivateKey's encodings (PKCS#1, SEC 1, PKCS#8). */
export async function signingKey(pem: string): Promise<SigningKey> {
    const priv = createPrivateKey(pem);
    const alg = webAlgorithm(priv);
    const pkcs8 = priv.export({ type: "pkcs8", format: "der" });
    const spki = createPublicKey(priv).export({ type: "spki", format: "der" });
    const subtle = webcrypto.subtle;
    const keys = {
        privateKey: await subtle.importKey("pkcs8", pkcs8, alg.importParams, false, ["sign"]),
        publicKey: await subtle.importKey("spki", spki, alg.importParams, true, ["verify"]),
    } as CryptoKeyPair;
    return { algorithm: alg.algorithm, keys, signingAlgorithm: alg.signing };
}

/** The algorithm of the key inside a PEM public key or certificate's key, upstream's way. */
export function keyAlgorithmOf(publicKey: x509.PublicKey): string {
    const type = createPublicKey({ key: Buffer.from(publicKey.rawData), format: "der", type: "spki" }).asymmetricKeyType;
    return type === "rsa" ? "RSA" : type === "ec" ? "ECDSA" : type === "ed25519" ? "ED25519" : String(type).toUpperCase();
}

export function pem(o: { toString(format: "pem"): string }): string {
    return `${o.toString("pem").replace(/\r\n/g, "\n").trimEnd()}\n`;
}

/** A positive 128-bit serial number, hex, as Go's provider draws. */
export function randomSerial(): string {
    const b = randomBytes(16);
    b[0] = (b[0] & 0x7f) | 0x01; // positive, and never a leading zero byte
    return b.toString("hex");
}

export function serialDecimal(hex: string): string {
    return BigInt(`0x${hex}`).toString(10);
}

export type Subject = Record<string, Wire>;

/** Upstream's subject block -> a distinguished name (empty subject -> empty name). */
export function subjectName(subject: Wire): x509.JsonName {
    const s = (subject && typeof subject === "object" && !Array.isArray(subject) ? subject : {}) as Subject;
    const name: x509.JsonName = [];
    for (const [prop, type] of SUBJECT_ATTRIBUTES) {
        const v = s[prop];
        const values = Array.isArray(v) ? v.filter((x): x is string => typeof x === "string" && x !== "") : typeof v === "string" && v !== "" ? [v] : [];
        for (const value of values) name.push({ [type]: [value] });
    }
    return name;
}

export function strings(v: Wire): string[] {
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

/** SAN entries from dnsNames, ipAddresses and uris; undefined when there are none. */
export function sanExtension(dnsNames: string[], ipAddresses: string[], uris: string[]): x509.SubjectAlternativeNameExtension | undefined {
    const names = [
        ...dnsNames.map((value) => ({ type: "dns" as const, value })),
        ...ipAddresses.map((value) => ({ type: "ip" as const, value })),
        ...uris.map((value) => ({ type: "url" as const, value })),
    ];
    return names.length > 0 ? new x509.SubjectAlternativeNameExtension(names, false) : undefined;
}

/** basicConstraints, keyUsage and extKeyUsage from upstream's usage properties. */
export function usageExtensions(allowedUses: string[], isCa: boolean, maxPathLength: number): x509.Extension[] {
    const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(isCa, isCa && maxPathLength > 0 ? maxPathLength : undefined, true)];
    const bits = allowedUses.reduce((acc, u) => acc | (KEY_USAGES[u] ?? 0), 0);
    if (bits !== 0) extensions.push(new x509.KeyUsagesExtension(bits, true));
    const ekus = allowedUses.filter((u) => u in EXT_KEY_USAGES).map((u) => EXT_KEY_USAGES[u]);
    if (ekus.length > 0) extensions.push(new x509.ExtendedKeyUsageExtension(ekus, false));
    return extensions;
}

/** Validity window starting now (whole seconds), as RFC 3339 strings too. */
export function validity(hours: number, now = new Date()): { notBefore: Date; notAfter: Date; start: string; end: string } {
    const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const notAfter = new Date(notBefore.getTime() + hours * 3_600_000);
    const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");
    return { notBefore, notAfter, start: rfc3339(notBefore), end: rfc3339(notAfter) };
}

/** Upstream's readyForRenewal: the certificate is within earlyRenewalHours of its end (or past it). */
export function readyForRenewal(validityEndTime: Wire, earlyRenewalHours: Wire, now = Date.now()): boolean {
    if (typeof validityEndTime !== "string") return false;
    const end = Date.parse(validityEndTime);
    const early = typeof earlyRenewalHours === "number" ? earlyRenewalHours : 0;
    return !Number.isNaN(end) && now >= end - early * 3_600_000;
}

export function sha1Hex(text: string): string {
    return createHash("sha1").update(text).digest("hex");
}

// ---- check helpers -----------------------------------------------------------------

export function checkNames(p: WireMap, failures: CheckFailure[]): void {
    for (const key of ["dnsNames", "ipAddresses", "uris"]) {
        const v = p[key];
        if (v !== undefined && v !== null && !(Array.isArray(v) && v.every((x) => typeof x === "string"))) {
            failures.push({ property: key, reason: "must be a list of strings" });
        }
    }
    for (const ip of strings(p.ipAddresses)) {
        if (isIP(ip) === 0) failures.push({ property: "ipAddresses", reason: `${JSON.stringify(ip)} is not an IP address` });
    }
    for (const uri of strings(p.uris)) {
        try {
            new URL(uri);
        } catch {
            failures.push({ property: "uris", reason: `${JSON.stringify(uri)} is not a URI` });
        }
    }
}

export function checkUsage(p: WireMap, failures: CheckFailure[]): void {
    if (!Array.isArray(p.allowedUses)) {
        failures.push({ property: "allowedUses", reason: "is required: a list of key usages" });
    } else {
        for (const u of p.allowedUses) {
            if (typeof u !== "string" || !(u in KEY_USAGES || u in EXT_KEY_USAGES)) {
                failures.push({ property: "allowedUses", reason: `${JSON.stringify(u)} is not one of ${[...Object.keys(KEY_USAGES), ...Object.keys(EXT_KEY_USAGES)].sort().join(", ")}` });
            }
        }
    }
    for (const key of ["validityPeriodHours", "earlyRenewalHours", "maxPathLength"]) {
        const v = p[key];
        if (!(typeof v === "number" && Number.isInteger(v) && v >= (key === "maxPathLength" ? -1 : 0))) {
            failures.push({ property: key, reason: key === "validityPeriodHours" ? "is required: a whole number of hours >= 0" : "must be a whole number >= 0" });
        }
    }
}

/** Write-only keys keep the key out of state upstream; this plugin has no write-only fields. */
export function checkKeyInput(p: WireMap, prop: string, failures: CheckFailure[]): void {
    if (p[`${prop}Wo`] !== undefined && p[`${prop}Wo`] !== null) {
        failures.push({ property: `${prop}Wo`, reason: `write-only keys are not supported by onevm's tls plugin: use ${prop}` });
    }
    if (typeof p[prop] !== "string" || !(p[prop] as string).includes("PRIVATE KEY")) {
        failures.push({ property: prop, reason: "is required: a PEM private key" });
    }
}
