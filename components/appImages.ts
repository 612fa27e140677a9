import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as docker from "@pulumi/docker";
import { BuildGroup } from "../lib/builds";

export interface AppImagesArgs {
    /** The builds of the release being deployed (lib/builds.ts groupBuilds). */
    readonly builds: BuildGroup[];
    /** The Compose file's directory, relative to the Pulumi project directory (build paths are relative to it). */
    readonly composeDir: string;
    /** onevm:registry and its password (secret): the push logs in with them. */
    readonly registry: { server: string; username: string; password: pulumi.Input<string> };
    /** What must hold before a build starts: the registry accepted the credentials. */
    readonly after: pulumi.Input<unknown>;
}

/**
 * The images onevm builds from the Compose file's build contexts with @pulumi/docker (the
 * local Docker engine, BuildKit) and pushes to onevm:registry, one docker.Image per
 * distinct build, tagged <server>/<namespace>/<name>:<releaseId>. The push reports each
 * image's digest, which the release pins.
 */
export class AppImages extends pulumi.ComponentResource {
    /** Built tag -> the repo digest the push reported (name@sha256:...). */
    public readonly repoDigests: pulumi.Output<Record<string, string>>;

    constructor(name: string, args: AppImagesArgs, opts?: pulumi.ComponentResourceOptions) {
        super("onevm:index:AppImages", name, {}, opts);
        const images = args.builds.map((group) => {
            const context = path.posix.isAbsolute(group.spec.context) ? group.spec.context : path.posix.join(args.composeDir, group.spec.context);
            const image = new docker.Image(
                `${name}-${group.name}`,
                {
                    // Waits for the gate: a refused password stops the program before any build.
                    imageName: pulumi.all([args.after]).apply(() => group.image),
                    build: {
                        context,
                        // The provider reads it relative to the working directory, Compose relative to the context.
                        dockerfile: path.posix.join(context, group.spec.dockerfile),
                        ...(group.spec.target ? { target: group.spec.target } : {}),
                        ...(Object.keys(group.spec.args).length > 0 ? { args: group.spec.args } : {}),
                        ...(group.spec.network ? { network: group.spec.network } : {}),
                        ...(group.spec.platform ? { platform: group.spec.platform } : {}),
                    },
                    registry: { server: args.registry.server, username: args.registry.username, password: pulumi.secret(args.registry.password) },
                },
                { parent: this },
            );
            return image.repoDigest.apply((digest) => [group.image, digest] as const);
        });
        this.repoDigests = pulumi.all(images).apply((pairs) => Object.fromEntries(pairs));
        this.registerOutputs({ repoDigests: this.repoDigests });
    }
}
