/** The document's shapes (DESIGN §2), for typed access in an app. More optional fields may
 * exist; the engine keeps unknown fields as they are. */

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

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

export interface TextLayer {
  id: string;
  kind: "text";
  text: string;
  x: number;
  y: number;
  size: number;
  color: string;
}

export type Layer = ImageLayer | TextLayer;

export interface Clip {
  id: string;
  asset: string;
  /** Timeline time (seconds) where the clip starts. */
  start: number;
  /** The asset plays from `in` to `out` (seconds). */
  in: number;
  out: number;
}

export interface Track {
  id: string;
  kind: "video" | "audio";
  clips: Clip[];
}

export interface Asset {
  kind: "image" | "video" | "audio";
  width?: number;
  height?: number;
  duration?: number;
}

export interface MontageDocument {
  title: string;
  assets: Record<string, Asset>;
  canvas: { width: number; height: number; layers: Layer[] };
  timeline: { tracks: Track[] };
  meta: Record<string, unknown>;
}
