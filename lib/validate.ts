/**
 * Rules for operator input. Each rule returns a problem description, or undefined when
 * the value is acceptable. Messages describe the problem, never echo secret values.
 */
export type Rule<T> = (value: T) => string | undefined;

/** Release IDs become directory names and script arguments on the VM. */
export const RELEASE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const releaseId: Rule<string> = (v) => {
    if (!RELEASE_ID_PATTERN.test(v)) {
        return "must be 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit (no '/', spaces or shell metacharacters)";
    }
    if (v.includes("..")) {
        return "must not contain '..'";
    }
    return undefined;
};

export const appName: Rule<string> = (v) =>
    /^[a-z][a-z0-9-]{0,29}[a-z0-9]$/.test(v)
        ? undefined
        : "must be 2-31 lowercase letters, digits or '-', starting with a letter and not ending with '-' (it names /opt/<app>, the compose project and the systemd unit)";

export const unixUser: Rule<string> = (v) =>
    /^[a-z_][a-z0-9_-]{0,31}$/.test(v) ? undefined : "must be a valid Unix user name ([a-z_][a-z0-9_-]{0,31})";

export const hostName: Rule<string> = (v) =>
    /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(v) || ipv4(v) === undefined
        ? undefined
        : "must be a DNS name or an IPv4 address";

/** A DNS name with at least one dot and a letter in its last label (no IP address, no wildcard). */
export const dnsName: Rule<string> = (v) =>
    v.length <= 253 && /^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(v)
        ? undefined
        : "must be a DNS name such as bot.example.com (no IP address, scheme, port or wildcard)";

export const email: Rule<string> = (v) =>
    /^[^\s@"'`;{}]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/.test(v) ? undefined : "must be an e-mail address such as ops@example.com";

export const port: Rule<number> = (v) =>
    Number.isInteger(v) && v >= 1 && v <= 65535 ? undefined : "must be an integer port between 1 and 65535";

export function intBetween(min: number, max: number): Rule<number> {
    return (v) => (Number.isInteger(v) && v >= min && v <= max ? undefined : `must be an integer between ${min} and ${max}`);
}

function ipv4(v: string): string | undefined {
    const parts = v.split(".");
    if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) {
        return "must be a dotted IPv4 address";
    }
    return undefined;
}

/** IPv4 or IPv6 CIDR with no host bits set, e.g. 203.0.113.0/24 or 2001:db8::/32. */
export const cidr: Rule<string> = (v) => {
    const m = /^([^/]+)\/(\d{1,3})$/.exec(v);
    if (!m) {
        return "must be a CIDR block such as 203.0.113.7/32";
    }
    const [, addr, lenText] = m;
    const len = Number(lenText);
    if (addr.includes(":")) {
        const bits = ipv6Bits(addr);
        if (bits === undefined || len > 128) {
            return "must be an IPv6 CIDR block such as 2001:db8::/32";
        }
        return bits.slice(len).includes("1") ? `has host bits set beyond /${len}` : undefined;
    }
    if (ipv4(addr) !== undefined || len > 32) {
        return "must be an IPv4 CIDR block such as 203.0.113.7/32 (prefix length 0-32)";
    }
    const bits = addr
        .split(".")
        .map((p) => Number(p).toString(2).padStart(8, "0"))
        .join("");
    return bits.slice(len).includes("1") ? `has host bits set beyond /${len}` : undefined;
};

function ipv6Bits(addr: string): string | undefined {
    const halves = addr.split("::");
    if (halves.length > 2) {
        return undefined;
    }
    const groups = (s: string) => (s === "" ? [] : s.split(":"));
    const head = groups(halves[0]);
    const tail = halves.length === 2 ? groups(halves[1]) : [];
    const missing = 8 - head.length - tail.length;
    if ((halves.length === 1 && missing !== 0) || missing < 0) {
        return undefined;
    }
    const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
    if (!all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) {
        return undefined;
    }
    return all.map((g) => parseInt(g, 16).toString(2).padStart(16, "0")).join("");
}

export const WORLD_CIDRS = ["0.0.0.0/0", "::/0"];

const CRON_FIELDS: Array<{ name: string; min: number; max: number }> = [
    { name: "minute", min: 0, max: 59 },
    { name: "hour", min: 0, max: 23 },
    { name: "day of month", min: 1, max: 31 },
    { name: "month", min: 1, max: 12 },
    { name: "day of week", min: 0, max: 7 },
];

