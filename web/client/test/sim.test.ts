// The Rust simulator (crates/ot/tests/it/sim.rs) over the TypeScript OT: N sites with one edit
// in flight and the rest composed, one server ordering edits, random schedules; every site
// must end equal to the server.
import { describe, expect, it } from "vitest";
import { type Json, type Op, SyncDoc, apply, deepEqual, transform } from "../src/index.js";
import * as fuzz from "./fuzz.js";

type ToClient = { ack: true; seq: number; version: number } | { ack: false; version: number; op: Op };

class Server {
  history: Op[] = [];
  constructor(public doc: Json) {}
  receive(base: number, op: Op): Op {
    let o = op;
    for (const h of this.history.slice(base)) o = transform(o, h, "right");
    this.doc = apply(this.doc, o).doc;
    this.history.push(o);
    return o;
  }
}

interface Site {
  sync: SyncDoc;
  outbox: { base: number; seq: number; op: Op }[];
  inbox: ToClient[];
}

function flush(s: Site) {
  const out = s.sync.takeOutgoing();
  if (out) s.outbox.push(out);
}

let rangesDelivered = 0;

function run(seed: number, steps: number, ranges = false) {
  const r = new fuzz.Rng(seed);
  const n = 3 + r.below(3);
  const d0 = fuzz.doc(r);
  const server = new Server(d0);
  const sites: Site[] = Array.from({ length: n }, () => ({ sync: new SyncDoc(d0, 0), outbox: [], inbox: [] }));
  const upload = (i: number) => {
    const s = sites[i]!.outbox.shift();
    if (!s) return false;
    const op = server.receive(s.base, s.op);
    const version = server.history.length;
    sites.forEach((c, j) => c.inbox.push(i === j ? { ack: true, seq: s.seq, version } : { ack: false, version, op }));
    return true;
  };
  const deliver = (i: number) => {
    const s = sites[i]!;
    const m = s.inbox.shift();
    if (!m) return false;
    if (m.ack) s.sync.ack(m.seq, m.version);
    else if (ranges && r.below(2) === 0) {
      // A range (docs/PROTOCOL.md "Ranges"): the consecutive server edits queued next, as one
      // edit standing on the version before the first. Composed side by side (no merging), which
      // is what the server's compose_range does where merging would not be exact.
      const from = m.version;
      let op: Op = [...m.op];
      let version = m.version;
      for (let more = r.below(4); more > 0; more--) {
        const next = s.inbox[0];
        if (next === undefined || next.ack) break;
        s.inbox.shift();
        op = [...op, ...next.op];
        version = next.version;
      }
      s.sync.remote(version, op, from - 1);
      if (version > from) rangesDelivered++;
    } else s.sync.remote(m.version, m.op);
    flush(s);
    return true;
  };
  for (let k = 0; k < steps; k++) {
    const i = r.below(n);
    const x = r.below(10);
    if (x <= 3) {
      const s = sites[i]!;
      s.sync.edit(fuzz.op(r, s.sync.doc));
      flush(s);
    } else if (x <= 6) upload(i);
    else for (let t = 0, m = 1 + r.below(3); t < m; t++) deliver(i);
  }
  for (let progress = true; progress; ) {
    progress = false;
    for (let i = 0; i < n; i++) {
      progress = upload(i) || progress;
      while (deliver(i)) progress = true;
    }
  }
  sites.forEach((s, i) => {
    expect(s.sync.pendingCount, `site ${i} idle`).toBe(0);
    expect(s.sync.version).toBe(server.history.length);
    if (!deepEqual(s.sync.doc, server.doc)) {
      expect.fail(`seed ${seed}: site ${i} diverged\n site: ${JSON.stringify(s.sync.doc)}\nserver: ${JSON.stringify(server.doc)}`);
    }
  });
  return server.history.length;
}

describe("multi-site simulator over the TypeScript OT", () => {
  it("converges over 1500 random schedules", () => {
    let versions = 0;
    for (let seed = 0; seed < 1500; seed++) versions += run(seed, 60);
    expect(versions).toBeGreaterThan(1500 * 5);
  });
  it("converges over long schedules", () => {
    for (let seed = 10_000; seed < 10_010; seed++) run(seed, 1500);
  });
  it("converges when server edits arrive as ranges over in-flight and pending edits", () => {
    rangesDelivered = 0;
    for (let seed = 20_000; seed < 21_000; seed++) run(seed, 60, true);
    expect(rangesDelivered).toBeGreaterThan(1000);
  });
});
