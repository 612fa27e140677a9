/**
 * An in-memory stand-in for the S3 API calls offsite-copy.sh makes (path-style PUT, GET,
 * DELETE object, ListObjectsV2), checking every request's AWS SigV4 signature against one
 * key pair: a wrong or missing secret on the VM fails the copy as a real bucket would.
 * Tests only: plain HTTP on the address given (the docker bridge gateway for sandboxes).
 */
import { createHash, createHmac } from "crypto";
import * as http from "http";
import type { AddressInfo } from "net";

export interface FakeS3 {
    url: string;
    port: number;
    bucket: string;
    /** key -> content; survives stop()/start(). */
    objects: Map<string, Buffer>;
    /** Every request: method, path, whether its signature verified. */
    requests: Array<{ method: string; path: string; signed: boolean }>;
    /** Stops listening (a target that is down); start() listens on the same port again. */
    stop(): Promise<void>;
    start(): Promise<void>;
}

export interface FakeS3Options {
    host: string;
    accessKeyId: string;
    secretAccessKey: string;
    region: string;
    bucket: string;
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

export async function startFakeS3(o: FakeS3Options): Promise<FakeS3> {
    const objects = new Map<string, Buffer>();
    const requests: FakeS3["requests"] = [];
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            const body = Buffer.concat(chunks);
            const url = new URL(req.url ?? "/", "http://s3");
            const problem = checkSignature(req, body, o);
            requests.push({ method: req.method ?? "", path: url.pathname, signed: problem === undefined });
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
                    objects.set(key, body);
                    res.writeHead(200, { etag: `"${createHash("md5").update(body).digest("hex")}"` });
                    return res.end();
                case "GET":
                case "HEAD": {
                    const data = objects.get(key);
                    if (!data) {
                        return error(res, 404, "NoSuchKey", key);
                    }
                    res.writeHead(200, { "content-length": data.length, "content-type": "application/octet-stream" });
                    return res.end(req.method === "GET" ? data : undefined);
                }
                case "DELETE":
                    objects.delete(key);
                    res.writeHead(204);
                    return res.end();
                default:
                    return error(res, 405, "MethodNotAllowed", req.method ?? "");
            }
        });
    };
    let server: http.Server | undefined;
    let port = 0;
    const start = () =>
        new Promise<void>((resolve, reject) => {
            server = http.createServer(handler);
            server.once("error", reject);
            server.listen(port, o.host, () => {
                port = (server!.address() as AddressInfo).port;
                resolve();
            });
        });
    const stop = () =>
        new Promise<void>((resolve) => {
            if (!server) {
                return resolve();
            }
            server.closeAllConnections();
            server.close(() => resolve());
            server = undefined;
        });
    await start();
    return {
        get url() {
            return `http://${o.host}:${port}`;
        },
        port,
        bucket: o.bucket,
        objects,
        requests,
        stop,
        start,
    };
}
