/** Document values are plain JSON. Objects are compared by their own keys, order-free. */
export type Json = null | boolean | number | string | Json[] | JsonObject;
/** A JSON object: own string keys to JSON values. */
export interface JsonObject {
  [key: string]: Json;
}

/** The type names the Rust engine uses in its messages. */
export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  switch (typeof v) {
    case "boolean":
      return "boolean";
    case "number":
      return "number";
    case "string":
      return "string";
    case "object":
      return "object";
    default:
      return typeof v;
  }
}

/** True for a JSON object (not `null`, not an array). */
export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** True if `k` is an own key of `o` (never one inherited from the prototype). */
export function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

/** Reads an own key only (never `constructor` or `__proto__` from the prototype). */
export function getKey(o: JsonObject, k: string): Json | undefined {
  return hasOwn(o, k) ? o[k] : undefined;
}

/** Writes an own key, safe for `__proto__`. */
export function setKey(o: JsonObject, k: string, v: Json): void {
  if (k === "__proto__") {
    Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  } else {
    o[k] = v;
  }
}

/** A deep copy of a JSON value. */
export function clone<T extends Json>(v: T): T {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x) => clone(x)) as T;
  const out: JsonObject = {};
  for (const k of Object.keys(v)) setKey(out, k, clone((v as JsonObject)[k]!));
  return out as T;
}

/** Structural equality of JSON values; object keys compare order-free. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!hasOwn(b, k)) return false;
    if (!deepEqual((a as JsonObject)[k], (b as JsonObject)[k])) return false;
  }
  return true;
}

/** The document a new session starts with (docs/PROTOCOL.md "The document"). */
export function newDocument(): JsonObject {
  return {
    title: "",
    assets: {},
    canvas: { width: 1920, height: 1080, layers: [] },
    timeline: { tracks: [] },
    meta: {},
  };
}
