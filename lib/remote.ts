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
export function installToolsCommand(app: string, user: string, hash: string, o: CloudInitWait = {}): string {
    const p = vmPaths(app);
    const dir = `${p.root}/tools/${hash}`;
    return [
        "set -eu",
        // The first command on a fresh droplet: /opt and sudo are only ready after cloud-init.
        ...(o.cloudInitTimeoutSeconds ? [waitForCloudInit(o.cloudInitTimeoutSeconds)] : []),
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

export interface CloudInitWait {
    /** Seconds `cloud-init status --wait` may take before the command fails. */
    cloudInitTimeoutSeconds?: number;
}

/**
 * POSIX sh that waits for cloud-init (a fresh droplet's user, host key, Docker and volume
 * mount) with a bound. Exit 2 is cloud-init's "done, with recoverable warnings": accepted.
 */
export function waitForCloudInit(timeoutSeconds: number): string {
    return [
        "onevm_ci=0",
        `sudo -n timeout ${timeoutSeconds} cloud-init status --wait </dev/null >/dev/null || onevm_ci=$?`,
        'if [ "$onevm_ci" -ne 0 ] && [ "$onevm_ci" -ne 2 ]; then',
        `  echo "cloud-init did not finish within ${timeoutSeconds}s or failed (exit $onevm_ci):" >&2`,
        "  sudo -n cloud-init status --long >&2 || true",
        "  exit 1",
        "fi",
    ].join("\n");
}

/** On an existing host: the bootstrap alone. On a new droplet: first wait for cloud-init. */
export function bootstrapCommand(app: string, user: string, o: CloudInitWait = {}): string {
    const bootstrap = script(app, "bootstrap-host.sh", ["--app", app, "--user", user], true);
    return o.cloudInitTimeoutSeconds ? `${waitForCloudInit(o.cloudInitTimeoutSeconds)}\n${bootstrap}` : bootstrap;
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
