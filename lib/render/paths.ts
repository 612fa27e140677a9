/** Paths on the VM, from docs/vm-contract.md. */
export function appDir(app: string): string {
    return `/opt/${app}`;
}

export function vmPaths(app: string) {
    const root = appDir(app);
    return {
        root,
        bin: `${root}/bin`,
        releases: `${root}/releases`,
        current: `${root}/current`,
        env: `${root}/shared/.env`,
        tls: `${root}/shared/tls`,
        backups: `${root}/backups`,
        images: `${root}/images`,
        state: `${root}/state`,
        logs: `${root}/logs`,
    };
}
