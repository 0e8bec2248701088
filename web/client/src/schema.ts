/** The document's shape (docs/PROTOCOL.md "The document"), as `schema.rs` checks it: an edit whose result breaks it
 * is refused. Only the entities an edit touched are checked. */
import type { Component } from "./component.js";
import { errors } from "./error.js";
import { type Json, getKey, isObject, typeName } from "./json.js";
import { type Seg, lastIndex, withLastIndex } from "./path.js";
import { adjustRange } from "./apply.js";

const bad = (path: readonly Seg[], reason: string) => errors.schema(path, reason);

function at(doc: Json, path: readonly Seg[]): Json | undefined {
  let v: Json | undefined = doc;
  for (const seg of path) {
    if (isObject(v) && typeof seg === "string") v = getKey(v, seg);
    else if (Array.isArray(v) && typeof seg === "number") v = v[seg];
    else return undefined;
    if (v === undefined) return undefined;
  }
  return v;
}

/** Checks a whole document; throws `OtError` (`schema`). */
export function checkDocument(doc: Json): void {
  checkRoot(doc);
  checkEntity(doc, []);
}

/** Checks the root shape and every entity (layer, track, clip, asset) the edit touched. */
export function checkTouched(doc: Json, op: readonly Component[]): void {
  let rootChecked = false;
  for (const c of op) {
    const e = entity(c.path);
    if (e === undefined && (c.op === "text" || c.op === "add")) continue;
    if (!rootChecked) {
      checkRoot(doc);
      rootChecked = true;
    }
    if (e !== undefined) checkEntity(doc, e);
    if (c.op === "split") {
      const i = lastIndex(c.path);
      if (i !== undefined) {
        const e2 = entity(withLastIndex(c.path, i + 1));
        if (e2 !== undefined) checkEntity(doc, e2);
      }
    }
  }
}

function entity(p: readonly Seg[]): readonly Seg[] | undefined {
  const key = (n: number, k: string) => p[n] === k;
  const idx = (n: number) => typeof p[n] === "number";
  if (key(0, "canvas") && key(1, "layers") && idx(2)) return p.slice(0, 3);
  if (key(0, "timeline") && key(1, "tracks") && idx(2) && key(3, "clips") && idx(4)) return p.slice(0, 5);
  if (key(0, "timeline") && key(1, "tracks") && idx(2)) return p.slice(0, 3);
  if (key(0, "assets") || key(0, "canvas") || key(0, "timeline")) return p.slice(0, Math.min(p.length, 2));
  if (p.length === 0) return p;
  return undefined;
}

function get(v: Json, k: string): Json | undefined {
  return isObject(v) ? getKey(v, k) : undefined;
}

function checkEntity(doc: Json, e: readonly Seg[]): void {
  const v = at(doc, e);
  if (v === undefined) return;
  const key = (n: number, k: string) => e[n] === k;
  switch (e.length) {
    case 0:
      checkCanvas(get(v, "canvas") ?? null, ["canvas"]);
      checkTimeline(get(v, "timeline") ?? null, ["timeline"]);
      checkAssets(get(v, "assets") ?? null, ["assets"]);
      return;
    case 1:
      if (key(0, "canvas")) return checkCanvas(v, e);
      if (key(0, "timeline")) return checkTimeline(v, e);
      if (key(0, "assets")) return checkAssets(v, e);
      return;
    case 2:
      if (key(0, "canvas") && key(1, "layers")) return checkList(v, e, checkLayer);
      if (key(0, "canvas")) return checkCanvas(get(doc, "canvas") ?? null, e.slice(0, 1));
      if (key(0, "timeline") && key(1, "tracks")) return checkList(v, e, checkTrack);
      if (key(0, "timeline")) return;
      if (key(0, "assets")) return checkAsset(v, e);
      return;
    case 3:
      if (key(0, "canvas")) return checkLayer(v, e);
      return checkTrack(v, e);
    case 5:
      return checkClip(v, e);
    default:
      return;
  }
}

function checkRoot(doc: Json): void {
  if (!isObject(doc)) throw bad([], "the document must be an object");
  const want: [string, string][] = [
    ["title", "string"],
    ["assets", "object"],
    ["canvas", "object"],
    ["timeline", "object"],
    ["meta", "object"],
  ];
  for (const [k, t] of want) {
    const v = getKey(doc, k);
    if (v === undefined) throw bad([k], "is required");
    if (typeName(v) !== t) throw bad([k], `must be a ${t}, not a ${typeName(v)}`);
  }
}

