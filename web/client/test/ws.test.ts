// MontageClient over real WebSockets: the `ws` package on both ends (Node 20 has no global
// WebSocket), the in-memory server logic of fakenet.ts behind a ws server on port 0. Like
// `montage serve`, the server takes the upgrade of a connection whose token is missing, invalid
// or expired, sends `unauthorized` and closes with 4401 and the reason; it also closes an open
// socket with 4401 when its token expires.
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { AuthError, type JsonObject, MontageClient, deepEqual, newDocument, tokenClaims, tokenSubject } from "../src/index.js";
import { FakeNet, fakeJwt } from "./fakenet.js";

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

/** Why the server refuses `token` now, or null (plain user names are taken as they are). */
function refusal(token: string | null): string | null {
  if (token === null) return "missing token";
  if (!token.includes(".")) return null;
  if (tokenSubject(token) === null) return "invalid token";
  return Number(tokenClaims(token)?.["exp"]) * 1000 <= Date.now() ? "token expired" : null;
}

async function serve(net: FakeNet) {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  const sockets = new Map<WebSocket, string>();
  let connections = 0;
  wss.on("connection", (ws, req) => {
    connections++;
    const token = new URL(req.url ?? "/", "http://x").searchParams.get("token");
    expect(ws.protocol).toBe("montage.v1.json");
    const refused = refusal(token);
    if (refused !== null) {
      ws.send(JSON.stringify({ type: "error", code: "unauthorized", message: refused }));
      ws.close(4401, refused);
      return;
    }
    const user = (token?.includes(".") ? tokenSubject(token) : token) ?? "anon";
    sockets.set(ws, user);
    const conn = net.attach(user, (d) => ws.send(d));
    ws.on("message", (d) => conn.receive(String(d)));
    ws.on("close", () => {
      sockets.delete(ws);
      conn.closed();
    });
    // At the token's expiry the server closes the socket (the client did not send `auth`).
    const exp = token?.includes(".") ? Number(tokenClaims(token)?.["exp"]) * 1000 : NaN;
    if (Number.isFinite(exp)) {
      const t = setTimeout(() => ws.close(4401, "token expired"), Math.max(0, exp - Date.now()));
      ws.on("close", () => clearTimeout(t));
    }
  });
  cleanup.push(() => wss.close());
  const port = (wss.address() as AddressInfo).port;
  return { url: `ws://127.0.0.1:${port}/v1/ws`, sockets, connections: () => connections };
}

describe("MontageClient over the ws package", () => {
  it("two clients edit, one loses its connection and comes back, both converge", async () => {
    const net = new FakeNet(newDocument());
    const { url, sockets } = await serve(net);
    const mk = (user: string) => {
      const c = new MontageClient({ url, token: user, session: "s", socket: WebSocket, backoff: { initialMs: 20, maxMs: 100 } });
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

  it("a bad token ends in `unauthorized` within a second: one connection, no retries", async () => {
    const net = new FakeNet(newDocument());
    const server = await serve(net);
    const c = new MontageClient({ url: server.url, token: "not.a.jwt", session: "s", socket: WebSocket });
    cleanup.push(() => c.disconnect());
    // No wall-clock bound (shared machines): "within a second" holds because nothing waits
    // for a backoff — the first close is final.
    const err = await c.ready().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect(err).toMatchObject({ reason: "invalid token", closeCode: 4401 });
    expect(c.connectionState).toBe("unauthorized");
    await new Promise((r) => setTimeout(r, 600)); // past the first backoff: nothing tries again
    expect(server.connections()).toBe(1);
  });

  it("an expiring token is refreshed through the callback without losing an edit", async () => {
    const net = new FakeNet(newDocument());
    const server = await serve(net);
    const issued: number[] = [];
    // The first token lives one to two seconds (never less: a token that expired before the
    // first socket opened would be refused there, before the listener below is on); the ones
    // after it an hour.
    const token = async () => {
      const exp = Math.floor(Date.now() / 1000) + (issued.length === 0 ? 2 : 3600);
      issued.push(exp);
      return fakeJwt("alice", exp);
    };
    const c = new MontageClient({ url: server.url, token, session: "s", socket: WebSocket });
    cleanup.push(() => c.disconnect());
    await c.ready();
    c.submit([{ op: "set", path: ["title"], value: "before" }]);
    const closes: (number | undefined)[] = [];
    c.on("status", (s) => {
      if (s.closeCode !== undefined && s.state !== "online") {
        closes.push(s.closeCode);
        // Edited while the socket is down for its token.
        if (closes.length === 1) c.submit([{ op: "set", path: ["meta", "during"], value: true }]);
      }
    });
    await until(() => closes.length > 0 && c.connectionState === "online" && c.pendingCount === 0, "the refresh", 10_000);
    expect(closes[0]).toBe(4401);
    expect(issued).toHaveLength(2);
    expect(server.connections()).toBe(2);
    await until(() => deepEqual(c.doc, net.doc), "convergence");
    expect(net.doc).toMatchObject({ title: "before", meta: { during: true } });
    expect(net.history).toHaveLength(2);
  });
});
