/**
 * Every stack config key onevm reads, declared once with its type, default and rule.
 * `parseConfig` is pure: it takes a reader for raw values and returns a typed config, or
 * throws one ConfigError listing every problem — before any resource is registered, so
 * `pulumi preview` shows it and nothing on a VM changes.
 */
import { ProxyMode, TLS_MODES, TlsMode } from "./render/caddyfile";
import * as v from "./validate";

export const NAMESPACE = "onevm";
export const SERVICES = ["bot-api", "migrate", "postgres", "redis"] as const;
export type Service = (typeof SERVICES)[number];
export type Images = Record<Service, string>;

export const TARGETS = ["existing", "digitalocean"] as const;
export const IMAGE_TRANSPORTS = ["registry", "archive"] as const;

export interface ExistingHostConfig {
    /** Address the VM's sshd is reachable at. */
    address: string;
    port: number;
    user: string;
    /** The VM's SSH host public key; every connection pins it. */
    hostPublicKey: string;
}

export interface DigitalOceanConfig {
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
    /** Same as OnevmConfig.tls !== undefined: the cloud firewall opens 80/443 for it. */
    tlsIngress: boolean;
    /** Login user cloud-init creates (sshUser). */
    user: string;
    /** Create only the cloud resources, run nothing on the VM (tests against the DO API stand-in; staging the infrastructure first). */
    infrastructureOnly: boolean;
}

/** The TLS ingress proxy (both targets); absent when onevm:tlsIngress is false. */
export interface TlsConfig {
    mode: TlsMode;
    /** acme: the domain to certify (required). certificate: an extra DNS name in the certificate. */
    domain?: string;
    /** acme: the ACME account e-mail. */
    email?: string;
}

/** The ingress proxy in front of the app: with TLS ingress, or on the loopback port only (onevm:loopbackProxy). */
export interface ProxyConfig {
    mode: ProxyMode;
    /** The proxy image. */
    image: string;
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
    /** Key prefix, "" or ending in "/". Default "<app>/". */
    prefix: string;
}

export interface OnevmConfig {
    app: string;
    target: (typeof TARGETS)[number];
    host?: ExistingHostConfig;
    digitalocean?: DigitalOceanConfig;
    tls?: TlsConfig;
    /** Absent only when both onevm:tlsIngress and onevm:loopbackProxy are off. */
    proxy?: ProxyConfig;
    releaseId: string;
    images: Images;
    imageTransport: (typeof IMAGE_TRANSPORTS)[number];
    /** Where `archive` transport finds `docker save` archives, one per image. */
    imageArchiveDir: string;
    healthRetries: number;
    healthIntervalSeconds: number;
    keepReleases: number;
    backupSchedule: string;
    backupKeep: number;
    backupMinFreeMb: number;
    /** Off-host copies of each scheduled and manual backup; none when both are absent. */
    offsite: { ssh?: OffsiteSshConfig; s3?: OffsiteS3Config };
    postgresUser: string;
    postgresDb: string;
    /** Bump to generate a new database password (rotation). */
    dbPasswordVersion: number;
    operator: string;
    /** Secret values: index.ts wraps each in pulumi.secret before use. */
    secrets: {
        sshPrivateKey?: string;
        telegramBotToken: string;
        /** Extra environment for the app, KEY -> value. */
        appEnv: Record<string, string>;
        offsiteSshPrivateKey?: string;
        offsiteS3AccessKeyId?: string;
        offsiteS3SecretAccessKey?: string;
    };
}

