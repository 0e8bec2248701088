use std::path::PathBuf;
use std::process::Command;

use montage_media::{ClipAt, Limits, MediaError, Size, clip_at, ffmpeg_path, frame_at};
use montage_ot::Value;
use serde_json::json;

fn timeline() -> Value {
    Value::from_json(&json!({"timeline": {"tracks": [
        {"id": "v1", "kind": "video", "clips": [
            {"id": "a", "asset": "A", "start": 0, "in": 10, "out": 15},
            {"id": "b", "asset": "B", "start": 5, "in": 0, "out": 5},
            {"id": "bad", "asset": "X", "start": 20, "in": 3, "out": 1},
        ]},
        {"id": "au", "kind": "audio", "clips": [{"id": "m", "asset": "M", "start": 0, "in": 0, "out": 100}]},
        {"id": "v2", "kind": "video", "clips": [
            {"id": "c", "asset": "C", "start": 7, "in": 1, "out": 2},
        ]},
    ]}}))
}

#[test]
fn clip_at_finds_the_top_clip_and_its_source_time() {
    let d = timeline();
    let at = |t| clip_at(&d, t).map(|c| (c.clip, c.source_time));
    assert_eq!(at(0.0), Some(("a".into(), 10.0)));
    assert_eq!(at(4.5), Some(("a".into(), 14.5)));
    assert_eq!(at(5.0), Some(("b".into(), 0.0)));
    // v2 is above v1.
    assert_eq!(at(7.5), Some(("c".into(), 1.5)));
    assert_eq!(at(8.0), Some(("b".into(), 3.0)));
    assert_eq!(at(10.0), None);
    assert_eq!(at(21.0), None, "a clip with out < in is ignored");
    assert_eq!(at(-1.0), None);
    assert_eq!(at(f64::NAN), None);
    assert_eq!(
        clip_at(&d, 1.0),
        Some(ClipAt {
            track: "v1".into(),
            clip: "a".into(),
            asset: "A".into(),
            source_time: 11.0
        })
    );
    assert_eq!(clip_at(&Value::Null, 1.0), None);
}

fn temp_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let d = std::env::temp_dir().join(format!("montage-media-test-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn frame_at_extracts_a_frame_or_says_ffmpeg_is_missing() {
    let Some(ffmpeg) = ffmpeg_path() else {
        let e = frame_at(
            std::path::Path::new("/nonexistent.mp4"),
            1.0,
            Size::new(320, 240),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(
            matches!(e, MediaError::NotSupported("ffmpeg is not installed")),
            "{e:?}"
        );
        assert_eq!(e.code(), "not_supported");
        return;
    };
    let dir = temp_dir();
    let video = dir.join("clip.mp4");
    // Two seconds: red for the first, blue for the second.
    let status = Command::new(ffmpeg)
        .args([
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=320x240:d=1:r=10",
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:s=320x240:d=1:r=10",
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1[v]",
            "-map",
            "[v]",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&video)
        .status()
        .expect("run ffmpeg");
    assert!(status.success());
    let limits = Limits::default();
    let early = frame_at(&video, 0.5, Size::new(1920, 1080), &limits).expect("frame");
    assert_eq!(early.dimensions(), (320, 240), "never upscaled");
    let [r, g, b, _] = early.get_pixel(160, 120).0;
    assert!(r > 200 && g < 60 && b < 60, "{r},{g},{b}");
    let late = frame_at(&video, 1.5, Size::new(160, 160), &limits).expect("frame");
    assert_eq!(late.dimensions(), (160, 120), "scaled down, aspect kept");
    let [r, _, b, _] = late.get_pixel(80, 60).0;
    assert!(b > 200 && r < 60, "{r},{b}");
    // Past the end, a missing file, a bad time: clear errors.
    assert!(matches!(
        frame_at(&video, 50.0, Size::new(64, 64), &limits),
        Err(MediaError::Ffmpeg { .. })
    ));
    assert!(matches!(
        frame_at(&dir.join("nope.mp4"), 0.0, Size::new(64, 64), &limits),
        Err(MediaError::Ffmpeg { .. })
    ));
    assert!(matches!(
        frame_at(&video, -1.0, Size::new(64, 64), &limits),
        Err(MediaError::Invalid { .. })
    ));
    assert!(matches!(
        frame_at(&video, 0.0, Size::new(0, 64), &limits),
        Err(MediaError::BadTarget { .. })
    ));
    let _ = std::fs::remove_dir_all(dir);
}
