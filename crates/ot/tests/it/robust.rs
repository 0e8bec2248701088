//! Hostile input: random, mostly malformed edits decode to errors or apply to errors, and
//! never panic — in decoding, applying or transforming.

use montage_ot::{Op, Side};
use serde_json::{Value as J, json};

use crate::fuzz::{self, Rng};

fn junk_number(r: &mut Rng) -> J {
    match r.below(6) {
        0 => json!(-1),
        1 => json!(u32::MAX),
        2 => json!(1e300),
        3 => json!(0.5),
        4 => json!(r.below(5)),
        _ => json!("7"),
    }
}

fn junk_path(r: &mut Rng) -> J {
    let keys = [
        "title", "canvas", "layers", "timeline", "tracks", "clips", "meta", "list", "x", "adjust",
        "crop",
    ];
    let mut p = Vec::new();
    for _ in 0..r.below(7) {
        p.push(if r.chance(0.5) {
            json!(keys[r.below(keys.len())])
        } else {
            json!(r.below(4))
        });
    }
    if r.chance(0.05) {
        p.push(json!(null));
    }
    J::Array(p)
}

fn junk_component(r: &mut Rng) -> J {
    let ops = [
        "set", "del", "ins", "mov", "add", "text", "split", "trim", "crop", "rotate", "adjust",
        "nope",
    ];
    let mut m = serde_json::Map::new();
    m.insert("op".into(), json!(ops[r.below(ops.len())]));
    if r.chance(0.95) {
        m.insert("path".into(), junk_path(r));
    }
    let fields = [
        "value", "to", "pos", "ins", "del", "at", "media", "id", "start", "in", "out", "rect",
        "by", "param",
    ];
    for _ in 0..r.below(4) {
        let f = fields[r.below(fields.len())];
        let v = match f {
            "ins" | "id" => json!("x"),
            "param" => json!(["brightness", "exposure", "Bad-Name", ""][r.below(4)]),
            "rect" => json!({"x": junk_number(r), "y": 0, "w": junk_number(r), "h": 1}),
            "value" if r.chance(0.3) => json!({"id": "l", "kind": "image"}),
            _ => junk_number(r),
        };
        m.insert(f.into(), v);
    }
    J::Object(m)
}

#[test]
fn hostile_edits_never_panic() {
    let mut decoded = 0;
    for seed in 0..30_000u64 {
        let mut r = Rng::new(seed);
        let doc = fuzz::doc(&mut r);
        let j = J::Array(
            (0..1 + r.below(3))
                .map(|_| junk_component(&mut r))
                .collect(),
        );
        let Ok(op) = Op::from_json(&j) else { continue };
        decoded += 1;
        let mut d = doc.clone();
        let applied = op.apply(&mut d).is_ok();
        if !applied {
            assert_eq!(d, doc, "a refused edit changed nothing: {j}");
        }
        // Transforming against a valid concurrent edit, both ways, then applying: no panics.
        let valid = fuzz::op(&mut r, &doc);
        let (a, b) = op.transform_x(&valid, Side::Right);
        let mut d2 = doc.clone();
        if valid.apply(&mut d2).is_ok() {
            let _ = a.apply(&mut d2);
        }
        let _ = b;
    }
    assert!(
        decoded > 200,
        "the generator should produce decodable edits too ({decoded})"
    );
}
