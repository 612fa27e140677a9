/**
 * Two stacks, one app dir: the identity a stack claims with, and the claim script itself,
 * run for real with sh against a temporary app dir and host state dir.
 */
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CLAIM_SCRIPT, claimAppDirCommand, stackIdentity, uninstallCommand } from "../../lib/remote";

const USER = os.userInfo().username;

describe("stackIdentity", () => {
    test("org/project/stack", () => {
        expect(stackIdentity("acme", "onevm", "prod-a")).toBe("acme/onevm/prod-a");
    });
    test.each([["", "onevm", "s"], ["acme", "on vm", "s"], ["acme", "onevm", "a/b"], ["acme", "onevm", "x\ny"]])(
        "refuses parts that would not round-trip through state/owner: %j %j %j",
        (org, project, stack) => {
            expect(() => stackIdentity(org, project, stack)).toThrow(/stack identity/);
        },
    );
});

describe("the claim command", () => {
    test("passes the identity as a plain argument, the app dir and the host state dir", () => {
        expect(claimAppDirCommand("bot", "deploy", "acme/onevm/prod-a")).toMatch(/ onevm-claim \/opt\/bot deploy acme\/onevm\/prod-a \/var\/lib\/onevm$/);
    });
    test("uninstall releases only this stack's claim", () => {
        expect(uninstallCommand("bot", "bot.service", "onevm-bot-backup", "acme/onevm/prod-a")).toBe(
            "sudo -n /opt/bot/bin/uninstall.sh --app bot --unit bot.service --cron onevm-bot-backup --owner acme/onevm/prod-a",
        );
    });
});

describe("CLAIM_SCRIPT", () => {
    let tmp: string;
    let appDir: string;
    let hostDir: string;
    beforeEach(() => {
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-claim-"));
        appDir = path.join(tmp, "opt", "bot");
        hostDir = path.join(tmp, "var-lib-onevm");
        fs.mkdirSync(path.dirname(appDir));
    });
    afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

    const args = (stack: string) => ["-c", CLAIM_SCRIPT, "onevm-claim", appDir, USER, stack, hostDir];
    const claim = (stack: string) => spawnSync("sh", args(stack), { encoding: "utf8" });
    const owner = () => fs.readFileSync(path.join(appDir, "state", "owner"), "utf8");
    const listing = (dir: string): string[] =>
        fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => [path.join(dir, e.name), ...(e.isDirectory() ? listing(path.join(dir, e.name)) : [])]).sort();

    test("the first stack claims the app and gets its dirs and the host's activation lock", () => {
        const r = claim("acme/onevm/prod-a");
        expect(r.status).toBe(0);
        expect(owner()).toMatch(/^stack=acme\/onevm\/prod-a\nclaimed_at=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);
        expect(fs.statSync(path.join(appDir, "tools")).isDirectory()).toBe(true);
        expect(fs.statSync(path.join(hostDir, "activate.lock")).mode & 0o777).toBe(0o666);
        expect(r.stderr).toContain("stack acme/onevm/prod-a claimed app bot on this host");
    });

    test("the owner's next deploy passes and keeps the claim as it was", () => {
        expect(claim("acme/onevm/prod-a").status).toBe(0);
        const before = owner();
        const r = claim("acme/onevm/prod-a");
        expect(r.status).toBe(0);
        expect(r.stderr).toBe("");
        expect(owner()).toBe(before);
    });

    test("another stack is refused with the owner named, and nothing changes", () => {
        expect(claim("acme/onevm/prod-a").status).toBe(0);
        fs.rmSync(path.join(appDir, "tools"), { recursive: true });
        const before = listing(tmp);
        const ownerBefore = owner();
        const r = claim("acme/onevm/prod-b");
        expect(r.status).toBe(3);
        expect(r.stderr).toMatch(
            /^onevm: app bot on this host is managed by stack acme\/onevm\/prod-a \(claimed \d{4}-\d\d-\d\dT[\d:]+Z\); deploy from that stack, or pick another onevm:app, or, if that stack is gone for good, release the claim on the host: sudo rm .*\/opt\/bot\/state\/owner\n$/,
        );
        expect(listing(tmp)).toEqual(before);
        expect(owner()).toBe(ownerBefore);
    });

    test("two stacks claiming at the same moment: exactly one wins", async () => {
        const run = (stack: string) =>
            new Promise<{ stack: string; code: number | null }>((resolve) => {
                const p = spawn("sh", args(stack), { stdio: "ignore" });
                p.on("close", (code) => resolve({ stack, code }));
            });
        const results = await Promise.all(["acme/onevm/a", "acme/onevm/b", "acme/onevm/c", "acme/onevm/d"].map(run));
        const winners = results.filter((r) => r.code === 0);
        expect(winners).toHaveLength(1);
        expect(results.filter((r) => r.code === 3)).toHaveLength(3);
        expect(owner()).toContain(`stack=${winners[0].stack}\n`);
    });
});
