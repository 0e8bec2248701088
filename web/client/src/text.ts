/**
 * Text operations: retain / insert / delete over a string, counted in Unicode scalar values.
 * A port of `crates/ot/src/text.rs`; normal form, compose and transform are step for step the
 * same.
 */
import { errors } from "./error.js";
import type { Path } from "./path.js";
import { scalarLength, sliceScalars, toUtf16Index } from "./unicode.js";

/**
 * One step of a {@link TextOp}: keep `retain` scalars, insert a string, or delete `delete` scalars.
 */
export type TextPart = { retain: number } | { insert: string } | { delete: number };

function isRetain(p: TextPart | undefined): p is { retain: number } {
  return p !== undefined && "retain" in p;
}
function isInsert(p: TextPart | undefined): p is { insert: string } {
  return p !== undefined && "insert" in p;
}
function isDelete(p: TextPart | undefined): p is { delete: number } {
  return p !== undefined && "delete" in p;
}

function partLen(p: TextPart): number {
  if ("retain" in p) return p.retain;
  if ("delete" in p) return p.delete;
  return scalarLength(p.insert);
}

const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c: number) => c >= 0xdc00 && c <= 0xdfff;

function skipScalars(s: string, n: number): string {
  return s.slice(toUtf16Index(s, n));
}

/** One wire step: insert `ins` or delete `del` chars at `pos` of the string so far. */
export type TextStep = { pos: number; ins: string } | { pos: number; del: number };

/** A normalized text op: no empty parts, no trailing retain, neighbours of one kind merged,
 * and an insert always before a delete at the same position. */
export class TextOp {
  readonly parts: TextPart[] = [];

  /** Inserts `s` at scalar position `pos`. */
  static insert(pos: number, s: string): TextOp {
    const op = new TextOp();
    op.push({ retain: pos });
    op.push({ insert: s });
    return op;
  }
  /** Deletes `n` scalars starting at scalar position `pos`. */
  static delete(pos: number, n: number): TextOp {
    const op = new TextOp();
    op.push({ retain: pos });
    op.push({ delete: n });
    return op;
  }
  /**
   * The op turning `old` into `next` as one replaced span (the common start and end kept), as
   * for a text field whose whole new value is known; counted in scalars, never splitting a
   * surrogate pair. A no-op when they are equal.
   */
  static diff(old: string, next: string): TextOp {
    let p = 0;
    while (p < old.length && p < next.length && old[p] === next[p]) p++;
    if (p > 0 && isHighSurrogate(old.charCodeAt(p - 1))) p--;
    let s = 0;
    while (s < old.length - p && s < next.length - p && old[old.length - 1 - s] === next[next.length - 1 - s]) s++;
    if (s > 0 && isLowSurrogate(old.charCodeAt(old.length - s))) s--;
    const op = new TextOp();
    op.push({ retain: scalarLength(old.slice(0, p)) });
    op.push({ insert: next.slice(p, next.length - s) });
    op.push({ delete: scalarLength(old.slice(p, old.length - s)) });
    return op.trim();
  }
  /** The normalized op of the given parts (empty parts dropped, neighbours merged). */
  static fromParts(parts: readonly TextPart[]): TextOp {
    const op = new TextOp();
    for (const p of parts) op.push(p);
    return op.trim();
  }

  /** True if applying it changes nothing. */
  isNoop(): boolean {
    return this.parts.length === 0;
  }

  /** Appends a part, keeping the op normalized. */
  push(part: TextPart): void {
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
        // Keep inserts before deletes at one position.
        const before = parts[len - 2];
        if (len >= 2 && isInsert(before)) parts[len - 2] = { insert: before.insert + part.insert };
        else parts.splice(len - 1, 0, { insert: part.insert });
      } else {
        parts.push({ insert: part.insert });
      }
    }
  }

  /** Drops a trailing retain (normal form); returns this op. */
  trim(): TextOp {
    if (isRetain(this.parts[this.parts.length - 1])) this.parts.pop();
    return this;
  }

  /** Length of the string this op applies to, at least. */
  baseLen(): number {
    let n = 0;
    for (const p of this.parts) if (!isInsert(p)) n += partLen(p);
    return n;
  }

  /** Applies to `text`: the new string and the inverse (which carries the deleted chars). */
  apply(text: string, path: Path): { text: string; inverse: TextOp } {
    const len = scalarLength(text);
    const need = this.baseLen();
    if (need > len) throw errors.textOutOfBounds(path, 0, need, len);
    const inverse = new TextOp();
    let out = "";
    let rest = text; // the not yet consumed tail of the original
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
  steps(): TextStep[] {
    const out: TextStep[] = [];
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
  compose(other: TextOp): TextOp {
    const out = new TextOp();
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
    for (let p = a.nextWhole(); p !== undefined; p = a.nextWhole()) out.push(p);
    return out.trim();
  }

  /** `this` rewritten to apply after `other`; `left`: this op's inserts go first at a tie. */
  transform(other: TextOp, left: boolean): TextOp {
    const out = new TextOp();
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
          else n -= chunk.delete; // deleted by both: delete nothing twice
        }
      }
    }
    for (let p = a.nextWhole(); p !== undefined; p = a.nextWhole()) out.push(p);
    return out.trim();
  }

  /** Moves a caret at scalar index `pos` past this op; `stickAfter` keeps it after text
   * inserted exactly at it. */
  transformPosition(pos: number, stickAfter: boolean): number {
    let at = 0;
    let out = pos;
    for (const p of this.parts) {
      if (at > pos) break;
      if (isRetain(p)) at += p.retain;
      else if (isInsert(p)) {
        if (at < pos || stickAfter) out += scalarLength(p.insert);
      } else {
        if (at < pos) out -= Math.min(p.delete, pos - at);
        at += p.delete;
      }
    }
    return out;
  }

  /** True if both ops have the same parts. */
  equals(other: TextOp): boolean {
    if (this.parts.length !== other.parts.length) return false;
    return this.parts.every((p, i) => {
      const q = other.parts[i]!;
      if (isRetain(p)) return isRetain(q) && q.retain === p.retain;
      if (isInsert(p)) return isInsert(q) && q.insert === p.insert;
      return isDelete(q) && q.delete === p.delete;
    });
  }
}

/** Walks an op's parts, handing out pieces of at most `n` chars. */
class Taker {
  private idx = 0;
  /** Chars of parts[idx] already taken. */
  private offset = 0;
  constructor(private readonly parts: readonly TextPart[]) {}

  peekInsert(): boolean {
    return isInsert(this.parts[this.idx]);
  }

  nextWhole(): TextPart | undefined {
    const p = this.parts[this.idx];
    if (p === undefined) return undefined;
    let whole: TextPart = p;
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
  take(n: number, indivisible: "insert" | "delete"): TextPart {
    const p = this.parts[this.idx];
    if (p === undefined) return { retain: n };
    const whole = (isInsert(p) && indivisible === "insert") || (isDelete(p) && indivisible === "delete");
    if (whole) return this.nextWhole() ?? { retain: n };
    const remaining = partLen(p) - this.offset;
    if (remaining <= n) return this.nextWhole() ?? { retain: n };
    const start = this.offset;
    this.offset += n;
    if (isRetain(p)) return { retain: n };
    if (isDelete(p)) return { delete: n };
    return { insert: sliceScalars(p.insert, start, n) };
  }
}
