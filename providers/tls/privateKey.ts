import { CheckFailure } from "@pulumi/pulumi/provider";
import { createHash, generateKeyPairSync, KeyObject } from "crypto";
import * as sshpk from "sshpk";
import { ResourceType } from "../common/serve";
import { changedKeys, hasUnknown, makeSecret, pick, reveal, Wire, WireMap } from "../common/values";

const INPUT_KEYS = ["algorithm", "ecdsaCurve", "rsaBits"] as const;

/** Upstream's curve names -> OpenSSL's. */
const CURVES: Record<string, string> = { P224: "secp224r1", P256: "prime256v1", P384: "secp384r1", P521: "secp521r1" };
const ALGORITHMS = ["RSA", "ECDSA", "ED25519"];

export interface KeyMaterial {
    privateKeyPem: string;
    privateKeyPemPkcs8: string;
    privateKeyOpenssh: string;
    publicKeyPem: string;
    publicKeyOpenssh: string;
    publicKeyFingerprintMd5: string;
    publicKeyFingerprintSha256: string;
}

function generatePair(algorithm: string, rsaBits: number, curve: string): { privateKey: KeyObject; publicKey: KeyObject } {
    if (algorithm === "RSA") return generateKeyPairSync("rsa", { modulusLength: rsaBits });
    if (algorithm === "ECDSA") return generateKeyPairSync("ec", { namedCurve: CURVES[curve] });
    return generateKeyPairSync("ed25519");
}

/** The same encodings as upstream: PKCS#1 for RSA, SEC 1 for ECDSA and PKCS#8 for Ed25519 in privateKeyPem. */
export function generateKey(algorithm: string, rsaBits: number, ecdsaCurve: string): KeyMaterial {
    const { privateKey, publicKey } = generatePair(algorithm, rsaBits, ecdsaCurve);
    const pemType: "pkcs1" | "sec1" | "pkcs8" = algorithm === "RSA" ? "pkcs1" : algorithm === "ECDSA" ? "sec1" : "pkcs8";
    const pkcs8 = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    const material: KeyMaterial = {
        privateKeyPem: privateKey.export({ type: pemType, format: "pem" }) as string,
        privateKeyPemPkcs8: pkcs8,
        publicKeyPem: publicKey.export({ type: "spki", format: "pem" }) as string,
        privateKeyOpenssh: "",
        publicKeyOpenssh: "",
        publicKeyFingerprintMd5: "",
        publicKeyFingerprintSha256: "",
    };
    // OpenSSH has no P-224 keys; upstream leaves these outputs empty for that curve too.
    if (algorithm === "ECDSA" && ecdsaCurve === "P224") return material;
    const key = sshpk.parsePrivateKey(pkcs8, "pem");
    key.comment = ""; // sshpk's default "(unnamed)" would be embedded in the OpenSSH private key
    const pub = key.toPublic();
    return {
        ...material,
        privateKeyOpenssh: key.toString("openssh"),
        // "type base64\n" without a comment, like Go's ssh.MarshalAuthorizedKey.
        publicKeyOpenssh: `${pub.toString("ssh").split(" ").slice(0, 2).join(" ")}\n`,
        publicKeyFingerprintMd5: pub.fingerprint("md5").toString("hex"),
        publicKeyFingerprintSha256: pub.fingerprint("sha256").toString("base64"),
    };
}

function withDefaults(news: WireMap): WireMap {
    return { ...news, rsaBits: news.rsaBits ?? 2048, ecdsaCurve: news.ecdsaCurve ?? "P224" };
}

function validate(props: WireMap): CheckFailure[] {
    if (hasUnknown(props)) return [];
    const p = reveal(props) as Record<string, Wire>;
    const failures: CheckFailure[] = [];
    if (!ALGORITHMS.includes(p.algorithm as string)) failures.push({ property: "algorithm", reason: `must be one of ${ALGORITHMS.join(", ")}` });
    if (!(typeof p.rsaBits === "number" && Number.isInteger(p.rsaBits) && p.rsaBits >= 1024)) {
        failures.push({ property: "rsaBits", reason: "must be an integer >= 1024" });
    }
    if (!(typeof p.ecdsaCurve === "string" && p.ecdsaCurve in CURVES)) {
        failures.push({ property: "ecdsaCurve", reason: `must be one of ${Object.keys(CURVES).join(", ")}` });
    }
    return failures;
}

/** tls:index/privateKey:PrivateKey. Any input change generates a new key. */
export const privateKey: ResourceType = {
    async check(_olds, news) {
        const inputs = withDefaults(news);
        return { inputs, failures: validate(inputs) };
    },

    async diff(olds, news) {
        const replaces = changedKeys(olds, news, INPUT_KEYS);
        return replaces.length === 0 ? { changes: false } : { changes: true, replaces };
    },

    async create(_ctx, inputs) {
        const p = reveal(inputs) as Record<string, Wire>;
        const key = generateKey(p.algorithm as string, p.rsaBits as number, p.ecdsaCurve as string);
        return {
            // Upstream's ID: SHA-1 of the public key PEM.
            id: createHash("sha1").update(key.publicKeyPem).digest("hex"),
            outs: {
                ...pick(inputs, INPUT_KEYS),
                ...key,
                privateKeyPem: makeSecret(key.privateKeyPem),
                privateKeyPemPkcs8: makeSecret(key.privateKeyPemPkcs8),
                privateKeyOpenssh: makeSecret(key.privateKeyOpenssh),
            },
        };
    },
};
