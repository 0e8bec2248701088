//! Shared test vectors: apply, transform and compose cases, written as JSON for the
//! TypeScript client (`web/test-vectors/`), so the two engines can't drift apart.
//!
//! `MONTAGE_WRITE_VECTORS=1 cargo test -p montage-ot --test it vectors` rewrites the files;
//! without it the test fails if the committed files differ from what this generator makes.
//! `MONTAGE_VECTORS_DIR=/tmp/big MONTAGE_VECTORS_SCALE=50` writes a larger set there instead,
//! for a one-off differential run of the TypeScript suite (`MONTAGE_VECTORS_DIR=/tmp/big`).
//!
//! File shape: `{"docs":[DOC,…],"cases":[…]}`; each case names its document by index in
//! `docs` (many cases share one document). Every op in a case is in wire form, and every
//! expected result is computed from the op *decoded from that wire form*, exactly what a
//! client reading the file sees.

use std::collections::HashMap;

use montage_ot::{Op, Side, Value};
use serde_json::{Value as J, json};

use crate::fuzz::{self, Rng};
use crate::rules;

/// Documents, deduplicated, and the cases that refer to them.
#[derive(Default)]
struct File {
    docs: Vec<String>,
    index: HashMap<String, usize>,
    cases: Vec<String>,
}

impl File {
    fn doc(&mut self, d: &Value) -> usize {
        let s = serde_json::to_string(&d.to_json()).expect("a document serializes");
        if let Some(&i) = self.index.get(&s) {
            return i;
        }
        self.docs.push(s.clone());
        self.index.insert(s, self.docs.len() - 1);
        self.docs.len() - 1
    }
    fn case(&mut self, c: J) {
        self.cases
            .push(serde_json::to_string(&c).expect("a case serializes"));
    }
    fn render(&self) -> String {
        format!(
            "{{\"docs\":[\n{}\n],\n\"cases\":[\n{}\n]}}\n",
            self.docs.join(",\n"),
            self.cases.join(",\n")
        )
    }
}

/// Decodes the wire form, as a client would.
fn wire(op: &Op) -> (J, Op) {
    let j = op.to_json();
    let back = Op::from_json(&j).expect("an op's wire form decodes");
    (j, back)
}

fn layer(i: usize) -> J {
    json!(["canvas", "layers", i])
}
fn clip(i: usize) -> J {
    json!(["timeline", "tracks", 0, "clips", i])
}
fn field(base: J, f: &str) -> J {
    let mut v = base.as_array().expect("a path").clone();
    v.push(json!(f));
    J::Array(v)
}
fn new_clip(id: &str) -> J {
    json!({"id": id, "asset": "v1", "start": 30, "in": 0, "out": 4})
}
fn new_layer(id: &str) -> J {
    json!({"id": id, "kind": "text", "text": "hi", "x": 1, "y": 2, "size": 10, "color": "#123"})
}

