/**
 * Reads the user's Compose file and the files it uses by relative path (from the Pulumi
 * project directory, the program's working directory).
 */
import * as fs from "fs";
import * as path from "path";
import { ComposeDoc, FileReader, parseCompose } from "../lib/app";
import { ConfigError, NAMESPACE } from "../lib/config";

export interface ComposeSource {
    /** The path as configured (shown in messages). */
    file: string;
    doc: ComposeDoc;
    /** Reads a file relative to the Compose file's directory. */
    readFile: FileReader;
}

export function readComposeFile(file: string, projectDir = process.cwd()): ComposeSource {
    const full = path.resolve(projectDir, file);
    let text: string;
    try {
        text = fs.readFileSync(full, "utf8");
    } catch {
        throw new ConfigError([`${NAMESPACE}:composeFile = ${JSON.stringify(file)}: no such file (${full}); set it to your app's Compose file, relative to ${projectDir}`]);
    }
    const { doc, problems } = parseCompose(text, file);
    if (!doc) {
        throw new ConfigError(problems);
    }
    const dir = path.dirname(full);
    return {
        file,
        doc,
        readFile: (rel) => {
            const target = path.join(dir, rel);
            try {
                return fs.statSync(target).isFile() ? fs.readFileSync(target, "utf8") : undefined;
            } catch {
                return undefined;
            }
        },
    };
}
