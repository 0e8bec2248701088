// Reading a picture's size from its header (src/picture.ts), on real files ffmpeg wrote
// (test/pictures: 12 × 6 each) and on crafted headers, and the intake limits it enforces.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { PICTURE_LIMITS, pictureInfo, pictureRefusal } from "../src/index.js";

const file = (name: string) => new Uint8Array(readFileSync(new URL(`./pictures/${name}`, import.meta.url)));

/** A PNG signature and IHDR declaring `w × h` (no pixel data: only the header is read). */
function pngHeader(w: number, h: number, pad = 0): Uint8Array {
  const b = new Uint8Array(33 + pad);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  new DataView(b.buffer).setUint32(16, w);
  new DataView(b.buffer).setUint32(20, h);
  return b;
}

describe("pictureInfo", () => {
  it("reads PNG, JPEG and every kind of WebP", () => {
    expect(pictureInfo(file("tiny.png"))).toEqual({ format: "png", width: 12, height: 6 });
    expect(pictureInfo(file("tiny.jpg"))).toEqual({ format: "jpeg", width: 12, height: 6 });
    for (const w of ["tiny-lossy.webp", "tiny-lossless.webp", "tiny-alpha.webp"]) {
      expect(pictureInfo(file(w)), w).toEqual({ format: "webp", width: 12, height: 6 });
    }
  });

  it("says null for what is not a picture, or is cut short", () => {
    expect(pictureInfo(new TextEncoder().encode("GIF89a..........................."))).toBeNull();
    expect(pictureInfo(new Uint8Array(0))).toBeNull();
    for (const name of ["tiny.png", "tiny.jpg", "tiny-lossy.webp"]) {
      const whole = file(name);
      // Cut before the size: no answer rather than a wrong one.
      expect(pictureInfo(whole.subarray(0, name.endsWith(".png") ? 20 : name.endsWith(".jpg") ? 6 : 25)), name).toBeNull();
    }
    // A JPEG whose segment lengths run off the end, or scan data before any frame header.
    expect(pictureInfo(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0xff, 0xff]))).toBeNull();
    expect(pictureInfo(Uint8Array.from([0xff, 0xd8, 0xff, 0xda, 0x00, 0x08, 0, 0, 0, 0, 0, 0]))).toBeNull();
  });
});

describe("pictureRefusal", () => {
  it("lets real pictures through", () => {
    for (const name of ["tiny.png", "tiny.jpg", "tiny-lossy.webp", "tiny-lossless.webp", "tiny-alpha.webp"]) {
      expect(pictureRefusal(file(name)), name).toBeNull();
    }
  });

  it("refuses what the server's intake refuses: bombs, huge sides, no pixels, not a picture", () => {
    // 16 MP is free whatever the size; past it, 256 pixels a byte.
    expect(pictureRefusal(pngHeader(4000, 4000))).toBeNull();
    expect(pictureRefusal(pngHeader(20_000, 20_000))).toMatch(/declares 20000×20000 pixels/);
    expect(pictureRefusal(pngHeader(5000, 4000, 80_000))).toBeNull(); // 20 MP in 80 kB: 250 a byte
    expect(pictureRefusal(pngHeader(5000, 4000, 70_000))).not.toBeNull();
    expect(pictureRefusal(pngHeader(PICTURE_LIMITS.maxSide + 1, 1))).not.toBeNull();
    expect(pictureRefusal(pngHeader(0, 5))).toMatch(/0×5/);
    expect(pictureRefusal(new TextEncoder().encode("hello"))).toBe("not a PNG, JPEG or WebP picture");
  });
});
