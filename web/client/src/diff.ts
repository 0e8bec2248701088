/**
 * `diff`: one edit that turns one document into another, touching only what differs (a port of
 * `crates/ot/src/diff.rs`, rule for rule and component for component). Restoring a version
 * commits such an edit like any other, so it must be as fine-grained as a hand-made one: then a
 * concurrent edit elsewhere in the document survives its transformation.
 *
 * The rules, by the kind of value on both sides:
 * - objects: `del` the keys `to` lacks, recurse into the shared ones, `set` the keys `from`
 *   lacks, each in key order as the Rust engine sorts them (by Unicode scalar values);
 * - lists whose elements are all objects with a string `id`, unique within the list (layers,
 *   tracks, clips): elements are matched by id. `del` the gone ones (last first), `mov` the
 *   fewest (all but a longest run already in order), `ins` the new ones in target order, then
 *   recurse into the common ones at their final indices;
 * - other lists: the common prefix and suffix stay; the middles are paired index by index
 *   (recursing), and what one middle has beyond the other is `del`eted or `ins`erted;
 * - strings: one `text` component that keeps the common prefix and suffix (counted in Unicode
 *   scalar values, as `TextOp` counts) and replaces the middle;
 * - anything else that differs (numbers, booleans, null, a change of type): `set`. Numbers are
 *   `set`, not `add`ed: a restore means "make it this value", even past a concurrent `add`;
 * - containers at {@link MAX_PATH_DEPTH} are `set` whole, so every path stays decodable.
 *
 * Components apply in sequence, each to what the previous one left. The edit's result is `to`
 * exactly, so it passes `apply`'s shape check whenever `to` is a valid document; for free-form
 * JSON use `applyUnchecked`.
 */
import { type Component, MAX_PATH_DEPTH, type Op, del, ins, mov, set } from "./component.js";
import { type Json, type JsonObject, deepEqual, getKey, hasOwn, isObject } from "./json.js";
import { type Path, type Seg, child, lastIndex } from "./path.js";
import { TextOp } from "./text.js";
import { scalarLength } from "./unicode.js";

/** The edit that, applied to `from`, yields exactly `to`. Equal values give the empty edit. */
export function diff(from: Json, to: Json): Op {
  return diffUnder([], from, to);
}

/**
 * {@link diff} of two subtrees, with every component's path under `at`, where `from` sits in the
 * document the edit is for. For restoring one layer or clip: its index may differ between
 * versions, so the caller finds it by id in each ({@link findElement}) and passes the head's
 * path here.
 */
export function diffUnder(at: Path, from: Json, to: Json): Op {
  const out: Component[] = [];
  value(at, from, to, out);
  return out;
}

function value(at: Path, from: Json, to: Json, out: Component[]): void {
  // A child's path would be too long to decode (MAX_PATH_DEPTH): replace the whole value.
  const deep = at.length >= MAX_PATH_DEPTH;
  if (!deep && isObject(from) && isObject(to)) return object(at, from, to, out);
  if (!deep && Array.isArray(from) && Array.isArray(to)) {
    const ia = ids(from);
    const ib = ids(to);
    if (ia !== null && ib !== null) return byId(at, from, to, ia, ib, out);
    return byIndex(at, from, to, out);
  }
  if (typeof from === "string" && typeof to === "string") return text(at, from, to, out);
  if (deepEqual(from, to)) return;
  out.push(set(at, to));
}

/** Orders keys as Rust's `BTreeMap<String, _>` does: by UTF-8 bytes, i.e. by code points (not by
 * UTF-16 units, which differ above U+FFFF). */
function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; ) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    i += x > 0xffff ? 2 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function sortedKeys(o: JsonObject): string[] {
  return Object.keys(o).sort(compareKeys);
}

function object(at: Path, a: JsonObject, b: JsonObject, out: Component[]): void {
  for (const k of sortedKeys(a)) {
    const w = getKey(b, k);
    if (w !== undefined) value(child(at, k), getKey(a, k)!, w, out);
    else out.push(del(child(at, k)));
  }
  for (const k of sortedKeys(b)) {
    if (!hasOwn(a, k)) out.push(set(child(at, k), getKey(b, k)!));
  }
}

