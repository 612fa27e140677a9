import { createHash, createHmac, pbkdf2Sync } from "crypto";
import { alterRolePasswordSql, scramSha256Verifier } from "../../lib/scram";

test("the verifier has PostgreSQL's format and proves the password (RFC 5802 client proof)", () => {
    const v = scramSha256Verifier("s3cret pw", "bot");
    const m = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(v)!;
    expect(m).not.toBeNull();
    const [, salt, storedKey] = m;
    // What a client knowing the password derives must match the stored key.
    const salted = pbkdf2Sync("s3cret pw", Buffer.from(salt, "base64"), 4096, 32, "sha256");
    const clientKey = createHmac("sha256", salted).update("Client Key").digest();
    expect(createHash("sha256").update(clientKey).digest("base64")).toBe(storedKey);
});

test("deterministic per password, different for another password", () => {
    expect(scramSha256Verifier("a", "bot")).toBe(scramSha256Verifier("a", "bot"));
    expect(scramSha256Verifier("a", "bot")).not.toBe(scramSha256Verifier("b", "bot"));
});

test("the ALTER ROLE statement carries the verifier, never the password", () => {
    const sql = alterRolePasswordSql("bot", scramSha256Verifier("plain-canary", "bot"));
    expect(sql).toMatch(/^ALTER ROLE "bot" PASSWORD 'SCRAM-SHA-256\$4096:/);
    expect(sql).not.toContain("plain-canary");
    expect(() => alterRolePasswordSql('bot"; DROP', "x")).toThrow(/invalid role or verifier/);
});
