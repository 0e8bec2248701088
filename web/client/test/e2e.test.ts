// End-to-end encrypted sessions through the SDK (the `keys` option) against the in-memory server
// of test/fakenet.ts, which orders sealed payloads blind as the real server does (head-only bases,
// key epochs, the hash chain): edits sealed and opened, concurrent edits rebased and sealed again,
// whole joins from the entries and from a client snapshot, key rotation, comments, and a wrong
// key, a changed payload or a broken chain stopping the session.
import { describe, expect, it } from "vitest";
import {
  type Comment,
  type FetchLike,
  type Json,
  type JsonObject,
  Keyring,
  MontageClient,
  SealError,
  SessionKey,
  assetEpoch,
  deepEqual,
  newDocument,
} from "../src/index.js";
import { FakeClock, FakeNet } from "./fakenet.js";

const KEY = SessionKey.generate();

function client(net: FakeNet, clock: FakeClock, user: string, keys: Keyring | SessionKey | string | null = KEY.toText()): MontageClient {
  return new MontageClient({
    url: "ws://montage.test/v1/ws",
    token: `t-${user}`,
    session: "s1",
    clientId: `c-${user}`,
    socket: net.factory(user),
    timers: clock,
    random: () => 0,
    ...(keys === null ? {} : { keys }),
  });
}

function setup(users: string[]) {
  const net = new FakeNet(newDocument());
  const clock = new FakeClock();
  const clients = users.map((u) => client(net, clock, u));
  net.drain();
  if (users.length > 0) {
    expect(net.log[0]).toMatchObject({ type: "join", create: { encrypted: true } });
    // An editor who opens the empty session sends a key check (an empty sealed edit): the first
    // is version 1; one beaten to it is dropped rather than sealed again.
    expect(net.history.length).toBe(1);
    expect(net.history[0]!.ops).toEqual([]);
    for (const c of clients) expect(c.version).toBe(1);
    net.log.length = 0; // tests count what is sent after it
  }
  return { net, clock, clients };
}

const title = (c: MontageClient) => (c.doc as JsonObject)["title"];
const meta = (c: MontageClient) => (c.doc as JsonObject)["meta"] as JsonObject;

function expectSame(clients: MontageClient[], net: FakeNet) {
  const [first, ...rest] = clients;
  for (const c of clients) {
    expect(c.pendingCount, `${c.clientId} has nothing pending`).toBe(0);
    expect(c.version).toBe(net.history.length);
  }
  for (const c of rest) {
    if (!deepEqual(c.doc, first!.doc)) expect.fail(`${c.clientId} diverged\n${JSON.stringify(c.doc)}\n${JSON.stringify(first!.doc)}`);
  }
}

/** What the server was sent, as text: nothing of the documents may show in it. */
const wire = (net: FakeNet) => JSON.stringify(net.log);

