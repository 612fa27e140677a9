/** Image references as Docker reads them, and the pins a release runs. */
import { lockEntries, lookupsOf, pinFromDigest, planPins } from "../../lib/imagePins";
import { apiHost, builtImageRef, parseImageRef, PINNED_REF, pinnedRef } from "../../lib/imageRef";

const D = `sha256:${"a".repeat(64)}`;
const E = `sha256:${"e".repeat(64)}`;

test.each([
    ["postgres:17", { domain: "docker.io", path: "library/postgres", tag: "17", repository: "postgres" }],
    ["team/app:1", { domain: "docker.io", path: "team/app", tag: "1", repository: "team/app" }],
    ["ghcr.io/team/shop/api:v2", { domain: "ghcr.io", path: "team/shop/api", tag: "v2", repository: "ghcr.io/team/shop/api" }],
    ["172.17.0.5:5000/app/api:v1", { domain: "172.17.0.5:5000", path: "app/api", tag: "v1", repository: "172.17.0.5:5000/app/api" }],
    ["localhost/app:1", { domain: "localhost", path: "app", tag: "1", repository: "localhost/app" }],
    [`caddy:2.10.2@${D}`, { domain: "docker.io", path: "library/caddy", tag: "2.10.2", digest: D, repository: "caddy" }],
    [`reg.example:443/api@${D}`, { domain: "reg.example:443", path: "api", digest: D, repository: "reg.example:443/api" }],
])("parseImageRef(%s)", (ref, want) => {
    expect(parseImageRef(ref)).toEqual({ tag: undefined, digest: undefined, ...want });
});

test("pins: repository@digest, the tag dropped; Docker Hub's API host; built tags", () => {
    expect(pinnedRef("postgres:17", D)).toBe(`postgres@${D}`);
    expect(pinnedRef(`caddy:2@${E}`, D)).toBe(`caddy@${D}`);
    expect(PINNED_REF.test(`172.17.0.5:5000/app/api@${D}`)).toBe(true);
    expect(PINNED_REF.test("postgres:17")).toBe(false);
    expect(apiHost("docker.io")).toBe("registry-1.docker.io");
    expect(apiHost("ghcr.io")).toBe("ghcr.io");
    expect(builtImageRef("ghcr.io", "team/shop", "API", "v1")).toBe("ghcr.io/team/shop/api:v1");
});

test("planPins: a recorded pin wins over everything, then a digest in the reference, then onevm's build, then a lookup", () => {
    const images = { api: "r.example/shop/api:v1", migrate: "r.example/shop/api:v1", db: "postgres:17", proxy: `caddy:2@${E}`, cache: "redis:8" };
    const plan = planPins(images, new Set(["r.example/shop/api:v1"]), { "redis:8": `redis@${D}`, "bogus:1": "not-a-pin" });
    expect(plan).toEqual({
        "r.example/shop/api:v1": { kind: "build" },
        "postgres:17": { kind: "lookup" },
        [`caddy:2@${E}`]: { kind: "digest", pinned: `caddy@${E}` },
        "redis:8": { kind: "recorded", pinned: `redis@${D}` },
    });
    expect(lookupsOf(plan)).toEqual(["postgres:17"]);
    // A known release's built image is recorded too: it is not built again.
    expect(planPins({ api: "r.example/shop/api:v1" }, new Set(["r.example/shop/api:v1"]), { "r.example/shop/api:v1": `r.example/shop/api@${D}` })).toEqual({
        "r.example/shop/api:v1": { kind: "recorded", pinned: `r.example/shop/api@${D}` },
    });
});

test("the lock: each service's pinned image, every service pinned", () => {
    const pins = { "r.example/shop/api:v1": `r.example/shop/api@${D}`, "postgres:17": `postgres@${E}` };
    expect(lockEntries({ migrate: "r.example/shop/api:v1", api: "r.example/shop/api:v1", db: "postgres:17" }, pins)).toEqual({
        api: `r.example/shop/api@${D}`,
        db: `postgres@${E}`,
        migrate: `r.example/shop/api@${D}`,
    });
    expect(() => lockEntries({ cache: "redis:8" }, pins)).toThrow(/no pinned digest for cache \(redis:8\)/);
    expect(pinFromDigest("r.example/shop/api:v1", `r.example/shop/api@${D}`)).toBe(`r.example/shop/api@${D}`);
    expect(pinFromDigest("r.example/shop/api:v1", D)).toBe(`r.example/shop/api@${D}`);
    expect(() => pinFromDigest("r.example/shop/api:v1", "sha256:123")).toThrow(/not a sha256 digest/);
});
