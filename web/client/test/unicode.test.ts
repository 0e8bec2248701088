import { describe, expect, it } from "vitest";
import {
  OtError,
  apply,
  decodeOp,
  encodeOp,
  hasLoneSurrogate,
  scalarLength,
  textChange,
  textDelete,
  textInsert,
  toScalarIndex,
  toUtf16Index,
} from "../src/index.js";
import { TextOp } from "../src/text.js";

// "a🎬é漢" — the film clapper is outside the BMP: two UTF-16 units, one scalar value.
const s = "a🎬é漢";

describe("UTF-16 ↔ Unicode scalar positions", () => {
  it("counts scalar values", () => {
    expect(s.length).toBe(5);
    expect(scalarLength(s)).toBe(4);
    expect(scalarLength("")).toBe(0);
    expect(scalarLength("🎬🎬")).toBe(2);
  });
  it("converts both ways at every boundary", () => {
    const utf16 = [0, 1, 3, 4, 5];
    utf16.forEach((u, scalar) => {
      expect(toScalarIndex(s, u)).toBe(scalar);
      expect(toUtf16Index(s, scalar)).toBe(u);
    });
  });
  it("refuses a position inside a surrogate pair instead of rounding", () => {
    expect(() => toScalarIndex(s, 2)).toThrow(/surrogate pair/);
  });
  it("refuses positions outside the string", () => {
    expect(() => toScalarIndex(s, 6)).toThrow(RangeError);
    expect(() => toScalarIndex(s, -1)).toThrow(RangeError);
    expect(() => toUtf16Index(s, 5)).toThrow(RangeError);
    expect(() => toUtf16Index(s, 1.5)).toThrow(RangeError);
  });
  it("finds lone surrogates", () => {
    expect(hasLoneSurrogate(s)).toBe(false);
    expect(hasLoneSurrogate("\ud83c")).toBe(true);
    expect(hasLoneSurrogate("x\udfac")).toBe(true);
    expect(hasLoneSurrogate("\udfac\ud83c")).toBe(true);
  });
});

describe("text ops count scalar values", () => {
  const doc = { title: s, assets: {}, canvas: { width: 1, height: 1, layers: [] }, timeline: { tracks: [] }, meta: {} };
  it("inserts after an astral character by scalar index", () => {
    const { doc: d, inverse } = apply(doc, [textInsert(["title"], 2, "!")]);
    expect(d.title).toBe("a🎬!é漢");
    expect(apply(d, inverse).doc.title).toBe(s);
  });
  it("deletes an astral character as one char", () => {
    const { doc: d, inverse } = apply(doc, [textDelete(["title"], 1, 1)]);
    expect(d.title).toBe("aé漢");
    expect(encodeOp(inverse)).toEqual([{ op: "text", path: ["title"], pos: 1, ins: "🎬" }]);
  });
  it("refuses a range past the end (in scalars, not UTF-16 units)", () => {
    expect(() => apply(doc, [textDelete(["title"], 4, 1)])).toThrow(OtError);
    expect(() => apply(doc, [textInsert(["title"], 5, "x")])).toThrow(OtError);
  });
  it("transforms and composes by scalar counts", () => {
    const a = TextOp.insert(1, "🎬🎬");
    const b = TextOp.insert(3, "x");
    expect(b.transform(a, false).parts).toEqual([{ retain: 5 }, { insert: "x" }]);
    expect(a.compose(TextOp.delete(2, 1)).parts).toEqual([{ retain: 1 }, { insert: "🎬" }]);
    expect(TextOp.insert(0, "🎬").transformPosition(1, false)).toBe(2);
  });
  it("refuses strings with lone surrogates on decode", () => {
    expect(() => decodeOp([{ op: "text", path: ["title"], pos: 0, ins: "\ud83c" }])).toThrow(OtError);
  });
  it("a text field's new value becomes one replaced span, never half a surrogate pair", () => {
    const change = (next: string) => apply(doc, [textChange(["title"], s, next)]);
    for (const next of ["", "x", s, "a🎬!é漢", "a🎭é漢", "🎬é", "a🎬é漢🎬", "Za🎬", "a\u{1F3AD}\u{1F3AC}é漢"]) {
      expect(change(next).doc.title).toBe(next);
    }
    // Typing one char in the middle: the rest is kept, not retyped.
    expect(encodeOp([textChange(["title"], s, "a🎬!é漢")])).toEqual([{ op: "text", path: ["title"], pos: 2, ins: "!" }]);
    // 🎬 (U+1F3AC) → 🎭 (U+1F3AD) share their high surrogate: the whole character is replaced.
    expect(encodeOp([textChange(["title"], s, "a🎭é漢")])).toEqual([
      { op: "text", path: ["title"], pos: 1, ins: "🎭" },
      { op: "text", path: ["title"], pos: 2, del: 1 },
    ]);
    expect(TextOp.diff(s, s).isNoop()).toBe(true);
  });
  it("an editor's UTF-16 selection maps to an engine op and back", () => {
    // The user types "!" with the caret after the clapper: UTF-16 offset 3.
    const pos = toScalarIndex(s, 3);
    const { doc: d } = apply(doc, [textInsert(["title"], pos, "!")]);
    expect(toUtf16Index(d.title, pos + 1)).toBe(4);
  });
});
