/**
 * Text positions: the Montage contract counts Unicode scalar values (code points); JavaScript
 * strings count UTF-16 code units. Convert at the edge (editor ↔ engine) with these helpers;
 * the engine itself only ever sees scalar counts.
 */

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** Length of `s` in Unicode scalar values. */
export function scalarLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    if (isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) i++;
    n++;
  }
  return n;
}

/** True if `s` holds an unpaired surrogate (not a valid Unicode string; the server refuses it). */
export function hasLoneSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isHigh(c)) {
      if (i + 1 < s.length && isLow(s.charCodeAt(i + 1))) {
        i++;
        continue;
      }
      return true;
    }
    if (isLow(c)) return true;
  }
  return false;
}

/**
 * The scalar index of UTF-16 index `utf16` in `s` (what an editor's selection reports).
 * Throws a RangeError for a position inside a surrogate pair or outside the string: that is a
 * client bug, never rounded.
 */
export function toScalarIndex(s: string, utf16: number): number {
  if (!Number.isInteger(utf16) || utf16 < 0 || utf16 > s.length) {
    throw new RangeError(`UTF-16 index ${utf16} is outside the string (length ${s.length})`);
  }
  if (utf16 > 0 && utf16 < s.length && isHigh(s.charCodeAt(utf16 - 1)) && isLow(s.charCodeAt(utf16))) {
    throw new RangeError(`UTF-16 index ${utf16} falls inside a surrogate pair`);
  }
  let n = 0;
  for (let i = 0; i < utf16; i++) {
    if (isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) i++;
    n++;
  }
  return n;
}

/** The UTF-16 index of scalar index `scalar` in `s`. Throws a RangeError past the end. */
export function toUtf16Index(s: string, scalar: number): number {
  if (!Number.isInteger(scalar) || scalar < 0) {
    throw new RangeError(`scalar index ${scalar} must be a non-negative integer`);
  }
  let i = 0;
  for (let n = 0; n < scalar; n++) {
    if (i >= s.length) {
      throw new RangeError(`scalar index ${scalar} is outside the string (length ${scalarLength(s)})`);
    }
    if (isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) i += 2;
    else i += 1;
  }
  return i;
}

/** `len` scalars of `s` from scalar index `pos` (bounds checked by the caller). */
export function sliceScalars(s: string, pos: number, len: number): string {
  const a = toUtf16Index(s, pos);
  const b = a + toUtf16Index(s.slice(a), len);
  return s.slice(a, b);
}
