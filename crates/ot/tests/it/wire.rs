//! The JSON form of edits (DESIGN §2) round-trips, and bad input is an error, not a panic.

use montage_ot::{Component, Op, OtError, Value, path};
use serde_json::json;

#[test]
fn every_component_round_trips_through_json() {
    let j = json!([
        {"op":"set","path":["title"],"value":"x"},
        {"op":"del","path":["meta","k"]},
        {"op":"ins","path":["canvas","layers",0],"value":{"id":"l"}},
        {"op":"mov","path":["canvas","layers",0],"to":2},
        {"op":"add","path":["meta","n"],"value":1.5},
        {"op":"text","path":["title"],"pos":3,"ins":"héllo"},
        {"op":"text","path":["title"],"pos":1,"del":2},
        {"op":"split","path":["timeline","tracks",0,"clips",1],"at":4.5,"media":2.5,"id":"c9"},
        {"op":"trim","path":["timeline","tracks",0,"clips",1],"start":1,"in":0.5},
        {"op":"crop","path":["canvas","layers",0],"rect":{"x":0,"y":0,"w":10,"h":20}},
        {"op":"rotate","path":["canvas","layers",0],"by":90},
        {"op":"adjust","path":["canvas","layers",0],"param":"brightness","value":0.25}
    ]);
    let op = Op::from_json(&j).expect("decodes");
    assert_eq!(op.len(), 12);
    assert_eq!(op.to_json(), j);
}

#[test]
fn composed_typing_travels_as_one_insert() {
    let mut op = Op::default();
    for (i, ch) in "hello".chars().enumerate() {
        op = op.compose(&Op::new(vec![Component::text_insert(
            path!["title"],
            i,
            ch.to_string(),
        )]));
    }
    assert_eq!(
        op.to_json(),
        json!([{"op":"text","path":["title"],"pos":0,"ins":"hello"}])
    );
}

#[test]
fn malformed_components_are_decode_errors() {
    for bad in [
        json!({"op":"set"}),
        json!([{"op":"nope","path":[]}]),
        json!([{"op":"set","path":"title","value":1}]),
        json!([{"op":"ins","path":["a","b"],"value":1}]),
        json!([{"op":"text","path":["title"],"pos":0}]),
        json!([{"op":"text","path":["title"],"pos":0,"ins":"a","del":1}]),
        json!([{"op":"mov","path":["l",-1],"to":0}]),
        json!([{"op":"set","path":["title"],"value":1,"extra":true}]),
        json!([{"op":"trim","path":["c",0]}]),
        json!([{"op":"text","path":["title"],"pos":18446744073709551615u64,"del":5}]),
        json!([{"op":"ins","path":["l",4294967296u64],"value":1}]),
        json!([{"op":"mov","path":["l",0],"to":4294967296u64}]),
    ] {
        assert!(
            matches!(Op::from_json(&bad), Err(OtError::Decode(_))),
            "{bad} should not decode"
        );
    }
}

#[test]
fn out_of_range_edits_are_errors_and_leave_the_document_unchanged() {
    let doc = Value::new_document();
    for bad in [
        json!([{"op":"text","path":["title"],"pos":5,"ins":"x"}]),
        json!([{"op":"text","path":["title"],"pos":0,"del":1}]),
        json!([{"op":"del","path":["canvas","layers",0]}]),
        json!([{"op":"ins","path":["canvas","layers",1],"value":1}]),
        json!([{"op":"add","path":["title"],"value":1}]),
        json!([{"op":"set","path":["nope","x"],"value":1}]),
        json!([{"op":"del","path":[]}]),
        // The first component applies, the second fails: the whole edit is refused.
        json!([{"op":"set","path":["title"],"value":"changed"},{"op":"mov","path":["canvas","layers",0],"to":0}]),
        // Shape: a layer without a kind, a string where a number belongs.
        json!([{"op":"ins","path":["canvas","layers",0],"value":{"id":"l"}}]),
        json!([{"op":"set","path":["canvas","width"],"value":"wide"}]),
        json!([{"op":"set","path":["title"],"value":3}]),
        json!([{"op":"adjust","path":["canvas"],"param":"brightness","value":3}]),
    ] {
        let op = Op::from_json(&bad).expect("decodes");
        let mut d = doc.clone();
        assert!(op.apply(&mut d).is_err(), "{bad} should be refused");
        assert_eq!(d, doc, "{bad} left changes behind");
    }
}

#[test]
fn text_and_add_inside_entities_are_still_shape_checked() {
    let mut doc = Value::new_document();
    Op::from_json(&json!([{"op":"ins","path":["canvas","layers",0],"value":
        {"id":"L","kind":"image","asset":"a","x":0,"y":0,"w":1,"h":1,"opacity":0.5,"adjust":{"brightness":0}}}]))
    .expect("decodes")
    .apply(&mut doc)
    .expect("a valid layer");
    for bad in [
        json!([{"op":"text","path":["canvas","layers",0,"kind"],"pos":5,"ins":"x"}]),
        json!([{"op":"add","path":["canvas","layers",0,"opacity"],"value":5}]),
        json!([{"op":"add","path":["canvas","layers",0,"adjust","brightness"],"value":2}]),
        json!([{"op":"set","path":["canvas","layers",0,"adjust","brightness"],"value":-3}]),
    ] {
        let before = doc.clone();
        assert!(
            Op::from_json(&bad)
                .expect("decodes")
                .apply(&mut doc)
                .is_err(),
            "{bad} should be refused"
        );
        assert_eq!(doc, before);
    }
}
