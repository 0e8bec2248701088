//! Video frames: which clip plays at a playhead (pure), and the frame itself through ffmpeg
//! when it is installed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::HashMap;
use std::sync::Arc;

use image::RgbaImage;
use montage_ot::Value;

use crate::asset::{Asset, AssetSource, Limits, decode};
use crate::av::{file_input, input_args, limited, run_tool, sniff_file, tool_path};
use crate::error::MediaError;
use crate::render::{MAX_LAYERS, MAX_TARGET_SIDE, Size, Warning, canvas_size, render};

/// How long one ffmpeg frame extraction may take before it is killed (also its CPU-time limit).
pub const FFMPEG_TIMEOUT: Duration = Duration::from_secs(30);

/// What plays at a timeline time: the clip and the time inside its asset.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipAt {
    pub track: String,
    pub clip: String,
    pub asset: String,
    /// Seconds into the asset: `in + (playhead − start)`.
    pub source_time: f64,
}

/// The video clip visible at `playhead`: later tracks are on top, as layers are; within
/// a track the first clip covering the time wins. A clip covers `start ≤ t < start + (out − in)`;
/// clips with `out ≤ in` or non-numeric times are ignored.
pub fn clip_at(doc: &Value, playhead: f64) -> Option<ClipAt> {
    clips_at(doc, playhead).pop().map(|(c, _)| c)
}

/// Every video track's clip at `playhead` (see [`clip_at`]), lowest track first, with the clip
/// object (its `opacity`, `crop` and `adjust`).
pub fn clips_at(doc: &Value, playhead: f64) -> Vec<(ClipAt, &Value)> {
    let mut out = Vec::new();
    if !playhead.is_finite() {
        return out;
    }
    let Some(tracks) = doc
        .get("timeline")
        .and_then(|t| t.get("tracks"))
        .and_then(Value::as_arr)
    else {
        return out;
    };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_text).map(|t| t.to_string());
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).filter(|n| n.is_finite());
    for track in tracks {
        if text(track, "kind").as_deref() != Some("video") {
            continue;
        }
        let Some(clips) = track.get("clips").and_then(Value::as_arr) else {
            continue;
        };
        let playing = clips.iter().find_map(|clip| {
            let (start, t_in, t_out) = (num(clip, "start")?, num(clip, "in")?, num(clip, "out")?);
            let len = t_out - t_in;
            if !(len > 0.0 && playhead >= start && playhead < start + len) {
                return None;
            }
            let at = ClipAt {
                track: text(track, "id").unwrap_or_default(),
                clip: text(clip, "id").unwrap_or_default(),
                asset: text(clip, "asset")?,
                source_time: t_in + (playhead - start),
            };
            Some((at, clip))
        });
        out.extend(playing);
    }
    out
}

/// Video tracks drawn into one composite frame at most; the ones above are left out (reported).
pub const MAX_COMPOSITE_TRACKS: usize = 16;

/// A composite frame: the picture and what is in it.
#[derive(Debug, Clone)]
pub struct Composite {
    pub image: RgbaImage,
    /// The clips drawn, lowest track first.
    pub clips: Vec<ClipAt>,
    pub warnings: Vec<Warning>,
}

/// A crop rectangle in a video's own pixels: `[x, y, w, h]`.
pub type CropRect = [u32; 4];

/// Gives one clip's frame: the clip, the crop in the video's pixels, and the box the frame must
/// fit in. The server caches these per (asset, time, crop, box).
pub type FrameSource<'a> =
    dyn Fn(&ClipAt, Option<CropRect>, Size) -> Result<Arc<Asset>, MediaError> + 'a;

/// The composite's own assets (a black backdrop, the clips' frames) over the document's. Their
/// ids start with NUL, which no stored asset id has.
struct WithFrames<'a> {
    frames: HashMap<String, Arc<Asset>>,
    assets: &'a dyn AssetSource,
}

impl AssetSource for WithFrames<'_> {
    fn asset(&self, id: &str) -> Result<Option<Arc<Asset>>, MediaError> {
        match self.frames.get(id) {
            Some(a) => Ok(Some(a.clone())),
            None => self.assets.asset(id),
        }
    }
}