/// One-component edits of `rules::doc()` covering every component kind and the media rows
/// of the transform table (docs/OT.md §4).
fn media_ops() -> Vec<J> {
    vec![
        // set / del of keys, fields, whole elements
        json!([{"op":"set","path":field(clip(1),"gain"),"value":0.5}]),
        json!([{"op":"set","path":field(clip(1),"out"),"value":22}]),
        json!([{"op":"set","path":field(clip(1),"start"),"value":11}]),
        json!([{"op":"set","path":clip(1),"value":new_clip("n")}]),
        json!([{"op":"del","path":clip(1)}]),
        json!([{"op":"del","path":clip(0)}]),
        json!([{"op":"del","path":field(clip(1),"name")}]),
        json!([{"op":"ins","path":clip(2),"value":new_clip("m")}]),
        json!([{"op":"ins","path":clip(1),"value":new_clip("k")}]),
        json!([{"op":"mov","path":clip(1),"to":0}]),
        json!([{"op":"mov","path":clip(0),"to":1}]),
        json!([{"op":"add","path":field(clip(1),"start"),"value":2}]),
        json!([{"op":"text","path":field(clip(1),"name"),"pos":5,"ins":"!"}]),
        json!([{"op":"text","path":field(clip(1),"name"),"pos":1,"del":3}]),
        // split, trim
        json!([{"op":"split","path":clip(1),"at":20,"media":15,"id":"c1b"}]),
        json!([{"op":"split","path":clip(1),"at":12,"media":7,"id":"c1a"}]),
        json!([{"op":"split","path":clip(1),"at":20,"media":15,"id":"c1z"}]),
        json!([{"op":"trim","path":clip(1),"start":12,"in":7}]),
        json!([{"op":"trim","path":clip(1),"out":22}]),
        json!([{"op":"trim","path":clip(1),"start":11,"in":6,"out":24}]),
        // layers: crop, rotate, adjust and the writes they meet
        json!([{"op":"crop","path":layer(0),"rect":{"x":1,"y":2,"w":30,"h":40}}]),
        json!([{"op":"crop","path":layer(0),"rect":{"x":0,"y":0,"w":5,"h":5}}]),
        json!([{"op":"set","path":field(layer(0),"crop"),"value":{"x":3,"y":3,"w":3,"h":3}}]),
        json!([{"op":"rotate","path":layer(0),"by":90}]),
        json!([{"op":"rotate","path":layer(1),"by":-90}]),
        json!([{"op":"set","path":field(layer(1),"rotation"),"value":45}]),
        json!([{"op":"del","path":field(layer(1),"rotation")}]),
        json!([{"op":"adjust","path":layer(1),"param":"contrast","value":0.5}]),
        json!([{"op":"adjust","path":layer(1),"param":"brightness","value":-0.5}]),
        json!([{"op":"adjust","path":layer(0),"param":"exposure","value":1.5}]),
        json!([{"op":"set","path":field(layer(1),"adjust"),"value":{}}]),
        json!([{"op":"del","path":field(layer(1),"adjust")}]),
        json!([{"op":"set","path":["canvas","layers",1,"adjust","brightness"],"value":0.125}]),
        json!([{"op":"set","path":layer(1),"value":new_layer("S")}]),
        json!([{"op":"del","path":layer(1)}]),
        json!([{"op":"ins","path":layer(1),"value":new_layer("N")}]),
        json!([{"op":"mov","path":layer(0),"to":2}]),
        json!([{"op":"add","path":field(layer(1),"x"),"value":5}]),
        json!([{"op":"text","path":field(layer(2),"text"),"pos":0,"ins":"🎬 "}]),
        // plain JSON elsewhere
        json!([{"op":"text","path":["title"],"pos":2,"ins":"漢é"}]),
        json!([{"op":"text","path":["title"],"pos":1,"del":2}]),
        json!([{"op":"del","path":["meta","n"]}]),
        json!([{"op":"set","path":["meta","n"],"value":7}]),
        json!([{"op":"add","path":["meta","n"],"value":0.25}]),
        json!([{"op":"mov","path":["meta","list",2],"to":0}]),
        json!([{"op":"del","path":["meta","list",0]}]),
        json!([{"op":"ins","path":["meta","list",1],"value":"x"}]),
        json!([{"op":"set","path":["meta","list"],"value":[]}]),
    ]
}

