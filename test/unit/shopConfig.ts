/** The unit tests' stack config for the fixture app in fixtures/shop, as full keys -> raw values. */
export const CANARY_STRIPE = "canary-stripe-0f9e'\"$# x";
export const CANARY_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\ncanary-ssh-77aa\n-----END OPENSSH PRIVATE KEY-----\n";
export const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyPinned";
export const COMPOSE_FILE = "test/unit/fixtures/shop/compose.yaml";

export function shopConfig(overrides: Record<string, string | undefined> = {}): Record<string, string> {
    const config: Record<string, string | undefined> = {
        "onevm:host": "127.0.0.1",
        "onevm:sshPort": "2222",
        "onevm:sshPrivateKey": CANARY_KEY,
        "onevm:hostPublicKey": HOST_KEY,
        "onevm:composeFile": COMPOSE_FILE,
        "onevm:releaseId": "v1",
        "onevm:images": JSON.stringify({ api: "registry.example.com/shop/api:v1", migrate: "registry.example.com/shop/api:v1" }),
        "onevm:web": JSON.stringify({ service: "api", port: 8000, hostPort: 8080, health: { path: "/healthz", json: { status: "ok" } } }),
        "onevm:migrate": "migrate",
        "onevm:database": JSON.stringify({ service: "postgres", clients: ["api", "migrate"] }),
        "onevm:secrets": JSON.stringify({ STRIPE_KEY: ["api"] }),
        "app:STRIPE_KEY": CANARY_STRIPE,
        "onevm:operator": "tester",
        ...overrides,
    };
    return Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

export const SHOP_SECRET_KEYS = ["onevm:sshPrivateKey", "app:STRIPE_KEY"];
