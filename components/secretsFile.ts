import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { setDbPasswordCommand, writeEnvCommand } from "../lib/remote";
import { commandConnection, remoteDefaults, secretOutputs, VmConnection } from "./connection";

export interface SecretsFileArgs {
    readonly connection: VmConnection;
    readonly app: string;
    /** The complete .env text (secret): written via stdin, never on a command line. */
    readonly envText: pulumi.Input<string>;
    /**
     * `ALTER ROLE ... PASSWORD '<SCRAM verifier>'` for the database password in envText
     * (secret). PostgreSQL keeps the password it was initialised with, so a rotated
     * password must be set inside the running database before services restart with it.
     */
    readonly dbPasswordSql: pulumi.Input<string>;
}

/**
 * The app's secrets on the VM: the database role's password, then
 * /opt/<app>/shared/.env (mode 600, replaced atomically) whenever its content changes.
 */
export class SecretsFile extends pulumi.ComponentResource {
    public readonly written: command.remote.Command;

    constructor(name: string, args: SecretsFileArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:SecretsFile", name, {}, opts);
        const connection = commandConnection(args.connection);
        const dbPassword = new command.remote.Command(
            `${name}-db-password`,
            {
                ...remoteDefaults,
                connection,
                create: setDbPasswordCommand(args.app),
                stdin: pulumi.secret(args.dbPasswordSql),
                logging: "stderr",
            },
            { parent: this, ...secretOutputs },
        );
        this.written = new command.remote.Command(
            `${name}-env`,
            {
                ...remoteDefaults,
                connection,
                create: writeEnvCommand(args.app),
                stdin: pulumi.secret(args.envText),
                logging: "stderr",
            },
            { parent: this, dependsOn: [dbPassword], ...secretOutputs },
        );
        this.registerOutputs({});
    }
}
