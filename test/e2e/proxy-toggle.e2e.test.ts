/**
 * The loopback proxy turned on and off on a running stack (issue 7): who publishes the
 * app's loopback port 127.0.0.1:8080 changes hands between bot-api and the proxy, and
 * neither direction may fail on "port is already allocated". v1 without the proxy, v2
 * with it, then the rollback to v1 (without it again, so the same content as before).
 */
import { buildImages, newStack, removeStack, Sandbox, sandboxDown, sandboxUp, ssh, stackConfig, TestStack } from "./harness";

jest.setTimeout(1_800_000);

const NAME = "e2e-proxy-toggle";
const HEALTH = '{"status":"ok","service":"bot-api"}';
let vm: Sandbox;
let t: TestStack;
let refs: Record<string, Record<string, string>>;

beforeAll(async () => {
    refs = buildImages(["v1", "v2"]);
    sandboxDown(NAME);
    vm = sandboxUp(NAME);
    t = await newStack(
        NAME,
        stackConfig(vm, {
            "onevm:releaseId": { value: "v1" },
            "onevm:images": { value: JSON.stringify(refs.v1) },
            "onevm:telegramBotToken": { value: "t", secret: true },
            "onevm:loopbackProxy": { value: "false" },
        }),
    );
});

afterAll(async () => {
    if (t) await removeStack(t);
    sandboxDown(NAME);
});

/** Each running service of the app with the host ports it publishes ("SERVICE HOSTIP:PORT->PORT/tcp"). */
const published = () =>
    ssh(vm, "docker ps --filter label=com.docker.compose.project=bot --format '{{.Label \"com.docker.compose.service\"}} {{.Ports}}'")
        .out.trim()
        .split("\n")
        .flatMap((l) => {
            const [service, ...ports] = l.split(/,? /);
            // Only mappings: an image's EXPOSEd ports show up too (Caddy's 80/tcp, 443/tcp).
            return ports.filter((p) => p.includes("->")).map((p) => `${service} ${p}`);
        })
        .sort();
const version = () => ssh(vm, "curl -fsS http://127.0.0.1:8080/version").out;

async function deploy(release: string, loopbackProxy: boolean): Promise<void> {
    await t.stack.setConfig("onevm:releaseId", { value: release });
    await t.stack.setConfig("onevm:images", { value: JSON.stringify(refs[release]) });
    await t.stack.setConfig("onevm:loopbackProxy", { value: String(loopbackProxy) });
    const res = await t.stack.up({ onOutput: (o) => t.output.push(o) });
    expect(res.summary.result).toBe("succeeded");
}

test("loopbackProxy false: bot-api publishes the loopback port itself; no proxy, no proxy files", async () => {
    await deploy("v1", false);
    expect(published()).toEqual(["bot-api 127.0.0.1:8080->8080/tcp"]);
    expect(ssh(vm, "curl -fsS http://127.0.0.1:8080/health").out.trim()).toBe(HEALTH);
    expect(ssh(vm, "test -e /opt/bot/shared/tls && echo present || echo absent").out.trim()).toBe("absent");
});

test("turning it on with the next release: the proxy takes the port over from bot-api", async () => {
    await deploy("v2", true);
    expect(published()).toEqual(["proxy 127.0.0.1:8080->8080/tcp"]);
    expect(version()).toContain('"v2"');
    expect(ssh(vm, "cat /opt/bot/shared/tls/Caddyfile").out).toContain("http://:8080 {");
    expect(JSON.parse(ssh(vm, "tail -n 1 /opt/bot/state/history.jsonl").out)).toMatchObject({ release: "v2", result: "success" });
});

test("rolling back to v1 turns it off again: bot-api gets the port back, the proxy and its files go", async () => {
    await deploy("v1", false);
    expect(published()).toEqual(["bot-api 127.0.0.1:8080->8080/tcp"]);
    expect(version()).toContain('"v1"');
    expect(ssh(vm, "test -e /opt/bot/shared/tls && echo present || echo absent").out.trim()).toBe("absent");
    expect(JSON.parse(ssh(vm, "tail -n 1 /opt/bot/state/history.jsonl").out)).toMatchObject({ release: "v1", result: "success" });
});
