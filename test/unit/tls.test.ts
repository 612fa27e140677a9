/** The proxy: the Caddyfile's text in each mode, its commands and certificate names, and the tls config rules. */
import { ConfigError, DEFAULT_PROXY_IMAGE, parseConfig } from "../../lib/config";
import { renderCaddyfile } from "../../lib/render/caddyfile";
import { installTlsCommand, removeTlsCommand } from "../../lib/remote";
import { certificateNames } from "../../components/proxy";
import { SHOP_SECRET_KEYS, shopConfig } from "./shopConfig";

const upstream = "api:8000";

describe("Caddyfile", () => {
    test("loopback mode: no TLS, only the plain-HTTP site the VM's loopback port reaches", () => {
        expect(renderCaddyfile({ mode: "loopback", upstream })).toBe(
            [
                "# Rendered by onevm. Do not edit on the VM: `pulumi up` replaces it.",
                "{",
                "\tadmin localhost:2019",
                "\tauto_https off",
                "}",
                "",
                "http://:8080 {",
                "\treverse_proxy api:8000 {",
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
        "\treverse_proxy api:8000 {",
        "\t\tfail_duration 1s",
        "\t\tlb_try_duration 30s",
        "\t\tlb_try_interval 250ms",
        "\t}",
    ];

    test("certificate mode: onevm's cert and key, no ACME, port 80 only redirects, plain HTTP on 8080", () => {
        expect(renderCaddyfile({ mode: "certificate", upstream, defaultSni: "203.0.113.10" })).toBe(
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
        const text = renderCaddyfile({ mode: "acme", upstream, domain: "bot.example.com", email: "ops@example.com" });
        expect(text).toContain("{\n\tadmin localhost:2019\n\temail ops@example.com\n}\n");
        expect(text).toContain(["\nbot.example.com {", ...proxyBlock, "}", "", "http://:8080 {", ...proxyBlock, "}", ""].join("\n"));
        expect(text).not.toMatch(/auto_https|tls \/etc|:80 \{/);
        expect(renderCaddyfile({ mode: "acme", upstream, domain: "bot.example.com" })).not.toContain("email");
        expect(() => renderCaddyfile({ mode: "acme", upstream })).toThrow(/needs a domain/);
    });

    test("one upstream, the web service by name, in both sites; the admin API stays inside the container", () => {
        const text = renderCaddyfile({ mode: "certificate", upstream });
        expect(text.match(/reverse_proxy api:8000 \{/g)).toHaveLength(2);
        expect(text).not.toContain("default_sni");
        expect(text).toContain("admin localhost:2019");
    });
});

test("install-tls runs as root from the scripts dir (the key goes on stdin), removal is a plain rm", () => {
    expect(installTlsCommand("bot", "{\n}\n")).toBe("sudo -n /opt/bot/bin/install-tls.sh --app-dir /opt/bot --caddyfile '{\n}\n'");
    expect(removeTlsCommand("bot")).toBe("sudo -n rm -rf -- /opt/bot/shared/tls");
});

test("certificate names: domain first, the VM address as IP or DNS SAN", () => {
    expect(certificateNames("127.0.0.1", "bot.onevm.test")).toEqual({ commonName: "bot.onevm.test", dnsNames: ["bot.onevm.test"], ipAddresses: ["127.0.0.1"] });
    expect(certificateNames("vm.example.com")).toEqual({ commonName: "vm.example.com", dnsNames: ["vm.example.com"], ipAddresses: [] });
});

describe("config rules", () => {
    const parseWith = (o: Record<string, string>) => {
        const values = shopConfig(Object.fromEntries(Object.entries(o).map(([k, v]) => [`onevm:${k}`, v])));
        return parseConfig((k) => values[k], { operator: "tester", isSecret: (k) => SHOP_SECRET_KEYS.includes(k) });
    };
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
        expect(parseWith({}).proxy).toEqual({ mode: "loopback", image: DEFAULT_PROXY_IMAGE });
        expect(parseWith({ loopbackProxy: "false" }).proxy).toBeUndefined();
        expect(parseWith({ proxyImage: "registry.example.com/caddy:2.6" }).proxy?.image).toBe("registry.example.com/caddy:2.6");
        expect(problems({ loopbackProxy: "no" })).toEqual(['onevm:loopbackProxy = "no" must be true or false']);
    });

    test("on: certificate mode by default with the default proxy image, whatever loopbackProxy says", () => {
        expect(parseWith({ tlsIngress: "true" }).tls).toEqual({ mode: "certificate", domain: undefined, email: undefined });
        expect(parseWith({ tlsIngress: "true" }).proxy).toEqual({ mode: "certificate", image: DEFAULT_PROXY_IMAGE });
        expect(parseWith({ tlsIngress: "true", loopbackProxy: "false" }).proxy).toEqual({ mode: "certificate", image: DEFAULT_PROXY_IMAGE });
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