/// The whole composition at `playhead`, `target` pixels large (the canvas scaled; pass a size
/// from [`crate::preview_size`]): black, then every video track's clip at that time from the
/// lowest track up — each frame fitted into the canvas and centred, with the clip's own `crop`
/// (in the video's pixels), `adjust` and `opacity` — then the canvas layers on top. A clip
/// whose asset is missing or can't be decoded is left out and reported; ffmpeg missing is
/// `NotSupported`.
pub fn composite_frame(
    doc: &Value,
    playhead: f64,
    target: Size,
    assets: &dyn AssetSource,
    frame_of: &FrameSource<'_>,
) -> Result<Composite, MediaError> {
    if !playhead.is_finite() || playhead < 0.0 {
        return Err(MediaError::Invalid {
            what: "playhead",
            reason: format!("{playhead} is not a non-negative number of seconds"),
        });
    }
    let canvas = canvas_size(doc);
    let (cw, ch) = (f64::from(canvas.width), f64::from(canvas.height));
    let mut warnings = Vec::new();
    let mut playing = clips_at(doc, playhead);
    if playing.len() > MAX_COMPOSITE_TRACKS {
        warnings.push(Warning::TooManyLayers {
            drawn: MAX_COMPOSITE_TRACKS,
            total: playing.len(),
        });
        playing.truncate(MAX_COMPOSITE_TRACKS);
    }
    let mut frames = HashMap::new();
    let black = RgbaImage::from_pixel(1, 1, image::Rgba([0, 0, 0, 255]));
    frames.insert(BLACK.to_owned(), Arc::new(Asset::new(black)));
    let mut layers = vec![image_layer(BLACK, [0.0, 0.0, cw, ch])];
    let mut clips = Vec::new();
    for (i, (at, clip)) in playing.into_iter().enumerate() {
        let frame = match frame_of(&at, crop_of(clip), target) {
            Ok(f) => f,
            Err(e @ (MediaError::NotSupported(_) | MediaError::Invalid { .. })) => return Err(e),
            Err(MediaError::MissingAsset { id }) => {
                warnings.push(Warning::MissingAsset {
                    layer: at.clip.clone(),
                    asset: id,
                });
                continue;
            }
            Err(e) => {
                warnings.push(Warning::AssetError {
                    layer: at.clip.clone(),
                    asset: at.asset.clone(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        // Fitted into the canvas and centred, letterboxed as a player does.
        let (fw, fh) = (f64::from(frame.width()), f64::from(frame.height()));
        let k = (cw / fw).min(ch / fh);
        let (w, h) = (fw * k, fh * k);
        let id = format!("\0frame{i}");
        frames.insert(id.clone(), frame);
        let mut layer = image_layer(&id, [(cw - w) / 2.0, (ch - h) / 2.0, w, h]);
        if let Value::Obj(fields) = &mut layer {
            for key in ["opacity", "adjust"] {
                if let Some(v) = clip.get(key) {
                    fields.insert(key.to_owned(), v.clone());
                }
            }
        }
        layers.push(layer);
        clips.push(at);
    }
    if let Some(own) = doc
        .get("canvas")
        .and_then(|c| c.get("layers"))
        .and_then(Value::as_arr)
    {
        layers.extend(own.iter().take(MAX_LAYERS).cloned());
    }
    let composed = obj(vec![(
        "canvas",
        obj(vec![
            ("width", Value::Num(cw)),
            ("height", Value::Num(ch)),
            ("layers", Value::Arr(layers)),
        ]),
    )]);
    let rendered = render(&composed, &WithFrames { frames, assets }, target)?;
    warnings.extend(rendered.warnings);
    Ok(Composite {
        image: rendered.image,
        clips,
        warnings,
    })
}

/// The backdrop's asset id.
const BLACK: &str = "\0black";

fn obj(fields: Vec<(&str, Value)>) -> Value {
    Value::Obj(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// An image layer showing all of `asset` in the canvas rectangle `[x, y, w, h]`.
fn image_layer(asset: &str, [x, y, w, h]: [f64; 4]) -> Value {
    obj(vec![
        ("id", Value::from(asset)),
        ("kind", Value::from("image")),
        ("asset", Value::from(asset)),
        ("x", Value::Num(x)),
        ("y", Value::Num(y)),
        ("w", Value::Num(w)),
        ("h", Value::Num(h)),
    ])
}

/// A clip's `crop` in whole video pixels; `None` when absent, partial or empty.
fn crop_of(clip: &Value) -> Option<CropRect> {
    let c = clip.get("crop")?;
    let px = |k: &str| {
        c.get(k)
            .and_then(Value::as_f64)
            .filter(|n| n.is_finite())
            .map(|n| n.round().clamp(0.0, 1.0e6) as u32)
    };
    let rect = [px("x")?, px("y")?, px("w")?, px("h")?];
    (rect[2] > 0 && rect[3] > 0).then_some(rect)
}

/// The timeline's picture at `playhead`: the top clip there (see [`clip_at`]) and its frame,
/// scaled to fit `max`. `Ok(None)` when no video clip plays then. `path_of` maps an asset id to
/// its file; an id it doesn't know is `MissingAsset`.
pub fn timeline_frame(
    doc: &Value,
    playhead: f64,
    max: Size,
    limits: &Limits,
    path_of: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<Option<(ClipAt, RgbaImage)>, MediaError> {
    if !playhead.is_finite() || playhead < 0.0 {
        return Err(MediaError::Invalid {
            what: "playhead",
            reason: format!("{playhead} is not a non-negative number of seconds"),
        });
    }
    let Some(clip) = clip_at(doc, playhead) else {
        return Ok(None);
    };
    let path = path_of(&clip.asset).ok_or_else(|| MediaError::MissingAsset {
        id: clip.asset.clone(),
    })?;
    let frame = frame_at(&path, clip.source_time.max(0.0), max, limits)?;
    Ok(Some((clip, frame)))
}

/// The frame of the video file at `seconds`, scaled down by ffmpeg to fit `max` (aspect kept,
/// never up), decoded under `limits`. `NotSupported` when ffmpeg is not installed.
pub fn frame_at(
    path: &Path,
    seconds: f64,
    max: Size,
    limits: &Limits,
) -> Result<RgbaImage, MediaError> {
    frame_region(path, seconds, None, max, limits)
}

/// [`frame_at`] of a region: the frame cropped to `crop` (in the video's pixels, clamped to
/// the frame) before it is scaled to fit `max`.
pub fn frame_region(
    path: &Path,
    seconds: f64,
    crop: Option<CropRect>,
    max: Size,
    limits: &Limits,
) -> Result<RgbaImage, MediaError> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(MediaError::Invalid {
            what: "time",
            reason: format!("{seconds} is not a non-negative number of seconds"),
        });
    }
    if max.width == 0
        || max.height == 0
        || max.width > MAX_TARGET_SIDE
        || max.height > MAX_TARGET_SIDE
    {
        return Err(MediaError::BadTarget {
            width: max.width,
            height: max.height,
        });
    }
    let ffmpeg = tool_path("ffmpeg").ok_or(MediaError::NotSupported("ffmpeg is not installed"))?;
    let container = sniff_file(path, "video")?;
    let mut filter = String::new();
    if let Some([x, y, w, h]) = crop {
        // Clamped to the frame: a crop partly outside keeps what is inside.
        filter = format!(
            "crop=w='max(1,min({w},iw-min({x},iw-1)))':h='max(1,min({h},ih-min({y},ih-1)))'\
             :x='min({x},iw-1)':y='min({y},ih-1)',"
        );
    }
    filter.push_str(&format!(
        "scale=w='min({w},iw)':h='min({h},ih)':force_original_aspect_ratio=decrease",
        w = max.width,
        h = max.height
    ));
    let mut cmd = limited(&ffmpeg, FFMPEG_TIMEOUT);
    cmd.args(["-nostdin", "-v", "error"]);
    input_args(&mut cmd, container, limits);
    cmd.args(["-ss", &format!("{seconds:.6}"), "-i"])
        .arg(file_input(path))
        // The first video stream that is not cover art: the one upload checked.
        .args([
            "-map",
            "0:V:0",
            "-frames:v",
            "1",
            "-vf",
            &filter,
            "-f",
            "image2pipe",
            "-c:v",
            "png",
            "-",
        ]);
    let (ok, png, log) = run_tool(cmd, FFMPEG_TIMEOUT, limits.max_bytes.saturating_add(1))?;
    if !ok {
        let msg = String::from_utf8_lossy(&log);
        return Err(MediaError::Ffmpeg {
            reason: msg.trim().to_owned(),
        });
    }
    if png.is_empty() {
        return Err(MediaError::Ffmpeg {
            reason: format!("no frame at {seconds} s (past the end?)"),
        });
    }
    decode(&png, limits)
}
