//! Concurrent trims and splits of one clip (issue #20, docs/OT.md §9.2): two trims leave the
//! clip at least `MIN_CLIP_LENGTH` long, and a trim concurrent with a split lands on the half it
//! meant without leaving a half whose `out` is before its `in`.

use montage_ot::{Component, MIN_CLIP_LENGTH, Op, Side, Value};
use serde_json::{Value as J, json};

use crate::fuzz::{Rng, apply};
use crate::rules::{at, concurrent, doc, op};

const MIN: f64 = MIN_CLIP_LENGTH;

fn clip(i: usize) -> J {
    json!(["timeline", "tracks", 0, "clips", i])
}

fn clips(d: &Value) -> Vec<J> {
    at(d, json!(["timeline", "tracks", 0, "clips"]))
        .as_array()
        .expect("a clip list")
        .clone()
}

/// `(start, in, out)` of a clip.
fn edges(c: &J) -> (f64, f64, f64) {
    let f = |k: &str| c[k].as_f64().expect("a number");
    (f("start"), f("in"), f("out"))
}

fn trim(fields: J) -> Op {
    let mut c = json!({"op": "trim", "path": clip(1)});
    for (k, v) in fields.as_object().expect("fields") {
        c[k] = v.clone();
    }
    op(json!([c]))
}

/// The rules document with clip 1 playing media `i..o` from timeline time `s`.
fn doc_with(s: f64, i: f64, o: f64) -> Value {
    apply(
        &doc(),
        &op(json!([{"op":"set","path":clip(1),
            "value":{"id":"c1","asset":"v1","start":s,"in":i,"out":o,"gain":1}}])),
    )
}

/// Runs `a` and `b` in both server orders; checks TP1 and that every transformed edit's
/// inverse (undo) takes the document back. Returns (result with `a` first, with `b` first).
fn both_orders(d: &Value, a: &Op, b: &Op) -> (Value, Value) {
    for (first, second) in [(a, b), (b, a)] {
        for side in [Side::Left, Side::Right] {
            let mid = apply(d, first);
            let t = second.transform(first, side);
            let mut x = mid.clone();
            let inv = t.apply(&mut x).expect("the transformed edit applies");
            assert_eq!(apply(&x, &inv), mid, "undo of {t:?}");
        }
    }
    (concurrent(d, a, b), concurrent(d, b, a))
}

#[test]
fn issue_20_in_210_against_out_209_keeps_a_minimum_length() {
    let d = doc_with(100.0, 200.0, 230.0);
    // A head trim (start and in move together) against a tail trim, each fine on its own.
    let head = trim(json!({"start": 110, "in": 210}));
    let tail = trim(json!({"out": 209}));
    let (head_first, tail_first) = both_orders(&d, &head, &tail);
    // The tail trim came later: its `out` gives way to just past the new `in`.
    assert_eq!(edges(&clips(&head_first)[1]), (110.0, 210.0, 210.0 + MIN));
    // The head trim came later: its `in` gives way to just before the new `out`, and its
    // `start` moves with it, so each frame still plays where the head trim put it.
    assert_eq!(
        edges(&clips(&tail_first)[1]),
        (110.0 - (210.0 - (209.0 - MIN)), 209.0 - MIN, 209.0)
    );
    for r in [&head_first, &tail_first] {
        let (_, i, o) = edges(&clips(r)[1]);
        assert!(o > i, "never out < in");
        assert_eq!(o - i, MIN);
    }

    // Without `start`, only `in` gives way.
    let (head_first, tail_first) = both_orders(&d, &trim(json!({"in": 210})), &tail);
    assert_eq!(edges(&clips(&head_first)[1]), (100.0, 210.0, 210.0 + MIN));
    assert_eq!(edges(&clips(&tail_first)[1]), (100.0, 209.0 - MIN, 209.0));
}

#[test]
fn concurrent_trims_at_least_the_minimum_apart_are_both_kept() {
    let d = doc_with(100.0, 200.0, 230.0);
    for (i, o) in [(210.0, 220.0), (210.0, 210.0 + MIN)] {
        let (r1, r2) = both_orders(&d, &trim(json!({"in": i})), &trim(json!({"out": o})));
        assert_eq!(edges(&clips(&r1)[1]), (100.0, i, o));
        assert_eq!(edges(&clips(&r2)[1]), (100.0, i, o));
    }
}

