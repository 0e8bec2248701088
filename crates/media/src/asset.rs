//! Asset intake: sniff, bound and decode uploaded image bytes; decoded assets with a mip pyramid.

use std::collections::HashMap;
use std::fmt;
use std::io::Cursor;
use std::sync::{Arc, Mutex, OnceLock};

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbaImage};

use crate::error::MediaError;

/// Bounds on what intake accepts. Every number here is checked before the expensive step it guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest upload in bytes. Default 50 MiB: a 100 MP JPEG at high quality is ~30–40 MB.
    pub max_bytes: u64,
    /// Most pixels a decoded image may have. Default 110 MP: the largest common sensors
    /// (medium format, 11648×8736 = 101.8 MP) fit; decoded RGBA8 is then 440 MB, so the server
    /// should also bound how many decodes run at once.
    pub max_pixels: u64,
    /// Longest side in pixels. Default 32 768 (wide panoramas; also the JPEG/WebP practical limit).
    pub max_side: u32,
    /// Pixels any image may have whatever its file size. Default 16 MP (a 4K frame fits twice).
    pub free_pixels: u64,
    /// Past `free_pixels`, pixels allowed per byte of file, so decoding costs CPU in proportion to
    /// what was uploaded: a 95 KiB PNG declaring 10000×10000 (1,000 pixels a byte, 1.2 s of CPU)
    /// is refused from its header. Default 256: photos carry 2–16 pixels a byte, flat graphics
    /// rarely more than a couple of hundred.
    pub pixels_per_byte: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 50 * 1024 * 1024,
            max_pixels: 110_000_000,
            max_side: 32_768,
            free_pixels: 16_000_000,
            pixels_per_byte: 256,
        }
    }
}

/// The image formats intake accepts, recognised by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    Png,
    Jpeg,
    Webp,
}

impl Format {
    pub fn mime(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::Webp => "image/webp",
        }
    }
    fn image_format(self) -> ImageFormat {
        match self {
            Format::Png => ImageFormat::Png,
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Webp => ImageFormat::WebP,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
            Format::Webp => "WebP",
        })
    }
}

/// What kind of media an asset is (DESIGN §2 `assets[id].kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssetKind {
    Image,
    /// A video file (intake through ffprobe, see `av`).
    Video,
    /// An audio file.
    Audio,
}

impl AssetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Image => "image",
            AssetKind::Video => "video",
            AssetKind::Audio => "audio",
        }
    }
}

/// What intake learned about an upload. Width and height are as displayed (after EXIF orientation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetInfo {
    pub kind: AssetKind,
    pub format: Format,
    pub width: u32,
    pub height: u32,
}

/// Recognises the format from the first bytes; the file name is never consulted.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    match image::guess_format(bytes).ok()? {
        ImageFormat::Png => Some(Format::Png),
        ImageFormat::Jpeg => Some(Format::Jpeg),
        ImageFormat::WebP => Some(Format::Webp),
        _ => None,
    }
}

/// Cheap check from the header alone: size, format and declared dimensions, without decoding
/// pixels. Use it to refuse an upload early; [`probe`] or [`decode`] still validate the body.
pub fn peek(bytes: &[u8], limits: &Limits) -> Result<AssetInfo, MediaError> {
    let (format, reader) = open(bytes, limits)?;
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_err(e, format, None, limits))?;
    let (w, h) = decoder.dimensions();
    check_dims(w, h, bytes.len() as u64, limits)?;
    let (width, height) = oriented(w, h, decoder.orientation().ok());
    Ok(AssetInfo {
        kind: AssetKind::Image,
        format,
        width,
        height,
    })
}

/// Validates an upload completely (decodes it under the limits) and says what it is.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<AssetInfo, MediaError> {
    decode_with_info(bytes, limits).map(|(info, _)| info)
}

/// Decodes an upload to RGBA8, EXIF orientation applied, under the limits.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<RgbaImage, MediaError> {
    decode_with_info(bytes, limits).map(|(_, img)| img)
}

