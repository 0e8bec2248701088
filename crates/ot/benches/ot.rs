//! Benchmarks of the OT engine: `cargo bench -p montage-ot`. Figures go in docs/BENCHMARKS.md.

#![allow(dead_code)]

#[path = "../tests/it/fuzz.rs"]
mod fuzz;
#[path = "../tests/it/sim.rs"]
mod sim;
#[path = "../tests/it/traces.rs"]
mod traces;

use std::sync::LazyLock;

use divan::Bencher;
use montage_ot::{Component, Op, Side, Value, path};

fn main() {
    divan::main();
}

static PAPER: LazyLock<serde_json::Value> = LazyLock::new(|| traces::load("automerge-paper"));
static PAPER_OPS: LazyLock<Vec<Op>> = LazyLock::new(|| {
    PAPER["txns"]
        .as_array()
        .expect("txns")
        .iter()
        .map(traces::txn_op)
        .collect()
});
static FRIENDS: LazyLock<serde_json::Value> = LazyLock::new(|| traces::load("friendsforever"));

/// The automerge-paper trace (259,778 edits) applied to the title of a Montage document, each
/// edit validated and its inverse computed, as the server does.
#[divan::bench(sample_count = 10)]
fn apply_automerge_paper(b: Bencher) {
    let ops = &*PAPER_OPS;
    b.with_inputs(Value::new_document)
        .bench_local_values(|mut doc| {
            for op in ops {
                op.apply(&mut doc).expect("applies");
            }
            doc
        });
}

/// The trace's patches: (position, characters deleted, text inserted).
fn paper_patches() -> Vec<(usize, usize, &'static str)> {
    PAPER["txns"]
        .as_array()
        .expect("txns")
        .iter()
        .flat_map(|t| t["patches"].as_array().expect("patches"))
        .map(|p| {
            (
                p[0].as_u64().unwrap_or(0) as usize,
                p[1].as_u64().unwrap_or(0) as usize,
                p[2].as_str().unwrap_or(""),
            )
        })
        .collect()
}

/// The anchor, in the same run: diamond-types 1.0 (crates.io) applying the same patches as
/// local edits of one agent (its own history kept, as the server keeps ops).
#[divan::bench(sample_count = 10)]
fn apply_automerge_paper_diamond_types(b: Bencher) {
    let patches = paper_patches();
    b.bench_local(|| {
        let mut doc = diamond_types::list::ListCRDT::new();
        let agent = doc.get_or_create_agent_id("paper");
        for &(pos, del, ins) in &patches {
            if del > 0 {
                doc.delete_without_content(agent, pos..pos + del);
            }
            if !ins.is_empty() {
                doc.insert(agent, pos, ins);
            }
        }
        doc
    });
}

/// The same edits into a bare rope: the floor for any engine that keeps text in one.
#[divan::bench(sample_count = 10)]
fn apply_automerge_paper_bare_rope(b: Bencher) {
    let patches = paper_patches();
    b.with_inputs(|| jumprope::JumpRope::new_from_seed(1))
        .bench_local_values(|mut rope| {
            for &(pos, del, ins) in &patches {
                if del > 0 {
                    rope.remove(pos..pos + del);
                }
                if !ins.is_empty() {
                    rope.insert(pos, ins);
                }
            }
            rope
        });
}

/// friendsforever (two people typing at once, 26,078 edits) through the reference client/server
/// simulator: two clients and the server each transform and apply every edit.
#[divan::bench(sample_count = 10)]
fn replay_friendsforever_all_sites(b: Bencher) {
    let t = &*FRIENDS;
    b.bench_local(|| traces::replay_concurrent(t, 0, false));
}

/// The server's share of the same replay: each edit as it arrived (at the base its sender had
/// seen) transformed against the versions since and applied.
#[divan::bench(sample_count = 10)]
fn replay_friendsforever_server(b: Bencher) {
    let received = traces::replay_concurrent(&FRIENDS, 0, true).server.received;
    b.bench_local(|| {
        let mut server = sim::Server::new(Value::new_document());
        for (base, op) in &received {
            server.receive(sim::Submit {
                base: *base,
                op: op.clone(),
            });
        }
        server.doc
    });
}

/// An edit made at an old base, transformed against 1,000 or 10,000 versions of typing history
/// one version at a time (what the server does for a client that was behind).
#[divan::bench(args = [1_000, 10_000], sample_count = 10)]
fn transform_against_history(b: Bencher, n: usize) {
    let history = &PAPER_OPS[..n];
    let edit = Op::new(vec![Component::text_insert(path!["title"], 0, "x")]);
    b.bench_local(|| {
        let mut e = edit.clone();
        for h in history {
            e = e.transform(h, Side::Right);
        }
        e
    });
}

