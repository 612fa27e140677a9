/**
 * The app as onevm deploys it: the user's Compose file checked against what the stack
 * config says about it (roles, images, secrets), and the release's identity. Pure: the
 * caller reads the files (program/compose.ts).
 */
import { createHash } from "crypto";
import { parseDocument } from "yaml";
import { BuildGroup, buildIdentity, ContextDigest, Env, groupBuilds, parseBuild } from "./builds";
import { ConfigError, DatabaseRole, NAMESPACE, OnevmConfig, WebRole } from "./config";
import * as v from "./validate";

/** A Compose service as the YAML says it (only the fields onevm reads are typed). */
export interface ComposeService {
    image?: string;
    build?: unknown;
    ports?: unknown[];
    environment?: Record<string, unknown> | string[];
    labels?: Record<string, unknown> | string[];
    depends_on?: Record<string, unknown> | string[];
    volumes?: unknown[];
    networks?: Record<string, unknown> | string[];
    env_file?: unknown;
    profiles?: string[];
    container_name?: string;
    [key: string]: unknown;
}

export interface ComposeDoc {
    name?: string;
    services: Record<string, ComposeService>;
    volumes?: Record<string, unknown>;
    configs?: Record<string, { file?: string; [key: string]: unknown }>;
    [key: string]: unknown;
}

/** The name onevm gives its proxy service; a user service may not take it. */
export const PROXY_SERVICE = "onevm-proxy";

/** A file the Compose file uses by relative path: it travels in the release bundle. */
export interface AppFile {
    /** Path relative to the Compose file's directory, normalized (no "./"). */
    path: string;
    content: string;
}

export interface AppModel {
    app: string;
    /** The user's Compose document, with services that need a profile left out. */
    compose: ComposeDoc;
    /** Every service's image in this release (onevm:images over the Compose file's). */
    images: Record<string, string>;
    web?: WebRole;
    migrate?: string;
    database?: DatabaseRole;
    /** Secret env keys -> services that read them. */
    secrets: Record<string, string[]>;
    files: AppFile[];
    /**
     * The images onevm builds for this release (services with `build:` and no onevm:images
     * entry, with onevm:registry): one per distinct build. Empty for a release deployed
     * again from the stack's record: its images were built and pushed then.
     */
    builds: BuildGroup[];
    /** Built service -> its build's identity (part of the release's identity). */
    buildIdentities: Record<string, string>;
    /** The release's identity: sha256 over the Compose document, the images, the files and the builds. */
    releaseHash: string;
}

/** What a release pins, recorded in the stack so an earlier release ID can be deployed again as it was. */
export interface ReleaseContent {
    /** The Compose document as canonical JSON. */
    compose: string;
    images: Record<string, string>;
    files: AppFile[];
    /** Built service -> build identity: what its image was built from (absent: nothing built). */
    builds?: Record<string, string>;
}

/** What the deploying machine gives a release's builds. */
export interface BuildHost {
    /** The environment `pulumi up` runs in: build args interpolate from it, as Compose's do. */
    env: Env;
    /** Reads a build context (paths relative to the Compose file's directory); undefined: no such directory or Dockerfile. */
    contextDigest(context: string, dockerfile: string): ContextDigest | undefined;
}

/** Where the app comes from: the Compose file, or an earlier release's record (its images and builds). */
export interface AppSource {
    file: string;
    doc: ComposeDoc;
    images?: Record<string, string>;
    builds?: Record<string, string>;
}

/** Reads a file next to the Compose file (relative path); undefined when it is not a regular file. */
export type FileReader = (relativePath: string) => string | undefined;

/** Parses the user's Compose YAML; problems name the file. */
export function parseCompose(text: string, file: string): { doc?: ComposeDoc; problems: string[] } {
    const parsed = parseDocument(text, { merge: true });
    if (parsed.errors.length > 0) {
        return { problems: [`${file}: not valid YAML: ${parsed.errors[0].message.split("\n")[0]}`] };
    }
    const doc = parsed.toJS({ maxAliasCount: 1000 }) as unknown;
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
        return { problems: [`${file}: must be a Compose file (a YAML mapping with services:)`] };
    }
    const d = doc as ComposeDoc;
    if (typeof d.services !== "object" || d.services === null || Array.isArray(d.services) || Object.keys(d.services).length === 0) {
        return { problems: [`${file}: has no services:`] };
    }
    for (const [name, svc] of Object.entries(d.services)) {
        if (typeof svc !== "object" || svc === null || Array.isArray(svc)) {
            return { problems: [`${file}: services.${name} must be a mapping`] };
        }
    }
    return { doc: d, problems: [] };
}

