use std::path::PathBuf;
use std::process::Command;

use montage_media::{
    AssetKind, ClipAt, Container, Limits, MediaError, Size, clip_at, frame_at, probe_av,
    timeline_frame, tool_path,
};
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
    let Some(ffmpeg) = tool_path("ffmpeg") else {
        let doc = timeline();
        let any = |_: &str| Some(PathBuf::from("/nonexistent.mp4"));
        let e = timeline_frame(&doc, 1.0, Size::new(64, 64), &Limits::default(), &any).unwrap_err();
        assert!(matches!(e, MediaError::NotSupported(_)), "{e:?}");
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
        Err(MediaError::Store { .. })
    ));
    assert!(matches!(
        frame_at(&video, -1.0, Size::new(64, 64), &limits),
        Err(MediaError::Invalid { .. })
    ));
    assert!(matches!(
        frame_at(&video, 0.0, Size::new(0, 64), &limits),
        Err(MediaError::BadTarget { .. })
    ));
    // Through the timeline: a clip at 10 s playing the video from 0.5 s; at 11 s that is 1.5 s.
    let doc = Value::from_json(
        &json!({"timeline": {"tracks": [{"id": "v", "kind": "video", "clips": [
            {"id": "c", "asset": "vid", "start": 10, "in": 0.5, "out": 2},
            {"id": "d", "asset": "gone", "start": 20, "in": 0, "out": 1},
        ]}]}}),
    );
    let path_of = |id: &str| (id == "vid").then(|| video.clone());
    let (clip, frame) = timeline_frame(&doc, 11.0, Size::new(64, 64), &limits, &path_of)
        .expect("frame")
        .expect("a clip plays at 11 s");
    assert_eq!((clip.clip.as_str(), clip.source_time), ("c", 1.5));
    assert_eq!(frame.dimensions(), (64, 48));
    let [r, _, b, _] = frame.get_pixel(32, 24).0;
    assert!(b > 200 && r < 60, "{r},{b}");
    assert!(
        timeline_frame(&doc, 5.0, Size::new(64, 64), &limits, &path_of)
            .expect("ok")
            .is_none()
    );
    let e = timeline_frame(&doc, 20.5, Size::new(64, 64), &limits, &path_of).unwrap_err();
    assert!(
        matches!(&e, MediaError::MissingAsset { id } if id == "gone"),
        "{e:?}"
    );
    assert_eq!(e.code(), "not_found");
    let _ = std::fs::remove_dir_all(dir);
}

/// An MP4 with two video streams: red `small` first, then blue `large`. `None` without ffmpeg.
fn two_streams(dir: &std::path::Path, small: &str, large: &str) -> Option<PathBuf> {
    let ffmpeg = tool_path("ffmpeg")?;
    let video = dir.join("two.mp4");
    let status = Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("color=c=red:s={small}:d=1:r=10"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("color=c=blue:s={large}:d=1:r=10"))
        .args(["-map", "0:v", "-map", "1:v", "-pix_fmt", "yuv420p"])
        .arg(&video)
        .status()
        .expect("run ffmpeg");
    assert!(status.success());
    Some(video)
}

