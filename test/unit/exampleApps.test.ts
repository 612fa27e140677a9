/**
 * Each example app as onevm reads it: its stack.yaml parses, fits its Compose file, renders
 * a release, and that release passes `docker compose config` (what the program checks
 * before anything reaches a VM).
 */
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { describeApp } from "../../lib/app";
import { parseConfig } from "../../lib/config";
import { envKeys, renderRelease } from "../../lib/release";
import { checkWithDockerCompose } from "../../program/composeCheck";
import { readComposeFile } from "../../program/compose";

const ROOT = path.resolve(__dirname, "..", "..");
const examples = fs.readdirSync(path.join(ROOT, "examples")).filter((e) => fs.existsSync(path.join(ROOT, "examples", e, "stack.yaml")));

test("there are five examples", () => {
    expect(examples.sort()).toEqual(["booking-bot", "go-api", "nginx-bot", "web-platform", "worker-bot"]);
});

describe.each(examples)("%s", (example) => {
    const stack = parse(fs.readFileSync(path.join(ROOT, "examples", example, "stack.yaml"), "utf8")).config as Record<string, unknown>;
    const values: Record<string, string> = {
        "onevm:host": "127.0.0.1",
        "onevm:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nk\n-----END OPENSSH PRIVATE KEY-----\n",
        "onevm:hostPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey",
        ...Object.fromEntries(Object.entries(stack).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])),
    };
    for (const key of Object.keys((stack["onevm:secrets"] as object) ?? {})) values[`app:${key}`] = "placeholder-secret";

    test("its stack.yaml and Compose file describe an app onevm renders, and docker compose accepts the result", () => {
        const cfg = parseConfig((k) => values[k], { isSecret: () => true });
        const source = readComposeFile(cfg.appDescription.composeFile, ROOT);
        const model = describeApp(cfg, { file: source.file, doc: source.doc }, source.readFile);
        expect(model.app).toBe(example);
        const release = renderRelease({
            model,
            releaseId: "v1",
            user: "deploy",
            logMaxSize: cfg.appDescription.logMaxSize,
            logMaxFiles: cfg.appDescription.logMaxFiles,
            defaultLimits: cfg.appDescription.defaultLimits,
            limits: cfg.appDescription.limits,
            proxy: model.web ? { image: "caddy:2", configDir: `/opt/${model.app}/shared/tls`, tls: cfg.tls !== undefined } : undefined,
            settings: { healthRetries: 60, healthIntervalSeconds: 1, backupKeep: 7, backupMinFreeMb: 2048 },
        });
        expect(checkWithDockerCompose(release.files, envKeys(model), model.app)).toEqual({ ok: true });
    });
});
