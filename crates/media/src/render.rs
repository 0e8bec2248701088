//! Draws a document's canvas at a target size.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use std::sync::Arc;

use image::RgbaImage;
use montage_ot::Value;

use crate::adjust::Adjust;
use crate::asset::{Asset, AssetSource};
use crate::error::MediaError;

/// A size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl Size {
    pub const fn new(width: u32, height: u32) -> Self {
        Size { width, height }
    }
}

/// The largest render target side; a preview never needs more, and it bounds memory (256 MiB).
pub const MAX_TARGET_SIDE: u32 = 8192;
/// Canvas sides are clamped to 1..=this (the document may say anything).
pub const MAX_CANVAS_SIDE: f64 = 65_536.0;
/// Layers beyond this many are not drawn (reported once): each costs up to the target's area.
pub const MAX_LAYERS: usize = 1000;
/// Pixels visited by all layers together, at most this many times the target's area (checked
/// before each layer), so a document of many full-canvas layers can't stall a render worker.
pub const MAX_WORK_PER_PIXEL: u64 = 32;
/// Layer coordinates and sizes are clamped to ±this many canvas pixels, so no arithmetic overflows.
const MAX_COORD: f64 = 1.0e9;

/// Something the renderer left out, so the caller can tell the user or log it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Warning {
    /// The layer's asset is not in the store; the layer was skipped.
    MissingAsset { layer: String, asset: String },
    /// The store failed for this asset; the layer was skipped.
    AssetError {
        layer: String,
        asset: String,
        reason: String,
    },
    /// The layer can't be drawn as written (no asset id, zero size, crop outside the asset…).
    Skipped { layer: String, reason: &'static str },
    /// The document has more than [`MAX_LAYERS`] layers; the rest were not drawn.
    TooManyLayers { drawn: usize, total: usize },
    /// The layers before this one already cost [`MAX_WORK_PER_PIXEL`] times the target's area;
    /// the rest were not drawn.
    WorkBudget { drawn: usize, total: usize },
}

/// A rendered canvas (straight-alpha RGBA8) and what was left out of it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub image: RgbaImage,
    pub warnings: Vec<Warning>,
}

/// The canvas size the document declares, each side clamped to 1..=[`MAX_CANVAS_SIDE`]; a missing
/// or non-numeric side is the new-document default (1920×1080).
pub fn canvas_size(doc: &Value) -> Size {
    let canvas = doc.get("canvas");
    let side = |k: &str, default: u32| {
        canvas
            .and_then(|c| c.get(k))
            .and_then(Value::as_f64)
            .filter(|n| n.is_finite())
            .map_or(default, |n| n.round().clamp(1.0, MAX_CANVAS_SIDE) as u32)
    };
    Size::new(side("width", 1920), side("height", 1080))
}

/// Renders the document's canvas scaled to `target` (the canvas is stretched to it; pass a size
/// from [`crate::preview_size`] to keep the aspect ratio). The background is transparent. Layers
/// are drawn in list order, later ones on top. Never fails because of the document: what can't
/// be drawn is skipped and reported in [`Rendered::warnings`].
pub fn render(doc: &Value, assets: &dyn AssetSource, target: Size) -> Result<Rendered, MediaError> {
    if target.width == 0
        || target.height == 0
        || target.width > MAX_TARGET_SIDE
        || target.height > MAX_TARGET_SIDE
    {
        return Err(MediaError::BadTarget {
            width: target.width,
            height: target.height,
        });
    }
    let _busy = crate::par::Busy::enter();
    let canvas = canvas_size(doc);
    let scale = (
        f64::from(target.width) / f64::from(canvas.width),
        f64::from(target.height) / f64::from(canvas.height),
    );
    let mut out = Canvas::new(target);
    let mut warnings = Vec::new();
    let layers = doc
        .get("canvas")
        .and_then(|c| c.get("layers"))
        .and_then(Value::as_arr)
        .map_or(&[][..], Vec::as_slice);
    if layers.len() > MAX_LAYERS {
        warnings.push(Warning::TooManyLayers {
            drawn: MAX_LAYERS,
            total: layers.len(),
        });
    }
    let budget = MAX_WORK_PER_PIXEL * u64::from(target.width) * u64::from(target.height);
    for (i, layer) in layers.iter().take(MAX_LAYERS).enumerate() {
        if out.work > budget {
            warnings.push(Warning::WorkBudget {
                drawn: i,
                total: layers.len(),
            });
            break;
        }
        let name = layer
            .get("id")
            .and_then(Value::as_text)
            .map_or_else(|| format!("#{i}"), |t| t.to_string());
        let skip = |reason| Warning::Skipped {
            layer: name.clone(),
            reason,
        };
        match layer.get("kind").and_then(Value::as_text) {
            Some(k) if *k == *"image" => {
                if let Err(w) = draw_image(&mut out, layer, &name, assets, scale) {
                    warnings.push(w);
                }
            }
            Some(k) if *k == *"text" => {
                if let Err(reason) = crate::text::draw_text(&mut out, layer, scale) {
                    warnings.push(skip(reason));
                }
            }
            _ => warnings.push(skip("unknown layer kind")),
        }
    }
    Ok(Rendered {
        image: out.into_image(),
        warnings,
    })
}

