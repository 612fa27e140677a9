/**
 * How a command and its environment reach the remote shell without touching argv.
 *
 * The SSH exec request carries only BOOTSTRAP, a constant: it is what `ps` shows on the
 * host and what sshd may log. The command and `export` statements for the environment
 * travel as the first line of the channel's stdin; bash reads exactly that line and
 * evaluates it in the same process, so the rest of stdin (the user's `stdin` input) is
 * left untouched for the command. The line is pure ASCII, so no byte of a value can end
 * it early or be mangled by the remote locale: every value is an ANSI-C quoted string
 * ($'...') with all bytes outside printable ASCII, quotes and backslashes as \xHH.
 *
 * sshd's AcceptEnv is not needed, and nothing is written to the remote disk.
 */

/** bash reads stdin byte by byte when it is a pipe or socket, so `read` never consumes past the newline. */
export const BOOTSTRAP = `exec bash -c 'IFS= read -r onevm_script && eval "$onevm_script"'`;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isValidEnvName(name: string): boolean {
    return ENV_NAME.test(name);
}

/** bash ANSI-C quoting that yields an ASCII-only word decoding to exactly `value`'s UTF-8 bytes. */
export function ansiCQuote(value: string): string {
    let out = "$'";
    for (const byte of Buffer.from(value, "utf8")) {
        const printable = byte >= 0x20 && byte < 0x7f && byte !== 0x27 && byte !== 0x5c;
        out += printable ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, "0")}`;
    }
    return `${out}'`;
}

/** The single line sent ahead of the user's stdin. */
export function scriptLine(command: string, env: Record<string, string>): string {
    const exports = Object.entries(env).map(([k, v]) => {
        if (!isValidEnvName(k)) throw new Error(`environment variable name ${JSON.stringify(k)} is not a valid shell name`);
        return `export ${k}=${ansiCQuote(v)}; `;
    });
    return `${exports.join("")}unset onevm_script; eval ${ansiCQuote(command)}\n`;
}
