#!/usr/bin/env node
// The build plan of a Compose file, for scripts/build-images.sh (this host has no
// `docker compose`): which images to build and how, which services run a per-release
// image, which other images the file needs. Reads the file with the `yaml` package.
//
// Usage: node scripts/compose-plan.js COMPOSE_FILE [STAND_INS_DIR]
// Output: one record a line, each word shell-quoted (the caller evals it into an array):
//   project NAME
//   build SERVICE IMAGE CONTEXT DOCKERFILE TARGET [KEY=VALUE]...
//       every service with `build:` (one record per distinct image); IMAGE untagged;
//       CONTEXT and DOCKERFILE absolute; TARGET '' when none; the args without RELEASE
//       (the builder passes RELEASE=<id> itself)
//   release SERVICE IMAGE
//       every service whose image is built here (with or without its own `build:`), in
//       file order: what onevm:images maps per release
//   external SERVICE REF STAND_IN_DIR
//       every other service's image; STAND_IN_DIR '' when STAND_INS_DIR/stand-ins.json
//       names none for REF
//   variants ID...
//       the release variants the example defines: v1 v2 broken, plus badmigrate when its
//       stack.yaml (beside the compose file) names an onevm:migrate service
// `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `$VAR` and `$$` are
// interpolated from the environment in the fields used here (RELEASE is unset first, so
// the file's default shows; the builder overrides it per release).
// Exit: 0 ok; 2 the file is missing, unreadable, or uses something this cannot build.
"use strict";

const fs = require("fs");
const path = require("path");
const YAML = require("yaml");

function fail(msg) {
    process.stderr.write(`compose-plan: ${msg}\n`);
    process.exit(2);
}

const [file, standInsDir] = process.argv.slice(2);
if (!file) fail("usage: compose-plan.js COMPOSE_FILE [STAND_INS_DIR]");
const composePath = path.resolve(file);
const composeDir = path.dirname(composePath);

let doc;
try {
    doc = YAML.parse(fs.readFileSync(composePath, "utf8"), { merge: true });
} catch (e) {
    fail(`cannot read ${file}: ${e.message}`);
}
if (!doc || typeof doc !== "object" || !doc.services || typeof doc.services !== "object") {
    fail(`${file} has no services`);
}

const env = { ...process.env };
delete env.RELEASE;

/** Compose's interpolation, for the fields read here. */
function interpolate(value, where) {
    if (typeof value !== "string") return value;
    return value.replace(/\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g,
        (m, name, colon, op, arg, bare) => {
            if (m === "$$") return "$";
            const key = name || bare;
            const v = env[key];
            const missing = v === undefined || (colon === ":" && v === "");
            if (op === "-") return missing ? arg : v;
            if (op === "?") {
                if (missing) fail(`${where}: ${key} is required (${arg || "unset"})`);
                return v;
            }
            return v === undefined ? "" : v;
        });
}

