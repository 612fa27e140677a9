/**
 * onevm: reads the stack config, renders what goes on the VM, and wires the components.
 * Decisions live in lib/ (pure, unit-tested); actions live in components/.
 */
import * as os from "os";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { archiveName, imageArchivePaths, releaseBundle, REMOTE_SCRIPTS_DIR, toolsHash } from "./lib/artifacts";
import { sha256 } from "./lib/bundle";
import { NAMESPACE, parseConfig } from "./lib/config";
import { decideRelease, ReleaseIdReusedError } from "./lib/releaseGuard";
import { alterRolePasswordSql, scramSha256Verifier } from "./lib/scram";
import { cronName, renderBackupCron } from "./lib/render/cron";
import { databaseUrl, renderEnv } from "./lib/render/env";
import { unitName, renderUnit } from "./lib/render/unit";
import { BackupCron } from "./components/backupCron";
import { ExistingHost } from "./components/existingHost";
import { HostSetup } from "./components/hostSetup";
import { Release } from "./components/release";
import { SecretsFile } from "./components/secretsFile";
import { SystemdUnit } from "./components/systemdUnit";

// Raw values, secrets included, are read synchronously so every rule is checked before
// any resource is registered; secret values are re-wrapped with pulumi.secret below.
const cfg = parseConfig((key) => pulumi.runtime.getConfig(`${NAMESPACE}:${key}`), {
    operator: os.userInfo().username,
});
if (cfg.target !== "existing" || !cfg.host) {
    throw new Error(`${NAMESPACE}:target ${cfg.target} is not supported by this program yet`);
}

const appEnvKeys = Object.keys(cfg.secrets.appEnv);
const envKeys = ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "DATABASE_URL", "REDIS_URL", "TELEGRAM_BOT_TOKEN", ...appEnvKeys];
const bundle = releaseBundle({
    app: cfg.app,
    user: cfg.host.user,
    releaseId: cfg.releaseId,
    images: cfg.images,
    envKeys,
    appEnvKeys,
});

// This stack's own previous outputs tell whether this is a new release, a re-run or a
// rollback, and which content each release ID had. A refusal here stops every remote
// command, because they all reach the VM through the gated address below.
const self = new pulumi.StackReference("self", {
    name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
});
const decision = pulumi
    .all([self.getOutput("releaseId"), self.getOutput("previousReleaseId"), self.getOutput("releases")])
    .apply(([releaseId, previousReleaseId, releases]) => {
        try {
            const d = decideRelease({ releaseId, previousReleaseId, releases }, cfg.releaseId, bundle.hash);
            if (d.kind === "rollback") {
                pulumi.log.warn(d.notice!);
            } else if (d.notice) {
                pulumi.log.info(d.notice);
            }
            return d;
        } catch (e) {
            throw e instanceof ReleaseIdReusedError ? new pulumi.RunError(e.message) : e;
        }
    });

const vm = new ExistingHost("vm", {
    address: decision.apply(() => cfg.host!.address),
    port: cfg.host.port,
    user: cfg.host.user,
    privateKey: pulumi.secret(cfg.secrets.sshPrivateKey ?? ""),
    hostPublicKey: cfg.host.hostPublicKey,
});

const dbPassword = new random.RandomPassword("db-password", {
    length: 32,
    special: false,
    keepers: { version: String(cfg.dbPasswordVersion) },
});

const envText = pulumi.secret(
    dbPassword.result.apply((password) =>
        renderEnv({
            POSTGRES_USER: cfg.postgresUser,
            POSTGRES_PASSWORD: password,
            POSTGRES_DB: cfg.postgresDb,
            DATABASE_URL: databaseUrl(cfg.postgresUser, password, cfg.postgresDb),
            REDIS_URL: "redis://redis:6379/0",
            TELEGRAM_BOT_TOKEN: cfg.secrets.telegramBotToken,
            ...cfg.secrets.appEnv,
        }),
    ),
);
const unit = unitName(cfg.app);
const cron = cronName(cfg.app);
const setup = new HostSetup("host", {
    connection: vm.connection,
    app: cfg.app,
    user: cfg.host.user,
    toolsSourceDir: REMOTE_SCRIPTS_DIR,
    toolsHash: toolsHash(),
    unitName: unit,
    cronName: cron,
});

const secrets = new SecretsFile(
    "secrets",
    {
        connection: vm.connection,
        app: cfg.app,
        envText,
        dbPasswordSql: pulumi.secret(
            dbPassword.result.apply((pw) => alterRolePasswordSql(cfg.postgresUser, scramSha256Verifier(pw, cfg.app))),
        ),
    },
    { dependsOn: [setup.ready] },
);

const release = new Release(
    "release",
    {
        connection: vm.connection,
        activation: {
            app: cfg.app,
            releaseId: cfg.releaseId,
            operator: cfg.operator,
            healthRetries: cfg.healthRetries,
            healthIntervalSeconds: cfg.healthIntervalSeconds,
            keepReleases: cfg.keepReleases,
        },
        composeText: bundle.composeText,
        bundle: bundle.base64,
        bundleHash: bundle.hash,
        imageArchives: cfg.imageTransport === "archive" ? imageArchivePaths(cfg.images, cfg.imageArchiveDir) : [],
        envHash: envText.apply(sha256),
    },
    { dependsOn: [setup.ready, secrets.written] },
);

new SystemdUnit(
    "unit",
    { connection: vm.connection, app: cfg.app, unitName: unit, unitText: renderUnit(cfg.app, cfg.host.user) },
    { dependsOn: [release] },
);

new BackupCron(
    "backup",
    {
        connection: vm.connection,
        app: cfg.app,
        cronName: cron,
        cronText: renderBackupCron({
            app: cfg.app,
            user: cfg.host.user,
            schedule: cfg.backupSchedule,
            keep: cfg.backupKeep,
            minFreeMb: cfg.backupMinFreeMb,
        }),
    },
    { dependsOn: [setup.ready] },
);

// Recorded only once the activation succeeded: after a failed release the stack keeps
// naming the release the VM is really on, which the next deploy's decision starts from.
const activated = pulumi.all([release.activation.id, decision]);
export const releaseId = activated.apply(() => cfg.releaseId);
// "" until a second release has been deployed (an undefined output would be dropped with a warning).
export const previousReleaseId = activated.apply(([, d]) => d.previousReleaseId ?? "");
export const releases = activated.apply(([, d]) => d.releases);
export const releaseContentHash = activated.apply(() => bundle.hash);
export const images = cfg.images;
export const imageArchives = cfg.imageTransport === "archive" ? [...new Set(Object.values(cfg.images))].map(archiveName) : [];
export const sshCommand = `ssh -p ${cfg.host.port} ${cfg.host.user}@${cfg.host.address}`;
export const healthCheck = `${sshCommand} curl -fsS http://127.0.0.1:8080/health`;
