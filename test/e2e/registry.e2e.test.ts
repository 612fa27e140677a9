/**
 * The registry transport with a real registry: Debian's docker-registry (the distribution
 * server, test/registry/) with htpasswd auth and TLS from a test CA, in a container on the
 * host's Docker bridge, which both the host's Docker and the sandbox VM reach. onevm builds
 * booking-bot's images from its Compose build contexts with @pulumi/docker and pushes them;
 * the database, cache and proxy images are prebuilt references pushed beforehand. Each
 * release pins digests (releases/<id>/images.lock): a tag moved after the deploy changes
 * nothing, a rollback pulls the same bytes. The password is a canary: it must appear in no
 * state export, engine output, VM log, journal or process list.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { exampleConfig, newStack, removeStack, ROOT, Sandbox, sandboxDown, sandboxUp, ssh, stackConfig, TestStack } from "./harness";

jest.setTimeout(900_000);

const PASSWORD = "canary-registry-9e41c7";
const USER = "onevm-e2e";
const APP = "booking-bot";
/** The host's address on Docker's default bridge: the host and the sandbox VM both reach it. */
const BRIDGE_IP = "172.17.0.1";
const REGISTRY_IMAGE = "onevm/test-registry:2";
const REGISTRY_CONTAINER = `${process.env.ONEVM_SANDBOX_PREFIX ?? ""}onevm-e2e-registry`;
const SANDBOX = "registry";
/** The Compose file under test: booking-bot's, its build contexts pointing at examples/booking-bot. */
const COMPOSE_DIR = path.join(ROOT, "build", "e2e-registry");

let vm: Sandbox;
let t: TestStack;
let work: string;
let port: number;
let server: string;
let caPem: string;
/** DOCKER_CONFIG of this test's own docker CLI calls (never the host user's). */
let dockerConfig: string;
let hostCertsDir: string;

function sh(cmd: string, args: string[], o: { input?: string; env?: Record<string, string> } = {}): string {
    return execFileSync(cmd, args, { cwd: ROOT, input: o.input, encoding: "utf8", timeout: 1_200_000, env: { ...process.env, ...o.env }, stdio: ["pipe", "pipe", "pipe"] });
}
const docker = (...args: string[]) => sh("docker", args, { env: { DOCKER_CONFIG: dockerConfig } });

/** booking-bot's Compose file with each build's RELEASE arg fixed and the local base image. */
function writeCompose(release: string): void {
    const doc = parseYaml(fs.readFileSync(path.join(ROOT, "examples", APP, "compose.yaml"), "utf8"));
    for (const svc of Object.values(doc.services) as Array<Record<string, any>>) {
        if (!svc.build) continue;
        svc.build.context = path.relative(COMPOSE_DIR, path.join(ROOT, "examples", APP, svc.build.context));
        svc.build.args = { ...svc.build.args, RELEASE: release, BASE_IMAGE: "onevm/debian:trixie" };
    }
    fs.mkdirSync(COMPOSE_DIR, { recursive: true });
    fs.writeFileSync(path.join(COMPOSE_DIR, "compose.yaml"), toYaml(doc));
}

async function deploy(release: string, extra: Record<string, { value: string; secret?: boolean }> = {}) {
    writeCompose(release);
    await t.stack.setConfig("onevm:releaseId", { value: release });
    for (const [k, v] of Object.entries(extra)) await t.stack.setConfig(k, v);
    return t.stack.up({ onOutput: (o) => t.output.push(o) });
}
async function upFails(release: string): Promise<string> {
    try {
        await deploy(release);
    } catch (e) {
        return (e as Error).message;
    }
    throw new Error(`pulumi up of ${release} unexpectedly succeeded`);
}

