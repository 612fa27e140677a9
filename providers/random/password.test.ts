import { isSecret, reveal, WireMap } from "../common/values";
import { opContext } from "../test/helpers";
import { generate, randomPassword } from "./password";

const TYPE = "random:index/randomPassword:RandomPassword";

async function checked(news: WireMap) {
    return randomPassword.check({}, news);
}

describe("random:index/randomPassword:RandomPassword", () => {
    test("check fills in upstream's defaults", async () => {
        const { inputs, failures } = await checked({ length: 16 });
        expect(failures).toEqual([]);
        expect(inputs).toEqual({
            length: 16,
            lower: true,
            upper: true,
            numeric: true,
            number: true,
            special: true,
            minLower: 0,
            minUpper: 0,
            minNumeric: 0,
            minSpecial: 0,
        });
    });

    test("check rejects impossible specs", async () => {
        expect((await checked({ length: 0 })).failures).toEqual([{ property: "length", reason: "must be an integer >= 1" }]);
        expect((await checked({ length: 3, minUpper: 2, minNumeric: 2 })).failures).toEqual([
            { property: "length", reason: "must be >= minUpper + minLower + minNumeric + minSpecial" },
        ]);
        expect((await checked({ length: 3, lower: false, upper: false, numeric: false, special: false })).failures).toHaveLength(1);
    });

    test("generated passwords honour length, classes and minimums", () => {
        for (let i = 0; i < 200; i++) {
            const pw = generate({
                length: 12,
                lower: true,
                upper: true,
                numeric: true,
                special: true,
                minLower: 2,
                minUpper: 3,
                minNumeric: 4,
                minSpecial: 1,
                overrideSpecial: "_-",
            });
            expect(pw).toHaveLength(12);
            expect(pw).toMatch(/^[a-zA-Z0-9_-]+$/);
            expect(pw.match(/[a-z]/g)!.length).toBeGreaterThanOrEqual(2);
            expect(pw.match(/[A-Z]/g)!.length).toBeGreaterThanOrEqual(3);
            expect(pw.match(/[0-9]/g)!.length).toBeGreaterThanOrEqual(4);
            expect(pw.match(/[_-]/g)!.length).toBeGreaterThanOrEqual(1);
        }
        const digitsOnly = generate({ length: 64, lower: false, upper: false, numeric: true, special: false, minLower: 0, minUpper: 0, minNumeric: 0, minSpecial: 0 });
        expect(digitsOnly).toMatch(/^[0-9]{64}$/);
    });

    test("create returns the result as a secret", async () => {
        const { inputs } = await checked({ length: 20, special: false });
        const { id, outs } = await randomPassword.create(opContext(TYPE), inputs);
        expect(id).toBe("none");
        expect(isSecret(outs.result)).toBe(true);
        expect(reveal(outs.result)).toMatch(/^[a-zA-Z0-9]{20}$/);
    });

    test("any input change replaces; an explicit default is no change", async () => {
        const { inputs } = await checked({ length: 20 });
        const outs = { ...inputs, result: "x" };
        expect(await randomPassword.diff(outs, (await checked({ length: 20, special: true })).inputs)).toEqual({ changes: false });
        expect(await randomPassword.diff(outs, (await checked({ length: 21 })).inputs)).toEqual({ changes: true, replaces: ["length"] });
        expect(await randomPassword.diff(outs, (await checked({ length: 20, keepers: { v: "2" } })).inputs)).toEqual({
            changes: true,
            replaces: ["keepers"],
        });
    });
});
