/** Whole edits (`op.rs`): atomic validating apply with inverse, transform, transformX,
 * compose with the same merging rules. */
import { type Box, applyComponent } from "./apply.js";
import { type Component, type Op, isNoop } from "./component.js";
import { type Json, clone } from "./json.js";
import { pathEq } from "./path.js";
import { checkTouched } from "./schema.js";
import { type Side, transformComponent, transformXComponents } from "./transform.js";

/** What {@link apply} returns: the new document and the edit that undoes the applied one. */
export interface Applied<T extends Json = Json> {
  /** The new document (the input is never modified). */
  doc: T;
  /** The edit that undoes this one when applied to `doc`. */
  inverse: Op;
}

/**
 * Applies `op` to `doc` atomically, checks the document shape of docs/PROTOCOL.md "The document" for every entity it
 * touched, and returns the new document and the inverse. Throws `OtError` and leaves `doc`
 * untouched when any component fails.
 */
export function apply<T extends Json>(doc: T, op: readonly Component[]): Applied<T> {
  const box: Box = { root: clone(doc) };
  const inverse = applyComponents(box, op);
  checkTouched(box.root, op);
  return { doc: box.root as T, inverse };
}

/** Like `apply`, without the document-shape check (free-form JSON documents). */
export function applyUnchecked<T extends Json>(doc: T, op: readonly Component[]): Applied<T> {
  const box: Box = { root: clone(doc) };
  const inverse = applyComponents(box, op);
  return { doc: box.root as T, inverse };
}

/** Applies in place to a private copy (so a failure needs no rollback) and gathers inverses. */
function applyComponents(box: Box, op: readonly Component[]): Op {
  const undo: Component[][] = [];
  for (const c of op) undo.push(applyComponent(box, c));
  return undo.reverse().flat();
}

/** The edit that undoes `op` when applied right after it to `doc`'s successor. */
export function invert(doc: Json, op: readonly Component[]): Op {
  return applyUnchecked(doc, op).inverse;
}

/** `a` rewritten to apply after the concurrent `b`; `side` is `a`'s (`left`: `a` came first). */
export function transform(a: readonly Component[], b: readonly Component[], side: Side): Op {
  if (a.length === 1) {
    const c = a[0]!;
    if (isNoop(c)) return [];
    let cur: Component[] = [c];
    for (let k = 0; k < b.length; k++) {
      if (cur.length === 0) break;
      if (cur.length === 1) {
        const next: Component[] = [];
        transformComponent(cur[0]!, b[k]!, side, next);
        cur = next;
      } else {
        return transformXComponents(cur, b.slice(k), side)[0];
      }
    }
    return cur;
  }
  return transformXComponents(a, b, side)[0];
}

/** Both directions at once: [`a` after `b`, `b` after `a`]; `side` is `a`'s. */
export function transformX(a: readonly Component[], b: readonly Component[], side: Side): [Op, Op] {
  return transformXComponents(a, b, side);
}

/** One edit with the effect of `a` then `b`; neighbouring components on one path merge. */
export function compose(a: readonly Component[], b: readonly Component[]): Op {
  const out = a.slice();
  for (const c of b) pushMerged(out, c);
  return out;
}

/** Composes many edits as a balanced tree of `compose` calls. */
export function composeAll(ops: readonly (readonly Component[])[]): Op {
  let level: Op[] = ops.map((o) => o.slice());
  while (level.length > 1) {
    const next: Op[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? compose(level[i]!, level[i + 1]!) : level[i]!);
    }
    level = next;
  }
  return level[0] ?? [];
}

/** Appends a component to `op`, merging it into the last one where that is exact. */
export function pushMerged(op: Component[], c: Component): void {
  if (isNoop(c)) return;
  const last = op[op.length - 1];
  if (last !== undefined) {
    const merged = merge(last, c);
    if (merged !== undefined) {
      if (isNoop(merged)) op.pop();
      else op[op.length - 1] = merged;
      return;
    }
  }
  op.push(c);
}

function merge(a: Component, b: Component): Component | undefined {
  if (!pathEq(a.path, b.path)) return undefined;
  if (a.op === "text" && b.op === "text") return { op: "text", path: a.path, text: a.text.compose(b.text) };
  if ((a.op === "set" && b.op === "set") || (a.op === "crop" && b.op === "crop")) return b;
  if (a.op === "adjust" && b.op === "adjust" && a.param === b.param) return b;
  if (a.op === "trim" && b.op === "trim") {
    const t: Component = { op: "trim", path: a.path };
    const start = b.start ?? a.start;
    const inn = b.in ?? a.in;
    const out = b.out ?? a.out;
    if (start !== undefined) t.start = start;
    if (inn !== undefined) t.in = inn;
    if (out !== undefined) t.out = out;
    return t;
  }
  return undefined;
}

/** True if every component of the edit is a no-op. */
export function isNoopOp(op: readonly Component[]): boolean {
  return op.every(isNoop);
}
