use montage_media::{MediaError, Size, Warning, render};
use montage_ot::Value;
use serde_json::json;

use crate::helpers::*;

#[test]
fn an_unrotated_layer_is_copied_exactly() {
    let img = quadrants(100, 60);
    assert_eq!(render_one(&img, json!({})), img);
}

#[test]
fn background_is_transparent_and_layers_are_placed_at_x_y() {
    let a = assets(&[("r", solid(10, 10, RED))]);
    let d = doc(
        100,
        50,
        json!([image_layer("r", 20.0, 5.0, 30.0, 10.0, json!({}))]),
    );
    let out = draw(&d, &a, 100, 50).image;
    assert_px(&out, 0, 0, CLEAR, 0);
    assert_px(&out, 19, 5, CLEAR, 0);
    assert_px(&out, 20, 5, RED, 0);
    assert_px(&out, 49, 14, RED, 0);
    assert_px(&out, 50, 14, CLEAR, 0);
    assert_px(&out, 49, 15, CLEAR, 0);
}

#[test]
fn crop_takes_asset_pixels() {
    let img = quadrants(100, 100);
    // The top-right quadrant, drawn at 0,0.
    let out = render_one(&solid(50, 50, WHITE), json!({}));
    assert_eq!(out.dimensions(), (50, 50));
    let a = assets(&[("q", img)]);
    let d = doc(
        50,
        50,
        json!([image_layer(
            "q",
            0.0,
            0.0,
            50.0,
            50.0,
            json!({"crop": {"x": 50, "y": 0, "w": 50, "h": 50}})
        )]),
    );
    let out = draw(&d, &a, 50, 50).image;
    for (x, y) in [(0, 0), (49, 0), (0, 49), (49, 49), (25, 25)] {
        assert_px(&out, x, y, GREEN, 0);
    }
    // A crop straddling the middle keeps its four corners' colours at the output's corners.
    let d = doc(
        40,
        20,
        json!([image_layer(
            "q",
            0.0,
            0.0,
            40.0,
            20.0,
            json!({"crop": {"x": 30, "y": 40, "w": 40, "h": 20}})
        )]),
    );
    let out = draw(&d, &a, 40, 20).image;
    assert_px(&out, 0, 0, RED, 0);
    assert_px(&out, 39, 0, GREEN, 0);
    assert_px(&out, 0, 19, BLUE, 0);
    assert_px(&out, 39, 19, YELLOW, 0);
    // A crop hanging off the asset is clipped to it; one wholly outside skips the layer.
    let d = doc(
        50,
        50,
        json!([image_layer(
            "q",
            0.0,
            0.0,
            50.0,
            50.0,
            json!({"crop": {"x": -50, "y": -50, "w": 100, "h": 100}})
        )]),
    );
    let r = draw(&d, &a, 50, 50);
    assert!(r.warnings.is_empty());
    assert_px(&r.image, 25, 25, RED, 0);
    let d = doc(
        50,
        50,
        json!([image_layer(
            "q",
            0.0,
            0.0,
            50.0,
            50.0,
            json!({"crop": {"x": 500, "y": 0, "w": 10, "h": 10}})
        )]),
    );
    let r = draw(&d, &a, 50, 50);
    assert!(
        matches!(&r.warnings[..], [Warning::Skipped { .. }]),
        "{:?}",
        r.warnings
    );
    assert_px(&r.image, 25, 25, CLEAR, 0);
}

