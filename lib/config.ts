/**
 * Every stack config key onevm reads, declared once with its type, default and rule.
 * `parseConfig` is pure: it takes a reader for raw values and returns a typed config, or
 * throws one ConfigError listing every problem: before any resource is registered, so
 * `pulumi preview` shows it and nothing on a VM changes. What the keys say about the app
 * is checked against the user's Compose file afterwards (lib/app.ts).
 */
import { ProxyMode, TLS_MODES, TlsMode } from "./render/caddyfile";
import * as v from "./validate";

export const NAMESPACE = "onevm";
/** The namespace of the app's secret values: `pulumi config set --secret app:KEY value`. */
export const SECRET_NAMESPACE = "app";

export const IMAGE_TRANSPORTS = ["registry", "archive"] as const;

/** The VM already exists: any SSH host (a VPS, the sandbox). */
export interface ExistingTarget {
    kind: "existing";
    /** Address the VM's sshd is reachable at. */
    address: string;
    port: number;
    user: string;
    /** The VM's SSH host public key; every connection pins it. */
    hostPublicKey: string;
}

/** onevm creates a DigitalOcean droplet, its keys, volume, firewall and optional reserved IP. */
export interface DigitalOceanTarget {
    kind: "digitalocean";
    region: string;
    size: string;
    image: string;
    sshAllowedCidrs: string[];
    allowWorldSsh: boolean;
    tags: string[];
    volumeSizeGb: number;
    reservedIp: boolean;
    /** Operator's own deploy public key; a key is generated when absent. */
    deployPublicKey?: string;
    /** Login user cloud-init creates (sshUser). */
    user: string;
    /** Create only the cloud resources, run nothing on the VM. */
    infrastructureOnly: boolean;
}

export type Target = ExistingTarget | DigitalOceanTarget;

/** The TLS ingress proxy (both targets); absent when onevm:tlsIngress is false. */
export interface TlsConfig {
    mode: TlsMode;
    /** acme: the domain to certify (required). certificate: an extra DNS name in the certificate. */
    domain?: string;
    /** acme: the ACME account e-mail. */
    email?: string;
}

/** The proxy in front of the web service: with TLS ingress, or on the loopback port only. */
export interface ProxyConfig {
    mode: ProxyMode;
    image: string;
}

/** One check of the health gate: GET path on the web service's loopback port. */
export interface HealthCheck {
    path: string;
    /** Expected HTTP status. */
    status: number;
    /** Fields the JSON body must have with these values (nested objects: a subset). */
    json?: Record<string, unknown>;
    /** Substrings the body must contain. */
    contains?: string[];
}

/** The service HTTP traffic enters through. */
export interface WebRole {
    service: string;
    /** The port it listens on inside its container. */
    port: number;
    /** Where the app answers on the VM's loopback (published by the proxy, or by the service without one). */
    hostPort: number;
    checks: HealthCheck[];
}

/** The PostgreSQL service backups, restore and password rotation work on. */
export interface DatabaseRole {
    service: string;
    user: string;
    name: string;
    /** Services that receive the connection URL. */
    clients: string[];
    urlKey: string;
    urlScheme: string;
    /** Query string appended to the URL (without '?'), e.g. sslmode=disable. */
    urlQuery: string;
}

export interface Limits {
    memory?: string;
    cpus?: string;
}

/** What the user tells onevm about their app beyond the Compose file itself. */
export interface AppDescription {
    /** Path to the user's Compose file, relative to the Pulumi project directory. */
    composeFile: string;
    /** Images that change per release: service -> reference. */
    images: Record<string, string>;
    web?: WebRole;
    migrate?: string;
    database?: DatabaseRole;
    /** Secret env keys -> the services that read them (values: app:KEY). */
    secrets: Record<string, string[]>;
    defaultLimits: Limits;
    /** Per-service limits, over the compose file's own and the defaults. */
    limits: Record<string, Limits>;
    logMaxSize: string;
    logMaxFiles: number;
}

/** onevm:offsiteSsh: another SSH host that keeps copies of the backups (sftp). */
export interface OffsiteSshConfig {
    host: string;
    port: number;
    user: string;
    /** Directory on that host (relative to the user's home unless it starts with /). */
    path: string;
    /** Its SSH host public key, pinned: the copy refuses any other. */
    hostPublicKey: string;
}

/** onevm:offsiteS3: an S3-compatible bucket (DigitalOcean Spaces, AWS S3, MinIO, ...). */
export interface OffsiteS3Config {
    /** Base URL, e.g. https://fra1.digitaloceanspaces.com; objects are ENDPOINT/BUCKET/PREFIX+NAME. */
    endpoint: string;
    region: string;
    bucket: string;
    /** Key prefix, "" or ending in "/"; undefined: "<app>/". */
    prefix?: string;
}

/**
 * onevm:registry: the registry onevm pushes the images it builds to and the VM pulls from
 * with these credentials (the password is onevm:registryPassword, a secret).
 */
export interface RegistryConfig {
    /** host[:port], as image references name it (ghcr.io, registry.digitalocean.com, 10.0.0.5:5000). */
    server: string;
    username: string;
    /** The repository path under server built images are pushed to; undefined: the app name. */
    namespace?: string;
    /** PEM of a private CA the registry's TLS certificate chains to. */
    caCertificate?: string;
}