#[test]
fn a_later_trim_of_both_edges_stands_as_it_is() {
    let d = doc_with(100.0, 200.0, 230.0);
    let both = trim(json!({"in": 205, "out": 209}));
    let head = trim(json!({"in": 210}));
    let (both_first, head_first) = both_orders(&d, &both, &head);
    // `both` was later: its own edges win, and they are its author's own choice.
    assert_eq!(edges(&clips(&head_first)[1]), (100.0, 205.0, 209.0));
    // `head` was later: its `in` would cross the earlier `out`, so it gives way.
    assert_eq!(edges(&clips(&both_first)[1]), (100.0, 209.0 - MIN, 209.0));
}

fn split_c1() -> Op {
    // c1 spans timeline 10..30 playing media 5..25; cut at timeline 20 = media 15.
    op(json!([{"op":"split","path":clip(1),"at":20,"media":15,"id":"c1b"}]))
}

#[test]
fn a_tail_trim_to_before_a_concurrent_cut_ends_the_left_half() {
    let d = doc();
    for out in [12.0, 15.0] {
        let (split_first, trim_first) = both_orders(&d, &split_c1(), &trim(json!({"out": out})));
        for r in [&split_first, &trim_first] {
            let c = clips(r);
            assert_eq!(c.len(), 2, "the right half was trimmed away: {c:?}");
            assert_eq!(c[1]["id"], "c1");
            assert_eq!(edges(&c[1]), (10.0, 5.0, out));
            assert_eq!(c[1]["name"], "intro");
        }
    }
}

#[test]
fn a_tail_trim_past_a_concurrent_cut_ends_the_right_half() {
    let d = doc();
    let (split_first, trim_first) = both_orders(&d, &split_c1(), &trim(json!({"out": 22})));
    for r in [&split_first, &trim_first] {
        let c = clips(r);
        assert_eq!(edges(&c[1]), (10.0, 5.0, 15.0));
        assert_eq!(edges(&c[2]), (20.0, 15.0, 22.0));
    }
}

#[test]
fn a_head_trim_past_a_concurrent_cut_starts_the_right_half() {
    let d = doc();
    let head = trim(json!({"start": 21, "in": 16}));
    let (split_first, trim_first) = both_orders(&d, &split_c1(), &head);
    for r in [&split_first, &trim_first] {
        let c = clips(r);
        assert_eq!(c.len(), 2, "the left half was trimmed away: {c:?}");
        // What is left is the split's right half, with the head where the trim put it.
        assert_eq!(c[1]["id"], "c1b");
        assert_eq!(edges(&c[1]), (21.0, 16.0, 25.0));
        assert_eq!(c[1]["name"], "intro");
    }
    // A head trim to exactly the cut, without `start`: the right half keeps its own start.
    let (split_first, trim_first) = both_orders(&d, &split_c1(), &trim(json!({"in": 15})));
    for r in [&split_first, &trim_first] {
        let c = clips(r);
        assert_eq!(c.len(), 2);
        assert_eq!(c[1]["id"], "c1b");
        assert_eq!(edges(&c[1]), (20.0, 15.0, 25.0));
    }
}

#[test]
fn a_head_trim_before_a_concurrent_cut_moves_the_left_half() {
    let d = doc();
    let (split_first, trim_first) = both_orders(
        &d,
        &split_c1(),
        &trim(json!({"start": 11, "in": 6, "out": 24})),
    );
    for r in [&split_first, &trim_first] {
        let c = clips(r);
        assert_eq!(edges(&c[1]), (11.0, 6.0, 15.0));
        assert_eq!(edges(&c[2]), (20.0, 15.0, 24.0));
    }
}