const current = () => ssh(vm, `readlink -f /opt/${APP}/current`).out.trim();
const runningRelease = () => String(JSON.parse(ssh(vm, "curl -fsS http://127.0.0.1:8080/version").out).release);
const lockOf = (release: string): Record<string, string> => JSON.parse(ssh(vm, `cat /opt/${APP}/releases/${release}/images.lock`).out);
/** Service -> image ID of its running container. */
const runningImages = () =>
    Object.fromEntries(
        ssh(vm, `docker ps --filter label=com.docker.compose.project=${APP} --format '{{.Label "com.docker.compose.service"}} {{.ID}}'`)
            .out.trim()
            .split("\n")
            .map((l) => l.split(" "))
            .map(([svc, id]) => [svc, ssh(vm, `docker inspect -f '{{.Image}}' ${id}`).out.trim()]),
    );
const started = () => ssh(vm, `docker ps -q --filter label=com.docker.compose.project=${APP} | xargs docker inspect -f '{{.Name}} {{.State.StartedAt}}' | sort`).out;

beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "onevm-registry-e2e-"));
    dockerConfig = path.join(work, "docker-config");
    fs.mkdirSync(dockerConfig, { mode: 0o700 });
    // The base image, the stand-ins of postgres:17, redis:8 and caddy:2, and the registry image.
    sh("bash", ["scripts/build-images.sh", "--example", APP, "--release", "v1", "--proxy"]);
    sh("docker", ["build", "-q", "-t", REGISTRY_IMAGE, path.join(ROOT, "test", "registry")]);

    // A test CA and the registry's certificate for the bridge address.
    const certs = path.join(work, "certs");
    fs.mkdirSync(certs);
    const ssl = (...args: string[]) => sh("openssl", args);
    ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${certs}/ca.key`, "-out", `${certs}/ca.pem`, "-days", "2", "-subj", "/CN=onevm e2e registry CA");
    ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${certs}/server.key`, "-out", `${certs}/server.csr`, "-subj", `/CN=${BRIDGE_IP}`);
    fs.writeFileSync(`${certs}/ext.cnf`, `subjectAltName=IP:${BRIDGE_IP}\nextendedKeyUsage=serverAuth\n`);
    ssl("x509", "-req", "-in", `${certs}/server.csr`, "-CA", `${certs}/ca.pem`, "-CAkey", `${certs}/ca.key`, "-CAcreateserial", "-out", `${certs}/server.pem`, "-days", "2", "-extfile", `${certs}/ext.cnf`);
    fs.chmodSync(`${certs}/server.key`, 0o644);
    caPem = fs.readFileSync(`${certs}/ca.pem`, "utf8");
    const auth = path.join(work, "auth");
    fs.mkdirSync(auth);
    fs.writeFileSync(path.join(auth, "htpasswd"), sh("docker", ["run", "-i", "--rm", REGISTRY_IMAGE, "htpasswd", "-niB", USER], { input: PASSWORD }));

    spawnSync("docker", ["rm", "-f", REGISTRY_CONTAINER]);
    port = 20000 + Math.floor(Math.random() * 20000);
    server = `${BRIDGE_IP}:${port}`;
    sh("docker", ["run", "-d", "--name", REGISTRY_CONTAINER, "-p", `${server}:5000`, "-v", `${certs}:/certs:ro`, "-v", `${auth}:/auth:ro`, REGISTRY_IMAGE]);
    // The host's Docker trusts the test CA for this registry only.
    hostCertsDir = `/etc/docker/certs.d/${server}`;
    fs.mkdirSync(hostCertsDir, { recursive: true });
    fs.writeFileSync(path.join(hostCertsDir, "ca.crt"), caPem);
    for (let i = 0; i < 50 && spawnSync("curl", ["-fsS", "--cacert", `${certs}/ca.pem`, "-u", `${USER}:${PASSWORD}`, `https://${server}/v2/`]).status !== 0; i++) {
        await new Promise((r) => setTimeout(r, 200));
    }
    sh("docker", ["login", server, "--username", USER, "--password-stdin"], { input: PASSWORD, env: { DOCKER_CONFIG: dockerConfig } });
    for (const image of ["postgres:17", "redis:8", "caddy:2"]) {
        docker("tag", image, `${server}/stand-ins/${image}`);
        docker("push", "-q", `${server}/stand-ins/${image}`);
    }

    sandboxDown(SANDBOX);
    vm = sandboxUp(SANDBOX, { withDocker: true });
    writeCompose("v1");
    const base = exampleConfig(APP);
    delete base["onevm:images"];
    t = await newStack("e2e-registry", {
        ...base,
        ...stackConfig(vm, {}),
        "onevm:composeFile": { value: path.relative(ROOT, path.join(COMPOSE_DIR, "compose.yaml")) },
        "onevm:imageTransport": { value: "registry" },
        "onevm:images": { value: JSON.stringify({ postgres: `${server}/stand-ins/postgres:17`, redis: `${server}/stand-ins/redis:8` }) },
        "onevm:proxyImage": { value: `${server}/stand-ins/caddy:2` },
        "onevm:registry": { value: JSON.stringify({ server, username: USER, caCertificate: caPem }) },
        "onevm:registryPassword": { value: PASSWORD, secret: true },
        "onevm:healthRetries": { value: "60" },
        "app:TELEGRAM_BOT_TOKEN": { value: "canary-telegram-20d1", secret: true },
        "onevm:releaseId": { value: "v1" },
    });
});

