import * as fs from "fs";
import * as path from "path";
import { CONFIG_KEYS, NAMESPACE, parseConfig } from "../../lib/config";
import { renderConfigReference } from "../../lib/configReference";
import { shopConfig } from "./shopConfig";

test("docs/configuration.md is the rendering of the declarations (regenerate with `npm run docs`)", () => {
    expect(fs.readFileSync(path.join(__dirname, "..", "..", "docs", "configuration.md"), "utf8")).toBe(renderConfigReference());
});

test("every key the parser reads is declared, and every declared key is read", () => {
    const read = new Set<string>();
    for (const overrides of [{}, { "onevm:target": "digitalocean" }, { "onevm:tlsIngress": "true" }]) {
        const values = shopConfig(overrides);
        try {
            parseConfig((key) => {
                if (key.startsWith(`${NAMESPACE}:`)) read.add(key.slice(NAMESPACE.length + 1));
                return values[key];
            });
        } catch {
            // Incomplete configs are refused; only which keys were read matters here.
        }
    }
    expect([...read].sort()).toEqual(Object.keys(CONFIG_KEYS).sort());
});