const SERVICE_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const REF_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/** registry/repo:tag@digest -> registry/repo */
function untagged(ref) {
    const noDigest = ref.replace(/@sha256:[a-f0-9]{64}$/, "");
    const slash = noDigest.lastIndexOf("/");
    const colon = noDigest.lastIndexOf(":");
    return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

/** docker.io/library/postgres:17 -> postgres:17 (how stand-ins.json names them). */
function shortRef(ref) {
    return ref.replace(/^(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)\//, "").replace(/^library\//, "");
}

const project = String(interpolate(doc.name || path.basename(composeDir), "name"))
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "");
if (!project) fail(`${file}: cannot derive a project name`);

let standIns = {};
if (standInsDir) {
    const f = path.join(standInsDir, "stand-ins.json");
    if (fs.existsSync(f)) {
        try {
            standIns = JSON.parse(fs.readFileSync(f, "utf8"));
        } catch (e) {
            fail(`${f}: ${e.message}`);
        }
    }
}

const q = (w) => `'${String(w).replace(/'/g, `'\\''`)}'`;
const out = [];
const emit = (...words) => out.push(words.map(q).join(" "));
emit("project", project);

const builds = new Map(); // image -> spec key, to refuse two different builds of one image
const built = new Set();
const services = Object.entries(doc.services);
for (const [svc, def] of services) {
    if (!SERVICE_RE.test(svc)) fail(`service name '${svc}' is not usable`);
    if (!def || def.build === undefined) continue;
    const where = `services.${svc}.build`;
    const b = typeof def.build === "string" ? { context: def.build } : def.build;
    if (!b || typeof b !== "object") fail(`${where} must be a path or a mapping`);
    for (const k of ["dockerfile_inline", "additional_contexts", "ssh", "secrets"]) {
        if (b[k] !== undefined) fail(`${where}.${k} is not supported by scripts/build-images.sh`);
    }
    const context = path.resolve(composeDir, interpolate(b.context || ".", `${where}.context`));
    if (/^[a-z]+:\/\//.test(b.context || "")) fail(`${where}.context: only local directories are supported`);
    if (!fs.existsSync(context) || !fs.statSync(context).isDirectory()) fail(`${where}.context ${context} is not a directory`);
    const dockerfile = path.resolve(context, interpolate(b.dockerfile || "Dockerfile", `${where}.dockerfile`));
    if (!fs.existsSync(dockerfile)) fail(`${where}.dockerfile ${dockerfile} does not exist`);
    const target = b.target ? interpolate(b.target, `${where}.target`) : "";
    const args = [];
    const rawArgs = b.args || {};
    const entries = Array.isArray(rawArgs)
        ? rawArgs.map((a) => { const i = String(a).indexOf("="); return i < 0 ? [a, undefined] : [String(a).slice(0, i), String(a).slice(i + 1)]; })
        : Object.entries(rawArgs);
    for (const [k, v] of entries) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) fail(`${where}.args: bad name '${k}'`);
        if (k === "RELEASE" || k === "BASE_IMAGE") continue;
        // A bare name takes its value from the environment, as with compose.
        const val = v === undefined || v === null ? env[k] : interpolate(String(v), `${where}.args.${k}`);
        if (val === undefined) continue;
        if (/[\0\n]/.test(val)) fail(`${where}.args.${k} holds a newline`);
        args.push(`${k}=${val}`);
    }
    const image = def.image ? untagged(interpolate(def.image, `services.${svc}.image`)) : `${project}-${svc}`;
    if (!REF_RE.test(`${image}:v1`)) fail(`services.${svc}.image '${image}' is not a valid image name`);
    const key = JSON.stringify([context, dockerfile, target, args]);
    if (builds.has(image)) {
        if (builds.get(image) !== key) fail(`image ${image} is built twice with different build: sections`);
        continue;
    }
    builds.set(image, key);
    built.add(image);
    emit("build", svc, image, context, dockerfile, target, ...args);
}

for (const [svc, def] of services) {
    if (!def) continue;
    const ref = def.image
        ? interpolate(def.image, `services.${svc}.image`)
        : def.build !== undefined ? `${project}-${svc}` : fail(`services.${svc} has neither image: nor build:`);
    if (built.has(untagged(ref))) {
        emit("release", svc, untagged(ref));
        continue;
    }
    if (!REF_RE.test(ref)) fail(`services.${svc}.image '${ref}' is not a valid image reference`);
    const dir = standIns[shortRef(ref)];
    emit("external", svc, ref, dir && standInsDir ? path.resolve(standInsDir, dir) : "");
}

const variants = ["v1", "v2", "broken"];
const stackFile = path.join(composeDir, "stack.yaml");
if (fs.existsSync(stackFile)) {
    try {
        const stack = YAML.parse(fs.readFileSync(stackFile, "utf8"));
        if (stack && stack.config && stack.config["onevm:migrate"]) variants.push("badmigrate");
    } catch (e) {
        fail(`${stackFile}: ${e.message}`);
    }
}
emit("variants", ...variants);
process.stdout.write(out.join("\n") + "\n");
