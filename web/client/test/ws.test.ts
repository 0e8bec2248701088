// MontageClient over real WebSockets: the `ws` package on both ends (Node 20 has no global
// WebSocket), the in-memory server logic of fakenet.ts behind a ws server on port 0.
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { type JsonObject, MontageClient, type SocketLike, deepEqual, newDocument } from "../src/index.js";
import { FakeNet } from "./fakenet.js";

const cleanup: (() => void)[] = [];
afterEach(() => {
  while (cleanup.length) cleanup.pop()!();
});

function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

async function serve(net: FakeNet) {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  const sockets = new Map<WebSocket, string>();
  wss.on("connection", (ws, req) => {
    const user = new URL(req.url ?? "/", "http://x").searchParams.get("token") ?? "anon";
    sockets.set(ws, user);
    expect(ws.protocol).toBe("montage.v1.json");
    const conn = net.attach(user, (d) => ws.send(d));
    ws.on("message", (d) => conn.receive(String(d)));
    ws.on("close", () => {
      sockets.delete(ws);
      conn.closed();
    });
  });
  cleanup.push(() => wss.close());
  const port = (wss.address() as AddressInfo).port;
  return { url: `ws://127.0.0.1:${port}/v1/ws`, sockets };
}

const wsFactory = (url: string, protocols: string[]) => new WebSocket(url, protocols) as unknown as SocketLike;

describe("MontageClient over the ws package", () => {
  it("two clients edit, one loses its connection and comes back, both converge", async () => {
    const net = new FakeNet(newDocument());
    const { url, sockets } = await serve(net);
    const mk = (user: string) => {
      const c = new MontageClient({ url, token: user, session: "s", socket: wsFactory, backoff: { initialMs: 20, maxMs: 100 } });
      cleanup.push(() => c.disconnect());
      return c;
    };
    const a = mk("alice");
    const b = mk("bob");
    await Promise.all([a.ready(), b.ready()]);
    a.submit([{ op: "set", path: ["title"], value: "shared" }]);
    b.submit([{ op: "set", path: ["meta", "bob"], value: 1 }]);
    await until(() => a.version === 2 && b.version === 2, "both edits everywhere");

    const states: string[] = [];
    a.on("status", (s) => states.push(s.state));
    // Kill alice's connection from the server side, then edit while she is away.
    for (const [s, user] of sockets) if (user === "alice") s.terminate();
    a.submit([{ op: "set", path: ["meta", "alice"], value: 2 }]);
    await until(() => a.connectionState === "online" && a.pendingCount === 0 && b.version === 3, "reconnect");
    await until(() => deepEqual(a.doc, net.doc) && deepEqual(b.doc, net.doc), "convergence");
    expect(states).toContain("offline");
    expect(states).toContain("reconnecting");
    expect((net.doc as JsonObject)["meta"]).toEqual({ alice: 2, bob: 1 });
  });
});
