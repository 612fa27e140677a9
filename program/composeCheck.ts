/**
 * Checks a rendered release with `docker compose config` on this machine before anything
 * reaches the VM: interpolation, schema, the files it binds. The .env it reads holds a
 * placeholder for every key, never a real value.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BundleFile } from "../lib/bundle";

export type ComposeCheck = { ok: true } | { ok: false; problem: string } | { ok: "skipped"; reason: string };

export function checkWithDockerCompose(files: BundleFile[], envKeys: string[], project: string): ComposeCheck {
    const version = spawnSync("docker", ["compose", "version", "--short"], { encoding: "utf8" });
    if (version.status !== 0) {
        return { ok: "skipped", reason: "`docker compose` is not installed here, so the rendered Compose file is checked on the VM only" };
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-compose-"));
    try {
        for (const f of files) {
            fs.mkdirSync(path.dirname(path.join(dir, f.path)), { recursive: true });
            fs.writeFileSync(path.join(dir, f.path), f.content);
        }
        fs.writeFileSync(path.join(dir, ".env"), envKeys.map((k) => `${k}=placeholder`).join("\n") + "\n");
        const r = spawnSync("docker", ["compose", "-p", project, "--project-directory", dir, "-f", path.join(dir, "compose.yaml"), "config", "--quiet"], {
            encoding: "utf8",
            env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? os.homedir() },
        });
        if (r.status !== 0) {
            const message = (r.stderr || r.stdout || `exit ${r.status}`).split(dir).join("<release>").trim();
            return { ok: false, problem: `the rendered Compose file does not pass \`docker compose config\`: ${message}` };
        }
        return { ok: true };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}
