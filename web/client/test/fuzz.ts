// Random documents and random valid edits (a port of crates/ot/tests/it/fuzz.rs), seeded.
import { type Component, type Json, type JsonObject, type Op, type Path, apply, newDocument } from "../src/index.js";
import { TextOp } from "../src/text.js";

/** mulberry32: small and seedable. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (seed ^ 0x9e3779b9) >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** Exactly representable, so sums are exact in any order. */
  num(): number {
    return (this.below(200) - 100) / 4;
  }
  word(): string {
    const alphabet = ["a", "b", "c", "x", "é", "漢", "🎬", " "];
    let s = "";
    for (let i = 0, n = 1 + this.below(4); i < n; i++) s += alphabet[this.below(alphabet.length)];
    return s;
  }
  id(): string {
    return `id${this.below(1_000_000)}`;
  }
}

export function imageLayer(r: Rng): JsonObject {
  const l: JsonObject = { id: r.id(), kind: "image", asset: "a1", x: r.num(), y: r.num(), w: 100, h: 50 };
  if (r.chance(0.5)) {
    l["rotation"] = 90;
    l["adjust"] = { brightness: 0.25 };
  }
  return l;
}
export function textLayer(r: Rng): JsonObject {
  return { id: r.id(), kind: "text", text: r.word(), x: r.num(), y: r.num(), size: 12, color: "#fff" };
}
function clip(r: Rng, start: number): JsonObject {
  const len = 1 + r.below(8);
  const inp = r.below(4);
  return { id: r.id(), asset: "v1", start, in: inp, out: inp + len, gain: 1 };
}

export function doc(r: Rng): JsonObject {
  const d = newDocument();
  d["title"] = r.word() + r.word();
  const layers: Json[] = [];
  for (let i = 0, n = r.below(4); i < n; i++) layers.push(r.chance(0.7) ? imageLayer(r) : textLayer(r));
  (d["canvas"] as JsonObject)["layers"] = layers;
  const tracks: Json[] = [0, 1].map((t) => {
    const clips: Json[] = [];
    for (let k = 0, n = r.below(4); k < n; k++) clips.push(clip(r, k * 10));
    return { id: `t${t}`, kind: "video", clips };
  });
  (d["timeline"] as JsonObject)["tracks"] = tracks;
  const list: Json[] = [];
  for (let i = 0, n = r.below(5); i < n; i++) list.push(r.num());
  d["meta"] = { list, n: 1, note: r.word() };
  return d;
}

export function at(d: Json, p: Path): Json | undefined {
  let v: Json | undefined = d;
  for (const s of p) {
    if (v === null || typeof v !== "object") return undefined;
    v = Array.isArray(v) ? v[s as number] : (v as JsonObject)[s as string];
  }
  return v;
}
export const lenAt = (d: Json, p: Path) => {
  const v = at(d, p);
  return Array.isArray(v) ? v.length : 0;
};
export const textLen = (d: Json, p: Path) => {
  const v = at(d, p);
  return typeof v === "string" ? [...v].length : 0;
};
const text = (path: Path, t: TextOp): Component => ({ op: "text", path, text: t });

