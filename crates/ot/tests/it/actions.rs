//! The fuzz targets' checks (`montage_ot::fuzzing`, shared with `fuzz/`) as ordinary tests: a
//! seeded loop over inputs made from fixed byte seeds, then every file of the committed corpus.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use arbitrary::Unstructured;
use montage_ot::fuzzing::{self, Action};
use montage_ot::{Op, Side, Value};

use crate::fuzz::{Rng, apply};

type Check = fn(&mut Unstructured) -> arbitrary::Result<bool>;

/// Input bytes for one seed, of varied lengths (what libFuzzer feeds is mostly short).
fn input(seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed);
    let len = 32 + r.below(1024);
    (0..len).map(|_| r.next() as u8).collect()
}

/// Runs `check` on `data`, naming `what` if it panics; returns whether the law was checked.
fn run(check: Check, data: &[u8], what: &dyn std::fmt::Display) -> bool {
    match catch_unwind(AssertUnwindSafe(|| check(&mut Unstructured::new(data)))) {
        Ok(r) => r.unwrap_or(false),
        Err(e) => {
            eprintln!("failed on {what}; replay with `cargo fuzz run <target> <file>`");
            resume_unwind(e)
        }
    }
}

/// Runs `check` for `seeds` seeds; at least `min_checked` of them must reach the law, so the
/// test fails if the generator stops producing usable inputs.
fn seeded(check: Check, seeds: u64, min_checked: u64) {
    let checked = (0..seeds)
        .filter(|&s| run(check, &input(s), &format_args!("seed {s}")))
        .count() as u64;
    assert!(
        checked >= min_checked,
        "only {checked} of {seeds} seeds reached the check"
    );
}

fn replay(check: Check, target: &str) {
    let files = fuzzing::corpus(target);
    let checked = files
        .iter()
        .filter(|(p, data)| run(check, data, &p.display()))
        .count();
    assert!(
        checked * 2 >= files.len(),
        "most of the {target} corpus should reach the check ({checked} of {})",
        files.len()
    );
}

#[test]
fn apply_seeded() {
    seeded(fuzzing::check_apply, 3_000, 1_500);
}

#[test]
fn apply_corpus() {
    replay(fuzzing::check_apply, "apply");
}

#[test]
fn transform_seeded() {
    seeded(fuzzing::check_transform, 3_000, 1_500);
}

#[test]
fn transform_corpus() {
    replay(fuzzing::check_transform, "transform");
}

#[test]
fn rebase_seeded() {
    seeded(fuzzing::check_rebase, 3_000, 1_500);
}

#[test]
fn rebase_corpus() {
    replay(fuzzing::check_rebase, "rebase");
}

fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 1)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Arr(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Obj(m) => stack.extend(m.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// Issue #15 (1): edits within the frame limits (a 64-segment path, a 124-level value) build a
/// document ~190 levels deep. The engine applies, transforms, inverts, serializes and drops it
/// without running out of stack; that the JSON parser's 128-level default can't read it back is
/// the snapshot reader's business (DESIGN §9.2's depth cap applies before the engine).
#[test]
fn the_deepest_documents_the_wire_allows_stay_workable() {
    let mut d = Value::new_document();
    for a in [
        Action::Deep { levels: 124 },
        Action::DeepSet {
            at: 255,
            levels: 124,
        },
    ] {
        let c = a.component(&d).expect("the action means something here");
        let op = Op::new(vec![c]);
        let json = op.to_json().to_string();
        assert!(
            serde_json::from_str::<serde_json::Value>(&json).is_ok(),
            "the edit fits the parser's limit on its own"
        );
        let inv = op.apply(&mut d).expect("a deep edit applies");
        let mut back = d.clone();
        inv.apply(&mut back).expect("its inverse applies");
    }
    let deep = depth(&d);
    assert!(deep > 180, "the document is {deep} levels deep");
    let text = serde_json::to_string(&d).expect("it serializes");
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "serde_json's default limit refuses it (what the snapshot reader must not use)"
    );
    // Concurrent edits at both ends of the chain transform and converge.
    let one = |a: Action| Op::new(vec![a.component(&d).expect("meaningful")]);
    let reset = one(Action::Deep { levels: 3 });
    let deeper = one(Action::DeepSet {
        at: 255,
        levels: 124,
    });
    let (reset2, deeper2) = reset.transform_x(&deeper, Side::Left);
    assert_eq!(
        apply(&apply(&d, &reset), &deeper2),
        apply(&apply(&d, &deeper), &reset2)
    );
}
