/**
 * The example apps (examples/NAME/) agree with themselves: what stack.yaml tells onevm
 * names services, images and secrets the Compose file really has, the build plan of
 * scripts/compose-plan.js (what scripts/build-images.sh builds) matches onevm:images,
 * and the test hooks the e2e tests read are all there. No Docker needed.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { archiveName } from "../../lib/images";

const ROOT = path.resolve(__dirname, "../..");
const EXAMPLES = fs
    .readdirSync(path.join(ROOT, "examples"))
    .filter((d) => fs.existsSync(path.join(ROOT, "examples", d, "compose.yaml")))
    .sort();

interface Plan {
    project: string;
    builds: string[][];
    release: Record<string, string>;
    external: Record<string, { ref: string; standIn: string }>;
    variants: string[];
}

/** Runs compose-plan.js and reads its shell-quoted records back. */
function plan(name: string): Plan {
    const out = execFileSync("node", [
        path.join(ROOT, "scripts/compose-plan.js"),
        path.join(ROOT, "examples", name, "compose.yaml"),
        path.join(ROOT, "examples/images"),
    ], { encoding: "utf8" });
    const p: Plan = { project: "", builds: [], release: {}, external: {}, variants: [] };
    for (const line of out.trim().split("\n")) {
        const words = [...line.matchAll(/'((?:[^']|'\\'')*)'/g)].map((m) => m[1].replace(/'\\''/g, "'"));
        const [kind, ...rest] = words;
        if (kind === "project") p.project = rest[0];
        else if (kind === "build") p.builds.push(rest);
        else if (kind === "release") p.release[rest[0]] = rest[1];
        else if (kind === "external") p.external[rest[0]] = { ref: rest[1], standIn: rest[2] };
        else if (kind === "variants") p.variants = rest;
    }
    return p;
}

test("there are the five examples", () => {
    expect(EXAMPLES).toEqual(["booking-bot", "go-api", "nginx-bot", "web-platform", "worker-bot"]);
});

describe.each(EXAMPLES)("examples/%s", (name) => {
    const dir = path.join(ROOT, "examples", name);
    const compose = parse(fs.readFileSync(path.join(dir, "compose.yaml"), "utf8"), { merge: true });
    const composeText = fs.readFileSync(path.join(dir, "compose.yaml"), "utf8");
    const config = parse(fs.readFileSync(path.join(dir, "stack.yaml"), "utf8")).config;
    const hooks = JSON.parse(fs.readFileSync(path.join(dir, "test-hooks.json"), "utf8"));
    const services = Object.keys(compose.services);
    const p = plan(name);

    test("stack.yaml names this compose file, release v1 and the app", () => {
        expect(config["onevm:composeFile"]).toBe(`examples/${name}/compose.yaml`);
        expect(config["onevm:releaseId"]).toBe("v1");
        expect(config["onevm:app"]).toBe(name);
        expect(compose.name).toBe(name);
    });

    test("onevm:images is exactly the build plan's per-release images at v1", () => {
        const expected = Object.fromEntries(Object.entries(p.release).map(([svc, image]) => [svc, `${image}:v1`]));
        expect(config["onevm:images"]).toEqual(expected);
        for (const [svc, image] of Object.entries(p.release)) {
            expect(image.startsWith(`${name}/`)).toBe(true);
            expect(services).toContain(svc);
        }
    });

    test("every other image is an official one with a stand-in", () => {
        for (const { ref, standIn } of Object.values(p.external)) {
            expect(["postgres:17", "redis:8", "nginx:1.27"]).toContain(ref);
            expect(fs.existsSync(path.join(standIn, "Dockerfile"))).toBe(true);
        }
    });

    test("the web, migrate, database and secret services exist and read what they must", () => {
        const web = config["onevm:web"];
        if (web) {
            expect(services).toContain(web.service);
            expect(typeof web.port).toBe("number");
        }
        const migrate = config["onevm:migrate"];
        if (migrate) {
            expect(services).toContain(migrate);
            expect(compose.services[migrate].restart).toBe("no");
            expect(p.variants).toContain("badmigrate");
        } else {
            expect(p.variants).not.toContain("badmigrate");
        }
        const db = config["onevm:database"];
        expect(compose.services[db.service].image).toBe("postgres:17");
        for (const client of db.clients) {
            expect(compose.services[client].environment.DATABASE_URL).toMatch(/^\$\{DATABASE_URL/);
        }
        expect(composeText).toContain(`\${POSTGRES_USER:-${db.user}}`);
        expect(composeText).toContain(`\${POSTGRES_DB:-${db.name}}`);
        for (const [key, readers] of Object.entries(config["onevm:secrets"] as Record<string, string[]>)) {
            for (const svc of readers) {
                expect(compose.services[svc].environment[key]).toMatch(new RegExp(`^\\$\\{${key}`));
            }
        }
    });

    test("every long-running service has a healthcheck", () => {
        for (const [svc, def] of Object.entries<{ healthcheck?: unknown }>(compose.services)) {
            if (svc !== config["onevm:migrate"]) expect(def.healthcheck).toBeDefined();
        }
    });

    test("the test hooks are all there", () => {
        for (const key of ["table", "insertSql", "rowsSql", "schemaVersionSql", "release", "v2SchemaSql"]) {
            expect(hooks[key]).toBeTruthy();
        }
        expect(hooks.insertSql).toMatch(new RegExp(`^INSERT INTO ${hooks.table} `));
        expect(Boolean(hooks.release.http) !== Boolean(hooks.release.sql)).toBe(true);
        if (config["onevm:migrate"]) expect(hooks.badmigrateSchemaSql).toBeTruthy();
        expect(fs.readFileSync(path.join(dir, "README.md"), "utf8")).toContain("## Test hooks");
    });
});

test("archive names of all examples' images do not collide (one --save directory can hold them all)", () => {
    const owner = new Map<string, string>();
    for (const name of EXAMPLES) {
        const p = plan(name);
        const refs = [...Object.values(p.release).map((i) => `${i}:v1`), ...Object.values(p.external).map((e) => e.ref)];
        for (const ref of refs) {
            const file = archiveName(ref);
            const prev = owner.get(file);
            expect(prev === undefined || prev === ref).toBe(true);
            owner.set(file, ref);
        }
    }
});
