#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod adjust;
pub mod asset;
pub mod audio;
pub mod av;
pub mod cache;
pub mod encode;
mod error;
mod par;
pub mod render;
pub mod text;
pub mod tier;
pub mod video;

pub use adjust::Adjust;
pub use asset::{
    Asset, AssetInfo, AssetKind, AssetSource, Format, Limits, MemoryAssets, decode,
    decode_with_info, peek, probe, sniff,
};
pub use audio::{Waveform, waveform};
pub use av::{AvInfo, Container, probe_av, sniff_container, tool_path};
pub use cache::{Coalescer, Preview, PreviewCache};
pub use encode::{PreviewFormat, encode_preview};
pub use error::MediaError;
pub use image::RgbaImage;
pub use par::set_max_threads;
pub use render::{Rendered, Size, Warning, canvas_size, render};
pub use tier::{Pacer, Tier, TierBox, preview_size};
pub use video::{
    ClipAt, Composite, CropRect, FrameSource, clip_at, clips_at, composite_frame, frame_at,
    frame_region, timeline_frame,
};

/// Renders the document at a tier's preview size and encodes it: what the preview endpoint and
/// the live `preview` message need, in one call (run it on a blocking pool).
pub fn render_preview(
    doc: &montage_ot::Value,
    assets: &dyn AssetSource,
    version: u64,
    tier: Tier,
    format: PreviewFormat,
) -> Result<(Preview, Vec<Warning>), MediaError> {
    let canvas = canvas_size(doc);
    let size = preview_size(canvas.width, canvas.height, tier);
    let rendered = render(doc, assets, size)?;
    let bytes = encode_preview(&rendered.image, format)?;
    Ok((
        Preview {
            version,
            tier,
            size,
            format,
            bytes,
        },
        rendered.warnings,
    ))
}
