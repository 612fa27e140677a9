import * as pulumi from "@pulumi/pulumi";
import { Client } from "ssh2";
import { defaultDialPolicy, DialPolicy, hostKeyAlgorithms, hostKeyMismatchMessage, parseHostKey, sameKey } from "../lib/hostKey";
import { stopWithError } from "./stop";

export interface PreflightTarget {
    host: pulumi.Input<string>;
    port: pulumi.Input<number>;
    /** The login user: named in the key exchange only, no login is attempted. */
    user: pulumi.Input<string>;
    /** The pinned host key (OpenSSH line). */
    hostKey: pulumi.Input<string>;
}

export interface PreflightText {
    /** Where the pinned key comes from, e.g. `onevm:hostPublicKey`. */
    pinnedBy: string;
    /** What the operator should do about a mismatch. */
    remedy: string;
}

/**
 * Resolves once the VM's sshd offers the pinned host key; ends the program with one error
 * naming both keys when it offers another (nothing has run on the VM then). Only during
 * `pulumi up`: a preview opens no connection. Connection errors (a booting droplet) are
 * retried like the command provider's dials (30 × 10 s at most); a wrong key never is.
 * The official command provider also refuses a wrong key, but only after all its dial
 * retries (about two minutes), because it treats the refusal as one more dial error.
 */
export function verifiedHostKey(target: PreflightTarget, text: PreflightText, policy: DialPolicy = defaultDialPolicy): pulumi.Output<void> {
    return pulumi.all([target.host, target.port, target.user, target.hostKey]).apply(async ([host, port, user, line]) => {
        if (pulumi.runtime.isDryRun()) return;
        const pinned = parseHostKey(line);
        for (let attempt = 1; ; attempt++) {
            try {
                let offered = await offeredKey(host, port, user, hostKeyAlgorithms(pinned.type), policy.perDialTimeoutMs, pinned.blob);
                if (offered === "no-key-of-type") {
                    // Name the key it does offer, whatever its type.
                    offered = await offeredKey(host, port, user, undefined, policy.perDialTimeoutMs).catch(() => "no-key-of-type" as const);
                }
                if (offered instanceof Buffer && sameKey(offered, pinned.blob)) return;
                return stopWithError(
                    hostKeyMismatchMessage({ host, port, offered: offered instanceof Buffer ? offered : undefined, pinned, pinnedBy: text.pinnedBy, remedy: text.remedy }),
                );
            } catch (e) {
                if (attempt >= policy.attempts) {
                    throw new Error(`onevm: could not reach sshd at ${host}:${port} to check its host key after ${attempt} attempts: ${(e as Error).message}`);
                }
                await pulumi.log.info(`host key check: ${host}:${port} not reachable yet (${(e as Error).message}), attempt ${attempt}/${policy.attempts}`);
                await new Promise((r) => setTimeout(r, policy.pauseMs(attempt)));
            }
        }
    });
}

/**
 * Connects to sshd and returns the host key it offers (the key exchange only: the
 * connection ends at the handshake, before any login). When `expected` is given and
 * matches, the handshake completes first, so the server has proven it holds the key.
 * "no-key-of-type": the server has no key of the offered algorithms. Rejects on
 * connection errors.
 */
function offeredKey(host: string, port: number, user: string, algorithms: string[] | undefined, timeoutMs: number, expected?: Buffer): Promise<Buffer | "no-key-of-type"> {
    return new Promise((resolve, reject) => {
        const client = new Client();
        let offered: Buffer | undefined;
        let settled = false;
        const done = (f: () => void) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            client.end();
            f();
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no SSH handshake within ${timeoutMs / 1000} s`))), timeoutMs);
        client.on("handshake", () => done(() => resolve(offered!)));
        client.on("error", (err: Error & { level?: string }) => {
            if (offered) return done(() => resolve(offered!));
            if (/no matching host key format/i.test(err.message)) return done(() => resolve("no-key-of-type"));
            done(() => reject(err));
        });
        client.on("close", () => done(() => (offered ? resolve(offered) : reject(new Error("connection closed before the key exchange")))));
        client.connect({
            host,
            port,
            username: user,
            readyTimeout: timeoutMs,
            algorithms: algorithms ? { serverHostKey: algorithms as any } : undefined,
            hostVerifier: (key: Buffer) => {
                offered = Buffer.from(key);
                // A mismatch ends here; a match lets the key exchange finish (signature checked).
                return expected !== undefined && sameKey(offered, expected);
            },
        });
    });
}
