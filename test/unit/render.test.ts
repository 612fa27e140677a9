import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { describeApp, parseCompose } from "../../lib/app";
import { parseConfig } from "../../lib/config";
import { renderCompose } from "../../lib/render/compose";
import { databaseUrl, quoteEnvValue, renderAppEnv, renderEnv, renderEnvExample } from "../../lib/render/env";
import { renderUnit, unitName } from "../../lib/render/unit";
import { cronName, renderBackupCron } from "../../lib/render/cron";
import { renderRelease } from "../../lib/release";
import { activateCommand, installReleaseCommand, setDbPasswordCommand, shq, switchToolsCommand, writeEnvCommand } from "../../lib/remote";
import { COMPOSE_FILE, SHOP_SECRET_KEYS, shopConfig } from "./shopConfig";

const dir = path.resolve(__dirname, "fixtures", "shop");
const userText = fs.readFileSync(path.join(dir, "compose.yaml"), "utf8");

function model(overrides: Record<string, string | undefined> = {}, text = userText) {
    const values = shopConfig(overrides);
    const cfg = parseConfig((k) => values[k], { isSecret: (k) => SHOP_SECRET_KEYS.includes(k) });
    const m = describeApp(cfg, { file: COMPOSE_FILE, doc: parseCompose(text, COMPOSE_FILE).doc! }, (rel) => fs.readFileSync(path.join(dir, rel), "utf8"));
    return { cfg, model: m };
}

const proxy = { image: "caddy:2.10.2", configDir: "/opt/shop/shared/tls", tls: false };
const options = { releaseId: "v1", logMaxSize: "10m", logMaxFiles: 3, defaultLimits: { memory: "512m", cpus: "1.0" }, limits: {} };

