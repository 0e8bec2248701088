// `diff` (src/diff.ts), the port of crates/ot/src/diff.rs: the edit between two documents gives
// the second exactly, touches only what differs, and, transformed past a concurrent edit
// elsewhere, leaves that edit's effect standing. The cases mirror crates/ot/tests/it/diff.rs;
// then `restoreTo` on a session, undone with `undo()`.
import { describe, expect, it } from "vitest";
import {
  type Component,
  type Json,
  type JsonObject,
  MAX_PATH_DEPTH,
  type Op,
  type Path,
  add,
  apply,
  applyUnchecked,
  clone,
  decodeOp,
  deepEqual,
  del,
  diff,
  diffUnder,
  encodeOp,
  findElement,
  ins,
  isPrefix,
  mov,
  newDocument,
  restoreElement,
  set,
  textDelete,
  textInsert,
  transform,
} from "../src/index.js";
import { longestIncreasing } from "../src/diff.js";
import { TextOp } from "../src/text.js";
import { FakeClock, FakeNet, fakeClient } from "./fakenet.js";
import * as fuzz from "./fuzz.js";
import { at, lenAt, textLen } from "./fuzz.js";

const image = (id: string, opacity: number): JsonObject => ({ id, kind: "image", asset: "a1", x: 0, y: 0, w: 100, h: 50, opacity });
const caption = (id: string, text: string): JsonObject => ({ id, kind: "text", text, x: 0, y: 0, size: 12, color: "#fff" });

function doc(layers: Json[], meta: JsonObject): JsonObject {
  return { title: "", assets: {}, meta, canvas: { width: 1920, height: 1080, layers }, timeline: { tracks: [] } };
}
const layers = (ls: Json[]) => doc(ls, {});
const meta = (m: JsonObject) => doc([], m);

/** An edit in a form `toEqual` compares (a text component as its parts). */
const show = (op: readonly Component[]) => op.map((c) => (c.op === "text" ? { op: "text", path: c.path, parts: c.text.parts } : c));
const text = (path: Path, ...parts: TextOp["parts"]): Component => ({ op: "text", path, text: TextOp.fromParts(parts) });

/** `diff(a, b)`, after checking that it turns `a` into `b` through the shape-checked `apply`. */
function restores(a: Json, b: Json): Op {
  const d = diff(a, b);
  const got = apply(a, d).doc;
  if (!deepEqual(got, b)) {
    expect.fail(`diff: ${JSON.stringify(encodeOp(d))}\n got: ${JSON.stringify(got)}\nwant: ${JSON.stringify(b)}`);
  }
  return d;
}

