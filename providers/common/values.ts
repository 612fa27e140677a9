import {
    specialArchiveSig,
    specialAssetSig,
    specialSecretSig,
    specialSigKey,
    unknownValue,
} from "@pulumi/pulumi/runtime/rpc";

/** A property value exactly as the engine sends it: google.protobuf.Struct decoded to plain JS. */
export type Wire = null | undefined | boolean | number | string | Wire[] | { [key: string]: Wire };
export type WireMap = Record<string, Wire>;

type WireObject = { [key: string]: Wire };

function isObject(v: Wire): v is WireObject {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

function hasSig(v: Wire, sig: string): v is WireObject {
    return isObject(v) && v[specialSigKey] === sig;
}

export function isSecret(v: Wire): v is WireObject & { value: Wire } {
    return hasSig(v, specialSecretSig);
}

export function isAsset(v: Wire): v is WireObject {
    return hasSig(v, specialAssetSig);
}

export function isArchive(v: Wire): v is WireObject {
    return hasSig(v, specialArchiveSig);
}

export function makeSecret(v: Wire): Wire {
    return isSecret(v) ? v : { [specialSigKey]: specialSecretSig, value: v };
}

/** True when the value is, or contains, a value the engine does not know yet (only during preview). */
export function hasUnknown(v: Wire): boolean {
    if (v === unknownValue) return true;
    if (Array.isArray(v)) return v.some(hasUnknown);
    if (isObject(v)) return Object.values(v).some(hasUnknown);
    return false;
}

export function hasSecret(v: Wire): boolean {
    if (isSecret(v)) return true;
    if (Array.isArray(v)) return v.some(hasSecret);
    if (isObject(v)) return Object.values(v).some(hasSecret);
    return false;
}

/**
 * Strips secret markers. Every string found under a secret marker is appended to `secrets`,
 * so callers can scrub those exact values from anything they print.
 */
export function reveal(v: Wire, secrets?: string[], inSecret = false): Wire {
    if (isSecret(v)) return reveal(v.value, secrets, true);
    if (typeof v === "string" && inSecret) secrets?.push(v);
    if (Array.isArray(v)) return v.map((e) => reveal(e, secrets, inSecret));
    if (isObject(v)) {
        const out: WireObject = {};
        for (const [k, e] of Object.entries(v)) out[k] = reveal(e, secrets, inSecret);
        return out;
    }
    return v;
}

/**
 * Deep equality of two input values, ignoring secretness, treating null like absent, and
 * comparing assets/archives by their content hash when the engine supplied one.
 */
export function sameValue(a: Wire, b: Wire): boolean {
    if (isSecret(a)) return sameValue(a.value, b);
    if (isSecret(b)) return sameValue(a, b.value);
    if (a === null || a === undefined || b === null || b === undefined) {
        return (a ?? null) === (b ?? null);
    }
    if ((isAsset(a) && isAsset(b)) || (isArchive(a) && isArchive(b))) {
        if (typeof a.hash === "string" && typeof b.hash === "string") return a.hash === b.hash;
    }
    if (Array.isArray(a) || Array.isArray(b)) {
        return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((e, i) => sameValue(e, b[i]));
    }
    if (isObject(a) && isObject(b)) {
        const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
        return [...keys].every((k) => sameValue(a[k], b[k]));
    }
    return a === b;
}

/** Names of the given input properties whose values differ between old state and new inputs. */
export function changedKeys(olds: WireMap, news: WireMap, keys: readonly string[]): string[] {
    return keys.filter((k) => !sameValue(olds[k], news[k]));
}

/** Copies only the named properties; protobuf Structs cannot carry `undefined`. */
export function pick(props: WireMap, keys: readonly string[]): WireMap {
    const out: WireMap = {};
    for (const k of keys) if (props[k] !== undefined) out[k] = props[k];
    return out;
}
