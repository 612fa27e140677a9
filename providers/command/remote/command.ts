import { CheckFailure } from "@pulumi/pulumi/provider";
import { hasUnknown, reveal, Wire, WireMap } from "../../common/values";
import { CommandKind, commandResource } from "../shared/resource";
import { parseConnection, requireConnection } from "./connection";
import { dial } from "./dial";
import { execute } from "./exec";
import { isValidEnvName } from "./script";

const INPUT_KEYS = [
    "addPreviousOutputInEnv",
    "connection",
    "create",
    "delete",
    "environment",
    "logging",
    "stdin",
    "triggers",
    "update",
] as const;

export function connectionChecks(news: WireMap): CheckFailure[] {
    return parseConnection(reveal(news.connection)).failures;
}

/** A different host is a different machine: whatever ran on the old one must be redone on the new one. */
export function hostChanged(olds: WireMap, news: WireMap): boolean {
    const host = (c: Wire) => {
        const v = reveal(c);
        return typeof v === "object" && v !== null && !Array.isArray(v) ? v.host : v;
    };
    const [before, after] = [host(olds.connection), host(news.connection)];
    return hasUnknown(after) || before !== after;
}

function connectionSecrets(props: WireMap): string[] {
    const secrets: string[] = [];
    const conn = reveal(props.connection) as Record<string, Wire> | undefined;
    for (const c of [conn, conn?.proxy as Record<string, Wire> | undefined]) {
        for (const k of ["password", "privateKeyPassword"]) if (typeof c?.[k] === "string") secrets.push(c[k] as string);
    }
    return secrets;
}

const remote: CommandKind = {
    inputKeys: INPUT_KEYS,
    check(news) {
        const failures = connectionChecks(news);
        const env = reveal(news.environment);
        if (typeof env === "object" && env !== null && !Array.isArray(env)) {
            for (const k of Object.keys(env)) {
                if (!isValidEnvName(k)) failures.push({ property: `environment.${k}`, reason: "is not a valid shell variable name" });
            }
        }
        return failures;
    },
    replaces: (olds, news) => (hostChanged(olds, news) ? ["connection"] : []),
    secrets: connectionSecrets,
    async run({ ctx, props, ...run }) {
        const client = await dial(requireConnection(reveal(props.connection)), { log: ctx.log });
        try {
            return await execute(client, run);
        } finally {
            client.end();
        }
    },
};

/** command:remote:Command */
export const remoteCommand = commandResource(remote);
