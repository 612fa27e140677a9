/**
 * The release bundle: the files of one release as uploaded to releases/<id>/ on the VM.
 * Its content hash identifies the release's content, so reusing a release ID with other
 * content is detected; the tarball is deterministic (fixed mtime, owner and order).
 */
import { createHash } from "crypto";
import { createGzip } from "zlib";
import { pack } from "tar-stream";

export interface BundleFile {
    path: string;
    content: string;
    mode?: number;
}

/** sha256 over sorted paths and contents: stable across machines and tar versions. */
export function contentHash(files: BundleFile[]): string {
    const h = createHash("sha256");
    for (const f of [...files].sort((a, b) => a.path.localeCompare(b.path))) {
        h.update(`${f.path}\0${f.mode ?? 0o644}\0${Buffer.byteLength(f.content)}\0`);
        h.update(f.content);
    }
    return h.digest("hex");
}

/** A gzip'd tar of the files, byte-identical for identical input. */
export async function tarball(files: BundleFile[]): Promise<Buffer> {
    const archive = pack();
    const gzip = createGzip({ level: 9 });
    const chunks: Buffer[] = [];
    const done = new Promise<Buffer>((resolve, reject) => {
        gzip.on("data", (c: Buffer) => chunks.push(c));
        gzip.on("end", () => resolve(Buffer.concat(chunks)));
        gzip.on("error", reject);
        archive.on("error", reject);
    });
    archive.pipe(gzip);
    for (const f of [...files].sort((a, b) => a.path.localeCompare(b.path))) {
        archive.entry({ name: f.path, mode: f.mode ?? 0o644, mtime: new Date(0), uid: 0, gid: 0, uname: "", gname: "" }, f.content);
    }
    archive.finalize();
    return done;
}

export function sha256(text: string): string {
    return createHash("sha256").update(text).digest("hex");
}