function field(v: Json, at: readonly Seg[], k: string, t: string, required: boolean): Json | undefined {
  const x = get(v, k);
  if (x !== undefined) {
    if (typeName(x) === t) return x;
    throw bad([...at, k], `must be a ${t}, not a ${typeName(x)}`);
  }
  if (required) throw bad([...at, k], "is required");
  return undefined;
}

function object(v: Json, at: readonly Seg[]): void {
  if (!isObject(v)) throw bad(at, `must be an object, not a ${typeName(v)}`);
}

function checkList(v: Json, at: readonly Seg[], each: (x: Json, at: readonly Seg[]) => void): void {
  if (!Array.isArray(v)) throw bad(at, "must be an array");
  v.forEach((x, i) => each(x, [...at, i]));
}

function checkCanvas(v: Json, at: readonly Seg[]): void {
  object(v, at);
  field(v, at, "width", "number", true);
  field(v, at, "height", "number", true);
  const layers = field(v, at, "layers", "array", true) ?? null;
  checkList(layers, [...at, "layers"], checkLayer);
}

function checkTimeline(v: Json, at: readonly Seg[]): void {
  object(v, at);
  const tracks = field(v, at, "tracks", "array", true) ?? null;
  checkList(tracks, [...at, "tracks"], checkTrack);
}

function checkAssets(v: Json, at: readonly Seg[]): void {
  if (!isObject(v)) throw bad(at, "must be an object");
  // Rust walks a BTreeMap: keys in sorted order (only the first failure's message differs).
  for (const k of Object.keys(v).sort()) checkAsset(v[k]!, [...at, k]);
}

function oneOf(v: Json | undefined, at: readonly Seg[], k: string, allowed: string[]): void {
  if (typeof v === "string" && allowed.includes(v)) return;
  throw bad([...at, k], `must be one of ${allowed.join(", ")}`);
}

function checkAsset(v: Json, at: readonly Seg[]): void {
  object(v, at);
  oneOf(get(v, "kind"), at, "kind", ["image", "video", "audio"]);
  for (const k of ["width", "height", "duration"]) field(v, at, k, "number", false);
}

function checkLayer(v: Json, at: readonly Seg[]): void {
  object(v, at);
  field(v, at, "id", "string", true);
  oneOf(get(v, "kind"), at, "kind", ["image", "text"]);
  if (get(v, "kind") === "image") {
    field(v, at, "asset", "string", true);
    for (const k of ["x", "y", "w", "h"]) field(v, at, k, "number", true);
    field(v, at, "rotation", "number", false);
    const o = field(v, at, "opacity", "number", false);
    if (typeof o === "number" && !(o >= 0 && o <= 1)) throw bad([...at, "opacity"], "must be within 0..=1");
    const c = field(v, at, "crop", "object", false);
    if (c !== undefined) for (const k of ["x", "y", "w", "h"]) field(c, [...at, "crop"], k, "number", true);
    const f = field(v, at, "flip", "object", false);
    if (f !== undefined) for (const k of ["h", "v"]) field(f, [...at, "flip"], k, "boolean", false);
    const a = field(v, at, "adjust", "object", false);
    if (a !== undefined && isObject(a)) {
      const p = [...at, "adjust"];
      for (const k of Object.keys(a).sort()) {
        const n = field(a, p, k, "number", true);
        const r = adjustRange(k);
        if (typeof n === "number" && r && !(n >= r[0] && n <= r[1])) {
          throw bad([...p, k], `must be within ${r[0]}..=${r[1]}`);
        }
      }
    }
  } else {
    field(v, at, "text", "string", true);
    for (const k of ["x", "y", "size"]) field(v, at, k, "number", true);
    field(v, at, "color", "string", true);
  }
}

function checkTrack(v: Json, at: readonly Seg[]): void {
  object(v, at);
  field(v, at, "id", "string", true);
  oneOf(get(v, "kind"), at, "kind", ["video", "audio"]);
  const clips = field(v, at, "clips", "array", true) ?? null;
  checkList(clips, [...at, "clips"], checkClip);
}

function checkClip(v: Json, at: readonly Seg[]): void {
  object(v, at);
  field(v, at, "id", "string", true);
  field(v, at, "asset", "string", true);
  for (const k of ["start", "in", "out"]) field(v, at, k, "number", true);
}
