/** Writes docs/configuration.md from the config declarations (npm run docs). */
import * as fs from "fs";
import * as path from "path";
import { renderConfigReference } from "../lib/configReference";

const file = path.join(__dirname, "..", "docs", "configuration.md");
fs.writeFileSync(file, renderConfigReference());
console.log(`wrote ${path.relative(process.cwd(), file)}`);