#[test]
fn undo_of_a_tail_trim_rewritten_past_a_split_brings_the_right_half_back() {
    let d = doc();
    let split_done = apply(&d, &split_c1());
    // The trim was made before the split but reached the server after it.
    let t = trim(json!({"out": 12})).transform(&split_c1(), Side::Right);
    assert_eq!(
        t.to_json(),
        json!([{"op":"trim","path":clip(1),"out":12},{"op":"del","path":clip(2)}])
    );
    let mut x = split_done.clone();
    let inv = t.apply(&mut x).expect("applies");
    assert_eq!(clips(&x).len(), 2);
    assert_eq!(apply(&x, &inv), split_done, "undo restores both halves");
    // The split that reached the server after the trim is dropped: undoing the trim then
    // gives back the whole clip.
    assert!(
        split_c1()
            .transform(&trim(json!({"out": 12})), Side::Right)
            .is_empty()
    );
}

/// A trim of the clip `(s, i, o)` that leaves it at least `MIN` long on its own.
fn random_trim(r: &mut Rng, path: &J, (s, i, o): (f64, f64, f64)) -> Component {
    loop {
        let ni = i - 2.0 + r.below(48) as f64 / 4.0;
        let no = o - 10.0 + r.below(48) as f64 / 4.0;
        let (start, inp, out) = match r.below(5) {
            0 => (Some(s + (ni - i)), Some(ni), None),
            1 => (None, Some(ni), None),
            2 => (None, None, Some(no)),
            3 => (Some(s + (ni - i)), Some(ni), Some(no)),
            _ => (Some(s + 1.0), None, None),
        };
        if out.unwrap_or(o) - inp.unwrap_or(i) >= MIN {
            let c = json!({"op":"trim","path":path,"start":start,"in":inp,"out":out});
            return Op::from_json(&json!([c])).expect("a trim").components()[0].clone();
        }
    }
}

/// Seeded: random trims and splits of one clip in both orders. Each edit leaves the clip at
/// least `MIN` long on its own; together they never leave a clip shorter, and every rule of
/// the two is met many times.
#[test]
fn concurrent_clip_edges_never_leave_a_clip_shorter_than_the_minimum() {
    let (mut gave_way, mut left_only, mut right_only, mut both_halves) = (0, 0, 0, 0);
    for seed in 0..3000u64 {
        let mut r = Rng::new(0xc11b_0000 + seed);
        let q = |r: &mut Rng, n: usize| r.below(n) as f64 / 4.0;
        let (s, i) = (q(&mut r, 160), q(&mut r, 40));
        let o = i + 0.25 + q(&mut r, 40);
        let d = doc_with(s, i, o);
        let a = Op::new(vec![random_trim(&mut r, &clip(1), (s, i, o))]);
        let cuts = ((o - i) * 4.0) as usize; // quarter-second steps inside the clip, plus one
        let b = if cuts < 2 || r.chance(0.5) {
            Op::new(vec![random_trim(&mut r, &clip(1), (s, i, o))])
        } else {
            let m = i + 0.25 * (1 + r.below(cuts - 1)) as f64;
            let mut split =
                vec![json!({"op":"split","path":clip(1),"at":s + (m - i),"media":m,"id":"cut"})];
            if r.chance(0.3) {
                // The splitter also moves the new right half's tail.
                split.push(json!({"op":"trim","path":clip(2),"out": o + q(&mut r, 8)}));
            }
            op(J::Array(split))
        };
        let (r1, r2) = both_orders(&d, &a, &b);
        for (res, first, second) in [(&r1, &a, &b), (&r2, &b, &a)] {
            let c = clips(res);
            for x in &c {
                let (_, xi, xo) = edges(x);
                assert!(
                    xo - xi >= MIN,
                    "seed {seed}: clip {x} is shorter than the minimum\n a: {a:?}\n b: {b:?}"
                );
            }
            match (b.components()[0].name(), c.len()) {
                ("trim", _) => {
                    // Per-field "the later wins" alone would have left it too short.
                    let naive = apply(&apply(&d, first), second);
                    let (_, ni, no) = edges(&clips(&naive)[1]);
                    if no - ni < MIN {
                        gave_way += 1;
                    }
                }
                (_, 3) => both_halves += 1,
                _ if c[1]["id"] == "c1" => left_only += 1,
                _ => right_only += 1,
            }
        }
    }
    for (what, n) in [
        ("trims that gave way", gave_way),
        ("trims that kept the left half only", left_only),
        ("trims that kept the right half only", right_only),
        ("trims divided between the halves", both_halves),
    ] {
        assert!(n > 50, "{what}: only {n}");
    }
}