/// Trims and splits of one clip whose edges meet (docs/OT.md §9.2, issue #20), on
/// `rules::doc()` where clip 1 starts at 10 and plays media 5..25. Each pair is written in
/// both orders.
fn clip_edge_pairs() -> Vec<(J, J)> {
    let t = |fields: J| {
        let mut c = json!({"op": "trim", "path": clip(1)});
        for (k, v) in fields.as_object().expect("fields") {
            c[k] = v.clone();
        }
        json!([c])
    };
    let split = json!({"op":"split","path":clip(1),"at":20,"media":15,"id":"c1b"});
    let split_and_tail = json!([split, {"op":"trim","path":clip(2),"out":24}]);
    vec![
        // Two trims whose winning `in` and `out` would cross: the later one gives way.
        (t(json!({"start":12,"in":7})), t(json!({"out":6}))),
        (t(json!({"in":21})), t(json!({"out":20}))),
        (t(json!({"in":6,"out":24})), t(json!({"out":5}))),
        (
            t(json!({"in":20,"out":21})),
            t(json!({"start":26.5,"in":21.5})),
        ),
        (t(json!({"start":10.3,"in":20.3})), t(json!({"out":20.1}))),
        (t(json!({"in":21})), t(json!({"out":21.0625}))),
        // A trim against a split: the half it meant.
        (json!([split]), t(json!({"out":12}))),
        (json!([split]), t(json!({"out":15}))),
        (json!([split]), t(json!({"out":22}))),
        (json!([split]), t(json!({"start":21,"in":16}))),
        (json!([split]), t(json!({"in":15}))),
        (json!([split]), t(json!({"start":12,"in":7}))),
        (json!([split]), t(json!({"start":11,"in":6,"out":24}))),
        (json!([split]), t(json!({"start":21,"in":16,"out":14}))),
        (split_and_tail.clone(), t(json!({"start":21,"in":16}))),
        (split_and_tail, t(json!({"out":12}))),
    ]
}

