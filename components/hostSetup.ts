import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { bootstrapCommand, installToolsCommand, uninstallCommand } from "../lib/remote";
import { commandConnection, remoteDefaults, secretOutputs, VmConnection } from "./connection";

export interface HostSetupArgs {
    readonly connection: VmConnection;
    readonly app: string;
    readonly user: string;
    /** base64 tar.gz of scripts/remote, and its content hash. */
    readonly toolsArchive: pulumi.Input<string>;
    readonly toolsHash: string;
    /** Names of the unit and cron entry that uninstall removes on `pulumi destroy`. */
    readonly unitName: string;
    readonly cronName: string;
    /** A fresh droplet: wait (at most this many seconds) for cloud-init before the first command. */
    readonly cloudInitTimeoutSeconds?: number;
}

/**
 * The host's foundations: onevm's remote scripts in /opt/<app>/bin, Docker Engine and
 * Compose v2 when missing, and the /opt/<app> directories. On destroy it uninstalls what
 * onevm installed and keeps the database volume and the backups.
 */
export class HostSetup extends pulumi.ComponentResource {
    /** Depend on this before running any script. */
    public readonly ready: command.remote.Command;

    constructor(name: string, args: HostSetupArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:HostSetup", name, {}, opts);
        const connection = commandConnection(args.connection);

        const tools = new command.remote.Command(
            `${name}-tools`,
            {
                ...remoteDefaults,
                connection,
                create: installToolsCommand(args.app, args.user, args.toolsHash, { cloudInitTimeoutSeconds: args.cloudInitTimeoutSeconds }),
                stdin: args.toolsArchive,
            },
            { parent: this, ...secretOutputs },
        );

        this.ready = new command.remote.Command(
            `${name}-bootstrap`,
            {
                ...remoteDefaults,
                connection,
                create: bootstrapCommand(args.app, args.user, { cloudInitTimeoutSeconds: args.cloudInitTimeoutSeconds }),
                delete: uninstallCommand(args.app, args.unitName, args.cronName),
                // Re-run the (idempotent) bootstrap when onevm's scripts change.
                environment: { ONEVM_TOOLS: args.toolsHash },
            },
            { parent: this, dependsOn: [tools], ...secretOutputs },
        );
        this.registerOutputs({});
    }
}
