import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { specialArchiveSig, specialAssetSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { Wire, WireMap } from "../../common/values";
import { opContext, secret } from "../../test/helpers";
import { startSshServer, TestSshServer } from "../../test/sshServer";
import { generateKey } from "../../tls/privateKey";
import { copyToRemote } from "./copyToRemote";

const TYPE = "command:remote:CopyToRemote";
const clientKey = generateKey("ED25519", 2048, "P224");

let server: TestSshServer;
let local: string;
let remote: string;

beforeAll(async () => {
    server = await startSshServer();
    local = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-copy-src-"));
    fs.mkdirSync(path.join(local, "bundle/bin"), { recursive: true });
    fs.writeFileSync(path.join(local, "bundle/compose.yaml"), "name: bot\n");
    fs.writeFileSync(path.join(local, "bundle/bin/deploy.sh"), "#!/bin/sh\necho deploy\n", { mode: 0o755 });
    fs.writeFileSync(path.join(local, "bundle/empty"), "");
});
beforeEach(() => {
    remote = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-copy-dst-"));
});
afterAll(() => server.close());

const fileAsset = (p: string, hash = "h1"): Wire => ({ [specialSigKey]: specialAssetSig, path: p, hash });
const textAsset = (text: string): Wire => ({ [specialSigKey]: specialAssetSig, text, hash: "t" });
const fileArchive = (p: string, hash = "a1"): Wire => ({ [specialSigKey]: specialArchiveSig, path: p, hash });

function inputs(source: Wire, remotePath: string): WireMap {
    return {
        connection: secret({ host: "127.0.0.1", port: server.port, user: "u", privateKey: clientKey.privateKeyOpenssh, hostKey: server.hostKey }),
        source,
        remotePath,
    };
}

async function copy(props: WireMap) {
    expect((await copyToRemote.check({}, props)).failures).toEqual([]);
    return copyToRemote.create(opContext(TYPE), props);
}

const mode = (p: string) => fs.statSync(p).mode & 0o777;

describe("command:remote:CopyToRemote", () => {
    test("a directory lands inside remotePath, parents created, permission bits kept", async () => {
        const dest = path.join(remote, "opt/bot/releases/r1");
        await copy(inputs(fileArchive(path.join(local, "bundle")), dest));
        expect(fs.readFileSync(path.join(dest, "bundle/compose.yaml"), "utf8")).toBe("name: bot\n");
        expect(fs.readFileSync(path.join(dest, "bundle/bin/deploy.sh"), "utf8")).toBe("#!/bin/sh\necho deploy\n");
        expect(mode(path.join(dest, "bundle/bin/deploy.sh"))).toBe(0o755);
        expect(fs.readFileSync(path.join(dest, "bundle/empty"), "utf8")).toBe("");
    });

    test("a directory written with a trailing slash copies its contents", async () => {
        await copy(inputs(fileArchive(path.join(local, "bundle") + "/"), remote));
        expect(fs.readdirSync(remote).sort()).toEqual(["bin", "compose.yaml", "empty"]);
    });

    test("a file goes to remotePath, or into it when it is a directory", async () => {
        const src = path.join(local, "bundle/bin/deploy.sh");
        await copy(inputs(fileAsset(src), path.join(remote, "a/b/run.sh")));
        expect(mode(path.join(remote, "a/b/run.sh"))).toBe(0o755);
        await copy(inputs(fileAsset(src), remote));
        expect(fs.existsSync(path.join(remote, "deploy.sh"))).toBe(true);
    });

    test("a text asset becomes the file's content", async () => {
        await copy(inputs(textAsset("KEY='v a l'\n"), path.join(remote, "shared/.env")));
        expect(fs.readFileSync(path.join(remote, "shared/.env"), "utf8")).toBe("KEY='v a l'\n");
    });

    test("unsupported sources fail the check", async () => {
        const remoteArchive = { [specialSigKey]: specialArchiveSig, uri: "https://example.com/x.tgz", hash: "x" };
        const { failures } = await copyToRemote.check({}, inputs(remoteArchive, remote));
        expect(failures).toEqual([{ property: "source", reason: "must be a FileAsset, StringAsset or FileArchive" }]);
    });

    test("a big file already on the VM with the same content is not sent again; a different one is", async () => {
        const big = path.join(local, "image.tar");
        fs.writeFileSync(big, Buffer.alloc((1 << 20) + 7, 7));
        const dest = path.join(remote, "image.tar");
        await copy(inputs(fileAsset(big), dest));
        expect(fs.readFileSync(dest).equals(fs.readFileSync(big))).toBe(true);
        const old = new Date("2020-01-01T00:00:00Z");
        fs.utimesSync(dest, old, old);
        const execs = server.execs.length;
        await copy(inputs(fileAsset(big), dest));
        expect(server.execs.length).toBe(execs + 1);
        expect(fs.statSync(dest).mtime).toEqual(old);

        const changed = Buffer.from(fs.readFileSync(dest));
        changed[100] = 8;
        fs.writeFileSync(dest, changed);
        fs.utimesSync(dest, old, old);
        await copy(inputs(fileAsset(big), dest));
        expect(fs.readFileSync(dest).equals(fs.readFileSync(big))).toBe(true);
        expect(fs.statSync(dest).mtime).not.toEqual(old);
    });

    test("diff and update go by content hash: an unchanged source is not uploaded again", async () => {
        const props = inputs(fileArchive(path.join(local, "bundle"), "hash-1"), remote);
        const { outs } = await copy(props);
        expect(await copyToRemote.diff(outs!, { ...props })).toEqual({ changes: false });

        const rehashed = { ...props, source: fileArchive(path.join(local, "bundle"), "hash-2") };
        expect(await copyToRemote.diff(outs!, rehashed)).toEqual({ changes: true, replaces: [] });
        expect(await copyToRemote.diff(outs!, { ...props, triggers: ["x"] })).toEqual({ changes: true, replaces: ["triggers"] });

        const before = server.connections;
        const otherUser = { ...props, connection: secret({ ...(props.connection as { value: object }).value, user: "v" }) };
        await copyToRemote.update!(opContext(TYPE), "id", outs!, otherUser);
        expect(server.connections).toBe(before);
        await copyToRemote.update!(opContext(TYPE), "id", outs!, rehashed);
        expect(server.connections).toBe(before + 1);
    });
});
