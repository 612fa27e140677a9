/**
 * Reads a build context the way Docker sends it: every file under the context that its
 * ignore file does not exclude (`<Dockerfile>.dockerignore` when present, else
 * `<context>/.dockerignore`, Docker's pattern rules via @balena/dockerignore), plus the
 * Dockerfile, which Docker always sends. The digest identifies what a build would see, so
 * a changed source file gives the release a new identity.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import ignore from "@balena/dockerignore";
import { ContextDigest } from "../lib/builds";

/**
 * sha256 over each file's relative path, executable bit and content (a symlink: its target)
 * in path order, and the Dockerfile's content. Other permission bits are left out: they
 * differ between checkouts of the same commit. Undefined when the context is not a
 * directory or the Dockerfile is missing.
 */
export function contextDigest(contextDir: string, dockerfile: string): ContextDigest | undefined {
    let stat: fs.Stats;
    try {
        stat = fs.statSync(contextDir);
    } catch {
        return undefined;
    }
    if (!stat.isDirectory() || !isFile(dockerfile)) return undefined;
    const ig = ignore().add(ignorePatterns(contextDir, dockerfile));
    const files: string[] = [];
    const walk = (rel: string) => {
        for (const entry of fs.readdirSync(path.join(contextDir, rel), { withFileTypes: true })) {
            const child = rel === "" ? entry.name : `${rel}/${entry.name}`;
            if (entry.isDirectory()) walk(child);
            else files.push(child);
        }
    };
    walk("");
    const h = createHash("sha256");
    h.update(`Dockerfile\0${fs.readFileSync(dockerfile).length}\0`).update(fs.readFileSync(dockerfile));
    for (const rel of ig.filter(files).sort()) {
        const full = path.join(contextDir, rel);
        const st = fs.lstatSync(full);
        if (st.isSymbolicLink()) {
            h.update(`${rel}\0link\0${fs.readlinkSync(full)}\0`);
        } else if (st.isFile()) {
            const content = fs.readFileSync(full);
            h.update(`${rel}\0${st.mode & 0o111 ? "x" : "-"}\0${content.length}\0`).update(content);
        }
    }
    return { digest: h.digest("hex") };
}

function isFile(p: string): boolean {
    try {
        return fs.statSync(p).isFile();
    } catch {
        return false;
    }
}

/** The ignore file's patterns (Docker's precedence), without comments and blank lines. */
export function ignorePatterns(contextDir: string, dockerfile: string): string[] {
    for (const candidate of [`${dockerfile}.dockerignore`, path.join(contextDir, ".dockerignore")]) {
        if (isFile(candidate)) {
            return fs
                .readFileSync(candidate, "utf8")
                .split(/\r?\n/)
                .map((l) => l.trim())
                .filter((l) => l !== "" && !l.startsWith("#"));
        }
    }
    return [];
}
