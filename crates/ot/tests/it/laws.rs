//! Property tests of the OT laws over random documents and random edits of every component.

use montage_ot::{Op, Side};
use proptest::prelude::*;

use crate::fuzz::{self, Rng, apply};

/// TP1 for two concurrent edits `a` (ordered first) and `b`; returns the converged document.
pub fn check_tp1(seed: u64) {
    let mut r = Rng::new(seed);
    let d = fuzz::doc(&mut r);
    let a = fuzz::op(&mut r, &d);
    let b = fuzz::op(&mut r, &d);
    let (a2, b2) = a.transform_x(&b, Side::Left);
    assert_eq!(
        b2,
        b.transform(&a, Side::Right),
        "transform_x agrees with transform"
    );
    let via_a = apply(&apply(&d, &a), &b2);
    let via_b = apply(&apply(&d, &b), &a2);
    assert_eq!(
        via_a,
        via_b,
        "TP1 failed (seed {seed})\n a: {}\n b: {}\n a': {}\n b': {}",
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap(),
        serde_json::to_string(&a2).unwrap(),
        serde_json::to_string(&b2).unwrap()
    );
}

fn check_invert(seed: u64) {
    let mut r = Rng::new(seed);
    let d = fuzz::doc(&mut r);
    let a = fuzz::op(&mut r, &d);
    let mut x = d.clone();
    let inv = a.apply(&mut x).expect("generated edits apply");
    assert_eq!(
        inv,
        a.invert(&d).expect("invert"),
        "apply's inverse equals invert"
    );
    let back = apply(&x, &inv);
    assert_eq!(
        back,
        d,
        "inverse restores (seed {seed}) a: {}",
        serde_json::to_string(&a).unwrap()
    );
}

fn check_compose(seed: u64) {
    let mut r = Rng::new(seed);
    let d = fuzz::doc(&mut r);
    let a = fuzz::op(&mut r, &d);
    let da = apply(&d, &a);
    let b = fuzz::op(&mut r, &da);
    assert_eq!(
        apply(&d, &a.compose(&b)),
        apply(&da, &b),
        "compose (seed {seed})"
    );
}

/// TP1 also holds against composed edits (multi-part text ops, merged writes). Note that
/// `T(c, a∘b)` need not equal `T(T(c, a), b)` where inserts tie inside a deleted range: both
/// converge, so a client and the server must agree on the grouping (docs/OT.md).
fn check_tp1_composed(seed: u64) {
    let mut r = Rng::new(seed);
    let d = fuzz::doc(&mut r);
    let a = fuzz::op(&mut r, &d);
    let da = apply(&d, &a);
    let b = fuzz::op(&mut r, &da);
    let ab = a.compose(&b);
    let c = fuzz::op(&mut r, &d);
    let (ab2, c2) = ab.transform_x(&c, Side::Left);
    assert_eq!(
        apply(&apply(&d, &ab), &c2),
        apply(&apply(&d, &c), &ab2),
        "TP1 vs composed (seed {seed})"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn tp1_holds_for_every_pair(seed in any::<u64>()) {
        check_tp1(seed);
    }

    #[test]
    fn apply_then_invert_is_identity(seed in any::<u64>()) {
        check_invert(seed);
    }

    #[test]
    fn compose_equals_sequential_apply(seed in any::<u64>()) {
        check_compose(seed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]
    #[test]
    fn tp1_holds_against_composed_edits(seed in any::<u64>()) {
        check_tp1_composed(seed);
    }
}

/// Every pair of component kinds meets in TP1 many times: count them so a generator change
/// that silently stops producing a kind fails here.
#[test]
fn generator_covers_every_component_pair() {
    use std::collections::BTreeSet;
    let mut pairs = BTreeSet::new();
    let mut r = Rng::new(7);
    for _ in 0..20_000 {
        let d = fuzz::doc(&mut r);
        let a = fuzz::component(&mut r, &d);
        let b = fuzz::component(&mut r, &d);
        pairs.insert((a.name(), b.name()));
    }
    let kinds = [
        "set", "del", "ins", "mov", "add", "text", "split", "trim", "crop", "rotate", "adjust",
    ];
    for a in kinds {
        for b in kinds {
            assert!(
                pairs.contains(&(a, b)),
                "generator never produced {a} vs {b}"
            );
        }
    }
}

/// Regression seeds found by the property tests stay here.
#[test]
fn repro_seeds() {
    for seed in [0u64, 1, 2, 3] {
        check_tp1(seed);
        check_invert(seed);
    }
    let _ = Op::default();
}

fn random_text_op(r: &mut Rng, len: usize) -> montage_ot::TextOp {
    use montage_ot::TextPart;
    let mut parts = Vec::new();
    let mut left = len;
    for _ in 0..1 + r.below(4) {
        let keep = r.below(left.min(4) + 1);
        parts.push(TextPart::Retain(keep));
        left -= keep;
        if left > 0 && r.chance(0.5) {
            let n = 1 + r.below(left.min(3));
            parts.push(TextPart::Delete(n));
            left -= n;
        } else {
            parts.push(TextPart::Insert(r.word()));
        }
    }
    let mut op = montage_ot::TextOp::default();
    for p in parts {
        op.push(p);
    }
    op
}

/// TP1 and compose for multi-part text ops on longer strings.
#[test]
fn text_ops_converge_and_compose() {
    use montage_ot::{Component, path};
    for seed in 0..20_000u64 {
        let mut r = Rng::new(seed);
        let mut d = montage_ot::Value::new_document();
        let s: String = (0..r.below(12)).map(|_| r.word()).collect();
        Op::new(vec![Component::text_insert(path!["title"], 0, s.clone())])
            .apply(&mut d)
            .unwrap();
        let len = s.chars().count();
        let a = Op::new(vec![Component::Text {
            path: path!["title"],
            op: random_text_op(&mut r, len),
        }]);
        let b = Op::new(vec![Component::Text {
            path: path!["title"],
            op: random_text_op(&mut r, len),
        }]);
        let (a2, b2) = a.transform_x(&b, Side::Left);
        assert_eq!(
            apply(&apply(&d, &a), &b2),
            apply(&apply(&d, &b), &a2),
            "seed {seed}: {a:?} {b:?}"
        );
        let da = apply(&d, &a);
        let c = Op::new(vec![Component::Text {
            path: path!["title"],
            op: random_text_op(
                &mut r,
                da.get("title").unwrap().as_text().unwrap().len_chars(),
            ),
        }]);
        assert_eq!(
            apply(&d, &a.compose(&c)),
            apply(&da, &c),
            "compose seed {seed}"
        );
    }
}
