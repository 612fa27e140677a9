/**
 * Decides, from the stack's previous outputs, what a deploy means before anything runs: a
 * new release, a re-run of the current one, or a rollback to an earlier one; where the
 * release's content comes from (the config, or the stack's record of an earlier release);
 * and refuses to reuse a release ID for different content (release IDs are immutable).
 */
import { ReleaseContent } from "./app";

/** What the stack records per release ID: the identity hash and, for recent ones, the content. */
export interface ReleaseRecordEntry {
    hash: string;
    content?: ReleaseContent;
    /**
     * registry transport: each image reference of the release -> the digest-pinned
     * reference it ran (repository@sha256:...). Kept as long as the ID is recorded: a
     * moved tag never changes what this release ID runs, and a rollback pulls the same bytes.
     */
    digests?: Record<string, string>;
}

export interface PreviousOutputs {
    releaseId?: string;
    previousReleaseId?: string;
    /** Release ID -> record, in deploy order. A plain string is an older onevm's hash of its own rendering. */
    releases?: Record<string, ReleaseRecordEntry | string>;
    /** Where the current release's content came from when it was deployed. */
    releaseSource?: "config" | "record";
}

export interface ReleaseDecision {
    kind: "first" | "same" | "forward" | "rollback";
    previousReleaseId?: string;
    /** The content comes from the config (compose file + onevm:images) or from the stack's record. */
    source: "config" | "record";
    /** What preview and up print for the operator. */
    notice?: string;
}

export class ReleaseIdReusedError extends Error {}

/**
 * `configHash` is the identity of what the config describes, or undefined when that does
 * not make a valid app (only an earlier recorded release can then be deployed).
 */
export function decideRelease(prev: PreviousOutputs | undefined, releaseId: string, configHash: string | undefined): ReleaseDecision {
    const entry = prev?.releases?.[releaseId];
    const current = prev?.releaseId;
    const known = entry !== undefined;
    // An older onevm recorded a hash of its own rendering: nothing to compare with.
    const legacy = typeof entry === "string";
    const recorded = known && !legacy ? (entry as ReleaseRecordEntry) : undefined;
    const matches = recorded === undefined || configHash === recorded.hash;
    const rollbackNotice = (how: string) =>
        `Rolling back from ${current} to ${releaseId}: ${how}. The database is NOT restored: schema changes of later releases stay applied. ` +
        "To restore data, run the restore command on a named backup.";

    if (current === undefined) {
        return { kind: "first", source: "config" };
    }
    if (current === releaseId) {
        if (!matches && prev?.releaseSource === "record") {
            // Rolled back to by ID: it keeps running as recorded while the config describes
            // a release to come.
            return {
                kind: "same",
                previousReleaseId: prev?.previousReleaseId,
                source: "record",
                notice: `Release ${releaseId} runs as this stack recorded it (it was rolled back to); the configured images and Compose file differ from it and deploy with a new onevm:releaseId.`,
            };
        }
        if (!matches && configHash !== undefined) {
            throw new ReleaseIdReusedError(
                `release ${releaseId} was deployed before with different content (hash ${recorded!.hash.slice(0, 12)}, now ${configHash.slice(0, 12)}): ` +
                    "release IDs are immutable; choose a new onevm:releaseId for new images or Compose file changes. Nothing was changed.",
            );
        }
        return { kind: "same", previousReleaseId: prev?.previousReleaseId, source: matches ? "config" : "record" };
    }
    if (!known) {
        return { kind: "forward", previousReleaseId: current, source: "config", notice: `Deploying ${releaseId} (current: ${current}).` };
    }
    if (matches && configHash !== undefined) {
        return { kind: "rollback", previousReleaseId: current, source: "config", notice: rollbackNotice("its images and Compose file are the configured ones") };
    }
    if (recorded?.content === undefined) {
        throw new ReleaseIdReusedError(
            `release ${releaseId} was deployed before, but its content is no longer recorded in this stack (only the newest releases' are) ` +
                "and the configured images and Compose file differ from it: set them back to what it ran, or deploy a new onevm:releaseId. Nothing was changed.",
        );
    }
    return {
        kind: "rollback",
        previousReleaseId: current,
        source: "record",
        notice: rollbackNotice("its images, Compose file and files come from this stack's record of it (the configured ones are for new releases)"),
    };
}

/**
 * The record after deploying releaseId: its entry moves to the end (deploy order), and
 * only the newest `keepContent` entries keep their content (older IDs stay immutable by
 * hash, and keep their pinned digests).
 */
export function recordRelease(
    releases: PreviousOutputs["releases"],
    releaseId: string,
    entry: ReleaseRecordEntry,
    keepContent: number,
): Record<string, ReleaseRecordEntry> {
    const ordered = Object.entries(releases ?? {}).filter(([id]) => id !== releaseId);
    ordered.push([releaseId, entry]);
    const firstWithContent = ordered.length - keepContent;
    return Object.fromEntries(
        ordered.map(([id, e], i) => {
            if (typeof e === "string") return [id, { hash: e }];
            const digests = e.digests && Object.keys(e.digests).length > 0 ? { digests: e.digests } : {};
            return [id, i >= firstWithContent && e.content ? { hash: e.hash, content: e.content, ...digests } : { hash: e.hash, ...digests }];
        }),
    );
}

/**
 * The digests this stack recorded for releaseId when it deployed it, if the release it
 * describes now has the same identity (`hash`): image reference -> pinned reference.
 */
export function recordedDigests(prev: PreviousOutputs | undefined, releaseId: string, hash: string): Record<string, string> {
    const entry = prev?.releases?.[releaseId];
    return typeof entry === "object" && entry.hash === hash && entry.digests ? { ...entry.digests } : {};
}