/// The target buffer: premultiplied RGBA8 so "over" is one multiply-add per channel.
pub(crate) struct Canvas {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) px: Vec<[u8; 4]>,
    /// Pixels visited so far by all layers (the work budget).
    pub(crate) work: u64,
}

impl Canvas {
    pub(crate) fn new(size: Size) -> Self {
        Canvas {
            width: size.width,
            height: size.height,
            px: vec![[0; 4]; size.width as usize * size.height as usize],
            work: 0,
        }
    }

    /// Composites a straight-alpha colour (0..255 per channel) with coverage `a` in 0..1 over (x, y).
    #[inline]
    pub(crate) fn blend(&mut self, x: u32, y: u32, rgb: [f32; 3], a: f32) {
        let i = y as usize * self.width as usize + x as usize;
        if let Some(d) = self.px.get_mut(i) {
            blend(d, rgb, a);
        }
    }

    pub(crate) fn into_image(self) -> RgbaImage {
        let (w, h) = (self.width, self.height);
        let mut px = self.px;
        // Un-premultiply in place (opaque pixels, the bulk, stay as they are), then hand the
        // buffer over without copying it.
        for run in px.chunks_mut(OPAQUE_RUN) {
            if all_opaque(run) {
                continue;
            }
            for p in run {
                let a = p[3];
                if a == 255 {
                    continue;
                }
                if a == 0 {
                    *p = [0; 4];
                } else {
                    let un = |c: u8| {
                        ((u32::from(c) * 255 + u32::from(a) / 2) / u32::from(a)).min(255) as u8
                    };
                    *p = [un(p[0]), un(p[1]), un(p[2]), a];
                }
            }
        }
        // The buffer is exactly w*h*4 bytes by construction.
        RgbaImage::from_raw(w, h, px.into_flattened()).unwrap_or_else(|| RgbaImage::new(w, h))
    }
}

/// Pixels checked at a time by [`all_opaque`] callers that skip opaque runs.
const OPAQUE_RUN: usize = 256;

/// Whether every pixel's alpha is 255 (a loop without early exit per run, which the compiler
/// turns into SIMD; a per-pixel `all` stays scalar).
pub(crate) fn all_opaque(px: &[[u8; 4]]) -> bool {
    px.chunks(OPAQUE_RUN)
        .all(|run| run.iter().fold(0xff, |m, p| m & p[3]) == 0xff)
}

/// Composites a straight-alpha colour (0..255 per channel) with coverage `a` in 0..1 over a
/// premultiplied pixel.
#[inline]
fn blend(d: &mut [u8; 4], rgb: [f32; 3], a: f32) {
    let k = 1.0 - a;
    for c in 0..3 {
        d[c] = (rgb[c] * a + f32::from(d[c]) * k + 0.5).min(255.0) as u8;
    }
    d[3] = (255.0 * a + f32::from(d[3]) * k + 0.5).min(255.0) as u8;
}

/// Composites a straight-alpha 8-bit pixel at `opacity` (0..=255) over a premultiplied pixel.
#[inline]
fn put(d: &mut [u8; 4], p: [u8; 4], opacity: u32) {
    let a = (u32::from(p[3]) * opacity + 127) / 255;
    if a == 255 {
        *d = [p[0], p[1], p[2], 255];
    } else if a > 0 {
        let rgb = [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])];
        blend(d, rgb, a as f32 / 255.0);
    }
}

