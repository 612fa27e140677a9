/** Unit tests run under Pulumi mocks in seconds; e2e tests drive the real engine against sandbox VMs. */
const tsJest = { "^.+\\.ts$": "ts-jest" };
module.exports = {
    projects: [
        { displayName: "unit", testEnvironment: "node", transform: tsJest, testMatch: ["<rootDir>/test/unit/**/*.test.ts", "<rootDir>/test/do-api/**/*.test.ts"] },
        { displayName: "e2e", testEnvironment: "node", transform: tsJest, testMatch: ["<rootDir>/test/e2e/**/*.test.ts"] },
    ],
};