afterAll(async () => {
    if (t) await removeStack(t);
    sandboxDown(SANDBOX);
    spawnSync("docker", ["rm", "-f", REGISTRY_CONTAINER]);
    if (hostCertsDir) fs.rmSync(hostCertsDir, { recursive: true, force: true });
    if (work) fs.rmSync(work, { recursive: true, force: true });
});

test("deploy v1: onevm builds bot-api and migrate, pushes them, and the VM pulls every image by digest", async () => {
    const res = await deploy("v1");
    expect(res.outputs.releaseId.value).toBe("v1");
    expect(current()).toBe(`/opt/${APP}/releases/v1`);
    expect(runningRelease()).toBe("v1");
    const lock = lockOf("v1");
    expect(Object.keys(lock).sort()).toEqual(expect.arrayContaining(["bot-api", "migrate", "postgres", "redis"]));
    for (const pinned of Object.values(lock)) expect(pinned).toMatch(new RegExp(`^${server.replace(/\./g, "\\.")}/.+@sha256:[0-9a-f]{64}$`));
    expect(lock["bot-api"]).toMatch(new RegExp(`/${APP}/bot-api@sha256:`));
    expect(res.outputs.pinnedImages.value).toEqual(lock);
    // The VM trusts the registry's CA through certs.d; its credentials file is the deploy user's, mode 600.
    expect(ssh(vm, `sudo -n cat /etc/docker/certs.d/${server}/ca.crt`).out.trim()).toBe(caPem.trim());
    expect(ssh(vm, "stat -c %a ~/.docker/config.json").out.trim()).toBe("600");
});

test("switch to v2: built, pushed and pinned anew; v1's lock is unchanged", async () => {
    const v1 = lockOf("v1");
    const res = await deploy("v2");
    expect(res.outputs.releaseId.value).toBe("v2");
    expect(runningRelease()).toBe("v2");
    expect(lockOf("v2")["bot-api"]).not.toBe(v1["bot-api"]);
    expect(lockOf("v1")).toEqual(v1);
});

test("a tag moved after the deploy changes nothing: rollback to v1 by ID pulls v1's digests, not the tag", async () => {
    const v1 = lockOf("v1");
    // The registry's bot-api:v1 now names v2's image; and the VM has none of v1's images left.
    const tagOf = (pinned: string) => pinned.replace(/@sha256:.*$/, "");
    docker("pull", "-q", lockOf("v2")["bot-api"]);
    docker("tag", lockOf("v2")["bot-api"], `${tagOf(v1["bot-api"])}:v1`);
    docker("push", "-q", `${tagOf(v1["bot-api"])}:v1`);
    ssh(vm, `docker image rm -f ${v1["bot-api"]} ${v1.migrate} $(docker images -q --filter reference='*/${APP}/*:v1') >/dev/null 2>&1 || true`);
    await t.stack.setConfig("onevm:releaseId", { value: "v1" });
    const res = await t.stack.up({ onOutput: (o) => t.output.push(o) });
    expect(res.outputs.releaseId.value).toBe("v1");
    expect(res.outputs.releaseSource.value).toBe("record");
    expect(runningRelease()).toBe("v1");
    expect(lockOf("v1")).toEqual(v1);
    const botApiId = ssh(vm, `docker image inspect -f '{{.Id}}' ${v1["bot-api"]}`).out.trim();
    expect(runningImages()["bot-api"]).toBe(botApiId);
});

