/**
 * The program's inputs, each checked before any resource that touches the VM is
 * registered: the stack config, the user's Compose file, and the stack's own record of
 * earlier releases. Any problem ends the program with one clean message (pulumi.RunError:
 * no stack trace), and nothing changes anywhere.
 */
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { AppModel, describeApp, releaseContent } from "../lib/app";
import { ConfigError, NAMESPACE, OnevmConfig, parseConfig } from "../lib/config";
import { decideRelease, PreviousOutputs, ReleaseDecision, ReleaseIdReusedError } from "../lib/releaseGuard";
import { contextDigest } from "./buildContext";
import { readComposeFile } from "./compose";

/** Ends the program with one clean error block. */
export function refuse(message: string): never {
    throw new pulumi.RunError(message);
}

function orRefuse<T>(f: () => T): T {
    try {
        return f();
    } catch (e) {
        if (e instanceof ConfigError || e instanceof ReleaseIdReusedError) {
            refuse(e.message);
        }
        throw e;
    }
}

/** Whether a config key holds a secret (the SDK knows; older SDKs: assume yes). */
function isSecretKey(fullKey: string): boolean {
    const check = (pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
    return check ? check(fullKey) : true;
}

export function loadConfig(): OnevmConfig {
    return orRefuse(() =>
        parseConfig((key) => pulumi.runtime.getConfig(key), {
            operator: os.userInfo().username,
            isSecret: isSecretKey,
        }),
    );
}

/**
 * The app the config describes: the Compose file from disk with onevm:images, and the
 * builds onevm makes (their contexts read here, their args from this environment).
 */
export function loadConfiguredApp(cfg: OnevmConfig): AppModel {
    return orRefuse(() => {
        const source = readComposeFile(cfg.appDescription.composeFile);
        const dir = path.dirname(path.resolve(cfg.appDescription.composeFile));
        return describeApp(cfg, { file: source.file, doc: source.doc }, source.readFile, {
            env: process.env,
            contextDigest: (context, dockerfile) => contextDigest(path.resolve(dir, context), path.resolve(dir, context, dockerfile)),
        });
    });
}

/** This stack's outputs from its last `up`: which release runs and what each release ID pinned. */
export async function previousOutputs(): Promise<PreviousOutputs> {
    const self = new pulumi.StackReference("self", { name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}` });
    const value = async (name: string) => (await self.getOutputDetails(name)).value;
    const [releaseId, previousReleaseId, releases, releaseSource] = await Promise.all([
        value("releaseId"),
        value("previousReleaseId"),
        value("releases"),
        value("releaseSource"),
    ]);
    return {
        releaseId: typeof releaseId === "string" && releaseId !== "" ? releaseId : undefined,
        previousReleaseId: typeof previousReleaseId === "string" && previousReleaseId !== "" ? previousReleaseId : undefined,
        releases: typeof releases === "object" && releases !== null ? (releases as PreviousOutputs["releases"]) : undefined,
        releaseSource: releaseSource === "record" ? "record" : releaseSource === "config" ? "config" : undefined,
    };
}

export interface ReleasePlan {
    decision: ReleaseDecision;
    /** The app of the release to deploy: the configured one, or an earlier one from the record. */
    model: AppModel;
}

/** What this deploy means and which content it runs; a reused release ID is refused. */
export function planRelease(cfg: OnevmConfig, configured: AppModel, previous: PreviousOutputs): ReleasePlan {
    return orRefuse(() => {
        const decision = decideRelease(previous, cfg.releaseId, configured.releaseHash);
        if (decision.source === "config") {
            return { decision, model: configured };
        }
        const entry = previous.releases![cfg.releaseId];
        const content = typeof entry === "object" ? entry.content! : undefined;
        if (!content) {
            throw new ConfigError([`${NAMESPACE}:releaseId ${cfg.releaseId}: no recorded content to deploy it from`]);
        }
        const files = new Map(content.files.map((f) => [f.path, f.content]));
        const model = describeApp(
            cfg,
            { file: `the Compose file of release ${cfg.releaseId} (recorded)`, doc: JSON.parse(content.compose), images: content.images, builds: content.builds },
            (rel) => files.get(rel),
        );
        return { decision, model };
    });
}

export { releaseContent };
