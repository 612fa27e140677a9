import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { isSecret, reveal, WireMap } from "../../common/values";
import { opContext, secret } from "../../test/helpers";
import { localCommand } from "./command";

const TYPE = "command:local:Command";
const VALUES = [`it's "q" $HOME \`x\` # c`, "a\nb\n", "back\\slash", "héllo ✓", ""];

async function run(inputs: WireMap) {
    expect((await localCommand.check({}, inputs)).failures).toEqual([]);
    return localCommand.create(opContext(TYPE), inputs);
}

describe("command:local:Command", () => {
    test("environment and stdin reach the command exactly; dir sets the working directory", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-local-"));
        const environment = Object.fromEntries(VALUES.map((v, i) => [`V${i}`, v]));
        const { outs } = await run({
            create: `for v in ${VALUES.map((_, i) => `V${i}`).join(" ")}; do printf '%s' "\${!v}" | base64 -w0; echo; done; base64 -w0; echo; pwd`,
            interpreter: ["/bin/bash", "-c"],
            environment,
            stdin: "in\nput",
            dir,
        });
        const lines = (outs.stdout as string).split("\n");
        expect(lines.slice(0, VALUES.length).map((l) => Buffer.from(l, "base64").toString())).toEqual(VALUES);
        expect(Buffer.from(lines[VALUES.length], "base64").toString()).toBe("in\nput");
        expect(lines[VALUES.length + 1]).toBe(fs.realpathSync(dir));
    });

    test("a failing command reports its exit code and stderr, not its secrets", async () => {
        const inputs = { create: 'echo "x $TOKEN" >&2; exit 7', environment: { TOKEN: secret("tok-987654321") } };
        await expect(localCommand.create(opContext(TYPE), inputs)).rejects.toThrow(/^command exited with code 7; last lines of stderr:\nx \[secret\]$/);
    });

    test("stdout is secret when the command could echo a secret", async () => {
        const { outs } = await run({ create: "echo $A", environment: { A: secret("value") } });
        expect(isSecret(outs.stdout)).toBe(true);
        expect(reveal(outs.stdout)).toBe("value");
    });

    test("a previous output too long for the environment is left out rather than breaking every exec", async () => {
        const inputs: WireMap = { create: "head -c 200000 /dev/zero | tr '\\0' x", update: "/bin/echo ok" };
        const created = await run(inputs);
        const ctx = opContext(TYPE);
        const { outs } = await localCommand.update!(ctx, created.id, created.outs, { ...inputs, triggers: [1] });
        expect(outs.stdout).toBe("ok");
        expect(ctx.log.lines[0]).toMatch(/^PULUMI_COMMAND_STDOUT is not set: the previous output \(200000 characters\) is too long/);
        const huge = { create: "true", environment: { BIG: "x".repeat(140_000) } };
        expect((await localCommand.check({}, huge)).failures).toEqual([
            { property: "environment.BIG", reason: "is longer than Linux allows (128 KiB)" },
        ]);
    });

    test("SDK inputs this implementation lacks fail the check instead of being ignored", async () => {
        const { failures } = await localCommand.check({}, { create: "true", archivePaths: ["*.txt"] });
        expect(failures).toEqual([{ property: "archivePaths", reason: "is not supported by onevm's command provider" }]);
    });

    test("diff: no change -> none, triggers -> replace, other inputs -> update", async () => {
        const base: WireMap = { create: "true", triggers: [1], dir: "/tmp" };
        const outs = { ...base, stdout: "", stderr: "" };
        expect(await localCommand.diff(outs, { ...base })).toEqual({ changes: false });
        expect(await localCommand.diff(outs, { ...base, triggers: [2] })).toEqual({ changes: true, replaces: ["triggers"] });
        expect(await localCommand.diff(outs, { ...base, dir: "/" })).toEqual({ changes: true, replaces: [] });
    });
});
