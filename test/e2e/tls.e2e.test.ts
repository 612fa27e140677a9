/**
 * TLS ingress end to end (issue 6) on its own sandbox, certificate mode: onevm's CA and
 * server certificate made by the tls plugin, Caddy on 80/443. A client that trusts only
 * the exported CA reaches /health over the sandbox's published 443; plain http redirects;
 * the app, database and cache ports stay unreachable from outside the VM. Release switches
 * behind the proxy (issue 7) answer every request: the new release's bot-api starts once,
 * beside the old one, and takes over when it answers; a release that never turns healthy
 * is refused before anything switches.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { buildImages, newStack, removeStack, Sandbox, sandboxDown, sandboxUp, ssh, stackConfig, TestStack } from "./harness";
import { Probe, probeOnce, Prober, ProbeTarget } from "../../bench/prober";

jest.setTimeout(1_800_000);

const NAME = "e2e-tls";
const DOMAIN = "bot.onevm.test";
const HEALTH = '{"status":"ok","service":"bot-api"}';
let vm: Sandbox;
let t: TestStack;
let caFile: string;
let vmIp: string;
let refs: Record<string, Record<string, string>>;

function stateFiles(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? stateFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/** curl from this host (outside the VM); never throws: exit code, body and stderr. */
function curl(args: string[]): { code: number; out: string; err: string } {
    const r = spawnSync("curl", ["-sS", "--max-time", "10", ...args], { encoding: "utf8" });
    return { code: r.status ?? -1, out: r.stdout ?? "", err: r.stderr ?? "" };
}

/** Can a TCP connection to host:port be made from this host? */
function tcpOpen(host: string, port: number): boolean {
    const r = spawnSync("bash", ["-c", `exec 3<>/dev/tcp/${host}/${port}`], { timeout: 5_000 });
    return r.status === 0;
}

beforeAll(async () => {
    refs = buildImages(["v1", "v2", "broken"]);
    sandboxDown(NAME);
    vm = sandboxUp(NAME);
    vmIp = execFileSync("docker", ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", vm.container], { encoding: "utf8" }).trim().split(" ")[0];
    t = await newStack(NAME, stackConfig(vm, {
        "onevm:releaseId": { value: "v1" },
        "onevm:images": { value: JSON.stringify(refs.v1) },
        "onevm:telegramBotToken": { value: "tg-e2e-tls-token", secret: true },
        "onevm:tlsIngress": { value: "true" },
        "onevm:tlsMode": { value: "certificate" },
        "onevm:tlsDomain": { value: DOMAIN },
    }));
    caFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "onevm-e2e-tls-")), "ca.pem");
});

afterAll(async () => {
    if (t) await removeStack(t);
    sandboxDown(NAME);
});

test("pulumi up deploys the stack with the TLS proxy and exports the CA certificate", async () => {
    const res = await t.stack.up({ onOutput: (o) => t.output.push(o) });
    expect(res.summary.result).toBe("succeeded");
    const ca = res.outputs.tlsCaCertificate.value as string;
    expect(ca).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
    expect(res.outputs.httpsUrl.value).toBe(`https://${DOMAIN}/`);
    fs.writeFileSync(caFile, ca);
    const text = execFileSync("openssl", ["x509", "-noout", "-text", "-in", caFile], { encoding: "utf8" });
    expect(text).toMatch(/CA:TRUE/);
});

test("a client trusting only the exported CA reaches /health over the published https port", () => {
    const byName = curl(["--cacert", caFile, "--resolve", `${DOMAIN}:${vm.httpsPort}:127.0.0.1`, `https://${DOMAIN}:${vm.httpsPort}/health`]);
    expect(byName.err).toBe("");
    expect(byName.out.trim()).toBe(HEALTH);
    // The VM's own address is in the certificate too (IP SAN), for IP-only clients without SNI.
    expect(curl(["--cacert", caFile, `https://127.0.0.1:${vm.httpsPort}/health`]).out.trim()).toBe(HEALTH);
    // The chain is onevm's own: without the CA, verification fails (curl exit 60).
    expect(curl([`--resolve`, `${DOMAIN}:${vm.httpsPort}:127.0.0.1`, `https://${DOMAIN}:${vm.httpsPort}/health`]).code).toBe(60);
    // A name the certificate does not carry is refused too.
    expect(curl(["--cacert", caFile, "--resolve", `other.onevm.test:${vm.httpsPort}:127.0.0.1`, `https://other.onevm.test:${vm.httpsPort}/health`]).code).toBe(60);
});

