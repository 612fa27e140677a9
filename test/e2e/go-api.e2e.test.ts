/**
 * The Go API (examples/go-api: a Go server with golang-migrate and PostgreSQL, secrets
 * JWT_SECRET and ADMIN_API_KEY) with the real engine: the standard lifecycle gated on its
 * JSON health fields, then what a release ID pins and what follows the stack: host
 * configuration (a new secret, limits, the proxy off) changes the running release in
 * place, and a rollback by release ID works across each change.
 */
import { describeExampleLifecycle, exampleRun } from "./exampleLifecycle";
import { ssh } from "./harness";

jest.setTimeout(1_800_000);

const ADMIN_KEY = "canary-admin-51f0";
const spec = {
    example: "go-api",
    secrets: { JWT_SECRET: "canary-jwt-0b7d", ADMIN_API_KEY: ADMIN_KEY },
    releases: { first: "v1", second: "v2", broken: "broken" },
    database: true,
};
const run = exampleRun(spec);
const health = () => JSON.parse(ssh(run.vm, "curl -fsS http://127.0.0.1:8080/health").out);

describeExampleLifecycle(spec, run, {
    afterDeploy() {
        test("its secrets reach the server: the admin endpoint takes the key and refuses others", () => {
            expect(health()).toMatchObject({ status: "healthy", database: "ok", migrations: "up-to-date" });
            const status = (key: string) => ssh(run.vm, `curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer ${key}' http://127.0.0.1:8080/admin/stats`).out;
            expect(status(ADMIN_KEY)).toBe("200");
            expect(status("wrong")).toBe("401");
        });
    },
});

describe("host configuration follows the stack; a release ID pins the Compose file and the images", () => {
    test("a new secret for the current release: re-rendered and re-applied in place, same release", async () => {
        await run.t.stack.setConfig("onevm:secrets", { value: JSON.stringify({ JWT_SECRET: ["api"], ADMIN_API_KEY: ["api"], EXTRA_TOKEN: ["api"] }) });
        await run.t.stack.setConfig("app:EXTRA_TOKEN", { value: "canary-extra-77c2", secret: true });
        await run.t.stack.setConfig("onevm:limits", { value: JSON.stringify({ api: { memory: "384m" } }) });
        const res = await run.t.stack.up({ onOutput: (o) => run.t.output.push(o) });
        expect(res.outputs.releaseId.value).toBe("v1");
        const compose = ssh(run.vm, "cat /opt/go-api/current/compose.yaml").out;
        expect(compose).toContain("EXTRA_TOKEN: ${EXTRA_TOKEN?EXTRA_TOKEN is missing from shared/.env}");
        expect(compose).toContain("memory: 384m");
        expect(run.history().pop()).toMatchObject({ release: "v1", result: "success" });
    });

    test("rollforward to v2 and back to v1 by release ID across that change: not refused, v1 runs with today's host config", async () => {
        await run.deploy("v2");
        expect(run.runningRelease()).toBe("v2");
        await run.t.stack.setConfig("onevm:releaseId", { value: "v1" });
        const res = await run.t.stack.up({ onOutput: (o) => run.t.output.push(o) });
        expect(res.outputs.releaseId.value).toBe("v1");
        expect(run.runningRelease()).toBe("v1");
        expect(ssh(run.vm, "cat /opt/go-api/current/compose.yaml").out).toContain("EXTRA_TOKEN: ${EXTRA_TOKEN");
    });

    test("the proxy off: the web service publishes the loopback port itself; rollforward to v2 across it", async () => {
        await run.t.stack.setConfig("onevm:loopbackProxy", { value: "false" });
        await run.t.stack.up({ onOutput: (o) => run.t.output.push(o) });
        const published = ssh(run.vm, "docker ps --format '{{.Label \"com.docker.compose.service\"}} {{.Ports}}' --filter label=com.docker.compose.project=go-api").out;
        expect(published).toMatch(/^api 127\.0\.0\.1:8080->8080\/tcp$/m);
        expect(published).not.toMatch(/onevm-proxy/);
        await run.deploy("v2");
        expect(run.runningRelease()).toBe("v2");
        expect(health()).toMatchObject({ status: "healthy" });
    });
});