/// [`probe`] and [`decode`] in one pass.
pub fn decode_with_info(
    bytes: &[u8],
    limits: &Limits,
) -> Result<(AssetInfo, RgbaImage), MediaError> {
    let (format, reader) = open(bytes, limits)?;
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_err(e, format, None, limits))?;
    let (w, h) = decoder.dimensions();
    check_dims(w, h, bytes.len() as u64, limits)?;
    // Decoders forgive a missing tail (zune-jpeg fills it with grey; png stops after the last
    // IDAT), so a file that lacks its end marker is refused here.
    let complete = match format {
        Format::Jpeg => jpeg_has_end(bytes),
        Format::Png => png_has_end(bytes),
        Format::Webp => webp_has_end(bytes),
    };
    if !complete {
        return Err(MediaError::Truncated { format });
    }
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| map_err(e, format, Some((w, h)), limits))?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    let img = img.into_rgba8();
    let info = AssetInfo {
        kind: AssetKind::Image,
        format,
        width: img.width(),
        height: img.height(),
    };
    Ok((info, img))
}

type Reader<'a> = ImageReader<Cursor<&'a [u8]>>;

/// Size and format checks, then a reader with the decoder-side limits set.
fn open<'a>(bytes: &'a [u8], limits: &Limits) -> Result<(Format, Reader<'a>), MediaError> {
    let len = bytes.len() as u64;
    if len > limits.max_bytes {
        return Err(MediaError::TooLarge {
            bytes: len,
            limit: limits.max_bytes,
        });
    }
    let format = sniff(bytes).ok_or(MediaError::UnknownFormat)?;
    // PNG declares its size at a fixed offset: check it before any decoder allocates.
    if format == Format::Png {
        if let Some((w, h)) = png_ihdr(bytes) {
            check_dims(w, h, bytes.len() as u64, limits)?;
        } else {
            return Err(MediaError::Truncated { format });
        }
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut il = image::Limits::default();
    il.max_image_width = Some(limits.max_side);
    il.max_image_height = Some(limits.max_side);
    // Output RGBA16 at the pixel limit plus decoder working space.
    il.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(il);
    Ok((format, reader))
}

/// The most pixels a file of `len` bytes may declare: CPU to decode grows with pixels.
pub fn pixel_limit(len: u64, limits: &Limits) -> u64 {
    len.saturating_mul(limits.pixels_per_byte)
        .max(limits.free_pixels)
        .min(limits.max_pixels)
}

fn check_dims(w: u32, h: u32, len: u64, limits: &Limits) -> Result<(), MediaError> {
    let limit_pixels = pixel_limit(len, limits);
    let too_big =
        w > limits.max_side || h > limits.max_side || u64::from(w) * u64::from(h) > limit_pixels;
    if w == 0 || h == 0 {
        return Err(MediaError::Invalid {
            what: "image",
            reason: format!("declares {w}×{h} pixels"),
        });
    }
    if too_big {
        return Err(MediaError::TooManyPixels {
            width: w,
            height: h,
            limit_pixels,
            limit_side: limits.max_side,
        });
    }
    Ok(())
}

/// Width and height from a PNG's IHDR chunk (signature, length, "IHDR", w, h).
fn png_ihdr(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(bytes.get(16..20)?.try_into().ok()?);
    let h = u32::from_be_bytes(bytes.get(20..24)?.try_into().ok()?);
    Some((w, h))
}

/// A complete JPEG has an EOI marker (FF D9) after its last start-of-scan (FF DA). Entropy-coded
/// data stuffs every FF with 00, so neither marker can occur by accident inside a scan.
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(p) => bytes[p..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

/// A complete PNG has an empty IEND chunk and its CRC.
fn png_has_end(bytes: &[u8]) -> bool {
    bytes
        .windows(8)
        .rposition(|w| w == b"\0\0\0\0IEND")
        .is_some_and(|p| bytes.len() >= p + 12)
}

/// A WebP's RIFF header states the file's length.
fn webp_has_end(bytes: &[u8]) -> bool {
    bytes
        .get(4..8)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .is_some_and(|n| bytes.len() as u64 >= u64::from(n) + 8)
}

fn oriented(w: u32, h: u32, o: Option<image::metadata::Orientation>) -> (u32, u32) {
    use image::metadata::Orientation as O;
    match o {
        Some(O::Rotate90 | O::Rotate270 | O::Rotate90FlipH | O::Rotate270FlipH) => (h, w),
        _ => (w, h),
    }
}

fn map_err(e: ImageError, format: Format, dims: Option<(u32, u32)>, limits: &Limits) -> MediaError {
    match e {
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            MediaError::Truncated { format }
        }
        ImageError::Limits(l) => match dims {
            Some((width, height)) => MediaError::TooManyPixels {
                width,
                height,
                limit_pixels: limits.max_pixels,
                limit_side: limits.max_side,
            },
            None => MediaError::Malformed {
                format,
                reason: l.to_string(),
            },
        },
        other => {
            let reason = other.to_string();
            let lower = reason.to_ascii_lowercase();
            if lower.contains("eof") || lower.contains("end of") || lower.contains("truncat") {
                MediaError::Truncated { format }
            } else {
                MediaError::Malformed { format, reason }
            }
        }
    }
}

/// A decoded image asset, shared between renders. It keeps a lazily built pyramid of halvings so
/// a preview re-rendered after every edit resizes from a level at most 2× its size, not from the
/// full source.
pub struct Asset {
    image: RgbaImage,
    /// Every alpha is 255: resizing can then skip premultiplying (half its cost).
    opaque: bool,
    mips: OnceLock<Vec<RgbaImage>>,
    /// The last few crops resized for drawing, newest first: during a slider drag only the
    /// adjustments change, so every render after the first reuses the resize.
    resized: Mutex<Vec<(ResizeKey, Arc<RgbaImage>)>>,
    keep_resized: bool,
}

/// What a resize depends on: the crop and the scale it was asked at (as bits) and the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResizeKey {
    crop: [u64; 4],
    factor: u64,
    width: u32,
    height: u32,
}

