/**
 * Renders the compose file of a release: the user's Compose document with onevm's
 * contract added (docs/app-model.md): the project name, images, loopback-only ports,
 * restart policy, log rotation, limits, env from shared/.env, role labels, and the proxy
 * in front of the web service. The user's own settings win where onevm only has a
 * default; the stack config's limits win over both.
 */
import { stringify } from "yaml";
import { AppModel, bindUnder, ComposeService, environmentMap, PROXY_SERVICE } from "../app";
import { DATABASE_ENV_KEYS, Limits } from "../config";
import { PROXY_LISTEN_PORT } from "./caddyfile";
import { vmPaths } from "./paths";

export interface ComposeOptions {
    model: AppModel;
    releaseId: string;
    logMaxSize: string;
    logMaxFiles: number;
    defaultLimits: Limits;
    limits: Record<string, Limits>;
    /** The proxy in front of the web service (TLS, or the loopback port only); absent when off. */
    proxy?: ProxyOptions;
    /**
     * Host directory under which the database service's named volumes are bound (a mounted
     * DigitalOcean volume), so its data outlives the droplet. Unset: Docker-managed volumes.
     */
    dataDir?: string;
}

export interface ProxyOptions {
    image: string;
    /** VM directory holding Caddyfile (and cert.pem, key.pem with TLS), mounted at /etc/caddy. */
    configDir: string;
    /** TLS ingress: publish 80 and 443 on every interface. Else only the loopback port. */
    tls: boolean;
}

/** The volume that keeps the proxy's ACME state across releases. */
export const PROXY_DATA_VOLUME = "onevm-caddy-data";
export const LABEL_APP = "onevm.app";
export const LABEL_ROLE = "onevm.role";

const LOOPBACK = "127.0.0.1";

/** The database service's named volumes (bound to the data dir on a droplet). */
export function databaseVolumes(model: AppModel): string[] {
    const db = model.database && model.compose.services[model.database.service];
    const named = (db?.volumes ?? [])
        .map((vol) => (typeof vol === "object" && vol !== null ? (vol as Record<string, unknown>) : parseShortVolume(String(vol))))
        .filter((vol) => vol.type === "volume" || (vol.type === undefined && typeof vol.source === "string" && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(String(vol.source))))
        .map((vol) => String(vol.source));
    return [...new Set(named)].sort();
}

function parseShortVolume(s: string): Record<string, unknown> {
    const i = s.indexOf(":");
    return i > 0 ? { source: s.slice(0, i) } : {};
}

export function renderCompose(o: ComposeOptions): string {
    const { model } = o;
    const services: Record<string, ComposeService> = {};
    for (const [name, svc] of Object.entries(model.compose.services)) {
        services[name] = renderService(o, name, svc);
    }
    if (model.web && o.proxy) {
        services[PROXY_SERVICE] = proxyService(o, o.proxy, model.web.service, model.web.hostPort);
    }
    const { version: _obsolete, name: _name, services: _services, ...topLevel } = model.compose;
    const volumes: Record<string, unknown> = { ...((topLevel.volumes as Record<string, unknown>) ?? {}) };
    if (o.dataDir) {
        for (const vol of databaseVolumes(model)) {
            volumes[vol] = { driver: "local", driver_opts: { type: "none", o: "bind", device: `${o.dataDir}/${vol}` } };
        }
    }
    if (model.web && o.proxy) {
        volumes[PROXY_DATA_VOLUME] = {};
    }
    const doc = {
        name: model.app,
        ...topLevel,
        services,
        ...(Object.keys(volumes).length > 0 ? { volumes } : {}),
    };
    return `# Rendered by onevm for ${model.app} release ${o.releaseId} from your Compose file. Do not edit on the VM.\n${stringify(doc, { lineWidth: 0 })}`;
}

function renderService(o: ComposeOptions, name: string, user: ComposeService): ComposeService {
    const { model } = o;
    const { build: _build, ...svc } = structuredClone(user);
    const isMigrate = model.migrate === name;
    const isWeb = model.web?.service === name;
    svc.image = model.images[name];
    if (isMigrate) {
        svc.restart = "no";
    } else if (svc.restart === undefined) {
        svc.restart = "unless-stopped";
    }
    if (svc.logging === undefined) {
        svc.logging = { driver: "json-file", options: { "max-size": o.logMaxSize, "max-file": String(o.logMaxFiles) } };
    }
    applyLimits(svc, o.defaultLimits, o.limits[name]);
    // Relative bind sources made absolute (the release's own directory): compose resolves
    // them against its project directory, so the unit and an operator, who run compose in
    // current/, would see another config than the activation did and recreate the service.
    if (svc.volumes) {
        const releaseDir = `${vmPaths(model.app).releases}/${o.releaseId}`;
        svc.volumes = svc.volumes.map((vol) => bindUnder(vol, releaseDir));
    }

    const ports = (svc.ports ?? []).map(onLoopback);
    if (isWeb && o.proxy) {
        // Behind the proxy the web service publishes nothing: a switch starts its new
        // container beside the old one, and two containers cannot share a host port.
        delete svc.ports;
    } else if (isWeb) {
        const web = model.web!;
        svc.ports = [...ports.filter((p) => targetPort(p) !== web.port), `${LOOPBACK}:${web.hostPort}:${web.port}`];
    } else if (ports.length > 0) {
        svc.ports = ports;
    }

    const env = environmentMap(svc.environment);
    for (const key of providedKeys(o, name)) {
        env[key] = `\${${key}?${key} is missing from shared/.env}`;
    }
    if (Object.keys(env).length > 0) {
        svc.environment = sortedObject(env);
    }

    const labels = labelMap(svc.labels);
    labels[LABEL_APP] = model.app;
    const roles = [isWeb && "web", isMigrate && "migrate", model.database?.service === name && "database"].filter(Boolean);
    if (roles.length > 0) {
        labels[LABEL_ROLE] = roles.join(",");
    }
    svc.labels = sortedObject(labels);

    // Every activation runs the migrate service to its exit before starting the others:
    // waiting on it here would start it once more with each of them.
    if (model.migrate && svc.depends_on !== undefined) {
        svc.depends_on = withoutDependency(svc.depends_on, model.migrate);
        if (Object.keys(svc.depends_on).length === 0) delete svc.depends_on;
    }
    return svc;
}

