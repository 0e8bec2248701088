//! The media rows of the transform table in docs/OT.md, one case per cell: each media
//! component (split, trim, crop, rotate, adjust) against every component. Every case checks
//! TP1 in both server orders and the intended result.

use serde_json::{Value as J, json};

use crate::rules::{at, concurrent, doc, op};

fn clip(i: usize) -> J {
    json!(["timeline", "tracks", 0, "clips", i])
}
fn field(base: J, f: &str) -> J {
    let mut v = base.as_array().unwrap().clone();
    v.push(json!(f));
    J::Array(v)
}
fn layer(i: usize) -> J {
    json!(["canvas", "layers", i])
}

/// Runs `a` (ordered first) and `b` both ways round and checks `(path, value)` pairs after
/// each; `first` holds when `a` is earlier, `second` when `b` is.
fn cell(a: J, b: J, first: &[(J, J)], second: &[(J, J)]) {
    let d = doc();
    let (a, b) = (op(a), op(b));
    let r1 = concurrent(&d, &a, &b);
    for (p, v) in first {
        assert_eq!(at(&r1, p.clone()), *v, "{p} with {a:?} first, then {b:?}");
    }
    let r2 = concurrent(&d, &b, &a);
    for (p, v) in second {
        assert_eq!(at(&r2, p.clone()), *v, "{p} with {b:?} first, then {a:?}");
    }
}

/// Same result in either order.
fn both(a: J, b: J, checks: &[(J, J)]) {
    cell(a, b, checks, checks);
}

fn split() -> J {
    json!([{"op":"split","path":clip(1),"at":20,"media":15,"id":"c1b"}])
}
fn ids() -> J {
    json!(["timeline", "tracks", 0, "clips"])
}
fn clip_ids(d: &montage_ot::Value) -> Vec<J> {
    at(d, ids())
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect()
}

