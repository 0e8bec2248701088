// The connection and its sessions against the in-memory server of fakenet.ts: the token
// lifecycle (close 4401, the terminal `unauthorized` state, a token function's one fresh retry),
// several sessions over one socket, where a change came from, and the request methods
// (comments, suggestions, roles, previews).
import { describe, expect, it } from "vitest";
import {
  AuthError,
  type ConnectionOptions,
  type JsonObject,
  MontageClient,
  MontageConnection,
  ServerError,
  type StatusEvent,
  newDocument,
} from "../src/index.js";
import { FakeClock, FakeNet, fakeClient, fakeJwt, settle, tick } from "./fakenet.js";

const client = fakeClient;

/** A server that refuses tokens whose `exp` is at or before `now` (seconds), as `montage serve` does. */
function expiringServer(now: { s: number }) {
  const net = new FakeNet(newDocument());
  net.checkToken = (t) => {
    if (t === null) return "missing token";
    const exp = Number(JSON.parse(Buffer.from(t.split(".")[1] ?? "", "base64url").toString() || "{}")["exp"]);
    if (!Number.isFinite(exp)) return "invalid token";
    return exp <= now.s ? "token expired" : null;
  };
  return net;
}

describe("the token lifecycle", () => {
  it("a fixed token the server refuses ends in `unauthorized` at once: one attempt, ready() rejects", async () => {
    const now = { s: 100 };
    const net = expiringServer(now);
    const clock = new FakeClock();
    let sockets = 0;
    const factory = net.factory("alice");
    const c = client(net, clock, "alice", { token: fakeJwt("alice", 50), socket: (url) => (sockets++, factory(url)) });
    const states: StatusEvent[] = [];
    c.on("status", (s) => states.push(s));
    const ready = c.ready();
    net.drain();
    const err = await ready.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect(err).toMatchObject({ code: "unauthorized", reason: "token expired", closeCode: 4401 });
    expect(c.connectionState).toBe("unauthorized");
    expect(states.at(-1)).toMatchObject({ state: "unauthorized", closeCode: 4401, closeReason: "token expired" });
    expect(clock.tasks.size).toBe(0); // no retry scheduled
    expect(sockets).toBe(1);
    await expect(c.ready()).rejects.toBe(c.authError);
  });

  it("a missing token is refused the same way, with the server's reason", async () => {
    const net = expiringServer({ s: 0 });
    const c = client(net, new FakeClock(), "anon", { token: undefined });
    const ready = c.ready();
    net.drain();
    await expect(ready).rejects.toMatchObject({ reason: "missing token" });
  });

  it("with a token function, a 4401 fetches a fresh token and retries once, at once", async () => {
    const now = { s: 100 };
    const net = expiringServer(now);
    const clock = new FakeClock();
    const tokens = [fakeJwt("alice", 50), fakeJwt("alice", 1000)];
    let calls = 0;
    const c = client(net, clock, "alice", { token: async () => tokens[Math.min(calls++, 1)]! });
    const states: StatusEvent[] = [];
    c.on("status", (s) => states.push(s));
    await settle(net);
    expect(c.connectionState).toBe("online");
    expect(calls).toBe(2);
    expect(states).toContainEqual(expect.objectContaining({ state: "connecting", closeCode: 4401, closeReason: "token expired" }));
    expect(clock.tasks.size).toBe(0);
  });

  it("two 4401s in a row with no join between are terminal; after a join the retry is earned again", async () => {
    const now = { s: 100 };
    const net = expiringServer(now);
    const clock = new FakeClock();
    let exp = 1000;
    let calls = 0;
    const c = client(net, clock, "alice", { token: () => (calls++, fakeJwt("alice", exp)) });
    await settle(net);
    expect(c.connectionState).toBe("online");

    // Later the token expires while connected: the server closes with 4401; a fresh one works.
    net.closeUnauthorized(net.conns[0]!, "token expired");
    await settle(net);
    expect(c.connectionState).toBe("online");
    expect(calls).toBe(2);

    // Then the backend only hands out dead tokens: one retry, then stop.
    exp = 10;
    const unauthorized: AuthError[] = [];
    c.on("unauthorized", (e) => unauthorized.push(e));
    net.closeUnauthorized(net.conns[0]!, "token expired");
    await settle(net);
    expect(calls).toBe(3);
    expect(c.connectionState).toBe("unauthorized");
    expect(unauthorized).toMatchObject([{ reason: "token expired" }]);
    expect(clock.tasks.size).toBe(0);

    exp = 1000;
    c.connect();
    await settle(net);
    expect(c.connectionState).toBe("online");
  });

  it("an edit made while the token expired is resent after the refresh, applied once", async () => {
    const now = { s: 100 };
    const net = expiringServer(now);
    const clock = new FakeClock();
    let calls = 0;
    const c = client(net, clock, "alice", { token: () => fakeJwt("alice", 200 + 100 * calls++) });
    await settle(net);
    c.submit([{ op: "set", path: ["title"], value: "before" }]);
    const conn = net.conns[0]!;
    net.deliverToServer(conn); // applied; its ack is lost with the socket
    now.s = 250;
    net.closeUnauthorized(conn, "token expired");
    c.submit([{ op: "set", path: ["meta", "during"], value: true }]);
    await settle(net);
    expect(c.connectionState).toBe("online");
    expect(c.pendingCount).toBe(0);
    expect(net.history.map((e) => e.seq)).toEqual([1, 2]);
    expect(net.doc).toMatchObject({ title: "before", meta: { during: true } });
    expect(c.doc).toEqual(net.doc);
  });
});

