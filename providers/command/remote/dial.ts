import { Client, ClientChannel, ConnectConfig, utils } from "ssh2";
import { Logger } from "../../common/log";
import { Connection, Endpoint } from "./connection";
import { fingerprint, parseHostKey } from "./hostKey";

/** Retrying cannot fix a wrong host key or an unusable credential. */
class FatalDialError extends Error {}

export interface DialOptions {
    log: Logger;
    /** Milliseconds to wait after the n-th failed dial (n from 1). */
    retryDelayMs?: (failures: number) => number;
}

const defaultDelay = (failures: number) => Math.min(1000 * 2 ** (failures - 1), 10_000);

function describe(ep: Endpoint): string {
    return `${ep.user}@${ep.host}:${ep.port}`;
}

function keyType(blob: Buffer): string {
    return blob.subarray(4, 4 + blob.readUInt32BE(0)).toString("latin1");
}

function authConfig(ep: Endpoint): Partial<ConnectConfig> {
    if (ep.privateKey !== undefined) {
        const parsed = utils.parseKey(ep.privateKey, ep.privateKeyPassword);
        if (parsed instanceof Error) {
            throw new FatalDialError(`the privateKey for ${describe(ep)} is unusable: ${parsed.message}`);
        }
    }
    const agent = ep.agentSocketPath ?? process.env.SSH_AUTH_SOCK;
    const methods: ConnectConfig["authHandler"] = [
        ...(ep.privateKey !== undefined ? (["publickey"] as const) : []),
        ...(agent ? (["agent"] as const) : []),
        ...(ep.password !== undefined ? (["password", "keyboard-interactive"] as const) : []),
    ];
    return {
        username: ep.user,
        privateKey: ep.privateKey,
        passphrase: ep.privateKeyPassword,
        password: ep.password,
        agent: agent || undefined,
        tryKeyboard: ep.password !== undefined,
        authHandler: methods,
    };
}

/** One SSH handshake and authentication, over TCP or over `sock` (a channel forwarded by a proxy). */
function connectOnce(ep: Endpoint, sock?: ClientChannel): Promise<Client> {
    const pinned = parseHostKey(ep.hostKey);
    const auth = authConfig(ep);
    return new Promise((resolve, reject) => {
        const client = new Client();
        let presented: Buffer | undefined;
        let ready = false;
        client.on("error", (err) => {
            if (ready) return; // the session user sees the failure through its channel closing
            client.end();
            if (presented && !presented.equals(pinned.blob)) {
                reject(
                    new FatalDialError(
                        `host key mismatch for ${describe(ep)}: expected ${pinned.type} ${fingerprint(pinned.blob)}, ` +
                            `server presented ${keyType(presented)} ${fingerprint(presented)}; refusing to connect`,
                    ),
                );
            } else if (/no matching host key format/.test(err.message)) {
                reject(new FatalDialError(`host key mismatch for ${describe(ep)}: server has no ${pinned.type} host key; refusing to connect`));
            } else {
                reject(err);
            }
        });
        client.on("keyboard-interactive", (_name, _instructions, _lang, prompts, finish) =>
            finish(prompts.map(() => ep.password ?? "")),
        );
        client.once("ready", () => {
            ready = true;
            // Sessions and SFTP are chains of small request/response packets that Nagle's algorithm would delay.
            client.setNoDelay(true);
            resolve(client);
        });
        client.connect({
            ...auth,
            host: ep.host,
            port: ep.port,
            sock,
            readyTimeout: ep.perDialTimeout * 1000,
            keepaliveInterval: 15_000,
            keepaliveCountMax: 4,
            algorithms: { serverHostKey: pinned.algorithms as NonNullable<ConnectConfig["algorithms"]>["serverHostKey"] },
            hostVerifier: (key: Buffer) => {
                presented = key;
                return key.equals(pinned.blob);
            },
        });
    });
}

async function withRetries<T>(what: string, limit: number, opts: DialOptions, attempt: () => Promise<T>): Promise<T> {
    const delay = opts.retryDelayMs ?? defaultDelay;
    for (let failures = 1; ; failures++) {
        try {
            return await attempt();
        } catch (err) {
            if (err instanceof FatalDialError) throw err;
            const reason = (err as Error).message;
            // Like upstream, `limit` counts tolerated failures: limit 10 allows 11 attempts.
            if (limit !== -1 && failures > limit) {
                throw new Error(`${what}: giving up after ${failures} failed attempts; last error: ${reason}`);
            }
            const wait = delay(failures);
            const of = limit === -1 ? "unlimited" : String(limit + 1);
            opts.log.info(`${what}: attempt ${failures}/${of} failed (${reason}); retrying in ${wait / 1000}s`);
            await new Promise((r) => setTimeout(r, wait));
        }
    }
}

function forward(proxy: Client, ep: Endpoint): Promise<ClientChannel> {
    return new Promise((resolve, reject) =>
        proxy.forwardOut("127.0.0.1", 0, ep.host, ep.port, (err, channel) => (err ? reject(err) : resolve(channel))),
    );
}

/**
 * Connects with bounded retries: a freshly booted host may refuse connections or
 * reject our key until sshd and cloud-init are done.
 */
export async function dial(conn: Connection, opts: DialOptions): Promise<Client> {
    const target = `ssh ${describe(conn)}`;
    if (!conn.proxy) return withRetries(target, conn.dialErrorLimit, opts, () => connectOnce(conn));

    const proxyEp = conn.proxy;
    const proxy = await withRetries(`ssh proxy ${describe(proxyEp)}`, proxyEp.dialErrorLimit, opts, () => connectOnce(proxyEp));
    try {
        const client = await withRetries(`${target} via proxy`, conn.dialErrorLimit, opts, async () =>
            connectOnce(conn, await forward(proxy, conn)),
        );
        client.on("close", () => proxy.end());
        return client;
    } catch (err) {
        proxy.end();
        throw err;
    }
}
