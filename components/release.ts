import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { ImageArchive } from "../lib/images";
import { activateCommand, ActivateOptions, installReleaseCommand, pinImagesCommand } from "../lib/remote";
import { vmPaths } from "../lib/render/paths";
import { commandConnection, onAnotherMachine, remoteDefaults, secretOutputs, VmConnection } from "./connection";

export interface ReleaseArgs {
    readonly connection: VmConnection;
    /** What to activate and how to judge it (app, release, operator, health gate, pruning). */
    readonly activation: ActivateOptions;
    /** Rendered compose file; also shown by `pulumi preview --diff`. */
    readonly composeText: string;
    /** base64 tar.gz of the rendered release (secret-free). */
    readonly bundle: pulumi.Input<string>;
    /** The rendered bundle's hash and the release's identity (docs/vm-contract.md). */
    readonly contentHash: string;
    readonly releaseHash: string;
    /** `docker save` archives to upload for `archive` image transport (empty for `registry`). */
    readonly imageArchives: ImageArchive[];
    /** Hash of shared/.env (secret): a change restarts the services whose environment changed. */
    readonly envHash: pulumi.Input<string>;
    /** registry transport: service -> digest-pinned image (releases/<id>/images.lock). */
    readonly imagesLock?: pulumi.Input<Record<string, string>>;
}

/**
 * One release of the compose stack: its images (when shipped as archives), its bundle in
 * releases/<id>/, and its activation (lock, pre-deploy backup, migrate, atomic switch,
 * start, health gate, automatic switch back on failure) run by vm/activate.sh.
 */
export class Release extends pulumi.ComponentResource {
    public readonly releaseId: string;
    public readonly activation: command.remote.Command;

    constructor(name: string, args: ReleaseArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:Release", name, {}, opts);
        const connection = commandConnection(args.connection);
        const app = args.activation.app;
        this.releaseId = args.activation.releaseId;

        const images = args.imageArchives.map(
            (archive) =>
                new command.remote.CopyToRemote(
                    `${name}-image-${path.basename(archive.path, ".tar")}`,
                    {
                        connection,
                        source: archiveAsset(archive),
                        remotePath: `${vmPaths(app).images}/${path.basename(archive.path)}`,
                        triggers: onAnotherMachine(args.connection),
                    },
                    { parent: this },
                ),
        );

        const bundle = new command.remote.Command(
            `${name}-bundle`,
            {
                ...remoteDefaults,
                connection,
                create: installReleaseCommand(app, this.releaseId, args.contentHash, args.releaseHash),
                stdin: args.bundle,
            },
            { parent: this, ...secretOutputs },
        );

        // The digests each service runs: activation pulls exactly these and tags them as the
        // compose file's references, so a tag moved later changes nothing this release runs.
        const lock =
            args.imagesLock === undefined
                ? undefined
                : new command.remote.Command(
                      `${name}-images-lock`,
                      { ...remoteDefaults, connection, create: pulumi.output(args.imagesLock).apply((l) => pinImagesCommand(app, this.releaseId, l)) },
                      { parent: this, dependsOn: [bundle], ...secretOutputs },
                  );

        this.activation = new command.remote.Command(
            `${name}-activate`,
            {
                ...remoteDefaults,
                connection,
                create: activateCommand(args.activation),
                // Any of these changing means a new activation; the previous one has nothing to undo.
                triggers: [
                    this.releaseId,
                    args.composeText,
                    pulumi.secret(args.envHash),
                    ...(args.imagesLock === undefined ? [] : [pulumi.output(args.imagesLock).apply((l) => JSON.stringify(l))]),
                ],
            },
            { parent: this, dependsOn: [bundle, ...images, ...(lock ? [lock] : [])], ...secretOutputs },
        );
        this.registerOutputs({ releaseId: this.releaseId });
    }
}

/**
 * The archive as a FileAsset, carrying its recorded sha256 when there is one. The SDK
 * sends every own property of an asset and the engine takes `hash` as its content hash
 * instead of reading the file: hashing the ~1 GB of archives took it 2-4 s on every
 * preview and up.
 */
export function archiveAsset(archive: ImageArchive): pulumi.asset.FileAsset {
    const asset = new pulumi.asset.FileAsset(archive.path);
    return archive.sha256 ? Object.assign(asset, { hash: archive.sha256 }) : asset;
}
