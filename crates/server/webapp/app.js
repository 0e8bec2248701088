var __defProp = Object.defineProperty;
var __export = (target2, all) => {
  for (var name in all)
    __defProp(target2, name, { get: all[name], enumerable: true });
};

// ../client/src/json.ts
function typeName(v) {
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
function isObject(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function hasOwn(o, k) {
  return Object.prototype.hasOwnProperty.call(o, k);
}
function getKey(o, k) {
  return hasOwn(o, k) ? o[k] : void 0;
}
function setKey(o, k, v) {
  if (k === "__proto__") {
    Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  } else {
    o[k] = v;
  }
}
function clone(v) {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x) => clone(x));
  const out = {};
  for (const k of Object.keys(v)) setKey(out, k, clone(v[k]));
  return out;
}
function deepEqual(a, b) {
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
    if (!deepEqual(a[k], b[k])) return false;
  }
  return true;
}
function newDocument() {
  return {
    title: "",
    assets: {},
    canvas: { width: 1920, height: 1080, layers: [] },
    timeline: { tracks: [] },
    meta: {}
  };
}

// ../client/src/path.ts
function pathEq(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
function isPrefix(p, q) {
  if (q.length < p.length) return false;
  for (let i = 0; i < p.length; i++) if (p[i] !== q[i]) return false;
  return true;
}
function lastIndex(p) {
  const l = p[p.length - 1];
  return typeof l === "number" ? l : void 0;
}
function withIndexAt(p, at2, i) {
  const v = p.slice();
  if (at2 >= 0 && at2 < v.length) v[at2] = i;
  return v;
}
function withLastIndex(p, i) {
  return withIndexAt(p, Math.max(p.length - 1, 0), i);
}
function child(p, seg) {
  return [...p, seg];
}
function showPath(p) {
  return "[" + p.map((s) => typeof s === "number" ? String(s) : JSON.stringify(s)).join(",") + "]";
}

// ../client/src/error.ts
var OtError = class extends Error {
  kind;
  path;
  constructor(kind, message, path) {
    super(message);
    this.name = "OtError";
    this.kind = kind;
    this.path = path;
  }
};
var errors = {
  noSuchPath: (path) => new OtError("no_such_path", `path ${showPath(path)} does not exist`, path),
  wrongType: (path, expected, found) => new OtError("wrong_type", `path ${showPath(path)}: expected ${expected}, found ${found}`, path),
  outOfBounds: (path, index, len) => new OtError("out_of_bounds", `path ${showPath(path)}: index ${index} out of bounds (length ${len})`, path),
  textOutOfBounds: (path, pos, end, len) => new OtError(
    "text_out_of_bounds",
    `path ${showPath(path)}: text range ${pos}..${end} out of bounds (length ${len})`,
    path
  ),
  invalid: (path, reason) => new OtError("invalid", `path ${showPath(path)}: ${reason}`, path),
  schema: (path, reason) => new OtError("schema", `the document would break its shape at ${showPath(path)}: ${reason}`, path),
  decode: (reason) => new OtError("decode", `malformed component: ${reason}`)
};

// ../client/src/unicode.ts
function isHigh(c) {
  return c >= 55296 && c <= 56319;
}
function isLow(c) {
  return c >= 56320 && c <= 57343;
}
function scalarLength(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    if (isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) i++;
    n++;
  }
  return n;
}
function hasLoneSurrogate(s) {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isHigh(c)) {
      if (i + 1 < s.length && isLow(s.charCodeAt(i + 1))) {
        i++;
        continue;
      }
      return true;
    }
    if (isLow(c)) return true;
  }
  return false;
}
function toUtf16Index(s, scalar) {
  if (!Number.isInteger(scalar) || scalar < 0) {
    throw new RangeError(`scalar index ${scalar} must be a non-negative integer`);
  }
  let i = 0;
  for (let n = 0; n < scalar; n++) {
    if (i >= s.length) {
      throw new RangeError(`scalar index ${scalar} is outside the string (length ${scalarLength(s)})`);
    }
    if (isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) i += 2;
    else i += 1;
  }
  return i;
}
function sliceScalars(s, pos, len) {
  const a = toUtf16Index(s, pos);
  const b = a + toUtf16Index(s.slice(a), len);
  return s.slice(a, b);
}

// ../client/src/text.ts
function isRetain(p) {
  return p !== void 0 && "retain" in p;
}
function isInsert(p) {
  return p !== void 0 && "insert" in p;
}
function isDelete(p) {
  return p !== void 0 && "delete" in p;
}
function partLen(p) {
  if ("retain" in p) return p.retain;
  if ("delete" in p) return p.delete;
  return scalarLength(p.insert);
}
var isHighSurrogate = (c) => c >= 55296 && c <= 56319;
var isLowSurrogate = (c) => c >= 56320 && c <= 57343;
function skipScalars(s, n) {
  return s.slice(toUtf16Index(s, n));
}
var TextOp = class _TextOp {
  parts = [];
  /** Inserts `s` at scalar position `pos`. */
  static insert(pos, s) {
    const op = new _TextOp();
    op.push({ retain: pos });
    op.push({ insert: s });
    return op;
  }
  /** Deletes `n` scalars starting at scalar position `pos`. */
  static delete(pos, n) {
    const op = new _TextOp();
    op.push({ retain: pos });
    op.push({ delete: n });
    return op;
  }
  /**
   * The op turning `old` into `next` as one replaced span (the common start and end kept), as
   * for a text field whose whole new value is known; counted in scalars, never splitting a
   * surrogate pair. A no-op when they are equal.
   */
  static diff(old, next) {
    let p = 0;
    while (p < old.length && p < next.length && old[p] === next[p]) p++;
    if (p > 0 && isHighSurrogate(old.charCodeAt(p - 1))) p--;
    let s = 0;
    while (s < old.length - p && s < next.length - p && old[old.length - 1 - s] === next[next.length - 1 - s]) s++;
    if (s > 0 && isLowSurrogate(old.charCodeAt(old.length - s))) s--;
    const op = new _TextOp();
    op.push({ retain: scalarLength(old.slice(0, p)) });
    op.push({ insert: next.slice(p, next.length - s) });
    op.push({ delete: scalarLength(old.slice(p, old.length - s)) });
    return op.trim();
  }
  /** The normalized op of the given parts (empty parts dropped, neighbours merged). */
  static fromParts(parts) {
    const op = new _TextOp();
    for (const p of parts) op.push(p);
    return op.trim();
  }
  /** True if applying it changes nothing. */
  isNoop() {
    return this.parts.length === 0;
  }
  /** Appends a part, keeping the op normalized. */
  push(part) {
    const parts = this.parts;
    const last = parts[parts.length - 1];
    if (isRetain(part)) {
      if (part.retain === 0) return;
      if (isRetain(last)) parts[parts.length - 1] = { retain: last.retain + part.retain };
      else parts.push({ retain: part.retain });
    } else if (isDelete(part)) {
      if (part.delete === 0) return;
      if (isDelete(last)) parts[parts.length - 1] = { delete: last.delete + part.delete };
      else parts.push({ delete: part.delete });
    } else {
      if (part.insert === "") return;
      const len = parts.length;
      if (isInsert(last)) {
        parts[len - 1] = { insert: last.insert + part.insert };
      } else if (isDelete(last)) {
        const before = parts[len - 2];
        if (len >= 2 && isInsert(before)) parts[len - 2] = { insert: before.insert + part.insert };
        else parts.splice(len - 1, 0, { insert: part.insert });
      } else {
        parts.push({ insert: part.insert });
      }
    }
  }
  /** Drops a trailing retain (normal form); returns this op. */
  trim() {
    if (isRetain(this.parts[this.parts.length - 1])) this.parts.pop();
    return this;
  }
  /** Length of the string this op applies to, at least. */
  baseLen() {
    let n = 0;
    for (const p of this.parts) if (!isInsert(p)) n += partLen(p);
    return n;
  }
  /** Applies to `text`: the new string and the inverse (which carries the deleted chars). */
  apply(text2, path) {
    const len = scalarLength(text2);
    const need = this.baseLen();
    if (need > len) throw errors.textOutOfBounds(path, 0, need, len);
    const inverse = new _TextOp();
    let out = "";
    let rest = text2;
    for (const p of this.parts) {
      if (isRetain(p)) {
        const cut = toUtf16Index(rest, p.retain);
        out += rest.slice(0, cut);
        rest = rest.slice(cut);
        inverse.push({ retain: p.retain });
      } else if (isInsert(p)) {
        out += p.insert;
        inverse.push({ delete: scalarLength(p.insert) });
      } else {
        const cut = toUtf16Index(rest, p.delete);
        inverse.push({ insert: rest.slice(0, cut) });
        rest = rest.slice(cut);
      }
    }
    return { text: out + rest, inverse: inverse.trim() };
  }
  /** The op as wire steps, each applying to the string the previous one left. */
  steps() {
    const out = [];
    let pos = 0;
    for (const p of this.parts) {
      if (isRetain(p)) pos += p.retain;
      else if (isInsert(p)) {
        out.push({ pos, ins: p.insert });
        pos += scalarLength(p.insert);
      } else out.push({ pos, del: p.delete });
    }
    return out;
  }
  /** `this` then `other`, as one op. */
  compose(other) {
    const out = new _TextOp();
    const a = new Taker(this.parts);
    for (const part of other.parts) {
      if (isRetain(part)) {
        let n = part.retain;
        while (n > 0) {
          const chunk = a.take(n, "delete");
          if (!isDelete(chunk)) n -= partLen(chunk);
          out.push(chunk);
        }
      } else if (isInsert(part)) {
        out.push({ insert: part.insert });
      } else {
        let n = part.delete;
        while (n > 0) {
          const chunk = a.take(n, "delete");
          if (isRetain(chunk)) {
            out.push({ delete: chunk.retain });
            n -= chunk.retain;
          } else if (isInsert(chunk)) {
            n -= scalarLength(chunk.insert);
          } else {
            out.push(chunk);
          }
        }
      }
    }
    for (let p = a.nextWhole(); p !== void 0; p = a.nextWhole()) out.push(p);
    return out.trim();
  }
  /** `this` rewritten to apply after `other`; `left`: this op's inserts go first at a tie. */
  transform(other, left) {
    const out = new _TextOp();
    const a = new Taker(this.parts);
    for (const part of other.parts) {
      if (isRetain(part)) {
        let n = part.retain;
        while (n > 0) {
          const chunk = a.take(n, "insert");
          if (!isInsert(chunk)) n -= partLen(chunk);
          out.push(chunk);
        }
      } else if (isInsert(part)) {
        if (left && a.peekInsert()) out.push(a.take(Number.MAX_SAFE_INTEGER, "insert"));
        out.push({ retain: scalarLength(part.insert) });
      } else {
        let n = part.delete;
        while (n > 0) {
          const chunk = a.take(n, "insert");
          if (isRetain(chunk)) n -= chunk.retain;
          else if (isInsert(chunk)) out.push(chunk);
          else n -= chunk.delete;
        }
      }
    }
    for (let p = a.nextWhole(); p !== void 0; p = a.nextWhole()) out.push(p);
    return out.trim();
  }
  /** Moves a caret at scalar index `pos` past this op; `stickAfter` keeps it after text
   * inserted exactly at it. */
  transformPosition(pos, stickAfter) {
    let at2 = 0;
    let out = pos;
    for (const p of this.parts) {
      if (at2 > pos) break;
      if (isRetain(p)) at2 += p.retain;
      else if (isInsert(p)) {
        if (at2 < pos || stickAfter) out += scalarLength(p.insert);
      } else {
        if (at2 < pos) out -= Math.min(p.delete, pos - at2);
        at2 += p.delete;
      }
    }
    return out;
  }
  /** True if both ops have the same parts. */
  equals(other) {
    if (this.parts.length !== other.parts.length) return false;
    return this.parts.every((p, i) => {
      const q = other.parts[i];
      if (isRetain(p)) return isRetain(q) && q.retain === p.retain;
      if (isInsert(p)) return isInsert(q) && q.insert === p.insert;
      return isDelete(q) && q.delete === p.delete;
    });
  }
};
var Taker = class {
  constructor(parts) {
    this.parts = parts;
  }
  idx = 0;
  /** Chars of parts[idx] already taken. */
  offset = 0;
  peekInsert() {
    return isInsert(this.parts[this.idx]);
  }
  nextWhole() {
    const p = this.parts[this.idx];
    if (p === void 0) return void 0;
    let whole = p;
    if (this.offset !== 0) {
      if (isRetain(p)) whole = { retain: p.retain - this.offset };
      else if (isDelete(p)) whole = { delete: p.delete - this.offset };
      else whole = { insert: skipScalars(p.insert, this.offset) };
    }
    this.idx++;
    this.offset = 0;
    return whole;
  }
  /** Takes up to `n` chars; a part of the indivisible kind is taken whole. Past the end the
   * op retains everything. */
  take(n, indivisible) {
    const p = this.parts[this.idx];
    if (p === void 0) return { retain: n };
    const whole = isInsert(p) && indivisible === "insert" || isDelete(p) && indivisible === "delete";
    if (whole) return this.nextWhole() ?? { retain: n };
    const remaining = partLen(p) - this.offset;
    if (remaining <= n) return this.nextWhole() ?? { retain: n };
    const start2 = this.offset;
    this.offset += n;
    if (isRetain(p)) return { retain: n };
    if (isDelete(p)) return { delete: n };
    return { insert: sliceScalars(p.insert, start2, n) };
  }
};

