//! Anchors that follow their target. An annotation with a `target` names a canvas layer or a
//! timeline clip; its region is in canvas pixels and its time range in timeline seconds, and
//! both are kept relative to the target as edits change it.
//!
//! The rule is state-based, so it holds whatever components made the change (set, add, trim,
//! split, a move between tracks): next to each such annotation the server keeps the target's
//! [`Frame`] as it was when the anchor was last placed, and after every applied edit compares
//! it with the target in the new document.
//! - A layer moved or resized from `(x, y, w, h)` to `(x', y', w', h')`: the region keeps its
//!   place inside the layer — `x ↦ x' + (x − x)·w'/w`, widths scale by `w'/w` (heights by
//!   `h'/h`). Rotation, crop and flips do not move it (the region is about the layer's box).
//! - A clip moved or trimmed (`start`, `in`, `out`): the time range keeps its place in the
//!   clip's media (media time `a = t − start + in`, so `t' = a − in' + start'`), clamped to the
//!   clip's new span. When the media time where the range began is no longer inside the clip
//!   but inside another clip of the same asset (the right half of a `split`), the anchor moves
//!   to that clip.
//! - The target gone (deleted, or its id changed): the annotation is marked `orphaned` and
//!   keeps its last region/time; the comment itself stays.

use montage_ot::Value;
use montage_protocol::Annotation;
use serde::{Deserialize, Serialize};

/// Where a target was when its anchor was last placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Frame {
    Layer {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
    },
    Clip {
        start: f64,
        r#in: f64,
        out: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        asset: Option<String>,
    },
}

impl Frame {
    /// A clip's `[start, end]` on the timeline.
    pub fn span(&self) -> Option<(f64, f64)> {
        match self {
            Frame::Clip {
                start, r#in, out, ..
            } => Some((*start, start + (out - r#in).max(0.0))),
            Frame::Layer { .. } => None,
        }
    }
}

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64).filter(|n| n.is_finite())
}

fn id_is(v: &Value, id: &str) -> bool {
    v.get("id")
        .and_then(Value::as_text)
        .is_some_and(|t| t == id)
}

fn layer_frame(v: &Value) -> Frame {
    Frame::Layer {
        x: num(v, "x").unwrap_or(0.0),
        y: num(v, "y").unwrap_or(0.0),
        w: num(v, "w").unwrap_or(0.0),
        h: num(v, "h").unwrap_or(0.0),
    }
}

fn clip_frame(v: &Value) -> Frame {
    Frame::Clip {
        start: num(v, "start").unwrap_or(0.0),
        r#in: num(v, "in").unwrap_or(0.0),
        out: num(v, "out").unwrap_or(0.0),
        asset: v
            .get("asset")
            .and_then(Value::as_text)
            .map(|t| t.to_string()),
    }
}

fn clips(doc: &Value) -> impl Iterator<Item = &Value> {
    doc.get("timeline")
        .and_then(|t| t.get("tracks"))
        .and_then(Value::as_arr)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("clips").and_then(Value::as_arr))
        .flatten()
}

/// The layer (in `canvas.layers`) or clip (in `timeline.tracks[*].clips`) with this id.
pub fn locate(doc: &Value, target: &str) -> Option<Frame> {
    let layers = doc
        .get("canvas")
        .and_then(|c| c.get("layers"))
        .and_then(Value::as_arr);
    if let Some(l) = layers.into_iter().flatten().find(|l| id_is(l, target)) {
        return Some(layer_frame(l));
    }
    clips(doc).find(|c| id_is(c, target)).map(clip_frame)
}