/**
 * The app of this stack: the Compose document (from the file, or from an earlier
 * release's record when rolling back) checked against the config. Throws one ConfigError
 * with every problem.
 */
export function describeApp(cfg: OnevmConfig, source: AppSource, readFile: FileReader, buildHost?: BuildHost): AppModel {
    const p: string[] = [];
    const file = source.file;
    const d = cfg.appDescription;
    const app = cfg.app ?? source.doc.name;
    if (app === undefined) {
        p.push(`${NAMESPACE}:app is required: ${file} has no top-level name: (set it with \`pulumi config set ${NAMESPACE}:app <name>\`)`);
    } else if (cfg.app === undefined) {
        const problem = v.appName(app);
        if (problem) p.push(`${file}: name: ${JSON.stringify(app)} ${problem}; or set ${NAMESPACE}:app`);
    }

    // Services that only run with a profile are not part of a deployment.
    const all = source.doc.services;
    const services = Object.fromEntries(Object.entries(all).filter(([, s]) => !(Array.isArray(s.profiles) && s.profiles.length > 0)));
    const compose: ComposeDoc = { ...source.doc, services };
    const names = Object.keys(services);
    const known = (svc: string, key: string) => {
        if (!(svc in services)) {
            const why = svc in all ? "only runs with a Compose profile" : "is not a service";
            p.push(`${NAMESPACE}:${key} names ${JSON.stringify(svc)}, which ${why} of ${file} (services: ${names.join(", ")})`);
            return false;
        }
        return true;
    };
    if (PROXY_SERVICE in all && cfg.proxy) {
        p.push(`${file}: services.${PROXY_SERVICE} is the name of onevm's proxy: rename your service`);
    }

    const images: Record<string, string> = {};
    const configured = source.images ?? d.images;
    for (const svc of Object.keys(configured)) known(svc, `images.${svc}`);
    // With a registry, onevm builds what the Compose file builds and onevm:images does not name.
    const registry = cfg.imageTransport === "registry" ? cfg.registry : undefined;
    const toBuild: Record<string, { spec: NonNullable<ReturnType<typeof parseBuild>>; identity: string }> = {};
    for (const [name, svc] of Object.entries(services)) {
        if (configured[name] === undefined && svc.build !== undefined && source.images === undefined && registry && buildHost) {
            const spec = parseBuild(name, svc.build, svc.platform, buildHost.env, file, p);
            const digest = spec && buildHost.contextDigest(spec.context, spec.dockerfile);
            if (spec && !digest) {
                p.push(`${file}: services.${name}.build: the context ${JSON.stringify(spec.context)} is not a directory holding its Dockerfile ${JSON.stringify(spec.dockerfile)} (paths are relative to the Compose file)`);
            } else if (spec && digest) {
                toBuild[name] = { spec, identity: buildIdentity(spec, digest) };
            }
            continue;
        }
        const ref = configured[name] ?? svc.image;
        if (ref === undefined) {
            p.push(
                svc.build !== undefined && cfg.imageTransport === "registry"
                    ? `${file}: services.${name} is built from its build: section, and nothing says where its image goes: set ${NAMESPACE}:registry (and ${NAMESPACE}:registryPassword) so onevm builds it and pushes it there, or set ${NAMESPACE}:images.${name} to an image built elsewhere`
                    : `${file}: services.${name} has no image: set ${NAMESPACE}:images.${name} (the VM never builds)`,
            );
            continue;
        }
        const problem = v.imageRef(String(ref));
        if (problem) {
            p.push(configured[name] !== undefined ? `${NAMESPACE}:images.${name} = ${JSON.stringify(ref)} ${problem}` : `${file}: services.${name}.image ${JSON.stringify(ref)} ${problem}; or set ${NAMESPACE}:images.${name}`);
        }
        images[name] = String(ref);
    }

    if (d.web) {
        if (known(d.web.service, "web.service")) {
            if (cfg.proxy && services[d.web.service].container_name !== undefined) {
                p.push(`${file}: services.${d.web.service}.container_name: two containers of the web service overlap during a switch; remove container_name`);
            }
            if (d.web.service === d.migrate) p.push(`${NAMESPACE}:web.service and ${NAMESPACE}:migrate name the same service`);
        }
    }
    if (d.migrate) known(d.migrate, "migrate");
    if (d.database) {
        known(d.database.service, "database.service");
        d.database.clients.forEach((c, i) => known(c, `database.clients[${i}]`));
    }
    for (const [key, readers] of Object.entries(d.secrets)) {
        readers.forEach((svc, i) => known(svc, `secrets.${key}[${i}]`));
    }
    for (const svc of Object.keys(d.limits)) known(svc, `limits.${svc}`);

    for (const [name, svc] of Object.entries(services)) {
        (svc.ports ?? []).forEach((port, i) => {
            const ip = publishedHostIp(port);
            if (ip !== undefined && !["127.0.0.1", "localhost", "::1", "[::1]"].includes(ip)) {
                p.push(`${file}: services.${name}.ports[${i}] publishes on ${ip}: onevm publishes only on the VM's loopback (public traffic enters through its proxy, onevm:tlsIngress); drop the address`);
            }
        });
        checkEnvironment(p, file, name, svc, managedKeys(name, d));
    }

    const files: AppFile[] = [];
    for (const rel of filesUsed(compose, p, file)) {
        const content = readFile(rel);
        if (content === undefined) {
            p.push(`${file}: uses ./${rel}, which is not a file next to it (onevm ships files, not directories: bake directories into the image)`);
        } else {
            files.push({ path: rel, content });
        }
    }
    if (p.length > 0) {
        throw new ConfigError(p);
    }
    const builds = registry ? groupBuilds(toBuild, { server: registry.server, namespace: registry.namespace ?? app! }, cfg.releaseId) : [];
    const buildIdentities: Record<string, string> = { ...(source.builds ?? {}) };
    for (const group of builds) {
        for (const service of group.services) {
            images[service] = group.image;
            buildIdentities[service] = toBuild[service].identity;
        }
    }
    const sortedImages = Object.fromEntries(Object.keys(services).filter((s) => images[s] !== undefined).map((s) => [s, images[s]]));
    const content: ReleaseContent = { compose: canonicalJson(compose), images: sortedImages, files, ...(Object.keys(buildIdentities).length > 0 ? { builds: buildIdentities } : {}) };
    return {
        app: app!,
        compose,
        images: sortedImages,
        web: d.web,
        migrate: d.migrate,
        database: d.database,
        secrets: d.secrets,
        files,
        builds,
        buildIdentities,
        releaseHash: releaseHash(content),
    };
}

