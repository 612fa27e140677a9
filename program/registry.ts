/**
 * The registry gate of `pulumi up` (a preview opens no connection): before anything
 * reaches the VM or a build starts, onevm:registry's credentials must log in (a refusal
 * stops the program with one message naming onevm:registryPassword and the server), and
 * every image tag a new release runs is pinned to the digest the registry serves now.
 * Network: node's https, trusting onevm:registry.caCertificate besides the public CAs.
 */
import * as https from "https";
import * as tls from "tls";
import * as pulumi from "@pulumi/pulumi";
import { NAMESPACE } from "../lib/config";
import { apiHost, parseImageRef, pinnedRef } from "../lib/imageRef";
import { HttpRequest, HttpResponse, RegistryAuthError, RegistryClient, RegistryUnreachableError } from "../lib/registryApi";
import { stopWithError } from "./stop";

export interface RegistryGateOptions {
    /** onevm:registry with its password (secret: never logged). */
    registry?: { server: string; username: string; caCertificate?: string; password: string };
    /** Image references of a new release whose digests are asked now. */
    lookups: string[];
    /** This deploy needs the registry from here (builds or lookups): unreachable stops it. */
    needed: boolean;
}

export interface RegistryGate {
    /** Resolves once the registry accepted the credentials and every lookup is pinned (during `up`). */
    ready: pulumi.Output<void>;
    /** Each looked-up reference -> its pinned reference (unknown during a preview). */
    digests: pulumi.Output<Record<string, string>>;
}

export function registryGate(o: RegistryGateOptions, request: (ca?: string) => HttpRequest = httpsRequest): RegistryGate {
    if (pulumi.runtime.isDryRun()) {
        return {
            ready: pulumi.output(undefined) as pulumi.Output<void>,
            digests: pulumi.output(undefined).apply(() => (o.lookups.length > 0 ? pulumi.unknown : {})) as pulumi.Output<Record<string, string>>,
        };
    }
    const work = (async () => {
        await checkCredentials(o, request);
        return pinTags(o, request);
    })();
    const digests = pulumi.output(work);
    return { ready: digests.apply(() => undefined), digests };
}

async function checkCredentials(o: RegistryGateOptions, request: (ca?: string) => HttpRequest): Promise<void> {
    const r = o.registry;
    if (!r) return;
    const client = new RegistryClient(request(r.caCertificate), r.server, { username: r.username, password: r.password });
    try {
        await client.checkLogin();
    } catch (e) {
        if (e instanceof RegistryAuthError) {
            return stopWithError(
                `onevm: the registry ${r.server} refused ${NAMESPACE}:registry.username ${JSON.stringify(r.username)} with ${NAMESPACE}:registryPassword (HTTP ${e.status}); nothing was changed. ` +
                    `Set the right password or token: pulumi config set --secret ${NAMESPACE}:registryPassword <value>`,
            );
        }
        if (e instanceof RegistryUnreachableError && !o.needed) {
            await pulumi.log.warn(`onevm: the registry ${r.server} could not be reached (${e.message}); this release needs nothing from it here, so the VM pulls what it lacks (and refuses the release, changing nothing, if it cannot).`);
            return;
        }
        return stopWithError(
            e instanceof RegistryUnreachableError
                ? `onevm: the registry ${r.server} could not be reached (${e.message}); nothing was changed. This release's images are built, pushed or pinned there: try again when it answers.`
                : `onevm: the registry ${r.server}: ${(e as Error).message}; nothing was changed.`,
        );
    }
}

async function pinTags(o: RegistryGateOptions, request: (ca?: string) => HttpRequest): Promise<Record<string, string>> {
    const r = o.registry;
    const pinned: Record<string, string> = {};
    for (const ref of o.lookups) {
        const parsed = parseImageRef(ref);
        const ours = r !== undefined && parsed.domain === r.server;
        const client = new RegistryClient(request(ours ? r.caCertificate : undefined), apiHost(parsed.domain), ours ? { username: r.username, password: r.password } : undefined);
        try {
            pinned[ref] = pinnedRef(ref, await client.manifestDigest(parsed.path, parsed.tag ?? "latest"));
        } catch (e) {
            const why = (e as Error).message;
            if (e instanceof RegistryUnreachableError) {
                return stopWithError(`onevm: the registry ${parsed.domain} could not be reached to pin ${ref} to a digest (${why}); nothing was changed.`);
            }
            if (e instanceof RegistryAuthError && !ours) {
                return stopWithError(
                    `onevm: cannot pin ${ref} to a digest: ${why}. onevm logs in to one registry: set ${NAMESPACE}:registry to ${parsed.domain}'s credentials, or use an image it serves publicly. Nothing was changed.`,
                );
            }
            return stopWithError(`onevm: cannot pin ${ref} to a digest: ${why}. Nothing was changed.`);
        }
    }
    return pinned;
}

/** HTTPS requests trusting the public CAs and `ca`; redirects followed (3 at most), credentials kept to the first host. */
export function httpsRequest(ca?: string): HttpRequest {
    const agent = new https.Agent({ ca: ca ? [...tls.rootCertificates, ca] : undefined, keepAlive: false });
    const once = (method: "GET" | "HEAD", url: string, headers: Record<string, string>): Promise<HttpResponse> =>
        new Promise((resolve, reject) => {
            const req = https.request(url, { method, headers: { "User-Agent": "onevm", ...headers }, agent, timeout: 15_000 }, (res) => {
                const chunks: Buffer[] = [];
                let size = 0;
                res.on("data", (c: Buffer) => {
                    size += c.length;
                    if (size <= 4 * 1024 * 1024) chunks.push(c);
                });
                res.on("end", () => {
                    const h: Record<string, string | undefined> = {};
                    for (const [k, v] of Object.entries(res.headers)) h[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
                    resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks) });
                });
                res.on("error", reject);
            });
            req.on("timeout", () => req.destroy(new Error("no answer within 15 s")));
            req.on("error", reject);
            req.end();
        });
    return async (method, url, headers) => {
        let current = url;
        let h = headers;
        for (let hop = 0; ; hop++) {
            // One retry of a connection error: a blip is not an outage.
            const res = await once(method, current, h).catch(async () => {
                await new Promise((r) => setTimeout(r, 1000));
                return once(method, current, h);
            });
            const location = res.headers.location;
            if (![301, 302, 303, 307, 308].includes(res.status) || !location || hop >= 3) return res;
            const next = new URL(location, current);
            if (next.protocol !== "https:") throw new Error(`redirected to a non-https URL (${next.origin})`);
            if (next.host !== new URL(current).host) h = Object.fromEntries(Object.entries(h).filter(([k]) => k.toLowerCase() !== "authorization"));
            current = next.toString();
        }
    };
}
