import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { archiveName, recordedSha256 } from "../../lib/images";
import { imageArchivePaths, vmEngineHash } from "../../program/artifacts";

const HASH = "ab".repeat(32);

test("a record at least as new as the archive, naming it, gives its hash", () => {
    expect(recordedSha256({ name: "bot-api_v1.tar", mtimeMs: 100 }, { text: `${HASH}  bot-api_v1.tar\n`, mtimeMs: 100 })).toBe(HASH);
    // sha256sum's binary-mode marker
    expect(recordedSha256({ name: "bot-api_v1.tar", mtimeMs: 100 }, { text: `${HASH} *bot-api_v1.tar\n`, mtimeMs: 200 })).toBe(HASH);
});

test("a record older than the archive, of another file, or not sha256sum's format gives nothing", () => {
    const archive = { name: "bot-api_v1.tar", mtimeMs: 200 };
    expect(recordedSha256(archive, { text: `${HASH}  bot-api_v1.tar\n`, mtimeMs: 199 })).toBeUndefined();
    expect(recordedSha256({ ...archive, mtimeMs: 0 }, { text: `${HASH}  bot-api_v2.tar\n`, mtimeMs: 1 })).toBeUndefined();
    expect(recordedSha256({ ...archive, mtimeMs: 0 }, { text: `${HASH.slice(2)}  bot-api_v1.tar\n`, mtimeMs: 1 })).toBeUndefined();
    expect(recordedSha256({ ...archive, mtimeMs: 0 }, { text: `${HASH}  bot-api_v1.tar\n${HASH}  x.tar\n`, mtimeMs: 1 })).toBeUndefined();
});

test("imageArchivePaths reads sha256sum's own record of an archive; without one the engine hashes", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-archives-"));
    try {
        fs.writeFileSync(path.join(dir, "redis_8.tar"), "redis layers");
        fs.writeFileSync(path.join(dir, "postgres_17.tar"), "postgres layers");
        fs.writeFileSync(path.join(dir, "redis_8.tar.sha256"), execFileSync("sha256sum", ["redis_8.tar"], { cwd: dir }));
        const archives = imageArchivePaths(["redis:8", "postgres:17", "redis:8"], dir);
        expect(archives).toEqual([
            { path: path.join(dir, "redis_8.tar"), sha256: crypto.createHash("sha256").update("redis layers").digest("hex") },
            { path: path.join(dir, "postgres_17.tar"), sha256: undefined },
        ]);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

test("archive names: the last path component, tag or the digest's first 12 hex", () => {
    expect(archiveName("registry.example.com/shop/api:v1")).toBe("api_v1");
    expect(archiveName("caddy:2.10.2@sha256:c3d7ee5d2b11f9dc54f947f68a734c84e9c9666c92c88a7f30b9cba5da182adb")).toBe("caddy_2.10.2_c3d7ee5d2b11");
});

test("a missing archive names the file and how to make it", () => {
    expect(() => imageArchivePaths(["shop/api:v1"], "/nonexistent")).toThrow(/image archive \/nonexistent\/api_v1.tar for shop\/api:v1 does not exist: save it there \(docker save shop\/api:v1/);
});

test("the VM engine's hash covers its scripts and modules, and changes with any of them", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-engine-"));
    try {
        fs.mkdirSync(path.join(dir, "lib"));
        fs.writeFileSync(path.join(dir, "activate.sh"), "echo a\n");
        fs.writeFileSync(path.join(dir, "lib", "common.sh"), "echo c\n");
        const before = vmEngineHash(dir);
        expect(vmEngineHash(dir)).toBe(before);
        fs.writeFileSync(path.join(dir, "lib", "common.sh"), "echo changed\n");
        expect(vmEngineHash(dir)).not.toBe(before);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
