/** docs/configuration.md, rendered from the one declaration of every key (CONFIG_KEYS). Pure. */
import { CONFIG_KEYS, ConfigKeyDoc, NAMESPACE, SECRET_NAMESPACE } from "./config";

const GROUPS: Array<[ConfigKeyDoc["group"], string]> = [
    ["app", "Your app"],
    ["release", "Releases and images"],
    ["target", "The VM"],
    ["digitalocean", "DigitalOcean (`onevm:target: digitalocean`)"],
    ["proxy", "Proxy and TLS"],
    ["backup", "Backups"],
    ["operations", "Operations"],
];

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");

export function renderConfigReference(): string {
    const lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from lib/config.ts by `npm run docs`; a unit test fails when they differ. -->",
        "",
        `Every key onevm reads, in the \`${NAMESPACE}\` namespace (\`pulumi config set ${NAMESPACE}:KEY VALUE\`; objects and`,
        "lists as YAML in the stack file or with `pulumi config set --path`). Secret keys are set with",
        `\`--secret\`. Your app's secret values are keys of their own, \`${SECRET_NAMESPACE}:KEY\`, one per name in`,
        `\`${NAMESPACE}:secrets\`. An invalid value stops \`pulumi preview\` and \`up\` with one message naming the`,
        "key, the problem and the rule, before anything changes. How onevm reads your Compose file:",
        "[app-model.md](app-model.md).",
    ];
    for (const [group, title] of GROUPS) {
        const keys = Object.entries(CONFIG_KEYS).filter(([, d]) => d.group === group);
        lines.push("", `## ${title}`, "", "| key | meaning | default |", "| --- | --- | --- |");
        for (const [key, d] of keys) {
            lines.push(`| \`${NAMESPACE}:${key}\`${d.secret ? " (secret)" : ""} | ${cell(d.doc)} | ${d.default ? cell(d.default) : ""} |`);
        }
    }
    return `${lines.join("\n")}\n`;
}
