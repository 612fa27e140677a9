/**
 * The worker bot (examples/worker-bot: a worker that serves no HTTP, and PostgreSQL) with
 * the real engine: the standard lifecycle gated by container health alone, no proxy, and
 * the Compose file's own log rotation and limits kept.
 */
import { describeExampleLifecycle, exampleRun } from "./exampleLifecycle";
import { ssh } from "./harness";

jest.setTimeout(1_800_000);

const spec = {
    example: "worker-bot",
    secrets: { TELEGRAM_BOT_TOKEN: "canary-worker-3e9a" },
    releases: { first: "v1", second: "v2", broken: "broken" },
    database: true,
};
const run = exampleRun(spec);

describeExampleLifecycle(spec, run, {
    afterDeploy() {
        test("no web role: no proxy, nothing published, the gate is the containers' health", () => {
            const release = JSON.parse(ssh(run.vm, "cat /opt/worker-bot/current/release.json").out);
            expect(release).toMatchObject({ web: null, proxy: null, migrate: null, services: ["postgres", "worker"] });
            expect(ssh(run.vm, "docker ps --format '{{.Names}} {{.Ports}}' --filter label=com.docker.compose.project=worker-bot").out).not.toMatch(/->/);
            const gate = JSON.parse(ssh(run.vm, "/opt/worker-bot/bin/health-check.sh --retries 1 --json").out);
            expect(gate.overall_status).toBe("healthy");
            expect(Object.keys(gate.services).sort()).toEqual(["postgres", "worker"]);
        });

        test("the Compose file's own log rotation and limits run as written", () => {
            const inspect = JSON.parse(ssh(run.vm, "docker inspect $(docker ps -q --filter label=com.docker.compose.service=worker --filter label=com.docker.compose.project=worker-bot)").out)[0];
            expect(inspect.HostConfig.LogConfig).toEqual({ Type: "json-file", Config: { "max-file": "3", "max-size": "10m" } });
            expect(inspect.HostConfig.Memory).toBe(256 * 1024 * 1024);
            expect(inspect.HostConfig.NanoCpus).toBe(500_000_000);
        });
    },
});