#[test]
fn quarter_turns_move_the_corners_clockwise() {
    let img = quadrants(100, 100);
    let corners = |out: &image::RgbaImage| {
        [
            px(out, 2, 2),
            px(out, 97, 2),
            px(out, 97, 97),
            px(out, 2, 97),
        ]
    };
    // [top-left, top-right, bottom-right, bottom-left]
    assert_eq!(
        corners(&render_one(&img, json!({"rotation": 0}))),
        [RED, GREEN, YELLOW, BLUE]
    );
    assert_eq!(
        corners(&render_one(&img, json!({"rotation": 90}))),
        [BLUE, RED, GREEN, YELLOW]
    );
    assert_eq!(
        corners(&render_one(&img, json!({"rotation": 180}))),
        [YELLOW, BLUE, RED, GREEN]
    );
    assert_eq!(
        corners(&render_one(&img, json!({"rotation": 270}))),
        [GREEN, YELLOW, BLUE, RED]
    );
    assert_eq!(
        render_one(&img, json!({"rotation": -90})),
        render_one(&img, json!({"rotation": 270}))
    );
    assert_eq!(
        render_one(&img, json!({"rotation": 450})),
        render_one(&img, json!({"rotation": 90}))
    );
    // The very corner pixels are exact and fully opaque: a quarter turn is lossless.
    let out = render_one(&img, json!({"rotation": 90}));
    assert_px(&out, 99, 0, RED, 0);
    assert_px(&out, 0, 0, BLUE, 0);
}

#[test]
fn rotating_a_wide_layer_swaps_its_extent_about_the_centre() {
    let a = assets(&[("r", solid(20, 10, RED))]);
    // 200×100 centred at (100, 100); after 90° it covers x 50..150, y 0..200.
    let d = doc(
        200,
        200,
        json!([image_layer(
            "r",
            0.0,
            50.0,
            200.0,
            100.0,
            json!({"rotation": 90})
        )]),
    );
    let out = draw(&d, &a, 200, 200).image;
    let opaque = |x, y| px(&out, x, y)[3] == 255;
    let clear = |x, y| px(&out, x, y)[3] == 0;
    assert!(opaque(50, 0) && opaque(149, 0) && opaque(50, 199) && opaque(149, 199));
    assert!(clear(49, 100) && clear(150, 100) && clear(10, 60) && clear(190, 140));
    let covered = out.pixels().filter(|p| p.0[3] > 0).count();
    assert_eq!(covered, 100 * 200);
}

#[test]
fn arbitrary_angles_rotate_about_the_centre_with_smooth_edges() {
    let img = solid(100, 100, RED);
    let a = assets(&[("r", img)]);
    let d = doc(
        200,
        200,
        json!([image_layer(
            "r",
            50.0,
            50.0,
            100.0,
            100.0,
            json!({"rotation": 45})
        )]),
    );
    let out = draw(&d, &a, 200, 200).image;
    // A diamond: the centre and the four tips (±70.7 px along the axes) are covered…
    assert_px(&out, 100, 100, RED, 0);
    for (x, y) in [(100, 33), (166, 100), (100, 166), (33, 100)] {
        assert_eq!(px(&out, x, y)[3], 255, "({x},{y})");
    }
    // …the unrotated square's corners are not.
    for (x, y) in [(52, 52), (147, 52), (52, 147), (147, 147)] {
        assert_eq!(px(&out, x, y)[3], 0, "({x},{y})");
    }
    // Area is kept (100²) and edges are anti-aliased.
    let area: f64 = out.pixels().map(|p| f64::from(p.0[3]) / 255.0).sum();
    assert!((area - 10_000.0).abs() < 100.0, "area {area}");
    assert!(out.pixels().any(|p| p.0[3] > 0 && p.0[3] < 255));
    // 30° clockwise: a point right of centre moves down.
    let bar = assets(&[("b", solid(100, 4, RED))]);
    let d = doc(
        200,
        200,
        json!([image_layer(
            "b",
            50.0,
            98.0,
            100.0,
            4.0,
            json!({"rotation": 30})
        )]),
    );
    let out = draw(&d, &bar, 200, 200).image;
    // A point 45 px right of the centre along the bar lands at (100+39, 100+22.5), not above.
    assert_eq!(px(&out, 138, 122)[3], 255);
    assert_eq!(px(&out, 138, 78)[3], 0);
}

