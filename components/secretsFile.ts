import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { sha256 } from "../lib/bundle";
import { setDbPasswordCommand, writeEnvCommand } from "../lib/remote";
import { commandConnection, remoteDefaults, secretOutputs, VmConnection } from "./connection";

export interface SecretsFileArgs {
    readonly connection: VmConnection;
    readonly app: string;
    /** The complete .env text (secret): written via stdin, never on a command line. */
    readonly envText: pulumi.Input<string>;
    /**
     * With a database role: its service and `ALTER ROLE ... PASSWORD '<SCRAM verifier>'`
     * for the password in envText (secret). PostgreSQL keeps the password it was
     * initialised with, so a rotated password is set inside the running database before
     * services restart with it.
     */
    readonly database?: { service: string; passwordSql: pulumi.Input<string> };
}

/**
 * The app's secrets on the VM: the database role's password, then
 * /opt/<app>/shared/.env (mode 600, replaced atomically) whenever its content changes.
 */
export class SecretsFile extends pulumi.ComponentResource {
    public readonly written: command.remote.Command;
    /** sha256 of the .env text (secret): a change re-applies the release. */
    public readonly envHash: pulumi.Output<string>;

    constructor(name: string, args: SecretsFileArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:SecretsFile", name, {}, opts);
        const connection = commandConnection(args.connection);
        const dbPassword = args.database
            ? new command.remote.Command(
                  `${name}-db-password`,
                  {
                      ...remoteDefaults,
                      connection,
                      create: setDbPasswordCommand(args.app, args.database.service),
                      stdin: pulumi.secret(args.database.passwordSql),
                      logging: "stderr",
                  },
                  { parent: this, ...secretOutputs },
              )
            : undefined;
        this.written = new command.remote.Command(
            `${name}-env`,
            {
                ...remoteDefaults,
                connection,
                create: writeEnvCommand(args.app),
                stdin: pulumi.secret(args.envText),
                logging: "stderr",
            },
            { parent: this, dependsOn: dbPassword ? [dbPassword] : [], ...secretOutputs },
        );
        this.envHash = pulumi.secret(pulumi.output(args.envText).apply(sha256));
        this.registerOutputs({});
    }
}
