/** Paths on the VM, from docs/vm-contract.md. */

/**
 * Host-wide onevm state (root-owned, 755), shared by every app on the VM:
 * `owner.lock` serialises ownership claims, `activate.lock` (666) serialises activations.
 */
export const HOST_STATE_DIR = "/var/lib/onevm";
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
