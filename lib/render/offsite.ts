/**
 * Renders the files of /opt/<app>/shared/offsite/ that offsite-copy.sh reads (all mode
 * 600, installed by install-offsite.sh from stdin): which targets exist, the pinned host
 * key and the private key of the SSH target, and the curl config that signs S3 requests.
 */
import { OffsiteS3Config, OffsiteSshConfig } from "../config";

export interface OffsiteFilesOptions {
    ssh?: OffsiteSshConfig & { privateKey: string };
    s3?: OffsiteS3Config & { accessKeyId: string; secretAccessKey: string };
}

/** targets.json: the non-secret part of each target, read by offsite-copy.sh with jq. */
export function renderOffsiteTargets(o: OffsiteFilesOptions): string {
    const targets: Record<string, unknown> = {};
    if (o.ssh) {
        targets.ssh = { host: o.ssh.host, port: o.ssh.port, user: o.ssh.user, path: o.ssh.path };
    }
    if (o.s3) {
        targets.s3 = { endpoint: o.s3.endpoint, region: o.s3.region, bucket: o.s3.bucket, prefix: o.s3.prefix };
    }
    return `${JSON.stringify(targets, null, 2)}\n`;
}

/** A known_hosts line pinning the target's host key (OpenSSH writes [host]:port for port != 22). */
export function renderKnownHosts(host: string, port: number, hostPublicKey: string): string {
    const [type, key] = hostPublicKey.trim().split(/\s+/);
    const name = port === 22 ? host : `[${host}]:${port}`;
    return `${name} ${type} ${key}\n`;
}

/** A double-quoted curl config value: curl unescapes \\ and \" inside quotes. */
function curlQuote(value: string): string {
    return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/**
 * curl -K file: the S3 keys as `user` and SigV4 signing for the region. The secret key
 * signs requests locally and never travels; the file keeps both out of curl's argv.
 */
export function renderS3Curlrc(region: string, accessKeyId: string, secretAccessKey: string): string {
    return [
        "# Managed by onevm: S3 credentials of the off-host backup copies (curl -K).",
        `user = ${curlQuote(`${accessKeyId}:${secretAccessKey}`)}`,
        `aws-sigv4 = ${curlQuote(`aws:amz:${region}:s3`)}`,
        "",
    ].join("\n");
}

/** Private keys must end in a newline or OpenSSH refuses them ("invalid format"). */
function withFinalNewline(text: string): string {
    return text.endsWith("\n") ? text : `${text}\n`;
}

/** The JSON install-offsite.sh reads on stdin: {"files": {name: content}}. Secret. */
export function renderOffsiteFiles(o: OffsiteFilesOptions): string {
    const files: Record<string, string> = { "targets.json": renderOffsiteTargets(o) };
    if (o.ssh) {
        files.ssh_key = withFinalNewline(o.ssh.privateKey.replace(/\r\n/g, "\n"));
        files.ssh_known_hosts = renderKnownHosts(o.ssh.host, o.ssh.port, o.ssh.hostPublicKey);
    }
    if (o.s3) {
        files["s3.curlrc"] = renderS3Curlrc(o.s3.region, o.s3.accessKeyId, o.s3.secretAccessKey);
    }
    return JSON.stringify({ files });
}
