/**
 * The binary form of protocol v1, subprotocol `montage.v1.proto` (docs/PROTOCOL.md "Binary
 * frames"): each frame is one protobuf message of `crates/protocol/proto/montage.proto` — a
 * `ClientFrame` from the client, a `ServerFrame` from the server — whose TypeScript types are
 * generated into `src/gen/` (`npm run generate`).
 *
 * The SDK keeps speaking in the JSON message objects: these functions turn such an object into
 * a frame and a frame into the very object its JSON text would parse to, the same mapping as
 * the server's `crates/protocol/src/binary.rs` (`web/test-vectors/binary-frames.json`, written
 * by the Rust tests, holds both forms of every message type). A JSON value travels as a flat
 * pre-order node list (`Value`), read back without recursion; whole numbers as varints; 64-bit
 * integers come back as JavaScript numbers, as `JSON.parse` would read them.
 *
 * Decoding is defensive: a frame that is not a `montage.v1` message, or one that no JSON frame
 * could stand for (a list claiming more items than follow, a NaN, an unknown role), throws a
 * {@link FrameError}, never anything else.
 *
 * This module is its own entry point, `@montage/client/binary`, so the protobuf runtime ships
 * only with apps that use the binary form: `new MontageClient({ …, binary: binaryFrames })`.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { MAX_COMPONENTS, MAX_PATH_DEPTH } from "./component.js";
import type { BinaryCodec } from "./connection.js";
import type { Timestamp, Value as PbJson } from "@bufbuild/protobuf/wkt";
import {
  type Annotation as PbAnnotation,
  type ClientFrame,
  ClientFrameSchema,
  type Component,
  type Delta,
  type MediaComment,
  type Node,
  type OpEntry,
  Role as PbRole,
  type ServerFrame,
  ServerFrameSchema,
  type Suggestion,
  SuggestionStatus,
  type TaskInfo,
  Tier as PbTier,
  type Value as PbValue,
  ValueSchema,
} from "./gen/montage_pb.js";

export { BINARY_SUBPROTOCOL, JSON_SUBPROTOCOL } from "./protocol.js";

/** A binary frame that could not be read, or a message that could not be written as one. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

type Obj = Record<string, unknown>;

function fail(msg: string): never {
  throw new FrameError(msg);
}

// ---- small scalars ------------------------------------------------------------------------

/** A 64-bit integer as JSON.parse would read its digits. */
const num = (n: bigint): number => Number(n);

/** A JSON number the wire carries as an unsigned 64-bit integer. */
function u64(v: unknown, what: string): bigint {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 ** 64) return BigInt(v);
  if (typeof v === "bigint" && v >= 0n && v < 1n << 64n) return v;
  return fail(`${what} must be a whole number ≥ 0`);
}
function i64(v: unknown, what: string): bigint {
  if (typeof v === "number" && Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63) return BigInt(v);
  return fail(`${what} must be a whole number`);
}
function u32(v: unknown, what: string): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff) return v;
  return fail(`${what} must be a whole number ≥ 0 below 2^32`);
}
function f64(v: unknown, what: string): number {
  if (typeof v === "number") return v;
  return fail(`${what} must be a number`);
}
function str(v: unknown, what: string): string {
  if (typeof v === "string") return v;
  return fail(`${what} must be a string`);
}
function bool(v: unknown): boolean {
  return v === true;
}
function optStr(v: unknown, what: string): string | undefined {
  return v === undefined || v === null ? undefined : str(v, what);
}
function optU64(v: unknown, what: string): bigint | undefined {
  return v === undefined || v === null ? undefined : u64(v, what);
}
/** A number the decoded frame holds: JSON can't carry NaN or the infinities. */
function finite(n: number, what: string): number {
  if (!Number.isFinite(n)) fail(`${what} must be a finite number`);
  return n;
}
function obj(v: unknown, what: string): Obj {
  if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Obj;
  return fail(`${what} must be an object`);
}
/** Sets `k` as an own property even when it is `__proto__` (as JSON.parse does). */
function put(o: Obj, k: string, v: unknown): void {
  if (k === "__proto__") Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}
/** Copies the defined entries of `extra` into `o` (JSON leaves the undefined ones out). */
function withOpt(o: Obj, extra: Obj): Obj {
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) o[k] = v;
  return o;
}

const ROLES = ["none", "viewer", "commenter", "editor", "owner"] as const;
const ROLE_PB: Record<string, PbRole> = { none: PbRole.NONE, viewer: PbRole.VIEWER, commenter: PbRole.COMMENTER, editor: PbRole.EDITOR, owner: PbRole.OWNER };
const TIERS = ["excellent", "good", "fair", "poor"] as const;
const TIER_PB: Record<string, PbTier> = { excellent: PbTier.EXCELLENT, good: PbTier.GOOD, fair: PbTier.FAIR, poor: PbTier.POOR };
const STATUSES = ["pending", "accepted", "rejected"] as const;
const STATUS_PB: Record<string, SuggestionStatus> = { pending: SuggestionStatus.PENDING, accepted: SuggestionStatus.ACCEPTED, rejected: SuggestionStatus.REJECTED };

function roleFrom(r: number): string {
  return ROLES[r] ?? fail(`unknown role ${r}`);
}
function roleTo(v: unknown, what = "role"): PbRole {
  const r = typeof v === "string" && Object.hasOwn(ROLE_PB, v) ? ROLE_PB[v] : undefined;
  return r ?? fail(`${what} must be one of ${ROLES.join(", ")}`);
}
function tierFrom(t: number): string {
  return TIERS[t] ?? fail(`unknown tier ${t}`);
}
function tierTo(v: unknown): PbTier {
  const t = typeof v === "string" && Object.hasOwn(TIER_PB, v) ? TIER_PB[v] : undefined;
  return t ?? fail(`tier must be one of ${TIERS.join(", ")}`);
}

// ---- values -------------------------------------------------------------------------------

type NodeKind = Node["kind"];

/** A number's node: whole numbers below 2^53 (9e15, as the server writes a document's) as
 * varints; other whole numbers a signed or unsigned 64-bit integer holds exactly, as JSON's
 * digits would be read by the server; the rest as doubles. */
function numberNode(n: number, json: boolean): NodeKind {
  if (!Number.isFinite(n)) fail("numbers must be finite");
  if (Number.isInteger(n)) {
    if (Math.abs(n) < 9e15) return { case: "int", value: BigInt(n) };
    if (json && n >= -(2 ** 63) && n < 2 ** 63) return { case: "int", value: BigInt(n) };
    if (json && n >= 0 && n < 2 ** 64) return { case: "uint", value: BigInt(n) };
  }
  return { case: "number", value: n };
}

