/**
 * An in-memory stand-in for the S3 API calls offsite-copy.sh makes (path-style PUT, GET,
 * DELETE object, ListObjectsV2), checking every request's AWS SigV4 signature against one
 * key pair: a wrong or missing secret on the VM fails the copy as a real bucket would.
 * Tests only: plain HTTP on the address given (the docker bridge gateway for sandboxes).
 * It runs in its own process (spawnFakeS3): the e2e tests block their event loop in
 * spawnSync while the VM talks to it. Objects live as files in a directory, requests are
 * appended to requests.jsonl beside them, so the test reads both from disk.
 */
import { ChildProcess, spawn } from "child_process";
import { createHash, createHmac } from "crypto";
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as path from "path";

export interface FakeS3Options {
    host: string;
    /** 0: any free port. */
    port?: number;
    accessKeyId: string;
    secretAccessKey: string;
    region: string;
    bucket: string;
    /** Objects are stored here (file name: the URI-encoded key); requests in DIR/../requests.jsonl. */
    dir: string;
}

export interface FakeS3 {
    url: string;
    bucket: string;
    /** key -> content, read from the directory; survives stop()/start(). */
    objects(): Map<string, Buffer>;
    /** Every request: method, path, whether its signature verified. */
    requests(): Array<{ method: string; path: string; signed: boolean }>;
    /** Stops the server process (a target that is down); start() serves on the same port again. */
    stop(): Promise<void>;
    start(): Promise<void>;
}

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();
/** RFC 3986 encoding, as SigV4's canonical query string wants it. */
const uriEncode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function canonicalQuery(query: string): string {
    if (!query) {
        return "";
    }
    return query
        .split("&")
        .map((pair) => {
            const i = pair.indexOf("=");
            const [k, v] = i < 0 ? [pair, ""] : [pair.slice(0, i), pair.slice(i + 1)];
            return [uriEncode(decodeURIComponent(k)), uriEncode(decodeURIComponent(v))];
        })
        .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
        .map(([k, v]) => `${k}=${v}`)
        .join("&");
}

/** Returns undefined when the request carries a valid SigV4 signature, else the reason. */
function checkSignature(req: http.IncomingMessage, body: Buffer, o: FakeS3Options): string | undefined {
    const auth = req.headers.authorization ?? "";
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) {
        return "no SigV4 Authorization header";
    }
    const [, keyId, date, region, signedHeaders, signature] = m;
    if (keyId !== o.accessKeyId) {
        return "unknown access key id";
    }
    if (region !== o.region) {
        return `wrong region ${region}`;
    }
    const amzDate = String(req.headers["x-amz-date"] ?? "");
    const payloadHeader = req.headers["x-amz-content-sha256"];
    const payloadHash = typeof payloadHeader === "string" ? payloadHeader : sha256(body);
    if (/^[0-9a-f]{64}$/.test(payloadHash) && payloadHash !== sha256(body)) {
        return "x-amz-content-sha256 does not match the body";
    }
    const [path, query = ""] = (req.url ?? "/").split("?", 2);
    const headers = signedHeaders
        .split(";")
        .map((h) => `${h}:${String(req.headers[h] ?? "").trim().replace(/\s+/g, " ")}\n`)
        .join("");
    const canonical = [req.method, path, canonicalQuery(query), headers, signedHeaders, payloadHash].join("\n");
    const scope = `${date}/${region}/s3/aws4_request`;
    const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
    const key = hmac(hmac(hmac(hmac(`AWS4${o.secretAccessKey}`, date), region), "s3"), "aws4_request");
    return createHmac("sha256", key).update(toSign).digest("hex") === signature ? undefined : "SignatureDoesNotMatch";
}