describe("several sessions over one connection", () => {
  function connection(net: FakeNet, user: string, extra: Partial<ConnectionOptions> = {}) {
    return new MontageConnection({ url: "ws://montage.test/v1/ws", token: fakeJwt(user), socket: net.factory(user), timers: new FakeClock(), random: () => 0, ...extra });
  }

  it("measured downloads become quality hints when they cross a tier, and again after a reconnect", async () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    const conn = connection(net, "alice", { timers: clock });
    conn.session("poster");
    net.drain();
    const hints = () => net.log.filter((m) => m["type"] === "quality").map((m) => m["downlink_mbps"]);
    expect(conn.reportDownload(2_000, 1)).toBeNull(); // too small to say anything
    expect(conn.reportDownload(250_000, 1000)).toBe(2); // 2 Mbit/s: poor
    conn.reportDownload(250_000, 1000); // still poor: nothing new to say
    net.drain();
    expect(hints()).toEqual([2]);
    expect(conn.reportDownload(1_000_000, 100)).toBe(41); // smoothed: good
    expect(conn.reportDownload(1_000_000, 100)).toBe(60.5); // excellent
    net.drain();
    expect(hints()).toEqual([2, 41, 60.5]);
    expect(conn.downlinkMbps).toBe(60.5);
    net.drop(net.conns[0]!);
    clock.runNext();
    net.drain();
    expect(hints()).toEqual([2, 41, 60.5, 60.5]);
  });

  it("each session joins on the one socket, edits its own document, and hears only its own messages", async () => {
    const net = new FakeNet(newDocument());
    const conn = connection(net, "alice");
    const a = conn.session("poster");
    const b = conn.session("trailer", { clientId: "tab-b" });
    expect(conn.session("poster")).toBe(a);
    net.drain();
    await Promise.all([a.ready(), b.ready()]);
    expect(net.conns).toHaveLength(1);
    expect(conn.sessions).toEqual(["poster", "trailer"]);
    const bob = new MontageConnection({ url: "ws://montage.test/v1/ws", token: fakeJwt("bob"), socket: net.factory("bob"), timers: new FakeClock() }).session("trailer");
    net.drain();
    a.submit([{ op: "set", path: ["title"], value: "Poster" }]);
    b.submit([{ op: "set", path: ["title"], value: "Trailer" }]);
    net.drain();
    expect(net.rooms.get("poster")!.doc).toMatchObject({ title: "Poster" });
    expect(net.rooms.get("trailer")!.doc).toMatchObject({ title: "Trailer" });
    expect((bob.doc as JsonObject)["title"]).toBe("Trailer");
    expect(a.version).toBe(1);
    expect(b.version).toBe(1);
    // Answers find their session by rid: a refused edit in one is not the other's.
    net.refuseKey = "meta";
    const rejected: unknown[] = [];
    a.on("rejected", (r) => rejected.push(r));
    b.submit([{ op: "set", path: ["meta", "x"], value: 1 }]);
    net.drain();
    expect(rejected).toEqual([]);
    expect((b.doc as JsonObject)["meta"]).toEqual({});
  });

  it("leaving one session keeps the other joined; the socket's loss rejoins both", () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    const conn = connection(net, "alice", { timers: clock });
    const a = conn.session("one");
    const b = conn.session("two");
    net.drain();
    a.leave();
    net.drain();
    expect(a.connectionState).toBe("offline");
    expect(b.connectionState).toBe("online");
    expect(net.conns[0]!.sessions).toEqual(new Set(["two"]));
    a.connect();
    net.drain();
    expect(a.connectionState).toBe("online");
    net.drop(net.conns[0]!);
    expect([a.connectionState, b.connectionState]).toEqual(["offline", "offline"]);
    clock.runNext();
    net.drain();
    expect([a.connectionState, b.connectionState]).toEqual(["online", "online"]);
    expect(net.conns).toHaveLength(1);
    expect(net.log.filter((m) => m["type"] === "join").map((m) => [m["session"], m["since"]])).toEqual([
      ["one", undefined],
      ["two", undefined],
      ["one", 0],
      ["one", 0],
      ["two", 0],
    ]);
  });

  it("a denied session stops alone; the connection and its other sessions go on", async () => {
    const net = new FakeNet(newDocument());
    net.restrict("bob");
    const conn = connection(net, "alice");
    const mine = conn.session("s1");
    net.drain();
    await expect(mine.ready()).rejects.toMatchObject({ reason: "forbidden" });
    expect(conn.connectionState).toBe("online");
    expect(net.conns).toHaveLength(1);
  });
});