/**
 * The flat form of a JSON value, as `JSON.stringify` reads it (`toJSON` is called, functions and
 * `undefined` are left out of objects and are `null` in lists, as are NaN and the infinities).
 * `json`: a free-form value (presence, a connector) rather than a document's.
 */
function valueTo(v: unknown, json = false): PbValue {
  const nodes: Node[] = [];
  const seen = new Set<object>();
  const walk = (x: unknown, key: string, inList: boolean): boolean => {
    if (typeof x === "object" && x !== null && typeof (x as { toJSON?: unknown }).toJSON === "function") {
      x = (x as { toJSON: (k: string) => unknown }).toJSON(key);
    }
    let kind: NodeKind;
    switch (typeof x) {
      case "undefined":
      case "function":
      case "symbol":
        if (!inList) return false;
        kind = { case: "null", value: true };
        break;
      case "bigint":
        return fail("a bigint is not a JSON value");
      case "boolean":
        kind = { case: "bool", value: x };
        break;
      case "string":
        kind = { case: "string", value: x };
        break;
      case "number":
        kind = Number.isFinite(x) ? numberNode(x, json) : { case: "null", value: true };
        break;
      default: {
        if (x === null) {
          kind = { case: "null", value: true };
          break;
        }
        const o = x as object;
        if (seen.has(o)) fail("a value refers to itself");
        seen.add(o);
        if (Array.isArray(o)) {
          nodes.push({ $typeName: "montage.v1.Node", key, kind: { case: "list", value: o.length } });
          for (const item of o) walk(item, "", true);
        } else {
          const head: Node = { $typeName: "montage.v1.Node", key, kind: { case: "object", value: 0 } };
          nodes.push(head);
          let n = 0;
          for (const [k, item] of Object.entries(o)) if (walk(item, k, false)) n++;
          head.kind = { case: "object", value: n };
        }
        seen.delete(o);
        return true;
      }
    }
    nodes.push({ $typeName: "montage.v1.Node", key, kind });
    return true;
  };
  walk(v, "", true);
  return create(ValueSchema, { nodes });
}

/** A list or object being filled while reading the flat form. */
interface Open {
  list: unknown[] | null;
  object: Obj | null;
  left: number;
  key: string;
}

/** Reads the flat form back without recursion: a deep document can't exhaust the stack, and
 * nothing is allocated for items that are not there. */
function valueFrom(v: PbValue | undefined, what: string): unknown {
  if (v === undefined) return fail(`${what} is missing`);
  const nodes = v.nodes;
  const stack: Open[] = [];
  let root: { value: unknown } | null = null;
  for (let i = 0; i < nodes.length; i++) {
    if (root !== null) fail("a value has nodes after its end");
    const node = nodes[i]!;
    const left = nodes.length - i - 1;
    const k = node.kind;
    let done: unknown;
    switch (k.case) {
      case "list":
      case "object":
        if (k.value > left) fail("a list or object claims more items than follow it");
        if (k.value > 0) {
          stack.push(k.case === "list" ? { list: [], object: null, left: k.value, key: node.key } : { list: null, object: {}, left: k.value, key: node.key });
          continue;
        }
        done = k.case === "list" ? [] : {};
        break;
      case "null":
        done = null;
        break;
      case "bool":
      case "string":
        done = k.value;
        break;
      case "number":
        done = finite(k.value, "a number");
        break;
      case "int":
      case "uint":
        done = num(k.value);
        break;
      default:
        return fail("a value node has no kind");
    }
    let key = node.key;
    // Put the finished value in its parent; a parent that is then full is finished too.
    for (;;) {
      const top = stack[stack.length - 1];
      if (top === undefined) {
        root = { value: done };
        break;
      }
      if (top.list !== null) top.list.push(done);
      else put(top.object!, key, done);
      if (--top.left > 0) break;
      stack.pop();
      done = top.list ?? top.object;
      key = top.key;
    }
  }
  if (root === null) fail("a value is missing nodes");
  return root.value;
}

/** google.protobuf.Value (an annotation's drawing) from JSON, as the server's `to_pb_value`. */
function pbJsonTo(v: unknown, depth = 0): PbJson {
  if (depth > 200) fail("a drawing is too deep");
  const make = (kind: PbJson["kind"]): PbJson => ({ $typeName: "google.protobuf.Value", kind });
  if (v === null || v === undefined) return make({ case: "nullValue", value: 0 });
  switch (typeof v) {
    case "boolean":
      return make({ case: "boolValue", value: v });
    case "number":
      // JSON.stringify writes NaN and the infinities as null.
      return Number.isFinite(v) ? make({ case: "numberValue", value: v }) : make({ case: "nullValue", value: 0 });
    case "string":
      return make({ case: "stringValue", value: v });
    case "object":
      if (Array.isArray(v)) return make({ case: "listValue", value: { $typeName: "google.protobuf.ListValue", values: v.map((x) => pbJsonTo(x, depth + 1)) } });
      {
        const fields: Record<string, PbJson> = {};
        for (const [k, x] of Object.entries(v as Obj)) if (x !== undefined) fields[k] = pbJsonTo(x, depth + 1);
        return make({ case: "structValue", value: { $typeName: "google.protobuf.Struct", fields } });
      }
    default:
      return fail("a drawing must be JSON");
  }
}

/** JSON from google.protobuf.Value, as the server's `from_pb_value`: whole numbers below 2^53
 * come back as integers (the same number in JavaScript). */
function pbJsonFrom(v: PbJson): unknown {
  const k = v.kind;
  switch (k.case) {
    case undefined:
    case "nullValue":
      return null;
    case "boolValue":
    case "stringValue":
      return k.value;
    case "numberValue":
      return finite(k.value, "a drawing's number");
    case "listValue":
      return k.value.values.map(pbJsonFrom);
    case "structValue": {
      const o: Obj = {};
      for (const [key, x] of Object.entries(k.value.fields)) put(o, key, pbJsonFrom(x));
      return o;
    }
  }
}

// ---- edits --------------------------------------------------------------------------------

// The engine's limits (crates/ot), checked while reading too, so a hostile frame costs little.

function pathTo(p: unknown): Component["path"] {
  if (!Array.isArray(p)) return fail("a component's path must be a list");
  return p.map((s) => ({
    $typeName: "montage.v1.Seg" as const,
    seg: typeof s === "string" ? { case: "key" as const, value: s } : { case: "index" as const, value: u32(s, "a path index") },
  }));
}

function pathFrom(segs: Component["path"]): (string | number)[] {
  if (segs.length > MAX_PATH_DEPTH) fail(`paths are at most ${MAX_PATH_DEPTH} deep`);
  return segs.map((s) => {
    if (s.seg.case === undefined) return fail("a path segment is neither a key nor an index");
    return s.seg.value;
  });
}