/// An edit on a layer, transformed against 10,000 versions of other people's layer edits
/// (moves, adjustments, inserts): path transformation rather than text.
#[divan::bench(sample_count = 10)]
fn transform_against_layer_history(b: Bencher) {
    let mut r = fuzz::Rng::new(42);
    let mut doc = fuzz::doc(&mut r);
    let edit = Op::new(vec![Component::set(path!["meta", "n"], 3.0)]);
    let mut history = Vec::with_capacity(10_000);
    while history.len() < 10_000 {
        let op = fuzz::op(&mut r, &doc);
        op.apply(&mut doc).expect("generated edits apply");
        history.push(op);
    }
    b.bench_local(|| {
        let mut e = edit.clone();
        for h in &history {
            e = e.transform(h, Side::Right);
        }
        e
    });
}

/// Reconciling 10,000 offline edits with 10,000 edits made meanwhile on the server: compose
/// each side into one edit (linear for text), then transform once.
#[divan::bench(sample_count = 10)]
fn reconcile_10k_offline_against_10k_server(b: Bencher) {
    let (base, server, offline) = reconcile_inputs();
    b.bench_local(|| {
        let s = Op::compose_all(&server);
        let o = Op::compose_all(&offline);
        let (o2, s2) = o.transform_x(&s, Side::Right);
        (o2, s2, &base)
    });
}

/// The base document (the paper after 20,000 edits), the next 10,000 trace edits as the
/// server's, and 10,000 offline keystrokes typed into a new paragraph with some backspaces.
pub fn reconcile_inputs() -> (Value, Vec<Op>, Vec<Op>) {
    let mut base = Value::new_document();
    for op in &PAPER_OPS[..20_000] {
        op.apply(&mut base).expect("applies");
    }
    let server = PAPER_OPS[20_000..30_000].to_vec();
    let len = base
        .get("title")
        .and_then(Value::as_text)
        .map_or(0, |t| t.len_chars());
    let mut r = fuzz::Rng::new(7);
    let mut pos = len / 2;
    let mut offline = Vec::with_capacity(10_000);
    while offline.len() < 10_000 {
        if pos > len / 2 && r.chance(0.1) {
            pos -= 1;
            offline.push(Op::new(vec![Component::text_delete(
                path!["title"],
                pos,
                1,
            )]));
        } else {
            offline.push(Op::new(vec![Component::text_insert(
                path!["title"],
                pos,
                "q",
            )]));
            pos += 1;
        }
    }
    (base, server, offline)
}

/// 10,000 versions of typing made while someone was offline, and that person's edit: `n`
/// one-character inserts at scattered places of the base document, one component each.
fn offline_edit_inputs(n: usize) -> (Vec<Op>, Op) {
    let (base, server, _) = reconcile_inputs();
    let len = base
        .get("title")
        .and_then(Value::as_text)
        .map_or(0, |t| t.len_chars());
    let mut r = fuzz::Rng::new(11);
    let edit = Op::new(
        (0..n)
            .map(|i| Component::text_insert(path!["title"], r.below(len + i + 1), "q"))
            .collect(),
    );
    (server, edit)
}

/// That offline edit rebased past the 10,000 versions one at a time (what the server did).
#[divan::bench(args = [2_000], sample_count = 3)]
fn rebase_offline_edit_one_version_at_a_time(b: Bencher, n: usize) {
    let (server, edit) = offline_edit_inputs(n);
    b.bench_local(|| {
        let mut e = edit.clone();
        for h in &server {
            e = e.transform(h, Side::Right);
        }
        e
    });
}

/// The same past the versions composed where that is exact (`Op::compose_range`; the server
/// does this from 64 versions behind): the composing is part of the time.
#[divan::bench(args = [2_000, 10_000], sample_count = 10)]
fn rebase_offline_edit_past_the_composed_range(b: Bencher, n: usize) {
    let (server, edit) = offline_edit_inputs(n);
    b.bench_local(|| edit.transform(&Op::compose_range(&server), Side::Right));
}

/// Compressing a second's worth of typing and a slider drag.
#[divan::bench(sample_count = 20)]
fn compress_slider_drag(b: Bencher) {
    let ops: Vec<Op> = (0..600)
        .map(|i| {
            Op::new(vec![Component::Adjust {
                path: path!["canvas", "layers", 0],
                param: "brightness".into(),
                value: (i as f64 / 600.0) - 0.5,
            }])
        })
        .collect();
    let delta = montage_ot::MediaDelta::new(0, ops);
    b.bench_local(|| delta.compress());
}
