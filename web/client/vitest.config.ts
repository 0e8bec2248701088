import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    reporters: ["default"],
    // The machines are shared and loaded: generous limits, no timing assertions.
    testTimeout: 120_000,
  },
});