describe("diff", () => {
  it("equal documents give the empty op", () => {
    for (let seed = 0; seed < 200; seed++) {
      const a = fuzz.doc(new fuzz.Rng(seed));
      expect(diff(a, clone(a)), `seed ${seed}`).toEqual([]);
    }
    expect(diff(newDocument(), newDocument())).toEqual([]);
  });

  it("an added layer is one ins", () => {
    const a = layers([image("A", 1), image("B", 1)]);
    const b = layers([image("A", 1), caption("C", "hi"), image("B", 1)]);
    expect(show(restores(a, b))).toEqual(show([ins(["canvas", "layers", 1], caption("C", "hi"))]));
  });

  it("removed layers are deleted last first", () => {
    const a = layers([image("A", 1), image("B", 1), image("C", 1)]);
    const b = layers([image("B", 1)]);
    expect(show(restores(a, b))).toEqual([del(["canvas", "layers", 2]), del(["canvas", "layers", 0])]);
  });

  it("reordered layers move the fewest", () => {
    const l = (ids: string) => layers([...ids].map((c) => image(c, 1)));
    // The first layer to the top: one move, not three.
    expect(restores(l("ABCD"), l("BCDA"))).toEqual([mov(["canvas", "layers", 0], 3)]);
    expect(restores(l("ABCD"), l("DABC"))).toEqual([mov(["canvas", "layers", 3], 0)]);
    expect(restores(l("ABCDE"), l("EDCBA"))).toHaveLength(4);
    expect(restores(l("ABCDEF"), l("BADCFE"))).toHaveLength(3);
    // Delete, move, insert and edit at once.
    const a = layers([image("A", 1), image("B", 1), image("C", 1), image("D", 1)]);
    const b = layers([image("D", 0.5), caption("E", "new"), image("B", 1)]);
    expect(restores(a, b).map((c) => c.op)).toEqual(["del", "del", "mov", "ins", "set"]);
  });

  it("keeps a longest increasing run in place", () => {
    const kept = (seq: number[]) => longestIncreasing(seq, seq.length).flatMap((k, v) => (k ? [v] : []));
    expect(kept([])).toEqual([]);
    expect(kept([0, 1, 2])).toEqual([0, 1, 2]);
    expect(kept([2, 1, 0])).toEqual([0]);
    expect(kept([1, 0, 3, 2, 5, 4])).toEqual([0, 2, 4]);
    expect(kept([3, 0, 1, 2])).toEqual([0, 1, 2]);
  });

  it("a changed layer property is one set", () => {
    const a = layers([image("A", 1), image("B", 0.5)]);
    const b = layers([image("A", 1), image("B", 0.8)]);
    expect(restores(a, b)).toEqual([set(["canvas", "layers", 1, "opacity"], 0.8)]);
    // A field gained and a field lost.
    const withCrop = { ...image("B", 0.5), crop: { x: 0, y: 0, w: 10, h: 10 } };
    const rotated = { ...image("B", 0.5), rotation: 90 };
    expect(restores(layers([withCrop]), layers([rotated]))).toEqual([
      del(["canvas", "layers", 0, "crop"]),
      set(["canvas", "layers", 0, "rotation"], 90),
    ]);
  });

  it("a caption edited in the middle is one text op, counted in scalars", () => {
    const p = ["canvas", "layers", 0, "text"];
    const a = layers([caption("T", "Nuit à Kyōto 漢字 🎬 fin")]);
    const b = layers([caption("T", "Nuit à Tōkyō 漢字 🎬 fin")]);
    // "Nuit à " is 7 scalars (8 UTF-8 bytes, 7 UTF-16 units).
    expect(show(restores(a, b))).toEqual(show([text(p, { retain: 7 }, { insert: "Tōkyō" }, { delete: 5 })]));
    // Only an insert, only a delete; multi-byte characters and surrogate pairs on the edges.
    const t = (s: string) => layers([caption("T", s)]);
    expect(show(restores(t("🎬🎬"), t("🎬é🎬")))).toEqual(show([textInsert(p, 1, "é")]));
    expect(show(restores(t("漢é\u0301字"), t("漢字")))).toEqual(show([textDelete(p, 1, 2)]));
    // Two emoji sharing their high surrogate: the pair is replaced whole, at scalar 2.
    expect(show(restores(t("x 🎬 y"), t("x 🎥 y")))).toEqual(show([text(p, { retain: 2 }, { insert: "🎥" }, { delete: 1 })]));
    expect(show(restores(t("🎬🎬 z"), t("🎬🎥 z")))).toEqual(show([text(p, { retain: 1 }, { insert: "🎥" }, { delete: 1 })]));
    restores(t(""), t("🎬 x"));
    restores(t("🎬 x"), t(""));
    expect(diff(t("🎬"), t("🎬"))).toEqual([]);
  });

  it("a long caption is edited in place", () => {
    const long = "漢字🎬 caption ".repeat(100);
    const chars = [...long];
    const at = Math.floor(chars.length / 2);
    const edited = chars.slice(0, at).join("") + "X" + chars.slice(at).join("");
    const d = restores(meta({ note: long }), meta({ note: edited }));
    expect(show(d)).toEqual(show([textInsert(["meta", "note"], at, "X")]));
  });

  it("a long text diff is linear (a million scalars)", () => {
    const long = "é".repeat(1_000_000);
    const edited = long.slice(0, 500_000) + "ab" + long.slice(500_001);
    const d = restores(meta({ note: long }), meta({ note: edited }));
    expect(show(d)).toEqual(show([text(["meta", "note"], { retain: 500_000 }, { insert: "ab" }, { delete: 1 })]));
  });

  it("nested objects recurse per key, in the Rust engine's key order", () => {
    const a = meta({ a: { b: 1, c: { d: "x" } }, gone: true });
    const b = meta({ new: [1], a: { c: { e: null, d: "x" }, b: 2 } });
    expect(restores(a, b)).toEqual([
      set(["meta", "a", "b"], 2),
      set(["meta", "a", "c", "e"], null),
      del(["meta", "gone"]),
      set(["meta", "new"], [1]),
    ]);
    // BTreeMap order is by scalar value: U+FF61 before U+1F600, though its UTF-16 unit is larger.
    expect(restores(meta({}), meta({ "😀": 1, "｡": 2, Z: 3, a: 4 })).map((c) => c.path[1])).toEqual(["Z", "a", "｡", "😀"]);
  });

  it("numbers are set, and a change of type is set", () => {
    const d = restores(meta({ n: 1, k: "s", f: false }), meta({ n: 1.5, k: 5, f: true }));
    expect(d).toEqual([set(["meta", "f"], true), set(["meta", "k"], 5), set(["meta", "n"], 1.5)]);
  });

  it("lists without ids keep their common ends", () => {
    const l = (xs: number[]) => meta({ list: xs });
    const at = (i: number) => ["meta", "list", i];
    expect(restores(l([1, 2, 3, 4, 5]), l([1, 9, 3, 4, 5]))).toEqual([set(at(1), 9)]);
    expect(restores(l([1, 2, 3, 4, 5]), l([1, 2, 7, 8, 4, 5]))).toEqual([set(at(2), 7), ins(at(3), 8)]);
    expect(restores(l([1, 2, 3, 4, 5]), l([1, 5]))).toEqual([del(at(3)), del(at(2)), del(at(1))]);
    expect(restores(l([1, 2]), l([0, 1, 2]))).toEqual([ins(at(0), 0)]);
    // Objects without ids, equal lengths: recursion index by index.
    expect(restores(meta({ keys: [{ t: 0, v: 1 }, { t: 1, v: 2 }] }), meta({ keys: [{ t: 0, v: 1 }, { t: 1, v: 3 }] }))).toEqual([
      set(["meta", "keys", 1, "v"], 3),
    ]);
    // Repeated ids can't be matched: by index, still exact.
    restores(layers([image("A", 1), image("A", 0.5), image("B", 1)]), layers([image("B", 1), image("A", 0.5)]));
  });

  it("paths stay decodable below MAX_PATH_DEPTH", () => {
    const chain = (levels: number, leaf: number) => {
      let x: Json = { leaf };
      for (let i = 0; i < levels; i++) x = { d: x };
      return x;
    };
    const a = { meta: chain(100, 1) };
    const b = { meta: chain(100, 2) };
    const d = diff(a, b);
    expect(applyUnchecked(a, d).doc).toEqual(b);
    expect(d).toHaveLength(1);
    expect(d[0]!.path).toHaveLength(MAX_PATH_DEPTH);
    expect(decodeOp(JSON.parse(JSON.stringify(encodeOp(d))))).toEqual(d);
  });

  it("diffUnder restores a layer that moved", () => {
    // The layer is at index 1 at head and index 0 in the old version: found by id by the caller.
    const head = layers([image("A", 1), image("B", 0.9)]);
    const old = layers([image("B", 0.2), image("A", 1)]);
    const at = ["canvas", "layers", 1];
    const d = diffUnder(at, image("B", 0.9), image("B", 0.2));
    expect(d).toEqual([set(["canvas", "layers", 1, "opacity"], 0.2)]);
    expect(apply(head, d).doc).toEqual(layers([image("A", 1), image("B", 0.2)]));
    expect(findElement(old, "B")).toEqual(["canvas", "layers", 0]);
  });

  it("a restored opacity survives a concurrent rename", () => {
    const l2 = { ...image("L2", 1), name: "Sky" };
    const version = layers([image("L1", 0.3), l2]);
    const head = layers([image("L1", 0.9), l2]);
    const restore = diff(head, version);
    expect(restore).toEqual([set(["canvas", "layers", 0, "opacity"], 0.3)]);
    const rename = [textInsert(["canvas", "layers", 1, "name"], 3, " at dusk")];
    const want = (d: JsonObject) => {
      const ls = (d["canvas"] as JsonObject)["layers"] as JsonObject[];
      expect(ls[0]!["opacity"]).toBe(0.3);
      expect(ls[1]!["name"]).toBe("Sky at dusk");
    };
    want(apply(apply(head, rename).doc, transform(restore, rename, "right")).doc);
    want(apply(apply(head, restore).doc, transform(rename, restore, "right")).doc);
  });

  it("a restored layer and concurrent list edits both stand", () => {
    const version = layers([image("A", 1), image("B", 1), image("C", 1)]);
    const head = layers([image("A", 1), image("C", 1)]);
    const restore = diff(head, version);
    expect(restore).toEqual([ins(["canvas", "layers", 1], image("B", 1))]);
    const other = [ins(["canvas", "layers", 0], image("D", 1)), mov(["canvas", "layers", 2], 0)];
    const x = apply(apply(head, other).doc, transform(restore, other, "right")).doc;
    expect(x).toEqual(layers([image("C", 1), image("D", 1), image("A", 1), image("B", 1)]));
  });
});

