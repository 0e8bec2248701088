use std::time::{Duration, Instant};

use image::ImageFormat;
use montage_media::{
    Limits, Pacer, PreviewFormat, Size, Tier, TierBox, decode, encode_preview, preview_size,
    render_preview, sniff,
};
use serde_json::json;

use crate::helpers::*;

#[test]
fn tier_table_matches_the_design() {
    let t: Vec<_> = Tier::ALL
        .iter()
        .map(|t| (t.as_str(), t.fps(), t.max_size()))
        .collect();
    assert_eq!(
        t,
        vec![
            ("excellent", 60, Size::new(1920, 1080)),
            ("good", 30, Size::new(1280, 720)),
            ("fair", 15, Size::new(854, 480)),
            ("poor", 5, Size::new(320, 320)),
        ]
    );
    assert_eq!(Tier::parse("fair"), Some(Tier::Fair));
    assert_eq!(Tier::parse("FAIR"), None);
    assert_eq!(Tier::from_mbps(100.0), Tier::Excellent);
    assert_eq!(Tier::from_mbps(50.0), Tier::Good);
    assert_eq!(Tier::from_mbps(7.0), Tier::Fair);
    assert_eq!(Tier::from_mbps(1.0), Tier::Poor);
    assert_eq!(Tier::from_mbps(f64::NAN), Tier::Poor);
    assert_eq!(Tier::Good.min_interval(), Duration::from_secs(1) / 30);
}

#[test]
fn preview_sizes_keep_aspect_and_never_upscale() {
    let cases = [
        (
            (1920, 1080),
            [(1920, 1080), (1280, 720), (854, 480), (320, 180)],
        ),
        (
            (4000, 3000),
            [(1440, 1080), (960, 720), (640, 480), (320, 240)],
        ),
        (
            (1080, 1920),
            [(608, 1080), (405, 720), (270, 480), (180, 320)],
        ),
        (
            (6000, 4000),
            [(1620, 1080), (1080, 720), (720, 480), (320, 213)],
        ),
        ((300, 100), [(300, 100), (300, 100), (300, 100), (300, 100)]),
        ((10_000, 1), [(1920, 1), (1280, 1), (854, 1), (320, 1)]),
    ];
    for ((cw, ch), want) in cases {
        for (tier, (w, h)) in Tier::ALL.into_iter().zip(want) {
            assert_eq!(
                preview_size(cw, ch, tier),
                Size::new(w, h),
                "{cw}×{ch} at {tier:?}"
            );
        }
    }
    assert_eq!(preview_size(0, 0, Tier::Good), Size::new(1, 1));
}

#[test]
fn a_preview_at_each_tier_has_the_tiers_size() {
    for (cw, ch) in [(1920u32, 1080u32), (3000, 2000), (1080, 1350), (200, 100)] {
        let a = assets(&[("p", photo(600, 400))]);
        let d = doc(
            cw,
            ch,
            json!([image_layer(
                "p",
                0.0,
                0.0,
                f64::from(cw),
                f64::from(ch),
                json!({"adjust": {"brightness": 0.1}})
            )]),
        );
        for tier in Tier::ALL {
            let (p, warnings) =
                render_preview(&d, &a, 7, tier, PreviewFormat::DEFAULT).expect("preview");
            assert!(warnings.is_empty());
            assert_eq!(p.version, 7);
            let img = decode(&p.bytes, &Limits::default()).expect("decodes");
            let max = tier.max_size();
            assert_eq!(img.dimensions(), (p.size.width, p.size.height));
            assert!(img.width() <= max.width && img.height() <= max.height);
            assert!(img.width() <= cw && img.height() <= ch);
            if tier == Tier::Poor {
                assert!(img.width().max(img.height()) <= 320);
            }
            // Aspect ratio within rounding.
            let want = f64::from(cw) / f64::from(ch);
            let got = f64::from(img.width()) / f64::from(img.height());
            assert!(
                (got - want).abs() / want < 0.01,
                "{cw}×{ch} {tier:?}: {got} vs {want}"
            );
            // And one side touches the box (or the canvas).
            assert!(img.width() == max.width.min(cw) || img.height() == max.height.min(ch));
        }
    }
}

