use montage_media::Adjust;
use montage_media::adjust::srgb_to_linear;
use serde_json::json;

use crate::helpers::*;

fn with(adjust: serde_json::Value, img: &image::RgbaImage) -> image::RgbaImage {
    render_one(img, json!({ "adjust": adjust }))
}

fn std_dev(img: &image::RgbaImage) -> f64 {
    let m = mean_rgb(img);
    let n = f64::from(img.width() * img.height() * 3);
    (img.pixels()
        .flat_map(|p| p.0[..3].to_vec())
        .map(|c| (f64::from(c) - m).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

#[test]
fn zero_adjustments_change_nothing() {
    let img = photo(40, 30);
    let out = with(
        json!({"brightness": 0, "contrast": 0, "saturation": 0, "exposure": 0}),
        &img,
    );
    assert_eq!(out, img);
}

#[test]
fn brightness_up_is_brighter_and_down_is_darker() {
    let img = photo(40, 30);
    let up = with(json!({"brightness": 0.4}), &img);
    let down = with(json!({"brightness": -0.4}), &img);
    for ((o, u), d) in img.pixels().zip(up.pixels()).zip(down.pixels()) {
        for c in 0..3 {
            assert!(
                u.0[c] >= o.0[c] && d.0[c] <= o.0[c],
                "{o:?} up {u:?} down {d:?}"
            );
        }
    }
    assert!(mean_rgb(&up) > mean_rgb(&img) + 20.0);
    assert!(mean_rgb(&down) < mean_rgb(&img) - 20.0);
    // The ends of the range: white and black.
    assert_px(&with(json!({"brightness": 1}), &img), 5, 5, WHITE, 0);
    assert_px(
        &with(json!({"brightness": -1}), &img),
        5,
        5,
        [0, 0, 0, 255],
        0,
    );
    // Out of range is clamped, not extrapolated.
    assert_eq!(
        with(json!({"brightness": 7}), &img),
        with(json!({"brightness": 1}), &img)
    );
}

#[test]
fn contrast_spreads_or_flattens_values_about_mid_grey() {
    let img = ramp(256, 4);
    let more = with(json!({"contrast": 0.5}), &img);
    let less = with(json!({"contrast": -0.5}), &img);
    assert!(std_dev(&more) > std_dev(&img) * 1.3);
    assert!(std_dev(&less) < std_dev(&img) * 0.7);
    // Dark gets darker and light gets lighter; mid-grey stays.
    assert!(px(&more, 40, 0)[0] < px(&img, 40, 0)[0]);
    assert!(px(&more, 215, 0)[0] > px(&img, 215, 0)[0]);
    assert!(px(&more, 128, 0)[0].abs_diff(128) <= 2);
    // −1 is flat grey.
    let flat = with(json!({"contrast": -1}), &img);
    assert!(
        flat.pixels().all(|p| p.0[0].abs_diff(128) <= 1),
        "{:?}",
        px(&flat, 0, 0)
    );
}

#[test]
fn saturation_minus_one_is_grey_and_plus_spreads_channels() {
    let img = photo(40, 30);
    let grey = with(json!({"saturation": -1}), &img);
    for p in grey.pixels() {
        let [r, g, b, _] = p.0;
        assert!(
            r.abs_diff(g) <= 1 && g.abs_diff(b) <= 1,
            "{p:?} is not grey"
        );
    }
    let spread = |i: &image::RgbaImage| {
        i.pixels()
            .map(|p| {
                let [r, g, b, _] = p.0;
                f64::from(r.max(g).max(b) - r.min(g).min(b))
            })
            .sum::<f64>()
    };
    assert!(spread(&with(json!({"saturation": 0.5}), &img)) > spread(&img) * 1.1);
    assert!(spread(&with(json!({"saturation": -0.5}), &img)) < spread(&img) * 0.6);
}

#[test]
fn exposure_plus_one_doubles_linear_light() {
    for v in [40u8, 80, 100, 120] {
        let img = solid(8, 8, [v, v, v, 255]);
        let out = with(json!({"exposure": 1}), &img);
        let lin_in = srgb_to_linear(f32::from(v) / 255.0);
        let lin_out = srgb_to_linear(f32::from(px(&out, 4, 4)[0]) / 255.0);
        let ratio = lin_out / lin_in;
        assert!((ratio - 2.0).abs() < 0.1, "{v}: ratio {ratio}");
        let dark = with(json!({"exposure": -1}), &img);
        let ratio = srgb_to_linear(f32::from(px(&dark, 4, 4)[0]) / 255.0) / lin_in;
        assert!((ratio - 0.5).abs() < 0.06, "{v}: ratio {ratio}");
    }
}

#[test]
fn adjust_reads_the_document_and_clamps() {
    let v = montage_ot::Value::from_json(
        &json!({"brightness": 3, "contrast": "x", "saturation": -0.25, "exposure": 99}),
    );
    let a = Adjust::from_value(Some(&v));
    assert_eq!(
        a,
        Adjust {
            brightness: 1.0,
            contrast: 0.0,
            saturation: -0.25,
            exposure: 10.0
        }
    );
    assert!(Adjust::from_value(None).is_identity());
    // The in-place form agrees with the renderer.
    let img = photo(16, 16);
    let mut direct = img.clone();
    let adj = Adjust {
        brightness: 0.2,
        contrast: 0.3,
        saturation: -0.4,
        exposure: 0.5,
    };
    adj.apply(&mut direct);
    let rendered = with(
        json!({"brightness": 0.2, "contrast": 0.3, "saturation": -0.4, "exposure": 0.5}),
        &img,
    );
    for (a, b) in direct.pixels().zip(rendered.pixels()) {
        assert!(near(a.0, b.0, 2), "{a:?} vs {b:?}");
    }
}

#[test]
fn adjustments_keep_alpha() {
    let img = solid(8, 8, [100, 150, 200, 255]);
    let out = with(json!({"brightness": 0.5, "saturation": 1}), &img);
    assert_eq!(px(&out, 3, 3)[3], 255);
}