// ---- random documents and histories ------------------------------------------------------


/** Random edits of layer `i` only (fields, text, media components, a whole replacement that keeps
 * the id), each valid against what the previous ones left. */
function layerEdits(r: fuzz.Rng, d: Json, i: number): Op {
  const lp = ["canvas", "layers", i];
  let scratch = d;
  const comps: Component[] = [];
  for (let n = 0, count = 1 + r.below(4); n < count; n++) {
    const isImage = at(scratch, [...lp, "kind"]) === "image";
    let c: Component | null = null;
    switch (r.below(9)) {
      case 0:
        c = set([...lp, "x"], r.num());
        break;
      case 1:
        c = add([...lp, "y"], r.num());
        break;
      case 2:
        if (isImage) c = set([...lp, "opacity"], r.below(5) / 4);
        else c = textInsert([...lp, "text"], r.below(textLen(scratch, [...lp, "text"]) + 1), r.word());
        break;
      case 3:
        c = isImage ? { op: "rotate", path: lp, by: 90 } : set([...lp, "size"], 1 + r.below(40));
        break;
      case 4:
        c = isImage ? { op: "adjust", path: lp, param: "brightness", value: (r.below(9) - 4) / 4 } : set([...lp, "color"], r.word());
        break;
      case 5:
        if (isImage) c = { op: "crop", path: lp, rect: { x: r.below(10), y: 0, w: 1 + r.below(50), h: 5 } };
        else {
          const len = textLen(scratch, [...lp, "text"]);
          if (len > 0) c = textDelete([...lp, "text"], r.below(len), 1);
        }
        break;
      case 6: {
        const p = [...lp, "name"];
        c = at(scratch, p) !== undefined ? textInsert(p, r.below(textLen(scratch, p) + 1), r.word()) : set(p, r.word());
        break;
      }
      case 7: {
        const l = r.chance(0.5) ? fuzz.imageLayer(r) : fuzz.textLayer(r);
        const id = at(scratch, [...lp, "id"]);
        if (id !== undefined) l["id"] = id;
        c = set(lp, l);
        break;
      }
      default:
        if (at(scratch, [...lp, "adjust"]) !== undefined) c = del([...lp, "adjust"]);
    }
    if (c === null) continue;
    try {
      scratch = apply(scratch, [c]).doc;
      comps.push(c);
    } catch {
      // Not valid here (e.g. a crop past the shape rules): skipped.
    }
  }
  return comps;
}

