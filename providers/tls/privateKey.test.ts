import { execFileSync } from "child_process";
import { createPrivateKey, createPublicKey } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { isSecret, reveal } from "../common/values";
import { opContext } from "../test/helpers";
import { generateKey, privateKey } from "./privateKey";

const TYPE = "tls:index/privateKey:PrivateKey";

function sshKeygen(args: string[], key: string): string {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "onevm-tls-")), "key");
    fs.writeFileSync(file, key, { mode: 0o600 });
    return execFileSync("ssh-keygen", [...args, "-f", file], { encoding: "utf8" });
}

describe("tls:index/privateKey:PrivateKey", () => {
    test.each([
        ["ED25519", "ssh-ed25519", "-----BEGIN PRIVATE KEY-----"],
        ["RSA", "ssh-rsa", "-----BEGIN RSA PRIVATE KEY-----"],
        ["ECDSA", "ecdsa-sha2-nistp256", "-----BEGIN EC PRIVATE KEY-----"],
    ])("%s keys in every format agree with each other and with OpenSSH", (algorithm, sshType, pemHeader) => {
        const k = generateKey(algorithm, 2048, "P256");
        expect(k.privateKeyPem.startsWith(pemHeader)).toBe(true);
        expect(k.privateKeyPemPkcs8.startsWith("-----BEGIN PRIVATE KEY-----")).toBe(true);
        expect(k.privateKeyOpenssh.startsWith("-----BEGIN OPENSSH PRIVATE KEY-----")).toBe(true);
        expect(k.publicKeyOpenssh).toMatch(new RegExp(`^${sshType} [A-Za-z0-9+/]+=*\\n$`));

        const spki = (pem: string) => createPublicKey(createPrivateKey(pem)).export({ type: "spki", format: "pem" });
        expect(spki(k.privateKeyPem)).toBe(k.publicKeyPem);
        expect(spki(k.privateKeyPemPkcs8)).toBe(k.publicKeyPem);

        expect(sshKeygen(["-y"], k.privateKeyOpenssh).trim()).toBe(k.publicKeyOpenssh.trim());
        expect(sshKeygen(["-l", "-E", "sha256"], k.publicKeyOpenssh)).toContain(` ${k.publicKeyFingerprintSha256} `);
        expect(sshKeygen(["-l", "-E", "md5"], k.publicKeyOpenssh)).toContain(` MD5:${k.publicKeyFingerprintMd5} `);
    });

    test("ECDSA P224 has no OpenSSH form, as upstream", () => {
        const k = generateKey("ECDSA", 2048, "P224");
        expect(k.privateKeyPem.startsWith("-----BEGIN EC PRIVATE KEY-----")).toBe(true);
        expect(k.publicKeyOpenssh).toBe("");
        expect(k.privateKeyOpenssh).toBe("");
    });

    test("check applies defaults and rejects unknown algorithms", async () => {
        expect(await privateKey.check({}, { algorithm: "ED25519" })).toEqual({
            inputs: { algorithm: "ED25519", rsaBits: 2048, ecdsaCurve: "P224" },
            failures: [],
        });
        expect((await privateKey.check({}, { algorithm: "DSA" })).failures).toEqual([
            { property: "algorithm", reason: "must be one of RSA, ECDSA, ED25519" },
        ]);
    });

    test("create marks private material secret; any input change replaces", async () => {
        const inputs = (await privateKey.check({}, { algorithm: "ED25519" })).inputs;
        const { id, outs } = await privateKey.create(opContext(TYPE), inputs);
        expect(id).toMatch(/^[0-9a-f]{40}$/);
        for (const k of ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"]) expect(isSecret(outs[k])).toBe(true);
        expect(isSecret(outs.publicKeyOpenssh)).toBe(false);
        expect(reveal(outs.publicKeyFingerprintSha256)).toMatch(/^SHA256:/);
        expect(await privateKey.diff(outs, inputs)).toEqual({ changes: false });
        expect(await privateKey.diff(outs, { ...inputs, algorithm: "RSA" })).toEqual({ changes: true, replaces: ["algorithm"] });
    });
});
