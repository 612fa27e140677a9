import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { imageArchivePaths, recordedSha256 } from "../../lib/artifacts";

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
        const archives = imageArchivePaths({ redis: "onevm/redis:8", postgres: "onevm/postgres:17" }, dir);
        expect(archives).toEqual([
            { path: path.join(dir, "redis_8.tar"), sha256: crypto.createHash("sha256").update("redis layers").digest("hex") },
            { path: path.join(dir, "postgres_17.tar"), sha256: undefined },
        ]);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