/// A finite number from the layer, clamped to ±MAX_COORD; `None` when absent or not a number.
pub(crate) fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k)
        .and_then(Value::as_f64)
        .filter(|n| n.is_finite())
        .map(|n| n.clamp(-MAX_COORD, MAX_COORD))
}

fn draw_image(
    out: &mut Canvas,
    layer: &Value,
    name: &str,
    assets: &dyn AssetSource,
    (sx, sy): (f64, f64),
) -> Result<(), Warning> {
    let skip = |reason| Warning::Skipped {
        layer: name.to_owned(),
        reason,
    };
    let Some(asset_id) = layer.get("asset").and_then(Value::as_text) else {
        return Err(skip("image layer without an asset id"));
    };
    let asset_id = asset_id.to_string();
    let asset = match assets.asset(&asset_id) {
        Ok(Some(a)) => a,
        Ok(None) => {
            return Err(Warning::MissingAsset {
                layer: name.to_owned(),
                asset: asset_id,
            });
        }
        Err(e) => {
            return Err(Warning::AssetError {
                layer: name.to_owned(),
                asset: asset_id,
                reason: e.to_string(),
            });
        }
    };
    let (x, y) = (
        num(layer, "x").unwrap_or(0.0),
        num(layer, "y").unwrap_or(0.0),
    );
    let (Some(w), Some(h)) = (num(layer, "w"), num(layer, "h")) else {
        return Err(skip("image layer without a numeric w and h"));
    };
    if w <= 0.0 || h <= 0.0 {
        return Err(skip("image layer with zero or negative size"));
    }
    let crop =
        crop_rect(layer.get("crop"), &asset).ok_or_else(|| skip("crop outside the asset"))?;
    let opacity = num(layer, "opacity").map_or(1.0, |o| o.clamp(0.0, 1.0)) as f32;
    if opacity == 0.0 {
        return Ok(());
    }
    let flip = layer.get("flip");
    let flag = |k| matches!(flip.and_then(|f| f.get(k)), Some(Value::Bool(true)));
    let geom = Geometry {
        left: x * sx,
        top: y * sy,
        w: w * sx,
        h: h * sy,
        rotation: num(layer, "rotation").unwrap_or(0.0),
    };
    let look = Look {
        flip_h: flag("h"),
        flip_v: flag("v"),
        opacity,
        adjust: Adjust::from_value(layer.get("adjust")),
    };
    if blit(out, &asset, crop, &geom, &look) {
        return Ok(());
    }
    let view = source_view(&asset, crop, geom.w, geom.h, &look.adjust)
        .ok_or_else(|| skip("resize failed"))?;
    warp(out, &view, &geom, look);
    Ok(())
}

/// The crop in asset pixels intersected with the asset; `None` when nothing is left.
fn crop_rect(crop: Option<&Value>, asset: &Asset) -> Option<[f64; 4]> {
    let (aw, ah) = (f64::from(asset.width()), f64::from(asset.height()));
    let Some(c) = crop.filter(|c| c.as_obj().is_some()) else {
        return Some([0.0, 0.0, aw, ah]);
    };
    let cx = num(c, "x").unwrap_or(0.0);
    let cy = num(c, "y").unwrap_or(0.0);
    let cw = num(c, "w").unwrap_or(aw);
    let ch = num(c, "h").unwrap_or(ah);
    let (x0, x1) = (cx.clamp(0.0, aw), (cx + cw).clamp(0.0, aw));
    let (y0, y1) = (cy.clamp(0.0, ah), (cy + ch).clamp(0.0, ah));
    (x1 - x0 >= 0.5 && y1 - y0 >= 0.5).then_some([x0, y0, x1 - x0, y1 - y0])
}

struct Geometry {
    left: f64,
    top: f64,
    w: f64,
    h: f64,
    rotation: f64,
}

struct Look {
    flip_h: bool,
    flip_v: bool,
    opacity: f32,
    adjust: Adjust,
}

/// What the warp samples from: an image and a rectangle in it.
struct View<'a> {
    img: Pixels<'a>,
    rect: [f64; 4],
    /// Every texel is opaque (sampling skips the premultiplied path).
    opaque: bool,
    /// The adjustments are already applied to the texels.
    adjusted: bool,
}

