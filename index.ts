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
import { stopWithError } from "./lib/stop";
import { alterRolePasswordSql, scramSha256Verifier } from "./lib/scram";
import { cronName, renderBackupCron } from "./lib/render/cron";
import { databaseUrl, renderEnv } from "./lib/render/env";
import { vmPaths } from "./lib/render/paths";
import { unitName, renderUnit } from "./lib/render/unit";
import { checkPolicy, PolicyError } from "./lib/policy";
import { stackIdentity } from "./lib/remote";
import { pgDataDir } from "./lib/render/cloudInit";
import { firewallRules } from "./lib/render/firewall";
import { renderOffsiteFiles } from "./lib/render/offsite";
import { BackupCron } from "./components/backupCron";
import { VmConnection } from "./components/connection";
import { DigitalOceanVm } from "./components/droplet";
import { CloudFirewall } from "./components/firewall";
import { ExistingHost } from "./components/existingHost";
import { HostSetup } from "./components/hostSetup";
import { verifiedHostKey } from "./components/hostKeyPreflight";
import { OffsiteTargets } from "./components/offsiteTargets";
import { Release } from "./components/release";
import { SecretsFile } from "./components/secretsFile";
import { SystemdUnit } from "./components/systemdUnit";
import { TlsIngress } from "./components/tlsIngress";

// Raw values, secrets included, are read synchronously so every rule is checked before
// any resource is registered; secret values are re-wrapped with pulumi.secret below.
const cfg = parseConfig((key) => pulumi.runtime.getConfig(`${NAMESPACE}:${key}`), {
    operator: os.userInfo().username,
});
const user = cfg.host?.user ?? cfg.digitalocean!.user;
const droplet = cfg.digitalocean;

const appEnvKeys = Object.keys(cfg.secrets.appEnv);
const envKeys = ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "DATABASE_URL", "REDIS_URL", "TELEGRAM_BOT_TOKEN", ...appEnvKeys];
const bundle = releaseBundle({
    app: cfg.app,
    user,
    releaseId: cfg.releaseId,
    images: cfg.images,
    envKeys,
    appEnvKeys,
    // On a droplet PostgreSQL's data lives on the DigitalOcean volume, which outlives it.
    dataDir: droplet ? pgDataDir(cfg.app) : undefined,
    proxy: cfg.proxy ? { image: cfg.proxy.image, configDir: vmPaths(cfg.app).tls, tls: cfg.tls !== undefined } : undefined,
});
// The proxy's image travels with the app's (loaded or pulled by the activation).
const allImages: Record<string, string> = cfg.proxy ? { ...cfg.images, proxy: cfg.proxy.image } : cfg.images;

// Nothing is registered when the firewall or the compose file would expose an internal port.
const rules = droplet ? firewallRules(droplet) : undefined;
const violations = checkPolicy({ inbound: rules?.inbound ?? [], composeText: bundle.composeText, allowWorldSsh: droplet?.allowWorldSsh ?? false });
if (violations.length > 0) {
    throw new PolicyError(violations);
}

// This stack's own previous outputs tell whether this is a new release, a re-run or a
// rollback, and which content each release ID had. A refusal here stops every remote
// command, because they all reach the VM through the gated address below.
const self = new pulumi.StackReference("self", {
    name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
});
const decision = pulumi
    .all([self.getOutput("releaseId"), self.getOutput("previousReleaseId"), self.getOutput("releases")])
    .apply(async ([releaseId, previousReleaseId, releases]) => {
        try {
            const d = decideRelease({ releaseId, previousReleaseId, releases }, cfg.releaseId, bundle.hash);
            if (d.kind === "rollback") {
                pulumi.log.warn(d.notice!);
            } else if (d.notice) {
                pulumi.log.info(d.notice);
            }
            return d;
        } catch (e) {
            if (e instanceof ReleaseIdReusedError) {
                return stopWithError(e.message);
            }
            throw e;
        }
    });

// With onevm:infrastructureOnly nothing runs on the VM: no host key check either.
const deploysOnVm = !droplet?.infrastructureOnly;
let vm: { connection: VmConnection; address: pulumi.Output<string> };
let ready: pulumi.Resource[] = [];
if (droplet) {
    const dvm = new DigitalOceanVm("vm", {
        app: cfg.app,
        user,
        region: droplet.region,
        size: droplet.size,
        image: droplet.image,
        tags: droplet.tags,
        volumeSizeGb: droplet.volumeSizeGb,
        reservedIp: droplet.reservedIp,
        deployPublicKey: droplet.deployPublicKey,
        deployPrivateKey: cfg.secrets.sshPrivateKey ? pulumi.secret(cfg.secrets.sshPrivateKey) : undefined,
    });
    new CloudFirewall("firewall", { app: cfg.app, dropletId: dvm.droplet.id.apply(Number), ...rules! });
    // Every remote command reaches the VM through the gated address: the release decision,
    // and during `up` the host key check (another key stops the program before any command).
    const hostKeyChecked = deploysOnVm
        ? verifiedHostKey(
              { host: dvm.address, port: dvm.connection.port, user, hostKey: dvm.connection.hostKey },
              { pinnedBy: "the stack's generated host key (output sshHostPublicKey)", remedy: "If the droplet was rebuilt outside onevm, replace it on purpose (README: Replacing the droplet on purpose)." },
          )
        : undefined;
    vm = { address: dvm.address, connection: { ...dvm.connection, host: pulumi.all([decision, dvm.address, hostKeyChecked]).apply(([, a]) => a) } };
    ready = dvm.ready;
} else {
    const hostKeyChecked = verifiedHostKey(
        { host: cfg.host!.address, port: cfg.host!.port, user, hostKey: cfg.host!.hostPublicKey },
        { pinnedBy: "onevm:hostPublicKey", remedy: "If the VM was rebuilt, verify the new key out of band and set onevm:hostPublicKey." },
    );
    vm = new ExistingHost("vm", {
        address: pulumi.all([decision, hostKeyChecked]).apply(() => cfg.host!.address),
        port: cfg.host!.port,
        user,
        privateKey: pulumi.secret(cfg.secrets.sshPrivateKey ?? ""),
        hostPublicKey: cfg.host!.hostPublicKey,
    });
}
// The VM's public address: the reserved IP or the droplet's IPv4, or the configured host.
export const address: pulumi.Input<string> = droplet ? vm.address : cfg.host!.address;
export const sshCommand = pulumi.interpolate`ssh -p ${cfg.host?.port ?? 22} ${user}@${address}`;
export const healthCheck = pulumi.interpolate`${sshCommand} curl -fsS http://127.0.0.1:8080/health`;
// What `npm run restore` (scripts/restore.sh) needs besides the config to reach a droplet:
// the host key every connection pins, and the deploy key onevm generated ("" when the
// operator brought their own: it is onevm:sshPrivateKey). Both come from state, no VM read.
export const sshHostPublicKey = vm.connection.hostKey;
export const deployPrivateKey = droplet && !droplet.deployPublicKey ? pulumi.secret(vm.connection.privateKey) : "";
export const images = cfg.images;
export const imageArchives = cfg.imageTransport === "archive" ? [...new Set(Object.values(allImages))].map(archiveName) : [];

