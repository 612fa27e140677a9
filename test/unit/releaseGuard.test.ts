import { decideRelease, recordRelease, ReleaseIdReusedError } from "../../lib/releaseGuard";

const content = (tag: string) => ({ compose: '{"services":{}}', images: { api: `r/api:${tag}` }, files: [] });
const prev = { releaseId: "v2", previousReleaseId: "v1", releases: { v1: { hash: "h1", content: content("v1") }, v2: { hash: "h2", content: content("v2") } } };

test("first deploy, a re-run of the current release, a forward deploy", () => {
    expect(decideRelease(undefined, "v1", "h1")).toEqual({ kind: "first", source: "config" });
    expect(decideRelease(prev, "v2", "h2")).toEqual({ kind: "same", previousReleaseId: "v1", source: "config" });
    expect(decideRelease(prev, "v3", "h3")).toEqual({ kind: "forward", previousReleaseId: "v2", source: "config", notice: "Deploying v3 (current: v2)." });
});

test("rollback to an earlier ID with the same content deploys the configured content and warns the database stays", () => {
    const d = decideRelease(prev, "v1", "h1");
    expect(d).toMatchObject({ kind: "rollback", previousReleaseId: "v2", source: "config" });
    expect(d.notice).toMatch(/Rolling back from v2 to v1: .*The database is NOT restored/);
});

test("rollback by release ID alone: the content comes from the stack's record of it", () => {
    expect(decideRelease(prev, "v1", "h2-configured-now")).toMatchObject({ kind: "rollback", source: "record", notice: expect.stringMatching(/come from this stack's record/) });
    // The configured app may even be invalid: the recorded one is deployed.
    expect(decideRelease(prev, "v1", undefined)).toMatchObject({ kind: "rollback", source: "record" });
});

test("the current release ID with other content is refused before anything changes", () => {
    expect(() => decideRelease(prev, "v2", "other")).toThrow(ReleaseIdReusedError);
    expect(() => decideRelease(prev, "v2", "other")).toThrow(/release v2 was deployed before with different content \(hash h2, now other\): release IDs are immutable.*Nothing was changed/);
});

test("after a rollback by ID, the config may describe the next release: the current one keeps running as recorded", () => {
    const rolledBack = { ...prev, releaseId: "v1", releaseSource: "record" as const };
    expect(decideRelease(rolledBack, "v1", "h3-configured")).toMatchObject({ kind: "same", source: "record", notice: expect.stringMatching(/runs as this stack recorded it/) });
    // A release deployed from the config, whose content then changes, is refused.
    expect(() => decideRelease({ ...rolledBack, releaseSource: "config" }, "v1", "h3-configured")).toThrow(ReleaseIdReusedError);
});

test("an earlier ID whose content is no longer recorded is refused unless the config matches it", () => {
    const old = { ...prev, releases: { v0: { hash: "h0" }, ...prev.releases } };
    expect(() => decideRelease(old, "v0", "other")).toThrow(/its content is no longer recorded/);
    expect(decideRelease(old, "v0", "h0")).toMatchObject({ kind: "rollback", source: "config" });
});

test("records of an older onevm (a hash of its own rendering) never refuse: the configured content is taken", () => {
    const legacy = { releaseId: "v2", releases: { v1: "old-render-1", v2: "old-render-2" } };
    expect(decideRelease(legacy, "v2", "new")).toMatchObject({ kind: "same", source: "config" });
    expect(decideRelease(legacy, "v1", "new")).toMatchObject({ kind: "rollback", source: "config" });
});

test("the record keeps deploy order and the content of the newest releases only", () => {
    const r1 = recordRelease(undefined, "v1", { hash: "h1", content: content("v1") }, 2);
    const r2 = recordRelease(r1, "v2", { hash: "h2", content: content("v2") }, 2);
    const r3 = recordRelease(r2, "v3", { hash: "h3", content: content("v3") }, 2);
    expect(Object.keys(r3)).toEqual(["v1", "v2", "v3"]);
    expect(r3.v1).toEqual({ hash: "h1" });
    expect(r3.v2.content).toEqual(content("v2"));
    // A rollback to v1 moves it to the end again.
    const back = recordRelease(r3, "v1", { hash: "h1", content: content("v1") }, 2);
    expect(Object.keys(back)).toEqual(["v2", "v3", "v1"]);
    expect(back.v2).toEqual({ hash: "h2" });
    expect(recordRelease({ v0: "legacy" }, "v1", { hash: "h1" }, 5)).toEqual({ v0: { hash: "legacy" }, v1: { hash: "h1" } });
});