/// Edits of `rules::doc()` that `apply` must refuse (bounds, types, ranges, document shape)
/// and wire forms that must not decode.
fn bad_ops() -> Vec<(J, bool)> {
    let apply_errors = vec![
        json!([{"op":"set","path":["canvas","layers",3],"value":1}]),
        json!([{"op":"set","path":["nope","x"],"value":1}]),
        json!([{"op":"del","path":[]}]),
        json!([{"op":"del","path":["meta","missing"]}]),
        json!([{"op":"del","path":["meta","list",3]}]),
        json!([{"op":"ins","path":["meta","list",4],"value":1}]),
        json!([{"op":"ins","path":["meta","n",0],"value":1}]),
        json!([{"op":"mov","path":["meta","list",0],"to":3}]),
        json!([{"op":"add","path":["title"],"value":1}]),
        json!([{"op":"set","path":["meta","n"],"value":1.5e308},{"op":"add","path":["meta","n"],"value":1.5e308}]),
        json!([{"op":"text","path":["title"],"pos":6,"ins":"x"}]),
        json!([{"op":"text","path":["title"],"pos":3,"del":3}]),
        json!([{"op":"text","path":["meta","n"],"pos":0,"ins":"x"}]),
        json!([{"op":"split","path":clip(2),"at":1,"media":1,"id":"z"}]),
        json!([{"op":"split","path":["meta","list",0],"at":1,"media":1,"id":"z"}]),
        json!([{"op":"trim","path":layer(0),"start":1}]),
        json!([{"op":"crop","path":layer(0),"rect":{"x":-1,"y":0,"w":5,"h":5}}]),
        json!([{"op":"crop","path":layer(0),"rect":{"x":0,"y":0,"w":0,"h":5}}]),
        json!([{"op":"crop","path":["title"],"rect":{"x":0,"y":0,"w":1,"h":5}}]),
        json!([{"op":"rotate","path":["meta","list"],"by":90}]),
        json!([{"op":"adjust","path":layer(0),"param":"brightness","value":1.5}]),
        json!([{"op":"adjust","path":layer(0),"param":"exposure","value":-11}]),
        json!([{"op":"adjust","path":layer(0),"param":"Bright","value":0.5}]),
        json!([{"op":"adjust","path":layer(0),"param":"","value":0.5}]),
        // document shape (schema.rs)
        json!([{"op":"set","path":field(layer(0),"kind"),"value":"video"}]),
        json!([{"op":"del","path":field(layer(0),"id")}]),
        json!([{"op":"set","path":field(layer(0),"x"),"value":"10"}]),
        json!([{"op":"set","path":field(layer(0),"opacity"),"value":2}]),
        json!([{"op":"set","path":["canvas","layers",1,"adjust","contrast"],"value":3}]),
        json!([{"op":"set","path":field(layer(0),"flip"),"value":{"h":1}}]),
        json!([{"op":"set","path":field(layer(0),"crop"),"value":{"x":0}}]),
        json!([{"op":"text","path":field(layer(0),"kind"),"pos":0,"ins":"x"}]),
        json!([{"op":"add","path":field(layer(1),"adjust"),"value":1}]),
        json!([{"op":"ins","path":layer(0),"value":{"id":"q","kind":"image"}}]),
        json!([{"op":"del","path":field(clip(0),"out")}]),
        json!([{"op":"set","path":["timeline","tracks",0,"kind"],"value":"midi"}]),
        json!([{"op":"set","path":["assets","a1","kind"],"value":"pdf"}]),
        json!([{"op":"set","path":["assets","a2"],"value":{"kind":"video","duration":"long"}}]),
        json!([{"op":"set","path":["canvas","width"],"value":null}]),
        json!([{"op":"del","path":["meta"]}]),
        json!([{"op":"set","path":["title"],"value":3}]),
        json!([{"op":"set","path":[],"value":[]}]),
        // atomicity: the second component fails, the first must not stay applied
        json!([{"op":"set","path":["meta","n"],"value":5},{"op":"del","path":["meta","missing"]}]),
        json!([{"op":"text","path":["title"],"pos":0,"ins":"ok"},{"op":"set","path":field(layer(0),"w"),"value":"wide"}]),
    ];
    let decode_errors = vec![
        json!({"op":"set","path":["title"],"value":"x"}),
        json!([{"op":"nope","path":["title"]}]),
        json!([{"op":"set","path":["title"]}]),
        json!([{"op":"set","path":["title"],"value":1,"extra":true}]),
        json!([{"op":"set","path":[-1],"value":1}]),
        json!([{"op":"set","path":[true],"value":1}]),
        json!([{"op":"set","path":"title","value":1}]),
        json!([{"op":"ins","path":["meta","list"],"value":1}]),
        json!([{"op":"mov","path":["meta","list"],"to":1}]),
        json!([{"op":"mov","path":["meta","list",0],"to":-1}]),
        json!([{"op":"split","path":["a"],"at":1,"media":1,"id":"z"}]),
        json!([{"op":"text","path":["title"],"pos":0}]),
        json!([{"op":"text","path":["title"],"pos":0,"ins":"a","del":1}]),
        json!([{"op":"text","path":["title"],"pos":4294967296u64,"del":1}]),
        json!([{"op":"set","path":["meta","list",4294967296u64],"value":1}]),
        json!([{"op":"trim","path":clip(0)}]),
        json!([{"op":"trim","path":clip(0),"start":"1"}]),
        json!([{"op":"crop","path":layer(0),"rect":{"x":0,"y":0,"w":1}}]),
        json!([{"op":"crop","path":layer(0),"rect":{"x":0,"y":0,"w":1,"h":1,"z":1}}]),
        json!([{"op":"add","path":["meta","n"],"value":"1"}]),
        json!([{"op":"adjust","path":layer(0),"param":"contrast"}]),
        json!([{"op":"rotate","path":layer(0),"by":null}]),
    ];
    let mut out: Vec<(J, bool)> = apply_errors.into_iter().map(|j| (j, false)).collect();
    out.extend(decode_errors.into_iter().map(|j| (j, true)));
    out
}

