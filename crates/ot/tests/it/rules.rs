//! One test per rule of DESIGN §2 and per cell of the media table in docs/OT.md.

use montage_ot::{Component, Op, Rect, Side, Value, path};
use serde_json::json;

use crate::fuzz::apply;

pub fn doc() -> Value {
    serde_json::from_value(json!({
        "title": "hello",
        "assets": {"a1": {"kind": "image", "width": 400, "height": 300}},
        "canvas": {"width": 1920, "height": 1080, "layers": [
            {"id": "L0", "kind": "image", "asset": "a1", "x": 0, "y": 0, "w": 400, "h": 300},
            {"id": "L1", "kind": "image", "asset": "a1", "x": 10, "y": 10, "w": 40, "h": 30,
             "rotation": 0, "adjust": {"brightness": 0.5}},
            {"id": "T", "kind": "text", "text": "caption", "x": 0, "y": 0, "size": 12, "color": "#000"}
        ]},
        "timeline": {"tracks": [{"id": "v", "kind": "video", "clips": [
            {"id": "c0", "asset": "v1", "start": 0, "in": 0, "out": 10, "gain": 1},
            {"id": "c1", "asset": "v1", "start": 10, "in": 5, "out": 25, "gain": 1, "name": "intro"}
        ]}]},
        "meta": {"n": 1, "list": [1, 2, 3]}
    }))
    .expect("valid document")
}

pub fn op(j: serde_json::Value) -> Op {
    Op::from_json(&j).expect("valid op")
}

/// `a` was ordered first, `b` second, both made on `d`. Checks TP1 and returns the result.
pub fn concurrent(d: &Value, a: &Op, b: &Op) -> Value {
    let via_a = apply(&apply(d, a), &b.transform(a, Side::Right));
    let via_b = apply(&apply(d, b), &a.transform(b, Side::Left));
    assert_eq!(via_a, via_b, "TP1");
    via_a
}

pub fn at(d: &Value, p: serde_json::Value) -> serde_json::Value {
    let p: montage_ot::Path = serde_json::from_value(p).expect("path");
    d.at(p.segs())
        .map_or(serde_json::Value::Null, Value::to_json)
}

fn clips(d: &Value) -> serde_json::Value {
    at(d, json!(["timeline", "tracks", 0, "clips"]))
}

#[test]
fn edits_follow_their_list_element_as_others_shift_it() {
    let d = doc();
    let del0 = op(json!([{"op":"del","path":["canvas","layers",0]}]));
    let ins0 = op(json!([{"op":"ins","path":["canvas","layers",0],"value":
        {"id":"N","kind":"text","text":"","x":0,"y":0,"size":1,"color":"#000"}}]));
    let mov = op(json!([{"op":"mov","path":["canvas","layers",1],"to":2}]));
    let edit = op(json!([{"op":"set","path":["canvas","layers",1,"x"],"value":99}]));
    for other in [del0, ins0, mov] {
        let r = concurrent(&d, &other, &edit);
        let layers = at(&r, json!(["canvas", "layers"]));
        let l1 = layers
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == "L1")
            .unwrap();
        assert_eq!(l1["x"], 99, "after {other:?}");
    }
}

