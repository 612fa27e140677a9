import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { registryLoginCommand, registryLogoutCommand } from "../lib/remote";
import { commandConnection, remoteDefaults, secretOutputs, VmConnection } from "./connection";

export interface RegistryLoginArgs {
    readonly connection: VmConnection;
    readonly app: string;
    /** onevm:registry: host[:port] and user (not secret: preview --diff shows them). */
    readonly server: string;
    readonly username: string;
    /** PEM of the registry's private CA, trusted by the VM's Docker through certs.d. */
    readonly caCertificate?: string;
    /** onevm:registryPassword (secret): stdin only, never a command line or a log. */
    readonly password: pulumi.Input<string>;
}

/**
 * The VM's Docker logged in to the app's registry as the deploy user (~/.docker/config.json,
 * mode 600), its CA installed first. A rotated password changes the command's stdin, which
 * runs the login again; `pulumi destroy` (or removing onevm:registry) logs out.
 */
export class RegistryLogin extends pulumi.ComponentResource {
    /** Depend on this before pulling. */
    public readonly loggedIn: command.remote.Command;

    constructor(name: string, args: RegistryLoginArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:RegistryLogin", name, {}, opts);
        const login = { server: args.server, username: args.username, caCertificate: args.caCertificate };
        this.loggedIn = new command.remote.Command(
            `${name}-login`,
            {
                ...remoteDefaults,
                connection: commandConnection(args.connection),
                create: registryLoginCommand(args.app, login),
                delete: registryLogoutCommand(args.app, login),
                stdin: pulumi.secret(args.password),
                logging: "stderr",
            },
            { parent: this, ...secretOutputs },
        );
        this.registerOutputs({});
    }
}
