// The shared vectors written by `crates/ot/tests/it/vectors.rs`: every case must pass, so the
// TypeScript OT stays identical to the Rust engine `montage-ot`.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { type Json, OtError, apply, compose, decodeOp, deepEqual, encodeOp, transform, transformX } from "../src/index.js";

interface VectorFile<C> {
  docs: Json[];
  cases: C[];
}
function load<C>(name: string): VectorFile<C> {
  // MONTAGE_VECTORS_DIR: run against another set (e.g. a much larger one generated locally).
  const dir = process.env["MONTAGE_VECTORS_DIR"];
  const path = dir ? `${dir}/${name}.json` : fileURLToPath(new URL(`../../test-vectors/${name}.json`, import.meta.url));
  return JSON.parse(readFileSync(path, "utf8")) as VectorFile<C>;
}

/** Deep equality that says where it differs. */
function same(actual: unknown, expected: unknown, what: string): void {
  if (!deepEqual(actual, expected)) {
    expect.fail(`${what}\n   got: ${JSON.stringify(actual)}\nwanted: ${JSON.stringify(expected)}`);
  }
}

interface ApplyCase {
  doc: number;
  op: unknown;
  result?: Json;
  inverse?: unknown;
  error?: true;
  decode?: true;
  message?: string;
}
const applyFile = load<ApplyCase>("apply");

describe("apply vectors", () => {
  it("has a few hundred cases, some refused", () => {
    expect(applyFile.cases.length).toBeGreaterThan(300);
    expect(applyFile.cases.filter((c) => c.error).length).toBeGreaterThan(50);
  });
  it.each(applyFile.cases.map((c, i) => [i, c] as const))("case %i", (_i, c) => {
    const doc = applyFile.docs[c.doc]!;
    const before = JSON.stringify(doc);
    if (c.decode) {
      expect(() => decodeOp(c.op), `must not decode (Rust: ${c.message})`).toThrow(OtError);
      return;
    }
    const op = decodeOp(c.op);
    // Encoding normalizes (empty text steps and `null` optionals are written as nothing), and
    // is stable from then on.
    same(encodeOp(decodeOp(encodeOp(op))), encodeOp(op), "the wire form round-trips");
    if (c.error) {
      let err: unknown;
      try {
        apply(doc, op);
      } catch (e) {
        err = e;
      }
      expect(err, `must be refused (Rust: ${c.message})`).toBeInstanceOf(OtError);
      expect(JSON.stringify(doc)).toBe(before);
      return;
    }
    const r = apply(doc, op);
    same(r.doc, c.result, "result");
    same(encodeOp(r.inverse), c.inverse, "inverse");
    same(apply(r.doc, r.inverse).doc, doc, "the inverse restores the document");
    expect(JSON.stringify(doc)).toBe(before);
  });
});

interface TransformCase {
  doc: number;
  a: unknown;
  b: unknown;
  a_after_b: unknown;
  b_after_a: unknown;
  x?: [unknown, unknown];
}
const transformFile = load<TransformCase>("transform");

describe("transform vectors", () => {
  it("has a few hundred cases", () => expect(transformFile.cases.length).toBeGreaterThan(300));
  it.each(transformFile.cases.map((c, i) => [i, c] as const))("case %i", (_i, c) => {
    const doc = transformFile.docs[c.doc]!;
    const a = decodeOp(c.a);
    const b = decodeOp(c.b);
    const a2 = transform(a, b, "left");
    const b2 = transform(b, a, "right");
    same(encodeOp(a2), c.a_after_b, "a after b (a is Left)");
    same(encodeOp(b2), c.b_after_a, "b after a (b is Right)");
    const [xa, xb] = transformX(a, b, "left");
    const [wa, wb] = c.x ?? [c.a_after_b, c.b_after_a];
    same(encodeOp(xa), wa, "transformX: a");
    same(encodeOp(xb), wb, "transformX: b");
    // TP1 with the TypeScript apply.
    const viaA = apply(apply(doc, a).doc, b2).doc;
    const viaB = apply(apply(doc, b).doc, a2).doc;
    same(viaA, viaB, "TP1");
  });
});

interface ComposeCase {
  doc: number;
  a: unknown;
  b: unknown;
  composed: unknown;
  result: Json;
}
const composeFile = load<ComposeCase>("compose");

describe("compose vectors", () => {
  it("has a few hundred cases", () => expect(composeFile.cases.length).toBeGreaterThan(200));
  it.each(composeFile.cases.map((c, i) => [i, c] as const))("case %i", (_i, c) => {
    const doc = composeFile.docs[c.doc]!;
    const a = decodeOp(c.a);
    const b = decodeOp(c.b);
    const ab = compose(a, b);
    same(encodeOp(ab), c.composed, "composed");
    same(apply(doc, ab).doc, c.result, "apply(doc, a∘b)");
    same(apply(apply(doc, a).doc, b).doc, c.result, "apply(apply(doc, a), b)");
  });
});
