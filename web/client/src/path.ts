/** A path segment: an object key (string) or a list index (non-negative integer). */
export type Seg = string | number;
/** Where a component applies: the keys and indices from the document's root. */
export type Path = readonly Seg[];

/** True if both paths have the same segments. */
export function pathEq(a: readonly Seg[], b: readonly Seg[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True if `p` is a prefix of `q` (equal counts). */
export function isPrefix(p: readonly Seg[], q: readonly Seg[]): boolean {
  if (q.length < p.length) return false;
  for (let i = 0; i < p.length; i++) if (p[i] !== q[i]) return false;
  return true;
}

/** The last segment when it is a list index, else `undefined`. */
export function lastIndex(p: Path): number | undefined {
  const l = p[p.length - 1];
  return typeof l === "number" ? l : undefined;
}

/** The path without its last segment. */
export function parent(p: Path): Path {
  return p.slice(0, -1);
}

/**
 * A copy of `p` with the segment at `at` replaced by the index `i` (unchanged when `at` is out of
 * range).
 */
export function withIndexAt(p: Path, at: number, i: number): Seg[] {
  const v = p.slice();
  if (at >= 0 && at < v.length) v[at] = i;
  return v;
}

/** A copy of `p` with its last segment replaced by the index `i`. */
export function withLastIndex(p: Path, i: number): Seg[] {
  return withIndexAt(p, Math.max(p.length - 1, 0), i);
}

/** `p` extended by one segment. */
export function child(p: Path, seg: Seg): Seg[] {
  return [...p, seg];
}

/** The Rust engine's display form: `["canvas","layers",0]`. */
export function showPath(p: Path): string {
  return "[" + p.map((s) => (typeof s === "number" ? String(s) : JSON.stringify(s))).join(",") + "]";
}