#[test]
fn flips_mirror_the_picture() {
    let img = quadrants(100, 100);
    let h = render_one(&img, json!({"flip": {"h": true, "v": false}}));
    assert_px(&h, 2, 2, GREEN, 0);
    assert_px(&h, 97, 97, BLUE, 0);
    let v = render_one(&img, json!({"flip": {"v": true}}));
    assert_px(&v, 2, 2, BLUE, 0);
    assert_px(&v, 97, 2, YELLOW, 0);
    let both = render_one(&img, json!({"flip": {"h": true, "v": true}}));
    assert_eq!(both, render_one(&img, json!({"rotation": 180})));
    // Flip happens before rotation (in the layer's own frame).
    let hr = render_one(&img, json!({"flip": {"h": true}, "rotation": 90}));
    assert_px(&hr, 97, 2, GREEN, 0);
}

#[test]
fn opacity_blends_over_what_is_below() {
    let a = assets(&[("w", solid(10, 10, WHITE)), ("r", solid(10, 10, RED))]);
    let d = doc(
        10,
        10,
        json!([
            image_layer("w", 0.0, 0.0, 10.0, 10.0, json!({})),
            image_layer("r", 0.0, 0.0, 10.0, 10.0, json!({"opacity": 0.5})),
        ]),
    );
    assert_px(&draw(&d, &a, 10, 10).image, 5, 5, [255, 128, 128, 255], 1);
    // Alone on the transparent background it is half transparent.
    let d = doc(
        10,
        10,
        json!([image_layer(
            "r",
            0.0,
            0.0,
            10.0,
            10.0,
            json!({"opacity": 0.25})
        )]),
    );
    assert_px(&draw(&d, &a, 10, 10).image, 5, 5, [255, 0, 0, 64], 1);
    // Out of range clamps.
    let d = doc(
        10,
        10,
        json!([image_layer(
            "r",
            0.0,
            0.0,
            10.0,
            10.0,
            json!({"opacity": 3})
        )]),
    );
    assert_px(&draw(&d, &a, 10, 10).image, 5, 5, RED, 0);
}

#[test]
fn later_layers_are_on_top() {
    let a = assets(&[("r", solid(4, 4, RED)), ("b", solid(4, 4, BLUE))]);
    let red = image_layer("r", 0.0, 0.0, 20.0, 20.0, json!({}));
    let blue = image_layer("b", 10.0, 10.0, 20.0, 20.0, json!({}));
    let out = draw(&doc(30, 30, json!([red.clone(), blue.clone()])), &a, 30, 30).image;
    assert_px(&out, 15, 15, BLUE, 0);
    assert_px(&out, 5, 5, RED, 0);
    let out = draw(&doc(30, 30, json!([blue, red])), &a, 30, 30).image;
    assert_px(&out, 15, 15, RED, 0);
    assert_px(&out, 25, 25, BLUE, 0);
}

#[test]
fn rendering_at_preview_scale_matches_the_canvas() {
    // A 4000×2000 asset on a 4000×2000 canvas previewed at 400×200.
    let a = assets(&[("q", quadrants(4000, 2000))]);
    let d = doc(
        4000,
        2000,
        json!([image_layer("q", 0.0, 0.0, 4000.0, 2000.0, json!({}))]),
    );
    let out = draw(&d, &a, 400, 200).image;
    assert_eq!(out.dimensions(), (400, 200));
    assert_px(&out, 10, 10, RED, 0);
    assert_px(&out, 390, 10, GREEN, 0);
    assert_px(&out, 10, 190, BLUE, 0);
    assert_px(&out, 390, 190, YELLOW, 0);
    // The same again (now from the mip pyramid) is identical.
    assert_eq!(draw(&d, &a, 400, 200).image, out);
    // A layer drawn larger than its asset is upscaled smoothly.
    let a = assets(&[("q", quadrants(4, 4))]);
    let d = doc(
        100,
        100,
        json!([image_layer("q", 0.0, 0.0, 100.0, 100.0, json!({}))]),
    );
    let out = draw(&d, &a, 100, 100).image;
    assert_px(&out, 5, 5, RED, 0);
    assert_px(&out, 95, 95, YELLOW, 0);
    assert_eq!(px(&out, 50, 5)[3], 255);
}

