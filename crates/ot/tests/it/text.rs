//! Long strings live in a rope that holds back the latest run of adjacent edits. Every read of a
//! document must see all edits in place, whether one is held or not: these tests interleave
//! typing, backspaces, forward deletes and jumps with every kind of read, against a plain
//! `String` kept beside the document.

use montage_ot::{Component, Op, Side, Value, diff, path};

use crate::fuzz::Rng;

/// Char `pos` of `s` as a byte offset.
fn byte(s: &str, pos: usize) -> usize {
    s.char_indices().nth(pos).map_or(s.len(), |(b, _)| b)
}

/// One random edit of the title near `cursor` (typing, a backspace run, a forward delete or a
/// jump), applied to `doc` and to `want`; returns the edit and its inverse.
fn edit(r: &mut Rng, doc: &mut Value, want: &mut String, cursor: &mut usize) -> (Op, Op) {
    let len = want.chars().count();
    let c = match r.below(10) {
        0 => {
            *cursor = r.below(len + 1);
            let s = ["é", "🎬", "ab", "\n"][r.below(4)];
            Component::text_insert(path!["title"], *cursor, s)
        }
        1..=2 if *cursor > 0 => {
            let n = 1 + r.below((*cursor).min(3));
            *cursor -= n;
            Component::text_delete(path!["title"], *cursor, n)
        }
        3 if *cursor < len => {
            let n = 1 + r.below((len - *cursor).min(3));
            Component::text_delete(path!["title"], *cursor, n)
        }
        _ => {
            let s = ["x", "yz", "ü", "漢字"][r.below(4)];
            Component::text_insert(path!["title"], *cursor, s)
        }
    };
    let op = Op::new(vec![c]);
    let inverse = op.apply(doc).expect("edit applies");
    match &op.components()[0] {
        Component::Text { op: t, .. } => {
            for (pos, step) in t.steps() {
                let a = byte(want, pos);
                match step {
                    montage_ot::TextStep::Insert(s) => {
                        want.insert_str(a, s);
                        *cursor = pos + s.chars().count();
                    }
                    montage_ot::TextStep::Delete(n) => {
                        let b = a + byte(&want[a..], n);
                        want.replace_range(a..b, "");
                    }
                }
            }
        }
        _ => unreachable!(),
    }
    (op, inverse)
}

fn title(d: &Value) -> &montage_ot::Text {
    d.get("title").and_then(Value::as_text).expect("title")
}

fn start(r: &mut Rng) -> (Value, String) {
    // Longer than the threshold above which a string is a rope.
    let want: String = (0..700).map(|_| r.word()).collect::<Vec<_>>().join(" ");
    let mut doc = Value::new_document();
    Op::new(vec![Component::text_insert(
        path!["title"],
        0,
        want.clone(),
    )])
    .apply(&mut doc)
    .expect("applies");
    (doc, want)
}

/// After every edit, some read of the document: each must see the text as the reference has it.
#[test]
fn every_read_sees_every_edit() {
    for seed in 0..6 {
        let mut r = Rng::new(seed);
        let (mut doc, mut want) = start(&mut r);
        let mut cursor = r.below(want.chars().count());
        let mut older = doc.clone();
        for step in 0..1_500 {
            let (_, inverse) = edit(&mut r, &mut doc, &mut want, &mut cursor);
            let t = title(&doc);
            let ctx = format!("seed {seed} step {step}");
            match r.below(12) {
                0 => assert_eq!(t.to_string(), want, "{ctx}"),
                1 => assert_eq!(t.len_chars(), want.chars().count(), "{ctx}"),
                2 => assert_eq!(t.len_bytes(), want.len(), "{ctx}"),
                3 => {
                    let n = want.chars().count();
                    let a = r.below(n + 1);
                    let k = r.below(n - a + 1).min(80);
                    let x = byte(&want, a);
                    let y = x + byte(&want[x..], k);
                    assert_eq!(t.slice(a, k), want[x..y], "{ctx}");
                }
                4 => assert!(*t == *want.as_str(), "{ctx}"),
                5 => {
                    // Text against text: a rope, a rope with a held edit, a plain string.
                    let other = Value::str(want.clone());
                    let other = other.as_text().expect("text");
                    assert_eq!(t, other, "{ctx}");
                    assert_eq!(other, t, "{ctx}");
                    let mut short = want.clone();
                    short.pop();
                    assert_ne!(t, Value::str(short).as_text().expect("text"), "{ctx}");
                }
                6 => {
                    let json = serde_json::to_value(&doc).expect("serializes");
                    assert_eq!(json["title"], want.as_str(), "{ctx}");
                    assert_eq!(doc.to_json()["title"], want.as_str(), "{ctx}");
                    assert_eq!(Value::from_json(&json), doc, "{ctx}");
                }
                7 => assert_eq!(format!("{t:?}"), format!("{want:?}"), "{ctx}"),
                8 => {
                    // Undo then redo: the inverse carries the deleted text.
                    let before = t.to_string();
                    let redo = inverse.apply(&mut doc).expect("inverse applies");
                    redo.apply(&mut doc).expect("redo applies");
                    assert_eq!(title(&doc).to_string(), before, "{ctx}");
                }
                9 => {
                    // A copy holds the same text and goes its own way.
                    let mut copy = doc.clone();
                    assert_eq!(copy, doc, "{ctx}");
                    let (mut w2, mut c2) = (want.clone(), cursor);
                    edit(&mut r, &mut copy, &mut w2, &mut c2);
                    assert_eq!(title(&copy).to_string(), w2, "{ctx}");
                    assert_eq!(title(&doc).to_string(), want, "{ctx}");
                }
                10 => {
                    // The diff of a document and a plain copy of it is empty; from an older
                    // state, it brings that state up to date.
                    let plain = Value::from_json(&doc.to_json());
                    assert!(diff(&doc, &plain).is_empty(), "{ctx}");
                    let mut old = older.clone();
                    diff(&older, &doc).apply(&mut old).expect("diff applies");
                    assert_eq!(title(&old).to_string(), want, "{ctx}");
                    older = doc.clone();
                }
                _ => {
                    let d = Value::from_json_str(&doc.to_string()).expect("parses");
                    assert_eq!(title(&d).to_string(), want, "{ctx}");
                }
            }
        }
        assert_eq!(title(&doc).to_string(), want);
    }
}

/// A concurrent edit transformed past a run of typing lands where it would on the plain string;
/// both sites converge while each holds its own edits back.
#[test]
fn concurrent_typing_on_a_rope_converges() {
    let mut r = Rng::new(99);
    let (doc, want) = start(&mut r);
    let (mut a, mut b) = (doc.clone(), doc.clone());
    let (mut wa, mut wb) = (want.clone(), want);
    let (mut ca, mut cb) = (10, wa.chars().count() - 10);
    for _ in 0..400 {
        let (x, _) = edit(&mut r, &mut a, &mut wa, &mut ca);
        let (y, _) = edit(&mut r, &mut b, &mut wb, &mut cb);
        // x was ordered first: b applies x after its own y, and a applies y after x.
        x.transform(&y, Side::Left).apply(&mut b).expect("applies");
        y.transform(&x, Side::Right).apply(&mut a).expect("applies");
        assert_eq!(title(&a), title(&b));
        assert_eq!(a, b);
        wa = title(&a).to_string();
        wb = wa.clone();
        ca = ca.min(wa.chars().count());
        cb = cb.min(wb.chars().count());
    }
}