/** `a` and `a` after up to `max` random edits. */
function history(r: fuzz.Rng, min: number, max: number): [JsonObject, JsonObject] {
  const a = fuzz.doc(r);
  let b = a;
  for (let k = 0, n = min + r.below(max - min + 1); k < n; k++) b = apply(b, fuzz.op(r, b)).doc;
  return [a, b];
}

describe("diff over random documents", () => {
  it("turns any document into any other (and back), for 1000 seeds", () => {
    let differing = 0;
    for (let seed = 0; seed < 1000; seed++) {
      const r = new fuzz.Rng(seed);
      const [a, b] = history(r, 0, 5);
      if (restores(a, b).length > 0) differing++;
      restores(b, a);
      restores(a, fuzz.doc(r));
    }
    // A generator change that stops producing differing documents fails here.
    expect(differing).toBeGreaterThan(700);
  });

  it("a reordered id list moves all but a longest run in order, for 300 permutations", () => {
    for (let seed = 0; seed < 300; seed++) {
      const r = new fuzz.Rng(seed);
      const n = 1 + r.below(12);
      const ids = Array.from({ length: n }, (_, i) => `L${i}`);
      const perm = ids.slice();
      for (let i = n - 1; i > 0; i--) {
        const j = r.below(i + 1);
        [perm[i], perm[j]] = [perm[j]!, perm[i]!];
      }
      const d = restores(layers(ids.map((id) => image(id, 1))), layers(perm.map((id) => image(id, 1))));
      const run = longestIncreasing(
        perm.map((id) => Number(id.slice(1))),
        n,
      ).filter(Boolean).length;
      expect(d.every((c) => c.op === "mov")).toBe(true);
      expect(d, `seed ${seed}: ${perm.join(" ")}`).toHaveLength(n - run);
    }
  });

  it("a string diff is the text field diff of the engine (TextOp.diff), for 2000 pairs", () => {
    for (let seed = 0; seed < 2000; seed++) {
      const r = new fuzz.Rng(seed);
      const a = r.word() + r.word() + r.word();
      const b = r.chance(0.5) ? a.slice(0, r.below(a.length + 1)) + r.word() + a.slice(r.below(a.length + 1)) : r.word() + r.word();
      // Slicing by UTF-16 units may cut a pair: keep well-formed strings only (with the `u` flag
      // the class matches lone surrogates, never a pair).
      if (/[\uD800-\uDFFF]/u.test(b)) continue;
      const want = TextOp.diff(a, b);
      const d = restores(meta({ note: a }), meta({ note: b }));
      expect(show(d), `${JSON.stringify(a)} → ${JSON.stringify(b)}`).toEqual(want.isNoop() ? [] : show([text(["meta", "note"], ...want.parts)]));
    }
  });

  it("converges with a concurrent edit (TP1), for 1000 seeds", () => {
    for (let seed = 0; seed < 1000; seed++) {
      const r = new fuzz.Rng(seed);
      const [a, b] = history(r, 1, 5);
      const d = diff(a, b);
      const e = fuzz.op(r, a);
      const eFirst = apply(apply(a, e).doc, transform(d, e, "right")).doc;
      const dFirst = apply(apply(a, d).doc, transform(e, d, "left")).doc;
      if (!deepEqual(eFirst, dFirst)) {
        expect.fail(`seed ${seed}\n diff: ${JSON.stringify(encodeOp(d))}\n edit: ${JSON.stringify(encodeOp(e))}`);
      }
    }
  });

  it("a restore of one layer keeps a concurrent edit of another, for 500 seeds", () => {
    const layersAt = ["canvas", "layers"];
    let touched = 0;
    for (let seed = 0; seed < 500; seed++) {
      const r = new fuzz.Rng(seed);
      let a: Json = fuzz.doc(r);
      while (lenAt(a, layersAt) < 2) a = apply(a, [ins([...layersAt, 0], fuzz.imageLayer(r))]).doc;
      const n = lenAt(a, layersAt);
      const i1 = r.below(n);
      const i2 = (i1 + 1 + r.below(n - 1)) % n;
      const b = apply(a, layerEdits(r, a, i1)).doc;
      const e = layerEdits(r, a, i2);
      const l1 = [...layersAt, i1];
      const d = diff(a, b);
      if (d.length > 0) touched++;
      expect(
        d.every((c) => isPrefix(l1, c.path)),
        `seed ${seed}: only layer ${i1} is touched: ${JSON.stringify(encodeOp(d))}`,
      ).toBe(true);
      expect(show(d)).toEqual(show(diffUnder(l1, at(a, l1)!, at(b, l1)!)));
      const want = apply(b, e).doc;
      expect(apply(apply(a, e).doc, transform(d, e, "right")).doc, `seed ${seed}: restore after the edit`).toEqual(want);
      expect(apply(apply(a, d).doc, transform(e, d, "right")).doc, `seed ${seed}: edit after the restore`).toEqual(want);
    }
    expect(touched).toBeGreaterThan(400);
  });

  it("random histories give diffs of every kind", () => {
    const kinds = new Set<string>();
    for (let seed = 0; seed < 500; seed++) {
      const [a, b] = history(new fuzz.Rng(seed), 1, 5);
      for (const c of diff(a, b)) kinds.add(c.op);
    }
    expect([...kinds].sort()).toEqual(["del", "ins", "mov", "set", "text"]);
  });
});

