//! Rebasing an incoming edit past the versions it did not see.
//!
//! `Op::transform` is exact but allocates for every component pair, and under load a stale edit
//! meets many versions that touched unrelated parts of the document (other layers, other meta
//! keys). Two components whose paths part ways at two different object keys cannot affect each
//! other: every component's effect stays inside its path's subtree, except list operations
//! (`ins`, `del`, `mov`, `split`, `set` of an index) which shift their siblings — and siblings
//! part ways at list indices, not keys. Those pairs skip `transform`; a test below checks the
//! shortcut against the real transform.

use montage_ot::{Op, Seg, Side};

/// True when no component of `a` can be affected by any component of `b` (nor the reverse).
pub fn independent(a: &Op, b: &Op) -> bool {
    a.components().iter().all(|x| {
        b.components().iter().all(|y| {
            let (p, q) = (x.path().segs(), y.path().segs());
            // The first place the paths differ; a prefix relation means they overlap.
            matches!(
                p.iter().zip(q).find(|(s, t)| s != t),
                Some((Seg::Key(_), Seg::Key(_)))
            )
        })
    })
}

/// Versions behind from which an edit is rebased past their composition instead of one by one:
/// below it the per-version shortcut ([`independent`]) costs less than composing.
const COMPOSE_FROM: usize = 64;

/// `op` transformed past `history` in order (each already applied, ordered first).
///
/// An edit far behind (offline work) goes past the versions composed where composing is exact
/// (`Op::compose_range`, docs/OT.md §10.3: the result is structurally the one of transforming
/// past them one by one, which is what clients compute), so ten thousand keystrokes merged into
/// one text component cost one transform instead of ten thousand.
pub fn rebase<'a>(mut op: Op, history: impl IntoIterator<Item = &'a Op>) -> Op {
    let history: Vec<&Op> = history.into_iter().collect();
    if history.len() >= COMPOSE_FROM {
        let range = Op::compose_range(history.iter().copied());
        return op.transform(&range, Side::Right);
    }
    for h in history {
        if !independent(&op, h) {
            op = op.transform(h, Side::Right);
        }
    }
    op
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(v: serde_json::Value) -> Op {
        serde_json::from_value(v).unwrap()
    }

    fn samples() -> Vec<Op> {
        let layer = json!({"id":"l","kind":"text","text":"t","x":0,"y":0,"size":1,"color":"#000"});
        [
            json!([{"op":"set","path":["meta","a"],"value":1}]),
            json!([{"op":"set","path":["meta","b"],"value":2}]),
            json!([{"op":"del","path":["meta","a"]}]),
            json!([{"op":"set","path":["meta"],"value":{}}]),
            json!([{"op":"text","path":["title"],"pos":0,"ins":"x"}]),
            json!([{"op":"text","path":["title"],"pos":0,"del":1}]),
            json!([{"op":"ins","path":["canvas","layers",0],"value":layer}]),
            json!([{"op":"del","path":["canvas","layers",1]}]),
            json!([{"op":"mov","path":["canvas","layers",0],"to":2}]),
            json!([{"op":"set","path":["canvas","layers",1,"x"],"value":5}]),
            json!([{"op":"add","path":["canvas","layers",0,"x"],"value":5}]),
            json!([{"op":"rotate","path":["canvas","layers",0],"by":90}]),
            json!([{"op":"crop","path":["canvas","layers",0],"rect":{"x":0,"y":0,"w":10,"h":20}}]),
            json!([{"op":"set","path":["canvas","layers",0,"rotation"],"value":45}]),
            json!([{"op":"add","path":["canvas","width"],"value":1}]),
            json!([{"op":"split","path":["timeline","tracks",0,"clips",0],"at":1.0,"media":1.0,"id":"c2"}]),
            json!([{"op":"trim","path":["timeline","tracks",0,"clips",1],"start":0.5}]),
            json!([{"op":"set","path":["timeline","tracks",0,"clips",1,"in"],"value":0.25}]),
            json!([{"op":"ins","path":["timeline","tracks",0],"value":{"id":"t","kind":"audio","clips":[]}}]),
            json!([{"op":"set","path":["assets","a1"],"value":{"kind":"image"}}]),
            json!([{"op":"set","path":["title"],"value":"new"}]),
        ]
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect()
    }

    #[test]
    fn the_shortcut_agrees_with_transform() {
        let ops = samples();
        assert!(
            ops.len() >= 20,
            "some samples failed to decode: {}",
            ops.len()
        );
        let mut skipped = 0;
        for a in &ops {
            for b in &ops {
                if independent(a, b) {
                    skipped += 1;
                    assert_eq!(&a.transform(b, Side::Right), a, "{a:?} past {b:?}");
                    assert_eq!(&a.transform(b, Side::Left), a, "{a:?} past {b:?}");
                }
            }
        }
        assert!(skipped > 50, "the shortcut never applies ({skipped})");
    }

    /// Far behind, the edit goes past the composed versions: the same result as one by one
    /// (the engine's law is checked at length in crates/ot/tests/it/ranges.rs).
    #[test]
    fn far_behind_the_composed_versions_rebase_like_one_by_one() {
        let ops = samples();
        for (i, x) in ops.iter().enumerate() {
            // Every sample, and a typing run that merges, in a long history.
            let typing: Vec<Op> = (0..100)
                .map(|k| op(json!([{"op":"text","path":["title"],"pos":k,"ins":"x"}])))
                .collect();
            let mut history: Vec<&Op> = ops.iter().filter(|o| *o != x).collect();
            history.extend(&typing);
            let by = i % history.len();
            history.rotate_left(by);
            assert!(history.len() >= COMPOSE_FROM);
            let one_by_one = history
                .iter()
                .fold(x.clone(), |x, h| x.transform(h, Side::Right));
            assert_eq!(
                rebase(x.clone(), history.iter().copied()),
                one_by_one,
                "{x:?}"
            );
        }
    }

    #[test]
    fn overlapping_paths_are_not_independent() {
        let a = op(json!([{"op":"set","path":["canvas","layers",1,"x"],"value":5}]));
        let b = op(json!([{"op":"ins","path":["canvas","layers",0],"value":1}]));
        assert!(!independent(&a, &b), "list siblings shift");
        let c = op(json!([{"op":"set","path":["canvas"],"value":{}}]));
        assert!(!independent(&a, &c), "a prefix overlaps");
        let d = op(json!([{"op":"set","path":["meta","k"],"value":1}]));
        assert!(independent(&a, &d));
        assert_eq!(
            rebase(a.clone(), [&b]).components()[0].path().segs()[2],
            Seg::Index(2)
        );
    }
}
