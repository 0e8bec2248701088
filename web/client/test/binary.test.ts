// The binary subprotocol `montage.v1.proto` (src/binary.ts): the shared vectors written by
// crates/protocol/tests/it/binary.rs (every message type in both forms, as the Rust server maps
// them), hostile frames, RFC 3339 timestamps as the server writes them, and clients speaking
// binary beside JSON ones on the fake server (test/fakenet.ts).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  FrameError,
  binaryFrames,
  decodeClientFrame,
  decodeServerFrame,
  encodeClientFrame,
  encodeServerFrame,
  formatTimestamp,
  parseTimestamp,
} from "../src/binary.js";
import { ClientFrameSchema, NodeSchema, Role, ServerFrameSchema, type Node } from "../src/gen/montage_pb.js";
import {
  type Json,
  type JsonObject,
  MontageClient,
  MontageConnection,
  deepEqual,
  newDocument,
} from "../src/index.js";
import { FakeClock, FakeNet, fakeJwt } from "./fakenet.js";
import * as fuzz from "./fuzz.js";

interface Vector {
  kind: "client" | "server";
  json: Record<string, unknown>;
  binary: string;
}
const vectors = JSON.parse(readFileSync(fileURLToPath(new URL("../../test-vectors/binary-frames.json", import.meta.url)), "utf8")) as Vector[];
const bytesOf = (v: Vector) => new Uint8Array(Buffer.from(v.binary, "base64"));
const label = (v: Vector, i: number) => `${v.kind} vector ${i} (${String(v.json["type"])})`;

describe("shared vectors (crates/protocol/tests/it/binary.rs)", () => {
  it("cover every message type of both directions", () => {
    const types = (kind: string) => new Set(vectors.filter((v) => v.kind === kind).map((v) => v.json["type"]));
    expect(types("client").size).toBe(19);
    expect(types("server").size).toBe(21);
  });

  it("a server frame from Rust decodes to its JSON form, and the TypeScript encoding reads back the same", () => {
    for (const [i, v] of vectors.entries()) {
      if (v.kind !== "server") continue;
      expect(decodeServerFrame(bytesOf(v)), label(v, i)).toStrictEqual(v.json);
      expect(decodeServerFrame(encodeServerFrame(v.json)), label(v, i)).toStrictEqual(v.json);
    }
  });

  it("a client frame encodes to what the Rust bytes decode to, and back to its JSON form", () => {
    for (const [i, v] of vectors.entries()) {
      if (v.kind !== "client") continue;
      const rust = decodeClientFrame(bytesOf(v));
      expect(rust, label(v, i)).toStrictEqual(v.json);
      const ours = encodeClientFrame(v.json);
      expect(decodeClientFrame(ours), label(v, i)).toStrictEqual(rust);
    }
  });

  it("a typing edit is about a third of its JSON size", () => {
    const msg = { type: "op", session: "a1b2c3d4", base: 1234, seq: 56, ops: [{ op: "text", path: ["caption"], pos: 17, ins: "e" }] };
    expect(encodeClientFrame(msg).length * 2).toBeLessThan(JSON.stringify(msg).length);
  });
});

/** A server frame of one `set` edit whose value is `nodes`. */
function opWithValue(nodes: Node[]): Uint8Array {
  return toBinary(
    ServerFrameSchema,
    create(ServerFrameSchema, {
      rid: { case: "ridNumber", value: 4n },
      msg: {
        case: "op",
        value: { session: "s", version: 1n, user: "u", ops: [{ path: [{ seg: { case: "key", value: "title" } }], op: { case: "set", value: { value: { nodes } } } }] },
      },
    }),
  );
}
const node = (kind: Node["kind"], key = ""): Node => create(NodeSchema, { key, kind });

