// Large states (docs/PROTOCOL.md "Large states"): a join that asks for `state_ref` gets the state
// as a reference to download over HTTP (test/fakenet.ts `FakeStateHttp`), read in pieces that
// resume with `Range`/`If-Range` after a cut; the session is joined only once it is here, with
// the frames that came meanwhile applied after it. Bytes that don't match the hash, a refusal,
// a download given up and a socket dropped mid-way each end in a join again.
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type Json, type JsonObject, type MontageClient, SessionKey, deepEqual, newDocument } from "../src/index.js";
import { decodeServerFrame, encodeClientFrame, encodeServerFrame, decodeClientFrame } from "../src/binary.js";
import { DOWNLOAD_TRIES } from "../src/download.js";
import { FakeClock, FakeNet, FakeStateHttp, type Piece, type StateRequest, fakeClient, tick } from "./fakenet.js";

/** About 300 KB of JSON: past the 64 KiB these tests inline. */
const big = (): Json => ({ ...newDocument(), title: "a large state ".repeat(22_000) });
const SIZE = new TextEncoder().encode(JSON.stringify(big())).length;
const SHA = createHash("sha256").update(JSON.stringify(big())).digest("hex");

/** bob, joined (state inline), then ann, whose join gets the state by reference from `http`,
 * whose requests end as `plan` says. */
function setup(plan: Piece[] = []) {
  const net = new FakeNet(big());
  const clock = new FakeClock();
  const bob = fakeClient(net, clock, "bob", { fetch: new FakeStateHttp(net).fetch });
  net.drain();
  net.inlineStateBytes = 64 * 1024;
  const http = new FakeStateHttp(net);
  http.plan = plan;
  const ann = fakeClient(net, clock, "ann", { fetch: http.fetch });
  return { net, clock, bob, ann, http };
}

/** What ann hears, in order. */
function watch(ann: MontageClient) {
  const seen: string[] = [];
  const loading: { received: number; total: number }[] = [];
  const errors: { code: string; message: string }[] = [];
  ann.on("loading", (e) => {
    loading.push(e);
    seen.push(`loading ${e.received}`);
  });
  ann.on("status", (s) => seen.push(`status ${s.state}`));
  ann.on("change", (e) => seen.push(`change ${e.origin} ${e.version}`));
  ann.on("error", (e) => {
    errors.push(e);
    seen.push(`error ${e.code}`);
  });
  return { seen, loading, errors };
}

/** Delivers frames and lets promises (the downloads) run; when nothing else moves, runs the
 * clock's next timer (a backoff, a stall, a reconnect), until `done`. `each` runs every round. */
async function until(net: FakeNet, clock: FakeClock, done: () => boolean, each: () => void = () => {}): Promise<void> {
  for (let i = 0; i < 400; i++) {
    net.drain();
    await tick();
    each();
    if (done()) return;
    net.drain();
    await tick();
    if (done()) return;
    clock.runNext();
  }
  throw new Error("did not get there");
}

/** The joins and leaves ann sent: `join`, `join since=V`, `join ref` (asking `state_ref`), `leave`. */
function joins(net: FakeNet): string[] {
  return net.log
    .filter((m) => m["from"] === "ann" && (m["type"] === "join" || m["type"] === "leave"))
    .map((m) => [m["type"], m["since"] === undefined ? "" : `since=${String(m["since"])}`, m["state_ref"] === true ? "ref" : ""].filter((x) => x !== "").join(" "));
}

/** Each request asked for the rest of what came before it: no Range first, then `bytes=HAVE-`
 * with `If-Range` naming the state. */
function expectResumed(http: FakeStateHttp) {
  let have = 0;
  for (const r of http.requests) {
    if (have === 0) expect(r.range).toBeUndefined();
    else expect([r.range, r.ifRange]).toEqual([`bytes=${have}-`, `"${SHA}"`]);
    if (r.status === 200 || r.status === 206) {
      expect(r.from).toBe(have);
      have += r.sent;
    }
  }
  expect(have).toBe(SIZE);
}