function componentTo(w: unknown): Component {
  const c = obj(w, "a component");
  const path = pathTo(c["path"]);
  const op = c["op"];
  const make = (o: Component["op"]): Component => ({ $typeName: "montage.v1.Component", path, op: o });
  const T = <N extends string>(n: N) => `montage.v1.Component.${n}` as const;
  switch (op) {
    case "set":
      return make({ case: "set", value: { $typeName: T("Set"), value: valueTo(c["value"]) } });
    case "del":
      return make({ case: "del", value: { $typeName: T("Del") } });
    case "ins":
      return make({ case: "ins", value: { $typeName: T("Ins"), value: valueTo(c["value"]) } });
    case "mov":
      return make({ case: "mov", value: { $typeName: T("Mov"), to: u64(c["to"], "mov: to") } });
    case "add":
      return make({ case: "add", value: { $typeName: T("Add"), value: f64(c["value"], "add: value") } });
    case "text":
      return make({
        case: "text",
        value: { $typeName: T("Text"), pos: u64(c["pos"], "text: pos"), ins: optStr(c["ins"], "text: ins"), del: optU64(c["del"], "text: del") },
      });
    case "split":
      return make({
        case: "split",
        value: { $typeName: T("Split"), at: f64(c["at"], "split: at"), media: f64(c["media"], "split: media"), id: str(c["id"], "split: id") },
      });
    case "trim": {
      const opt = (k: string) => (c[k] === undefined || c[k] === null ? undefined : f64(c[k], `trim: ${k}`));
      return make({ case: "trim", value: { $typeName: T("Trim"), start: opt("start"), in: opt("in"), out: opt("out") } });
    }
    case "crop": {
      const r = obj(c["rect"], "crop: rect");
      const rect = { $typeName: "montage.v1.Rect" as const, x: f64(r["x"], "crop: rect.x"), y: f64(r["y"], "crop: rect.y"), w: f64(r["w"], "crop: rect.w"), h: f64(r["h"], "crop: rect.h") };
      return make({ case: "crop", value: { $typeName: T("Crop"), rect } });
    }
    case "rotate":
      return make({ case: "rotate", value: { $typeName: T("Rotate"), by: f64(c["by"], "rotate: by") } });
    case "adjust":
      return make({ case: "adjust", value: { $typeName: T("Adjust"), param: str(c["param"], "adjust: param"), value: f64(c["value"], "adjust: value") } });
    default:
      return fail(`unknown op ${JSON.stringify(op)}`);
  }
}

function componentFrom(c: Component): Obj {
  const path = pathFrom(c.path);
  const o = c.op;
  switch (o.case) {
    case "set":
      return { op: "set", path, value: valueFrom(o.value.value, "set: value") };
    case "del":
      return { op: "del", path };
    case "ins":
      return { op: "ins", path, value: valueFrom(o.value.value, "ins: value") };
    case "mov":
      return { op: "mov", path, to: num(o.value.to) };
    case "add":
      return { op: "add", path, value: finite(o.value.value, "add: value") };
    case "text": {
      const t = o.value;
      return withOpt({ op: "text", path, pos: num(t.pos) }, { ins: t.ins, del: t.del === undefined ? undefined : num(t.del) });
    }
    case "split":
      return { op: "split", path, at: finite(o.value.at, "split: at"), media: finite(o.value.media, "split: media"), id: o.value.id };
    case "trim": {
      const t = o.value;
      const opt = (n: number | undefined, what: string) => (n === undefined ? undefined : finite(n, what));
      return withOpt({ op: "trim", path }, { start: opt(t.start, "trim: start"), in: opt(t.in, "trim: in"), out: opt(t.out, "trim: out") });
    }
    case "crop": {
      const r = o.value.rect ?? fail("crop: rect is missing");
      const rect = { x: finite(r.x, "crop: rect.x"), y: finite(r.y, "crop: rect.y"), w: finite(r.w, "crop: rect.w"), h: finite(r.h, "crop: rect.h") };
      return { op: "crop", path, rect };
    }
    case "rotate":
      return { op: "rotate", path, by: finite(o.value.by, "rotate: by") };
    case "adjust":
      return { op: "adjust", path, param: o.value.param, value: finite(o.value.value, "adjust: value") };
    default:
      return fail("a component has no op");
  }
}

function opsTo(ops: unknown): Component[] {
  if (ops === undefined || ops === null) return [];
  if (!Array.isArray(ops)) return fail("ops must be a list");
  if (ops.length > MAX_COMPONENTS) fail(`an edit has at most ${MAX_COMPONENTS} components`);
  return ops.map(componentTo);
}

function opsFrom(cs: Component[]): Obj[] {
  // Counted before any is converted: a long list is refused without the work.
  if (cs.length > MAX_COMPONENTS) fail(`an edit has at most ${MAX_COMPONENTS} components`);
  return cs.map(componentFrom);
}

function deltaTo(v: unknown): Delta {
  const d = obj(v, "delta");
  const runs = d["runs"];
  if (!Array.isArray(runs)) return fail("delta: runs must be a list");
  return {
    $typeName: "montage.v1.Delta",
    baseVersion: u64(d["base_version"], "delta: base_version"),
    runs: runs.map((r) => {
      const run = obj(r, "a delta run");
      const n = run["n"] === undefined ? 1 : u32(run["n"], "a delta run's n");
      return { $typeName: "montage.v1.Delta.Run", n: n === 1 ? 0 : n, c: opsTo(run["c"]) };
    }),
  };
}

function deltaFrom(d: Delta): Obj {
  return {
    base_version: num(d.baseVersion),
    // `n` 0 means 1, which JSON leaves out.
    runs: d.runs.map((r) => (r.n > 1 ? { n: r.n, c: opsFrom(r.c) } : { c: opsFrom(r.c) })),
  };
}

// ---- timestamps ---------------------------------------------------------------------------

