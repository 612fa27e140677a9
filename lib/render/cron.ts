/** Renders the /etc/cron.d entry of the scheduled backup. */
import { cronSchedule } from "../validate";
import { vmPaths } from "./paths";

export function cronName(app: string): string {
    return `onevm-${app}-backup`;
}

export interface BackupCronOptions {
    app: string;
    user: string;
    schedule: string;
    keep: number;
    minFreeMb: number;
}

export function renderBackupCron(o: BackupCronOptions): string {
    const problem = cronSchedule(o.schedule);
    if (problem) {
        throw new Error(`backup schedule ${JSON.stringify(o.schedule)} ${problem}`);
    }
    const p = vmPaths(o.app);
    const command = `${p.bin}/backup.sh --app-dir ${p.root} --type scheduled --keep ${o.keep} --min-free-mb ${o.minFreeMb}`;
    return `# Managed by onevm (pulumi up): scheduled PostgreSQL backup of ${o.app}.
SHELL=/bin/bash
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
${o.schedule.trim().split(/\s+/).join(" ")} ${o.user} ${command} >/dev/null 2>&1
`;
}
