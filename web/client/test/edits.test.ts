// The media edit builders (src/edits.ts) against the engine: each edit applies to the document
// it was built on and does what DESIGN §2 says; a split computes the media time the engine
// expects, so the halves play on without a jump.
import { describe, expect, it } from "vitest";
import { type MontageDocument, apply, clipPath, layerPath, media, newDocument, transform } from "../src/index.js";

function doc(): MontageDocument {
  const d = newDocument() as unknown as MontageDocument;
  d.canvas.layers.push({ id: "bg", kind: "text", text: "", x: 0, y: 0, size: 10, color: "#000" });
  d.canvas.layers.push({ id: "L1", kind: "image", asset: "a", x: 10, y: 20, w: 100, h: 50 });
  d.timeline.tracks.push({ id: "v", kind: "video", clips: [{ id: "c0", asset: "m", start: 0, in: 0, out: 4 }, { id: "c1", asset: "m", start: 4, in: 10, out: 20 }] });
  return d;
}
const run = (d: MontageDocument, op: ReturnType<typeof media.crop>) => apply(d as never, op).doc as unknown as MontageDocument;

describe("media edits", () => {
  it("find layers and clips by id, and refuse unknown ids", () => {
    expect(layerPath(doc(), "L1")).toEqual(["canvas", "layers", 1]);
    expect(clipPath(doc(), "c1")).toEqual(["timeline", "tracks", 0, "clips", 1]);
    expect(() => media.rotate(doc(), "nope", 90)).toThrow(RangeError);
  });

  it("crop, rotate, adjust and move change the layer as the document model says", () => {
    let d = doc();
    d = run(d, media.crop(d, "L1", { x: 1, y: 2, w: 30, h: 40 }));
    d = run(d, media.rotate(d, "L1", 90));
    d = run(d, media.rotate(d, "L1", 90));
    d = run(d, media.adjust(d, "L1", "contrast", 0.25));
    d = run(d, media.move(d, "L1", 5, -5));
    expect(d.canvas.layers[1]).toEqual({ id: "L1", kind: "image", asset: "a", x: 15, y: 15, w: 100, h: 50, crop: { x: 1, y: 2, w: 30, h: 40 }, rotation: 180, adjust: { contrast: 0.25 } });
    expect(media.move(d, "L1", 0, 3)).toEqual([{ op: "add", path: ["canvas", "layers", 1, "y"], value: 3 }]);
  });

  it("split cuts at a timeline time; the right half starts where the left ends, in media too", () => {
    const d = doc();
    const op = media.split(d, "c1", 7, "c2");
    expect(op).toEqual([{ op: "split", path: ["timeline", "tracks", 0, "clips", 1], at: 7, media: 13, id: "c2" }]);
    const clips = run(d, op).timeline.tracks[0]!.clips;
    expect(clips.slice(1)).toEqual([
      { id: "c1", asset: "m", start: 4, in: 10, out: 13 },
      { id: "c2", asset: "m", start: 7, in: 13, out: 20 },
    ]);
    expect(() => media.split(d, "c1", 4)).toThrow(/not inside/);
    expect(() => media.split(d, "c1", 14)).toThrow(/not inside/);
    expect(media.split(d, "c1", 5)[0]).toMatchObject({ id: expect.any(String) });
  });

  it("trim moves edges given in timeline time; concurrent with a split it lands on the half it meant", () => {
    const d = doc();
    const end = media.trim(d, "c1", { to: 12 });
    expect(end).toEqual([{ op: "trim", path: ["timeline", "tracks", 0, "clips", 1], out: 18 }]);
    const front = media.trim(d, "c1", { from: 5 });
    expect(run(d, front).timeline.tracks[0]!.clips[1]).toMatchObject({ start: 5, in: 11, out: 20 });
    expect(() => media.trim(d, "c1", { from: 9, to: 8 })).toThrow(RangeError);
    expect(media.trim(d, "c1", {})).toEqual([]);
    // Someone splits c1 at 7 meanwhile: the end trim belongs to the right half.
    const split = media.split(d, "c1", 7, "c2");
    const after = run(run(d, split), transform(end, split, "right"));
    expect(after.timeline.tracks[0]!.clips.slice(1)).toEqual([
      { id: "c1", asset: "m", start: 4, in: 10, out: 13 },
      { id: "c2", asset: "m", start: 7, in: 13, out: 18 },
    ]);
  });
});