/// A view's image: the asset's own, a shared resize, or one made for this render.
enum Pixels<'a> {
    Borrowed(&'a RgbaImage),
    Shared(Arc<RgbaImage>),
    Owned(RgbaImage),
}

impl std::ops::Deref for Pixels<'_> {
    type Target = RgbaImage;
    fn deref(&self) -> &RgbaImage {
        match self {
            Pixels::Borrowed(i) => i,
            Pixels::Shared(i) => i,
            Pixels::Owned(i) => i,
        }
    }
}

/// Fast path for the common case: a layer turned by a multiple of 90° whose rectangle falls on
/// whole target pixels is a texel-for-pixel copy from the crop resized to exactly the layer's
/// size (or the crop itself at 1:1). Returns `false` when the layer doesn't qualify.
fn blit(out: &mut Canvas, asset: &Asset, crop: [f64; 4], g: &Geometry, look: &Look) -> bool {
    let turns = match g.rotation.rem_euclid(360.0) {
        0.0 => 0,
        90.0 => 1,
        180.0 => 2,
        270.0 => 3,
        _ => return false,
    };
    let whole = |v: f64| (v - v.round()).abs() < 1e-3;
    if !(whole(g.left) && whole(g.top) && whole(g.w) && whole(g.h)) {
        return false;
    }
    let (wf, hf) = (g.w.round(), g.h.round());
    // Big zooms go to the warp, which samples the asset without allocating the layer.
    let target_area = f64::from(out.width) * f64::from(out.height);
    if wf < 1.0 || hf < 1.0 || wf * hf > 4.0 * target_area {
        return false;
    }
    let (w, h) = (wf as u32, hf as u32);
    let (dw, dh) = if turns % 2 == 1 { (h, w) } else { (w, h) };
    // The displayed rectangle keeps the layer's centre; twice its corner must be even.
    let l2 = 2 * (g.left.round() as i64) + i64::from(w) - i64::from(dw);
    let t2 = 2 * (g.top.round() as i64) + i64::from(h) - i64::from(dh);
    if l2 % 2 != 0 || t2 % 2 != 0 {
        return false;
    }
    let (left, top) = (l2 / 2, t2 / 2);
    let [cx, cy, cw, ch] = crop;
    let resized;
    let (src, ox, oy) = if whole(cx) && whole(cy) && cw.round() == wf && ch.round() == hf {
        (asset.image(), cx.round() as u32, cy.round() as u32)
    } else {
        match asset.resized(crop, (cw / wf).min(ch / hf).max(1.0), w, h) {
            Some(img) => resized = img,
            None => return false,
        }
        (&*resized, 0, 0)
    };
    let adjust = (!look.adjust.is_identity()).then(|| look.adjust.prepare());
    let opacity = (look.opacity * 255.0).round() as u32;
    let x0 = left.max(0);
    let x1 = (left + i64::from(dw)).min(i64::from(out.width));
    let y0 = top.max(0);
    let y1 = (top + i64::from(dh)).min(i64::from(out.height));
    if x0 >= x1 || y0 >= y1 {
        return true;
    }
    out.work += ((x1 - x0) * (y1 - y0)) as u64;
    let (w, h) = (i64::from(w), i64::from(h));
    let stride = i64::from(src.width());
    let raw = src.as_raw();
    let out_w = out.width as usize;
    let adjust = adjust.as_ref();
    let (from, to) = (x0 as usize, x1 as usize);
    let draw_row = |ty: i64, row: &mut [[u8; 4]]| {
        let Some(row) = row.get_mut(from..to) else {
            return;
        };
        let dy = ty - top;
        // Layer texel (i, j) = (i0 + di·dx, j0 + dj·dx) along the row: the inverse of the
        // clockwise quarter turn, then the flips (which act in the layer's own frame).
        let (mut i0, mut di, mut j0, mut dj) = match turns {
            0 => (0, 1, dy, 0),
            1 => (dy, 0, h - 1, -1),
            2 => (w - 1, -1, h - 1 - dy, 0),
            _ => (w - 1 - dy, 0, 0, 1),
        };
        if look.flip_h {
            (i0, di) = (w - 1 - i0, -di);
        }
        if look.flip_v {
            (j0, dj) = (h - 1 - j0, -dj);
        }
        let dx0 = x0 - left;
        let start = ((i64::from(oy) + j0 + dj * dx0) * stride + i64::from(ox) + i0 + di * dx0) * 4;
        let step = (di + dj * stride) * 4;
        // Left to right along a source row (no turn, no mirror): whole slices.
        if step == 4
            && let Some(texels) = usize::try_from(start)
                .ok()
                .and_then(|s| raw.get(s..s + row.len() * 4))
        {
            copy_row(row, texels.as_chunks::<4>().0, adjust, opacity);
            return;
        }
        for (k, d) in row.iter_mut().enumerate() {
            let at = (start + step * k as i64) as usize;
            let Some(t) = raw.get(at..at + 4) else {
                continue;
            };
            let p = [t[0], t[1], t[2], t[3]];
            let p = adjust.map_or(p, |a| a.pixel(p));
            if p[3] == 255 && opacity == 255 {
                *d = p;
            } else {
                put(d, p, opacity);
            }
        }
    };
    // Bands of rows, side by side on idle cores.
    const BAND_ROWS: usize = 64;
    let rows = &mut out.px[y0 as usize * out_w..y1 as usize * out_w];
    let bands: Vec<(i64, &mut [[u8; 4]])> = (y0..y1)
        .step_by(BAND_ROWS)
        .zip(rows.chunks_mut(BAND_ROWS * out_w))
        .collect();
    let pixels = (to - from) * (y1 - y0) as usize;
    crate::par::run(bands, pixels, |(y, band)| {
        for (ty, row) in (y..).zip(band.chunks_exact_mut(out_w)) {
            draw_row(ty, row);
        }
    });
    true
}