/** Each element's id, if every element is an object with a string `id` and no id repeats (else
 * elements can't be told apart by id, and the list is diffed by index). */
function ids(list: readonly Json[]): string[] | null {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const v of list) {
    const id = isObject(v) ? getKey(v, "id") : undefined;
    if (typeof id !== "string" || seen.has(id)) return null;
    seen.add(id);
    out.push(id);
  }
  return out;
}

function byId(at: Path, a: readonly Json[], b: readonly Json[], ia: string[], ib: string[], out: Component[]): void {
  const posA = new Map(ia.map((s, i) => [s, i]));
  const posB = new Map(ib.map((s, j) => [s, j]));
  // Deletes last first, so the indices of those still to delete stay put.
  for (let i = ia.length - 1; i >= 0; i--) {
    if (!posB.has(ia[i]!)) out.push(del(child(at, i)));
  }
  // The kept elements, as their index in `to`, in the order they now stand.
  const cur: number[] = [];
  for (const s of ia) {
    const j = posB.get(s);
    if (j !== undefined) cur.push(j);
  }
  const stay = longestIncreasing(cur, b.length);
  const order = cur.slice().sort((x, y) => x - y);
  // Each element that moves goes right after its predecessor in `to`'s order, taken in that
  // order: the elements placed so far then stand in order, and the last one placed ends it.
  for (let r = 0; r < order.length; r++) {
    const j = order[r]!;
    if (stay[j]) continue;
    const k = cur.indexOf(j);
    if (k < 0) continue;
    cur.splice(k, 1);
    let dest = 0;
    if (r > 0) {
      const q = cur.indexOf(order[r - 1]!);
      dest = q < 0 ? 0 : q + 1;
    }
    cur.splice(dest, 0, j);
    if (dest !== k) out.push(mov(child(at, k), dest));
  }
  // Inserts in target order: everything before index `j` is then already final.
  ib.forEach((id, j) => {
    if (!posA.has(id)) out.push(ins(child(at, j), b[j]!));
  });
  ib.forEach((id, j) => {
    const i = posA.get(id);
    if (i !== undefined) value(child(at, j), a[i]!, b[j]!, out);
  });
}

/**
 * Marks (by value, each `< n`) a longest strictly increasing subsequence of `seq`: the elements
 * that need not move. O(len · log len). Exported for tests.
 *
 * @internal
 */
export function longestIncreasing(seq: readonly number[], n: number): boolean[] {
  // tails[k]: index in `seq` of the smallest end of an increasing run of length k + 1.
  const tails: number[] = [];
  const prev: (number | undefined)[] = new Array<number | undefined>(seq.length).fill(undefined);
  seq.forEach((x, i) => {
    // partition_point: the first k with seq[tails[k]] >= x.
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seq[tails[mid]!]! < x) lo = mid + 1;
      else hi = mid;
    }
    prev[i] = lo > 0 ? tails[lo - 1] : undefined;
    if (lo === tails.length) tails.push(i);
    else tails[lo] = i;
  });
  const keep = new Array<boolean>(n).fill(false);
  for (let i: number | undefined = tails[tails.length - 1]; i !== undefined; i = prev[i]) keep[seq[i]!] = true;
  return keep;
}

function byIndex(at: Path, a: readonly Json[], b: readonly Json[], out: Component[]): void {
  let pre = 0;
  while (pre < a.length && pre < b.length && deepEqual(a[pre], b[pre])) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && deepEqual(a[a.length - 1 - suf], b[b.length - 1 - suf])) suf++;
  const ma = a.length - pre - suf;
  const mb = b.length - pre - suf;
  const paired = pre + Math.min(ma, mb);
  for (let k = pre; k < paired; k++) value(child(at, k), a[k]!, b[k]!, out);
  // What the old middle has beyond the new one goes, last first; what the new one has beyond
  // the old one comes in after the paired elements.
  for (let k = pre + ma - 1; k >= paired; k--) out.push(del(child(at, k)));
  for (let k = paired; k < pre + mb; k++) out.push(ins(child(at, k), b[k]!));
}

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/** UTF-16 units of the scalar that ends at `end` in `s`, not reaching below `floor`. */
function lastWidth(s: string, end: number, floor: number): number {
  return end - 2 >= floor && isLow(s.charCodeAt(end - 1)) && isHigh(s.charCodeAt(end - 2)) ? 2 : 1;
}