export interface OnevmConfig {
    /** onevm:app; undefined: the Compose file's `name:` (lib/app.ts decides). */
    app?: string;
    target: Target;
    tls?: TlsConfig;
    /** Absent when both onevm:tlsIngress and onevm:loopbackProxy are off. */
    proxy?: ProxyConfig;
    releaseId: string;
    appDescription: AppDescription;
    imageTransport: (typeof IMAGE_TRANSPORTS)[number];
    /** Where `archive` transport finds `docker save` archives, one per image. */
    imageArchiveDir: string;
    /** The registry of `registry` transport's private images and of the images onevm builds. */
    registry?: RegistryConfig;
    healthRetries: number;
    healthIntervalSeconds: number;
    keepReleases: number;
    backupSchedule: string;
    backupKeep: number;
    backupMinFreeMb: number;
    /** Off-host copies of each scheduled and manual backup; none when both are absent. */
    offsite: { ssh?: OffsiteSshConfig; s3?: OffsiteS3Config };
    /** Bump to generate a new database password (rotation). */
    dbPasswordVersion: number;
    operator: string;
    /** Secret values: the program wraps each in pulumi.secret before use. */
    secrets: {
        sshPrivateKey?: string;
        /** The app's secret env values, KEY -> value (from app:KEY). */
        appEnv: Record<string, string>;
        offsiteSshPrivateKey?: string;
        offsiteS3AccessKeyId?: string;
        offsiteS3SecretAccessKey?: string;
        /** onevm:registryPassword: the registry's password or access token. */
        registryPassword?: string;
    };
}