/// Compose cases whose merging rules (docs/OT.md §10.1) are the point.
fn compose_pairs() -> Vec<(J, J)> {
    let title = json!(["title"]);
    vec![
        (
            json!([{"op":"text","path":title,"pos":5,"ins":" w"}]),
            json!([{"op":"text","path":title,"pos":7,"ins":"orld"}]),
        ),
        (
            json!([{"op":"text","path":title,"pos":1,"ins":"🎬x"}]),
            json!([{"op":"text","path":title,"pos":2,"del":1}]),
        ),
        (
            json!([{"op":"text","path":title,"pos":1,"ins":"x"}]),
            json!([{"op":"text","path":title,"pos":1,"del":1}]),
        ),
        (
            json!([{"op":"text","path":title,"pos":4,"del":1}]),
            json!([{"op":"text","path":title,"pos":0,"ins":"漢"}]),
        ),
        (
            json!([{"op":"text","path":title,"pos":0,"del":2}]),
            json!([{"op":"text","path":title,"pos":1,"del":2}]),
        ),
        (
            json!([{"op":"text","path":title,"pos":2,"ins":"ca"}]),
            json!([{"op":"text","path":title,"pos":0,"del":2}]),
        ),
        (
            json!([{"op":"set","path":["meta","n"],"value":2}]),
            json!([{"op":"set","path":["meta","n"],"value":3}]),
        ),
        (
            json!([{"op":"add","path":["meta","n"],"value":2}]),
            json!([{"op":"add","path":["meta","n"],"value":3}]),
        ),
        (
            json!([{"op":"rotate","path":layer(0),"by":90}]),
            json!([{"op":"rotate","path":layer(0),"by":90}]),
        ),
        (
            json!([{"op":"crop","path":layer(0),"rect":{"x":1,"y":2,"w":30,"h":40}}]),
            json!([{"op":"crop","path":layer(0),"rect":{"x":0,"y":0,"w":5,"h":5}}]),
        ),
        (
            json!([{"op":"adjust","path":layer(1),"param":"contrast","value":0.5}]),
            json!([{"op":"adjust","path":layer(1),"param":"contrast","value":0.25}]),
        ),
        (
            json!([{"op":"adjust","path":layer(1),"param":"contrast","value":0.5}]),
            json!([{"op":"adjust","path":layer(1),"param":"saturation","value":0.25}]),
        ),
        (
            json!([{"op":"trim","path":clip(1),"start":12,"in":7}]),
            json!([{"op":"trim","path":clip(1),"in":8,"out":20}]),
        ),
        (
            json!([{"op":"ins","path":["meta","list",0],"value":9}]),
            json!([{"op":"mov","path":["meta","list",0],"to":0},{"op":"del","path":["meta","list",0]}]),
        ),
        (
            json!([{"op":"split","path":clip(1),"at":20,"media":15,"id":"c1b"}]),
            json!([{"op":"trim","path":clip(2),"out":24},{"op":"trim","path":clip(2),"out":23}]),
        ),
        (
            json!([{"op":"set","path":["meta","k"],"value":1},{"op":"text","path":title,"pos":0,"ins":"a"}]),
            json!([{"op":"text","path":title,"pos":1,"ins":"b"},{"op":"set","path":["meta","k"],"value":2}]),
        ),
    ]
}

