//! Preview encoding.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbaImage};

use crate::error::MediaError;

/// How a preview is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PreviewFormat {
    /// Lossy, smallest for photos; transparency is flattened onto white. Quality 1..=100.
    Jpeg { quality: u8 },
    /// Lossless with alpha, fast compression.
    Png,
    /// Lossless WebP with alpha (the `image` crate's encoder has no lossy mode).
    Webp,
}

impl PreviewFormat {
    /// JPEG at quality 80: the default for live previews.
    pub const DEFAULT: PreviewFormat = PreviewFormat::Jpeg { quality: 80 };

    pub fn mime(self) -> &'static str {
        match self {
            PreviewFormat::Jpeg { .. } => "image/jpeg",
            PreviewFormat::Png => "image/png",
            PreviewFormat::Webp => "image/webp",
        }
    }
    fn name(self) -> &'static str {
        match self {
            PreviewFormat::Jpeg { .. } => "JPEG",
            PreviewFormat::Png => "PNG",
            PreviewFormat::Webp => "WebP",
        }
    }
}

/// Encodes a rendered canvas.
pub fn encode_preview(img: &RgbaImage, format: PreviewFormat) -> Result<Vec<u8>, MediaError> {
    let _busy = crate::par::Busy::enter();
    let mut out = Vec::new();
    let (w, h) = img.dimensions();
    let fail = |e: image::ImageError| MediaError::Encode {
        format: format.name(),
        reason: e.to_string(),
    };
    match format {
        PreviewFormat::Jpeg { quality } => {
            let too_big = || MediaError::Encode {
                format: format.name(),
                reason: format!("{w}×{h} is larger than JPEG's 65535 pixels a side"),
            };
            let (w16, h16) = (
                u16::try_from(w).map_err(|_| too_big())?,
                u16::try_from(h).map_err(|_| too_big())?,
            );
            out = encode_jpeg(img.as_raw(), w16, h16, quality.clamp(1, 100)).map_err(|e| {
                MediaError::Encode {
                    format: format.name(),
                    reason: e.to_string(),
                }
            })?;
        }
        PreviewFormat::Png => {
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
                .write_image(img.as_raw(), w, h, ExtendedColorType::Rgba8)
                .map_err(fail)?;
        }
        PreviewFormat::Webp => {
            WebPEncoder::new_lossless(&mut out)
                .write_image(img.as_raw(), w, h, ExtendedColorType::Rgba8)
                .map_err(fail)?;
        }
    }
    Ok(out)
}

/// Rows of MCUs per JPEG stripe (8 × 16 = 128 pixel rows at 4:2:0), fewer for very wide images
/// so that a stripe's MCU count fits the 16-bit restart interval.
const STRIPE_MCU_ROWS: usize = 8;

