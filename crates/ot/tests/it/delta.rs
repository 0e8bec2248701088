//! Delta compression: fewer components, same effect.

use montage_ot::{CompressedDelta, MediaDelta, Op, Value};
use serde_json::json;

use crate::fuzz::{self, Rng, apply};

fn ops(v: serde_json::Value) -> Vec<Op> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| Op::from_json(&json!([o])).unwrap())
        .collect()
}

fn doc() -> Value {
    let mut d = Value::new_document();
    let layer = json!([{"op":"ins","path":["canvas","layers",0],"value":
        {"id":"L","kind":"image","asset":"a","x":0,"y":0,"w":10,"h":10}}]);
    Op::from_json(&layer).unwrap().apply(&mut d).unwrap();
    d
}

fn sequential(d: &Value, delta: &MediaDelta) -> Value {
    delta
        .operations
        .iter()
        .fold(d.clone(), |d, op| apply(&d, op))
}

#[test]
fn a_slider_drag_becomes_one_adjust() {
    let drag: Vec<Op> = (0..600)
        .map(|i| Op::from_json(&json!([{"op":"adjust","path":["canvas","layers",0],"param":"brightness","value": i as f64 / 1000.0}])).unwrap())
        .collect();
    let delta = MediaDelta::new(7, drag);
    let z = delta.compress();
    assert_eq!(z.base_version, 7);
    assert_eq!(z.component_count(), 1);
    assert_eq!(apply(&doc(), &z.expand()), sequential(&doc(), &delta));
}

#[test]
fn typing_becomes_one_insert_and_repeats_are_run_length_encoded() {
    let mut v = Vec::new();
    for (i, c) in "hello".chars().enumerate() {
        v.push(json!({"op":"text","path":["title"],"pos":i,"ins":c.to_string()}));
    }
    for _ in 0..5 {
        v.push(json!({"op":"add","path":["canvas","layers",0,"x"],"value":2}));
    }
    let delta = MediaDelta::new(0, ops(json!(v)));
    let z = delta.compress();
    assert_eq!(z.runs.len(), 2);
    assert_eq!(z.runs[1].count, 5);
    assert_eq!(
        serde_json::to_value(&z).unwrap(),
        json!({"base_version":0,"runs":[
            {"c":[{"op":"text","path":["title"],"pos":0,"ins":"hello"}]},
            {"n":5,"c":[{"op":"add","path":["canvas","layers",0,"x"],"value":2}]}
        ]})
    );
    assert_eq!(apply(&doc(), &z.expand()), sequential(&doc(), &delta));
    let back: CompressedDelta = serde_json::from_value(serde_json::to_value(&z).unwrap()).unwrap();
    assert_eq!(back, z);
}

/// Random runs of edits: the compressed delta does exactly what the edits did.
#[test]
fn compressed_deltas_apply_like_their_edits() {
    for seed in 0..2_000 {
        let mut r = Rng::new(seed);
        let d = fuzz::doc(&mut r);
        let mut cur = d.clone();
        let mut delta = MediaDelta::default();
        for _ in 0..1 + r.below(20) {
            let op = fuzz::op(&mut r, &cur);
            cur = apply(&cur, &op);
            delta.operations.push(op);
        }
        let z = delta.compress();
        assert!(z.component_count() <= delta.component_count());
        assert_eq!(apply(&d, &z.expand()), cur, "seed {seed}");
    }
}
