use montage_media::text::parse_color;
use serde_json::json;

use crate::helpers::*;

fn text_doc(layer: serde_json::Value) -> montage_ot::Value {
    doc(200, 100, json!([layer]))
}

fn ink_box(img: &image::RgbaImage) -> Option<(u32, u32, u32, u32)> {
    let mut b: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in img.enumerate_pixels() {
        if p.0[3] > 64 {
            b = Some(match b {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            });
        }
    }
    b
}

#[test]
fn text_is_drawn_in_its_colour_below_and_right_of_x_y() {
    let a = assets(&[]);
    let d = text_doc(
        json!({"id": "t", "kind": "text", "text": "Hello", "x": 20, "y": 30, "size": 40, "color": "#ff0000"}),
    );
    let r = draw(&d, &a, 200, 100);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let (x0, y0, x1, y1) = ink_box(&r.image).expect("some ink");
    assert!((20..=26).contains(&x0), "x0 {x0}");
    assert!((30..=40).contains(&y0), "y0 {y0}");
    assert!(y1 < 30 + 40 && x1 > 100, "box {x0},{y0}..{x1},{y1}");
    // Fully covered pixels are the layer's colour.
    let solid = r
        .image
        .pixels()
        .filter(|p| p.0[3] == 255)
        .collect::<Vec<_>>();
    assert!(!solid.is_empty());
    assert!(solid.iter().all(|p| p.0 == RED));
}

#[test]
fn bigger_text_covers_more_and_lines_break() {
    let a = assets(&[]);
    let ink = |layer| {
        draw(&text_doc(layer), &a, 200, 100)
            .image
            .pixels()
            .filter(|p| p.0[3] > 0)
            .count()
    };
    let small =
        ink(json!({"kind": "text", "text": "Ab", "x": 0, "y": 0, "size": 12, "color": "#000"}));
    let big =
        ink(json!({"kind": "text", "text": "Ab", "x": 0, "y": 0, "size": 36, "color": "#000"}));
    assert!(big > small * 4, "{small} vs {big}");
    let two = draw(
        &text_doc(json!({"kind": "text", "text": "A\nA", "x": 0, "y": 0, "size": 20})),
        &a,
        200,
        100,
    )
    .image;
    let (_, _, _, y1) = ink_box(&two).expect("ink");
    assert!(y1 > 30, "second line at {y1}");
}

#[test]
fn text_scales_with_the_preview() {
    let a = assets(&[]);
    let d = text_doc(
        json!({"kind": "text", "text": "Wide text", "x": 10, "y": 10, "size": 30, "color": "#00f"}),
    );
    let full = ink_box(&draw(&d, &a, 200, 100).image).expect("ink");
    let half = ink_box(&draw(&d, &a, 100, 50).image).expect("ink");
    let wf = f64::from(full.2 - full.0);
    let wh = f64::from(half.2 - half.0);
    assert!((wh / wf - 0.5).abs() < 0.08, "{wf} vs {wh}");
}

#[test]
fn colours_parse() {
    assert_eq!(parse_color("#fff"), Some([255, 255, 255, 255]));
    assert_eq!(parse_color("#102030"), Some([16, 32, 48, 255]));
    assert_eq!(parse_color("#10203080"), Some([16, 32, 48, 128]));
    for bad in ["", "fff", "#ffff", "#gg0000", "#ééé", "#1020304"] {
        assert_eq!(parse_color(bad), None, "{bad}");
    }
}
