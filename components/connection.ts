import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";

/** How every remote command reaches the VM. The host key is always pinned. */
export interface VmConnection {
    host: pulumi.Input<string>;
    port: pulumi.Input<number>;
    user: pulumi.Input<string>;
    privateKey: pulumi.Input<string>;
    /** The VM's SSH host public key (OpenSSH line); connections refuse any other key. */
    hostKey: pulumi.Input<string>;
}

export function commandConnection(c: VmConnection): command.types.input.remote.ConnectionArgs {
    return {
        host: c.host,
        port: c.port,
        user: c.user,
        privateKey: pulumi.secret(c.privateKey),
        hostKey: c.hostKey,
        // A fresh droplet's sshd may take a minute: retry visibly instead of failing.
        dialErrorLimit: 30,
        perDialTimeout: 10,
    };
}

/**
 * Options every onevm remote command shares: never put previous outputs in the remote
 * environment (needs sshd AcceptEnv and could echo secrets), and treat output as secret.
 */
export const remoteDefaults = {
    addPreviousOutputInEnv: false,
} as const;

/**
 * `triggers` for a CopyToRemote: the machine it copies to. The command provider updates a
 * resource whose connection changed, and a CopyToRemote's update copies only when its
 * source or path changed: without this a new droplet (or a rebuilt VM) would never get
 * the files. A replaced CopyToRemote deletes nothing.
 */
export function onAnotherMachine(c: VmConnection): pulumi.Input<unknown[]> {
    return [c.host, c.hostKey];
}

export const secretOutputs: pulumi.CustomResourceOptions = { additionalSecretOutputs: ["stdout", "stderr"] };

/**
 * The same connection, usable only once `gate` resolves: every remote command waits for
 * it, and none runs when it fails. The gate is what must hold before onevm touches the VM
 * (the VM's host key proven to be the pinned one).
 */
export function connectionAfter(gate: pulumi.Input<unknown>, c: VmConnection): VmConnection {
    return { ...c, host: pulumi.all([gate, c.host]).apply(([, host]) => host) };
}
