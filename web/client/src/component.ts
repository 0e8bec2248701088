/** Edit components (docs/PROTOCOL.md "The document"): the JSON ones and the media-semantic ones, with their strict
 * wire decoding (`component.rs`). */
import { OtError, errors } from "./error.js";
import { type Json, isObject, hasOwn } from "./json.js";
import { type Path, type Seg, lastIndex } from "./path.js";
import { TextOp } from "./text.js";
import { hasLoneSurrogate } from "./unicode.js";

/** Paths deeper than this are refused when decoded. */
export const MAX_PATH_DEPTH = 64;
/** List indices, text positions and counts in a decoded edit, at most (2³² − 1). */
export const MAX_INDEX = 0xffff_ffff;
/** Components in one edit, at most. */
export const MAX_COMPONENTS = 10_000;

/** A rectangle (a crop), in the asset's pixels. */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * One change to the document at `path`: the engine's component kinds (docs/OT.md). Build them with
 * {@link set}, {@link ins}, {@link del}, {@link mov}, {@link add}, {@link textInsert}, {@link
 * textDelete}, {@link textChange} and the {@link media} builders.
 */
export type Component =
  | { op: "set"; path: Path; value: Json }
  | { op: "del"; path: Path }
  | { op: "ins"; path: Path; value: Json }
  | { op: "mov"; path: Path; to: number }
  | { op: "add"; path: Path; value: number }
  | { op: "text"; path: Path; text: TextOp }
  | { op: "split"; path: Path; at: number; media: number; id: string }
  | { op: "trim"; path: Path; start?: number | undefined; in?: number | undefined; out?: number | undefined }
  | { op: "crop"; path: Path; rect: Rect }
  | { op: "rotate"; path: Path; by: number }
  | { op: "adjust"; path: Path; param: string; value: number };

/** One edit: components applied atomically as one version. */
export type Op = Component[];

/** The JSON form of one component, as on the wire. */
export type WireComponent =
  | { op: "set"; path: Seg[]; value: Json }
  | { op: "del"; path: Seg[] }
  | { op: "ins"; path: Seg[]; value: Json }
  | { op: "mov"; path: Seg[]; to: number }
  | { op: "add"; path: Seg[]; value: number }
  | { op: "text"; path: Seg[]; pos: number; ins: string }
  | { op: "text"; path: Seg[]; pos: number; del: number }
  | { op: "split"; path: Seg[]; at: number; media: number; id: string }
  | { op: "trim"; path: Seg[]; start?: number; in?: number; out?: number }
  | { op: "crop"; path: Seg[]; rect: Rect }
  | { op: "rotate"; path: Seg[]; by: number }
  | { op: "adjust"; path: Seg[]; param: string; value: number };

/**
 * True if the component changes nothing (an empty text op, a move to where it is, a trim of no
 * edge).
 */
export function isNoop(c: Component): boolean {
  switch (c.op) {
    case "text":
      return c.text.isNoop();
    case "mov":
      return lastIndex(c.path) === c.to;
    case "trim":
      return c.start === undefined && c.in === undefined && c.out === undefined;
    default:
      return false;
  }
}

// ---- constructors -------------------------------------------------------------------------

/** Replaces the value at `path` (an object key may be new). */
export const set = (path: Path, value: Json): Component => ({ op: "set", path, value });
/** Removes the object key or list element at `path`. */
export const del = (path: Path): Component => ({ op: "del", path });
/** Inserts `value` into a list at index `path`'s last segment. */
export const ins = (path: Path, value: Json): Component => ({ op: "ins", path, value });
/** Moves the list element at `path` to index `to` of the same list. */
export const mov = (path: Path, to: number): Component => ({ op: "mov", path, to });
/** Adds `value` to the number at `path`: concurrent adds both count. */
export const add = (path: Path, value: number): Component => ({ op: "add", path, value });
/** Inserts `s` into the string at `path`, at scalar position `pos`. */
export const textInsert = (path: Path, pos: number, s: string): Component => ({
  op: "text",
  path,
  text: TextOp.insert(pos, s),
});
/** Deletes `n` scalars of the string at `path`, from scalar position `pos`. */
export const textDelete = (path: Path, pos: number, n: number): Component => ({
  op: "text",
  path,
  text: TextOp.delete(pos, n),
});
/** The edit of the string at `path` from `old` to `next` (`TextOp.diff`): e.g. a text field's
 * value after an input event. */
export const textChange = (path: Path, old: string, next: string): Component => ({
  op: "text",
  path,
  text: TextOp.diff(old, next),
});

// ---- decoding -----------------------------------------------------------------------------