describe("hostile binary frames", () => {
  const refused = (bytes: Uint8Array, what: RegExp) => {
    expect(() => decodeServerFrame(bytes)).toThrow(FrameError);
    expect(() => decodeServerFrame(bytes)).toThrow(what);
  };

  it("are refused with a FrameError saying why", () => {
    refused(new Uint8Array([0xff, 0xff, 0xff]), /protobuf/);
    refused(toBinary(ServerFrameSchema, create(ServerFrameSchema, { rid: { case: "ridString", value: "x" } })), /no message/);
    refused(opWithValue([node({ case: "list", value: 0xffff_ffff })]), /claims more items/);
    refused(opWithValue([node({ case: "int", value: 1n }), node({ case: "int", value: 2n })]), /after its end/);
    refused(opWithValue([node({ case: "object", value: 2 }), node({ case: "int", value: 2n }, "a")]), /missing nodes|claims more/);
    refused(opWithValue([node({ case: undefined })]), /no kind/);
    for (const bad of [NaN, Infinity, -Infinity]) refused(opWithValue([node({ case: "number", value: bad })]), /finite/);
    const role = create(ServerFrameSchema, { msg: { case: "roleChanged", value: { session: "s", user: "u", role: 9 as Role } } });
    refused(toBinary(ServerFrameSchema, role), /unknown role/);
    const tier = create(ServerFrameSchema, { msg: { case: "tier", value: { tier: 0, fps: 5, resolution: [1] } } });
    refused(toBinary(ServerFrameSchema, tier), /width and a height/);
  });

  it("a deep value reads back without recursion", () => {
    // As deep as an app's value could be (JSON.stringify recurses too), through both ways.
    let v: Json = "leaf";
    for (let i = 0; i < 1_000; i++) v = i % 2 === 0 ? [v] : { k: v };
    const msg = { type: "presence", session: "s", user: "u", data: v };
    expect(decodeServerFrame(encodeServerFrame(msg))).toStrictEqual(msg);
    // Far deeper than a recursive reader of nested messages could go: the flat form has none.
    const nodes: Node[] = [];
    for (let i = 0; i < 20_000; i++) nodes.push(i % 2 === 0 ? node({ case: "object", value: 1 }, i === 0 ? "" : "k") : node({ case: "list", value: 1 }, "k"));
    nodes.push(node({ case: "string", value: "leaf" }, "k"));
    const m = decodeServerFrame(opWithValue(nodes));
    let depth = 0;
    let x = (m["ops"] as { value: unknown }[])[0]!.value;
    while (typeof x === "object" && x !== null) {
      x = Array.isArray(x) ? x[0] : (x as Record<string, unknown>)["k"];
      depth++;
    }
    expect(depth).toBe(20_000);
    expect(x).toBe("leaf");
  });

  it("a key named __proto__ stays an own key, as JSON.parse keeps it", () => {
    const m = decodeServerFrame(opWithValue([node({ case: "object", value: 1 }), node({ case: "int", value: 1n }, "__proto__")]));
    const value = (m["ops"] as { value: Record<string, unknown> }[])[0]!.value;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(["__proto__"]);
    expect(value).toStrictEqual(JSON.parse('{"__proto__":1}'));
  });

  it("every truncation of every vector decodes or throws a FrameError, nothing else", () => {
    let refusedCount = 0;
    for (const v of vectors) {
      const b = bytesOf(v);
      for (let n = 0; n < b.length; n += Math.max(1, Math.floor(b.length / 40))) {
        try {
          if (v.kind === "server") decodeServerFrame(b.subarray(0, n));
          else decodeClientFrame(b.subarray(0, n));
        } catch (e) {
          expect(e).toBeInstanceOf(FrameError);
          refusedCount++;
        }
      }
    }
    expect(refusedCount).toBeGreaterThan(100);
  });

  it("random bytes decode or throw a FrameError", () => {
    const r = new fuzz.Rng(7);
    for (let i = 0; i < 3000; i++) {
      const b = new Uint8Array(r.below(64));
      for (let j = 0; j < b.length; j++) b[j] = r.below(256);
      try {
        decodeServerFrame(b);
      } catch (e) {
        expect(e).toBeInstanceOf(FrameError);
      }
    }
  });

  it("a message no frame can carry is refused before it is sent", () => {
    expect(() => encodeClientFrame({ type: "teleport" })).toThrow(/unknown message type/);
    expect(() => encodeClientFrame({ type: "op", session: "s", base: -1, seq: 1, ops: [] })).toThrow(/invalid op message: base/);
    expect(() => encodeClientFrame({ type: "op", session: "s", base: 0, seq: 1, ops: [{ op: "warp", path: [] }] })).toThrow(/unknown op/);
    expect(() => encodeClientFrame({ type: "set_role", session: "s", user: "u", role: "admin" })).toThrow(/role must be/);
  });

  it("values travel as JSON.stringify reads them", () => {
    const data = { a: undefined, b: [undefined, NaN, () => 1], c: new Date(0), n: 2 ** 60, u: 2 ** 63, f: 0.5 };
    const sent = decodeClientFrame(encodeClientFrame({ type: "presence", session: "s", data }));
    expect(sent["data"]).toStrictEqual(JSON.parse(JSON.stringify(data)));
    const cyclic: Record<string, unknown> = {};
    cyclic["self"] = cyclic;
    expect(() => encodeClientFrame({ type: "presence", session: "s", data: cyclic })).toThrow(/refers to itself/);
  });
});

