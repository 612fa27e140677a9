/**
 * Digest pinning of registry transport: every image a release runs is pinned to the
 * manifest digest it had when the release was first deployed, and the VM runs exactly
 * that (releases/<id>/images.lock, docs/vm-contract.md). This decides where each pin
 * comes from and renders the lock; the program resolves the pins. Pure.
 */
import { parseImageRef, PINNED_REF, pinnedRef } from "./imageRef";

/** Where the pinned form of one image reference comes from. */
export type PinSource =
    /** The stack recorded it when this release ID was deployed. */
    | { kind: "recorded"; pinned: string }
    /** The reference pins a digest itself. */
    | { kind: "digest"; pinned: string }
    /** onevm builds and pushes it: the push reports the digest. */
    | { kind: "build" }
    /** Asked from the registry (the tag's digest now). */
    | { kind: "lookup" };

/**
 * Per distinct reference of the release: recorded pins first (a known release ID never
 * resolves again, so a moved tag changes nothing), then digests the reference names, then
 * onevm's builds, then a registry lookup.
 */
export function planPins(images: Record<string, string>, builtRefs: ReadonlySet<string>, recorded: Record<string, string>): Record<string, PinSource> {
    const plan: Record<string, PinSource> = {};
    for (const ref of [...new Set(Object.values(images))].sort()) {
        const digest = parseImageRef(ref).digest;
        if (recorded[ref] !== undefined && PINNED_REF.test(recorded[ref])) plan[ref] = { kind: "recorded", pinned: recorded[ref] };
        else if (digest) plan[ref] = { kind: "digest", pinned: pinnedRef(ref, digest) };
        else if (builtRefs.has(ref)) plan[ref] = { kind: "build" };
        else plan[ref] = { kind: "lookup" };
    }
    return plan;
}

/** The references a plan leaves to a registry lookup. */
export function lookupsOf(plan: Record<string, PinSource>): string[] {
    return Object.entries(plan)
        .filter(([, s]) => s.kind === "lookup")
        .map(([ref]) => ref);
}

/** service -> pinned reference, from the release's images and each reference's pin. */
export function lockEntries(images: Record<string, string>, pinnedByRef: Record<string, string>): Record<string, string> {
    const lock: Record<string, string> = {};
    for (const service of Object.keys(images).sort()) {
        const pinned = pinnedByRef[images[service]];
        if (pinned === undefined || !PINNED_REF.test(pinned)) {
            throw new Error(`no pinned digest for ${service} (${images[service]})`);
        }
        lock[service] = pinned;
    }
    return lock;
}

/**
 * A pinned reference from a digest a push or lookup reported: `repository@sha256:...` of
 * the reference that was pushed or looked up (a push reports the full `name@digest`).
 */
export function pinFromDigest(ref: string, digestOrRepoDigest: string): string {
    const at = digestOrRepoDigest.lastIndexOf("@");
    const digest = at >= 0 ? digestOrRepoDigest.slice(at + 1) : digestOrRepoDigest;
    if (!/^sha256:[a-f0-9]{64}$/.test(digest)) {
        throw new Error(`${ref}: ${JSON.stringify(digestOrRepoDigest)} is not a sha256 digest`);
    }
    return pinnedRef(ref, digest);
}
