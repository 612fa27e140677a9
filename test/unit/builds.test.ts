/** onevm's builds: Compose's interpolation of build args, build specs, identities, grouping, and reading a context. */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildIdentity, groupBuilds, interpolate, parseBuild, repositoryComponent } from "../../lib/builds";
import { contextDigest } from "../../program/buildContext";

const env = { RELEASE: "v2", EMPTY: "", NAME: "shop" };
const interp = (value: string) => {
    const problems: string[] = [];
    return { value: interpolate(value, env, "compose.yaml: services.api.build.args.X", problems), problems };
};

test.each([
    ["plain", "plain"],
    ["${RELEASE}", "v2"],
    ["$RELEASE-x", "v2-x"],
    ["${UNSET}", ""],
    ["${UNSET:-v1}", "v1"],
    ["${EMPTY:-dflt}", "dflt"],
    ["${EMPTY-dflt}", ""],
    ["${UNSET-dflt}", "dflt"],
    ["${RELEASE:+set}", "set"],
    ["${UNSET:+set}", ""],
    ["${UNSET:-${NAME}-${RELEASE}}", "shop-v2"],
    ["cost $$5", "cost $5"],
    ["a$", "a$"],
])("Compose interpolation from the environment: %s -> %s", (raw, want) => {
    expect(interp(raw)).toEqual({ value: want, problems: [] });
});

test("a required variable that is missing is one problem naming the Compose path and the environment", () => {
    expect(interp("${TOKEN:?set TOKEN}").problems).toEqual([
        "compose.yaml: services.api.build.args.X: TOKEN is required (set TOKEN): set it in the environment of `pulumi up`",
    ]);
    expect(interp("${EMPTY?x}").problems).toEqual([]);
    expect(interp("${RELEASE").problems).toEqual([expect.stringMatching(/unterminated/)]);
});

describe("parseBuild", () => {
    const parse = (build: unknown, platform?: unknown, e: Record<string, string> = env) => {
        const problems: string[] = [];
        return { spec: parseBuild("api", build, platform, e, "compose.yaml", problems), problems };
    };

    test("a context path alone, or an object: defaults, interpolated args (map and list forms), target, network, platform", () => {
        expect(parse("./api")).toEqual({ spec: { context: "api", dockerfile: "Dockerfile", args: {} }, problems: [] });
        expect(
            parse({ context: ".", dockerfile: "docker/Dockerfile.prod", target: "runtime", network: "host", args: { RELEASE: "${RELEASE:-v1}", N: 3, FROM_ENV: null } }, "linux/arm64", {
                RELEASE: "v7",
                FROM_ENV: "e",
            }),
        ).toEqual({
            spec: { context: ".", dockerfile: "docker/Dockerfile.prod", target: "runtime", network: "host", platform: "linux/arm64", args: { RELEASE: "v7", N: "3", FROM_ENV: "e" } },
            problems: [],
        });
        // The list form; a bare name takes the environment's value, and is left out without one.
        expect(parse({ context: "api/", args: ["RELEASE=${RELEASE}", "NAME", "MISSING"] }).spec).toEqual({ context: "api", dockerfile: "Dockerfile", args: { RELEASE: "v2", NAME: "shop" } });
    });

    test("settings onevm does not build with, remote contexts and malformed args are refused naming the path", () => {
        expect(parse({ context: ".", cache_from: ["x"], "x-note": 1 }).problems).toEqual([
            "compose.yaml: services.api.build.cache_from is not supported by onevm's builds (supported: context, dockerfile, target, args, network): build the image yourself and set onevm:images.api",
        ]);
        expect(parse("https://github.com/team/api.git").problems).toEqual([expect.stringMatching(/onevm builds from local directories only/)]);
        expect(parse({ args: "RELEASE=v1" }).problems).toEqual(["compose.yaml: services.api.build.args must be a map or a list of KEY=VALUE"]);
        expect(parse({ args: { "BAD-NAME": "x" } }).problems).toEqual([expect.stringMatching(/"BAD-NAME" is not a build arg name/)]);
        expect(parse(["."]).problems).toEqual([expect.stringMatching(/must be a context path or an object/)]);
        expect(parse({ args: { T: "${TOKEN:?}" } }).problems).toEqual([expect.stringMatching(/services.api.build.args.T: TOKEN is required/)]);
    });
});

