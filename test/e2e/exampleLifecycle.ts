/**
 * The lifecycle every example app goes through with the real engine on one sandbox VM:
 * deploy, a switch to a second release (probed: the proxy drops no request), a release
 * stopped by its health gate and rolled back automatically, an operator rollback by
 * onevm:releaseId alone, and, with a database, a backup and a restore with every row
 * compared. Each example's test file calls describeExampleLifecycle and adds its own checks.
 */
import * as fs from "fs";
import * as path from "path";
import { ConfigMap } from "@pulumi/pulumi/automation";
import { parse as parseYaml } from "yaml";
import { Prober, probeOnce } from "../../bench/prober";
import { buildExampleImages, exampleConfig, newStack, ReleaseImages, removeStack, ROOT, Sandbox, sandboxDown, sandboxUp, ssh, stackConfig, TestStack } from "./harness";

/** examples/NAME/test-hooks.json: how a test reads an example's data and release without its API. */
export interface TestHooks {
    table: string;
    /** SQL that adds one row; `{n}` makes it distinct. */
    insertSql: string;
    /** SQL that lists every row in a stable order. */
    rowsSql: string;
    /** Where the running app reports its release: an HTTP path and JSON field, or SQL. */
    release: { http: string; field: string } | { sql: string };
}

export function testHooks(example: string): TestHooks {
    return JSON.parse(fs.readFileSync(path.join(ROOT, "examples", example, "test-hooks.json"), "utf8"));
}

export interface ExampleSpec {
    /** examples/<example>. */
    example: string;
    /** The secret values the example declares (onevm:secrets), keyed by env name: canaries. */
    secrets: Record<string, string>;
    /** Releases: a first, a second, one that fails its health gate; `more` are built too, for the file's own tests. */
    releases: { first: string; second: string; broken: string; more?: string[] };
    /** Extra stack config for the test (over the example's stack.yaml). */
    config?: ConfigMap;
    /** Docker preinstalled on the VM (everything but the bootstrap test). */
    withDocker?: boolean;
    /** The app has a database: backups and a restore are checked with its test hooks. */
    database: boolean;
    /** TLS ingress: the switch is probed from outside the VM over HTTPS (the published 443), trusting only the stack's CA. */
    tls?: boolean;
    /**
     * The path probed during a switch and a refused release, which must never fail: one the
     * web service answers (onevm hands it over with no gap). `false`: no such claim, because
     * the web service passes requests to services that are recreated (a team's own nginx
     * in front of its bot). Default: the first health check's path.
     */
    probe?: string | false;
}

export interface ExampleRun {
    vm: Sandbox;
    t: TestStack;
    images: ReleaseImages;
    app: string;
    /** The loopback port the web service answers on (undefined without a web role). */
    hostPort?: number;
    /** The path probed during switches (undefined: none is). */
    probePath?: string;
    deploy(release: string, extra?: ConfigMap): ReturnType<TestStack["stack"]["up"]>;
    expectUpToFail(release: string): Promise<string>;
    current(): string;
    history(): Array<Record<string, unknown>>;
    /** Runs SQL in the database service's container as the app's role; returns psql's unaligned output. */
    sql(query: string): string;
    hooks: TestHooks;
    /** The release the running app reports (its hook: an HTTP field or a SQL query). */
    runningRelease(): string;
}

/** The shared state of an example's test file: set in beforeAll, read by every test. */
export function exampleRun(spec: ExampleSpec): ExampleRun {
    const run = { images: {}, hooks: testHooks(spec.example) } as ExampleRun;
    const config = exampleConfig(spec.example);
    run.app = config["onevm:app"].value;
    const web = config["onevm:web"] ? JSON.parse(config["onevm:web"].value) : undefined;
    run.hostPort = web ? Number(web.hostPort ?? web.port) : undefined;
    const firstCheck = web ? (Array.isArray(web.health) ? web.health[0] : web.health ?? { path: "/health" }).path : undefined;
    run.probePath = spec.probe === false ? undefined : spec.probe ?? firstCheck;

    run.deploy = async (release, extra = {}) => {
        await run.t.stack.setConfig("onevm:releaseId", { value: release });
        await run.t.stack.setConfig("onevm:images", { value: JSON.stringify(run.images[release]) });
        for (const [k, v] of Object.entries(extra)) await run.t.stack.setConfig(k, v);
        return run.t.stack.up({ onOutput: (o) => run.t.output.push(o) });
    };
    run.expectUpToFail = async (release) => {
        let message = "";
        await run.deploy(release).then(
            () => {
                throw new Error(`pulumi up of ${release} unexpectedly succeeded`);
            },
            (e: Error) => {
                message = e.message;
            },
        );
        return message;
    };
    run.current = () => ssh(run.vm, `readlink -f /opt/${run.app}/current`).out.trim();
    run.history = () =>
        ssh(run.vm, `cat /opt/${run.app}/state/history.jsonl`)
            .out.trim()
            .split("\n")
            .map((l) => JSON.parse(l));
    run.sql = (query) => {
        const db = `$(docker ps -q --filter label=com.docker.compose.project=${run.app} --filter label=onevm.role=database | head -n 1)`;
        return ssh(run.vm, `docker exec -i ${db} sh -c 'psql -X -q -tA -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'`, { input: query }).out;
    };

    run.runningRelease = () => {
        const hook = run.hooks.release;
        if ("sql" in hook) return run.sql(hook.sql).trim();
        const body = ssh(run.vm, `curl -fsS http://127.0.0.1:${run.hostPort}${hook.http}`).out;
        return String(JSON.parse(body)[hook.field]);
    };

    beforeAll(async () => {
        const { first, second, broken, more = [] } = spec.releases;
        run.images = buildExampleImages(spec.example, [first, second, broken, ...more]);
        const name = `ex-${spec.example}`;
        sandboxDown(name);
        run.vm = sandboxUp(name, { withDocker: spec.withDocker ?? true });
        run.t = await newStack(name, {
            ...config,
            ...stackConfig(run.vm, {}),
            ...Object.fromEntries(Object.entries(spec.secrets).map(([k, v]) => [`app:${k}`, { value: v, secret: true }])),
            "onevm:releaseId": { value: first },
            "onevm:images": { value: JSON.stringify(run.images[first]) },
            "onevm:healthRetries": { value: "30" },
            ...spec.config,
        });
    });

    afterAll(async () => {
        if (run.t) await removeStack(run.t);
        sandboxDown(`ex-${spec.example}`);
    });
    return run;
}