/** The keys onevm provides to a service through shared/.env, so its Compose file may only interpolate them. */
function managedKeys(service: string, d: OnevmConfig["appDescription"]): string[] {
    const keys = Object.entries(d.secrets)
        .filter(([, readers]) => readers.includes(service))
        .map(([k]) => k);
    if (d.database?.service === service) keys.push("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB");
    if (d.database?.clients.includes(service)) keys.push(d.database.urlKey);
    return keys;
}

/** A key onevm provides may appear in the service's environment only as an interpolation of itself. */
function checkEnvironment(p: string[], file: string, name: string, svc: ComposeService, keys: string[]): void {
    const env = environmentMap(svc.environment);
    for (const key of keys) {
        const value = env[key];
        if (value !== undefined && value !== null && !new RegExp(`^\\$\\{?${key}(\\}|[:?-])`).test(String(value))) {
            p.push(`${file}: services.${name}.environment.${key} is set in the Compose file, but onevm provides it from shared/.env: remove it or write \${${key}}`);
        }
    }
}

/** environment: as a map (the list form "KEY=value" / "KEY" converted). */
export function environmentMap(env: ComposeService["environment"]): Record<string, unknown> {
    if (Array.isArray(env)) {
        return Object.fromEntries(
            env.map((e) => {
                const s = String(e);
                const i = s.indexOf("=");
                return i < 0 ? [s, null] : [s.slice(0, i), s.slice(i + 1)];
            }),
        );
    }
    return { ...(env ?? {}) };
}

/** The host address a `ports:` entry publishes on; undefined when it names none. */
export function publishedHostIp(port: unknown): string | undefined {
    if (typeof port === "object" && port !== null) {
        const ip = (port as Record<string, unknown>).host_ip;
        return ip === undefined || ip === "" ? undefined : String(ip);
    }
    const s = String(port);
    const m = /^(\[[^\]]+\]|[^:[\]]+):[^:]+:[^:]+$/.exec(s);
    return m ? m[1] : undefined;
}

