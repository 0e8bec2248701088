// The TypeScript half of crates/cli/tests/it/web.rs `a_typescript_client_shares_an_encrypted_
// session_with_a_rust_one`: a real server, a session the Rust SDK created encrypted and typed
// into. This client opens what Rust sealed (the title it typed), then types "2"s while the Rust
// client types "1"s at the same time (each rebases over the other's sealed edits on `conflict`),
// goes offline and types "3"s, comes back, and waits for Rust's " [rust done]"; it writes the
// title it ends with to $MONTAGE_RESULT for Rust to compare, and a comment Rust must read. Run by
// web/scripts/interop.sh with the environment below.
import { describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import WebSocket from "ws";
import { MontageClient, type JsonObject, textInsert } from "../src/index.js";

function env(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === "") throw new Error(`${name} is not set (crates/cli/tests/it/web.rs sets it)`);
  return v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

describe("a TypeScript client in a Rust client's encrypted session", () => {
  it("opens what Rust sealed and seals what Rust opens", async () => {
    const c = new MontageClient({
      url: env("MONTAGE_WS_URL"),
      token: env("MONTAGE_TOKEN"),
      session: env("MONTAGE_SESSION"),
      socket: WebSocket,
      keys: env("MONTAGE_SESSION_KEY"),
    });
    try {
      await c.ready();
      expect(c.encrypted).toBe(true);
      const title = () => String((c.doc as JsonObject | null)?.["title"] ?? "");
      await until(() => title().includes(env("MONTAGE_EXPECT")), "the Rust client's text");
      c.submit([textInsert(["title"], title().length, " + typed in TypeScript")]);
      // Typing while Rust types (it starts at our first "2").
      for (let i = 0; i < 30; i++) {
        c.submit([textInsert(["title"], title().length, "2")]);
        await sleep(20);
      }
      // Offline for a while, still typing; then back.
      c.disconnect();
      for (let i = 0; i < 15; i++) {
        c.submit([textInsert(["title"], title().length, "3")]);
        await sleep(20);
      }
      await sleep(500);
      c.connect();
      await c.ready();
      await c.addComment({ content: "a comment sealed in TypeScript" });
      await until(() => c.pendingCount === 0 && title().endsWith(" [rust done]"), "the acks and Rust's last edit");
      writeFileSync(env("MONTAGE_RESULT"), title());
    } finally {
      c.disconnect();
    }
  });
});