test("a wrong password: one clear error naming onevm:registryPassword, and nothing on the VM changes", async () => {
    const before = { current: current(), started: started(), config: ssh(vm, "sha256sum ~/.docker/config.json").out, history: ssh(vm, `wc -l < /opt/${APP}/state/history.jsonl`).out };
    await t.stack.setConfig("onevm:registryPassword", { value: "canary-wrong-3b6f", secret: true });
    const message = await upFails("v3");
    expect(message).toMatch(/refused onevm:registry\.username "onevm-e2e" with onevm:registryPassword/);
    expect(message).toMatch(/nothing was changed/);
    expect(message).not.toMatch(/canary-wrong/);
    expect({ current: current(), started: started(), config: ssh(vm, "sha256sum ~/.docker/config.json").out, history: ssh(vm, `wc -l < /opt/${APP}/state/history.jsonl`).out }).toEqual(before);
    expect(ssh(vm, `test -e /opt/${APP}/releases/v3 && echo yes || echo no`).out.trim()).toBe("no");
    await t.stack.setConfig("onevm:registryPassword", { value: PASSWORD, secret: true });
});

test("the registry down during a switch: the release is refused before the running one stops", async () => {
    // v2 again by ID (from the record: no build, no lookup), its images gone from the VM.
    const v2 = lockOf("v2");
    ssh(vm, `docker image rm -f ${v2["bot-api"]} ${v2.migrate} $(docker images -q --filter reference='*/${APP}/*:v2') >/dev/null 2>&1 || true`);
    const before = started();
    spawnSync("docker", ["stop", REGISTRY_CONTAINER]);
    try {
        await t.stack.setConfig("onevm:releaseId", { value: "v2" });
        let message = "";
        await t.stack.up({ onOutput: (o) => t.output.push(o) }).then(
            () => {
                throw new Error("pulumi up unexpectedly succeeded with the registry down");
            },
            (e: Error) => {
                message = e.message;
            },
        );
        expect(message).toMatch(/refused before anything changed|could not be reached/);
        expect(current()).toBe(`/opt/${APP}/releases/v1`);
        expect(started()).toBe(before);
        expect(runningRelease()).toBe("v1");
    } finally {
        spawnSync("docker", ["start", REGISTRY_CONTAINER]);
    }
});

test("the password is nowhere in plain text: state export, engine output, the VM's logs, journal and processes", async () => {
    // The backend's own files (the Automation API's exportStack decrypts secrets: not this).
    const pattern = path.join(work, "canary.pattern");
    fs.writeFileSync(pattern, PASSWORD + "\n", { mode: 0o600 });
    const grep = spawnSync("grep", ["-rlF", "-f", pattern, t.backendDir], { encoding: "utf8" });
    expect([grep.status, grep.stdout]).toEqual([1, ""]);
    expect(sh("bash", ["-c", `find ${JSON.stringify(t.backendDir)} -name '*.json' | wc -l`]).trim()).not.toBe("0");
    expect(t.output.join("")).not.toContain(PASSWORD);
    // The canary reaches the VM on stdin into a file, so no command line here carries it.
    const onVm = ssh(
        vm,
        [
            "umask 077; cat >/tmp/canary.pattern",
            `sudo -n grep -rlF -f /tmp/canary.pattern /opt/${APP} /var/log /etc /home 2>/dev/null | wc -l`,
            "sudo -n journalctl --no-pager -o cat | grep -cF -f /tmp/canary.pattern",
            "ps -eo args | grep -cF -f /tmp/canary.pattern",
            "rm -f /tmp/canary.pattern",
        ].join("; "),
        { input: PASSWORD + "\n", allowFailure: true },
    ).out;
    // No file holds it, no journal line, no process's command line.
    expect(onVm.trim().split("\n").map((l) => l.trim())).toEqual(["0", "0", "0"]);
});
