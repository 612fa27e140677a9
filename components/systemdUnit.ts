import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { installUnitCommand } from "../lib/remote";
import { commandConnection, remoteDefaults, secretOutputs, VmConnection } from "./connection";

export interface SystemdUnitArgs {
    readonly connection: VmConnection;
    readonly app: string;
    /** Unit file name, e.g. `bot.service`. */
    readonly unitName: string;
    /** Rendered unit text (lib/render/unit.ts). */
    readonly unitText: string;
}

/** The systemd unit that starts the current release at boot (reboot persistence). */
export class SystemdUnit extends pulumi.ComponentResource {
    constructor(name: string, args: SystemdUnitArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:SystemdUnit", name, {}, opts);
        new command.remote.Command(
            `${name}-unit`,
            {
                ...remoteDefaults,
                connection: commandConnection(args.connection),
                create: installUnitCommand(args.app, args.unitName),
                stdin: args.unitText,
            },
            { parent: this, ...secretOutputs },
        );
        this.registerOutputs({});
    }
}