const xmlEscape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function error(res: http.ServerResponse, status: number, code: string, message: string) {
    res.writeHead(status, { "content-type": "application/xml" });
    res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`);
}

const requestLog = (o: FakeS3Options) => path.join(path.dirname(o.dir), "requests.jsonl");
const objectFile = (o: FakeS3Options, key: string) => path.join(o.dir, encodeURIComponent(key));

function readObjects(o: FakeS3Options): Map<string, Buffer> {
    return new Map(fs.readdirSync(o.dir).map((f) => [decodeURIComponent(f), fs.readFileSync(path.join(o.dir, f))]));
}

/** Serves in this process until it exits; resolves with the URL. */
export function serveFakeS3(o: FakeS3Options): Promise<string> {
    fs.mkdirSync(o.dir, { recursive: true });
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            const body = Buffer.concat(chunks);
            const url = new URL(req.url ?? "/", "http://s3");
            const problem = checkSignature(req, body, o);
            fs.appendFileSync(requestLog(o), `${JSON.stringify({ method: req.method ?? "", path: url.pathname, signed: problem === undefined })}\n`);
            if (problem) {
                return error(res, 403, "SignatureDoesNotMatch", problem);
            }
            const [, bucket, ...rest] = url.pathname.split("/");
            const key = decodeURIComponent(rest.join("/"));
            if (bucket !== o.bucket) {
                return error(res, 404, "NoSuchBucket", bucket);
            }
            if (key === "" && req.method === "GET") {
                const prefix = url.searchParams.get("prefix") ?? "";
                const objects = readObjects(o);
                const keys = [...objects.keys()].filter((k) => k.startsWith(prefix)).sort();
                res.writeHead(200, { "content-type": "application/xml" });
                return res.end(
                    `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${bucket}</Name><Prefix>${xmlEscape(prefix)}</Prefix>` +
                        `<KeyCount>${keys.length}</KeyCount><IsTruncated>false</IsTruncated>` +
                        keys.map((k) => `<Contents><Key>${xmlEscape(k)}</Key><Size>${objects.get(k)!.length}</Size></Contents>`).join("") +
                        "</ListBucketResult>",
                );
            }
            switch (req.method) {
                case "PUT":
                    fs.writeFileSync(objectFile(o, key), body);
                    res.writeHead(200, { etag: `"${createHash("md5").update(body).digest("hex")}"` });
                    return res.end();
                case "GET":
                case "HEAD": {
                    const data = fs.existsSync(objectFile(o, key)) ? fs.readFileSync(objectFile(o, key)) : undefined;
                    if (!data) {
                        return error(res, 404, "NoSuchKey", key);
                    }
                    res.writeHead(200, { "content-length": data.length, "content-type": "application/octet-stream" });
                    return res.end(req.method === "GET" ? data : undefined);
                }
                case "DELETE":
                    fs.rmSync(objectFile(o, key), { force: true });
                    res.writeHead(204);
                    return res.end();
                default:
                    return error(res, 405, "MethodNotAllowed", req.method ?? "");
            }
        });
    };
    return new Promise((resolve, reject) => {
        const server = http.createServer(handler);
        server.once("error", reject);
        server.listen(o.port ?? 0, o.host, () => resolve(`http://${o.host}:${(server.address() as AddressInfo).port}`));
    });
}

/** Starts the server in a child process (node + ts-node), returning a handle that reads its files. */
export async function spawnFakeS3(o: FakeS3Options): Promise<FakeS3> {
    let child: ChildProcess | undefined;
    let port = o.port ?? 0;
    const start = () =>
        new Promise<void>((resolve, reject) => {
            child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", __filename, JSON.stringify({ ...o, port })], {
                stdio: ["ignore", "pipe", "inherit"],
            });
            let out = "";
            child.stdout!.on("data", (d: Buffer) => {
                out += d.toString();
                const m = /^(http:\/\/\S+)\n/.exec(out);
                if (m) {
                    port = Number(new URL(m[1]).port);
                    resolve();
                }
            });
            child.once("exit", (code) => reject(new Error(`fake S3 server exited ${code}: ${out}`)));
        });
    const stop = () =>
        new Promise<void>((resolve) => {
            if (!child || child.exitCode !== null) {
                return resolve();
            }
            child.once("exit", () => resolve());
            child.kill("SIGTERM");
        });
    await start();
    return {
        get url() {
            return `http://${o.host}:${port}`;
        },
        bucket: o.bucket,
        objects: () => readObjects(o),
        requests: () =>
            fs.existsSync(requestLog(o))
                ? fs.readFileSync(requestLog(o), "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l))
                : [],
        stop,
        start,
    };
}

if (require.main === module) {
    serveFakeS3(JSON.parse(process.argv[2])).then((url) => process.stdout.write(`${url}\n`));
}
