import { CheckFailure } from "@pulumi/pulumi/provider";
import { randomInt } from "crypto";
import { ResourceType } from "../common/serve";
import { changedKeys, hasUnknown, makeSecret, pick, reveal, Wire, WireMap } from "../common/values";

const LOWER = "abcdefghijklmnopqrstuvwxyz";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const NUMERIC = "0123456789";
const SPECIAL = "!@#$%&*()-_=+[]{}<>:?";

const INPUT_KEYS = [
    "keepers",
    "length",
    "lower",
    "minLower",
    "minNumeric",
    "minSpecial",
    "minUpper",
    "number",
    "numeric",
    "overrideSpecial",
    "special",
    "upper",
] as const;

export interface PasswordSpec {
    length: number;
    lower: boolean;
    upper: boolean;
    numeric: boolean;
    special: boolean;
    minLower: number;
    minUpper: number;
    minNumeric: number;
    minSpecial: number;
    overrideSpecial?: string;
}

/** Every character class gets its minimum first, the rest is drawn from all enabled classes, then shuffled. */
export function generate(spec: PasswordSpec): string {
    const classes: Array<[boolean, string, number]> = [
        [spec.lower, LOWER, spec.minLower],
        [spec.upper, UPPER, spec.minUpper],
        [spec.numeric, NUMERIC, spec.minNumeric],
        [spec.special, spec.overrideSpecial ?? SPECIAL, spec.minSpecial],
    ];
    const pick1 = (set: string) => set[randomInt(set.length)];
    const chars: string[] = [];
    let pool = "";
    for (const [enabled, set, min] of classes) {
        if (!enabled || set === "") continue;
        pool += set;
        for (let i = 0; i < min; i++) chars.push(pick1(set));
    }
    while (chars.length < spec.length) chars.push(pick1(pool));
    for (let i = chars.length - 1; i > 0; i--) {
        const j = randomInt(i + 1);
        [chars[i], chars[j]] = [chars[j], chars[i]];
    }
    return chars.join("");
}

/** Fills in the upstream defaults so that state shows them and an explicit default is no change. */
function withDefaults(news: WireMap): WireMap {
    const numeric = news.numeric ?? news.number ?? true;
    return {
        ...news,
        lower: news.lower ?? true,
        upper: news.upper ?? true,
        special: news.special ?? true,
        numeric,
        number: numeric,
        minLower: news.minLower ?? 0,
        minUpper: news.minUpper ?? 0,
        minNumeric: news.minNumeric ?? 0,
        minSpecial: news.minSpecial ?? 0,
    };
}

function validate(props: WireMap): CheckFailure[] {
    if (hasUnknown(props)) return [];
    const p = reveal(props) as Record<string, Wire>;
    const failures: CheckFailure[] = [];
    const int = (k: string, min: number) => {
        const v = p[k];
        if (!(typeof v === "number" && Number.isInteger(v) && v >= min)) failures.push({ property: k, reason: `must be an integer >= ${min}` });
    };
    int("length", 1);
    for (const k of ["minLower", "minUpper", "minNumeric", "minSpecial"]) int(k, 0);
    for (const k of ["lower", "upper", "numeric", "number", "special"]) {
        if (typeof p[k] !== "boolean") failures.push({ property: k, reason: "must be a boolean" });
    }
    if (p.overrideSpecial !== undefined && p.overrideSpecial !== null && typeof p.overrideSpecial !== "string") {
        failures.push({ property: "overrideSpecial", reason: "must be a string" });
    }
    if (failures.length > 0) return failures;
    if (p.number !== p.numeric) failures.push({ property: "number", reason: "conflicts with numeric (number is its deprecated alias)" });
    const mins = (p.minLower as number) + (p.minUpper as number) + (p.minNumeric as number) + (p.minSpecial as number);
    if ((p.length as number) < mins) failures.push({ property: "length", reason: "must be >= minUpper + minLower + minNumeric + minSpecial" });
    if (!(p.lower || p.upper || p.numeric || p.special)) {
        failures.push({ property: "lower", reason: "at least one of lower, upper, numeric and special must be true" });
    }
    return failures;
}

function spec(props: WireMap): PasswordSpec {
    const p = reveal(props) as Record<string, Wire>;
    return {
        length: p.length as number,
        lower: p.lower as boolean,
        upper: p.upper as boolean,
        numeric: p.numeric as boolean,
        special: p.special as boolean,
        minLower: p.minLower as number,
        minUpper: p.minUpper as number,
        minNumeric: p.minNumeric as number,
        minSpecial: p.minSpecial as number,
        overrideSpecial: typeof p.overrideSpecial === "string" ? p.overrideSpecial : undefined,
    };
}

/**
 * random:index/randomPassword:RandomPassword. Any input change replaces it, as upstream.
 * bcryptHash is not produced: neither Node nor an installed package offers bcrypt.
 */
export const randomPassword: ResourceType = {
    async check(_olds, news) {
        const inputs = withDefaults(news);
        return { inputs, failures: validate(inputs) };
    },

    async diff(olds, news) {
        const replaces = changedKeys(olds, news, INPUT_KEYS);
        return replaces.length === 0 ? { changes: false } : { changes: true, replaces };
    },

    async create(_ctx, inputs) {
        return { id: "none", outs: { ...pick(inputs, INPUT_KEYS), result: makeSecret(generate(spec(inputs))) } };
    },
};
