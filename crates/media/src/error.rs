//! The crate's one error type.

use crate::asset::Format;

/// Everything that can go wrong in intake, rendering, encoding or video frame extraction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The upload is larger than [`crate::Limits::max_bytes`].
    #[error("file is {bytes} bytes, the limit is {limit}")]
    TooLarge { bytes: u64, limit: u64 },
    /// The declared dimensions exceed a limit (checked before decoding: a decompression bomb).
    #[error(
        "image declares {width}×{height} pixels, the limit is {limit_pixels} pixels and {limit_side} per side"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        limit_pixels: u64,
        limit_side: u32,
    },
    /// The content is not PNG, JPEG or WebP (whatever the file was called).
    #[error("unrecognised image format")]
    UnknownFormat,
    /// The file ends before the image does.
    #[error("{format} image is truncated")]
    Truncated { format: Format },
    /// The file claims a format but does not decode as one.
    #[error("malformed {format} image: {reason}")]
    Malformed { format: Format, reason: String },
    /// A render target or preview size outside `1..=MAX_TARGET_SIDE`.
    #[error("render target {width}×{height} is out of range")]
    BadTarget { width: u32, height: u32 },
    /// A video or audio file that ffprobe can't read as the container its bytes claim.
    /// `detail` is the tool's own output: for the log, never for the client (it is not in the
    /// message).
    #[error("malformed {container} file: {reason}")]
    MalformedMedia {
        container: &'static str,
        reason: String,
        detail: String,
    },
    /// A request argument out of range (a negative playhead, a NaN time…).
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// The feature needs something this machine lacks.
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    /// The document names an asset the store doesn't have.
    #[error("asset {id} not found")]
    MissingAsset { id: String },
    /// ffmpeg ran and failed.
    #[error("ffmpeg failed: {reason}")]
    Ffmpeg { reason: String },
    /// Encoding a preview failed.
    #[error("encoding {format} failed: {reason}")]
    Encode {
        format: &'static str,
        reason: String,
    },
    /// An [`crate::AssetSource`] failed for a reason other than the asset being absent.
    #[error("asset store: {reason}")]
    Store { reason: String },
}

impl MediaError {
    /// The wire error code (DESIGN §3) the server should answer with.
    pub fn code(&self) -> &'static str {
        match self {
            MediaError::TooLarge { .. } | MediaError::TooManyPixels { .. } => "too_large",
            MediaError::UnknownFormat
            | MediaError::Truncated { .. }
            | MediaError::Malformed { .. }
            | MediaError::MalformedMedia { .. }
            | MediaError::BadTarget { .. }
            | MediaError::Invalid { .. } => "bad_request",
            MediaError::NotSupported(_) => "not_supported",
            MediaError::MissingAsset { .. } => "not_found",
            MediaError::Ffmpeg { .. } | MediaError::Encode { .. } | MediaError::Store { .. } => {
                "internal"
            }
        }
    }
}