/// Another clip of `asset` whose media range contains media time `a`: where a split sent it.
fn clip_playing(doc: &Value, asset: &str, a: f64, not: &str) -> Option<(String, Frame)> {
    clips(doc).find_map(|c| {
        let f = clip_frame(c);
        let Frame::Clip {
            r#in,
            out,
            asset: Some(ca),
            ..
        } = &f
        else {
            return None;
        };
        let id = c.get("id").and_then(Value::as_text)?.to_string();
        (ca == asset && *r#in <= a && a < *out && id != not).then_some((id, f))
    })
}

/// Brings one annotation up to date with its target in `doc`. Returns whether it changed.
pub fn follow(ann: &mut Annotation, frame: &mut Option<Frame>, doc: &Value) -> bool {
    let (Some(target), false) = (ann.target.clone(), ann.orphaned) else {
        return false;
    };
    let Some(old) = frame.clone() else {
        return false;
    };
    let Some(mut new) = locate(doc, &target) else {
        ann.orphaned = true;
        return true;
    };
    if new == old {
        return false;
    }
    match (&old, &new) {
        (
            Frame::Layer { x, y, w, h },
            Frame::Layer {
                x: x2,
                y: y2,
                w: w2,
                h: h2,
            },
        ) => {
            if let Some(r) = &mut ann.region {
                let sx = if *w > 0.0 { w2 / w } else { 1.0 };
                let sy = if *h > 0.0 { h2 / h } else { 1.0 };
                r.x = x2 + (r.x - x) * sx;
                r.y = y2 + (r.y - y) * sy;
                r.w *= sx;
                r.h *= sy;
            }
        }
        (
            Frame::Clip {
                start, r#in, asset, ..
            },
            Frame::Clip { .. },
        ) => {
            if let Some(t) = &mut ann.time {
                let a0 = t.start - start + r#in;
                let a1 = t.end - start + r#in;
                if let (Frame::Clip { out: out2, .. }, Some(asset)) = (&new, asset)
                    && a0 >= *out2
                    && let Some((id, f)) = clip_playing(doc, asset, a0, &target)
                {
                    ann.target = Some(id);
                    new = f;
                }
                if let Frame::Clip {
                    start: s2,
                    r#in: i2,
                    ..
                } = &new
                    && let Some((lo, hi)) = new.span()
                {
                    t.start = (a0 - i2 + s2).clamp(lo, hi);
                    t.end = (a1 - i2 + s2).clamp(t.start, hi);
                }
            }
        }
        // A layer id now naming a clip, or the reverse: the anchor can't follow that.
        _ => {
            ann.orphaned = true;
            return true;
        }
    }
    *frame = Some(new);
    true
}

#[cfg(test)]
mod tests {
    use montage_protocol::{Region, TimeRange};
    use serde_json::json;

    use super::*;

    fn doc(v: serde_json::Value) -> Value {
        Value::from_json(&v)
    }

    fn layer_doc(x: f64, w: f64) -> Value {
        doc(json!({"canvas": {"width": 1920, "height": 1080, "layers": [
            {"id": "L1", "kind": "image", "asset": "a", "x": x, "y": 100, "w": w, "h": 200}
        ]}, "timeline": {"tracks": []}}))
    }

    #[test]
    fn a_region_follows_a_moved_and_scaled_layer() {
        let d0 = layer_doc(100.0, 400.0);
        let mut ann = Annotation {
            region: Some(Region {
                x: 150.0,
                y: 120.0,
                w: 40.0,
                h: 20.0,
            }),
            target: Some("L1".into()),
            ..Annotation::default()
        };
        let mut frame = locate(&d0, "L1");
        assert!(!follow(&mut ann, &mut frame, &d0));
        // Moved right by 300 and twice as wide.
        let d1 = layer_doc(400.0, 800.0);
        assert!(follow(&mut ann, &mut frame, &d1));
        let r = ann.region.unwrap();
        assert_eq!((r.x, r.y, r.w, r.h), (500.0, 120.0, 80.0, 20.0));
        // Deleted: orphaned, region kept.
        let d2 = doc(json!({"canvas": {"layers": []}}));
        assert!(follow(&mut ann, &mut frame, &d2));
        assert!(ann.orphaned);
        assert_eq!(ann.region.unwrap().x, 500.0);
    }

    fn clip_doc(clips: serde_json::Value) -> Value {
        doc(json!({"timeline": {"tracks": [{"id": "T", "kind": "video", "clips": clips}]}}))
    }

    #[test]
    fn a_time_range_follows_trims_moves_and_splits() {
        let d0 = clip_doc(json!([{"id": "C1", "asset": "v", "start": 10, "in": 0, "out": 20}]));
        let mut ann = Annotation {
            time: Some(TimeRange {
                start: 22.0,
                end: 24.0,
            }),
            target: Some("C1".into()),
            ..Annotation::default()
        };
        let mut frame = locate(&d0, "C1");
        // Moved 5 s later: the range moves with it.
        let d1 = clip_doc(json!([{"id": "C1", "asset": "v", "start": 15, "in": 0, "out": 20}]));
        assert!(follow(&mut ann, &mut frame, &d1));
        assert_eq!(
            ann.time.unwrap(),
            TimeRange {
                start: 27.0,
                end: 29.0
            }
        );
        // Split at timeline 20 (media 5): the range (media 12..14) is in the right half.
        let d2 = clip_doc(json!([
            {"id": "C1", "asset": "v", "start": 15, "in": 0, "out": 5},
            {"id": "C2", "asset": "v", "start": 20, "in": 5, "out": 20}
        ]));
        assert!(follow(&mut ann, &mut frame, &d2));
        assert_eq!(ann.target.as_deref(), Some("C2"));
        assert_eq!(
            ann.time.unwrap(),
            TimeRange {
                start: 27.0,
                end: 29.0
            }
        );
        // The right half trimmed to end at media 13: the range is clamped to the clip.
        let d3 = clip_doc(json!([
            {"id": "C1", "asset": "v", "start": 15, "in": 0, "out": 5},
            {"id": "C2", "asset": "v", "start": 20, "in": 5, "out": 13}
        ]));
        assert!(follow(&mut ann, &mut frame, &d3));
        assert_eq!(
            ann.time.unwrap(),
            TimeRange {
                start: 27.0,
                end: 28.0
            }
        );
        assert!(!ann.orphaned);
    }
}
