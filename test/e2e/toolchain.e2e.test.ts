/**
 * The offline toolchain as a user meets it: `npm run pulumi -- plugin ls` lists exactly the
 * official plugins the set-up built, the language host beside the CLI is the official Go
 * binary, the npm SDKs ask for versions those plugins satisfy, and nothing in the repo
 * stands in for a provider or a language host.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parse as parseYaml } from "yaml";
import { ROOT } from "./harness";

const OFFICIAL = { command: "1.2.1", digitalocean: "4.76.0", docker: "5.1.0", random: "4.21.1", tls: "5.5.1" };

function npmRun(args: string[]): string {
    const r = spawnSync("npm", ["run", "--silent", ...args], { cwd: ROOT, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`npm run ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
}

test("npm run pulumi -- plugin ls lists exactly the official resource plugins", () => {
    const plugins = JSON.parse(npmRun(["pulumi", "--", "plugin", "ls", "--json"])) as Array<{ name: string; kind: string; version: string }>;
    expect(plugins.map((p) => [p.kind, p.name, p.version]).sort()).toEqual(Object.entries(OFFICIAL).map(([name, version]) => ["resource", name, version]));
});

test("the CLI and the Node.js language host beside it are the official 3.259.0 Go binaries", () => {
    expect(npmRun(["pulumi", "--", "version"]).trim()).toBe("v3.259.0");
    const bin = process.env.ONEVM_PULUMI_BIN ?? "";
    const host = fs.readFileSync(path.join(bin, "pulumi-language-nodejs"));
    expect(host.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    expect(host.includes(Buffer.from("3.259.0"))).toBe(true);
});

test("the npm SDKs ask for plugins the built ones satisfy; no plugins: block, no stand-ins", () => {
    const sdk = (name: string) => JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", "@pulumi", name, "package.json"), "utf8")).version as string;
    const newer = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true }) >= 0;
    for (const [name, version] of Object.entries(OFFICIAL)) expect([name, newer(version, sdk(name))]).toEqual([name, true]);
    expect(parseYaml(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")).plugins).toBeUndefined();
    for (const dir of ["providers", "toolchain"]) expect([dir, fs.existsSync(path.join(ROOT, dir))]).toEqual([dir, false]);
});
