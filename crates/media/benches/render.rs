//! Preview latency per tier for a 24-megapixel source after an edit.
//!
//! `cargo bench -p montage-media --bench render`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use divan::{Bencher, black_box};
use image::{Rgba, RgbaImage};
use montage_media::{
    Asset, Limits, MemoryAssets, PreviewFormat, Tier, decode, encode_preview, preview_size, render,
    render_preview,
};
use montage_ot::Value;

fn main() {
    divan::main();
}

const W: u32 = 6000;
const H: u32 = 4000;

/// A 6000×4000 (24 MP) picture with gradients and texture, so resizing and encoding do real work.
fn photo() -> RgbaImage {
    RgbaImage::from_fn(W, H, |x, y| {
        let n = x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503);
        Rgba([
            (x * 255 / W) as u8,
            (y * 255 / H) as u8,
            (((x / 40 + y / 40) % 2) * 160) as u8 ^ ((n >> 13) & 0x3f) as u8,
            255,
        ])
    })
}

static ASSETS: LazyLock<MemoryAssets> = LazyLock::new(|| {
    let asset = Arc::new(Asset::new(photo()));
    // The pyramid is built once when an asset is first rendered; benches measure the edits after.
    asset.warm();
    let mut m = MemoryAssets::new();
    m.insert("photo", asset);
    m
});

/// The document after the `n`th edit of a slider drag: brightness and contrast move, and with
/// `rotate` the layer is also tilted (the general warp path).
fn edited(n: u64, rotate: bool) -> Value {
    edited_crop(n, rotate, 0)
}

/// The same, with the crop's left edge at `crop_x` (a crop drag: every render resizes anew).
fn edited_crop(n: u64, rotate: bool, crop_x: u32) -> Value {
    let step = (n % 100) as f64 / 100.0;
    let json = serde_json::json!({
        "canvas": {"width": W, "height": H, "layers": [{
            "id": "l1", "kind": "image", "asset": "photo",
            "x": 0, "y": 0, "w": W, "h": H,
            "rotation": if rotate { 3.0 + step } else { 0.0 },
            "crop": {"x": crop_x, "y": 0, "w": W - crop_x, "h": H},
            "adjust": {"brightness": 0.2 * step, "contrast": 0.1, "saturation": -0.2, "exposure": 0.3}
        }, {
            "id": "t", "kind": "text", "text": "Montage", "x": 200, "y": 200, "size": 300, "color": "#ffffff"
        }]}
    });
    Value::from_json(&json)
}

const TIERS: [Tier; 4] = [Tier::Excellent, Tier::Good, Tier::Fair, Tier::Poor];

/// Render + JPEG encode: what the server does per preview.
#[divan::bench(args = TIERS)]
fn preview_after_edit(b: Bencher, tier: Tier) {
    let assets = &*ASSETS;
    let n = AtomicU64::new(0);
    b.with_inputs(|| {
        let v = n.fetch_add(1, Ordering::Relaxed) + 1;
        (v, edited(v, false))
    })
    .bench_refs(|(v, doc)| {
        render_preview(doc, assets, *v, tier, PreviewFormat::DEFAULT).map(|(p, _)| p.bytes.len())
    });
}

/// The same on the caller's thread only (`set_max_threads(1)`): what each preview costs when
/// every core is already busy with another one.
#[divan::bench(args = TIERS)]
fn preview_after_edit_one_thread(b: Bencher, tier: Tier) {
    let assets = &*ASSETS;
    let n = AtomicU64::new(0);
    montage_media::set_max_threads(1);
    b.with_inputs(|| {
        let v = n.fetch_add(1, Ordering::Relaxed) + 1;
        (v, edited(v, false))
    })
    .bench_refs(|(v, doc)| {
        render_preview(doc, assets, *v, tier, PreviewFormat::DEFAULT).map(|(p, _)| p.bytes.len())
    });
    montage_media::set_max_threads(0);
}