/** A five-field numeric cron schedule (no names, no @macros: they differ between crons). */
export const cronSchedule: Rule<string> = (v) => {
    const fields = v.trim().split(/\s+/);
    if (fields.length !== 5) {
        return "must have exactly five fields: minute hour day-of-month month day-of-week (e.g. '17 */6 * * *')";
    }
    for (const [i, field] of fields.entries()) {
        const { name, min, max } = CRON_FIELDS[i];
        for (const item of field.split(",")) {
            const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(item);
            if (!m) {
                return `${name} field '${field}' must be *, a number, a range a-b, a list, or any of these with /step`;
            }
            const [, , lo, hi, step] = m;
            const nums = [lo, hi].filter((n) => n !== undefined).map(Number);
            if (nums.some((n) => n < min || n > max)) {
                return `${name} field '${field}' must stay within ${min}-${max}`;
            }
            if (nums.length === 2 && nums[0] > nums[1]) {
                return `${name} field '${field}' has a range that runs backwards`;
            }
            if (step !== undefined && Number(step) === 0) {
                return `${name} field '${field}' has a step of 0`;
            }
        }
    }
    return undefined;
};

/**
 * A Docker image reference: [registry[:port]/]path[:tag][@sha256:digest]. Lowercase path
 * components as the distribution spec requires; no whitespace or shell metacharacters.
 */
export const imageRef: Rule<string> = (v) => {
    const m =
        /^(?:((?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)\/)?([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$/.exec(
            v,
        );
    if (!m || v.length > 255) {
        return "must be an image reference like registry.example.com/team/app:1.2.3 or app@sha256:<64 hex> (lowercase repository, tag of letters, digits, '.', '_', '-')";
    }
    if (m[3] === undefined && m[4] === undefined) {
        return "must pin a tag or a digest (a bare name would silently follow 'latest')";
    }
    return undefined;
};

/** Environment variable names in the VM's .env file. */
export const envKey: Rule<string> = (v) =>
    /^[A-Z_][A-Z0-9_]*$/.test(v) ? undefined : "must be an upper-case environment variable name ([A-Z_][A-Z0-9_]*)";

/** Values must survive compose's .env parser; only NUL cannot. */
export const envValue: Rule<string> = (v) => (v.includes("\0") ? "must not contain a NUL character" : undefined);

export const nonEmpty: Rule<string> = (v) => (v.trim() === "" ? "must not be empty" : undefined);

const KEY_LINE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com) ([A-Za-z0-9+/]+={0,3})(?: [^\r\n]*)?$/;

/**
 * The key lines in an authorized_keys, known_hosts or `ssh-keyscan` text, as "TYPE BASE64":
 * a leading host field (keyscan, known_hosts) and `#` comment lines are dropped.
 */
function keyLines(text: string): string[] {
    return text
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l !== "" && !l.startsWith("#"))
        .map((l) => KEY_LINE.exec(l) ?? KEY_LINE.exec(l.replace(/^\S+\s+/, "")))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => `${m[1]} ${m[2]}`);
}

/**
 * A host key to pin, from one OpenSSH public key line or `ssh-keyscan` output (several
 * lines: the ed25519 one is taken). "" when there is none (the rule reports that).
 */
export function hostKeyLine(text: string): string {
    const keys = keyLines(text);
    return keys.find((k) => k.startsWith("ssh-ed25519 ")) ?? keys[0] ?? "";
}

/** An OpenSSH public key line such as a host key to pin; `ssh-keyscan` output is accepted too. */
export const sshPublicKey: Rule<string> = (v) =>
    keyLines(v).length > 0
        ? undefined
        : "must be an OpenSSH public key line such as 'ssh-ed25519 AAAAC3Nz... host', or `ssh-keyscan -t ed25519 HOST` output";

export const sshPrivateKey: Rule<string> = (v) =>
    /-----BEGIN (OPENSSH|RSA|EC) PRIVATE KEY-----/.test(v) && /-----END (OPENSSH|RSA|EC) PRIVATE KEY-----/.test(v)
        ? undefined
        : "must be a PEM/OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY----- ...)";

export function oneOf<T extends string>(choices: readonly T[]): Rule<string> {
    return (v) => (choices.includes(v as T) ? undefined : `must be one of: ${choices.join(", ")}`);
}

/** A Compose service name. */
export const serviceName: Rule<string> = (v) =>
    /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(v) ? undefined : "must be a Compose service name (letters, digits, '_', '.', '-')";

/** A lowercase PostgreSQL identifier (role or database name), safe unquoted in SQL. */
export const pgIdentifier: Rule<string> = (v) =>
    /^[a-z_][a-z0-9_]{0,62}$/.test(v) ? undefined : "must be a lowercase PostgreSQL identifier ([a-z_][a-z0-9_]{0,62})";