describe("compose file: the user's file with onevm's contract", () => {
    const text = renderCompose({ ...options, model: model().model, proxy });
    const doc = parse(text);
    const s = doc.services;

    test("project name, no build sections, the release's images; services behind a profile stay out", () => {
        expect(text.startsWith("# Rendered by onevm for shop release v1 from your Compose file. Do not edit on the VM.\n")).toBe(true);
        expect(doc.name).toBe("shop");
        expect(Object.keys(s)).toEqual(["api", "migrate", "worker", "postgres", "nginx", "onevm-proxy"]);
        expect(s.api.build).toBeUndefined();
        expect(s.api.image).toBe("registry.example.com/shop/api:v1");
        expect(s.worker.image).toBe("registry.example.com/shop/worker:1.4.0");
    });

    test("restart policy, log rotation and limits where the file sets none; the file's own win", () => {
        expect(s.api.restart).toBe("unless-stopped");
        expect(s.migrate.restart).toBe("no");
        expect(s.api.logging).toEqual({ driver: "json-file", options: { "max-size": "10m", "max-file": "3" } });
        expect(s.worker.logging).toEqual({ driver: "json-file", options: { "max-size": "1m" } });
        expect(s.api.deploy).toEqual({ resources: { limits: { memory: "512m", cpus: "1.0" } } });
        expect(s.worker.deploy).toEqual({ resources: { limits: { memory: "128m" } } });
    });

    test("the stack's per-service limits win over the file's and the defaults", () => {
        const t = parse(renderCompose({ ...options, model: model().model, proxy, limits: { worker: { cpus: "0.25" }, postgres: { memory: "1g" } } })).services;
        expect(t.worker.deploy.resources.limits).toEqual({ memory: "128m", cpus: "0.25" });
        expect(t.postgres.deploy.resources.limits).toEqual({ memory: "1g", cpus: "1.0" });
    });

    test("published ports move to the VM's loopback; the web service publishes none behind the proxy", () => {
        expect(s.postgres.ports).toEqual(["127.0.0.1:5432:5432"]);
        expect(s.api.ports).toBeUndefined();
        expect(s["onevm-proxy"].ports).toEqual(["127.0.0.1:8080:8080"]);
    });

    test("without the proxy the web service publishes its port on the loopback hostPort, its other ports on loopback", () => {
        const t = parse(renderCompose({ ...options, model: model().model })).services;
        expect(t.api.ports).toEqual(["127.0.0.1:9100:9100", "127.0.0.1:8080:8000"]);
        expect(t["onevm-proxy"]).toBeUndefined();
    });

    test("bind sources relative to the Compose file point into the release's directory; named volumes stay", () => {
        // compose resolves relative sources against its project directory: the unit runs it
        // in current/, the activation in releases/<id>; only absolute sources hash the same.
        expect(s.nginx.volumes).toEqual(["/opt/shop/releases/v1/nginx/default.conf:/etc/nginx/conf.d/default.conf:ro"]);
        expect(s.postgres.volumes).toEqual(["pgdata:/var/lib/postgresql/data"]);
        const long = model().model;
        long.compose.services.nginx.volumes = [{ type: "bind", source: "./nginx/./default.conf", target: "/etc/nginx/conf.d/default.conf", read_only: true }];
        expect(parse(renderCompose({ ...options, model: long })).services.nginx.volumes).toEqual([
            { type: "bind", source: "/opt/shop/releases/v1/nginx/default.conf", target: "/etc/nginx/conf.d/default.conf", read_only: true },
        ]);
    });

    test("env: each service names the keys it reads from shared/.env, never a value", () => {
        const fromEnv = (k: string) => `\${${k}?${k} is missing from shared/.env}`;
        expect(s.api.environment).toEqual({ DATABASE_URL: fromEnv("DATABASE_URL"), LOG_LEVEL: "info", STRIPE_KEY: fromEnv("STRIPE_KEY") });
        expect(s.migrate.environment).toEqual({ DATABASE_URL: fromEnv("DATABASE_URL") });
        expect(s.postgres.environment).toEqual({ POSTGRES_DB: fromEnv("POSTGRES_DB"), POSTGRES_PASSWORD: fromEnv("POSTGRES_PASSWORD"), POSTGRES_USER: fromEnv("POSTGRES_USER") });
        expect(s.worker.environment).toEqual({ QUEUE: "default" });
    });

    test("role labels; no service waits for the migrate service (activation runs it first)", () => {
        expect(s.api.labels).toEqual({ "onevm.app": "shop", "onevm.role": "web" });
        expect(s.migrate.labels).toEqual({ "onevm.app": "shop", "onevm.role": "migrate" });
        expect(s.postgres.labels).toEqual({ "onevm.app": "shop", "onevm.role": "database" });
        expect(s.worker.labels).toEqual({ "onevm.app": "shop" });
        expect(s.api.depends_on).toEqual({ postgres: { condition: "service_healthy" } });
    });

    test("the proxy: official image's tools only, the web service's upstream config dir, never restarted with the app", () => {
        expect(s["onevm-proxy"]).toMatchObject({
            image: "caddy:2.10.2",
            restart: "unless-stopped",
            volumes: ["/opt/shop/shared/tls:/etc/caddy:ro", "onevm-caddy-data:/data"],
            healthcheck: { test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:2019/config/"] },
            labels: { "onevm.app": "shop", "onevm.role": "proxy" },
        });
        // compose recreates whatever depends_on a service it recreates: the proxy depends on none.
        expect(s["onevm-proxy"].depends_on).toBeUndefined();
        expect(doc.volumes).toEqual({ pgdata: {}, "onevm-caddy-data": {} });
        const tls = parse(renderCompose({ ...options, model: model().model, proxy: { ...proxy, tls: true } })).services["onevm-proxy"];
        expect(tls.ports).toEqual(["0.0.0.0:80:80", "0.0.0.0:443:443", "127.0.0.1:8080:8080"]);
    });

    test("on a droplet the database's volumes are bound under the data volume's mount", () => {
        const t = parse(renderCompose({ ...options, model: model().model, proxy, dataDir: "/mnt/shop-data" }));
        expect(t.volumes.pgdata).toEqual({ driver: "local", driver_opts: { type: "none", o: "bind", device: "/mnt/shop-data/pgdata" } });
    });

    test("an app without HTTP: no proxy, no web role", () => {
        const m = model({ "onevm:web": undefined }).model;
        const t = parse(renderCompose({ ...options, model: m, proxy })).services;
        expect(t["onevm-proxy"]).toBeUndefined();
        expect(t.api.ports).toEqual(["127.0.0.1:8000:8000", "127.0.0.1:9100:9100"]);
    });

    test("identical input renders identical text", () => {
        expect(renderCompose({ ...options, model: model().model, proxy })).toBe(text);
    });
});

describe("release bundle", () => {
    const { model: m } = model();
    const release = renderRelease({ ...options, model: m, user: "deploy", proxy, settings: { healthRetries: 30, healthIntervalSeconds: 2, backupKeep: 7, backupMinFreeMb: 512 } });
    const file = (p: string) => release.files.find((f) => f.path === p)!.content;

    test("compose.yaml, .env.example (keys only), the unit, the bound files and release.json", () => {
        expect(release.files.map((f) => f.path).sort()).toEqual([".env.example", "compose.yaml", "nginx/default.conf", "release.json", "systemd/shop.service"]);
        expect(file(".env.example")).toMatch(/\nDATABASE_URL=\nPOSTGRES_DB=\nPOSTGRES_PASSWORD=\nPOSTGRES_USER=\nSTRIPE_KEY=\n$/);
    });

    test("release.json: identity, images, roles and the settings the VM scripts default to", () => {
        expect(JSON.parse(file("release.json"))).toEqual({
            release_id: "v1",
            app: "shop",
            release_hash: m.releaseHash,
            content_hash: release.contentHash,
            images: { ...m.images, "onevm-proxy": "caddy:2.10.2" },
            services: ["api", "migrate", "worker", "postgres", "nginx", "onevm-proxy"],
            web: { service: "api", port: 8000, host_port: 8080, checks: [{ path: "/healthz", status: 200, json: { status: "ok" }, contains: [] }] },
            migrate: "migrate",
            database: { service: "postgres", user: "app", name: "app" },
            proxy: { service: "onevm-proxy", listen_port: 8080 },
            settings: { health_retries: 30, health_interval: 2, backup_keep: 7, backup_min_free_mb: 512 },
        });
    });

    test("host configuration changes the rendering, not the identity", () => {
        const other = renderRelease({ ...options, model: m, user: "deploy", settings: { healthRetries: 30, healthIntervalSeconds: 2, backupKeep: 7, backupMinFreeMb: 512 } });
        expect(other.releaseHash).toBe(release.releaseHash);
        expect(other.contentHash).not.toBe(release.contentHash);
    });
});

describe(".env", () => {
    test("values are single-quoted literals unless they hold a quote", () => {
        expect(quoteEnvValue("p$a#s s=\\w\nx")).toBe("'p$a#s s=\\w\nx'");
        expect(quoteEnvValue(`it's "$HOME"\\n`)).toBe(`"it's \\"\\$HOME\\"\\\\n"`);
        expect(() => quoteEnvValue("it's\\")).toThrow(/cannot also end with a backslash/);
    });

    test("sorted KEY=value lines; keys checked", () => {
        expect(renderEnv({ B: "2", A: "1" })).toBe("# Managed by onevm (pulumi up). Manual edits are overwritten.\nA='1'\nB='2'\n");
        expect(() => renderEnv({ "bad-key": "x" })).toThrow(/environment key "bad-key" must be/);
        expect(renderEnvExample(["B", "A"])).toMatch(/\nA=\nB=\n$/);
    });

    test("database URL percent-encodes the password; scheme and query as configured", () => {
        expect(databaseUrl("bot", "p@ss:w/rd#?", "bot", "db")).toBe("postgresql://bot:p%40ss%3Aw%2Frd%23%3F@db:5432/bot");
        expect(databaseUrl("bot", "pw", "bot", "db", 5432, "postgres", "sslmode=disable")).toBe("postgres://bot:pw@db:5432/bot?sslmode=disable");
    });

    test("an app's .env: its secrets and the database's credentials and URL", () => {
        const role = { service: "postgres", user: "shop", name: "shop_db", clients: [], urlKey: "DB_URL", urlScheme: "postgresql+psycopg", urlQuery: "" };
        expect(renderAppEnv({ STRIPE_KEY: "sk" }, { role, password: "pw" })).toBe(
            "# Managed by onevm (pulumi up). Manual edits are overwritten.\n" +
                "DB_URL='postgresql+psycopg://shop:pw@postgres:5432/shop_db'\nPOSTGRES_DB='shop_db'\nPOSTGRES_PASSWORD='pw'\nPOSTGRES_USER='shop'\nSTRIPE_KEY='sk'\n",
        );
        expect(renderAppEnv({ TOKEN: "t" }, undefined)).toBe("# Managed by onevm (pulumi up). Manual edits are overwritten.\nTOKEN='t'\n");
    });
});

test("systemd unit runs compose from current with the shared env file", () => {
    const unit = renderUnit("bot", "deploy");
    expect(unitName("bot")).toBe("bot.service");
    expect(unit).toContain("Requires=docker.service");
    expect(unit).toContain("Type=oneshot\nUser=deploy\nWorkingDirectory=/opt/bot/current\nRemainAfterExit=yes");
    expect(unit).toContain(
        "ExecStart=/usr/bin/docker compose --project-name bot --project-directory /opt/bot/current --file /opt/bot/current/compose.yaml --env-file /opt/bot/shared/.env up -d --remove-orphans",
    );
    expect(unit).toContain("WantedBy=multi-user.target");
});

test("backup cron line: schedule, user, script and its arguments", () => {
    const text = renderBackupCron({ app: "bot", user: "deploy", schedule: " 0  */6 * * * ", keep: 7, minFreeMb: 2048 });
    expect(cronName("bot")).toBe("onevm-bot-backup");
    expect(text.split("\n")).toContain(
        "0 */6 * * * deploy /opt/bot/bin/backup.sh --app-dir /opt/bot --type scheduled --keep 7 --min-free-mb 2048 >/dev/null 2>&1",
    );
    expect(() => renderBackupCron({ app: "bot", user: "deploy", schedule: "0 3 * *", keep: 7, minFreeMb: 1 })).toThrow(/five fields/);
});

describe("remote command lines", () => {
    test("quote words for sh", () => {
        expect(shq("v1.2-rc_3")).toBe("v1.2-rc_3");
        expect(shq("a b'c")).toBe(`'a b'\\''c'`);
    });

    test("activation: lock-protected script with the health gate and backup settings, then pruning", () => {
        expect(
            activateCommand({ app: "bot", releaseId: "v2", operator: "ops@team", healthRetries: 30, healthIntervalSeconds: 2, backupMinFreeMb: 100, keepReleases: 5 }),
        ).toBe(
            "/opt/bot/bin/activate.sh --app-dir /opt/bot --release v2 --operator ops@team --health-retries 30 --health-interval 2 --backup-min-free-mb 100 && " +
                "/opt/bot/bin/prune-releases.sh --app-dir /opt/bot --keep 5",
        );
    });

    test("install a release with both hashes; set the database password in the named service", () => {
        expect(installReleaseCommand("bot", "v2", "c0ffee", "beef")).toBe("/opt/bot/bin/install-release.sh --app-dir /opt/bot --id v2 --hash c0ffee --release-hash beef");
        expect(setDbPasswordCommand("bot", "db")).toBe("/opt/bot/bin/set-db-password.sh --app-dir /opt/bot --service db");
    });

    test("secrets never ride on a command line: .env goes through stdin", () => {
        expect(writeEnvCommand("bot")).toBe("/opt/bot/bin/write-env.sh --app-dir /opt/bot");
    });

    test("tools: the uploaded content-addressed dir's scripts made executable (sftp sets no mode), then bin switches atomically", () => {
        expect(switchToolsCommand("bot", "abc123")).toBe(
            "find /opt/bot/tools/abc123 -type f -name '*.sh' -exec chmod 0755 {} + && " +
                "ln -sfn tools/abc123 /opt/bot/.bin.tmp && mv -T /opt/bot/.bin.tmp /opt/bot/bin && " +
                "find /opt/bot/tools -mindepth 1 -maxdepth 1 ! -name abc123 -exec rm -rf {} +",
        );
    });
});
