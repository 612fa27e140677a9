import { promises as fs } from "fs";
import * as path from "path";
import { Client, SFTPWrapper, Stats } from "ssh2";

/** What CopyToRemote can upload: a local file or directory, or literal text. */
export type Source = { kind: "path"; path: string } | { kind: "text"; text: string };

const NO_SUCH_FILE = 2; // SSH_FX_NO_SUCH_FILE

function call<T>(fn: (cb: (err: Error | null | undefined, value: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
}

async function statOrMissing(sftp: SFTPWrapper, p: string): Promise<Stats | undefined> {
    try {
        return await call<Stats>((cb) => sftp.stat(p, cb));
    } catch (err) {
        if ((err as { code?: number }).code === NO_SUCH_FILE) return undefined;
        throw err;
    }
}

/** `mkdir -p` */
async function mkdirs(sftp: SFTPWrapper, dir: string): Promise<void> {
    const parts = dir.split("/");
    for (let i = 1; i <= parts.length; i++) {
        const prefix = parts.slice(0, i).join("/");
        if (prefix === "" || prefix === ".") continue;
        const st = await statOrMissing(sftp, prefix);
        if (!st) await call<void>((cb) => sftp.mkdir(prefix, (err) => cb(err, undefined)));
        else if (!st.isDirectory()) throw new Error(`remote path ${prefix} exists but is not a directory`);
    }
}

/** Keeps the local permission bits (scripts stay executable), also when overwriting an existing file. */
async function putFile(sftp: SFTPWrapper, local: string, remote: string): Promise<void> {
    const { mode } = await fs.stat(local);
    await call<void>((cb) => sftp.fastPut(local, remote, (err) => cb(err, undefined)));
    await call<void>((cb) => sftp.chmod(remote, mode & 0o777, (err) => cb(err, undefined)));
}

async function putDir(sftp: SFTPWrapper, local: string, remote: string): Promise<void> {
    await mkdirs(sftp, remote);
    const entries = await fs.readdir(local);
    for (const name of entries.sort()) {
        const from = path.join(local, name);
        const to = path.posix.join(remote, name);
        const st = await fs.stat(from); // follows symlinks, like upstream's walk
        if (st.isDirectory()) await putDir(sftp, from, to);
        else if (st.isFile()) await putFile(sftp, from, to);
    }
}

/**
 * Upstream's placement rules: a directory `d` lands in `remotePath/d` (its contents directly
 * in remotePath when written `d/`); a file lands in remotePath, or inside it when remotePath
 * is an existing directory. Missing parent directories are created.
 */
export async function upload(client: Client, source: Source, remotePath: string): Promise<void> {
    const sftp = await call<SFTPWrapper>((cb) => client.sftp(cb));
    try {
        const existing = await statOrMissing(sftp, remotePath);
        if (source.kind === "text") {
            if (existing?.isDirectory()) throw new Error(`remote path ${remotePath} is a directory; a text source needs a file path`);
            await mkdirs(sftp, path.posix.dirname(remotePath));
            await call<void>((cb) => sftp.writeFile(remotePath, source.text, (err) => cb(err, undefined)));
            return;
        }
        const local = await fs.stat(source.path);
        if (local.isDirectory()) {
            if (existing && !existing.isDirectory()) throw new Error(`remote path ${remotePath} exists but is not a directory`);
            const dest = source.path.endsWith("/") ? remotePath : path.posix.join(remotePath, path.basename(source.path));
            await putDir(sftp, source.path, dest);
        } else {
            const dest = existing?.isDirectory() ? path.posix.join(remotePath, path.basename(source.path)) : remotePath;
            await mkdirs(sftp, path.posix.dirname(dest));
            await putFile(sftp, source.path, dest);
        }
    } finally {
        sftp.end();
    }
}