/// One row of texels onto one row of the canvas, adjusted and at `opacity` (0..=255).
#[inline]
fn copy_row(
    row: &mut [[u8; 4]],
    texels: &[[u8; 4]],
    adjust: Option<&crate::adjust::Prepared>,
    opacity: u32,
) {
    match (adjust, opacity) {
        (None, 255) => {
            for (d, &p) in row.iter_mut().zip(texels) {
                if p[3] == 255 {
                    *d = p;
                } else {
                    put(d, p, 255);
                }
            }
        }
        (Some(a), 255) if all_opaque(texels) => a.row(row, texels),
        (Some(a), 255) => {
            for (d, &p) in row.iter_mut().zip(texels) {
                let p = a.pixel(p);
                if p[3] == 255 {
                    *d = p;
                } else {
                    put(d, p, 255);
                }
            }
        }
        _ => {
            for (d, &p) in row.iter_mut().zip(texels) {
                put(d, adjust.map_or(p, |a| a.pixel(p)), opacity);
            }
        }
    }
}

/// Scales the crop down to (about) the size it will be drawn at, from the smallest mip level
/// that is still large enough; when the layer is drawn larger than the crop, samples the asset
/// directly instead, so a huge layer never allocates more than the asset.
fn source_view<'a>(
    asset: &'a Asset,
    crop: [f64; 4],
    dw: f64,
    dh: f64,
    adjust: &Adjust,
) -> Option<View<'a>> {
    let [_, _, cw, ch] = crop;
    // (The epsilon keeps 1620.0000000002 from becoming 1621.)
    let pw = (dw - 1e-6).ceil().clamp(1.0, cw.ceil());
    let ph = (dh - 1e-6).ceil().clamp(1.0, ch.ceil());
    if pw >= cw.ceil() && ph >= ch.ceil() {
        return Some(View {
            img: Pixels::Borrowed(asset.image()),
            rect: crop,
            opaque: asset.is_opaque(),
            adjusted: false,
        });
    }
    let factor = (cw / pw).min(ch / ph);
    let resized = asset.resized(crop, factor, pw as u32, ph as u32)?;
    // At about the drawn size, adjusting every texel once is cheaper than every sample (into a
    // copy: the resize is kept for the next render).
    let small = if adjust.is_identity() {
        Pixels::Shared(resized)
    } else {
        Pixels::Owned(adjust.applied(&resized))
    };
    let rect = [
        0.0,
        0.0,
        f64::from(small.width()),
        f64::from(small.height()),
    ];
    Some(View {
        img: small,
        rect,
        opaque: asset.is_opaque(),
        adjusted: true,
    })
}

