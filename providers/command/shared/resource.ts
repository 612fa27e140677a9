import { CheckFailure } from "@pulumi/pulumi/provider";
import { randomBytes } from "crypto";
import { OpContext, ResourceType } from "../../common/serve";
import { changedKeys, hasSecret, hasUnknown, makeSecret, pick, reveal, Wire, WireMap } from "../../common/values";
import { failure } from "./failure";
import { Exit, lineLoggers, Logging, LOGGING_VALUES, trimNewline } from "./output";
import { redactor } from "./redact";

/** What the runner of one command kind (local, remote) receives. */
export interface RunRequest {
    ctx: OpContext;
    /** The resource's inputs as sent by the engine, for kind-specific fields. */
    props: WireMap;
    command: string;
    env: Record<string, string>;
    stdin?: string;
    onStdout?: (line: string) => void;
    onStderr?: (line: string) => void;
}

export interface CommandKind {
    inputKeys: readonly string[];
    check(news: WireMap): CheckFailure[];
    /** Input properties besides `triggers` whose change requires replacement. */
    replaces(olds: WireMap, news: WireMap): string[];
    /** Secret strings in kind-specific inputs to scrub from logs and errors. */
    secrets(props: WireMap): string[];
    run(req: RunRequest): Promise<Exit>;
}

/** Inputs whose text a command may print back, so outputs computed from them must stay secret. */
const ECHOABLE = ["create", "update", "delete", "stdin", "environment"];

/** Linux will not exec a process whose environment holds a "NAME=value" longer than this (MAX_ARG_STRLEN). */
const MAX_ENV_ENTRY = 128 * 1024;

function fitsEnvironment(name: string, value: string): boolean {
    return Buffer.byteLength(`${name}=${value}`) < MAX_ENV_ENTRY;
}

function commonChecks(news: WireMap): CheckFailure[] {
    const failures: CheckFailure[] = [];
    const known = (k: string) => news[k] !== undefined && news[k] !== null && !hasUnknown(news[k]);
    for (const k of ["create", "update", "delete", "stdin"]) {
        if (known(k) && typeof reveal(news[k]) !== "string") failures.push({ property: k, reason: "must be a string" });
    }
    if (known("logging") && !LOGGING_VALUES.includes(reveal(news.logging) as Logging)) {
        failures.push({ property: "logging", reason: `must be one of ${LOGGING_VALUES.join(", ")}` });
    }
    if (known("addPreviousOutputInEnv") && typeof reveal(news.addPreviousOutputInEnv) !== "boolean") {
        failures.push({ property: "addPreviousOutputInEnv", reason: "must be a boolean" });
    }
    const env = reveal(news.environment);
    if (env !== undefined && env !== null && !hasUnknown(env)) {
        if (typeof env !== "object" || Array.isArray(env)) {
            failures.push({ property: "environment", reason: "must be a map of strings" });
        } else {
            for (const [k, v] of Object.entries(env)) {
                if (hasUnknown(v)) continue;
                if (typeof v !== "string") failures.push({ property: `environment.${k}`, reason: "must be a string" });
                else if (!fitsEnvironment(k, v)) failures.push({ property: `environment.${k}`, reason: "is longer than Linux allows (128 KiB)" });
            }
        }
    }
    return failures;
}

interface Previous {
    stdout: Wire;
    stderr: Wire;
}

async function runCommand(kind: CommandKind, ctx: OpContext, props: WireMap, command: string, previous?: Previous): Promise<WireMap> {
    const secrets: string[] = [];
    const env = { ...((reveal(props.environment, secrets) ?? {}) as Record<string, string>) };
    const stdin = reveal(props.stdin, secrets) as string | undefined;
    secrets.push(...kind.secrets(props));
    const withPrevious = previous !== undefined && reveal(props.addPreviousOutputInEnv) !== false;
    if (withPrevious) {
        for (const [name, value] of [["PULUMI_COMMAND_STDOUT", previous.stdout], ["PULUMI_COMMAND_STDERR", previous.stderr]] as const) {
            const text = reveal(value);
            if (typeof text !== "string" || text === "") continue;
            // Setting it anyway would make every program the command starts fail with E2BIG.
            if (fitsEnvironment(name, text)) env[name] = text;
            else ctx.log.info(`${name} is not set: the previous output (${text.length} characters) is too long for an environment variable`);
        }
    }
    const redact = redactor(secrets);
    const logging = (reveal(props.logging) ?? "stdoutAndStderr") as Logging;
    const sinks = lineLoggers(logging, (line) => ctx.log.info(redact(line)));

    const exit = await kind.run({ ctx, props, command, env, stdin, onStdout: sinks.stdout, onStderr: sinks.stderr });
    if (exit.code !== 0) throw failure(exit, redact);

    const secret =
        ECHOABLE.some((k) => hasSecret(props[k])) ||
        (withPrevious && (hasSecret(previous.stdout) || hasSecret(previous.stderr)));
    const out = (s: string) => (secret ? makeSecret(trimNewline(s)) : trimNewline(s));
    return { stdout: out(exit.stdout), stderr: out(exit.stderr) };
}

function commandText(v: Wire): string | undefined {
    const s = reveal(v);
    return typeof s === "string" && s !== "" ? s : undefined;
}

/** create/update/delete/diff semantics shared by command:local:Command and command:remote:Command. */
export function commandResource(kind: CommandKind): ResourceType {
    return {
        async check(_olds, news) {
            return { inputs: news, failures: [...commonChecks(news), ...kind.check(news)] };
        },

        async diff(olds, news) {
            const changed = changedKeys(olds, news, kind.inputKeys);
            if (changed.length === 0) return { changes: false };
            const replaces = [...(changed.includes("triggers") ? ["triggers"] : []), ...kind.replaces(olds, news)];
            return { changes: true, replaces };
        },

        async create(ctx, inputs) {
            const id = `${ctx.name}${randomBytes(4).toString("hex")}`;
            const command = commandText(inputs.create);
            const outs = command ? await runCommand(kind, ctx, inputs, command) : { stdout: "", stderr: "" };
            return { id, outs: { ...pick(inputs, kind.inputKeys), ...outs } };
        },

        async update(ctx, _id, olds, news) {
            const command = commandText(news.update) ?? commandText(news.create);
            const previous = { stdout: olds.stdout ?? "", stderr: olds.stderr ?? "" };
            const outs = command ? await runCommand(kind, ctx, news, command, previous) : previous;
            return { outs: { ...pick(news, kind.inputKeys), ...outs } };
        },

        async delete(ctx, _id, props) {
            const command = commandText(props.delete);
            if (command) await runCommand(kind, ctx, props, command, { stdout: props.stdout ?? "", stderr: props.stderr ?? "" });
        },
    };
}