#[test]
fn every_video_stream_is_checked_and_the_first_is_the_one_played() {
    let dir = temp_dir();
    let Some(video) = two_streams(&dir, "64x48", "320x240") else {
        return;
    };
    // The second stream is over the side limit: the upload is refused, whichever comes first.
    let small = Limits {
        max_side: 100,
        ..Limits::default()
    };
    let e = probe_av(&video, Container::Mp4, &small).unwrap_err();
    assert!(
        matches!(
            e,
            MediaError::TooManyPixels {
                width: 320,
                height: 240,
                ..
            }
        ),
        "{e:?}"
    );
    let info = probe_av(&video, Container::Mp4, &Limits::default()).expect("probe");
    assert_eq!(info.kind, AssetKind::Video);
    assert_eq!((info.width, info.height), (Some(64), Some(48)));
    // ffmpeg alone would pick the larger (blue) stream; the frame is the first stream's.
    let frame = frame_at(&video, 0.5, Size::new(640, 640), &Limits::default()).expect("frame");
    assert_eq!(frame.dimensions(), (64, 48));
    let [r, _, b, _] = frame.get_pixel(32, 24).0;
    assert!(r > 200 && b < 60, "{r},{b}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ffprobe_reads_only_the_sniffed_container() {
    let Some(ffmpeg) = tool_path("ffmpeg") else {
        return;
    };
    let dir = temp_dir();
    // A real WAV file.
    let wav = dir.join("a.wav");
    let status = Command::new(ffmpeg)
        .args([
            "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=d=1",
        ])
        .arg(&wav)
        .status()
        .expect("run ffmpeg");
    assert!(status.success());
    assert_eq!(
        probe_av(&wav, Container::Wav, &Limits::default())
            .expect("wav")
            .kind,
        AssetKind::Audio
    );
    // An HLS playlist behind an ID3 tag, naming a local file: read as MP3, never as a playlist;
    // ffprobe's words stay out of the message.
    let hls = dir.join("list.mp3");
    std::fs::write(
        &hls,
        format!(
            "ID3\x04\0\0\0\0\0\0#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:{}\n#EXT-X-ENDLIST\n",
            wav.display()
        ),
    )
    .expect("write");
    let e = probe_av(&hls, Container::Mp3, &Limits::default()).unwrap_err();
    match &e {
        MediaError::MalformedMedia { reason, .. } => {
            assert!(!e.to_string().contains(&*dir.to_string_lossy()), "{e}");
            assert!(!reason.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A two-second video of `filter` (an ffmpeg lavfi source) at `size`, or `None` without ffmpeg.
fn lavfi_video(dir: &std::path::Path, name: &str, filter: &str) -> Option<PathBuf> {
    let ffmpeg = tool_path("ffmpeg")?;
    let video = dir.join(name);
    let status = Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", filter])
        .args(["-t", "2", "-pix_fmt", "yuv420p"])
        .arg(&video)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg made no {name}");
    Some(video)
}

fn near(p: [u8; 4], want: [u8; 3], what: &str) {
    let close = p[..3]
        .iter()
        .zip(want)
        .all(|(a, b)| (i32::from(*a) - i32::from(b)).abs() <= 40);
    assert!(close, "{what}: {p:?}, expected about {want:?}");
}

/// The composition at a playhead, drawn from real ffmpeg frames: the clip of the one track
/// playing, the upper of two, black where none plays, letterboxed when the aspect differs,
/// the clip's crop and opacity, and the canvas layers over all of it — at every tier's size.
#[test]
fn composite_frames_stack_tracks_and_canvas_layers_at_every_tier() {
    use montage_media::{Asset, MemoryAssets, Tier, composite_frame, frame_region, preview_size};
    use std::sync::Arc;
    let dir = temp_dir();
    let Some(red) = lavfi_video(&dir, "red.mp4", "color=c=red:s=320x240:r=10") else {
        eprintln!(
            "SKIPPED composite_frames_…: ffmpeg is not installed (scripts/install-test-deps.sh)"
        );
        assert!(
            std::env::var_os("MONTAGE_TEST_REQUIRE_SERVICES").is_none(),
            "ffmpeg is required here"
        );
        return;
    };
    let green = lavfi_video(&dir, "green.mp4", "color=c=lime:s=160x120:r=10").expect("green");
    let wide = lavfi_video(&dir, "wide.mp4", "color=c=blue:s=320x120:r=10").expect("wide");
    // Left half red, right half blue.
    let halves = lavfi_video(
        &dir,
        "halves.mp4",
        "color=c=red:s=160x240:r=10[a];color=c=blue:s=160x240:r=10[b];[a][b]hstack",
    )
    .expect("halves");
    let files = [("R", red), ("G", green), ("W", wide), ("H", halves)];
    let limits = Limits::default();
    let frame_of = |clip: &ClipAt, crop: Option<[u32; 4]>, fit: Size| {
        let path = files
            .iter()
            .find(|(id, _)| *id == clip.asset)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| MediaError::MissingAsset {
                id: clip.asset.clone(),
            })?;
        frame_region(&path, clip.source_time, crop, fit, &limits).map(|f| Arc::new(Asset::new(f)))
    };
    let mut assets = MemoryAssets::new();
    let white = image::RgbaImage::from_pixel(8, 8, image::Rgba([255, 255, 255, 255]));
    assets.insert("white", Asset::new(white));
    let doc = Value::from_json(&json!({
        "canvas": {"width": 400, "height": 300, "layers": [
            {"id": "logo", "kind": "image", "asset": "white", "x": 0, "y": 0, "w": 100, "h": 75}
        ]},
        "timeline": {"tracks": [
            {"id": "low", "kind": "video", "clips": [
                {"id": "r", "asset": "R", "start": 0, "in": 0, "out": 2},
                {"id": "w", "asset": "W", "start": 4, "in": 0, "out": 1},
                {"id": "h", "asset": "H", "start": 6, "in": 0, "out": 1,
                 "crop": {"x": 160, "y": 0, "w": 160, "h": 240}},
                {"id": "gone", "asset": "nope", "start": 8, "in": 0, "out": 1},
            ]},
            {"id": "music", "kind": "audio", "clips": [{"id": "m", "asset": "M", "start": 0, "in": 0, "out": 99}]},
            {"id": "high", "kind": "video", "clips": [
                {"id": "g", "asset": "G", "start": 1, "in": 0, "out": 0.5},
                {"id": "half", "asset": "G", "start": 1.5, "in": 0, "out": 0.4, "opacity": 0.5},
            ]},
        ]},
    }));
    for tier in [Tier::Excellent, Tier::Good, Tier::Fair, Tier::Poor] {
        let size = preview_size(400, 300, tier);
        let at = |t: f64| {
            let c = composite_frame(&doc, t, size, &assets, &frame_of).expect("composite");
            assert_eq!(c.image.dimensions(), (size.width, size.height), "{tier:?}");
            c
        };
        let (cx, cy) = (size.width / 2, size.height / 2);
        let centre = |c: &montage_media::Composite| c.image.get_pixel(cx, cy).0;
        // The logo sits over everything, whatever plays.
        let corner = |c: &montage_media::Composite| c.image.get_pixel(2, 2).0;

        let one = at(0.5);
        near(centre(&one), [255, 0, 0], "one track: red");
        near(corner(&one), [255, 255, 255], "the canvas layer on top");
        let ids: Vec<_> = one.clips.iter().map(|c| c.clip.as_str()).collect();
        assert_eq!(ids, ["r"]);

        let two = at(1.2);
        near(centre(&two), [0, 255, 0], "two tracks: the upper wins");
        let ids: Vec<_> = two.clips.iter().map(|c| c.clip.as_str()).collect();
        assert_eq!(ids, ["r", "g"], "lowest first");

        near(
            centre(&at(1.7)),
            [128, 128, 0],
            "half-transparent green over red",
        );

        let none = at(3.0);
        near(centre(&none), [0, 0, 0], "nothing plays: black");
        near(
            corner(&none),
            [255, 255, 255],
            "the canvas layer still on top",
        );
        assert!(none.clips.is_empty());

        // 320×120 in a 4:3 canvas: letterboxed, centred.
        let wide = at(4.5);
        near(centre(&wide), [0, 0, 255], "the wide clip");
        near(
            wide.image.get_pixel(cx, size.height / 10).0,
            [0, 0, 0],
            "the bar above",
        );

        near(centre(&at(6.5)), [0, 0, 255], "cropped to the blue half");

        let missing = at(8.5);
        near(centre(&missing), [0, 0, 0], "a missing asset is left out");
        assert!(
            matches!(&missing.warnings[..], [montage_media::Warning::MissingAsset { asset, .. }] if asset == "nope"),
            "{:?}",
            missing.warnings
        );
    }
    assert!(matches!(
        composite_frame(&doc, -1.0, Size::new(40, 30), &assets, &frame_of),
        Err(MediaError::Invalid { .. })
    ));
    let _ = std::fs::remove_dir_all(dir);
}

/// A waveform from real ffmpeg: a second of silence then a second of a loud tone, in WAV and
/// as a video's sound; a picture-only video has none.
#[test]
fn waveforms_follow_the_sound() {
    use montage_media::audio::PEAKS_PER_SECOND;
    let dir = temp_dir();
    let Some(ffmpeg) = tool_path("ffmpeg") else {
        eprintln!("SKIPPED waveforms_follow_the_sound: ffmpeg is not installed");
        assert!(
            std::env::var_os("MONTAGE_TEST_REQUIRE_SERVICES").is_none(),
            "ffmpeg is required here"
        );
        return;
    };
    let make = |name: &str, extra: &[&str]| {
        let out = dir.join(name);
        let status = Command::new(&ffmpeg)
            .args(["-nostdin", "-v", "error", "-y"])
            .args(["-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono:d=1"])
            .args(["-f", "lavfi", "-i", "sine=f=440:r=44100:d=1"])
            .args(extra)
            .args([
                "-filter_complex",
                "[0:a][1:a]concat=n=2:v=0:a=1[a]",
                "-map",
                "[a]",
            ])
            .arg(&out)
            .status()
            .expect("run ffmpeg");
        assert!(status.success(), "ffmpeg made no {name}");
        out
    };
    let wav = make("tone.wav", &[]);
    let limits = Limits::default();
    let w = montage_media::waveform(&wav, &limits).expect("waveform");
    assert!((w.duration() - 2.0).abs() < 0.05, "{}", w.duration());
    let per = PEAKS_PER_SECOND as usize;
    assert!(
        (w.peaks.len() as i64 - 2 * per as i64).abs() <= 1,
        "{}",
        w.peaks.len()
    );
    assert!(
        w.peaks[..per - 2].iter().all(|p| *p < 3),
        "silence: {:?}",
        &w.peaks[..per]
    );
    // ffmpeg's sine source is at 1/8 of full scale.
    assert!(
        w.peaks[per + 2..2 * per - 2]
            .iter()
            .all(|p| (20..=45).contains(p)),
        "tone: {:?}",
        &w.peaks[per..]
    );
    assert!(w.buckets(2)[0] < 3);
    assert!(w.buckets(2)[1] >= 20);

    let silent = lavfi_video(&dir, "mute.mp4", "color=c=red:s=64x48:r=10").expect("video");
    let e = montage_media::waveform(&silent, &limits).unwrap_err();
    assert!(matches!(e, MediaError::Invalid { .. }), "{e:?}");
    assert_eq!(e.code(), "bad_request");
    let _ = std::fs::remove_dir_all(dir);
}
