import { decideRelease, ReleaseIdReusedError } from "../../lib/releaseGuard";

test("first deploy records the release", () => {
    expect(decideRelease(undefined, "v1", "h1")).toEqual({ kind: "first", releases: { v1: "h1" } });
});

test("forward deploy names the release it replaces", () => {
    const d = decideRelease({ releaseId: "v1", releases: { v1: "h1" } }, "v2", "h2");
    expect(d).toMatchObject({ kind: "forward", previousReleaseId: "v1", releases: { v1: "h1", v2: "h2" } });
    expect(d.notice).toBe("Deploying v2 (current: v1).");
});

test("setting an earlier release back is a rollback that says the database is not restored", () => {
    const d = decideRelease({ releaseId: "v2", previousReleaseId: "v1", releases: { v1: "h1", v2: "h2" } }, "v1", "h1");
    expect(d).toMatchObject({ kind: "rollback", previousReleaseId: "v2" });
    expect(d.notice).toMatch(/^Rolling back from v2 to v1: .* The database is NOT restored/);
});

test("re-running the current release keeps the recorded previous one", () => {
    expect(decideRelease({ releaseId: "v2", previousReleaseId: "v1", releases: { v1: "h1", v2: "h2" } }, "v2", "h2")).toMatchObject({
        kind: "same",
        previousReleaseId: "v1",
    });
});

test("a release ID reused with different content is refused before anything changes", () => {
    expect(() => decideRelease({ releaseId: "v2", releases: { v1: "h1", v2: "h2" } }, "v1", "other")).toThrow(ReleaseIdReusedError);
    expect(() => decideRelease({ releaseId: "v2", releases: { v1: "h1", v2: "h2" } }, "v1", "other")).toThrow(
        /release v1 was deployed before with different content .* release IDs are immutable/,
    );
});