/** The keys a service gets from shared/.env: its secrets and, by role, the database's. */
function providedKeys(o: ComposeOptions, name: string): string[] {
    const { model } = o;
    const keys = Object.entries(model.secrets)
        .filter(([, readers]) => readers.includes(name))
        .map(([k]) => k);
    if (model.database?.service === name) keys.push(...DATABASE_ENV_KEYS);
    if (model.database?.clients.includes(name)) keys.push(model.database.urlKey);
    return keys.sort();
}

/** deploy.resources.limits: the stack's per-service limits over the file's own, else the defaults. */
function applyLimits(svc: ComposeService, defaults: Limits, override: Limits | undefined): void {
    const deploy = (svc.deploy ?? {}) as Record<string, unknown>;
    const resources = (deploy.resources ?? {}) as Record<string, unknown>;
    const own = resources.limits as Limits | undefined;
    // mem_limit / cpus on the service itself are the file's own limits too.
    const legacy = svc.mem_limit !== undefined || svc.cpus !== undefined;
    const base: Limits = own ?? (legacy ? {} : defaults);
    const limits = { ...base, ...(override ?? {}) };
    if (Object.keys(limits).length === 0) return;
    if (legacy && override) {
        // One place only: compose refuses mem_limit beside deploy.resources.limits.memory.
        delete svc.mem_limit;
        delete svc.cpus;
    }
    svc.deploy = { ...deploy, resources: { ...resources, limits } };
}

/** A ports entry bound to the loopback address (the user's file may give none). */
function onLoopback(port: unknown): unknown {
    if (typeof port === "object" && port !== null) {
        return { ...(port as Record<string, unknown>), host_ip: LOOPBACK };
    }
    const s = String(port);
    const parts = s.split(":");
    if (parts.length === 1) {
        // "8080": a random host port; keep it on loopback.
        return `${LOOPBACK}::${s}`;
    }
    if (parts.length === 2) return `${LOOPBACK}:${s}`;
    return `${LOOPBACK}:${parts.slice(-2).join(":")}`;
}

function targetPort(port: unknown): number | undefined {
    if (typeof port === "object" && port !== null) return Number((port as Record<string, unknown>).target);
    const last = String(port).split(":").pop()!.replace(/\/(tcp|udp)$/, "");
    return /^\d+$/.test(last) ? Number(last) : undefined;
}

function labelMap(labels: ComposeService["labels"]): Record<string, unknown> {
    if (Array.isArray(labels)) {
        return Object.fromEntries(
            labels.map((l) => {
                const s = String(l);
                const i = s.indexOf("=");
                return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + 1)];
            }),
        );
    }
    return { ...(labels ?? {}) };
}

function withoutDependency(deps: Record<string, unknown> | string[], name: string): Record<string, unknown> {
    const map = Array.isArray(deps) ? Object.fromEntries(deps.map((d) => [d, { condition: "service_started" }])) : { ...deps };
    delete map[name];
    return map;
}

function sortedObject(o: Record<string, unknown>): Record<string, unknown> {
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
}

/**
 * The proxy (Caddy): with TLS ingress the only service published on every interface (80
 * and 443), and always the app's loopback port. It joins the web service's networks,
 * mounts its config directory read-only and keeps ACME state in a volume. It depends_on
 * nothing: compose recreates whatever depends_on a service it recreates, and the proxy
 * must stay up while the app changes (it finds the web service by name per request).
 * Only tools of the official image are used: the healthcheck is busybox wget.
 */
function proxyService(o: ComposeOptions, p: ProxyOptions, web: string, hostPort: number): ComposeService {
    const webNetworks = o.model.compose.services[web].networks;
    const networks = webNetworks === undefined ? undefined : Array.isArray(webNetworks) ? [...webNetworks] : Object.keys(webNetworks);
    return {
        image: p.image,
        restart: "unless-stopped",
        logging: { driver: "json-file", options: { "max-size": o.logMaxSize, "max-file": String(o.logMaxFiles) } },
        ports: [...(p.tls ? ["0.0.0.0:80:80", "0.0.0.0:443:443"] : []), `${LOOPBACK}:${hostPort}:${PROXY_LISTEN_PORT}`],
        volumes: [`${p.configDir}:/etc/caddy:ro`, `${PROXY_DATA_VOLUME}:/data`],
        ...(networks ? { networks } : {}),
        healthcheck: {
            test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:2019/config/"],
            interval: "5s",
            timeout: "3s",
            retries: 5,
            start_period: "5s",
        },
        labels: { [LABEL_APP]: o.model.app, [LABEL_ROLE]: "proxy" },
        deploy: { resources: { limits: { memory: "256m", cpus: "0.5" } } },
    };
}
