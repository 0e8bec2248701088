//! Video frames: which clip plays at a playhead (pure), and the frame itself through ffmpeg
//! when it is installed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use image::RgbaImage;
use montage_ot::Value;

use crate::asset::{Limits, decode};
use crate::error::MediaError;
use crate::render::{MAX_TARGET_SIDE, Size};

/// How long one ffmpeg frame extraction may take before it is killed.
pub const FFMPEG_TIMEOUT: Duration = Duration::from_secs(30);

/// The ffmpeg executable on `PATH`, if any.
pub fn ffmpeg_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ffmpeg"))
        .find(|p| p.is_file())
}

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
    let ffmpeg = ffmpeg_path().ok_or(MediaError::NotSupported("ffmpeg is not installed"))?;
    // "file:" keeps ffmpeg from reading a path as a URL or another protocol.
    let mut input = std::ffi::OsString::from("file:");
    input.push(path.as_os_str());
    let scale = format!(
        "scale=w='min({w},iw)':h='min({h},ih)':force_original_aspect_ratio=decrease",
        w = max.width,
        h = max.height
    );
    let mut child = Command::new(ffmpeg)
        .args([
            "-nostdin",
            "-v",
            "error",
            "-ss",
            &format!("{seconds:.6}"),
            "-i",
        ])
        .arg(input)
        .args([
            "-frames:v",
            "1",
            "-vf",
            &scale,
            "-f",
            "image2pipe",
            "-c:v",
            "png",
            "-",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| MediaError::Ffmpeg {
            reason: format!("could not start: {e}"),
        })?;
    let max_bytes = limits.max_bytes;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    // Pipes are drained on threads so a large frame can't block ffmpeg while we wait on it.
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(max_bytes.saturating_add(1)).read_to_end(&mut buf);
        }
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(64 * 1024).read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + FFMPEG_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(MediaError::Ffmpeg {
                    reason: format!("timed out after {FFMPEG_TIMEOUT:?}"),
                });
            }
            Err(e) => {
                return Err(MediaError::Ffmpeg {
                    reason: e.to_string(),
                });
            }
        }
    };
    let png = out.join().unwrap_or_default();
    let log = err.join().unwrap_or_default();
    if !status.success() {
        let msg = String::from_utf8_lossy(&log);
        return Err(MediaError::Ffmpeg {
            reason: format!("{status}: {}", msg.trim()),
        });
    }
    if png.is_empty() {
        return Err(MediaError::Ffmpeg {
            reason: format!("no frame at {seconds} s (past the end?)"),
        });
    }
    decode(&png, limits)
}
