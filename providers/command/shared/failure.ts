import { Exit } from "./output";

const TAIL_LINES = 20;

/**
 * The error for a failed run: how it ended plus the last lines of stderr. It never quotes
 * the command, its stdin or its environment, which may hold secrets.
 */
export function failure(exit: Exit, redact: (text: string) => string): Error {
    const how =
        exit.code !== null
            ? `exited with code ${exit.code}`
            : exit.signal
              ? `was killed by signal ${exit.signal}`
              : "ended without an exit status (connection lost?)";
    const lines = exit.stderr.replace(/\n$/, "").split("\n");
    const tail = lines.slice(-TAIL_LINES).join("\n");
    const detail = tail.trim() === "" ? "stderr was empty" : `last lines of stderr:\n${redact(tail)}`;
    return new Error(`command ${how}; ${detail}`);
}