#[test]
fn split_row() {
    // set of another field: both halves; of `out`: the right half; of `start`: the left.
    both(
        split(),
        json!([{"op":"set","path":field(clip(1),"gain"),"value":0.5}]),
        &[
            (field(clip(1), "gain"), json!(0.5)),
            (field(clip(2), "gain"), json!(0.5)),
        ],
    );
    both(
        split(),
        json!([{"op":"set","path":field(clip(1),"out"),"value":22}]),
        &[
            (field(clip(1), "out"), json!(15)),
            (field(clip(2), "out"), json!(22)),
        ],
    );
    both(
        split(),
        json!([{"op":"set","path":field(clip(1),"start"),"value":11}]),
        &[
            (field(clip(1), "start"), json!(11)),
            (field(clip(2), "start"), json!(20)),
        ],
    );
    // set of the whole clip beats the split.
    both(
        split(),
        json!([{"op":"set","path":clip(1),"value":{"id":"n","asset":"v","start":0,"in":0,"out":1}}]),
        &[(field(clip(1), "id"), json!("n")), (clip(2), J::Null)],
    );
    // del of the clip deletes both halves; of another clip shifts the split.
    both(
        split(),
        json!([{"op":"del","path":clip(1)}]),
        &[(clip(1), J::Null)],
    );
    both(
        split(),
        json!([{"op":"del","path":clip(0)}]),
        &[
            (field(clip(0), "out"), json!(15)),
            (field(clip(1), "id"), json!("c1b")),
        ],
    );
    // ins right after the clip lands after the right half.
    both(
        split(),
        json!([{"op":"ins","path":clip(2),"value":{"id":"n","asset":"v","start":0,"in":0,"out":1}}]),
        &[
            (field(clip(2), "id"), json!("c1b")),
            (field(clip(3), "id"), json!("n")),
        ],
    );
    // mov of the clip moves both halves; of another clip keeps them together.
    for mv in [
        json!([{"op":"mov","path":clip(1),"to":0}]),
        json!([{"op":"mov","path":clip(0),"to":1}]),
    ] {
        let d = doc();
        let r = concurrent(&d, &op(split()), &op(mv.clone()));
        let r2 = concurrent(&d, &op(mv), &op(split()));
        assert_eq!(clip_ids(&r), clip_ids(&r2));
        assert_eq!(clip_ids(&r), [json!("c1"), json!("c1b"), json!("c0")]);
    }
    // add to `start`: the left half moves, the right half keeps its absolute start.
    both(
        split(),
        json!([{"op":"add","path":field(clip(1),"start"),"value":1}]),
        &[
            (field(clip(1), "start"), json!(11)),
            (field(clip(2), "start"), json!(20)),
        ],
    );
    // text in another field: both halves.
    both(
        split(),
        json!([{"op":"text","path":field(clip(1),"name"),"pos":5,"ins":"!"}]),
        &[
            (field(clip(1), "name"), json!("intro!")),
            (field(clip(2), "name"), json!("intro!")),
        ],
    );
    // split at another time: three clips; trim: the half it meant (see rules.rs for both).
    both(
        split(),
        json!([{"op":"split","path":clip(1),"at":12,"media":7,"id":"c1a"}]),
        &[
            (field(clip(1), "out"), json!(7)),
            (field(clip(2), "id"), json!("c1a")),
            (field(clip(3), "id"), json!("c1b")),
        ],
    );
    both(
        split(),
        json!([{"op":"trim","path":clip(1),"out":24}]),
        &[
            (field(clip(1), "out"), json!(15)),
            (field(clip(2), "out"), json!(24)),
        ],
    );
    // a tail trim to before the cut keeps only the left half; a head trim past it only the
    // right half (clip_edges.rs has the rest).
    both(
        split(),
        json!([{"op":"trim","path":clip(1),"out":12}]),
        &[(field(clip(1), "out"), json!(12)), (clip(2), J::Null)],
    );
    both(
        split(),
        json!([{"op":"trim","path":clip(1),"start":21,"in":16}]),
        &[
            (field(clip(1), "id"), json!("c1b")),
            (field(clip(1), "start"), json!(21)),
            (clip(2), J::Null),
        ],
    );
    // layer edits are independent of the timeline.
    both(
        split(),
        json!([{"op":"crop","path":layer(0),"rect":{"x":0,"y":0,"w":5,"h":5}}]),
        &[
            (field(layer(0), "crop"), json!({"x":0,"y":0,"w":5,"h":5})),
            (field(clip(2), "id"), json!("c1b")),
        ],
    );
    both(
        split(),
        json!([{"op":"rotate","path":layer(0),"by":90}]),
        &[(field(layer(0), "rotation"), json!(90))],
    );
    both(
        split(),
        json!([{"op":"adjust","path":layer(0),"param":"exposure","value":1}]),
        &[(
            json!(["canvas", "layers", 0, "adjust", "exposure"]),
            json!(1),
        )],
    );
}

fn trim() -> J {
    json!([{"op":"trim","path":clip(1),"start":12,"in":7}])
}

