import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { writeEnvCommand } from "../lib/remote";
import { commandConnection, remoteDefaults, secretOutputs, VmConnection } from "./connection";

export interface SecretsFileArgs {
    readonly connection: VmConnection;
    readonly app: string;
    /** The complete .env text (secret): written via stdin, never on a command line. */
    readonly envText: pulumi.Input<string>;
}

/** /opt/<app>/shared/.env, mode 600, replaced atomically whenever its content changes. */
export class SecretsFile extends pulumi.ComponentResource {
    public readonly written: command.remote.Command;

    constructor(name: string, args: SecretsFileArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:SecretsFile", name, {}, opts);
        this.written = new command.remote.Command(
            `${name}-env`,
            {
                ...remoteDefaults,
                connection: commandConnection(args.connection),
                create: writeEnvCommand(args.app),
                stdin: pulumi.secret(args.envText),
                logging: "stderr",
            },
            { parent: this, ...secretOutputs },
        );
        this.registerOutputs({});
    }
}
