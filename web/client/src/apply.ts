/** Applying components to a document (`apply.rs`). Every failure is an `OtError`; each
 * successful apply returns the components that undo it. */
import type { Component, Rect } from "./component.js";
import { errors } from "./error.js";
import { type Json, type JsonObject, clone, getKey, hasOwn, isObject, setKey, typeName } from "./json.js";
import { type Path, type Seg, lastIndex, withLastIndex } from "./path.js";

/** Holds the document so a `set` of the root can replace it. */
export interface Box {
  root: Json;
}

function walk(box: Box, segs: readonly Seg[]): Json {
  let v: Json = box.root;
  for (let n = 0; n < segs.length; n++) {
    const seg = segs[n]!;
    if (isObject(v) && typeof seg === "string") {
      const x = getKey(v, seg);
      if (x === undefined) throw errors.noSuchPath(segs.slice(0, n + 1));
      v = x;
    } else if (Array.isArray(v) && typeof seg === "number") {
      if (seg >= v.length) throw errors.outOfBounds(segs.slice(0, n), seg, v.length);
      v = v[seg]!;
    } else {
      throw errors.wrongType(segs.slice(0, n), typeof seg === "string" ? "object" : "array", typeName(v));
    }
  }
  return v;
}

const join = (p: Path, k: string): Seg[] => [...p, k];

function finite(path: Path, what: string, n: number): number {
  if (!Number.isFinite(n)) throw errors.invalid(path, `${what} must be a finite number`);
  return n;
}

function listAt(box: Box, path: Path): [Json[], number] {
  const i = lastIndex(path);
  if (i === undefined) throw errors.invalid(path, "the path must end in a list index");
  const parent = path.slice(0, -1);
  const a = walk(box, parent);
  if (!Array.isArray(a)) throw errors.wrongType(parent, "array", typeName(a));
  return [a, i];
}

function objAt(box: Box, path: Path): JsonObject {
  const m = walk(box, path);
  if (!isObject(m)) throw errors.wrongType(path, "object", typeName(m));
  return m;
}

function numField(m: JsonObject, path: Path, key: string): number | undefined {
  const v = getKey(m, key);
  if (v === undefined) return undefined;
  if (typeof v === "number") return v;
  throw errors.wrongType(join(path, key), "number", typeName(v));
}

/** Limits on adjustment values (docs/PROTOCOL.md "The document"); other parameters only need to be finite. */
export function adjustRange(param: string): [number, number] | undefined {
  switch (param) {
    case "brightness":
    case "contrast":
    case "saturation":
      return [-1, 1];
    case "exposure":
      return [-10, 10];
    default:
      return undefined;
  }
}

function rectOf(v: Json): Rect | undefined {
  if (!isObject(v)) return undefined;
  const x = getKey(v, "x");
  const y = getKey(v, "y");
  const w = getKey(v, "w");
  const h = getKey(v, "h");
  if (typeof x !== "number" || typeof y !== "number" || typeof w !== "number" || typeof h !== "number") {
    return undefined;
  }
  return { x, y, w, h };
}

/** The old crop as a `crop` inverse only when that re-applies it exactly (as montage-ot). */
function exactRectOf(v: Json): Rect | undefined {
  const r = rectOf(v);
  if (!r || !isObject(v) || Object.keys(v).length !== 4) return undefined;
  return r.x >= 0 && r.y >= 0 && r.w > 0 && r.h > 0 ? r : undefined;
}

