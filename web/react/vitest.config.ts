import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.{ts,tsx}"],
    // React renders into happy-dom's document (no browser needed for the unit tests).
    environment: "happy-dom",
    reporters: ["default"],
    testTimeout: 60_000,
  },
});
