import { createHash } from "crypto";

/** Host key algorithms ssh2 may negotiate for each public key type. */
const ALGORITHMS: Record<string, string[]> = {
    "ssh-ed25519": ["ssh-ed25519"],
    "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
    "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
    "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
    "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
};

export interface PinnedHostKey {
    type: string;
    /** The key in SSH wire format, as the server presents it during key exchange. */
    blob: Buffer;
    /** Restricting negotiation to these makes a server with several host keys present the pinned one. */
    algorithms: string[];
}

/**
 * Parses an OpenSSH public key ("ssh-ed25519 AAAA... comment"), also accepting a
 * known_hosts line ("host ssh-ed25519 AAAA...") as printed by ssh-keyscan.
 */
export function parseHostKey(text: string): PinnedHostKey {
    const fields = text.trim().split(/\s+/);
    const at = fields.findIndex((f) => f in ALGORITHMS);
    if (at < 0 || at + 1 >= fields.length) {
        throw new Error(`hostKey is not an OpenSSH public key of a supported type (${Object.keys(ALGORITHMS).join(", ")})`);
    }
    const type = fields[at];
    const blob = Buffer.from(fields[at + 1], "base64");
    const embeddedLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
    if (embeddedLength < 0 || blob.subarray(4, 4 + embeddedLength).toString("latin1") !== type) {
        throw new Error(`hostKey: the base64 key data is not a ${type} key`);
    }
    return { type, blob, algorithms: ALGORITHMS[type] };
}

/** OpenSSH's SHA256 fingerprint, as `ssh-keygen -lf` prints it. */
export function fingerprint(blob: Buffer): string {
    return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}
