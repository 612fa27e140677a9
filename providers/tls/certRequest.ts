import { CheckFailure } from "@pulumi/pulumi/provider";
import { ResourceType } from "../common/serve";
import { changedKeys, hasUnknown, pick, reveal, Wire, WireMap } from "../common/values";
import * as t from "./x509";
import { x509 } from "./x509";

const INPUT_KEYS = ["dnsNames", "ipAddresses", "privateKeyPem", "subject", "uris"] as const;

function validate(props: WireMap): CheckFailure[] {
    if (hasUnknown(props)) return [];
    const p = reveal(props) as WireMap;
    const failures: CheckFailure[] = [];
    t.checkKeyInput(p, "privateKeyPem", failures);
    t.checkNames(p, failures);
    return failures;
}

/** A PKCS#10 request: subject and SANs (as an extension request), signed by the key. */
export async function createRequest(p: Record<string, Wire>): Promise<{ certRequestPem: string; keyAlgorithm: string }> {
    const key = await t.signingKey(p.privateKeyPem as string);
    const san = t.sanExtension(t.strings(p.dnsNames), t.strings(p.ipAddresses), t.strings(p.uris));
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
        name: t.subjectName(p.subject),
        keys: key.keys,
        signingAlgorithm: key.signingAlgorithm,
        extensions: san ? [san] : [],
    });
    return { certRequestPem: t.pem(csr), keyAlgorithm: key.algorithm };
}

/** tls:index/certRequest:CertRequest. Any input change makes a new request. */
export const certRequest: ResourceType = {
    async check(_olds, news) {
        return { inputs: { ...news }, failures: validate(news) };
    },

    async diff(olds, news) {
        const replaces = changedKeys(olds, news, INPUT_KEYS);
        return replaces.length === 0 ? { changes: false } : { changes: true, replaces };
    },

    async create(_ctx, inputs) {
        const req = await createRequest(reveal(inputs) as Record<string, Wire>);
        return {
            id: t.sha1Hex(req.certRequestPem),
            outs: { ...pick(inputs, INPUT_KEYS), ...req },
        };
    },
};
