//! Ranges (docs/OT.md §10.3): the edits of consecutive versions composed into one for a slow
//! client must rebase that client's own edit exactly as the server rebases it, one version at a
//! time.

use montage_ot::{Op, Side};

use crate::fuzz::{self, Rng, apply};

/// A run of 2–6 consecutive edits on `d`, most of them a follow-up on the path the previous
/// one ended on (a slider drag, a typing run), so that `compose_range` has merges to make.
/// Returns the run and the document after it.
fn run(r: &mut Rng, d: &montage_ot::Value) -> (Vec<Op>, montage_ot::Value) {
    let mut cur = d.clone();
    let mut ops: Vec<Op> = Vec::new();
    for _ in 0..2 + r.below(5) {
        let last = ops.last().and_then(|o| o.components().last().cloned());
        let mut next = None;
        if let Some(last) = last.filter(|_| r.chance(0.7)) {
            for _ in 0..200 {
                let c = fuzz::component(r, &cur);
                if c.path() == last.path() {
                    next = Some(Op::new(vec![c]));
                    break;
                }
            }
        }
        let op = next.unwrap_or_else(|| fuzz::op(r, &cur));
        cur = apply(&cur, &op);
        ops.push(op);
    }
    (ops, cur)
}

/// Rebasing a concurrent edit past a composed range is exactly rebasing it past the range's
/// edits one by one (what the server does), and the client's side converges with it.
fn check_range_exact(seed: u64) -> usize {
    let mut r = Rng::new(seed);
    let d = fuzz::doc(&mut r);
    let (ops, after) = run(&mut r, &d);
    let range = Op::compose_range(&ops);
    assert_eq!(
        apply(&d, &range),
        after,
        "a range applies as its edits (seed {seed})"
    );
    let x = fuzz::op(&mut r, &d);
    let one_by_one = ops
        .iter()
        .fold(x.clone(), |x, o| x.transform(o, Side::Right));
    let (range2, x2) = range.transform_x(&x, Side::Left);
    // The server's side: an edit far behind is rebased past the composed versions.
    assert_eq!(
        x.transform(&range, Side::Right),
        one_by_one,
        "the server's rebase past the range differs (seed {seed})"
    );
    assert_eq!(
        x2,
        one_by_one,
        "rebased past the range ≠ past its edits one by one (seed {seed})\n x: {}\n edits: {}\n range: {}",
        serde_json::to_string(&x).unwrap(),
        serde_json::to_string(&ops).unwrap(),
        serde_json::to_string(&range).unwrap(),
    );
    assert_eq!(
        apply(&apply(&d, &x), &range2),
        apply(&after, &one_by_one),
        "the client and the server converge (seed {seed})"
    );
    ops.iter().map(Op::len).sum::<usize>() - range.len()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 3000, ..Default::default() })]
    #[test]
    fn a_range_rebases_like_its_edits_one_by_one(seed in proptest::prelude::any::<u64>()) {
        check_range_exact(seed);
    }
}

/// The runs above do merge (slider steps, typing runs), so the property is not vacuous.
#[test]
fn ranges_merge_what_they_can() {
    let merged: usize = (0..3_000).map(check_range_exact).sum();
    assert!(merged > 1_000, "only {merged} merges in 3,000 runs");
}