impl fmt::Debug for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Asset")
            .field("width", &self.image.width())
            .field("height", &self.image.height())
            .field("mips", &self.mips.get().map(Vec::len))
            .field(
                "resized",
                &self.resized.lock().map(|r| r.len()).unwrap_or_default(),
            )
            .finish()
    }
}

/// The pyramid stops once the longer side is below this.
const MIP_MIN_SIDE: u32 = 64;
/// Resized crops kept per asset, in bytes: at most a quarter of the asset's own pixels, and at
/// most this (a 24 MP asset then keeps the excellent, good, fair and poor sizes of one crop).
const RESIZED_MAX_BYTES: usize = 24 << 20;
/// And at most this many (four tiers of a crop and four of another is a drag between two).
const RESIZED_MAX_ENTRIES: usize = 8;
/// What an entry costs besides its pixels (key, `Arc`, allocation): tiny resizes count too.
const RESIZED_ENTRY_BYTES: usize = 256;

impl Asset {
    pub fn new(image: RgbaImage) -> Self {
        Asset::with_resize_cache(image, true)
    }

    /// An asset drawn once (a video frame): no resized crops are kept for it.
    pub fn drawn_once(image: RgbaImage) -> Self {
        Asset::with_resize_cache(image, false)
    }

    fn with_resize_cache(image: RgbaImage, keep: bool) -> Self {
        let opaque = crate::render::all_opaque(image.as_raw().as_chunks::<4>().0);
        Asset {
            image,
            opaque,
            mips: OnceLock::new(),
            resized: Mutex::new(Vec::new()),
            keep_resized: keep,
        }
    }
    /// The most memory this asset may come to hold: its pixels, the mip pyramid (a third
    /// more) and the resized crops it keeps — what a byte-bounded cache of assets should count.
    pub fn retained_bytes(&self) -> u64 {
        let pixels = self.image.as_raw().len() as u64;
        let resized = if self.keep_resized {
            (RESIZED_MAX_BYTES as u64).min(pixels / 4)
        } else {
            0
        };
        pixels + pixels / 3 + resized
    }
    /// Whether every pixel is fully opaque.
    pub fn is_opaque(&self) -> bool {
        self.opaque
    }
    /// Decodes bytes under `limits` into a shareable asset.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Self, MediaError> {
        decode(bytes, limits).map(Asset::new)
    }
    pub fn width(&self) -> u32 {
        self.image.width()
    }
    pub fn height(&self) -> u32 {
        self.image.height()
    }
    pub fn image(&self) -> &RgbaImage {
        &self.image
    }
    /// Builds the pyramid now (e.g. right after upload) instead of on the first render.
    pub fn warm(&self) {
        let _ = self.mips();
    }

    fn mips(&self) -> &[RgbaImage] {
        self.mips
            .get_or_init(|| build_mips(&self.image, self.opaque))
    }

    /// The smallest level whose sides are still at least `1/factor` of the full image (factor ≥ 1
    /// is the downscale the caller needs), so resizing from it loses nothing.
    pub(crate) fn level_for(&self, factor: f64) -> &RgbaImage {
        let mut best = &self.image;
        if factor < 2.0 {
            return best;
        }
        let (w, h) = (f64::from(self.width()), f64::from(self.height()));
        for m in self.mips() {
            if f64::from(m.width()) * factor >= w && f64::from(m.height()) * factor >= h {
                best = m;
            } else {
                break;
            }
        }
        best
    }
}

