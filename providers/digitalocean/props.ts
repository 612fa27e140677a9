/** Helpers shared by the DigitalOcean resource types: typed reads of wire properties and check failures. */
import { CheckFailure } from "@pulumi/pulumi/provider";
import { createHash, randomBytes } from "crypto";
import { hasUnknown, reveal, sameValue, Wire, WireMap } from "../common/values";

export type Plain = Record<string, any>;

/** Inputs without secret markers (values travel to the API, never to logs). */
export const plain = (props: WireMap): Plain => reveal(props) as Plain;

/** Names of `keys` whose new value differs (an unknown new value counts as a change). */
export function changed(olds: WireMap, news: WireMap, keys: readonly string[]): string[] {
    return keys.filter((k) => hasUnknown(news[k]) || !sameValue(olds[k], news[k]));
}

/** Failures for required properties that are absent (unknown values pass: preview). */
export function required(news: WireMap, keys: readonly string[]): CheckFailure[] {
    return keys
        .filter((k) => news[k] === undefined || news[k] === null || news[k] === "")
        .map((property) => ({ property, reason: `${property} is required` }));
}

/** Bridged providers name resources `<logical name>-<7 hex>` when no name is given; keep an old name. */
export function autoName(olds: WireMap, news: WireMap, prefix: string): Wire {
    return news.name ?? olds.name ?? `${prefix}-${randomBytes(4).toString("hex").slice(0, 7)}`;
}

/** The official provider keeps only the SHA-1 of user data in state; so does this one. */
export const sha1 = (s: string) => createHash("sha1").update(s).digest("hex");

/** Drops undefined values, which a protobuf Struct cannot carry. */
export function defined(o: Plain): WireMap {
    return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as WireMap;
}

export const sortedStrings = (v: unknown): string[] => (Array.isArray(v) ? [...v].map(String).sort() : []);
