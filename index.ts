/**
 * onevm: deploys the user's Compose app to one VM. This file wires the parts, data flowing
 * one way: config and the Compose file are read and checked (program/load.ts), the release
 * is decided and rendered (lib/, pure), then the VM and what runs on it are declared
 * (components/). Nothing is registered against the VM before every check has passed.
 */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { releaseContent } from "./lib/app";
import { OnevmConfig } from "./lib/config";
import { checkPolicy } from "./lib/policy";
import { recordedDigests, recordRelease } from "./lib/releaseGuard";
import { bundleBase64, envKeys, renderRelease } from "./lib/release";
import { stackIdentity } from "./lib/remote";
import { dataMount } from "./lib/render/cloudInit";
import { cronName, renderBackupCron } from "./lib/render/cron";
import { renderAppEnv } from "./lib/render/env";
import { firewallRules } from "./lib/render/firewall";
import { databaseVolumes } from "./lib/render/compose";
import { renderOffsiteFiles } from "./lib/render/offsite";
import { vmPaths } from "./lib/render/paths";
import { renderSshConfig, sshHostAlias } from "./lib/render/sshConfig";
import { renderUnit, unitName } from "./lib/render/unit";
import { alterRolePasswordSql, scramSha256Verifier } from "./lib/scram";
import { imageArchivePaths, VM_ENGINE_DIR, vmEngineHash } from "./program/artifacts";
import { checkWithDockerCompose } from "./program/composeCheck";
import { verifiedHostKey } from "./program/hostKeyCheck";
import { loadConfig, loadConfiguredApp, planRelease, previousOutputs, refuse } from "./program/load";
import { pinnedImages, planImagePinning } from "./program/releaseImages";
import { AppImages } from "./components/appImages";
import { connectionAfter, VmConnection } from "./components/connection";
import { DigitalOceanVm } from "./components/droplet";
import { ExistingHost } from "./components/existingHost";
import { CloudFirewall } from "./components/firewall";
import { VmDeployment } from "./components/vmDeployment";

