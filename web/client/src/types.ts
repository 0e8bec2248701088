/** The document's shapes (docs/PROTOCOL.md "The document"), for typed access in an app. More optional fields may
 * exist; the engine keeps unknown fields as they are. */

/** @inline */
export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * A picture on the canvas: an asset at `x`, `y`, `w` × `h` canvas pixels, optionally cropped,
 * rotated, flipped, faded and adjusted.
 */
export interface ImageLayer {
  id: string;
  kind: "image";
  asset: string;
  x: number;
  y: number;
  w: number;
  h: number;
  /** Degrees clockwise about the layer's centre. */
  rotation?: number;
  /** 0..1 */
  opacity?: number;
  /** In the asset's pixels. */
  crop?: Rect;
  flip?: { h?: boolean; v?: boolean };
  /** 0 = unchanged; brightness/contrast/saturation −1..1, exposure in stops (−10..10). */
  adjust?: { brightness?: number; contrast?: number; saturation?: number; exposure?: number; [k: string]: number | undefined };
}

/** Text on the canvas at `x`, `y`, in `size` pixels and a CSS `color`. */
export interface TextLayer {
  id: string;
  kind: "text";
  text: string;
  x: number;
  y: number;
  size: number;
  color: string;
}

/** One layer of the canvas (in `canvas.layers`); `kind` tells which. */
export type Layer = ImageLayer | TextLayer;

/** A piece of an asset on a timeline track. */
export interface Clip {
  id: string;
  asset: string;
  /** Timeline time (seconds) where the clip starts. */
  start: number;
  /** The asset plays from `in` to `out` (seconds). */
  in: number;
  out: number;
}

/** A timeline track: video or audio clips in timeline order. */
export interface Track {
  id: string;
  kind: "video" | "audio";
  clips: Clip[];
}

/**
 * An uploaded file the document uses, by id in `assets`: its kind and, when known, its size or
 * length.
 */
export interface Asset {
  kind: "image" | "video" | "audio";
  width?: number;
  height?: number;
  duration?: number;
}

/**
 * A Montage document (docs/PROTOCOL.md "The document"): the title, the assets by id, the canvas and its layers, the
 * timeline and its tracks, and free-form `meta`. Use it as the `Doc` type of a {@link
 * MontageClient}.
 */
export interface MontageDocument {
  title: string;
  assets: Record<string, Asset>;
  canvas: { width: number; height: number; layers: Layer[] };
  timeline: { tracks: Track[] };
  meta: Record<string, unknown>;
}