describe("encrypted sessions", () => {
  it("create the session encrypted, send sealed edits only, and converge after a rebase", () => {
    const { net, clients } = setup(["alice", "bob"]);
    const [a, b] = clients as [MontageClient, MontageClient];
    expect(a.encrypted && a.keyEpoch === 0).toBe(true);
    expect(a.doc).toEqual(newDocument());
    // Concurrent: both on base 1 (after the key check); the second to arrive is refused (`conflict`, head only),
    // rebased locally and sealed again.
    a.submit([{ op: "set", path: ["title"], value: "Secret plans" }]);
    b.submit([{ op: "set", path: ["meta", "note"], value: "classified" }]);
    net.drain();
    expectSame(clients, net);
    expect(title(b)).toBe("Secret plans");
    expect(meta(a)["note"]).toBe("classified");
    const ops = net.log.filter((m) => m["type"] === "op");
    expect(ops.length).toBe(3); // one of them twice: refused, then on the new head
    for (const m of ops) {
      expect(m["ops"]).toBeUndefined();
      expect(typeof m["data"]).toBe("string");
      expect(m["key_epoch"]).toBe(0);
    }
    const resealed = ops.filter((m) => m["from"] === ops[1]!["from"]);
    expect(resealed.length).toBe(2);
    expect(resealed[1]!["base"]).toBe(2);
    expect(resealed[1]!["data"]).not.toBe(resealed[0]!["data"]);
    expect(wire(net)).not.toMatch(/Secret|classified/);
    // A late joiner rebuilds the state from the sealed entries.
    const clock = new FakeClock();
    const c = client(net, clock, "carol");
    net.drain();
    expect(c.doc).toEqual(a.doc);
    expect(c.version).toBe(3);
  });

  it("repeats the same bytes when it resends after a reconnect", () => {
    const { net, clock, clients } = setup(["alice", "bob"]);
    const [a, b] = clients as [MontageClient, MontageClient];
    a.submit([{ op: "set", path: ["title"], value: "one" }]);
    // The edit reaches the server, the ack is lost with the connection.
    const conn = net.conns.find((x) => x.user === "alice")!;
    net.deliverToServer(conn);
    net.drop(conn);
    while (clock.runNext()) net.drain();
    net.drain();
    const sent = net.log.filter((m) => m["type"] === "op" && m["from"] === "alice");
    expect(sent.length).toBe(2);
    expect(sent[1]!["data"]).toBe(sent[0]!["data"]);
    expect(sent[1]!["seq"]).toBe(sent[0]!["seq"]);
    expectSame([a, b], net);
    expect(net.history.length).toBe(2);
    expect(title(b)).toBe("one");
  });

  it("a skipped version rejoins with since (no broken chain), keeping in-flight and pending edits", () => {
    const { net, clock, clients } = setup(["alice", "bob"]);
    const [a, b] = clients as [MontageClient, MontageClient];
    const bad: unknown[] = [];
    a.on("undecryptable", (e) => bad.push(e));
    a.on("rejected", (e) => bad.push(e));
    const conn = (user: string) => net.conns.find((x) => x.user === user)!;
    a.submit([{ op: "set", path: ["meta", "a1"], value: 1 }]); // in flight
    a.submit([{ op: "set", path: ["meta", "a2"], value: 2 }]); // pending
    for (const k of ["b1", "b2"]) {
      b.submit([{ op: "set", path: ["meta", k], value: 3 }]);
      net.deliverToServer(conn("bob"));
      net.deliverToClient(conn("bob"));
      // Version 2 (bob's) never reaches alice: version 3 is the next she sees.
      if (k === "b1") {
        expect(conn("alice").s2c.length).toBe(1);
        conn("alice").s2c = [];
      }
    }
    net.drain();
    while (clock.runNext()) net.drain();
    expect(bad).toEqual([]);
    expectSame([a, b], net);
    expect(meta(a)).toEqual({ a1: 1, a2: 2, b1: 3, b2: 3 });
    const joins = net.log.filter((m) => m["type"] === "join" && m["from"] === "alice");
    expect(joins.map((m) => m["since"])).toEqual([1]);
  });

  it("keeps the sealed edit and the chain across a reload, and resends the same bytes", () => {
    const { net, clients } = setup(["bob"]);
    const [b] = clients as [MontageClient];
    b.submit([{ op: "set", path: ["title"], value: "first" }]);
    net.drain();
    let saved: string | null = null;
    const storage = { load: () => saved, save: (v: string) => void (saved = v) };
    const clock = new FakeClock();
    const mk = () =>
      new MontageClient({ url: "ws://montage.test/v1/ws", token: "t", session: "s1", socket: net.factory("alice"), timers: clock, random: () => 0, keys: KEY, storage });
    const a = mk();
    net.drain();
    a.submit([{ op: "set", path: ["title"], value: "second" }]);
    // Sent, but the page goes away before the server hears it.
    const conn = net.conns.find((x) => x.user === "alice")!;
    const first = JSON.parse(String(conn.c2s.at(-1))) as Record<string, unknown>;
    expect(first).toMatchObject({ type: "op", base: 2, key_epoch: 0 });
    a.close();
    net.drop(conn);
    const stored = JSON.parse(saved!) as { chain?: string; sync: { inflight: { sealed?: { data: string } } } };
    expect(stored.chain).toMatch(/^[0-9a-f]{64}$/);
    expect(stored.sync.inflight.sealed?.data).toBe(first["data"]);
    const again = mk();
    net.drain();
    const resent = net.log.filter((m) => m["type"] === "op" && m["from"] === "alice");
    expect(resent.length).toBe(1);
    expect(resent[0]!["data"]).toBe(first["data"]);
    expectSame([again, b], net);
    expect(title(b)).toBe("second");
  });

  it("stores a sealed snapshot every 100 versions, and joins start from it", () => {
    const { net, clients } = setup(["alice"]);
    const [a] = clients as [MontageClient];
    for (let i = 0; i < 105; i++) {
      a.submit([{ op: "set", path: ["meta", "n"], value: i }]);
      net.drain();
    }
    const snaps = net.log.filter((m) => m["type"] === "snapshot");
    expect(snaps.length).toBe(1);
    expect(snaps[0]).toMatchObject({ version: 100, key_epoch: 0 });
    expect(net.rooms.get("s1")!.snapshot?.version).toBe(100);
    const b = client(net, new FakeClock(), "bob");
    net.drain();
    expect(b.version).toBe(106);
    expect(b.doc).toEqual(a.doc);
    expect(meta(b)["n"]).toBe(104);
  });

  it("follows key rotations: edits wait for the new key", () => {
    const { net, clients } = setup(["alice", "bob"]);
    const [a, b] = clients as [MontageClient, MontageClient];
    a.submit([{ op: "set", path: ["title"], value: "before" }]);
    net.drain();
    const heard: { keyEpoch: number; haveKey: boolean }[] = [];
    a.on("keyRotated", (e) => heard.push(e));
    net.rotateKey("s1");
    net.drain();
    expect(heard).toEqual([{ keyEpoch: 1, haveKey: false }]);
    expect(a.keyEpoch).toBe(1);
    // No key for epoch 1 yet: the edit stays local.
    a.submit([{ op: "set", path: ["title"], value: "after" }]);
    net.drain();
    expect(a.pendingCount).toBe(1);
    expect(net.log.filter((m) => m["type"] === "op").length).toBe(1);
    const k1 = SessionKey.generate();
    a.addKey(1, k1);
    b.addKey(1, k1.toText());
    net.drain();
    expect(net.log.filter((m) => m["type"] === "op").at(-1)).toMatchObject({ key_epoch: 1 });
    expectSame([a, b], net);
    expect(title(b)).toBe("after");
    // A newcomer needs both keys: the history holds both epochs.
    const both = new Keyring(KEY);
    both.add(1, k1);
    const c = client(net, new FakeClock(), "carol", both.toText());
    net.drain();
    expect(title(c)).toBe("after");
    const d = client(net, new FakeClock(), "dave", KEY);
    const stopped: SealError[] = [];
    d.on("undecryptable", (e) => stopped.push(e));
    net.drain();
    expect(stopped[0]?.kind).toBe("no_key");
  });

  it("reseals an in-flight edit whose key epoch was retired meanwhile", () => {
    const { net, clients } = setup(["alice", "bob"]);
    const [a, b] = clients as [MontageClient, MontageClient];
    const k1 = SessionKey.generate();
    a.addKey(1, k1);
    b.addKey(1, k1);
    a.submit([{ op: "set", path: ["title"], value: "racing" }]);
    net.rotateKey("s1"); // `key_rotated` is queued before the edit reaches the server
    net.drain();
    const ops = net.log.filter((m) => m["type"] === "op");
    expect(ops.map((m) => m["key_epoch"])).toEqual([0, 1]);
    expectSame([a, b], net);
    expect(title(b)).toBe("racing");
  });

  it("seals comment texts and annotations, and opens them for the app", async () => {
    const { net, clients } = setup(["alice", "bob"]);
    const [a, b] = clients as [MontageClient, MontageClient];
    const seen: Comment[] = [];
    b.on("commentAdded", (c) => seen.push(c));
    const p = a.addComment({ content: "the secret is 42", annotations: [{ target: "L1" }] });
    net.drain();
    const mine = await p;
    expect(mine.content).toBe("the secret is 42");
    expect(seen[0]?.content).toBe("the secret is 42");
    expect(seen[0]?.annotations).toEqual([{ target: "L1" }]);
    const stored = net.rooms.get("s1")!.comments[0]!;
    expect(String(stored["content"])).toMatch(/^e2e1:0:/);
    expect(stored["annotations"]).toEqual([]);
    expect(wire(net)).not.toMatch(/secret is|target/);
    expect(b.openComment(stored as unknown as Comment).content).toBe("the secret is 42");
  });

  it("seals uploads with the current epoch's key and opens downloads", async () => {
    const { net } = setup([]);
    // A fake asset store: what the server keeps is what it was sent.
    const stored = new Map<string, Uint8Array>();
    const calls: string[] = [];
    const fetch: FetchLike = async (url, init) => {
      calls.push(`${init.method} ${url}`);
      const answer = (status: number, body: string | Uint8Array) => ({
        status,
        ok: status < 300,
        headers: { get: () => null },
        text: async () => (typeof body === "string" ? body : ""),
        arrayBuffer: async () => (body as Uint8Array).slice().buffer,
      });
      if (init.method === "POST") {
        const id = `a${stored.size + 1}`;
        stored.set(id, Uint8Array.from(init.body as Uint8Array));
        return answer(201, JSON.stringify({ id, kind: "sealed", format: "sealed", bytes: (init.body as Uint8Array).length }));
      }
      const bytes = stored.get(url.split("/").pop()!);
      return bytes === undefined ? answer(404, '{"code":"not_found","message":"no such asset"}') : answer(200, bytes);
    };
    const withFetch = (keys: Keyring | string, user = "alice") =>
      new MontageClient({ url: "ws://montage.test/v1/ws", token: `t-${user}`, session: "s1", clientId: `f-${user}`, socket: net.factory(user), timers: new FakeClock(), random: () => 0, keys, fetch });
    const c = withFetch(KEY.toText());
    net.drain();
    const picture = new TextEncoder().encode("\x89PNG MARKER-upload-3c9e10");
    const info = await c.upload(picture);
    expect(info).toMatchObject({ id: "a1", kind: "sealed" });
    expect(calls).toEqual(["POST http://montage.test/v1/assets?session=s1"]);
    const kept = stored.get("a1")!;
    expect(new TextDecoder().decode(kept.subarray(0, 8))).toBe("MTGSEAL1");
    expect(assetEpoch(kept)).toBe(0);
    expect(Buffer.from(kept).includes(Buffer.from("MARKER"))).toBe(false);
    expect(await c.download("a1")).toEqual(picture);
    // A Blob is read first.
    await c.upload(new Blob([picture]));
    expect(await c.download("a2")).toEqual(picture);
    // After a rotation, uploads wait for the new key, then go out under it; old assets still open.
    net.rotateKey("s1");
    net.drain();
    await expect(c.upload(picture)).rejects.toMatchObject({ kind: "no_key", keyEpoch: 1 });
    c.addKey(1, SessionKey.generate());
    await c.upload(picture);
    expect(assetEpoch(stored.get("a3")!)).toBe(1);
    expect(await c.download("a3")).toEqual(picture);
    expect(await c.download("a1")).toEqual(picture);
    // Another key, or a missing asset: a clear error rather than bytes.
    const wrong = withFetch(SessionKey.generate().toText(), "mallory");
    await expect(wrong.download("a1")).rejects.toMatchObject({ kind: "tampered" });
    await expect(c.download("nope")).rejects.toMatchObject({ status: 404, code: "not_found" });
    // The plain SessionsApi calls, on the same store.
    expect(await c.connection.api.asset("a1")).toEqual(kept);
    expect(await c.connection.api.openSealedAsset("a1", "s1", new Keyring(KEY))).toEqual(picture);
  });

  it("stops with a clear error on a wrong key, a changed payload or a broken chain", async () => {
    const { net, clients } = setup(["alice"]);
    const [a] = clients as [MontageClient];
    a.submit([{ op: "set", path: ["title"], value: "x" }]);
    a.submit([{ op: "set", path: ["title"], value: "y" }]);
    net.drain();
    a.submit([{ op: "set", path: ["title"], value: "z" }]);
    net.drain();
    expect(net.history.length).toBe(4);

    let n = 0;
    const join = (keys: string | null) => {
      const user = `u${++n}`;
      const c = client(net, new FakeClock(), user, keys);
      const errors: SealError[] = [];
      c.on("undecryptable", (e) => errors.push(e));
      const ready = c.ready().then(
        () => null,
        (e: unknown) => e,
      );
      net.drain();
      return { c, user, errors, ready };
    };

    const wrong = join(SessionKey.generate().toText());
    expect(wrong.errors[0]?.kind).toBe("tampered");
    expect(wrong.errors[0]?.message).toBe("could not decrypt op 1 of session s1: wrong key for key epoch 0, or the payload was tampered with");
    expect(wrong.c.sealError).toBe(wrong.errors[0]);
    expect(wrong.c.connectionState).toBe("offline");
    expect(await wrong.ready).toBe(wrong.errors[0]);
    expect(wrong.c.doc).toBeNull();

    const plain = join(null);
    expect(plain.errors[0]?.message).toBe("session s1 is end-to-end encrypted: join it with its key");

    const room = net.rooms.get("s1")!;
    const second = room.history[1]!.sealed!;
    const good = { ...second };
    // A stored payload changed (its chain value made to match): it does not open.
    const bytes = Buffer.from(second.data, "base64");
    bytes[40]! ^= 1;
    second.data = bytes.toString("base64");
    const { chainHex, chainNext, parseChain } = await import("../src/index.js");
    second.chain = chainHex(chainNext(parseChain(room.history[0]!.sealed!.chain)!, 2, 0, second.data));
    const changed = join(KEY.toText());
    expect(changed.errors[0]?.message).toMatch(/^could not decrypt op 2 of session s1/);

    // The payload back, its chain value not: the history does not add up.
    Object.assign(second, good, { chain: "00".repeat(32) });
    const forked = join(KEY.toText());
    expect(forked.errors[0]?.kind).toBe("chain");
    expect(forked.errors[0]?.message).toMatch(/^the session's history does not add up/);

    // A live client stops too when a broadcast does not add up.
    Object.assign(second, good);
    const live = join(KEY.toText());
    expect(live.errors).toEqual([]);
    expect(title(live.c)).toBe("z");
    const conn = net.conns.find((x) => x.user === live.user)!;
    conn.s2c.push(JSON.stringify({ type: "op", session: "s1", version: 5, user: "mallory", data: second.data, key_epoch: 0, chain: "11".repeat(32) }));
    net.drain();
    expect(live.errors[0]?.kind).toBe("chain");
    expect(live.c.connectionState).toBe("offline");
  });

  it("writes a key check on opening an empty session, so a wrong key shows at the join", () => {
    const net = new FakeNet(newDocument());
    const clock = new FakeClock();
    // Two editors open the empty session at once: both send a key check, one is version 1 and
    // the other is dropped on its conflict, not sealed again.
    const a = client(net, clock, "alice");
    const b = client(net, clock, "bob");
    net.step(() => 0); // both sockets open (their joins queued)
    net.step(() => 0);
    expect(net.conns.length).toBe(2);
    for (const c of net.conns) net.deliverToServer(c); // both joins, at version 0
    net.drain();
    const checks = net.log.filter((m) => m["type"] === "op");
    expect(checks.length).toBe(2);
    expect(checks.every((m) => m["base"] === 0)).toBe(true);
    expect(net.history.length).toBe(1);
    expect(a.version).toBe(1);
    expect(b.version).toBe(1);
    expect(a.pendingCount + b.pendingCount).toBe(0);
    expect(a.canUndo || b.canUndo).toBe(false);
    // Nothing typed yet, and a wrong key is found at once.
    const m = client(net, clock, "mallory", SessionKey.generate().toText());
    const errors: SealError[] = [];
    m.on("undecryptable", (e) => errors.push(e));
    net.drain();
    expect(errors[0]?.message).toBe("could not decrypt op 1 of session s1: wrong key for key epoch 0, or the payload was tampered with");
    expect(net.log.filter((x) => x["type"] === "op" && x["from"] === "mallory")).toEqual([]);
  });

  it("refuses keys on a plain session", () => {
    const net = new FakeNet(newDocument() as Json);
    const clock = new FakeClock();
    const plain = client(net, clock, "alice", null);
    net.drain();
    expect(plain.encrypted).toBe(false);
    const keyed = client(net, clock, "bob");
    const errors: SealError[] = [];
    keyed.on("undecryptable", (e) => errors.push(e));
    net.drain();
    expect(errors[0]?.message).toBe("session s1 is not end-to-end encrypted: join it without keys");
  });
});
