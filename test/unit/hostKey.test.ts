/**
 * lib/hostKey.ts: the pinned key's parsing, `ssh-keygen -l` fingerprints and the refusal
 * message of the host key pre-flight (components/hostKeyPreflight.ts).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { utils } from "ssh2";
import { blobType, defaultDialPolicy, fingerprint, hostKeyAlgorithms, hostKeyMismatchMessage, parseHostKey } from "../../lib/hostKey";

const ed = () => utils.generateKeyPairSync("ed25519").public;

test("parses an OpenSSH public key line, with or without a comment", () => {
    const line = ed();
    const k = parseHostKey(`${line} root@vm\n`);
    expect(k.type).toBe("ssh-ed25519");
    expect(blobType(k.blob)).toBe("ssh-ed25519");
    expect(k.blob.toString("base64")).toBe(line.split(" ")[1]);
});

test("refuses what is not a public key line, naming it", () => {
    expect(() => parseHostKey("")).toThrow(/not an OpenSSH public key line/);
    expect(() => parseHostKey("ssh-ed25519")).toThrow(/not an OpenSSH public key line/);
    expect(() => parseHostKey("ssh-ed25519 !!!")).toThrow(/not an OpenSSH public key line/);
    // The blob declares another type than the line.
    expect(() => parseHostKey(`ssh-rsa ${ed().split(" ")[1]}`)).toThrow(/not an OpenSSH public key line \("TYPE BASE64"\): "ssh-rsa AAAA/);
});

test("fingerprints are the ones ssh-keygen -l prints", () => {
    const line = ed();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-hostkey-"));
    try {
        fs.writeFileSync(path.join(dir, "k.pub"), `${line}\n`);
        const out = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", path.join(dir, "k.pub")], { encoding: "utf8" });
        expect(out.split(" ")[1]).toBe(fingerprint(parseHostKey(line).blob));
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(fingerprint(parseHostKey(line).blob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
});

test("the server is asked for a key of the pinned type (RSA by any of its signature algorithms)", () => {
    expect(hostKeyAlgorithms("ssh-ed25519")).toEqual(["ssh-ed25519"]);
    expect(hostKeyAlgorithms("ecdsa-sha2-nistp256")).toEqual(["ecdsa-sha2-nistp256"]);
    expect(hostKeyAlgorithms("ssh-rsa")).toEqual(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
});

test("the refusal names the address, both keys, that nothing changed, and what to do", () => {
    const pinned = parseHostKey(ed());
    const offered = parseHostKey(ed()).blob;
    const msg = hostKeyMismatchMessage({ host: "203.0.113.10", port: 22, offered, pinned, pinnedBy: "onevm:hostPublicKey", remedy: "If the VM was rebuilt, verify the new key out of band and set onevm:hostPublicKey." });
    expect(msg).toBe(
        `onevm: the VM at 203.0.113.10:22 offered host key ${fingerprint(offered)} (ssh-ed25519) but onevm:hostPublicKey pins ${fingerprint(pinned.blob)} (ssh-ed25519); ` +
            "nothing was changed. If the VM was rebuilt, verify the new key out of band and set onevm:hostPublicKey.",
    );
    expect(msg).not.toContain("\n");
    expect(hostKeyMismatchMessage({ host: "h", port: 2222, pinned, pinnedBy: "p", remedy: "r" })).toMatch(/^onevm: the VM at h:2222 offered no ssh-ed25519 host key but p pins SHA256:/);
});

test("dials are bounded like the command provider's (30 attempts of at most 10 s), pauses grow to 5 s", () => {
    expect(defaultDialPolicy.attempts).toBe(30);
    expect(defaultDialPolicy.perDialTimeoutMs).toBe(10_000);
    expect([1, 2, 3, 4, 5, 10].map(defaultDialPolicy.pauseMs)).toEqual([1000, 1500, 2250, 3375, 5000, 5000]);
});
