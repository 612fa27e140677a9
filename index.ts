/**
 * onevm: reads the stack config, renders what goes on the VM, and wires the components.
 * Decisions live in lib/ (pure, unit-tested); actions live in components/.
 */
import * as os from "os";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { archiveName, imageArchivePaths, releaseBundle, toolsArchive } from "./lib/artifacts";
import { sha256 } from "./lib/bundle";
import { NAMESPACE, parseConfig } from "./lib/config";
import { decideRelease, ReleaseIdReusedError } from "./lib/releaseGuard";
import { cronName, renderBackupCron } from "./lib/render/cron";
import { databaseUrl, renderEnv } from "./lib/render/env";
import { vmPaths } from "./lib/render/paths";
import { unitName, renderUnit } from "./lib/render/unit";
import { BackupCron } from "./components/backupCron";
import { ExistingHost } from "./components/existingHost";
import { HostSetup } from "./components/hostSetup";
import { Release } from "./components/release";
import { SecretsFile } from "./components/secretsFile";
import { SystemdUnit } from "./components/systemdUnit";
import { TlsIngress } from "./components/tlsIngress";

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
    proxy: cfg.tls ? { image: cfg.tls.proxyImage, configDir: vmPaths(cfg.app).tls } : undefined,
});
// Every image the release runs, the proxy's included (archive transport uploads each).
const allImages: Record<string, string> = cfg.tls ? { ...cfg.images, proxy: cfg.tls.proxyImage } : cfg.images;

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
            if (d.notice) {
                pulumi.log.warn(d.notice);
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
const tools = toolsArchive();
const setup = new HostSetup("host", {
    connection: vm.connection,
    app: cfg.app,
    user: cfg.host.user,
    toolsArchive: tools.base64,
    toolsHash: tools.hash,
    unitName: unit,
    cronName: cron,
});

const secrets = new SecretsFile("secrets", { connection: vm.connection, app: cfg.app, envText }, { dependsOn: [setup.ready] });

// The proxy's files must be on the VM before a release with the proxy starts.
const tlsIngress = cfg.tls
    ? new TlsIngress(
          "tls",
          { connection: vm.connection, app: cfg.app, mode: cfg.tls.mode, address: cfg.host.address, domain: cfg.tls.domain, email: cfg.tls.email },
          { dependsOn: [setup.ready] },
      )
    : undefined;

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
        imageArchives: cfg.imageTransport === "archive" ? imageArchivePaths(allImages, cfg.imageArchiveDir) : [],
        envHash: envText.apply(sha256),
    },
    { dependsOn: [setup.ready, secrets.written, ...(tlsIngress ? [tlsIngress.installed] : [])] },
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

export const releaseId = cfg.releaseId;
// "" until a second release has been deployed (an undefined output would be dropped with a warning).
export const previousReleaseId = decision.apply((d) => d.previousReleaseId ?? "");
export const releases = decision.releases;
export const releaseContentHash = bundle.hash;
export const images = cfg.images;
export const imageArchives = cfg.imageTransport === "archive" ? [...new Set(Object.values(allImages))].map(archiveName) : [];
export const sshCommand = `ssh -p ${cfg.host.port} ${cfg.host.user}@${cfg.host.address}`;
export const healthCheck = `${sshCommand} curl -fsS http://127.0.0.1:8080/health`;
// TLS ingress: the CA certificate clients trust (certificate mode; "" otherwise) and the public URL.
export const tlsCaCertificate = tlsIngress ? tlsIngress.caCertPem : "";
export const httpsUrl = cfg.tls ? `https://${cfg.tls.domain ?? cfg.host.address}/` : "";