let tlsCaCertificate: pulumi.Output<string> | undefined;
let releaseOutputs: Record<"releaseId" | "previousReleaseId" | "releases" | "releaseContentHash", pulumi.Output<unknown> | undefined> = {
    releaseId: undefined,
    previousReleaseId: undefined,
    releases: undefined,
    releaseContentHash: undefined,
};

/** Everything that runs on the VM: secrets, release, unit, backups. Returns the activation's id. */
function deployOnVm(): pulumi.Output<string> {
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
        user: user,
        stack: stackIdentity(pulumi.getOrganization(), pulumi.getProject(), pulumi.getStack()),
        toolsSourceDir: REMOTE_SCRIPTS_DIR,
        toolsHash: toolsHash(),
        unitName: unit,
        cronName: cron,
        cloudInitTimeoutSeconds: droplet ? 900 : undefined,
    }, { dependsOn: ready });

    // The proxy's files must be on the VM before a release with the proxy starts. One
    // resource name for every mode: turning TLS on or off updates the files in place.
    const ingress = cfg.proxy
        ? new TlsIngress(
              "tls",
              { connection: vm.connection, app: cfg.app, mode: cfg.proxy.mode, address, domain: cfg.tls?.domain, email: cfg.tls?.email },
              { dependsOn: [setup.ready] },
          )
        : undefined;
    tlsCaCertificate = cfg.tls ? ingress?.caCertPem : undefined;

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
            imageArchives: cfg.imageTransport === "archive" ? imageArchivePaths(allImages, cfg.imageArchiveDir) : [],
            envHash: envText.apply(sha256),
        },
        { dependsOn: [setup.ready, secrets.written, ...(ingress ? [ingress.installed] : [])] },
    );

    new SystemdUnit(
        "unit",
        { connection: vm.connection, app: cfg.app, unitName: unit, unitText: renderUnit(cfg.app, user) },
        { dependsOn: [release] },
    );

    const { ssh: offsiteSsh, s3: offsiteS3 } = cfg.offsite;
    if (offsiteSsh || offsiteS3) {
        new OffsiteTargets(
            "offsite",
            {
                connection: vm.connection,
                app: cfg.app,
                filesJson: pulumi.secret(
                    renderOffsiteFiles({
                        ssh: offsiteSsh && { ...offsiteSsh, privateKey: cfg.secrets.offsiteSshPrivateKey! },
                        s3: offsiteS3 && {
                            ...offsiteS3,
                            accessKeyId: cfg.secrets.offsiteS3AccessKeyId!,
                            secretAccessKey: cfg.secrets.offsiteS3SecretAccessKey!,
                        },
                    }),
                ),
            },
            { dependsOn: [setup.ready] },
        );
    }

    new BackupCron(
        "backup",
        {
            connection: vm.connection,
            app: cfg.app,
            cronName: cron,
            cronText: renderBackupCron({
                app: cfg.app,
                user: user,
                schedule: cfg.backupSchedule,
                keep: cfg.backupKeep,
                minFreeMb: cfg.backupMinFreeMb,
            }),
        },
        { dependsOn: [setup.ready] },
    );
    return release.activation.id;
}

if (deploysOnVm) {
    // Recorded only once the activation succeeded: after a failed release the stack keeps
    // naming the release the VM is really on, which the next deploy's decision starts from.
    const activated = pulumi.all([deployOnVm(), decision]);
    releaseOutputs = {
        releaseId: activated.apply(() => cfg.releaseId),
        // "" until a second release has been deployed (an undefined output is dropped with a warning).
        previousReleaseId: activated.apply(([, d]) => d.previousReleaseId ?? ""),
        releases: activated.apply(([, d]) => d.releases),
        releaseContentHash: activated.apply(() => bundle.hash),
    };
}
export const { releaseId, previousReleaseId, releases, releaseContentHash } = releaseOutputs;
// The CA clients trust (certificate mode), and where the app answers publicly.
export { tlsCaCertificate };
export const httpsUrl = cfg.tls ? pulumi.interpolate`https://${cfg.tls.domain ?? address}/` : "";
