/** The registry API client: docker login's check and a tag's digest, against a scripted registry. */
import { HttpRequest, HttpResponse, parseChallenge, RegistryAuthError, RegistryClient, RegistryError, RegistryUnreachableError, tokenUrl } from "../../lib/registryApi";

const D = `sha256:${"d".repeat(64)}`;
const basicOf = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
const res = (status: number, headers: Record<string, string> = {}, body = ""): HttpResponse => ({ status, headers, body: Buffer.from(body) });

/** A scripted transport: records each request, answers with `answer`. */
function transport(answer: (method: string, url: string, headers: Record<string, string>) => HttpResponse | Error) {
    const calls: Array<{ method: string; url: string; headers: Record<string, string> }> = [];
    const http: HttpRequest = async (method, url, headers) => {
        calls.push({ method, url, headers });
        const a = answer(method, url, headers);
        if (a instanceof Error) throw a;
        return a;
    };
    return { http, calls };
}

test("WWW-Authenticate challenges: Basic and Bearer with quoted parameters; the token URL", () => {
    expect(parseChallenge('Basic realm="onevm test"')).toEqual({ scheme: "basic", params: { realm: "onevm test" } });
    const bearer = parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"');
    expect(bearer).toEqual({ scheme: "bearer", params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull,push" } });
    expect(parseChallenge("Negotiate abc")).toBeUndefined();
    expect(parseChallenge(undefined)).toBeUndefined();
    expect(tokenUrl(bearer!, "repository:a/b:pull", "me")).toBe("https://auth.example/token?service=registry.example&scope=repository%3Aa%2Fb%3Apull&account=me");
    expect(() => tokenUrl({ scheme: "bearer", params: { realm: "http://plain/token" } }, undefined, undefined)).toThrow(/not an https URL/);
});

describe("checkLogin, as docker login checks", () => {
    const creds = { username: "deployer", password: "canary-pw" };

    test("Basic: the credentials answer the challenge; a 401 to them is a refusal", async () => {
        const good = transport((_m, _u, h) => (h.Authorization === basicOf("deployer", "canary-pw") ? res(200) : res(401, { "www-authenticate": 'Basic realm="r"' })));
        await new RegistryClient(good.http, "10.0.0.5:5000", creds).checkLogin();
        expect(good.calls.map((c) => c.url)).toEqual(["https://10.0.0.5:5000/v2/", "https://10.0.0.5:5000/v2/"]);
        const bad = transport(() => res(401, { "www-authenticate": 'Basic realm="r"' }));
        await expect(new RegistryClient(bad.http, "10.0.0.5:5000", { ...creds, password: "wrong" }).checkLogin()).rejects.toEqual(
            new RegistryAuthError("10.0.0.5:5000 refused the credentials (HTTP 401)", 401),
        );
    });

    test("Bearer: the credentials are traded for a token at the realm, which then opens /v2/; a refused trade is a refusal", async () => {
        const challenge = { "www-authenticate": 'Bearer realm="https://auth.example/token",service="reg"' };
        const t = transport((_m, url, h) => {
            if (url.startsWith("https://auth.example/token")) return h.Authorization === basicOf("deployer", "canary-pw") ? res(200, {}, '{"token":"tok"}') : res(401);
            return h.Authorization === "Bearer tok" ? res(200) : res(401, challenge);
        });
        await new RegistryClient(t.http, "reg.example", creds).checkLogin();
        expect(t.calls[1].url).toBe("https://auth.example/token?service=reg&account=deployer");
        await expect(new RegistryClient(t.http, "reg.example", { ...creds, password: "wrong" }).checkLogin()).rejects.toBeInstanceOf(RegistryAuthError);
    });

    test("no answer is 'unreachable'; a registry that needs no login passes; anything else is named", async () => {
        const down = transport(() => new Error("connect ECONNREFUSED 10.0.0.5:5000"));
        await expect(new RegistryClient(down.http, "10.0.0.5:5000", creds).checkLogin()).rejects.toEqual(new RegistryUnreachableError("10.0.0.5:5000: connect ECONNREFUSED 10.0.0.5:5000"));
        await new RegistryClient(transport(() => res(200)).http, "open.example", creds).checkLogin();
        await expect(new RegistryClient(transport(() => res(404)).http, "www.example", creds).checkLogin()).rejects.toEqual(
            new RegistryError("www.example answered GET /v2/ with HTTP 404: is it a container registry?"),
        );
    });
});

describe("manifestDigest: what the tag names now", () => {
    test("HEAD with Docker's manifest types; the digest from Docker-Content-Digest, after answering a Bearer challenge for the repository", async () => {
        const t = transport((_method, url, h) => {
            if (url.startsWith("https://auth.docker.example/")) return res(200, {}, '{"access_token":"anon"}');
            if (h.Authorization !== "Bearer anon") return res(401, { "www-authenticate": 'Bearer realm="https://auth.docker.example/token",service="registry.docker.io"' });
            return res(200, { "docker-content-digest": D });
        });
        expect(await new RegistryClient(t.http, "registry-1.docker.io").manifestDigest("library/postgres", "17")).toBe(D);
        expect(t.calls[0]).toMatchObject({ method: "HEAD", url: "https://registry-1.docker.io/v2/library/postgres/manifests/17" });
        expect(t.calls[0].headers.Accept).toMatch(/manifest\.v2\+json.*manifest\.list\.v2\+json.*oci\.image\.manifest.*oci\.image\.index/);
        expect(t.calls[1].url).toBe("https://auth.docker.example/token?service=registry.docker.io&scope=repository%3Alibrary%2Fpostgres%3Apull");
    });

    test("no digest header on HEAD: GET, and the sha256 of the manifest as served", async () => {
        const manifest = '{"schemaVersion":2}';
        const t = transport((method) => (method === "HEAD" ? res(200) : res(200, {}, manifest)));
        const digest = await new RegistryClient(t.http, "r.example", { username: "u", password: "p" }).manifestDigest("a/b", "v1");
        expect(digest).toBe(`sha256:${require("crypto").createHash("sha256").update(manifest).digest("hex")}`);
    });

    test("a missing tag and a refusal are named; Basic credentials are only sent when asked for", async () => {
        const missing = transport(() => res(404));
        await expect(new RegistryClient(missing.http, "r.example").manifestDigest("a/b", "v9")).rejects.toEqual(new RegistryError("r.example has no a/b:v9 (HTTP 404)"));
        expect(missing.calls[0].headers.Authorization).toBeUndefined();
        const basicOnly = transport(() => res(401, { "www-authenticate": 'Basic realm="r"' }));
        await expect(new RegistryClient(basicOnly.http, "r.example").manifestDigest("a/b", "v1")).rejects.toEqual(new RegistryAuthError("r.example requires credentials", 401));
    });
});