/// Resizes `region` ([x, y, w, h] in `src` pixels) of `src` to `w`×`h` with a bilinear-kernel
/// convolution (an area-weighted filter when shrinking); `alpha` premultiplies while filtering
/// (needed unless every pixel is opaque).
pub(crate) fn resize_region(
    src: &RgbaImage,
    region: [f64; 4],
    w: u32,
    h: u32,
    alpha: bool,
) -> Option<RgbaImage> {
    let src_view = ImageRef::new(src.width(), src.height(), src.as_raw(), PixelType::U8x4).ok()?;
    let mut dst = Image::new(w.max(1), h.max(1), PixelType::U8x4);
    let [x, y, rw, rh] = region;
    let opts = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(x, y, rw, rh)
        .use_alpha(alpha);
    Resizer::new().resize(&src_view, &mut dst, &opts).ok()?;
    RgbaImage::from_raw(dst.width(), dst.height(), dst.into_vec())
}

/// Draws the view into the layer's rectangle, rotated about its centre, by inverse mapping every
/// target pixel in the rotated bounding box: bilinear sampling, box-filter edge coverage.
fn warp(out: &mut Canvas, view: &View<'_>, g: &Geometry, look: Look) {
    let rot = g.rotation.rem_euclid(360.0);
    // Exact quarter turns keep corners on exact pixels.
    let (sin, cos) = match rot {
        0.0 => (0.0, 1.0),
        90.0 => (1.0, 0.0),
        180.0 => (0.0, -1.0),
        270.0 => (-1.0, 0.0),
        r => r.to_radians().sin_cos(),
    };
    let (cx, cy) = (g.left + g.w / 2.0, g.top + g.h / 2.0);
    let ex = (g.w / 2.0 * cos).abs() + (g.h / 2.0 * sin).abs();
    let ey = (g.w / 2.0 * sin).abs() + (g.h / 2.0 * cos).abs();
    let x0 = (cx - ex).floor().max(0.0);
    let x1 = (cx + ex).ceil().min(f64::from(out.width));
    let y0 = (cy - ey).floor().max(0.0);
    let y1 = (cy + ey).ceil().min(f64::from(out.height));
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    let sampler = Sampler::new(view);
    let (ku, kv) = (view.rect[2] / g.w, view.rect[3] / g.h);
    let lut = (!view.adjusted && !look.adjust.is_identity()).then(|| tone_lut(&look.adjust));
    let sat = 1.0 + look.adjust.saturation;
    let (hw, hh) = (g.w / 2.0, g.h / 2.0);
    let opaque_copy = view.opaque && lut.is_none() && look.opacity >= 1.0;
    for py in y0 as u32..y1 as u32 {
        let dy = f64::from(py) + 0.5 - cy;
        // Along the row, u = u0 + cos·px and v = v0 − sin·px (the inverse rotation of the pixel
        // centre). Only pixels with −½ < u < w+½ and −½ < v < h+½ can be covered: for a tilted
        // layer that is about half its bounding box.
        let u0 = (0.5 - cx) * cos + dy * sin + hw;
        let v0 = -(0.5 - cx) * sin + dy * cos + hh;
        let Some((lo_u, hi_u)) = span(u0, cos, -0.5, g.w + 0.5) else {
            continue;
        };
        let Some((lo_v, hi_v)) = span(v0, -sin, -0.5, g.h + 0.5) else {
            continue;
        };
        let from = lo_u.max(lo_v).floor().max(x0);
        let to = (hi_u.min(hi_v).ceil() + 1.0).min(x1);
        if from >= to {
            continue;
        }
        out.work += (to - from) as u64;
        for px in from as u32..to as u32 {
            let u = u0 + cos * f64::from(px);
            let v = v0 - sin * f64::from(px);
            let cov = overlap(u, g.w) * overlap(v, g.h);
            if cov <= 0.0 {
                continue;
            }
            let u = if look.flip_h { g.w - u } else { u };
            let v = if look.flip_v { g.h - v } else { v };
            let fx = view.rect[0] + u.clamp(0.0, g.w) * ku - 0.5;
            let fy = view.rect[1] + v.clamp(0.0, g.h) * kv - 0.5;
            // The bulk of a tilted opaque layer: whole coverage, nothing to tone: integer bilinear.
            if cov >= 1.0
                && opaque_copy
                && let Some(rgb) = sampler.sample_opaque(fx, fy)
            {
                let i = py as usize * out.width as usize + px as usize;
                if let Some(d) = out.px.get_mut(i) {
                    *d = [rgb[0], rgb[1], rgb[2], 255];
                }
                continue;
            }
            let (mut rgb, a) = sampler.sample(fx, fy);
            if a <= 0.0 {
                continue;
            }
            if let Some(lut) = &lut {
                rgb = apply_lut(lut, sat, look.adjust.saturation != 0.0, rgb);
            }
            let a = a * cov as f32 * look.opacity;
            if a >= 1.0 {
                let i = py as usize * out.width as usize + px as usize;
                if let Some(d) = out.px.get_mut(i) {
                    *d = [
                        (rgb[0] + 0.5) as u8,
                        (rgb[1] + 0.5) as u8,
                        (rgb[2] + 0.5) as u8,
                        255,
                    ];
                }
            } else {
                out.blend(px, py, rgb, a);
            }
        }
    }
}

