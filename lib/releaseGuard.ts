/**
 * Decides, from the stack's previous outputs, what a deploy means before anything runs:
 * a new release, a re-run of the current one, or a rollback to an earlier one; and
 * refuses to reuse a release ID for different content (release IDs are immutable).
 */
export interface PreviousOutputs {
    releaseId?: string;
    previousReleaseId?: string;
    /** Release ID -> content hash of every release this stack has deployed. */
    releases?: Record<string, string>;
}

export interface ReleaseDecision {
    kind: "first" | "same" | "forward" | "rollback";
    previousReleaseId?: string;
    releases: Record<string, string>;
    /** What preview and up print for the operator. */
    notice?: string;
}

export class ReleaseIdReusedError extends Error {}

export function decideRelease(prev: PreviousOutputs | undefined, releaseId: string, contentHash: string): ReleaseDecision {
    const releases = { ...(prev?.releases ?? {}) };
    const known = releases[releaseId];
    if (known !== undefined && known !== contentHash) {
        throw new ReleaseIdReusedError(
            `release ${releaseId} was deployed before with different content (hash ${known.slice(0, 12)}, now ${contentHash.slice(0, 12)}): ` +
                "release IDs are immutable; choose a new onevm:releaseId for new images or compose changes. Nothing was changed.",
        );
    }
    releases[releaseId] = contentHash;
    const current = prev?.releaseId;
    if (current === undefined) {
        return { kind: "first", releases };
    }
    if (current === releaseId) {
        return { kind: "same", previousReleaseId: prev?.previousReleaseId, releases };
    }
    if (known !== undefined) {
        return {
            kind: "rollback",
            previousReleaseId: current,
            releases,
            notice:
                `Rolling back from ${current} to ${releaseId}: images, compose file and non-secret config return to ${releaseId}. ` +
                "The database is NOT restored: schema changes of later releases stay applied. " +
                "To restore data, run the restore command on a named backup (see README).",
        };
    }
    return { kind: "forward", previousReleaseId: current, releases, notice: `Deploying ${releaseId} (current: ${current}).` };
}