export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(`Invalid onevm configuration (nothing was changed):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        this.name = "ConfigError";
    }
}

/** Returns the raw config string for a key (without namespace), or undefined when unset. */
export type ConfigReader = (key: string) => string | undefined;

/** Documentation of every key, rendered into the README's config table. */
export const CONFIG_KEYS: Record<string, string> = {
    app: "App name: /opt/<app>, compose project, systemd unit `<app>.service`. Default `bot`.",
    target: "`existing` (any SSH host: the sandbox, a VPS) or `digitalocean` (a droplet onevm creates). Default `existing`.",
    host: "existing: the VM's address.",
    sshPort: "existing: sshd port. Default 22.",
    sshUser: "SSH user with passwordless sudo. Default `deploy`.",
    sshPrivateKey: "secret; existing: the SSH private key for sshUser.",
    hostPublicKey: "existing: the VM's SSH host public key line, pinned by every connection.",
    region: "digitalocean: region. Default `fra1`.",
    size: "digitalocean: droplet size. Default `s-2vcpu-4gb`.",
    image: "digitalocean: droplet image. Default `ubuntu-24-04-x64`.",
    sshAllowedCidrs: "digitalocean: list of CIDRs allowed to reach port 22 (required).",
    allowWorldSsh: "digitalocean: must be true to allow 0.0.0.0/0 or ::/0 in sshAllowedCidrs. Default false.",
    tags: "digitalocean: droplet tags. Default [`onevm`].",
    volumeSizeGb: "digitalocean: size of the volume holding PostgreSQL data. Default 20.",
    reservedIp: "digitalocean: attach a reserved IP that survives droplet replacement. Default false.",
    deployPublicKey: "digitalocean: your own deploy public key; generated with @pulumi/tls when unset.",
    infrastructureOnly: "digitalocean: create the droplet, volume, keys and firewall but run nothing on the VM. Default false.",
    tlsIngress: "Run the TLS reverse proxy (Caddy) on 80/443, the only public ports besides SSH; the app stays on 127.0.0.1:8080 (through the proxy). Both targets. Default false.",
    tlsMode: "tlsIngress: `acme` (Caddy obtains and renews a certificate for tlsDomain; needs public DNS and ports 80/443) or `certificate` (a CA and server certificate made with @pulumi/tls; output `tlsCaCertificate` is the CA clients trust). Default `certificate`.",
    tlsDomain: "tlsIngress: the domain clients use. Required for acme; for certificate an extra DNS name in the certificate (the host address is always in it).",
    tlsEmail: "tlsIngress, acme: the ACME account e-mail (expiry notices). Optional.",
    loopbackProxy: "Without tlsIngress too, run the proxy (Caddy) on the app's loopback port 127.0.0.1:8080, so a release switch drops no request (the new app starts beside the old one and takes over when it answers). `false`: bot-api publishes the port itself and is away for its start-up at each switch, and the 190 MB proxy image is not shipped. Default true.",
    proxyImage: "The proxy image, with tlsIngress or loopbackProxy (Caddy 2.6+ reading /etc/caddy/Caddyfile as uid 480). Default `onevm/caddy:2` (app/images/caddy).",
    releaseId: "The release to run (required). Changing it deploys; setting an earlier one rolls back.",
    images: "Object of image references for bot-api, migrate, postgres, redis (tags or digests required).",
    imageTransport: "`registry` (the VM pulls) or `archive` (onevm uploads `docker save` archives). Default `registry`.",
    imageArchiveDir: "archive transport: directory with <name>_<tag>.tar archives (and the <archive>.sha256 records build-images.sh writes, which spare the engine hashing each archive on every command). Default `build/images`.",
    healthRetries: "Health gate attempts. Default 60.",
    healthIntervalSeconds: "Seconds between health gate attempts. Default 1.",
    keepReleases: "Releases kept on the VM (current and previous are never pruned). Default 5.",
    backupSchedule: "Five-field cron schedule of the scheduled backup. Default `17 3 * * *`.",
    backupKeep: "Verified backups kept. Default 7.",
    backupMinFreeMb: "Free space the backup requires, in MB. Default 2048.",
    offsiteSsh: "Off-host backup copies over sftp: object {host, port (default 22), user, path, hostPublicKey (pinned)}. Needs offsiteSshPrivateKey.",
    offsiteSshPrivateKey: "secret; offsiteSsh: the private key that logs in to the off-host SSH target.",
    offsiteS3: "Off-host backup copies in an S3-compatible bucket (e.g. DigitalOcean Spaces): object {endpoint (https://...), region, bucket, prefix (default `<app>/`), allowHttp (default false)}. Needs the two S3 keys.",
    offsiteS3AccessKeyId: "secret; offsiteS3: the access key id.",
    offsiteS3SecretAccessKey: "secret; offsiteS3: the secret access key.",
    postgresUser: "PostgreSQL role of the app. Default `bot`.",
    postgresDb: "PostgreSQL database of the app. Default `bot`.",
    dbPasswordVersion: "Bump to rotate the generated database password. Default 1.",
    operator: "Name recorded in the deployment history. Default: $USER.",
    telegramBotToken: "secret (required): the bot's token.",
    appEnv: "secret: object of extra environment variables for the app (KEY: value).",
};

interface Reader {
    problems: string[];
    str(key: string, opts?: { def?: string; rule?: v.Rule<string>; required?: boolean }): string | undefined;
    int(key: string, def: number, rule: v.Rule<number>): number;
    bool(key: string, def: boolean): boolean;
    json<T>(key: string): T | undefined;
}

function reader(read: ConfigReader, secretKeys: ReadonlySet<string>): Reader {
    const problems: string[] = [];
    const fail = (key: string, value: string, problem: string) =>
        problems.push(
            secretKeys.has(key)
                ? `${NAMESPACE}:${key} (secret value hidden) ${problem}`
                : `${NAMESPACE}:${key} = ${JSON.stringify(value)} ${problem}`,
        );
    return {
        problems,
        str(key, opts = {}) {
            const raw = read(key);
            if (raw === undefined || raw === "") {
                if (opts.required) {
                    const how = secretKeys.has(key) ? "pulumi config set --secret" : "pulumi config set";
                    problems.push(`${NAMESPACE}:${key} is required: set it with \`${how} ${NAMESPACE}:${key} <value>\``);
                }
                return opts.def;
            }
            const problem = opts.rule?.(raw);
            if (problem) {
                fail(key, raw, problem);
            }
            return raw;
        },
        int(key, def, rule) {
            const raw = read(key);
            if (raw === undefined || raw === "") {
                return def;
            }
            const n = /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
            const problem = Number.isNaN(n) ? "must be an integer" : rule(n);
            if (problem) {
                fail(key, raw, problem);
                return def;
            }
            return n;
        },
        bool(key, def) {
            const raw = read(key);
            if (raw === undefined || raw === "") {
                return def;
            }
            if (raw !== "true" && raw !== "false") {
                fail(key, raw, "must be true or false");
                return def;
            }
            return raw === "true";
        },
        json<T>(key: string) {
            const raw = read(key);
            if (raw === undefined || raw === "") {
                return undefined;
            }
            try {
                return JSON.parse(raw) as T;
            } catch {
                fail(key, raw, "must be structured config (set it with `pulumi config set --path` or a YAML list/object)");
                return undefined;
            }
        },
    };
}

