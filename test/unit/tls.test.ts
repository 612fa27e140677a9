/** TLS ingress: the Caddyfile's text, the compose proxy service, and the tls config rules. */
import { readFileSync } from "fs";
import { join } from "path";
import { parse } from "yaml";
import { ConfigError, parseConfig } from "../../lib/config";
import { renderCaddyfile } from "../../lib/render/caddyfile";
import { renderCompose } from "../../lib/render/compose";
import { installTlsCommand, removeTlsCommand } from "../../lib/remote";
import { certificateNames } from "../../components/tlsIngress";

const images = { "bot-api": "onevm/bot-api:v1", migrate: "onevm/migrate:v1", postgres: "onevm/postgres:17", redis: "onevm/redis:8" };

describe("Caddyfile", () => {
    test("loopback mode: no TLS, only the plain-HTTP site the VM's loopback port reaches", () => {
        expect(renderCaddyfile({ mode: "loopback" })).toBe(
            [
                "# Rendered by onevm. Do not edit on the VM: `pulumi up` replaces it.",
                "{",
                "\tadmin localhost:2019",
                "\tauto_https off",
                "}",
                "",
                "http://:8080 {",
                "\treverse_proxy bot-api:8080 {",
                "\t\tfail_duration 1s",
                "\t\tlb_try_duration 30s",
                "\t\tlb_try_interval 250ms",
                "\t}",
                "}",
                "",
            ].join("\n"),
        );
    });

    const proxyBlock = [
        "\treverse_proxy bot-api:8080 {",
        "\t\tfail_duration 1s",
        "\t\tlb_try_duration 30s",
        "\t\tlb_try_interval 250ms",
        "\t}",
    ];

    test("certificate mode: onevm's cert and key, no ACME, port 80 only redirects, plain HTTP on 8080", () => {
        expect(renderCaddyfile({ mode: "certificate", defaultSni: "203.0.113.10" })).toBe(
            [
                "# Rendered by onevm. Do not edit on the VM: `pulumi up` replaces it.",
                "{",
                "\tadmin localhost:2019",
                "\tauto_https off",
                "\tdefault_sni 203.0.113.10",
                "}",
                "",
                ":80 {",
                "\tredir https://{host}{uri} 308",
                "}",
                "",
                ":443 {",
                "\ttls /etc/caddy/cert.pem /etc/caddy/key.pem",
                ...proxyBlock,
                "}",
                "",
                "http://:8080 {",
                ...proxyBlock,
                "}",
                "",
            ].join("\n"),
        );
    });

    test("acme mode: the domain as site address (Caddy certifies it and answers ACME on 80), e-mail global", () => {
        const text = renderCaddyfile({ mode: "acme", domain: "bot.example.com", email: "ops@example.com" });
        expect(text).toContain("{\n\tadmin localhost:2019\n\temail ops@example.com\n}\n");
        expect(text).toContain(["\nbot.example.com {", ...proxyBlock, "}", "", "http://:8080 {", ...proxyBlock, "}", ""].join("\n"));
        expect(text).not.toMatch(/auto_https|tls \/etc|:80 \{/);
        expect(renderCaddyfile({ mode: "acme", domain: "bot.example.com" })).not.toContain("email");
        expect(() => renderCaddyfile({ mode: "acme" })).toThrow(/needs a domain/);
    });

    test("one upstream, the service name: activate.sh pins the proxy through the admin API, found by the `upstreams` key", () => {
        const text = renderCaddyfile({ mode: "certificate" });
        expect(text.match(/reverse_proxy bot-api:8080 \{/g)).toHaveLength(2);
        expect(text).not.toContain("default_sni");
        const activate = readFileSync(join(__dirname, "../../scripts/remote/activate.sh"), "utf8");
        expect(activate).toContain('has("upstreams")');
        expect(activate).toContain("http://localhost:2019/load");
        expect(text).toContain("admin localhost:2019");
    });
});

describe("compose proxy service", () => {
    const off = renderCompose({ app: "bot", releaseId: "v1", images });
    const text = renderCompose({ app: "bot", releaseId: "v1", images, proxy: { image: "onevm/caddy:2", configDir: "/opt/bot/shared/tls", tls: true } });
    const loopback = parse(renderCompose({ app: "bot", releaseId: "v1", images, proxy: { image: "onevm/caddy:2", configDir: "/opt/bot/shared/tls", tls: false } }));
    const doc = parse(text);

    test("no proxy: bot-api publishes the loopback port itself; no caddy volume", () => {
        expect(parse(off).services.proxy).toBeUndefined();
        expect(parse(off).services["bot-api"].ports).toEqual(["127.0.0.1:8080:8080"]);
        expect(Object.keys(parse(off).volumes)).toEqual(["pgdata"]);
    });

    test("loopback proxy: only the loopback port, published by the proxy; otherwise the TLS file's services", () => {
        const published = Object.entries(loopback.services).flatMap(([name, s]: [string, any]) => (s.ports ?? []).map((p: string) => `${name} ${p}`));
        expect(published).toEqual(["proxy 127.0.0.1:8080:8080"]);
        const { ports: _tlsPorts, ...tlsProxy } = doc.services.proxy;
        const { ports: _loopbackPorts, ...loopbackProxy } = loopback.services.proxy;
        expect(loopbackProxy).toEqual(tlsProxy);
        expect({ ...loopback.services, proxy: undefined }).toEqual({ ...doc.services, proxy: undefined });
    });

    test("80 and 443 are the only ports published beyond loopback; the proxy takes 127.0.0.1:8080, bot-api publishes none", () => {
        const published = Object.entries(doc.services).flatMap(([name, s]: [string, any]) => (s.ports ?? []).map((p: string) => `${name} ${p}`));
        expect(published.sort()).toEqual(["proxy 0.0.0.0:443:443", "proxy 0.0.0.0:80:80", "proxy 127.0.0.1:8080:8080"]);
    });

    test("config mounted read-only from shared/tls; ACME state in a named volume; started after the app", () => {
        expect(doc.services.proxy).toMatchObject({
            image: "onevm/caddy:2",
            restart: "unless-stopped",
            volumes: ["/opt/bot/shared/tls:/etc/caddy:ro", "caddy_data:/data"],
            logging: { driver: "json-file" },
        });
        // Ordered after bot-api (a release that adds the proxy frees 8080 first), never restarted with it.
        expect(doc.services.proxy.depends_on).toEqual({ "bot-api": { condition: "service_started" } });
        expect(doc.services.proxy.environment).toBeUndefined();
        expect(doc.services.proxy.healthcheck.test).toEqual(["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:2019/config/"]);
        expect(Object.keys(doc.volumes)).toEqual(["pgdata", "caddy_data"]);
    });

    test("the other services are exactly those of the TLS-off file, but bot-api publishes no port", () => {
        const { proxy: _proxy, ...rest } = doc.services;
        const { ports, ...offApi } = parse(off).services["bot-api"];
        expect(ports).toEqual(["127.0.0.1:8080:8080"]);
        expect(rest).toEqual({ ...parse(off).services, "bot-api": offApi });
    });
});

test("install-tls runs as root from the scripts dir (the key goes on stdin, the Caddyfile also in the line), removal is a plain rm", () => {
    expect(installTlsCommand("bot", "http://:8080 {\n\treverse_proxy bot-api:8080\n}\n")).toBe(
        "sudo -n /opt/bot/bin/install-tls.sh --app-dir /opt/bot --proxy-uid 480 --caddyfile 'http://:8080 {\n\treverse_proxy bot-api:8080\n}\n'",
    );
    expect(removeTlsCommand("bot")).toBe("sudo -n rm -rf -- /opt/bot/shared/tls");
});

test("certificate names: domain first, the VM address as IP or DNS SAN", () => {
    expect(certificateNames("127.0.0.1", "bot.onevm.test")).toEqual({ commonName: "bot.onevm.test", dnsNames: ["bot.onevm.test"], ipAddresses: ["127.0.0.1"] });
    expect(certificateNames("vm.example.com")).toEqual({ commonName: "vm.example.com", dnsNames: ["vm.example.com"], ipAddresses: [] });
});

describe("config rules", () => {
    const valid: Record<string, string> = {
        host: "127.0.0.1",
        sshPrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nk\n-----END OPENSSH PRIVATE KEY-----\n",
        hostPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKey sandbox",
        releaseId: "v1",
        images: JSON.stringify(images),
        telegramBotToken: "t",
    };
    const parseWith = (o: Record<string, string>) => parseConfig((k) => ({ ...valid, ...o })[k], { operator: "tester" });
    const problems = (o: Record<string, string>) => {
        try {
            parseWith(o);
        } catch (e) {
            return (e as ConfigError).problems;
        }
        throw new Error("expected a ConfigError");
    };

    test("TLS off by default, tls keys ignored while off; the proxy still runs on the loopback port unless loopbackProxy is false", () => {
        expect(parseWith({}).tls).toBeUndefined();
        expect(parseWith({ tlsMode: "nonsense" }).tls).toBeUndefined();
        expect(parseWith({}).proxy).toEqual({ mode: "loopback", image: "onevm/caddy:2" });
        expect(parseWith({ loopbackProxy: "false" }).proxy).toBeUndefined();
        expect(parseWith({ proxyImage: "registry.example.com/caddy:2.6" }).proxy?.image).toBe("registry.example.com/caddy:2.6");
        expect(problems({ loopbackProxy: "no" })).toEqual(['onevm:loopbackProxy = "no" must be true or false']);
    });

    test("on: certificate mode by default with the onevm/caddy:2 proxy, whatever loopbackProxy says", () => {
        expect(parseWith({ tlsIngress: "true" }).tls).toEqual({ mode: "certificate", domain: undefined, email: undefined });
        expect(parseWith({ tlsIngress: "true" }).proxy).toEqual({ mode: "certificate", image: "onevm/caddy:2" });
        expect(parseWith({ tlsIngress: "true", loopbackProxy: "false" }).proxy).toEqual({ mode: "certificate", image: "onevm/caddy:2" });
        expect(parseWith({ tlsIngress: "true", tlsDomain: "bot.onevm.test" }).tls?.domain).toBe("bot.onevm.test");
    });

    test("acme needs a domain; domain, e-mail, mode and image are checked", () => {
        expect(parseWith({ tlsIngress: "true", tlsMode: "acme", tlsDomain: "bot.example.com", tlsEmail: "ops@example.com" }).tls).toMatchObject({
            mode: "acme",
            domain: "bot.example.com",
            email: "ops@example.com",
        });
        expect(problems({ tlsIngress: "true", tlsMode: "acme" })).toEqual([expect.stringMatching(/^onevm:tlsDomain is required/)]);
        expect(problems({ tlsIngress: "yes" })).toEqual(['onevm:tlsIngress = "yes" must be true or false']);
        expect(problems({ tlsIngress: "true", tlsMode: "letsencrypt" })).toEqual([expect.stringMatching(/^onevm:tlsMode = "letsencrypt" must be one of/)]);
        expect(problems({ tlsIngress: "true", tlsDomain: "203.0.113.10" })).toEqual([expect.stringMatching(/^onevm:tlsDomain = "203.0.113.10" must be a DNS name/)]);
        expect(problems({ tlsIngress: "true", tlsDomain: "https://bot.example.com" })).toHaveLength(1);
        expect(problems({ tlsIngress: "true", tlsDomain: "*.example.com" })).toHaveLength(1);
        expect(problems({ tlsIngress: "true", tlsMode: "acme", tlsDomain: "bot.example.com", tlsEmail: "ops; rm" })).toEqual([
            expect.stringMatching(/^onevm:tlsEmail = "ops; rm" must be an e-mail address/),
        ]);
        expect(problems({ tlsIngress: "true", proxyImage: "caddy" })).toEqual([expect.stringMatching(/^onevm:proxyImage = "caddy" must pin a tag/)]);
    });
});