#[test]
fn previews_encode_to_each_format() {
    let img = quadrants(64, 32);
    for (fmt, want) in [
        (PreviewFormat::Jpeg { quality: 85 }, ImageFormat::Jpeg),
        (PreviewFormat::Png, ImageFormat::Png),
        (PreviewFormat::Webp, ImageFormat::WebP),
    ] {
        let bytes = encode_preview(&img, fmt).expect("encode");
        assert_eq!(image::guess_format(&bytes).ok(), Some(want));
        assert!(sniff(&bytes).is_some());
        let back = decode(&bytes, &Limits::default()).expect("decode");
        assert_eq!(back.dimensions(), (64, 32));
        assert!(near(px(&back, 8, 8), RED, 20), "{fmt:?}");
    }
    // JPEG has no alpha: transparency is flattened onto white.
    let clear = solid(16, 16, CLEAR);
    let back = decode(
        &encode_preview(&clear, PreviewFormat::DEFAULT).expect("encode"),
        &Limits::default(),
    )
    .expect("decode");
    assert_px(&back, 8, 8, WHITE, 2);
    // PNG and WebP are lossless.
    for fmt in [PreviewFormat::Png, PreviewFormat::Webp] {
        let back = decode(
            &encode_preview(&img, fmt).expect("encode"),
            &Limits::default(),
        )
        .expect("decode");
        assert_eq!(back, img);
    }
}

#[test]
fn pacer_holds_previews_to_the_tier_rate() {
    let t0 = Instant::now();
    let mut p = Pacer::new();
    assert_eq!(p.try_send(t0, Tier::Poor), Ok(()));
    assert_eq!(
        p.try_send(t0 + Duration::from_millis(50), Tier::Poor),
        Err(Duration::from_millis(150))
    );
    assert_eq!(
        p.try_send(t0 + Duration::from_millis(200), Tier::Poor),
        Ok(())
    );
    // 60 fps over one simulated second of 1 ms ticks: 60 sends.
    let mut p = Pacer::new();
    let sent = (0..1000)
        .filter(|ms| {
            p.try_send(t0 + Duration::from_millis(*ms), Tier::Excellent)
                .is_ok()
        })
        .count();
    assert!((59..=61).contains(&sent), "{sent}");
}

/// The DRI segment's restart interval in a JPEG, if it has one.
fn restart_interval(jpeg: &[u8]) -> Option<u16> {
    let at = jpeg
        .windows(4)
        .position(|w| w == [0xFF, 0xDD, 0x00, 0x04])?;
    Some(u16::from_be_bytes([jpeg[at + 4], jpeg[at + 5]]))
}

#[test]
fn jpeg_stripes_are_one_encode_with_restart_markers() {
    // Previews are encoded in stripes of whole MCU rows (side by side on idle cores) and joined
    // with RSTn markers: byte for byte one encoder's output with that restart interval, so the
    // pixels are those of a plain encode. Sizes: MCU-aligned or not, one stripe or many; a
    // quality ≥ 90 (no chroma subsampling, 8-pixel MCUs); transparency (flattened onto white).
    let mut transparent = photo(333, 517);
    for (i, p) in transparent.pixels_mut().enumerate() {
        p.0[3] = (i * 7 % 256) as u8;
    }
    let cases = [
        (photo(1620, 1080), 80),
        (photo(1080, 720), 80),
        (photo(321, 130), 80),
        (photo(100, 37), 80),
        (photo(640, 400), 95),
        (transparent, 80),
    ];
    for (img, quality) in cases {
        let (w, h) = img.dimensions();
        let ours = encode_preview(&img, PreviewFormat::Jpeg { quality }).expect("encode");
        let flat: Vec<u8> = img
            .pixels()
            .flat_map(|p| {
                let [r, g, b, a] = p.0;
                let a = u32::from(a);
                let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
                [over(r), over(g), over(b)]
            })
            .collect();
        let one = |interval: Option<u16>| {
            let mut out = Vec::new();
            let mut enc = jpeg_encoder::Encoder::new(&mut out, quality);
            if let Some(i) = interval {
                enc.set_restart_interval(i);
            }
            enc.encode(&flat, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
                .expect("reference encode");
            out
        };
        let mcu = if quality < 90 { 16 } else { 8 };
        match restart_interval(&ours) {
            Some(interval) => {
                assert!(h > 128, "{w}×{h}: one stripe needs no restarts");
                assert_eq!(usize::from(interval) % w.div_ceil(mcu) as usize, 0);
                assert_eq!(ours, one(Some(interval)), "{w}×{h} q{quality}");
            }
            None => {
                assert!(h <= 128, "{w}×{h} is several stripes");
                assert_eq!(ours, one(None), "{w}×{h} q{quality}");
            }
        }
        let plain = decode(&one(None), &Limits::default()).expect("decode plain");
        let back = decode(&ours, &Limits::default()).expect("decode ours");
        assert_eq!(back, plain, "{w}×{h} q{quality}: decoded pixels");
    }
}

#[test]
fn an_empty_image_is_an_error_not_a_panic() {
    // The stripe arithmetic divides by the MCUs in a row: a zero-width image must stop first.
    for (w, h) in [(0, 10), (10, 0), (0, 0)] {
        let img = image::RgbaImage::new(w, h);
        for quality in [80, 95] {
            let r = encode_preview(&img, PreviewFormat::Jpeg { quality });
            assert!(r.is_err(), "{w}×{h} q{quality}");
        }
    }
}