describe("timestamps", () => {
  it("are written as the server writes them (prost_types::Timestamp)", () => {
    const cases: [bigint, number, string][] = [
      [0n, 0, "1970-01-01T00:00:00Z"],
      [1_795_650_001n, 250_000_000, "2026-11-25T23:40:01.250Z"],
      [1_795_650_001n, 250_000, "2026-11-25T23:40:01.000250Z"],
      [1_795_650_001n, 7, "2026-11-25T23:40:01.000000007Z"],
      [951_782_400n, 0, "2000-02-29T00:00:00Z"],
      [-1n, 999_000_000, "1969-12-31T23:59:59.999Z"],
      [253_402_300_800n, 0, "+10000-01-01T00:00:00Z"],
      [-62_198_755_200n, 0, "-0001-01-01T00:00:00Z"],
      [5n, -1, "1970-01-01T00:00:04.999999999Z"],
    ];
    for (const [seconds, nanos, text] of cases) {
      expect(formatTimestamp({ seconds, nanos }), text).toBe(text);
      const back = parseTimestamp(text);
      expect(formatTimestamp(back)).toBe(text);
    }
    expect(parseTimestamp("2026-11-26T01:40:01.25+02:00")).toEqual({ seconds: 1_795_650_001n, nanos: 250_000_000 });
    expect(() => parseTimestamp("yesterday")).toThrow(FrameError);
  });
});

// ---- connections --------------------------------------------------------------------------

function setup(n: number, doc: Json, binary: (i: number) => boolean) {
  const net = new FakeNet(doc);
  const clock = new FakeClock();
  const clients = Array.from(
    { length: n },
    (_, i) =>
      new MontageClient({
        url: "ws://montage.test/v1/ws",
        token: fakeJwt(`u${i}`),
        session: "s1",
        clientId: `c${i}`,
        socket: net.factory(`u${i}`),
        timers: clock,
        random: () => 0,
        binary: binary(i) ? binaryFrames : undefined,
      }),
  );
  net.drain();
  return { net, clock, clients };
}

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

