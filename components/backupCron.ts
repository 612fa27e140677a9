import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { installCronCommand, removeCronCommand } from "../lib/remote";
import { commandConnection, remoteDefaults, secretOutputs, VmConnection } from "./connection";

export interface BackupCronArgs {
    readonly connection: VmConnection;
    readonly app: string;
    /** /etc/cron.d file name. */
    readonly cronName: string;
    /** Rendered cron.d text (lib/render/cron.ts). */
    readonly cronText: string;
}

/** The /etc/cron.d entry that runs the verified PostgreSQL backup on schedule; removed with the database role. */
export class BackupCron extends pulumi.ComponentResource {
    constructor(name: string, args: BackupCronArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:BackupCron", name, {}, opts);
        new command.remote.Command(
            `${name}-cron`,
            {
                ...remoteDefaults,
                connection: commandConnection(args.connection),
                create: installCronCommand(args.app, args.cronName),
                delete: removeCronCommand(args.cronName),
                stdin: args.cronText,
            },
            // A replacement must not delete the entry its successor just wrote.
            { parent: this, deleteBeforeReplace: true, ...secretOutputs },
        );
        this.registerOutputs({});
    }
}
