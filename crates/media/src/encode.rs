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
    let mut out = Vec::new();
    let (w, h) = img.dimensions();
    let fail = |e: image::ImageError| MediaError::Encode {
        format: format.name(),
        reason: e.to_string(),
    };
    match format {
        PreviewFormat::Jpeg { quality } => {
            let rgb: Vec<u8> = img
                .pixels()
                .flat_map(|p| {
                    let [r, g, b, a] = p.0;
                    let a = u32::from(a);
                    // Over white: c·a + 255·(1−a).
                    let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
                    [over(r), over(g), over(b)]
                })
                .collect();
            // jpeg-encoder (AVX2 where the CPU has it) rather than the `image` crate's encoder:
            // encoding was half the excellent tier's time (BENCHMARKS.md, media processor).
            let too_big = || MediaError::Encode {
                format: format.name(),
                reason: format!("{w}×{h} is larger than JPEG's 65535 pixels a side"),
            };
            let (w16, h16) = (
                u16::try_from(w).map_err(|_| too_big())?,
                u16::try_from(h).map_err(|_| too_big())?,
            );
            jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100))
                .encode(&rgb, w16, h16, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| MediaError::Encode {
                    format: format.name(),
                    reason: e.to_string(),
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
