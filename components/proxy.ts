import { isIP } from "net";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as tls from "@pulumi/tls";
import { tarball } from "../lib/bundle";
import { PROXY_CERT_FILE, PROXY_KEY_FILE, ProxyMode, renderCaddyfile } from "../lib/render/caddyfile";
import { installTlsCommand, removeTlsCommand } from "../lib/remote";
import { commandConnection, remoteDefaults, secretOutputs, VmConnection } from "./connection";

export interface ProxyArgs {
    readonly connection: VmConnection;
    readonly app: string;
    /** The web service as the proxy reaches it: `service:port`. */
    readonly upstream: string;
    /**
     * `acme`: Caddy certifies `domain` itself. `certificate`: onevm's CA signs a server
     * certificate. `loopback`: no TLS, the proxy serves only the app's loopback port.
     */
    readonly mode: ProxyMode;
    /** The VM's address (IP or DNS name); always in a `certificate` mode certificate. */
    readonly address: pulumi.Input<string>;
    /** acme: the domain (required). certificate: an extra DNS name in the certificate. */
    readonly domain?: string;
    /** acme: the ACME account e-mail. */
    readonly email?: string;
    /** certificate mode: validity of the server certificate, in hours. Default 90 days. */
    readonly serverValidityHours?: number;
    /** certificate mode: re-issue the server certificate on the first `up` this many hours before it ends. Default 30 days. */
    readonly serverEarlyRenewalHours?: number;
}

/** Certificate mode's names: the domain (if any) and the VM's address, as DNS name or IP. */
export function certificateNames(address: string, domain?: string): { commonName: string; dnsNames: string[]; ipAddresses: string[] } {
    const names = [...new Set([...(domain ? [domain] : []), address])];
    return {
        commonName: names[0],
        dnsNames: names.filter((n) => isIP(n) === 0),
        ipAddresses: names.filter((n) => isIP(n) !== 0),
    };
}

/**
 * The proxy's files on the VM, /opt/<app>/shared/tls/: the Caddyfile and, in
 * certificate mode, a server certificate and key from onevm's own CA (ECDSA P-256, made
 * with @pulumi/tls; the CA certificate is an output for clients to trust). Everything
 * travels as one archive on the remote command's stdin, secret because it holds the key;
 * the Caddyfile also goes into the command line (install-tls.sh checks it against the
 * archive's) so `pulumi preview --diff` shows its text. The proxy service itself is part
 * of the release's compose file.
 */
export class Proxy extends pulumi.ComponentResource {
    /** The CA certificate (PEM) clients trust in certificate mode; "" in the others. */
    public readonly caCertPem: pulumi.Output<string>;
    /** The server certificate (PEM); "" in the other modes (in acme mode Caddy holds it). */
    public readonly certPem: pulumi.Output<string>;
    /** Depend on this before starting a release with the proxy. */
    public readonly installed: command.remote.Command;

    constructor(name: string, args: ProxyArgs, opts?: pulumi.ComponentResourceOptions) {
        // Named TlsIngress (resource "tls") before it also served the loopback-only mode.
        super("onevm:index:Proxy", name, {}, { ...opts, aliases: [...(opts?.aliases ?? []), { type: "onevm:index:TlsIngress", name: "tls" }] });
        const files: Array<{ path: string; content: pulumi.Input<string> }> = [];
        let caddyfile: pulumi.Input<string>;

        if (args.mode === "loopback") {
            caddyfile = renderCaddyfile({ mode: "loopback", upstream: args.upstream });
            this.caCertPem = pulumi.output("");
            this.certPem = pulumi.output("");
        } else if (args.mode === "acme") {
            if (!args.domain) throw new Error("Proxy: acme mode needs a domain");
            caddyfile = renderCaddyfile({ mode: "acme", upstream: args.upstream, domain: args.domain, email: args.email });
            this.caCertPem = pulumi.output("");
            this.certPem = pulumi.output("");
        } else {
            // A droplet's address is known only once it exists.
            const names = pulumi.output(args.address).apply((a) => certificateNames(a, args.domain));
            caddyfile = names.apply((n) => renderCaddyfile({ mode: "certificate", upstream: args.upstream, defaultSni: n.commonName }));
            const caKey = new tls.PrivateKey(`${name}-ca-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent: this });
            const ca = new tls.SelfSignedCert(
                `${name}-ca`,
                {
                    privateKeyPem: caKey.privateKeyPem,
                    isCaCertificate: true,
                    allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
                    subject: { commonName: `onevm ${args.app} ingress CA`, organization: "onevm" },
                    validityPeriodHours: 10 * 365 * 24,
                    earlyRenewalHours: 365 * 24,
                },
                { parent: this },
            );
            const serverKey = new tls.PrivateKey(`${name}-server-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent: this });
            const request = new tls.CertRequest(
                `${name}-server-request`,
                {
                    privateKeyPem: serverKey.privateKeyPem,
                    subject: { commonName: names.commonName, organization: "onevm" },
                    dnsNames: names.dnsNames,
                    ipAddresses: names.ipAddresses,
                },
                { parent: this },
            );
            const server = new tls.LocallySignedCert(
                `${name}-server`,
                {
                    certRequestPem: request.certRequestPem,
                    caCertPem: ca.certPem,
                    caPrivateKeyPem: caKey.privateKeyPem,
                    allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
                    validityPeriodHours: args.serverValidityHours ?? 90 * 24,
                    earlyRenewalHours: args.serverEarlyRenewalHours ?? 30 * 24,
                },
                { parent: this },
            );
            this.caCertPem = ca.certPem;
            // The chain clients need: server certificate, then the CA.
            this.certPem = pulumi.all([server.certPem, ca.certPem]).apply(([s, c]) => `${s}${c}`);
            files.push({ path: PROXY_CERT_FILE, content: this.certPem }, { path: PROXY_KEY_FILE, content: pulumi.secret(serverKey.privateKeyPem) });
        }
        files.push({ path: "Caddyfile", content: caddyfile });

        const archive = pulumi.secret(
            pulumi
                .all(files.map((f) => pulumi.output(f.content)))
                .apply((contents) =>
                    tarball(files.map((f, i) => ({ path: f.path, content: contents[i], mode: f.path === PROXY_KEY_FILE ? 0o600 : 0o644 }))),
                )
                .apply((b) => b.toString("base64")),
        );

        this.installed = new command.remote.Command(
            `${name}-files`,
            {
                ...remoteDefaults,
                connection: commandConnection(args.connection),
                // Not secret: `preview --diff` shows the proxy's configuration change.
                create: pulumi.output(caddyfile).apply((text) => installTlsCommand(args.app, text)),
                delete: removeTlsCommand(args.app),
                stdin: archive,
                logging: "stderr",
            },
            { parent: this, ...secretOutputs },
        );
        this.registerOutputs({ caCertPem: this.caCertPem });
    }
}