#[test]
fn an_edit_inside_a_deleted_subtree_is_dropped() {
    let d = doc();
    let del = op(json!([{"op":"del","path":["canvas","layers",1]}]));
    let edit =
        op(json!([{"op":"adjust","path":["canvas","layers",1],"param":"contrast","value":0.5}]));
    let r = concurrent(&d, &del, &edit);
    assert_eq!(
        at(&r, json!(["canvas", "layers"]))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = concurrent(&d, &edit, &del);
    assert_eq!(
        at(&r, json!(["canvas", "layers"]))
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn two_sets_of_one_path_the_later_wins() {
    let d = doc();
    let a = op(json!([{"op":"set","path":["meta","n"],"value":5}]));
    let b = op(json!([{"op":"set","path":["meta","n"],"value":7}]));
    assert_eq!(at(&concurrent(&d, &a, &b), json!(["meta", "n"])), 7);
    assert_eq!(at(&concurrent(&d, &b, &a), json!(["meta", "n"])), 5);
}

#[test]
fn set_and_delete_of_one_key_the_later_wins() {
    let d = doc();
    let set = op(json!([{"op":"set","path":["meta","n"],"value":5}]));
    let del = op(json!([{"op":"del","path":["meta","n"]}]));
    assert_eq!(
        at(&concurrent(&d, &set, &del), json!(["meta", "n"])),
        serde_json::Value::Null
    );
    assert_eq!(at(&concurrent(&d, &del, &set), json!(["meta", "n"])), 5);
}

#[test]
fn two_inserts_at_one_index_the_earlier_stands_first() {
    let d = doc();
    let a = op(json!([{"op":"ins","path":["meta","list",1],"value":"A"}]));
    let b = op(json!([{"op":"ins","path":["meta","list",1],"value":"B"}]));
    assert_eq!(
        at(&concurrent(&d, &a, &b), json!(["meta", "list"])),
        json!([1, "A", "B", 2, 3])
    );
    assert_eq!(
        at(&concurrent(&d, &b, &a), json!(["meta", "list"])),
        json!([1, "B", "A", 2, 3])
    );
}

#[test]
fn text_inserts_at_one_position_the_earlier_stands_first() {
    let d = doc();
    let a = op(json!([{"op":"text","path":["title"],"pos":5,"ins":" world"}]));
    let b = op(json!([{"op":"text","path":["title"],"pos":5,"ins":"!"}]));
    assert_eq!(
        at(&concurrent(&d, &a, &b), json!(["title"])),
        "hello world!"
    );
    assert_eq!(
        at(&concurrent(&d, &b, &a), json!(["title"])),
        "hello! world"
    );
}

#[test]
fn two_adds_both_count() {
    let d = doc();
    let a = op(json!([{"op":"add","path":["meta","n"],"value":2}]));
    let b = op(json!([{"op":"add","path":["meta","n"],"value":3}]));
    assert_eq!(at(&concurrent(&d, &a, &b), json!(["meta", "n"])), 6);
}

#[test]
fn a_text_delete_of_a_deleted_range_deletes_nothing_twice() {
    let d = doc();
    let a = op(json!([{"op":"text","path":["title"],"pos":1,"del":3}]));
    let b = op(json!([{"op":"text","path":["title"],"pos":2,"del":3}]));
    assert_eq!(at(&concurrent(&d, &a, &b), json!(["title"])), "h");
    let a = op(json!([{"op":"text","path":["title"],"pos":0,"del":2}]));
    let b = op(json!([{"op":"text","path":["title"],"pos":0,"del":2}]));
    assert_eq!(at(&concurrent(&d, &a, &b), json!(["title"])), "llo");
}

#[test]
fn two_moves_of_one_element_the_later_wins() {
    let d = doc();
    let a = op(json!([{"op":"mov","path":["meta","list",0],"to":2}]));
    let b = op(json!([{"op":"mov","path":["meta","list",0],"to":1}]));
    assert_eq!(
        at(&concurrent(&d, &a, &b), json!(["meta", "list"])),
        json!([2, 1, 3])
    );
    assert_eq!(
        at(&concurrent(&d, &b, &a), json!(["meta", "list"])),
        json!([2, 3, 1])
    );
}

#[test]
fn a_moved_element_deleted_concurrently_is_gone() {
    let d = doc();
    let mov = op(json!([{"op":"mov","path":["meta","list",0],"to":2}]));
    let del = op(json!([{"op":"del","path":["meta","list",0]}]));
    assert_eq!(
        at(&concurrent(&d, &mov, &del), json!(["meta", "list"])),
        json!([2, 3])
    );
    assert_eq!(
        at(&concurrent(&d, &del, &mov), json!(["meta", "list"])),
        json!([2, 3])
    );
}

#[test]
fn deleting_a_list_element_beats_setting_it() {
    let d = doc();
    let set = op(json!([{"op":"set","path":["meta","list",1],"value":9}]));
    let del = op(json!([{"op":"del","path":["meta","list",1]}]));
    assert_eq!(
        at(&concurrent(&d, &set, &del), json!(["meta", "list"])),
        json!([1, 3])
    );
    assert_eq!(
        at(&concurrent(&d, &del, &set), json!(["meta", "list"])),
        json!([1, 3])
    );
}

// ---- media table ----

fn split_c1() -> Op {
    // c1 spans timeline 10..30 playing 5..25; cut at timeline 20 = media 15.
    op(
        json!([{"op":"split","path":["timeline","tracks",0,"clips",1],"at":20,"media":15,"id":"c1b"}]),
    )
}

#[test]
fn split_makes_two_halves_that_play_on() {
    let r = apply(&doc(), &split_c1());
    assert_eq!(
        clips(&r).as_array().unwrap()[1..],
        json!([
            {"id":"c1","asset":"v1","start":10,"in":5,"out":15,"gain":1,"name":"intro"},
            {"id":"c1b","asset":"v1","start":20,"in":15,"out":25,"gain":1,"name":"intro"}
        ])
        .as_array()
        .unwrap()[..]
    );
}

#[test]
fn a_trim_concurrent_with_a_split_lands_on_the_half_it_meant() {
    let d = doc();
    let head =
        op(json!([{"op":"trim","path":["timeline","tracks",0,"clips",1],"start":12,"in":7}]));
    let tail = op(json!([{"op":"trim","path":["timeline","tracks",0,"clips",1],"out":22}]));
    for (a, b) in [(&split_c1(), &head), (&head, &split_c1())] {
        let c = clips(&concurrent(&d, a, b));
        assert_eq!(
            (
                c[1]["start"].clone(),
                c[1]["in"].clone(),
                c[1]["out"].clone()
            ),
            (json!(12), json!(7), json!(15))
        );
        assert_eq!(
            (
                c[2]["start"].clone(),
                c[2]["in"].clone(),
                c[2]["out"].clone()
            ),
            (json!(20), json!(15), json!(25))
        );
    }
    for (a, b) in [(&split_c1(), &tail), (&tail, &split_c1())] {
        let c = clips(&concurrent(&d, a, b));
        assert_eq!(c[1]["out"], 15, "the left half keeps its cut");
        assert_eq!(c[2]["out"], 22, "the tail trim lands on the right half");
    }
}

#[test]
fn split_concurrent_with_delete_deletes_both_halves() {
    let d = doc();
    let del = op(json!([{"op":"del","path":["timeline","tracks",0,"clips",1]}]));
    for (a, b) in [(&split_c1(), &del), (&del, &split_c1())] {
        let c = clips(&concurrent(&d, a, b));
        assert_eq!(c.as_array().unwrap().len(), 1);
        assert_eq!(c[0]["id"], "c0");
    }
}

#[test]
fn replacing_a_clip_beats_splitting_it() {
    let d = doc();
    let set = op(json!([{"op":"set","path":["timeline","tracks",0,"clips",1],
        "value":{"id":"new","asset":"v2","start":10,"in":0,"out":3}}]));
    for (a, b) in [(&split_c1(), &set), (&set, &split_c1())] {
        let c = clips(&concurrent(&d, a, b));
        assert_eq!(c.as_array().unwrap().len(), 2);
        assert_eq!(c[1]["id"], "new");
    }
}

#[test]
fn moving_a_clip_while_it_is_split_moves_both_halves() {
    let d = doc();
    let mov = op(json!([{"op":"mov","path":["timeline","tracks",0,"clips",1],"to":0}]));
    for (a, b) in [(&split_c1(), &mov), (&mov, &split_c1())] {
        let c = clips(&concurrent(&d, a, b));
        let ids: Vec<_> = c
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].clone())
            .collect();
        assert_eq!(ids, [json!("c1"), json!("c1b"), json!("c0")]);
    }
}

#[test]
fn other_edits_of_a_split_clip_apply_to_both_halves() {
    let d = doc();
    let gain =
        op(json!([{"op":"set","path":["timeline","tracks",0,"clips",1,"gain"],"value":0.5}]));
    for (a, b) in [(&split_c1(), &gain), (&gain, &split_c1())] {
        let c = clips(&concurrent(&d, a, b));
        assert_eq!(
            (c[1]["gain"].clone(), c[2]["gain"].clone()),
            (json!(0.5), json!(0.5))
        );
    }
}

#[test]
fn two_splits_of_one_clip() {
    let d = doc();
    let other = op(
        json!([{"op":"split","path":["timeline","tracks",0,"clips",1],"at":25,"media":20,"id":"c1c"}]),
    );
    for (a, b) in [(&split_c1(), &other), (&other, &split_c1())] {
        let c = clips(&concurrent(&d, a, b));
        let spans: Vec<_> = c.as_array().unwrap()[1..]
            .iter()
            .map(|c| {
                (
                    c["id"].clone(),
                    c["start"].clone(),
                    c["in"].clone(),
                    c["out"].clone(),
                )
            })
            .collect();
        assert_eq!(
            spans,
            [
                (json!("c1"), json!(10), json!(5), json!(15)),
                (json!("c1b"), json!(20), json!(15), json!(20)),
                (json!("c1c"), json!(25), json!(20), json!(25)),
            ]
        );
    }
    // The same cut twice: the earlier one's halves stand.
    let same = op(
        json!([{"op":"split","path":["timeline","tracks",0,"clips",1],"at":20,"media":15,"id":"other"}]),
    );
    let c = clips(&concurrent(&d, &split_c1(), &same));
    assert_eq!(c.as_array().unwrap().len(), 3);
    assert_eq!(c[2]["id"], "c1b");
}

#[test]
fn a_crop_concurrent_with_a_rotation_turns_with_the_picture() {
    let d = doc();
    let crop = Op::new(vec![Component::Crop {
        path: path!["canvas", "layers", 0],
        rect: Rect {
            x: 0.0,
            y: 0.0,
            w: 200.0,
            h: 100.0,
        },
    }]);
    let rot = Op::new(vec![Component::Rotate {
        path: path!["canvas", "layers", 0],
        by: 90.0,
    }]);
    for (a, b) in [(&crop, &rot), (&rot, &crop)] {
        let r = concurrent(&d, a, b);
        // The crop still names the same asset pixels (the top-left 200×100 of the picture),
        // and the layer turns 90°: the cropped region is drawn rotated with the picture.
        assert_eq!(
            at(&r, json!(["canvas", "layers", 0, "crop"])),
            json!({"x":0,"y":0,"w":200,"h":100})
        );
        assert_eq!(at(&r, json!(["canvas", "layers", 0, "rotation"])), 90);
    }
}

#[test]
fn two_crops_the_later_wins() {
    let d = doc();
    let a =
        op(json!([{"op":"crop","path":["canvas","layers",0],"rect":{"x":0,"y":0,"w":10,"h":10}}]));
    let b =
        op(json!([{"op":"crop","path":["canvas","layers",0],"rect":{"x":5,"y":5,"w":20,"h":20}}]));
    assert_eq!(
        at(
            &concurrent(&d, &a, &b),
            json!(["canvas", "layers", 0, "crop", "x"])
        ),
        5
    );
}

#[test]
fn two_rotations_both_count() {
    let d = doc();
    let a = op(json!([{"op":"rotate","path":["canvas","layers",0],"by":90}]));
    let b = op(json!([{"op":"rotate","path":["canvas","layers",0],"by":180}]));
    assert_eq!(
        at(
            &concurrent(&d, &a, &b),
            json!(["canvas", "layers", 0, "rotation"])
        ),
        270
    );
}

#[test]
fn two_adjusts_of_one_parameter_the_later_wins_of_two_both_stand() {
    let d = doc();
    let a =
        op(json!([{"op":"adjust","path":["canvas","layers",1],"param":"brightness","value":0.1}]));
    let b =
        op(json!([{"op":"adjust","path":["canvas","layers",1],"param":"brightness","value":-0.2}]));
    let c = op(json!([{"op":"adjust","path":["canvas","layers",1],"param":"exposure","value":1}]));
    assert_eq!(
        at(
            &concurrent(&d, &a, &b),
            json!(["canvas", "layers", 1, "adjust", "brightness"])
        ),
        -0.2
    );
    assert_eq!(
        at(
            &concurrent(&d, &b, &a),
            json!(["canvas", "layers", 1, "adjust", "brightness"])
        ),
        0.1
    );
    let r = concurrent(&d, &a, &c);
    assert_eq!(
        at(&r, json!(["canvas", "layers", 1, "adjust"])),
        json!({"brightness":0.1,"exposure":1})
    );
}

#[test]
fn replacing_a_layer_drops_concurrent_media_edits_of_the_old_one() {
    let d = doc();
    let set = op(json!([{"op":"set","path":["canvas","layers",0],
        "value":{"id":"R","kind":"image","asset":"a1","x":1,"y":1,"w":2,"h":2}}]));
    for other in [
        op(json!([{"op":"rotate","path":["canvas","layers",0],"by":90}])),
        op(json!([{"op":"crop","path":["canvas","layers",0],"rect":{"x":0,"y":0,"w":10,"h":10}}])),
        op(json!([{"op":"adjust","path":["canvas","layers",0],"param":"contrast","value":0.5}])),
    ] {
        for (a, b) in [(&set, &other), (&other, &set)] {
            let r = concurrent(&d, a, b);
            assert_eq!(
                at(&r, json!(["canvas", "layers", 0])),
                json!({"id":"R","kind":"image","asset":"a1","x":1,"y":1,"w":2,"h":2})
            );
        }
    }
}

#[test]
fn inverse_of_split_merges_the_halves_back() {
    let d = doc();
    let mut x = d.clone();
    let inv = split_c1().apply(&mut x).expect("split applies");
    assert_eq!(apply(&x, &inv), d);
}

#[test]
fn caret_positions_follow_concurrent_typing() {
    let t = montage_ot::TextOp::insert(2, "abc");
    assert_eq!(t.transform_position(1, false), 1);
    assert_eq!(t.transform_position(2, false), 2);
    assert_eq!(t.transform_position(2, true), 5);
    assert_eq!(t.transform_position(4, false), 7);
    let del = montage_ot::TextOp::delete(1, 3);
    assert_eq!(del.transform_position(0, false), 0);
    assert_eq!(del.transform_position(2, false), 1);
    assert_eq!(del.transform_position(6, false), 3);
}