export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`Invalid onevm configuration (nothing was changed):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        this.name = "ConfigError";
    }
}

/** Returns the raw config string for a full key (`onevm:releaseId`, `app:TOKEN`), or undefined when unset. */
export type ConfigReader = (fullKey: string) => string | undefined;

export interface ConfigKeyDoc {
    /** What the key means, with its rule. */
    doc: string;
    /** The default, as the reference shows it. */
    default?: string;
    secret?: boolean;
    /** Where it applies, for the reference's grouping. */
    group: "app" | "release" | "target" | "digitalocean" | "proxy" | "backup" | "operations";
}

/** Every key, documented once: docs/configuration.md is generated from this table. */
export const CONFIG_KEYS: Record<string, ConfigKeyDoc> = {
    app: { group: "app", doc: "App name: /opt/<app>, the compose project, the systemd unit `<app>.service`. 2-31 lowercase letters, digits or '-'.", default: "the Compose file's `name:`" },
    composeFile: { group: "app", doc: "Your Compose file, relative to the Pulumi project directory. onevm deploys a copy with its contract added (docs/app-model.md).", default: "`compose.yaml`" },
    web: { group: "app", doc: "The service HTTP traffic enters through: object {service, port (in its container), hostPort (loopback port on the VM, default: port), health: a check or a list of checks {path, status (default 200), json: {field: value}, contains: [substring]}} (default health: GET /health answers 200). Absent: the app serves no HTTP and the gate is container health alone." },
    migrate: { group: "app", doc: "The one-shot migration service: each activation runs it to exit 0 before starting the others." },
    database: { group: "app", doc: "The PostgreSQL service backups, restore and password rotation work on: object {service, user (default: app name, '-' as '_'), name (default: user), clients: [services that get the URL], urlKey (default DATABASE_URL), urlScheme (default postgresql), urlQuery (e.g. sslmode=disable)}. onevm generates the password." },
    secrets: { group: "app", doc: "Secret environment keys and the services that read them: object {KEY: [service, ...]}. Each value is its own secret config key `app:KEY` (`pulumi config set --secret app:KEY value`)." },
    images: { group: "release", doc: "The images that change per release: object {service: reference (tag or digest)}. Services not listed run their Compose file's `image:`." },
    releaseId: { group: "release", doc: "The release to run (required). A new ID deploys the configured images and Compose file; an earlier one rolls back to exactly what that release ran." },
    imageTransport: { group: "release", doc: "`registry` (the VM pulls) or `archive` (onevm uploads `docker save` archives).", default: "`registry`" },
    imageArchiveDir: { group: "release", doc: "archive transport: directory with <name>_<tag>.tar archives and the <archive>.sha256 records beside them.", default: "`build/images`" },
    registry: {
        group: "release",
        doc:
            "registry transport: the container registry onevm pushes the images it builds to and the VM logs in to and pulls from (docs/registry.md): object {server (host[:port], e.g. ghcr.io), username, namespace (the repository path built images go under, default: the app name; e.g. `your-org/shop` on GHCR, your registry's name on DigitalOcean), caCertificate (PEM of a private CA the registry's TLS certificate chains to)}. " +
            "Needs onevm:registryPassword. Required when a service has a `build:` section and no onevm:images entry (onevm builds it with @pulumi/docker and pushes `<server>/<namespace>/<service>:<releaseId>`), and when the images are private.",
    },
    registryPassword: { group: "release", secret: true, doc: "onevm:registry: the password or access token. It reaches the VM on stdin only (`docker login --password-stdin`); rotating it is `pulumi config set --secret` and `pulumi up`." },
    defaultLimits: { group: "app", doc: "Memory and CPU limits of every service whose Compose file sets none: object {memory, cpus}.", default: "`{memory: 512m, cpus: \"1.0\"}`" },
    limits: { group: "app", doc: "Per-service limits over the Compose file's and the defaults: object {service: {memory, cpus}}." },
    logMaxSize: { group: "app", doc: "json-file log rotation of services whose Compose file sets no `logging:`: size of one file.", default: "`10m`" },
    logMaxFiles: { group: "app", doc: "json-file log rotation: files kept per container.", default: "3" },
    target: { group: "target", doc: "`existing` (any SSH host: a VPS, the sandbox) or `digitalocean` (a droplet onevm creates).", default: "`existing`" },
    host: { group: "target", doc: "existing: the VM's address." },
    sshPort: { group: "target", doc: "existing: sshd port.", default: "22" },
    sshUser: { group: "target", doc: "SSH user with passwordless sudo.", default: "`deploy`" },
    sshPrivateKey: { group: "target", secret: true, doc: "existing: the SSH private key of sshUser (set it from a file: `pulumi config set --secret onevm:sshPrivateKey < key`)." },
    hostPublicKey: { group: "target", doc: "existing: the VM's SSH host public key, pinned by every connection (`ssh-keyscan` output is accepted; verify it out of band)." },
    region: { group: "digitalocean", doc: "Droplet region.", default: "`fra1`" },
    size: { group: "digitalocean", doc: "Droplet size.", default: "`s-2vcpu-4gb`" },
    image: { group: "digitalocean", doc: "Droplet image.", default: "`ubuntu-24-04-x64`" },
    sshAllowedCidrs: { group: "digitalocean", doc: "CIDRs allowed to reach port 22 (required)." },
    allowWorldSsh: { group: "digitalocean", doc: "Must be true to allow 0.0.0.0/0 or ::/0 in sshAllowedCidrs.", default: "false" },
    tags: { group: "digitalocean", doc: "Droplet tags.", default: "`[onevm]`" },
    volumeSizeGb: { group: "digitalocean", doc: "Size of the volume holding the database's data (it outlives the droplet).", default: "20" },
    reservedIp: { group: "digitalocean", doc: "Attach a reserved IP that survives droplet replacement.", default: "false" },
    deployPublicKey: { group: "digitalocean", doc: "Your own deploy public key (with onevm:sshPrivateKey); generated with @pulumi/tls when unset." },
    infrastructureOnly: { group: "digitalocean", doc: "Create the droplet, volume, keys and firewall but run nothing on the VM.", default: "false" },
    tlsIngress: { group: "proxy", doc: "The proxy also terminates TLS on 80/443, the only public ports besides SSH.", default: "false" },
    tlsMode: { group: "proxy", doc: "tlsIngress: `acme` (Caddy certifies tlsDomain; needs public DNS and ports 80/443) or `certificate` (a CA and server certificate made with @pulumi/tls; output `tlsCaCertificate` is the CA clients trust).", default: "`certificate`" },
    tlsDomain: { group: "proxy", doc: "tlsIngress: the domain clients use. Required for acme; for certificate an extra name in the certificate." },
    tlsEmail: { group: "proxy", doc: "tlsIngress, acme: the ACME account e-mail." },
    loopbackProxy: { group: "proxy", doc: "Without TLS too, run the proxy on the web service's loopback port, so a release switch drops no request. `false`: the web service publishes the port itself and is away for its start-up at each switch.", default: "true" },
    proxyImage: { group: "proxy", doc: "The proxy image: Caddy 2 with the official image's layout (/etc/caddy/Caddyfile, /data).", default: "`caddy:2` pinned by digest" },
    healthRetries: { group: "release", doc: "Health gate attempts.", default: "60" },
    healthIntervalSeconds: { group: "release", doc: "Seconds between health gate attempts.", default: "1" },
    keepReleases: { group: "release", doc: "Releases kept on the VM (current and previous are never pruned).", default: "5" },
    backupSchedule: { group: "backup", doc: "Five-field cron schedule of the scheduled backup.", default: "`17 3 * * *`" },
    backupKeep: { group: "backup", doc: "Verified backups kept.", default: "7" },
    backupMinFreeMb: { group: "backup", doc: "Free space every backup (scheduled, pre-deploy, manual, a restore's safety copy) requires, in MB.", default: "2048" },
    offsiteSsh: { group: "backup", doc: "Off-host backup copies over sftp: object {host, port (default 22), user, path, hostPublicKey (pinned)}. Needs offsiteSshPrivateKey." },
    offsiteSshPrivateKey: { group: "backup", secret: true, doc: "offsiteSsh: the private key that logs in to the off-host SSH target." },
    offsiteS3: { group: "backup", doc: "Off-host backup copies in an S3-compatible bucket: object {endpoint (https://...), region, bucket, prefix (default `<app>/`), allowHttp (default false)}. Needs the two S3 keys." },
    offsiteS3AccessKeyId: { group: "backup", secret: true, doc: "offsiteS3: the access key id." },
    offsiteS3SecretAccessKey: { group: "backup", secret: true, doc: "offsiteS3: the secret access key." },
    dbPasswordVersion: { group: "operations", doc: "Bump to rotate the generated database password.", default: "1" },
    operator: { group: "operations", doc: "Name recorded in the deployment history.", default: "$USER" },
};

export const SECRET_KEYS = new Set(Object.entries(CONFIG_KEYS).filter(([, d]) => d.secret).map(([k]) => k));

/** Env keys onevm itself writes to .env for the database role: a secret may not take them. */
export const DATABASE_ENV_KEYS = ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"] as const;

interface Reader {
    problems: string[];
    str(key: string, opts?: { def?: string; rule?: v.Rule<string>; required?: boolean }): string | undefined;
    int(key: string, def: number, rule: v.Rule<number>): number;
    bool(key: string, def: boolean): boolean;
    json<T>(key: string): T | undefined;
    raw(key: string): string | undefined;
}

