import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { bootstrapCommand, claimAppDirCommand, switchToolsCommand, toolsDir, uninstallCommand } from "../lib/remote";
import { commandConnection, onAnotherMachine, remoteDefaults, secretOutputs, VmConnection } from "./connection";

export interface HostSetupArgs {
    readonly connection: VmConnection;
    readonly app: string;
    readonly user: string;
    /**
     * This stack's identity (`stackIdentity`): the first command claims /opt/<app> with it
     * and refuses, before anything changes, when another stack owns the app on this host.
     */
    readonly stack: string;
    /** Directory of onevm's VM engine (vm/) and its content hash. */
    readonly toolsSourceDir: string;
    readonly toolsHash: string;
    /** Names of the unit and cron entry that uninstall removes on `pulumi destroy`. */
    readonly unitName: string;
    readonly cronName: string;
    /** A fresh droplet: wait (at most this many seconds) for cloud-init before the first command. */
    readonly cloudInitTimeoutSeconds?: number;
    /** Directories the database's volumes are bound to (created when missing). */
    readonly dataDirs?: string[];
}

/**
 * The host's foundations: this stack's claim on the app, onevm's remote scripts in /opt/<app>/bin, Docker Engine and
 * Compose v2 when missing, and the /opt/<app> directories. On destroy it uninstalls what
 * onevm installed and keeps the database volume and the backups.
 */
export class HostSetup extends pulumi.ComponentResource {
    /** Depend on this before running any script. */
    public readonly ready: command.remote.Command;

    constructor(name: string, args: HostSetupArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:HostSetup", name, {}, opts);
        const connection = commandConnection(args.connection);

        const claim = new command.remote.Command(
            `${name}-dirs`,
            {
                ...remoteDefaults,
                connection,
                create: claimAppDirCommand(args.app, args.user, args.stack, { cloudInitTimeoutSeconds: args.cloudInitTimeoutSeconds }),
            },
            { parent: this, ...secretOutputs },
        );
        // Content-addressed: a new version lands beside the old one, then `bin` switches.
        const upload = new command.remote.CopyToRemote(
            `${name}-tools-upload`,
            {
                connection,
                // Trailing slash: copy the directory's contents even when remotePath exists.
                source: new pulumi.asset.FileArchive(`${args.toolsSourceDir}/`),
                remotePath: toolsDir(args.app, args.toolsHash),
                triggers: onAnotherMachine(args.connection),
            },
            { parent: this, dependsOn: [claim] },
        );
        const tools = new command.remote.Command(
            `${name}-tools`,
            { ...remoteDefaults, connection, create: switchToolsCommand(args.app, args.toolsHash) },
            { parent: this, dependsOn: [upload], ...secretOutputs },
        );

        this.ready = new command.remote.Command(
            `${name}-bootstrap`,
            {
                ...remoteDefaults,
                connection,
                // Re-run when onevm's scripts change: the tools hash is in the command. Never
                // `triggers`: a replacement would run the old one's `delete`, uninstalling.
                create: bootstrapCommand(args.app, args.user, args.toolsHash, args.dataDirs),
                delete: uninstallCommand(args.app, args.unitName, args.cronName, args.stack),
            },
            { parent: this, dependsOn: [tools], ...secretOutputs },
        );
        this.registerOutputs({});
    }
}