const FIELDS: Record<string, { required: string[]; optional: string[] }> = {
  set: { required: ["path", "value"], optional: [] },
  del: { required: ["path"], optional: [] },
  ins: { required: ["path", "value"], optional: [] },
  mov: { required: ["path", "to"], optional: [] },
  add: { required: ["path", "value"], optional: [] },
  text: { required: ["path", "pos"], optional: ["ins", "del"] },
  split: { required: ["path", "at", "media", "id"], optional: [] },
  trim: { required: ["path"], optional: ["start", "in", "out"] },
  crop: { required: ["path", "rect"], optional: [] },
  rotate: { required: ["path", "by"], optional: [] },
  adjust: { required: ["path", "param", "value"], optional: [] },
};

function fail(reason: string): never {
  throw errors.decode(reason);
}

function decodePath(v: unknown): Seg[] {
  if (!Array.isArray(v)) fail("a path must be an array of keys and indices");
  if (v.length > MAX_PATH_DEPTH) fail("path deeper than 64 segments");
  return v.map((s) => {
    if (typeof s === "string") return s;
    if (typeof s === "number" && Number.isInteger(s) && s >= 0) return s;
    if (typeof s === "number" && Number.isInteger(s)) fail("negative index");
    return fail("a path segment must be a string key or a non-negative integer index");
  });
}

function num(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(`\`${what}\` must be a number`);
  return v;
}
function optNum(v: unknown, what: string): number | undefined {
  return v === undefined || v === null ? undefined : num(v, what);
}
function uint(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) fail(`\`${what}\` must be a non-negative integer`);
  return v;
}
function str(v: unknown, what: string): string {
  if (typeof v !== "string") fail(`\`${what}\` must be a string`);
  if (hasLoneSurrogate(v)) fail(`\`${what}\` holds an unpaired surrogate`);
  return v;
}
function checkValue(v: unknown, depth = 0): Json {
  if (depth > 512) fail("value nested too deeply");
  if (v === null || typeof v === "boolean") return v;
  if (typeof v === "number") return num(v, "value");
  if (typeof v === "string") return str(v, "value");
  if (Array.isArray(v)) {
    for (const x of v) checkValue(x, depth + 1);
    return v as Json;
  }
  if (isObject(v)) {
    for (const k of Object.keys(v)) {
      str(k, "key");
      checkValue(v[k], depth + 1);
    }
    return v;
  }
  return fail("a value must be JSON");
}

function checkBounds(path: Seg[], counts: number[]): void {
  if (path.some((s) => typeof s === "number" && s > MAX_INDEX) || counts.some((n) => n > MAX_INDEX)) {
    fail(`indices, positions and counts are at most ${MAX_INDEX}`);
  }
}

/** Decodes one wire component, strictly (unknown fields are refused). */
export function decodeComponent(w: unknown): Component {
  if (!isObject(w)) fail("a component must be an object");
  const kind = w["op"];
  if (typeof kind !== "string" || !hasOwn(FIELDS, kind)) fail(`unknown op ${JSON.stringify(kind)}`);
  const spec = FIELDS[kind]!;
  for (const k of Object.keys(w)) {
    if (k !== "op" && !spec.required.includes(k) && !spec.optional.includes(k)) fail(`unknown field \`${k}\``);
  }
  for (const k of spec.required) if (!hasOwn(w, k)) fail(`missing field \`${k}\``);
  const path = decodePath(w["path"]);
  switch (kind) {
    case "set":
    case "ins": {
      checkBounds(path, []);
      const value = checkValue(w["value"]);
      if (kind === "ins" && lastIndex(path) === undefined) fail("ins: the path must end in a list index");
      return { op: kind, path, value };
    }
    case "del":
      checkBounds(path, []);
      return { op: "del", path };
    case "mov": {
      const to = uint(w["to"], "to");
      checkBounds(path, [to]);
      if (lastIndex(path) === undefined) fail("mov: the path must end in a list index");
      return { op: "mov", path, to };
    }
    case "add":
      checkBounds(path, []);
      return { op: "add", path, value: num(w["value"], "value") };
    case "text": {
      const pos = uint(w["pos"], "pos");
      const i = w["ins"] === null ? undefined : w["ins"];
      const d = w["del"] === null ? undefined : w["del"];
      const dn = d === undefined ? undefined : uint(d, "del");
      const is = i === undefined ? undefined : str(i, "ins");
      checkBounds(path, [pos, dn ?? 0]);
      if (is !== undefined && dn === undefined) return { op: "text", path, text: TextOp.insert(pos, is) };
      if (is === undefined && dn !== undefined) return { op: "text", path, text: TextOp.delete(pos, dn) };
      return fail("text: give exactly one of `ins` and `del`");
    }
    case "split": {
      const at = num(w["at"], "at");
      const media = num(w["media"], "media");
      const id = str(w["id"], "id");
      checkBounds(path, []);
      if (lastIndex(path) === undefined) fail("split: the path must name a clip in a list");
      return { op: "split", path, at, media, id };
    }
    case "trim": {
      const start = optNum(w["start"], "start");
      const inn = optNum(w["in"], "in");
      const out = optNum(w["out"], "out");
      checkBounds(path, []);
      if (start === undefined && inn === undefined && out === undefined) {
        fail("trim: give at least one of `start`, `in`, `out`");
      }
      const c: Component = { op: "trim", path };
      if (start !== undefined) c.start = start;
      if (inn !== undefined) c.in = inn;
      if (out !== undefined) c.out = out;
      return c;
    }
    case "crop": {
      const r = w["rect"];
      if (!isObject(r)) fail("crop: `rect` must be an object");
      for (const k of Object.keys(r)) if (!["x", "y", "w", "h"].includes(k)) fail(`unknown field \`${k}\``);
      const rect = { x: num(r["x"], "x"), y: num(r["y"], "y"), w: num(r["w"], "w"), h: num(r["h"], "h") };
      checkBounds(path, []);
      return { op: "crop", path, rect };
    }
    case "rotate":
      checkBounds(path, []);
      return { op: "rotate", path, by: num(w["by"], "by") };
    case "adjust": {
      const param = str(w["param"], "param");
      const value = num(w["value"], "value");
      checkBounds(path, []);
      return { op: "adjust", path, param, value };
    }
  }
  return fail(`unknown op ${kind}`);
}