test("plain http only redirects to https", () => {
    const r = curl(["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-H", `Host: ${DOMAIN}`, `http://127.0.0.1:${vm.httpPort}/health`]);
    expect(r.out).toBe(`308 https://${DOMAIN}/health`);
});

test("from outside the VM only 80/443 (and ssh) answer: 8080, 5432, 6379 do not", () => {
    // Positive control: the VM's own IP is reachable from here, and its proxy answers there.
    expect(tcpOpen(vmIp, 443)).toBe(true);
    expect(curl(["--cacert", caFile, "--resolve", `${DOMAIN}:443:${vmIp}`, `https://${DOMAIN}/health`]).out.trim()).toBe(HEALTH);
    for (const port of [8080, 5432, 6379]) {
        expect([port, tcpOpen(vmIp, port)]).toEqual([port, false]);
    }
    expect(curl([`http://${vmIp}:8080/health`]).code).not.toBe(0);
    // ...while inside the VM the app still answers on loopback, as the health gate needs.
    expect(ssh(vm, "curl -fsS http://127.0.0.1:8080/health").out.trim()).toBe(HEALTH);
    const listening = ssh(vm, "sudo -n ss -Htln | awk '{print $4}' | sort -u").out;
    expect(listening).toMatch(/^127\.0\.0\.1:8080$/m);
    expect(listening).not.toMatch(/^(0\.0\.0\.0|\*|\[::\]):(8080|5432|6379)$/m);
});

test("on the VM: key mode 600 owned by the proxy's uid; proxy healthy", () => {
    expect(ssh(vm, "sudo -n stat -c '%a %u' /opt/bot/shared/tls/key.pem").out.trim()).toBe("600 480");
    expect(ssh(vm, "stat -c '%a' /opt/bot/shared/tls/cert.pem /opt/bot/shared/tls/Caddyfile").out.trim().split("\n")).toEqual(["644", "644"]);
    expect(ssh(vm, "test -r /opt/bot/shared/tls/key.pem && echo readable || echo unreadable").out.trim()).toBe("unreadable");
    const health = ssh(vm, "docker inspect -f '{{.State.Health.Status}}' $(docker ps -q --filter label=com.docker.compose.service=proxy)").out.trim();
    expect(health).toBe("healthy");
});

/**
 * `pulumi up` to `release` while GET /health goes through the published 443 ten times a
 * second (new connection each, 10 s timeout: this checks that every request is answered,
 * not how fast). Returns the up's error, if any, and the probes that failed.
 */
async function upUnderLoad(release: string): Promise<{ error?: string; failed: Probe[]; probes: number }> {
    await t.stack.setConfig("onevm:releaseId", { value: release });
    await t.stack.setConfig("onevm:images", { value: JSON.stringify(refs[release]) });
    const target: ProbeTarget = { protocol: "https", host: "127.0.0.1", port: vm.httpsPort, path: "/health", servername: DOMAIN, ca: fs.readFileSync(caFile, "utf8") };
    const prober = new Prober(() => probeOnce(target, 10_000), 100);
    prober.start();
    let error: string | undefined;
    await t.stack.up({ onOutput: (o) => t.output.push(o) }).catch((e: Error) => (error = e.message));
    const probes = await prober.stop();
    return { error, failed: probes.filter((p) => !p.ok), probes: probes.length };
}

const lastHistory = () => JSON.parse(ssh(vm, "tail -n 1 /opt/bot/state/history.jsonl").out);
/** Names and ids of the running bot-api service containers, with their images. */
const appContainers = () =>
    ssh(vm, "docker ps --filter label=com.docker.compose.service=bot-api --filter label=com.docker.compose.oneoff=False --format '{{.Names}} {{.ID}} {{.Image}}'")
        .out.trim()
        .split("\n")
        .filter(Boolean);