/// Two previews at once (two sessions editing), each on its own thread: the time for both.
/// With as many previews in flight as cores, none takes helpers.
#[divan::bench(args = TIERS)]
fn two_previews_at_once(b: Bencher, tier: Tier) {
    let assets = &*ASSETS;
    let n = AtomicU64::new(0);
    b.with_inputs(|| {
        let v = n.fetch_add(1, Ordering::Relaxed) + 1;
        [(v, edited(v, false)), (v + 1, edited_crop(v + 1, false, 8))]
    })
    .bench_refs(|docs| {
        std::thread::scope(|s| {
            for (v, doc) in docs.iter() {
                s.spawn(move || render_preview(doc, assets, *v, tier, PreviewFormat::DEFAULT));
            }
        })
    });
}

/// After a crop edit (the crop's left edge moves): the crop is resized anew every time.
#[divan::bench(args = TIERS)]
fn preview_after_crop(b: Bencher, tier: Tier) {
    let assets = &*ASSETS;
    let n = AtomicU64::new(0);
    b.with_inputs(|| {
        let v = n.fetch_add(1, Ordering::Relaxed) + 1;
        (v, edited_crop(v, false, (v % 500) as u32 * 2))
    })
    .bench_refs(|(v, doc)| {
        render_preview(doc, assets, *v, tier, PreviewFormat::DEFAULT).map(|(p, _)| p.bytes.len())
    });
}

/// The same with the layer rotated 3–4°.
#[divan::bench(args = TIERS)]
fn preview_after_edit_rotated(b: Bencher, tier: Tier) {
    let assets = &*ASSETS;
    let n = AtomicU64::new(0);
    b.with_inputs(|| {
        let v = n.fetch_add(1, Ordering::Relaxed) + 1;
        (v, edited(v, true))
    })
    .bench_refs(|(v, doc)| {
        render_preview(doc, assets, *v, tier, PreviewFormat::DEFAULT).map(|(p, _)| p.bytes.len())
    });
}

/// Rendering alone (no encoding).
#[divan::bench(args = TIERS)]
fn render_only(b: Bencher, tier: Tier) {
    let assets = &*ASSETS;
    let size = preview_size(W, H, tier);
    let n = AtomicU64::new(0);
    b.with_inputs(|| edited(n.fetch_add(1, Ordering::Relaxed) + 1, false))
        .bench_refs(|doc| render(doc, assets, size).map(|r| r.image.width()));
}

/// Rendering alone, layer rotated 3–4° (the general warp).
#[divan::bench(args = TIERS)]
fn render_only_rotated(b: Bencher, tier: Tier) {
    let assets = &*ASSETS;
    let size = preview_size(W, H, tier);
    let n = AtomicU64::new(0);
    b.with_inputs(|| edited(n.fetch_add(1, Ordering::Relaxed) + 1, true))
        .bench_refs(|doc| render(doc, assets, size).map(|r| r.image.width()));
}

/// Encoding a 1620×1080 preview in each format.
#[divan::bench(args = ["jpeg", "png", "webp"])]
fn encode_excellent(b: Bencher, format: &str) {
    let size = preview_size(W, H, Tier::Excellent);
    let img = render(&edited(1, false), &*ASSETS, size)
        .map(|r| r.image)
        .unwrap_or_default();
    let format = match format {
        "png" => PreviewFormat::Png,
        "webp" => PreviewFormat::Webp,
        _ => PreviewFormat::DEFAULT,
    };
    b.bench(|| encode_preview(black_box(&img), format).map(|v| v.len()));
}

/// The first preview of a freshly decoded asset (builds its mip pyramid) at the good tier.
#[divan::bench(sample_count = 10)]
fn first_preview_cold(b: Bencher) {
    let img = photo();
    b.with_inputs(|| {
        let mut m = MemoryAssets::new();
        m.insert("photo", Arc::new(Asset::new(img.clone())));
        m
    })
    .bench_refs(|assets| {
        render_preview(
            &edited(1, false),
            assets,
            1,
            Tier::Good,
            PreviewFormat::DEFAULT,
        )
        .map(|(p, _)| p.bytes.len())
    });
}

