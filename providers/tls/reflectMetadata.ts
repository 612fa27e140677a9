/**
 * The four Reflect metadata functions tsyringe (used inside @peculiar/x509) calls, so the
 * plugin needs no `reflect-metadata` package: @peculiar/x509 registers its algorithms
 * through tsyringe, which refuses to load without them. Metadata lives in a WeakMap per
 * target; getMetadata also looks up the prototype chain, as the real polyfill does.
 * Import this module before @peculiar/x509.
 */
type Target = object;
const store = new WeakMap<Target, Map<unknown, unknown>>();

function own(target: Target, create: boolean): Map<unknown, unknown> | undefined {
    let m = store.get(target);
    if (!m && create) store.set(target, (m = new Map()));
    return m;
}

const api = {
    defineMetadata(key: unknown, value: unknown, target: Target): void {
        own(target, true)!.set(key, value);
    },
    getOwnMetadata(key: unknown, target: Target): unknown {
        return own(target, false)?.get(key);
    },
    getMetadata(key: unknown, target: Target): unknown {
        for (let t: Target | null = target; t; t = Object.getPrototypeOf(t)) {
            const m = own(t, false);
            if (m?.has(key)) return m.get(key);
        }
        return undefined;
    },
    metadata(key: unknown, value: unknown) {
        return (target: Target) => api.defineMetadata(key, value, target);
    },
};

const R = Reflect as unknown as Record<string, unknown>;
for (const [name, fn] of Object.entries(api)) {
    if (typeof R[name] !== "function") R[name] = fn;
}

export {};
