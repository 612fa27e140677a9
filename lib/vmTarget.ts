/**
 * Where the operator command (`npm run onevm`) reaches a stack's VM: the stack output
 * `vm` (app, address, port, user, pinned host key) and the private key: the config's
 * secret onevm:sshPrivateKey, else the deploy key onevm generated (secret output
 * `deployPrivateKey`). Pure: scripts/onevm.ts reads the stack.
 */
import { NAMESPACE } from "./config";
import * as v from "./validate";

export interface VmTarget {
    app: string;
    host: string;
    port: number;
    user: string;
    /** Pinned in a temporary known_hosts: the connection refuses any other host key. */
    hostPublicKey: string;
    privateKey: string;
}

/** `pulumi config --json` shape: full key -> { value, secret }. */
export type ConfigJson = Record<string, { value?: unknown; secret?: boolean } | undefined>;

export class VmTargetError extends Error {}

export function resolveVmTarget(config: ConfigJson, outputs: Record<string, unknown>, stack: string): VmTarget {
    const fail = (msg: string): never => {
        throw new VmTargetError(`stack ${stack}: ${msg}`);
    };
    const vm = outputs.vm as Partial<VmTarget> | undefined;
    if (!vm || typeof vm !== "object") {
        return fail("has no `vm` output yet: run `pulumi up` on it first (with this version of onevm)");
    }
    const check = <T>(name: string, value: T | undefined, rule: v.Rule<T>): T => {
        if (value === undefined || value === null || value === "") return fail(`the \`vm\` output has no ${name}: run \`pulumi up\` on it again`);
        const problem = rule(value);
        return problem ? fail(`${name} ${problem}`) : value;
    };
    const configured = config[`${NAMESPACE}:sshPrivateKey`]?.value;
    const generated = outputs.deployPrivateKey;
    const privateKey =
        typeof configured === "string" && configured !== ""
            ? configured
            : typeof generated === "string" && generated !== ""
              ? generated
              : fail(`no ${NAMESPACE}:sshPrivateKey in the config and no generated \`deployPrivateKey\` output: set the key with \`pulumi config set --secret ${NAMESPACE}:sshPrivateKey < key\``);
    return {
        app: check("app", vm.app, v.appName),
        host: check("host", vm.host, v.hostName),
        port: check("port", vm.port, v.port),
        user: check("user", vm.user, v.unixUser),
        hostPublicKey: v.hostKeyLine(check("hostPublicKey", vm.hostPublicKey, v.sshPublicKey)),
        privateKey: check("SSH private key", privateKey, v.sshPrivateKey),
    };
}

/** The known_hosts line that pins the host key (`[host]:port` form off port 22). */
export function knownHostsLine(t: Pick<VmTarget, "host" | "port" | "hostPublicKey">): string {
    return `${t.port === 22 ? t.host : `[${t.host}]:${t.port}`} ${t.hostPublicKey}\n`;
}
