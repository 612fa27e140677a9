import { CheckFailure } from "@pulumi/pulumi/provider";
import { spawn } from "child_process";
import { hasUnknown, reveal, WireMap } from "../../common/values";
import { Exit, Stream } from "../shared/output";
import { CommandKind, commandResource, RunRequest } from "../shared/resource";

const INPUT_KEYS = [
    "addPreviousOutputInEnv",
    "create",
    "delete",
    "dir",
    "environment",
    "interpreter",
    "logging",
    "stdin",
    "triggers",
    "update",
] as const;

/** Inputs of the SDK that this implementation does not provide; rejected rather than silently ignored. */
const UNSUPPORTED = ["archivePaths", "assetPaths"];

const DEFAULT_INTERPRETER = ["/bin/sh", "-c"];

function checks(news: WireMap): CheckFailure[] {
    const failures: CheckFailure[] = [];
    for (const k of UNSUPPORTED) {
        const v = reveal(news[k]);
        if (Array.isArray(v) && v.length > 0) failures.push({ property: k, reason: "is not supported by onevm's command provider" });
    }
    const interpreter = reveal(news.interpreter);
    if (interpreter !== undefined && interpreter !== null && !hasUnknown(interpreter)) {
        if (!Array.isArray(interpreter) || interpreter.length === 0 || !interpreter.every((a) => typeof a === "string")) {
            failures.push({ property: "interpreter", reason: "must be a non-empty list of strings" });
        }
    }
    return failures;
}

/** Like upstream: the command is the interpreter's last argument; environment goes through the process environment. */
function run({ props, command, env, stdin, onStdout, onStderr }: RunRequest): Promise<Exit> {
    const [file, ...args] = (reveal(props.interpreter) as string[] | undefined) ?? DEFAULT_INTERPRETER;
    const cwd = (reveal(props.dir) as string | undefined) || undefined;
    return new Promise((resolve, reject) => {
        const child = spawn(file, [...args, command], { cwd, env: { ...process.env, ...env }, stdio: "pipe" });
        const stdout = new Stream(onStdout);
        const stderr = new Stream(onStderr);
        child.on("error", reject);
        child.stdout.on("data", (d: Buffer) => stdout.write(d));
        child.stderr.on("data", (d: Buffer) => stderr.write(d));
        child.on("close", (code, signal) =>
            resolve({ code, signal: signal ?? undefined, stdout: stdout.end(), stderr: stderr.end() }),
        );
        child.stdin.on("error", () => undefined); // a command that ignores stdin may exit before we finish writing
        child.stdin.end(stdin ?? "");
    });
}

const local: CommandKind = {
    inputKeys: INPUT_KEYS,
    check: checks,
    replaces: () => [],
    secrets: () => [],
    run,
};

/** command:local:Command */
export const localCommand = commandResource(local);