function reader(read: ConfigReader): Reader {
    const problems: string[] = [];
    const raw = (key: string) => read(`${NAMESPACE}:${key}`);
    const fail = (key: string, value: string, problem: string) =>
        problems.push(
            SECRET_KEYS.has(key)
                ? `${NAMESPACE}:${key} (secret value hidden) ${problem}`
                : `${NAMESPACE}:${key} = ${JSON.stringify(value)} ${problem}`,
        );
    return {
        problems,
        raw,
        str(key, opts = {}) {
            const value = raw(key);
            if (value === undefined || value === "") {
                if (opts.required) {
                    const how = SECRET_KEYS.has(key) ? "pulumi config set --secret" : "pulumi config set";
                    problems.push(`${NAMESPACE}:${key} is required: set it with \`${how} ${NAMESPACE}:${key} <value>\``);
                }
                return opts.def;
            }
            const problem = opts.rule?.(value);
            if (problem) {
                fail(key, value, problem);
            }
            return value;
        },
        int(key, def, rule) {
            const value = raw(key);
            if (value === undefined || value === "") {
                return def;
            }
            const n = /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
            const problem = Number.isNaN(n) ? "must be an integer" : rule(n);
            if (problem) {
                fail(key, value, problem);
                return def;
            }
            return n;
        },
        bool(key, def) {
            const value = raw(key);
            if (value === undefined || value === "") {
                return def;
            }
            if (value !== "true" && value !== "false") {
                fail(key, value, "must be true or false");
                return def;
            }
            return value === "true";
        },
        json<T>(key: string) {
            const value = raw(key);
            if (value === undefined || value === "") {
                return undefined;
            }
            try {
                return JSON.parse(value) as T;
            } catch {
                fail(key, value, "must be structured config (a YAML object or list in the stack file, or `pulumi config set --path`)");
                return undefined;
            }
        },
    };
}

export interface ParseOptions {
    /** Default of onevm:operator (the user running pulumi). */
    operator?: string;
    /** Whether a full key holds a secret value; a plaintext app:KEY secret is refused. */
    isSecret?: (fullKey: string) => boolean;
}

export function parseConfig(read: ConfigReader, options: ParseOptions = {}): OnevmConfig {
    const r = reader(read);
    const p = r.problems;

    const app = r.str("app", { rule: v.appName });
    const sshUser = r.str("sshUser", { def: "deploy", rule: v.unixUser })!;
    const kind = r.str("target", { def: "existing", rule: v.oneOf(["existing", "digitalocean"]) });
    const sshPrivateKey = r.str("sshPrivateKey", { rule: v.sshPrivateKey, required: kind === "existing" });
    const target = kind === "digitalocean" ? parseDigitalOcean(r, sshUser, sshPrivateKey) : parseExisting(r, sshUser);

    const tlsIngress = r.bool("tlsIngress", false);
    let tls: TlsConfig | undefined;
    if (tlsIngress) {
        const mode = r.str("tlsMode", { def: "certificate", rule: v.oneOf(TLS_MODES) }) as TlsMode;
        const domain = r.str("tlsDomain", { rule: v.dnsName, required: mode === "acme" });
        tls = { mode, domain, email: r.str("tlsEmail", { rule: v.email }) };
    }
    const loopbackProxy = r.bool("loopbackProxy", true);
    const proxyImage = r.str("proxyImage", { def: DEFAULT_PROXY_IMAGE, rule: v.imageRef })!;
    const proxy: ProxyConfig | undefined = tls
        ? { mode: tls.mode, image: proxyImage }
        : loopbackProxy
          ? { mode: "loopback", image: proxyImage }
          : undefined;

    const appDescription = parseAppDescription(r, app);
    const appEnv = readSecretValues(read, appDescription.secrets, p, options.isSecret);
    const imageTransport = r.str("imageTransport", { def: "registry", rule: v.oneOf(IMAGE_TRANSPORTS) }) as OnevmConfig["imageTransport"];
    const registry = parseRegistry(r);
    if (registry && imageTransport !== "registry") {
        p.push(`${NAMESPACE}:registry is used by imageTransport registry only (${NAMESPACE}:imageTransport is ${imageTransport}): remove it, or set ${NAMESPACE}:imageTransport registry`);
    }
    const registryPassword = r.str("registryPassword", { rule: registrySecret, required: registry !== undefined });
    if (registryPassword !== undefined && r.raw("registry") === undefined) {
        p.push(`${NAMESPACE}:registryPassword is set but ${NAMESPACE}:registry is not: set the registry (server, username) or remove the key`);
    }
    if (registryPassword !== undefined && options.isSecret && !options.isSecret(`${NAMESPACE}:registryPassword`)) {
        p.push(`${NAMESPACE}:registryPassword is stored in plain text: set it again with \`pulumi config set --secret ${NAMESPACE}:registryPassword <value>\``);
    }

    const config: OnevmConfig = {
        app,
        target,
        tls,
        proxy,
        releaseId: r.str("releaseId", { rule: v.releaseId, required: true }) ?? "",
        appDescription,
        imageTransport,
        imageArchiveDir: r.str("imageArchiveDir", { def: "build/images" })!,
        registry,
        healthRetries: r.int("healthRetries", 60, v.intBetween(1, 600)),
        healthIntervalSeconds: r.int("healthIntervalSeconds", 1, v.intBetween(1, 60)),
        keepReleases: r.int("keepReleases", 5, v.intBetween(2, 100)),
        backupSchedule: r.str("backupSchedule", { def: "17 3 * * *", rule: v.cronSchedule })!.trim(),
        backupKeep: r.int("backupKeep", 7, v.intBetween(1, 1000)),
        backupMinFreeMb: r.int("backupMinFreeMb", 2048, v.intBetween(0, 10_000_000)),
        offsite: { ssh: parseOffsiteSsh(r), s3: parseOffsiteS3(r) },
        dbPasswordVersion: r.int("dbPasswordVersion", 1, v.intBetween(1, 1_000_000)),
        operator: r.str("operator", { def: options.operator ?? "unknown", rule: operatorName })!,
        secrets: {
            sshPrivateKey,
            appEnv,
            offsiteSshPrivateKey: r.str("offsiteSshPrivateKey", { rule: v.sshPrivateKey, required: r.raw("offsiteSsh") !== undefined }),
            offsiteS3AccessKeyId: r.str("offsiteS3AccessKeyId", { rule: s3AccessKeyId, required: r.raw("offsiteS3") !== undefined }),
            offsiteS3SecretAccessKey: r.str("offsiteS3SecretAccessKey", { rule: s3SecretKey, required: r.raw("offsiteS3") !== undefined }),
            registryPassword,
        },
    };
    for (const [secret, dependsOn] of [
        ["offsiteSshPrivateKey", "offsiteSsh"],
        ["offsiteS3AccessKeyId", "offsiteS3"],
        ["offsiteS3SecretAccessKey", "offsiteS3"],
    ]) {
        if (r.raw(secret) !== undefined && r.raw(dependsOn) === undefined) {
            p.push(`${NAMESPACE}:${secret} is set but ${NAMESPACE}:${dependsOn} is not: set the target or remove the key`);
        }
    }
    if (p.length > 0) {
        throw new ConfigError(p);
    }
    return config;
}

