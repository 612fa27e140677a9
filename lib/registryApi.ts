/**
 * The two registry API questions the program asks before anything reaches the VM, spoken
 * as Docker does (the distribution API, https only): do these credentials log in (`docker
 * login`'s check: GET /v2/, answering a Basic challenge with them or trading them for a
 * token at a Bearer challenge's realm), and which manifest digest does a tag name now
 * (HEAD /v2/<path>/manifests/<tag>, Docker-Content-Digest). The HTTP transport is passed
 * in (program/registry.ts: node https with the registry's CA), so this is tested without
 * a network.
 */
import { createHash } from "crypto";

export interface HttpResponse {
    status: number;
    /** Header names in lowercase. */
    headers: Record<string, string | undefined>;
    body: Buffer;
}

export type HttpRequest = (method: "GET" | "HEAD", url: string, headers: Record<string, string>) => Promise<HttpResponse>;

export interface Credentials {
    username: string;
    password: string;
}

/** The registry answered, and refused the credentials (or demands some). */
export class RegistryAuthError extends Error {
    constructor(
        message: string,
        readonly status: number,
    ) {
        super(message);
        this.name = "RegistryAuthError";
    }
}

/** No answer from the registry (connection refused, DNS, TLS, timeout). */
export class RegistryUnreachableError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "RegistryUnreachableError";
    }
}

/** Any other answer: a missing tag, a server error. */
export class RegistryError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "RegistryError";
    }
}

/** The manifest types Docker accepts, so the digest is the one `docker pull` resolves. */
export const MANIFEST_ACCEPT = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
].join(", ");

export interface Challenge {
    scheme: "basic" | "bearer";
    params: Record<string, string>;
}

/** Parses a WWW-Authenticate header (`Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`). */
export function parseChallenge(header: string | undefined): Challenge | undefined {
    if (!header) return undefined;
    const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
    if (!m) return undefined;
    const scheme = m[1].toLowerCase();
    if (scheme !== "basic" && scheme !== "bearer") return undefined;
    const params: Record<string, string> = {};
    const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
    for (let p = re.exec(m[2]); p; p = re.exec(m[2])) {
        params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3];
    }
    return { scheme, params };
}

/** The token request of a Bearer challenge, for a scope (none: just log in). */
export function tokenUrl(challenge: Challenge, scope: string | undefined, account: string | undefined): string {
    const realm = challenge.params.realm;
    if (!realm || !/^https:\/\//.test(realm)) {
        throw new RegistryError(`the registry's token service (realm ${JSON.stringify(realm ?? "")}) is not an https URL`);
    }
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    if (scope) url.searchParams.set("scope", scope);
    if (account) url.searchParams.set("account", account);
    return url.toString();
}

function basic(c: Credentials): string {
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
}

/** A client of one registry host (host[:port]); credentials apply to it only. */
export class RegistryClient {
    constructor(
        private readonly http: HttpRequest,
        readonly host: string,
        private readonly credentials?: Credentials,
    ) {}

    private async send(method: "GET" | "HEAD", url: string, headers: Record<string, string>): Promise<HttpResponse> {
        try {
            return await this.http(method, url, headers);
        } catch (e) {
            throw new RegistryUnreachableError(`${new URL(url).host}: ${(e as Error).message}`);
        }
    }

    /** The Authorization header answering a challenge for a scope (undefined: answer with none). */
    private async authorize(challenge: Challenge | undefined, scope: string | undefined): Promise<string | undefined> {
        if (!challenge) {
            throw new RegistryError(`${this.host} asks for authentication without a WWW-Authenticate challenge onevm understands`);
        }
        if (challenge.scheme === "basic") {
            if (!this.credentials) throw new RegistryAuthError(`${this.host} requires credentials`, 401);
            return basic(this.credentials);
        }
        const url = tokenUrl(challenge, scope, this.credentials?.username);
        const res = await this.send("GET", url, this.credentials ? { Authorization: basic(this.credentials) } : {});
        if (res.status === 401 || res.status === 403) {
            throw new RegistryAuthError(
                this.credentials ? `${this.host}'s token service refused the credentials (HTTP ${res.status})` : `${this.host} requires credentials (HTTP ${res.status})`,
                res.status,
            );
        }
        if (res.status !== 200) throw new RegistryError(`${this.host}'s token service answered HTTP ${res.status}`);
        let token: unknown;
        try {
            const body = JSON.parse(res.body.toString("utf8")) as { token?: unknown; access_token?: unknown };
            token = body.token ?? body.access_token;
        } catch {
            token = undefined;
        }
        if (typeof token !== "string" || token === "") throw new RegistryError(`${this.host}'s token service gave no token`);
        return `Bearer ${token}`;
    }

    /**
     * Logs in as `docker login` does; resolves when the registry accepts the credentials
     * (or needs none). RegistryAuthError: refused; RegistryUnreachableError: no answer.
     */
    async checkLogin(): Promise<void> {
        const url = `https://${this.host}/v2/`;
        const first = await this.send("GET", url, {});
        if (first.status === 200) return;
        if (first.status !== 401) throw new RegistryError(`${this.host} answered GET /v2/ with HTTP ${first.status}: is it a container registry?`);
        const auth = await this.authorize(parseChallenge(first.headers["www-authenticate"]), undefined);
        const second = await this.send("GET", url, auth ? { Authorization: auth } : {});
        if (second.status === 401 || second.status === 403) throw new RegistryAuthError(`${this.host} refused the credentials (HTTP ${second.status})`, second.status);
        if (second.status !== 200) throw new RegistryError(`${this.host} answered GET /v2/ with HTTP ${second.status}`);
    }

    /** The digest (sha256:<hex>) the registry serves for path:reference now. */
    async manifestDigest(path: string, reference: string): Promise<string> {
        const url = `https://${this.host}/v2/${path}/manifests/${reference}`;
        const headers: Record<string, string> = { Accept: MANIFEST_ACCEPT };
        let res = await this.send("HEAD", url, headers);
        if (res.status === 401) {
            const auth = await this.authorize(parseChallenge(res.headers["www-authenticate"]), `repository:${path}:pull`);
            if (auth) headers.Authorization = auth;
            res = await this.send("HEAD", url, headers);
        }
        if (res.status === 401 || res.status === 403) throw new RegistryAuthError(`${this.host} refused to serve ${path}:${reference} (HTTP ${res.status})`, res.status);
        if (res.status === 404) throw new RegistryError(`${this.host} has no ${path}:${reference} (HTTP 404)`);
        if (res.status !== 200) throw new RegistryError(`${this.host} answered HTTP ${res.status} for ${path}:${reference}`);
        const digest = res.headers["docker-content-digest"];
        if (digest && /^sha256:[a-f0-9]{64}$/.test(digest)) return digest;
        // Some registries name the digest only on GET: hash the manifest as served.
        const got = await this.send("GET", url, headers);
        if (got.status !== 200) throw new RegistryError(`${this.host} answered HTTP ${got.status} for ${path}:${reference}`);
        const header = got.headers["docker-content-digest"];
        return header && /^sha256:[a-f0-9]{64}$/.test(header) ? header : `sha256:${createHash("sha256").update(got.body).digest("hex")}`;
    }
}
