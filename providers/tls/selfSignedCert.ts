import { CheckFailure } from "@pulumi/pulumi/provider";
import { ResourceType } from "../common/serve";
import { hasUnknown, pick, reveal, Wire, WireMap } from "../common/values";
import { certDiff, withCertDefaults } from "./certResource";
import * as t from "./x509";
import { x509 } from "./x509";

const INPUT_KEYS = [
    "allowedUses",
    "dnsNames",
    "earlyRenewalHours",
    "ipAddresses",
    "isCaCertificate",
    "maxPathLength",
    "privateKeyPem",
    "setAuthorityKeyId",
    "setSubjectKeyId",
    "subject",
    "uris",
    "validityPeriodHours",
] as const;

function validate(props: WireMap): CheckFailure[] {
    if (hasUnknown(props)) return [];
    const p = reveal(props) as WireMap;
    const failures: CheckFailure[] = [];
    t.checkKeyInput(p, "privateKeyPem", failures);
    t.checkUsage(p, failures);
    t.checkNames(p, failures);
    return failures;
}

export interface IssuedCert {
    certPem: string;
    serialHex: string;
    keyAlgorithm: string;
    validityStartTime: string;
    validityEndTime: string;
}

/** Issues the self-signed certificate the inputs describe (already revealed, defaults applied). */
export async function issueSelfSigned(p: Record<string, Wire>, now = new Date()): Promise<IssuedCert> {
    const key = await t.signingKey(p.privateKeyPem as string);
    const isCa = p.isCaCertificate === true;
    const v = t.validity(p.validityPeriodHours as number, now);
    const extensions = t.usageExtensions(t.strings(p.allowedUses), isCa, p.maxPathLength as number);
    const san = t.sanExtension(t.strings(p.dnsNames), t.strings(p.ipAddresses), t.strings(p.uris));
    if (san) extensions.push(san);
    // Go adds a subject key identifier to every CA certificate even when not asked to.
    if (p.setSubjectKeyId === true || isCa) extensions.push(await x509.SubjectKeyIdentifierExtension.create(key.keys.publicKey));
    if (p.setAuthorityKeyId === true) extensions.push(await x509.AuthorityKeyIdentifierExtension.create(key.keys.publicKey));
    const serialHex = t.randomSerial();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: serialHex,
        name: t.subjectName(p.subject),
        notBefore: v.notBefore,
        notAfter: v.notAfter,
        keys: key.keys,
        signingAlgorithm: key.signingAlgorithm,
        extensions,
    });
    return { certPem: t.pem(cert), serialHex, keyAlgorithm: key.algorithm, validityStartTime: v.start, validityEndTime: v.end };
}

/** tls:index/selfSignedCert:SelfSignedCert. */
export const selfSignedCert: ResourceType = {
    async check(_olds, news) {
        const inputs = withCertDefaults(news, { setAuthorityKeyId: false });
        return { inputs, failures: validate(inputs) };
    },

    async diff(olds, news) {
        return certDiff(olds, news, INPUT_KEYS);
    },

    async create(_ctx, inputs) {
        const cert = await issueSelfSigned(reveal(inputs) as Record<string, Wire>);
        return {
            // Upstream's ID: the serial number in decimal.
            id: t.serialDecimal(cert.serialHex),
            outs: {
                ...pick(inputs, INPUT_KEYS),
                certPem: cert.certPem,
                keyAlgorithm: cert.keyAlgorithm,
                validityStartTime: cert.validityStartTime,
                validityEndTime: cert.validityEndTime,
                readyForRenewal: false,
            },
        };
    },

    async update(_ctx, _id, olds, news) {
        // Only earlyRenewalHours changes in place (see certDiff).
        return { outs: { ...olds, earlyRenewalHours: news.earlyRenewalHours } };
    },
};
