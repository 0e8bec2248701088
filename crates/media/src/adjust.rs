//! Colour adjustments of an image layer (DESIGN §2 `adjust`).

use image::RgbaImage;
use montage_ot::Value;

/// The four adjustments, each 0 = unchanged. Applied in the order exposure → brightness →
/// contrast → saturation, to the colour channels only (alpha is kept). Formulas in the README.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Adjust {
    /// −1..1: +1 lifts everything to white, −1 takes everything to black.
    pub brightness: f32,
    /// −1..1: −1 is flat mid-grey, +1 a hard threshold at mid-grey.
    pub contrast: f32,
    /// −1..1: −1 is greyscale, +1 doubles the distance from grey.
    pub saturation: f32,
    /// Stops (clamped to ±10): +1 doubles linear light.
    pub exposure: f32,
}

/// Exposure beyond this many stops is clamped: every pixel is already black or white.
const MAX_STOPS: f32 = 10.0;

impl Adjust {
    /// Reads a layer's `adjust` object. Missing or non-numeric fields are 0; out-of-range ones are
    /// clamped to their range.
    pub fn from_value(v: Option<&Value>) -> Adjust {
        let field = |k: &str, lim: f32| {
            v.and_then(|v| v.get(k))
                .and_then(Value::as_f64)
                .filter(|n| n.is_finite())
                .map_or(0.0, |n| (n as f32).clamp(-lim, lim))
        };
        Adjust {
            brightness: field("brightness", 1.0),
            contrast: field("contrast", 1.0),
            saturation: field("saturation", 1.0),
            exposure: field("exposure", MAX_STOPS),
        }
    }

    pub fn is_identity(&self) -> bool {
        self.brightness == 0.0
            && self.contrast == 0.0
            && self.saturation == 0.0
            && self.exposure == 0.0
    }

    /// The per-channel tone curve (exposure, brightness, contrast) on a value in 0..1.
    pub fn tone(&self, c: f32) -> f32 {
        let mut c = c;
        if self.exposure != 0.0 {
            c = linear_to_srgb(srgb_to_linear(c) * self.exposure.exp2());
        }
        let b = self.brightness;
        if b > 0.0 {
            c += (1.0 - c) * b;
        } else if b < 0.0 {
            c *= 1.0 + b;
        }
        let k = self.contrast;
        if k != 0.0 {
            // Slope at mid-grey: 1+k below 0 (down to flat), 1/(1−k) above (up to a threshold).
            let slope = if k < 0.0 {
                1.0 + k
            } else {
                1.0 / (1.0 - k).max(1e-3)
            };
            c = (c - 0.5) * slope + 0.5;
        }
        c.clamp(0.0, 1.0)
    }

    /// Applies the adjustments in place to a straight-alpha RGBA image.
    pub fn apply(&self, img: &mut RgbaImage) {
        if self.is_identity() {
            return;
        }
        self.prepare().in_place(img.as_mut().as_chunks_mut::<4>().0);
    }

    /// A copy of a straight-alpha RGBA image with the adjustments applied.
    pub fn applied(&self, img: &RgbaImage) -> RgbaImage {
        if self.is_identity() {
            return img.clone();
        }
        let mut out = RgbaImage::new(img.width(), img.height());
        self.prepare()
            .row(out.as_chunks_mut::<4>().0, img.as_raw().as_chunks::<4>().0);
        out
    }

    /// The tone curve as a table, for applying to many 8-bit pixels.
    pub(crate) fn prepare(&self) -> Prepared {
        let mut lut = [0u8; 256];
        for (i, out) in lut.iter_mut().enumerate() {
            *out = to_u8(self.tone(i as f32 / 255.0));
        }
        Prepared {
            lut,
            sat: ((1.0 + self.saturation) * 256.0).round() as i32,
        }
    }
}

/// [`Adjust`] ready for 8-bit pixels: the tone curve as a table, saturation in 8.8 fixed point.
pub(crate) struct Prepared {
    lut: [u8; 256],
    /// (1 + saturation) × 256.
    sat: i32,
}

impl Prepared {
    #[inline]
    pub(crate) fn pixel(&self, p: [u8; 4]) -> [u8; 4] {
        let p = self.tone(p);
        if self.sat == 256 {
            return p;
        }
        saturate(p, self.sat)
    }

    /// [`Prepared::pixel`] over a row, `src` into `dst` (as many pixels as the shorter has): the
    /// tone curve texel by texel, then saturation in a second loop that the compiler turns into
    /// SIMD (the table lookups would keep one fused loop scalar).
    #[inline]
    pub(crate) fn row(&self, dst: &mut [[u8; 4]], src: &[[u8; 4]]) {
        let n = dst.len().min(src.len());
        let dst = &mut dst[..n];
        for (d, s) in dst.iter_mut().zip(src) {
            *d = self.tone(*s);
        }
        self.saturate(dst);
    }

    /// [`Prepared::pixel`] in place.
    pub(crate) fn in_place(&self, px: &mut [[u8; 4]]) {
        for p in px.iter_mut() {
            *p = self.tone(*p);
        }
        self.saturate(px);
    }

    #[inline(always)]
    fn tone(&self, [r, g, b, a]: [u8; 4]) -> [u8; 4] {
        [
            self.lut[r as usize],
            self.lut[g as usize],
            self.lut[b as usize],
            a,
        ]
    }

    #[inline]
    fn saturate(&self, px: &mut [[u8; 4]]) {
        if self.sat != 256 {
            for p in px {
                *p = saturate(*p, self.sat);
            }
        }
    }
}

/// `c' = Y + (c − Y)·sat/256` per colour channel, Y the Rec. 709 luma; alpha kept.
#[inline(always)]
fn saturate([r, g, b, a]: [u8; 4], sat: i32) -> [u8; 4] {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    // Rec. 709 luma (×256: 54 + 183 + 19): the grey a pixel keeps at saturation −1.
    let y = (54 * r + 183 * g + 19 * b + 128) >> 8;
    let mix = |c: i32| (y + (((c - y) * sat + 128) >> 8)).clamp(0, 255) as u8;
    [mix(r), mix(g), mix(b), a]
}

fn to_u8(c: f32) -> u8 {
    (c.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// The sRGB transfer function's inverse: encoded 0..1 to linear light.
pub fn srgb_to_linear(c: f32) -> f32 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// Linear light to sRGB-encoded 0..1 (values above 1 clip to white).
pub fn linear_to_srgb(l: f32) -> f32 {
    let l = l.clamp(0.0, 1.0);
    if l <= 0.003_130_8 {
        l * 12.92
    } else {
        1.055 * l.powf(1.0 / 2.4) - 0.055
    }
}
