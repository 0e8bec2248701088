/**
 * Builders of media edits on the document model (docs/PROTOCOL.md "The document"): each finds a layer or clip by id
 * in the current document and returns an edit (`Op`) of the media components that `montage-ot`
 * transforms with their meaning (docs/OT.md §2.1), e.g. a trim concurrent with a split lands on
 * the half it meant, a crop concurrent with a rotation turns with the picture.
 *
 * ```ts
 * import { media } from "@montage/client";
 * client.submit(media.rotate(client.doc, "L1", 90));
 * client.submit(media.split(client.doc, "clip-3", 12.5));
 * ```
 */
import type { Component, Op, Rect } from "./component.js";
import type { Json } from "./json.js";
import type { Path } from "./path.js";
import type { MontageDocument } from "./types.js";

/** A document to look ids up in: typed, or plain JSON. */
export type DocLike = MontageDocument | Json;

/** The adjustments the renderer knows (0 = unchanged): brightness, contrast and saturation in
 * −1..1, exposure in stops (−10..10). Other `[a-z_]` names are kept as they are. */
export type AdjustParam = "brightness" | "contrast" | "saturation" | "exposure" | (string & {});

function field(v: unknown, key: string): unknown {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined;
}
function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** The path of the canvas layer with id `id` (`["canvas","layers",i]`); throws if none. */
export function layerPath(doc: DocLike, id: string): Path {
  const i = list(field(field(doc, "canvas"), "layers")).findIndex((l) => field(l, "id") === id);
  if (i < 0) throw new RangeError(`no layer with id ${JSON.stringify(id)}`);
  return ["canvas", "layers", i];
}

/** The path of the timeline clip with id `id` (`["timeline","tracks",t,"clips",c]`); throws if none. */
export function clipPath(doc: DocLike, id: string): Path {
  const tracks = list(field(field(doc, "timeline"), "tracks"));
  for (let t = 0; t < tracks.length; t++) {
    const c = list(field(tracks[t], "clips")).findIndex((x) => field(x, "id") === id);
    if (c >= 0) return ["timeline", "tracks", t, "clips", c];
  }
  throw new RangeError(`no clip with id ${JSON.stringify(id)}`);
}

/** A clip's `start`, `in` and `out` (seconds). */
function clipTimes(doc: DocLike, id: string): { path: Path; start: number; in: number; out: number } {
  const path = clipPath(doc, id);
  let v: unknown = doc;
  for (const s of path) v = typeof s === "number" ? list(v)[s] : field(v, s);
  const [start, inp, out] = [field(v, "start"), field(v, "in"), field(v, "out")];
  if (typeof start !== "number" || typeof inp !== "number" || typeof out !== "number") {
    throw new RangeError(`clip ${JSON.stringify(id)} has no numeric start, in and out`);
  }
  return { path, start, in: inp, out };
}

/** Sets a layer's crop rectangle, in the asset's pixels. */
export function crop(doc: DocLike, layer: string, rect: Rect): Op {
  return [{ op: "crop", path: layerPath(doc, layer), rect: { x: rect.x, y: rect.y, w: rect.w, h: rect.h } }];
}

/** Rotates a layer by `degrees` clockwise about its centre (concurrent rotations add up). */
export function rotate(doc: DocLike, layer: string, degrees: number): Op {
  return [{ op: "rotate", path: layerPath(doc, layer), by: degrees }];
}

/** Sets one adjustment of a layer (creating `adjust` if missing). */
export function adjust(doc: DocLike, layer: string, param: AdjustParam, value: number): Op {
  return [{ op: "adjust", path: layerPath(doc, layer), param, value }];
}

/** Moves a layer by (dx, dy) pixels: relative `add`s, so concurrent moves both count. */
export function move(doc: DocLike, layer: string, dx: number, dy: number): Op {
  const p = layerPath(doc, layer);
  const op: Component[] = [];
  if (dx !== 0) op.push({ op: "add", path: [...p, "x"], value: dx });
  if (dy !== 0) op.push({ op: "add", path: [...p, "y"], value: dy });
  return op;
}

/**
 * Moves a clip's edges, given as timeline times: `from` is where the clip now starts (its
 * media start moves with it), `to` where it now ends. Written as the engine's `trim` of
 * absolute `start`, `in`, `out`.
 */
export function trim(doc: DocLike, clip: string, edges: { from?: number; to?: number }): Op {
  const c = clipTimes(doc, clip);
  const from = edges.from ?? c.start;
  const to = edges.to ?? c.start + (c.out - c.in);
  if (!(to > from)) throw new RangeError(`trim: the clip would end (${to}) before it starts (${from})`);
  const t: Extract<Component, { op: "trim" }> = { op: "trim", path: c.path };
  if (edges.from !== undefined) {
    t.start = from;
    t.in = c.in + (from - c.start);
  }
  if (edges.to !== undefined) t.out = c.in + (to - c.start);
  return t.start === undefined && t.out === undefined ? [] : [t];
}

/**
 * Cuts a clip at timeline time `at`, strictly inside it: the clip keeps `start..at`, and a copy
 * with id `id` (random by default) plays the rest. `media` (the asset time at `at`) is computed
 * as the engine expects: `in + (at − start)`.
 */
export function split(doc: DocLike, clip: string, at: number, id: string = newId()): Op {
  const c = clipTimes(doc, clip);
  const end = c.start + (c.out - c.in);
  if (!(at > c.start && at < end)) throw new RangeError(`split: ${at} is not inside the clip (${c.start}..${end})`);
  return [{ op: "split", path: c.path, at, media: c.in + (at - c.start), id }];
}

function newId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID ? c.randomUUID() : Math.random().toString(36).slice(2) + Date.now().toString(36);
}
