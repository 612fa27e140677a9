/**
 * The remote scripts on their own, on a real sandbox VM (test/remote/run.sh): lock
 * contention, SIGKILL at every activation phase, backups (corrupt, truncated, no space,
 * retention), reboot through the unit, uninstall. Each of its checks prints PASS/FAIL.
 */
import { spawnSync } from "child_process";
import { ROOT } from "./harness";

jest.setTimeout(1_800_000);

test("test/remote/run.sh: every remote-script check passes on a fresh sandbox", () => {
    const run = spawnSync("bash", ["test/remote/run.sh"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 1_700_000 });
    // On failure, stdout's summary names each failed check; stderr holds their log tails.
    const failureLogs = run.stdout.includes("RESULT: PASS") ? "" : `\n--- stderr (tail) ---\n${run.stderr.slice(-8000)}`;
    expect(`${run.stdout}${failureLogs}`).toContain("RESULT: PASS");
    expect(run.status).toBe(0);
});
