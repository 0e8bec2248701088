import { defineConfig } from "vitest/config";

// web/scripts/interop.sh: the TypeScript side of tests whose other side is the Rust SDK
// against a real server (crates/cli/tests/it/web.rs starts both).
export default defineConfig({
  test: {
    include: ["interop/**/*.test.ts"],
    reporters: ["default"],
    testTimeout: 120_000,
  },
});
