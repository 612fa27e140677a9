/**
 * Where `npm run restore` reaches the VM, decided from the stack's config
 * (`pulumi config --json --show-secrets`) and outputs (`pulumi stack output --json
 * --show-secrets`). Pure: scripts/restore-target.ts does the I/O.
 */
import { NAMESPACE } from "./config";
import * as v from "./validate";

export interface RestoreTarget {
    target: "existing" | "digitalocean";
    host: string;
    port: number;
    user: string;
    app: string;
    /** onevm:backupMinFreeMb: the free space restore.sh's safety backup requires. */
    backupMinFreeMb: number;
    /** Pinned in a temporary known_hosts: the connection refuses any other host key. */
    hostPublicKey: string;
    privateKey: string;
}

/** `pulumi config --json` shape: full key -> { value, secret }. */
export type ConfigJson = Record<string, { value?: unknown; secret?: boolean } | undefined>;

export class RestoreTargetError extends Error {}

export function resolveRestoreTarget(config: ConfigJson, outputs: Record<string, unknown>, stack: string): RestoreTarget {
    const get = (key: string): string | undefined => {
        const value = config[`${NAMESPACE}:${key}`]?.value;
        return value === undefined || value === null || value === "" ? undefined : String(value);
    };
    const output = (key: string): string | undefined => {
        const value = outputs[key];
        return typeof value === "string" && value !== "" ? value : undefined;
    };
    const fail = (msg: string): never => {
        throw new RestoreTargetError(`stack ${stack}: ${msg}`);
    };
    const check = <T>(name: string, value: T, rule: v.Rule<T>): T => {
        const problem = rule(value);
        return problem ? fail(`${name} ${problem}`) : value;
    };

    const target = get("target") ?? "existing";
    const app = check(`${NAMESPACE}:app`, get("app") ?? "bot", v.appName);
    const user = check(`${NAMESPACE}:sshUser`, get("sshUser") ?? "deploy", v.unixUser);
    let host: string | undefined;
    let port = 22;
    let hostPublicKey: string | undefined;
    let privateKey = get("sshPrivateKey");
    if (target === "existing") {
        host = get("host") ?? fail(`no ${NAMESPACE}:host in the stack config`);
        port = check(`${NAMESPACE}:sshPort`, Number(get("sshPort") ?? 22), v.port);
        hostPublicKey = get("hostPublicKey") ?? fail(`no ${NAMESPACE}:hostPublicKey in the stack config`);
        privateKey ??= fail(`no ${NAMESPACE}:sshPrivateKey in the stack config`);
    } else if (target === "digitalocean") {
        // The droplet's address and host key exist only once `pulumi up` created it.
        host = output("address") ?? fail("no `address` stack output: run `pulumi up` first");
        hostPublicKey = output("sshHostPublicKey") ?? fail("no `sshHostPublicKey` stack output: run `pulumi up` with this version first");
        // The operator's own key (config) or the one onevm generated (secret stack output).
        privateKey ??= output("deployPrivateKey") ?? fail(`no ${NAMESPACE}:sshPrivateKey in the config and no generated \`deployPrivateKey\` stack output`);
    } else {
        fail(`${NAMESPACE}:target '${target}' is not existing or digitalocean`);
    }
    return {
        target: target as RestoreTarget["target"],
        host: check("host", host!, v.hostName),
        port,
        user,
        app,
        backupMinFreeMb: check(`${NAMESPACE}:backupMinFreeMb`, Number(get("backupMinFreeMb") ?? 2048), v.intBetween(0, 10_000_000)),
        hostPublicKey: check("host public key", hostPublicKey!.trim(), v.sshPublicKey),
        privateKey: check("SSH private key", privateKey!, v.sshPrivateKey),
    };
}

/** The known_hosts line that pins the host key (`[host]:port` form off port 22). */
export function knownHostsLine(t: Pick<RestoreTarget, "host" | "port" | "hostPublicKey">): string {
    return `${t.port === 22 ? t.host : `[${t.host}]:${t.port}`} ${t.hostPublicKey}\n`;
}
