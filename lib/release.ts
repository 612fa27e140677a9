/**
 * One release as it goes on the VM: the rendered compose file, release.json (identity,
 * images, roles, settings: docs/vm-contract.md), .env.example, the systemd unit and the
 * files the Compose file uses. Pure; byte-identical output for identical input.
 */
import { AppModel, PROXY_SERVICE } from "./app";
import { BundleFile, contentHash, tarball } from "./bundle";
import { DATABASE_ENV_KEYS, Limits } from "./config";
import { PROXY_LISTEN_PORT } from "./render/caddyfile";
import { ProxyOptions, renderCompose } from "./render/compose";
import { renderEnvExample } from "./render/env";
import { renderUnit, unitName } from "./render/unit";

export interface ReleaseOptions {
    model: AppModel;
    releaseId: string;
    /** The deploy user (the unit runs compose as it). */
    user: string;
    logMaxSize: string;
    logMaxFiles: number;
    defaultLimits: Limits;
    limits: Record<string, Limits>;
    proxy?: ProxyOptions;
    dataDir?: string;
    settings: ReleaseSettings;
}

/** Defaults the VM scripts take from the current release when a flag does not give them. */
export interface ReleaseSettings {
    healthRetries: number;
    healthIntervalSeconds: number;
    backupKeep: number;
    backupMinFreeMb: number;
}

export interface RenderedRelease {
    composeText: string;
    /** Every file of the bundle, release.json included. */
    files: BundleFile[];
    /** sha256 of the rendered bundle without release.json (install-release.sh --hash). */
    contentHash: string;
    releaseHash: string;
    /** Every service's image, the proxy's included. */
    images: Record<string, string>;
}

/** The keys shared/.env holds for this app: its secrets and the database's. */
export function envKeys(model: AppModel): string[] {
    const keys = Object.keys(model.secrets);
    if (model.database) keys.push(...DATABASE_ENV_KEYS, model.database.urlKey);
    return [...new Set(keys)].sort();
}

export function renderRelease(o: ReleaseOptions): RenderedRelease {
    const { model } = o;
    const composeText = renderCompose({
        model,
        releaseId: o.releaseId,
        logMaxSize: o.logMaxSize,
        logMaxFiles: o.logMaxFiles,
        defaultLimits: o.defaultLimits,
        limits: o.limits,
        proxy: o.proxy,
        dataDir: o.dataDir,
    });
    const files: BundleFile[] = [
        { path: "compose.yaml", content: composeText },
        { path: ".env.example", content: renderEnvExample(envKeys(model)) },
        { path: `systemd/${unitName(model.app)}`, content: renderUnit(model.app, o.user) },
        ...model.files.map((f) => ({ path: f.path, content: f.content })),
    ];
    const hash = contentHash(files);
    const proxied = model.web !== undefined && o.proxy !== undefined;
    const images: Record<string, string> = proxied ? { ...model.images, [PROXY_SERVICE]: o.proxy!.image } : { ...model.images };
    const releaseJson = {
        release_id: o.releaseId,
        app: model.app,
        release_hash: model.releaseHash,
        content_hash: hash,
        images,
        services: Object.keys(images),
        web: model.web
            ? {
                  service: model.web.service,
                  port: model.web.port,
                  host_port: model.web.hostPort,
                  checks: model.web.checks.map((c) => ({ path: c.path, status: c.status, json: c.json ?? {}, contains: c.contains ?? [] })),
              }
            : null,
        migrate: model.migrate ?? null,
        database: model.database ? { service: model.database.service, user: model.database.user, name: model.database.name } : null,
        proxy: proxied ? { service: PROXY_SERVICE, listen_port: PROXY_LISTEN_PORT } : null,
        settings: {
            health_retries: o.settings.healthRetries,
            health_interval: o.settings.healthIntervalSeconds,
            backup_keep: o.settings.backupKeep,
            backup_min_free_mb: o.settings.backupMinFreeMb,
        },
    };
    return {
        composeText,
        files: [...files, { path: "release.json", content: `${JSON.stringify(releaseJson, null, 2)}\n` }],
        contentHash: hash,
        releaseHash: model.releaseHash,
        images,
    };
}

/** The bundle as the VM's install-release.sh reads it from stdin: base64 of a tar.gz. */
export async function bundleBase64(files: BundleFile[]): Promise<string> {
    return (await tarball(files)).toString("base64");
}
