/**
 * Builds what onevm uploads: the remote scripts archive and the release bundle. Reads
 * local files only; both come out byte-identical for identical input.
 */
import * as fs from "fs";
import * as path from "path";
import { BundleFile, contentHash, tarball } from "./bundle";
import { Images } from "./config";
import { ProxyOptions, renderCompose } from "./render/compose";
import { renderEnvExample } from "./render/env";
import { renderUnit, unitName } from "./render/unit";

export const REMOTE_SCRIPTS_DIR = path.join(__dirname, "..", "scripts", "remote");

export interface Archive {
    hash: string;
    /** base64 of the tar.gz, as the remote side reads it from stdin. */
    base64: Promise<string>;
}

function archive(files: BundleFile[]): Archive {
    return { hash: contentHash(files), base64: tarball(files).then((b) => b.toString("base64")) };
}

/** Content hash of onevm's remote scripts, naming the dir they are uploaded to. */
export function toolsHash(dir = REMOTE_SCRIPTS_DIR): string {
    const files = fs
        .readdirSync(dir)
        .filter((f) => f.endsWith(".sh"))
        .map((f) => ({ path: f, content: fs.readFileSync(path.join(dir, f), "utf8"), mode: 0o755 }));
    if (files.length === 0) {
        throw new Error(`no remote scripts found in ${dir}`);
    }
    return contentHash(files);
}

export interface ReleaseBundleOptions {
    app: string;
    user: string;
    releaseId: string;
    images: Images;
    envKeys: string[];
    appEnvKeys: string[];
    /** Host directory for PostgreSQL data (see renderCompose). */
    dataDir?: string;
    /** The ingress proxy service, when on. */
    proxy?: ProxyOptions;
}

export interface ReleaseBundle extends Archive {
    composeText: string;
}

/**
 * compose.yaml, .env.example (keys only), the systemd unit template and release.json.
 * The content hash covers exactly what defines the release, so reusing a release ID
 * with different images or topology is detected on the VM and refused.
 */
export function releaseBundle(o: ReleaseBundleOptions): ReleaseBundle {
    const composeText = renderCompose({
        app: o.app,
        releaseId: o.releaseId,
        images: o.images,
        appEnvKeys: o.appEnvKeys,
        dataDir: o.dataDir,
        proxy: o.proxy,
    });
    // activate.sh loads/pulls every image release.json names: the proxy's too.
    const images: Record<string, string> = o.proxy ? { ...o.images, proxy: o.proxy.image } : o.images;
    const files: BundleFile[] = [
        { path: "compose.yaml", content: composeText },
        { path: ".env.example", content: renderEnvExample(o.envKeys) },
        { path: `systemd/${unitName(o.app)}`, content: renderUnit(o.app, o.user) },
    ];
    const hash = contentHash(files);
    const releaseJson = `${JSON.stringify({ release_id: o.releaseId, app: o.app, images, content_hash: hash }, null, 2)}\n`;
    const bundle = archive([...files, { path: "release.json", content: releaseJson }]);
    return { ...bundle, hash, composeText };
}

/** An image archive to upload, with its content hash when build-images.sh recorded one. */
export interface ImageArchive {
    path: string;
    sha256?: string;
}

/** `docker save` archives for archive transport: <dir>/<service>_<tag>.tar, which must exist. */
export function imageArchivePaths(images: Record<string, string>, dir: string): ImageArchive[] {
    return [...new Set(Object.values(images))].map((ref) => {
        const file = path.resolve(dir, `${archiveName(ref)}.tar`);
        if (!fs.existsSync(file)) {
            throw new Error(
                `image archive ${file} for ${ref} does not exist: build it (scripts/build-images.sh --save ${dir}) ` +
                    `or use imageTransport: registry`,
            );
        }
        return { path: file, sha256: readRecordedSha256(file) };
    });
}

/**
 * The sha256 build-images.sh wrote beside an archive (`<archive>.sha256`, sha256sum's
 * format), when that record is at least as new as the archive: an archive rewritten
 * after its record (by hand, say) gets no hash, and the engine hashes the file itself.
 */
export function recordedSha256(archive: { name: string; mtimeMs: number }, record: { text: string; mtimeMs: number }): string | undefined {
    if (record.mtimeMs < archive.mtimeMs) {
        return undefined;
    }
    const m = /^([0-9a-f]{64}) [ *](.+)\n?$/.exec(record.text);
    return m && path.basename(m[2]) === archive.name ? m[1] : undefined;
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

/** onevm/bot-api:v1 -> bot-api_v1 (the name scripts/build-images.sh --save writes). */
export function archiveName(ref: string): string {
    const lastPath = ref.split("/").pop() ?? ref;
    return lastPath.replace(/@sha256:([a-f0-9]{12}).*$/, "_$1").replace(":", "_");
}