/** One random component valid against `d`. */
export function component(r: Rng, d: Json): Component {
  const layers = ["canvas", "layers"];
  const nl = lenAt(d, layers);
  const track = ["timeline", "tracks", r.below(2), "clips"];
  const nc = lenAt(d, track);
  const list = ["meta", "list"];
  const nlist = lenAt(d, list);
  for (;;) {
    const k = r.below(24);
    if (k <= 2) {
      const p = ["title"];
      const len = textLen(d, p);
      if (len > 0 && r.chance(0.4)) {
        const pos = r.below(len);
        return text(p, TextOp.delete(pos, 1 + r.below(Math.min(len - pos, 3))));
      }
      return text(p, TextOp.insert(r.below(len + 1), r.word()));
    }
    if (k === 3) return text(["meta", "note"], TextOp.insert(r.below(textLen(d, ["meta", "note"]) + 1), r.word()));
    if (k === 4) return { op: "set", path: ["meta", r.chance(0.5) ? "n" : "k"], value: r.num() };
    if (k === 5 && at(d, ["meta", "k"]) !== undefined) return { op: "del", path: ["meta", "k"] };
    if (k === 6) return { op: "add", path: ["meta", "n"], value: r.num() };
    if (k === 7) return { op: "ins", path: [...list, r.below(nlist + 1)], value: r.num() };
    if (k === 8 && nlist > 0) return { op: "del", path: [...list, r.below(nlist)] };
    if (k === 9 && nlist > 0) return { op: "mov", path: [...list, r.below(nlist)], to: r.below(nlist) };
    if (k === 10 && nlist > 0) return { op: "set", path: [...list, r.below(nlist)], value: r.num() };
    if (k === 11) {
      const l = r.chance(0.7) ? imageLayer(r) : textLayer(r);
      return { op: "ins", path: [...layers, r.below(nl + 1)], value: l };
    }
    if (k === 12 && nl > 0) return { op: "del", path: [...layers, r.below(nl)] };
    if (k === 13 && nl > 0) return { op: "mov", path: [...layers, r.below(nl)], to: r.below(nl) };
    if (k === 14 && nl > 0) {
      const lp = [...layers, r.below(nl)];
      switch (r.below(3)) {
        case 0:
          return { op: "add", path: [...lp, "x"], value: r.num() };
        case 1:
          return { op: "set", path: [...lp, "y"], value: r.num() };
        default:
          return { op: "set", path: lp, value: imageLayer(r) };
      }
    }
    if ((k === 15 || k === 16) && nl > 0) {
      const lp = [...layers, r.below(nl)];
      if (at(d, [...lp, "kind"]) !== "image") {
        const tp = [...lp, "text"];
        return text(tp, TextOp.insert(r.below(textLen(d, tp) + 1), r.word()));
      }
      switch (r.below(4)) {
        case 0:
          return { op: "crop", path: lp, rect: { x: r.below(10), y: r.below(10), w: 1 + r.below(50), h: 1 + r.below(50) } };
        case 1:
          return { op: "rotate", path: lp, by: 90 * (1 + r.below(3)) };
        case 2: {
          const param = ["brightness", "contrast", "saturation", "exposure"][r.below(4)]!;
          return { op: "adjust", path: lp, param, value: (r.below(17) - 8) / 8 };
        }
        default:
          if (at(d, [...lp, "adjust"]) !== undefined) return { op: "del", path: [...lp, "adjust"] };
          return { op: "set", path: [...lp, "opacity"], value: 0.5 };
      }
    }
    if (k === 17) return { op: "ins", path: [...track, r.below(nc + 1)], value: clip(r, r.below(50)) };
    if (k === 18 && nc > 0) return { op: "del", path: [...track, r.below(nc)] };
    if (k === 19 && nc > 0) return { op: "mov", path: [...track, r.below(nc)], to: r.below(nc) };
    if ((k === 20 || k === 21) && nc > 0) {
      const cp = [...track, r.below(nc)];
      const f = (key: string) => (at(d, [...cp, key]) as number | undefined) ?? 0;
      const len = f("out") - f("in");
      const atT = f("start") + ((1 + r.below(7)) * len) / 8;
      return { op: "split", path: cp, at: atT, media: f("in") + (atT - f("start")), id: r.id() };
    }
    if (k === 22 && nc > 0) {
      const cp = [...track, r.below(nc)];
      const f = (key: string) => (at(d, [...cp, key]) as number | undefined) ?? 0;
      const d0 = r.below(4) * 0.5;
      switch (r.below(3)) {
        case 0:
          return { op: "trim", path: cp, start: f("start") + d0, in: f("in") + d0 };
        case 1:
          return { op: "trim", path: cp, out: f("out") - d0 };
        default:
          return { op: "trim", path: cp, start: f("start") + d0, in: f("in") + d0, out: f("out") + 1 };
      }
    }
    if (k === 23 && nc > 0) {
      const cp = [...track, r.below(nc)];
      switch (r.below(3)) {
        case 0:
          return { op: "set", path: [...cp, "gain"], value: r.num() };
        case 1:
          return { op: "add", path: [...cp, "start"], value: 1 };
        default:
          return { op: "set", path: cp, value: clip(r, 3) };
      }
    }
  }
}

/** A random edit of 1–3 components, valid against `d`. */
export function op(r: Rng, d: Json): Op {
  let scratch = d;
  const comps: Component[] = [];
  for (let i = 0, n = 1 + r.below(3); i < n; i++) {
    const c = component(r, scratch);
    scratch = apply(scratch, [c]).doc;
    comps.push(c);
  }
  return comps;
}