/**
 * The official Caddy 2 image, pinned by digest so a moved tag never changes what runs.
 * Set onevm:proxyImage to use your own (it must keep the official image's layout).
 */
export const DEFAULT_PROXY_IMAGE = "caddy:2.10.2@sha256:c3d7ee5d2b11f9dc54f947f68a734c84e9c9666c92c88a7f30b9cba5da182adb";

function parseExisting(r: Reader, user: string): ExistingTarget {
    return {
        kind: "existing",
        address: r.str("host", { rule: v.hostName, required: true }) ?? "",
        port: r.int("sshPort", 22, v.port),
        user,
        hostPublicKey: v.hostKeyLine(r.str("hostPublicKey", { rule: v.sshPublicKey, required: true }) ?? ""),
    };
}

function parseDigitalOcean(r: Reader, user: string, sshPrivateKey: string | undefined): DigitalOceanTarget {
    const p = r.problems;
    const cidrs = stringList(r, "sshAllowedCidrs") ?? [];
    if (cidrs.length === 0) {
        p.push(`${NAMESPACE}:sshAllowedCidrs is required: the CIDRs allowed to reach SSH, e.g. ["203.0.113.7/32"]`);
    }
    for (const c of cidrs) {
        const problem = v.cidr(c);
        if (problem) {
            p.push(`${NAMESPACE}:sshAllowedCidrs entry ${JSON.stringify(c)} ${problem}`);
        }
    }
    const allowWorldSsh = r.bool("allowWorldSsh", false);
    const world = cidrs.filter((c) => v.WORLD_CIDRS.includes(c));
    if (world.length > 0 && !allowWorldSsh) {
        p.push(`${NAMESPACE}:sshAllowedCidrs opens SSH to the whole internet (${world.join(", ")}); refused unless ${NAMESPACE}:allowWorldSsh is true`);
    }
    const deployPublicKey = r.str("deployPublicKey", { rule: v.sshPublicKey });
    if (deployPublicKey && !sshPrivateKey) {
        p.push(`${NAMESPACE}:sshPrivateKey is required with ${NAMESPACE}:deployPublicKey: set it with \`pulumi config set --secret ${NAMESPACE}:sshPrivateKey < key\``);
    }
    return {
        kind: "digitalocean",
        region: r.str("region", { def: "fra1", rule: (x) => (/^[a-z]{3}[0-9]$/.test(x) ? undefined : "must be a region slug like fra1") })!,
        size: r.str("size", { def: "s-2vcpu-4gb", rule: (x) => (/^[a-z0-9-]+$/.test(x) ? undefined : "must be a size slug like s-2vcpu-4gb") })!,
        image: r.str("image", { def: "ubuntu-24-04-x64", rule: (x) => (/^[a-z0-9.-]+$/.test(x) ? undefined : "must be an image slug like ubuntu-24-04-x64") })!,
        sshAllowedCidrs: cidrs,
        allowWorldSsh,
        tags: stringList(r, "tags") ?? ["onevm"],
        volumeSizeGb: r.int("volumeSizeGb", 20, v.intBetween(1, 16384)),
        reservedIp: r.bool("reservedIp", false),
        deployPublicKey: deployPublicKey?.trim(),
        user,
        infrastructureOnly: r.bool("infrastructureOnly", false),
    };
}

function parseAppDescription(r: Reader, app: string | undefined): AppDescription {
    const composeFile = r.str("composeFile", { def: "compose.yaml", rule: composePath })!;
    const images = serviceMap(r, "images", (_service, value) => (typeof value !== "string" ? "must be an image reference" : v.imageRef(value))) as Record<string, string>;
    const migrate = r.str("migrate", { rule: v.serviceName });
    const secrets: Record<string, string[]> = {};
    for (const [key, value] of Object.entries(configObject(r, "secrets") ?? {})) {
        const problem =
            v.envKey(key) ??
            ((DATABASE_ENV_KEYS as readonly string[]).includes(key) ? "is written by onevm for the database role" : undefined) ??
            serviceListProblem(value);
        if (problem) {
            r.problems.push(`${NAMESPACE}:secrets.${key} ${problem}`);
        } else {
            secrets[key] = value as string[];
        }
    }
    return {
        composeFile,
        images,
        web: parseWeb(r),
        migrate,
        database: parseDatabase(r, app),
        secrets,
        defaultLimits: parseLimits(r, "defaultLimits", configObject(r, "defaultLimits")) ?? { memory: "512m", cpus: "1.0" },
        limits: Object.fromEntries(Object.entries(serviceMap(r, "limits", (_service, value) => limitsProblem(value))).map(([s, l]) => [s, normalizeLimits(l as Record<string, unknown>)])),
        logMaxSize: r.str("logMaxSize", { def: "10m", rule: byteSize })!,
        logMaxFiles: r.int("logMaxFiles", 3, v.intBetween(1, 100)),
    };
}

