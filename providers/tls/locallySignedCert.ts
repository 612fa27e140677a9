import { createPrivateKey, createPublicKey } from "crypto";
import { CheckFailure } from "@pulumi/pulumi/provider";
import { ResourceType } from "../common/serve";
import { hasUnknown, pick, reveal, Wire, WireMap } from "../common/values";
import { certDiff, withCertDefaults } from "./certResource";
import * as t from "./x509";
import { x509 } from "./x509";

const INPUT_KEYS = [
    "allowedUses",
    "caCertPem",
    "caPrivateKeyPem",
    "certRequestPem",
    "earlyRenewalHours",
    "isCaCertificate",
    "maxPathLength",
    "setSubjectKeyId",
    "validityPeriodHours",
] as const;

const SAN_OID = "2.5.29.17";

function validate(props: WireMap): CheckFailure[] {
    if (hasUnknown(props)) return [];
    const p = reveal(props) as WireMap;
    const failures: CheckFailure[] = [];
    t.checkKeyInput(p, "caPrivateKeyPem", failures);
    t.checkUsage(p, failures);
    if (typeof p.caCertPem !== "string" || !p.caCertPem.includes("BEGIN CERTIFICATE")) {
        failures.push({ property: "caCertPem", reason: "is required: the CA certificate in PEM" });
    }
    if (typeof p.certRequestPem !== "string" || !p.certRequestPem.includes("CERTIFICATE REQUEST")) {
        failures.push({ property: "certRequestPem", reason: "is required: a PEM certificate request" });
    }
    return failures;
}

export interface SignedCert {
    certPem: string;
    serialHex: string;
    caKeyAlgorithm: string;
    validityStartTime: string;
    validityEndTime: string;
}

/**
 * Signs the request with the CA: subject and SANs come from the request (its signature
 * is verified first), issuer and authority key identifier from the CA certificate, whose
 * key must be the CA private key's.
 */
export async function signRequest(p: Record<string, Wire>, now = new Date()): Promise<SignedCert> {
    const ca = await t.signingKey(p.caPrivateKeyPem as string);
    const caCert = new x509.X509Certificate(p.caCertPem as string);
    const caSpki = Buffer.from(new Uint8Array(caCert.publicKey.rawData));
    const keySpki = createPublicKey(createPrivateKey(p.caPrivateKeyPem as string)).export({ type: "spki", format: "der" });
    if (!caSpki.equals(keySpki)) throw new Error("caPrivateKeyPem is not the private key of caCertPem");
    const csr = new x509.Pkcs10CertificateRequest(p.certRequestPem as string);
    if (!(await csr.verify())) throw new Error("certRequestPem: the request's signature does not verify");

    const v = t.validity(p.validityPeriodHours as number, now);
    const isCa = p.isCaCertificate === true;
    const extensions = t.usageExtensions(t.strings(p.allowedUses), isCa, p.maxPathLength as number);
    const san = csr.getExtension(SAN_OID);
    if (san) extensions.push(san);
    const publicKey = await csr.publicKey.export();
    if (p.setSubjectKeyId === true || isCa) extensions.push(await x509.SubjectKeyIdentifierExtension.create(publicKey));
    const caSki = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
    if (caSki) extensions.push(new x509.AuthorityKeyIdentifierExtension(caSki.keyId));
    const serialHex = t.randomSerial();
    const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serialHex,
        subject: csr.subjectName,
        issuer: caCert.subjectName,
        notBefore: v.notBefore,
        notAfter: v.notAfter,
        publicKey,
        signingKey: ca.keys.privateKey,
        signingAlgorithm: ca.signingAlgorithm,
        extensions,
    });
    return { certPem: t.pem(cert), serialHex, caKeyAlgorithm: ca.algorithm, validityStartTime: v.start, validityEndTime: v.end };
}

/** tls:index/locallySignedCert:LocallySignedCert. */
export const locallySignedCert: ResourceType = {
    async check(_olds, news) {
        const inputs = withCertDefaults(news);
        return { inputs, failures: validate(inputs) };
    },

    async diff(olds, news) {
        return certDiff(olds, news, INPUT_KEYS);
    },

    async create(_ctx, inputs) {
        const cert = await signRequest(reveal(inputs) as Record<string, Wire>);
        return {
            id: t.serialDecimal(cert.serialHex),
            outs: {
                ...pick(inputs, INPUT_KEYS),
                certPem: cert.certPem,
                caKeyAlgorithm: cert.caKeyAlgorithm,
                validityStartTime: cert.validityStartTime,
                validityEndTime: cert.validityEndTime,
                readyForRenewal: false,
            },
        };
    },

    async update(_ctx, _id, olds, news) {
        return { outs: { ...olds, earlyRenewalHours: news.earlyRenewalHours } };
    },
};
