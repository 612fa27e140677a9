import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { newHostKey } from "../../test/sshServer";
import { fingerprint, parseHostKey } from "./hostKey";

describe("host key pinning", () => {
    const { publicKey } = newHostKey();

    test("accepts an authorized_keys line or a known_hosts line", () => {
        const key = parseHostKey(`${publicKey.trim()} root@vm\n`);
        expect(key.type).toBe("ssh-ed25519");
        expect(key.algorithms).toEqual(["ssh-ed25519"]);
        expect(parseHostKey(`203.0.113.7 ${publicKey}`).blob).toEqual(key.blob);
    });

    test("rejects text that is no key, and key data of another type", () => {
        expect(() => parseHostKey("not a key")).toThrow(/not an OpenSSH public key/);
        const [, data] = publicKey.split(" ");
        expect(() => parseHostKey(`ssh-rsa ${data}`)).toThrow(/not a ssh-rsa key/);
    });

    test("fingerprints match ssh-keygen", () => {
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "onevm-hk-")), "k.pub");
        fs.writeFileSync(file, publicKey);
        const expected = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", file], { encoding: "utf8" }).split(" ")[1];
        expect(fingerprint(parseHostKey(publicKey).blob)).toBe(expected);
    });
});