/** Days since 1970-01-01 → proleptic Gregorian [year, month, day] (H. Hinnant's algorithm). */
function civil(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

const pad = (n: number, w: number) => String(n).padStart(w, "0");

/** RFC 3339 in UTC, exactly as the server writes a timestamp (`prost_types::Timestamp`'s
 * `Display`): no fraction, or 3, 6 or 9 digits of one; years past 9999 with a `+`. */
export function formatTimestamp(t: { seconds: bigint; nanos: number }): string {
  let seconds = t.seconds;
  let nanos = t.nanos;
  if (nanos <= -1e9 || nanos >= 1e9) {
    seconds += BigInt(Math.trunc(nanos / 1e9));
    nanos %= 1e9;
  }
  if (nanos < 0) {
    seconds -= 1n;
    nanos += 1e9;
  }
  if (seconds > 1n << 52n || seconds < -(1n << 52n)) fail("a timestamp is out of range");
  const s = Number(seconds);
  const days = Math.floor(s / 86400);
  const rem = s - days * 86400;
  const [y, mo, d] = civil(days);
  const year = y > 9999 ? `+${y}` : y < 0 ? `-${pad(-y, 4)}` : pad(y, 4);
  const frac = nanos === 0 ? "" : nanos % 1e6 === 0 ? `.${pad(nanos / 1e6, 3)}` : nanos % 1e3 === 0 ? `.${pad(nanos / 1e3, 6)}` : `.${pad(nanos, 9)}`;
  return `${year}-${pad(mo, 2)}-${pad(d, 2)}T${pad(Math.floor(rem / 3600), 2)}:${pad(Math.floor(rem / 60) % 60, 2)}:${pad(rem % 60, 2)}${frac}Z`;
}

const RFC3339 = /^([+-]?\d{4,})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Reads an RFC 3339 timestamp (for frames the SDK's tests write as the server would). */
export function parseTimestamp(text: string): { seconds: bigint; nanos: number } {
  const m = RFC3339.exec(text);
  if (m === null) return fail(`timestamp ${JSON.stringify(text)} is not RFC 3339`);
  const n = (i: number) => Number(m[i]);
  const offset = m[8] !== undefined ? 0 : (m[9] === "-" ? -1 : 1) * (n(10) * 3600 + n(11) * 60);
  const seconds = daysFromCivil(n(1), n(2), n(3)) * 86400 + n(4) * 3600 + n(5) * 60 + n(6) - offset;
  const nanos = m[7] === undefined ? 0 : Number(m[7].padEnd(9, "0"));
  return { seconds: BigInt(seconds), nanos };
}

function timestampTo(v: unknown): Timestamp {
  const t = parseTimestamp(str(v, "timestamp"));
  return { $typeName: "google.protobuf.Timestamp", ...t };
}

// ---- comments, suggestions, entries --------------------------------------------------------

function annotationTo(v: unknown): PbAnnotation {
  const a = obj(v, "an annotation");
  const region = a["region"] === undefined ? undefined : obj(a["region"], "annotation: region");
  const time = a["time"] === undefined ? undefined : obj(a["time"], "annotation: time");
  return {
    $typeName: "montage.v1.Annotation",
    region: region && { $typeName: "montage.v1.Region", x: f64(region["x"], "region.x"), y: f64(region["y"], "region.y"), w: f64(region["w"], "region.w"), h: f64(region["h"], "region.h") },
    time: time && { $typeName: "montage.v1.TimeRange", start: f64(time["start"], "time.start"), end: f64(time["end"], "time.end") },
    drawing: a["drawing"] === undefined ? undefined : pbJsonTo(a["drawing"]),
    target: optStr(a["target"], "annotation: target"),
    orphaned: bool(a["orphaned"]),
  };
}

function annotationFrom(a: PbAnnotation): Obj {
  const r = a.region;
  const t = a.time;
  return withOpt(
    {},
    {
      region: r && { x: finite(r.x, "region.x"), y: finite(r.y, "region.y"), w: finite(r.w, "region.w"), h: finite(r.h, "region.h") },
      time: t && { start: finite(t.start, "time.start"), end: finite(t.end, "time.end") },
      drawing: a.drawing && pbJsonFrom(a.drawing),
      target: a.target,
      orphaned: a.orphaned ? true : undefined,
    },
  );
}

function annotationsTo(v: unknown): PbAnnotation[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return fail("annotations must be a list");
  return v.map(annotationTo);
}

function commentTo(v: unknown): MediaComment {
  const c = obj(v, "comment");
  const reactions: MediaComment["reactions"] = {};
  for (const [emoji, users] of Object.entries(obj(c["reactions"] ?? {}, "reactions"))) {
    if (!Array.isArray(users)) fail("reactions: users must be a list");
    reactions[emoji] = { $typeName: "montage.v1.Users", users: users.map((u) => str(u, "a user")) };
  }
  const mentions = c["mentions"] ?? [];
  if (!Array.isArray(mentions)) fail("mentions must be a list");
  return {
    $typeName: "montage.v1.MediaComment",
    id: str(c["id"], "comment: id"),
    assetId: optStr(c["asset_id"], "asset_id") ?? "",
    authorId: str(c["author_id"], "author_id"),
    content: str(c["content"], "content"),
    timestamp: timestampTo(c["timestamp"]),
    parentId: optStr(c["parent_id"], "parent_id"),
    annotations: annotationsTo(c["annotations"]),
    resolved: bool(c["resolved"]),
    deleted: bool(c["deleted"]),
    edited: bool(c["edited"]),
    reactions,
    mentions: mentions.map((u) => str(u, "a mention")),
  };
}

function commentFrom(c: MediaComment | undefined): Obj {
  if (c === undefined) return fail("comment is missing");
  const reactions: Obj = {};
  for (const [emoji, users] of Object.entries(c.reactions)) put(reactions, emoji, [...users.users]);
  return withOpt(
    {
      id: c.id,
      asset_id: c.assetId,
      author_id: c.authorId,
      content: c.content,
      timestamp: formatTimestamp(c.timestamp ?? fail("timestamp is missing")),
      annotations: c.annotations.map(annotationFrom),
      resolved: c.resolved,
      deleted: c.deleted,
      edited: c.edited,
      reactions,
      mentions: [...c.mentions],
    },
    { parent_id: c.parentId },
  );
}

function suggestionTo(v: unknown): Suggestion {
  const s = obj(v, "suggestion");
  const status = typeof s["status"] === "string" && Object.hasOwn(STATUS_PB, s["status"]) ? STATUS_PB[s["status"]] : undefined;
  return {
    $typeName: "montage.v1.Suggestion",
    id: str(s["id"], "suggestion: id"),
    authorId: str(s["author_id"], "author_id"),
    base: u64(s["base"], "base"),
    ops: JSON.stringify(s["ops"] ?? []),
    note: optStr(s["note"], "note") ?? "",
    status: status ?? fail("suggestion: unknown status"),
    timestamp: timestampTo(s["timestamp"]),
    version: optU64(s["version"], "version"),
    credited: optStr(s["credited"], "credited"),
    decidedBy: optStr(s["decided_by"], "decided_by"),
  };
}

function suggestionFrom(s: Suggestion | undefined): Obj {
  if (s === undefined) return fail("suggestion is missing");
  let ops: unknown;
  try {
    ops = JSON.parse(s.ops);
  } catch {
    return fail("suggestion: ops are not JSON");
  }
  if (!Array.isArray(ops)) fail("suggestion: ops must be a list");
  return withOpt(
    {
      id: s.id,
      author_id: s.authorId,
      base: num(s.base),
      ops,
      note: s.note,
      status: STATUSES[s.status] ?? fail(`unknown suggestion status ${s.status}`),
      timestamp: formatTimestamp(s.timestamp ?? fail("timestamp is missing")),
    },
    { version: s.version === undefined ? undefined : num(s.version), credited: s.credited, decided_by: s.decidedBy },
  );
}

function entryTo(v: unknown): OpEntry {
  const e = obj(v, "an op entry");
  return {
    $typeName: "montage.v1.OpEntry",
    version: u64(e["version"], "version"),
    user: str(e["user"], "user"),
    ops: opsTo(e["ops"]),
    time: e["time"] === undefined || e["time"] === null ? undefined : i64(e["time"], "time"),
    data: optStr(e["data"], "data"),
    keyEpoch: optU64(e["key_epoch"], "key_epoch"),
    chain: optStr(e["chain"], "chain"),
  };
}

function entryFrom(e: OpEntry): Obj {
  return withOpt(
    { version: num(e.version), user: e.user, ops: opsFrom(e.ops), time: e.time === undefined ? null : num(e.time) },
    { data: e.data, key_epoch: e.keyEpoch === undefined ? undefined : num(e.keyEpoch), chain: e.chain },
  );
}

function taskTo(v: unknown): TaskInfo {
  const t = obj(v, "task");
  return {
    $typeName: "montage.v1.TaskInfo",
    id: str(t["id"], "task: id"),
    kind: str(t["kind"], "task: kind"),
    state: str(t["state"], "task: state"),
    attempts: u32(t["attempts"], "attempts"),
    maxAttempts: u32(t["max_attempts"], "max_attempts"),
    session: optStr(t["session"], "task: session"),
    createdBy: str(t["created_by"], "created_by"),
    createdAt: i64(t["created_at"], "created_at"),
    updatedAt: i64(t["updated_at"], "updated_at"),
    nextRunAt: t["next_run_at"] === undefined || t["next_run_at"] === null ? undefined : i64(t["next_run_at"], "next_run_at"),
    lastError: optStr(t["last_error"], "last_error"),
    connector: t["connector"] === undefined || t["connector"] === null ? undefined : valueTo(t["connector"], true),
  };
}

function taskFrom(t: TaskInfo | undefined): Obj {
  if (t === undefined) return fail("task is missing");
  return withOpt(
    {
      id: t.id,
      kind: t.kind,
      state: t.state,
      attempts: t.attempts,
      max_attempts: t.maxAttempts,
      session: t.session ?? null,
      created_by: t.createdBy,
      created_at: num(t.createdAt),
      updated_at: num(t.updatedAt),
    },
    {
      next_run_at: t.nextRunAt === undefined ? undefined : num(t.nextRunAt),
      last_error: t.lastError,
      connector: t.connector && valueFrom(t.connector, "connector"),
    },
  );
}

// ---- rid ----------------------------------------------------------------------------------

type Rid = ClientFrame["rid"];

function ridTo(rid: unknown): Rid {
  if (rid === undefined || rid === null) return { case: undefined };
  if (typeof rid === "number" && Number.isInteger(rid) && rid >= 0 && rid < 2 ** 64) return { case: "ridNumber", value: BigInt(rid) };
  // A number that is not a u64 travels as its text, as the server does.
  return { case: "ridString", value: typeof rid === "string" ? rid : JSON.stringify(rid) };
}

function ridFrom(rid: Rid, o: Obj): Obj {
  if (rid.case === "ridNumber") o["rid"] = num(rid.value);
  else if (rid.case === "ridString") o["rid"] = rid.value;
  return o;
}

// ---- frames -------------------------------------------------------------------------------

function parse<T>(read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof FrameError) throw e;
    throw new FrameError(`not a montage.v1 protobuf message: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Checks a message before it is written: one with a `type` and fields of the right kinds. */
function typed(msg: Record<string, unknown>): string {
  const t = msg["type"];
  if (typeof t !== "string") fail('a message needs a string "type"');
  return t;
}

/** Wraps a mapping error with the message type, as the server's `invalid {type} message`. */
function within<T>(type: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof FrameError) throw new FrameError(`invalid ${type} message: ${e.message}`);
    throw new FrameError(`invalid ${type} message: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * A client message (the JSON object the SDK would send as text: `{type: "op", …}`) as a binary
 * `ClientFrame`, with `rid` (by default the message's own). Throws a {@link FrameError} for a
 * message no JSON frame of the protocol could be.
 */
export function encodeClientFrame(msg: Record<string, unknown>, rid: unknown = msg["rid"]): Uint8Array {
  const type = typed(msg);
  const m = msg;
  const session = () => str(m["session"], "session");
  const frame = within(type, (): ClientFrame["msg"] => {
    const T = <N extends string>(n: N) => `montage.v1.ClientFrame.${n}` as const;
    switch (type) {
      case "join": {
        const create = m["create"] === undefined || m["create"] === null ? undefined : obj(m["create"], "create");
        return {
          case: "join",
          value: {
            $typeName: T("Join"),
            session: session(),
            client: str(m["client"], "client"),
            since: optU64(m["since"], "since"),
            compact: bool(m["compact"]),
            ranges: bool(m["ranges"]),
            stateRef: bool(m["state_ref"]),
            create: create && { $typeName: "montage.v1.CreateOptions", encrypted: bool(create["encrypted"]) },
          },
        };
      }
      case "op":
        return {
          case: "op",
          value: {
            $typeName: T("Op"),
            session: session(),
            base: u64(m["base"], "base"),
            seq: u64(m["seq"], "seq"),
            ops: opsTo(m["ops"]),
            data: optStr(m["data"], "data"),
            keyEpoch: optU64(m["key_epoch"], "key_epoch") ?? 0n,
          },
        };
      case "snapshot":
        return {
          case: "snapshot",
          value: { $typeName: T("Snapshot"), session: session(), version: u64(m["version"], "version"), data: str(m["data"], "data"), keyEpoch: optU64(m["key_epoch"], "key_epoch") ?? 0n },
        };
      case "presence":
        return { case: "presence", value: { $typeName: T("Presence"), session: session(), data: valueTo(m["data"] ?? null, true) } };
      case "set_role":
        return { case: "setRole", value: { $typeName: T("SetRole"), session: session(), user: str(m["user"], "user"), role: roleTo(m["role"]) } };
      case "leave":
        return { case: "leave", value: { $typeName: T("Leave"), session: session() } };
      case "quality":
        return { case: "quality", value: { $typeName: T("Quality"), downlinkMbps: f64(m["downlink_mbps"], "downlink_mbps") } };
      case "comment": {
        const c = obj(m["comment"], "comment");
        return {
          case: "comment",
          value: {
            $typeName: T("Comment"),
            session: session(),
            comment: {
              $typeName: "montage.v1.NewComment",
              content: str(c["content"], "content"),
              parentId: optStr(c["parent_id"], "parent_id"),
              assetId: optStr(c["asset_id"], "asset_id"),
              annotations: annotationsTo(c["annotations"]),
            },
          },
        };
      }
      case "comment_edit":
        return { case: "commentEdit", value: { $typeName: T("CommentEdit"), session: session(), id: str(m["id"], "id"), content: str(m["content"], "content") } };
      case "comment_delete":
        return { case: "commentDelete", value: { $typeName: T("CommentDelete"), session: session(), id: str(m["id"], "id") } };
      case "comment_resolve":
        return { case: "commentResolve", value: { $typeName: T("CommentResolve"), session: session(), id: str(m["id"], "id"), resolved: bool(m["resolved"]) } };
      case "comment_react":
        return { case: "commentReact", value: { $typeName: T("CommentReact"), session: session(), id: str(m["id"], "id"), emoji: str(m["emoji"], "emoji"), on: bool(m["on"]) } };
      case "suggest":
        return { case: "suggest", value: { $typeName: T("Suggest"), session: session(), base: u64(m["base"], "base"), ops: opsTo(m["ops"]), note: optStr(m["note"], "note") } };
      case "suggestion_accept":
        return { case: "suggestionAccept", value: { $typeName: T("SuggestionAccept"), session: session(), id: str(m["id"], "id") } };
      case "suggestion_reject":
        return { case: "suggestionReject", value: { $typeName: T("SuggestionReject"), session: session(), id: str(m["id"], "id") } };
      case "preview_subscribe":
        return {
          case: "previewSubscribe",
          value: {
            $typeName: T("PreviewSubscribe"),
            session: session(),
            tier: m["tier"] === undefined || m["tier"] === null ? undefined : tierTo(m["tier"]),
            follow: optStr(m["follow"], "follow"),
          },
        };
      case "preview_unsubscribe":
        return { case: "previewUnsubscribe", value: { $typeName: T("PreviewUnsubscribe"), session: session() } };
      case "set_link_role":
        return { case: "setLinkRole", value: { $typeName: T("SetLinkRole"), session: session(), role: roleTo(m["role"]) } };
      case "auth":
        return { case: "auth", value: { $typeName: T("Auth"), token: str(m["token"], "token") } };
      default:
        return fail(`unknown message type ${JSON.stringify(type)}`);
    }
  });
  return toBinary(ClientFrameSchema, create(ClientFrameSchema, { rid: ridTo(rid), msg: frame }));
}

/**
 * A binary `ClientFrame` as the JSON object its text form would parse to, `rid` included (what
 * the server reads; for tests and fake servers). Throws a {@link FrameError} for anything else.
 */
export function decodeClientFrame(bytes: Uint8Array): Record<string, unknown> {
  const frame = parse(() => fromBinary(ClientFrameSchema, bytes));
  const msg = frame.msg;
  if (msg.case === undefined) return fail("a frame holds no message");
  const type = msg.case.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const out = within(type, (): Obj => {
    switch (msg.case) {
      case "join": {
        const j = msg.value;
        return withOpt(
          { type, session: j.session, client: j.client },
          { since: j.since === undefined ? undefined : num(j.since), compact: j.compact || undefined, ranges: j.ranges || undefined, state_ref: j.stateRef || undefined, create: j.create && { encrypted: j.create.encrypted } },
        );
      }
      case "op": {
        const o = msg.value;
        return withOpt(
          { type, session: o.session, base: num(o.base), seq: num(o.seq), ops: opsFrom(o.ops) },
          { data: o.data, key_epoch: o.keyEpoch === 0n ? undefined : num(o.keyEpoch) },
        );
      }
      case "snapshot": {
        const s = msg.value;
        return withOpt({ type, session: s.session, version: num(s.version), data: s.data }, { key_epoch: s.keyEpoch === 0n ? undefined : num(s.keyEpoch) });
      }
      case "presence":
        return { type, session: msg.value.session, data: valueFrom(msg.value.data, "data") };
      case "setRole":
        return { type, session: msg.value.session, user: msg.value.user, role: roleFrom(msg.value.role) };
      case "leave":
        return { type, session: msg.value.session };
      case "quality":
        return { type, downlink_mbps: msg.value.downlinkMbps };
      case "comment": {
        const c = msg.value.comment ?? fail("comment is missing");
        const annotations = c.annotations.map(annotationFrom);
        const comment = withOpt({ content: c.content }, { parent_id: c.parentId, asset_id: c.assetId, annotations: annotations.length > 0 ? annotations : undefined });
        return { type, session: msg.value.session, comment };
      }
      case "commentEdit":
        return { type, session: msg.value.session, id: msg.value.id, content: msg.value.content };
      case "commentDelete":
        return { type, session: msg.value.session, id: msg.value.id };
      case "commentResolve":
        return { type, session: msg.value.session, id: msg.value.id, resolved: msg.value.resolved };
      case "commentReact":
        return { type, session: msg.value.session, id: msg.value.id, emoji: msg.value.emoji, on: msg.value.on };
      case "suggest":
        return withOpt({ type, session: msg.value.session, base: num(msg.value.base), ops: opsFrom(msg.value.ops) }, { note: msg.value.note });
      case "suggestionAccept":
      case "suggestionReject":
        return { type, session: msg.value.session, id: msg.value.id };
      case "previewSubscribe":
        return withOpt({ type, session: msg.value.session }, { tier: msg.value.tier === undefined ? undefined : tierFrom(msg.value.tier), follow: msg.value.follow });
      case "previewUnsubscribe":
        return { type, session: msg.value.session };
      case "setLinkRole":
        return { type, session: msg.value.session, role: roleFrom(msg.value.role) };
      case "auth":
        return { type, token: msg.value.token };
    }
  });
  return ridFrom(frame.rid, out);
}

/**
 * A server message (the JSON object of its text form) as a binary `ServerFrame`, with `rid` (by
 * default the message's own): what the server sends a binary connection. For tests and fake
 * servers.
 */
export function encodeServerFrame(msg: Record<string, unknown>, rid: unknown = msg["rid"]): Uint8Array {
  const type = typed(msg);
  const m = msg;
  const session = () => str(m["session"], "session");
  const frame = within(type, (): ServerFrame["msg"] => {
    const T = <N extends string>(n: N) => `montage.v1.ServerFrame.${n}` as const;
    switch (type) {
      case "joined": {
        const participants = m["participants"] ?? [];
        if (!Array.isArray(participants)) fail("participants must be a list");
        const ops = m["ops"];
        if (ops !== undefined && ops !== null && !Array.isArray(ops)) fail("ops must be a list");
        const snap = m["snapshot"] === undefined || m["snapshot"] === null ? undefined : obj(m["snapshot"], "snapshot");
        const stateRef = m["state_ref"] === undefined || m["state_ref"] === null ? undefined : obj(m["state_ref"], "state_ref");
        return {
          case: "joined",
          value: {
            $typeName: T("Joined"),
            session: session(),
            version: u64(m["version"], "version"),
            state: m["state"] === undefined || m["state"] === null ? undefined : valueTo(m["state"]),
            stateRef: stateRef && { $typeName: "montage.v1.StateRef", bytes: u64(stateRef["bytes"], "state_ref: bytes"), sha256: str(stateRef["sha256"], "state_ref: sha256") },
            role: roleTo(m["role"]),
            participants: participants.map((p) => {
              const q = obj(p, "a participant");
              return {
                $typeName: "montage.v1.Participant" as const,
                user: str(q["user"], "user"),
                role: roleTo(q["role"]),
                online: bool(q["online"]),
                name: optStr(q["name"], "name"),
                color: optStr(q["color"], "color"),
                presence: q["presence"] === undefined || q["presence"] === null ? undefined : valueTo(q["presence"], true),
              };
            }),
            ops: Array.isArray(ops) ? { $typeName: "montage.v1.OpEntries", entries: ops.map(entryTo) } : undefined,
            delta: m["delta"] === undefined || m["delta"] === null ? undefined : deltaTo(m["delta"]),
            linkRole: m["link_role"] === undefined ? PbRole.NONE : roleTo(m["link_role"], "link_role"),
            title: optStr(m["title"], "title"),
            encrypted: bool(m["encrypted"]),
            snapshot: snap && {
              $typeName: "montage.v1.SealedSnapshot",
              version: u64(snap["version"], "snapshot: version"),
              data: str(snap["data"], "snapshot: data"),
              keyEpoch: optU64(snap["key_epoch"], "snapshot: key_epoch") ?? 0n,
              chain: str(snap["chain"], "snapshot: chain"),
            },
            whole: bool(m["whole"]),
            keyEpoch: optU64(m["key_epoch"], "key_epoch"),
          },
        };
      }
      case "participant_joined":
        return {
          case: "participantJoined",
          value: { $typeName: T("ParticipantJoined"), session: session(), user: str(m["user"], "user"), role: roleTo(m["role"]), name: optStr(m["name"], "name"), color: optStr(m["color"], "color") },
        };
      case "participant_left":
        return { case: "participantLeft", value: { $typeName: T("ParticipantLeft"), session: session(), user: str(m["user"], "user") } };
      case "ack":
        return { case: "ack", value: { $typeName: T("Ack"), session: session(), seq: u64(m["seq"], "seq"), version: u64(m["version"], "version"), chain: optStr(m["chain"], "chain") } };
      case "op":
        return {
          case: "op",
          value: {
            $typeName: T("Op"),
            session: session(),
            from: optU64(m["from"], "from"),
            version: u64(m["version"], "version"),
            user: str(m["user"], "user"),
            ops: opsTo(m["ops"]),
            data: optStr(m["data"], "data"),
            keyEpoch: optU64(m["key_epoch"], "key_epoch"),
            chain: optStr(m["chain"], "chain"),
          },
        };
      case "key_rotated":
        return { case: "keyRotated", value: { $typeName: T("KeyRotated"), session: session(), keyEpoch: u64(m["key_epoch"], "key_epoch") } };
      case "presence":
        return { case: "presence", value: { $typeName: T("Presence"), session: session(), user: str(m["user"], "user"), data: valueTo(m["data"] ?? null, true) } };
      case "role_changed":
        return { case: "roleChanged", value: { $typeName: T("RoleChanged"), session: session(), user: str(m["user"], "user"), role: roleTo(m["role"]) } };
      case "tier": {
        const r = m["resolution"];
        if (!Array.isArray(r) || r.length !== 2) fail("resolution is a width and a height");
        return { case: "tier", value: { $typeName: T("TierChanged"), tier: tierTo(m["tier"]), fps: u32(m["fps"], "fps"), resolution: r.map((x) => u32(x, "resolution")) } };
      }
      case "preview":
        return {
          case: "preview",
          value: {
            $typeName: T("Preview"),
            session: session(),
            version: u64(m["version"], "version"),
            tier: tierTo(m["tier"]),
            url: str(m["url"], "url"),
            t: m["t"] === undefined || m["t"] === null ? undefined : f64(m["t"], "t"),
          },
        };
      case "comment_added":
      case "comment_updated":
        return { case: type === "comment_added" ? "commentAdded" : "commentUpdated", value: { $typeName: T("CommentChanged"), session: session(), comment: commentTo(m["comment"]) } };
      case "suggestion_added":
      case "suggestion_updated":
        return {
          case: type === "suggestion_added" ? "suggestionAdded" : "suggestionUpdated",
          value: { $typeName: T("SuggestionChanged"), session: session(), suggestion: suggestionTo(m["suggestion"]) },
        };
      case "task":
        return { case: "task", value: { $typeName: T("Task"), session: session(), task: taskTo(m["task"]) } };
      case "link_role_changed":
        return { case: "linkRoleChanged", value: { $typeName: T("LinkRoleChanged"), session: session(), role: roleTo(m["role"]) } };
      case "session_deleted":
        return { case: "sessionDeleted", value: { $typeName: T("SessionDeleted"), session: session() } };
      case "notification": {
        const n = obj(m["notification"], "notification");
        return {
          case: "notification",
          value: {
            $typeName: T("NotificationSent"),
            notification: {
              $typeName: "montage.v1.Notification",
              id: str(n["id"], "id"),
              kind: str(n["kind"], "kind"),
              session: str(n["session"], "session"),
              actor: str(n["actor"], "actor"),
              time: i64(n["time"], "time"),
              read: bool(n["read"]),
              commentId: optStr(n["comment_id"], "comment_id"),
              role: n["role"] === undefined || n["role"] === null ? undefined : roleTo(n["role"]),
              count: n["count"] === undefined ? 1 : u32(n["count"], "count"),
            },
          },
        };
      }
      case "authed":
        return { case: "authed", value: { $typeName: T("Authed"), exp: u64(m["exp"], "exp") } };
      case "token_expiring":
        return { case: "tokenExpiring", value: { $typeName: T("TokenExpiring"), exp: u64(m["exp"], "exp") } };
      case "error":
        return {
          case: "error",
          value: {
            $typeName: T("Error"),
            code: str(m["code"], "code"),
            message: str(m["message"], "message"),
            retryAfterMs: optU64(m["retry_after_ms"], "retry_after_ms"),
            session: optStr(m["session"], "session"),
            version: optU64(m["version"], "version"),
          },
        };
      default:
        return fail(`unknown message type ${JSON.stringify(type)}`);
    }
  });
  return toBinary(ServerFrameSchema, create(ServerFrameSchema, { rid: ridTo(rid), msg: frame }));
}

/** The JSON `type` of each `ServerFrame.msg` case. */
const SERVER_TYPES: Record<NonNullable<ServerFrame["msg"]["case"]>, string> = {
  joined: "joined",
  participantJoined: "participant_joined",
  participantLeft: "participant_left",
  ack: "ack",
  op: "op",
  keyRotated: "key_rotated",
  presence: "presence",
  roleChanged: "role_changed",
  tier: "tier",
  preview: "preview",
  commentAdded: "comment_added",
  commentUpdated: "comment_updated",
  suggestionAdded: "suggestion_added",
  suggestionUpdated: "suggestion_updated",
  task: "task",
  linkRoleChanged: "link_role_changed",
  sessionDeleted: "session_deleted",
  notification: "notification",
  authed: "authed",
  tokenExpiring: "token_expiring",
  error: "error",
};

/**
 * A binary `ServerFrame` as the JSON object its text form would parse to, with its `rid` (as
 * sent). Throws a {@link FrameError} for bytes that are not such a frame, or hold what no JSON
 * frame could (a NaN, a list claiming more items than follow, an unknown role or tier).
 */
export function decodeServerFrame(bytes: Uint8Array): Record<string, unknown> {
  const frame = parse(() => fromBinary(ServerFrameSchema, bytes));
  const msg = frame.msg;
  if (msg.case === undefined) return fail("a frame holds no message");
  const type = SERVER_TYPES[msg.case];
  const out = within(type, (): Obj => {
    switch (msg.case) {
      case "joined": {
        const j = msg.value;
        const s = j.snapshot;
        return withOpt(
          {
            type,
            session: j.session,
            version: num(j.version),
            role: roleFrom(j.role),
            participants: j.participants.map((p) =>
              withOpt(
                { user: p.user, role: roleFrom(p.role), online: p.online },
                { name: p.name, color: p.color, presence: p.presence && valueFrom(p.presence, "presence") },
              ),
            ),
            link_role: roleFrom(j.linkRole),
          },
          {
            state: j.state && valueFrom(j.state, "state"),
            state_ref: j.stateRef && { bytes: num(j.stateRef.bytes), sha256: j.stateRef.sha256 },
            ops: j.ops && j.ops.entries.map(entryFrom),
            delta: j.delta && deltaFrom(j.delta),
            title: j.title,
            encrypted: j.encrypted || undefined,
            snapshot: s && { version: num(s.version), data: s.data, key_epoch: num(s.keyEpoch), chain: s.chain },
            whole: j.whole || undefined,
            key_epoch: j.keyEpoch === undefined ? undefined : num(j.keyEpoch),
          },
        );
      }
      case "participantJoined": {
        const p = msg.value;
        return withOpt({ type, session: p.session, user: p.user, role: roleFrom(p.role) }, { name: p.name, color: p.color });
      }
      case "participantLeft":
        return { type, session: msg.value.session, user: msg.value.user };
      case "ack": {
        const a = msg.value;
        return withOpt({ type, session: a.session, seq: num(a.seq), version: num(a.version) }, { chain: a.chain });
      }
      case "op": {
        const o = msg.value;
        return withOpt(
          { type, session: o.session, version: num(o.version), user: o.user, ops: opsFrom(o.ops) },
          { from: o.from === undefined ? undefined : num(o.from), data: o.data, key_epoch: o.keyEpoch === undefined ? undefined : num(o.keyEpoch), chain: o.chain },
        );
      }
      case "keyRotated":
        return { type, session: msg.value.session, key_epoch: num(msg.value.keyEpoch) };
      case "presence":
        return { type, session: msg.value.session, user: msg.value.user, data: valueFrom(msg.value.data, "data") };
      case "roleChanged":
        return { type, session: msg.value.session, user: msg.value.user, role: roleFrom(msg.value.role) };
      case "tier": {
        const t = msg.value;
        if (t.resolution.length !== 2) fail("resolution is a width and a height");
        return { type, tier: tierFrom(t.tier), fps: t.fps, resolution: [...t.resolution] };
      }
      case "preview": {
        const p = msg.value;
        return withOpt({ type, session: p.session, version: num(p.version), tier: tierFrom(p.tier), url: p.url }, { t: p.t });
      }
      case "commentAdded":
      case "commentUpdated":
        return { type, session: msg.value.session, comment: commentFrom(msg.value.comment) };
      case "suggestionAdded":
      case "suggestionUpdated":
        return { type, session: msg.value.session, suggestion: suggestionFrom(msg.value.suggestion) };
      case "task":
        return { type, session: msg.value.session, task: taskFrom(msg.value.task) };
      case "linkRoleChanged":
        return { type, session: msg.value.session, role: roleFrom(msg.value.role) };
      case "sessionDeleted":
        return { type, session: msg.value.session };
      case "notification": {
        const n = msg.value.notification ?? fail("notification is missing");
        return {
          type,
          notification: withOpt(
            { id: n.id, kind: n.kind, session: n.session, actor: n.actor, time: num(n.time), read: n.read, count: n.count },
            { comment_id: n.commentId, role: n.role === undefined ? undefined : roleFrom(n.role) },
          ),
        };
      }
      case "authed":
      case "tokenExpiring":
        return { type, exp: num(msg.value.exp) };
      case "error": {
        const e = msg.value;
        return withOpt(
          { type, code: e.code, message: e.message },
          { retry_after_ms: e.retryAfterMs === undefined ? undefined : num(e.retryAfterMs), session: e.session, version: e.version === undefined ? undefined : num(e.version) },
        );
      }
    }
  });
  return ridFrom(frame.rid, out);
}

/** The binary form for a connection's `binary` option: `new MontageClient({ url, token,
 * session, binary: binaryFrames })`. */
export const binaryFrames: BinaryCodec = {
  encodeClientFrame: (msg) => encodeClientFrame(msg),
  decodeServerFrame,
};