describe("a client in binary mode", () => {
  it("asks for montage.v1.proto alone, sends binary frames, and converges with a JSON client", () => {
    const { net, clients } = setup(2, newDocument(), (i) => i === 0);
    const [a, b] = clients as [MontageClient, MontageClient];
    expect(net.conns.map((c) => c.binary)).toEqual([true, false]);
    expect(a.connection.binary).toBe(true);
    a.submit([{ op: "set", path: ["title"], value: "from binary" }]);
    b.submit([{ op: "set", path: ["meta", "k"], value: 1.5 }]);
    a.setPresence({ cursor: [1, 2] });
    const frames = net.conns[0]!.c2s;
    expect(frames.length).toBeGreaterThan(0);
    expect(frames.every((f) => f instanceof Uint8Array)).toBe(true);
    net.drain();
    expect((a.doc as JsonObject)["title"]).toBe("from binary");
    expect((b.doc as JsonObject)["title"]).toBe("from binary");
    expect(((a.doc as JsonObject)["meta"] as JsonObject)["k"]).toBe(1.5);
    expect(b.presence.get("u0")).toEqual({ cursor: [1, 2] });
  });

  it("converges with JSON clients over random schedules with dropped connections", () => {
    for (let seed = 0; seed < 40; seed++) {
      const r = new fuzz.Rng(seed);
      const n = 2 + r.below(3);
      const { net, clock, clients } = setup(n, fuzz.doc(r), (i) => (i + seed) % 2 === 0);
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
      const binary = clients.filter((c) => c.connection.binary).length;
      expect(binary).toBeGreaterThan(0);
      expect(net.conns.filter((c) => c.binary)).toHaveLength(binary);
      for (const c of clients) {
        expect(c.pendingCount).toBe(0);
        expect(c.version).toBe(net.history.length);
        if (!deepEqual(c.doc, net.doc)) expect.fail(`seed ${seed}: ${c.clientId} (binary: ${c.connection.binary}) diverged`);
      }
    }
  });

  it("stops with not_supported when the server does not choose the subprotocol", () => {
    const net = new FakeNet(newDocument());
    net.speaksBinary = false;
    const clock = new FakeClock();
    const conn = new MontageConnection({ url: "ws://montage.test/v1/ws", token: fakeJwt("u"), socket: net.factory("u"), timers: clock, binary: binaryFrames });
    const errors: { code: string; message: string }[] = [];
    conn.on("error", (e) => errors.push(e));
    net.drain();
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe("not_supported");
    expect(errors[0]!.message).toContain("montage.v1.proto");
    expect(conn.connectionState).toBe("offline");
    expect(clock.tasks.size).toBe(0); // no retry scheduled
    expect(conn.protocolError?.code).toBe("not_supported");
  });

  it("rejects ready() with not_supported when the server does not choose the subprotocol", async () => {
    const net = new FakeNet(newDocument());
    net.speaksBinary = false;
    const clock = new FakeClock();
    const c = new MontageClient({ url: "ws://montage.test/v1/ws", token: fakeJwt("u"), session: "s1", socket: net.factory("u"), timers: clock, binary: binaryFrames });
    const ready = c.ready();
    net.drain();
    await expect(ready).rejects.toMatchObject({ name: "ServerError", code: "not_supported" });
    await expect(c.ready()).rejects.toMatchObject({ code: "not_supported" });
  });

  it("reports a frame it can't read as bad_frame and keeps going", () => {
    const { net, clients } = setup(1, newDocument(), () => true);
    const a = clients[0]!;
    const errors: string[] = [];
    a.connection.on("error", (e) => errors.push(`${e.code}: ${e.message}`));
    const c = net.conns[0]!;
    c.s2c.push(new Uint8Array([0xff, 0xff]), '{"type":"authed","exp":1}');
    net.drain();
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/^bad_frame: .*montage\.v1/);
    expect(errors[1]).toMatch(/^bad_frame: .*text frame/);
    a.submit([{ op: "set", path: ["title"], value: "still here" }]);
    net.drain();
    expect(a.pendingCount).toBe(0);
  });

  it("answers a message no frame can carry with a local bad_request, as the server would", async () => {
    const { net, clients } = setup(1, newDocument(), () => true);
    const errors: { code: string; rid?: string }[] = [];
    clients[0]!.connection.on("error", (e) => errors.push(e));
    expect(clients[0]!.connection.sendMessage({ type: "teleport", rid: "x" })).toBe(true);
    await Promise.resolve();
    expect(errors).toEqual([{ code: "bad_request", message: expect.stringContaining('unknown message type "teleport"'), rid: "x" }]);
    net.drain();
  });
});
