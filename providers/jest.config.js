// Unit tests for the provider plugins plus one test that drives the real Pulumi engine.
// Run with Node 22 first on PATH: npx jest -c providers/jest.config.js
/** @type {import('jest').Config} */
module.exports = {
  rootDir: __dirname,
  testEnvironment: "node",
  testMatch: ["<rootDir>/**/*.test.ts"],
  // isolatedModules makes ts-jest transpile only: type checking is `tsc --noEmit -p .`'s job.
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "<rootDir>/tsconfig.test.json" }] },
  testTimeout: 30000,
};