#[test]
fn missing_assets_are_skipped_and_reported() {
    let a = assets(&[("r", solid(4, 4, RED))]);
    let d = doc(
        20,
        20,
        json!([
            image_layer("gone", 0.0, 0.0, 20.0, 20.0, json!({})),
            image_layer("r", 10.0, 10.0, 10.0, 10.0, json!({})),
        ]),
    );
    let r = draw(&d, &a, 20, 20);
    assert_eq!(
        r.warnings,
        vec![Warning::MissingAsset {
            layer: "l-gone".into(),
            asset: "gone".into()
        }]
    );
    assert_px(&r.image, 5, 5, CLEAR, 0);
    assert_px(&r.image, 15, 15, RED, 0);
}

#[test]
fn hostile_documents_never_panic() {
    let a = assets(&[("r", solid(16, 16, RED))]);
    let nasty = [
        json!(null),
        json!({"canvas": 5}),
        json!({"canvas": {"width": 0, "height": -4, "layers": {}}}),
        json!({"canvas": {"width": 1e300, "height": 1e-300, "layers": [1, "x", null, {}]}}),
        json!({"canvas": {"width": 100, "height": 100, "layers": [
            {"kind": "image"},
            {"kind": "image", "asset": 7, "x": 0, "y": 0, "w": 10, "h": 10},
            {"kind": "image", "asset": "r", "x": 0, "y": 0, "w": 0, "h": 10},
            {"kind": "image", "asset": "r", "x": 0, "y": 0, "w": -10, "h": -10},
            {"kind": "image", "asset": "r", "x": "a", "y": [], "w": "10", "h": 10},
            {"kind": "image", "asset": "r", "x": 1e308, "y": -1e308, "w": 1e308, "h": 1e308, "rotation": 1e308},
            {"kind": "image", "asset": "r", "x": -1e9, "y": -1e9, "w": 2e9, "h": 2e9, "rotation": 33, "opacity": -1},
            {"kind": "image", "asset": "r", "x": 0, "y": 0, "w": 10, "h": 10, "crop": {"x": -5, "y": 3, "w": -20, "h": 1e300}},
            {"kind": "image", "asset": "r", "x": 0, "y": 0, "w": 10, "h": 10, "crop": "no", "flip": 3, "adjust": [1]},
            {"kind": "image", "asset": "r", "x": 0, "y": 0, "w": 1e-9, "h": 1e-9},
            {"kind": "text", "text": "hi", "x": 1e308, "y": 0, "size": 1e308},
            {"kind": "text", "text": 5, "size": 10},
            {"kind": "text", "text": "x", "size": -1},
            {"kind": "video"},
        ]}}),
    ];
    for n in nasty {
        let d = Value::from_json(&n);
        for size in [Size::new(1, 1), Size::new(64, 48)] {
            let r = render(&d, &a, size).expect("a bad document still renders");
            assert_eq!(r.image.dimensions(), (size.width, size.height));
        }
    }
    // Non-finite numbers can't come from JSON but can be built directly.
    let mut layer = std::collections::BTreeMap::new();
    for (k, v) in [
        ("x", f64::NAN),
        ("y", f64::INFINITY),
        ("w", f64::NAN),
        ("h", 10.0),
        ("rotation", f64::NEG_INFINITY),
    ] {
        layer.insert(k.to_owned(), Value::Num(v));
    }
    layer.insert("kind".into(), Value::str("image"));
    layer.insert("asset".into(), Value::str("r"));
    let d = Value::obj([(
        "canvas",
        Value::obj([
            ("width", Value::Num(f64::NAN)),
            ("height", Value::Num(f64::INFINITY)),
            ("layers", Value::Arr(vec![Value::Obj(layer)])),
        ]),
    )]);
    assert!(render(&d, &a, Size::new(32, 32)).is_ok());
}

#[test]
fn a_huge_layer_costs_no_more_than_the_target() {
    // 10⁹-pixel-wide layer zoomed over a 4×4 asset: drawn from the asset, nothing allocated.
    let a = assets(&[("r", solid(4, 4, RED))]);
    let d = doc(
        100,
        100,
        json!([image_layer(
            "r",
            -5e8,
            -5e8,
            1e9,
            1e9,
            json!({"rotation": 10})
        )]),
    );
    let r = draw(&d, &a, 100, 100);
    assert!(r.warnings.is_empty());
    assert!(r.image.pixels().all(|p| p.0 == RED));
}