function text(at: Path, a: string, b: string, out: Component[]): void {
  // Linear scans from both ends, a scalar (code point) at a time, never splitting a pair.
  let pre = 0; // UTF-16 units
  let preChars = 0;
  while (pre < a.length && pre < b.length) {
    const x = a.codePointAt(pre)!;
    if (x !== b.codePointAt(pre)) break;
    pre += x > 0xffff ? 2 : 1;
    preChars++;
  }
  let ea = a.length;
  let eb = b.length;
  while (ea > pre && eb > pre) {
    const wa = lastWidth(a, ea, pre);
    const wb = lastWidth(b, eb, pre);
    if (wa !== wb || a.slice(ea - wa, ea) !== b.slice(eb - wb, eb)) break;
    ea -= wa;
    eb -= wb;
  }
  const old = a.slice(pre, ea);
  const next = b.slice(pre, eb);
  if (old === "" && next === "") return;
  const op = new TextOp();
  op.push({ retain: preChars });
  op.push({ insert: next });
  op.push({ delete: scalarLength(old) });
  out.push({ op: "text", path: at, text: op });
}

/** The value at `path`, if every step exists (own keys only). */
function valueAt(doc: Json, path: readonly Seg[]): Json | undefined {
  let v: Json | undefined = doc;
  for (const seg of path) {
    if (isObject(v) && typeof seg === "string") v = getKey(v, seg);
    else if (Array.isArray(v) && typeof seg === "number") v = seg < v.length ? v[seg] : undefined;
    else return undefined;
    if (v === undefined) return undefined;
  }
  return v;
}

/** The elements of a list, or none. */
function items(v: Json | undefined): readonly Json[] {
  return Array.isArray(v) ? v : [];
}

function get(v: Json | undefined, key: string): Json | undefined {
  return isObject(v) ? getKey(v, key) : undefined;
}

/**
 * Where the layer, track or clip with `id` stands: `canvas.layers[i]`, `timeline.tracks[i]` or
 * `timeline.tracks[i].clips[j]`; null if it is in none of them.
 */
export function findElement(doc: Json, id: string): Path | null {
  const hasId = (v: Json) => get(v, "id") === id;
  const layers = ["canvas", "layers"];
  const i = items(valueAt(doc, layers)).findIndex(hasId);
  if (i >= 0) return [...layers, i];
  const tracks = ["timeline", "tracks"];
  const list = items(valueAt(doc, tracks));
  for (let t = 0; t < list.length; t++) {
    const track = list[t]!;
    if (hasId(track)) return [...tracks, t];
    const j = items(get(track, "clips")).findIndex(hasId);
    if (j >= 0) return [...tracks, t, "clips", j];
  }
  return null;
}

/**
 * The edit that brings back one layer, track or clip (by `id`) as it is in `old`, leaving the rest
 * of `head` as it is: a diff of the element where both have it (it stays where it now stands);
 * an `ins` at its old index (clamped) where only `old` has it, into the same list — a clip into
 * its old track, found by id; a `del` where only `head` has it. Null when neither has it, or when
 * its old track is gone from `head`. The empty edit when it is the same in both.
 */
export function restoreElement(head: Json, old: Json, id: string): Op | null {
  const now = findElement(head, id);
  const then = findElement(old, id);
  if (now !== null && then !== null) {
    const x = valueAt(head, now);
    const y = valueAt(old, then);
    return x === undefined || y === undefined ? null : diffUnder(now, x, y);
  }
  if (now !== null) return [del(now)];
  if (then === null) return null;
  // A clip goes back into its track as the head has it.
  let parent: Path;
  if (then.length === 5) {
    const trackId = get(valueAt(old, then.slice(0, 3)), "id");
    if (typeof trackId !== "string") return null;
    const track = findElement(head, trackId);
    if (track === null) return null;
    parent = [...track, "clips"];
  } else {
    parent = then.slice(0, -1);
  }
  const list = valueAt(head, parent);
  const i = lastIndex(then);
  const v = valueAt(old, then);
  if (!Array.isArray(list) || i === undefined || v === undefined) return null;
  return [ins([...parent, Math.min(i, list.length)], v)];
}