function parseWeb(r: Reader): WebRole | undefined {
    const key = "web";
    const o = configObject(r, key, ["service", "port", "hostPort", "health"]);
    if (!o) {
        return undefined;
    }
    const service = field(r, key, o, "service", v.serviceName);
    const port = portField(r, key, o, "port");
    const hostPort = o.hostPort === undefined ? port : portField(r, key, o, "hostPort");
    const raw = o.health === undefined ? [{ path: "/health" }] : Array.isArray(o.health) ? o.health : [o.health];
    const checks: HealthCheck[] = [];
    raw.forEach((c: unknown, i) => {
        const at = Array.isArray(o.health) ? `${key}.health[${i}]` : `${key}.health`;
        const check = parseHealthCheck(r, at, c);
        if (check) checks.push(check);
    });
    if (raw.length === 0) {
        r.problems.push(`${NAMESPACE}:${key}.health must hold at least one check`);
    }
    return { service, port, hostPort, checks };
}

function parseHealthCheck(r: Reader, at: string, c: unknown): HealthCheck | undefined {
    if (typeof c !== "object" || c === null || Array.isArray(c)) {
        r.problems.push(`${NAMESPACE}:${at} must be an object {path, status, json, contains}`);
        return undefined;
    }
    const o = c as Record<string, unknown>;
    for (const extra of Object.keys(o).filter((k) => !["path", "status", "json", "contains"].includes(k))) {
        r.problems.push(`${NAMESPACE}:${at}.${extra} is not a setting (known: path, status, json, contains)`);
    }
    const path = typeof o.path === "string" && /^\/[\x21-\x7e]*$/.test(o.path) ? o.path : undefined;
    if (!path) {
        r.problems.push(`${NAMESPACE}:${at}.path = ${JSON.stringify(o.path)} must be a URL path starting with '/' (no spaces)`);
    }
    const status = o.status === undefined ? 200 : Number(o.status);
    if (!Number.isInteger(status) || status < 100 || status > 599) {
        r.problems.push(`${NAMESPACE}:${at}.status = ${JSON.stringify(o.status)} must be an HTTP status code (100-599)`);
    }
    if (o.json !== undefined && (typeof o.json !== "object" || o.json === null || Array.isArray(o.json))) {
        r.problems.push(`${NAMESPACE}:${at}.json must be an object of the fields the body must have, e.g. {status: ok}`);
    }
    const contains = o.contains === undefined ? undefined : typeof o.contains === "string" ? [o.contains] : o.contains;
    if (contains !== undefined && (!Array.isArray(contains) || !contains.every((s) => typeof s === "string" && s !== ""))) {
        r.problems.push(`${NAMESPACE}:${at}.contains must be a list of non-empty strings`);
    }
    return path
        ? {
              path,
              status,
              ...(o.json !== undefined ? { json: o.json as Record<string, unknown> } : {}),
              ...(Array.isArray(contains) ? { contains: contains as string[] } : {}),
          }
        : undefined;
}

function parseDatabase(r: Reader, app: string | undefined): DatabaseRole | undefined {
    const key = "database";
    const o = configObject(r, key, ["service", "user", "name", "clients", "urlKey", "urlScheme", "urlQuery"]);
    if (!o) {
        return undefined;
    }
    const defaultUser = (app ?? "app").replace(/-/g, "_");
    const user = field(r, key, o, "user", v.pgIdentifier, defaultUser);
    const clients = o.clients === undefined ? [] : o.clients;
    const clientProblem = serviceListProblem(clients);
    if (clientProblem) {
        r.problems.push(`${NAMESPACE}:${key}.clients ${clientProblem}`);
    }
    return {
        service: field(r, key, o, "service", v.serviceName),
        user,
        name: field(r, key, o, "name", v.pgIdentifier, user),
        clients: clientProblem ? [] : (clients as string[]),
        urlKey: field(r, key, o, "urlKey", v.envKey, "DATABASE_URL"),
        urlScheme: field(r, key, o, "urlScheme", (x) => (/^[a-z][a-z0-9+.-]*$/.test(x) ? undefined : "must be a URL scheme such as postgresql or postgresql+psycopg"), "postgresql"),
        urlQuery: field(r, key, o, "urlQuery", (x) => (/^[A-Za-z0-9_.~%=&-]+$/.test(x) ? undefined : "must be a query string such as sslmode=disable (without '?')"), ""),
    };
}

/**
 * The value of each declared secret, from its own key app:KEY. A value stored in plain
 * text in the stack file is refused: it is meant for `pulumi config set --secret`.
 */
function readSecretValues(read: ConfigReader, declared: Record<string, string[]>, p: string[], isSecret?: (k: string) => boolean): Record<string, string> {
    const values: Record<string, string> = {};
    for (const key of Object.keys(declared)) {
        const full = `${SECRET_NAMESPACE}:${key}`;
        const value = read(full);
        if (value === undefined) {
            p.push(`${full} is required by ${NAMESPACE}:secrets.${key}: set it with \`pulumi config set --secret ${full} <value>\``);
        } else if (isSecret && !isSecret(full)) {
            p.push(`${full} is stored in plain text: set it again with \`pulumi config set --secret ${full} <value>\``);
        } else {
            const problem = v.envValue(value);
            if (problem) {
                p.push(`${full} (secret value hidden) ${problem}`);
            } else {
                values[key] = value;
            }
        }
    }
    return values;
}

