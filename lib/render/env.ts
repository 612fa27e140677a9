/**
 * Renders shared/.env, read both by `docker compose --env-file` and by every service's
 * `env_file`. Compose's dotenv parser interpolates `$` in unquoted and double-quoted
 * values, and cuts unquoted values at ` #`, so every value is quoted: single quotes keep
 * a value literal (including `$`, `#`, `\`, spaces and newlines); a value containing `'`
 * uses double quotes with `\`, `"`, `$` and newlines escaped.
 */
import { DatabaseRole } from "../config";
import { envKey } from "../validate";

export function quoteEnvValue(value: string): string {
    if (!value.includes("'")) {
        return `'${value}'`;
    }
    if (value.endsWith("\\")) {
        // Compose treats a quote preceded by a backslash as escaped, so `"...\\"` never closes.
        throw new Error("a value containing a single quote cannot also end with a backslash in a compose .env file");
    }
    const escaped = value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\$/g, "\\$").replace(/\n/g, "\\n");
    return `"${escaped}"`;
}

/** KEY='value' lines in a stable (sorted) order, so unchanged config renders byte-identical. */
export function renderEnv(vars: Record<string, string>): string {
    const lines = Object.keys(vars)
        .sort()
        .map((key) => {
            const problem = envKey(key);
            if (problem) {
                throw new Error(`environment key ${JSON.stringify(key)} ${problem}`);
            }
            return `${key}=${quoteEnvValue(vars[key])}`;
        });
    return `# Managed by onevm (pulumi up). Manual edits are overwritten.\n${lines.join("\n")}\n`;
}

/** The keys of the .env file with no values: the release bundle's .env.example. */
export function renderEnvExample(keys: string[]): string {
    return `# Keys of /opt/<app>/shared/.env. Values live only on the VM (written by onevm).\n${[...keys]
        .sort()
        .map((k) => `${k}=`)
        .join("\n")}\n`;
}

/** A PostgreSQL URL with the password percent-encoded (it may hold any character). */
export function databaseUrl(user: string, password: string, db: string, host: string, port = 5432, scheme = "postgresql", query = ""): string {
    const base = `${scheme}://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(db)}`;
    return query ? `${base}?${query}` : base;
}

/**
 * shared/.env of an app: its secret values and, with a database role, the credentials
 * the database service initialises with and the URL its clients connect with.
 */
export function renderAppEnv(secrets: Record<string, string>, database: { role: DatabaseRole; password: string } | undefined): string {
    const vars: Record<string, string> = { ...secrets };
    if (database) {
        const { role, password } = database;
        vars.POSTGRES_USER = role.user;
        vars.POSTGRES_PASSWORD = password;
        vars.POSTGRES_DB = role.name;
        vars[role.urlKey] = databaseUrl(role.user, password, role.name, role.service, 5432, role.urlScheme, role.urlQuery);
    }
    return renderEnv(vars);
}
