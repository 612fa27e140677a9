/** Shorter fragments would blank out ordinary words in the output. */
const MIN_LENGTH = 6;

/**
 * Returns a function that replaces every occurrence of the given secret values, and of
 * each line of a multi-line secret, with "[secret]". Defence in depth for logs and error
 * text built from a command's output, which may echo what it was given.
 */
export function redactor(secrets: readonly string[]): (text: string) => string {
    const fragments = new Set<string>();
    for (const s of secrets) {
        for (const f of [s, ...s.split("\n")]) {
            const t = f.trim();
            if (t.length >= MIN_LENGTH) fragments.add(t);
        }
    }
    const ordered = [...fragments].sort((a, b) => b.length - a.length);
    return (text) => ordered.reduce((acc, f) => acc.split(f).join("[secret]"), text);
}