function serviceListProblem(value: unknown): string | undefined {
    if (!Array.isArray(value) || !value.every((s) => typeof s === "string")) {
        return "must be a list of service names, e.g. [api, worker]";
    }
    for (const s of value) {
        const problem = v.serviceName(s);
        if (problem) return `entry ${JSON.stringify(s)} ${problem}`;
    }
    return undefined;
}

/** An object keyed by service name, each value checked by rule. */
function serviceMap(r: Reader, key: string, rule: (service: string, value: unknown) => string | undefined): Record<string, unknown> {
    const o = configObject(r, key) ?? {};
    const result: Record<string, unknown> = {};
    for (const [service, value] of Object.entries(o)) {
        const problem = v.serviceName(service) ?? rule(service, value);
        if (problem) {
            r.problems.push(`${NAMESPACE}:${key}.${service} = ${JSON.stringify(value)} ${problem}`);
        } else {
            result[service] = value;
        }
    }
    return result;
}

function limitsProblem(value: unknown): string | undefined {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        return "must be an object {memory, cpus}";
    }
    const o = value as Record<string, unknown>;
    for (const k of Object.keys(o)) {
        if (k !== "memory" && k !== "cpus") return `has ${k}: only memory and cpus are settings`;
    }
    if (o.memory !== undefined && byteSize(String(o.memory))) return `memory ${byteSize(String(o.memory))}`;
    if (o.cpus !== undefined && !/^\d+(\.\d+)?$/.test(String(o.cpus))) return "cpus must be a number of CPUs such as 0.5";
    return undefined;
}

function normalizeLimits(o: Record<string, unknown>): Limits {
    return { ...(o.memory !== undefined ? { memory: String(o.memory) } : {}), ...(o.cpus !== undefined ? { cpus: String(o.cpus) } : {}) };
}

function parseLimits(r: Reader, key: string, o: Record<string, unknown> | undefined): Limits | undefined {
    if (!o) return undefined;
    const problem = limitsProblem(o);
    if (problem) {
        r.problems.push(`${NAMESPACE}:${key} ${problem}`);
        return undefined;
    }
    return normalizeLimits(o);
}

const byteSize: v.Rule<string> = (x) => (/^\d+(\.\d+)?[bkmg]?$/i.test(x) ? undefined : "must be a size such as 512m or 1g");

const composePath: v.Rule<string> = (x) =>
    /^[A-Za-z0-9._/-]+$/.test(x) && !x.startsWith("/") ? undefined : "must be a relative path of letters, digits, '.', '_', '-' and '/'";

const operatorName: v.Rule<string> = (x) =>
    /^[A-Za-z0-9._@-]{1,64}$/.test(x) ? undefined : "must be 1-64 letters, digits, '.', '_', '@' or '-'";

const s3AccessKeyId: v.Rule<string> = (x) =>
    /^[A-Za-z0-9_+=./-]{3,128}$/.test(x) ? undefined : "must be 3-128 letters, digits or _+=./- (an S3 access key id)";

const s3SecretKey: v.Rule<string> = (x) =>
    /^[\x21-\x7e]{8,256}$/.test(x) ? undefined : "must be 8-256 printable ASCII characters without spaces (an S3 secret key)";

