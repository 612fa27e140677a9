import * as fs from "fs";
import * as path from "path";
import { ComposeDoc, describeApp, parseCompose, releaseContent, releaseHash } from "../../lib/app";
import { ConfigError, parseConfig } from "../../lib/config";
import { COMPOSE_FILE, SHOP_SECRET_KEYS, shopConfig } from "./shopConfig";

const dir = path.resolve(__dirname, "fixtures", "shop");
const text = fs.readFileSync(path.join(dir, "compose.yaml"), "utf8");
const readFile = (rel: string) => (fs.existsSync(path.join(dir, rel)) && fs.statSync(path.join(dir, rel)).isFile() ? fs.readFileSync(path.join(dir, rel), "utf8") : undefined);

function cfg(overrides: Record<string, string | undefined> = {}) {
    const values = shopConfig(overrides);
    return parseConfig((k) => values[k], { isSecret: (k) => SHOP_SECRET_KEYS.includes(k) });
}

function doc(yaml = text): ComposeDoc {
    const parsed = parseCompose(yaml, COMPOSE_FILE);
    expect(parsed.problems).toEqual([]);
    return parsed.doc!;
}

function describe_(overrides: Record<string, string | undefined> = {}, yaml = text) {
    return describeApp(cfg(overrides), { file: COMPOSE_FILE, doc: doc(yaml) }, readFile);
}

function problems(overrides: Record<string, string | undefined>, yaml = text): string[] {
    try {
        describe_(overrides, yaml);
    } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).problems;
    }
    throw new Error("expected a ConfigError");
}

test("the app: name from the Compose file, every service's image, roles, the files it binds", () => {
    const model = describe_();
    expect(model.app).toBe("shop");
    expect(model.images).toEqual({
        api: "registry.example.com/shop/api:v1",
        migrate: "registry.example.com/shop/api:v1",
        worker: "registry.example.com/shop/worker:1.4.0",
        postgres: "postgres:17",
        nginx: "nginx:1.27",
    });
    expect(Object.keys(model.compose.services)).not.toContain("adminer");
    expect(model.web).toMatchObject({ service: "api", port: 8000 });
    expect(model.files).toEqual([{ path: "nginx/default.conf", content: readFile("nginx/default.conf") }]);
    expect(model.releaseHash).toMatch(/^[0-9a-f]{64}$/);
});

test("onevm:app overrides the file's name; without either it is required", () => {
    expect(describe_({ "onevm:app": "store" }).app).toBe("store");
    expect(problems({}, text.replace("name: shop\n", ""))).toEqual([expect.stringMatching(/^onevm:app is required: .* has no top-level name:/)]);
    expect(problems({}, text.replace("name: shop\n", "name: Shop_App\n"))).toEqual([expect.stringMatching(/name: "Shop_App" must be 2-31 lowercase .*; or set onevm:app/)]);
});

test.each([
    [{ "onevm:web": JSON.stringify({ service: "frontend", port: 3000 }) }, /onevm:web.service names "frontend", which is not a service of .*compose.yaml \(services: api, migrate, worker, postgres, nginx\)/],
    [{ "onevm:web": JSON.stringify({ service: "adminer", port: 80 }) }, /onevm:web.service names "adminer", which only runs with a Compose profile/],
    [{ "onevm:migrate": "migrations" }, /onevm:migrate names "migrations", which is not a service/],
    [{ "onevm:database": JSON.stringify({ service: "db" }) }, /onevm:database.service names "db"/],
    [{ "onevm:database": JSON.stringify({ service: "postgres", clients: ["api", "web"] }) }, /onevm:database.clients\[1\] names "web"/],
    [{ "onevm:secrets": JSON.stringify({ STRIPE_KEY: ["api", "billing"] }) }, /onevm:secrets.STRIPE_KEY\[1\] names "billing"/],
    [{ "onevm:images": JSON.stringify({ api: "r.example/api:1", billing: "r.example/billing:1" }) }, /onevm:images.billing names "billing"/],
    [{ "onevm:limits": JSON.stringify({ cache: { memory: "64m" } }) }, /onevm:limits.cache names "cache"/],
    [{ "onevm:images": JSON.stringify({ migrate: "r.example/api:1" }) }, /services.api.image "registry.example.com\/shop\/api" must pin a tag or a digest.*; or set onevm:images.api/],
    [{ "onevm:web": JSON.stringify({ service: "migrate", port: 8000 }) }, /onevm:web.service and onevm:migrate name the same service/],
])("a role that does not fit the Compose file is refused naming the key: %j", (overrides, message) => {
    expect(problems(overrides)).toEqual(expect.arrayContaining([expect.stringMatching(message)]));
});

test("a service without any image is refused: the VM never builds; with registry transport the error names onevm:registry", () => {
    const built = text.replace("    image: registry.example.com/shop/worker:1.4.0\n", "    build: ./worker\n");
    expect(problems({ "onevm:imageTransport": "archive" }, built)).toEqual([
        expect.stringMatching(/services.worker has no image: set onevm:images.worker \(the VM never builds\)/),
    ]);
    expect(problems({}, built)).toEqual([
        expect.stringMatching(/services.worker is built from its build: section, and nothing says where its image goes: set onevm:registry \(and onevm:registryPassword\) so onevm builds it .*, or set onevm:images.worker/),
    ]);
});