describe("notifications", () => {
  const mention = { id: "n1", kind: "mention", session: "poster", actor: "bob", time: 1700000000000, read: false, comment_id: "c9", count: 1 };

  it("every connection of the user hears its `notification`, joined to that session or not; others don't", async () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    const bare = new MontageConnection({ url: "ws://montage.test/v1/ws", token: fakeJwt("alice"), socket: net.factory("alice"), timers: clock });
    const inTrailer = client(net, clock, "alice", { session: "trailer" });
    const bob = client(net, clock, "bob", { session: "poster" });
    await settle(net);
    const heard = { bare: [] as unknown[], trailer: [] as unknown[], bob: [] as unknown[], sessionMessages: [] as unknown[] };
    bare.on("notification", (n) => heard.bare.push(n));
    inTrailer.connection.on("notification", (n) => heard.trailer.push(n));
    bob.connection.on("notification", (n) => heard.bob.push(n));
    inTrailer.on("message", (m) => heard.sessionMessages.push(m));

    net.push("alice", { type: "notification", notification: mention });
    // A reply burst in one thread: the same item again, updated.
    const grouped = { id: "n2", kind: "reply", session: "trailer", actor: "carol", time: 1700000001000, read: false, comment_id: "c12", count: 2 };
    net.push("alice", { type: "notification", notification: grouped });
    net.drain();
    expect(heard.bare).toEqual([mention, grouped]);
    expect(heard.trailer).toEqual([mention, grouped]);
    expect(heard.bob).toEqual([]);
    // Not a session's message, even when the item is about the open session.
    expect(heard.sessionMessages).toEqual([]);
  });

  it("an item without an id, kind or session is dropped; a kind unknown to this SDK is kept", async () => {
    const net = new FakeNet(newDocument());
    const conn = new MontageConnection({ url: "ws://montage.test/v1/ws", token: fakeJwt("alice"), socket: net.factory("alice"), timers: new FakeClock() });
    net.drain();
    const heard: unknown[] = [];
    const raw: unknown[] = [];
    conn.on("notification", (n) => heard.push(n));
    conn.on("message", (m) => raw.push(m));
    net.push("alice", { type: "notification", notification: { kind: "mention", session: "s" } });
    net.push("alice", { type: "notification" });
    net.push("alice", { type: "notification", notification: { id: "n3", kind: "poke", session: "s", actor: "bob", time: 5, read: true } });
    net.drain();
    expect(raw).toHaveLength(3);
    // `count` is 1 when the server leaves it out.
    expect(heard).toEqual([{ id: "n3", kind: "poke", session: "s", actor: "bob", time: 5, read: true, count: 1 }]);
  });
});