/// The x for which `a < p + q·x < b`, as an interval (unbounded ends are infinite); `None` if empty.
fn span(p: f64, q: f64, a: f64, b: f64) -> Option<(f64, f64)> {
    if q.abs() < 1e-12 {
        return (a < p && p < b).then_some((f64::NEG_INFINITY, f64::INFINITY));
    }
    let (t1, t2) = ((a - p) / q, (b - p) / q);
    Some((t1.min(t2), t1.max(t2)))
}

/// `f64::floor` is a libm call on baseline x86-64 (no SSE4.1); a truncating cast is one instruction.
#[inline]
fn floor(v: f64) -> i64 {
    let t = v as i64;
    if (t as f64) > v { t - 1 } else { t }
}

/// Composites a straight-alpha image whose unrotated top-left is at (left, top) in target
/// pixels, turned `rotation` degrees clockwise about its centre (used by rotated text).
pub(crate) fn composite(
    out: &mut Canvas,
    img: RgbaImage,
    (left, top, w, h, rotation): (f64, f64, f64, f64, f64),
    opacity: f32,
) {
    let rect = [0.0, 0.0, f64::from(img.width()), f64::from(img.height())];
    let view = View {
        img: Pixels::Owned(img),
        rect,
        opaque: false,
        adjusted: true,
    };
    let geom = Geometry {
        left,
        top,
        w,
        h,
        rotation,
    };
    let look = Look {
        flip_h: false,
        flip_v: false,
        opacity,
        adjust: Adjust::default(),
    };
    warp(out, &view, &geom, look);
}

/// Length of the pixel [t−½, t+½] inside [0, len].
#[inline]
fn overlap(t: f64, len: f64) -> f64 {
    ((t + 0.5).min(len) - (t - 0.5).max(0.0)).clamp(0.0, 1.0)
}

fn tone_lut(adj: &Adjust) -> [f32; 256] {
    let mut lut = [0.0; 256];
    for (i, o) in lut.iter_mut().enumerate() {
        *o = adj.tone(i as f32 / 255.0) * 255.0;
    }
    lut
}

#[inline]
fn apply_lut(lut: &[f32; 256], sat: f32, do_sat: bool, rgb: [f32; 3]) -> [f32; 3] {
    let t = |c: f32| lut[(c.clamp(0.0, 255.0) + 0.5) as usize & 255];
    let [r, g, b] = [t(rgb[0]), t(rgb[1]), t(rgb[2])];
    if !do_sat {
        return [r, g, b];
    }
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    [
        (y + (r - y) * sat).clamp(0.0, 255.0),
        (y + (g - y) * sat).clamp(0.0, 255.0),
        (y + (b - y) * sat).clamp(0.0, 255.0),
    ]
}

/// Bilinear sampling confined to the view's rectangle (edge texels repeat), interpolating
/// premultiplied so transparent texels don't darken their neighbours.
struct Sampler<'a> {
    raw: &'a [u8],
    stride: usize,
    opaque: bool,
    lo: (i64, i64),
    hi: (i64, i64),
}

