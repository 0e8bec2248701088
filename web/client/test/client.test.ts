// MontageClient against an in-memory server (test/fakenet.ts): convergence, offline edits and
// reconnect with resend, a lost ack, refusals, presence, undo/redo, connection state events,
// and random schedules with dropped connections.
import { describe, expect, it } from "vitest";
import { type Json, type JsonObject, MontageClient, type StatusEvent, deepEqual, newDocument } from "../src/index.js";
import { FakeClock, FakeNet } from "./fakenet.js";
import * as fuzz from "./fuzz.js";

function setup(n: number, doc: Json = newDocument()) {
  const net = new FakeNet(doc);
  const clock = new FakeClock();
  const clients = Array.from(
    { length: n },
    (_, i) =>
      new MontageClient({
        url: "ws://montage.test/v1/ws",
        token: `t${i}`,
        session: "s1",
        clientId: `c${i}`,
        socket: net.factory(`u${i}`),
        timers: clock,
        random: () => 0,
      }),
  );
  net.drain();
  return { net, clock, clients };
}

/** Runs timers (reconnects) and deliveries until nothing is left. */
function settle(net: FakeNet, clock: FakeClock) {
  for (let i = 0; i < 1000; i++) {
    net.drain();
    if (!clock.runNext()) {
      net.drain();
      return;
    }
  }
  throw new Error("did not settle");
}

function expectConverged(net: FakeNet, clients: MontageClient[]) {
  for (const c of clients) {
    expect(c.pendingCount, `${c.clientId} has nothing pending`).toBe(0);
    expect(c.version).toBe(net.history.length);
    if (!deepEqual(c.doc, net.doc)) {
      expect.fail(`${c.clientId} diverged\nclient: ${JSON.stringify(c.doc)}\nserver: ${JSON.stringify(net.doc)}`);
    }
  }
}

const title = (c: MontageClient) => (c.doc as JsonObject)["title"];

