/**
 * The command lines onevm runs on the VM, rendered as text so unit tests check them and
 * `pulumi preview --diff` shows them. They carry no secret: secrets travel on stdin.
 */
import { vmPaths } from "./render/paths";

/** Single-quotes a word for POSIX sh. */
export function shq(word: string): string {
    return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function script(app: string, name: string, args: Array<string | number>, sudo = false): string {
    const path = `${vmPaths(app).bin}/${name}`;
    return [...(sudo ? ["sudo", "-n"] : []), path, ...args.map((a) => shq(String(a)))].join(" ");
}

/**
 * Installs the remote scripts: a base64 tar.gz on stdin is unpacked into
 * tools/<hash>/ and `bin` is switched to it atomically. POSIX sh, because the login
 * shell of the deploy user is not known before bootstrap.
 */
export function installToolsCommand(app: string, user: string, hash: string): string {
    const p = vmPaths(app);
    const dir = `${p.root}/tools/${hash}`;
    return [
        "set -eu",
        `sudo -n install -d -o ${shq(user)} -g "$(id -gn ${shq(user)})" -m 755 ${p.root} ${p.root}/tools`,
        `if [ -f ${dir}/.complete ]; then cat >/dev/null; else`,
        `  tmp=$(mktemp -d ${p.root}/tools/.tmp.XXXXXX)`,
        `  base64 -d | tar -xzf - -C "$tmp"`,
        `  touch "$tmp/.complete"; rm -rf ${dir}; mv -T "$tmp" ${dir}`,
        "fi",
        `ln -sfn tools/${hash} ${p.root}/.bin.tmp && mv -T ${p.root}/.bin.tmp ${p.bin}`,
        `find ${p.root}/tools -mindepth 1 -maxdepth 1 ! -name ${hash} -exec rm -rf {} +`,
    ].join("\n");
}

export function bootstrapCommand(app: string, user: string): string {
    return script(app, "bootstrap-host.sh", ["--app", app, "--user", user], true);
}

export function uninstallCommand(app: string, unit: string, cron: string): string {
    return script(app, "uninstall.sh", ["--app", app, "--unit", unit, "--cron", cron], true);
}

export function writeEnvCommand(app: string): string {
    return script(app, "write-env.sh", ["--app-dir", vmPaths(app).root]);
}

export function installReleaseCommand(app: string, releaseId: string, hash: string): string {
    return script(app, "install-release.sh", ["--app-dir", vmPaths(app).root, "--id", releaseId, "--hash", hash]);
}

export interface ActivateOptions {
    app: string;
    releaseId: string;
    operator: string;
    healthRetries: number;
    healthIntervalSeconds: number;
    keepReleases: number;
}

/** Activation, then pruning of old releases (never current or previous). */
export function activateCommand(o: ActivateOptions): string {
    const root = vmPaths(o.app).root;
    const activate = script(o.app, "activate.sh", [
        "--app-dir",
        root,
        "--release",
        o.releaseId,
        "--operator",
        o.operator,
        "--health-retries",
        o.healthRetries,
        "--health-interval",
        o.healthIntervalSeconds,
    ]);
    const prune = script(o.app, "prune-releases.sh", ["--app-dir", root, "--keep", o.keepReleases]);
    return `${activate} && ${prune}`;
}

export function installUnitCommand(app: string, unit: string): string {
    return script(app, "install-unit.sh", ["--name", unit], true);
}

export function installCronCommand(app: string, cron: string): string {
    return script(app, "install-cron.sh", ["--name", cron], true);
}

/** The uid of the proxy image's user (app/images/caddy): owner of the TLS key on the VM. */
export const PROXY_UID = 480;

/** Installs shared/tls (Caddyfile, cert, key) from a base64 tar.gz on stdin; reloads a running proxy. */
export function installTlsCommand(app: string): string {
    return script(app, "install-tls.sh", ["--app-dir", vmPaths(app).root, "--proxy-uid", PROXY_UID], true);
}

/** Removes shared/tls when TLS ingress is turned off (uninstall.sh removes it on destroy). */
export function removeTlsCommand(app: string): string {
    return `sudo -n rm -rf -- ${vmPaths(app).tls}`;
}
