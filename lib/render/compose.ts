/**
 * Renders the compose file of a release (seed 000's topology, seed 004's logging and
 * limits). The project name is the app name in every release, so the PostgreSQL volume
 * and the containers carry over from one release to the next.
 */
import { stringify } from "yaml";
import { Images } from "../config";

export interface ComposeOptions {
    app: string;
    releaseId: string;
    images: Images;
    /** Names (never values) of the operator's extra app environment variables. */
    appEnvKeys?: string[];
    /** Loopback port the app answers on, on the VM (internal only): bot-api's, or the proxy's when there is one. */
    apiPort?: number;
    /**
     * Host directory that holds PostgreSQL's data (a mounted DigitalOcean volume), bound
     * into the `pgdata` volume so the data outlives the droplet. Unset: a Docker-managed volume.
     */
    dataDir?: string;
    /** The ingress proxy (TLS, or on the loopback port only); absent when off: bot-api publishes the port. */
    proxy?: ProxyOptions;
}

export interface ProxyOptions {
    /** The Caddy image (onevm/caddy:2 by default, see app/images/caddy). */
    image: string;
    /** VM directory holding Caddyfile, cert.pem and key.pem (/opt/<app>/shared/tls). */
    configDir: string;
    /** TLS ingress: publish 80 and 443 on every interface. Else only the app's loopback port. */
    tls: boolean;
}

/**
 * With TLS ingress the only service published on every interface: 80 and 443. Always the
 * app's loopback port, so the address the health gate and operators use is the same. Its config directory is
 * mounted read-only (the key inside is mode 600, owned by the image's uid 480); ACME
 * state lives in the `caddy_data` volume so certificates survive releases. An app restart
 * never restarts the proxy, which holds requests meanwhile.
 */
function proxyService(p: ProxyOptions, apiPort: number) {
    return {
        image: p.image,
        logging: LOGGING,
        restart: "unless-stopped",
        // 8080: the Caddyfile's plain-HTTP site, the app's loopback address (see bot-api).
        ports: [...(p.tls ? ["0.0.0.0:80:80", "0.0.0.0:443:443"] : []), `127.0.0.1:${apiPort}:8080`],
        volumes: [`${p.configDir}:/etc/caddy:ro`, "caddy_data:/data"],
        // Started after bot-api, never restarted with it (no `restart: true`): when a release
        // adds the proxy, compose first recreates bot-api without its port, then binds it here.
        depends_on: { "bot-api": { condition: "service_started" } },
        healthcheck: {
            test: ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:2019/config/"],
            interval: "5s",
            timeout: "3s",
            retries: 5,
            start_period: "5s",
        },
        deploy: limits("256m", "0.5", "32m"),
    };
}

const LOGGING = { driver: "json-file", options: { "max-size": "10m", "max-file": "3" } };

function limits(memory: string, cpus: string, reservedMemory: string) {
    return { resources: { limits: { memory, cpus }, reservations: { memory: reservedMemory } } };
}

/**
 * Each service names only the .env keys it uses, interpolated by compose from
 * `--env-file shared/.env`: the file holds no value, and rotating one secret recreates
 * only the services that read it.
 */
function fromEnvFile(keys: string[]): Record<string, string> {
    return Object.fromEntries(keys.map((k) => [k, `\${${k}?${k} is missing from shared/.env}`]));
}

export function renderCompose(o: ComposeOptions): string {
    const common = { logging: LOGGING };
    const apiPort = o.apiPort ?? 8080;
    const doc = {
        name: o.app,
        services: {
            postgres: {
                image: o.images.postgres,
                ...common,
                restart: "unless-stopped",
                stop_signal: "SIGINT",
                stop_grace_period: "30s",
                environment: fromEnvFile(["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"]),
                volumes: ["pgdata:/var/lib/postgresql/data"],
                healthcheck: {
                    test: ["CMD-SHELL", 'pg_isready -U "$${POSTGRES_USER}" -d "$${POSTGRES_DB}" -h 127.0.0.1'],
                    interval: "2s",
                    timeout: "3s",
                    retries: 30,
                    start_period: "5s",
                },
                deploy: limits("1g", "1.0", "256m"),
            },
            redis: {
                image: o.images.redis,
                ...common,
                restart: "unless-stopped",
                healthcheck: {
                    test: ["CMD", "redis-cli", "ping"],
                    interval: "2s",
                    timeout: "3s",
                    retries: 30,
                },
                deploy: limits("256m", "0.5", "64m"),
            },
            migrate: {
                image: o.images.migrate,
                ...common,
                restart: "no",
                environment: fromEnvFile(["DATABASE_URL"]),
                depends_on: { postgres: { condition: "service_healthy" } },
                // A one-off job every activation waits for: a whole core imports its
                // Python ~0.8 s faster than half of one (measured), and it never runs for long.
                deploy: limits("256m", "1.0", "64m"),
            },
            "bot-api": {
                image: o.images["bot-api"],
                ...common,
                restart: "unless-stopped",
                environment: {
                    APP_RELEASE: o.releaseId,
                    ...fromEnvFile(["DATABASE_URL", "REDIS_URL", "TELEGRAM_BOT_TOKEN", ...(o.appEnvKeys ?? []).sort()]),
                },
                // Behind the proxy, the proxy publishes the loopback port and bot-api none:
                // a switch starts the new container beside the old one (two cannot share a port).
                ...(o.proxy ? {} : { ports: [`127.0.0.1:${apiPort}:8080`] }),
                // Not on migrate: activate.sh (and restore.sh) run the release's migrations
                // to completion before any `up`, so waiting for the migrate service again
                // would only keep the app away for a second migration run at every switch.
                depends_on: {
                    postgres: { condition: "service_healthy" },
                    redis: { condition: "service_healthy" },
                },
                healthcheck: {
                    test: [
                        "CMD",
                        "python3",
                        "-c",
                        "import sys,urllib.request;sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health',timeout=3).status==200 else 1)",
                    ],
                    interval: "2s",
                    timeout: "4s",
                    retries: 15,
                    start_period: "5s",
                    // Checked every second while it boots (Docker >= 25): the health gate
                    // and a proxied switch see it healthy up to a second sooner.
                    start_interval: "1s",
                },
                deploy: limits("512m", "0.5", "128m"),
            },
            ...(o.proxy ? { proxy: proxyService(o.proxy, apiPort) } : {}),
        },
        volumes: {
            pgdata: o.dataDir ? { driver: "local", driver_opts: { type: "none", o: "bind", device: o.dataDir } } : {},
            ...(o.proxy ? { caddy_data: {} } : {}),
        },
    };
    return `# Rendered by onevm for release ${o.releaseId}. Do not edit on the VM.\n${stringify(doc, { lineWidth: 0 })}`;
}