describe("MontageClient", () => {
  it("joins, edits optimistically, and converges with a concurrent editor", async () => {
    const { net, clients } = setup(2);
    const [a, b] = clients as [MontageClient, MontageClient];
    await a.ready();
    expect(a.connectionState).toBe("online");
    a.submit([{ op: "set", path: ["title"], value: "hello" }]);
    expect(title(a)).toBe("hello"); // optimistic
    b.submit([{ op: "set", path: ["meta", "k"], value: 1 }]);
    a.submit([{ op: "text", path: ["title"], text: (await import("../src/text.js")).TextOp.insert(5, " world") }]);
    expect(a.pendingCount).toBe(2);
    net.drain();
    expectConverged(net, clients);
    expect(title(b)).toBe("hello world");
    // One in flight, the rest composed: a's two edits went as two submissions at most.
    expect(net.log.filter((m) => m["type"] === "op" && m["from"] === "u0").length).toBeLessThanOrEqual(2);
  });

  it("queues edits offline, reports n pending, reconnects with backoff and resends once", () => {
    const { net, clock, clients } = setup(2);
    const [a, b] = clients as [MontageClient, MontageClient];
    const states: StatusEvent[] = [];
    a.on("status", (s) => states.push(s));
    net.online = false;
    net.drop(net.conns.find((c) => c.user === "u0")!);
    a.submit([{ op: "set", path: ["meta", "a1"], value: 1 }]);
    a.submit([{ op: "set", path: ["meta", "a2"], value: 2 }]);
    b.submit([{ op: "set", path: ["meta", "b"], value: 3 }]);
    net.drain();
    expect(a.connectionState).toBe("offline");
    expect(states.at(-1)).toMatchObject({ state: "offline", pending: 2 });
    // Retries back off while the network is down: 250, 500, 1000 ms …
    for (let i = 0; i < 3; i++) {
      clock.runNext();
      net.drain();
    }
    const delays = states.filter((s) => s.retryInMs !== undefined).map((s) => s.retryInMs);
    expect(delays.slice(0, 3)).toEqual([250, 500, 1000]);
    expect(states.some((s) => s.state === "reconnecting")).toBe(true);
    net.online = true;
    settle(net, clock);
    expect(a.connectionState).toBe("online");
    expect(states.at(-1)).toMatchObject({ state: "online", pending: 0 });
    expectConverged(net, clients);
    expect((net.doc as JsonObject)["meta"]).toEqual({ a1: 1, a2: 2, b: 3 });
    // Joined again with `since`.
    const joins = net.log.filter((m) => m["type"] === "join" && m["from"] === "u0");
    expect(joins.at(-1)).toMatchObject({ since: 0 });
  });

  it("a rejoin far behind with nothing in flight takes the missed edits as one compact delta", () => {
    const { net, clock, clients } = setup(2);
    const [a, b] = clients as [MontageClient, MontageClient];
    a.submit([{ op: "set", path: ["title"], value: "" }]);
    settle(net, clock);
    net.online = false;
    net.drop(net.conns.find((c) => c.user === "u0")!);
    for (let i = 0; i < 20; i++) {
      b.submit([{ op: "set", path: ["meta", `k${i}`], value: i }]);
      net.drain();
    }
    net.online = true;
    const remote: (string | undefined)[] = [];
    const errs: unknown[] = [];
    a.on("error", (e) => errs.push(e));
    a.on("change", (e) => {
      if (e.origin === "remote") remote.push(e.user);
    });
    settle(net, clock);
    expectConverged(net, clients);
    const joins = net.log.filter((m) => m["type"] === "join" && m["from"] === "u0");
    expect(errs).toEqual([]);
    expect(joins.at(-1)).toMatchObject({ since: 1, compact: true });
    // One change for twenty missed edits, of no single author.
    expect(remote).toEqual([""]);
    expect(a.version).toBe(21);
  });

  it("a lost ack: the resent edit is acked with its original version, not applied twice", () => {
    const { net, clock, clients } = setup(2);
    const [a, b] = clients as [MontageClient, MontageClient];
    a.submit([{ op: "ins", path: ["canvas", "layers", 0], value: { id: "L", kind: "text", text: "", x: 0, y: 0, size: 1, color: "#000" } }]);
    const conn = net.conns.find((c) => c.user === "u0")!;
    // The server takes the edit, then the connection dies before the ack arrives.
    net.deliverToServer(conn);
    expect(net.history.length).toBe(1);
    expect(conn.s2c.length).toBeGreaterThan(0); // the ack, never to arrive
    b.submit([{ op: "set", path: ["title"], value: "b" }]);
    net.drop(conn);
    a.submit([{ op: "set", path: ["meta", "later"], value: true }]);
    settle(net, clock);
    expectConverged(net, clients);
    expect(((net.doc as JsonObject)["canvas"] as JsonObject)["layers"]).toHaveLength(1);
    const resent = net.log.filter((m) => m["type"] === "op" && m["from"] === "u0" && m["seq"] === 1);
    expect(resent).toHaveLength(2);
    expect(resent[0]!["base"]).toBe(resent[1]!["base"]);
    expect(resent[0]!["ops"]).toEqual(resent[1]!["ops"]);
    expect(net.history.filter((e) => e.client === "c0")).toHaveLength(2); // the insert, once; the later set
  });

  it("an edit the server refuses is reported and the replica reloads the server's state", () => {
    const { net, clients } = setup(2);
    const [a] = clients as [MontageClient, MontageClient];
    const rejected: unknown[] = [];
    a.on("rejected", (r) => rejected.push(r));
    net.refuseKey = "meta";
    a.submit([{ op: "set", path: ["meta", "x"], value: 1 }]);
    a.submit([{ op: "set", path: ["title"], value: "built on it" }]);
    net.drain();
    expect(rejected).toMatchObject([{ seq: 1, code: "bad_request", lost: 2 }]);
    expectConverged(net, clients);
    expect(title(a)).toBe("");
    // The next edit uses a fresh seq (seq 1 is taken).
    net.refuseKey = undefined;
    a.submit([{ op: "set", path: ["title"], value: "again" }]);
    net.drain();
    expectConverged(net, clients);
    expect(net.log.filter((m) => m["type"] === "op").map((m) => m["seq"])).toEqual([1, 2]);
  });

  it("a rate-limited edit is sent again after retry_after_ms", () => {
    const { net, clock, clients } = setup(2);
    const [a] = clients as [MontageClient, MontageClient];
    const errors: unknown[] = [];
    a.on("error", (e) => errors.push(e));
    net.rateLimit = 2;
    a.submit([{ op: "set", path: ["title"], value: "eventually" }]);
    net.drain();
    expect(net.history).toHaveLength(0);
    expect(a.pendingCount).toBe(1);
    settle(net, clock);
    expectConverged(net, clients);
    expect(title(a)).toBe("eventually");
    expect(errors).toEqual([]);
    expect(net.log.filter((m) => m["type"] === "op")).toHaveLength(3);
  });

  it("an edit past the server's transform budget is rebased locally and sent again", () => {
    const { net, clients } = setup(2);
    const [a, b] = clients as [MontageClient, MontageClient];
    const rejected: unknown[] = [];
    a.on("rejected", (r) => rejected.push(r));
    net.transformBudget = 2;
    a.submit([
      { op: "set", path: ["meta", "x"], value: 1 },
      { op: "set", path: ["meta", "y"], value: 2 },
      { op: "set", path: ["meta", "z"], value: 3 },
    ]);
    b.submit([{ op: "set", path: ["title"], value: "b" }]);
    // Bob's edit is ordered first: Ann's three components behind it are 3 pairs, over budget.
    net.deliverToServer(net.conns.find((c) => c.user === "u1")!);
    net.drain();
    expectConverged(net, clients);
    expect(rejected).toEqual([]);
    const sent = net.log.filter((m) => m["type"] === "op" && m["from"] === "u0");
    expect(sent.map((m) => [m["base"], m["seq"]])).toEqual([
      [0, 1],
      [1, 2],
    ]);
    expect((net.doc as JsonObject)["meta"]).toEqual({ x: 1, y: 2, z: 3 });
    expect(title(a)).toBe("b");
  });

  it("sends presence, receives others', and re-sends it after a reconnect", () => {
    const { net, clock, clients } = setup(2);
    const [a, b] = clients as [MontageClient, MontageClient];
    const seen: unknown[] = [];
    b.on("presence", (p) => seen.push(p));
    a.setPresence({ cursor: { x: 1, y: 2 } });
    net.drain();
    expect(seen).toEqual([{ user: "u0", data: { cursor: { x: 1, y: 2 } } }]);
    expect(b.presence.get("u0")).toEqual({ cursor: { x: 1, y: 2 } });
    expect(b.participants.map((p) => p.user).sort()).toEqual(["u0", "u1"]);
    net.drop(net.conns.find((c) => c.user === "u0")!);
    net.drain();
    expect(b.participants.map((p) => p.user)).toEqual(["u1"]);
    settle(net, clock);
    expect(seen).toHaveLength(2);
    expect(b.presence.get("u0")).toEqual({ cursor: { x: 1, y: 2 } });
  });

  it("undo reverts only my edit, past others' later edits; redo restores it", () => {
    const { net, clients } = setup(2);
    const [a, b] = clients as [MontageClient, MontageClient];
    const layer = { id: "L", kind: "image", asset: "a", x: 0, y: 0, w: 10, h: 10 };
    a.submit([{ op: "ins", path: ["canvas", "layers", 0], value: layer }]);
    net.drain();
    a.submit([{ op: "rotate", path: ["canvas", "layers", 0], by: 90 }]);
    a.submit([{ op: "set", path: ["title"], value: "mine" }]);
    net.drain();
    // b inserts a layer before it and sets a filter on it, after a's edits.
    b.submit([{ op: "ins", path: ["canvas", "layers", 0], value: { ...layer, id: "M" } }]);
    b.submit([{ op: "adjust", path: ["canvas", "layers", 1], param: "contrast", value: 0.5 }]);
    net.drain();
    expect(a.undo()).toBe(true); // the title
    expect(a.undo()).toBe(true); // the rotation, now of layer 1
    net.drain();
    expectConverged(net, clients);
    const doc = net.doc as JsonObject;
    expect(doc["title"]).toBe("");
    const l = ((doc["canvas"] as JsonObject)["layers"] as JsonObject[])[1]!;
    expect(l["id"]).toBe("L");
    expect(l["rotation"]).toBe(0); // narrow inverse: rotate −90, not "delete rotation"
    expect(l["adjust"]).toEqual({ contrast: 0.5 }); // b's work stays
    expect(a.redo()).toBe(true);
    net.drain();
    expectConverged(net, clients);
    expect((((net.doc as JsonObject)["canvas"] as JsonObject)["layers"] as JsonObject[])[1]!["rotation"]).toBe(90);
    expect(b.undo()).toBe(true); // b's contrast
    net.drain();
    expectConverged(net, clients);
    expect((((net.doc as JsonObject)["canvas"] as JsonObject)["layers"] as JsonObject[])[1]!["adjust"]).toEqual({});
  });

  it("refuses to edit before the first join and rejects invalid edits without changing anything", () => {
    const net = new FakeNet(newDocument());
    const c = new MontageClient({ url: "ws://x/v1/ws", session: "s", socket: net.factory("u"), timers: new FakeClock() });
    expect(() => c.submit([{ op: "set", path: ["title"], value: "x" }])).toThrow(/not joined/);
    net.drain();
    expect(() => c.submit([{ op: "set", path: ["title"], value: 5 }])).toThrow(/shape/);
    expect(c.pendingCount).toBe(0);
    expect(c.doc).toEqual(newDocument());
  });

  for (const ranges of [false, true]) {
    const what = ranges ? ", edits queued for a client merging into ranges" : "";
    it(`converges over random schedules with dropped connections${what}`, () => {
      let merged = 0;
      for (let seed = ranges ? 1000 : 0; seed < (ranges ? 1060 : 60); seed++) {
        const r = new fuzz.Rng(seed);
        const n = 2 + r.below(3);
        const { net, clock, clients } = setup(n, fuzz.doc(r));
        net.mergeRanges = ranges;
        for (let k = 0; k < 150; k++) {
          const x = r.below(20);
          const c = clients[r.below(n)]!;
          if (x < 7) {
            if (c.doc !== null) c.submit(fuzz.op(r, c.doc));
          } else if (x < 17) {
            net.step((m) => r.below(m));
          } else if (x < 18) {
            const conn = net.conns[r.below(Math.max(net.conns.length, 1))];
            if (conn) net.drop(conn);
          } else if (x < 19) {
            clock.runNext();
          } else if (r.chance(0.3)) {
            c.undo();
          }
        }
        settle(net, clock);
        expectConverged(net, clients);
        merged += net.merged;
      }
      // The clients asked for ranges; what queued up for them reached them as ranges.
      if (ranges) expect(merged).toBeGreaterThan(50);
    });
  }

  describe("a join refused for a while (rate_limited, internal) is sent again", () => {
    const conn = (net: FakeNet, user: string) => net.conns.find((c) => c.user === user)!;
    const joinsOf = (net: FakeNet, user: string) => net.log.filter((m) => m["from"] === user && m["type"] === "join");
    /** Runs timers one by one, delivering after each, until `user` sent `n` joins: the time then. */
    function untilJoins(net: FakeNet, clock: FakeClock, user: string, n: number): number {
      for (let i = 0; i < 1000; i++) {
        net.drain();
        if (joinsOf(net, user).length >= n) return clock.now;
        if (!clock.runNext()) break;
      }
      throw new Error(`${user} did not join ${n} times`);
    }
    /** u1 (b) joined, then u0 (a), whose first join the server refuses with `refusal`. */
    function refusedFirst(refusal: FakeNet["refuseJoins"][number]) {
      const net = new FakeNet(newDocument());
      const clock = new FakeClock();
      const make = (i: number) =>
        new MontageClient({ url: "ws://montage.test/v1/ws", token: `t${i}`, session: "s1", clientId: `c${i}`, socket: net.factory(`u${i}`), timers: clock, random: () => 0 });
      const b = make(1);
      net.drain();
      net.refuseJoins = [refusal];
      const a = make(0);
      const errors: unknown[] = [];
      a.on("error", (e) => errors.push(e));
      let ready = false;
      void a.ready().then(() => (ready = true));
      net.drain();
      return { net, clock, a, b, errors, isReady: () => ready };
    }

    it("a first join refused with internal (the session reloading) joins again after 500 ms; an edit made meanwhile is there", async () => {
      const { net, clock, a, b, errors, isReady } = refusedFirst({ code: "internal", message: "session unavailable, try again" });
      const refusedAt = clock.now;
      expect(errors).toEqual([{ code: "internal", message: "session unavailable, try again", rid: "join" }]);
      expect([a.connectionState, a.doc, joinsOf(net, "u0").length]).toEqual(["connecting", null, 1]);
      b.submit([{ op: "set", path: ["title"], value: "meanwhile" }]);
      net.drain();
      const again = untilJoins(net, clock, "u0", 2);
      expect(again - refusedAt).toBeGreaterThanOrEqual(500);
      settle(net, clock);
      await Promise.resolve();
      expect([a.connectionState, isReady()]).toEqual(["online", true]);
      expect(joinsOf(net, "u0")).toHaveLength(2);
      expectConverged(net, [a, b]);
      expect(title(a)).toBe("meanwhile");
      // And it edits.
      a.submit([{ op: "set", path: ["meta", "a"], value: 1 }]);
      settle(net, clock);
      expectConverged(net, [a, b]);
      expect(errors).toHaveLength(1);
    });

    it("a rejoin refused with rate_limited waits retry_after_ms, then catches up keeping my offline edit", () => {
      const { net, clock, clients } = setup(2);
      const [a, b] = clients as [MontageClient, MontageClient];
      settle(net, clock);
      b.submit([{ op: "set", path: ["meta", "b1"], value: 1 }]);
      settle(net, clock);
      const errors: unknown[] = [];
      a.on("error", (e) => errors.push(e));
      // a's socket drops; it edits offline, and its rejoin (since 1) is refused for a while.
      net.drop(conn(net, "u0"));
      a.submit([{ op: "set", path: ["meta", "a"], value: 2 }]);
      net.refuseJoins = [{ code: "rate_limited", message: "slow down", retry_after_ms: 1_200 }];
      untilJoins(net, clock, "u0", 2);
      const refusedAt = clock.now;
      expect(errors).toEqual([{ code: "rate_limited", message: "slow down", rid: "join" }]);
      expect([a.connectionState, a.pendingCount]).toEqual(["reconnecting", 1]);
      // b edits while a waits.
      b.submit([{ op: "set", path: ["meta", "b2"], value: 3 }]);
      net.drain();
      const again = untilJoins(net, clock, "u0", 3);
      expect(again - refusedAt).toBeGreaterThanOrEqual(1_200);
      expect(joinsOf(net, "u0").slice(1).map((m) => m["since"])).toEqual([1, 1]);
      settle(net, clock);
      expect(a.connectionState).toBe("online");
      expectConverged(net, clients);
      expect((a.doc as JsonObject)["meta"]).toEqual({ a: 2, b1: 1, b2: 3 });
      expect(net.history.filter((e) => e.client === "c0").map((e) => e.seq)).toEqual([1]);
      expect(errors).toHaveLength(1);
    });

    it("a catch-up join refused with internal while the socket stays in the session: the edits that come meanwhile are left to the join sent again", () => {
      const { net, clock, clients } = setup(2);
      const [a, b] = clients as [MontageClient, MontageClient];
      settle(net, clock);
      const errors: unknown[] = [];
      a.on("error", (e) => errors.push(e));
      a.submit([{ op: "set", path: ["meta", "a"], value: 1 }]); // in flight
      // b's version 1 never reaches a; its version 2 shows the gap: a joins again with since 0,
      // and that join is refused (the socket stays in the session).
      b.submit([{ op: "set", path: ["meta", "b1"], value: 1 }]);
      net.deliverToServer(conn(net, "u1"));
      conn(net, "u0").s2c = [];
      net.deliverToClient(conn(net, "u1"));
      b.submit([{ op: "set", path: ["meta", "b2"], value: 2 }]);
      net.deliverToServer(conn(net, "u1"));
      net.deliverToClient(conn(net, "u1"));
      net.refuseJoins = [{ code: "internal", message: "session unavailable, try again" }];
      net.drain();
      expect(joinsOf(net, "u0").map((m) => m["since"])).toEqual([undefined, 0]);
      expect(errors).toEqual([{ code: "internal", message: "session unavailable, try again", rid: "join" }]);
      // Meanwhile b's next edit reaches a's socket, and a's own edit is applied (version 3).
      b.submit([{ op: "set", path: ["meta", "b3"], value: 3 }]);
      net.drain();
      settle(net, clock);
      expect(a.connectionState).toBe("online");
      expect(joinsOf(net, "u0").map((m) => m["since"])).toEqual([undefined, 0, 0]);
      expectConverged(net, clients);
      expect((a.doc as JsonObject)["meta"]).toEqual({ a: 1, b1: 1, b2: 2, b3: 3 });
      expect(net.history.filter((e) => e.client === "c0").map((e) => e.seq)).toEqual([1]);
      expect(errors).toHaveLength(1);
    });

    it("a reconnect during the pause joins once: the retry does not join again", () => {
      const { net, clock, a, b, errors } = refusedFirst({ code: "internal", message: "session unavailable, try again" });
      expect(errors).toHaveLength(1);
      // The socket drops; the reconnect (250 ms) comes before the retry (500 ms), and its join is
      // not answered yet when the retry's time comes.
      net.drop(conn(net, "u0"));
      clock.runNext();
      expect(net.opening).toHaveLength(1);
      net.step(() => 0);
      const sock = net.conns.find((c) => c.user === "u0")!;
      const queued = () => sock.c2s.filter((f) => (JSON.parse(f as string) as Record<string, unknown>)["type"] === "join").length;
      expect(queued()).toBe(1);
      while (clock.now < 1_000 && clock.runNext());
      expect(queued()).toBe(1);
      settle(net, clock);
      expect(a.connectionState).toBe("online");
      expect(joinsOf(net, "u0")).toHaveLength(2);
      expectConverged(net, [a, b]);
    });
  });

  describe("versions missed on a live connection", () => {
    const layer = (id: string) => ({ op: "ins" as const, path: ["canvas", "layers", 0], value: { id, kind: "text", text: "", x: 0, y: 0, size: 1, color: "#000" } });
    const layerIds = (doc: Json | null) => ((((doc as JsonObject | null)?.["canvas"] as JsonObject | undefined)?.["layers"] ?? []) as JsonObject[]).map((l) => l["id"]).sort();
    const conn = (net: FakeNet, user: string) => net.conns.find((c) => c.user === user)!;
    /** Takes the server's `op` frame for `user` that `lost` picks off the wire (lost on the way). */
    function lose(net: FakeNet, user: string, lost: (m: Record<string, unknown>) => boolean) {
      const c = conn(net, user);
      const before = c.s2c.length;
      c.s2c = c.s2c.filter((f) => {
        const m = JSON.parse(f as string) as Record<string, unknown>;
        return !(m["type"] === "op" && lost(m));
      });
      expect(c.s2c.length).toBe(before - 1);
    }
    /** What a must not see while it catches up: a refusal, a reset, a desync. */
    function watch(a: MontageClient) {
      const bad: unknown[] = [];
      a.on("rejected", (r) => bad.push(r));
      a.on("error", (e) => bad.push(e));
      a.on("change", (e) => {
        if (e.origin === "load") bad.push(e);
      });
      return bad;
    }
    /** b's edit reaches the server, and its ack reaches b (so b's next edit can go). */
    function edit(net: FakeNet, b: MontageClient, id: string) {
      b.submit([layer(id)]);
      net.deliverToServer(conn(net, "u1"));
      net.deliverToClient(conn(net, "u1"));
    }

    for (const shownBy of ["op", "ack"] as const) {
      it(`a skipped version (shown by the next ${shownBy}) rejoins with since, keeping an in-flight and a pending edit`, () => {
        const { net, clock, clients } = setup(3);
        const [a, b] = clients as [MontageClient, MontageClient, MontageClient];
        settle(net, clock);
        const bad = watch(a);
        a.submit([layer("a1")]); // in flight
        a.submit([layer("a2")]); // pending
        expect(a.pendingCount).toBe(2);
        // Version 1 (b's) never reaches a.
        edit(net, b, "b1");
        lose(net, "u0", (m) => m["version"] === 1);
        // a next hears of version 2 (b's) and then of its own edit's ack (version 3), or at once
        // of the ack (version 2).
        if (shownBy === "op") edit(net, b, "b2");
        net.deliverToServer(conn(net, "u0"));
        expect(conn(net, "u0").s2c.map((f) => (JSON.parse(f as string) as Record<string, unknown>)["type"])).toEqual(shownBy === "op" ? ["op", "ack"] : ["ack"]);
        net.deliverToClient(conn(net, "u0"));
        // Nothing applied or dropped: a joins again from version 0 and keeps its edits.
        expect([a.version, a.pendingCount, layerIds(a.doc)]).toEqual([0, 2, ["a1", "a2"]]);
        // An edit made before that join is answered reaches a ahead of the answer, which
        // carries it too: it is left to the answer.
        edit(net, b, "b3");
        net.drain();
        settle(net, clock);
        expectConverged(net, clients);
        const ids = shownBy === "op" ? ["a1", "a2", "b1", "b2", "b3"] : ["a1", "a2", "b1", "b3"];
        expect(layerIds(net.doc)).toEqual(ids); // every edit, once
        expect(bad).toEqual([]);
        // Joined again from version 0 on the same socket, with no leave; the in-flight edit was
        // resent as it was (acked with its version), the pending one sent once after it, on the
        // version before its own.
        const mine = net.log.filter((m) => m["from"] === "u0");
        expect(mine.filter((m) => m["type"] === "join").map((m) => m["since"])).toEqual([undefined, 0]);
        expect(mine.some((m) => m["type"] === "leave")).toBe(false);
        expect(mine.filter((m) => m["type"] === "op").map((m) => [m["seq"], m["base"]])).toEqual([
          [1, 0],
          [1, 0],
          [2, net.history.length - 1],
        ]);
        expect(net.history.filter((e) => e.client === "c0").map((e) => e.seq)).toEqual([1, 2]);
      });
    }

    it("a range whose from jumps ahead rejoins with since, keeping local edits", () => {
      const { net, clock, clients } = setup(3);
      const [a, b] = clients as [MontageClient, MontageClient, MontageClient];
      settle(net, clock);
      net.mergeRanges = true;
      const bad = watch(a);
      const ranges: Record<string, unknown>[] = [];
      a.on("message", (m) => {
        if (m["type"] === "op" && m["from"] !== undefined) ranges.push(m);
      });
      a.submit([layer("a1")]); // in flight
      a.submit([layer("a2")]); // pending
      // b's versions 1..3 queue up for a (joined with ranges) and merge; version 1 is lost, so
      // a gets versions 2..3 as one range.
      for (const id of ["b1", "b2", "b3"]) {
        edit(net, b, id);
        if (id === "b1") lose(net, "u0", (m) => m["version"] === 1);
      }
      net.drain();
      settle(net, clock);
      expect(ranges.map((m) => [m["from"], m["version"]])).toEqual([[2, 3]]);
      expectConverged(net, clients);
      expect(layerIds(net.doc)).toEqual(["a1", "a2", "b1", "b2", "b3"]);
      expect(bad).toEqual([]);
      const joins = net.log.filter((m) => m["from"] === "u0" && m["type"] === "join");
      // The rejoin holds an edit in flight: no compact delta, no ranges.
      expect(joins.at(-1)).toMatchObject({ since: 0 });
      expect(joins.at(-1)).not.toHaveProperty("ranges");
      expect(net.history.filter((e) => e.client === "c0").map((e) => e.seq)).toEqual([1, 2]);
    });
  });
});

