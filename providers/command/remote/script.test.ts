import { execFileSync } from "child_process";
import { ansiCQuote, BOOTSTRAP, scriptLine } from "./script";

describe("the stdin script protocol", () => {
    test("ANSI-C quoting decodes in bash to exactly the UTF-8 bytes of the value", () => {
        let value = "";
        for (let cp = 1; cp < 0x800; cp++) value += String.fromCodePoint(cp);
        value += "😀 \u{10FFFF}";
        const quoted = ansiCQuote(value);
        expect(quoted).toMatch(/^\$'[\x20-\x7e]*'$/);
        const out = execFileSync("bash", ["-c", `printf '%s' ${quoted} | base64 -w0`], { encoding: "utf8" });
        expect(out).toBe(Buffer.from(value, "utf8").toString("base64"));
    });

    test("the script is one ASCII line, whatever the command and values hold", () => {
        const line = scriptLine("echo 'a'\necho ü", { A: "x\ny", B: "é" });
        expect(line).toMatch(/^[\x20-\x7e]*\n$/);
        expect(line.startsWith("export A=$'x\\x0ay'; export B=$'\\xc3\\xa9'; ")).toBe(true);
    });

    test("environment names must be shell identifiers", () => {
        expect(() => scriptLine("true", { "A-B": "x" })).toThrow(/not a valid shell name/);
    });

    test("bash reads the script line and hands the rest of stdin to the command", () => {
        const input = scriptLine("cat; echo \"[$V]\"", { V: "v'1" }) + "rest\nof stdin";
        const out = execFileSync("bash", ["-c", BOOTSTRAP], { input, encoding: "utf8" });
        expect(out).toBe("rest\nof stdin[v'1]\n");
    });
});
