/**
 * The cloud-init user data of a droplet onevm creates: the deploy user, the pinned SSH
 * host key, Docker Engine + Compose v2 (Ubuntu 24.04 packages) and the DigitalOcean
 * volume that holds the database's data. Pure: tests read the text.
 */
import { stringify } from "yaml";

export interface CloudInitOptions {
    app: string;
    /** Login user with passwordless sudo (`deploy`). */
    user: string;
    /** OpenSSH public key allowed to log in as `user`. */
    authorizedKey: string;
    /** The host key pair sshd must use, so connections can pin it from the first one. */
    hostKeyPrivate: string;
    hostKeyPublic: string;
    /** DigitalOcean volume name: the disk appears as /dev/disk/by-id/scsi-0DO_Volume_<name>. */
    volumeName: string;
    /** Seconds to wait for the volume to be attached (it is attached after the droplet exists). */
    volumeWaitSeconds?: number;
}

export const volumeDevice = (volumeName: string) => `/dev/disk/by-id/scsi-0DO_Volume_${volumeName}`;
/** Where the volume is mounted; the database's volumes are bound to directories under it (renderCompose's dataDir). */
export const dataMount = (app: string) => `/mnt/${app}-data`;

/**
 * Waits for the volume, formats it only when it carries no file system (a volume from a
 * previous droplet keeps its data) and mounts it by UUID with nofail; the database's
 * directories on it are made by bootstrap-host.sh. Every step is idempotent.
 */
export function renderMountScript(o: CloudInitOptions): string {
    const dev = volumeDevice(o.volumeName);
    const mnt = dataMount(o.app);
    const wait = o.volumeWaitSeconds ?? 600;
    return [
        "#!/bin/bash",
        "set -euo pipefail",
        `dev=${dev}`,
        `for i in $(seq 1 ${wait}); do [ -b "$dev" ] && break; sleep 1; done`,
        `[ -b "$dev" ] || { echo "onevm: volume ${o.volumeName} not attached after ${wait}s" >&2; exit 1; }`,
        'if ! blkid -o value -s TYPE "$dev" >/dev/null 2>&1; then mkfs.ext4 -q -L onevm-data "$dev"; fi',
        `mkdir -p ${mnt}`,
        'uuid=$(blkid -o value -s UUID "$dev")',
        `grep -q "^UUID=$uuid " /etc/fstab || echo "UUID=$uuid ${mnt} ext4 defaults,nofail,discard,noatime 0 2" >> /etc/fstab`,
        `mountpoint -q ${mnt} || mount ${mnt}`,
        "",
    ].join("\n");
}

export function renderCloudInit(o: CloudInitOptions): string {
    const doc = {
        users: [
            "default",
            {
                name: o.user,
                groups: ["sudo"],
                shell: "/bin/bash",
                sudo: "ALL=(ALL) NOPASSWD:ALL",
                lock_passwd: true,
                ssh_authorized_keys: [o.authorizedKey.trim()],
            },
        ],
        disable_root: true,
        ssh_pwauth: false,
        // Only the generated host key: no other key types that a client could be offered.
        ssh_deletekeys: true,
        ssh_genkeytypes: [],
        ssh_keys: { ed25519_private: o.hostKeyPrivate, ed25519_public: o.hostKeyPublic.trim() },
        package_update: true,
        packages: ["docker.io", "docker-compose-v2"],
        write_files: [{ path: "/usr/local/sbin/onevm-mount-data", permissions: "0755", owner: "root:root", content: renderMountScript(o) }],
        runcmd: [["/usr/local/sbin/onevm-mount-data"], ["systemctl", "enable", "--now", "docker"]],
    };
    return `#cloud-config\n# Rendered by onevm for ${o.app}. Changing it replaces the droplet; the data volume stays.\n${stringify(doc, { lineWidth: 0 })}`;
}
