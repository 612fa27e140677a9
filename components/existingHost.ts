import * as pulumi from "@pulumi/pulumi";
import { VmConnection } from "./connection";

export interface ExistingHostArgs {
    /** DNS name or IP address of the VM. */
    readonly address: pulumi.Input<string>;
    /** sshd port. */
    readonly port: pulumi.Input<number>;
    /** Login user with passwordless sudo. */
    readonly user: pulumi.Input<string>;
    /** Private key of that user (secret). */
    readonly privateKey: pulumi.Input<string>;
    /** The VM's SSH host public key, learned out of band and pinned. */
    readonly hostPublicKey: pulumi.Input<string>;
}

/** The VM when it already exists: the sandbox, or any host reachable over SSH. */
export class ExistingHost extends pulumi.ComponentResource {
    public readonly connection: VmConnection;
    public readonly address: pulumi.Output<string>;

    constructor(name: string, args: ExistingHostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:ExistingHost", name, {}, opts);
        this.address = pulumi.output(args.address);
        this.connection = {
            host: args.address,
            port: args.port,
            user: args.user,
            privateKey: pulumi.secret(args.privateKey),
            hostKey: args.hostPublicKey,
        };
        this.registerOutputs({ address: this.address });
    }
}