describe("MontageClient with storage (offline across a page reload)", () => {
  it("a reloaded page shows its replica at once and resends its edits under the same client and seq", () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    const store = new Map<string, string>();
    const storage = { load: () => store.get("s1") ?? null, save: (v: string) => void store.set("s1", v) };
    const mk = (user: string, withStorage: boolean) =>
      new MontageClient({
        url: "ws://montage.test/v1/ws",
        session: "s1",
        socket: net.factory(user),
        timers: clock,
        random: () => 0,
        ...(withStorage ? { storage } : {}),
      });
    const a = mk("u0", true);
    const b = mk("u1", false);
    net.drain();
    a.submit([{ op: "set", path: ["title"], value: "before" }]);
    net.drain();
    // Offline: one edit goes out and is applied, but its ack is lost; another stays pending.
    const conn = net.conns.find((c) => c.user === "u0")!;
    a.submit([{ op: "set", path: ["meta", "x"], value: 1 }]);
    net.deliverToServer(conn);
    net.online = false;
    net.drop(conn);
    a.submit([{ op: "set", path: ["meta", "y"], value: 2 }]);
    b.submit([{ op: "set", path: ["meta", "z"], value: 3 }]);
    net.drain();
    a.disconnect(); // the page goes away

    net.online = true;
    const a2 = mk("u0", true);
    expect(a2.clientId).toBe(a.clientId);
    expect((a2.doc as JsonObject)["meta"]).toEqual({ x: 1, y: 2 }); // shown before connecting
    expect(a2.pendingCount).toBe(2);
    settle(net, clock);
    expectConverged(net, [a2, b]);
    expect((net.doc as JsonObject)["meta"]).toEqual({ x: 1, y: 2, z: 3 });
    expect(net.history.filter((e) => e.client === a.clientId).map((e) => e.seq)).toEqual([1, 2, 3]);
  });

  it("ignores a stored replica of another session or in an unknown format", () => {
    const net = new FakeNet(newDocument());
    for (const raw of ["{", JSON.stringify({ session: "other", clientId: "x", sync: {} }), JSON.stringify({ session: "s1", clientId: "x", sync: { v: 9 } })]) {
      const c = new MontageClient({ url: "ws://x/v1/ws", session: "s1", socket: net.factory("u"), timers: new FakeClock(), storage: { load: () => raw, save: () => {} } });
      expect(c.doc).toBeNull();
      expect(c.clientId).not.toBe("x");
      c.disconnect();
    }
  });
});
