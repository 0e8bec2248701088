import { describe, expect, it } from "vitest";
import { type Op, composeAll, decodeOp, encodeOp, transformCaret } from "../src/index.js";

const op = (j: unknown): Op => decodeOp(j);

describe("transformCaret (presence carets follow concurrent edits)", () => {
  const caret = { path: ["canvas", "layers", 1, "text"], pos: 3 };
  it("shifts past typing before it, not after it", () => {
    expect(transformCaret(caret, op([{ op: "text", path: caret.path, pos: 1, ins: "🎬🎬" }]))).toEqual({ ...caret, pos: 5 });
    expect(transformCaret(caret, op([{ op: "text", path: caret.path, pos: 4, ins: "x" }]))).toEqual(caret);
    expect(transformCaret(caret, op([{ op: "text", path: caret.path, pos: 3, ins: "x" }]))).toEqual(caret);
    expect(transformCaret(caret, op([{ op: "text", path: caret.path, pos: 3, ins: "x" }]), true)).toEqual({ ...caret, pos: 4 });
  });
  it("pulls back over deletions, at most to their start", () => {
    expect(transformCaret(caret, op([{ op: "text", path: caret.path, pos: 1, del: 5 }]))).toEqual({ ...caret, pos: 1 });
  });
  it("follows its layer through list changes and disappears with it", () => {
    expect(transformCaret(caret, op([{ op: "del", path: ["canvas", "layers", 0] }]))?.path).toEqual(["canvas", "layers", 0, "text"]);
    expect(transformCaret(caret, op([{ op: "mov", path: ["canvas", "layers", 1], to: 3 }]))?.path).toEqual(["canvas", "layers", 3, "text"]);
    expect(transformCaret(caret, op([{ op: "del", path: ["canvas", "layers", 1] }]))).toBeNull();
    expect(transformCaret(caret, op([{ op: "set", path: caret.path, value: "new" }]))).toBeNull();
  });
});

describe("composeAll", () => {
  it("turns a run of keystrokes into one text op", () => {
    const keys = [..."héllo🎬"].map((ch, i) => op([{ op: "text", path: ["title"], pos: i, ins: ch }]));
    expect(encodeOp(composeAll(keys))).toEqual([{ op: "text", path: ["title"], pos: 0, ins: "héllo🎬" }]);
    expect(composeAll([])).toEqual([]);
  });
});
