/** Transformation (`transform.rs`): rewriting a component so it applies after a concurrent
 * one. Rules and reasons: docs/OT.md; this is a step-for-step port of the Rust code. */
import { type Component, isNoop } from "./component.js";
import { type Path, type Seg, isPrefix, lastIndex, pathEq, withIndexAt, withLastIndex } from "./path.js";

/** Which of two concurrent edits the server ordered first: `left` is the earlier one (its
 * inserts stand first at a tie); where two writes collide the `right` one wins. */
export type Side = "left" | "right";
/** The other side. */
export const flip = (s: Side): Side => (s === "left" ? "right" : "left");

type ListEff =
  | { k: "ins"; at: number }
  | { k: "del"; at: number }
  | { k: "mov"; from: number; to: number }
  | { k: "split"; at: number };

/** Where element `e` is after `eff`; undefined if deleted. */
function idxAfter(eff: ListEff, e: number): number | undefined {
  switch (eff.k) {
    case "ins":
      return e + (e >= eff.at ? 1 : 0);
    case "del":
      if (e === eff.at) return undefined;
      return e - (e > eff.at ? 1 : 0);
    case "mov": {
      if (e === eff.from) return eff.to;
      const e2 = e - (e > eff.from ? 1 : 0);
      return e2 + (e2 >= eff.to ? 1 : 0);
    }
    case "split":
      return e + (e > eff.at ? 1 : 0);
  }
}

function listEff(o: Component): [Path, ListEff] | undefined {
  const i = lastIndex(o.path);
  if (i === undefined) return undefined;
  const parent = o.path.slice(0, -1);
  switch (o.op) {
    case "ins":
      return [parent, { k: "ins", at: i }];
    case "del":
      return [parent, { k: "del", at: i }];
    case "mov":
      return [parent, { k: "mov", from: i, to: o.to }];
    case "split":
      return [parent, { k: "split", at: i }];
    default:
      return undefined;
  }
}

type Kind = "write" | "remove" | "edit";

function target(c: Component): [Seg[], Kind] {
  switch (c.op) {
    case "set":
      return [c.path.slice(), "write"];
    case "del":
      return [c.path.slice(), "remove"];
    case "crop":
      return [[...c.path, "crop"], "write"];
    case "adjust":
      return [[...c.path, "adjust", c.param], "write"];
    case "rotate":
      return [[...c.path, "rotation"], "edit"];
    default:
      return [c.path.slice(), "edit"];
  }
}

function withPath(c: Component, path: Path): Component {
  return { ...c, path } as Component;
}

function mapPath(path: Path, list: Path, eff: ListEff): Path | undefined {
  const n = list.length;
  if (path.length <= n || !isPrefix(list, path)) return path;
  const e = path[n];
  if (typeof e !== "number") return path;
  const e2 = idxAfter(eff, e);
  if (e2 === undefined) return undefined;
  return withIndexAt(path, n, e2);
}

function replaced(o: Component): Seg[] | undefined {
  switch (o.op) {
    case "set":
    case "crop":
    case "adjust":
      return target(o)[0];
    case "del":
      return lastIndex(o.path) === undefined ? o.path.slice() : undefined;
    default:
      return undefined;
  }
}

