/**
 * The images onevm builds from the user's Compose file (`build:` sections) when a
 * registry is configured: what each build is (context, Dockerfile, target, args with
 * Compose's interpolation from the deploying machine's environment), which services
 * share one, the tag each is pushed under, and the identity a build gives its release.
 * Pure: the program reads the build contexts (program/buildContext.ts).
 */
import { createHash } from "crypto";
import * as path from "path";
import { builtImageRef } from "./imageRef";

/** Environment variables, as `process.env`. */
export type Env = Record<string, string | undefined>;

/** The build settings of a Compose service onevm follows. */
export const BUILD_FIELDS = ["context", "dockerfile", "target", "args", "network"] as const;

/** One service's build, its paths relative to the Compose file's directory. */
export interface BuildSpec {
    /** The build context, relative to the Compose file's directory ("." for it). */
    context: string;
    /** The Dockerfile, relative to the context (Compose's meaning). */
    dockerfile: string;
    target?: string;
    /** Build args after interpolation; args left without a value are absent. */
    args: Record<string, string>;
    /** RUN instructions' network (`build.network`). */
    network?: string;
    /** The service's `platform:`. */
    platform?: string;
}

/** What the program learns by reading a build context. */
export interface ContextDigest {
    /** sha256 over the context's files (after .dockerignore) and the Dockerfile. */
    digest: string;
}

/**
 * Compose's interpolation of one value from env: `$$`, `$VAR`, `${VAR}`, `${VAR:-d}`,
 * `${VAR-d}`, `${VAR:?msg}`, `${VAR?msg}`, `${VAR:+r}`, `${VAR+r}` (defaults may nest).
 * A required variable that is missing is a problem, named with `where`.
 */
export function interpolate(value: string, env: Env, where: string, problems: string[]): string {
    let out = "";
    let i = 0;
    while (i < value.length) {
        const c = value[i];
        if (c !== "$") {
            out += c;
            i++;
            continue;
        }
        const next = value[i + 1];
        if (next === "$") {
            out += "$";
            i += 2;
            continue;
        }
        if (next === "{") {
            const end = closingBrace(value, i + 2);
            if (end < 0) {
                problems.push(`${where}: unterminated \${ in ${JSON.stringify(value)}`);
                return out + value.slice(i);
            }
            out += expand(value.slice(i + 2, end), env, where, problems);
            i = end + 1;
            continue;
        }
        const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(value.slice(i + 1));
        if (m) {
            out += env[m[0]] ?? "";
            i += 1 + m[0].length;
            continue;
        }
        out += c;
        i++;
    }
    return out;
}

function closingBrace(s: string, from: number): number {
    let depth = 1;
    for (let j = from; j < s.length; j++) {
        if (s[j] === "{") depth++;
        else if (s[j] === "}" && --depth === 0) return j;
    }
    return -1;
}

function expand(inner: string, env: Env, where: string, problems: string[]): string {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])([\s\S]*))?$/.exec(inner);
    if (!m) {
        problems.push(`${where}: \${${inner}} is not a variable Compose can interpolate`);
        return "";
    }
    const [, name, colon, op, arg = ""] = m;
    const v = env[name];
    const missing = v === undefined || (colon === ":" && v === "");
    if (op === "-") return missing ? interpolate(arg, env, where, problems) : v!;
    if (op === "+") return missing ? "" : interpolate(arg, env, where, problems);
    if (op === "?") {
        if (missing) problems.push(`${where}: ${name} is required${arg ? ` (${arg})` : ""}: set it in the environment of \`pulumi up\``);
        return v ?? "";
    }
    return v ?? "";
}

/**
 * A service's `build:` (a context path, or an object of BUILD_FIELDS) as onevm builds it,
 * interpolated from env. Problems name the Compose path.
 */