#[test]
fn trim_row() {
    // set of a trimmed field: the later wins; of the whole clip: set wins.
    cell(
        trim(),
        json!([{"op":"set","path":field(clip(1),"start"),"value":3}]),
        &[
            (field(clip(1), "start"), json!(3)),
            (field(clip(1), "in"), json!(7)),
        ],
        &[
            (field(clip(1), "start"), json!(12)),
            (field(clip(1), "in"), json!(7)),
        ],
    );
    both(
        trim(),
        json!([{"op":"set","path":clip(1),"value":{"id":"n","asset":"v","start":0,"in":0,"out":1}}]),
        &[(field(clip(1), "start"), json!(0))],
    );
    // del of the clip: the trim is dropped.
    both(
        trim(),
        json!([{"op":"del","path":clip(1)}]),
        &[(clip(1), J::Null)],
    );
    // ins / mov: the trim follows its clip.
    both(
        trim(),
        json!([{"op":"ins","path":clip(0),"value":{"id":"n","asset":"v","start":0,"in":0,"out":1}}]),
        &[(field(clip(2), "start"), json!(12))],
    );
    both(
        trim(),
        json!([{"op":"mov","path":clip(1),"to":0}]),
        &[(field(clip(0), "start"), json!(12))],
    );
    // add to a trimmed field: the trim (a write) wins.
    both(
        trim(),
        json!([{"op":"add","path":field(clip(1),"start"),"value":5}]),
        &[(field(clip(1), "start"), json!(12))],
    );
    // text elsewhere in the clip: both.
    both(
        trim(),
        json!([{"op":"text","path":field(clip(1),"name"),"pos":0,"ins":"x"}]),
        &[
            (field(clip(1), "start"), json!(12)),
            (field(clip(1), "name"), json!("xintro")),
        ],
    );
    // split: the head trim lands on the left half.
    both(
        trim(),
        split(),
        &[
            (field(clip(1), "start"), json!(12)),
            (field(clip(2), "start"), json!(20)),
        ],
    );
    // trim of the same edge: the later wins; of the other edge: both.
    cell(
        trim(),
        json!([{"op":"trim","path":clip(1),"start":14,"in":9}]),
        &[(field(clip(1), "start"), json!(14))],
        &[(field(clip(1), "start"), json!(12))],
    );
    both(
        trim(),
        json!([{"op":"trim","path":clip(1),"out":20}]),
        &[
            (field(clip(1), "start"), json!(12)),
            (field(clip(1), "out"), json!(20)),
        ],
    );
    // trim of the other edge that would cross this one: the later one gives way, leaving the
    // minimum length (its `start` moves with its `in`).
    cell(
        trim(),
        json!([{"op":"trim","path":clip(1),"out":6}]),
        &[
            (field(clip(1), "in"), json!(7)),
            (field(clip(1), "out"), json!(7.0625)),
        ],
        &[
            (field(clip(1), "start"), json!(10.9375)),
            (field(clip(1), "in"), json!(5.9375)),
            (field(clip(1), "out"), json!(6)),
        ],
    );
    // layer edits: independent.
    both(
        trim(),
        json!([{"op":"crop","path":layer(0),"rect":{"x":0,"y":0,"w":5,"h":5}}]),
        &[(field(clip(1), "start"), json!(12))],
    );
    both(
        trim(),
        json!([{"op":"rotate","path":layer(0),"by":90}]),
        &[(field(clip(1), "start"), json!(12))],
    );
    both(
        trim(),
        json!([{"op":"adjust","path":layer(0),"param":"exposure","value":1}]),
        &[(field(clip(1), "start"), json!(12))],
    );
}

fn crop() -> J {
    json!([{"op":"crop","path":layer(0),"rect":{"x":1,"y":2,"w":30,"h":40}}])
}
fn cropped() -> J {
    json!({"x":1,"y":2,"w":30,"h":40})
}