export const SECRET_KEYS = new Set([
    "sshPrivateKey",
    "telegramBotToken",
    "appEnv",
    "offsiteSshPrivateKey",
    "offsiteS3AccessKeyId",
    "offsiteS3SecretAccessKey",
]);

/** Env keys onevm itself writes to .env; user appEnv may not override them. */
export const RESERVED_ENV_KEYS = new Set([
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "DATABASE_URL",
    "REDIS_URL",
    "APP_RELEASE",
    "TELEGRAM_BOT_TOKEN",
]);

export function parseConfig(read: ConfigReader, defaults: { operator?: string } = {}): OnevmConfig {
    const r = reader(read, SECRET_KEYS);
    const p = r.problems;

    const app = r.str("app", { def: "bot", rule: v.appName })!;
    const target = r.str("target", { def: "existing", rule: v.oneOf(TARGETS) }) as OnevmConfig["target"];
    const sshUser = r.str("sshUser", { def: "deploy", rule: v.unixUser })!;

    let host: ExistingHostConfig | undefined;
    let digitalocean: DigitalOceanConfig | undefined;
    const sshPrivateKey = r.str("sshPrivateKey", { rule: v.sshPrivateKey, required: target === "existing" });
    if (target === "existing") {
        host = {
            address: r.str("host", { rule: v.hostName, required: true }) ?? "",
            port: r.int("sshPort", 22, v.port),
            user: sshUser,
            hostPublicKey: (r.str("hostPublicKey", { rule: v.sshPublicKey, required: true }) ?? "").trim(),
        };
    } else if (target === "digitalocean") {
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
            p.push(
                `${NAMESPACE}:sshAllowedCidrs opens SSH to the whole internet (${world.join(", ")}); ` +
                    `refused unless ${NAMESPACE}:allowWorldSsh is true`,
            );
        }
        digitalocean = {
            region: r.str("region", { def: "fra1", rule: (x) => (/^[a-z]{3}[0-9]$/.test(x) ? undefined : "must be a region slug like fra1") })!,
            size: r.str("size", { def: "s-2vcpu-4gb", rule: (x) => (/^[a-z0-9-]+$/.test(x) ? undefined : "must be a size slug like s-2vcpu-4gb") })!,
            image: r.str("image", { def: "ubuntu-24-04-x64", rule: (x) => (/^[a-z0-9.-]+$/.test(x) ? undefined : "must be an image slug like ubuntu-24-04-x64") })!,
            sshAllowedCidrs: cidrs,
            allowWorldSsh,
            tags: stringList(r, "tags") ?? ["onevm"],
            volumeSizeGb: r.int("volumeSizeGb", 20, v.intBetween(1, 16384)),
            reservedIp: r.bool("reservedIp", false),
            deployPublicKey: r.str("deployPublicKey", { rule: v.sshPublicKey }),
            tlsIngress: false,
            user: sshUser,
            infrastructureOnly: r.bool("infrastructureOnly", false),
        };
        if (digitalocean.deployPublicKey && !sshPrivateKey) {
            p.push(`${NAMESPACE}:sshPrivateKey is required with ${NAMESPACE}:deployPublicKey: set it with \`pulumi config set --secret ${NAMESPACE}:sshPrivateKey < key\``);
        }
    }

    const tlsIngress = r.bool("tlsIngress", false);
    let tls: TlsConfig | undefined;
    if (tlsIngress) {
        const mode = r.str("tlsMode", { def: "certificate", rule: v.oneOf(TLS_MODES) }) as TlsMode;
        const domain = r.str("tlsDomain", { rule: v.dnsName, required: mode === "acme" });
        tls = { mode, domain, email: r.str("tlsEmail", { rule: v.email }) };
        if (digitalocean) {
            digitalocean.tlsIngress = true;
        }
    }
    const loopbackProxy = r.bool("loopbackProxy", true);
    const proxyImage = r.str("proxyImage", { def: "onevm/caddy:2", rule: v.imageRef })!;
    const proxy: ProxyConfig | undefined = tls ? { mode: tls.mode, image: proxyImage } : loopbackProxy ? { mode: "loopback", image: proxyImage } : undefined;

    const releaseId = r.str("releaseId", { rule: v.releaseId, required: true }) ?? "";
    const images = parseImages(r);
    const imageTransport = r.str("imageTransport", {
        def: "registry",
        rule: v.oneOf(IMAGE_TRANSPORTS),
    }) as OnevmConfig["imageTransport"];

    const appEnv = r.json<Record<string, unknown>>("appEnv") ?? {};
    const extra: Record<string, string> = {};
    if (typeof appEnv !== "object" || Array.isArray(appEnv) || appEnv === null) {
        p.push(`${NAMESPACE}:appEnv (secret value hidden) must be an object of KEY: value`);
    } else {
        for (const [key, value] of Object.entries(appEnv)) {
            const problem =
                v.envKey(key) ??
                (RESERVED_ENV_KEYS.has(key) ? "is managed by onevm and cannot be overridden" : undefined) ??
                (typeof value !== "string" ? "must have a string value" : v.envValue(value));
            if (problem) {
                p.push(`${NAMESPACE}:appEnv key ${JSON.stringify(key)} ${problem}`);
            } else {
                extra[key] = value as string;
            }
        }
    }

    const config: OnevmConfig = {
        app,
        target,
        host,
        digitalocean,
        tls,
        proxy,
        releaseId,
        images,
        imageTransport,
        imageArchiveDir: r.str("imageArchiveDir", { def: "build/images" })!,
        healthRetries: r.int("healthRetries", 60, v.intBetween(1, 600)),
        healthIntervalSeconds: r.int("healthIntervalSeconds", 1, v.intBetween(1, 60)),
        keepReleases: r.int("keepReleases", 5, v.intBetween(2, 100)),
        backupSchedule: r.str("backupSchedule", { def: "17 3 * * *", rule: v.cronSchedule })!.trim(),
        backupKeep: r.int("backupKeep", 7, v.intBetween(1, 1000)),
        backupMinFreeMb: r.int("backupMinFreeMb", 2048, v.intBetween(0, 10_000_000)),
        offsite: { ssh: parseOffsiteSsh(r), s3: parseOffsiteS3(r, app) },
        postgresUser: r.str("postgresUser", { def: "bot", rule: pgIdentifier })!,
        postgresDb: r.str("postgresDb", { def: "bot", rule: pgIdentifier })!,
        dbPasswordVersion: r.int("dbPasswordVersion", 1, v.intBetween(1, 1_000_000)),
        operator: r.str("operator", { def: defaults.operator ?? "unknown", rule: operatorName })!,
        secrets: {
            sshPrivateKey,
            telegramBotToken: r.str("telegramBotToken", { rule: v.envValue, required: true }) ?? "",
            appEnv: extra,
            offsiteSshPrivateKey: r.str("offsiteSshPrivateKey", { rule: v.sshPrivateKey, required: read("offsiteSsh") !== undefined }),
            offsiteS3AccessKeyId: r.str("offsiteS3AccessKeyId", { rule: s3AccessKeyId, required: read("offsiteS3") !== undefined }),
            offsiteS3SecretAccessKey: r.str("offsiteS3SecretAccessKey", { rule: s3SecretKey, required: read("offsiteS3") !== undefined }),
        },
    };
    for (const [secret, target] of [
        ["offsiteSshPrivateKey", "offsiteSsh"],
        ["offsiteS3AccessKeyId", "offsiteS3"],
        ["offsiteS3SecretAccessKey", "offsiteS3"],
    ]) {
        if (read(secret) !== undefined && read(target) === undefined) {
            p.push(`${NAMESPACE}:${secret} is set but ${NAMESPACE}:${target} is not: set the target or remove the key`);
        }
    }
    if (p.length > 0) {
        throw new ConfigError(p);
    }
    return config;
}

