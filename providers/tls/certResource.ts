/**
 * What SelfSignedCert and LocallySignedCert share as resources: defaults, diff (every
 * input replaces, except earlyRenewalHours, which updates in place as upstream), and
 * renewal: once a certificate is within earlyRenewalHours of its end, the next
 * preview/up shows readyForRenewal and replaces it.
 */
import { DiffResult } from "@pulumi/pulumi/provider";
import { changedKeys, WireMap } from "../common/values";
import { readyForRenewal } from "./x509";

export const CERT_DEFAULTS: WireMap = {
    earlyRenewalHours: 0,
    isCaCertificate: false,
    maxPathLength: 0,
    setSubjectKeyId: false,
};

export function withCertDefaults(news: WireMap, extra: WireMap = {}): WireMap {
    const out: WireMap = { ...news };
    for (const [k, v] of Object.entries({ ...CERT_DEFAULTS, ...extra })) {
        if (out[k] === undefined || out[k] === null) out[k] = v;
    }
    return out;
}

export function certDiff(olds: WireMap, news: WireMap, inputKeys: readonly string[]): DiffResult {
    const changed = changedKeys(olds, news, inputKeys);
    const replaces = changed.filter((k) => k !== "earlyRenewalHours");
    if (readyForRenewal(olds.validityEndTime, news.earlyRenewalHours)) replaces.push("readyForRenewal");
    if (changed.length === 0 && replaces.length === 0) return { changes: false };
    return replaces.length > 0 ? { changes: true, replaces } : { changes: true };
}