// ---- one element --------------------------------------------------------------------------

const clip = (id: string, start: number): JsonObject => ({ id, asset: "v1", start, in: 0, out: 5 });
const timeline = (tracks: Json[]): JsonObject => ({
  title: "",
  assets: {},
  meta: {},
  canvas: { width: 1920, height: 1080, layers: [] },
  timeline: { tracks },
});

describe("findElement and restoreElement", () => {
  it("find elements by id in layers, tracks and clips", () => {
    expect(findElement(layers([image("L1", 1), image("L2", 1)]), "L2")).toEqual(["canvas", "layers", 1]);
    const t = timeline([{ id: "T1", kind: "video", clips: [clip("C1", 0), clip("C2", 5)] }]);
    expect(findElement(t, "T1")).toEqual(["timeline", "tracks", 0]);
    expect(findElement(t, "C2")).toEqual(["timeline", "tracks", 0, "clips", 1]);
    expect(findElement(t, "nope")).toBeNull();
    expect(findElement(null, "x")).toBeNull();
  });

  it("restoring one layer leaves the rest as it is now", () => {
    const old = layers([image("L1", 0.3), image("L2", 1)]);
    const head = layers([image("L2", 0.5), image("L3", 1), image("L1", 0.9)]);
    // Changed since: its fields come back where it now stands.
    const op = restoreElement(head, old, "L1")!;
    expect(op).toEqual([set(["canvas", "layers", 2, "opacity"], 0.3)]);
    expect(apply(head, op).doc).toEqual(layers([image("L2", 0.5), image("L3", 1), image("L1", 0.3)]));
    // Deleted since: back at its old index.
    const gone = layers([image("L2", 0.5)]);
    expect(apply(gone, restoreElement(gone, old, "L1")!).doc).toEqual(layers([image("L1", 0.3), image("L2", 0.5)]));
    // Added since: restoring it to a version without it removes it.
    expect(restoreElement(head, old, "L3")).toEqual([del(["canvas", "layers", 1])]);
    expect(apply(head, restoreElement(head, old, "L3")!).doc).toEqual(layers([image("L2", 0.5), image("L1", 0.9)]));
    // In neither: nothing; the same in both: the empty edit.
    expect(restoreElement(head, old, "nope")).toBeNull();
    expect(restoreElement(head, head, "L1")).toEqual([]);
    // An old index past the head's list is clamped.
    const many = layers([image("X", 1), image("Y", 1), image("L9", 0.1)]);
    expect(restoreElement(gone, many, "L9")).toEqual([ins(["canvas", "layers", 1], image("L9", 0.1))]);
  });

  it("a deleted clip goes back into its track", () => {
    const track = (clips: Json[]) => [{ id: "T1", kind: "video", clips }];
    const old = timeline(track([clip("C1", 0), clip("C2", 5)]));
    const head = timeline([
      { id: "T0", kind: "audio", clips: [] },
      { id: "T1", kind: "video", clips: [clip("C1", 1)] },
    ]);
    const op = restoreElement(head, old, "C2")!;
    expect(op).toEqual([ins(["timeline", "tracks", 1, "clips", 1], clip("C2", 5))]);
    expect(apply(head, op).doc).toEqual(
      timeline([
        { id: "T0", kind: "audio", clips: [] },
        { id: "T1", kind: "video", clips: [clip("C1", 1), clip("C2", 5)] },
      ]),
    );
    // Its track is gone: nothing to put it back into.
    expect(restoreElement(timeline([]), old, "C2")).toBeNull();
  });
});

