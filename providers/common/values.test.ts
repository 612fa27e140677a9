import { specialAssetSig, specialSigKey, unknownValue } from "@pulumi/pulumi/runtime/rpc";
import { dispatch, typeOf } from "./serve";
import { hasUnknown, makeSecret, reveal, sameValue } from "./values";

describe("wire values", () => {
    test("reveal strips secret markers and collects the secret strings", () => {
        const secrets: string[] = [];
        const v = reveal({ a: makeSecret({ b: "x", c: ["y", 1] }), d: "plain" }, secrets);
        expect(v).toEqual({ a: { b: "x", c: ["y", 1] }, d: "plain" });
        expect(secrets).toEqual(["x", "y"]);
    });

    test("sameValue ignores secretness and null-vs-absent, compares assets by hash", () => {
        expect(sameValue(makeSecret("a"), "a")).toBe(true);
        expect(sameValue({ a: null }, {})).toBe(true);
        expect(sameValue([1, 2], [1, 2, 3])).toBe(false);
        const asset = (path: string, hash: string) => ({ [specialSigKey]: specialAssetSig, path, hash });
        expect(sameValue(asset("a", "h"), asset("b", "h"))).toBe(true);
        expect(sameValue(asset("a", "h"), asset("a", "g"))).toBe(false);
        expect(sameValue(unknownValue, "x")).toBe(false);
        expect(hasUnknown({ a: [unknownValue] })).toBe(true);
    });
});

describe("dispatch", () => {
    test("routes by the type in the URN, including nested types", async () => {
        expect(typeOf("urn:pulumi:dev::p::my:component$command:remote:Command::cmd")).toBe("command:remote:Command");
        const provider = dispatch("1.0.0", {});
        await expect(provider.diff!("id", "urn:pulumi:dev::p::x:y:Z::n", {}, {})).rejects.toThrow("unknown resource type x:y:Z");
    });
});
