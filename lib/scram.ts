/**
 * PostgreSQL's SCRAM-SHA-256 password verifier (RFC 5802/7677), computed here so that
 * rotating the database password sends `ALTER ROLE ... PASSWORD '<verifier>'`: the
 * plaintext never reaches the VM's SQL, logs or process list. The salt is derived
 * from the password, so the same password always renders the same statement and an
 * unchanged password is no change at all.
 */
import { createHash, createHmac, pbkdf2Sync } from "crypto";

export const SCRAM_ITERATIONS = 4096;

export function scramSha256Verifier(password: string, saltSeed: string): string {
    const salt = createHash("sha256").update(`onevm-scram-salt\0${saltSeed}\0${password}`).digest().subarray(0, 16);
    const salted = pbkdf2Sync(password.normalize("NFKC"), salt, SCRAM_ITERATIONS, 32, "sha256");
    const clientKey = createHmac("sha256", salted).update("Client Key").digest();
    const storedKey = createHash("sha256").update(clientKey).digest();
    const serverKey = createHmac("sha256", salted).update("Server Key").digest();
    return `SCRAM-SHA-256$${SCRAM_ITERATIONS}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** The statement that sets the role's password to the verifier (identifiers validated by config). */
export function alterRolePasswordSql(role: string, verifier: string): string {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role) || !/^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/.test(verifier)) {
        throw new Error("refusing to render ALTER ROLE for an invalid role or verifier");
    }
    return `ALTER ROLE "${role}" PASSWORD '${verifier}';\n`;
}
