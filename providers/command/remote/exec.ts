import { Client } from "ssh2";
import { Exit, Stream } from "../shared/output";
import { BOOTSTRAP, scriptLine } from "./script";

export interface RemoteRun {
    command: string;
    env: Record<string, string>;
    stdin?: string;
    onStdout?: (line: string) => void;
    onStderr?: (line: string) => void;
}

/** Runs one command in a new session on an authenticated connection; see script.ts for the protocol. */
export function execute(client: Client, run: RemoteRun): Promise<Exit> {
    const header = scriptLine(run.command, run.env);
    return new Promise((resolve, reject) => {
        client.exec(BOOTSTRAP, (err, channel) => {
            if (err) return reject(err);
            const stdout = new Stream(run.onStdout);
            const stderr = new Stream(run.onStderr);
            let code: number | null = null;
            let signal: string | undefined;
            channel.on("exit", (c: number | null, s?: string) => {
                code = typeof c === "number" ? c : null;
                signal = s;
            });
            channel.on("data", (d: Buffer) => stdout.write(d));
            channel.stderr.on("data", (d: Buffer) => stderr.write(d));
            channel.on("close", () => resolve({ code, signal, stdout: stdout.end(), stderr: stderr.end() }));
            // A command that exits without reading its stdin makes later writes fail; its exit status tells the story.
            channel.on("error", () => undefined);
            channel.write(header);
            if (run.stdin) channel.write(run.stdin);
            channel.end();
        });
    });
}