test("a build's identity: the context's content and every setting but the network", () => {
    const spec = { context: "api", dockerfile: "Dockerfile", args: { RELEASE: "v1", A: "1" }, target: "web" };
    const id = buildIdentity(spec, { digest: "d1" });
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(buildIdentity({ ...spec, args: { A: "1", RELEASE: "v1" } }, { digest: "d1" })).toBe(id);
    expect(buildIdentity({ ...spec, network: "host" }, { digest: "d1" })).toBe(id);
    expect(buildIdentity(spec, { digest: "d2" })).not.toBe(id);
    expect(buildIdentity({ ...spec, args: { RELEASE: "v2", A: "1" } }, { digest: "d1" })).not.toBe(id);
    expect(buildIdentity({ ...spec, target: "worker" }, { digest: "d1" })).not.toBe(id);
    expect(buildIdentity({ ...spec, platform: "linux/arm64" }, { digest: "d1" })).not.toBe(id);
});

test("services with the same build share one image, named after the first of them; each is tagged <server>/<namespace>/<name>:<release>", () => {
    const same = { spec: { context: "server", dockerfile: "Dockerfile", args: { RELEASE: "v1" } }, identity: "i1" };
    const groups = groupBuilds(
        { migrate: same, api: same, Worker_Bot: { spec: { ...same.spec, target: "worker" }, identity: "i2" } },
        { server: "ghcr.io", namespace: "team/shop" },
        "v1",
    );
    expect(groups.map(({ name, image, services }) => ({ name, image, services }))).toEqual([
        { name: "worker-bot", image: "ghcr.io/team/shop/worker-bot:v1", services: ["Worker_Bot"] },
        { name: "api", image: "ghcr.io/team/shop/api:v1", services: ["api", "migrate"] },
    ]);
    // Two services whose names normalise alike do not share a repository.
    const clash = groupBuilds({ "bot-api": same, bot_api: { ...same, spec: { ...same.spec, target: "x" } } }, { server: "r.example", namespace: "a" }, "v1");
    expect(clash.map((g) => g.image)).toEqual(["r.example/a/bot-api:v1", "r.example/a/bot-api-2:v1"]);
    expect(repositoryComponent("__")).toBe("image");
});

describe("contextDigest: what the build sees, after .dockerignore", () => {
    let dir: string;
    const write = (rel: string, content: string, mode = 0o644) => {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), content, { mode });
        fs.chmodSync(path.join(dir, rel), mode);
    };
    const digest = () => contextDigest(dir, path.join(dir, "Dockerfile"))!.digest;
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-ctx-"));
        write("Dockerfile", "FROM scratch\nCOPY . /app\n");
        write("app/main.py", "print('v1')\n");
        write(".dockerignore", "**/__pycache__\n*.log\n!keep.log\n");
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    test("a source file's content or executable bit changes it; ignored files and other permission bits do not", () => {
        const before = digest();
        expect(before).toMatch(/^[0-9a-f]{64}$/);
        write("app/__pycache__/main.cpython.pyc", "junk");
        write("debug.log", "noise");
        fs.chmodSync(path.join(dir, "app/main.py"), 0o664);
        expect(digest()).toBe(before);
        write("keep.log", "kept by the exception");
        const withKept = digest();
        expect(withKept).not.toBe(before);
        write("app/main.py", "print('v2')\n");
        expect(digest()).not.toBe(withKept);
        const v2 = digest();
        fs.chmodSync(path.join(dir, "app/main.py"), 0o755);
        expect(digest()).not.toBe(v2);
    });

    test("the Dockerfile counts even when ignored; <Dockerfile>.dockerignore takes precedence; a missing context or Dockerfile gives none", () => {
        const before = digest();
        write(".dockerignore", "Dockerfile\n");
        const ignoringIt = digest();
        write("Dockerfile", "FROM scratch\n");
        expect(digest()).not.toBe(ignoringIt);
        write("Dockerfile.dockerignore", "app\n");
        const specific = digest();
        write("app/main.py", "changed");
        expect(digest()).toBe(specific);
        expect(before).not.toBe(specific);
        expect(contextDigest(path.join(dir, "nope"), path.join(dir, "Dockerfile"))).toBeUndefined();
        expect(contextDigest(dir, path.join(dir, "Missing.Dockerfile"))).toBeUndefined();
    });
});