/**
 * Probes the web service's loopback port on the VM ten times a second (curl, a new
 * connection each, 2 s timeout) until the returned function stops it; that returns every
 * probe's status.
 */
export function startVmProber(vm: Sandbox, url: string): () => string[] {
    const script = [
        "rm -f /tmp/probe.log /tmp/probe.stop",
        "while [ ! -e /tmp/probe.stop ]; do",
        `  curl -s -o /dev/null -w '%{http_code}\\n' --max-time 2 ${url} >>/tmp/probe.log`,
        "  sleep 0.1",
        "done",
    ].join("\n");
    ssh(vm, `cat >/tmp/probe.sh <<'EOF'\n${script}\nEOF\nnohup bash /tmp/probe.sh </dev/null >/dev/null 2>&1 &`);
    return () => {
        ssh(vm, "touch /tmp/probe.stop; sleep 2.5");
        return ssh(vm, "cat /tmp/probe.log").out.trim().split("\n");
    };
}

/** A file's own tests, registered between the standard ones (jest runs a file's tests in order). */
export interface LifecycleHooks {
    /** After the first release runs. */
    afterDeploy?(): void;
    /** After the switch to the second release. */
    afterSwitch?(): void;
    /** After the broken release was rolled back automatically. */
    afterBroken?(): void;
    /** After the operator rollback to the first release. */
    afterRollback?(): void;
}

/**
 * Starts probing the app's web entry (none without a web role) until the returned function
 * stops it; that returns the failed probes' descriptions and the count. On loopback from
 * inside the VM, or with TLS from here through the published 443 with the stack's CA.
 */
async function startProbes(spec: ExampleSpec, run: ExampleRun): Promise<() => Promise<{ failed: string[]; probes: number }>> {
    if (run.probePath === undefined) return async () => ({ failed: [], probes: 0 });
    if (spec.tls) {
        const ca = String((await run.t.stack.outputs()).tlsCaCertificate.value);
        const prober = new Prober(() => probeOnce({ protocol: "https", host: "127.0.0.1", port: run.vm.httpsPort, path: run.probePath!, ca }, 10_000), 100);
        prober.start();
        return async () => {
            const probes = await prober.stop();
            return { failed: probes.filter((p) => !p.ok).map((p) => p.error ?? "failed"), probes: probes.length };
        };
    }
    const stop = startVmProber(run.vm, `http://127.0.0.1:${run.hostPort}${run.probePath}`);
    return async () => {
        const codes = stop();
        return { failed: codes.filter((c) => c === "000" || c.startsWith("5")), probes: codes.length };
    };
}