/** Decodes an edit's wire form (a JSON array of components). Throws `OtError` (`decode`). */
export function decodeOp(w: unknown): Op {
  if (!Array.isArray(w)) fail("an edit must be an array of components");
  if (w.length > MAX_COMPONENTS) fail(`an edit has at most ${MAX_COMPONENTS} components`);
  return w.map(decodeComponent);
}

/**
 * Decodes a compact catch-up (`joined.delta`, `{"base_version":V,"runs":[{"n"?:N,"c":[…]}…]}`):
 * every edit missed since `base_version`, composed and run-length encoded, as the one edit it
 * stands for (each run's components repeated `n` times, in order). Throws `OtError` (`decode`).
 */
export function decodeDelta(w: unknown): { baseVersion: number; op: Op } {
  if (typeof w !== "object" || w === null || Array.isArray(w)) fail("a delta must be an object");
  const d = w as Record<string, unknown>;
  const baseVersion = num(d["base_version"], "base_version");
  if (!Array.isArray(d["runs"])) fail("a delta's runs must be an array");
  const op: Component[] = [];
  for (const r of d["runs"] as unknown[]) {
    if (typeof r !== "object" || r === null) fail("a run must be an object");
    const run = r as Record<string, unknown>;
    const n = run["n"] === undefined ? 1 : num(run["n"], "n");
    const cs = decodeOp(run["c"]);
    for (let i = 0; i < n; i++) op.push(...cs);
  }
  return { baseVersion, op };
}

/** The wire form of an edit: a multi-part text op becomes several `text` components. */
export function encodeOp(op: readonly Component[]): WireComponent[] {
  const out: WireComponent[] = [];
  for (const c of op) encodeComponent(c, out);
  return out;
}

function encodeComponent(c: Component, out: WireComponent[]): void {
  const path = c.path.slice();
  switch (c.op) {
    case "set":
    case "ins":
      out.push({ op: c.op, path, value: c.value });
      return;
    case "del":
      out.push({ op: "del", path });
      return;
    case "mov":
      out.push({ op: "mov", path, to: c.to });
      return;
    case "add":
      out.push({ op: "add", path, value: c.value });
      return;
    case "text":
      for (const s of c.text.steps()) {
        out.push("ins" in s ? { op: "text", path: path.slice(), pos: s.pos, ins: s.ins } : { op: "text", path: path.slice(), pos: s.pos, del: s.del });
      }
      return;
    case "split":
      out.push({ op: "split", path, at: c.at, media: c.media, id: c.id });
      return;
    case "trim": {
      const w: WireComponent = { op: "trim", path };
      if (c.start !== undefined) w.start = c.start;
      if (c.in !== undefined) w.in = c.in;
      if (c.out !== undefined) w.out = c.out;
      out.push(w);
      return;
    }
    case "crop":
      out.push({ op: "crop", path, rect: { x: c.rect.x, y: c.rect.y, w: c.rect.w, h: c.rect.h } });
      return;
    case "rotate":
      out.push({ op: "rotate", path, by: c.by });
      return;
    case "adjust":
      out.push({ op: "adjust", path, param: c.param, value: c.value });
      return;
  }
}

export { OtError };
