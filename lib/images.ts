/** Image archives of archive transport: their names and recorded hashes. Pure. */
import * as path from "path";

/** An image archive to upload, with its content hash when a record beside it gives one. */
export interface ImageArchive {
    path: string;
    sha256?: string;
}

/**
 * The sha256 recorded beside an archive (`<archive>.sha256`, sha256sum's format), when that
 * record is at least as new as the archive: an archive rewritten after its record gets no
 * hash, and the engine hashes the file itself.
 */
export function recordedSha256(archive: { name: string; mtimeMs: number }, record: { text: string; mtimeMs: number }): string | undefined {
    if (record.mtimeMs < archive.mtimeMs) {
        return undefined;
    }
    const m = /^([0-9a-f]{64}) [ *](.+)\n?$/.exec(record.text);
    return m && path.basename(m[2]) === archive.name ? m[1] : undefined;
}

/** registry/team/api:v1 -> api_v1; api@sha256:abc... -> api_<12 hex> (the names archives are saved under). */
export function archiveName(ref: string): string {
    const lastPath = ref.split("/").pop() ?? ref;
    return lastPath.replace(/@sha256:([a-f0-9]{12}).*$/, "_$1").replace(":", "_");
}
