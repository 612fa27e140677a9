/**
 * What the program reads from this checkout besides the Compose file: the VM engine
 * (vm/) it uploads, and the `docker save` archives of archive transport.
 */
import * as fs from "fs";
import * as path from "path";
import { BundleFile, contentHash } from "../lib/bundle";
import { archiveName, ImageArchive, recordedSha256 } from "../lib/images";

/** The on-VM engine: entry scripts and their lib/ modules. */
export const VM_ENGINE_DIR = path.join(__dirname, "..", "vm");

/** Content hash of the VM engine: names the tools dir it is uploaded to on the VM. */
export function vmEngineHash(dir = VM_ENGINE_DIR): string {
    const files: BundleFile[] = [];
    const walk = (rel: string) => {
        for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
            const child = path.join(rel, entry.name);
            if (entry.isDirectory()) walk(child);
            else if (entry.name.endsWith(".sh")) files.push({ path: child, content: fs.readFileSync(path.join(dir, child), "utf8") });
        }
    };
    walk("");
    if (files.length === 0) {
        throw new Error(`no VM engine scripts found in ${dir}`);
    }
    return contentHash(files);
}

/** `docker save` archives for archive transport: <dir>/<name>_<tag>.tar, which must exist. */
export function imageArchivePaths(images: string[], dir: string): ImageArchive[] {
    return [...new Set(images)].map((ref) => {
        const file = path.resolve(dir, `${archiveName(ref)}.tar`);
        if (!fs.existsSync(file)) {
            throw new Error(
                `image archive ${file} for ${ref} does not exist: save it there (docker save ${ref} -o ${file}) or use onevm:imageTransport registry`,
            );
        }
        return { path: file, sha256: readRecordedSha256(file) };
    });
}

function readRecordedSha256(file: string): string | undefined {
    const recordFile = `${file}.sha256`;
    if (!fs.existsSync(recordFile)) {
        return undefined;
    }
    return recordedSha256(
        { name: path.basename(file), mtimeMs: fs.statSync(file).mtimeMs },
        { text: fs.readFileSync(recordFile, "utf8"), mtimeMs: fs.statSync(recordFile).mtimeMs },
    );
}