/// How many times more random cases to make: 1 for the committed files; a larger set for a
/// one-off differential run (`MONTAGE_VECTORS_SCALE=50 MONTAGE_VECTORS_DIR=/tmp/big`).
fn scale() -> u64 {
    std::env::var("MONTAGE_VECTORS_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn apply_vectors() -> File {
    let mut f = File::default();
    let push_apply = |f: &mut File, d: &Value, j: J| {
        let di = f.doc(d);
        let op = Op::from_json(&j).expect("case decodes");
        let mut x = d.clone();
        match op.apply(&mut x) {
            Ok(inv) => {
                let (inv_j, _) = wire(&inv);
                f.case(json!({"doc": di, "op": j, "result": x.to_json(), "inverse": inv_j}));
            }
            Err(e) => {
                assert_eq!(&x, d, "a refused edit leaves the document unchanged");
                f.case(json!({"doc": di, "op": j, "error": true, "message": e.to_string()}));
            }
        }
    };
    let d = rules::doc();
    for j in media_ops() {
        push_apply(&mut f, &d, j);
    }
    // Empty text steps: kept as components (their position is still checked), written as
    // nothing.
    for j in [
        json!([{"op":"text","path":["title"],"pos":2,"ins":""}]),
        json!([{"op":"text","path":["title"],"pos":5,"del":0}]),
        json!([{"op":"text","path":["title"],"pos":9,"ins":""}]),
        json!([{"op":"trim","path":clip(0),"start":null,"out":9}]),
        json!([{"op":"text","path":["title"],"pos":0,"ins":null,"del":1}]),
    ] {
        push_apply(&mut f, &d, j);
    }
    for (j, decode) in bad_ops() {
        if decode {
            let di = f.doc(&d);
            let e = Op::from_json(&j).expect_err("must not decode");
            f.case(json!({"doc": di, "op": j, "error": true, "decode": true, "message": e.to_string()}));
        } else {
            let op = Op::from_json(&j).expect("decodes");
            assert!(op.apply(&mut d.clone()).is_err(), "must be refused: {j}");
            push_apply(&mut f, &d, j);
        }
    }
    // Random valid edits, and random edits of one document tried on another (some refused).
    for seed in 0..150 * scale() {
        let mut r = Rng::new(0x0ec7_0000 + seed);
        let d = fuzz::doc(&mut r);
        let (j, _) = wire(&fuzz::op(&mut r, &d));
        push_apply(&mut f, &d, j);
    }
    for seed in 0..100 * scale() {
        let mut r = Rng::new(0x0ec7_1000 + seed);
        let d1 = fuzz::doc(&mut r);
        let d2 = fuzz::doc(&mut r);
        let (j, _) = wire(&fuzz::op(&mut r, &d1));
        push_apply(&mut f, &d2, j);
    }
    f
}

fn transform_case(f: &mut File, d: &Value, a: &Op, b: &Op) {
    let di = f.doc(d);
    let (aj, a) = wire(a);
    let (bj, b) = wire(b);
    let a2 = a.transform(&b, Side::Left);
    let b2 = b.transform(&a, Side::Right);
    // TP1, so a vector can't pin a wrong answer.
    let via_a = fuzz::apply(&fuzz::apply(d, &a), &b2);
    let via_b = fuzz::apply(&fuzz::apply(d, &b), &a2);
    assert_eq!(via_a, via_b, "TP1 for {aj} / {bj}");
    let (xa, xb) = a.transform_x(&b, Side::Left);
    let mut case = json!({
        "doc": di, "a": aj, "b": bj,
        "a_after_b": wire(&a2).0, "b_after_a": wire(&b2).0,
    });
    // transform_x agrees with the two one-way transforms except where a component split into
    // several mid-way; then its own answer is recorded.
    if xa != a2 || xb != b2 {
        case["x"] = json!([wire(&xa).0, wire(&xb).0]);
    }
    f.case(case);
}

fn transform_vectors() -> File {
    let mut f = File::default();
    let d = rules::doc();
    let ops: Vec<Op> = media_ops().into_iter().map(rules::op).collect();
    assert_eq!(ops.len(), 48, "the areas below index this list");
    // Every ordered pair within one area (timeline, layers, plain JSON), a sample of the pairs
    // across areas (which only shift paths or pass unchanged), and at least one case for every
    // pair of component kinds.
    let area = |k: usize| match k {
        0..20 => 0,
        20..39 => 1,
        _ => 2,
    };
    let mut kinds = std::collections::HashSet::new();
    for (i, a) in ops.iter().enumerate() {
        for (j, b) in ops.iter().enumerate() {
            let pair = (a.components()[0].name(), b.components()[0].name());
            if area(i) == area(j) || (i * ops.len() + j).is_multiple_of(7) || !kinds.contains(&pair)
            {
                kinds.insert(pair);
                transform_case(&mut f, &d, a, b);
            }
        }
    }
    assert_eq!(kinds.len(), 11 * 11, "every pair of component kinds");
    for seed in 0..250 * scale() {
        let mut r = Rng::new(0x7a11_0000 + seed);
        let d = fuzz::doc(&mut r);
        let a = fuzz::op(&mut r, &d);
        let b = fuzz::op(&mut r, &d);
        transform_case(&mut f, &d, &a, &b);
    }
    // Composed (multi-part text) edits against others.
    for seed in 0..60 * scale() {
        let mut r = Rng::new(0x7a12_0000 + seed);
        let d = fuzz::doc(&mut r);
        let a1 = fuzz::op(&mut r, &d);
        let a2 = fuzz::op(&mut r, &fuzz::apply(&d, &a1));
        let b = fuzz::op(&mut r, &d);
        transform_case(&mut f, &d, &a1.compose(&a2), &b);
    }
    // Trims and splits of one clip (last, so the cases above keep their document indices).
    let d = rules::doc();
    for (a, b) in clip_edge_pairs() {
        let (a, b) = (rules::op(a), rules::op(b));
        transform_case(&mut f, &d, &a, &b);
        transform_case(&mut f, &d, &b, &a);
    }
    // The example of issue #20, on a clip playing media 200..230 from 100.
    let long = fuzz::apply(
        &d,
        &rules::op(json!([{"op":"set","path":clip(1),
            "value":{"id":"c1","asset":"v1","start":100,"in":200,"out":230}}])),
    );
    let head = rules::op(json!([{"op":"trim","path":clip(1),"start":110,"in":210}]));
    let tail = rules::op(json!([{"op":"trim","path":clip(1),"out":209}]));
    transform_case(&mut f, &long, &head, &tail);
    transform_case(&mut f, &long, &tail, &head);
    f
}

fn compose_case(f: &mut File, d: &Value, a: &Op, b: &Op) {
    let di = f.doc(d);
    let (aj, a) = wire(a);
    let (bj, b) = wire(b);
    let c = a.compose(&b);
    let result = fuzz::apply(d, &c);
    assert_eq!(result, fuzz::apply(&fuzz::apply(d, &a), &b), "compose law");
    f.case(
        json!({"doc": di, "a": aj, "b": bj, "composed": wire(&c).0, "result": result.to_json()}),
    );
}

fn compose_vectors() -> File {
    let mut f = File::default();
    let d = rules::doc();
    for (a, b) in compose_pairs() {
        compose_case(&mut f, &d, &rules::op(a), &rules::op(b));
    }
    for seed in 0..200 * scale() {
        let mut r = Rng::new(0xc0_0000 + seed);
        let d = fuzz::doc(&mut r);
        let a = fuzz::op(&mut r, &d);
        let b = fuzz::op(&mut r, &fuzz::apply(&d, &a));
        compose_case(&mut f, &d, &a, &b);
    }
    // Typing runs: several keystrokes composed one by one.
    for seed in 0..40 * scale() {
        let mut r = Rng::new(0xc0_1000 + seed);
        let d = fuzz::doc(&mut r);
        let mut cur = d.clone();
        let mut acc = Op::default();
        for _ in 0..4 {
            let op = fuzz::op(&mut r, &cur);
            cur = fuzz::apply(&cur, &op);
            acc = acc.compose(&op);
        }
        let b = fuzz::op(&mut r, &cur);
        compose_case(&mut f, &d, &acc, &b);
    }
    f
}

#[test]
fn shared_vectors_match_the_committed_files() {
    // A larger set for a one-off run goes elsewhere; the committed files are checked as usual.
    if let Ok(dir) = std::env::var("MONTAGE_VECTORS_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("create MONTAGE_VECTORS_DIR");
        for (name, file) in [
            ("apply.json", apply_vectors()),
            ("transform.json", transform_vectors()),
            ("compose.json", compose_vectors()),
        ] {
            std::fs::write(dir.join(name), file.render()).expect("write a vector file");
        }
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/test-vectors");
    let files = [
        ("apply.json", apply_vectors()),
        ("transform.json", transform_vectors()),
        ("compose.json", compose_vectors()),
    ];
    let write = std::env::var("MONTAGE_WRITE_VECTORS").is_ok_and(|v| v == "1");
    for (name, file) in files {
        let text = file.render();
        let path = dir.join(name);
        if write {
            std::fs::create_dir_all(&dir).expect("create web/test-vectors");
            std::fs::write(&path, &text).expect("write a vector file");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{} is not what the generator makes; run \
             MONTAGE_WRITE_VECTORS=1 cargo test -p montage-ot --test it vectors",
            path.display()
        );
    }
}
