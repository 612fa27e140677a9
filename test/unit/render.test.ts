import { parse } from "yaml";
import { renderCompose } from "../../lib/render/compose";
import { databaseUrl, quoteEnvValue, renderEnv, renderEnvExample } from "../../lib/render/env";
import { renderUnit, unitName } from "../../lib/render/unit";
import { cronName, renderBackupCron } from "../../lib/render/cron";
import { activateCommand, shq, switchToolsCommand, writeEnvCommand } from "../../lib/remote";

const images = { "bot-api": "onevm/bot-api:v1", migrate: "onevm/migrate:v1", postgres: "onevm/postgres:17", redis: "onevm/redis:8" };

describe("compose file", () => {
    const text = renderCompose({ app: "bot", releaseId: "v1", images, appEnvKeys: ["STRIPE_KEY"] });
    const doc = parse(text);

    test("fixed project name and seed 000's four services", () => {
        expect(doc.name).toBe("bot");
        expect(Object.keys(doc.services).sort()).toEqual(["bot-api", "migrate", "postgres", "redis"]);
        expect(doc.volumes).toEqual({ pgdata: {} });
        expect(doc.services.postgres.volumes).toEqual(["pgdata:/var/lib/postgresql/data"]);
    });

    test("only bot-api publishes, and only on loopback", () => {
        expect(doc.services["bot-api"].ports).toEqual(["127.0.0.1:8080:8080"]);
        for (const s of ["postgres", "redis", "migrate"]) {
            expect(doc.services[s].ports).toBeUndefined();
        }
    });

    test("bot-api waits for healthy postgres and redis, not for a second migrate run (activate.sh migrates first)", () => {
        expect(doc.services.migrate.restart).toBe("no");
        expect(doc.services["bot-api"].depends_on).toEqual({
            postgres: { condition: "service_healthy" },
            redis: { condition: "service_healthy" },
        });
    });

    test("each service reads only its own keys from shared/.env, and the file holds no value", () => {
        expect(doc.services.postgres.environment).toEqual({
            POSTGRES_USER: "${POSTGRES_USER?POSTGRES_USER is missing from shared/.env}",
            POSTGRES_PASSWORD: "${POSTGRES_PASSWORD?POSTGRES_PASSWORD is missing from shared/.env}",
            POSTGRES_DB: "${POSTGRES_DB?POSTGRES_DB is missing from shared/.env}",
        });
        expect(Object.keys(doc.services["bot-api"].environment)).toEqual(["APP_RELEASE", "DATABASE_URL", "REDIS_URL", "TELEGRAM_BOT_TOKEN", "STRIPE_KEY"]);
        expect(doc.services["bot-api"].environment.APP_RELEASE).toBe("v1");
        expect(doc.services.redis.environment).toBeUndefined();
    });

    test("json-file logs with rotation, limits and healthchecks on every long-running service (seed 004)", () => {
        for (const s of ["postgres", "redis", "migrate", "bot-api"]) {
            expect(doc.services[s].logging).toEqual({ driver: "json-file", options: { "max-size": "10m", "max-file": "3" } });
            expect(doc.services[s].deploy.resources.limits.memory).toMatch(/^\d+[mg]$/);
        }
        for (const s of ["postgres", "redis", "bot-api"]) {
            expect(doc.services[s].healthcheck.test.length).toBeGreaterThan(1);
        }
        // Seed 004's limits for the app and the database; the one-off migrate job gets a whole core.
        expect(doc.services["bot-api"].deploy.resources.limits).toEqual({ memory: "512m", cpus: "0.5" });
        expect(doc.services.postgres.deploy.resources.limits).toEqual({ memory: "1g", cpus: "1.0" });
        expect(doc.services.migrate.deploy.resources.limits.cpus).toBe("1.0");
        // $$ keeps compose from interpolating the container's own variables.
        expect(doc.services.postgres.healthcheck.test[1]).toContain("$${POSTGRES_USER}");
    });

    test("identical input renders identical text", () => {
        expect(renderCompose({ app: "bot", releaseId: "v1", images, appEnvKeys: ["STRIPE_KEY"] })).toBe(text);
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

    test("database URL percent-encodes the password", () => {
        expect(databaseUrl("bot", "p@ss:w/rd#?", "bot")).toBe("postgresql://bot:p%40ss%3Aw%2Frd%23%3F@postgres:5432/bot");
    });
});

test("systemd unit runs compose from current with the shared env file (seed 000)", () => {
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

    test("activation: lock-protected script with the health gate settings, then pruning", () => {
        expect(
            activateCommand({ app: "bot", releaseId: "v2", operator: "ops@team", healthRetries: 30, healthIntervalSeconds: 2, keepReleases: 5 }),
        ).toBe(
            "/opt/bot/bin/activate.sh --app-dir /opt/bot --release v2 --operator ops@team --health-retries 30 --health-interval 2 && " +
                "/opt/bot/bin/prune-releases.sh --app-dir /opt/bot --keep 5",
        );
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