export function parseBuild(service: string, build: unknown, platform: unknown, env: Env, file: string, problems: string[]): BuildSpec | undefined {
    const at = `${file}: services.${service}.build`;
    const before = problems.length;
    const text = (value: unknown, where: string): string | undefined => {
        if (value === undefined || value === null) return undefined;
        if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
            problems.push(`${where} must be a string`);
            return undefined;
        }
        return interpolate(String(value), env, where, problems);
    };
    let o: Record<string, unknown>;
    if (typeof build === "string") {
        o = { context: build };
    } else if (typeof build === "object" && build !== null && !Array.isArray(build)) {
        o = build as Record<string, unknown>;
    } else {
        problems.push(`${at} must be a context path or an object with ${BUILD_FIELDS.join(", ")}`);
        return undefined;
    }
    for (const key of Object.keys(o).filter((k) => !(BUILD_FIELDS as readonly string[]).includes(k) && !k.startsWith("x-"))) {
        problems.push(`${at}.${key} is not supported by onevm's builds (supported: ${BUILD_FIELDS.join(", ")}): build the image yourself and set onevm:images.${service}`);
    }
    const context = text(o.context, `${at}.context`) ?? ".";
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(context) || context.startsWith("git@")) {
        problems.push(`${at}.context ${JSON.stringify(context)}: onevm builds from local directories only (clone it, or set onevm:images.${service})`);
    }
    const dockerfile = text(o.dockerfile, `${at}.dockerfile`) ?? "Dockerfile";
    const args: Record<string, string> = {};
    const addArg = (key: string, raw: unknown, where: string) => {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
            problems.push(`${where}: ${JSON.stringify(key)} is not a build arg name`);
            return;
        }
        // No value: taken from the environment, and left out when it has none (as Compose does).
        const value = raw === undefined || raw === null ? env[key] : text(raw, where);
        if (value !== undefined) args[key] = value;
    };
    if (Array.isArray(o.args)) {
        o.args.forEach((entry, i) => {
            const s = String(entry);
            const eq = s.indexOf("=");
            addArg(eq < 0 ? s : s.slice(0, eq), eq < 0 ? undefined : s.slice(eq + 1), `${at}.args[${i}]`);
        });
    } else if (typeof o.args === "object" && o.args !== null) {
        for (const [key, raw] of Object.entries(o.args)) addArg(key, raw, `${at}.args.${key}`);
    } else if (o.args !== undefined) {
        problems.push(`${at}.args must be a map or a list of KEY=VALUE`);
    }
    const target = text(o.target, `${at}.target`);
    const network = text(o.network, `${at}.network`);
    const plat = text(platform, `${file}: services.${service}.platform`);
    if (problems.length > before) return undefined;
    return {
        context: path.posix.normalize(context.replace(/\\/g, "/")).replace(/\/$/, "") || ".",
        dockerfile,
        ...(target ? { target } : {}),
        args,
        ...(network ? { network } : {}),
        ...(plat ? { platform: plat } : {}),
    };
}

/** What identifies a build's result: its context's content and every setting but the network. */
export function buildIdentity(spec: BuildSpec, context: ContextDigest): string {
    const identity = { context: context.digest, dockerfile: spec.dockerfile, target: spec.target ?? null, args: sortedObject(spec.args), platform: spec.platform ?? null };
    return createHash("sha256").update(JSON.stringify(identity)).digest("hex");
}

function sortedObject(o: Record<string, string>): Record<string, string> {
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
}

/** One image onevm builds and pushes: the services that run it share one build. */
export interface BuildGroup {
    /** The image's name under the registry namespace (a service name, lowercased). */
    name: string;
    /** The tag it is pushed under: <server>/<namespace>/<name>:<releaseId>. */
    image: string;
    services: string[];
    spec: BuildSpec;
    /** buildIdentity of the spec. */
    identity: string;
}

/**
 * The builds of a release: services with identical build specs share one (named after the
 * first of them in name order), each tagged <server>/<namespace>/<name>:<releaseId>.
 */
export function groupBuilds(
    builds: Record<string, { spec: BuildSpec; identity: string }>,
    registry: { server: string; namespace: string },
    releaseId: string,
): BuildGroup[] {
    const groups = new Map<string, BuildGroup>();
    const taken = new Set<string>();
    for (const service of Object.keys(builds).sort()) {
        const { spec, identity } = builds[service];
        const key = JSON.stringify([spec.context, spec.dockerfile, spec.target ?? "", sortedObject(spec.args), spec.network ?? "", spec.platform ?? ""]);
        const group = groups.get(key);
        if (group) {
            group.services.push(service);
            continue;
        }
        const base = repositoryComponent(service);
        let name = base;
        for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
        taken.add(name);
        groups.set(key, { name, image: builtImageRef(registry.server, registry.namespace, name, releaseId), services: [service], spec, identity });
    }
    return [...groups.values()];
}

/** A service name as a repository path component: lowercase letters and digits joined by '-'. */
export function repositoryComponent(service: string): string {
    return service.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "") || "image";
}
