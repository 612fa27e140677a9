import { spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import { Connection as ServerConnection, Server, ServerChannel, SFTPWrapper, utils } from "ssh2";

/**
 * An in-process SSH server for tests that behaves like sshd where it matters: exec
 * requests run as `bash -c <command>` with the channel as stdin, the SFTP subsystem
 * works on the local file system, and direct-tcpip forwarding makes it usable as a proxy.
 * It records what clients asked for, so tests can assert on what went over the wire.
 */
export interface TestSshServer {
    port: number;
    /** The server's public host key, OpenSSH format. */
    hostKey: string;
    /** TCP connections accepted so far. */
    connections: number;
    /** Every exec request's command string, verbatim. */
    execs: string[];
    /** Every `env` request (AcceptEnv-style variables); the provider must send none. */
    envRequests: Array<{ key: string; val: string }>;
    /** Public keys (base64 wire format) that authenticated successfully. */
    authenticatedKeys: string[];
    close(): Promise<void>;
}

export interface TestSshOptions {
    port?: number;
    user?: string;
    password?: string;
}

export function newHostKey(): { privateKey: string; publicKey: string } {
    // ssh2 1.17 writes an Ed25519 key its own parser rejects ("Malformed OpenSSH private
    // key") about once in 200 draws (9 of 2000 measured): draw again instead of flaking.
    for (;;) {
        const { private: privateKey, public: publicKey } = utils.generateKeyPairSync("ed25519");
        if (!(utils.parseKey(privateKey) instanceof Error)) return { privateKey, publicKey };
    }
}

function serveExec(channel: ServerChannel, command: string): void {
    const child = spawn("bash", ["-c", command], { stdio: "pipe" });
    child.stdin.on("error", () => undefined);
    channel.on("data", (d: Buffer) => child.stdin.write(d));
    channel.on("end", () => child.stdin.end());
    child.stdout.on("data", (d: Buffer) => channel.write(d));
    child.stderr.on("data", (d: Buffer) => channel.stderr.write(d));
    child.on("close", (code, signal) => {
        if (signal) channel.exit(signal.replace(/^SIG/, ""), false, "");
        else channel.exit(code ?? 255);
        channel.end();
    });
}

function serveSftp(sftp: SFTPWrapper): void {
    const { STATUS_CODE } = utils.sftp;
    const fds = new Map<number, number>();
    let next = 0;
    const fdOf = (handle: Buffer) => fds.get(handle.readUInt32BE(0)) ?? -1;
    const attrsOf = (st: fs.Stats) => ({ mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000 });
    const guard = (reqId: number, op: () => void) => {
        try {
            op();
        } catch (err) {
            const code = (err as NodeJS.ErrnoException).code === "ENOENT" ? STATUS_CODE.NO_SUCH_FILE : STATUS_CODE.FAILURE;
            sftp.status(reqId, code, (err as Error).message);
        }
    };
    sftp.on("OPEN", (reqId, filename, flags, attrs) =>
        guard(reqId, () => {
            const fd = fs.openSync(filename, utils.sftp.flagsToString(flags) ?? "r", attrs.mode ?? 0o644);
            const handle = Buffer.alloc(4);
            handle.writeUInt32BE(++next, 0);
            fds.set(next, fd);
            sftp.handle(reqId, handle);
        }),
    );
    sftp.on("WRITE", (reqId, handle, offset, data) =>
        guard(reqId, () => {
            fs.writeSync(fdOf(handle), data, 0, data.length, offset);
            sftp.status(reqId, STATUS_CODE.OK);
        }),
    );
    sftp.on("CLOSE", (reqId, handle) =>
        guard(reqId, () => {
            fs.closeSync(fdOf(handle));
            fds.delete(handle.readUInt32BE(0));
            sftp.status(reqId, STATUS_CODE.OK);
        }),
    );
    sftp.on("FSTAT", (reqId, handle) => guard(reqId, () => sftp.attrs(reqId, attrsOf(fs.fstatSync(fdOf(handle))))));
    sftp.on("STAT", (reqId, p) => guard(reqId, () => sftp.attrs(reqId, attrsOf(fs.statSync(p)))));
    sftp.on("LSTAT", (reqId, p) => guard(reqId, () => sftp.attrs(reqId, attrsOf(fs.lstatSync(p)))));
    sftp.on("MKDIR", (reqId, p) =>
        guard(reqId, () => {
            fs.mkdirSync(p);
            sftp.status(reqId, STATUS_CODE.OK);
        }),
    );
    sftp.on("SETSTAT", (reqId, p, attrs) =>
        guard(reqId, () => {
            if (attrs.mode !== undefined) fs.chmodSync(p, attrs.mode);
            sftp.status(reqId, STATUS_CODE.OK);
        }),
    );
    sftp.on("FSETSTAT", (reqId, handle, attrs) =>
        guard(reqId, () => {
            if (attrs.mode !== undefined) fs.fchmodSync(fdOf(handle), attrs.mode);
            sftp.status(reqId, STATUS_CODE.OK);
        }),
    );
}

function serveClient(client: ServerConnection, state: TestSshServer, opts: TestSshOptions): void {
    client.on("error", () => undefined);
    client.on("authentication", (ctx) => {
        if (opts.user !== undefined && ctx.username !== opts.user) return ctx.reject();
        if (ctx.method === "password" && opts.password !== undefined && ctx.password === opts.password) return ctx.accept();
        if (ctx.method === "publickey") {
            const key = utils.parseKey(ctx.key.data);
            if (key instanceof Error) return ctx.reject();
            if (!ctx.signature) return ctx.accept(); // the client only asks whether this key would do
            if (key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo as never) !== true) return ctx.reject();
            state.authenticatedKeys.push(ctx.key.data.toString("base64"));
            return ctx.accept();
        }
        ctx.reject(opts.password !== undefined ? ["publickey", "password"] : ["publickey"]);
    });
    client.on("ready", () => {
        client.on("session", (acceptSession) => {
            const session = acceptSession();
            session.on("env", (accept, _reject, info) => {
                state.envRequests.push({ key: info.key, val: info.val });
                accept?.();
            });
            session.on("exec", (accept, _reject, info) => {
                state.execs.push(info.command);
                serveExec(accept(), info.command);
            });
            session.on("sftp", (accept) => serveSftp(accept()));
        });
        client.on("tcpip", (accept, _reject, info) => {
            const upstream = net.connect(info.destPort, info.destIP);
            const channel = accept();
            upstream.on("error", () => channel.close());
            channel.pipe(upstream).pipe(channel);
        });
    });
}

export async function startSshServer(opts: TestSshOptions = {}, hostKey = newHostKey()): Promise<TestSshServer> {
    const clients = new Set<ServerConnection>();
    const state: TestSshServer = {
        port: 0,
        hostKey: hostKey.publicKey,
        connections: 0,
        execs: [],
        envRequests: [],
        authenticatedKeys: [],
        close: () =>
            new Promise((resolve) => {
                for (const c of clients) c.end();
                server.close(() => resolve());
            }),
    };
    const server = new Server({ hostKeys: [hostKey.privateKey] }, (client) => {
        state.connections++;
        clients.add(client);
        client.on("close", () => clients.delete(client));
        serveClient(client, state, opts);
    });
    await new Promise<void>((resolve) => server.listen(opts.port ?? 0, "127.0.0.1", resolve));
    state.port = (server.address() as net.AddressInfo).port;
    return state;
}