/** The upstreams the running proxy dials: the Caddyfile's service name unless pinned. */
const proxyDials = () =>
    ssh(vm, `docker exec $(docker ps -q --filter label=com.docker.compose.service=proxy) curl -fsS http://localhost:2019/config/ | grep -o '"dial":"[^"]*"' | sort -u`).out.trim();
/** The activation log of the last run only. */
const lastActivationLog = () => {
    const log = ssh(vm, "cat /opt/bot/logs/activate.log").out;
    return log.slice(log.lastIndexOf("Starting activation of"));
};

test("a switch behind the proxy answers every request: v1 -> v2 starts the new bot-api once, beside the old one", async () => {
    const run = await upUnderLoad("v2");
    expect(run.error).toBeUndefined();
    expect(run.probes).toBeGreaterThan(50);
    expect(run.failed).toEqual([]);
    expect(ssh(vm, "readlink /opt/bot/current").out.trim()).toBe("releases/v2");
    expect(lastHistory()).toMatchObject({ release: "v2", result: "success" });
    const log = lastActivationLog();
    expect(log).toMatch(/starting v2's bot-api beside the running one/);
    const started = log.match(/the new bot-api \((bot-bot-api-\d+), id (\w+)\) answers \/health/);
    expect(started).not.toBeNull();
    expect(log).toMatch(/the proxy serves from the new bot-api; the old one drained and removed/);
    // The very container that proved itself is the one serving: `up -d` kept it (one start).
    expect(appContainers()).toEqual([`${started![1]} ${started![2]} ${refs.v2["bot-api"]}`]);
    expect(log).not.toMatch(/bot-api-\d+ +Recreate/);
    expect(proxyDials()).toBe('"dial":"bot-api:8080"');
});

test("a release whose app never turns healthy is refused before anything switches; every request is still answered", async () => {
    const before = appContainers();
    const run = await upUnderLoad("broken");
    expect(run.error).toMatch(/broken/);
    expect(run.failed).toEqual([]);
    expect(ssh(vm, "readlink /opt/bot/current").out.trim()).toBe("releases/v2");
    expect(lastHistory()).toMatchObject({ release: "broken", result: "rolled_back", exit_code: 5, phase: "rollback" });
    expect(lastHistory().reason).toMatch(/bot-api never answered \/health; the running release kept serving/);
    // bot-api was never touched: the v2 container kept running, the broken one is gone.
    expect(appContainers()).toEqual(before);
    expect(proxyDials()).toBe('"dial":"bot-api:8080"');
});

test("rollback by config to v1 behind the proxy answers every request too", async () => {
    const run = await upUnderLoad("v1");
    expect(run.error).toBeUndefined();
    expect(run.failed).toEqual([]);
    expect(ssh(vm, "readlink /opt/bot/current").out.trim()).toBe("releases/v1");
    const started = lastActivationLog().match(/the new bot-api \((bot-bot-api-\d+), id (\w+)\) answers \/health/);
    expect(appContainers()).toEqual([`${started![1]} ${started![2]} ${refs.v1["bot-api"]}`]);
    expect(proxyDials()).toBe('"dial":"bot-api:8080"');
});

test("a second up changes nothing and the key is never in the engine's output or the state in clear", async () => {
    const preview = await t.stack.preview({ onOutput: (o) => t.output.push(o) });
    const changes = Object.keys(preview.changeSummary).filter((k) => k !== "same" && k !== "read");
    expect(changes).toEqual([]);
    const state = stateFiles(t.backendDir).map((f) => fs.readFileSync(f, "utf8")).join("\n");
    for (const text of [t.output.join(""), state]) {
        expect(text).not.toContain("BEGIN EC PRIVATE KEY");
        expect(text).not.toContain("BEGIN PRIVATE KEY");
    }
});

test("destroy removes the proxy and the TLS files", async () => {
    const res = await t.stack.destroy({ onOutput: (o) => t.output.push(o) });
    expect(res.summary.result).toBe("succeeded");
    expect(ssh(vm, "test ! -e /opt/bot/shared/tls && echo gone").out.trim()).toBe("gone");
    expect(tcpOpen(vmIp, 443)).toBe(false);
});