/**
 * Relative paths of the files the Compose file uses: bind mounts whose source starts with
 * "./" (or is a relative path with a '/' or '.'), `configs:` files, `env_file:` entries
 * other than `.env` (on the VM `.env` is shared/.env). Paths leaving the file's
 * directory are reported.
 */
function filesUsed(doc: ComposeDoc, p: string[], file: string): string[] {
    const found = new Set<string>();
    const add = (raw: string, where: string) => {
        const rel = normalizeRelative(raw);
        if (rel === undefined) {
            p.push(`${file}: ${where} uses ${JSON.stringify(raw)}, outside the Compose file's directory: onevm ships only files beside it`);
        } else {
            found.add(rel);
        }
    };
    for (const [name, svc] of Object.entries(doc.services)) {
        (svc.volumes ?? []).forEach((vol, i) => {
            const source = bindSource(vol);
            if (source !== undefined && isRelative(source)) add(source, `services.${name}.volumes[${i}]`);
        });
        const envFiles = svc.env_file === undefined ? [] : Array.isArray(svc.env_file) ? svc.env_file : [svc.env_file];
        envFiles.forEach((e, i) => {
            const path = typeof e === "object" && e !== null ? String((e as Record<string, unknown>).path) : String(e);
            if (normalizeRelative(path) !== ".env") add(path, `services.${name}.env_file[${i}]`);
        });
    }
    for (const [name, c] of Object.entries(doc.configs ?? {})) {
        if (c && typeof c.file === "string") add(c.file, `configs.${name}.file`);
    }
    return [...found].sort();
}

function bindSource(vol: unknown): string | undefined {
    if (typeof vol === "object" && vol !== null) {
        const o = vol as Record<string, unknown>;
        return o.type === "bind" && typeof o.source === "string" ? o.source : undefined;
    }
    const s = String(vol);
    const i = s.indexOf(":");
    return i > 0 ? s.slice(0, i) : undefined;
}

/**
 * A volumes entry whose bind source is a path relative to the Compose file, with that
 * source resolved against DIR (absolute); any other entry as it is.
 */
export function bindUnder(vol: unknown, dir: string): unknown {
    const source = bindSource(vol);
    const rel = source !== undefined && isRelative(source) ? normalizeRelative(source) : undefined;
    if (rel === undefined) return vol;
    const absolute = `${dir}/${rel}`;
    if (typeof vol === "object" && vol !== null) return { ...(vol as Record<string, unknown>), source: absolute };
    return absolute + String(vol).slice(source!.length);
}

/** A bind source that is a path relative to the Compose file (named volumes have no '/' or '.'). */
function isRelative(source: string): boolean {
    return !source.startsWith("/") && !source.startsWith("~") && (source.startsWith(".") || source.includes("/"));
}

/** "./a/b" -> "a/b"; undefined when the path leaves the directory. */
function normalizeRelative(raw: string): string | undefined {
    const parts: string[] = [];
    for (const part of raw.split("/")) {
        if (part === "" || part === ".") continue;
        if (part === "..") {
            if (parts.length === 0) return undefined;
            parts.pop();
        } else {
            parts.push(part);
        }
    }
    return raw.startsWith("/") || parts.length === 0 ? undefined : parts.join("/");
}

/** JSON with object keys sorted at every level: the same document always gives the same text. */
export function canonicalJson(value: unknown): string {
    return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(sortKeys);
    if (typeof value === "object" && value !== null) {
        return Object.fromEntries(
            Object.keys(value)
                .sort()
                .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
        );
    }
    return value;
}

/** The identity of a release's content; builds count only when there are some (earlier releases' hashes stay valid). */
export function releaseHash(content: ReleaseContent): string {
    const files = Object.fromEntries(content.files.map((f) => [f.path, createHash("sha256").update(f.content).digest("hex")]));
    const builds = content.builds && Object.keys(content.builds).length > 0 ? { builds: content.builds } : {};
    return createHash("sha256").update(canonicalJson({ compose: JSON.parse(content.compose), images: content.images, files, ...builds })).digest("hex");
}

/** The content an AppModel's release pins, for the stack's record. */
export function releaseContent(model: AppModel): ReleaseContent {
    const builds = Object.keys(model.buildIdentities).length > 0 ? { builds: model.buildIdentities } : {};
    return { compose: canonicalJson(model.compose), images: model.images, files: model.files, ...builds };
}
