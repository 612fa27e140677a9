import { CheckFailure } from "@pulumi/pulumi/provider";
import { createHash, randomBytes } from "crypto";
import { createReadStream, promises as fs } from "fs";
import { OpContext, ResourceType } from "../../common/serve";
import { changedKeys, hasUnknown, isArchive, isAsset, pick, reveal, sameValue, Wire, WireMap } from "../../common/values";
import { connectionChecks, hostChanged } from "./command";
import { requireConnection } from "./connection";
import { dial } from "./dial";
import { execute } from "./exec";
import { Source, upload } from "./sftp";

const INPUT_KEYS = ["connection", "remotePath", "source", "triggers"] as const;

/** FileAsset, StringAsset and FileArchive, as upstream; remote archives and AssetArchive are not. */
function toSource(v: Wire): Source | string {
    const s = reveal(v);
    if (isAsset(s) && typeof s.path === "string") return { kind: "path", path: s.path };
    if (isAsset(s) && typeof s.text === "string") return { kind: "text", text: s.text };
    if (isArchive(s) && typeof s.path === "string") return { kind: "path", path: s.path };
    return "must be a FileAsset, StringAsset or FileArchive";
}

function checks(news: WireMap): CheckFailure[] {
    const failures = connectionChecks(news);
    const remotePath = reveal(news.remotePath);
    if (!hasUnknown(remotePath) && (typeof remotePath !== "string" || remotePath === "")) {
        failures.push({ property: "remotePath", reason: "is required" });
    }
    const source = toSource(news.source);
    if (!hasUnknown(news.source) && typeof source === "string") failures.push({ property: "source", reason: source });
    return failures;
}

/** Files at least this big are compared by sha256 before an upload (small ones just go). */
const SAME_CONTENT_CHECK_BYTES = 1 << 20;

const shellQuote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

function sha256File(file: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const hash = createHash("sha256");
        createReadStream(file).on("error", reject).on("data", (d) => hash.update(d)).on("end", () => resolve(hash.digest("hex")));
    });
}

/** The engine's content hash of a FileAsset: the file's sha256 (it has just read the file). */
function engineHash(v: Wire): string | undefined {
    const s = reveal(v);
    return isAsset(s) && typeof s.hash === "string" && /^[0-9a-f]{64}$/.test(s.hash) ? s.hash : undefined;
}

/**
 * The remote file's sha256 from its `<path>.sha256` sidecar when the file's size and
 * change time (nanoseconds; any write, touch or chmod moves it) are still those recorded
 * there; else sha256sum it and (re)write the sidecar atomically. Hashing a 200 MB archive
 * on a small VM takes seconds, and a rollback checks two.
 */
function remoteHashCommand(remotePath: string): string {
    return [
        `f=${shellQuote(remotePath)}; s="$f.sha256"`,
        `[ -f "$f" ] || exit 3`,
        `now=$(stat -c '%s %z' -- "$f")`,
        `if [ -f "$s" ] && [ "$(sed -n 2p -- "$s")" = "$now" ]; then sed -n 1p -- "$s"; exit 0; fi`,
        `h=$(sha256sum -- "$f" | cut -d' ' -f1) && printf '%s\\n%s\\n' "$h" "$now" > "$s.tmp" && mv -f -- "$s.tmp" "$s" && echo "$h"`,
    ].join("\n");
}

/**
 * A big file that is already at remotePath with the same sha256 is not sent again: a
 * rollback finds its image archives (200 MB each) still on the VM, and re-sending them was
 * most of its wall time (npm run bench). Unlike upstream, which always uploads.
 */
async function sameContentThere(client: Awaited<ReturnType<typeof dial>>, localPath: string, remotePath: string, hash: string | undefined): Promise<boolean> {
    const exit = await execute(client, { command: remoteHashCommand(remotePath), env: {} });
    const remote = exit.code === 0 ? exit.stdout.trim() : "";
    return /^[0-9a-f]{64}$/.test(remote) && remote === (hash ?? (await sha256File(localPath)));
}

/** The local file's path when it is big enough to be compared before an upload. */
async function bigLocalFile(source: Source): Promise<string | undefined> {
    if (source.kind !== "path") return undefined;
    const st = await fs.stat(source.path);
    return st.isFile() && st.size >= SAME_CONTENT_CHECK_BYTES ? source.path : undefined;
}

async function copy(ctx: OpContext, props: WireMap): Promise<void> {
    const source = toSource(props.source);
    if (typeof source === "string") throw new Error(`source ${source}`);
    const remotePath = reveal(props.remotePath) as string;
    const client = await dial(requireConnection(reveal(props.connection)), { log: ctx.log });
    try {
        const big = await bigLocalFile(source);
        if (big && (await sameContentThere(client, big, remotePath, engineHash(props.source)))) return;
        await upload(client, source, remotePath);
        // The sidecar for the next comparison (best effort).
        if (big) await execute(client, { command: remoteHashCommand(remotePath), env: {} });
    } finally {
        client.end();
    }
}

/**
 * command:remote:CopyToRemote. The engine stamps every asset and archive with a content
 * hash, and sameValue compares sources by it: an unchanged source is never uploaded again.
 */
export const copyToRemote: ResourceType = {
    async check(_olds, news) {
        return { inputs: news, failures: checks(news) };
    },

    async diff(olds, news) {
        const changed = changedKeys(olds, news, INPUT_KEYS);
        if (changed.length === 0) return { changes: false };
        const replaces = [...(changed.includes("triggers") ? ["triggers"] : []), ...(hostChanged(olds, news) ? ["connection"] : [])];
        return { changes: true, replaces };
    },

    async create(ctx, inputs) {
        await copy(ctx, inputs);
        return { id: randomBytes(8).toString("hex"), outs: pick(inputs, INPUT_KEYS) };
    },

    async update(ctx, _id, olds, news) {
        if (!sameValue(olds.source, news.source) || !sameValue(olds.remotePath, news.remotePath)) await copy(ctx, news);
        return { outs: pick(news, INPUT_KEYS) };
    },
};