/** sftp paths: no spaces, quotes or '..', so they pass through sftp's batch syntax unchanged. */
const offsitePath: v.Rule<string> = (x) =>
    /^\/?[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*\/?$/.test(x) && !x.split("/").includes("..")
        ? undefined
        : "must be a directory path of letters, digits, '.', '_', '-' and '/' (no spaces or '..')";

const bucketName: v.Rule<string> = (x) =>
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(x) && !x.includes("..") ? undefined : "must be an S3 bucket name (3-63 lowercase letters, digits, '.', '-')";

const s3Prefix: v.Rule<string> = (x) =>
    x === "" || (/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*\/$/.test(x) && !x.split("/").includes(".."))
        ? undefined
        : "must be empty or path segments of letters, digits, '.', '_', '-' ending in '/' (e.g. 'bot/')";

/** An object config value: unknown fields are reported when `fields` is given (a typo must not silently drop a setting). */
function configObject(r: Reader, key: string, fields?: readonly string[]): Record<string, unknown> | undefined {
    const value = r.json<unknown>(key);
    if (value === undefined) {
        return undefined;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        r.problems.push(`${NAMESPACE}:${key} must be an object${fields ? ` with ${fields.join(", ")}` : ""}`);
        return undefined;
    }
    for (const extra of Object.keys(value).filter((k) => fields && !fields.includes(k))) {
        r.problems.push(`${NAMESPACE}:${key}.${extra} is not a setting (known: ${fields!.join(", ")})`);
    }
    return value as Record<string, unknown>;
}

/** field: a string field of a config object, checked by rule; required unless def is given. */
function field(r: Reader, key: string, o: Record<string, unknown>, name: string, rule: v.Rule<string>, def?: string): string {
    const value = o[name];
    if (value === undefined || value === "") {
        if (def === undefined) {
            r.problems.push(`${NAMESPACE}:${key}.${name} is required`);
        }
        return def ?? "";
    }
    const problem = typeof value !== "string" ? "must be a string" : rule(value);
    if (problem) {
        r.problems.push(`${NAMESPACE}:${key}.${name} = ${JSON.stringify(value)} ${problem}`);
        return def ?? "";
    }
    return value as string;
}

function portField(r: Reader, key: string, o: Record<string, unknown>, name: string): number {
    const value = o[name];
    const n = typeof value === "number" ? value : typeof value === "string" && /^\d+$/.test(value) ? Number(value) : NaN;
    const problem = value === undefined ? "is required" : Number.isNaN(n) ? "must be an integer port between 1 and 65535" : v.port(n);
    if (problem) {
        r.problems.push(value === undefined ? `${NAMESPACE}:${key}.${name} ${problem}` : `${NAMESPACE}:${key}.${name} = ${JSON.stringify(value)} ${problem}`);
        return 0;
    }
    return n;
}

function parseOffsiteSsh(r: Reader): OffsiteSshConfig | undefined {
    const key = "offsiteSsh";
    const o = configObject(r, key, ["host", "port", "user", "path", "hostPublicKey"]);
    if (!o) {
        return undefined;
    }
    return {
        host: field(r, key, o, "host", v.hostName),
        port: o.port === undefined ? 22 : portField(r, key, o, "port"),
        user: field(r, key, o, "user", v.unixUser),
        path: field(r, key, o, "path", offsitePath),
        hostPublicKey: v.hostKeyLine(field(r, key, o, "hostPublicKey", v.sshPublicKey)),
    };
}

function parseRegistry(r: Reader): RegistryConfig | undefined {
    const key = "registry";
    const o = configObject(r, key, ["server", "username", "namespace", "caCertificate"]);
    if (!o) {
        return undefined;
    }
    const namespace = o.namespace === undefined ? undefined : field(r, key, o, "namespace", registryNamespace);
    const ca = o.caCertificate === undefined ? undefined : field(r, key, o, "caCertificate", pemCertificate);
    return {
        server: field(r, key, o, "server", registryServer),
        username: field(r, key, o, "username", registryUsername),
        ...(namespace ? { namespace } : {}),
        ...(ca ? { caCertificate: ca.trim() + "\n" } : {}),
    };
}

/** host[:port] as an image reference's first component names a registry (lowercase, no scheme or path). */
export const registryServer: v.Rule<string> = (x) => {
    const m = /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)(?::(\d{1,5}))?$/.exec(x);
    if (!m || (m[3] !== undefined && v.port(Number(m[3])) !== undefined)) {
        return "must be the registry's host[:port] as image references name it, e.g. ghcr.io or 10.0.0.5:5000 (lowercase, no scheme or path)";
    }
    if (!m[1].includes(".") && m[3] === undefined && m[1] !== "localhost") {
        return "must contain a '.' or a port (Docker reads a bare name as a Docker Hub namespace)";
    }
    return undefined;
};

const registryUsername: v.Rule<string> = (x) =>
    /^[\x21-\x7e]{1,256}$/.test(x) && !x.includes(":") ? undefined : "must be 1-256 printable characters without spaces or ':'";

/** Repository path components of the distribution spec. */
const registryNamespace: v.Rule<string> = (x) =>
    /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(x) && x.length <= 200
        ? undefined
        : "must be a repository path such as my-org/shop (lowercase letters, digits, '.', '_', '-', separated by '/')";

const pemCertificate: v.Rule<string> = (x) =>
    /-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/.test(x) && !x.includes("PRIVATE KEY")
        ? undefined
        : "must be a PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----), the CA only";

const registrySecret: v.Rule<string> = (x) =>
    /^[^\0\r\n]{1,4096}$/.test(x) ? undefined : "must be one line of at most 4096 characters";

function parseOffsiteS3(r: Reader): OffsiteS3Config | undefined {
    const key = "offsiteS3";
    const o = configObject(r, key, ["endpoint", "region", "bucket", "prefix", "allowHttp"]);
    if (!o) {
        return undefined;
    }
    if (o.allowHttp !== undefined && typeof o.allowHttp !== "boolean" && o.allowHttp !== "true" && o.allowHttp !== "false") {
        r.problems.push(`${NAMESPACE}:${key}.allowHttp must be true or false`);
    }
    const allowHttp = o.allowHttp === true || o.allowHttp === "true";
    const endpoint = field(r, key, o, "endpoint", (x) => {
        let url: URL;
        try {
            url = new URL(x);
        } catch {
            return "must be a URL such as https://fra1.digitaloceanspaces.com";
        }
        if (url.protocol !== "https:" && !(url.protocol === "http:" && allowHttp)) {
            return "must use https:// (backups would cross the network in clear; set allowHttp: true only for a local test server)";
        }
        if (url.pathname !== "/" || url.search || url.hash || url.username || url.password || /[/?#]$/.test(x)) {
            return "must be only scheme://host[:port], without path, query, credentials or trailing '/'";
        }
        return undefined;
    });
    return {
        endpoint,
        region: field(r, key, o, "region", (x) => (/^[a-z0-9-]{2,32}$/.test(x) ? undefined : "must be a region name such as fra1 or us-east-1")),
        bucket: field(r, key, o, "bucket", bucketName),
        prefix: o.prefix === undefined ? undefined : field(r, key, o, "prefix", s3Prefix, ""),
    };
}

function stringList(r: Reader, key: string): string[] | undefined {
    const list = r.json<unknown>(key);
    if (list === undefined) {
        return undefined;
    }
    if (!Array.isArray(list) || !list.every((x) => typeof x === "string")) {
        r.problems.push(`${NAMESPACE}:${key} must be a list of strings`);
        return undefined;
    }
    return list;
}
