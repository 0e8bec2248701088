use std::io::Cursor;
use std::sync::Arc;

use image::{ImageFormat, Rgba, RgbaImage};
use montage_media::{Asset, MemoryAssets, Rendered, Size, render};
use montage_ot::Value;
use serde_json::json;

pub const RED: [u8; 4] = [255, 0, 0, 255];
pub const GREEN: [u8; 4] = [0, 255, 0, 255];
pub const BLUE: [u8; 4] = [0, 0, 255, 255];
pub const YELLOW: [u8; 4] = [255, 255, 0, 255];
pub const WHITE: [u8; 4] = [255, 255, 255, 255];
pub const CLEAR: [u8; 4] = [0, 0, 0, 0];

pub fn solid(w: u32, h: u32, c: [u8; 4]) -> RgbaImage {
    RgbaImage::from_pixel(w, h, Rgba(c))
}

/// Top-left red, top-right green, bottom-left blue, bottom-right yellow.
pub fn quadrants(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        Rgba(match (x < w / 2, y < h / 2) {
            (true, true) => RED,
            (false, true) => GREEN,
            (true, false) => BLUE,
            (false, false) => YELLOW,
        })
    })
}

/// A horizontal grey ramp 0..255.
pub fn ramp(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, _| {
        let v = (x * 255 / (w - 1).max(1)) as u8;
        Rgba([v, v, v, 255])
    })
}

/// A colourful, noisy picture (deterministic).
pub fn photo(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let n = x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503);
        Rgba([
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            ((n >> 13) & 0xff) as u8,
            255,
        ])
    })
}

pub fn encode(img: &RgbaImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    if format == ImageFormat::Jpeg {
        image::DynamicImage::ImageRgba8(img.clone())
            .into_rgb8()
            .write_to(&mut out, format)
            .expect("encode jpeg");
    } else {
        img.write_to(&mut out, format).expect("encode");
    }
    out.into_inner()
}

pub fn assets(list: &[(&str, RgbaImage)]) -> MemoryAssets {
    let mut m = MemoryAssets::new();
    for (id, img) in list {
        m.insert(*id, Arc::new(Asset::new(img.clone())));
    }
    m
}

pub fn doc(w: u32, h: u32, layers: serde_json::Value) -> Value {
    Value::from_json(&json!({
        "title": "", "assets": {}, "meta": {}, "timeline": {"tracks": []},
        "canvas": {"width": w, "height": h, "layers": layers}
    }))
}

/// One image layer covering (x, y, w, h) with extra fields merged in.
pub fn image_layer(
    asset: &str,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut l = json!({"id": format!("l-{asset}"), "kind": "image", "asset": asset, "x": x, "y": y, "w": w, "h": h});
    if let (Some(l), Some(e)) = (l.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            l.insert(k.clone(), v.clone());
        }
    }
    l
}

pub fn draw(doc: &Value, assets: &MemoryAssets, w: u32, h: u32) -> Rendered {
    render(doc, assets, Size::new(w, h)).expect("render")
}

pub fn px(img: &RgbaImage, x: u32, y: u32) -> [u8; 4] {
    img.get_pixel(x, y).0
}

/// Channel-wise closeness.
pub fn near(a: [u8; 4], b: [u8; 4], tol: u8) -> bool {
    a.iter().zip(b.iter()).all(|(x, y)| x.abs_diff(*y) <= tol)
}

#[track_caller]
pub fn assert_px(img: &RgbaImage, x: u32, y: u32, want: [u8; 4], tol: u8) {
    let got = px(img, x, y);
    assert!(
        near(got, want, tol),
        "pixel ({x},{y}) is {got:?}, want {want:?} ±{tol}"
    );
}

/// Renders one layer of `img` at 1:1 on a canvas of its size, with the given extra layer fields.
pub fn render_one(img: &RgbaImage, extra: serde_json::Value) -> RgbaImage {
    let (w, h) = img.dimensions();
    let a = assets(&[("a", img.clone())]);
    let d = doc(
        w,
        h,
        json!([image_layer(
            "a",
            0.0,
            0.0,
            f64::from(w),
            f64::from(h),
            extra
        )]),
    );
    let r = draw(&d, &a, w, h);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    r.image
}

pub fn mean_rgb(img: &RgbaImage) -> f64 {
    let n = f64::from(img.width() * img.height() * 3);
    img.pixels()
        .map(|p| f64::from(p.0[0]) + f64::from(p.0[1]) + f64::from(p.0[2]))
        .sum::<f64>()
        / n
}