export = async () => {
    const cfg = loadConfig();
    const configured = loadConfiguredApp(cfg);
    const previous = await previousOutputs();
    const { decision, model } = planRelease(cfg, configured, previous);
    if (decision.kind === "rollback") {
        pulumi.log.warn(decision.notice!);
    } else if (decision.notice) {
        pulumi.log.info(decision.notice);
    }

    const app = model.app;
    const target = cfg.target;
    const user = target.user;
    // On a droplet the database's data lives on the DigitalOcean volume, which outlives it.
    const dataDir = target.kind === "digitalocean" ? dataMount(app) : undefined;
    const proxy = model.web && cfg.proxy ? { image: cfg.proxy.image, configDir: vmPaths(app).tls, tls: cfg.tls !== undefined } : undefined;
    const release = renderRelease({
        model,
        releaseId: cfg.releaseId,
        user,
        logMaxSize: cfg.appDescription.logMaxSize,
        logMaxFiles: cfg.appDescription.logMaxFiles,
        defaultLimits: cfg.appDescription.defaultLimits,
        limits: cfg.appDescription.limits,
        proxy,
        dataDir,
        settings: {
            healthRetries: cfg.healthRetries,
            healthIntervalSeconds: cfg.healthIntervalSeconds,
            backupKeep: cfg.backupKeep,
            backupMinFreeMb: cfg.backupMinFreeMb,
        },
    });
    const composeCheck = checkWithDockerCompose(release.files, envKeys(model), app);
    if (composeCheck.ok === false) {
        refuse(`Invalid onevm configuration (nothing was changed):\n  - ${composeCheck.problem}`);
    } else if (composeCheck.ok === "skipped") {
        pulumi.log.warn(composeCheck.reason);
    }
    const rules = target.kind === "digitalocean" ? firewallRules({ sshAllowedCidrs: target.sshAllowedCidrs, tlsIngress: cfg.tls !== undefined }) : undefined;
    const violations = checkPolicy({
        inbound: rules?.inbound ?? [],
        composeText: release.composeText,
        allowWorldSsh: target.kind === "digitalocean" && target.allowWorldSsh,
        tlsIngress: cfg.tls !== undefined,
    });
    if (violations.length > 0) {
        refuse(`onevm policy refuses this stack (nothing was changed):\n${violations.map((v) => `  - ${v}`).join("\n")}`);
    }

    const vm =
        target.kind === "digitalocean"
            ? new DigitalOceanVm("vm", {
                  app,
                  user,
                  region: target.region,
                  size: target.size,
                  image: target.image,
                  tags: target.tags,
                  volumeSizeGb: target.volumeSizeGb,
                  reservedIp: target.reservedIp,
                  deployPublicKey: target.deployPublicKey,
                  deployPrivateKey: cfg.secrets.sshPrivateKey ? pulumi.secret(cfg.secrets.sshPrivateKey) : undefined,
              })
            : new ExistingHost("vm", {
                  address: target.address,
                  port: target.port,
                  user,
                  privateKey: pulumi.secret(cfg.secrets.sshPrivateKey ?? ""),
                  hostPublicKey: target.hostPublicKey,
              });
    if (vm instanceof DigitalOceanVm) {
        new CloudFirewall("firewall", { app, dropletId: vm.droplet.id.apply(Number), ...rules! });
    }

    const deploysOnVm = !(target.kind === "digitalocean" && target.infrastructureOnly);
    // The gate every remote command waits for: during `up`, the VM proves it holds the
    // pinned host key; another key stops the program at once, before anything runs there.
    const hostKeyVerified = deploysOnVm
        ? verifiedHostKey(
              { host: vm.address, port: vm.connection.port, user, hostKey: vm.connection.hostKey },
              target.kind === "digitalocean"
                  ? { pinnedBy: "the stack's generated host key (output sshHostPublicKey)", remedy: "If the droplet was rebuilt outside onevm, replace it on purpose (docs/digitalocean.md)." }
                  : { pinnedBy: "onevm:hostPublicKey", remedy: "If the VM was rebuilt, verify the new key out of band and set onevm:hostPublicKey." },
          )
        : undefined;
    // registry transport: every image pinned to a digest (recorded for a known release ID,
    // else built and pushed, or looked up); during `up` the registry must accept
    // onevm:registry's credentials before any build and any remote command.
    const registry = cfg.registry && { ...cfg.registry, password: cfg.secrets.registryPassword ?? "" };
    const pinning =
        deploysOnVm && cfg.imageTransport === "registry"
            ? planImagePinning({ model, images: release.images, recorded: recordedDigests(previous, cfg.releaseId, model.releaseHash), registry })
            : undefined;
    const built =
        pinning && pinning.builds.length > 0 && registry
            ? new AppImages("images", {
                  builds: pinning.builds,
                  composeDir: path.posix.dirname(cfg.appDescription.composeFile),
                  registry: { server: registry.server, username: registry.username, password: pulumi.secret(registry.password) },
                  after: pinning.gate.ready,
              })
            : undefined;
    const pins = pinning && pinnedImages(pinning, built?.repoDigests);

    const vmReady = vm instanceof DigitalOceanVm ? vm.ready : [];
    const gate = pulumi.all([hostKeyVerified, pins?.ready]);
    const deployment = deploysOnVm ? deployOnVm(cfg, app, connectionAfter(gate, vm.connection), vmReady, vm.address, release, model, dataDir, pins?.lock) : undefined;
    const activated = deployment?.activated;
    const record = activated
        ? pulumi.all([activated, pins?.pinnedByRef]).apply(([, digests]) =>
              recordRelease(
                  previous.releases,
                  cfg.releaseId,
                  { hash: model.releaseHash, content: releaseContent(model), ...(digests ? { digests } : {}) },
                  cfg.keepReleases + 2,
              ),
          )
        : undefined;
    const port = target.kind === "existing" ? target.port : 22;
    const alias = sshHostAlias(app, pulumi.getStack());
    return {
        /** The VM's address: the reserved IP or the droplet's IPv4, or the configured host. */
        address: vm.address,
        /** Where the operator command (npm run onevm) and plain ssh find the VM. */
        vm: { app, host: vm.address, port, user, hostPublicKey: vm.connection.hostKey },
        sshConfig: pulumi.all([vm.address, vm.connection.hostKey]).apply(([host, hostPublicKey]) =>
            renderSshConfig({ alias, host, port, user, hostPublicKey, identityFile: `~/.ssh/${alias}` }),
        ),
        sshCommand: `ssh ${alias}`,
        healthCheck: model.web ? `ssh ${alias} curl -fsS http://127.0.0.1:${model.web.hostPort}${model.web.checks[0].path}` : "",
        /** The host key every connection pins, and the deploy key onevm generated ("" when the operator brought one). */
        sshHostPublicKey: vm.connection.hostKey,
        deployPrivateKey: target.kind === "digitalocean" && !target.deployPublicKey ? pulumi.secret(vm.connection.privateKey) : "",
        app,
        images: release.images,
        /** registry transport: the digest each service runs (releases/<id>/images.lock). */
        pinnedImages: pins?.lock ?? {},
        // Recorded only once the activation succeeded: after a failed release the stack keeps
        // naming the release the VM is really on, which the next deploy's decision starts from.
        releaseId: activated?.apply(() => cfg.releaseId),
        // "" until a second release has been deployed (an undefined output is dropped with a warning).
        previousReleaseId: activated?.apply(() => decision.previousReleaseId ?? ""),
        releases: record,
        releaseHash: activated?.apply(() => model.releaseHash),
        /** Whether the running release came from the config or from the record (a rollback by ID). */
        releaseSource: activated?.apply(() => decision.source),
        tlsCaCertificate: cfg.tls ? deployment?.tlsCaCertificate : undefined,
        httpsUrl: cfg.tls ? pulumi.interpolate`https://${cfg.tls.domain ?? vm.address}/` : "",
    };
};

