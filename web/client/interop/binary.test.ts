// The TypeScript half of crates/cli/tests/it/web.rs `a_binary_typescript_client_and_a_json_rust_
// one_converge`: a real server, a session the Rust SDK (speaking JSON) created and typed into.
// This client speaks the binary subprotocol (`binary: binaryFrames`, montage.v1.proto): it reads the
// title Rust typed, then types "2"s while the Rust client types "1"s, goes offline and types
// "3"s, comes back, sends presence and a comment (which Rust must read), waits for Rust's
// presence and its " [rust done]", and writes the title it ends with to $MONTAGE_RESULT for Rust
// to compare. Run by `web/scripts/interop.sh binary` with the environment below.
import { describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import WebSocket from "ws";
import { type JsonObject, MontageClient, type SocketLike, textInsert } from "../src/index.js";
import { binaryFrames } from "../src/binary.js";

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

describe("a binary TypeScript client in a JSON Rust client's session", () => {
  it("edits, comments and sends presence over montage.v1.proto", async () => {
    const sockets: WebSocket[] = [];
    const frames = { binary: 0, text: 0 };
    const c = new MontageClient({
      url: env("MONTAGE_WS_URL"),
      token: env("MONTAGE_TOKEN"),
      session: env("MONTAGE_SESSION"),
      binary: binaryFrames,
      socket: (url, protocols) => {
        const ws = new WebSocket(url, protocols);
        ws.on("message", (_data, isBinary) => void (isBinary ? frames.binary++ : frames.text++));
        sockets.push(ws);
        return ws as unknown as SocketLike;
      },
    });
    try {
      await c.ready();
      expect(sockets.at(-1)!.protocol).toBe("montage.v1.proto");
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
      expect(sockets.at(-1)!.protocol).toBe("montage.v1.proto");
      c.setPresence({ from: "typescript", big: 2 ** 40, list: [1.5, null, true, "ü"] });
      await c.addComment({ content: "a comment from a binary client", annotations: [{ region: { x: 1, y: 2, w: 3.5, h: 4 }, drawing: { strokes: [[1, 2]] } }] });
      await until(() => c.pendingCount === 0 && title().endsWith(" [rust done]"), "the acks and Rust's last edit");
      await until(() => (c.presence.get("alice") as JsonObject | undefined)?.["from"] === "rust", "the Rust client's presence");
      expect(c.presence.get("alice")).toEqual({ from: "rust", at: [0.25, -3] });
      expect(frames.text).toBe(0);
      expect(frames.binary).toBeGreaterThan(50);
      writeFileSync(env("MONTAGE_RESULT"), title());
    } finally {
      c.disconnect();
    }
  });
});