/** The standard lifecycle tests, in order, on the run's VM. */
export function describeExampleLifecycle(spec: ExampleSpec, run: ExampleRun, hooks: LifecycleHooks = {}): void {
    const { first, second, broken } = spec.releases;
    const web = () => run.probePath !== undefined;

    test(`deploy ${first}: current is ${first}, healthy, and the app reports it`, async () => {
        const res = await run.deploy(first);
        expect(res.summary.result).toBe("succeeded");
        expect(res.outputs.releaseId.value).toBe(first);
        expect(run.current()).toBe(`/opt/${run.app}/releases/${first}`);
        expect(ssh(run.vm, `/opt/${run.app}/bin/health-check.sh --retries 1`, { allowFailure: true }).code).toBe(0);
        expect(run.runningRelease()).toBe(first);
    });

    test("docker compose ps and logs work as typed in /opt/<app>/current", () => {
        const ps = ssh(run.vm, `cd /opt/${run.app}/current && docker compose ps --format '{{.Service}} {{.State}}'`).out;
        expect(ps).toMatch(/running/);
        expect(ssh(run.vm, `cd /opt/${run.app}/current && docker compose logs --tail=5 >/dev/null && echo ok`).out.trim()).toBe("ok");
    });
    hooks.afterDeploy?.();

    test(`switch to ${second}${web() ? " through the proxy: no request dropped" : ""}${spec.database ? ", data kept" : ""}`, async () => {
        const rows = spec.database ? seedRows(run, 3) : undefined;
        const stopProbes = await startProbes(spec, run);
        const res = await run.deploy(second);
        const probes = await stopProbes();
        expect(res.outputs.releaseId.value).toBe(second);
        expect(res.outputs.previousReleaseId.value).toBe(first);
        expect(run.runningRelease()).toBe(second);
        if (web()) {
            // Through the proxy, the switch drops no request.
            expect(probes.probes).toBeGreaterThan(20);
            expect(probes.failed).toEqual([]);
        }
        if (rows) expect(run.sql(run.hooks.rowsSql)).toBe(rows);
        expect(run.history().pop()).toMatchObject({ release: second, previous: first, result: "success" });
    });
    hooks.afterSwitch?.();

    test(`${broken} fails its health gate and is switched back to ${second} automatically, with an incident note${web() ? "; no request fails meanwhile" : ""}`, async () => {
        const stopProbes = await startProbes(spec, run);
        const message = await run.expectUpToFail(broken);
        const probes = await stopProbes();
        expect(probes.failed).toEqual([]);
        expect(message).toMatch(new RegExp(broken));
        expect(run.current()).toBe(`/opt/${run.app}/releases/${second}`);
        expect(run.runningRelease()).toBe(second);
        expect(run.history().pop()).toMatchObject({ release: broken, result: "rolled_back" });
        expect(ssh(run.vm, `cat $(ls -t /opt/${run.app}/state/incidents/*.md | head -1)`).out).toMatch(new RegExp(`${broken}[\\s\\S]*${second}`));
    });
    hooks.afterBroken?.();

    test(`operator rollback by onevm:releaseId alone: ${first} runs exactly again, from the stack's record`, async () => {
        // The configured images are still the broken release's: the record of `first` wins.
        await run.t.stack.setConfig("onevm:releaseId", { value: first });
        const out: string[] = [];
        await run.t.stack.preview({ onOutput: (o) => out.push(o) });
        expect(out.join("")).toMatch(new RegExp(`Rolling back from ${second} to ${first}: .*record.*The database is NOT restored`));
        const res = await run.t.stack.up({ onOutput: (o) => run.t.output.push(o) });
        expect(res.outputs.releaseId.value).toBe(first);
        expect(run.current()).toBe(`/opt/${run.app}/releases/${first}`);
        expect(run.runningRelease()).toBe(first);
        const services = parseYaml(ssh(run.vm, `cat /opt/${run.app}/current/compose.yaml`).out).services;
        for (const [svc, ref] of Object.entries(run.images[first])) {
            expect([svc, services[svc].image]).toEqual([svc, ref]);
        }
        expect(res.outputs.releaseSource.value).toBe("record");
    });
    hooks.afterRollback?.();

    if (spec.database) {
        test("a backup, then changes, then a restore of that backup: every row as it was", () => {
            const table = run.hooks.table;
            const before = seedRows(run, 5);
            const backup = ssh(run.vm, `/opt/${run.app}/bin/backup.sh --type manual --no-offsite`).out.trim();
            expect(backup).toMatch(new RegExp(`^/opt/${run.app}/backups/${run.app}_\\d{8}_\\d{6}_manual\\.dump$`));
            run.sql(`${insertRow(run)}; DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} LIMIT 2);`);
            expect(run.sql(run.hooks.rowsSql)).not.toBe(before);
            const id = backup.split("/").pop()!.replace(/\.dump$/, "");
            ssh(run.vm, `/opt/${run.app}/bin/restore.sh --backup ${id} --yes`);
            expect(run.sql(run.hooks.rowsSql)).toBe(before);
            expect(ssh(run.vm, `/opt/${run.app}/bin/health-check.sh --retries 30`, { allowFailure: true }).code).toBe(0);
        });
    }
}

let rowSerial = 0;

/** The example's SQL that adds one distinct row. */
export function insertRow(run: ExampleRun): string {
    return run.hooks.insertSql.replace(/\{n\}/g, String(++rowSerial));
}

/** Adds n rows with the example's own SQL; returns every row afterwards. */
function seedRows(run: ExampleRun, n: number): string {
    run.sql(Array.from({ length: n }, () => insertRow(run)).join(";\n"));
    return run.sql(run.hooks.rowsSql);
}