impl<'a> Sampler<'a> {
    fn new(view: &'a View<'_>) -> Self {
        let img: &RgbaImage = &view.img;
        let [x, y, w, h] = view.rect;
        let maxx = (i64::from(img.width()) - 1).max(0);
        let maxy = (i64::from(img.height()) - 1).max(0);
        let lo = (
            (x.floor() as i64).clamp(0, maxx),
            (y.floor() as i64).clamp(0, maxy),
        );
        let hi = (
            (((x + w).ceil() as i64) - 1).clamp(lo.0, maxx),
            (((y + h).ceil() as i64) - 1).clamp(lo.1, maxy),
        );
        Sampler {
            raw: img.as_raw(),
            stride: img.width() as usize * 4,
            opaque: view.opaque,
            lo,
            hi,
        }
    }

    #[inline]
    fn texel(&self, x: i64, y: i64) -> &[u8] {
        let x = x.clamp(self.lo.0, self.hi.0) as usize;
        let y = y.clamp(self.lo.1, self.hi.1) as usize;
        let i = y * self.stride + x * 4;
        &self.raw[i..i + 4]
    }

    /// Opaque view, all four taps inside the rectangle: bilinear in 8.8 fixed point. `None`
    /// near the rectangle's edge (use [`Sampler::sample`]).
    #[inline]
    fn sample_opaque(&self, fx: f64, fy: f64) -> Option<[u8; 3]> {
        let (x0, y0) = (floor(fx), floor(fy));
        if !(x0 >= self.lo.0 && x0 < self.hi.0 && y0 >= self.lo.1 && y0 < self.hi.1) {
            return None;
        }
        let wx = ((fx - x0 as f64) * 256.0) as u32;
        let wy = ((fy - y0 as f64) * 256.0) as u32;
        let i = y0 as usize * self.stride + x0 as usize * 4;
        let a = self.raw.get(i..i + 8)?;
        let b = self.raw.get(i + self.stride..i + self.stride + 8)?;
        let mut rgb = [0u8; 3];
        for (c, out) in rgb.iter_mut().enumerate() {
            let top = u32::from(a[c]) * (256 - wx) + u32::from(a[c + 4]) * wx;
            let bot = u32::from(b[c]) * (256 - wx) + u32::from(b[c + 4]) * wx;
            *out = ((top * (256 - wy) + bot * wy + (1 << 15)) >> 16) as u8;
        }
        Some(rgb)
    }

    /// Straight colour (0..255) and alpha (0..1) at (fx, fy) in texel-centre coordinates.
    #[inline]
    fn sample(&self, fx: f64, fy: f64) -> ([f32; 3], f32) {
        let (x0, y0) = (floor(fx), floor(fy));
        let (tx, ty) = ((fx - x0 as f64) as f32, (fy - y0 as f64) as f32);
        // Opaque and all four taps inside: plain bilinear on two adjacent texel pairs.
        if self.opaque && x0 >= self.lo.0 && x0 < self.hi.0 && y0 >= self.lo.1 && y0 < self.hi.1 {
            let i = y0 as usize * self.stride + x0 as usize * 4;
            if let (Some(a), Some(b)) = (
                self.raw.get(i..i + 8),
                self.raw.get(i + self.stride..i + self.stride + 8),
            ) {
                let mut rgb = [0.0f32; 3];
                for (c, out) in rgb.iter_mut().enumerate() {
                    let top = f32::from(a[c]) + (f32::from(a[c + 4]) - f32::from(a[c])) * tx;
                    let bot = f32::from(b[c]) + (f32::from(b[c + 4]) - f32::from(b[c])) * tx;
                    *out = top + (bot - top) * ty;
                }
                return (rgb, 1.0);
            }
        }
        let taps = [
            (self.texel(x0, y0), (1.0 - tx) * (1.0 - ty)),
            (self.texel(x0 + 1, y0), tx * (1.0 - ty)),
            (self.texel(x0, y0 + 1), (1.0 - tx) * ty),
            (self.texel(x0 + 1, y0 + 1), tx * ty),
        ];
        let mut acc = [0.0f32; 4];
        for (t, w) in taps {
            let wa = w * f32::from(t[3]);
            acc[0] += f32::from(t[0]) * wa;
            acc[1] += f32::from(t[1]) * wa;
            acc[2] += f32::from(t[2]) * wa;
            acc[3] += wa;
        }
        if acc[3] <= 0.0 {
            return ([0.0; 3], 0.0);
        }
        (
            [acc[0] / acc[3], acc[1] / acc[3], acc[2] / acc[3]],
            acc[3] / 255.0,
        )
    }
}