impl Asset {
    /// `crop` (asset pixels) resized to `width × height` from the level for `factor` (see
    /// [`Asset::level_for`]), alpha-aware unless the asset is opaque. Kept for the next render
    /// when it fits the asset's budget ([`RESIZED_MAX_BYTES`], a quarter of the asset at most).
    pub(crate) fn resized(
        &self,
        crop: [f64; 4],
        factor: f64,
        width: u32,
        height: u32,
    ) -> Option<Arc<RgbaImage>> {
        let key = ResizeKey {
            crop: crop.map(f64::to_bits),
            factor: factor.to_bits(),
            width,
            height,
        };
        if let Ok(mut cache) = self.resized.lock()
            && let Some(i) = cache.iter().position(|(k, _)| *k == key)
        {
            let hit = cache.remove(i);
            let img = hit.1.clone();
            cache.insert(0, hit);
            return Some(img);
        }
        let level = self.level_for(factor);
        let kx = f64::from(level.width()) / f64::from(self.width());
        let ky = f64::from(level.height()) / f64::from(self.height());
        let [x, y, w, h] = crop;
        let region = [x * kx, y * ky, w * kx, h * ky];
        let img = Arc::new(crate::render::resize_region(
            level,
            region,
            width,
            height,
            !self.opaque,
        )?);
        let budget = RESIZED_MAX_BYTES.min(self.image.as_raw().len() / 4);
        let bytes = |i: &RgbaImage| i.as_raw().len() + RESIZED_ENTRY_BYTES;
        if self.keep_resized
            && bytes(&img) <= budget
            && let Ok(mut cache) = self.resized.lock()
        {
            // (Another render may have made the same one meanwhile: keep one.)
            cache.retain(|(k, _)| *k != key);
            cache.insert(0, (key, img.clone()));
            let mut total = 0;
            cache.retain(|(_, i)| {
                total += bytes(i);
                total <= budget
            });
            cache.truncate(RESIZED_MAX_ENTRIES);
        }
        Some(img)
    }
}

fn build_mips(base: &RgbaImage, opaque: bool) -> Vec<RgbaImage> {
    let mut out: Vec<RgbaImage> = Vec::new();
    loop {
        let prev = out.last().unwrap_or(base);
        if prev.width().max(prev.height()) < MIP_MIN_SIDE * 2 {
            break;
        }
        let (w, h) = (prev.width().div_ceil(2), prev.height().div_ceil(2));
        match crate::render::resize_region(
            prev,
            [0.0, 0.0, f64::from(prev.width()), f64::from(prev.height())],
            w,
            h,
            !opaque,
        ) {
            Some(m) => out.push(m),
            None => break,
        }
    }
    out
}

/// Where the renderer gets decoded assets by id. A directory or object-store implementation
/// decodes on a miss and keeps `Arc<Asset>`s in a cache; [`MemoryAssets`] is the in-memory one.
pub trait AssetSource {
    /// `Ok(None)` when no such asset exists; `Err` when the store failed.
    fn asset(&self, id: &str) -> Result<Option<Arc<Asset>>, MediaError>;
}

/// Assets held in memory, for tests and small deployments.
#[derive(Debug, Default, Clone)]
pub struct MemoryAssets {
    map: HashMap<String, Arc<Asset>>,
}

impl MemoryAssets {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&mut self, id: impl Into<String>, asset: impl Into<Arc<Asset>>) {
        self.map.insert(id.into(), asset.into());
    }
    pub fn remove(&mut self, id: &str) -> Option<Arc<Asset>> {
        self.map.remove(id)
    }
}

impl AssetSource for MemoryAssets {
    fn asset(&self, id: &str) -> Result<Option<Arc<Asset>>, MediaError> {
        Ok(self.map.get(id).cloned())
    }
}

impl<T: AssetSource + ?Sized> AssetSource for Arc<T> {
    fn asset(&self, id: &str) -> Result<Option<Arc<Asset>>, MediaError> {
        (**self).asset(id)
    }
}