// ---- a session --------------------------------------------------------------------------

describe("MontageSession.restoreTo", () => {
  const L = (d: Json | null) => ((d as JsonObject)["canvas"] as JsonObject)["layers"] as JsonObject[];

  it("restores a past state as one local edit, which undo() takes back; others' edits stay", () => {
    const net = new FakeNet(layers([image("L1", 0.3), image("L2", 1)]));
    const clock = new FakeClock();
    const alice = fakeClient(net, clock, "alice");
    const bob = fakeClient(net, clock, "bob");
    expect(() => alice.restoreTo(newDocument())).toThrow(/not joined/);
    net.drain();
    const past = clone(alice.doc!); // what `new SessionsApi(…).state("s1", 0)` would give
    alice.submit([set(["canvas", "layers", 0, "opacity"], 0.9)]);
    bob.submit([ins(["canvas", "layers", 2], caption("L3", "new"))]);
    bob.submit([textInsert(["title"], 0, "Poster")]);
    net.drain();
    const newer = clone(alice.doc!);
    expect(alice.restoreTo(newer)).toBe(false); // nothing differs
    expect(alice.restoreTo(past, { id: "nope" })).toBe(false);
    expect(alice.pendingCount).toBe(0);

    // The whole document, while bob edits elsewhere at the same time.
    const changes: string[] = [];
    alice.on("change", (e) => changes.push(e.origin));
    expect(alice.restoreTo(past)).toBe(true);
    expect(changes).toEqual(["local"]);
    expect(alice.doc).toEqual(past); // at once, optimistically
    bob.submit([set(["meta", "k"], 1)]);
    net.drain();
    const withK = (d: Json) => ({ ...(d as JsonObject), meta: { k: 1 } });
    expect(net.doc).toEqual(withK(past));
    expect(alice.doc).toEqual(net.doc);
    expect(bob.doc).toEqual(net.doc);

    // Undo brings the newer state back (bob's concurrent edit stays).
    expect(alice.canUndo).toBe(true);
    expect(alice.undo()).toBe(true);
    net.drain();
    expect(net.doc).toEqual(withK(newer));
    expect(alice.doc).toEqual(net.doc);
    expect(bob.doc).toEqual(net.doc);
    expect(alice.redo()).toBe(true);
    net.drain();
    expect(bob.doc).toEqual(withK(past));
  });

  it("restores one layer by id, leaving the rest as it is now; undo() takes it back", () => {
    const net = new FakeNet(layers([image("L1", 0.3), image("L2", 1)]));
    const clock = new FakeClock();
    const alice = fakeClient(net, clock, "alice");
    const bob = fakeClient(net, clock, "bob");
    net.drain();
    const past = clone(alice.doc!);
    // Since then: bob moved L1 to the top and faded it; alice faded L2.
    bob.submit([mov(["canvas", "layers", 0], 1), set(["canvas", "layers", 1, "opacity"], 0.9)]);
    net.drain();
    alice.submit([set(["canvas", "layers", 0, "opacity"], 0.5)]);
    net.drain();
    const newer = clone(alice.doc!);
    expect(L(newer).map((l) => [l["id"], l["opacity"]])).toEqual([
      ["L2", 0.5],
      ["L1", 0.9],
    ]);
    expect(alice.restoreTo(past, { id: "L1" })).toBe(true);
    net.drain();
    // L1's opacity is back; it stays where it now stands, and L2 keeps its newer opacity.
    expect(L(bob.doc).map((l) => [l["id"], l["opacity"]])).toEqual([
      ["L2", 0.5],
      ["L1", 0.3],
    ]);
    expect(alice.undo()).toBe(true);
    net.drain();
    expect(bob.doc).toEqual(newer);
    expect(alice.doc).toEqual(newer);
  });
});