const pgIdentifier: v.Rule<string> = (x) =>
    /^[a-z_][a-z0-9_]{0,62}$/.test(x) ? undefined : "must be a lowercase PostgreSQL identifier ([a-z_][a-z0-9_]{0,62})";

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

/** An object config value: unknown fields are reported (a typo must not silently drop a setting). */
function configObject(r: Reader, key: string, fields: readonly string[]): Record<string, unknown> | undefined {
    const value = r.json<unknown>(key);
    if (value === undefined) {
        return undefined;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        r.problems.push(`${NAMESPACE}:${key} must be an object with ${fields.join(", ")}`);
        return undefined;
    }
    for (const extra of Object.keys(value).filter((k) => !fields.includes(k))) {
        r.problems.push(`${NAMESPACE}:${key}.${extra} is not a setting (known: ${fields.join(", ")})`);
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

function parseOffsiteSsh(r: Reader): OffsiteSshConfig | undefined {
    const key = "offsiteSsh";
    const o = configObject(r, key, ["host", "port", "user", "path", "hostPublicKey"]);
    if (!o) {
        return undefined;
    }
    let port = 22;
    if (o.port !== undefined) {
        const n = typeof o.port === "number" ? o.port : /^\d+$/.test(String(o.port)) ? Number(o.port) : NaN;
        const problem = Number.isNaN(n) ? "must be an integer port between 1 and 65535" : v.port(n);
        if (problem) {
            r.problems.push(`${NAMESPACE}:${key}.port = ${JSON.stringify(o.port)} ${problem}`);
        } else {
            port = n;
        }
    }
    return {
        host: field(r, key, o, "host", v.hostName),
        port,
        user: field(r, key, o, "user", v.unixUser),
        path: field(r, key, o, "path", offsitePath),
        hostPublicKey: field(r, key, o, "hostPublicKey", v.sshPublicKey).trim(),
    };
}

function parseOffsiteS3(r: Reader, app: string): OffsiteS3Config | undefined {
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
        prefix: field(r, key, o, "prefix", s3Prefix, `${app}/`),
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

function parseImages(r: Reader): Images {
    const images = r.json<Record<string, unknown>>("images");
    const result = {} as Images;
    if (images === undefined) {
        r.problems.push(
            `${NAMESPACE}:images is required: an object with image references for ${SERVICES.join(", ")} ` +
                `(e.g. \`pulumi config set --path '${NAMESPACE}:images.bot-api' registry.example.com/bot-api:1.0.0\`)`,
        );
        return result;
    }
    for (const service of SERVICES) {
        const ref = images[service];
        if (typeof ref !== "string") {
            r.problems.push(`${NAMESPACE}:images.${service} is required: the image reference for ${service}`);
            continue;
        }
        const problem = v.imageRef(ref);
        if (problem) {
            r.problems.push(`${NAMESPACE}:images.${service} = ${JSON.stringify(ref)} ${problem}`);
        }
        result[service] = ref;
    }
    for (const extra of Object.keys(images).filter((k) => !(SERVICES as readonly string[]).includes(k))) {
        r.problems.push(`${NAMESPACE}:images.${extra} is not a service onevm runs (${SERVICES.join(", ")})`);
    }
    return result;
}