#[test]
fn crop_row() {
    let crop_at = |i| field(layer(i), "crop");
    // set of the crop: later wins; of the layer: set wins; of another field: both.
    cell(
        crop(),
        json!([{"op":"set","path":crop_at(0),"value":{"x":0,"y":0,"w":1,"h":1}}]),
        &[(crop_at(0), json!({"x":0,"y":0,"w":1,"h":1}))],
        &[(crop_at(0), cropped())],
    );
    both(
        crop(),
        json!([{"op":"set","path":layer(0),"value":{"id":"R","kind":"image","asset":"a1","x":0,"y":0,"w":1,"h":1}}]),
        &[(crop_at(0), J::Null)],
    );
    both(
        crop(),
        json!([{"op":"set","path":field(layer(0),"x"),"value":7}]),
        &[(crop_at(0), cropped()), (field(layer(0), "x"), json!(7))],
    );
    // del of the layer: dropped.
    both(
        crop(),
        json!([{"op":"del","path":layer(0)}]),
        &[(field(layer(0), "id"), json!("L1"))],
    );
    // ins / mov: follows the layer.
    both(
        crop(),
        json!([{"op":"ins","path":layer(0),"value":{"id":"N","kind":"text","text":"","x":0,"y":0,"size":1,"color":"#000"}}]),
        &[(crop_at(1), cropped())],
    );
    both(
        crop(),
        json!([{"op":"mov","path":layer(0),"to":2}]),
        &[(crop_at(2), cropped())],
    );
    // add / text elsewhere: both.
    both(
        crop(),
        json!([{"op":"add","path":field(layer(0),"x"),"value":3}]),
        &[(crop_at(0), cropped()), (field(layer(0), "x"), json!(3))],
    );
    both(
        crop(),
        json!([{"op":"text","path":["canvas","layers",2,"text"],"pos":0,"ins":"a "}]),
        &[(crop_at(0), cropped())],
    );
    // timeline edits: independent.
    both(crop(), split(), &[(crop_at(0), cropped())]);
    both(crop(), trim(), &[(crop_at(0), cropped())]);
    // crop vs crop: later wins; vs rotate: the crop names the same asset pixels and turns with
    // the picture; vs adjust: both.
    cell(
        crop(),
        json!([{"op":"crop","path":layer(0),"rect":{"x":0,"y":0,"w":9,"h":9}}]),
        &[(crop_at(0), json!({"x":0,"y":0,"w":9,"h":9}))],
        &[(crop_at(0), cropped())],
    );
    both(
        crop(),
        json!([{"op":"rotate","path":layer(0),"by":90}]),
        &[
            (crop_at(0), cropped()),
            (field(layer(0), "rotation"), json!(90)),
        ],
    );
    both(
        crop(),
        json!([{"op":"adjust","path":layer(0),"param":"contrast","value":0.5}]),
        &[
            (crop_at(0), cropped()),
            (
                json!(["canvas", "layers", 0, "adjust", "contrast"]),
                json!(0.5),
            ),
        ],
    );
}

fn rotate() -> J {
    json!([{"op":"rotate","path":layer(1),"by":90}])
}

#[test]
fn rotate_row() {
    let rot = |i| field(layer(i), "rotation");
    // set of the rotation or the layer: set wins; set elsewhere: both.
    both(
        rotate(),
        json!([{"op":"set","path":rot(1),"value":45}]),
        &[(rot(1), json!(45))],
    );
    both(
        rotate(),
        json!([{"op":"set","path":layer(1),"value":{"id":"R","kind":"image","asset":"a1","x":0,"y":0,"w":1,"h":1}}]),
        &[(rot(1), J::Null)],
    );
    both(
        rotate(),
        json!([{"op":"set","path":field(layer(1),"x"),"value":5}]),
        &[(rot(1), json!(90))],
    );
    // del of the rotation or the layer: dropped.
    both(
        rotate(),
        json!([{"op":"del","path":rot(1)}]),
        &[(rot(1), J::Null)],
    );
    both(
        rotate(),
        json!([{"op":"del","path":layer(1)}]),
        &[(field(layer(1), "id"), json!("T"))],
    );
    // ins / mov: follows.
    both(
        rotate(),
        json!([{"op":"ins","path":layer(0),"value":{"id":"N","kind":"text","text":"","x":0,"y":0,"size":1,"color":"#000"}}]),
        &[(rot(2), json!(90))],
    );
    both(
        rotate(),
        json!([{"op":"mov","path":layer(1),"to":0}]),
        &[(rot(0), json!(90))],
    );
    // add to the rotation and another rotate: both count.
    both(
        rotate(),
        json!([{"op":"add","path":rot(1),"value":45}]),
        &[(rot(1), json!(135))],
    );
    both(
        rotate(),
        json!([{"op":"rotate","path":layer(1),"by":180}]),
        &[(rot(1), json!(270))],
    );
    // text, timeline edits: independent. crop, adjust: both.
    both(
        rotate(),
        json!([{"op":"text","path":["title"],"pos":0,"ins":"x"}]),
        &[(rot(1), json!(90))],
    );
    both(rotate(), split(), &[(rot(1), json!(90))]);
    both(rotate(), trim(), &[(rot(1), json!(90))]);
    both(
        rotate(),
        json!([{"op":"crop","path":layer(1),"rect":{"x":0,"y":0,"w":5,"h":5}}]),
        &[
            (rot(1), json!(90)),
            (field(layer(1), "crop"), json!({"x":0,"y":0,"w":5,"h":5})),
        ],
    );
    both(
        rotate(),
        json!([{"op":"adjust","path":layer(1),"param":"contrast","value":0.5}]),
        &[(rot(1), json!(90))],
    );
}

