/**
 * A small client for the DigitalOcean v2 REST API: the token, the endpoint, JSON requests
 * with errors that name the call, and bounded polls that log each attempt.
 */
import { Logger } from "../common/log";
import { reveal, Wire, WireMap } from "../common/values";

export const DEFAULT_ENDPOINT = "https://api.digitalocean.com";

export interface DoSettings {
    token?: string;
    apiEndpoint: string;
    /** Seconds between polls of droplet status and actions (tests shorten it). */
    pollIntervalSeconds: number;
    /** Polls before giving up on a droplet or an action. */
    pollLimit: number;
}

/** Same sources as the official provider: config first, then its environment variables. */
export function settingsFrom(config: WireMap, env: NodeJS.ProcessEnv = process.env): DoSettings {
    const c = reveal(config) as Record<string, Wire>;
    const str = (v: Wire) => (typeof v === "string" && v !== "" ? v : undefined);
    return {
        token: str(c.token) ?? env.DIGITALOCEAN_TOKEN ?? env.DIGITALOCEAN_ACCESS_TOKEN,
        apiEndpoint: (str(c.apiEndpoint) ?? env.DIGITALOCEAN_API_URL ?? DEFAULT_ENDPOINT).replace(/\/+$/, ""),
        pollIntervalSeconds: Number(env.ONEVM_DO_POLL_INTERVAL ?? 5),
        pollLimit: Number(env.ONEVM_DO_POLL_LIMIT ?? 120),
    };
}

let current: DoSettings = settingsFrom({});

/** Called from Configure (and by tests). */
export function configure(config: WireMap, env?: NodeJS.ProcessEnv): void {
    current = settingsFrom(config, env);
}

export class DoApiError extends Error {
    constructor(readonly status: number, message: string) {
        super(message);
        this.name = "DoApiError";
    }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One API request. 404 on GET/DELETE is reported as `undefined` when `allow404` is set. */
export async function api<T = Record<string, any>>(
    method: "GET" | "POST" | "PUT" | "DELETE",
    path: string,
    body?: unknown,
    opts: { allow404?: boolean } = {},
): Promise<T | undefined> {
    const s = current;
    if (!s.token) {
        throw new Error(
            "DigitalOcean API token is not set: run `pulumi config set --secret digitalocean:token <token>` " +
                "(or export DIGITALOCEAN_TOKEN). Preview works without it; create, update, delete and refresh do not.",
        );
    }
    const url = `${s.apiEndpoint}/v2${path}`;
    let res: Response;
    try {
        res = await fetch(url, {
            method,
            headers: { Authorization: `Bearer ${s.token}`, "Content-Type": "application/json", Accept: "application/json" },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
    } catch (e) {
        throw new Error(`DigitalOcean API ${method} ${url} failed: ${(e as Error).cause ?? (e as Error).message}`);
    }
    if (res.status === 404 && opts.allow404) return undefined;
    const text = await res.text();
    if (!res.ok) {
        let detail = text.slice(0, 500);
        try {
            const j = JSON.parse(text);
            detail = `${j.id ?? "error"}: ${j.message ?? text}`;
        } catch {
            /* not JSON: keep the raw text */
        }
        throw new DoApiError(res.status, `DigitalOcean API ${method} ${path} returned ${res.status} (${detail})`);
    }
    return (text ? JSON.parse(text) : {}) as T;
}

/** Polls `probe` until it returns a value, logging each wait; fails after the configured limit. */
export async function poll<T>(log: Logger, what: string, probe: () => Promise<T | undefined>): Promise<T> {
    const { pollIntervalSeconds, pollLimit } = current;
    for (let attempt = 1; ; attempt++) {
        const v = await probe();
        if (v !== undefined) return v;
        if (attempt >= pollLimit) {
            throw new Error(`timed out waiting for ${what} after ${pollLimit} polls ${pollIntervalSeconds}s apart`);
        }
        log.info(`waiting for ${what} (poll ${attempt}/${pollLimit})`);
        await sleep(pollIntervalSeconds * 1000);
    }
}

/** Waits for a droplet/volume/reserved-IP action to complete; an errored action fails. */
export async function waitAction(log: Logger, action: { id: number; type?: string }): Promise<void> {
    await poll(log, `action ${action.type ?? ""} ${action.id}`.replace("  ", " "), async () => {
        const r = await api<{ action: { status: string } }>("GET", `/actions/${action.id}`);
        const status = r!.action.status;
        if (status === "errored") throw new Error(`DigitalOcean action ${action.type ?? ""} ${action.id} errored`);
        return status === "completed" ? true : undefined;
    });
}
