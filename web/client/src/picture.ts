/**
 * A picture's format and size read from its header, without decoding it, and the intake limits
 * the server applies to uploads (crates/media `Limits`): an encrypted session's pictures reach the
 * clients sealed, unchecked by the server, so a client checks them before it decodes one — a
 * small file declaring a huge picture would otherwise take every member's page down.
 */

/** What a picture's header says. */
export interface PictureInfo {
  format: "png" | "jpeg" | "webp";
  width: number;
  height: number;
}

/** The server's intake limits for pictures (docs/PROTOCOL.md "Assets"). */
export const PICTURE_LIMITS = {
  /** Most pixels a picture may have. */
  maxPixels: 110_000_000,
  /** Longest side. */
  maxSide: 32_768,
  /** Pixels any picture may have whatever its file size. */
  freePixels: 16_000_000,
  /** Past `freePixels`, pixels allowed per byte of file (decompression bombs). */
  pixelsPerByte: 256,
} as const;

const u16be = (b: Uint8Array, i: number) => (b[i]! << 8) | b[i + 1]!;
const u32be = (b: Uint8Array, i: number) => ((b[i]! << 24) >>> 0) + (b[i + 1]! << 16) + (b[i + 2]! << 8) + b[i + 3]!;
const u24le = (b: Uint8Array, i: number) => b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16);
const ascii = (b: Uint8Array, i: number, s: string) => [...s].every((c, k) => b[i + k] === c.charCodeAt(0));

/** The format and size a PNG, JPEG or WebP file declares; null when it is none of them or its
 * header is cut short. */
export function pictureInfo(b: Uint8Array): PictureInfo | null {
  // PNG: the signature, then IHDR with width and height (big-endian).
  if (b.length >= 24 && b[0] === 0x89 && ascii(b, 1, "PNG\r\n\x1a\n") && ascii(b, 12, "IHDR")) {
    return { format: "png", width: u32be(b, 16), height: u32be(b, 20) };
  }
  // JPEG: SOI, then segments up to the first start-of-frame (height, width).
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let i = 2;
    while (i + 4 <= b.length) {
      if (b[i] !== 0xff) return null;
      const m = b[i + 1]!;
      if (m === 0xff) {
        i++; // fill byte
        continue;
      }
      if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
        i += 2; // markers without a length
        continue;
      }
      const len = u16be(b, i + 2);
      if (len < 2) return null;
      const sof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
      if (sof) return i + 9 <= b.length ? { format: "jpeg", height: u16be(b, i + 5), width: u16be(b, i + 7) } : null;
      if (m === 0xd9 || m === 0xda) return null; // end, or scan data before any frame header
      i += 2 + len;
    }
    return null;
  }
  // WebP: RIFF/WEBP, then the first chunk: VP8 (lossy), VP8L (lossless) or VP8X (extended).
  if (b.length >= 30 && ascii(b, 0, "RIFF") && ascii(b, 8, "WEBP")) {
    if (ascii(b, 12, "VP8 ") && b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a) {
      return { format: "webp", width: (b[26]! | (b[27]! << 8)) & 0x3fff, height: (b[28]! | (b[29]! << 8)) & 0x3fff };
    }
    if (ascii(b, 12, "VP8L") && b[20] === 0x2f) {
      const bits = b[21]! | (b[22]! << 8) | (b[23]! << 16) | ((b[24]! << 24) >>> 0);
      return { format: "webp", width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    if (ascii(b, 12, "VP8X")) return { format: "webp", width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
    return null;
  }
  return null;
}

/**
 * Why `file` should not be decoded, by the server's intake rules ({@link PICTURE_LIMITS}): not a
 * PNG, JPEG or WebP picture, no pixels, a side past 32,768, more than 110 MP, or past 16 MP with
 * more than 256 pixels per byte of file. Null when it may be decoded.
 */
export function pictureRefusal(file: Uint8Array): string | null {
  const p = pictureInfo(file);
  if (p === null) return "not a PNG, JPEG or WebP picture";
  const { width: w, height: h } = p;
  if (w === 0 || h === 0) return `declares ${w}×${h} pixels`;
  const L = PICTURE_LIMITS;
  const limit = Math.min(L.maxPixels, Math.max(L.freePixels, file.length * L.pixelsPerByte));
  if (w > L.maxSide || h > L.maxSide || w * h > limit) {
    return `declares ${w}×${h} pixels, more than a ${file.length}-byte picture may have (at most ${limit} pixels, ${L.maxSide} a side)`;
  }
  return null;
}