// ../client/src/component.ts
var MAX_PATH_DEPTH = 64;
var MAX_INDEX = 4294967295;
var MAX_COMPONENTS = 1e4;
function isNoop(c) {
  switch (c.op) {
    case "text":
      return c.text.isNoop();
    case "mov":
      return lastIndex(c.path) === c.to;
    case "trim":
      return c.start === void 0 && c.in === void 0 && c.out === void 0;
    default:
      return false;
  }
}
var set = (path, value2) => ({ op: "set", path, value: value2 });
var del = (path) => ({ op: "del", path });
var ins = (path, value2) => ({ op: "ins", path, value: value2 });
var mov = (path, to) => ({ op: "mov", path, to });
var textInsert = (path, pos, s) => ({
  op: "text",
  path,
  text: TextOp.insert(pos, s)
});
var textChange = (path, old, next) => ({
  op: "text",
  path,
  text: TextOp.diff(old, next)
});
var FIELDS = {
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
  adjust: { required: ["path", "param", "value"], optional: [] }
};
function fail(reason) {
  throw errors.decode(reason);
}
function decodePath(v) {
  if (!Array.isArray(v)) fail("a path must be an array of keys and indices");
  if (v.length > MAX_PATH_DEPTH) fail("path deeper than 64 segments");
  return v.map((s) => {
    if (typeof s === "string") return s;
    if (typeof s === "number" && Number.isInteger(s) && s >= 0) return s;
    if (typeof s === "number" && Number.isInteger(s)) fail("negative index");
    return fail("a path segment must be a string key or a non-negative integer index");
  });
}
function num(v, what2) {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(`\`${what2}\` must be a number`);
  return v;
}
function optNum(v, what2) {
  return v === void 0 || v === null ? void 0 : num(v, what2);
}
function uint(v, what2) {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) fail(`\`${what2}\` must be a non-negative integer`);
  return v;
}
function str(v, what2) {
  if (typeof v !== "string") fail(`\`${what2}\` must be a string`);
  if (hasLoneSurrogate(v)) fail(`\`${what2}\` holds an unpaired surrogate`);
  return v;
}
function checkValue(v, depth = 0) {
  if (depth > 512) fail("value nested too deeply");
  if (v === null || typeof v === "boolean") return v;
  if (typeof v === "number") return num(v, "value");
  if (typeof v === "string") return str(v, "value");
  if (Array.isArray(v)) {
    for (const x of v) checkValue(x, depth + 1);
    return v;
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
function checkBounds(path, counts) {
  if (path.some((s) => typeof s === "number" && s > MAX_INDEX) || counts.some((n) => n > MAX_INDEX)) {
    fail(`indices, positions and counts are at most ${MAX_INDEX}`);
  }
}
function decodeComponent(w) {
  if (!isObject(w)) fail("a component must be an object");
  const kind = w["op"];
  if (typeof kind !== "string" || !hasOwn(FIELDS, kind)) fail(`unknown op ${JSON.stringify(kind)}`);
  const spec = FIELDS[kind];
  for (const k of Object.keys(w)) {
    if (k !== "op" && !spec.required.includes(k) && !spec.optional.includes(k)) fail(`unknown field \`${k}\``);
  }
  for (const k of spec.required) if (!hasOwn(w, k)) fail(`missing field \`${k}\``);
  const path = decodePath(w["path"]);
  switch (kind) {
    case "set":
    case "ins": {
      checkBounds(path, []);
      const value2 = checkValue(w["value"]);
      if (kind === "ins" && lastIndex(path) === void 0) fail("ins: the path must end in a list index");
      return { op: kind, path, value: value2 };
    }
    case "del":
      checkBounds(path, []);
      return { op: "del", path };
    case "mov": {
      const to = uint(w["to"], "to");
      checkBounds(path, [to]);
      if (lastIndex(path) === void 0) fail("mov: the path must end in a list index");
      return { op: "mov", path, to };
    }
    case "add":
      checkBounds(path, []);
      return { op: "add", path, value: num(w["value"], "value") };
    case "text": {
      const pos = uint(w["pos"], "pos");
      const i = w["ins"] === null ? void 0 : w["ins"];
      const d = w["del"] === null ? void 0 : w["del"];
      const dn = d === void 0 ? void 0 : uint(d, "del");
      const is = i === void 0 ? void 0 : str(i, "ins");
      checkBounds(path, [pos, dn ?? 0]);
      if (is !== void 0 && dn === void 0) return { op: "text", path, text: TextOp.insert(pos, is) };
      if (is === void 0 && dn !== void 0) return { op: "text", path, text: TextOp.delete(pos, dn) };
      return fail("text: give exactly one of `ins` and `del`");
    }
    case "split": {
      const at2 = num(w["at"], "at");
      const media = num(w["media"], "media");
      const id = str(w["id"], "id");
      checkBounds(path, []);
      if (lastIndex(path) === void 0) fail("split: the path must name a clip in a list");
      return { op: "split", path, at: at2, media, id };
    }
    case "trim": {
      const start2 = optNum(w["start"], "start");
      const inn = optNum(w["in"], "in");
      const out = optNum(w["out"], "out");
      checkBounds(path, []);
      if (start2 === void 0 && inn === void 0 && out === void 0) {
        fail("trim: give at least one of `start`, `in`, `out`");
      }
      const c = { op: "trim", path };
      if (start2 !== void 0) c.start = start2;
      if (inn !== void 0) c.in = inn;
      if (out !== void 0) c.out = out;
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
      const value2 = num(w["value"], "value");
      checkBounds(path, []);
      return { op: "adjust", path, param, value: value2 };
    }
  }
  return fail(`unknown op ${kind}`);
}
function decodeOp(w) {
  if (!Array.isArray(w)) fail("an edit must be an array of components");
  if (w.length > MAX_COMPONENTS) fail(`an edit has at most ${MAX_COMPONENTS} components`);
  return w.map(decodeComponent);
}
function decodeDelta(w) {
  if (typeof w !== "object" || w === null || Array.isArray(w)) fail("a delta must be an object");
  const d = w;
  const baseVersion = num(d["base_version"], "base_version");
  if (!Array.isArray(d["runs"])) fail("a delta's runs must be an array");
  const op = [];
  for (const r of d["runs"]) {
    if (typeof r !== "object" || r === null) fail("a run must be an object");
    const run = r;
    const n = run["n"] === void 0 ? 1 : num(run["n"], "n");
    const cs = decodeOp(run["c"]);
    for (let i = 0; i < n; i++) op.push(...cs);
  }
  return { baseVersion, op };
}
function encodeOp(op) {
  const out = [];
  for (const c of op) encodeComponent(c, out);
  return out;
}
function encodeComponent(c, out) {
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
      const w = { op: "trim", path };
      if (c.start !== void 0) w.start = c.start;
      if (c.in !== void 0) w.in = c.in;
      if (c.out !== void 0) w.out = c.out;
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

// ../client/src/apply.ts
function walk(box, segs) {
  let v = box.root;
  for (let n = 0; n < segs.length; n++) {
    const seg = segs[n];
    if (isObject(v) && typeof seg === "string") {
      const x = getKey(v, seg);
      if (x === void 0) throw errors.noSuchPath(segs.slice(0, n + 1));
      v = x;
    } else if (Array.isArray(v) && typeof seg === "number") {
      if (seg >= v.length) throw errors.outOfBounds(segs.slice(0, n), seg, v.length);
      v = v[seg];
    } else {
      throw errors.wrongType(segs.slice(0, n), typeof seg === "string" ? "object" : "array", typeName(v));
    }
  }
  return v;
}
var join = (p, k) => [...p, k];
function finite(path, what2, n) {
  if (!Number.isFinite(n)) throw errors.invalid(path, `${what2} must be a finite number`);
  return n;
}
function listAt(box, path) {
  const i = lastIndex(path);
  if (i === void 0) throw errors.invalid(path, "the path must end in a list index");
  const parent = path.slice(0, -1);
  const a = walk(box, parent);
  if (!Array.isArray(a)) throw errors.wrongType(parent, "array", typeName(a));
  return [a, i];
}
function objAt(box, path) {
  const m = walk(box, path);
  if (!isObject(m)) throw errors.wrongType(path, "object", typeName(m));
  return m;
}
function numField(m, path, key) {
  const v = getKey(m, key);
  if (v === void 0) return void 0;
  if (typeof v === "number") return v;
  throw errors.wrongType(join(path, key), "number", typeName(v));
}
function adjustRange(param) {
  switch (param) {
    case "brightness":
    case "contrast":
    case "saturation":
      return [-1, 1];
    case "exposure":
      return [-10, 10];
    default:
      return void 0;
  }
}
function rectOf(v) {
  if (!isObject(v)) return void 0;
  const x = getKey(v, "x");
  const y = getKey(v, "y");
  const w = getKey(v, "w");
  const h2 = getKey(v, "h");
  if (typeof x !== "number" || typeof y !== "number" || typeof w !== "number" || typeof h2 !== "number") {
    return void 0;
  }
  return { x, y, w, h: h2 };
}
function exactRectOf(v) {
  const r = rectOf(v);
  if (!r || !isObject(v) || Object.keys(v).length !== 4) return void 0;
  return r.x >= 0 && r.y >= 0 && r.w > 0 && r.h > 0 ? r : void 0;
}
function applyComponent(box, c) {
  switch (c.op) {
    case "set": {
      const path = c.path;
      if (path.length === 0) {
        const old = box.root;
        box.root = clone(c.value);
        return [{ op: "set", path, value: old }];
      }
      const parent = path.slice(0, -1);
      const last = path[path.length - 1];
      const p = walk(box, parent);
      if (isObject(p) && typeof last === "string") {
        const old = getKey(p, last);
        setKey(p, last, clone(c.value));
        return old === void 0 ? [{ op: "del", path }] : [{ op: "set", path, value: old }];
      }
      if (Array.isArray(p) && typeof last === "number") {
        if (last >= p.length) throw errors.outOfBounds(parent, last, p.length);
        const old = p[last];
        p[last] = clone(c.value);
        return [{ op: "set", path, value: old }];
      }
      throw errors.wrongType(parent, typeof last === "string" ? "object" : "array", typeName(p));
    }
    case "del": {
      const path = c.path;
      if (path.length === 0) throw errors.invalid(path, "the document root can't be deleted");
      const parent = path.slice(0, -1);
      const last = path[path.length - 1];
      const p = walk(box, parent);
      if (isObject(p) && typeof last === "string") {
        if (!hasOwn(p, last)) throw errors.noSuchPath(path);
        const old = p[last];
        delete p[last];
        return [{ op: "set", path, value: old }];
      }
      if (Array.isArray(p) && typeof last === "number") {
        if (last >= p.length) throw errors.outOfBounds(parent, last, p.length);
        const [old] = p.splice(last, 1);
        return [{ op: "ins", path, value: old }];
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
      a.splice(c.to, 0, v);
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
        const p = walk(box, parent);
        const last = c.path[c.path.length - 1];
        if (Array.isArray(p)) p[last] = sum;
        else setKey(p, last, sum);
      }
      return [{ op: "add", path: c.path, value: -c.value }];
    }
    case "text": {
      const v = walk(box, c.path);
      if (typeof v !== "string") throw errors.wrongType(c.path, "string", typeName(v));
      const { text: text2, inverse } = c.text.apply(v, c.path);
      if (c.path.length === 0) box.root = text2;
      else {
        const p = walk(box, c.path.slice(0, -1));
        const last = c.path[c.path.length - 1];
        if (Array.isArray(p)) p[last] = text2;
        else setKey(p, last, text2);
      }
      return [{ op: "text", path: c.path, text: inverse }];
    }
    case "split": {
      finite(c.path, "at", c.at);
      finite(c.path, "media", c.media);
      const [a, i] = listAt(box, c.path);
      if (i >= a.length) throw errors.outOfBounds(c.path.slice(0, -1), i, a.length);
      const clip = a[i];
      if (!isObject(clip)) throw errors.wrongType(c.path, "object", typeName(clip));
      for (const key of ["start", "in", "out"]) {
        if (numField(clip, c.path, key) === void 0) {
          throw errors.invalid(c.path, `split: the clip has no \`${key}\``);
        }
      }
      const oldOut = getKey(clip, "out") ?? null;
      setKey(clip, "out", c.media);
      const right = {};
      for (const k of Object.keys(clip)) setKey(right, k, clone(clip[k]));
      setKey(right, "id", c.id);
      setKey(right, "start", c.at);
      setKey(right, "in", c.media);
      setKey(right, "out", oldOut);
      a.splice(i + 1, 0, right);
      return [
        { op: "del", path: withLastIndex(c.path, i + 1) },
        { op: "set", path: join(c.path, "out"), value: oldOut }
      ];
    }
    case "trim": {
      const m = objAt(box, c.path);
      const fields = [
        ["start", c.start],
        ["in", c.in],
        ["out", c.out]
      ];
      const old = [void 0, void 0, void 0];
      fields.forEach(([key, v], n) => {
        if (v !== void 0) {
          finite(c.path, key, v);
          const o = numField(m, c.path, key);
          if (o === void 0) throw errors.invalid(c.path, `trim: the clip has no \`${key}\``);
          old[n] = o;
        }
      });
      for (const [key, v] of fields) if (v !== void 0) setKey(m, key, v);
      const inv = { op: "trim", path: c.path };
      if (old[0] !== void 0) inv.start = old[0];
      if (old[1] !== void 0) inv.in = old[1];
      if (old[2] !== void 0) inv.out = old[2];
      return [inv];
    }
    case "crop": {
      const r = c.rect;
      for (const [k, v] of [
        ["x", r.x],
        ["y", r.y],
        ["w", r.w],
        ["h", r.h]
      ]) {
        finite(c.path, k, v);
      }
      if (r.x < 0 || r.y < 0 || r.w <= 0 || r.h <= 0) {
        throw errors.invalid(c.path, "crop: x and y must be ≥ 0, w and h > 0");
      }
      const m = objAt(box, c.path);
      const old = getKey(m, "crop");
      setKey(m, "crop", { x: r.x, y: r.y, w: r.w, h: r.h });
      if (old === void 0) return [{ op: "del", path: join(c.path, "crop") }];
      const oldRect = exactRectOf(old);
      return oldRect ? [{ op: "crop", path: c.path, rect: oldRect }] : [{ op: "set", path: join(c.path, "crop"), value: old }];
    }
    case "rotate": {
      finite(c.path, "by", c.by);
      const m = objAt(box, c.path);
      const r = numField(m, c.path, "rotation");
      if (r !== void 0) {
        finite(c.path, "the rotation", r + c.by);
        setKey(m, "rotation", r + c.by);
        return [{ op: "rotate", path: c.path, by: -c.by }];
      }
      setKey(m, "rotation", c.by);
      return [{ op: "del", path: join(c.path, "rotation") }];
    }
    case "adjust": {
      const { param, value: value2 } = c;
      finite(c.path, "value", value2);
      if (param.length === 0 || param.length > 32 || !/^[a-z_]+$/.test(param)) {
        throw errors.invalid(c.path, "adjust: `param` must be 1–32 lowercase letters or `_`");
      }
      const range = adjustRange(param);
      if (range && !(value2 >= range[0] && value2 <= range[1])) {
        throw errors.invalid(c.path, `adjust: ${param} must be within ${range[0]}..=${range[1]}`);
      }
      const m = objAt(box, c.path);
      const adj = getKey(m, "adjust");
      if (adj === void 0) {
        const o = {};
        setKey(o, param, value2);
        setKey(m, "adjust", o);
        return [{ op: "del", path: join(c.path, "adjust") }];
      }
      if (!isObject(adj)) throw errors.wrongType(join(c.path, "adjust"), "object", typeName(adj));
      const old = getKey(adj, param);
      setKey(adj, param, value2);
      const at2 = [...c.path, "adjust", param];
      if (old === void 0) return [{ op: "del", path: at2 }];
      if (typeof old === "number" && (range === void 0 || old >= range[0] && old <= range[1])) {
        return [{ op: "adjust", path: c.path, param, value: old }];
      }
      return [{ op: "set", path: at2, value: old }];
    }
  }
}

// ../client/src/schema.ts
var bad = (path, reason) => errors.schema(path, reason);
function at(doc2, path) {
  let v = doc2;
  for (const seg of path) {
    if (isObject(v) && typeof seg === "string") v = getKey(v, seg);
    else if (Array.isArray(v) && typeof seg === "number") v = v[seg];
    else return void 0;
    if (v === void 0) return void 0;
  }
  return v;
}
function checkTouched(doc2, op) {
  let rootChecked = false;
  for (const c of op) {
    const e = entity(c.path);
    if (e === void 0 && (c.op === "text" || c.op === "add")) continue;
    if (!rootChecked) {
      checkRoot(doc2);
      rootChecked = true;
    }
    if (e !== void 0) checkEntity(doc2, e);
    if (c.op === "split") {
      const i = lastIndex(c.path);
      if (i !== void 0) {
        const e2 = entity(withLastIndex(c.path, i + 1));
        if (e2 !== void 0) checkEntity(doc2, e2);
      }
    }
  }
}
function entity(p) {
  const key = (n, k) => p[n] === k;
  const idx = (n) => typeof p[n] === "number";
  if (key(0, "canvas") && key(1, "layers") && idx(2)) return p.slice(0, 3);
  if (key(0, "timeline") && key(1, "tracks") && idx(2) && key(3, "clips") && idx(4)) return p.slice(0, 5);
  if (key(0, "timeline") && key(1, "tracks") && idx(2)) return p.slice(0, 3);
  if (key(0, "assets") || key(0, "canvas") || key(0, "timeline")) return p.slice(0, Math.min(p.length, 2));
  if (p.length === 0) return p;
  return void 0;
}
function get(v, k) {
  return isObject(v) ? getKey(v, k) : void 0;
}
function checkEntity(doc2, e) {
  const v = at(doc2, e);
  if (v === void 0) return;
  const key = (n, k) => e[n] === k;
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
      if (key(0, "canvas")) return checkCanvas(get(doc2, "canvas") ?? null, e.slice(0, 1));
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
function checkRoot(doc2) {
  if (!isObject(doc2)) throw bad([], "the document must be an object");
  const want = [
    ["title", "string"],
    ["assets", "object"],
    ["canvas", "object"],
    ["timeline", "object"],
    ["meta", "object"]
  ];
  for (const [k, t] of want) {
    const v = getKey(doc2, k);
    if (v === void 0) throw bad([k], "is required");
    if (typeName(v) !== t) throw bad([k], `must be a ${t}, not a ${typeName(v)}`);
  }
}
function field(v, at2, k, t, required) {
  const x = get(v, k);
  if (x !== void 0) {
    if (typeName(x) === t) return x;
    throw bad([...at2, k], `must be a ${t}, not a ${typeName(x)}`);
  }
  if (required) throw bad([...at2, k], "is required");
  return void 0;
}
function object(v, at2) {
  if (!isObject(v)) throw bad(at2, `must be an object, not a ${typeName(v)}`);
}
function checkList(v, at2, each) {
  if (!Array.isArray(v)) throw bad(at2, "must be an array");
  v.forEach((x, i) => each(x, [...at2, i]));
}
function checkCanvas(v, at2) {
  object(v, at2);
  field(v, at2, "width", "number", true);
  field(v, at2, "height", "number", true);
  const layers2 = field(v, at2, "layers", "array", true) ?? null;
  checkList(layers2, [...at2, "layers"], checkLayer);
}
function checkTimeline(v, at2) {
  object(v, at2);
  const tracks2 = field(v, at2, "tracks", "array", true) ?? null;
  checkList(tracks2, [...at2, "tracks"], checkTrack);
}
function checkAssets(v, at2) {
  if (!isObject(v)) throw bad(at2, "must be an object");
  for (const k of Object.keys(v).sort()) checkAsset(v[k], [...at2, k]);
}
function oneOf(v, at2, k, allowed) {
  if (typeof v === "string" && allowed.includes(v)) return;
  throw bad([...at2, k], `must be one of ${allowed.join(", ")}`);
}
function checkAsset(v, at2) {
  object(v, at2);
  oneOf(get(v, "kind"), at2, "kind", ["image", "video", "audio"]);
  for (const k of ["width", "height", "duration"]) field(v, at2, k, "number", false);
}
function checkLayer(v, at2) {
  object(v, at2);
  field(v, at2, "id", "string", true);
  oneOf(get(v, "kind"), at2, "kind", ["image", "text"]);
  if (get(v, "kind") === "image") {
    field(v, at2, "asset", "string", true);
    for (const k of ["x", "y", "w", "h"]) field(v, at2, k, "number", true);
    field(v, at2, "rotation", "number", false);
    const o = field(v, at2, "opacity", "number", false);
    if (typeof o === "number" && !(o >= 0 && o <= 1)) throw bad([...at2, "opacity"], "must be within 0..=1");
    const c = field(v, at2, "crop", "object", false);
    if (c !== void 0) for (const k of ["x", "y", "w", "h"]) field(c, [...at2, "crop"], k, "number", true);
    const f = field(v, at2, "flip", "object", false);
    if (f !== void 0) for (const k of ["h", "v"]) field(f, [...at2, "flip"], k, "boolean", false);
    const a = field(v, at2, "adjust", "object", false);
    if (a !== void 0 && isObject(a)) {
      const p = [...at2, "adjust"];
      for (const k of Object.keys(a).sort()) {
        const n = field(a, p, k, "number", true);
        const r = adjustRange(k);
        if (typeof n === "number" && r && !(n >= r[0] && n <= r[1])) {
          throw bad([...p, k], `must be within ${r[0]}..=${r[1]}`);
        }
      }
    }
  } else {
    field(v, at2, "text", "string", true);
    for (const k of ["x", "y", "size"]) field(v, at2, k, "number", true);
    field(v, at2, "color", "string", true);
  }
}
function checkTrack(v, at2) {
  object(v, at2);
  field(v, at2, "id", "string", true);
  oneOf(get(v, "kind"), at2, "kind", ["video", "audio"]);
  const clips = field(v, at2, "clips", "array", true) ?? null;
  checkList(clips, [...at2, "clips"], checkClip);
}
function checkClip(v, at2) {
  object(v, at2);
  field(v, at2, "id", "string", true);
  field(v, at2, "asset", "string", true);
  for (const k of ["start", "in", "out"]) field(v, at2, k, "number", true);
}

// ../client/src/picture.ts
var PICTURE_LIMITS = {
  /** Most pixels a picture may have. */
  maxPixels: 11e7,
  /** Longest side. */
  maxSide: 32768,
  /** Pixels any picture may have whatever its file size. */
  freePixels: 16e6,
  /** Past `freePixels`, pixels allowed per byte of file (decompression bombs). */
  pixelsPerByte: 256
};
var u16be = (b, i) => b[i] << 8 | b[i + 1];
var u32be = (b, i) => (b[i] << 24 >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3];
var u24le = (b, i) => b[i] | b[i + 1] << 8 | b[i + 2] << 16;
var ascii = (b, i, s) => [...s].every((c, k) => b[i + k] === c.charCodeAt(0));
function pictureInfo(b) {
  if (b.length >= 24 && b[0] === 137 && ascii(b, 1, "PNG\r\n\n") && ascii(b, 12, "IHDR")) {
    return { format: "png", width: u32be(b, 16), height: u32be(b, 20) };
  }
  if (b.length >= 4 && b[0] === 255 && b[1] === 216) {
    let i = 2;
    while (i + 4 <= b.length) {
      if (b[i] !== 255) return null;
      const m = b[i + 1];
      if (m === 255) {
        i++;
        continue;
      }
      if (m === 1 || m >= 208 && m <= 215) {
        i += 2;
        continue;
      }
      const len = u16be(b, i + 2);
      if (len < 2) return null;
      const sof = m >= 192 && m <= 207 && m !== 196 && m !== 200 && m !== 204;
      if (sof) return i + 9 <= b.length ? { format: "jpeg", height: u16be(b, i + 5), width: u16be(b, i + 7) } : null;
      if (m === 217 || m === 218) return null;
      i += 2 + len;
    }
    return null;
  }
  if (b.length >= 30 && ascii(b, 0, "RIFF") && ascii(b, 8, "WEBP")) {
    if (ascii(b, 12, "VP8 ") && b[23] === 157 && b[24] === 1 && b[25] === 42) {
      return { format: "webp", width: (b[26] | b[27] << 8) & 16383, height: (b[28] | b[29] << 8) & 16383 };
    }
    if (ascii(b, 12, "VP8L") && b[20] === 47) {
      const bits = b[21] | b[22] << 8 | b[23] << 16 | b[24] << 24 >>> 0;
      return { format: "webp", width: (bits & 16383) + 1, height: (bits >>> 14 & 16383) + 1 };
    }
    if (ascii(b, 12, "VP8X")) return { format: "webp", width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
    return null;
  }
  return null;
}
function pictureRefusal(file) {
  const p = pictureInfo(file);
  if (p === null) return "not a PNG, JPEG or WebP picture";
  const { width: w, height: h2 } = p;
  if (w === 0 || h2 === 0) return `declares ${w}×${h2} pixels`;
  const L = PICTURE_LIMITS;
  const limit = Math.min(L.maxPixels, Math.max(L.freePixels, file.length * L.pixelsPerByte));
  if (w > L.maxSide || h2 > L.maxSide || w * h2 > limit) {
    return `declares ${w}×${h2} pixels, more than a ${file.length}-byte picture may have (at most ${limit} pixels, ${L.maxSide} a side)`;
  }
  return null;
}

// ../client/src/diff.ts
function diff(from, to) {
  return diffUnder([], from, to);
}
function diffUnder(at2, from, to) {
  const out = [];
  value(at2, from, to, out);
  return out;
}
function value(at2, from, to, out) {
  const deep = at2.length >= MAX_PATH_DEPTH;
  if (!deep && isObject(from) && isObject(to)) return object2(at2, from, to, out);
  if (!deep && Array.isArray(from) && Array.isArray(to)) {
    const ia = ids(from);
    const ib = ids(to);
    if (ia !== null && ib !== null) return byId(at2, from, to, ia, ib, out);
    return byIndex(at2, from, to, out);
  }
  if (typeof from === "string" && typeof to === "string") return text(at2, from, to, out);
  if (deepEqual(from, to)) return;
  out.push(set(at2, to));
}
function compareKeys(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; ) {
    const x = a.codePointAt(i);
    const y = b.codePointAt(i);
    if (x !== y) return x < y ? -1 : 1;
    i += x > 65535 ? 2 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
function sortedKeys(o) {
  return Object.keys(o).sort(compareKeys);
}
function object2(at2, a, b, out) {
  for (const k of sortedKeys(a)) {
    const w = getKey(b, k);
    if (w !== void 0) value(child(at2, k), getKey(a, k), w, out);
    else out.push(del(child(at2, k)));
  }
  for (const k of sortedKeys(b)) {
    if (!hasOwn(a, k)) out.push(set(child(at2, k), getKey(b, k)));
  }
}
function ids(list2) {
  const out = [];
  const seen = /* @__PURE__ */ new Set();
  for (const v of list2) {
    const id = isObject(v) ? getKey(v, "id") : void 0;
    if (typeof id !== "string" || seen.has(id)) return null;
    seen.add(id);
    out.push(id);
  }
  return out;
}
function byId(at2, a, b, ia, ib, out) {
  const posA = new Map(ia.map((s, i) => [s, i]));
  const posB = new Map(ib.map((s, j) => [s, j]));
  for (let i = ia.length - 1; i >= 0; i--) {
    if (!posB.has(ia[i])) out.push(del(child(at2, i)));
  }
  const cur = [];
  for (const s of ia) {
    const j = posB.get(s);
    if (j !== void 0) cur.push(j);
  }
  const stay = longestIncreasing(cur, b.length);
  const order = cur.slice().sort((x, y) => x - y);
  for (let r = 0; r < order.length; r++) {
    const j = order[r];
    if (stay[j]) continue;
    const k = cur.indexOf(j);
    if (k < 0) continue;
    cur.splice(k, 1);
    let dest = 0;
    if (r > 0) {
      const q = cur.indexOf(order[r - 1]);
      dest = q < 0 ? 0 : q + 1;
    }
    cur.splice(dest, 0, j);
    if (dest !== k) out.push(mov(child(at2, k), dest));
  }
  ib.forEach((id, j) => {
    if (!posA.has(id)) out.push(ins(child(at2, j), b[j]));
  });
  ib.forEach((id, j) => {
    const i = posA.get(id);
    if (i !== void 0) value(child(at2, j), a[i], b[j], out);
  });
}
function longestIncreasing(seq, n) {
  const tails = [];
  const prev = new Array(seq.length).fill(void 0);
  seq.forEach((x, i) => {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = lo + hi >>> 1;
      if (seq[tails[mid]] < x) lo = mid + 1;
      else hi = mid;
    }
    prev[i] = lo > 0 ? tails[lo - 1] : void 0;
    if (lo === tails.length) tails.push(i);
    else tails[lo] = i;
  });
  const keep = new Array(n).fill(false);
  for (let i = tails[tails.length - 1]; i !== void 0; i = prev[i]) keep[seq[i]] = true;
  return keep;
}
function byIndex(at2, a, b, out) {
  let pre = 0;
  while (pre < a.length && pre < b.length && deepEqual(a[pre], b[pre])) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && deepEqual(a[a.length - 1 - suf], b[b.length - 1 - suf])) suf++;
  const ma = a.length - pre - suf;
  const mb = b.length - pre - suf;
  const paired = pre + Math.min(ma, mb);
  for (let k = pre; k < paired; k++) value(child(at2, k), a[k], b[k], out);
  for (let k = pre + ma - 1; k >= paired; k--) out.push(del(child(at2, k)));
  for (let k = paired; k < pre + mb; k++) out.push(ins(child(at2, k), b[k]));
}
var isHigh2 = (c) => c >= 55296 && c <= 56319;
var isLow2 = (c) => c >= 56320 && c <= 57343;
function lastWidth(s, end, floor) {
  return end - 2 >= floor && isLow2(s.charCodeAt(end - 1)) && isHigh2(s.charCodeAt(end - 2)) ? 2 : 1;
}
function text(at2, a, b, out) {
  let pre = 0;
  let preChars = 0;
  while (pre < a.length && pre < b.length) {
    const x = a.codePointAt(pre);
    if (x !== b.codePointAt(pre)) break;
    pre += x > 65535 ? 2 : 1;
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
  out.push({ op: "text", path: at2, text: op });
}
function valueAt(doc2, path) {
  let v = doc2;
  for (const seg of path) {
    if (isObject(v) && typeof seg === "string") v = getKey(v, seg);
    else if (Array.isArray(v) && typeof seg === "number") v = seg < v.length ? v[seg] : void 0;
    else return void 0;
    if (v === void 0) return void 0;
  }
  return v;
}
function items(v) {
  return Array.isArray(v) ? v : [];
}
function get2(v, key) {
  return isObject(v) ? getKey(v, key) : void 0;
}
function findElement(doc2, id) {
  const hasId = (v) => get2(v, "id") === id;
  const layers2 = ["canvas", "layers"];
  const i = items(valueAt(doc2, layers2)).findIndex(hasId);
  if (i >= 0) return [...layers2, i];
  const tracks2 = ["timeline", "tracks"];
  const list2 = items(valueAt(doc2, tracks2));
  for (let t = 0; t < list2.length; t++) {
    const track = list2[t];
    if (hasId(track)) return [...tracks2, t];
    const j = items(get2(track, "clips")).findIndex(hasId);
    if (j >= 0) return [...tracks2, t, "clips", j];
  }
  return null;
}
function restoreElement(head, old, id) {
  const now = findElement(head, id);
  const then = findElement(old, id);
  if (now !== null && then !== null) {
    const x = valueAt(head, now);
    const y = valueAt(old, then);
    return x === void 0 || y === void 0 ? null : diffUnder(now, x, y);
  }
  if (now !== null) return [del(now)];
  if (then === null) return null;
  let parent;
  if (then.length === 5) {
    const trackId = get2(valueAt(old, then.slice(0, 3)), "id");
    if (typeof trackId !== "string") return null;
    const track = findElement(head, trackId);
    if (track === null) return null;
    parent = [...track, "clips"];
  } else {
    parent = then.slice(0, -1);
  }
  const list2 = valueAt(head, parent);
  const i = lastIndex(then);
  const v = valueAt(old, then);
  if (!Array.isArray(list2) || i === void 0 || v === void 0) return null;
  return [ins([...parent, Math.min(i, list2.length)], v)];
}

// ../client/src/transform.ts
var flip = (s) => s === "left" ? "right" : "left";
function idxAfter(eff, e) {
  switch (eff.k) {
    case "ins":
      return e + (e >= eff.at ? 1 : 0);
    case "del":
      if (e === eff.at) return void 0;
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
function listEff(o) {
  const i = lastIndex(o.path);
  if (i === void 0) return void 0;
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
      return void 0;
  }
}
function target(c) {
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
function withPath(c, path) {
  return { ...c, path };
}
function mapPath(path, list2, eff) {
  const n = list2.length;
  if (path.length <= n || !isPrefix(list2, path)) return path;
  const e = path[n];
  if (typeof e !== "number") return path;
  const e2 = idxAfter(eff, e);
  if (e2 === void 0) return void 0;
  return withIndexAt(path, n, e2);
}
function replaced(o) {
  switch (o.op) {
    case "set":
    case "crop":
    case "adjust":
      return target(o)[0];
    case "del":
      return lastIndex(o.path) === void 0 ? o.path.slice() : void 0;
    default:
      return void 0;
  }
}
function transformComponent(c, o, side, out) {
  if (isNoop(o)) {
    out.push(c);
    return;
  }
  if (c.op === "trim" && o.op === "trim" && pathEq(c.path, o.path)) return trimVsTrim(c, o, side, out);
  if (c.op === "trim" && o.op === "split" && pathEq(c.path, o.path)) return trimVsSplit(c, o, out);
  if (c.op === "split" && o.op === "trim" && pathEq(c.path, o.path)) return splitVsTrim(c, o, out);
  if (c.op === "trim") return transformTrim(c, o, side, out);
  if (o.op === "trim") {
    let cur = [c];
    for (const [key, v] of [
      ["start", o.start],
      ["in", o.in],
      ["out", o.out]
    ]) {
      if (v !== void 0) {
        const w = { op: "set", path: [...o.path, key], value: v };
        const next = [];
        for (const x of cur) transformComponent(x, w, side, next);
        cur = next;
      }
    }
    out.push(...cur);
    return;
  }
  if (o.op === "split") return transformAgainstSplit(c, o, side, out);
  const le = listEff(o);
  if (le !== void 0) {
    const [list2, eff] = le;
    if ((c.op === "ins" || c.op === "mov") && pathEq(c.path.slice(0, -1), list2)) {
      return listVsList(c, eff, side, out);
    }
    const p = mapPath(c.path, list2, eff);
    if (p !== void 0) out.push(p === c.path ? c : withPath(c, p));
    return;
  }
  const q = replaced(o);
  if (q !== void 0) {
    const oRemove = o.op === "del";
    if (c.op === "ins" || c.op === "mov") {
      if (!isPrefix(q, c.path.slice(0, -1))) out.push(c);
      return;
    }
    const [t, kind] = target(c);
    if (q.length < t.length && isPrefix(q, t)) return;
    if (pathEq(q, t)) {
      let keep;
      if (kind === "edit") keep = false;
      else if (kind === "write") keep = side === "right";
      else if (oRemove) keep = false;
      else keep = lastIndex(t) !== void 0 || side === "right";
      if (!keep) return;
    }
    out.push(c);
    return;
  }
  if (c.op === "text" && o.op === "text" && pathEq(c.path, o.path)) {
    const t = c.text.transform(o.text, side === "left");
    if (!t.isNoop()) out.push({ op: "text", path: c.path, text: t });
    return;
  }
  out.push(c);
}
function listVsList(c, eff, side, out) {
  const path = c.path;
  let rc;
  let gc;
  if (c.op === "ins") {
    rc = void 0;
    gc = lastIndex(path) ?? 0;
  } else if (c.op === "mov") {
    rc = lastIndex(path);
    gc = c.to;
  } else {
    throw new Error("listVsList is only called for ins and mov");
  }
  let ro;
  let go;
  let oFirst;
  switch (eff.k) {
    case "ins":
      [ro, go, oFirst] = [void 0, eff.at, side === "right"];
      break;
    case "del":
      [ro, go, oFirst] = [eff.at, void 0, false];
      break;
    case "mov":
      [ro, go, oFirst] = [eff.from, eff.to, side === "right"];
      break;
    case "split":
      [ro, go, oFirst] = [void 0, eff.at + 1, true];
      break;
  }
  if (rc !== void 0 && rc === ro) {
    if (eff.k === "mov" && c.op === "mov" && side === "right" && eff.to !== gc) {
      out.push({ op: "mov", path: withLastIndex(path, eff.to), to: gc });
    }
    return;
  }
  const toReduced = (g, own, other) => {
    if (other === void 0) return g;
    const r = own !== void 0 ? other - (other > own ? 1 : 0) : other;
    return g - (g > r ? 1 : 0);
  };
  const gcR = toReduced(gc, rc, ro);
  let pos;
  if (go === void 0) pos = gcR;
  else {
    const goR = toReduced(go, ro, rc);
    pos = gcR + (goR < gcR || goR === gcR && oFirst ? 1 : 0);
  }
  if (c.op === "ins") {
    out.push({ op: "ins", path: withLastIndex(path, pos), value: c.value });
  } else {
    const from = (rc !== void 0 ? idxAfter(eff, rc) : void 0) ?? 0;
    if (from !== pos) out.push({ op: "mov", path: withLastIndex(path, from), to: pos });
  }
}
function transformTrim(c, o, side, out) {
  const writes = [];
  for (const [key, v] of [
    ["start", c.start],
    ["in", c.in],
    ["out", c.out]
  ]) {
    if (v !== void 0) transformComponent({ op: "set", path: [...c.path, key], value: v }, o, side, writes);
  }
  const trims = [];
  for (const w of writes) {
    if (w.op !== "set" || typeof w.value !== "number") continue;
    const key = w.path[w.path.length - 1];
    if (typeof key !== "string") continue;
    const clip = w.path.slice(0, -1);
    let slot = trims.find((t) => pathEq(t.path, clip));
    if (slot === void 0) {
      slot = { op: "trim", path: clip };
      trims.push(slot);
    }
    if (key === "start") slot.start = w.value;
    else if (key === "in") slot.in = w.value;
    else slot.out = w.value;
  }
  out.push(...trims);
}
var MIN_CLIP_LENGTH = 0.0625;
var START = 0;
var IN = 1;
var OUT = 2;
var trimFields = (c) => [c.start, c.in, c.out];
function pushTrim(path, f, out) {
  if (f.every((x) => x === void 0)) return;
  const t = { op: "trim", path };
  if (f[START] !== void 0) t.start = f[START];
  if (f[IN] !== void 0) t.in = f[IN];
  if (f[OUT] !== void 0) t.out = f[OUT];
  out.push(t);
}
function giveWay(l, r) {
  const f = [...r];
  const moved = [false, false, false];
  const [li, lo, ri, ro] = [l[IN], l[OUT], r[IN], r[OUT]];
  if (li !== void 0 && ri === void 0 && ro !== void 0 && ro - li < MIN_CLIP_LENGTH) {
    f[OUT] = li + MIN_CLIP_LENGTH;
    moved[OUT] = true;
  } else if (lo !== void 0 && ri !== void 0 && ro === void 0 && lo - ri < MIN_CLIP_LENGTH) {
    const ni = lo - MIN_CLIP_LENGTH;
    f[IN] = ni;
    moved[IN] = true;
    const rs = r[START];
    if (rs !== void 0) {
      f[START] = rs + (ni - ri);
      moved[START] = true;
    }
  }
  return [f, moved];
}
function trimVsTrim(c, o, side, out) {
  const [l, r] = side === "left" ? [trimFields(c), trimFields(o)] : [trimFields(o), trimFields(c)];
  const [fixed, moved] = giveWay(l, r);
  const f = side === "right" ? fixed : [START, IN, OUT].map((k) => r[k] !== void 0 ? moved[k] ? fixed[k] : void 0 : l[k]);
  pushTrim(c.path, f, out);
}
function trimVsSplit(c, o, out) {
  const i = lastIndex(c.path);
  if (i === void 0) return;
  const f = trimFields(c);
  const right = withLastIndex(c.path, i + 1);
  if (f[OUT] !== void 0 && f[OUT] <= o.media) {
    pushTrim(c.path, f, out);
    out.push({ op: "del", path: right });
  } else if (f[IN] !== void 0 && f[IN] >= o.media) {
    pushTrim(right, f, out);
    out.push({ op: "del", path: c.path });
  } else {
    pushTrim(c.path, [f[START], f[IN], void 0], out);
    pushTrim(right, [void 0, void 0, f[OUT]], out);
  }
}
function splitVsTrim(c, o, out) {
  const f = trimFields(o);
  if (f[OUT] !== void 0 && f[OUT] <= c.media) return;
  if (f[IN] !== void 0 && f[IN] >= c.media) {
    out.push({ op: "set", path: [...c.path, "id"], value: c.id });
    if (f[START] === void 0) out.push({ op: "set", path: [...c.path, "start"], value: c.at });
    return;
  }
  out.push(c);
}
function transformAgainstSplit(c, o, side, out) {
  const sp = o.path;
  const list2 = sp.slice(0, -1);
  const i = lastIndex(sp);
  if (i === void 0) {
    out.push(c);
    return;
  }
  const n = list2.length;
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
  if ((c.op === "ins" || c.op === "mov") && pathEq(cp.slice(0, -1), list2)) {
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
  if (cp.length <= n || !isPrefix(list2, cp)) {
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
  const rightOf = (x) => withPath(x, withIndexAt(x.path, n, i + 1));
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
function transformXComponents(a, b, side) {
  let bCur = b.filter((c) => !isNoop(c));
  const aOut = [];
  for (const ac of a) {
    if (isNoop(ac)) continue;
    let aCur = [ac];
    const bNext = [];
    for (const bc of bCur) {
      if (aCur.length === 1) {
        const a2 = [];
        transformComponent(aCur[0], bc, side, a2);
        transformComponent(bc, aCur[0], flip(side), bNext);
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

// ../client/src/op.ts
function apply(doc2, op) {
  const box = { root: clone(doc2) };
  const inverse = applyComponents(box, op);
  checkTouched(box.root, op);
  return { doc: box.root, inverse };
}
function applyUnchecked(doc2, op) {
  const box = { root: clone(doc2) };
  const inverse = applyComponents(box, op);
  return { doc: box.root, inverse };
}
function applyComponents(box, op) {
  const undo = [];
  for (const c of op) undo.push(applyComponent(box, c));
  return undo.reverse().flat();
}
function transform(a, b, side) {
  if (a.length === 1) {
    const c = a[0];
    if (isNoop(c)) return [];
    let cur = [c];
    for (let k = 0; k < b.length; k++) {
      if (cur.length === 0) break;
      if (cur.length === 1) {
        const next = [];
        transformComponent(cur[0], b[k], side, next);
        cur = next;
      } else {
        return transformXComponents(cur, b.slice(k), side)[0];
      }
    }
    return cur;
  }
  return transformXComponents(a, b, side)[0];
}
function transformX(a, b, side) {
  return transformXComponents(a, b, side);
}
function compose(a, b) {
  const out = a.slice();
  for (const c of b) pushMerged(out, c);
  return out;
}
function pushMerged(op, c) {
  if (isNoop(c)) return;
  const last = op[op.length - 1];
  if (last !== void 0) {
    const merged = merge(last, c);
    if (merged !== void 0) {
      if (isNoop(merged)) op.pop();
      else op[op.length - 1] = merged;
      return;
    }
  }
  op.push(c);
}
function merge(a, b) {
  if (!pathEq(a.path, b.path)) return void 0;
  if (a.op === "text" && b.op === "text") return { op: "text", path: a.path, text: a.text.compose(b.text) };
  if (a.op === "set" && b.op === "set" || a.op === "crop" && b.op === "crop") return b;
  if (a.op === "adjust" && b.op === "adjust" && a.param === b.param) return b;
  if (a.op === "trim" && b.op === "trim") {
    const t = { op: "trim", path: a.path };
    const start2 = b.start ?? a.start;
    const inn = b.in ?? a.in;
    const out = b.out ?? a.out;
    if (start2 !== void 0) t.start = start2;
    if (inn !== void 0) t.in = inn;
    if (out !== void 0) t.out = out;
    return t;
  }
  return void 0;
}

// ../client/src/sync.ts
var SyncDoc = class _SyncDoc {
  doc;
  version;
  inflight = null;
  pending = null;
  pendingEdits = 0;
  lastSeq;
  undoStack = [];
  redoStack = [];
  /** Most undo steps kept. */
  undoLimit = 200;
  constructor(doc2, version, lastSeq = 0) {
    this.doc = doc2;
    this.version = version;
    this.lastSeq = lastSeq;
  }
  /** The last seq handed out. */
  get lastSeqUsed() {
    return this.lastSeq;
  }
  /** Local edits not yet acknowledged by the server. */
  get pendingCount() {
    return (this.inflight?.edits ?? 0) + this.pendingEdits;
  }
  /** True if {@link SyncDoc.undo} has an edit of mine to take back. */
  get canUndo() {
    return this.undoStack.length > 0;
  }
  /** True if {@link SyncDoc.redo} has an undone edit to make again. */
  get canRedo() {
    return this.redoStack.length > 0;
  }
  /**
   * A local edit: validated and applied at once (throws `OtError` and changes nothing if the
   * edit is refused), then queued. Returns the applied edit.
   */
  edit(op, kind = "edit") {
    const before = this.doc;
    const { doc: doc2 } = apply(before, op);
    const inverse = undoInverse(before, op);
    this.doc = doc2;
    if (kind === "edit") {
      this.undoStack.push(inverse);
      if (this.undoStack.length > this.undoLimit) this.undoStack.shift();
      this.redoStack = [];
    } else if (kind === "undo") {
      this.redoStack.push(inverse);
    } else {
      this.undoStack.push(inverse);
    }
    this.pending = this.pending === null ? op.slice() : compose(this.pending, op);
    this.pendingEdits++;
    return op;
  }
  /** Undoes my latest edit that still applies; returns the edit applied, or null. */
  undo() {
    return this.step(this.undoStack, "undo");
  }
  /** Makes my latest undone edit again; returns the edit applied, or null. */
  redo() {
    return this.step(this.redoStack, "redo");
  }
  step(stack, kind) {
    while (stack.length > 0) {
      const op = stack.pop();
      if (op.length === 0) continue;
      try {
        return this.edit(op, kind);
      } catch {
      }
    }
    return null;
  }
  /** The next edit to send, if none is in flight. */
  takeOutgoing() {
    if (this.inflight !== null || this.pending === null) return null;
    const op = this.pending;
    this.pending = null;
    this.inflight = { base: this.version, seq: ++this.lastSeq, op, sent: op, edits: this.pendingEdits };
    this.pendingEdits = 0;
    return { base: this.inflight.base, seq: this.inflight.seq, op };
  }
  /** Queues an empty edit, counted as no edit and with no undo step, when nothing else is
   * queued or in flight: an encrypted session's key check (see `MontageSession`). */
  queueEmpty() {
    if (this.inflight === null && this.pending === null) this.pending = [];
  }
  /** The in-flight edit as first sent, with its original base and seq, for resending after a
   * reconnect (the server transforms it past everything since `base` again). */
  resend() {
    const f = this.inflight;
    return f === null ? null : { base: f.base, seq: f.seq, op: f.sent };
  }
  /** The server refused my in-flight edit as too costly to rebase there (`conflict` with the
   * head version): it was not applied. It goes out again as it stands on the replica, already
   * transformed past every server edit received, on the current version and under a new seq. */
  rebase() {
    const f = this.inflight;
    if (f === null) return null;
    if (f.op.length === 0 && f.edits === 0 && this.version > 0) {
      this.inflight = null;
      return null;
    }
    f.base = this.version;
    f.seq = ++this.lastSeq;
    f.sent = f.op;
    f.sealed = void 0;
    return { base: f.base, seq: f.seq, op: f.op };
  }
  /** The server acknowledged my in-flight edit as `version`. */
  ack(seq, version) {
    if (this.inflight === null || this.inflight.seq !== seq) {
      throw new Error(`ack for seq ${seq}, but ${this.inflight ? `seq ${this.inflight.seq}` : "nothing"} is in flight`);
    }
    if (version !== this.version + 1) {
      throw new Error(`ack names version ${version}, expected ${this.version + 1}`);
    }
    this.version = version;
    this.inflight = null;
  }
  /** An edit of someone else, ordered by the server as `version`. Returns the edit as applied
   * to the local document. `from`: the version it was made on when it stands for several
   * (a compact catch-up). */
  remote(version, op, from = version - 1) {
    if (from !== this.version || version <= from) {
      throw new Error(`server edit version ${version}, expected ${this.version + 1}`);
    }
    let incoming = op;
    if (this.inflight !== null) {
      const [a, b] = transformX(incoming, this.inflight.op, "left");
      incoming = a;
      this.inflight.op = b;
    }
    if (this.pending !== null) {
      const [a, b] = transformX(incoming, this.pending, "left");
      incoming = a;
      this.pending = b;
    }
    this.doc = applyUnchecked(this.doc, incoming).doc;
    this.version = version;
    this.undoStack = this.undoStack.map((u) => transform(u, incoming, "right"));
    this.redoStack = this.redoStack.map((u) => transform(u, incoming, "right"));
    return incoming;
  }
  /** The state to persist (undo history is not kept). */
  snapshot() {
    const f = this.inflight;
    let inflight = null;
    if (f !== null) {
      inflight = { base: f.base, seq: f.seq, sent: encodeOp(f.sent), op: encodeOp(f.op), edits: f.edits };
      if (f.sealed !== void 0) inflight.sealed = { data: f.sealed.data, key_epoch: f.sealed.keyEpoch };
    }
    return {
      v: 1,
      doc: this.doc,
      version: this.version,
      lastSeq: this.lastSeq,
      inflight,
      pending: this.pending && encodeOp(this.pending),
      pendingEdits: this.pendingEdits
    };
  }
  /** A replica from a snapshot; throws on an unknown snapshot version or a malformed edit. */
  static restore(s) {
    if (s.v !== 1) throw new Error(`unknown snapshot version ${String(s.v)}`);
    const d = new _SyncDoc(s.doc, s.version, s.lastSeq);
    if (s.inflight) {
      const f = s.inflight;
      d.inflight = { base: f.base, seq: f.seq, sent: decodeOp(f.sent), op: decodeOp(f.op), edits: f.edits };
      if (f.sealed !== void 0) d.inflight.sealed = { data: String(f.sealed.data), keyEpoch: Number(f.sealed.key_epoch) };
    }
    d.pending = s.pending && decodeOp(s.pending);
    d.pendingEdits = s.pendingEdits;
    return d;
  }
  /** Drops every unacknowledged edit (after the server refused one) and adopts `doc`. */
  reset(doc2, version) {
    this.doc = doc2;
    this.version = version;
    this.inflight = null;
    this.pending = null;
    this.pendingEdits = 0;
    this.undoStack = [];
    this.redoStack = [];
  }
};
function undoInverse(before, op) {
  let cur = before;
  const parts = [];
  for (const c of op) {
    const r = applyUnchecked(cur, [c]);
    let inv = r.inverse;
    if (c.op === "rotate" && inv.length === 1 && inv[0].op === "del") {
      inv = [{ op: "rotate", path: c.path, by: -c.by }];
    } else if (c.op === "adjust" && inv.length === 1 && inv[0].op === "del" && inv[0].path.length === c.path.length + 1) {
      inv = [{ op: "del", path: [...c.path, "adjust", c.param] }];
    }
    parts.push(inv);
    cur = r.doc;
  }
  return parts.reverse().flat();
}

// ../client/node_modules/@noble/ciphers/esm/utils.js
function isBytes(a) {
  return a instanceof Uint8Array || ArrayBuffer.isView(a) && a.constructor.name === "Uint8Array";
}
function abool(b) {
  if (typeof b !== "boolean")
    throw new Error(`boolean expected, not ${b}`);
}
function anumber(n) {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error("positive integer expected, got " + n);
}
function abytes(b, ...lengths) {
  if (!isBytes(b))
    throw new Error("Uint8Array expected");
  if (lengths.length > 0 && !lengths.includes(b.length))
    throw new Error("Uint8Array expected of length " + lengths + ", got length=" + b.length);
}
function aexists(instance, checkFinished = true) {
  if (instance.destroyed)
    throw new Error("Hash instance has been destroyed");
  if (checkFinished && instance.finished)
    throw new Error("Hash#digest() has already been called");
}
function aoutput(out, instance) {
  abytes(out);
  const min = instance.outputLen;
  if (out.length < min) {
    throw new Error("digestInto() expects output buffer of length at least " + min);
  }
}
function u32(arr) {
  return new Uint32Array(arr.buffer, arr.byteOffset, Math.floor(arr.byteLength / 4));
}
function clean(...arrays) {
  for (let i = 0; i < arrays.length; i++) {
    arrays[i].fill(0);
  }
}
function createView(arr) {
  return new DataView(arr.buffer, arr.byteOffset, arr.byteLength);
}
var isLE = /* @__PURE__ */ (() => new Uint8Array(new Uint32Array([287454020]).buffer)[0] === 68)();
function utf8ToBytes(str2) {
  if (typeof str2 !== "string")
    throw new Error("string expected");
  return new Uint8Array(new TextEncoder().encode(str2));
}
function toBytes(data) {
  if (typeof data === "string")
    data = utf8ToBytes(data);
  else if (isBytes(data))
    data = copyBytes(data);
  else
    throw new Error("Uint8Array expected, got " + typeof data);
  return data;
}
function checkOpts(defaults, opts) {
  if (opts == null || typeof opts !== "object")
    throw new Error("options must be defined");
  const merged = Object.assign(defaults, opts);
  return merged;
}
function equalBytes(a, b) {
  if (a.length !== b.length)
    return false;
  let diff2 = 0;
  for (let i = 0; i < a.length; i++)
    diff2 |= a[i] ^ b[i];
  return diff2 === 0;
}
var wrapCipher = /* @__NO_SIDE_EFFECTS__ */ (params, constructor) => {
  function wrappedCipher(key, ...args) {
    abytes(key);
    if (!isLE)
      throw new Error("Non little-endian hardware is not yet supported");
    if (params.nonceLength !== void 0) {
      const nonce = args[0];
      if (!nonce)
        throw new Error("nonce / iv required");
      if (params.varSizeNonce)
        abytes(nonce);
      else
        abytes(nonce, params.nonceLength);
    }
    const tagl = params.tagLength;
    if (tagl && args[1] !== void 0) {
      abytes(args[1]);
    }
    const cipher = constructor(key, ...args);
    const checkOutput = (fnLength, output) => {
      if (output !== void 0) {
        if (fnLength !== 2)
          throw new Error("cipher output not supported");
        abytes(output);
      }
    };
    let called = false;
    const wrCipher = {
      encrypt(data, output) {
        if (called)
          throw new Error("cannot encrypt() twice with same key + nonce");
        called = true;
        abytes(data);
        checkOutput(cipher.encrypt.length, output);
        return cipher.encrypt(data, output);
      },
      decrypt(data, output) {
        abytes(data);
        if (tagl && data.length < tagl)
          throw new Error("invalid ciphertext length: smaller than tagLength=" + tagl);
        checkOutput(cipher.decrypt.length, output);
        return cipher.decrypt(data, output);
      }
    };
    return wrCipher;
  }
  Object.assign(wrappedCipher, params);
  return wrappedCipher;
};
function getOutput(expectedLength, out, onlyAligned = true) {
  if (out === void 0)
    return new Uint8Array(expectedLength);
  if (out.length !== expectedLength)
    throw new Error("invalid output length, expected " + expectedLength + ", got: " + out.length);
  if (onlyAligned && !isAligned32(out))
    throw new Error("invalid output, must be aligned");
  return out;
}
function setBigUint64(view, byteOffset, value2, isLE2) {
  if (typeof view.setBigUint64 === "function")
    return view.setBigUint64(byteOffset, value2, isLE2);
  const _32n = BigInt(32);
  const _u32_max = BigInt(4294967295);
  const wh = Number(value2 >> _32n & _u32_max);
  const wl = Number(value2 & _u32_max);
  const h2 = isLE2 ? 4 : 0;
  const l = isLE2 ? 0 : 4;
  view.setUint32(byteOffset + h2, wh, isLE2);
  view.setUint32(byteOffset + l, wl, isLE2);
}
function u64Lengths(dataLength, aadLength, isLE2) {
  abool(isLE2);
  const num3 = new Uint8Array(16);
  const view = createView(num3);
  setBigUint64(view, 0, BigInt(aadLength), isLE2);
  setBigUint64(view, 8, BigInt(dataLength), isLE2);
  return num3;
}
function isAligned32(bytes) {
  return bytes.byteOffset % 4 === 0;
}
function copyBytes(bytes) {
  return Uint8Array.from(bytes);
}

// ../client/node_modules/@noble/ciphers/esm/_arx.js
var _utf8ToBytes = (str2) => Uint8Array.from(str2.split("").map((c) => c.charCodeAt(0)));
var sigma16 = _utf8ToBytes("expand 16-byte k");
var sigma32 = _utf8ToBytes("expand 32-byte k");
var sigma16_32 = u32(sigma16);
var sigma32_32 = u32(sigma32);
function rotl(a, b) {
  return a << b | a >>> 32 - b;
}
function isAligned322(b) {
  return b.byteOffset % 4 === 0;
}
var BLOCK_LEN = 64;
var BLOCK_LEN32 = 16;
var MAX_COUNTER = 2 ** 32 - 1;
var U32_EMPTY = new Uint32Array();
function runCipher(core, sigma, key, nonce, data, output, counter, rounds) {
  const len = data.length;
  const block = new Uint8Array(BLOCK_LEN);
  const b32 = u32(block);
  const isAligned = isAligned322(data) && isAligned322(output);
  const d32 = isAligned ? u32(data) : U32_EMPTY;
  const o32 = isAligned ? u32(output) : U32_EMPTY;
  for (let pos = 0; pos < len; counter++) {
    core(sigma, key, nonce, b32, counter, rounds);
    if (counter >= MAX_COUNTER)
      throw new Error("arx: counter overflow");
    const take = Math.min(BLOCK_LEN, len - pos);
    if (isAligned && take === BLOCK_LEN) {
      const pos32 = pos / 4;
      if (pos % 4 !== 0)
        throw new Error("arx: invalid block position");
      for (let j = 0, posj; j < BLOCK_LEN32; j++) {
        posj = pos32 + j;
        o32[posj] = d32[posj] ^ b32[j];
      }
      pos += BLOCK_LEN;
      continue;
    }
    for (let j = 0, posj; j < take; j++) {
      posj = pos + j;
      output[posj] = data[posj] ^ block[j];
    }
    pos += take;
  }
}
function createCipher(core, opts) {
  const { allowShortKeys, extendNonceFn, counterLength, counterRight, rounds } = checkOpts({ allowShortKeys: false, counterLength: 8, counterRight: false, rounds: 20 }, opts);
  if (typeof core !== "function")
    throw new Error("core must be a function");
  anumber(counterLength);
  anumber(rounds);
  abool(counterRight);
  abool(allowShortKeys);
  return (key, nonce, data, output, counter = 0) => {
    abytes(key);
    abytes(nonce);
    abytes(data);
    const len = data.length;
    if (output === void 0)
      output = new Uint8Array(len);
    abytes(output);
    anumber(counter);
    if (counter < 0 || counter >= MAX_COUNTER)
      throw new Error("arx: counter overflow");
    if (output.length < len)
      throw new Error(`arx: output (${output.length}) is shorter than data (${len})`);
    const toClean = [];
    let l = key.length;
    let k;
    let sigma;
    if (l === 32) {
      toClean.push(k = copyBytes(key));
      sigma = sigma32_32;
    } else if (l === 16 && allowShortKeys) {
      k = new Uint8Array(32);
      k.set(key);
      k.set(key, 16);
      sigma = sigma16_32;
      toClean.push(k);
    } else {
      throw new Error(`arx: invalid 32-byte key, got length=${l}`);
    }
    if (!isAligned322(nonce))
      toClean.push(nonce = copyBytes(nonce));
    const k32 = u32(k);
    if (extendNonceFn) {
      if (nonce.length !== 24)
        throw new Error(`arx: extended nonce must be 24 bytes`);
      extendNonceFn(sigma, k32, u32(nonce.subarray(0, 16)), k32);
      nonce = nonce.subarray(16);
    }
    const nonceNcLen = 16 - counterLength;
    if (nonceNcLen !== nonce.length)
      throw new Error(`arx: nonce must be ${nonceNcLen} or 16 bytes`);
    if (nonceNcLen !== 12) {
      const nc = new Uint8Array(12);
      nc.set(nonce, counterRight ? 0 : 12 - nonce.length);
      nonce = nc;
      toClean.push(nonce);
    }
    const n32 = u32(nonce);
    runCipher(core, sigma, k32, n32, data, output, counter, rounds);
    clean(...toClean);
    return output;
  };
}

// ../client/node_modules/@noble/ciphers/esm/_poly1305.js
var u8to16 = (a, i) => a[i++] & 255 | (a[i++] & 255) << 8;
var Poly1305 = class {
  constructor(key) {
    this.blockLen = 16;
    this.outputLen = 16;
    this.buffer = new Uint8Array(16);
    this.r = new Uint16Array(10);
    this.h = new Uint16Array(10);
    this.pad = new Uint16Array(8);
    this.pos = 0;
    this.finished = false;
    key = toBytes(key);
    abytes(key, 32);
    const t0 = u8to16(key, 0);
    const t1 = u8to16(key, 2);
    const t2 = u8to16(key, 4);
    const t3 = u8to16(key, 6);
    const t4 = u8to16(key, 8);
    const t5 = u8to16(key, 10);
    const t6 = u8to16(key, 12);
    const t7 = u8to16(key, 14);
    this.r[0] = t0 & 8191;
    this.r[1] = (t0 >>> 13 | t1 << 3) & 8191;
    this.r[2] = (t1 >>> 10 | t2 << 6) & 7939;
    this.r[3] = (t2 >>> 7 | t3 << 9) & 8191;
    this.r[4] = (t3 >>> 4 | t4 << 12) & 255;
    this.r[5] = t4 >>> 1 & 8190;
    this.r[6] = (t4 >>> 14 | t5 << 2) & 8191;
    this.r[7] = (t5 >>> 11 | t6 << 5) & 8065;
    this.r[8] = (t6 >>> 8 | t7 << 8) & 8191;
    this.r[9] = t7 >>> 5 & 127;
    for (let i = 0; i < 8; i++)
      this.pad[i] = u8to16(key, 16 + 2 * i);
  }
  process(data, offset, isLast = false) {
    const hibit = isLast ? 0 : 1 << 11;
    const { h: h2, r } = this;
    const r0 = r[0];
    const r1 = r[1];
    const r2 = r[2];
    const r3 = r[3];
    const r4 = r[4];
    const r5 = r[5];
    const r6 = r[6];
    const r7 = r[7];
    const r8 = r[8];
    const r9 = r[9];
    const t0 = u8to16(data, offset + 0);
    const t1 = u8to16(data, offset + 2);
    const t2 = u8to16(data, offset + 4);
    const t3 = u8to16(data, offset + 6);
    const t4 = u8to16(data, offset + 8);
    const t5 = u8to16(data, offset + 10);
    const t6 = u8to16(data, offset + 12);
    const t7 = u8to16(data, offset + 14);
    let h0 = h2[0] + (t0 & 8191);
    let h1 = h2[1] + ((t0 >>> 13 | t1 << 3) & 8191);
    let h22 = h2[2] + ((t1 >>> 10 | t2 << 6) & 8191);
    let h3 = h2[3] + ((t2 >>> 7 | t3 << 9) & 8191);
    let h4 = h2[4] + ((t3 >>> 4 | t4 << 12) & 8191);
    let h5 = h2[5] + (t4 >>> 1 & 8191);
    let h6 = h2[6] + ((t4 >>> 14 | t5 << 2) & 8191);
    let h7 = h2[7] + ((t5 >>> 11 | t6 << 5) & 8191);
    let h8 = h2[8] + ((t6 >>> 8 | t7 << 8) & 8191);
    let h9 = h2[9] + (t7 >>> 5 | hibit);
    let c = 0;
    let d0 = c + h0 * r0 + h1 * (5 * r9) + h22 * (5 * r8) + h3 * (5 * r7) + h4 * (5 * r6);
    c = d0 >>> 13;
    d0 &= 8191;
    d0 += h5 * (5 * r5) + h6 * (5 * r4) + h7 * (5 * r3) + h8 * (5 * r2) + h9 * (5 * r1);
    c += d0 >>> 13;
    d0 &= 8191;
    let d1 = c + h0 * r1 + h1 * r0 + h22 * (5 * r9) + h3 * (5 * r8) + h4 * (5 * r7);
    c = d1 >>> 13;
    d1 &= 8191;
    d1 += h5 * (5 * r6) + h6 * (5 * r5) + h7 * (5 * r4) + h8 * (5 * r3) + h9 * (5 * r2);
    c += d1 >>> 13;
    d1 &= 8191;
    let d2 = c + h0 * r2 + h1 * r1 + h22 * r0 + h3 * (5 * r9) + h4 * (5 * r8);
    c = d2 >>> 13;
    d2 &= 8191;
    d2 += h5 * (5 * r7) + h6 * (5 * r6) + h7 * (5 * r5) + h8 * (5 * r4) + h9 * (5 * r3);
    c += d2 >>> 13;
    d2 &= 8191;
    let d3 = c + h0 * r3 + h1 * r2 + h22 * r1 + h3 * r0 + h4 * (5 * r9);
    c = d3 >>> 13;
    d3 &= 8191;
    d3 += h5 * (5 * r8) + h6 * (5 * r7) + h7 * (5 * r6) + h8 * (5 * r5) + h9 * (5 * r4);
    c += d3 >>> 13;
    d3 &= 8191;
    let d4 = c + h0 * r4 + h1 * r3 + h22 * r2 + h3 * r1 + h4 * r0;
    c = d4 >>> 13;
    d4 &= 8191;
    d4 += h5 * (5 * r9) + h6 * (5 * r8) + h7 * (5 * r7) + h8 * (5 * r6) + h9 * (5 * r5);
    c += d4 >>> 13;
    d4 &= 8191;
    let d5 = c + h0 * r5 + h1 * r4 + h22 * r3 + h3 * r2 + h4 * r1;
    c = d5 >>> 13;
    d5 &= 8191;
    d5 += h5 * r0 + h6 * (5 * r9) + h7 * (5 * r8) + h8 * (5 * r7) + h9 * (5 * r6);
    c += d5 >>> 13;
    d5 &= 8191;
    let d6 = c + h0 * r6 + h1 * r5 + h22 * r4 + h3 * r3 + h4 * r2;
    c = d6 >>> 13;
    d6 &= 8191;
    d6 += h5 * r1 + h6 * r0 + h7 * (5 * r9) + h8 * (5 * r8) + h9 * (5 * r7);
    c += d6 >>> 13;
    d6 &= 8191;
    let d7 = c + h0 * r7 + h1 * r6 + h22 * r5 + h3 * r4 + h4 * r3;
    c = d7 >>> 13;
    d7 &= 8191;
    d7 += h5 * r2 + h6 * r1 + h7 * r0 + h8 * (5 * r9) + h9 * (5 * r8);
    c += d7 >>> 13;
    d7 &= 8191;
    let d8 = c + h0 * r8 + h1 * r7 + h22 * r6 + h3 * r5 + h4 * r4;
    c = d8 >>> 13;
    d8 &= 8191;
    d8 += h5 * r3 + h6 * r2 + h7 * r1 + h8 * r0 + h9 * (5 * r9);
    c += d8 >>> 13;
    d8 &= 8191;
    let d9 = c + h0 * r9 + h1 * r8 + h22 * r7 + h3 * r6 + h4 * r5;
    c = d9 >>> 13;
    d9 &= 8191;
    d9 += h5 * r4 + h6 * r3 + h7 * r2 + h8 * r1 + h9 * r0;
    c += d9 >>> 13;
    d9 &= 8191;
    c = (c << 2) + c | 0;
    c = c + d0 | 0;
    d0 = c & 8191;
    c = c >>> 13;
    d1 += c;
    h2[0] = d0;
    h2[1] = d1;
    h2[2] = d2;
    h2[3] = d3;
    h2[4] = d4;
    h2[5] = d5;
    h2[6] = d6;
    h2[7] = d7;
    h2[8] = d8;
    h2[9] = d9;
  }
  finalize() {
    const { h: h2, pad } = this;
    const g = new Uint16Array(10);
    let c = h2[1] >>> 13;
    h2[1] &= 8191;
    for (let i = 2; i < 10; i++) {
      h2[i] += c;
      c = h2[i] >>> 13;
      h2[i] &= 8191;
    }
    h2[0] += c * 5;
    c = h2[0] >>> 13;
    h2[0] &= 8191;
    h2[1] += c;
    c = h2[1] >>> 13;
    h2[1] &= 8191;
    h2[2] += c;
    g[0] = h2[0] + 5;
    c = g[0] >>> 13;
    g[0] &= 8191;
    for (let i = 1; i < 10; i++) {
      g[i] = h2[i] + c;
      c = g[i] >>> 13;
      g[i] &= 8191;
    }
    g[9] -= 1 << 13;
    let mask = (c ^ 1) - 1;
    for (let i = 0; i < 10; i++)
      g[i] &= mask;
    mask = ~mask;
    for (let i = 0; i < 10; i++)
      h2[i] = h2[i] & mask | g[i];
    h2[0] = (h2[0] | h2[1] << 13) & 65535;
    h2[1] = (h2[1] >>> 3 | h2[2] << 10) & 65535;
    h2[2] = (h2[2] >>> 6 | h2[3] << 7) & 65535;
    h2[3] = (h2[3] >>> 9 | h2[4] << 4) & 65535;
    h2[4] = (h2[4] >>> 12 | h2[5] << 1 | h2[6] << 14) & 65535;
    h2[5] = (h2[6] >>> 2 | h2[7] << 11) & 65535;
    h2[6] = (h2[7] >>> 5 | h2[8] << 8) & 65535;
    h2[7] = (h2[8] >>> 8 | h2[9] << 5) & 65535;
    let f = h2[0] + pad[0];
    h2[0] = f & 65535;
    for (let i = 1; i < 8; i++) {
      f = (h2[i] + pad[i] | 0) + (f >>> 16) | 0;
      h2[i] = f & 65535;
    }
    clean(g);
  }
  update(data) {
    aexists(this);
    data = toBytes(data);
    abytes(data);
    const { buffer, blockLen } = this;
    const len = data.length;
    for (let pos = 0; pos < len; ) {
      const take = Math.min(blockLen - this.pos, len - pos);
      if (take === blockLen) {
        for (; blockLen <= len - pos; pos += blockLen)
          this.process(data, pos);
        continue;
      }
      buffer.set(data.subarray(pos, pos + take), this.pos);
      this.pos += take;
      pos += take;
      if (this.pos === blockLen) {
        this.process(buffer, 0, false);
        this.pos = 0;
      }
    }
    return this;
  }
  destroy() {
    clean(this.h, this.r, this.buffer, this.pad);
  }
  digestInto(out) {
    aexists(this);
    aoutput(out, this);
    this.finished = true;
    const { buffer, h: h2 } = this;
    let { pos } = this;
    if (pos) {
      buffer[pos++] = 1;
      for (; pos < 16; pos++)
        buffer[pos] = 0;
      this.process(buffer, 0, true);
    }
    this.finalize();
    let opos = 0;
    for (let i = 0; i < 8; i++) {
      out[opos++] = h2[i] >>> 0;
      out[opos++] = h2[i] >>> 8;
    }
    return out;
  }
  digest() {
    const { buffer, outputLen } = this;
    this.digestInto(buffer);
    const res = buffer.slice(0, outputLen);
    this.destroy();
    return res;
  }
};
function wrapConstructorWithKey(hashCons) {
  const hashC = (msg, key) => hashCons(key).update(toBytes(msg)).digest();
  const tmp = hashCons(new Uint8Array(32));
  hashC.outputLen = tmp.outputLen;
  hashC.blockLen = tmp.blockLen;
  hashC.create = (key) => hashCons(key);
  return hashC;
}
var poly1305 = wrapConstructorWithKey((key) => new Poly1305(key));

// ../client/node_modules/@noble/ciphers/esm/chacha.js
function chachaCore(s, k, n, out, cnt, rounds = 20) {
  let y00 = s[0], y01 = s[1], y02 = s[2], y03 = s[3], y04 = k[0], y05 = k[1], y06 = k[2], y07 = k[3], y08 = k[4], y09 = k[5], y10 = k[6], y11 = k[7], y12 = cnt, y13 = n[0], y14 = n[1], y15 = n[2];
  let x00 = y00, x01 = y01, x02 = y02, x03 = y03, x04 = y04, x05 = y05, x06 = y06, x07 = y07, x08 = y08, x09 = y09, x10 = y10, x11 = y11, x12 = y12, x13 = y13, x14 = y14, x15 = y15;
  for (let r = 0; r < rounds; r += 2) {
    x00 = x00 + x04 | 0;
    x12 = rotl(x12 ^ x00, 16);
    x08 = x08 + x12 | 0;
    x04 = rotl(x04 ^ x08, 12);
    x00 = x00 + x04 | 0;
    x12 = rotl(x12 ^ x00, 8);
    x08 = x08 + x12 | 0;
    x04 = rotl(x04 ^ x08, 7);
    x01 = x01 + x05 | 0;
    x13 = rotl(x13 ^ x01, 16);
    x09 = x09 + x13 | 0;
    x05 = rotl(x05 ^ x09, 12);
    x01 = x01 + x05 | 0;
    x13 = rotl(x13 ^ x01, 8);
    x09 = x09 + x13 | 0;
    x05 = rotl(x05 ^ x09, 7);
    x02 = x02 + x06 | 0;
    x14 = rotl(x14 ^ x02, 16);
    x10 = x10 + x14 | 0;
    x06 = rotl(x06 ^ x10, 12);
    x02 = x02 + x06 | 0;
    x14 = rotl(x14 ^ x02, 8);
    x10 = x10 + x14 | 0;
    x06 = rotl(x06 ^ x10, 7);
    x03 = x03 + x07 | 0;
    x15 = rotl(x15 ^ x03, 16);
    x11 = x11 + x15 | 0;
    x07 = rotl(x07 ^ x11, 12);
    x03 = x03 + x07 | 0;
    x15 = rotl(x15 ^ x03, 8);
    x11 = x11 + x15 | 0;
    x07 = rotl(x07 ^ x11, 7);
    x00 = x00 + x05 | 0;
    x15 = rotl(x15 ^ x00, 16);
    x10 = x10 + x15 | 0;
    x05 = rotl(x05 ^ x10, 12);
    x00 = x00 + x05 | 0;
    x15 = rotl(x15 ^ x00, 8);
    x10 = x10 + x15 | 0;
    x05 = rotl(x05 ^ x10, 7);
    x01 = x01 + x06 | 0;
    x12 = rotl(x12 ^ x01, 16);
    x11 = x11 + x12 | 0;
    x06 = rotl(x06 ^ x11, 12);
    x01 = x01 + x06 | 0;
    x12 = rotl(x12 ^ x01, 8);
    x11 = x11 + x12 | 0;
    x06 = rotl(x06 ^ x11, 7);
    x02 = x02 + x07 | 0;
    x13 = rotl(x13 ^ x02, 16);
    x08 = x08 + x13 | 0;
    x07 = rotl(x07 ^ x08, 12);
    x02 = x02 + x07 | 0;
    x13 = rotl(x13 ^ x02, 8);
    x08 = x08 + x13 | 0;
    x07 = rotl(x07 ^ x08, 7);
    x03 = x03 + x04 | 0;
    x14 = rotl(x14 ^ x03, 16);
    x09 = x09 + x14 | 0;
    x04 = rotl(x04 ^ x09, 12);
    x03 = x03 + x04 | 0;
    x14 = rotl(x14 ^ x03, 8);
    x09 = x09 + x14 | 0;
    x04 = rotl(x04 ^ x09, 7);
  }
  let oi = 0;
  out[oi++] = y00 + x00 | 0;
  out[oi++] = y01 + x01 | 0;
  out[oi++] = y02 + x02 | 0;
  out[oi++] = y03 + x03 | 0;
  out[oi++] = y04 + x04 | 0;
  out[oi++] = y05 + x05 | 0;
  out[oi++] = y06 + x06 | 0;
  out[oi++] = y07 + x07 | 0;
  out[oi++] = y08 + x08 | 0;
  out[oi++] = y09 + x09 | 0;
  out[oi++] = y10 + x10 | 0;
  out[oi++] = y11 + x11 | 0;
  out[oi++] = y12 + x12 | 0;
  out[oi++] = y13 + x13 | 0;
  out[oi++] = y14 + x14 | 0;
  out[oi++] = y15 + x15 | 0;
}
function hchacha(s, k, i, o32) {
  let x00 = s[0], x01 = s[1], x02 = s[2], x03 = s[3], x04 = k[0], x05 = k[1], x06 = k[2], x07 = k[3], x08 = k[4], x09 = k[5], x10 = k[6], x11 = k[7], x12 = i[0], x13 = i[1], x14 = i[2], x15 = i[3];
  for (let r = 0; r < 20; r += 2) {
    x00 = x00 + x04 | 0;
    x12 = rotl(x12 ^ x00, 16);
    x08 = x08 + x12 | 0;
    x04 = rotl(x04 ^ x08, 12);
    x00 = x00 + x04 | 0;
    x12 = rotl(x12 ^ x00, 8);
    x08 = x08 + x12 | 0;
    x04 = rotl(x04 ^ x08, 7);
    x01 = x01 + x05 | 0;
    x13 = rotl(x13 ^ x01, 16);
    x09 = x09 + x13 | 0;
    x05 = rotl(x05 ^ x09, 12);
    x01 = x01 + x05 | 0;
    x13 = rotl(x13 ^ x01, 8);
    x09 = x09 + x13 | 0;
    x05 = rotl(x05 ^ x09, 7);
    x02 = x02 + x06 | 0;
    x14 = rotl(x14 ^ x02, 16);
    x10 = x10 + x14 | 0;
    x06 = rotl(x06 ^ x10, 12);
    x02 = x02 + x06 | 0;
    x14 = rotl(x14 ^ x02, 8);
    x10 = x10 + x14 | 0;
    x06 = rotl(x06 ^ x10, 7);
    x03 = x03 + x07 | 0;
    x15 = rotl(x15 ^ x03, 16);
    x11 = x11 + x15 | 0;
    x07 = rotl(x07 ^ x11, 12);
    x03 = x03 + x07 | 0;
    x15 = rotl(x15 ^ x03, 8);
    x11 = x11 + x15 | 0;
    x07 = rotl(x07 ^ x11, 7);
    x00 = x00 + x05 | 0;
    x15 = rotl(x15 ^ x00, 16);
    x10 = x10 + x15 | 0;
    x05 = rotl(x05 ^ x10, 12);
    x00 = x00 + x05 | 0;
    x15 = rotl(x15 ^ x00, 8);
    x10 = x10 + x15 | 0;
    x05 = rotl(x05 ^ x10, 7);
    x01 = x01 + x06 | 0;
    x12 = rotl(x12 ^ x01, 16);
    x11 = x11 + x12 | 0;
    x06 = rotl(x06 ^ x11, 12);
    x01 = x01 + x06 | 0;
    x12 = rotl(x12 ^ x01, 8);
    x11 = x11 + x12 | 0;
    x06 = rotl(x06 ^ x11, 7);
    x02 = x02 + x07 | 0;
    x13 = rotl(x13 ^ x02, 16);
    x08 = x08 + x13 | 0;
    x07 = rotl(x07 ^ x08, 12);
    x02 = x02 + x07 | 0;
    x13 = rotl(x13 ^ x02, 8);
    x08 = x08 + x13 | 0;
    x07 = rotl(x07 ^ x08, 7);
    x03 = x03 + x04 | 0;
    x14 = rotl(x14 ^ x03, 16);
    x09 = x09 + x14 | 0;
    x04 = rotl(x04 ^ x09, 12);
    x03 = x03 + x04 | 0;
    x14 = rotl(x14 ^ x03, 8);
    x09 = x09 + x14 | 0;
    x04 = rotl(x04 ^ x09, 7);
  }
  let oi = 0;
  o32[oi++] = x00;
  o32[oi++] = x01;
  o32[oi++] = x02;
  o32[oi++] = x03;
  o32[oi++] = x12;
  o32[oi++] = x13;
  o32[oi++] = x14;
  o32[oi++] = x15;
}
var chacha20 = /* @__PURE__ */ createCipher(chachaCore, {
  counterRight: false,
  counterLength: 4,
  allowShortKeys: false
});
var xchacha20 = /* @__PURE__ */ createCipher(chachaCore, {
  counterRight: false,
  counterLength: 8,
  extendNonceFn: hchacha,
  allowShortKeys: false
});
var ZEROS16 = /* @__PURE__ */ new Uint8Array(16);
var updatePadded = (h2, msg) => {
  h2.update(msg);
  const left = msg.length % 16;
  if (left)
    h2.update(ZEROS16.subarray(left));
};
var ZEROS32 = /* @__PURE__ */ new Uint8Array(32);
function computeTag(fn, key, nonce, data, AAD) {
  const authKey = fn(key, nonce, ZEROS32);
  const h2 = poly1305.create(authKey);
  if (AAD)
    updatePadded(h2, AAD);
  updatePadded(h2, data);
  const num3 = u64Lengths(data.length, AAD ? AAD.length : 0, true);
  h2.update(num3);
  const res = h2.digest();
  clean(authKey, num3);
  return res;
}
var _poly1305_aead = (xorStream) => (key, nonce, AAD) => {
  const tagLength = 16;
  return {
    encrypt(plaintext, output) {
      const plength = plaintext.length;
      output = getOutput(plength + tagLength, output, false);
      output.set(plaintext);
      const oPlain = output.subarray(0, -tagLength);
      xorStream(key, nonce, oPlain, oPlain, 1);
      const tag = computeTag(xorStream, key, nonce, oPlain, AAD);
      output.set(tag, plength);
      clean(tag);
      return output;
    },
    decrypt(ciphertext, output) {
      output = getOutput(ciphertext.length - tagLength, output, false);
      const data = ciphertext.subarray(0, -tagLength);
      const passedTag = ciphertext.subarray(-tagLength);
      const tag = computeTag(xorStream, key, nonce, data, AAD);
      if (!equalBytes(passedTag, tag))
        throw new Error("invalid tag");
      output.set(ciphertext.subarray(0, -tagLength));
      xorStream(key, nonce, output, output, 1);
      clean(tag);
      return output;
    }
  };
};
var chacha20poly1305 = /* @__PURE__ */ wrapCipher({ blockSize: 64, nonceLength: 12, tagLength: 16 }, _poly1305_aead(chacha20));
var xchacha20poly1305 = /* @__PURE__ */ wrapCipher({ blockSize: 64, nonceLength: 24, tagLength: 16 }, _poly1305_aead(xchacha20));

// ../client/node_modules/@noble/hashes/esm/crypto.js
var crypto = typeof globalThis === "object" && "crypto" in globalThis ? globalThis.crypto : void 0;

// ../client/node_modules/@noble/hashes/esm/utils.js
function isBytes2(a) {
  return a instanceof Uint8Array || ArrayBuffer.isView(a) && a.constructor.name === "Uint8Array";
}
function abytes2(b, ...lengths) {
  if (!isBytes2(b))
    throw new Error("Uint8Array expected");
  if (lengths.length > 0 && !lengths.includes(b.length))
    throw new Error("Uint8Array expected of length " + lengths + ", got length=" + b.length);
}
function aexists2(instance, checkFinished = true) {
  if (instance.destroyed)
    throw new Error("Hash instance has been destroyed");
  if (checkFinished && instance.finished)
    throw new Error("Hash#digest() has already been called");
}
function aoutput2(out, instance) {
  abytes2(out);
  const min = instance.outputLen;
  if (out.length < min) {
    throw new Error("digestInto() expects output buffer of length at least " + min);
  }
}
function clean2(...arrays) {
  for (let i = 0; i < arrays.length; i++) {
    arrays[i].fill(0);
  }
}
function createView2(arr) {
  return new DataView(arr.buffer, arr.byteOffset, arr.byteLength);
}
function rotr(word, shift) {
  return word << 32 - shift | word >>> shift;
}
var hasHexBuiltin = /* @__PURE__ */ (() => (
  // @ts-ignore
  typeof Uint8Array.from([]).toHex === "function" && typeof Uint8Array.fromHex === "function"
))();
var hexes = /* @__PURE__ */ Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
function bytesToHex(bytes) {
  abytes2(bytes);
  if (hasHexBuiltin)
    return bytes.toHex();
  let hex = "";
  for (let i = 0; i < bytes.length; i++) {
    hex += hexes[bytes[i]];
  }
  return hex;
}
var asciis = { _0: 48, _9: 57, A: 65, F: 70, a: 97, f: 102 };
function asciiToBase16(ch) {
  if (ch >= asciis._0 && ch <= asciis._9)
    return ch - asciis._0;
  if (ch >= asciis.A && ch <= asciis.F)
    return ch - (asciis.A - 10);
  if (ch >= asciis.a && ch <= asciis.f)
    return ch - (asciis.a - 10);
  return;
}
function hexToBytes(hex) {
  if (typeof hex !== "string")
    throw new Error("hex string expected, got " + typeof hex);
  if (hasHexBuiltin)
    return Uint8Array.fromHex(hex);
  const hl = hex.length;
  const al = hl / 2;
  if (hl % 2)
    throw new Error("hex string expected, got unpadded hex of length " + hl);
  const array = new Uint8Array(al);
  for (let ai = 0, hi = 0; ai < al; ai++, hi += 2) {
    const n1 = asciiToBase16(hex.charCodeAt(hi));
    const n2 = asciiToBase16(hex.charCodeAt(hi + 1));
    if (n1 === void 0 || n2 === void 0) {
      const char = hex[hi] + hex[hi + 1];
      throw new Error('hex string expected, got non-hex character "' + char + '" at index ' + hi);
    }
    array[ai] = n1 * 16 + n2;
  }
  return array;
}
function utf8ToBytes2(str2) {
  if (typeof str2 !== "string")
    throw new Error("string expected");
  return new Uint8Array(new TextEncoder().encode(str2));
}
function toBytes2(data) {
  if (typeof data === "string")
    data = utf8ToBytes2(data);
  abytes2(data);
  return data;
}
function concatBytes(...arrays) {
  let sum = 0;
  for (let i = 0; i < arrays.length; i++) {
    const a = arrays[i];
    abytes2(a);
    sum += a.length;
  }
  const res = new Uint8Array(sum);
  for (let i = 0, pad = 0; i < arrays.length; i++) {
    const a = arrays[i];
    res.set(a, pad);
    pad += a.length;
  }
  return res;
}
var Hash2 = class {
};
function createHasher(hashCons) {
  const hashC = (msg) => hashCons().update(toBytes2(msg)).digest();
  const tmp = hashCons();
  hashC.outputLen = tmp.outputLen;
  hashC.blockLen = tmp.blockLen;
  hashC.create = () => hashCons();
  return hashC;
}
function randomBytes(bytesLength = 32) {
  if (crypto && typeof crypto.getRandomValues === "function") {
    return crypto.getRandomValues(new Uint8Array(bytesLength));
  }
  if (crypto && typeof crypto.randomBytes === "function") {
    return Uint8Array.from(crypto.randomBytes(bytesLength));
  }
  throw new Error("crypto.getRandomValues must be defined");
}

// ../client/node_modules/@noble/hashes/esm/_md.js
function setBigUint642(view, byteOffset, value2, isLE2) {
  if (typeof view.setBigUint64 === "function")
    return view.setBigUint64(byteOffset, value2, isLE2);
  const _32n = BigInt(32);
  const _u32_max = BigInt(4294967295);
  const wh = Number(value2 >> _32n & _u32_max);
  const wl = Number(value2 & _u32_max);
  const h2 = isLE2 ? 4 : 0;
  const l = isLE2 ? 0 : 4;
  view.setUint32(byteOffset + h2, wh, isLE2);
  view.setUint32(byteOffset + l, wl, isLE2);
}
function Chi(a, b, c) {
  return a & b ^ ~a & c;
}
function Maj(a, b, c) {
  return a & b ^ a & c ^ b & c;
}
var HashMD = class extends Hash2 {
  constructor(blockLen, outputLen, padOffset, isLE2) {
    super();
    this.finished = false;
    this.length = 0;
    this.pos = 0;
    this.destroyed = false;
    this.blockLen = blockLen;
    this.outputLen = outputLen;
    this.padOffset = padOffset;
    this.isLE = isLE2;
    this.buffer = new Uint8Array(blockLen);
    this.view = createView2(this.buffer);
  }
  update(data) {
    aexists2(this);
    data = toBytes2(data);
    abytes2(data);
    const { view, buffer, blockLen } = this;
    const len = data.length;
    for (let pos = 0; pos < len; ) {
      const take = Math.min(blockLen - this.pos, len - pos);
      if (take === blockLen) {
        const dataView = createView2(data);
        for (; blockLen <= len - pos; pos += blockLen)
          this.process(dataView, pos);
        continue;
      }
      buffer.set(data.subarray(pos, pos + take), this.pos);
      this.pos += take;
      pos += take;
      if (this.pos === blockLen) {
        this.process(view, 0);
        this.pos = 0;
      }
    }
    this.length += data.length;
    this.roundClean();
    return this;
  }
  digestInto(out) {
    aexists2(this);
    aoutput2(out, this);
    this.finished = true;
    const { buffer, view, blockLen, isLE: isLE2 } = this;
    let { pos } = this;
    buffer[pos++] = 128;
    clean2(this.buffer.subarray(pos));
    if (this.padOffset > blockLen - pos) {
      this.process(view, 0);
      pos = 0;
    }
    for (let i = pos; i < blockLen; i++)
      buffer[i] = 0;
    setBigUint642(view, blockLen - 8, BigInt(this.length * 8), isLE2);
    this.process(view, 0);
    const oview = createView2(out);
    const len = this.outputLen;
    if (len % 4)
      throw new Error("_sha2: outputLen should be aligned to 32bit");
    const outLen = len / 4;
    const state = this.get();
    if (outLen > state.length)
      throw new Error("_sha2: outputLen bigger than state");
    for (let i = 0; i < outLen; i++)
      oview.setUint32(4 * i, state[i], isLE2);
  }
  digest() {
    const { buffer, outputLen } = this;
    this.digestInto(buffer);
    const res = buffer.slice(0, outputLen);
    this.destroy();
    return res;
  }
  _cloneInto(to) {
    to || (to = new this.constructor());
    to.set(...this.get());
    const { blockLen, buffer, length, finished, destroyed, pos } = this;
    to.destroyed = destroyed;
    to.finished = finished;
    to.length = length;
    to.pos = pos;
    if (length % blockLen)
      to.buffer.set(buffer);
    return to;
  }
  clone() {
    return this._cloneInto();
  }
};
var SHA256_IV = /* @__PURE__ */ Uint32Array.from([
  1779033703,
  3144134277,
  1013904242,
  2773480762,
  1359893119,
  2600822924,
  528734635,
  1541459225
]);

// ../client/node_modules/@noble/hashes/esm/sha2.js
var SHA256_K = /* @__PURE__ */ Uint32Array.from([
  1116352408,
  1899447441,
  3049323471,
  3921009573,
  961987163,
  1508970993,
  2453635748,
  2870763221,
  3624381080,
  310598401,
  607225278,
  1426881987,
  1925078388,
  2162078206,
  2614888103,
  3248222580,
  3835390401,
  4022224774,
  264347078,
  604807628,
  770255983,
  1249150122,
  1555081692,
  1996064986,
  2554220882,
  2821834349,
  2952996808,
  3210313671,
  3336571891,
  3584528711,
  113926993,
  338241895,
  666307205,
  773529912,
  1294757372,
  1396182291,
  1695183700,
  1986661051,
  2177026350,
  2456956037,
  2730485921,
  2820302411,
  3259730800,
  3345764771,
  3516065817,
  3600352804,
  4094571909,
  275423344,
  430227734,
  506948616,
  659060556,
  883997877,
  958139571,
  1322822218,
  1537002063,
  1747873779,
  1955562222,
  2024104815,
  2227730452,
  2361852424,
  2428436474,
  2756734187,
  3204031479,
  3329325298
]);
var SHA256_W = /* @__PURE__ */ new Uint32Array(64);
var SHA256 = class extends HashMD {
  constructor(outputLen = 32) {
    super(64, outputLen, 8, false);
    this.A = SHA256_IV[0] | 0;
    this.B = SHA256_IV[1] | 0;
    this.C = SHA256_IV[2] | 0;
    this.D = SHA256_IV[3] | 0;
    this.E = SHA256_IV[4] | 0;
    this.F = SHA256_IV[5] | 0;
    this.G = SHA256_IV[6] | 0;
    this.H = SHA256_IV[7] | 0;
  }
  get() {
    const { A, B, C, D, E, F, G, H } = this;
    return [A, B, C, D, E, F, G, H];
  }
  // prettier-ignore
  set(A, B, C, D, E, F, G, H) {
    this.A = A | 0;
    this.B = B | 0;
    this.C = C | 0;
    this.D = D | 0;
    this.E = E | 0;
    this.F = F | 0;
    this.G = G | 0;
    this.H = H | 0;
  }
  process(view, offset) {
    for (let i = 0; i < 16; i++, offset += 4)
      SHA256_W[i] = view.getUint32(offset, false);
    for (let i = 16; i < 64; i++) {
      const W15 = SHA256_W[i - 15];
      const W2 = SHA256_W[i - 2];
      const s0 = rotr(W15, 7) ^ rotr(W15, 18) ^ W15 >>> 3;
      const s1 = rotr(W2, 17) ^ rotr(W2, 19) ^ W2 >>> 10;
      SHA256_W[i] = s1 + SHA256_W[i - 7] + s0 + SHA256_W[i - 16] | 0;
    }
    let { A, B, C, D, E, F, G, H } = this;
    for (let i = 0; i < 64; i++) {
      const sigma1 = rotr(E, 6) ^ rotr(E, 11) ^ rotr(E, 25);
      const T1 = H + sigma1 + Chi(E, F, G) + SHA256_K[i] + SHA256_W[i] | 0;
      const sigma0 = rotr(A, 2) ^ rotr(A, 13) ^ rotr(A, 22);
      const T2 = sigma0 + Maj(A, B, C) | 0;
      H = G;
      G = F;
      F = E;
      E = D + T1 | 0;
      D = C;
      C = B;
      B = A;
      A = T1 + T2 | 0;
    }
    A = A + this.A | 0;
    B = B + this.B | 0;
    C = C + this.C | 0;
    D = D + this.D | 0;
    E = E + this.E | 0;
    F = F + this.F | 0;
    G = G + this.G | 0;
    H = H + this.H | 0;
    this.set(A, B, C, D, E, F, G, H);
  }
  roundClean() {
    clean2(SHA256_W);
  }
  destroy() {
    this.set(0, 0, 0, 0, 0, 0, 0, 0);
    clean2(this.buffer);
  }
};
var sha256 = /* @__PURE__ */ createHasher(() => new SHA256());

// ../client/src/sealed.ts
var SealError = class _SealError extends Error {
  kind;
  /** The key epoch concerned (`tampered`, `no_key`). */
  keyEpoch;
  constructor(kind, message, keyEpoch) {
    super(message);
    this.name = "SealError";
    this.kind = kind;
    this.keyEpoch = keyEpoch;
  }
  /** @internal */
  static tampered(what2, keyEpoch) {
    return new _SealError("tampered", `could not decrypt ${what2}: wrong key for key epoch ${keyEpoch}, or the payload was tampered with`, keyEpoch);
  }
  /** @internal */
  static noKey(keyEpoch) {
    return new _SealError("no_key", `no key for key epoch ${keyEpoch}: add it with addKey`, keyEpoch);
  }
  /** @internal */
  static malformed(message) {
    return new _SealError("malformed", message);
  }
  /** @internal */
  static chain(message) {
    return new _SealError("chain", `the session's history does not add up: ${message}`);
  }
};
var STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
var URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
function lookup(alphabet) {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
}
var STD_LOOKUP = lookup(STD);
var URL_LOOKUP = lookup(URL_SAFE);
function encode(bytes, alphabet, pad) {
  let out = "";
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const n = bytes[i] << 16 | bytes[i + 1] << 8 | bytes[i + 2];
    out += alphabet[n >> 18] + alphabet[n >> 12 & 63] + alphabet[n >> 6 & 63] + alphabet[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += alphabet[n >> 18] + alphabet[n >> 12 & 63] + (pad ? "==" : "");
  } else if (rest === 2) {
    const n = bytes[i] << 16 | bytes[i + 1] << 8;
    out += alphabet[n >> 18] + alphabet[n >> 12 & 63] + alphabet[n >> 6 & 63] + (pad ? "=" : "");
  }
  return out;
}
function decodeNoPad(text2, table) {
  const len = text2.length;
  if (len % 4 === 1) return null;
  const out = new Uint8Array(Math.floor(len * 3 / 4));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < len; i++) {
    const c = text2.charCodeAt(i);
    const v = c < 128 ? table[c] : -1;
    if (v < 0) return null;
    acc = (acc << 6 | v) & 16777215;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = acc >> bits & 255;
    }
  }
  if (bits > 0 && (acc & (1 << bits) - 1) !== 0) return null;
  return out;
}
function toBase64(bytes) {
  return encode(bytes, STD, true);
}
function fromBase64(text2) {
  if (text2.length % 4 !== 0) return null;
  let pad = 0;
  while (pad < text2.length && pad < 3 && text2.charCodeAt(text2.length - 1 - pad) === 61) pad++;
  if (pad > 2) return null;
  return decodeNoPad(text2.slice(0, text2.length - pad), STD_LOOKUP);
}
var MAX_SEALED_LEN = 16 * 1024 * 1024;
var SessionKey = class _SessionKey {
  #bytes;
  constructor(bytes) {
    this.#bytes = bytes;
  }
  /** A fresh random key (from `crypto.getRandomValues`). */
  static generate() {
    return new _SessionKey(randomBytes(32));
  }
  /** A key from its 32 bytes (copied); throws a `malformed` {@link SealError} for another length. */
  static fromBytes(bytes) {
    if (bytes.length !== 32) throw SealError.malformed(`a session key is 32 bytes, this one ${bytes.length}`);
    return new _SessionKey(Uint8Array.from(bytes));
  }
  /**
   * The key from its base64url text (padding and the standard base64 alphabet are accepted too;
   * surrounding whitespace is ignored). Throws a `malformed` {@link SealError}.
   */
  static parse(text2) {
    const t = text2.trim().replace(/=+$/, "");
    const bytes = decodeNoPad(t, URL_LOOKUP) ?? decodeNoPad(t, STD_LOOKUP);
    if (bytes === null) throw SealError.malformed("a session key is base64url text");
    return _SessionKey.fromBytes(bytes);
  }
  /** The key as 43 characters of unpadded base64url. */
  toText() {
    return encode(this.#bytes, URL_SAFE, false);
  }
  /** Whether `other` is the same key. */
  equals(other) {
    const a = this.#bytes;
    const b = other.#bytes;
    let d = 0;
    for (let i = 0; i < 32; i++) d |= a[i] ^ b[i];
    return d === 0;
  }
  /** `SessionKey(…)`: never the key. */
  toString() {
    return "SessionKey(…)";
  }
  /** `"SessionKey(…)"` in JSON: never the key. */
  toJSON() {
    return "SessionKey(…)";
  }
  /** @internal */
  get bytes() {
    return this.#bytes;
  }
};
var Keyring = class _Keyring {
  keys = /* @__PURE__ */ new Map();
  /** A keyring of `key` for epoch 0, or an empty one. */
  constructor(key) {
    if (key !== void 0) this.keys.set(0, key);
  }
  /** `KEY` or `EPOCH:KEY,EPOCH:KEY…`; throws a `malformed` {@link SealError}. */
  static parse(text2) {
    const ring = new _Keyring();
    for (const raw of text2.split(",")) {
      const part = raw.trim();
      if (part === "") continue;
      const colon = part.indexOf(":");
      let epoch = 0;
      let key = part;
      if (colon >= 0) {
        const e = part.slice(0, colon);
        epoch = /^[0-9]+$/.test(e) ? Number(e) : NaN;
        if (!Number.isSafeInteger(epoch)) throw SealError.malformed(`bad key epoch ${JSON.stringify(e)}`);
        key = part.slice(colon + 1);
      }
      ring.keys.set(epoch, SessionKey.parse(key));
    }
    if (ring.keys.size === 0) throw SealError.malformed("no session key given");
    return ring;
  }
  /** Adds (or replaces) the key of `epoch`. */
  add(epoch, key) {
    this.keys.set(epoch, key);
  }
  /** The key of `epoch`, if held. */
  get(epoch) {
    return this.keys.get(epoch);
  }
  /** Takes every key of `other` (its keys win for epochs both have). */
  merge(other) {
    for (const [e, k] of other.keys) this.keys.set(e, k);
  }
  /** The newest key epoch held, or null for an empty keyring. */
  newest() {
    const e = this.epochs();
    return e.length === 0 ? null : e[e.length - 1];
  }
  /** The epochs held, oldest first. */
  epochs() {
    return [...this.keys.keys()].sort((a, b) => a - b);
  }
  /** The keys as text, oldest epoch first (`EPOCH:KEY,…`). */
  toText() {
    return this.epochs().map((e) => `${e}:${this.keys.get(e).toText()}`).join(",");
  }
  /** A copy. */
  clone() {
    const r = new _Keyring();
    r.merge(this);
    return r;
  }
};
function toKeyring(keys) {
  if (keys instanceof Keyring) return keys.clone();
  if (keys instanceof SessionKey) return new Keyring(keys);
  return Keyring.parse(keys);
}
var GENESIS_CHAIN = new Uint8Array(32);
var utf8 = new TextEncoder();
function u64be(n) {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a u64: ${n}`);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}
function check32(chain) {
  if (chain.length !== 32) throw new RangeError(`a chain value is 32 bytes, this one ${chain.length}`);
  return chain;
}
function associatedData(kind, session, version, keyEpoch, chain) {
  const s = utf8.encode(session);
  return concatBytes(utf8.encode("montage.e2e.v1\0"), utf8.encode(kind), new Uint8Array([0]), u64be(s.length), s, u64be(version), u64be(keyEpoch), check32(chain));
}
function chainNext(prev, version, keyEpoch, data) {
  return sha256(concatBytes(utf8.encode("montage.chain.v1"), check32(prev), u64be(version), u64be(keyEpoch), utf8.encode(data)));
}
function chainHex(chain) {
  return bytesToHex(chain);
}
function parseChain(hex) {
  return /^[0-9a-fA-F]{64}$/.test(hex) ? hexToBytes(hex) : null;
}
function adOf(to) {
  return associatedData(to.kind, to.session, to.version, to.keyEpoch, to.chain);
}
function what(to) {
  if (to.kind === "comment" || to.kind === "asset") return `${to.kind === "asset" ? "an asset" : "a comment"} of session ${to.session}`;
  return `${to.kind} ${to.version} of session ${to.session}`;
}
var NONCE = 24;
var TAG = 16;
function plainBytes(plaintext) {
  return typeof plaintext === "string" ? utf8.encode(plaintext) : plaintext;
}
function seal(key, to, plaintext) {
  return sealWithNonce(key, to, plaintext, randomBytes(NONCE));
}
function sealWithNonce(key, to, plaintext, nonce) {
  if (nonce.length !== NONCE) throw new RangeError(`a nonce is ${NONCE} bytes`);
  const ad = adOf(to);
  const ct = xchacha20poly1305(key.bytes, nonce, ad).encrypt(plainBytes(plaintext));
  return toBase64(concatBytes(nonce, ct));
}
function open(key, to, data) {
  const bytes = fromBase64(data);
  if (bytes === null) throw SealError.malformed(`${what(to)} is not base64`);
  if (bytes.length < NONCE + TAG) throw SealError.malformed(`${what(to)} is too short`);
  const ad = adOf(to);
  try {
    return xchacha20poly1305(key.bytes, bytes.subarray(0, NONCE), ad).decrypt(bytes.subarray(NONCE));
  } catch {
    throw SealError.tampered(what(to), to.keyEpoch);
  }
}
var COMMENT_PREFIX = "e2e1:";
function commentBinding(session, epoch) {
  return { kind: "comment", session, version: 0, keyEpoch: epoch, chain: GENESIS_CHAIN };
}
function sealComment(keys, epoch, session, body) {
  const key = keys.get(epoch);
  if (key === void 0) throw SealError.noKey(epoch);
  const plain = { content: body.content };
  if (body.annotations !== void 0 && body.annotations.length > 0) plain.annotations = body.annotations;
  return `${COMMENT_PREFIX}${epoch}:${seal(key, commentBinding(session, epoch), JSON.stringify(plain))}`;
}
function openComment(keys, session, content) {
  if (!content.startsWith(COMMENT_PREFIX)) return null;
  const rest = content.slice(COMMENT_PREFIX.length);
  const colon = rest.indexOf(":");
  if (colon < 0 || !/^[0-9]+$/.test(rest.slice(0, colon))) return null;
  const epoch = Number(rest.slice(0, colon));
  const key = keys.get(epoch);
  if (key === void 0) throw SealError.noKey(epoch);
  const plain = open(key, commentBinding(session, epoch), rest.slice(colon + 1));
  let body;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
  } catch (e) {
    throw SealError.malformed(`a comment opened to nothing readable: ${e.message}`);
  }
  const b = body;
  if (typeof body !== "object" || body === null || typeof b.content !== "string") {
    throw SealError.malformed("a comment opened to nothing readable: no content");
  }
  return { content: b.content, annotations: Array.isArray(b.annotations) ? b.annotations : [] };
}
var ASSET_MAGIC = "MTGSEAL1";
var ASSET_MAGIC_BYTES = utf8.encode(ASSET_MAGIC);
var ASSET_HEADER_LEN = 16;
var ASSET_MIN_LEN = ASSET_HEADER_LEN + NONCE + TAG;
function assetBinding(session, epoch) {
  return { kind: "asset", session, version: 0, keyEpoch: epoch, chain: GENESIS_CHAIN };
}
function sealAsset(keys, epoch, session, file) {
  return sealAssetWithNonce(keys, epoch, session, file, randomBytes(NONCE));
}
function sealAssetWithNonce(keys, epoch, session, file, nonce) {
  if (nonce.length !== NONCE) throw new RangeError(`a nonce is ${NONCE} bytes`);
  const key = keys.get(epoch);
  if (key === void 0) throw SealError.noKey(epoch);
  const to = assetBinding(session, epoch);
  const ad = adOf(to);
  const out = new Uint8Array(ASSET_HEADER_LEN + NONCE + file.length + TAG);
  out.set(ASSET_MAGIC_BYTES, 0);
  out.set(u64be(epoch), ASSET_MAGIC_BYTES.length);
  out.set(nonce, ASSET_HEADER_LEN);
  xchacha20poly1305(key.bytes, nonce, ad).encrypt(file, out.subarray(ASSET_HEADER_LEN + NONCE));
  return out;
}
function assetEpoch(bytes) {
  if (bytes.length < ASSET_MIN_LEN) return null;
  for (let i = 0; i < ASSET_MAGIC_BYTES.length; i++) if (bytes[i] !== ASSET_MAGIC_BYTES[i]) return null;
  const epoch = new DataView(bytes.buffer, bytes.byteOffset + ASSET_MAGIC_BYTES.length, 8).getBigUint64(0);
  return epoch <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(epoch) : null;
}
function openAsset(keys, session, sealed) {
  if (sealed.length < ASSET_MIN_LEN) {
    throw SealError.malformed(`an asset of session ${session} is too short to be sealed (${sealed.length} bytes, at least ${ASSET_MIN_LEN})`);
  }
  const epoch = assetEpoch(sealed);
  if (epoch === null) throw SealError.malformed(`an asset of session ${session} is not sealed: it does not start with ${ASSET_MAGIC} and a key epoch`);
  const key = keys.get(epoch);
  if (key === void 0) throw SealError.noKey(epoch);
  const to = assetBinding(session, epoch);
  const ad = adOf(to);
  const file = new Uint8Array(sealed.length - ASSET_MIN_LEN);
  try {
    xchacha20poly1305(key.bytes, sealed.subarray(ASSET_HEADER_LEN, ASSET_HEADER_LEN + NONCE), ad).decrypt(sealed.subarray(ASSET_HEADER_LEN + NONCE), file);
    return file;
  } catch {
    throw SealError.tampered(what(to), epoch);
  }
}
var CHAINS_KEPT = 4096;
var E2eState = class {
  keys;
  /** The key epoch the server takes now (from `joined` and `key_rotated`). */
  keyEpoch = 0;
  /** The newest snapshot stored for the session, as far as this client knows. */
  snapshotVersion = 0;
  /** `[version, chain value]`, oldest first, versions rising. */
  chains = [[0, GENESIS_CHAIN]];
  constructor(keys) {
    this.keys = keys;
  }
  chainAt(version) {
    for (let i = this.chains.length - 1; i >= 0; i--) {
      const [v, c] = this.chains[i];
      if (v === version) return c;
      if (v < version) return null;
    }
    return null;
  }
  /** Records the chain value of `version`; a lower version than the newest starts over (a reset
   * from a snapshot). */
  record(version, chain) {
    while (this.chains.length > 0 && this.chains[this.chains.length - 1][0] >= version) this.chains.pop();
    this.chains.push([version, chain]);
    if (this.chains.length > CHAINS_KEPT) this.chains.splice(0, this.chains.length - CHAINS_KEPT);
  }
  key(epoch) {
    const k = this.keys.get(epoch);
    if (k === void 0) throw SealError.noKey(epoch);
    return k;
  }
  /** Checks and opens the sealed edit of `version`: its chain value follows the previous
   * version's and is the one the server claims; records it. */
  openEdit(session, version, keyEpoch, data, claimed) {
    const { prev, next } = this.nextChain(version, keyEpoch, data, claimed, false);
    const plain = open(this.key(keyEpoch), { kind: "op", session, version, keyEpoch, chain: prev }, data);
    this.record(version, next);
    return plain;
  }
  /** My own edit, acked as `version`: its chain value, checked against the server's. */
  acked(version, keyEpoch, data, claimed) {
    if (this.chainAt(version) !== null) return;
    this.record(version, this.nextChain(version, keyEpoch, data, claimed, true).next);
  }
  /** The chain values before and at `version` (the Rust `E2e::next_chain`): the one before must
   * be known, and the one the payload makes must be the server's claim. */
  nextChain(version, keyEpoch, data, claimed, mine) {
    const prev = this.chainAt(version - 1);
    if (prev === null) throw SealError.chain(`version ${version} ${mine ? "acked" : "arrived"} without version ${version - 1} before it`);
    const next = chainNext(prev, version, keyEpoch, data);
    if (claimed !== void 0 && claimed !== chainHex(next)) {
      throw SealError.chain(
        mine ? `the server acked version ${version} with a chain value my edit does not make: the stream was changed` : `the server's chain value for version ${version} is not the one its payloads make: the stream was changed`
      );
    }
    return { prev, next };
  }
  /** Seals `plain` as `kind` bound to `version` and the chain value of `chainOf`, under the
   * current key epoch (the Rust `E2e::seal_now`). */
  sealNow(kind, session, version, chainOf, plain) {
    const chain = this.chainAt(chainOf);
    if (chain === null) throw SealError.chain(`the chain value of version ${chainOf} is not known here`);
    const keyEpoch = this.keyEpoch;
    return { data: seal(this.key(keyEpoch), { kind, session, version, keyEpoch, chain }, plain), keyEpoch };
  }
  /** Seals an edit made on `base` (it becomes `base + 1`) under the current key epoch. */
  sealEdit(session, base, plain) {
    return this.sealNow("op", session, base + 1, base, plain);
  }
  /** Opens a stored snapshot and starts the chain over from it (its chain value is bound into
   * its associated data, so only a key holder can have made the pair). */
  openSnapshot(session, snap2) {
    const chain = parseChain(snap2.chain);
    if (chain === null) throw SealError.malformed("a snapshot's chain value is not hex");
    const plain = open(this.key(snap2.keyEpoch), { kind: "snapshot", session, version: snap2.version, keyEpoch: snap2.keyEpoch, chain }, snap2.data);
    this.record(snap2.version, chain);
    this.snapshotVersion = Math.max(this.snapshotVersion, snap2.version);
    return plain;
  }
  /** Seals the document at `version` as a snapshot, if that version's chain value is known. */
  sealSnapshot(session, version, plain) {
    return this.sealNow("snapshot", session, version, version, plain);
  }
};

// ../client/src/protocol.ts
var BINARY_SUBPROTOCOL = "montage.v1.proto";
var JSON_SUBPROTOCOL = "montage.v1.json";
function tierForMbps(mbps) {
  if (mbps > 50) return "excellent";
  if (mbps >= 10) return "good";
  if (mbps >= 5) return "fair";
  return "poor";
}
function readNotification(v) {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
  const n = v;
  if (typeof n["id"] !== "string" || typeof n["kind"] !== "string" || typeof n["session"] !== "string") return null;
  const out = {
    ...n,
    id: n["id"],
    kind: n["kind"],
    session: n["session"],
    actor: typeof n["actor"] === "string" ? n["actor"] : "",
    time: typeof n["time"] === "number" ? n["time"] : 0,
    read: n["read"] === true,
    count: typeof n["count"] === "number" ? n["count"] : 1
  };
  return out;
}
var ServerError = class extends Error {
  code;
  retryAfterMs;
  constructor(code, message, retryAfterMs) {
    super(message);
    this.name = "ServerError";
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
};
var CLOSE_UNAUTHORIZED = 4401;
var AuthError = class extends Error {
  code = "unauthorized";
  reason;
  closeCode;
  constructor(reason, closeCode = CLOSE_UNAUTHORIZED) {
    super(`unauthorized: ${reason || "the server refused the token"}`);
    this.name = "AuthError";
    this.reason = reason;
    this.closeCode = closeCode;
  }
};

// ../client/src/access.ts
var RANK = { none: -1, viewer: 0, commenter: 1, editor: 2, owner: 3 };
function roleAtLeast(role2, need) {
  return (RANK[role2 ?? ""] ?? -1) >= RANK[need];
}
var AccessError = class extends Error {
  session;
  reason;
  /** The server's error code: `forbidden` or `not_found`. */
  code;
  constructor(session, reason, message) {
    super(message);
    this.name = "AccessError";
    this.session = session;
    this.reason = reason;
    this.code = reason === "not_found" || reason === "deleted" ? "not_found" : "forbidden";
  }
  /** Can access come back without a new session (the owner shares it again)? */
  get retryable() {
    return this.reason === "forbidden" || this.reason === "removed";
  }
};
function tokenSubject(token2) {
  const claims = tokenClaims(token2);
  return claims !== null && typeof claims["sub"] === "string" ? claims["sub"] : null;
}
function tokenClaims(token2) {
  const parts = token2.split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "=".repeat((4 - b64.length % 4) % 4));
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims === "object" && claims !== null && !Array.isArray(claims) ? claims : null;
  } catch {
    return null;
  }
}
var ApiError = class extends Error {
  status;
  code;
  /** From `Retry-After` or `retry_after_ms` on 429. */
  retryAfterMs;
  constructor(status, code, message, retryAfterMs) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
  /** 403 or 404: the caller can't see (or manage) that session. */
  get accessDenied() {
    return this.status === 403 || this.status === 404;
  }
};
var SessionsApi = class {
  base;
  token;
  doFetch;
  constructor(opts) {
    this.base = (opts.baseUrl ?? "").replace(/\/+$/, "");
    const t = opts.token;
    this.token = typeof t === "function" ? t : () => t;
    const g = globalThis;
    if (opts.fetch === void 0 && g.fetch === void 0) throw new Error("no global fetch here: pass the `fetch` option");
    this.doFetch = opts.fetch ?? ((url, init) => g.fetch(url, init));
  }
  /** `GET /v1/sessions`: the caller's sessions (owned or granted). */
  async list() {
    const body = await this.call("GET", "/v1/sessions", 200);
    const list2 = body?.sessions;
    if (!Array.isArray(list2)) throw badResponse("GET /v1/sessions", "no `sessions` list");
    return list2.map((s) => summary(s, "GET /v1/sessions"));
  }
  /** `POST /v1/sessions`: a new session the caller owns (private unless `link_role` says; end-to-end encrypted with `encrypted`, docs/E2E.md). */
  async create(opts = {}) {
    return info(await this.call("POST", "/v1/sessions", 201, opts), "POST /v1/sessions");
  }
  /** `PATCH /v1/sessions/{id}` (owner): opens or closes link access, renames. */
  async update(id, patch) {
    const what2 = `PATCH /v1/sessions/${id}`;
    return info(await this.call("PATCH", `/v1/sessions/${encodeURIComponent(id)}`, 200, patch), what2);
  }
  /** `DELETE /v1/sessions/{id}` (owner): the session and everything in it are gone. */
  async delete(id) {
    await this.call("DELETE", `/v1/sessions/${encodeURIComponent(id)}`, 204);
  }
  /** `GET /v1/sessions/{id}/comments`: every comment in creation order (tombstones too). */
  async comments(id) {
    return listOf(await this.call("GET", `${sessionPath(id)}/comments`, 200), "comments", `GET ${sessionPath(id)}/comments`);
  }
  /** `GET /v1/sessions/{id}/suggestions`: every suggestion in creation order. */
  async suggestions(id) {
    return listOf(await this.call("GET", `${sessionPath(id)}/suggestions`, 200), "suggestions", `GET ${sessionPath(id)}/suggestions`);
  }
  /** `GET /v1/sessions/{id}[?version=V]`: the committed head, or the document at a past version
   * still in history (viewer or above). */
  async state(id, version) {
    const q = version === void 0 ? "" : `?version=${version}`;
    const what2 = `GET ${sessionPath(id)}${q}`;
    const b = await this.call("GET", `${sessionPath(id)}${q}`, 200);
    if (typeof b?.version !== "number" || typeof b.state !== "object" || b.state === null) throw badResponse(what2, "no version and state");
    return { version: b.version, state: b.state };
  }
  /** `GET /v1/sessions/{id}/versions`: checkpoints and named versions below `before` (all by
   * default), newest first, at most `limit` (≤ 200). */
  async versions(id, opts = {}) {
    const q = new URLSearchParams();
    if (opts.before !== void 0) q.set("before", String(opts.before));
    if (opts.limit !== void 0) q.set("limit", String(opts.limit));
    const path = `${sessionPath(id)}/versions${q.size > 0 ? `?${q}` : ""}`;
    return listOf(await this.call("GET", path, 200), "versions", `GET ${path}`);
  }
  /** `POST /v1/sessions/{id}/versions` (editor or above): names a version ("sent to client"). */
  async nameVersion(id, version, name) {
    await this.call("POST", `${sessionPath(id)}/versions`, 201, { version, name });
  }
  /**
   * `POST /v1/sessions/{id}/restore` (editor or above): one edit of the caller's that turns the
   * head into `version`'s state — or, with `id`, brings back only that layer, track or clip.
   * Resolves to the new version once it is durable; every open session sees it as an `op`.
   */
  async restore(id, version, opts = {}) {
    const body = opts.id === void 0 ? { version } : { version, id: opts.id };
    const b = await this.call("POST", `${sessionPath(id)}/restore`, 200, body);
    if (typeof b?.version !== "number") throw badResponse(`POST ${sessionPath(id)}/restore`, "no version");
    return b.version;
  }
  /**
   * `GET /v1/notifications`: the caller's inbox, newest first, at most `limit` (≤ 100, the
   * default); `unread` keeps unread items only; `before` (ms) pages on with the last item's
   * `time`. A token scoped to some sessions sees only their items.
   */
  async notifications(opts = {}) {
    const q = new URLSearchParams();
    if (opts.unread === true) q.set("unread", "true");
    if (opts.before !== void 0) q.set("before", String(opts.before));
    if (opts.limit !== void 0) q.set("limit", String(opts.limit));
    const path = `/v1/notifications${q.size > 0 ? `?${q}` : ""}`;
    return listOf(await this.call("GET", path, 200), "notifications", `GET ${path}`).map((v) => {
      const n = readNotification(v);
      if (n === null) throw badResponse(`GET ${path}`, "a notification without an id, kind or session");
      return n;
    });
  }
  /** `POST /v1/notifications/read`: marks the caller's items `ids` (≤ 1,000), or `"all"` of
   * them, read; resolves to how many were unread before. */
  async markRead(ids2) {
    const body = ids2 === "all" ? { all: true } : { ids: [...ids2] };
    const b = await this.call("POST", "/v1/notifications/read", 200, body);
    if (typeof b?.marked !== "number") throw badResponse("POST /v1/notifications/read", "no `marked` count");
    return b.marked;
  }
  /** `GET /v1/users/{id}/recognition`: `user`'s badges and awards in the sessions the caller
   * may view. */
  async recognition(user) {
    const path = `/v1/users/${encodeURIComponent(user)}/recognition`;
    const b = await this.call("GET", path, 200);
    if (!Array.isArray(b?.badges) || !Array.isArray(b.awards)) throw badResponse(`GET ${path}`, "no badges and awards");
    return { user: typeof b.user === "string" ? b.user : user, badges: b.badges, awards: b.awards };
  }
  /** `GET /v1/showcase`: featured creators and spotlighted projects, newest first, at most
   * `limit` (≤ 200, 50 by default); `before` (ms) pages on with the last entry's `at`. */
  async showcase(opts = {}) {
    const q = new URLSearchParams();
    if (opts.before !== void 0) q.set("before", String(opts.before));
    if (opts.limit !== void 0) q.set("limit", String(opts.limit));
    const path = `/v1/showcase${q.size > 0 ? `?${q}` : ""}`;
    return listOf(await this.call("GET", path, 200), "showcase", `GET ${path}`);
  }
  /** `POST /v1/sessions/{id}/invites` (editor or above): a link giving `role` (at most
   * `commenter` unless bound to a user with `for`). */
  async createInvite(id, opts) {
    return await this.call("POST", `${sessionPath(id)}/invites`, 201, opts);
  }
  /** `GET /v1/sessions/{id}/invites` (editor or above). */
  async invites(id) {
    return listOf(await this.call("GET", `${sessionPath(id)}/invites`, 200), "invites", `GET ${sessionPath(id)}/invites`);
  }
  /** `GET /v1/invites/{id}`: what an invite gives (the id is the secret). */
  async invite(inviteId) {
    return await this.call("GET", `/v1/invites/${encodeURIComponent(inviteId)}`, 200);
  }
  /** `POST /v1/invites/{id}/accept`: the session and the role the caller holds now. */
  async acceptInvite(inviteId) {
    return await this.call("POST", `/v1/invites/${encodeURIComponent(inviteId)}/accept`, 200);
  }
  /** `DELETE /v1/invites/{id}` (its creator or an owner). */
  async revokeInvite(inviteId) {
    await this.call("DELETE", `/v1/invites/${encodeURIComponent(inviteId)}`, 200);
  }
  /**
   * `POST /v1/assets[?session=S]`: stores an image (PNG, JPEG, WebP), video or audio file; its
   * kind is read from the bytes. With `session` the caller must be an editor there.
   */
  async uploadAsset(body, opts = {}) {
    const q = opts.session === void 0 ? "" : `?session=${encodeURIComponent(opts.session)}`;
    const a = await this.call("POST", `/v1/assets${q}`, 201, body);
    if (typeof a !== "object" || a === null || typeof a["id"] !== "string") throw badResponse("POST /v1/assets", "no asset id in the answer");
    return a;
  }
  /**
   * Seals `file` for the encrypted session `session` under `keys`' key of `epoch` (the session's
   * current key epoch: {@link sealAsset}) and uploads the sealed bytes (`POST
   * /v1/assets?session=S`). The answer is `kind` `"sealed"` without dimensions. Throws a
   * `no_key` `SealError` without that key; the server refuses (`ApiError`) an epoch that is not
   * the session's: `conflict` for a retired one.
   */
  async uploadSealedAsset(session, keys, epoch, file) {
    return this.uploadAsset(sealAsset(keys, epoch, session, await bytesOf(file)), { session });
  }
  /** `GET /v1/assets/{id}`: the asset's bytes as stored (an encrypted session's come sealed:
   * {@link SessionsApi.openSealedAsset}). */
  async asset(id) {
    const path = `/v1/assets/${encodeURIComponent(id)}`;
    const r = await this.doFetch(this.base + path, { method: "GET", headers: { Authorization: `Bearer ${await this.token()}` } });
    if (!r.ok) throw errorOf(r.status, await r.text(), r.headers.get("retry-after"));
    if (r.status !== 200) throw new ApiError(r.status, "bad_response", `GET ${path}: status ${r.status}, expected 200`);
    if (r.arrayBuffer === void 0) throw new Error("the `fetch` given answers no arrayBuffer(): asset bytes can't be read with it");
    return new Uint8Array(await r.arrayBuffer());
  }
  /**
   * An encrypted session's asset, fetched ({@link SessionsApi.asset}) and opened with `keys`
   * ({@link openAsset}): the file as it was uploaded. Throws an `ApiError` if the server refuses,
   * a `SealError` if the bytes don't open (`no_key`, `tampered`, or `malformed`: not sealed).
   */
  async openSealedAsset(id, session, keys) {
    return openAsset(keys, session, await this.asset(id));
  }
  async call(method, path, want, body) {
    const headers = { Authorization: `Bearer ${await this.token()}` };
    const init = { method, headers };
    if (body instanceof ArrayBuffer || body instanceof Uint8Array || typeof Blob !== "undefined" && body instanceof Blob) {
      headers["Content-Type"] = "application/octet-stream";
      init.body = body;
    } else if (body !== void 0) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await this.doFetch(this.base + path, init);
    const text2 = await r.text();
    if (!r.ok) throw errorOf(r.status, text2, r.headers.get("retry-after"));
    if (r.status !== want && !(want === 204 && r.status === 200)) {
      throw new ApiError(r.status, "bad_response", `${method} ${path}: status ${r.status}, expected ${want}`);
    }
    if (want === 204 || text2 === "") return null;
    try {
      return JSON.parse(text2);
    } catch {
      throw badResponse(`${method} ${path}`, "the answer is not JSON");
    }
  }
};
async function bytesOf(file) {
  if (file instanceof Uint8Array) return file;
  if (file instanceof ArrayBuffer) return new Uint8Array(file);
  return new Uint8Array(await file.arrayBuffer());
}
function sessionPath(id) {
  return `/v1/sessions/${encodeURIComponent(id)}`;
}
function listOf(body, key, what2) {
  const list2 = body?.[key];
  if (!Array.isArray(list2)) throw badResponse(what2, `no \`${key}\` list`);
  return list2;
}
function errorOf(status, text2, retryAfter) {
  let code = status === 401 ? "unauthorized" : status === 403 ? "forbidden" : status === 404 ? "not_found" : status === 429 ? "rate_limited" : "http_error";
  let message = `HTTP ${status}`;
  let retryMs;
  try {
    const j = JSON.parse(text2);
    if (typeof j.code === "string") code = j.code;
    if (typeof j.message === "string") message = j.message;
    if (typeof j.retry_after_ms === "number") retryMs = j.retry_after_ms;
  } catch {
    if (text2.trim()) message = `HTTP ${status}: ${text2.trim().slice(0, 200)}`;
  }
  if (retryMs === void 0 && retryAfter !== null && Number.isFinite(Number(retryAfter))) retryMs = Number(retryAfter) * 1e3;
  return new ApiError(status, code, message, retryMs);
}
function badResponse(what2, why2) {
  return new ApiError(200, "bad_response", `${what2}: ${why2}`);
}
function summary(v, what2) {
  const s = v;
  if (typeof s !== "object" || s === null || typeof s["id"] !== "string") throw badResponse(what2, "a session without an id");
  return {
    id: s["id"],
    title: typeof s["title"] === "string" ? s["title"] : "",
    role: String(s["role"] ?? "viewer"),
    version: Number(s["version"] ?? 0),
    updated: Number(s["updated"] ?? 0)
  };
}
function info(v, what2) {
  const s = v;
  if (typeof s !== "object" || s === null || typeof s["id"] !== "string") throw badResponse(what2, "no session id in the answer");
  return { ...s, id: s["id"], title: typeof s["title"] === "string" ? s["title"] : "", role: String(s["role"] ?? "owner") };
}

// ../client/src/download.ts
var DOWNLOAD_TRIES = 6;
var DOWNLOAD_STALL_MS = 2e4;
var LOADING_STEP = 64 * 1024;
var MAX_BACKOFF_MS = 3e4;
function stateRefOf(value2) {
  const r = value2;
  if (typeof r !== "object" || r === null) return null;
  const { bytes, sha256: sha2562 } = r;
  if (typeof bytes !== "number" || !Number.isSafeInteger(bytes) || bytes < 0) return null;
  if (typeof sha2562 !== "string" || !/^[0-9a-f]{64}$/.test(sha2562)) return null;
  return { bytes, sha256: sha2562 };
}
async function sha256Hex(bytes) {
  const subtle = globalThis.crypto?.subtle;
  if (subtle !== void 0) return bytesToHex(new Uint8Array(await subtle.digest("SHA-256", bytes)));
  return bytesToHex(sha256(bytes));
}
var DownloadError = class extends Error {
  code;
  constructor(code, message) {
    super(message);
    this.name = "DownloadError";
    this.code = code;
  }
};
var CANCELLED = "cancelled";
var StateDownload = class {
  constructor(o) {
    this.o = o;
  }
  stopped = false;
  /** Ends what the download awaits now (a request, a read, a backoff). */
  interrupt = null;
  /** Stops the download (superseded, or its socket closed): nothing more is written to `part`,
   * and `run` rejects. */
  cancel() {
    this.stopped = true;
    this.interrupt?.();
  }
  /** Downloads the rest of the state, resuming after cuts. */
  async run() {
    const { ref, part } = this.o;
    let stuck = 0;
    let most = part.have;
    for (; ; ) {
      if (this.stopped) throw new DownloadError("internal", CANCELLED);
      if (part.have === ref.bytes) return part.buf;
      const ended = await this.piece();
      if (this.stopped) throw new DownloadError("internal", CANCELLED);
      if (ended !== null && "fail" in ended) throw ended.fail;
      const why2 = ended?.cut ?? "the body ended early";
      if (part.have > most) {
        most = part.have;
        stuck = 0;
        continue;
      }
      if (++stuck >= DOWNLOAD_TRIES) throw new DownloadError("internal", `GET ${this.o.url}: ${why2} (${stuck} tries with no progress)`);
      await this.sleep(Math.min(MAX_BACKOFF_MS, Math.max(ended?.retryMs ?? 0, 200 * 2 ** stuck)));
    }
  }
  /** One request: from `part.have` to the end, or until it is cut. */
  async piece() {
    const { ref, part } = this.o;
    let token2;
    try {
      token2 = await this.o.token();
    } catch (e) {
      return { cut: `no token: ${errorMessage(e)}` };
    }
    const headers = { Authorization: `Bearer ${token2}` };
    if (part.have > 0) {
      headers["Range"] = `bytes=${part.have}-`;
      headers["If-Range"] = `"${ref.sha256}"`;
    }
    const ctl = typeof AbortController === "function" ? new AbortController() : null;
    const init = ctl === null ? { method: "GET", headers } : { method: "GET", headers, signal: ctl.signal };
    const answer = await this.wait(Promise.resolve().then(() => this.o.fetch(this.o.url, init)));
    if ("cut" in answer) {
      ctl?.abort();
      return answer;
    }
    const r = answer.ok;
    const drop = () => {
      ctl?.abort();
      try {
        r.body?.getReader().cancel().catch(() => {
        });
      } catch {
      }
    };
    switch (r.status) {
      case 206: {
        const range = r.headers.get("content-range");
        const from = range === null ? String(part.have) : /^bytes (\d+)-/.exec(range)?.[1];
        if (from === void 0 || Number(from) !== part.have) {
          drop();
          const why2 = `a range from ${from ?? "nowhere"} does not continue the ${part.have} bytes held`;
          part.have = 0;
          return { cut: why2 };
        }
        break;
      }
      case 200:
        part.have = 0;
        break;
      case 416:
        drop();
        part.have = 0;
        return { cut: "range not satisfiable" };
      default: {
        const text2 = await this.wait(r.text());
        if ("cut" in text2) ctl?.abort();
        const err = errorOf(r.status, "ok" in text2 ? text2.ok : "", r.headers.get("retry-after"));
        if (r.status === 429 || r.status >= 500) {
          return err.retryAfterMs === void 0 ? { cut: `status ${r.status}` } : { cut: `status ${r.status}`, retryMs: err.retryAfterMs };
        }
        const code = SERVER_CODES.has(err.code) ? err.code : "internal";
        return { fail: new DownloadError(code, `GET ${this.o.url}: ${err.message} (status ${r.status})`) };
      }
    }
    if (r.body) {
      const reader = r.body.getReader();
      for (; ; ) {
        const read = await this.wait(reader.read());
        if ("cut" in read) {
          ctl?.abort();
          reader.cancel().catch(() => {
          });
          return read;
        }
        if (read.ok.done) return null;
        const chunk = read.ok.value;
        if (chunk === void 0) continue;
        if (!this.take(chunk)) {
          ctl?.abort();
          reader.cancel().catch(() => {
          });
          return this.tooMany();
        }
      }
    }
    if (r.arrayBuffer === void 0) {
      return { fail: new DownloadError("internal", "the `fetch` given answers no body stream and no arrayBuffer(): a state can't be read with it") };
    }
    const all = await this.wait(r.arrayBuffer());
    if ("cut" in all) {
      ctl?.abort();
      return all;
    }
    return this.take(new Uint8Array(all.ok)) ? null : this.tooMany();
  }
  /** Appends a chunk: false (and nothing kept) past the announced size. */
  take(chunk) {
    const { ref, part } = this.o;
    if (this.stopped) return true;
    if (part.have + chunk.length > ref.bytes) {
      part.have = 0;
      return false;
    }
    part.buf.set(chunk, part.have);
    part.have += chunk.length;
    this.o.progress(part.have);
    return true;
  }
  tooMany() {
    return { fail: new DownloadError("internal", `GET ${this.o.url}: more than the ${this.o.ref.bytes} bytes announced`) };
  }
  /** `p`, or a cut when nothing comes for {@link DOWNLOAD_STALL_MS} or the download is
   * cancelled (`p` is left to settle unheard). */
  wait(p) {
    return new Promise((resolve) => {
      let done = false;
      const finish = (v) => {
        if (done) return;
        done = true;
        stop();
        this.interrupt = null;
        resolve(v);
      };
      const stop = this.o.later(() => finish({ cut: `nothing came for ${DOWNLOAD_STALL_MS / 1e3} s` }), DOWNLOAD_STALL_MS);
      this.interrupt = () => finish({ cut: CANCELLED });
      p.then(
        (ok) => finish({ ok }),
        (e) => finish({ cut: errorMessage(e) })
      );
    });
  }
  sleep(ms) {
    return new Promise((resolve) => {
      const stop = this.o.later(() => {
        this.interrupt = null;
        resolve();
      }, ms);
      this.interrupt = () => {
        stop();
        this.interrupt = null;
        resolve();
      };
    });
  }
};
var SERVER_CODES = /* @__PURE__ */ new Set(["unauthorized", "forbidden", "bad_request", "not_found", "rate_limited", "too_large", "conflict", "not_supported", "internal"]);
function errorMessage(e) {
  return e instanceof Error ? e.message : String(e);
}

// ../client/src/session.ts
function randomId() {
  const c = globalThis.crypto;
  if (c?.randomUUID) return c.randomUUID();
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}
var MontageSession = class _MontageSession {
  session;
  clientId;
  connection;
  /** @internal */
  tag;
  storage;
  handlers = /* @__PURE__ */ new Map();
  sync = null;
  state = "offline";
  /** The app wants this session joined (false after `leave`, a denial, or before `connect`). */
  wantJoined = false;
  /** Joined once (the next join names `since`). */
  joined = false;
  /** Joined on the current socket. */
  inSession = false;
  /** A `join` was sent on this socket and its answer has not come yet. */
  awaitingJoin = false;
  /** Joins sent so far (on any socket): tells a retry after a passing refusal (see `joinLater`)
   * whether its join is still the one awaited. */
  joinsSent = 0;
  /** While a resent edit awaits its ack, server edits are held here (see `onJoined`). */
  held = null;
  /** A `joined` naming a large state to download (`state_ref`), and every message of the session
   * after it, held until the state is here. */
  loading = null;
  /** The bytes of a large state downloaded so far, by its SHA-256: kept when a download is cut
   * (with its socket, or given up), so a download of the same state (the same version joined
   * again) resumes from them. */
  partial = null;
  /** Downloads failed since the session last joined (see `stateRefOk`). */
  downloadFailures = 0;
  presenceData;
  /** The last seq used, kept across resyncs: (client, seq) must never repeat. */
  seqFloor = 0;
  participantMap = /* @__PURE__ */ new Map();
  presences = /* @__PURE__ */ new Map();
  readyWaiters = [];
  requests = /* @__PURE__ */ new Map();
  ridSeq = 0;
  /** My role in the session (from `joined`, then `role_changed`). */
  role = null;
  /** The session's link role, when the server says it (`joined`, `link_role_changed`). */
  linkRole = null;
  /** The session's title from `joined`, when the server sends one. */
  title;
  /** Why the client is out of its session, while it is; null otherwise. */
  accessError = null;
  /** Why an encrypted session stopped (`undecryptable`), while it is; null otherwise. */
  sealError = null;
  /** An encrypted session's keys and chain (the `keys` option); null for a plain session. */
  e2e = null;
  /** The in-flight edit could not be sealed for want of the key of the session's epoch: it goes
   * out once `addKey` brings it. */
  keyWait = false;
  constructor(connection, session, opts = {}) {
    this.connection = connection;
    this.session = session;
    this.storage = opts.storage;
    const stored = this.loadStored();
    this.clientId = stored?.clientId ?? opts.clientId ?? randomId();
    if (opts.keys !== void 0) this.e2e = new E2eState(toKeyring(opts.keys));
    if (stored) {
      this.sync = SyncDoc.restore(stored.sync);
      this.joined = true;
      const chain = stored.chain === void 0 ? null : parseChain(stored.chain);
      if (this.e2e !== null && chain !== null) this.e2e.record(this.sync.version, chain);
    }
    this.tag = connection.nextTag();
    connection.attach(this);
    if (opts.autoJoin !== false) this.connect();
  }
  loadStored() {
    const raw = this.storage?.load();
    if (raw === null || raw === void 0) return null;
    try {
      const s = JSON.parse(raw);
      if (s.session !== this.session) return null;
      SyncDoc.restore(s.sync);
      return s;
    } catch {
      return null;
    }
  }
  /** Writes the replica to `storage`, if any. */
  persist() {
    if (this.storage === void 0 || this.sync === null) return;
    const s = { session: this.session, clientId: this.clientId, sync: this.sync.snapshot() };
    const chain = this.e2e?.chainAt(this.sync.version);
    if (chain) s.chain = chainHex(chain);
    this.storage.save(JSON.stringify(s));
  }
  // ---- state -------------------------------------------------------------------------------
  /** The local document (with my unacknowledged edits applied); null before the first join. */
  get doc() {
    return this.sync?.doc ?? null;
  }
  /** The last server version this replica has seen. */
  get version() {
    return this.sync?.version ?? 0;
  }
  /** The connection's state as this session sees it (`offline` once the session stopped). */
  get connectionState() {
    return this.state;
  }
  /** My local edits the server has not acknowledged yet. */
  get pendingCount() {
    return this.sync?.pendingCount ?? 0;
  }
  /** Everyone with access to the session (online or not), with their role. */
  get participants() {
    return [...this.participantMap.values()];
  }
  /** Latest presence data of each other user. */
  get presence() {
    return this.presences;
  }
  /** True if {@link MontageSession.undo} has an edit of mine to take back. */
  get canUndo() {
    return this.sync?.canUndo ?? false;
  }
  /** True if {@link MontageSession.redo} has an undone edit to make again. */
  get canRedo() {
    return this.sync?.canRedo ?? false;
  }
  /** The user this client acts as (the `user` option or the token's `sub`), when known. */
  get user() {
    return this.connection.user;
  }
  /** Why the connection stopped for its token, while it is `unauthorized`; null otherwise. */
  get authError() {
    return this.connection.authError;
  }
  /** Whether this is an end-to-end encrypted session (opened with the `keys` option). */
  get encrypted() {
    return this.e2e !== null;
  }
  /** The key epoch an encrypted session's server takes now (from `joined` and `key_rotated`);
   * null for a plain session. */
  get keyEpoch() {
    return this.e2e?.keyEpoch ?? null;
  }
  /** An encrypted session's keys (a copy: add keys with {@link MontageSession.addKey}); null for
   * a plain session. */
  get keys() {
    return this.e2e?.keys.clone() ?? null;
  }
  /**
   * Adds the key of an encrypted session's key epoch `epoch` (after `keyRotated`: the app hands
   * the new key to the members that stay): an edit waiting for it goes out. A key as text is
   * parsed ({@link SessionKey.parse}; throws a {@link SealError} if it is not one). Does nothing
   * in a plain session.
   */
  addKey(epoch, key) {
    if (this.e2e === null) return;
    this.e2e.keys.add(epoch, typeof key === "string" ? SessionKey.parse(key) : key);
    if (this.keyWait && this.state === "online" && this.inSession) this.sendOp();
  }
  /**
   * A comment of an encrypted session as its author wrote it: `content` and `annotations` opened
   * from the sealed `content` (e.g. of comments listed over HTTP, which come sealed). A comment that
   * is not sealed comes back as it is; one that does not open throws a {@link SealError}. The
   * comments of `commentAdded`, `commentUpdated` and the comment methods come opened already.
   */
  openComment(comment) {
    if (this.e2e === null) return comment;
    const body = openComment(this.e2e.keys, this.session, comment.content);
    if (body === null) return comment;
    return { ...comment, content: body.content, annotations: body.annotations ?? [] };
  }
  /** Resolves once the session is joined (at once if it already is); rejects with an
   * `AccessError` if the join is refused, an `AuthError` if the token is, a {@link SealError}
   * if an encrypted session's payloads don't open, or a `ServerError` with code `not_supported`
   * if the connection asked for binary frames and the server does not speak them. */
  ready() {
    if (this.inSession && this.state === "online") return Promise.resolve();
    if (this.accessError !== null && !this.wantJoined) return Promise.reject(this.accessError);
    if (this.sealError !== null && !this.wantJoined) return Promise.reject(this.sealError);
    if (this.connection.authError !== null) return Promise.reject(this.connection.authError);
    if (this.connection.protocolError !== null) return Promise.reject(this.connection.protocolError);
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }
  /**
   * Calls `fn` on every `event` (see {@link SessionEvents}); returns a function that removes it.
   */
  on(event, fn) {
    let set2 = this.handlers.get(event);
    if (!set2) this.handlers.set(event, set2 = /* @__PURE__ */ new Set());
    set2.add(fn);
    return () => set2.delete(fn);
  }
  emit(event, ev) {
    if (event === "change") this.persist();
    for (const fn of this.handlers.get(event) ?? []) fn(ev);
  }
  change(op, origin, user) {
    const sync = this.requireSync();
    const ev = { doc: sync.doc, op, origin, local: origin === "local", version: sync.version };
    if (user !== void 0) ev.user = user;
    this.emit("change", ev);
  }
  // ---- editing -----------------------------------------------------------------------------
  /** Applies a local edit at once and sends it when it can. Throws `OtError` if the edit is
   * invalid for the current document (nothing changes then). */
  submit(op) {
    const sync = this.requireSync();
    sync.edit(op);
    this.change(op, "local");
    this.flush();
    if (this.state !== "online") this.emitStatus({});
  }
  /**
   * Turns the local document into `old` — a past state, e.g. `(await new SessionsApi(…).state(id,
   * version)).state` — with one local edit of mine, like {@link MontageSession.submit}: the whole
   * document, or with `opts.id` only that layer, track or clip (a clip whose track is gone can't
   * come back). The edit is computed against the local document (my unacknowledged edits
   * included) and touches only what differs ({@link diff}, {@link restoreElement}), so others'
   * concurrent edits elsewhere stay. It is undoable: {@link MontageSession.undo} brings the newer
   * state back (unlike `SessionsApi.restore`, an edit of someone else's as far as the session is
   * concerned).
   *
   * Returns false, changing nothing, when nothing differs or the element is in neither
   * document. Throws like `submit` before the first join, or with an `OtError` if the result
   * breaks the document's shape rules (an `old` that is not a valid document).
   */
  restoreTo(old, opts = {}) {
    const doc2 = this.requireSync().doc;
    const past = old;
    const op = opts.id === void 0 ? diff(doc2, past) : restoreElement(doc2, past, opts.id);
    if (op === null || op.length === 0) return false;
    this.submit(op);
    return true;
  }
  /** Undoes my latest edit (others' work stays). Returns false if there was nothing to undo. */
  undo() {
    return this.localStep((s) => s.undo());
  }
  /** Makes my latest undone edit again. Returns false if there was nothing to redo. */
  redo() {
    return this.localStep((s) => s.redo());
  }
  localStep(f) {
    const op = f(this.requireSync());
    if (op === null) return false;
    this.change(op, "local");
    this.flush();
    return true;
  }
  requireSync() {
    if (this.sync === null) throw new Error("the session is not joined yet: wait for ready()");
    return this.sync;
  }
  /** Publishes my presence (cursor, selection, …); the latest value is re-sent on rejoin. */
  setPresence(data) {
    this.presenceData = data;
    if (this.state === "online") this.send({ type: "presence", session: this.session, data });
  }
  // ---- other messages ----------------------------------------------------------------------
  /**
   * Sends any other protocol message on the open socket (its `rid`, if any, comes back on the
   * answer and on `error`). Returns false when not joined: such messages are not queued
   * (unlike edits).
   */
  sendMessage(msg) {
    if (this.state !== "online") return false;
    return this.send(msg);
  }
  /**
   * Opens or closes link access (owner only): what a signed-in user without a grant receives.
   * Everyone in the session gets `linkRoleChanged`; users left without access are taken out.
   * A refusal comes as an `error` whose `rid` starts with `link_role:`. Returns false when not
   * joined (not queued).
   */
  setLinkRole(role2) {
    return this.sendMessage({ type: "set_link_role", session: this.session, role: role2, rid: `link_role:${++this.ridSeq}` });
  }
  /** Grants `user` a role (owner only); `none` removes them for good (until granted again). */
  async setRole(user, role2) {
    await this.request({ type: "set_role", user, role: role2 }, "role");
  }
  /** Comments (commenter or above); resolves with the comment as stored. In an encrypted session
   * its content and annotations are sealed into one opaque `content` (and opened again in the
   * answer and the events); without the key of the session's epoch it rejects with a
   * {@link SealError}. */
  async addComment(comment) {
    let c = comment;
    if (this.e2e !== null) {
      const { annotations, ...rest } = comment;
      const body = annotations === void 0 ? { content: comment.content } : { content: comment.content, annotations };
      c = { ...rest, content: sealComment(this.e2e.keys, this.e2e.keyEpoch, this.session, body) };
    }
    return commentOf(await this.request({ type: "comment", comment: c }, "comment"));
  }
  /** A reply in the thread of `parentId`. */
  reply(parentId, content, extra = {}) {
    return this.addComment({ ...extra, content, parent_id: parentId });
  }
  /** Changes my comment's text (sealed in an encrypted session, like {@link
   * MontageSession.addComment}). */
  async editComment(id, content) {
    const text2 = this.e2e === null ? content : sealComment(this.e2e.keys, this.e2e.keyEpoch, this.session, { content });
    return commentOf(await this.request({ type: "comment_edit", id, content: text2 }, "comment"));
  }
  /** Deletes a comment (mine, or any as owner): a tombstone stays so replies keep their thread. */
  async deleteComment(id) {
    return commentOf(await this.request({ type: "comment_delete", id }, "comment"));
  }
  /** Resolves (or with `false` reopens) a thread. */
  async resolveComment(id, resolved = true) {
    return commentOf(await this.request({ type: "comment_resolve", id, resolved }, "comment"));
  }
  /** Adds (or with `false` removes) my reaction. */
  async react(id, emoji, on = true) {
    return commentOf(await this.request({ type: "comment_react", id, emoji, on }, "comment"));
  }
  /**
   * Suggests an edit (commenter or above) for an editor to accept or reject. It is made on the
   * server's state at `version` (the replica without my unacknowledged edits).
   */
  async suggest(op, note) {
    const msg = { type: "suggest", base: this.version, ops: encodeOp(op) };
    if (note !== void 0) msg["note"] = note;
    return suggestionOf(await this.request(msg, "suggest"));
  }
  /** Applies a pending suggestion (editor or above), credited to its author. */
  async acceptSuggestion(id) {
    return suggestionOf(await this.request({ type: "suggestion_accept", id }, "suggest"));
  }
  /** Turns down a pending suggestion (editor or above). */
  async rejectSuggestion(id) {
    return suggestionOf(await this.request({ type: "suggestion_reject", id }, "suggest"));
  }
  /**
   * Live previews of the session (`preview` events), at `tier` or, without one, at the
   * connection's tier as it changes. Resolves with the first preview (the current version).
   * Subscriptions end with `unsubscribePreviews` or the socket: subscribe again after a
   * reconnect.
   */
  async subscribePreviews(tier) {
    const msg = { type: "preview_subscribe" };
    if (tier !== void 0) msg["tier"] = tier;
    return this.previewOf(await this.request(msg, "preview"));
  }
  /**
   * Live frames of the timeline at `user`'s playhead (`preview` events with `t`; the user's
   * presence `playhead`, 0 until they set one), at `tier` or the connection's; the newest
   * position always arrives, at most at the tier's frame rate. Replaces this session's
   * {@link MontageSession.subscribePreviews}. Resolves with the first frame.
   */
  async subscribeTimeline(user, tier) {
    const msg = { type: "preview_subscribe", follow: user };
    if (tier !== void 0) msg["tier"] = tier;
    return this.previewOf(await this.request(msg, "preview"));
  }
  /**
   * Ends the `preview` events of {@link MontageSession.subscribePreviews}. Returns false when not
   * joined (nothing sent).
   */
  unsubscribePreviews() {
    return this.sendMessage({ type: "preview_unsubscribe", session: this.session });
  }
  /** Where the session's current canvas is rendered at `tier` (GET it with the token as
   * `Authorization: Bearer`). */
  previewUrl(tier) {
    return `${this.connection.httpBase}/v1/sessions/${encodeURIComponent(this.session)}/preview?tier=${tier}`;
  }
  /**
   * Uploads an image, video or audio file for this session (editor or above): `POST
   * /v1/assets?session=S`. Reference it from a layer or clip by its `id`.
   *
   * In an encrypted session the file is sealed first, with the key of the session's current key
   * epoch ({@link SessionsApi.uploadSealedAsset}): the server stores bytes it can't read and
   * answers `kind: "sealed"` without dimensions, so the app reads those from the file itself
   * and puts them in the document (which is sealed too). Rejects with a `no_key`
   * {@link SealError} without that key (after `keyRotated`, until {@link MontageSession.addKey}).
   */
  upload(body) {
    const e = this.e2e;
    if (e === null) return this.connection.api.uploadAsset(body, { session: this.session });
    return this.connection.api.uploadSealedAsset(this.session, e.keys, e.keyEpoch, body);
  }
  /**
   * An asset's file, as it was uploaded: `GET /v1/assets/{id}` — in an encrypted session opened
   * with the session's keys (any epoch held), as a page drawing the canvas itself needs, since
   * the server renders nothing of it. Rejects with an `ApiError` when the server refuses, or a
   * {@link SealError} when the bytes don't open (`no_key`, `tampered`; `malformed` when they are
   * not sealed).
   */
  async download(id) {
    const e = this.e2e;
    return e === null ? this.connection.api.asset(id) : this.connection.api.openSealedAsset(id, this.session, e.keys);
  }
  /** Sends `msg` for this session with a fresh rid and waits for the answer carrying it. */
  request(msg, kind) {
    if (this.state !== "online") return Promise.reject(new ServerError("offline", `not joined to ${this.session}: nothing was sent`));
    const rid = `${kind}:${++this.ridSeq}`;
    return new Promise((resolve, reject) => {
      this.requests.set(rid, { resolve, reject });
      this.send({ ...msg, session: this.session, rid });
    });
  }
  failRequests() {
    const pending = [...this.requests.values()];
    this.requests.clear();
    for (const r of pending) r.reject(new ServerError("disconnected", "the connection closed before the answer came; the request may or may not have been applied"));
  }
  previewOf(m) {
    const url = String(m["url"] ?? "");
    return {
      session: this.session,
      version: Number(m["version"]),
      tier: String(m["tier"]),
      url,
      href: url.startsWith("/") ? this.connection.httpBase + url : url,
      ...typeof m["t"] === "number" ? { t: m["t"] } : {}
    };
  }
  // ---- joining -----------------------------------------------------------------------------
  /** Joins the session (connecting first if needed) and stays joined, rejoining after
   * reconnects, until `leave`. After a denial or `unauthorized`, tries again. */
  connect() {
    this.wantJoined = true;
    this.accessError = null;
    this.sealError = null;
    if (this.connection.isOpen) {
      if (!this.inSession && !this.awaitingJoin && this.loading === null) this.sendJoin(this.sync?.version);
    } else {
      this.connection.connect();
    }
    this.emitStatus({});
  }
  /** Leaves the session (`leave`: the others see me go); `connect()` joins again. Unsent edits
   * stay queued. */
  leave() {
    const wasIn = this.inSession || this.awaitingJoin || this.loading !== null;
    this.wantJoined = false;
    if (wasIn) this.send({ type: "leave", session: this.session });
    this.socketClosed();
    this.emitStatus({});
  }
  /** Leaves the session and lets go of the connection (this object is done). */
  close() {
    this.leave();
    this.connection.detach(this);
  }
  sendJoin(since) {
    const join2 = { type: "join", session: this.session, client: this.clientId, rid: "join" };
    if (since !== void 0) {
      join2["since"] = since;
      if (this.sync?.resend() === null && this.e2e === null) join2["compact"] = true;
    }
    if (this.sync?.resend() == null && this.e2e === null) join2["ranges"] = true;
    if (this.stateRefOk()) join2["state_ref"] = true;
    if (this.e2e !== null) join2["create"] = { encrypted: true };
    this.awaitingJoin = true;
    this.joinsSent++;
    this.send(join2);
  }
  send(msg) {
    return this.connection.transmit(this, msg);
  }
  flush() {
    if (this.state !== "online" || this.sync === null || this.held !== null) return;
    const out = this.sync.takeOutgoing();
    if (out !== null) {
      this.persist();
      this.sendOp();
    }
  }
  /** Sends the in-flight edit as it was made on its base (`sent`): in an encrypted session sealed
   * (once: a resend repeats the same bytes) — or held back while the key of the session's epoch
   * is missing (`addKey` sends it). */
  sendOp() {
    const f = this.sync?.inflight;
    if (f === null || f === void 0) return;
    const { base, seq } = f;
    this.keyWait = false;
    if (this.e2e === null) {
      this.send({ type: "op", session: this.session, base, seq, ops: encodeOp(f.sent), rid: `op:${seq}` });
      return;
    }
    if (f.sealed === void 0) {
      try {
        f.sealed = this.e2e.sealEdit(this.session, base, JSON.stringify(encodeOp(f.sent)));
      } catch (e) {
        if (e instanceof SealError && e.kind === "no_key") {
          this.keyWait = true;
          return;
        }
        throw e;
      }
      this.persist();
    }
    this.send({ type: "op", session: this.session, base, seq, data: f.sealed.data, key_epoch: f.sealed.keyEpoch, rid: `op:${seq}` });
  }
  /** Versions between the sealed snapshots an encrypted session's clients store. */
  static SNAPSHOT_EVERY = 100;
  /** In an encrypted session, a sealed snapshot of the replica when one is due: every
   * {@link MontageSession.SNAPSHOT_EVERY} versions, sent by an editor with nothing
   * unacknowledged (the replica is then exactly the server's version), so joins replay little. */
  maybeSnapshot() {
    const e = this.e2e;
    const sync = this.sync;
    if (e === null || sync === null || this.state !== "online" || !this.inSession || this.held !== null) return;
    if (sync.inflight !== null || sync.pending !== null || !roleAtLeast(this.role, "editor")) return;
    if (sync.version < e.snapshotVersion + _MontageSession.SNAPSHOT_EVERY) return;
    let sealed;
    try {
      sealed = e.sealSnapshot(this.session, sync.version, JSON.stringify(sync.doc));
    } catch {
      return;
    }
    e.snapshotVersion = sync.version;
    this.send({ type: "snapshot", session: this.session, version: sync.version, data: sealed.data, key_epoch: sealed.keyEpoch, rid: `snapshot:${sync.version}` });
  }
  // ---- what the connection tells ------------------------------------------------------------
  /** @internal */
  socketOpened() {
    if (this.wantJoined) this.sendJoin(this.sync?.version);
  }
  /** @internal */
  socketClosed() {
    this.inSession = false;
    this.awaitingJoin = false;
    this.held = null;
    this.stopLoading();
    this.failRequests();
  }
  /** @internal */
  statusChanged(s) {
    this.emitStatus(s);
  }
  /** @internal */
  connectionEvent(event, ev) {
    this.emit(event, ev);
  }
  /** @internal */
  failed(e) {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(e);
  }
  /** @internal */
  unauthorized(e) {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(e);
    this.emit("unauthorized", e);
  }
  /** The session's own state, from the connection's and whether it is joined. */
  emitStatus(s) {
    const c = this.connection.connectionState;
    let state;
    if (c === "unauthorized") state = "unauthorized";
    else if (!this.wantJoined) state = "offline";
    else if (c === "online") state = this.inSession ? "online" : this.joined ? "reconnecting" : "connecting";
    else if (c === "offline") state = "offline";
    else state = this.joined ? "reconnecting" : "connecting";
    this.state = state;
    this.emit("status", { ...s, state, pending: this.pendingCount });
  }
  /** Out of the session: stop, and tell whoever waits or listens. */
  deny(reason, message) {
    const err = new AccessError(this.session, reason, message);
    this.accessError = err;
    this.wantJoined = false;
    this.stopWith(err);
    this.emit("accessDenied", err);
  }
  /** Out of the session for good: the socket's part ends, and whoever waits for `ready` hears
   * `err`. */
  stopWith(err) {
    this.socketClosed();
    this.denied();
    this.emitStatus({});
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(err);
  }
  /** Called when the session is out for good (a `MontageClient` closes its own socket then). */
  denied() {
  }
  // ---- server messages ---------------------------------------------------------------------
  /** @internal */
  received(raw) {
    this.emit("message", raw);
    this.handle(raw);
  }
  /** Handles one server message of the session (or holds it behind a state download). */
  handle(raw) {
    if (this.sealError !== null) return;
    const l = this.loading;
    if (l !== null) {
      if (l.after.length >= MAX_HELD_BEHIND_DOWNLOAD) return this.loadFailed(new DownloadError("internal", "the session moved on too far meanwhile"));
      l.after.push(raw);
      return;
    }
    if (this.leftToJoin(raw)) return;
    let m = raw;
    const notes = [];
    if (this.e2e !== null || raw["type"] === "joined") {
      try {
        m = this.unseal(raw, notes);
      } catch (e) {
        if (!(e instanceof SealError)) throw e;
        return this.undecryptable(e);
      }
    }
    const rid = m["rid"];
    const req = typeof rid === "string" ? this.requests.get(rid) : void 0;
    if (req !== void 0) {
      this.requests.delete(rid);
      if (m["type"] === "error") {
        const retry = m["retry_after_ms"];
        req.reject(new ServerError(String(m["code"] ?? "internal"), String(m["message"] ?? ""), typeof retry === "number" ? retry : void 0));
        return;
      }
      req.resolve(m);
    }
    for (const n of notes) this.emit("error", n);
    this.guarded(() => {
      this.dispatch(m, req !== void 0);
      this.maybeSnapshot();
    });
  }
  /** Runs `f`, which follows the server; if this replica can't (an op it can't apply), it starts
   * over from the server's state rather than drift. */
  guarded(f) {
    try {
      f();
    } catch (e) {
      this.emit("error", { code: "desync", message: e.message });
      this.resync();
    }
  }
  /**
   * Whether `m` is an edit (an `op`, or the ack of my in-flight edit) to leave to a join's answer,
   * which carries every version up to its `version` (frames before it are older): one that comes
   * while a join is awaited, or one past versions this replica missed — then it joins again from
   * its version, which it is still right as of (a reset would drop my unacknowledged edits).
   * Checked before an encrypted edit is opened: its chain needs the version before it.
   */
  leftToJoin(m) {
    const type = m["type"];
    if (type !== "op" && type !== "ack") return false;
    if (this.awaitingJoin) return true;
    const sync = this.sync;
    if (sync === null || type === "ack" && Number(m["seq"]) !== sync.inflight?.seq) return false;
    const version = Number(m["version"]);
    const base = m["from"] === void 0 ? version - 1 : Number(m["from"]) - 1;
    const held = this.held;
    const seen = held !== null && held.length > 0 ? held[held.length - 1].version : sync.version;
    if (base <= seen) return false;
    if (this.inSession) this.catchUp();
    return true;
  }
  /**
   * Versions were missed on the way: joins again with `since` (local edits stay). A repeated join
   * with `since` is answered as a first one, with the versions after it (PROTOCOL.md `join`), so
   * it needs no `leave` (the others would see me go and come back). Edits wait for the answer: an
   * in-flight edit is resent then, on its old base, as after a reconnect.
   */
  catchUp() {
    this.inSession = false;
    this.held = null;
    this.sendJoin(this.requireSync().version);
    this.emitStatus({});
  }
  /** Handles one (plain, or made plain) server message for this session. */
  dispatch(m, answered) {
    switch (m["type"]) {
      case "joined": {
        const ref = this.e2e === null && m["state"] === void 0 ? stateRefOf(m["state_ref"]) : null;
        return ref === null ? this.onJoined(m) : this.load(m, ref);
      }
      case "ack":
        return this.onAck(Number(m["seq"]), Number(m["version"]));
      case "op": {
        const version = Number(m["version"]);
        const from = m["from"] === void 0 ? version : Number(m["from"]);
        return this.onRemote(version, decodeOp(m["ops"]), String(m["user"] ?? ""), from - 1);
      }
      case "presence": {
        const user = String(m["user"]);
        const data = m["data"] ?? null;
        this.presences.set(user, data);
        return this.emit("presence", { user, data });
      }
      case "participant_joined": {
        const p = { user: String(m["user"]), role: String(m["role"]), online: true };
        if (typeof m["name"] === "string") p.name = m["name"];
        if (typeof m["color"] === "string") p.color = m["color"];
        this.participantMap.set(p.user, p);
        return this.emit("participants", this.participants);
      }
      case "participant_left":
        this.participantMap.delete(String(m["user"]));
        this.presences.delete(String(m["user"]));
        return this.emit("participants", this.participants);
      case "role_changed":
        return this.onRoleChanged(String(m["user"]), String(m["role"]));
      case "link_role_changed":
        this.linkRole = String(m["role"]);
        return this.emit("linkRoleChanged", { role: this.linkRole });
      case "session_deleted":
        this.emit("sessionDeleted", { session: this.session });
        return this.deny("deleted", "the owner deleted this session");
      case "comment_added":
        return this.emit("commentAdded", m["comment"]);
      case "comment_updated":
        return this.emit("commentUpdated", m["comment"]);
      case "suggestion_added":
        return this.emit("suggestionAdded", m["suggestion"]);
      case "suggestion_updated":
        return this.emit("suggestionUpdated", m["suggestion"]);
      case "preview":
        return this.emit("preview", this.previewOf(m));
      case "task":
        return this.emit("task", m["task"]);
      case "key_rotated": {
        const keyEpoch = Number(m["key_epoch"]);
        return this.emit("keyRotated", { keyEpoch, haveKey: this.e2e?.keys.get(keyEpoch) !== void 0 });
      }
      case "error":
        if (!answered) this.onError(m);
        return;
      default:
        return;
    }
  }
  /**
   * An encrypted session's message made plain (anything else as it is), as the Rust client's
   * `unseal`: sealed edits opened and their chain checked against the server's, a join's snapshot
   * and entries turned into the state (the snapshot, or the empty new document, with every entry
   * applied) or the plain entries after the version held, my acks' chain values checked, the key
   * epoch followed, comments opened (one that does not open keeps its sealed text and is reported
   * in `notes`). Throws a {@link SealError} when the session can't go on.
   */
  unseal(m, notes) {
    const session = this.session;
    const e = this.e2e;
    if (e === null) {
      if (m["encrypted"] === true) throw SealError.malformed(`session ${session} is end-to-end encrypted: join it with its key`);
      return m;
    }
    const openOp = (version, keyEpoch, data, chain) => {
      const plain = e.openEdit(session, version, keyEpoch, data, typeof chain === "string" ? chain : void 0);
      try {
        const wire = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
        decodeOp(wire);
        return wire;
      } catch (err) {
        throw SealError.malformed(`version ${version} opened to no edit: ${err.message}`);
      }
    };
    const epochOf = (v) => typeof v === "number" ? v : 0;
    switch (m["type"]) {
      case "joined": {
        if (m["encrypted"] !== true) throw SealError.malformed(`session ${session} is not end-to-end encrypted: join it without keys`);
        e.keyEpoch = epochOf(m["key_epoch"]);
        let doc2 = null;
        const snap2 = m["snapshot"];
        if (snap2 !== void 0 && snap2 !== null) {
          const plain = e.openSnapshot(session, { version: Number(snap2.version), data: String(snap2.data), keyEpoch: epochOf(snap2.key_epoch), chain: String(snap2.chain) });
          try {
            doc2 = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
          } catch (err) {
            throw SealError.malformed(`the snapshot opened to no document: ${err.message}`);
          }
        } else if (m["whole"] === true) {
          e.record(0, GENESIS_CHAIN);
          doc2 = newDocument();
        }
        const entries = [];
        for (const entry of Array.isArray(m["ops"]) ? m["ops"] : []) {
          if (typeof entry["data"] !== "string") continue;
          const version = Number(entry["version"]);
          entries.push({ version, user: String(entry["user"] ?? ""), ops: openOp(version, epochOf(entry["key_epoch"]), entry["data"], entry["chain"]) });
        }
        const out = { ...m, whole: false };
        delete out["snapshot"];
        delete out["delta"];
        delete out["state"];
        delete out["ops"];
        if (doc2 !== null) {
          for (const en of entries) {
            try {
              doc2 = apply(doc2, decodeOp(en.ops)).doc;
            } catch (err) {
              throw SealError.malformed(`version ${en.version} does not apply: ${err.message}`);
            }
          }
          out["state"] = doc2;
        } else {
          out["ops"] = entries;
        }
        return out;
      }
      case "op": {
        if (typeof m["data"] !== "string") return m;
        const version = Number(m["version"]);
        const ops = openOp(version, epochOf(m["key_epoch"]), m["data"], m["chain"]);
        return { type: "op", session: m["session"], version, user: m["user"], ops };
      }
      case "ack": {
        const f = this.sync?.inflight;
        if (f && f.seq === Number(m["seq"]) && f.sealed !== void 0) {
          e.acked(Number(m["version"]), f.sealed.keyEpoch, f.sealed.data, typeof m["chain"] === "string" ? m["chain"] : void 0);
        }
        return m;
      }
      case "key_rotated":
        e.keyEpoch = Math.max(e.keyEpoch, Number(m["key_epoch"]));
        return m;
      case "comment_added":
      case "comment_updated": {
        const c = m["comment"];
        if (c === void 0 || typeof c.content !== "string") return m;
        try {
          return { ...m, comment: this.openComment(c) };
        } catch (err) {
          notes.push({ code: "bad_request", message: `comment ${c.id}: ${err.message}` });
          return m;
        }
      }
      default:
        return m;
    }
  }
  /** A payload did not open or the chain broke: the session stops, and the app hears why. */
  undecryptable(err) {
    this.sealError = err;
    const wasIn = this.inSession || this.awaitingJoin;
    this.wantJoined = false;
    if (wasIn) this.send({ type: "leave", session: this.session });
    this.stopWith(err);
    this.emit("undecryptable", err);
  }
  onRoleChanged(user, role2) {
    const p = this.participantMap.get(user);
    if (role2 === "none") this.participantMap.delete(user);
    else if (p) p.role = role2;
    else this.participantMap.set(user, { user, role: role2, online: false });
    if (user === this.user) {
      this.role = role2;
      if (role2 === "none") {
        this.emit("role", { user, role: role2 });
        return this.deny("removed", "you no longer have access to this session: ask the owner to share it");
      }
    }
    this.emit("role", { user, role: role2 });
    this.emit("participants", this.participants);
  }
  // ---- large states ---------------------------------------------------------------------------
  /**
   * Whether a join asks for a large state by reference (`state_ref`): not in an encrypted session
   * (its server reads no state), not without a `fetch` to download it with, and not after two
   * downloads in a row failed since the session last joined (the state then comes inline, so a
   * download that can't succeed — a refusal, a proxy that breaks it — can't loop). SHA-256 is
   * always at hand (see `sha256Hex`).
   */
  stateRefOk() {
    return this.e2e === null && this.downloadFailures < MAX_DOWNLOAD_FAILURES && this.connection.fetcher !== null;
  }
  /** A `joined` naming the state to download instead of carrying it: the session waits for it
   * (not joined yet), holding what comes after. */
  load(m, ref) {
    this.awaitingJoin = false;
    this.stopLoading();
    const fetch2 = this.connection.fetcher;
    let part = this.partial;
    if (part === null || part.sha256 !== ref.sha256 || part.buf.length !== ref.bytes) {
      part = null;
      this.partial = null;
      try {
        part = { sha256: ref.sha256, buf: new Uint8Array(ref.bytes), have: 0 };
      } catch {
      }
    }
    if (fetch2 === null || part === null) {
      return this.loadFailed(new DownloadError("internal", fetch2 === null ? "no fetch to download it with" : `no room for ${ref.bytes} bytes`));
    }
    this.partial = part;
    const total = ref.bytes;
    const from = part.have;
    let told = from;
    const url = `${this.connection.httpBase}/v1/sessions/${encodeURIComponent(this.session)}/state?version=${Number(m["version"])}`;
    const download = new StateDownload({
      url,
      fetch: fetch2,
      token: () => this.connection.currentToken(),
      ref,
      part,
      later: (fn, ms) => this.connection.later(fn, ms),
      progress: (received) => {
        if (this.loading?.download !== download) return;
        if (received >= told + LOADING_STEP || received < told || received === total) {
          told = received;
          this.emit("loading", { received, total });
        }
      }
    });
    this.loading = { joined: m, after: [], download };
    this.emit("loading", { received: from, total });
    const started = Date.now();
    void this.finishLoading(download, ref, () => [part.have - from, Date.now() - started]);
  }
  /** The download ends: its state answers the join, then the messages held behind it apply
   * (or, failing, the session joins again). `fresh`: the bytes it brought and the time. */
  async finishLoading(download, ref, fresh) {
    let bytes;
    let hash;
    try {
      bytes = await download.run();
      const [n, ms] = fresh();
      hash = await sha256Hex(bytes);
      if (this.loading?.download === download) this.connection.reportDownload(n, ms);
    } catch (e) {
      if (this.loading?.download === download) this.loadFailed(e instanceof DownloadError ? e : new DownloadError("internal", String(e)));
      return;
    }
    const l = this.loading;
    if (l?.download !== download) return;
    let state;
    try {
      if (bytes.length !== ref.bytes || hash !== ref.sha256) {
        throw new Error(`${bytes.length} bytes with SHA-256 ${hash} came; the server announced ${ref.bytes} bytes with ${ref.sha256}`);
      }
      state = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (e) {
      this.partial = null;
      return this.loadFailed(new DownloadError("desync", e.message));
    }
    this.partial = null;
    this.loading = null;
    const joined = { ...l.joined, state };
    delete joined["state_ref"];
    this.guarded(() => this.onJoined(joined));
    for (const m of l.after) this.handle(m);
  }
  /** The download failed for good: say so, and join again — with a leave first when the state
   * is wanted whole, since the server counts this socket in the session already and answers a
   * repeated join with no state; a replica joins again from its version (a join with `since` is
   * answered as a first one). The bytes so far stay in `partial` (unless they are wrong): the
   * same version joined again names the same bytes, and its download resumes. */
  loadFailed(err) {
    this.stopLoading();
    this.downloadFailures++;
    this.emit("error", { code: err.code, message: `downloading the session's state: ${err.message}; joining again` });
    if (!this.wantJoined || !this.connection.isOpen) return;
    if (this.sync === null) {
      this.send({ type: "leave", session: this.session });
      this.sendJoin(void 0);
    } else {
      this.sendJoin(this.sync.version);
    }
  }
  /** Drops the state download under way, if any (its bytes so far stay in `partial`). */
  stopLoading() {
    const l = this.loading;
    this.loading = null;
    l?.download.cancel();
  }
  onJoined(m) {
    const version = Number(m["version"]);
    this.awaitingJoin = false;
    this.downloadFailures = 0;
    this.role = String(m["role"] ?? "");
    this.linkRole = typeof m["link_role"] === "string" ? m["link_role"] : null;
    this.title = typeof m["title"] === "string" ? m["title"] : void 0;
    const participants = Array.isArray(m["participants"]) ? m["participants"] : [];
    this.participantMap = new Map(participants.map((p) => [p.user, { ...p }]));
    for (const p of participants) {
      if (p.presence !== void 0 && p.presence !== null) this.presences.set(p.user, p.presence);
    }
    const state = m["state"];
    const ops = m["ops"];
    if (this.sync === null || state !== void 0) {
      if (this.sync !== null && this.sync.pendingCount > 0) {
        this.emit("rejected", {
          seq: this.sync.inflight?.seq ?? 0,
          code: "resync",
          message: "the server sent a full state; unacknowledged edits were dropped",
          lost: this.sync.pendingCount
        });
      }
      if (state === void 0) throw new Error("joined without state or ops");
      if (this.sync === null) this.sync = new SyncDoc(state, version, this.seqFloor);
      else this.sync.reset(state, version);
      this.change([], "load");
    }
    const sync = this.sync;
    const entries = (ops ?? []).map((e) => ({ version: Number(e.version), op: decodeOp(e.ops), user: String(e.user) }));
    if (state === void 0 && m["delta"] !== void 0) {
      const { baseVersion, op } = decodeDelta(m["delta"]);
      if (sync.resend() !== null) throw new Error("a compact catch-up with an edit in flight");
      this.change(sync.remote(version, op, baseVersion), "remote", "");
    }
    this.joined = true;
    this.inSession = true;
    this.connection.noteJoined();
    this.state = "online";
    const resend = sync.resend();
    if (resend !== null && state === void 0) {
      this.held = entries;
      this.sendOp();
    } else {
      for (const e of entries) this.applyRemote(e.version, e.op, e.user);
    }
    const joined = { version: sync.version, role: this.role, participants: this.participants, linkRole: this.linkRole };
    if (this.title !== void 0) joined.title = this.title;
    this.emit("joined", joined);
    this.emit("participants", this.participants);
    this.emitStatus({});
    if (this.presenceData !== void 0) this.send({ type: "presence", session: this.session, data: this.presenceData });
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.resolve();
    if (this.e2e !== null && sync.version === 0 && roleAtLeast(this.role, "editor")) sync.queueEmpty();
    this.flush();
  }
  onAck(seq, version) {
    const sync = this.requireSync();
    if (sync.inflight === null || sync.inflight.seq !== seq) return;
    if (this.held !== null) {
      const held = this.held;
      this.held = null;
      for (const e of held) {
        if (e.version === version) sync.ack(seq, version);
        else this.applyRemote(e.version, e.op, e.user ?? "");
      }
      if (sync.inflight !== null && sync.inflight.seq === seq) sync.ack(seq, version);
    } else {
      sync.ack(seq, version);
    }
    this.flush();
    this.persist();
    this.emitStatus({});
  }
  onRemote(version, op, user, base = version - 1) {
    if (this.held !== null) {
      if (base !== version - 1) throw new Error(`a range of versions ${base + 1}..${version} while a resend awaits its ack`);
      this.held.push({ version, op, user });
      return;
    }
    this.applyRemote(version, op, user, base);
  }
  applyRemote(version, op, user, base = version - 1) {
    const sync = this.requireSync();
    if (version <= sync.version) return;
    this.change(sync.remote(version, op, base), "remote", user);
  }
  onError(m) {
    const code = String(m["code"] ?? "internal");
    const message = String(m["message"] ?? "");
    const r = m["rid"];
    const rid = typeof r === "string" ? r : void 0;
    const access = code === "forbidden" || code === "not_found";
    if (access && (rid === "join" || rid === void 0 && this.awaitingJoin)) {
      const reason = code === "not_found" ? "not_found" : this.joined ? "removed" : "forbidden";
      return this.deny(reason, message);
    }
    const inflight = this.sync?.inflight;
    if (rid !== void 0 && inflight && rid === `op:${inflight.seq}`) {
      if (code === "rate_limited") {
        const delay = Number(m["retry_after_ms"] ?? 1e3);
        this.connection.later(() => {
          const r2 = this.sync?.resend();
          if (r2 && this.state === "online" && this.held === null) this.sendOp();
        }, delay);
        return;
      }
      if (code === "conflict" && typeof m["version"] === "number") {
        const held = this.held ?? [];
        this.held = null;
        for (const e of held) this.applyRemote(e.version, e.op, e.user ?? "");
        const r2 = this.sync.rebase();
        this.persist();
        if (r2 && this.state === "online") this.sendOp();
        else this.flush();
        return;
      }
      this.emit("rejected", { seq: inflight.seq, code, message, lost: this.sync.pendingCount });
      this.resync();
      return;
    }
    this.emit("error", rid === void 0 ? { code, message } : { code, message, rid });
    if (rid === "join" && (code === "rate_limited" || code === "internal")) return this.joinLater(m["retry_after_ms"]);
    if (access && rid === void 0 && this.state === "online") {
      this.inSession = false;
      this.held = null;
      this.sendJoin(this.sync?.version);
    }
  }
  /**
   * My join was refused for a while (`rate_limited`, or `internal`: the server is busy or
   * reloading the session): joins again after `retryAfterMs` (at most
   * `MAX_JOIN_RETRY_MS`; `JOIN_RETRY_MS` without one), as the Rust SDK's
   * `Refusal::Retry`. The join stays awaited meanwhile (edits that come are left to its answer).
   * Not if by then the session is not wanted, the socket closed, or another join went out (a
   * reconnect's): that one is awaited instead.
   */
  joinLater(retryAfterMs) {
    const ms = typeof retryAfterMs === "number" && Number.isFinite(retryAfterMs) && retryAfterMs >= 0 ? Math.min(retryAfterMs, MAX_JOIN_RETRY_MS) : JOIN_RETRY_MS;
    const refused = this.joinsSent;
    this.connection.later(() => {
      if (!this.wantJoined || !this.awaitingJoin || this.joinsSent !== refused || !this.connection.isOpen) return;
      this.sendJoin(this.sync?.version);
    }, ms);
  }
  /** Drops local state and joins again for the whole document. */
  resync() {
    if (this.sync !== null) this.seqFloor = Math.max(this.seqFloor, this.sync.lastSeqUsed);
    this.sync = null;
    this.held = null;
    if (this.state === "online") this.send({ type: "leave", session: this.session });
    this.sendJoin(void 0);
  }
};
var JOIN_RETRY_MS = 500;
var MAX_JOIN_RETRY_MS = 5e3;
var MAX_DOWNLOAD_FAILURES = 2;
var MAX_HELD_BEHIND_DOWNLOAD = 2e4;
function commentOf(m) {
  return m["comment"];
}
function suggestionOf(m) {
  return m["suggestion"];
}

// ../client/src/connection.ts
var OPEN = 1;
var MIN_SAMPLE_BYTES = 4 * 1024;
var DOWNLINK_SMOOTHING = 0.5;
function socketFactory(s) {
  if (s === void 0) {
    const WS = globalThis.WebSocket;
    if (WS === void 0) throw new Error("no global WebSocket here: pass the `socket` option (e.g. the `ws` package's WebSocket)");
    return (url, protocols) => new WS(url, protocols);
  }
  const proto = s.prototype;
  if (typeof proto?.send === "function") {
    const WS = s;
    return (url, protocols) => new WS(url, protocols);
  }
  return s;
}
function httpOrigin(wsUrl) {
  try {
    const u = new URL(wsUrl);
    u.protocol = u.protocol === "wss:" ? "https:" : u.protocol === "ws:" ? "http:" : u.protocol;
    return u.origin;
  } catch {
    return "";
  }
}
var MontageConnection = class {
  url;
  /** The server's HTTP origin, from `url`. */
  httpBase;
  /** Speaking the binary subprotocol `montage.v1.proto` (the `binary` option). */
  binary;
  codec;
  /** The user this connection acts as (the `user` option or the token's `sub`), when known. */
  user;
  /** Why the connection stopped, while it is `unauthorized`; null otherwise. */
  authError = null;
  /** Why the connection stopped, when the server did not choose the binary subprotocol (a
   * `ServerError` with code `not_supported`); null otherwise, and again after `connect()`. */
  protocolError = null;
  opts;
  makeSocket;
  timers;
  random;
  tokenFn;
  handlers = /* @__PURE__ */ new Map();
  ports = /* @__PURE__ */ new Map();
  byTag = /* @__PURE__ */ new Map();
  tagSeq = 0;
  sock = null;
  state = "offline";
  attempt = 0;
  retryTimer = null;
  wantOnline = false;
  opened = false;
  /** The smoothed downlink estimate (Mbit/s) and the tier last hinted to the server. */
  downlink = null;
  hinted = null;
  /** The token the next connection uses (the latest given or fetched). */
  token;
  /** While the token function runs before a connection: its attempt number (stale answers
   * are dropped). */
  tokenWait = null;
  tokenAttempts = 0;
  refreshing = false;
  /** An `auth` sent and not answered yet. */
  authPending = null;
  ridSeq = 0;
  /** Closes for the token (4401) since a session last joined. */
  refusedInARow = 0;
  /** The close code and reason of the last socket, until the next one opens. */
  lastClose = {};
  apiCache = null;
  constructor(opts) {
    this.opts = opts;
    this.url = opts.url;
    this.httpBase = httpOrigin(opts.url);
    this.codec = opts.binary ?? null;
    this.binary = this.codec !== null;
    this.makeSocket = socketFactory(opts.socket);
    this.timers = opts.timers ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (h2) => globalThis.clearTimeout(h2)
    };
    this.random = opts.random ?? Math.random;
    const t = opts.token;
    this.tokenFn = typeof t === "function" ? t : opts.getToken ?? null;
    this.token = typeof t === "string" ? t : void 0;
    this.user = opts.user ?? (this.token !== void 0 ? tokenSubject(this.token) : null);
    if (opts.autoConnect !== false) this.connect();
  }
  /**
   * The socket's state: `connecting`, `online`, `reconnecting`, `offline` (a retry may be
   * scheduled) or `unauthorized` (stopped).
   */
  get connectionState() {
    return this.state;
  }
  /** Is the socket open? */
  get isOpen() {
    return this.sock !== null && this.sock.readyState === OPEN && this.state === "online";
  }
  /**
   * Calls `fn` on every `event` (see {@link ConnectionEvents}); returns a function that removes it.
   */
  on(event, fn) {
    let set2 = this.handlers.get(event);
    if (!set2) this.handlers.set(event, set2 = /* @__PURE__ */ new Set());
    set2.add(fn);
    return () => set2.delete(fn);
  }
  emit(event, ev) {
    for (const fn of this.handlers.get(event) ?? []) fn(ev);
  }
  /** Typed HTTP calls with this connection's token (sessions, invites, uploads, …). */
  get api() {
    const fetch2 = this.opts.fetch;
    this.apiCache ??= new SessionsApi({ baseUrl: this.httpBase, token: () => this.currentToken(), ...fetch2 ? { fetch: fetch2 } : {} });
    return this.apiCache;
  }
  /** The token in use, or a fresh one from the token function when there is none yet. */
  async currentToken() {
    if (this.token !== void 0) return this.token;
    if (this.tokenFn !== null) {
      this.setToken(await callTokenFn(this.tokenFn));
      return this.token ?? "";
    }
    return "";
  }
  // ---- sessions ----------------------------------------------------------------------------
  /** Opens session `id` on this connection (joined at once unless `autoJoin: false`); the same
   * session again gives the client already open. */
  session(id, opts = {}) {
    const open3 = this.ports.get(id);
    if (open3 !== void 0) return open3;
    return new MontageSession(this, id, opts);
  }
  /** The sessions open on this connection. */
  get sessions() {
    return [...this.ports.keys()];
  }
  /** @internal A session registers to receive its messages; its rids get the returned tag. */
  attach(port) {
    if (this.ports.has(port.session)) throw new Error(`session ${port.session} is already open on this connection`);
    this.ports.set(port.session, port);
    this.byTag.set(port.tag, port);
  }
  /** @internal */
  nextTag() {
    return `s${++this.tagSeq}`;
  }
  /** @internal */
  detach(port) {
    if (this.ports.get(port.session) === port) this.ports.delete(port.session);
    this.byTag.delete(port.tag);
  }
  /** @internal A session joined: the token works, and backoff starts over. */
  noteJoined() {
    this.refusedInARow = 0;
    this.attempt = 0;
  }
  /** @internal Runs `fn` after `ms` on the connection's timers; returns a function cancelling
   * it. */
  later(fn, ms) {
    const h2 = this.timers.setTimeout(fn, ms);
    return () => this.timers.clearTimeout(h2);
  }
  /** @internal The `fetch` of HTTP calls: the `fetch` option, or the global one (called as a
   * plain function: a browser's refuses another `this`); null when there is neither. */
  get fetcher() {
    if (this.opts.fetch !== void 0) return this.opts.fetch;
    const g = globalThis;
    return g.fetch === void 0 ? null : (url, init) => g.fetch(url, init);
  }
  /** @internal Sends a session's message, its rid prefixed with the session's tag. */
  transmit(port, msg) {
    const rid = msg["rid"];
    return this.send(rid === void 0 ? msg : { ...msg, rid: `${port.tag}:${String(rid)}` });
  }
  // ---- messages ----------------------------------------------------------------------------
  /** Sends a message as it is; false when the socket is not open (nothing is queued). */
  sendMessage(msg) {
    return this.send(msg);
  }
  send(msg) {
    const s = this.sock;
    if (s === null || s.readyState !== OPEN) return false;
    if (this.codec === null) {
      s.send(JSON.stringify(msg));
      return true;
    }
    let frame;
    try {
      frame = this.codec.encodeClientFrame(msg);
    } catch (e) {
      const refusal = { type: "error", code: "bad_request", message: errorMessage2(e) };
      if (msg["rid"] !== void 0) refusal["rid"] = msg["rid"];
      void Promise.resolve().then(() => {
        if (this.sock === s) this.onMessage(refusal);
      });
      return true;
    }
    s.send(frame);
    return true;
  }
  /** Tells the server this client's downlink estimate; it answers with the connection's tier
   * (`tier` event), which caps how often presence and previews come. */
  setQuality(downlinkMbps) {
    return this.send({ type: "quality", downlink_mbps: downlinkMbps });
  }
  /**
   * Reports a download from the server — a preview, a frame, an asset — of `bytes` whose body
   * took `ms` to arrive (time it from the response's headers: the server's own work, rendering
   * a picture, is not the link's). The socket itself carries small frames and says little about
   * the link; pictures do. The
   * connection keeps a smoothed estimate ({@link MontageConnection.downlinkMbps}) and sends it as
   * a `quality` hint whenever it crosses into another tier (and again after every reconnect), so
   * the server sizes and paces previews for what the link really carries. Bodies under 4 KiB
   * are ignored. Returns the estimate.
   */
  reportDownload(bytes, ms) {
    if (!(bytes >= MIN_SAMPLE_BYTES) || !(ms > 0) || !Number.isFinite(ms)) return this.downlink;
    const mbps = bytes * 8 / (ms * 1e3);
    this.downlink = this.downlink === null ? mbps : DOWNLINK_SMOOTHING * mbps + (1 - DOWNLINK_SMOOTHING) * this.downlink;
    const tier = tierForMbps(this.downlink);
    if (tier !== this.hinted && this.setQuality(this.downlink)) this.hinted = tier;
    return this.downlink;
  }
  /** The downlink estimate from {@link MontageConnection.reportDownload}, in Mbit/s (null before
   * any). */
  get downlinkMbps() {
    return this.downlink;
  }
  /**
   * Replaces the connection's token with `token` (same user): sent as `auth` now when online
   * (answered by `authed`), and used for every later connection. A token of another user is
   * refused by the server, which then closes the socket (4401).
   */
  authenticate(token2) {
    if (!this.isOpen) {
      this.setToken(token2);
      return;
    }
    const rid = `auth:${++this.ridSeq}`;
    this.authPending = { token: token2, rid };
    this.send({ type: "auth", token: token2, rid });
  }
  /** The socket is going: a refreshed token the server neither took nor refused is used for
   * the next connection (it is the newest the app gave). */
  settleAuth() {
    if (this.authPending !== null) this.setToken(this.authPending.token);
    this.authPending = null;
  }
  setToken(token2) {
    this.token = token2;
    if (this.opts.user === void 0) this.user = tokenSubject(token2) ?? this.user;
  }
  /** On `token_expiring`: a new token from the token function, sent as `auth`. */
  refreshToken() {
    const fn = this.tokenFn;
    if (fn === null || this.refreshing) return;
    this.refreshing = true;
    const sock = this.sock;
    callTokenFn(fn).then(
      (t) => {
        this.refreshing = false;
        if (this.sock === sock) this.authenticate(t);
        else this.setToken(t);
      },
      (e) => {
        this.refreshing = false;
        this.connectionError({ code: "unauthorized", message: `could not refresh the token: ${errorMessage2(e)}` });
      }
    );
  }
  connectionError(ev) {
    this.emit("error", ev);
    for (const p of this.ports.values()) p.connectionEvent("error", ev);
  }
  onMessage(m) {
    this.emit("message", m);
    switch (m["type"]) {
      case "authed": {
        this.settleAuth();
        const ev = { exp: Number(m["exp"]) };
        this.emit("authed", ev);
        for (const p of this.ports.values()) p.connectionEvent("authed", ev);
        return;
      }
      case "token_expiring": {
        const ev = { exp: Number(m["exp"]) };
        this.emit("tokenExpiring", ev);
        for (const p of this.ports.values()) p.connectionEvent("tokenExpiring", ev);
        this.refreshToken();
        return;
      }
      case "tier":
        this.emit("tier", { tier: String(m["tier"]), fps: Number(m["fps"]), resolution: m["resolution"] });
        return;
      case "notification": {
        const n = readNotification(m["notification"]);
        if (n !== null) this.emit("notification", n);
        return;
      }
    }
    const rid = m["rid"];
    if (typeof rid === "string") {
      const cut = rid.indexOf(":");
      const port = cut > 0 ? this.byTag.get(rid.slice(0, cut)) : void 0;
      if (port !== void 0) return port.received({ ...m, rid: rid.slice(cut + 1) });
    }
    const session = m["session"];
    if (typeof session === "string") {
      this.ports.get(session)?.received(m);
      return;
    }
    if (m["type"] === "error") {
      if (rid !== void 0 && rid === this.authPending?.rid) this.authPending = null;
      const ev = { code: String(m["code"] ?? "internal"), message: String(m["message"] ?? "") };
      if (typeof rid === "string") ev.rid = rid;
      this.connectionError(ev);
    }
  }
  // ---- connecting --------------------------------------------------------------------------
  /** Opens the connection (and keeps reconnecting until `disconnect`). */
  connect() {
    this.wantOnline = true;
    this.authError = null;
    this.protocolError = null;
    if (this.sock !== null || this.tokenWait !== null) return;
    if (this.retryTimer !== null) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.setState(this.opened ? "reconnecting" : "connecting");
    const fn = this.tokenFn;
    if (fn === null) return this.open();
    const attempt = ++this.tokenAttempts;
    this.tokenWait = attempt;
    callTokenFn(fn).then(
      (t) => {
        if (this.tokenWait !== attempt) return;
        this.tokenWait = null;
        this.setToken(t);
        this.open();
      },
      (e) => {
        if (this.tokenWait !== attempt) return;
        this.tokenWait = null;
        this.connectionError({ code: "unauthorized", message: `could not get a token: ${errorMessage2(e)}` });
        this.onClosed(void 0);
      }
    );
  }
  /** Opens the socket with the current token. */
  open() {
    let url = this.url;
    if (this.token !== void 0) url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(this.token);
    let sock;
    try {
      sock = this.makeSocket(url, [this.binary ? BINARY_SUBPROTOCOL : JSON_SUBPROTOCOL]);
      if (this.binary) sock.binaryType = "arraybuffer";
    } catch {
      this.onClosed(void 0);
      return;
    }
    this.sock = sock;
    sock.onopen = () => {
      if (this.sock !== sock) return;
      if (this.binary && sock.protocol !== BINARY_SUBPROTOCOL) {
        const chose = sock.protocol ? `"${sock.protocol}"` : "none";
        const message = `the server did not choose subprotocol ${BINARY_SUBPROTOCOL} (it chose ${chose}): it does not speak the binary form; connect without \`binary\``;
        this.disconnect();
        this.protocolError = new ServerError("not_supported", message);
        this.connectionError({ code: "not_supported", message });
        for (const p of [...this.ports.values()]) p.failed(this.protocolError);
        return;
      }
      this.opened = true;
      this.lastClose = {};
      if (this.downlink !== null) this.hinted = this.setQuality(this.downlink) ? tierForMbps(this.downlink) : null;
      this.setState("online");
      for (const p of [...this.ports.values()]) p.socketOpened();
    };
    sock.onmessage = (ev) => {
      if (this.sock !== sock) return;
      let msg;
      if (this.codec !== null) {
        const bytes = frameBytes(ev.data);
        if (bytes === null) {
          this.connectionError({ code: "bad_frame", message: `the server sent a ${typeof ev.data === "string" ? "text" : "non-binary"} frame on the binary subprotocol` });
          return;
        }
        try {
          msg = this.codec.decodeServerFrame(bytes);
        } catch (e) {
          this.connectionError({ code: "bad_frame", message: `the server sent a frame that is not a montage.v1 message: ${errorMessage2(e)}` });
          return;
        }
        this.onMessage(msg);
        return;
      }
      try {
        msg = JSON.parse(String(ev.data));
      } catch {
        this.connectionError({ code: "bad_frame", message: "the server sent a frame that is not JSON" });
        return;
      }
      if (typeof msg === "object" && msg !== null && !Array.isArray(msg)) this.onMessage(msg);
    };
    sock.onclose = (ev) => {
      if (this.sock !== sock) return;
      this.sock = null;
      this.onClosed(ev);
    };
    sock.onerror = () => {
    };
  }
  /** Closes the socket and stays offline (sessions keep their edits queued locally). */
  disconnect() {
    this.stop("bye");
    this.lastClose = {};
    this.setState("offline");
  }
  /** Stops connecting and closes the socket. */
  stop(reason) {
    this.wantOnline = false;
    this.tokenWait = null;
    if (this.retryTimer !== null) {
      this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.settleAuth();
    const s = this.sock;
    this.sock = null;
    if (s !== null) {
      try {
        s.close(1e3, reason);
      } catch {
      }
      for (const p of [...this.ports.values()]) p.socketClosed();
    }
  }
  onClosed(ev) {
    this.settleAuth();
    for (const p of [...this.ports.values()]) p.socketClosed();
    this.lastClose = {};
    if (typeof ev?.code === "number") this.lastClose.closeCode = ev.code;
    if (typeof ev?.reason === "string") this.lastClose.closeReason = ev.reason;
    if (ev?.code === CLOSE_UNAUTHORIZED) {
      this.refusedInARow++;
      if (this.tokenFn !== null && this.refusedInARow === 1 && this.wantOnline) {
        this.connect();
        return;
      }
      return this.refused(new AuthError(ev.reason ?? "", ev.code));
    }
    if (!this.wantOnline) {
      this.setState("offline");
      return;
    }
    const b = this.opts.backoff ?? {};
    const base = Math.min(b.maxMs ?? 1e4, (b.initialMs ?? 250) * Math.pow(b.factor ?? 2, this.attempt));
    const delay = Math.round(base * (1 + (b.jitter ?? 0.2) * this.random()));
    this.attempt++;
    this.setState("offline", { attempt: this.attempt, retryInMs: delay });
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      if (this.wantOnline) this.connect();
    }, delay);
  }
  /** The server does not take the token: stop, and tell every session and listener. */
  refused(err) {
    this.stop("unauthorized");
    this.authError = err;
    this.refusedInARow = 0;
    this.setState("unauthorized");
    for (const p of [...this.ports.values()]) p.unauthorized(err);
    this.emit("unauthorized", err);
  }
  setState(state, extra = {}) {
    this.state = state;
    const ev = { state, ...extra, ...state === "online" ? {} : this.lastClose };
    if (state === "reconnecting" && ev.attempt === void 0) ev.attempt = this.attempt;
    this.emit("status", ev);
    for (const p of [...this.ports.values()]) p.statusChanged(ev);
  }
};
function callTokenFn(f) {
  try {
    return Promise.resolve(f()).then((t) => {
      if (typeof t !== "string" || t === "") throw new Error("the token function gave no token");
      return t;
    });
  } catch (e) {
    return Promise.reject(e);
  }
}
function frameBytes(data) {
  if (data instanceof ArrayBuffer || Object.prototype.toString.call(data) === "[object ArrayBuffer]") return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}
function errorMessage2(e) {
  return e instanceof Error ? e.message : String(e);
}

// ../client/src/client.ts
var MontageClient = class extends MontageSession {
  constructor(opts) {
    super(new MontageConnection({ ...opts, autoConnect: false }), opts.session, { ...opts, autoJoin: opts.autoConnect !== false });
  }
  /**
   * Replaces the connection's token with `token` (same user): sent as `auth` now when online
   * (answered by `authed`), and used for every later connection.
   */
  authenticate(token2) {
    this.connection.authenticate(token2);
  }
  /** Closes the connection and stays offline (edits keep queueing locally); `connect()` comes
   * back. */
  disconnect() {
    this.connection.disconnect();
  }
  /** Leaves the session and closes the connection. */
  leave() {
    super.leave();
    this.connection.disconnect();
  }
  /** Out of its only session: nothing is left for the socket to do. */
  denied() {
    this.connection.disconnect();
  }
};

// ../client/src/edits.ts
var edits_exports = {};
__export(edits_exports, {
  adjust: () => adjust,
  clipPath: () => clipPath,
  crop: () => crop,
  layerPath: () => layerPath,
  move: () => move,
  rotate: () => rotate,
  split: () => split,
  trim: () => trim
});
function field2(v, key) {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? v[key] : void 0;
}
function list(v) {
  return Array.isArray(v) ? v : [];
}
function layerPath(doc2, id) {
  const i = list(field2(field2(doc2, "canvas"), "layers")).findIndex((l) => field2(l, "id") === id);
  if (i < 0) throw new RangeError(`no layer with id ${JSON.stringify(id)}`);
  return ["canvas", "layers", i];
}
function clipPath(doc2, id) {
  const tracks2 = list(field2(field2(doc2, "timeline"), "tracks"));
  for (let t = 0; t < tracks2.length; t++) {
    const c = list(field2(tracks2[t], "clips")).findIndex((x) => field2(x, "id") === id);
    if (c >= 0) return ["timeline", "tracks", t, "clips", c];
  }
  throw new RangeError(`no clip with id ${JSON.stringify(id)}`);
}
function clipTimes(doc2, id) {
  const path = clipPath(doc2, id);
  let v = doc2;
  for (const s of path) v = typeof s === "number" ? list(v)[s] : field2(v, s);
  const [start2, inp, out] = [field2(v, "start"), field2(v, "in"), field2(v, "out")];
  if (typeof start2 !== "number" || typeof inp !== "number" || typeof out !== "number") {
    throw new RangeError(`clip ${JSON.stringify(id)} has no numeric start, in and out`);
  }
  return { path, start: start2, in: inp, out };
}
function crop(doc2, layer, rect) {
  return [{ op: "crop", path: layerPath(doc2, layer), rect: { x: rect.x, y: rect.y, w: rect.w, h: rect.h } }];
}
function rotate(doc2, layer, degrees) {
  return [{ op: "rotate", path: layerPath(doc2, layer), by: degrees }];
}
function adjust(doc2, layer, param, value2) {
  return [{ op: "adjust", path: layerPath(doc2, layer), param, value: value2 }];
}
function move(doc2, layer, dx, dy) {
  const p = layerPath(doc2, layer);
  const op = [];
  if (dx !== 0) op.push({ op: "add", path: [...p, "x"], value: dx });
  if (dy !== 0) op.push({ op: "add", path: [...p, "y"], value: dy });
  return op;
}
function trim(doc2, clip, edges) {
  const c = clipTimes(doc2, clip);
  const from = edges.from ?? c.start;
  const to = edges.to ?? c.start + (c.out - c.in);
  if (!(to > from)) throw new RangeError(`trim: the clip would end (${to}) before it starts (${from})`);
  const t = { op: "trim", path: c.path };
  if (edges.from !== void 0) {
    t.start = from;
    t.in = c.in + (from - c.start);
  }
  if (edges.to !== void 0) t.out = c.in + (to - c.start);
  return t.start === void 0 && t.out === void 0 ? [] : [t];
}
function split(doc2, clip, at2, id = newId()) {
  const c = clipTimes(doc2, clip);
  const end = c.start + (c.out - c.in);
  if (!(at2 > c.start && at2 < end)) throw new RangeError(`split: ${at2} is not inside the clip (${c.start}..${end})`);
  return [{ op: "split", path: c.path, at: at2, media: c.in + (at2 - c.start), id }];
}
function newId() {
  const c = globalThis.crypto;
  return c?.randomUUID ? c.randomUUID() : Math.random().toString(36).slice(2) + Date.now().toString(36);
}

// src/dom.ts
function $(id) {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`#${id} missing`);
  return el;
}
function h(tag, attrs = {}, text2) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text2 !== void 0) el.textContent = text2;
  return el;
}
function why(e) {
  return e instanceof ApiError || e instanceof ServerError ? `${e.code}: ${e.message}` : e.message;
}

// src/inbox.ts
var PAGE = 50;
var KEEP = 100;
var api = null;
var openSession = () => {
};
var currentSession = () => "";
var items2 = /* @__PURE__ */ new Map();
var loadSeq = 0;
var unwatch = null;
function setup(opts) {
  api = opts.api;
  openSession = opts.open;
  currentSession = opts.current;
  $("bell").addEventListener("click", () => {
    $("inbox-status").textContent = "";
    render();
    $("inbox").showModal();
  });
  $("inbox-close").addEventListener("click", close);
  $("inbox-read-all").addEventListener("click", () => void markAllRead());
}
function signedIn() {
  $("bell").hidden = false;
}
function watch(conn) {
  unwatch?.();
  unwatch = null;
  if (conn === null) return;
  const offs = [
    conn.on("notification", (n) => {
      items2.set(n.id, n);
      render();
    }),
    conn.on("status", (s) => {
      if (s.state === "online") void refresh();
    })
  ];
  unwatch = () => offs.forEach((off) => off());
}
async function refresh() {
  if (api === null) return;
  const seq = ++loadSeq;
  let page;
  try {
    page = await api.notifications({ unread: false, limit: PAGE });
  } catch (e) {
    if (seq === loadSeq) $("inbox-status").textContent = `Notifications could not be read (${why(e)})`;
    return;
  }
  if (seq !== loadSeq) return;
  $("inbox-status").textContent = "";
  for (const n of page) {
    const mine = items2.get(n.id);
    if (mine === void 0 || mine.time <= n.time) items2.set(n.id, n);
  }
  render();
}
function close() {
  const dlg = $("inbox");
  if (dlg.open) dlg.close();
}
function sorted() {
  const all = [...items2.values()].sort((a, b) => b.time - a.time);
  for (const old of all.splice(KEEP)) items2.delete(old.id);
  return all;
}
function words(n) {
  switch (n.kind) {
    case "mention":
      return "mentioned you in a comment";
    case "reply":
      return n.count > 1 ? `replied to your comment (${n.count} replies)` : "replied to your comment";
    case "invite":
      return `invited you${n.role ? ` as ${n.role}` : ""}`;
    case "role_changed":
      return n.role === "none" ? "removed your access" : `made you ${n.role ?? "a member"}`;
    case "award":
      return n.actor === "montage" ? "gave you a badge" : "awarded your work";
    case "suggestion_accepted":
      return "accepted your suggestion";
    case "suggestion_rejected":
      return "declined your suggestion";
    default:
      return String(n.kind).replace(/_/g, " ");
  }
}
function render() {
  const list2 = sorted();
  const unread = list2.filter((n) => !n.read).length;
  const count = $("bell-count");
  count.textContent = String(unread);
  count.hidden = unread === 0;
  $("bell").setAttribute("aria-label", unread === 0 ? "Notifications" : `Notifications, ${unread} unread`);
  $("inbox-read-all").disabled = unread === 0;
  const ul = $("inbox-list");
  ul.replaceChildren();
  if (list2.length === 0) ul.append(h("li", { class: "muted" }, "Nothing yet: mentions, replies, invites and role changes show here."));
  for (const n of list2) {
    const li = h("li", { "data-notification": n.id, "data-kind": n.kind, "data-session": n.session });
    if (!n.read) li.classList.add("unread");
    const here = n.session === currentSession();
    const text2 = `${n.actor} ${words(n)}`;
    const item = h("button", { type: "button", class: "item", title: here ? "In this session" : `Open ${n.session}` });
    item.append(
      h("span", { class: "what" }, text2),
      h("span", { class: "where muted" }, `${here ? "this session" : n.session} · ${new Date(n.time).toLocaleString()}`)
    );
    item.addEventListener("click", () => choose(n));
    li.append(item);
    ul.append(li);
  }
}
function choose(n) {
  close();
  if (!n.read) {
    items2.set(n.id, { ...n, read: true });
    render();
    api?.markRead([n.id]).catch((e) => console.warn("notification not marked read", e));
  }
  if (n.session !== currentSession()) openSession(n.session);
}
async function markAllRead() {
  if (api === null) return;
  const status = $("inbox-status");
  status.textContent = "Marking all read…";
  const shown = [...items2.values()].filter((n) => !n.read).map((n) => n.id);
  try {
    await api.markRead("all");
  } catch (e) {
    status.textContent = `Not marked read (${why(e)})`;
    return;
  }
  status.textContent = "";
  for (const id of shown) {
    const n = items2.get(id);
    if (n !== void 0) items2.set(id, { ...n, read: true });
  }
  render();
}

// src/timeline.ts
var local = { playhead: 0, drag: null };
var PPS = 60;
var snap = (t) => Math.max(0, Math.round(t * 16) / 16);
var MIN_LENGTH = 0.0625;
var host;
var isObj = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
function tracks(d) {
  const list2 = d?.timeline?.tracks;
  if (!Array.isArray(list2)) return [];
  return list2.filter(isObj).map((t) => ({
    id: String(t["id"] ?? ""),
    kind: t["kind"] === "audio" ? "audio" : "video",
    clips: (Array.isArray(t["clips"]) ? t["clips"] : []).filter(isObj).map((c) => ({
      id: String(c["id"] ?? ""),
      asset: String(c["asset"] ?? ""),
      start: Number(c["start"] ?? 0),
      in: Number(c["in"] ?? 0),
      out: Number(c["out"] ?? 0)
    }))
  }));
}
function drag(data) {
  const d = data?.drag;
  if (!d || typeof d.clip !== "string" || ![d.start, d.in, d.out].every((n) => typeof n === "number" && Number.isFinite(n))) return null;
  return d;
}
function playheadOf(data) {
  const t = data?.playhead;
  return typeof t === "number" && Number.isFinite(t) && t >= 0 ? t : null;
}
var label = (t) => `${t.toFixed(2)} s`;
function render2() {
  const d = host.doc();
  const editor = host.canEdit();
  $("video-btn").hidden = !editor;
  $("video-upload").disabled = !editor;
  $("split").hidden = !editor;
  const box = $("tracks");
  const dragged = /* @__PURE__ */ new Map();
  for (const [user, data] of host.others()) {
    const g = drag(data);
    if (g) dragged.set(g.clip, { drag: g, user });
  }
  if (local.drag) dragged.set(local.drag.clip, { drag: local.drag, user: host.me() });
  const all = tracks(d);
  let end = 10;
  box.replaceChildren();
  for (const t of all) {
    const row = h("div", { class: "track", "data-track": t.id, "aria-label": `${t.kind} track ${t.id}` });
    for (const c of t.clips) {
      const g = dragged.get(c.id);
      const shown = g ? g.drag : c;
      const len = shown.out - shown.in;
      if (!(len > 0)) continue;
      end = Math.max(end, shown.start + len);
      const el = h("div", {
        class: "clip",
        "data-clip": c.id,
        role: "button",
        "aria-label": `Clip ${c.id}: ${label(shown.start)} to ${label(shown.start + len)}`
      });
      el.style.left = `${shown.start * PPS}px`;
      el.style.width = `${Math.max(2, len * PPS)}px`;
      if (g && g.user !== host.me()) {
        el.classList.add("dragged");
        el.style.setProperty("--drag-color", host.colorOf(g.user));
        el.dataset["draggedBy"] = g.user;
      }
      el.append(h("span", { class: "edge in", "data-edge": "in", "aria-label": `Trim the start of ${c.id}` }), h("span", { class: "name" }, c.id), h("span", { class: "edge out", "data-edge": "out", "aria-label": `Trim the end of ${c.id}` }));
      if (t.kind === "audio") {
        el.classList.add("audio");
        const svg = waveform({ ...c, in: shown.in, out: shown.out }, len * PPS);
        if (svg) el.append(svg);
      }
      row.append(el);
    }
    box.append(row);
  }
  if (all.length === 0) box.append(h("p", { class: "muted" }, "No tracks yet: add a video."));
  const heads = [[host.me(), local.playhead]];
  for (const [user, data] of host.others()) {
    const t = playheadOf(data);
    if (t !== null) heads.push([user, t]);
  }
  for (const [user, t] of heads) {
    end = Math.max(end, t + 1);
    const mine = user === host.me();
    const line = h("div", { class: mine ? "playhead mine" : "playhead", "data-playhead": user, title: `${user}: ${label(t)}` });
    line.style.left = `${t * PPS}px`;
    line.style.setProperty("--head-color", host.colorOf(user));
    box.append(line);
  }
  box.style.width = `${(end + 2) * PPS}px`;
  $("playhead-info").textContent = `Playhead ${label(local.playhead)}`;
}
var waves = /* @__PURE__ */ new Map();
var WAVE_BUCKETS = 2e3;
function wave(asset) {
  const w = waves.get(asset);
  if (w === void 0) {
    waves.set(asset, "loading");
    void (async () => {
      try {
        const r = await fetch(`/v1/assets/${encodeURIComponent(asset)}/waveform?buckets=${WAVE_BUCKETS}`, { headers: { Authorization: `Bearer ${await host.token()}` } });
        const j = await r.json();
        if (!r.ok || typeof j.duration !== "number" || !Array.isArray(j.peaks)) throw new Error(`HTTP ${r.status}`);
        waves.set(asset, { duration: j.duration, peaks: j.peaks.map(Number) });
        render2();
      } catch {
      }
    })();
    return null;
  }
  return w === "loading" ? null : w;
}
function waveform(c, widthPx) {
  const w = wave(c.asset);
  if (w === null || w.peaks.length === 0 || !(w.duration > 0)) return null;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "wave");
  svg.setAttribute("viewBox", `0 0 ${Math.max(1, Math.round(widthPx))} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  const bars = Math.max(1, Math.floor(widthPx / 2));
  let d = "";
  for (let i = 0; i < bars; i++) {
    const t = c.in + (c.out - c.in) * (i + 0.5) / bars;
    const k = Math.min(w.peaks.length - 1, Math.max(0, Math.floor(t / w.duration * w.peaks.length)));
    const hgt = Math.max(1, (w.peaks[k] ?? 0) / 255 * 100);
    d += `M${i * 2 + 1} ${50 - hgt / 2}V${50 + hgt / 2}`;
  }
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  svg.append(path);
  svg.dataset["bars"] = String(bars);
  return svg;
}
var frameWanted = null;
var frameBusy = false;
var frameUrl = null;
function showFrame() {
  frameWanted = local.playhead;
  if (!frameBusy) void pumpFrames();
}
async function pumpFrames() {
  frameBusy = true;
  try {
    while (frameWanted !== null) {
      const t = frameWanted;
      frameWanted = null;
      const path = host.sessionPath();
      if (path === null) return;
      try {
        const headers = { Authorization: `Bearer ${await host.token()}` };
        const r = await fetch(`${path}/frame?t=${t}&tier=${host.tier()}`, { headers });
        if (!r.ok) {
          $("frame-info").textContent = `No frame at ${label(t)} (${r.status})`;
          continue;
        }
        const t0 = performance.now();
        const blob = await r.blob();
        host.reportDownload(blob.size, performance.now() - t0);
        const img = $("frame");
        if (frameUrl) URL.revokeObjectURL(frameUrl);
        frameUrl = URL.createObjectURL(blob);
        img.src = frameUrl;
        img.dataset["t"] = String(t);
        img.dataset["clips"] = r.headers.get("x-montage-clips") ?? "";
        $("frame-info").textContent = `Frame at ${label(t)}`;
      } catch (e) {
        $("frame-info").textContent = `No frame (${e.message})`;
      }
    }
  } finally {
    frameBusy = false;
  }
}
function setPlayhead(t) {
  local.playhead = snap(t);
  host.publish();
  render2();
  showFrame();
}
function clipOf(id) {
  for (const t of tracks(host.doc())) {
    const c = t.clips.find((x) => x.id === id);
    if (c) return c;
  }
  return void 0;
}
function timeAt(ev) {
  const r = $("tracks").getBoundingClientRect();
  return (ev.clientX - r.left) / PPS;
}
function beginDrag(ev, c, edge) {
  const x0 = ev.clientX;
  const len = c.out - c.in;
  const move2 = (e) => {
    const dt = (e.clientX - x0) / PPS;
    let g;
    if (edge === "in") {
      const shift = Math.max(-c.start, Math.min(snap(Math.max(-c.in, dt) + c.in) - c.in, len - MIN_LENGTH));
      g = { clip: c.id, start: c.start + shift, in: c.in + shift, out: c.out };
    } else if (edge === "out") {
      g = { clip: c.id, start: c.start, in: c.in, out: Math.max(c.in + MIN_LENGTH, snap(c.out + dt)) };
    } else {
      g = { clip: c.id, start: snap(c.start + dt), in: c.in, out: c.out };
    }
    local.drag = g;
    host.publish();
    render2();
  };
  const up = () => {
    window.removeEventListener("pointermove", move2);
    window.removeEventListener("pointerup", up);
    window.removeEventListener("pointercancel", up);
    const g = local.drag;
    local.drag = null;
    host.publish();
    if (g && (g.start !== c.start || g.in !== c.in || g.out !== c.out)) {
      host.edit((d) => {
        if (edge === "in") return edits_exports.trim(d, c.id, { from: g.start });
        if (edge === "out") return edits_exports.trim(d, c.id, { to: g.start + (g.out - g.in) });
        return [set([...edits_exports.clipPath(d, c.id), "start"], g.start)];
      });
    }
    render2();
  };
  window.addEventListener("pointermove", move2);
  window.addEventListener("pointerup", up);
  window.addEventListener("pointercancel", up);
}
function splitAtPlayhead() {
  const t = local.playhead;
  const all = tracks(host.doc());
  for (const track of [...all].reverse()) {
    const c = track.clips.find((x) => t > x.start && t < x.start + (x.out - x.in));
    if (c) {
      host.edit((d) => edits_exports.split(d, c.id, t));
      return;
    }
  }
  host.notice(`No clip plays at ${label(t)} to split.`);
}
async function addMedia(file) {
  const a = await host.upload(file);
  if (a === null) return;
  const kind = a.kind;
  if (kind !== "video" && kind !== "audio") {
    host.notice("That is a picture: upload it above the canvas. The timeline takes videos and sounds.");
    return;
  }
  const duration = Number(a.duration ?? 0) > 0 ? Number(a.duration) : 5;
  const id = `C${Math.random().toString(36).slice(2, 8)}`;
  const entry = { kind, duration };
  if (a.width !== void 0) entry["width"] = a.width;
  if (a.height !== void 0) entry["height"] = a.height;
  host.edit((d) => {
    const all = tracks(d);
    const ti = all.findIndex((t) => t.kind === kind);
    const clip = (start2) => ({ id, asset: a.id, start: start2, in: 0, out: Math.max(MIN_LENGTH, snap(duration)) });
    const asset = set(["assets", a.id], entry);
    if (ti < 0) {
      const track = { id: `T${Math.random().toString(36).slice(2, 6)}`, kind, clips: [clip(0)] };
      return [asset, ins(["timeline", "tracks", all.length], track)];
    }
    const clips = all[ti].clips;
    const end = clips.reduce((m, c) => Math.max(m, c.start + (c.out - c.in)), 0);
    return [asset, ins(["timeline", "tracks", ti, "clips", clips.length], clip(snap(end)))];
  });
}
function setup2(h0) {
  host = h0;
  const box = $("tracks");
  box.addEventListener("pointerdown", (ev) => {
    const el = ev.target.closest("[data-clip]");
    const c = el ? clipOf(el.dataset["clip"] ?? "") : void 0;
    if (c && host.canEdit()) {
      ev.preventDefault();
      beginDrag(ev, c, ev.target.dataset["edge"]);
      return;
    }
    setPlayhead(timeAt(ev));
    box.setPointerCapture(ev.pointerId);
    const scrub = (e) => setPlayhead(timeAt(e));
    const stop = () => {
      box.removeEventListener("pointermove", scrub);
      box.removeEventListener("pointerup", stop);
      box.removeEventListener("pointercancel", stop);
    };
    box.addEventListener("pointermove", scrub);
    box.addEventListener("pointerup", stop);
    box.addEventListener("pointercancel", stop);
  });
  $("split").addEventListener("click", splitAtPlayhead);
  $("video-upload").addEventListener("change", (ev) => {
    const input = ev.target;
    const f = input.files?.[0];
    input.value = "";
    if (f) void addMedia(f);
  });
}

// src/main.ts
function num2(v, d = 0) {
  return typeof v === "number" && Number.isFinite(v) ? v : d;
}
function colorOf(user) {
  let x = 0;
  for (const c of user) x = x * 31 + c.codePointAt(0) >>> 0;
  const hue = x % 360;
  const f = (n) => {
    const k = (n + hue / 30) % 12;
    const c = 0.45 - 0.45 * 0.9 * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(255 * c).toString(16).padStart(2, "0");
  };
  return `#${f(0)}${f(8)}${f(4)}`;
}
function show(id, visible) {
  const el = $(id);
  el.hidden = !visible;
  if ("disabled" in el && !(el instanceof HTMLLabelElement)) el.disabled = !visible;
}
function place(el, r, k) {
  el.style.left = `${r.x * k}px`;
  el.style.top = `${r.y * k}px`;
  el.style.width = `${r.w * k}px`;
  el.style.height = `${r.h * k}px`;
}
function closeShareDialog() {
  const dlg = $("share-dialog");
  if (dlg.open) dlg.close();
}
function closeHistoryDialog() {
  const dlg = $("history-dialog");
  if (dlg.open) dlg.close();
}
var notSent = (e) => e instanceof ServerError && e.code === "offline";
var client = null;
var token = "";
var tokenSource = { dev: false };
var me = "";
var sessionsApi = new SessionsApi({ token: () => freshToken() });
var deleting = false;
var pendingTitle = null;
var sessionId = "";
var role = null;
var selected = null;
var commentMode = false;
var comments = /* @__PURE__ */ new Map();
var previewUrl = null;
var sessionKey = null;
var pictures = /* @__PURE__ */ new Map();
function doc() {
  if (client === null || client.accessError !== null || client.sealError !== null) return null;
  return client.doc;
}
function encrypted() {
  return client?.encrypted ?? false;
}
function layers() {
  return (doc()?.canvas.layers ?? []).filter((l) => l.kind === "image");
}
function layerOf(id) {
  return id === null ? void 0 : layers().find((l) => l.id === id);
}
function textLayers() {
  if (!encrypted()) return [];
  return (doc()?.canvas.layers ?? []).filter((l) => l.kind === "text");
}
function textOf(id) {
  return id === null ? void 0 : textLayers().find((l) => l.id === id);
}
function textRect(l) {
  const size = Math.max(1, num2(l.size, 48));
  const chars = [...typeof l.text === "string" ? l.text : ""].length;
  return { x: num2(l.x), y: num2(l.y), w: Math.max(size, chars * size * 0.6), h: size * 1.25 };
}
function shownLayer(id) {
  return layerOf(id) ?? textOf(id);
}
function person(user) {
  return client?.participants.find((p) => p.user === user);
}
function notice(text2) {
  $("notice").textContent = text2;
}
function edit(make) {
  const d = doc();
  if (client === null || d === null) return;
  try {
    const op = make(d);
    if (op.length === 0) return;
    client.submit(op);
    notice("");
  } catch (e) {
    notice(`Edit refused: ${e.message}`);
  }
}
async function errorText(r) {
  try {
    const j = await r.json();
    return `${j.code ?? r.status}: ${j.message ?? r.statusText}`;
  } catch {
    return `${r.status} ${r.statusText}`;
  }
}
async function devToken(name) {
  const r = await fetch("/v1/dev/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: name, name })
  });
  if (!r.ok) throw new Error(await errorText(r));
  return (await r.json()).token;
}
async function freshToken() {
  const exp = Number(tokenClaims(token)?.["exp"] ?? 0);
  if (!tokenSource.dev || exp * 1e3 - Date.now() > 12e4) return token;
  token = await devToken(tokenSource.name);
  return token;
}
async function signIn(ev) {
  ev.preventDefault();
  const err = $("signin-error");
  err.textContent = "";
  const name = $("signin-name").value.trim();
  const session = $("signin-session").value.trim();
  const pasted = $("signin-token").value.trim();
  if (!name) return;
  if (pasted) {
    token = pasted;
    tokenSource = { dev: false };
  } else {
    try {
      token = await devToken(name);
    } catch (e) {
      err.textContent = `Could not sign in (${e.message}). Paste a token from \`montage token ${name}\` instead.`;
      return;
    }
    tokenSource = { dev: true, name };
  }
  me = tokenSubject(token) ?? name;
  let target2 = session;
  const invite = new URLSearchParams(location.search).get("invite");
  if (invite) {
    try {
      target2 = (await sessionsApi.acceptInvite(invite)).session;
    } catch (e) {
      err.textContent = `The invite could not be accepted (${why(e)}).`;
      return;
    }
  }
  sessionStorage.setItem("montage.signin", JSON.stringify({ name, session: target2 }));
  $("signin").hidden = true;
  $("my-sessions").hidden = false;
  signedIn();
  if (target2) open2(target2, keyInFragment(location.hash) ?? storedKey(target2));
  else void showSessions();
}
function showView(view) {
  $("signin").hidden = view !== "signin";
  $("sessions").hidden = view !== "sessions";
  $("editor").hidden = view !== "editor";
  $("no-access").hidden = view !== "no-access";
}
function setUrl(session) {
  const url = session === null ? "/" : `/?session=${encodeURIComponent(session)}${keyFragment()}`;
  history.replaceState(null, "", url);
}
function keyInFragment(hash) {
  const k = new URLSearchParams(hash.replace(/^#/, "")).get("key")?.trim() ?? "";
  return k === "" ? null : k;
}
function keyFragment() {
  return sessionKey === null ? "" : `#key=${sessionKey}`;
}
var KEY_STORE = "montage.key.";
function storedKey(session) {
  try {
    return localStorage.getItem(KEY_STORE + session);
  } catch {
    return null;
  }
}
function storeKey(session, key) {
  try {
    localStorage.setItem(KEY_STORE + session, key);
  } catch {
  }
}
async function showSessions() {
  closeSession();
  setUrl(null);
  showView("sessions");
  void refresh();
  $("session-label").textContent = "";
  const status = $("sessions-status");
  status.textContent = "Loading…";
  let list2;
  try {
    list2 = await sessionsApi.list();
  } catch (e) {
    status.textContent = `Your sessions could not be listed (${why(e)}).`;
    return;
  }
  list2.sort((a, b) => b.updated - a.updated);
  status.textContent = list2.length === 0 ? "No sessions yet: make one." : "";
  const ul = $("session-list");
  ul.replaceChildren();
  for (const x of list2) {
    const li = h("li", { "data-session": x.id });
    const name = x.title || "Untitled";
    const when = x.updated > 0 ? new Date(x.updated).toLocaleString() : "";
    const button = h("button", { type: "button", "aria-label": `Open ${name}` }, "Open");
    button.addEventListener("click", () => open2(x.id));
    li.append(
      h("span", { class: "name", title: x.id }, storedKey(x.id) === null ? name : `${name} (encrypted)`),
      h("span", { class: "pill" }, x.role),
      h("span", { class: "muted" }, `v${x.version}${when ? ` · ${when}` : ""}`),
      button
    );
    ul.append(li);
  }
}
async function newSession(ev) {
  ev.preventDefault();
  const input = $("new-title");
  const title = input.value.trim();
  const status = $("sessions-status");
  status.textContent = "Creating…";
  try {
    const s = await sessionsApi.create(title ? { title } : {});
    input.value = "";
    status.textContent = "";
    pendingTitle = title || null;
    open2(s.id);
  } catch (e) {
    status.textContent = `The session could not be created (${why(e)}).`;
  }
}
async function newEncryptedSession() {
  const input = $("new-title");
  const title = input.value.trim();
  const status = $("sessions-status");
  status.textContent = "Creating…";
  const key = SessionKey.generate().toText();
  let s;
  try {
    s = await sessionsApi.create({ encrypted: true });
  } catch (e) {
    status.textContent = `The session could not be created (${why(e)}).`;
    return;
  }
  if (s["encrypted"] !== true) {
    status.textContent = "This server does not make end-to-end encrypted sessions.";
    return;
  }
  input.value = "";
  status.textContent = "";
  pendingTitle = title || null;
  open2(s.id, key);
}
function keyFromInput(text2) {
  try {
    return keyInFragment(new URL(text2.trim()).hash);
  } catch {
    return null;
  }
}
function sessionFromInput(text2) {
  const t = text2.trim();
  try {
    const u = new URL(t);
    return u.searchParams.get("session") ?? t;
  } catch {
    return t;
  }
}
var retryTimer = null;
function closeSession() {
  if (retryTimer !== null) window.clearTimeout(retryTimer);
  retryTimer = null;
  if (previewTimer !== null) window.clearTimeout(previewTimer);
  previewTimer = null;
  const c = client;
  client = null;
  sessionKey = null;
  for (const p of pictures.values()) if (p.state === "ready") p.bitmap.close();
  pictures.clear();
  pictureQueue.length = 0;
  $("e2e-badge").hidden = true;
  watch(null);
  c?.close();
  role = null;
  selected = null;
  setCommentMode(false);
  comments.clear();
  deleting = false;
  const img = $("preview");
  img.removeAttribute("src");
  delete img.dataset["version"];
  $("comments").replaceChildren();
  $("comments-status").textContent = "";
  $("preview-info").textContent = "";
  notice("");
  closeShareDialog();
  closeHistoryDialog();
  historyVersions = [];
  $("history-list").replaceChildren();
  clearHistoryPreview();
  showConnection("offline", 0);
  render3();
}
function open2(session, key = storedKey(session)) {
  closeSession();
  sessionId = session;
  let keys = null;
  if (key !== null) {
    try {
      keys = Keyring.parse(key);
    } catch (e) {
      setUrl(session);
      showE2eProblem(`This link's key is not a session key (${e.message}): open the session with its link, which carries the key.`, e.message);
      return;
    }
    sessionKey = key;
  }
  setUrl(session);
  sessionStorage.setItem("montage.signin", JSON.stringify({ name: $("signin-name").value.trim(), session }));
  showView("editor");
  $("session-label").textContent = `Session: ${session}`;
  $("session-label").title = session;
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`;
  const c = new MontageClient({ url, token: freshToken, user: me, session, backoff: { initialMs: 200, maxMs: 3e3 }, ...keys === null ? {} : { keys } });
  client = c;
  $("e2e-badge").hidden = keys === null;
  watch(c.connection);
  recognition.clear();
  local.playhead = 0;
  local.drag = null;
  c.on("change", (ev) => {
    render3();
    if (ev.origin !== "local") schedulePreview();
    if (!encrypted() && (doc()?.timeline?.tracks?.length ?? 0) > 0) showFrame();
  });
  c.on("status", (s) => {
    showConnection(s.state, s.pending, s.closeReason);
    if (s.state === "online" && s.pending === 0) schedulePreview();
  });
  c.on("joined", () => {
    role = c.role;
    showView("editor");
    subscribePreviews();
    if (c.encrypted && sessionKey !== null) {
      storeKey(session, sessionKey);
      $("preview-info").textContent = "End-to-end encrypted: the server can't read it, so there are no previews; pictures are sealed before they are uploaded, and the canvas is drawn here from your copy.";
    }
    void loadComments();
    const title = pendingTitle;
    pendingTitle = null;
    if (title !== null && doc()?.title === "" && roleAtLeast(role, "editor")) edit(() => [textInsert(["title"], 0, title)]);
    render3();
    renderShare();
  });
  c.on("participants", () => {
    renderPeople();
    renderOverlay();
    renderShare();
  });
  c.on("presence", () => {
    renderOverlay();
    render2();
  });
  c.on("role", (r) => {
    role = c.role;
    render3();
    if (r.user === me) renderComments();
  });
  c.on("linkRoleChanged", (l) => {
    renderShare();
    $("share-status").textContent = `Link access: ${LINK_TEXT[l.role] ?? l.role}.`;
  });
  c.on("commentAdded", showComment);
  c.on("commentUpdated", showComment);
  c.on("preview", (p) => loadPreview(p.href, p.version, p.tier));
  c.connection.on("tier", (t) => {
    connectionTier = t.tier;
    document.body.dataset["connectionTier"] = t.tier;
  });
  c.on("accessDenied", (e) => onAccessDenied(c, e));
  c.on("undecryptable", (e) => onUndecryptable(c, e));
  c.on("keyRotated", (k) => onKeyRotated(c, k.keyEpoch, k.haveKey));
  c.on("unauthorized", (e) => notice(`The server refused your token (${e.reason || "no reason given"}): sign in again.`));
  c.on("tokenExpiring", (t) => console.info(`token expires at ${new Date(t.exp * 1e3).toISOString()}: refreshing`));
  c.on("rejected", (r) => notice(`The server refused an edit (${r.code}: ${r.message}); ${r.lost} local edit(s) were undone.`));
  c.on("error", (e) => {
    if (e.rid?.startsWith("link_role")) $("share-status").textContent = `Link access not changed (${e.code}: ${e.message})`;
    else if (e.code === "unauthorized" && !navigator.onLine) return;
    else notice(`${e.code}: ${e.message}`);
  });
}
var LINK_TEXT = {
  none: "only people added (private)",
  viewer: "anyone with the link can view",
  commenter: "anyone with the link can comment",
  editor: "anyone with the link can edit"
};
function onAccessDenied(c, e) {
  if (client !== c) return;
  if (deleting && e.reason === "deleted") return;
  role = null;
  render3();
  const text2 = {
    forbidden: "You don't have access to this session — ask the owner to share it.",
    removed: "You no longer have access to this session — ask the owner to share it again.",
    not_found: "There is no session with this id (it may have been deleted).",
    deleted: "The owner deleted this session."
  };
  $("no-access-h").textContent = e.reason === "deleted" || e.reason === "not_found" ? "Session not found" : "No access";
  $("no-access-text").textContent = text2[e.reason] ?? e.message;
  $("no-access-session").textContent = sessionId;
  $("no-access-text").title = e.message;
  $("no-access").dataset["reason"] = e.reason;
  $("no-access-again").hidden = !e.retryable;
  $("no-access-retry").textContent = e.retryable ? ". This page opens it as soon as you are let in." : "";
  $("conn").dataset["state"] = "offline";
  $("conn").textContent = e.reason === "deleted" || e.reason === "not_found" ? "Not found" : "No access";
  closeShareDialog();
  closeHistoryDialog();
  showView("no-access");
  if (retryTimer !== null) window.clearTimeout(retryTimer);
  retryTimer = null;
  if (e.retryable) {
    retryTimer = window.setTimeout(() => {
      retryTimer = null;
      if (client === c && c.accessError !== null) c.connect();
    }, 3e3);
  }
}
function onUndecryptable(c, e) {
  if (client !== c) return;
  role = null;
  render3();
  $("e2e-badge").hidden = true;
  let text2;
  if (!c.encrypted) text2 = "This session is end-to-end encrypted: open it with its link, which carries the key.";
  else if (e.kind === "tampered") text2 = "This session is end-to-end encrypted and could not be decrypted: wrong key. Open it with its link, which carries the right key.";
  else if (e.kind === "no_key") text2 = "This session is end-to-end encrypted and could not be decrypted: this link has no key for its current key epoch. Ask the owner for a new link.";
  else if (e.kind === "chain") text2 = "This session could not be decrypted: its history does not add up (the server's order was changed), so this page stopped.";
  else text2 = `This session could not be opened: ${e.message}.`;
  showE2eProblem(text2, e.message);
}
function showE2eProblem(text2, detail) {
  $("no-access-h").textContent = "End-to-end encrypted";
  $("no-access-text").textContent = text2;
  $("no-access-text").title = detail;
  $("no-access-session").textContent = sessionId;
  $("no-access").dataset["reason"] = "undecryptable";
  $("no-access-again").hidden = true;
  $("no-access-retry").textContent = "";
  $("conn").dataset["state"] = "offline";
  $("conn").textContent = "Not decrypted";
  closeShareDialog();
  closeHistoryDialog();
  showView("no-access");
}
function onKeyRotated(c, epoch, haveKey) {
  if (client !== c || haveKey) return;
  if (role === "owner" && sessionKey !== null) {
    const key = SessionKey.generate().toText();
    c.addKey(epoch, key);
    sessionKey = `${sessionKey},${epoch}:${key}`;
    setUrl(sessionId);
    storeKey(sessionId, sessionKey);
    renderShare();
    notice("The session's key changed (someone was removed or link access narrowed): share the new link with the people who stay.");
  } else {
    notice("The session's key changed: your edits wait until you open the owner's new link.");
  }
}
function showConnection(state, pending, reason = "") {
  const el = $("conn");
  el.dataset["state"] = state;
  const edits = `${pending} pending edit${pending === 1 ? "" : "s"}`;
  el.textContent = state === "online" ? pending > 0 ? `Online · ${edits}` : "Online" : state === "reconnecting" || state === "connecting" ? `Reconnecting… · ${edits}` : state === "unauthorized" ? `Unauthorized (${reason || "token refused"}) · ${edits}` : `Offline · ${edits}`;
}
var connectionTier = "excellent";
var chosenTier = () => {
  const v = $("tier").value;
  return v === "auto" ? connectionTier : v;
};
function subscribePreviews() {
  if (encrypted()) return;
  const v = $("tier").value;
  client?.subscribePreviews(v === "auto" ? void 0 : v).catch((e) => {
    if (!(e instanceof ServerError && (e.code === "offline" || e.code === "disconnected"))) {
      $("preview-info").textContent = `Previews unavailable (${why(e)})`;
    }
  });
}
var previewTimer = null;
function schedulePreview() {
  if (encrypted()) return;
  if (previewTimer !== null) window.clearTimeout(previewTimer);
  previewTimer = window.setTimeout(() => {
    previewTimer = null;
    if (client !== null) loadPreview(client.previewUrl(chosenTier()), client.version, chosenTier());
  }, 250);
}
var PREVIEW_TIMEOUT_MS = 1e4;
var previewBusy = false;
var previewNext = null;
function loadPreview(url, version, tier) {
  previewNext = { url, version, tier };
  if (!previewBusy) void pumpPreviews();
}
async function pumpPreviews() {
  previewBusy = true;
  try {
    while (previewNext !== null) {
      const next = previewNext;
      previewNext = null;
      try {
        await fetchPreview(next.url, next.version, next.tier);
      } catch (e) {
        console.warn("preview failed", e);
      }
    }
  } finally {
    previewBusy = false;
  }
}
async function fetchPreview(url, version, tier) {
  let r;
  let blob;
  try {
    const headers = { Authorization: `Bearer ${await freshToken()}` };
    r = await fetch(url, { headers, signal: AbortSignal.timeout(PREVIEW_TIMEOUT_MS) });
    if (!r.ok) {
      $("preview-info").textContent = `Preview unavailable (${await errorText(r)})`;
      return;
    }
    const t0 = performance.now();
    blob = await r.blob();
    client?.connection.reportDownload(blob.size, performance.now() - t0);
  } catch (e) {
    $("preview-info").textContent = `Preview unavailable (${e.message})`;
    return;
  }
  const shown = Number(r.headers.get("x-montage-version") ?? version);
  const img = $("preview");
  if (img.dataset["tier"] === tier && Number(img.dataset["version"] ?? -1) > shown) return;
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(blob);
  img.src = previewUrl;
  img.dataset["version"] = String(shown);
  img.dataset["tier"] = tier;
  $("preview-info").textContent = `Preview: version ${shown}, tier ${tier}`;
}
function render3() {
  const d = doc();
  document.body.dataset["role"] = role ?? "none";
  $("role").textContent = role ?? "—";
  const editor = roleAtLeast(role, "editor");
  const commenter = roleAtLeast(role, "commenter");
  const title = $("title");
  title.disabled = !editor;
  if (d && title.value !== d.title) setTitleKeepingCaret(title, d.title);
  if (!d) title.value = "";
  const e2e = encrypted();
  show("upload-btn", editor);
  $("upload").disabled = !editor;
  $("upload-btn").title = e2e ? "Sealed in your browser with the session's key before it is uploaded: the server can't see it (pictures only: no videos or sounds in an encrypted session)" : "";
  show("add-text-form", editor && e2e);
  $("add-text").disabled = !editor || !e2e;
  show("tier-label", !e2e);
  show("undo", editor);
  show("redo", editor);
  $("undo").disabled = !editor || !(client?.canUndo ?? false);
  $("redo").disabled = !editor || !(client?.canRedo ?? false);
  show("mode-comment", commenter);
  if (!commenter && commentMode) setCommentMode(false);
  $("invite-box").hidden = !editor;
  $("invite").disabled = !editor;
  $("invite-role").disabled = !editor;
  $("layer-panel").hidden = !editor;
  show("share", role === "owner");
  if (role !== "owner") closeShareDialog();
  renderHistoryControls();
  render2();
  if (shownLayer(selected) === void 0) selected = null;
  renderPeople();
  renderOverlay();
  renderLayerPanel();
  drawPictures();
}
function setTitleKeepingCaret(input, next) {
  const old = input.value;
  const focused = document.activeElement === input;
  const caret = input.selectionStart ?? old.length;
  input.value = next;
  if (!focused) return;
  let p = 0;
  while (p < old.length && p < next.length && old[p] === next[p]) p++;
  const moved = caret <= p ? caret : Math.max(p, caret + next.length - old.length);
  input.setSelectionRange(moved, moved);
}
function scale() {
  const d = doc();
  const stage = $("stage");
  return stage.clientWidth / (d?.canvas.width ?? 1920);
}
function peopleList() {
  const list2 = [...client?.participants ?? []].sort((a, b) => a.user.localeCompare(b.user));
  if (!list2.some((p) => p.user === me) && role) list2.unshift({ user: me, role, online: true });
  return list2;
}
function personItem(p, attr) {
  const li = h("li", { [attr]: p.user });
  const sw = h("span", { class: "swatch", "aria-hidden": "true" });
  sw.style.background = p.color ?? colorOf(p.user);
  li.append(sw, h("span", { class: "who" }, `${p.name ?? p.user}${p.user === me ? " (you)" : ""}${p.online ? "" : " · away"}`));
  return li;
}
function roleSelect(p, label2) {
  const sel = h("select", { "aria-label": label2 });
  for (const r of ["viewer", "commenter", "editor", "owner"]) {
    const o = h("option", { value: r }, r);
    if (r === p.role) o.selected = true;
    sel.append(o);
  }
  sel.addEventListener("change", () => setRole(p.user, sel.value));
  return sel;
}
var recognition = /* @__PURE__ */ new Map();
var BADGE_NAMES = {
  featured_creator: "Featured Creator",
  community_spotlight: "Community Spotlight",
  social_recognition: "Social Recognition"
};
function badgeChip(user) {
  const r = recognition.get(user);
  if (r === void 0) {
    recognition.set(user, "loading");
    sessionsApi.recognition(user).then(
      (got) => {
        recognition.set(user, got);
        renderPeople();
      },
      // Not shown rather than retried: the list is decoration, not the work.
      () => recognition.delete(user)
    );
    return null;
  }
  if (r === "loading" || r.badges.length + r.awards.length === 0) return null;
  const names = [
    ...r.badges.map((b) => (b.badge ?? "badge").replaceAll("_", " ")),
    ...r.awards.map((a) => BADGE_NAMES[a.type] ?? a.type)
  ];
  return h("span", { class: "badges", "data-badges": user, title: names.join(", "), "aria-label": `Badges: ${names.join(", ")}` }, `★ ${names.length}`);
}
function renderPeople() {
  const ul = $("people");
  ul.replaceChildren();
  for (const p of peopleList()) {
    const li = personItem(p, "data-user");
    const chip = badgeChip(p.user);
    if (chip) li.append(chip);
    if (role === "owner" && p.user !== me) li.append(roleSelect(p, `Role of ${p.name ?? p.user}`));
    else li.append(h("span", { class: "muted" }, p.role));
    ul.append(li);
  }
}
function renderOverlay() {
  const ov = $("overlay");
  const drag2 = ov.querySelector(".drag-box");
  ov.replaceChildren();
  const k = scale();
  const remoteSel = /* @__PURE__ */ new Map();
  for (const [user, data] of client?.presence ?? []) {
    if (Array.isArray(data?.selection)) {
      for (const id of data.selection) if (typeof id === "string") remoteSel.set(id, colorFor(user));
    }
  }
  const layerBox = (id, text2) => {
    const box = h("div", { class: "layer-box", "data-layer": id, role: "button", "aria-label": `Layer ${id}`, "aria-pressed": String(id === selected) }, text2);
    if (id === selected) box.classList.add("selected");
    const rc = remoteSel.get(id);
    if (rc) {
      box.classList.add("remote-sel");
      box.style.setProperty("--sel-color", rc);
    }
    return box;
  };
  for (const l of layers()) {
    const box = layerBox(l.id);
    place(box, l, k);
    box.style.transform = `rotate(${num2(l.rotation)}deg)`;
    const p = encrypted() ? pictures.get(l.asset) : void 0;
    if (p?.state === "failed") {
      box.classList.add("unreadable");
      box.dataset["picture"] = p.why;
      box.title = p.message;
      box.append(h("span", {}, PICTURE_FAILED[p.why]));
    }
    ov.append(box);
  }
  for (const l of textLayers()) {
    const box = layerBox(l.id, typeof l.text === "string" ? l.text : "");
    box.classList.add("text-layer");
    place(box, textRect(l), k);
    box.style.fontSize = `${Math.max(1, num2(l.size, 48)) * k}px`;
    box.style.color = typeof l.color === "string" ? l.color : "#222";
    ov.append(box);
  }
  for (const c of comments.values()) {
    if (c.parent_id || c.deleted || c.resolved) continue;
    const r = commentCanvasRect(c);
    if (!r) continue;
    const box = h("div", { class: "comment-box", "data-comment": c.id });
    place(box, r, k);
    box.append(h("span", {}, c.author_id));
    ov.append(box);
  }
  for (const [user, data] of client?.presence ?? []) {
    const cur = data?.cursor;
    if (!cur || typeof cur.x !== "number" || typeof cur.y !== "number") continue;
    const el = h("div", { class: "cursor", "data-cursor": user, "aria-label": `${nameOf(user)}'s cursor` });
    el.style.left = `${cur.x * k}px`;
    el.style.top = `${cur.y * k}px`;
    el.style.setProperty("--c", colorFor(user));
    el.append(h("span", {}, nameOf(user)));
    ov.append(el);
  }
  if (drag2) ov.append(drag2);
}
function colorFor(user) {
  return person(user)?.color ?? colorOf(user);
}
function nameOf(user) {
  return person(user)?.name ?? user;
}
function renderLayerPanel() {
  const l = layerOf(selected) ?? null;
  const t = textOf(selected) ?? null;
  const fs = $("layer-controls");
  fs.disabled = l === null || !roleAtLeast(role, "editor");
  fs.hidden = t !== null;
  const ts = $("text-controls");
  ts.hidden = t === null;
  ts.disabled = t === null || !roleAtLeast(role, "editor");
  $("layer-name").textContent = l ? l.id : t ? t.id : "none selected";
  const set2 = (id, v) => {
    const el = $(id);
    if (document.activeElement !== el) el.value = String(Math.round(v * 100) / 100);
  };
  if (t) {
    const text2 = $("t-text");
    if (document.activeElement !== text2) text2.value = typeof t.text === "string" ? t.text : "";
    set2("t-size", num2(t.size, 48));
  }
  if (!l) return;
  const crop2 = sourceRect(l);
  for (const k of ["x", "y", "w", "h"]) {
    set2(`l-${k}`, l[k]);
    set2(`c-${k}`, crop2[k]);
  }
  set2("a-opacity", num2(l.opacity, 1));
  for (const p of ["brightness", "contrast", "saturation", "exposure"]) set2(`a-${p}`, num2(l.adjust?.[p]));
}
var PICTURE_FAILED = {
  decrypt: "could not be decrypted",
  no_key: "could not be decrypted: no key",
  decode: "not a readable picture",
  fetch: "could not be loaded"
};
var PICTURES_FAILED = {
  decrypt: (n) => `${n === 1 ? "a picture" : `${n} pictures`} could not be decrypted (a wrong key, or changed on the server)`,
  no_key: (n) => `${n === 1 ? "a picture" : `${n} pictures`} could not be decrypted: sealed under a newer key than this link has (open the owner's newest link)`,
  decode: (n) => `${n === 1 ? "a file opened but is" : `${n} files opened but are`} not a readable picture`,
  fetch: (n) => `${n === 1 ? "a picture" : `${n} pictures`} could not be loaded`
};
var MAX_DRAWN_SIDE = 8192;
var PICTURE_LOADS = 3;
var pictureQueue = [];
var pictureLoads = 0;
function pictureOf(asset) {
  let p = pictures.get(asset);
  if (p === void 0) {
    p = { state: "loading" };
    pictures.set(asset, p);
    pictureQueue.push(asset);
    pumpPictures();
  }
  return p;
}
function pumpPictures() {
  const c = client;
  while (c !== null && pictureLoads < PICTURE_LOADS && pictureQueue.length > 0) {
    const asset = pictureQueue.shift();
    pictureLoads++;
    void loadPicture(c, asset).finally(() => {
      pictureLoads--;
      pumpPictures();
    });
  }
}
async function loadPicture(c, asset) {
  let got;
  let again = false;
  try {
    const bytes = await c.download(asset);
    const refused = pictureRefusal(bytes);
    try {
      got = refused !== null ? { state: "failed", why: "decode", message: `asset ${asset} opened, but is not decoded here: it ${refused}` } : { state: "ready", bitmap: await createImageBitmap(new Blob([bytes])) };
    } catch (e) {
      got = { state: "failed", why: "decode", message: `asset ${asset} opened, but is not a picture this browser reads (${e.message})` };
    }
  } catch (e) {
    if (e instanceof SealError) {
      got = { state: "failed", why: e.kind === "no_key" ? "no_key" : "decrypt", message: e.message };
    } else {
      got = { state: "failed", why: "fetch", message: `asset ${asset}: ${why(e)}` };
      again = !(e instanceof ApiError) || e.status === 429 || e.status >= 500;
    }
  }
  if (client !== c || pictures.get(asset)?.state !== "loading") {
    if (got.state === "ready") got.bitmap.close();
    return;
  }
  pictures.set(asset, got);
  if (got.state === "failed") console.warn(`picture ${asset}: ${got.message}`);
  if (again) {
    window.setTimeout(() => {
      if (client !== c || pictures.get(asset) !== got) return;
      pictures.delete(asset);
      drawPictures();
    }, 5e3);
  }
  drawPictures();
  renderOverlay();
}
function drawPictures() {
  const cv = $("e2e-canvas");
  const d = doc();
  const c = client;
  const status = $("pictures-status");
  if (c === null || d === null || !encrypted()) {
    cv.hidden = true;
    if (cv.width !== 0) cv.width = cv.height = 0;
    status.textContent = "";
    delete status.dataset["state"];
    return;
  }
  cv.hidden = false;
  const side = (v, dflt) => Math.max(1, Math.min(MAX_DRAWN_SIDE, Math.round(num2(v, dflt))));
  const w = side(d.canvas.width, 1920);
  const hh = side(d.canvas.height, 1080);
  if (cv.width !== w || cv.height !== hh) {
    cv.width = w;
    cv.height = hh;
  }
  const g = cv.getContext("2d");
  if (g === null) return;
  g.clearRect(0, 0, w, hh);
  const failed = /* @__PURE__ */ new Map();
  let loading = 0;
  for (const l of layers()) {
    if (typeof l.asset !== "string") continue;
    const p = pictureOf(l.asset);
    if (p.state === "ready") drawLayer(g, l, p.bitmap);
    else if (p.state === "loading") loading++;
    else failed.set(p.why, (failed.get(p.why) ?? 0) + 1);
  }
  const said = [...failed].map(([kind, n]) => PICTURES_FAILED[kind](n)).join("; ");
  status.textContent = said !== "" ? `Not shown: ${said}.` : loading > 0 ? "Opening pictures…" : "";
  status.dataset["state"] = failed.size > 0 ? "failed" : loading > 0 ? "loading" : "ready";
}
function drawLayer(g, l, bitmap) {
  const w = num2(l.w);
  const hh = num2(l.h);
  if (!(w > 0 && hh > 0)) return;
  const c = l.crop ?? { x: 0, y: 0, w: bitmap.width, h: bitmap.height };
  const x0 = Math.max(0, num2(c.x));
  const y0 = Math.max(0, num2(c.y));
  const x1 = Math.min(bitmap.width, num2(c.x) + num2(c.w));
  const y1 = Math.min(bitmap.height, num2(c.y) + num2(c.h));
  if (!(x1 > x0 && y1 > y0)) return;
  g.save();
  g.globalAlpha = Math.max(0, Math.min(1, num2(l.opacity, 1)));
  g.translate(num2(l.x) + w / 2, num2(l.y) + hh / 2);
  g.rotate(num2(l.rotation) * Math.PI / 180);
  g.scale(l.flip?.h ? -1 : 1, l.flip?.v ? -1 : 1);
  g.drawImage(bitmap, x0, y0, x1 - x0, y1 - y0, -w / 2, -hh / 2, w, hh);
  g.restore();
}
function shareLink() {
  return `${location.origin}/?session=${encodeURIComponent(sessionId)}${keyFragment()}`;
}
function renderShare() {
  const linkRole = client?.linkRole ?? null;
  const sel = $("link-role");
  if (linkRole !== null && document.activeElement !== sel) sel.value = linkRole;
  $("share-dialog").dataset["linkRole"] = linkRole ?? "";
  $("share-link").value = shareLink();
  const title = doc()?.title;
  $("share-name").textContent = title ? `“${title}”` : "this session";
  const ul = $("members");
  ul.replaceChildren();
  for (const p of peopleList().filter((x) => x.role !== "none")) {
    const label2 = p.name ?? p.user;
    const li = personItem(p, "data-member");
    if (p.user === me) {
      li.append(h("span", { class: "muted" }, p.role));
    } else {
      const remove = h("button", { type: "button", "aria-label": `Remove ${label2}` }, "Remove");
      remove.addEventListener("click", () => setRole(p.user, "none"));
      li.append(roleSelect(p, `Access of ${label2}`), remove);
    }
    ul.append(li);
  }
}
function setRole(user, r) {
  const dialogOpen = $("share-dialog").open;
  const status = dialogOpen ? $("share-status") : $("notice");
  if (dialogOpen) status.textContent = "";
  client?.setRole(user, r).catch((e) => {
    status.textContent = notSent(e) ? "Not connected: nothing changed." : `Role not changed (${why(e)})`;
  });
}
function openShare() {
  if (role !== "owner") return;
  $("share-status").textContent = "";
  $("delete-confirm").hidden = true;
  $("delete-session").hidden = false;
  renderShare();
  $("share-dialog").showModal();
}
async function changeLinkRole() {
  const r = $("link-role").value;
  const status = $("share-status");
  if (client?.setLinkRole(r)) {
    status.textContent = "Saving…";
    return;
  }
  try {
    const s = await sessionsApi.update(sessionId, { link_role: r });
    const now = s.link_role ?? r;
    status.textContent = `Link access: ${LINK_TEXT[now] ?? now}.`;
  } catch (e) {
    status.textContent = `Link access not changed (${why(e)})`;
    renderShare();
  }
}
async function copyLink() {
  const input = $("share-link");
  input.value = shareLink();
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    $("share-status").textContent = "Link copied.";
  } catch {
    $("share-status").textContent = "Press Ctrl+C to copy the selected link.";
  }
}
async function deleteSession() {
  const status = $("share-status");
  deleting = true;
  status.textContent = "Deleting…";
  try {
    await sessionsApi.delete(sessionId);
  } catch (e) {
    deleting = false;
    status.textContent = `The session was not deleted (${why(e)})`;
    return;
  }
  $("share-dialog").close();
  await showSessions();
}
async function createInvite() {
  const out = $("invite-link");
  try {
    const inv = await sessionsApi.createInvite(sessionId, { role: $("invite-role").value });
    out.value = `${location.origin}/?invite=${encodeURIComponent(inv.id)}${keyFragment()}`;
    out.select();
  } catch (e) {
    out.value = "";
    notice(`Invite refused (${why(e)})`);
  }
}
var titleSyncTimer = null;
function scheduleTitleSync() {
  if (role !== "owner" || encrypted()) return;
  if (titleSyncTimer !== null) window.clearTimeout(titleSyncTimer);
  const session = sessionId;
  titleSyncTimer = window.setTimeout(() => {
    titleSyncTimer = null;
    const title = doc()?.title;
    if (title === void 0 || session !== sessionId || role !== "owner") return;
    sessionsApi.update(session, { title }).catch((e) => console.warn("session title not saved", e));
  }, 1e3);
}
var HISTORY_PAGE = 50;
var historyVersions = [];
var historyEditor = false;
var historyLoadSeq = 0;
var historyPreviewSeq = 0;
var historyPreviewUrl = null;
function historyDialogOpen() {
  return $("history-dialog").open;
}
function historyStatus(text2) {
  if (historyDialogOpen()) $("history-status").textContent = text2;
  else notice(text2);
}
function renderHistoryControls() {
  const viewer = roleAtLeast(role, "viewer") && !encrypted();
  const editor = roleAtLeast(role, "editor") && viewer;
  show("history", viewer);
  show("history-restore", editor);
  show("history-name", editor);
  if (!editor) $("history-pick-name").replaceChildren();
  if (!viewer) {
    closeHistoryDialog();
    return;
  }
  if (!historyDialogOpen()) return;
  const head = client?.version ?? 0;
  $("history-head").textContent = `Now at version ${head}. Type any version up to it, or pick a saved one below.`;
  if (historyEditor !== editor) renderHistoryList();
}
function openHistory() {
  if (!roleAtLeast(role, "viewer") || client === null || encrypted()) return;
  const title = doc()?.title;
  $("history-title").textContent = title ? `of “${title}”` : "";
  $("history-status").textContent = "";
  $("history-pick-name").replaceChildren();
  clearHistoryPreview();
  historyVersions = [];
  renderHistoryList();
  $("history-more").hidden = true;
  $("history-dialog").showModal();
  renderHistoryControls();
  void loadHistory(false);
}
async function loadHistory(more) {
  const seq = ++historyLoadSeq;
  const session = sessionId;
  const list2 = $("history-list");
  const before = more ? historyVersions[historyVersions.length - 1]?.version : void 0;
  list2.dataset["state"] = "loading";
  $("history-status").textContent = "Loading versions…";
  let page;
  try {
    page = await sessionsApi.versions(session, before === void 0 ? { limit: HISTORY_PAGE } : { before, limit: HISTORY_PAGE });
  } catch (e) {
    if (seq !== historyLoadSeq || session !== sessionId) return;
    list2.dataset["state"] = "error";
    $("history-status").textContent = `Versions could not be listed (${why(e)})`;
    return;
  }
  if (seq !== historyLoadSeq || session !== sessionId) return;
  const all = more ? [...historyVersions, ...page] : page;
  historyVersions = all.sort((a, b) => b.version - a.version);
  $("history-more").hidden = page.length < HISTORY_PAGE;
  list2.dataset["state"] = "loaded";
  $("history-status").textContent = historyVersions.length === 0 ? "No saved versions yet: checkpoints come every few minutes of editing. Type a version number above to go back to any edit." : "";
  renderHistoryList();
}
function renderHistoryList() {
  const editor = roleAtLeast(role, "editor");
  historyEditor = editor;
  const ul = $("history-list");
  ul.replaceChildren();
  for (const x of historyVersions) {
    const v = x.version;
    const li = h("li", { "data-version": String(v) });
    const when = typeof x.time === "number" ? new Date(x.time).toLocaleString() : "—";
    li.append(h("span", { class: "v" }, `v${v}`), h("span", { class: "when" }, when), h("span", { class: "who" }, nameOf(x.user)));
    if (x.name) {
      const by = x.named_by ? `named by ${nameOf(x.named_by)}` : "";
      li.append(h("span", { class: "vname", title: `${x.name}${by ? ` (${by})` : ""}` }, `“${x.name}”`));
    }
    const actions = h("span", { class: "actions" });
    const preview = h("button", { type: "button", "aria-label": `Preview version ${v}` }, "Preview");
    preview.addEventListener("click", () => void previewVersion(v));
    actions.append(preview);
    if (editor) {
      const restore = h("button", { type: "button", "aria-label": `Restore version ${v}` }, "Restore");
      restore.addEventListener("click", () => void restoreVersion(v));
      const name = h("button", { type: "button", "aria-label": `Name version ${v}` }, "Name…");
      name.addEventListener("click", () => showNameForm(li, v, x.name ?? ""));
      actions.append(restore, name);
    }
    li.append(actions);
    ul.append(li);
  }
}
function typedVersion() {
  const raw = $("history-version").value.trim();
  const v = Number(raw);
  if (raw === "" || !Number.isSafeInteger(v) || v < 0) {
    $("history-status").textContent = "Type a version number (0 or more).";
    return null;
  }
  return v;
}
function clearHistoryPreview() {
  historyPreviewSeq++;
  const img = $("history-preview-img");
  img.removeAttribute("src");
  delete img.dataset["version"];
  if (historyPreviewUrl) URL.revokeObjectURL(historyPreviewUrl);
  historyPreviewUrl = null;
  $("history-preview-info").textContent = "";
  $("history-figure").hidden = true;
}
async function previewVersion(v) {
  const c = client;
  if (c === null || encrypted()) return;
  const seq = ++historyPreviewSeq;
  const info2 = $("history-preview-info");
  $("history-figure").hidden = false;
  info2.textContent = `Loading version ${v}…`;
  let blob;
  try {
    const headers = { Authorization: `Bearer ${await freshToken()}` };
    const r = await fetch(`${c.previewUrl("poor")}&version=${v}`, { headers, signal: AbortSignal.timeout(PREVIEW_TIMEOUT_MS) });
    if (!r.ok) {
      const text2 = await errorText(r);
      if (seq === historyPreviewSeq) info2.textContent = `No preview of version ${v} (${text2})`;
      return;
    }
    blob = await r.blob();
  } catch (e) {
    if (seq === historyPreviewSeq) info2.textContent = `No preview of version ${v} (${e.message})`;
    return;
  }
  if (seq !== historyPreviewSeq || client !== c) return;
  if (historyPreviewUrl) URL.revokeObjectURL(historyPreviewUrl);
  historyPreviewUrl = URL.createObjectURL(blob);
  const img = $("history-preview-img");
  img.src = historyPreviewUrl;
  img.alt = `Preview of version ${v}`;
  img.dataset["version"] = String(v);
  info2.textContent = `Version ${v}`;
}
async function restoreVersion(v) {
  const c = client;
  if (c === null || !roleAtLeast(role, "editor") || encrypted()) return;
  const session = sessionId;
  historyStatus(`Restoring version ${v}…`);
  let past;
  try {
    past = (await sessionsApi.state(session, v)).state;
  } catch (e) {
    if (client === c) historyStatus(`Version ${v} could not be read (${why(e)})`);
    return;
  }
  if (client !== c || session !== sessionId) return;
  if (doc() === null || !roleAtLeast(role, "editor")) {
    historyStatus(`Version ${v} was not restored: not in the session as an editor.`);
    return;
  }
  let changed;
  try {
    changed = c.restoreTo(past);
  } catch (e) {
    historyStatus(`Version ${v} could not be restored (${why(e)})`);
    return;
  }
  closeHistoryDialog();
  notice(changed ? `Restored version ${v} — Undo takes it back` : `Version ${v} is the same as now: nothing to restore`);
}
function showNameForm(where, v, current) {
  where.querySelector("form.name-form")?.remove();
  const form = h("form", { class: "name-form row" });
  const input = h("input", { "aria-label": `Name of version ${v}`, placeholder: "e.g. Sent to client", maxlength: "200", required: "" });
  input.value = current;
  const cancel = h("button", { type: "button" }, "Cancel");
  cancel.addEventListener("click", () => form.remove());
  form.append(input, h("button", { type: "submit" }, "Save name"), cancel);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = input.value.trim();
    if (name) void nameVersion(v, name, form);
  });
  where.append(form);
  input.focus();
}
async function nameVersion(v, name, form) {
  const session = sessionId;
  $("history-status").textContent = `Naming version ${v}…`;
  try {
    await sessionsApi.nameVersion(session, v, name);
  } catch (e) {
    if (session === sessionId) $("history-status").textContent = `Version ${v} was not named (${why(e)})`;
    return;
  }
  if (session !== sessionId) return;
  form.remove();
  await loadHistory(false);
  if (session === sessionId && $("history-list").dataset["state"] === "loaded") $("history-status").textContent = `Named version ${v} “${name}”.`;
}
function opened(c) {
  const cl = client;
  if (cl === null || !cl.encrypted) return c;
  try {
    const o = cl.openComment(c);
    return { ...o, annotations: o.annotations ?? [] };
  } catch {
    return { ...c, content: "(could not be decrypted)", annotations: [] };
  }
}
function showComment(c0) {
  const c = opened(c0);
  comments.set(c.id, c);
  renderComments();
  renderOverlay();
}
async function loadComments() {
  try {
    for (const c of await sessionsApi.comments(sessionId)) comments.set(c.id, opened(c));
  } catch (e) {
    $("comments-status").textContent = `Comments: ${why(e)}`;
    return;
  }
  $("comments-status").textContent = "";
  renderComments();
  renderOverlay();
}
function commentRequest(req) {
  req?.catch((e) => {
    $("comments-status").textContent = notSent(e) ? "Comments need a connection: not sent." : `Comments: ${why(e)}`;
  });
}
function commentCanvasRect(c) {
  const a = c.annotations.find((x) => x.region);
  if (!a?.region) return null;
  const t = textOf(a.target ?? null);
  if (t) return { x: num2(t.x) + a.region.x, y: num2(t.y) + a.region.y, w: a.region.w, h: a.region.h };
  const l = layers().find((x) => x.id === a.target) ?? layers().find((x) => x.asset === c.asset_id);
  if (!l) return null;
  const src = sourceRect(l);
  const sx = l.w / src.w;
  const sy = l.h / src.h;
  return { x: l.x + (a.region.x - src.x) * sx, y: l.y + (a.region.y - src.y) * sy, w: a.region.w * sx, h: a.region.h * sy };
}
function sourceRect(l) {
  if (l.crop) return l.crop;
  const a = doc()?.assets[l.asset];
  return { x: 0, y: 0, w: num2(a?.width, l.w), h: num2(a?.height, l.h) };
}
function renderComments() {
  const ol = $("comments");
  ol.replaceChildren();
  const all = [...comments.values()].filter((c) => !c.deleted).sort((a, b) => a.timestamp.localeCompare(b.timestamp));
  const commenter = roleAtLeast(role, "commenter");
  for (const c of all.filter((x) => !x.parent_id)) {
    const li = h("li", { "data-comment": c.id });
    if (c.resolved) li.classList.add("resolved");
    li.append(h("div", { class: "meta" }, `${nameOf(c.author_id)}${c.resolved ? " · resolved" : ""}`), h("div", { class: "content" }, c.content));
    const replies = h("ol", { class: "replies" });
    for (const r of all.filter((x) => x.parent_id === c.id)) {
      const ri = h("li", { "data-comment": r.id });
      ri.append(h("span", { class: "meta" }, `${nameOf(r.author_id)}: `), h("span", { class: "content" }, r.content));
      replies.append(ri);
    }
    li.append(replies);
    if (commenter) {
      const form = h("form", { "aria-label": `Reply to ${nameOf(c.author_id)}` });
      const input = h("input", { "aria-label": "Reply", placeholder: "Reply…", maxlength: "4000" });
      form.append(input, h("button", { type: "submit" }, "Reply"));
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const text2 = input.value.trim();
        if (!text2) return;
        commentRequest(client?.reply(c.id, text2));
        input.value = "";
      });
      const resolve = h("button", { type: "button" }, c.resolved ? "Reopen" : "Resolve");
      resolve.addEventListener("click", () => commentRequest(client?.resolveComment(c.id, !c.resolved)));
      li.append(form, resolve);
    }
    ol.append(li);
  }
}
function askComment(box) {
  const over = (l) => box.x < l.x + l.w && box.x + box.w > l.x && box.y < l.y + l.h && box.y + box.h > l.y;
  const hit = [...layers()].reverse().find(over);
  if (!hit) {
    const t = [...textLayers()].reverse().find((l) => over(textRect(l)));
    if (t) return askCommentOn(void 0, { region: regionOn(box, textRect(t)), target: t.id });
    notice(encrypted() ? "Drag the box over a layer to comment on it." : "Drag the box over a picture to comment on it.");
    return;
  }
  const src = sourceRect(hit);
  const sx = src.w / hit.w;
  const sy = src.h / hit.h;
  const x0 = Math.max(hit.x, box.x);
  const y0 = Math.max(hit.y, box.y);
  const x1 = Math.min(hit.x + hit.w, box.x + box.w);
  const y1 = Math.min(hit.y + hit.h, box.y + box.h);
  const region = {
    x: Math.round(src.x + (x0 - hit.x) * sx),
    y: Math.round(src.y + (y0 - hit.y) * sy),
    w: Math.max(1, Math.round((x1 - x0) * sx)),
    h: Math.max(1, Math.round((y1 - y0) * sy))
  };
  askCommentOn(encrypted() ? void 0 : hit.asset, { region, target: hit.id });
}
function regionOn(box, r) {
  const x0 = Math.max(r.x, box.x);
  const y0 = Math.max(r.y, box.y);
  const x1 = Math.min(r.x + r.w, box.x + box.w);
  const y1 = Math.min(r.y + r.h, box.y + box.h);
  return { x: Math.round(x0 - r.x), y: Math.round(y0 - r.y), w: Math.max(1, Math.round(x1 - x0)), h: Math.max(1, Math.round(y1 - y0)) };
}
function askCommentOn(asset, annotation) {
  const dlg = $("comment-dialog");
  const text2 = $("comment-text");
  text2.value = "";
  dlg.showModal();
  $("comment-form").onsubmit = (ev) => {
    ev.preventDefault();
    const content = text2.value.trim();
    if (content) commentRequest(client?.addComment({ content, ...asset === void 0 ? {} : { asset_id: asset }, annotations: [annotation] }));
    dlg.close();
  };
  $("comment-cancel").onclick = () => dlg.close();
}
function setCommentMode(on) {
  commentMode = on;
  $("mode-comment").setAttribute("aria-pressed", String(on));
  $("stage").classList.toggle("commenting", on);
}
function canvasPoint(ev) {
  const r = $("stage").getBoundingClientRect();
  const k = scale();
  return { x: Math.round((ev.clientX - r.left) / k), y: Math.round((ev.clientY - r.top) / k) };
}
var lastPresence = 0;
var presenceTimer = null;
var cursor = null;
function publishPresence() {
  const now = performance.now();
  const send = () => {
    lastPresence = performance.now();
    presenceTimer = null;
    client?.setPresence({ cursor, selection: selected ? [selected] : [], playhead: local.playhead, drag: local.drag });
  };
  if (now - lastPresence >= 33) send();
  else if (presenceTimer === null) presenceTimer = window.setTimeout(send, 33 - (now - lastPresence));
}
function setupStage() {
  const stage = $("stage");
  let drag2 = null;
  stage.addEventListener("pointerdown", (ev) => {
    const p = canvasPoint(ev);
    stage.focus();
    if (commentMode) {
      const box = h("div", { class: "drag-box" });
      $("overlay").append(box);
      drag2 = { start: p, layer: null, box, moved: false };
    } else {
      const target2 = ev.target.closest("[data-layer]");
      selected = target2?.dataset["layer"] ?? null;
      drag2 = { start: p, layer: roleAtLeast(role, "editor") ? selected : null, box: target2, moved: false };
      render3();
      publishPresence();
    }
    stage.setPointerCapture(ev.pointerId);
  });
  stage.addEventListener("pointermove", (ev) => {
    cursor = canvasPoint(ev);
    publishPresence();
    if (!drag2) return;
    const k = scale();
    const dx = cursor.x - drag2.start.x;
    const dy = cursor.y - drag2.start.y;
    drag2.moved ||= Math.abs(dx) + Math.abs(dy) > 2;
    if (commentMode && drag2.box) {
      place(drag2.box, { x: Math.min(drag2.start.x, cursor.x), y: Math.min(drag2.start.y, cursor.y), w: Math.abs(dx), h: Math.abs(dy) }, k);
    } else if (drag2.layer && drag2.box) {
      const l = shownLayer(drag2.layer);
      if (l) {
        drag2.box.style.left = `${(l.x + dx) * k}px`;
        drag2.box.style.top = `${(l.y + dy) * k}px`;
      }
    }
  });
  const end = (ev) => {
    if (!drag2) return;
    const d = drag2;
    drag2 = null;
    const p = canvasPoint(ev);
    if (commentMode) {
      d.box?.remove();
      const box = { x: Math.min(d.start.x, p.x), y: Math.min(d.start.y, p.y), w: Math.abs(p.x - d.start.x), h: Math.abs(p.y - d.start.y) };
      if (box.w >= 4 && box.h >= 4) askComment(box);
    } else if (d.layer && d.moved) {
      const layer = d.layer;
      edit((doc2) => edits_exports.move(doc2, layer, p.x - d.start.x, p.y - d.start.y));
    }
  };
  stage.addEventListener("pointerup", end);
  stage.addEventListener("pointercancel", () => {
    drag2?.box?.classList.contains("drag-box") && drag2.box.remove();
    drag2 = null;
    render3();
  });
  stage.addEventListener("pointerleave", () => {
    cursor = null;
    publishPresence();
  });
  stage.addEventListener("keydown", (ev) => {
    const id = shownLayer(selected)?.id;
    if (id === void 0 || !roleAtLeast(role, "editor")) return;
    const step = ev.shiftKey ? 50 : 10;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    const m = moves[ev.key];
    if (m) {
      ev.preventDefault();
      edit((d) => edits_exports.move(d, id, m[0], m[1]));
    } else if (ev.key === "Delete") {
      ev.preventDefault();
      edit((d) => [del(layerPath(d, id))]);
    }
  });
  new ResizeObserver(() => renderOverlay()).observe(stage);
}
function titleEdit() {
  const d = doc();
  const next = $("title").value;
  if (!d || d.title === next) return;
  edit(() => [textChange(["title"], d.title, next)]);
  scheduleTitleSync();
}
async function upload(file) {
  const c = client;
  if (c === null) return;
  let local2 = null;
  let body = file;
  if (c.encrypted) {
    if (/^(video|audio)\//.test(file.type)) {
      notice("Videos and sounds can't be added to an end-to-end encrypted session yet: only pictures (PNG, JPEG, WebP).");
      return;
    }
    body = new Uint8Array(await file.arrayBuffer());
    const refused = pictureRefusal(body);
    if (refused !== null) {
      notice(`This file can't be added: it ${refused}. Nothing was uploaded.`);
      return;
    }
    try {
      local2 = await createImageBitmap(file);
    } catch {
      notice("This file is not a picture this browser can read (PNG, JPEG or WebP): nothing was uploaded.");
      return;
    }
  }
  notice(c.encrypted ? "Sealing and uploading…" : "Uploading…");
  let a;
  try {
    a = await c.upload(body);
  } catch (e) {
    local2?.close();
    if (e instanceof SealError && e.kind === "no_key") notice("Upload not sealed: this page has no key for the session's current key epoch yet. Open the owner's new link.");
    else notice(e instanceof SealError ? `Upload not sealed (${e.message})` : `Upload refused (${why(e)})`);
    return;
  }
  if (client !== c) {
    local2?.close();
    return;
  }
  notice("");
  if (local2 !== null) pictures.set(a.id, { state: "ready", bitmap: local2 });
  const aw = local2?.width ?? num2(a.width, 1);
  const ah = local2?.height ?? num2(a.height, 1);
  const id = `L${Math.random().toString(36).slice(2, 8)}`;
  edit((d) => {
    const fit = Math.min(1, d.canvas.width * 0.6 / aw, d.canvas.height * 0.6 / ah);
    const w = Math.round(aw * fit);
    const hh = Math.round(ah * fit);
    const layer = { id, kind: "image", asset: a.id, x: Math.round((d.canvas.width - w) / 2), y: Math.round((d.canvas.height - hh) / 2), w, h: hh };
    return [set(["assets", a.id], { kind: "image", width: aw, height: ah }), ins(["canvas", "layers", d.canvas.layers.length], layer)];
  });
  selected = id;
  render3();
  publishPresence();
}
function setupControls() {
  setup({ api: sessionsApi, open: open2, current: () => client !== null && client.accessError === null ? sessionId : "" });
  setup2({
    doc,
    // No clips in an encrypted session: it takes sealed pictures only (the page draws no
    // frames, and the server can't probe a sealed video).
    canEdit: () => roleAtLeast(role, "editor") && !encrypted(),
    me: () => me,
    edit,
    others: () => [...client?.presence ?? []].filter(([u]) => u !== me),
    colorOf: colorFor,
    token: freshToken,
    // The server renders no frames of an encrypted session.
    sessionPath: () => client === null || encrypted() ? null : `/v1/sessions/${encodeURIComponent(sessionId)}`,
    tier: chosenTier,
    reportDownload: (bytes, ms) => client?.connection.reportDownload(bytes, ms),
    upload: async (file) => {
      const c = client;
      if (c === null) return null;
      notice("Uploading…");
      try {
        const a = await c.upload(file);
        notice("");
        return client === c ? a : null;
      } catch (e) {
        notice(`Upload refused (${why(e)})`);
        return null;
      }
    },
    publish: publishPresence,
    notice
  });
  $("signin-form").addEventListener("submit", (ev) => void signIn(ev));
  $("new-session-form").addEventListener("submit", (ev) => void newSession(ev));
  $("new-encrypted-session").addEventListener("click", () => void newEncryptedSession());
  $("open-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text2 = $("open-id").value;
    const id = sessionFromInput(text2);
    if (id) open2(id, keyFromInput(text2) ?? storedKey(id));
  });
  $("add-text-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("add-text-input");
    const text2 = input.value.trim();
    if (!text2 || !encrypted()) return;
    const id = `T${Math.random().toString(36).slice(2, 8)}`;
    edit((d) => {
      const layer = { id, kind: "text", text: text2, x: Math.round(d.canvas.width * 0.3), y: Math.round(d.canvas.height * 0.4), size: 96, color: "#1f2a44" };
      return [ins(["canvas", "layers", d.canvas.layers.length], layer)];
    });
    input.value = "";
    selected = id;
    render3();
    publishPresence();
  });
  const onText = (id, f) => $(id).addEventListener("change", () => {
    const l = textOf(selected);
    if (l) edit((d) => f(d, l));
  });
  onText("t-text", (d, l) => {
    const next = $("t-text").value;
    return next === l.text ? [] : [textChange([...layerPath(d, l.id), "text"], l.text, next)];
  });
  onText("t-size", (d, l) => {
    const v = Number($("t-size").value);
    return Number.isFinite(v) && v > 0 ? [set([...layerPath(d, l.id), "size"], v)] : [];
  });
  $("text-delete").addEventListener("click", () => {
    const l = textOf(selected);
    if (l) edit((d) => [del(layerPath(d, l.id))]);
  });
  $("my-sessions").addEventListener("click", () => void showSessions());
  $("no-access-back").addEventListener("click", () => void showSessions());
  $("no-access-again").addEventListener("click", () => client?.connect());
  $("share").addEventListener("click", openShare);
  $("history").addEventListener("click", openHistory);
  $("history-close").addEventListener("click", () => closeHistoryDialog());
  $("history-more").addEventListener("click", () => void loadHistory(true));
  $("history-pick").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = typedVersion();
    if (v !== null) void previewVersion(v);
  });
  $("history-restore").addEventListener("click", () => {
    const v = typedVersion();
    if (v !== null) void restoreVersion(v);
  });
  $("history-name").addEventListener("click", () => {
    const v = typedVersion();
    if (v !== null) showNameForm($("history-pick-name"), v, historyVersions.find((x) => x.version === v)?.name ?? "");
  });
  $("share-done").addEventListener("click", () => $("share-dialog").close());
  $("link-role").addEventListener("change", () => void changeLinkRole());
  $("copy-link").addEventListener("click", () => void copyLink());
  $("add-member-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("add-member-user");
    const user = input.value.trim();
    if (!user) return;
    setRole(user, $("add-member-role").value);
    input.value = "";
  });
  $("delete-session").addEventListener("click", () => {
    $("delete-session").hidden = true;
    $("delete-confirm").hidden = false;
  });
  $("delete-no").addEventListener("click", () => {
    $("delete-confirm").hidden = true;
    $("delete-session").hidden = false;
  });
  $("delete-yes").addEventListener("click", () => void deleteSession());
  window.addEventListener("offline", () => client?.disconnect());
  window.addEventListener("online", () => client?.connect());
  $("title").addEventListener("input", titleEdit);
  $("undo").addEventListener("click", () => client?.undo());
  $("redo").addEventListener("click", () => client?.redo());
  document.addEventListener("keydown", (ev) => {
    if (!(ev.ctrlKey || ev.metaKey) || !client || !roleAtLeast(role, "editor")) return;
    const k = ev.key.toLowerCase();
    if (k === "z" || k === "y") {
      ev.preventDefault();
      if (k === "y" || ev.shiftKey) client.redo();
      else client.undo();
    }
  });
  $("upload").addEventListener("change", (ev) => {
    const input = ev.target;
    const f = input.files?.[0];
    if (f) void upload(f).finally(() => input.value = "");
  });
  $("mode-comment").addEventListener("click", () => setCommentMode(!commentMode));
  $("tier").addEventListener("change", subscribePreviews);
  $("invite").addEventListener("click", () => void createInvite());
  const on = (id, ev, f) => $(id).addEventListener(ev, () => {
    const l = layerOf(selected);
    if (l) edit((d) => f(d, l));
  });
  const numberOf = (id) => Number($(id).value);
  const at2 = (d, l, ...rest) => [...layerPath(d, l.id), ...rest];
  for (const k of ["x", "y", "w", "h"]) {
    on(`l-${k}`, "change", (d, l) => {
      const v = numberOf(`l-${k}`);
      return Number.isFinite(v) && (v > 0 || k === "x" || k === "y") ? [set(at2(d, l, k), v)] : [];
    });
  }
  on("rot-l", "click", (d, l) => edits_exports.rotate(d, l.id, -90));
  on("rot-r", "click", (d, l) => edits_exports.rotate(d, l.id, 90));
  on("flip-h", "click", (d, l) => [set(at2(d, l, "flip"), { h: !l.flip?.h, v: !!l.flip?.v })]);
  on("flip-v", "click", (d, l) => [set(at2(d, l, "flip"), { h: !!l.flip?.h, v: !l.flip?.v })]);
  on("crop-apply", "click", (d, l) => {
    const rect = { x: numberOf("c-x"), y: numberOf("c-y"), w: numberOf("c-w"), h: numberOf("c-h") };
    return rect.w > 0 && rect.h > 0 && rect.x >= 0 && rect.y >= 0 ? edits_exports.crop(d, l.id, rect) : [];
  });
  on("crop-reset", "click", (d, l) => l.crop ? [del(at2(d, l, "crop"))] : []);
  on("a-opacity", "change", (d, l) => [set(at2(d, l, "opacity"), numberOf("a-opacity"))]);
  for (const k of ["brightness", "contrast", "saturation", "exposure"]) {
    on(`a-${k}`, "change", (d, l) => edits_exports.adjust(d, l.id, k, numberOf(`a-${k}`)));
  }
  const reorder = (by) => (d, l) => {
    const p = layerPath(d, l.id);
    const to = p[2] + by;
    return to >= 0 && to < d.canvas.layers.length ? [mov(p, to)] : [];
  };
  on("layer-up", "click", reorder(1));
  on("layer-down", "click", reorder(-1));
  on("layer-delete", "click", (d, l) => [del(layerPath(d, l.id))]);
}
function start() {
  setupControls();
  setupStage();
  const params = new URLSearchParams(location.search);
  const saved = sessionStorage.getItem("montage.signin");
  const nameInput = $("signin-name");
  const sessionInput = $("signin-session");
  sessionInput.value = params.get("session") ?? "";
  if (saved) {
    try {
      const s = JSON.parse(saved);
      nameInput.value = s.name ?? "";
      if (!sessionInput.value) sessionInput.value = s.session ?? "";
    } catch {
    }
  }
  if (params.get("invite")) {
    sessionInput.value ||= "(from the invite)";
  }
  showConnection("offline", 0);
  render3();
  window.montage = {
    doc: () => client?.doc ?? null,
    version: () => client?.version ?? 0,
    pending: () => client?.pendingCount ?? 0,
    state: () => client?.connectionState ?? "offline",
    downlinkMbps: () => client?.connection.downlinkMbps ?? null,
    encrypted: () => client?.encrypted ?? false,
    /** An encrypted session's pictures by asset id: `loading`, `ready` or `failed`. */
    pictures: () => Object.fromEntries([...pictures].map(([id, p]) => [id, p.state]))
  };
}
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