/** Transforms `c` so it applies after `o`, pushing zero or more components to `out`. */
export function transformComponent(c: Component, o: Component, side: Side, out: Component[]): void {
  if (isNoop(o)) {
    out.push(c);
    return;
  }
  // Trims and splits of one clip are judged whole: the rule depends on where both edges end up.
  if (c.op === "trim" && o.op === "trim" && pathEq(c.path, o.path)) return trimVsTrim(c, o, side, out);
  if (c.op === "trim" && o.op === "split" && pathEq(c.path, o.path)) return trimVsSplit(c, o, out);
  if (c.op === "split" && o.op === "trim" && pathEq(c.path, o.path)) return splitVsTrim(c, o, out);
  if (c.op === "trim") return transformTrim(c, o, side, out);
  if (o.op === "trim") {
    let cur: Component[] = [c];
    for (const [key, v] of [
      ["start", o.start],
      ["in", o.in],
      ["out", o.out],
    ] as const) {
      if (v !== undefined) {
        const w: Component = { op: "set", path: [...o.path, key], value: v };
        const next: Component[] = [];
        for (const x of cur) transformComponent(x, w, side, next);
        cur = next;
      }
    }
    out.push(...cur);
    return;
  }
  if (o.op === "split") return transformAgainstSplit(c, o, side, out);

  // 1. The list structure `o` changes.
  const le = listEff(o);
  if (le !== undefined) {
    const [list, eff] = le;
    if ((c.op === "ins" || c.op === "mov") && pathEq(c.path.slice(0, -1), list)) {
      return listVsList(c, eff, side, out);
    }
    const p = mapPath(c.path, list, eff);
    if (p !== undefined) out.push(p === c.path ? c : withPath(c, p));
    return;
  }

  // 2. Values `o` replaces or removes.
  const q = replaced(o);
  if (q !== undefined) {
    const oRemove = o.op === "del";
    if (c.op === "ins" || c.op === "mov") {
      if (!isPrefix(q, c.path.slice(0, -1))) out.push(c);
      return;
    }
    const [t, kind] = target(c);
    if (q.length < t.length && isPrefix(q, t)) return;
    if (pathEq(q, t)) {
      let keep: boolean;
      if (kind === "edit") keep = false;
      else if (kind === "write") keep = side === "right";
      else if (oRemove) keep = false;
      else keep = lastIndex(t) !== undefined || side === "right";
      if (!keep) return;
    }
    out.push(c);
    return;
  }

  // 3. In-place edits: only text meets text.
  if (c.op === "text" && o.op === "text" && pathEq(c.path, o.path)) {
    const t = c.text.transform(o.text, side === "left");
    if (!t.isNoop()) out.push({ op: "text", path: c.path, text: t });
    return;
  }
  out.push(c);
}

/** `c` (an `ins` or `mov`) against a list effect on the same list. */
function listVsList(c: Component, eff: ListEff, side: Side, out: Component[]): void {
  const path = c.path;
  let rc: number | undefined;
  let gc: number;
  if (c.op === "ins") {
    rc = undefined;
    gc = lastIndex(path) ?? 0;
  } else if (c.op === "mov") {
    rc = lastIndex(path);
    gc = c.to;
  } else {
    throw new Error("listVsList is only called for ins and mov");
  }
  let ro: number | undefined;
  let go: number | undefined;
  let oFirst: boolean;
  switch (eff.k) {
    case "ins":
      [ro, go, oFirst] = [undefined, eff.at, side === "right"];
      break;
    case "del":
      [ro, go, oFirst] = [eff.at, undefined, false];
      break;
    case "mov":
      [ro, go, oFirst] = [eff.from, eff.to, side === "right"];
      break;
    case "split":
      [ro, go, oFirst] = [undefined, eff.at + 1, true];
      break;
  }
  if (rc !== undefined && rc === ro) {
    if (eff.k === "mov" && c.op === "mov" && side === "right" && eff.to !== gc) {
      out.push({ op: "mov", path: withLastIndex(path, eff.to), to: gc });
    }
    return;
  }
  const toReduced = (g: number, own: number | undefined, other: number | undefined): number => {
    if (other === undefined) return g;
    const r = own !== undefined ? other - (other > own ? 1 : 0) : other;
    return g - (g > r ? 1 : 0);
  };
  const gcR = toReduced(gc, rc, ro);
  let pos: number;
  if (go === undefined) pos = gcR;
  else {
    const goR = toReduced(go, ro, rc);
    pos = gcR + (goR < gcR || (goR === gcR && oFirst) ? 1 : 0);
  }
  if (c.op === "ins") {
    out.push({ op: "ins", path: withLastIndex(path, pos), value: c.value });
  } else {
    const from = (rc !== undefined ? idxAfter(eff, rc) : undefined) ?? 0;
    if (from !== pos) out.push({ op: "mov", path: withLastIndex(path, from), to: pos });
  }
}

