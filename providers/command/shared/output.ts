import { StringDecoder } from "string_decoder";

export type Logging = "stdout" | "stderr" | "stdoutAndStderr" | "none";
export const LOGGING_VALUES: readonly Logging[] = ["stdout", "stderr", "stdoutAndStderr", "none"];

/** How a finished process ended, with everything it printed. */
export interface Exit {
    /** null when the process was killed by a signal or the connection dropped. */
    code: number | null;
    signal?: string;
    stdout: string;
    stderr: string;
}

/** Captures one output stream and hands each complete line to `onLine` as it arrives. */
export class Stream {
    private readonly decoder = new StringDecoder("utf8");
    private text = "";
    private pending = "";

    constructor(private readonly onLine?: (line: string) => void) {}

    write(chunk: Buffer): void {
        const s = this.decoder.write(chunk);
        this.text += s;
        if (!this.onLine) return;
        const lines = (this.pending + s).split("\n");
        this.pending = lines.pop() ?? "";
        for (const line of lines) this.onLine(line);
    }

    /** Flushes a final unterminated line and returns the full text. */
    end(): string {
        const rest = this.decoder.end();
        this.text += rest;
        this.pending += rest;
        if (this.onLine && this.pending !== "") this.onLine(this.pending);
        this.pending = "";
        return this.text;
    }
}

/** Line sinks for stdout and stderr according to the `logging` input. */
export function lineLoggers(
    logging: Logging,
    log: (line: string) => void,
): { stdout?: (line: string) => void; stderr?: (line: string) => void } {
    return {
        stdout: logging === "stdout" || logging === "stdoutAndStderr" ? log : undefined,
        stderr: logging === "stderr" || logging === "stdoutAndStderr" ? log : undefined,
    };
}

/** Upstream strips exactly one trailing newline from the stdout/stderr outputs. */
export function trimNewline(s: string): string {
    return s.endsWith("\n") ? s.slice(0, -1) : s;
}