/** Applies one component in place; returns its inverse components (apply in that order). */
export function applyComponent(box: Box, c: Component): Component[] {
  switch (c.op) {
    case "set": {
      const path = c.path;
      if (path.length === 0) {
        const old = box.root;
        box.root = clone(c.value);
        return [{ op: "set", path, value: old }];
      }
      const parent = path.slice(0, -1);
      const last = path[path.length - 1]!;
      const p = walk(box, parent);
      if (isObject(p) && typeof last === "string") {
        const old = getKey(p, last);
        setKey(p, last, clone(c.value));
        return old === undefined ? [{ op: "del", path }] : [{ op: "set", path, value: old }];
      }
      if (Array.isArray(p) && typeof last === "number") {
        if (last >= p.length) throw errors.outOfBounds(parent, last, p.length);
        const old = p[last]!;
        p[last] = clone(c.value);
        return [{ op: "set", path, value: old }];
      }
      throw errors.wrongType(parent, typeof last === "string" ? "object" : "array", typeName(p));
    }
    case "del": {
      const path = c.path;
      if (path.length === 0) throw errors.invalid(path, "the document root can't be deleted");
      const parent = path.slice(0, -1);
      const last = path[path.length - 1]!;
      const p = walk(box, parent);
      if (isObject(p) && typeof last === "string") {
        if (!hasOwn(p, last)) throw errors.noSuchPath(path);
        const old = p[last]!;
        delete p[last];
        return [{ op: "set", path, value: old }];
      }
      if (Array.isArray(p) && typeof last === "number") {
        if (last >= p.length) throw errors.outOfBounds(parent, last, p.length);
        const [old] = p.splice(last, 1);
        return [{ op: "ins", path, value: old! }];
      }
      throw errors.wrongType(parent, typeof last === "string" ? "object" : "array", typeName(p));
    }
    case "ins": {
      const [a, i] = listAt(box, c.path);
      if (i > a.length) throw errors.outOfBounds(c.path.slice(0, -1), i, a.length);
      a.splice(i, 0, clone(c.value));
      return [{ op: "del", path: c.path }];
    }
    case "mov": {
      const [a, i] = listAt(box, c.path);
      for (const idx of [i, c.to]) {
        if (idx >= a.length) throw errors.outOfBounds(c.path.slice(0, -1), idx, a.length);
      }
      const [v] = a.splice(i, 1);
      a.splice(c.to, 0, v!);
      return [{ op: "mov", path: withLastIndex(c.path, c.to), to: i }];
    }
    case "add": {
      finite(c.path, "add", c.value);
      const parent = c.path.slice(0, -1);
      const v = walk(box, c.path);
      if (typeof v !== "number") throw errors.wrongType(c.path, "number", typeName(v));
      const sum = finite(c.path, "the sum", v + c.value);
      if (c.path.length === 0) box.root = sum;
      else {
        const p = walk(box, parent) as JsonObject | Json[];
        const last = c.path[c.path.length - 1]!;
        if (Array.isArray(p)) p[last as number] = sum;
        else setKey(p, last as string, sum);
      }
      return [{ op: "add", path: c.path, value: -c.value }];
    }
    case "text": {
      const v = walk(box, c.path);
      if (typeof v !== "string") throw errors.wrongType(c.path, "string", typeName(v));
      const { text, inverse } = c.text.apply(v, c.path);
      if (c.path.length === 0) box.root = text;
      else {
        const p = walk(box, c.path.slice(0, -1)) as JsonObject | Json[];
        const last = c.path[c.path.length - 1]!;
        if (Array.isArray(p)) p[last as number] = text;
        else setKey(p, last as string, text);
      }
      return [{ op: "text", path: c.path, text: inverse }];
    }
    case "split": {
      finite(c.path, "at", c.at);
      finite(c.path, "media", c.media);
      const [a, i] = listAt(box, c.path);
      if (i >= a.length) throw errors.outOfBounds(c.path.slice(0, -1), i, a.length);
      const clip = a[i]!;
      if (!isObject(clip)) throw errors.wrongType(c.path, "object", typeName(clip));
      for (const key of ["start", "in", "out"]) {
        if (numField(clip, c.path, key) === undefined) {
          throw errors.invalid(c.path, `split: the clip has no \`${key}\``);
        }
      }
      const oldOut = getKey(clip, "out") ?? null;
      setKey(clip, "out", c.media);
      const right: JsonObject = {};
      for (const k of Object.keys(clip)) setKey(right, k, clone(clip[k]!));
      setKey(right, "id", c.id);
      setKey(right, "start", c.at);
      setKey(right, "in", c.media);
      setKey(right, "out", oldOut);
      a.splice(i + 1, 0, right);
      return [
        { op: "del", path: withLastIndex(c.path, i + 1) },
        { op: "set", path: join(c.path, "out"), value: oldOut },
      ];
    }
    case "trim": {
      const m = objAt(box, c.path);
      const fields: [string, number | undefined][] = [
        ["start", c.start],
        ["in", c.in],
        ["out", c.out],
      ];
      const old: (number | undefined)[] = [undefined, undefined, undefined];
      fields.forEach(([key, v], n) => {
        if (v !== undefined) {
          finite(c.path, key, v);
          const o = numField(m, c.path, key);
          if (o === undefined) throw errors.invalid(c.path, `trim: the clip has no \`${key}\``);
          old[n] = o;
        }
      });
      for (const [key, v] of fields) if (v !== undefined) setKey(m, key, v);
      const inv: Component = { op: "trim", path: c.path };
      if (old[0] !== undefined) inv.start = old[0];
      if (old[1] !== undefined) inv.in = old[1];
      if (old[2] !== undefined) inv.out = old[2];
      return [inv];
    }
    case "crop": {
      const r = c.rect;
      for (const [k, v] of [
        ["x", r.x],
        ["y", r.y],
        ["w", r.w],
        ["h", r.h],
      ] as const) {
        finite(c.path, k, v);
      }
      if (r.x < 0 || r.y < 0 || r.w <= 0 || r.h <= 0) {
        throw errors.invalid(c.path, "crop: x and y must be ≥ 0, w and h > 0");
      }
      const m = objAt(box, c.path);
      const old = getKey(m, "crop");
      setKey(m, "crop", { x: r.x, y: r.y, w: r.w, h: r.h });
      if (old === undefined) return [{ op: "del", path: join(c.path, "crop") }];
      const oldRect = exactRectOf(old);
      return oldRect
        ? [{ op: "crop", path: c.path, rect: oldRect }]
        : [{ op: "set", path: join(c.path, "crop"), value: old }];
    }
    case "rotate": {
      finite(c.path, "by", c.by);
      const m = objAt(box, c.path);
      const r = numField(m, c.path, "rotation");
      if (r !== undefined) {
        finite(c.path, "the rotation", r + c.by);
        setKey(m, "rotation", r + c.by);
        return [{ op: "rotate", path: c.path, by: -c.by }];
      }
      setKey(m, "rotation", c.by);
      return [{ op: "del", path: join(c.path, "rotation") }];
    }
    case "adjust": {
      const { param, value } = c;
      finite(c.path, "value", value);
      if (param.length === 0 || param.length > 32 || !/^[a-z_]+$/.test(param)) {
        throw errors.invalid(c.path, "adjust: `param` must be 1–32 lowercase letters or `_`");
      }
      const range = adjustRange(param);
      if (range && !(value >= range[0] && value <= range[1])) {
        throw errors.invalid(c.path, `adjust: ${param} must be within ${range[0]}..=${range[1]}`);
      }
      const m = objAt(box, c.path);
      const adj = getKey(m, "adjust");
      if (adj === undefined) {
        const o: JsonObject = {};
        setKey(o, param, value);
        setKey(m, "adjust", o);
        return [{ op: "del", path: join(c.path, "adjust") }];
      }
      if (!isObject(adj)) throw errors.wrongType(join(c.path, "adjust"), "object", typeName(adj));
      const old = getKey(adj, param);
      setKey(adj, param, value);
      const at = [...c.path, "adjust", param];
      if (old === undefined) return [{ op: "del", path: at }];
      if (typeof old === "number" && (range === undefined || (old >= range[0] && old <= range[1]))) {
        return [{ op: "adjust", path: c.path, param, value: old }];
      }
      return [{ op: "set", path: at, value: old }];
    }
  }
}