/** Everything that runs on the VM: secrets, the proxy's files, the release, unit, backups. */
function deployOnVm(
    cfg: OnevmConfig,
    app: string,
    connection: VmConnection,
    vmReady: pulumi.Resource[],
    address: pulumi.Output<string>,
    release: ReturnType<typeof renderRelease>,
    model: ReturnType<typeof loadConfiguredApp>,
    dataDir: string | undefined,
    imagesLock: pulumi.Output<Record<string, string>> | undefined,
): VmDeployment {
    const target = cfg.target;
    const database = model.database;
    const dbPassword = database
        ? new random.RandomPassword("db-password", { length: 32, special: false, keepers: { version: String(cfg.dbPasswordVersion) } })
        : undefined;
    const envText = pulumi.secret(
        pulumi
            .output(dbPassword?.result ?? "")
            .apply((password) => renderAppEnv(cfg.secrets.appEnv, database ? { role: database, password } : undefined)),
    );
    const { ssh: offsiteSsh, s3: offsiteS3 } = cfg.offsite;
    const cron = cronName(app);
    return new VmDeployment("app", {
        connection,
        vmReady,
        app,
        user: target.user,
        stack: stackIdentity(pulumi.getOrganization(), pulumi.getProject(), pulumi.getStack()),
        engineDir: VM_ENGINE_DIR,
        engineHash: vmEngineHash(),
        cloudInitTimeoutSeconds: target.kind === "digitalocean" ? 900 : undefined,
        dataDirs: dataDir ? databaseVolumes(model).map((volume) => `${dataDir}/${volume}`) : [],
        unitName: unitName(app),
        unitText: renderUnit(app, target.user),
        cronName: cron,
        cronText: database
            ? renderBackupCron({ app, user: target.user, schedule: cfg.backupSchedule, keep: cfg.backupKeep, minFreeMb: cfg.backupMinFreeMb })
            : undefined,
        proxy:
            model.web && cfg.proxy
                ? { mode: cfg.proxy.mode, upstream: `${model.web.service}:${model.web.port}`, address, domain: cfg.tls?.domain, email: cfg.tls?.email }
                : undefined,
        env: {
            text: envText,
            database:
                database && dbPassword
                    ? { service: database.service, passwordSql: pulumi.secret(dbPassword.result.apply((pw) => alterRolePasswordSql(database.user, scramSha256Verifier(pw, app)))) }
                    : undefined,
        },
        release: {
            activation: {
                app,
                releaseId: cfg.releaseId,
                operator: cfg.operator,
                healthRetries: cfg.healthRetries,
                healthIntervalSeconds: cfg.healthIntervalSeconds,
                backupMinFreeMb: cfg.backupMinFreeMb,
                keepReleases: cfg.keepReleases,
            },
            composeText: release.composeText,
            bundle: bundleBase64(release.files),
            contentHash: release.contentHash,
            releaseHash: release.releaseHash,
            imageArchives: cfg.imageTransport === "archive" ? imageArchivePaths(Object.values(release.images), cfg.imageArchiveDir) : [],
            imagesLock,
        },
        registry: cfg.registry && { ...cfg.registry, password: pulumi.secret(cfg.secrets.registryPassword ?? "") },
        offsiteFilesJson:
            offsiteSsh || offsiteS3
                ? pulumi.secret(
                      renderOffsiteFiles({
                          ssh: offsiteSsh && { ...offsiteSsh, privateKey: cfg.secrets.offsiteSshPrivateKey! },
                          s3: offsiteS3 && {
                              ...offsiteS3,
                              prefix: offsiteS3.prefix ?? `${app}/`,
                              accessKeyId: cfg.secrets.offsiteS3AccessKeyId!,
                              secretAccessKey: cfg.secrets.offsiteS3SecretAccessKey!,
                          },
                      }),
                  )
                : undefined,
    });
}