/** A trim as separate field writes, transformed, then gathered back into trims. */
function transformTrim(c: Component & { op: "trim" }, o: Component, side: Side, out: Component[]): void {
  const writes: Component[] = [];
  for (const [key, v] of [
    ["start", c.start],
    ["in", c.in],
    ["out", c.out],
  ] as const) {
    if (v !== undefined) transformComponent({ op: "set", path: [...c.path, key], value: v }, o, side, writes);
  }
  const trims: (Component & { op: "trim" })[] = [];
  for (const w of writes) {
    if (w.op !== "set" || typeof w.value !== "number") continue;
    const key = w.path[w.path.length - 1];
    if (typeof key !== "string") continue;
    const clip = w.path.slice(0, -1);
    let slot = trims.find((t) => pathEq(t.path, clip));
    if (slot === undefined) {
      slot = { op: "trim", path: clip };
      trims.push(slot);
    }
    if (key === "start") slot.start = w.value;
    else if (key === "in") slot.in = w.value;
    else slot.out = w.value;
  }
  out.push(...trims);
}

/** The shortest clip (`out − in`, seconds) that two concurrent trims may leave between them
 * (`MIN_CLIP_LENGTH` in `transform.rs`). */
export const MIN_CLIP_LENGTH = 0.0625;

type Trim = Component & { op: "trim" };
/** A trim's fields as `[start, in, out]`. */
type Fields = [number | undefined, number | undefined, number | undefined];
const START = 0;
const IN = 1;
const OUT = 2;

const trimFields = (c: Trim): Fields => [c.start, c.in, c.out];

function pushTrim(path: Path, f: Fields, out: Component[]): void {
  if (f.every((x) => x === undefined)) return;
  const t: Trim = { op: "trim", path };
  if (f[START] !== undefined) t.start = f[START];
  if (f[IN] !== undefined) t.in = f[IN];
  if (f[OUT] !== undefined) t.out = f[OUT];
  out.push(t);
}

/** The Right trim's fields after giving way to the Left one, and which of them moved (`give_way`). */
function giveWay(l: Fields, r: Fields): [Fields, [boolean, boolean, boolean]] {
  const f: Fields = [...r];
  const moved: [boolean, boolean, boolean] = [false, false, false];
  const [li, lo, ri, ro] = [l[IN], l[OUT], r[IN], r[OUT]];
  if (li !== undefined && ri === undefined && ro !== undefined && ro - li < MIN_CLIP_LENGTH) {
    f[OUT] = li + MIN_CLIP_LENGTH;
    moved[OUT] = true;
  } else if (lo !== undefined && ri !== undefined && ro === undefined && lo - ri < MIN_CLIP_LENGTH) {
    const ni = lo - MIN_CLIP_LENGTH;
    f[IN] = ni;
    moved[IN] = true;
    const rs = r[START];
    if (rs !== undefined) {
      f[START] = rs + (ni - ri);
      moved[START] = true;
    }
  }
  return [f, moved];
}

/** Two trims of one clip: the later wins per field and the clip keeps at least
 * `MIN_CLIP_LENGTH` (docs/OT.md §9.2). */
function trimVsTrim(c: Trim, o: Trim, side: Side, out: Component[]): void {
  const [l, r] = side === "left" ? [trimFields(c), trimFields(o)] : [trimFields(o), trimFields(c)];
  const [fixed, moved] = giveWay(l, r);
  const f: Fields =
    side === "right"
      ? fixed
      : ([START, IN, OUT].map((k) => (r[k] !== undefined ? (moved[k] ? fixed[k] : undefined) : l[k])) as Fields);
  pushTrim(c.path, f, out);
}

/** A trim after a split of the same clip: it lands on the half it meant (docs/OT.md §9.2). */
function trimVsSplit(c: Trim, o: Component & { op: "split" }, out: Component[]): void {
  const i = lastIndex(c.path);
  if (i === undefined) return;
  const f = trimFields(c);
  const right = withLastIndex(c.path, i + 1);
  if (f[OUT] !== undefined && f[OUT] <= o.media) {
    pushTrim(c.path, f, out);
    out.push({ op: "del", path: right });
  } else if (f[IN] !== undefined && f[IN] >= o.media) {
    pushTrim(right, f, out);
    out.push({ op: "del", path: c.path });
  } else {
    pushTrim(c.path, [f[START], f[IN], undefined], out);
    pushTrim(right, [undefined, undefined, f[OUT]], out);
  }
}

