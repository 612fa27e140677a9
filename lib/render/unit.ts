/**
 * Renders the systemd unit that brings the stack back after a reboot: a
 * oneshot that runs compose from `current`, so it always starts the active release.
 */
import { vmPaths } from "./paths";

export function unitName(app: string): string {
    return `${app}.service`;
}

export function renderUnit(app: string, user: string): string {
    const p = vmPaths(app);
    const compose = `/usr/bin/docker compose --project-name ${app} --project-directory ${p.current} --file ${p.current}/compose.yaml --env-file ${p.env}`;
    return `# Managed by onevm (pulumi up).
[Unit]
Description=${app} compose runtime (onevm)
After=docker.service network-online.target
Wants=network-online.target
Requires=docker.service

[Service]
Type=oneshot
User=${user}
WorkingDirectory=${p.current}
RemainAfterExit=yes
ExecStart=${compose} up -d --remove-orphans
ExecStop=${compose} stop
TimeoutStartSec=300
TimeoutStopSec=120

[Install]
WantedBy=multi-user.target
`;
}