test("ports on a non-loopback address are refused; bare ones are fine (bound to loopback when rendered)", () => {
    expect(problems({}, text.replace('"5432:5432"', '"0.0.0.0:5432:5432"'))).toEqual([
        expect.stringMatching(/services.postgres.ports\[0\] publishes on 0.0.0.0: onevm publishes only on the VM's loopback/),
    ]);
    expect(() => describe_({}, text.replace('"5432:5432"', '"127.0.0.1:5432:5432"'))).not.toThrow();
});

test("a key onevm provides may only be interpolated in the file, not given a value", () => {
    expect(problems({}, text.replace("STRIPE_KEY: ${STRIPE_KEY}", "STRIPE_KEY: sk_test_123"))).toEqual([
        expect.stringMatching(/services.api.environment.STRIPE_KEY is set in the Compose file, but onevm provides it from shared\/.env/),
    ]);
});

test("the web service may not set container_name behind the proxy (two of its containers overlap in a switch)", () => {
    const named = text.replace("    image: registry.example.com/shop/api\n    build:", "    image: registry.example.com/shop/api\n    container_name: shop-api\n    build:");
    expect(problems({}, named)).toEqual([expect.stringMatching(/services.api.container_name: two containers of the web service overlap/)]);
    expect(() => describe_({ "onevm:loopbackProxy": "false" }, named)).not.toThrow();
});

test("files outside the Compose file's directory, or missing, are refused", () => {
    expect(problems({}, text.replace("./nginx/default.conf", "../secrets/default.conf"))).toEqual([expect.stringMatching(/uses "..\/secrets\/default.conf", outside the Compose file's directory/)]);
    expect(problems({}, text.replace("./nginx/default.conf", "./nginx/missing.conf"))).toEqual([expect.stringMatching(/uses .\/nginx\/missing.conf, which is not a file next to it/)]);
});

test("onevm's proxy service name is reserved", () => {
    expect(problems({}, text.replace("  nginx:\n", "  onevm-proxy:\n"))).toEqual([expect.stringMatching(/services.onevm-proxy is the name of onevm's proxy/)]);
});

describe("release identity", () => {
    const base = describe_();

    test("keyed to the Compose document, the images and the files; not to comments, key order or host config", () => {
        const reordered = text.replace("# A team's own Compose file", "# Reworded comment").replace("name: shop\nservices:", "services:").concat("name: shop\n");
        expect(describe_({}, reordered).releaseHash).toBe(base.releaseHash);
        for (const hostConfig of [
            { "onevm:secrets": JSON.stringify({ STRIPE_KEY: ["api", "worker"] }) },
            { "onevm:limits": JSON.stringify({ api: { memory: "1g" } }) },
            { "onevm:loopbackProxy": "false" },
            { "onevm:tlsIngress": "true" },
            { "onevm:web": JSON.stringify({ service: "api", port: 8000, health: { path: "/up" } }) },
            { "onevm:backupMinFreeMb": "10" },
        ]) {
            expect(describe_(hostConfig).releaseHash).toBe(base.releaseHash);
        }
    });

    test("changes with an image, the Compose file's content or a bound file", () => {
        expect(describe_({ "onevm:images": JSON.stringify({ api: "registry.example.com/shop/api:v2", migrate: "registry.example.com/shop/api:v1" }) }).releaseHash).not.toBe(base.releaseHash);
        expect(describe_({}, text.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")).releaseHash).not.toBe(base.releaseHash);
        const other = describeApp(cfg(), { file: COMPOSE_FILE, doc: doc() }, (rel) => (rel === "nginx/default.conf" ? "server { listen 81; }" : undefined));
        expect(other.releaseHash).not.toBe(base.releaseHash);
    });

    test("the recorded content reproduces the release: same hash, same images, same files", () => {
        const content = releaseContent(base);
        expect(releaseHash(content)).toBe(base.releaseHash);
        const files = new Map(content.files.map((f) => [f.path, f.content]));
        const again = describeApp(cfg({ "onevm:images": JSON.stringify({ api: "registry.example.com/shop/api:v9", migrate: "registry.example.com/shop/api:v9" }) }), { file: "record", doc: JSON.parse(content.compose), images: content.images }, (r) => files.get(r));
        expect(again.releaseHash).toBe(base.releaseHash);
        expect(again.images).toEqual(base.images);
    });
});

test("YAML problems name the file", () => {
    expect(parseCompose("services: [", "x/compose.yaml").problems).toEqual([expect.stringMatching(/^x\/compose.yaml: not valid YAML: /)]);
    expect(parseCompose("volumes: {}\n", "x/compose.yaml").problems).toEqual(["x/compose.yaml: has no services:"]);
});
