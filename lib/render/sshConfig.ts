/**
 * The ssh_config block a stack prints (output `sshConfig`) so that plain `ssh <alias>`
 * reaches the VM as onevm does: the right user, port and key, and the pinned host key
 * (served by KnownHostsCommand, OpenSSH 8.5+), refusing any other. Pure.
 */
export interface SshConfigOptions {
    /** The Host alias, e.g. onevm-shop-prod. */
    alias: string;
    host: string;
    port: number;
    user: string;
    /** The pinned host key line (TYPE BASE64). */
    hostPublicKey: string;
    /** Where the operator keeps the private key. */
    identityFile: string;
}

export function sshHostAlias(app: string, stack: string): string {
    return `onevm-${app}-${stack}`.toLowerCase().replace(/[^a-z0-9._-]/g, "-");
}

export function renderSshConfig(o: SshConfigOptions): string {
    return [
        `Host ${o.alias}`,
        `  HostName ${o.host}`,
        `  Port ${o.port}`,
        `  User ${o.user}`,
        `  IdentityFile ${o.identityFile}`,
        "  IdentitiesOnly yes",
        // The pinned key only: no known_hosts file is read or written for this host.
        "  StrictHostKeyChecking yes",
        "  UserKnownHostsFile /dev/null",
        `  KnownHostsCommand /bin/echo %H ${o.hostPublicKey.trim()}`,
        "",
    ].join("\n");
}