fn adjust() -> J {
    json!([{"op":"adjust","path":layer(1),"param":"brightness","value":0.25}])
}

#[test]
fn adjust_row() {
    let b = json!(["canvas", "layers", 1, "adjust", "brightness"]);
    let adj = field(layer(1), "adjust");
    // set of the parameter: later wins; of `adjust` or the layer: set wins.
    cell(
        adjust(),
        json!([{"op":"set","path":b.clone(),"value":-0.5}]),
        &[(b.clone(), json!(-0.5))],
        &[(b.clone(), json!(0.25))],
    );
    both(
        adjust(),
        json!([{"op":"set","path":adj.clone(),"value":{"contrast":0.1}}]),
        &[(adj.clone(), json!({"contrast":0.1}))],
    );
    both(
        adjust(),
        json!([{"op":"set","path":layer(1),"value":{"id":"R","kind":"image","asset":"a1","x":0,"y":0,"w":1,"h":1}}]),
        &[(adj.clone(), J::Null)],
    );
    // del of `adjust` or the layer: dropped.
    both(
        adjust(),
        json!([{"op":"del","path":adj.clone()}]),
        &[(adj.clone(), J::Null)],
    );
    both(
        adjust(),
        json!([{"op":"del","path":layer(1)}]),
        &[(field(layer(1), "id"), json!("T"))],
    );
    // ins / mov: follows.
    both(
        adjust(),
        json!([{"op":"mov","path":layer(1),"to":2}]),
        &[(
            json!(["canvas", "layers", 2, "adjust", "brightness"]),
            json!(0.25),
        )],
    );
    both(
        adjust(),
        json!([{"op":"ins","path":layer(1),"value":{"id":"N","kind":"text","text":"","x":0,"y":0,"size":1,"color":"#000"}}]),
        &[(
            json!(["canvas", "layers", 2, "adjust", "brightness"]),
            json!(0.25),
        )],
    );
    // add to the parameter: the adjust (a write) wins.
    both(
        adjust(),
        json!([{"op":"add","path":b.clone(),"value":0.5}]),
        &[(b.clone(), json!(0.25))],
    );
    // text, timeline: independent; crop, rotate: both.
    both(
        adjust(),
        json!([{"op":"text","path":["title"],"pos":0,"ins":"x"}]),
        &[(b.clone(), json!(0.25))],
    );
    both(adjust(), split(), &[(b.clone(), json!(0.25))]);
    both(adjust(), trim(), &[(b.clone(), json!(0.25))]);
    both(
        adjust(),
        json!([{"op":"crop","path":layer(1),"rect":{"x":0,"y":0,"w":5,"h":5}}]),
        &[(b.clone(), json!(0.25))],
    );
    both(
        adjust(),
        json!([{"op":"rotate","path":layer(1),"by":90}]),
        &[
            (b.clone(), json!(0.25)),
            (field(layer(1), "rotation"), json!(90)),
        ],
    );
    // adjust of the same parameter: later wins; of another: both, into one `adjust` object.
    cell(
        adjust(),
        json!([{"op":"adjust","path":layer(1),"param":"brightness","value":-1}]),
        &[(b.clone(), json!(-1))],
        &[(b.clone(), json!(0.25))],
    );
    both(
        adjust(),
        json!([{"op":"adjust","path":layer(1),"param":"saturation","value":-1}]),
        &[(adj, json!({"brightness":0.25,"saturation":-1}))],
    );
}