/** A split after a trim of the same clip (the mirror of `trimVsSplit`). */
function splitVsTrim(c: Component & { op: "split" }, o: Trim, out: Component[]): void {
  const f = trimFields(o);
  if (f[OUT] !== undefined && f[OUT] <= c.media) return;
  if (f[IN] !== undefined && f[IN] >= c.media) {
    out.push({ op: "set", path: [...c.path, "id"], value: c.id });
    if (f[START] === undefined) out.push({ op: "set", path: [...c.path, "start"], value: c.at });
    return;
  }
  out.push(c);
}

/** `c` after a split of the clip at `o`'s path. */
function transformAgainstSplit(c: Component, o: Component & { op: "split" }, side: Side, out: Component[]): void {
  const sp = o.path;
  const list = sp.slice(0, -1);
  const i = lastIndex(sp);
  if (i === undefined) {
    out.push(c);
    return;
  }
  const n = list.length;
  const cp = c.path;

  if (c.op === "split" && pathEq(c.path, sp)) {
    if (c.at < o.at) out.push(c);
    else if (c.at > o.at) out.push({ ...c, path: withLastIndex(c.path, i + 1) });
    else if (side === "left") {
      const right = withLastIndex(c.path, i + 1);
      out.push({ op: "set", path: [...c.path, "out"], value: c.media });
      out.push({ op: "set", path: [...right, "id"], value: c.id });
      out.push({ op: "set", path: [...right, "start"], value: c.at });
      out.push({ op: "set", path: [...right, "in"], value: c.media });
    }
    return;
  }

  if ((c.op === "ins" || c.op === "mov") && pathEq(cp.slice(0, -1), list)) {
    if (c.op === "mov" && lastIndex(cp) === i) {
      const j = c.to;
      const left = cp;
      const right = withLastIndex(cp, i + 1);
      if (j > i) {
        out.push({ op: "mov", path: right, to: j + 1 });
        out.push({ op: "mov", path: left, to: j });
      } else if (j < i) {
        out.push({ op: "mov", path: left, to: j });
        out.push({ op: "mov", path: right, to: j + 1 });
      }
      return;
    }
    return listVsList(c, { k: "split", at: i }, side, out);
  }

  if (cp.length <= n || !isPrefix(list, cp)) {
    out.push(c);
    return;
  }
  const e = cp[n];
  if (typeof e !== "number") {
    out.push(c);
    return;
  }
  if (e !== i) {
    out.push(withPath(c, withIndexAt(cp, n, e + (e > i ? 1 : 0))));
    return;
  }
  const rightOf = (x: Component) => withPath(x, withIndexAt(x.path, n, i + 1));
  if (cp.length === n + 1) {
    if (c.op === "del" || c.op === "set") {
      out.push({ op: "del", path: withLastIndex(cp, i + 1) });
      out.push(c);
    } else {
      out.push(c);
      out.push(rightOf(c));
    }
    return;
  }
  const k = cp[n + 1];
  if (k === "start" || k === "in" || k === "id") out.push(c);
  else if (k === "out") out.push(rightOf(c));
  else {
    out.push(c);
    out.push(rightOf(c));
  }
}

/** Transforms component lists: returns [`a` after `b`, `b` after `a`]. `side` is `a`'s. */
export function transformXComponents(
  a: readonly Component[],
  b: readonly Component[],
  side: Side,
): [Component[], Component[]] {
  let bCur = b.filter((c) => !isNoop(c));
  const aOut: Component[] = [];
  for (const ac of a) {
    if (isNoop(ac)) continue;
    let aCur: Component[] = [ac];
    const bNext: Component[] = [];
    for (const bc of bCur) {
      if (aCur.length === 1) {
        const a2: Component[] = [];
        transformComponent(aCur[0]!, bc, side, a2);
        transformComponent(bc, aCur[0]!, flip(side), bNext);
        aCur = a2;
      } else {
        const [a2, b2] = transformXComponents(aCur, [bc], side);
        aCur = a2;
        bNext.push(...b2);
      }
    }
    aOut.push(...aCur);
    bCur = bNext;
  }
  return [aOut, bCur];
}