/// Intake of a 24 MP JPEG upload (sniff, limits, full decode).
#[divan::bench(sample_count = 5)]
fn decode_24mp_jpeg(b: Bencher) {
    let mut bytes = std::io::Cursor::new(Vec::new());
    let rgb = image::DynamicImage::ImageRgba8(photo()).into_rgb8();
    let ok = rgb.write_to(&mut bytes, image::ImageFormat::Jpeg).is_ok();
    assert!(ok);
    let bytes = bytes.into_inner();
    b.bench(|| decode(black_box(&bytes), &Limits::default()).map(|i| i.width()));
}

/// Two video frames already extracted (the server's frame cache holds them), 1280 × 720 each:
/// the lower one full, the upper one at half opacity with an adjustment.
static FRAMES: LazyLock<[Arc<Asset>; 2]> = LazyLock::new(|| {
    let frame = |shade: u32| {
        Arc::new(Asset::new(RgbaImage::from_fn(1280, 720, |x, y| {
            Rgba([
                (x * 255 / 1280) as u8,
                (y * 255 / 720) as u8,
                shade as u8,
                255,
            ])
        })))
    };
    [frame(40), frame(200)]
});

/// The composition at a playhead on a 1920 × 1080 canvas, frames from the cache (no ffmpeg):
/// two video tracks and a title over them, then JPEG q80 — what `GET …/frame` does per request
/// once its frames are cached (scrubbing back and forth, several people at one playhead).
#[divan::bench(args = TIERS)]
fn composite_frame_cached(b: Bencher, tier: Tier) {
    let doc = Value::from_json(&serde_json::json!({
        "canvas": {"width": 1920, "height": 1080, "layers": [
            {"id": "t", "kind": "text", "text": "Montage", "x": 100, "y": 100, "size": 120, "color": "#ffffff"}
        ]},
        "timeline": {"tracks": [
            {"id": "a", "kind": "video", "clips": [{"id": "c1", "asset": "A", "start": 0, "in": 0, "out": 60}]},
            {"id": "b", "kind": "video", "clips": [{"id": "c2", "asset": "B", "start": 0, "in": 0, "out": 60,
                "opacity": 0.5, "adjust": {"brightness": 0.2}}]}
        ]}
    }));
    let size = preview_size(1920, 1080, tier);
    let frames = &*FRAMES;
    let frame_of = |c: &montage_media::ClipAt, _: Option<montage_media::CropRect>, _| {
        Ok(frames[usize::from(c.asset == "B")].clone())
    };
    let n = AtomicU64::new(0);
    b.bench(|| {
        let t = n.fetch_add(1, Ordering::Relaxed) as f64 % 60.0;
        let c = montage_media::composite_frame(&doc, t, size, &*ASSETS, &frame_of).unwrap();
        black_box(encode_preview(&c.image, PreviewFormat::DEFAULT).unwrap())
    });
}

/// One frame extracted by ffmpeg from a 10 s 1280 × 720 H.264 video (a cache miss of
/// `GET …/frame`), scaled to the good tier's box; skipped without ffmpeg.
#[divan::bench(sample_count = 20)]
fn frame_region_ffmpeg(b: Bencher) {
    let Some(ffmpeg) = montage_media::tool_path("ffmpeg") else {
        eprintln!("frame_region_ffmpeg: ffmpeg is not installed, skipped");
        return;
    };
    let dir = std::env::temp_dir().join(format!("montage-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let video = dir.join("clip.mp4");
    let made = std::process::Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=s=1280x720:d=10:r=25")
        .args(["-pix_fmt", "yuv420p"])
        .arg(&video)
        .status()
        .unwrap();
    assert!(made.success());
    let limits = Limits::default();
    let n = AtomicU64::new(0);
    b.bench(|| {
        let t = (n.fetch_add(1, Ordering::Relaxed) % 97) as f64 / 10.0;
        black_box(
            montage_media::frame_region(
                &video,
                t,
                None,
                montage_media::Size::new(1280, 720),
                &limits,
            )
            .unwrap(),
        )
    });
    let _ = std::fs::remove_dir_all(dir);
}
