import * as pulumi from "@pulumi/pulumi";
import * as digitalocean from "@pulumi/digitalocean";
import * as tls from "@pulumi/tls";
import { renderCloudInit } from "../lib/render/cloudInit";
import { VmConnection } from "./connection";

export interface DigitalOceanVmArgs {
    /** App name: names the droplet, the volume and the mount point. */
    readonly app: string;
    /** Login user cloud-init creates with passwordless sudo. */
    readonly user: string;
    readonly region: string;
    readonly size: string;
    readonly image: string;
    readonly tags: string[];
    /** Size of the volume that holds PostgreSQL's data. */
    readonly volumeSizeGb: number;
    /** Attach a reserved IP, so the address survives a droplet replacement. */
    readonly reservedIp: boolean;
    /** The operator's own deploy public key; when absent a key pair is generated (private key secret in state). */
    readonly deployPublicKey?: string;
    /** The private key matching deployPublicKey (secret); required with it. */
    readonly deployPrivateKey?: pulumi.Input<string>;
}

/**
 * A droplet onevm creates: deploy and host keys made with @pulumi/tls, the SSH key, the
 * data volume and its attachment, cloud-init that pins the host key and mounts the volume,
 * and an optional reserved IP. The droplet and the volume are protected: a change that
 * would replace them (image, user data) stops `pulumi up` until it is unprotected on purpose.
 */
export class DigitalOceanVm extends pulumi.ComponentResource {
    public readonly connection: VmConnection;
    /** The address to reach the VM at: the reserved IP when there is one, else the droplet's IPv4. */
    public readonly address: pulumi.Output<string>;
    public readonly droplet: digitalocean.Droplet;
    public readonly volume: digitalocean.Volume;
    /** Depend on this before any remote command: the volume is attached (and the IP assigned). */
    public readonly ready: pulumi.Resource[];

    constructor(name: string, args: DigitalOceanVmArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:DigitalOceanVm", name, {}, opts);
        const parent = { parent: this };

        let publicKey: pulumi.Input<string>;
        let privateKey: pulumi.Input<string>;
        if (args.deployPublicKey) {
            publicKey = args.deployPublicKey;
            privateKey = args.deployPrivateKey ?? "";
        } else {
            const deployKey = new tls.PrivateKey(`${name}-deploy-key`, { algorithm: "ED25519" }, parent);
            publicKey = deployKey.publicKeyOpenssh;
            privateKey = deployKey.privateKeyOpenssh;
        }
        const hostKey = new tls.PrivateKey(`${name}-host-key`, { algorithm: "ED25519" }, parent);
        const sshKey = new digitalocean.SshKey(`${name}-ssh-key`, { name: `${args.app}-deploy`, publicKey }, parent);

        const volumeName = `${args.app}-data`;
        this.volume = new digitalocean.Volume(
            `${name}-data`,
            {
                name: volumeName,
                region: args.region,
                size: args.volumeSizeGb,
                initialFilesystemType: "ext4",
                description: `onevm ${args.app}: PostgreSQL data (outlives the droplet)`,
            },
            { ...parent, protect: true },
        );

        const userData = pulumi.secret(
            pulumi.all([publicKey, hostKey.privateKeyOpenssh, hostKey.publicKeyOpenssh]).apply(([pub, hostPriv, hostPub]) =>
                renderCloudInit({ app: args.app, user: args.user, authorizedKey: pub, hostKeyPrivate: hostPriv, hostKeyPublic: hostPub, volumeName }),
            ),
        );
        this.droplet = new digitalocean.Droplet(
            `${name}-droplet`,
            {
                name: args.app,
                image: args.image,
                region: args.region,
                size: args.size,
                tags: args.tags,
                monitoring: true,
                sshKeys: [sshKey.id],
                userData,
            },
            { ...parent, protect: true },
        );
        const dropletId = this.droplet.id.apply(Number);

        // Detach from the old droplet before attaching to its replacement.
        const attachment = new digitalocean.VolumeAttachment(
            `${name}-data-attachment`,
            { dropletId, volumeId: this.volume.id },
            { ...parent, deleteBeforeReplace: true },
        );
        this.ready = [attachment];

        let address: pulumi.Output<string> = this.droplet.ipv4Address;
        if (args.reservedIp) {
            const ip = new digitalocean.ReservedIp(`${name}-ip`, { region: args.region }, { ...parent, protect: true });
            const assignment = new digitalocean.ReservedIpAssignment(`${name}-ip-assignment`, { ipAddress: ip.ipAddress, dropletId }, parent);
            this.ready.push(assignment);
            address = pulumi.all([ip.ipAddress, assignment.id]).apply(([a]) => a);
        }
        this.address = address;
        this.connection = {
            host: this.address,
            port: 22,
            user: args.user,
            privateKey: pulumi.secret(privateKey),
            hostKey: hostKey.publicKeyOpenssh.apply((k) => k.trim()),
        };
        this.registerOutputs({ address: this.address, dropletId: this.droplet.id, volumeId: this.volume.id });
    }
}
