/**
 * The command lines onevm runs on the VM, rendered as text so unit tests check them and
 * `pulumi preview --diff` shows them. They carry no secret: secrets travel on stdin.
 */
import { appDir, HOST_STATE_DIR, vmPaths } from "./render/paths";

/** Single-quotes a word for POSIX sh. */
export function shq(word: string): string {
    return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function script(app: string, name: string, args: Array<string | number>, sudo = false): string {
    const path = `${vmPaths(app).bin}/${name}`;
    return [...(sudo ? ["sudo", "-n"] : []), path, ...args.map((a) => shq(String(a)))].join(" ");
}

/**
 * The identity a stack claims an app dir on a host with: `org/project/stack`. Not a
 * secret; written to state/owner and named in refusals.
 */
export function stackIdentity(org: string, project: string, stack: string): string {
    for (const [what, part] of [["organization", org], ["project", project], ["stack", stack]]) {
        if (!/^[A-Za-z0-9._-]+$/.test(part)) {
            throw new Error(`stack identity: ${what} '${part}' must be letters, digits, '.', '_' or '-'`);
        }
    }
    return `${org}/${project}/${stack}`;
}

/**
 * POSIX sh, run as root with positional args APP_DIR USER STACK HOST_STATE_DIR: under a
 * host-wide flock, refuses (exit 3) when APP_DIR/state/owner names another stack, else
 * claims it (first deploy) and creates APP_DIR, APP_DIR/tools and the host-wide activation
 * lock. Nothing on the host changes before the owner check passes.
 */
export const CLAIM_SCRIPT = [
    "set -eu",
    'app_dir=$1 user=$2 stack=$3 host_dir=$4',
    'app=${app_dir##*/} owner=$app_dir/state/owner group=$(id -gn "$user")',
    'install -d -m 755 "$host_dir"',
    'exec 9>>"$host_dir/owner.lock"',
    'if ! flock -w 120 9; then echo "onevm: $host_dir/owner.lock busy for 120s (another deploy is claiming an app on this host)" >&2; exit 4; fi',
    'if [ -f "$owner" ]; then',
    '  held=$(sed -n "s/^stack=//p" "$owner")',
    '  if [ "$held" != "$stack" ]; then',
    '    since=$(sed -n "s/^claimed_at=//p" "$owner")',
    '    echo "onevm: app $app on this host is managed by stack ${held:-unknown} (claimed ${since:-at an unknown time}); deploy from that stack, or pick another onevm:app, or, if that stack is gone for good, release the claim on the host: sudo rm $owner" >&2',
    "    exit 3",
    "  fi",
    "else",
    '  install -d -o "$user" -g "$group" -m 755 "$app_dir" "$app_dir/state"',
    '  printf "stack=%s\\nclaimed_at=%s\\n" "$stack" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$owner.tmp"',
    '  mv -f "$owner.tmp" "$owner"',
    '  echo "onevm: stack $stack claimed app $app on this host" >&2',
    "fi",
    'install -d -o "$user" -g "$group" -m 755 "$app_dir" "$app_dir/tools"',
    // Apps of different deploy users share it: any of them must be able to take it.
    '[ -f "$host_dir/activate.lock" ] || install -m 666 /dev/null "$host_dir/activate.lock"',
].join("\n");

/**
 * The first command on a host: claims /opt/<app> for this stack (see CLAIM_SCRIPT) and
 * creates it and its tools/ dir for the deploy user. On a fresh droplet it first waits for
 * cloud-init (user, host key, Docker, volume).
 */
export function claimAppDirCommand(app: string, user: string, stack: string, o: CloudInitWait = {}): string {
    const claim = ["sudo", "-n", "sh", "-c", CLAIM_SCRIPT, "onevm-claim", appDir(app), user, stack, HOST_STATE_DIR].map(shq).join(" ");
    return o.cloudInitTimeoutSeconds ? `${waitForCloudInit(o.cloudInitTimeoutSeconds)}\n${claim}` : claim;
}

/** The directory one version of onevm's scripts is uploaded to: content-addressed. */
export function toolsDir(app: string, hash: string): string {
    return `${vmPaths(app).root}/tools/${hash}`;
}

/**
 * Makes an uploaded tools dir's scripts executable (the command provider's sftp upload
 * sets no mode), switches `bin` to it atomically and removes older versions.
 */
export function switchToolsCommand(app: string, hash: string): string {
    const p = vmPaths(app);
    return [
        `find ${toolsDir(app, hash)} -type f -name '*.sh' -exec chmod 0755 {} +`,
        `ln -sfn tools/${hash} ${p.root}/.bin.tmp && mv -T ${p.root}/.bin.tmp ${p.bin}`,
        `find ${p.root}/tools -mindepth 1 -maxdepth 1 ! -name ${hash} -exec rm -rf {} +`,
    ].join(" && ");
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

/**
 * Docker and the app's directories (`dataDirs`: where the database's volumes are bound);
 * the tools hash in its text re-runs it when onevm's scripts change.
 */
export function bootstrapCommand(app: string, user: string, toolsHash: string, dataDirs: string[] = []): string {
    return script(app, "bootstrap-host.sh", ["--app", app, "--user", user, "--tools", toolsHash, ...dataDirs.flatMap((d) => ["--data-dir", d])], true);
}

/** Uninstalls the app and releases this stack's claim (refused when another stack owns it). */
export function uninstallCommand(app: string, unit: string, cron: string, stack: string): string {
    return script(app, "uninstall.sh", ["--app", app, "--unit", unit, "--cron", cron, "--owner", stack], true);
}

export function writeEnvCommand(app: string): string {
    return script(app, "write-env.sh", ["--app-dir", vmPaths(app).root]);
}

/** Sets the database role's password in the running database service from an ALTER ROLE statement (SCRAM verifier) on stdin. */
export function setDbPasswordCommand(app: string, service: string): string {
    return script(app, "set-db-password.sh", ["--app-dir", vmPaths(app).root, "--service", service]);
}

/** Installs (or re-renders in place) releases/<id> from the bundle on stdin. */
export function installReleaseCommand(app: string, releaseId: string, contentHash: string, releaseHash: string): string {
    return script(app, "install-release.sh", ["--app-dir", vmPaths(app).root, "--id", releaseId, "--hash", contentHash, "--release-hash", releaseHash]);
}

export interface ActivateOptions {
    app: string;
    releaseId: string;
    operator: string;
    healthRetries: number;
    healthIntervalSeconds: number;
    backupMinFreeMb: number;
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
        "--backup-min-free-mb",
        o.backupMinFreeMb,
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

/** Removes the backup cron entry (the app lost its database role); uninstall.sh removes it on destroy. */
export function removeCronCommand(cron: string): string {
    return `sudo -n rm -f -- /etc/cron.d/${cron}`;
}

/**
 * Installs shared/tls (Caddyfile, cert, key) from a base64 tar.gz on stdin; reloads a
 * running proxy. The Caddyfile (not secret) is also in the command line, checked against
 * the archive's: `pulumi preview --diff` shows its text change.
 */
export function installTlsCommand(app: string, caddyfile: string): string {
    return script(app, "install-tls.sh", ["--app-dir", vmPaths(app).root, "--caddyfile", caddyfile], true);
}

/** Removes shared/tls when TLS ingress is turned off (uninstall.sh removes it on destroy). */
export function removeTlsCommand(app: string): string {
    return `sudo -n rm -rf -- ${vmPaths(app).tls}`;
}

/** Installs shared/offsite/ (targets, SSH key, pinned host key, S3 curl config) from JSON on stdin. */
export function installOffsiteCommand(app: string): string {
    return script(app, "install-offsite.sh", ["--app-dir", vmPaths(app).root]);
}

/** Removes shared/offsite/ when the off-host targets are removed from the config. */
export function removeOffsiteCommand(app: string): string {
    return script(app, "install-offsite.sh", ["--remove", "--app-dir", vmPaths(app).root]);
}

export interface RegistryLoginOptions {
    server: string;
    username: string;
    /** PEM of the registry's private CA: installed as /etc/docker/certs.d/<server>/ca.crt. */
    caCertificate?: string;
}

/**
 * Logs the deploy user's Docker in to the registry (`docker login --password-stdin`; the
 * password arrives on stdin only), after installing its CA when one is given. Server,
 * user and CA are not secret: `pulumi preview --diff` shows them change.
 */
export function registryLoginCommand(app: string, o: RegistryLoginOptions): string {
    return script(app, "registry-login.sh", ["--app-dir", vmPaths(app).root, "--server", o.server, "--username", o.username, ...(o.caCertificate ? ["--ca-certificate", o.caCertificate] : [])]);
}

/** The login's `delete`: docker logout, and the CA removed when it is still the one installed. */
export function registryLogoutCommand(app: string, o: RegistryLoginOptions): string {
    return script(app, "registry-login.sh", ["--app-dir", vmPaths(app).root, "--logout", "--server", o.server, ...(o.caCertificate ? ["--ca-certificate", o.caCertificate] : [])]);
}

/**
 * Writes releases/<id>/images.lock: each service's digest-pinned image, which activation
 * pulls, verifies and tags as the compose file's reference. The digests are in the
 * command line (not secret), so `pulumi preview --diff` shows a changed pin.
 */
export function pinImagesCommand(app: string, releaseId: string, lock: Record<string, string>): string {
    const images = Object.keys(lock)
        .sort()
        .flatMap((service) => ["--image", `${service}=${lock[service]}`]);
    return script(app, "pin-images.sh", ["--app-dir", vmPaths(app).root, "--id", releaseId, ...images]);
}
