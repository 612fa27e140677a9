/**
 * The registry gate of `pulumi up` against a local https registry stand-in whose TLS
 * certificate chains to a CA made here (openssl): the CA given as onevm:registry.caCertificate
 * is trusted, a refused password stops the program with one message, an unreachable
 * registry stops it only when the deploy needs the registry, tags are pinned to digests.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";

const stops: string[] = [];
// The real stopWithError ends the process: this one records the message and never returns.
jest.mock("../../program/stop", () => ({
    stopWithError: (message: string) => {
        stops.push(message);
        return new Promise(() => undefined);
    },
}));
import { httpsRequest, registryGate } from "../../program/registry";

const D = `sha256:${"4".repeat(64)}`;
const PASSWORD = "canary-registry-pw-93c1";
let dir: string;
let ca: string;
let server: https.Server;
let host: string;

function openssl(...args: string[]) {
    execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-gate-"));
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=onevm test CA");
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
    fs.writeFileSync(path.join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.ext");
    ca = fs.readFileSync(path.join(dir, "ca.pem"), "utf8");
    const auth = `Basic ${Buffer.from(`deployer:${PASSWORD}`).toString("base64")}`;
    server = https.createServer({ key: fs.readFileSync(path.join(dir, "server.key")), cert: fs.readFileSync(path.join(dir, "server.pem")) }, (req, res) => {
        if (req.headers.authorization !== auth) {
            res.writeHead(401, { "WWW-Authenticate": 'Basic realm="test"' }).end();
        } else if (req.url === "/v2/") {
            res.writeHead(200).end("{}");
        } else if (req.url === "/v2/stand-ins/postgres/manifests/17") {
            res.writeHead(200, { "Docker-Content-Digest": D }).end();
        } else {
            res.writeHead(404).end();
        }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    host = `127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
    // Idle keep-alive connections would keep the server, and so jest, alive.
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
    stops.length = 0;
});

/** The gate's outcome during `up` (or a preview). */
async function gate(o: { password?: string; lookups?: string[]; needed?: boolean; host?: string; preview?: boolean; withCa?: boolean }) {
    await pulumi.runtime.setMocks({ newResource: (a) => ({ id: a.name, state: a.inputs }), call: () => ({}) }, "onevm", "unit", o.preview ?? false);
    const g = registryGate({
        registry: { server: o.host ?? host, username: "deployer", password: o.password ?? PASSWORD, ...(o.withCa === false ? {} : { caCertificate: ca }) },
        lookups: o.lookups ?? [],
        needed: o.needed ?? true,
    });
    const impl = g.digests as unknown as { promise(withUnknowns?: boolean): Promise<unknown>; isKnown: Promise<boolean> };
    let poll: NodeJS.Timeout | undefined;
    const stopped = new Promise<{ stopped: string }>((resolve) => {
        poll = setInterval(() => {
            if (stops.length > 0) resolve({ stopped: stops[0] });
        }, 20);
    });
    // The poll stops whichever way the gate ends (a live interval would keep jest from exiting).
    return Promise.race([impl.promise(true).then(async (digests) => ({ digests, known: await impl.isKnown })), stopped]).finally(() => clearInterval(poll));
}

test("the right password passes, trusting onevm:registry.caCertificate; a tag is pinned to the digest the registry serves", async () => {
    const ref = `${host}/stand-ins/postgres:17`;
    expect(await gate({ lookups: [ref] })).toEqual({ digests: { [ref]: `${host}/stand-ins/postgres@${D}` }, known: true });
    expect(stops).toEqual([]);
});

test("a wrong password stops the program with one message naming onevm:registryPassword and the server, never the password", async () => {
    const r = await gate({ password: "wrong-pw", lookups: [`${host}/stand-ins/postgres:17`] });
    expect(r).toEqual({ stopped: expect.stringContaining(`the registry ${host} refused onevm:registry.username "deployer" with onevm:registryPassword (HTTP 401); nothing was changed`) });
    expect(stops).toHaveLength(1);
    expect(stops[0]).not.toContain("wrong-pw");
});

test("without its CA the registry's certificate is not trusted: the gate stops", async () => {
    const r = await gate({ withCa: false });
    expect(r).toEqual({ stopped: expect.stringMatching(new RegExp(`the registry ${host.replace(/\./g, "\\.")} could not be reached \\(.*(certificate|self-signed).*\\); nothing was changed`)) });
});

test("unreachable: a warning when the release needs nothing from it here (the VM decides), a stop when it does", async () => {
    const closed = "127.0.0.1:9";
    expect(await gate({ host: closed, needed: false })).toEqual({ digests: {}, known: true });
    expect(await gate({ host: closed, needed: true })).toEqual({ stopped: expect.stringMatching(/the registry 127\.0\.0\.1:9 could not be reached \(.*ECONNREFUSED.*\); nothing was changed/) });
});

test("a tag the registry does not have is named", async () => {
    expect(await gate({ lookups: [`${host}/stand-ins/postgres:99`] })).toEqual({ stopped: expect.stringMatching(/cannot pin .*postgres:99 to a digest: .* has no stand-ins\/postgres:99 \(HTTP 404\)/) });
});

test("a preview opens no connection: ready at once, the lookups' digests unknown", async () => {
    expect(await gate({ preview: true, host: "127.0.0.1:9", lookups: ["x.example/a:1"] })).toEqual({ digests: expect.anything(), known: false });
    expect(await gate({ preview: true, host: "127.0.0.1:9", lookups: [] })).toEqual({ digests: {}, known: true });
    expect(stops).toEqual([]);
});

test("the https transport trusts the CA given, and only with it", async () => {
    const headers = { Authorization: `Basic ${Buffer.from(`deployer:${PASSWORD}`).toString("base64")}` };
    expect((await httpsRequest(ca)("GET", `https://${host}/v2/`, headers)).status).toBe(200);
    await expect(httpsRequest()("GET", `https://${host}/v2/`, headers)).rejects.toThrow(/certificate/);
});
