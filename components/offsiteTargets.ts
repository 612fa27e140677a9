import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { installOffsiteCommand, removeOffsiteCommand } from "../lib/remote";
import { commandConnection, remoteDefaults, secretOutputs, VmConnection } from "./connection";

export interface OffsiteTargetsArgs {
    readonly connection: VmConnection;
    readonly app: string;
    /**
     * The rendered files of shared/offsite (lib/render/offsite.ts renderOffsiteFiles;
     * secret: SSH private key, S3 keys): written via stdin, never on a command line.
     */
    readonly filesJson: pulumi.Input<string>;
}

/**
 * Where backup.sh copies each verified backup off the host: /opt/<app>/shared/offsite/
 * (every file mode 600), replaced whenever the targets or their credentials change and
 * removed when the targets leave the config.
 */
export class OffsiteTargets extends pulumi.ComponentResource {
    public readonly installed: command.remote.Command;

    constructor(name: string, args: OffsiteTargetsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:OffsiteTargets", name, {}, opts);
        this.installed = new command.remote.Command(
            `${name}-files`,
            {
                ...remoteDefaults,
                connection: commandConnection(args.connection),
                create: installOffsiteCommand(args.app),
                delete: removeOffsiteCommand(args.app),
                stdin: pulumi.secret(args.filesJson),
                logging: "stderr",
            },
            // A replacement must not delete the files its successor just wrote.
            { parent: this, deleteBeforeReplace: true, ...secretOutputs },
        );
        this.registerOutputs({});
    }
}