const online = (c: MontageClient) => () => c.connectionState === "online";

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("a large state joined by reference", () => {
  it("downloads in pieces, each cut resumed where it stopped; the ops that came meanwhile apply after it", async () => {
    // A reset body, a fetch that fails, a body that stops (20 s), a busy server, a reset again.
    const { net, clock, bob, ann, http } = setup([{ cut: 50_000 }, { throws: true }, { stall: 30_000 }, { status: 503 }, { cut: 70_000 }]);
    const { seen, loading, errors } = watch(ann);
    let ready = false;
    void ann.ready().then(() => (ready = true));
    const opsWhileLoading: unknown[] = [];
    ann.on("message", (m) => {
      if (m["type"] === "op" && ann.doc === null) opsWhileLoading.push(m["version"]);
    });
    let edited = false;
    await until(net, clock, online(ann), () => {
      // Once ann's download is under way (cut once), bob edits: version 1 reaches ann's socket.
      if (edited || http.requests.length < 2) return;
      edited = true;
      expect([ann.doc, ann.connectionState, ready]).toEqual([null, "connecting", false]);
      bob.submit([{ op: "set", path: ["meta", "k"], value: 1 }]);
      net.drain();
    });
    expect(joins(net)).toEqual(["join ref"]);
    expect(net.log.find((m) => m["from"] === "ann" && m["type"] === "join")).not.toHaveProperty("since");
    expect(opsWhileLoading).toEqual([1]);
    // In all, the state's bytes went once: every request but the first asked for the rest.
    expect(http.served).toBe(SIZE);
    expect(http.requests.map((r) => [r.range, r.status])).toEqual([
      [undefined, 200],
      ["bytes=50000-", 0], // the fetch failed
      ["bytes=50000-", 206],
      ["bytes=80000-", 503],
      ["bytes=80000-", 206],
      ["bytes=150000-", 206],
    ]);
    expectResumed(http);
    expect(http.requests.every((r) => r.auth === `Bearer ${String(new URL(net.conns.find((c) => c.user === "ann")!.url).searchParams.get("token"))}`)).toBe(true);
    expect(http.requests[0]!.url).toBe("http://montage.test/v1/sessions/s1/state?version=0");
    // Progress from 0 to the end, never back, at least every 64 KiB.
    expect(loading[0]).toEqual({ received: 0, total: SIZE });
    expect(loading.at(-1)).toEqual({ received: SIZE, total: SIZE });
    for (let i = 1; i < loading.length; i++) {
      expect(loading[i]!.received).toBeGreaterThan(loading[i - 1]!.received);
      expect(loading[i]!.received - loading[i - 1]!.received).toBeLessThan(64 * 1024 + 16 * 1024);
    }
    // Joined only with the state here: the load, then bob's edit (version 1) on it.
    expect(errors).toEqual([]);
    expect(ready).toBe(true);
    expect(seen.indexOf("status online")).toBeGreaterThan(seen.indexOf(`loading ${SIZE}`));
    expect(seen.filter((s) => s.startsWith("change"))).toEqual(["change load 0", "change remote 1"]);
    expect(ann.version).toBe(1);
    expect(deepEqual(ann.doc, net.doc)).toBe(true);
    expect((ann.doc as JsonObject)["meta"]).toEqual({ k: 1 });
    // And it edits like any client.
    ann.submit([{ op: "set", path: ["meta", "ann"], value: true }]);
    net.drain();
    expect(deepEqual(bob.doc, ann.doc)).toBe(true);
  });

  it("bytes that don't match the hash: an error, then a join for the whole state again (leave, join without since)", async () => {
    const { net, clock, ann, http } = setup([{ tamper: true }]);
    const { errors } = watch(ann);
    await until(net, clock, online(ann));
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe("desync");
    expect(errors[0]!.message).toMatch(/^downloading the session's state: .*SHA-256.*; joining again$/);
    expect(joins(net)).toEqual(["join ref", "leave", "join ref"]);
    // The wrong bytes were not kept: the second download started over.
    expect(http.requests.map((r) => [r.range, r.status])).toEqual([
      [undefined, 200],
      [undefined, 200],
    ]);
    expect(ann.version).toBe(0);
    expect(deepEqual(ann.doc, net.doc)).toBe(true);
  });

  it("without crypto.subtle (an insecure http: page) the hash is still checked, by @noble/hashes", async () => {
    const real = globalThis.crypto;
    vi.stubGlobal("crypto", { getRandomValues: real.getRandomValues.bind(real), randomUUID: real.randomUUID.bind(real) });
    const { net, clock, ann, http } = setup([{ tamper: true }]);
    const { errors } = watch(ann);
    await until(net, clock, online(ann));
    expect(errors.map((e) => e.code)).toEqual(["desync"]);
    expect(http.requests).toHaveLength(2);
    expect(deepEqual(ann.doc, net.doc)).toBe(true);
  });

  it("a refusal (403) is final: an error and a join again; after a second failure in a row the state comes inline", async () => {
    const { net, clock, ann, http } = setup([{ status: 403 }, { status: 403 }]);
    const { errors } = watch(ann);
    const denied: unknown[] = [];
    ann.on("accessDenied", (e) => denied.push(e));
    await until(net, clock, online(ann));
    expect(errors.map((e) => e.code)).toEqual(["forbidden", "forbidden"]);
    expect(errors[0]!.message).toMatch(/^downloading the session's state: .*refused with 403.*; joining again$/);
    // No retries of a refusal; the third join asks for no reference.
    expect(http.requests.map((r) => r.status)).toEqual([403, 403]);
    expect(joins(net)).toEqual(["join ref", "leave", "join ref", "leave", "join"]);
    expect(denied).toEqual([]);
    expect(deepEqual(ann.doc, net.doc)).toBe(true);
    // Joined: the next join (a reconnect) asks for a reference again.
    net.drop(net.conns.find((c) => c.user === "ann")!);
    await until(net, clock, () => joins(net).length === 6 && online(ann)());
    expect(joins(net).at(-1)).toBe("join since=0 ref");
  });

  it("a download given up keeps its bytes: the same version joined again resumes from them", async () => {
    const nothing: Piece[] = Array.from({ length: 6 }, () => ({ throws: true }));
    const { net, clock, ann, http } = setup([{ cut: 100_000 }, ...nothing]);
    const { seen, errors } = watch(ann);
    await until(net, clock, online(ann));
    // Six tries in a row brought nothing (with backoff between them): given up.
    expect(errors.map((e) => e.code)).toEqual(["internal"]);
    expect(errors[0]!.message).toMatch(/6 tries with no progress/);
    expect(joins(net)).toEqual(["join ref", "leave", "join ref"]);
    expect(http.requests).toHaveLength(8);
    expect(http.requests[7]).toMatchObject({ range: "bytes=100000-", ifRange: `"${SHA}"`, status: 206, from: 100_000 });
    expectResumed(http);
    expect(http.served).toBe(SIZE);
    // The second download's progress starts where the first stopped.
    const second = seen.slice(seen.indexOf("error internal"));
    expect(second.find((e) => e.startsWith("loading"))).toBe("loading 100000");
    expect(deepEqual(ann.doc, net.doc)).toBe(true);
  });

  // A restart from byte 0 (a 200 to a Range, a 416, a 206 that does not continue) that only wins
  // back bytes held before is no progress: on a link that keeps cutting, the download gives up
  // after DOWNLOAD_TRIES instead of downloading the same first bytes again and again.
  const restarts: [string, (req: StateRequest, n: number) => Piece, boolean][] = [
    ["a proxy that ignores Range, every body cut at the same offset", () => ({ cut: 100_000 }), true],
    ["a proxy that ignores Range, bodies cut at 100 000 and 90 000 bytes in turn", (_, n) => ({ cut: n % 2 === 0 ? 100_000 : 90_000 }), true],
    ["a 416 to every Range, whole bodies cut at the same offset", (req) => (req.range === undefined ? { cut: 100_000 } : { status: 416 }), false],
  ];
  for (const [name, pieceFor, ignoreRange] of restarts) {
    it(`${name}: each download gives up after ${DOWNLOAD_TRIES} tries with no progress, then the state comes inline`, async () => {
      const { net, clock, ann, http } = setup();
      http.pieceFor = pieceFor;
      http.ignoreRange = ignoreRange;
      const { errors } = watch(ann);
      await until(net, clock, online(ann));
      expect(errors.map((e) => e.code)).toEqual(["internal", "internal"]);
      for (const e of errors) expect(e.message).toMatch(new RegExp(`${DOWNLOAD_TRIES} tries with no progress`));
      // The first download: its first request, then DOWNLOAD_TRIES that got no further; the
      // second (the same version joined again) resumes from the bytes held: DOWNLOAD_TRIES more.
      expect(http.requests).toHaveLength(1 + 2 * DOWNLOAD_TRIES);
      // Every request that asked for a range started over: a 200 from byte 0 (or a 416, and then a 200).
      expect(http.requests.map((r) => r.status)).toEqual(http.requests.map((r) => (r.range === undefined || ignoreRange ? 200 : 416)));
      expect(http.requests.filter((r) => r.range !== undefined)).not.toHaveLength(0);
      expect(joins(net)).toEqual(["join ref", "leave", "join ref", "leave", "join"]);
      expect(ann.version).toBe(0);
      expect(deepEqual(ann.doc, net.doc)).toBe(true);
    });
  }

  for (const moved of [false, true]) {
    it(`a socket dropped mid-download: the join on the next socket ${moved ? "names a newer version, downloaded whole" : "resumes the bytes so far"}`, async () => {
      const { net, clock, bob, ann, http } = setup([{ cut: 100_000 }, { throws: true }]);
      const { errors } = watch(ann);
      // The download waits to try again (the fetch failed) when the socket drops.
      await until(net, clock, () => http.requests.length === 2);
      net.drop(net.conns.find((c) => c.user === "ann")!);
      if (moved) {
        bob.submit([{ op: "set", path: ["meta", "k"], value: 1 }]);
        net.drain();
      }
      await until(net, clock, online(ann));
      expect(errors).toEqual([]);
      expect(joins(net)).toEqual(["join ref", "join ref"]);
      const after = http.requests.slice(2);
      if (moved) {
        // Another state (version 1, another hash): from its start, the old bytes not spliced in.
        expect(after.map((r) => [r.url.split("?")[1], r.range, r.status])).toEqual([["version=1", undefined, 200]]);
        expect(http.served).toBe(100_000 + net.stateBytes.get("s1@1")!.length);
      } else {
        expect(after.map((r) => [r.url.split("?")[1], r.range, r.status])).toEqual([["version=0", "bytes=100000-", 206]]);
        expectResumed(http);
        expect(http.served).toBe(SIZE);
      }
      expect(ann.version).toBe(moved ? 1 : 0);
      expect(deepEqual(ann.doc, net.doc)).toBe(true);
    });
  }
});

describe("who asks for state_ref", () => {
  it("a plain session with a fetch asks; an encrypted session never does, nor a client without fetch", async () => {
    const plain = setup();
    await until(plain.net, plain.clock, online(plain.ann));
    expect(joins(plain.net)).toEqual(["join ref"]);

    const net = new FakeNet(big());
    net.inlineStateBytes = 0;
    const clock = new FakeClock();
    const http = new FakeStateHttp(net);
    const ann = fakeClient(net, clock, "ann", { keys: SessionKey.generate(), fetch: http.fetch });
    await until(net, clock, online(ann));
    // Reconnect with the replica: still no reference.
    net.drop(net.conns.find((c) => c.user === "ann")!);
    await until(net, clock, () => joins(net).length === 2 && online(ann)());
    expect(joins(net)).toEqual(["join", `join since=${ann.version}`]);
    expect(http.requests).toEqual([]);

    vi.stubGlobal("fetch", undefined);
    const bare = new FakeNet(big());
    bare.inlineStateBytes = 0;
    const c = fakeClient(bare, new FakeClock(), "ann");
    bare.drain();
    expect(c.connectionState).toBe("online");
    expect(joins(bare)).toEqual(["join"]);
  });

  it("state_ref goes both ways in binary frames", () => {
    const join = { type: "join", session: "s", client: "c", state_ref: true, rid: "join" };
    expect(decodeClientFrame(encodeClientFrame(join))).toStrictEqual(join);
    const joined = { type: "joined", session: "s", version: 7, role: "editor", participants: [], link_role: "none", state_ref: { bytes: 300_000, sha256: SHA }, rid: "s1:join" };
    expect(decodeServerFrame(encodeServerFrame(joined))).toStrictEqual(joined);
  });
});
