/**
 * SSH host keys: parsing the pinned key, `ssh-keygen -l` fingerprints, and the decision
 * and message of the pre-flight that refuses a VM offering another key
 * (components/hostKeyPreflight.ts does the I/O).
 */
import { createHash } from "crypto";

export interface HostKey {
    /** Key type, e.g. `ssh-ed25519`. */
    type: string;
    /** The key blob (SSH wire format), as sent in the key exchange. */
    blob: Buffer;
}

/** Parses an OpenSSH public key line (`TYPE BASE64 [comment]`, as `ssh-keyscan | cut -d' ' -f2-` prints it). */
export function parseHostKey(line: string): HostKey {
    const [type, b64] = line.trim().split(/\s+/);
    const blob = Buffer.from(b64 ?? "", "base64");
    if (!type || !b64 || blob.length < 4 || blob.toString("base64").replace(/=+$/, "") !== b64.replace(/=+$/, "") || blobType(blob) !== type) {
        throw new Error(`not an OpenSSH public key line ("TYPE BASE64"): ${JSON.stringify(line.slice(0, 80))}`);
    }
    return { type, blob };
}

/** The key type a blob declares (its first SSH string), or undefined when malformed. */
export function blobType(blob: Buffer): string | undefined {
    if (blob.length < 4) return undefined;
    const n = blob.readUInt32BE(0);
    return n > 0 && 4 + n <= blob.length ? blob.subarray(4, 4 + n).toString("latin1") : undefined;
}

/** The fingerprint `ssh-keygen -l` prints: `SHA256:` and the unpadded base64 of the blob's sha256. */
export function fingerprint(blob: Buffer): string {
    return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The host key algorithms to offer so the server presents a key of the pinned type (what the command provider offers too). */
export function hostKeyAlgorithms(type: string): string[] {
    return type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
}

export const sameKey = (a: Buffer, b: Buffer): boolean => a.equals(b);

export interface MismatchReport {
    host: string;
    port: number;
    /** The key the VM offered; undefined when it offered none of the pinned type and no other could be read. */
    offered?: Buffer;
    pinned: HostKey;
    /** Where the pinned key comes from, e.g. `onevm:hostPublicKey`. */
    pinnedBy: string;
    /** What the operator should do, one sentence. */
    remedy: string;
}

const describe = (blob: Buffer) => `${fingerprint(blob)} (${blobType(blob) ?? "unknown type"})`;

/** The one error line of a refused host key: both keys, what was (not) done, what to do. */
export function hostKeyMismatchMessage(r: MismatchReport): string {
    const offered = r.offered ? `offered host key ${describe(r.offered)}` : `offered no ${r.pinned.type} host key`;
    return (
        `onevm: the VM at ${r.host}:${r.port} ${offered} but ${r.pinnedBy} pins ${describe(r.pinned.blob)}; ` +
        `nothing was changed. ${r.remedy}`
    );
}

/** Dial attempts and their bound, as the command provider's connection (dialErrorLimit, perDialTimeout). */
export interface DialPolicy {
    attempts: number;
    perDialTimeoutMs: number;
    /** Pause before attempt n+1 (n from 1): grows from 1 s to at most 5 s. */
    pauseMs(n: number): number;
}

export const defaultDialPolicy: DialPolicy = {
    attempts: 30,
    perDialTimeoutMs: 10_000,
    pauseMs: (n) => Math.min(1000 * 1.5 ** (n - 1), 5000),
};
