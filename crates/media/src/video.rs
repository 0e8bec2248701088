//! Video frames: which clip plays at a playhead (pure), and the frame itself through ffmpeg
//! when it is installed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use image::RgbaImage;
use montage_ot::Value;

use crate::asset::{Limits, decode};
use crate::av::{file_input, input_args, limited, run_tool, sniff_container, tool_path};
use crate::error::MediaError;
use crate::render::{MAX_TARGET_SIDE, Size};

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

/// The video clip visible at `playhead` seconds: later tracks are on top, as layers are; within
/// a track the first clip covering the time wins. A clip covers `start ≤ t < start + (out − in)`;
/// clips with `out ≤ in` or non-numeric times are ignored.
pub fn clip_at(doc: &Value, playhead: f64) -> Option<ClipAt> {
    if !playhead.is_finite() {
        return None;
    }
    let tracks = doc.get("timeline")?.get("tracks")?.as_arr()?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_text).map(|t| t.to_string());
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).filter(|n| n.is_finite());
    for track in tracks.iter().rev() {
        if text(track, "kind").as_deref() != Some("video") {
            continue;
        }
        let Some(clips) = track.get("clips").and_then(Value::as_arr) else {
            continue;
        };
        for clip in clips {
            let (Some(start), Some(t_in), Some(t_out)) =
                (num(clip, "start"), num(clip, "in"), num(clip, "out"))
            else {
                continue;
            };
            let len = t_out - t_in;
            if len > 0.0 && playhead >= start && playhead < start + len {
                return Some(ClipAt {
                    track: text(track, "id").unwrap_or_default(),
                    clip: text(clip, "id").unwrap_or_default(),
                    asset: text(clip, "asset")?,
                    source_time: t_in + (playhead - start),
                });
            }
        }
    }
    None
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
    // The container is sniffed again, as on upload, so ffmpeg is told its demuxer.
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path)
        .and_then(|f| f.take(64).read_to_end(&mut head))
        .map_err(|e| MediaError::Store {
            reason: format!("{}: {e}", path.display()),
        })?;
    let container = sniff_container(&head).ok_or_else(|| MediaError::MalformedMedia {
        container: "video",
        reason: "not a video container".into(),
        detail: String::new(),
    })?;
    let scale = format!(
        "scale=w='min({w},iw)':h='min({h},ih)':force_original_aspect_ratio=decrease",
        w = max.width,
        h = max.height
    );
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
            &scale,
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
