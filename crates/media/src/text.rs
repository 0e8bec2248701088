//! Text layers, drawn with ab_glyph and the embedded DejaVu Sans (Bitstream Vera licence,
//! `fonts/LICENSE-DejaVu.txt`).

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use montage_ot::Value;

use crate::render::{Canvas, num};

static FONT_BYTES: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// Characters drawn per text layer, at most; the rest is cut.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// Glyphs taller than this many target pixels are refused: drawing costs the glyph box's area.
pub const MAX_GLYPH_PX: f64 = 2048.0;

fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
}

/// `{"kind":"text","text","x","y","size","color"}`: `x`,`y` is the top-left of the first line,
/// `size` the em size in canvas pixels, `color` `#rgb`, `#rrggbb` or `#rrggbbaa` (else black).
/// Lines break at `\n`. An optional `opacity` is honoured; rotation is not (yet).
pub(crate) fn draw_text(
    out: &mut Canvas,
    layer: &Value,
    (sx, sy): (f64, f64),
) -> Result<(), &'static str> {
    let Some(text) = layer.get("text").and_then(Value::as_text) else {
        return Err("text layer without text");
    };
    let size = num(layer, "size").unwrap_or(0.0);
    if size <= 0.0 {
        return Err("text layer with zero or negative size");
    }
    let (px, py) = (size * sx, size * sy);
    if px.max(py) > MAX_GLYPH_PX {
        return Err("text too large to draw");
    }
    if px.min(py) < 0.5 {
        return Ok(());
    }
    let font = font().ok_or("embedded font unreadable")?;
    let [r, g, b, a] = layer
        .get("color")
        .and_then(Value::as_text)
        .and_then(|c| parse_color(&c.to_string()))
        .unwrap_or([0, 0, 0, 255]);
    let opacity = num(layer, "opacity").map_or(1.0, |o| o.clamp(0.0, 1.0)) as f32;
    let alpha = f32::from(a) / 255.0 * opacity;
    if alpha <= 0.0 {
        return Ok(());
    }
    let rgb = [f32::from(r), f32::from(g), f32::from(b)];
    let scaled = font.as_scaled(PxScale {
        x: px as f32,
        y: py as f32,
    });
    let left = (num(layer, "x").unwrap_or(0.0) * sx) as f32;
    let mut baseline = (num(layer, "y").unwrap_or(0.0) * sy) as f32 + scaled.ascent();
    let line_h = scaled.height() + scaled.line_gap();
    let (w, h) = (out.width as f32, out.height as f32);
    let text = text.to_string();
    for line in text
        .chars()
        .take(MAX_TEXT_CHARS)
        .collect::<String>()
        .split('\n')
    {
        if baseline - scaled.ascent() > h {
            break;
        }
        let mut caret = left;
        let mut prev = None;
        for c in line.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(scaled.scale(), point(caret, baseline));
            caret += scaled.h_advance(id);
            let Some(outlined) = font.outline_glyph(glyph) else {
                continue;
            };
            let bb = outlined.px_bounds();
            if bb.max.x < 0.0 || bb.max.y < 0.0 || bb.min.x >= w || bb.min.y >= h {
                continue;
            }
            let (ox, oy) = (bb.min.x as i64, bb.min.y as i64);
            outlined.draw(|gx, gy, cov| {
                let (x, y) = (ox + i64::from(gx), oy + i64::from(gy));
                if x >= 0 && y >= 0 && (x as f32) < w && (y as f32) < h && cov > 0.0 {
                    out.blend(x as u32, y as u32, rgb, cov.min(1.0) * alpha);
                }
            });
            if caret > w {
                break;
            }
        }
        baseline += line_h;
    }
    Ok(())
}

/// `#rgb`, `#rrggbb` or `#rrggbbaa`.
pub fn parse_color(s: &str) -> Option<[u8; 4]> {
    let hex = s.strip_prefix('#')?;
    if !hex.is_ascii() {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
    match hex.len() {
        3 => {
            let nib = |i: usize| {
                u8::from_str_radix(hex.get(i..i + 1)?, 16)
                    .ok()
                    .map(|n| n * 17)
            };
            Some([nib(0)?, nib(1)?, nib(2)?, 255])
        }
        6 => Some([byte(0)?, byte(2)?, byte(4)?, 255]),
        8 => Some([byte(0)?, byte(2)?, byte(4)?, byte(6)?]),
        _ => None,
    }
}
