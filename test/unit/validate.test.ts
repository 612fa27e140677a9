import * as v from "../../lib/validate";

const ok = <T>(rule: v.Rule<T>, ...values: T[]) => values.forEach((x) => expect(rule(x)).toBeUndefined());
const bad = <T>(rule: v.Rule<T>, ...values: T[]) => values.forEach((x) => expect(rule(x)).toEqual(expect.any(String)));

test("release IDs: letters, digits, . _ -; no slash, dot-dot, space or shell metacharacters", () => {
    ok(v.releaseId, "v1", "v2026.02.09.1", "2026-11-22_rc1", "a");
    bad(v.releaseId, "", "../etc", "v1/../../x", "a/b", "v..1", "v 1", "v1;rm", "$(id)", "`id`", "v1&", "-v1", ".v1", "x".repeat(65), "v1\n");
});

test("CIDRs: v4 and v6 blocks without host bits", () => {
    ok(v.cidr, "203.0.113.7/32", "10.0.0.0/8", "0.0.0.0/0", "2001:db8::/32", "::/0", "2001:db8::1/128");
    bad(v.cidr, "203.0.113.7", "203.0.113.7/33", "256.1.1.1/32", "10.0.0.1/8", "2001:db8::1/32", "2001:db8:::/32", "abc/1", "1.2.3/24");
});

test("cron schedules: five numeric fields within range", () => {
    ok(v.cronSchedule, "17 3 * * *", "*/15 * * * *", "0 */6 * * 1-5", "0 0 1,15 * 0", "30 2 * * 7");
    bad(v.cronSchedule, "", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "5-1 * * * *", "*/0 * * * *", "@daily", "0 3 * * MON", "0 3 * * *; rm -rf /");
});

test("image references: lowercase repository, pinned tag or digest", () => {
    ok(
        v.imageRef,
        "onevm/bot-api:v1",
        "registry.digitalocean.com/team/bot-api:2026.11.22",
        "ghcr.io/org/app@sha256:" + "a".repeat(64),
        "localhost:5000/app:1.0",
        "postgres:17",
    );
    bad(v.imageRef, "onevm/bot-api", "Onevm/Bot:v1", "app:v1 ;rm", "app:$(id)", "app:", "app@sha256:short", ":v1", "a//b:v1");
});

test("app names, users, ports, env keys, host keys", () => {
    ok(v.appName, "bot", "haircut-bot", "b2");
    bad(v.appName, "b", "Bot", "bot-", "1bot", "bot_app", "bot/x", "a".repeat(32));
    ok(v.unixUser, "deploy", "_svc", "ci-user");
    bad(v.unixUser, "Deploy", "root;id", "1user", "");
    ok(v.port, 22, 2222, 65535);
    bad(v.port, 0, 65536, 22.5, -1);
    ok(v.envKey, "TELEGRAM_BOT_TOKEN", "_X", "A1");
    bad(v.envKey, "lower", "1ABC", "A-B", "A B", "");
    ok(v.sshPublicKey, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq8 root@vm", "ecdsa-sha2-nistp256 AAAAE2Vj");
    bad(v.sshPublicKey, "", "AAAAC3NzaC1lZDI1NTE5", "ssh-dss AAAAB3", "# 10.0.0.1:22 SSH-2.0-OpenSSH_9.6");
    // ssh-keyscan output and known_hosts lines: the host field is dropped, the ed25519 key pinned.
    ok(v.sshPublicKey, "10.0.0.1 ssh-ed25519 AAAAC3Nz", "[10.0.0.1]:2222 ssh-rsa AAAAB3\n[10.0.0.1]:2222 ssh-ed25519 AAAAC3Nz");
    expect(v.hostKeyLine("[10.0.0.1]:2222 ssh-rsa AAAAB3\n[10.0.0.1]:2222 ssh-ed25519 AAAAC3Nz\n")).toBe("ssh-ed25519 AAAAC3Nz");
    expect(v.hostKeyLine("ssh-ed25519 AAAAC3Nz root@vm")).toBe("ssh-ed25519 AAAAC3Nz");
    ok(v.hostName, "127.0.0.1", "vm.example.com", "localhost");
    bad(v.hostName, "-bad", "a b", "host;id", "");
    ok(v.intBetween(1, 7), 1, 7);
    bad(v.intBetween(1, 7), 0, 8, 1.5);
});

test("env values: anything but NUL", () => {
    ok(v.envValue, "", "a b", "q'\"$#=\\\n");
    bad(v.envValue, "a\0b");
});