/// Baseline JPEG (jpeg-encoder: AVX2 where the CPU has it, 4:2:0 below quality 90) of straight
/// RGBA, flattened onto white, encoded in horizontal stripes side by side on idle cores.
///
/// Each stripe is a whole number of MCU rows and is encoded on its own — the DC predictions
/// restart at 0 and the bits are padded to a byte at its end, exactly what a restart interval
/// of one stripe's MCUs means — so the stripes' entropy-coded data joined by `RSTn` markers,
/// under stripe 0's headers with the full height and a `DRI`, is byte for byte what one
/// encoder with that restart interval writes (a test checks this). Decoded pixels are those of
/// an encode without restarts; the file is a few bytes larger per stripe.
fn encode_jpeg(rgba: &[u8], width: u16, height: u16, quality: u8) -> Result<Vec<u8>, String> {
    use jpeg_encoder::SamplingFactor;
    // jpeg-encoder's own default, set explicitly: the stripes must be whole MCUs.
    let (sampling, mcu) = if quality < 90 {
        (SamplingFactor::F_2_2, 16)
    } else {
        (SamplingFactor::F_1_1, 8)
    };
    if width == 0 || height == 0 {
        return Err("the image is empty".into());
    }
    let (w, h) = (usize::from(width), usize::from(height));
    let mcus_per_row = w.div_ceil(mcu);
    let mcu_rows = (u16::MAX as usize / mcus_per_row).clamp(1, STRIPE_MCU_ROWS);
    let stripe_h = mcu_rows * mcu;
    let stripes: Vec<(usize, usize)> = if h <= stripe_h {
        vec![(0, h)]
    } else {
        (0..h)
            .step_by(stripe_h)
            .map(|y| (y, stripe_h.min(h - y)))
            .collect()
    };
    let encode = |(y, rows): (usize, usize)| {
        let px = &rgba[y * w * 4..(y + rows) * w * 4];
        let mut out = Vec::with_capacity(rows * w / 4 + 1024);
        let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
        enc.set_sampling_factor(sampling);
        // `rows` ≤ `height`, so it fits.
        let rows16 = rows as u16;
        let done = if crate::render::all_opaque(px.as_chunks::<4>().0) {
            enc.encode(px, width, rows16, jpeg_encoder::ColorType::Rgba)
        } else {
            enc.encode(&over_white(px), width, rows16, jpeg_encoder::ColorType::Rgb)
        };
        done.map(|()| out).map_err(|e| e.to_string())
    };
    let n = stripes.len();
    let parts = crate::par::run(stripes, w * h, encode)
        .into_iter()
        .collect::<Result<Vec<Vec<u8>>, String>>()?;
    if n == 1 {
        return parts.into_iter().next().ok_or_else(String::new);
    }
    // `mcu_rows × mcus_per_row` ≤ u16::MAX by the choice of `mcu_rows`.
    let interval = (mcu_rows * mcus_per_row) as u16;
    join_stripes(&parts, n, height, interval)
        .ok_or_else(|| "joining the stripes: unexpected encoder output".to_owned())
}

/// Straight RGBA onto white, as RGB: `c·a + 255·(1 − a)`.
fn over_white(rgba: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(rgba.len() / 4 * 3);
    for p in rgba.chunks_exact(4) {
        let a = u32::from(p[3]);
        let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        rgb.extend_from_slice(&[over(p[0]), over(p[1]), over(p[2])]);
    }
    rgb
}

/// Where a JPEG's headers end: (offset of the SOF0 height, offset of the SOS marker, offset of
/// the entropy-coded data). `None` for anything but what jpeg-encoder writes.
fn jpeg_layout(jpeg: &[u8]) -> Option<(usize, usize, usize)> {
    if jpeg.get(..2)? != [0xFF, 0xD8] || jpeg.get(jpeg.len().checked_sub(2)?..)? != [0xFF, 0xD9] {
        return None;
    }
    let mut at = 2;
    let mut sof_height = None;
    loop {
        let &[0xFF, marker, hi, lo] = jpeg.get(at..at + 4)? else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        match marker {
            // SOF0: length, precision, then the height.
            0xC0 => sof_height = Some(at + 5),
            // A DRI of the encoder's own would clash with ours.
            0xDD => return None,
            0xDA => return Some((sof_height?, at, at + 2 + len)),
            _ => {}
        }
        at += 2 + len;
    }
}

/// Joins separately encoded stripes (same width, tables and settings; every stripe but the last
/// a whole number of MCU rows) into one JPEG with a restart interval of one stripe.
fn join_stripes(parts: &[Vec<u8>], n: usize, height: u16, interval: u16) -> Option<Vec<u8>> {
    if parts.len() != n {
        return None;
    }
    let first = parts.first()?;
    let (sof_height, sos, _) = jpeg_layout(first)?;
    let total: usize = parts.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&first[..sos]);
    out[sof_height..sof_height + 2].copy_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&[0xFF, 0xDD, 0x00, 0x04]);
    out.extend_from_slice(&interval.to_be_bytes());
    for (i, part) in parts.iter().enumerate() {
        let (_, sos, data) = jpeg_layout(part)?;
        if i == 0 {
            out.extend_from_slice(&part[sos..data]);
        } else {
            out.extend_from_slice(&[0xFF, 0xD0 + ((i - 1) % 8) as u8]);
        }
        out.extend_from_slice(&part[data..part.len() - 2]);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    Some(out)
}
