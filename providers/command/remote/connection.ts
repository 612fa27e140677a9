import { CheckFailure } from "@pulumi/pulumi/provider";
import { hasUnknown, Wire } from "../../common/values";
import { parseHostKey } from "./hostKey";

/** One SSH hop, with the @pulumi/command defaults applied. */
export interface Endpoint {
    host: string;
    port: number;
    user: string;
    password?: string;
    privateKey?: string;
    privateKeyPassword?: string;
    agentSocketPath?: string;
    /** Required here, unlike upstream: an unknown host key is never accepted. */
    hostKey: string;
    /** Failed dials tolerated before giving up; -1 = unlimited. */
    dialErrorLimit: number;
    /** Seconds per dial, handshake and authentication included; 0 = no limit. */
    perDialTimeout: number;
}

export interface Connection extends Endpoint {
    /** Bastion host through which `host` is reached. */
    proxy?: Endpoint;
}

const OPTIONAL_STRINGS = ["password", "privateKey", "privateKeyPassword", "agentSocketPath"] as const;

interface Parsed<T> {
    value?: T;
    failures: CheckFailure[];
}

function parseEndpoint(raw: Wire, path: string): Parsed<Endpoint> {
    const failures: CheckFailure[] = [];
    const fail = (prop: string, reason: string) => failures.push({ property: `${path}.${prop}`, reason });
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        return { failures: [{ property: path, reason: "must be an object" }] };
    }
    const known = (k: string) => raw[k] !== undefined && raw[k] !== null && !hasUnknown(raw[k]);
    const num = (k: string, dflt: number) => (known(k) ? raw[k] : dflt) as number;
    const int = (k: string, min: number, max: number) => {
        const v = raw[k];
        return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
    };

    if (!hasUnknown(raw.host) && (typeof raw.host !== "string" || raw.host === "")) fail("host", "is required");
    if (known("port") && !int("port", 1, 65535)) fail("port", "must be a TCP port number");
    if (known("user") && typeof raw.user !== "string") fail("user", "must be a string");
    for (const k of OPTIONAL_STRINGS) if (known(k) && typeof raw[k] !== "string") fail(k, "must be a string");
    if (known("dialErrorLimit") && !int("dialErrorLimit", -1, Infinity)) fail("dialErrorLimit", "must be an integer >= -1");
    if (known("perDialTimeout") && !(typeof raw.perDialTimeout === "number" && raw.perDialTimeout >= 0)) {
        fail("perDialTimeout", "must be a number of seconds >= 0");
    }
    if (raw.hostKey === undefined || raw.hostKey === null || raw.hostKey === "") {
        fail(
            "hostKey",
            "is required: this provider never connects to a host whose key it cannot verify; " +
                "pass the server's public host key (e.g. generated and installed at provisioning time, or from ssh-keyscan)",
        );
    } else if (known("hostKey")) {
        try {
            parseHostKey(String(raw.hostKey));
        } catch (e) {
            fail("hostKey", (e as Error).message);
        }
    }
    if (failures.length > 0 || hasUnknown(raw)) return { failures };

    const endpoint: Endpoint = {
        host: raw.host as string,
        port: num("port", 22),
        user: known("user") ? (raw.user as string) : "root",
        hostKey: raw.hostKey as string,
        dialErrorLimit: num("dialErrorLimit", 10),
        perDialTimeout: num("perDialTimeout", 15),
    };
    for (const k of OPTIONAL_STRINGS) if (known(k)) endpoint[k] = raw[k] as string;
    return { value: endpoint, failures };
}

/**
 * Validates a revealed `connection` input. Parts still unknown (preview) are not judged;
 * `value` is set only when everything is known and valid.
 */
export function parseConnection(raw: Wire, path = "connection"): Parsed<Connection> {
    if (raw === undefined || raw === null) return { failures: [{ property: path, reason: "is required" }] };
    if (hasUnknown(raw) && typeof raw !== "object") return { failures: [] };
    const base = parseEndpoint(raw, path);
    const rawProxy = (raw as Record<string, Wire>).proxy;
    const proxy = rawProxy === undefined || rawProxy === null ? undefined : parseEndpoint(rawProxy, `${path}.proxy`);
    const failures = [...base.failures, ...(proxy?.failures ?? [])];
    if (!base.value || (proxy && !proxy.value)) return { failures };
    return { value: proxy ? { ...base.value, proxy: proxy.value } : base.value, failures };
}

/** For running a command: every field must be known and valid by now. */
export function requireConnection(raw: Wire): Connection {
    const { value, failures } = parseConnection(raw);
    if (!value) throw new Error(`invalid connection: ${failures.map((f) => `${f.property} ${f.reason}`).join("; ")}`);
    return value;
}
