import * as pulumi from "@pulumi/pulumi";
import { ImageArchive } from "../lib/images";
import { ActivateOptions } from "../lib/remote";
import { ProxyMode } from "../lib/render/caddyfile";
import { BackupCron } from "./backupCron";
import { VmConnection } from "./connection";
import { HostSetup } from "./hostSetup";
import { OffsiteTargets } from "./offsiteTargets";
import { Proxy } from "./proxy";
import { RegistryLogin } from "./registryLogin";
import { Release } from "./release";
import { SecretsFile } from "./secretsFile";
import { SystemdUnit } from "./systemdUnit";

export interface VmDeploymentArgs {
    /** How every remote command reaches the VM (already gated: see connectionAfter). */
    readonly connection: VmConnection;
    /** What must exist before the first remote command (a droplet's volume attachment and reserved IP). */
    readonly vmReady: pulumi.Resource[];
    readonly app: string;
    readonly user: string;
    /** This stack's identity: the first command claims /opt/<app> with it. */
    readonly stack: string;
    /** The VM engine (vm/) to upload and its content hash. */
    readonly engineDir: string;
    readonly engineHash: string;
    /** A fresh droplet: wait (at most this many seconds) for cloud-init before the first command. */
    readonly cloudInitTimeoutSeconds?: number;
    /** Host directories the database's volumes are bound to (a droplet's data volume). */
    readonly dataDirs: string[];
    readonly unitName: string;
    readonly unitText: string;
    readonly cronName: string;
    /** The backup cron entry; absent when the app has no database role. */
    readonly cronText?: string;
    /** The proxy in front of the web service; absent when the app has none. */
    readonly proxy?: {
        mode: ProxyMode;
        upstream: string;
        /** The VM's address: always named in a `certificate` mode certificate. */
        address: pulumi.Input<string>;
        domain?: string;
        email?: string;
    };
    /** shared/.env (secret) and, with a database role, the SQL that sets its password. */
    readonly env: { text: pulumi.Input<string>; database?: { service: string; passwordSql: pulumi.Input<string> } };
    readonly release: {
        activation: ActivateOptions;
        composeText: string;
        /** base64 tar.gz of the rendered release and its two hashes (docs/vm-contract.md). */
        bundle: pulumi.Input<string>;
        contentHash: string;
        releaseHash: string;
        imageArchives: ImageArchive[];
        /** registry transport: service -> digest-pinned image (releases/<id>/images.lock). */
        imagesLock?: pulumi.Input<Record<string, string>>;
    };
    /** onevm:registry: the VM's Docker logs in to it before pulling (password secret, stdin only). */
    readonly registry?: { server: string; username: string; caCertificate?: string; password: pulumi.Input<string> };
    /** The files of shared/offsite (secret); absent: no off-host targets. */
    readonly offsiteFilesJson?: pulumi.Input<string>;
}

/**
 * Everything onevm runs on the VM: the host's foundations, the proxy's files, the
 * secrets, the registry login, the release and its activation, the systemd unit, the
 * backup cron entry and the off-host backup targets, in that order of dependency.
 */
export class VmDeployment extends pulumi.ComponentResource {
    /** The activation command: done when the release runs and passed its health gate. */
    public readonly activated: pulumi.Output<string>;
    /** The CA certificate clients trust (TLS certificate mode); "" otherwise. */
    public readonly tlsCaCertificate: pulumi.Output<string>;

    constructor(name: string, args: VmDeploymentArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:VmDeployment", name, {}, opts);
        // These resources sat at the stack's root before this component existed.
        const child = (aliases: pulumi.Alias[] = []) => ({ parent: this, aliases: [{ parent: pulumi.rootStackResource }, ...aliases] });
        const connection = args.connection;

        const host = new HostSetup(
            "host",
            {
                connection,
                app: args.app,
                user: args.user,
                stack: args.stack,
                toolsSourceDir: args.engineDir,
                toolsHash: args.engineHash,
                unitName: args.unitName,
                cronName: args.cronName,
                cloudInitTimeoutSeconds: args.cloudInitTimeoutSeconds,
                dataDirs: args.dataDirs,
            },
            { ...child(), dependsOn: args.vmReady },
        );

        // One resource for every proxy mode: turning TLS on or off updates its files in place.
        const proxy = args.proxy
            ? new Proxy(
                  "proxy",
                  { connection, app: args.app, ...args.proxy },
                  { ...child([{ type: "onevm:index:TlsIngress", name: "tls", parent: pulumi.rootStackResource }]), dependsOn: [host.ready] },
              )
            : undefined;

        const secrets = new SecretsFile(
            "secrets",
            { connection, app: args.app, envText: args.env.text, database: args.env.database },
            { ...child(), dependsOn: [host.ready] },
        );

        const login = args.registry
            ? new RegistryLogin("registry", { connection, app: args.app, ...args.registry }, { parent: this, dependsOn: [host.ready] })
            : undefined;

        const release = new Release(
            "release",
            {
                connection,
                activation: args.release.activation,
                composeText: args.release.composeText,
                bundle: args.release.bundle,
                contentHash: args.release.contentHash,
                releaseHash: args.release.releaseHash,
                imageArchives: args.release.imageArchives,
                envHash: secrets.envHash,
                imagesLock: args.release.imagesLock,
            },
            { ...child(), dependsOn: [host.ready, secrets.written, ...(proxy ? [proxy.installed] : []), ...(login ? [login.loggedIn] : [])] },
        );

        new SystemdUnit("unit", { connection, app: args.app, unitName: args.unitName, unitText: args.unitText }, { ...child(), dependsOn: [release] });

        if (args.offsiteFilesJson !== undefined) {
            new OffsiteTargets("offsite", { connection, app: args.app, filesJson: args.offsiteFilesJson }, { ...child(), dependsOn: [host.ready] });
        }
        if (args.cronText !== undefined) {
            new BackupCron("backup", { connection, app: args.app, cronName: args.cronName, cronText: args.cronText }, { ...child(), dependsOn: [host.ready] });
        }

        this.activated = release.activation.id;
        this.tlsCaCertificate = proxy?.caCertPem ?? pulumi.output("");
        this.registerOutputs({ activated: this.activated, tlsCaCertificate: this.tlsCaCertificate });
    }
}
