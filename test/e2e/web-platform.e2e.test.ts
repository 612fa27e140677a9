/**
 * The web platform (examples/web-platform: a web frontend, a FastAPI API with Alembic,
 * PostgreSQL) behind onevm's TLS ingress with the real engine: HTTPS with a certificate
 * from onevm's own CA (clients trust only the exported CA), nothing but 80/443 and SSH
 * reachable from outside the VM, and the standard lifecycle probed from outside over HTTPS:
 * the frontend answers every request through a switch, a refused release and its rollback.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { describeExampleLifecycle, exampleRun } from "./exampleLifecycle";
import { ssh } from "./harness";

jest.setTimeout(1_800_000);

const DOMAIN = "platform.onevm.test";
const spec = {
    example: "web-platform",
    secrets: { SECRET_KEY: "canary-platform-secret-key-9d3e" },
    releases: { first: "v1", second: "v2", broken: "broken" },
    database: true,
    tls: true,
    // The frontend's own page: the web service onevm hands over (the API behind it is
    // recreated at a switch).
    probe: "/",
    config: { "onevm:tlsDomain": { value: DOMAIN } },
};
const run = exampleRun(spec);
let caFile = "";

function curl(args: string[]): { code: number; out: string } {
    const r = spawnSync("curl", ["-sS", "--max-time", "10", ...args], { encoding: "utf8" });
    return { code: r.status ?? -1, out: r.stdout };
}

function tcpOpen(host: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const socket = net.connect({ host, port, timeout: 3000 });
        socket.on("connect", () => (socket.destroy(), resolve(true)));
        socket.on("error", () => resolve(false));
        socket.on("timeout", () => (socket.destroy(), resolve(false)));
    });
}

describeExampleLifecycle(spec, run, {
    afterDeploy() {
        test("a client trusting only the exported CA reaches the site over the published https port", async () => {
            const outputs = await run.t.stack.outputs();
            expect(outputs.httpsUrl.value).toBe(`https://${DOMAIN}/`);
            caFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "onevm-e2e-tls-")), "ca.pem");
            fs.writeFileSync(caFile, String(outputs.tlsCaCertificate.value));
            const port = run.vm.httpsPort;
            expect(curl(["--cacert", caFile, "--resolve", `${DOMAIN}:${port}:127.0.0.1`, `https://${DOMAIN}:${port}/`]).out).toContain("Web Platform");
            expect(JSON.parse(curl(["--cacert", caFile, `https://127.0.0.1:${port}/api/healthz`]).out)).toMatchObject({ status: "ok", migrations: "up-to-date" });
            // Without the CA verification fails (curl 60); so does a name the certificate does not carry.
            expect(curl(["--resolve", `${DOMAIN}:${port}:127.0.0.1`, `https://${DOMAIN}:${port}/`]).code).toBe(60);
            expect(curl(["--cacert", caFile, "--resolve", `other.onevm.test:${port}:127.0.0.1`, `https://other.onevm.test:${port}/`]).code).toBe(60);
        });

        test("plain http only redirects to https", () => {
            const r = curl(["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", `Host: ${DOMAIN}`, `http://127.0.0.1:${run.vm.httpPort}/`]);
            expect(r.out).toBe(`308 https://${DOMAIN}/`);
        });

        test("from outside the VM only 443 (and 80, ssh) answer: 3000, 8000, 5432 and the loopback port do not", async () => {
            const vmIp = execFileSync("docker", ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", run.vm.container], { encoding: "utf8" }).trim();
            expect(await tcpOpen(vmIp, 443)).toBe(true);
            for (const port of [3000, 8000, 5432, 8080]) expect([port, await tcpOpen(vmIp, port)]).toEqual([port, false]);
            const listening = ssh(run.vm, "sudo -n ss -Htln | awk '{print $4}' | sort -u").out;
            // The proxy's loopback port: the web service's hostPort (its port, 3000, by default).
            expect(run.hostPort).toBe(3000);
            expect(listening).toMatch(/^127\.0\.0\.1:3000$/m);
            expect(listening).not.toMatch(/^(0\.0\.0\.0|\*|\[::\]):(3000|8000|8080|5432)$/m);
        });

        test("the key is mode 600 and never in the engine's output or the state in clear", () => {
            expect(ssh(run.vm, "sudo -n stat -c '%a' /opt/web-platform/shared/tls/key.pem").out.trim()).toBe("600");
            expect(ssh(run.vm, "test -r /opt/web-platform/shared/tls/key.pem && echo readable || echo unreadable").out.trim()).toBe("unreadable");
            expect(run.t.output.join("")).not.toMatch(/BEGIN (EC )?PRIVATE KEY/);
        });
    },
});
