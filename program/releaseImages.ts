/**
 * registry transport: every image of the release pinned to a digest, and what the VM's
 * commands wait for. A release ID deployed before runs what the stack recorded for it
 * (no lookup, no build: a moved tag changes nothing, a rollback pulls the same bytes); a
 * new one takes the digests its references name, the digests of onevm's builds (pushed
 * with @pulumi/docker, components/appImages.ts) and the digests the registry serves for
 * its tags now.
 */
import * as pulumi from "@pulumi/pulumi";
import { AppModel } from "../lib/app";
import { BuildGroup } from "../lib/builds";
import { RegistryConfig } from "../lib/config";
import { lockEntries, lookupsOf, pinFromDigest, PinSource, planPins } from "../lib/imagePins";
import { RegistryGate, registryGate } from "./registry";

export interface ImagePinning {
    /** Every service's image of the rendered release, the proxy's included. */
    images: Record<string, string>;
    plan: Record<string, PinSource>;
    /** The builds this deploy makes (a known release ID makes none). */
    builds: BuildGroup[];
    /** The registry gate: credentials accepted, tags looked up (during `up`). */
    gate: RegistryGate;
}

/** Where each image's pin comes from, and the registry gate that checks and looks up. */
export function planImagePinning(o: {
    model: AppModel;
    images: Record<string, string>;
    /** What the stack recorded for this release ID (recordedDigests). */
    recorded: Record<string, string>;
    registry?: RegistryConfig & { password: string };
}): ImagePinning {
    const plan = planPins(o.images, new Set(o.model.builds.map((b) => b.image)), o.recorded);
    const builds = o.model.builds.filter((b) => plan[b.image]?.kind === "build");
    const lookups = lookupsOf(plan);
    const gate = registryGate({ registry: o.registry, lookups, needed: builds.length > 0 || lookups.length > 0 });
    return { images: o.images, plan, builds, gate };
}

export interface PinnedImages {
    /** What every remote command waits for during `up`: the registry gate, the builds and the lock. */
    ready: pulumi.Output<unknown>;
    /** service -> pinned reference (releases/<id>/images.lock); unknown in a preview of a new release. */
    lock: pulumi.Output<Record<string, string>>;
    /** image reference -> pinned reference: the stack records it for the release ID. */
    pinnedByRef: pulumi.Output<Record<string, string>>;
}

/** The pins, once the lookups answered and the builds pushed (`pushed`: built tag -> repo digest). */
export function pinnedImages(p: ImagePinning, pushed: pulumi.Input<Record<string, string>> = {}): PinnedImages {
    const pinnedByRef = pulumi.all([p.gate.digests, pushed]).apply(([looked, built]) => {
        const pins: Record<string, string> = { ...looked };
        for (const [ref, source] of Object.entries(p.plan)) {
            if (source.kind === "recorded" || source.kind === "digest") pins[ref] = source.pinned;
            else if (source.kind === "build") pins[ref] = pinFromDigest(ref, built[ref]);
        }
        return pins;
    });
    const lock = pinnedByRef.apply((pins) => lockEntries(p.images, pins));
    // A preview resolves nothing: waiting on unknown parts would show every command changing.
    const ready = pulumi.runtime.isDryRun() ? p.gate.ready : pulumi.all([p.gate.ready, lock]);
    return { ready, lock, pinnedByRef };
}