describe("change origins", () => {
  it("the joined state is `load`, my edits `local`, others' `remote`", () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    const a = client(net, clock, "alice");
    const origins: [string, boolean, string | undefined][] = [];
    a.on("change", (e) => origins.push([e.origin, e.local, e.user]));
    const b = client(net, clock, "bob");
    net.drain();
    a.submit([{ op: "set", path: ["title"], value: "a" }]);
    b.submit([{ op: "set", path: ["meta", "b"], value: 1 }]);
    net.drain();
    a.undo();
    expect(origins).toEqual([
      ["load", false, undefined],
      ["local", true, undefined],
      ["remote", false, "bob"],
      ["local", true, undefined],
    ]);
  });
});

describe("requests", () => {
  it("comments, replies and resolve resolve with the server's comment; others get events", async () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    const a = client(net, clock, "alice");
    const b = client(net, clock, "bob");
    net.drain();
    const added: string[] = [];
    b.on("commentAdded", (c) => added.push(c.content));
    const pending = a.addComment({ content: "crop this", annotations: [{ region: { x: 1, y: 2, w: 3, h: 4 } }] });
    net.drain();
    const c1 = await pending;
    expect(c1).toMatchObject({ id: "c1", author_id: "alice", content: "crop this", annotations: [{ region: { x: 1, y: 2, w: 3, h: 4 } }] });
    const r = b.reply(c1.id, "done");
    net.drain();
    expect(await r).toMatchObject({ parent_id: "c1", author_id: "bob" });
    const resolved = a.resolveComment(c1.id);
    net.drain();
    expect(await resolved).toMatchObject({ id: "c1", resolved: true });
    expect(added).toEqual(["crop this", "done"]); // everyone, the author too
    const bad = a.addComment({ content: "" });
    net.drain();
    const e = await bad.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ServerError);
    expect(e).toMatchObject({ code: "bad_request" });
  });

  it("a suggestion is accepted as an edit credited to its author", async () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    const a = client(net, clock, "alice");
    const b = client(net, clock, "bob");
    net.drain();
    const s = b.suggest([{ op: "set", path: ["title"], value: "Dawn" }], "better title");
    net.drain();
    const sg = await s;
    expect(sg).toMatchObject({ status: "pending", note: "better title", base: 0 });
    const updates: string[] = [];
    b.on("suggestionUpdated", (x) => updates.push(x.status));
    const accepted = a.acceptSuggestion(sg.id);
    net.drain();
    expect(await accepted).toMatchObject({ status: "accepted", version: 1, credited: "bob" });
    expect(updates).toEqual(["accepted"]);
    expect((a.doc as JsonObject)["title"]).toBe("Dawn");
    expect((b.doc as JsonObject)["title"]).toBe("Dawn");
  });

  it("previews: subscribe resolves with the first, with an absolute href; the URL helper names the tier", async () => {
    const net = new FakeNet(newDocument());
    const a = client(net, new FakeClock(), "alice", { session: "my film" });
    net.drain();
    const p = a.subscribePreviews("poor");
    net.drain();
    expect(await p).toEqual({
      session: "my film",
      version: 0,
      tier: "poor",
      url: "/v1/sessions/my%20film/preview?tier=poor&v=0",
      href: "http://montage.test/v1/sessions/my%20film/preview?tier=poor&v=0",
    });
    expect(a.previewUrl("good")).toBe("http://montage.test/v1/sessions/my%20film/preview?tier=good");
  });

  it("a timeline subscription follows a user's playhead: frames carry `t`", async () => {
    const net = new FakeNet(newDocument());
    const a = client(net, new FakeClock(), "alice", { session: "reel" });
    net.drain();
    const p = a.subscribeTimeline("bob", "fair");
    net.drain();
    expect(await p).toEqual({
      session: "reel",
      version: 0,
      tier: "fair",
      t: 0,
      url: "/v1/sessions/reel/frame?t=0&tier=fair&v=0",
      href: "http://montage.test/v1/sessions/reel/frame?t=0&tier=fair&v=0",
    });
  });

  it("setRole resolves once the role changed; a request offline or cut by a drop rejects", async () => {
    const net = new FakeNet(newDocument());
    net.restrict("alice");
    const a = client(net, new FakeClock(), "alice");
    net.drain();
    const set = a.setRole("dave", "editor");
    net.drain();
    await set;
    expect(a.participants).toContainEqual({ user: "dave", role: "editor", online: false });
    const cut = a.addComment({ content: "lost?" });
    net.drop(net.conns[0]!);
    await expect(cut).rejects.toMatchObject({ code: "disconnected" });
    await expect(a.addComment({ content: "offline" })).rejects.toMatchObject({ code: "offline" });
  });
});