#[test]
fn bad_targets_are_refused() {
    let a = assets(&[]);
    let d = doc(10, 10, json!([]));
    for (w, h) in [(0, 10), (10, 0), (100_000, 10)] {
        let e = render(&d, &a, Size::new(w, h)).unwrap_err();
        assert!(matches!(e, MediaError::BadTarget { .. }), "{e:?}");
    }
}

#[test]
fn too_many_layers_are_capped_and_reported() {
    let a = assets(&[("r", solid(1, 1, RED))]);
    let layers: Vec<_> = (0..1005)
        .map(|_| image_layer("r", 0.0, 0.0, 1.0, 1.0, json!({})))
        .collect();
    let r = draw(&doc(10, 10, json!(layers)), &a, 10, 10);
    assert_eq!(
        r.warnings,
        vec![Warning::TooManyLayers {
            drawn: 1000,
            total: 1005
        }]
    );
}

#[test]
fn the_quarter_turn_fast_path_agrees_with_the_general_warp() {
    // A rotation a hair off a quarter turn takes the general path; the result must match.
    let a = assets(&[("p", photo(300, 200))]);
    for (rotation, flip, adjust) in [
        (0.0, json!({}), json!({})),
        (
            90.0,
            json!({"h": true}),
            json!({"brightness": 0.3, "saturation": -0.5}),
        ),
        (180.0, json!({"v": true}), json!({"contrast": 0.4})),
        (270.0, json!({}), json!({"exposure": -0.5})),
    ] {
        for (cw, ch, target) in [(300u32, 200u32, (300u32, 200u32)), (300, 200, (150, 100))] {
            let layer = |r: f64| {
                doc(
                    cw,
                    ch,
                    json!([image_layer(
                        "p",
                        50.0,
                        20.0,
                        200.0,
                        160.0,
                        json!({"rotation": r, "flip": flip, "adjust": adjust, "crop": {"x": 10, "y": 10, "w": 250, "h": 180}})
                    )]),
                )
            };
            let fast = draw(&layer(rotation), &a, target.0, target.1).image;
            let slow = draw(&layer(rotation + 1e-9), &a, target.0, target.1).image;
            let mut worst = 0;
            for (x, y, p) in fast.enumerate_pixels() {
                let q = px(&slow, x, y);
                // Only fully covered pixels: edge coverage may differ by a hair.
                if p.0[3] == 255 && q[3] == 255 {
                    worst = worst.max(
                        p.0.iter()
                            .zip(q)
                            .map(|(a, b)| a.abs_diff(b))
                            .max()
                            .unwrap_or(0),
                    );
                }
            }
            assert!(
                worst <= 3,
                "rotation {rotation} at {target:?}: worst channel difference {worst}"
            );
            let opaque = |i: &image::RgbaImage| i.pixels().filter(|p| p.0[3] == 255).count() as i64;
            assert!((opaque(&fast) - opaque(&slow)).abs() < 2 * i64::from(target.0 + target.1));
        }
    }
}

#[test]
fn transparent_pixels_do_not_darken_their_neighbours_when_scaled() {
    // Red columns alternating with transparent black: halved, it is half-transparent red.
    let img = image::RgbaImage::from_fn(200, 100, |x, _| {
        image::Rgba(if x % 2 == 0 { RED } else { CLEAR })
    });
    let a = assets(&[("s", img)]);
    for rotation in [0.0, 1e-9, 90.0] {
        let d = doc(
            100,
            100,
            json!([image_layer(
                "s",
                0.0,
                25.0,
                100.0,
                50.0,
                json!({"rotation": rotation})
            )]),
        );
        let out = draw(&d, &a, 100, 100).image;
        let p = px(&out, 50, 50);
        assert!(
            p[0] >= 250 && p[1] <= 5 && p[2] <= 5,
            "rotation {rotation}: {p:?}"
        );
        assert!(p[3].abs_diff(128) <= 8, "rotation {rotation}: {p:?}");
    }
}

