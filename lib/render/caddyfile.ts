/**
 * Renders the Caddyfile of the proxy in front of the web service (the official Caddy 2
 * image, or one with its layout).
 *
 * Three modes:
 * - `loopback`: no TLS; only the plain-HTTP site on 8080 (below), which the VM's loopback
 *   port reaches: the proxy is there for zero-downtime switches.
 * - `acme`: a public domain; Caddy obtains and renews the certificate itself (HTTP-01 on
 *   port 80, TLS-ALPN-01 on 443) and port 80 answers only ACME challenges and redirects.
 * - `certificate`: onevm uploads a certificate and key (made with @pulumi/tls: staging or
 *   IP-only use); Caddy manages no certificate and port 80 only redirects to https.
 *
 * Either way every request goes to the app through `reverse_proxy` to the web service, and requests
 * that find no available upstream (a refused dial marks it down for a second) wait and
 * retry for `lb_try_duration` instead of failing: a restarting app container is waited
 * for. Besides 80/443 the proxy serves plain HTTP on PROXY_LISTEN_PORT, published on the
 * VM's loopback only (the health gate's way in: the web service itself publishes no port,
 * so a second container of it can start beside the first during a switch).
 * The file names no secret.
 */

export const TLS_MODES = ["acme", "certificate"] as const;
export type TlsMode = (typeof TLS_MODES)[number];
/** The proxy's modes: a TLS one, or `loopback` (no TLS: only the app's loopback port, for zero-downtime switches). */
export type ProxyMode = TlsMode | "loopback";

/** Where the proxy container sees /opt/<app>/shared/tls (mounted read-only). */
export const PROXY_CONFIG_DIR = "/etc/caddy";
export const PROXY_CERT_FILE = "cert.pem";
export const PROXY_KEY_FILE = "key.pem";

export interface CaddyfileOptions {
    mode: ProxyMode;
    /** The web service as the proxy reaches it, `service:port` (activate.sh pins one container during a switch). */
    upstream: string;
    /** acme: the domain to serve and certify (required). certificate: the name clients use, if any. */
    domain?: string;
    /** acme: the ACME account e-mail (expiry notices). */
    email?: string;
    /**
     * certificate: the name served to clients that send no SNI (IP-only clients): the
     * VM's address or the domain.
     */
    defaultSni?: string;
}

/** The port of the proxy's plain-HTTP site inside its container; published on the VM's loopback only. */
export const PROXY_LISTEN_PORT = 8080;

/**
 * No active health checks: activate.sh proves a new container itself before the proxy
 * may use it, and a check that merely times out (a busy app) would mark the only upstream
 * down; requests then wait to be retried, and Caddy answers a waiting request 503 when
 * its configuration changes (a pin), measured.
 */
function proxyBlock(upstream: string): string[] {
    return [
        `\treverse_proxy ${upstream} {`,
        // Passive: a refused dial marks the upstream down for 1 s (short: with one
        // upstream a longer memory only delays its comeback; measured 5 s -> 1 s saved ~1.5 s).
        "\t\tfail_duration 1s",
        // No healthy upstream (app restarting): hold the request and retry, do not fail it.
        "\t\tlb_try_duration 30s",
        "\t\tlb_try_interval 250ms",
        "\t}",
    ];
}

function loopbackSite(upstream: string): string[] {
    return [`http://:${PROXY_LISTEN_PORT} {`, ...proxyBlock(upstream), "}", ""];
}

function globalBlock(lines: string[]): string[] {
    return ["{", ...lines.map((l) => `\t${l}`), "}", ""];
}

export function renderCaddyfile(o: CaddyfileOptions): string {
    // Exactly `caddy fmt`'s layout, so Caddy logs no "not formatted" warning at each load.
    const head = ["# Rendered by onevm. Do not edit on the VM: `pulumi up` replaces it."];
    if (o.mode === "acme") {
        if (!o.domain) throw new Error("acme mode needs a domain");
        const global = globalBlock([
            // The admin API stays inside the container (`caddy reload` uses it).
            "admin localhost:2019",
            ...(o.email ? [`email ${o.email}`] : []),
        ]);
        // A site with a domain: Caddy serves :80 for ACME and redirects the rest to https.
        return [...head, ...global, `${o.domain} {`, ...proxyBlock(o.upstream), "}", "", ...loopbackSite(o.upstream)].join("\n");
    }
    if (o.mode === "loopback") {
        return [...head, ...globalBlock(["admin localhost:2019", "auto_https off"]), ...loopbackSite(o.upstream)].join("\n");
    }
    const global = globalBlock([
        "admin localhost:2019",
        // onevm's certificate only: no ACME, no automatic redirects (the :80 site below redirects).
        "auto_https off",
        ...(o.defaultSni ? [`default_sni ${o.defaultSni}`] : []),
    ]);
    return [
        ...head,
        ...global,
        ":80 {",
        "\tredir https://{host}{uri} 308",
        "}",
        "",
        ":443 {",
        `\ttls ${PROXY_CONFIG_DIR}/${PROXY_CERT_FILE} ${PROXY_CONFIG_DIR}/${PROXY_KEY_FILE}`,
        ...proxyBlock(o.upstream),
        "}",
        "",
        ...loopbackSite(o.upstream),
    ].join("\n");
}