#[test]
fn many_full_canvas_layers_stop_at_the_work_budget() {
    let a = assets(&[("r", solid(8, 8, RED))]);
    // 100 tilted full-canvas layers: far more than 32× the target's area.
    let layers: Vec<_> = (0..100)
        .map(|i| image_layer("r", 0.0, 0.0, 40.0, 40.0, json!({"rotation": 1 + i})))
        .collect();
    let r = draw(&doc(40, 40, json!(layers)), &a, 40, 40);
    match &r.warnings[..] {
        [Warning::WorkBudget { drawn, total: 100 }] => {
            assert!((20..=40).contains(drawn), "{drawn}")
        }
        w => panic!("{w:?}"),
    }
    assert_px(&r.image, 20, 20, RED, 0);
}

#[test]
fn reused_resizes_draw_what_a_fresh_asset_draws() {
    // An asset keeps its last resized crops for the next render (a slider drag changes only the
    // adjustments); whatever the sequence of crops, sizes and adjustments, every render matches
    // the same document drawn from a fresh asset with nothing kept.
    let src = photo(900, 600);
    let cached = assets(&[("a", src.clone())]);
    let docs = [
        (0, 0, 900, 600, 0.1, Size::new(450, 300)),
        (0, 0, 900, 600, 0.2, Size::new(450, 300)),
        (30, 20, 600, 400, 0.2, Size::new(450, 300)),
        (0, 0, 900, 600, -0.3, Size::new(300, 200)),
        (0, 0, 900, 600, 0.1, Size::new(450, 300)),
        (30, 20, 600, 400, 0.5, Size::new(450, 300)),
        (31, 20, 600, 400, 0.5, Size::new(450, 300)),
        (0, 0, 900, 600, 0.0, Size::new(90, 60)),
    ];
    for (cx, cy, cw, ch, brightness, target) in docs {
        for rotation in [0.0, 7.0] {
            let doc = Value::from_json(&json!({"canvas": {"width": 900, "height": 600, "layers": [
                {"id": "l", "kind": "image", "asset": "a", "x": 0, "y": 0, "w": 900, "h": 600,
                 "rotation": rotation, "crop": {"x": cx, "y": cy, "w": cw, "h": ch},
                 "adjust": {"brightness": brightness, "saturation": -0.4}}]}}));
            let fresh = assets(&[("a", src.clone())]);
            let want = render(&doc, &fresh, target).expect("render").image;
            let got = render(&doc, &cached, target).expect("render").image;
            assert!(
                got == want,
                "crop {cx},{cy} {cw}×{ch}, b {brightness}, {target:?}, rot {rotation}"
            );
        }
    }
}

#[test]
fn one_thread_and_all_cores_render_and_encode_alike() {
    // Bands of rows and JPEG stripes go to idle cores; the result never depends on how many.
    let a = assets(&[("p", photo(2400, 1600))]);
    let doc = Value::from_json(
        &json!({"canvas": {"width": 2400, "height": 1600, "layers": [
        {"id": "l", "kind": "image", "asset": "p", "x": 0, "y": 0, "w": 2400, "h": 1600,
         "adjust": {"exposure": 0.4, "contrast": 0.2, "saturation": -0.3}},
        {"id": "t", "kind": "text", "text": "Montage", "x": 100, "y": 100, "size": 200, "color": "#fff"}]}}),
    );
    let run = || {
        let r = render(&doc, &a, Size::new(1620, 1080)).expect("render");
        let jpeg = montage_media::encode_preview(&r.image, montage_media::PreviewFormat::DEFAULT)
            .expect("encode");
        (r.image, jpeg)
    };
    montage_media::set_max_threads(1);
    let serial = run();
    montage_media::set_max_threads(0);
    let parallel = run();
    assert!(serial.0 == parallel.0);
    assert_eq!(serial.1, parallel.1);
}
