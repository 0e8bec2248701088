use std::collections::HashMap;

use serde_json::json;

use super::*;

fn meta() -> SessionMeta {
    SessionMeta {
        owner: "alice".into(),
        link_role: montage_protocol::Role::Viewer,
        roles: HashMap::new(),
        title: None,
        encrypted: false,
        key_epoch: 0,
    }
}

fn config() -> CoreConfig {
    CoreConfig {
        history_keep: 4,
        snapshot_every_ops: 3,
        max_doc_bytes: 8 << 20,
        max_transform_work: 1_000,
    }
}

fn new_core() -> SessionCore<&'static str> {
    let loaded = Loaded {
        meta: meta(),
        snapshot: None,
        ops: Vec::new(),
        snapshot_time: None,
    };
    SessionCore::load(Arc::from("s"), loaded, config()).unwrap()
}

fn op(v: serde_json::Value) -> Op {
    serde_json::from_value(v).unwrap()
}

fn edit(user: &str, seq: u64, base: u64, text: &str) -> Edit {
    Edit {
        user: Arc::from(user),
        client: Arc::from("c"),
        seq,
        base,
        ops: op(json!([{"op": "text", "path": ["title"], "pos": 0, "ins": text}])),
        now_ms: 1_000,
    }
}

fn title<A>(c: &SessionCore<A>) -> String {
    let doc = serde_json::to_value(&c.doc).unwrap();
    doc["title"].as_str().unwrap().to_owned()
}

#[test]
fn an_edit_is_rebased_past_later_versions_and_written_once_applied() {
    let mut c = new_core();
    let a = c.apply(edit("alice", 1, 0, "world"), &[]).unwrap();
    assert_eq!(a.version, 1);
    // Bob typed at the start too, based on version 0: the earlier version stands first.
    let b = c.apply(edit("bob", 1, 0, "hello "), &[]).unwrap();
    assert_eq!((b.version, title(&c)), (2, "worldhello ".to_owned()));
    let Write::Op { op, .. } = &b.write else {
        panic!("{:?}", b.write)
    };
    assert_eq!((op.version, op.user.as_str(), op.seq), (2, "bob", 1));
    let frame: serde_json::Value = serde_json::from_str(&b.broadcast).unwrap();
    assert_eq!(frame["type"], "op");
    assert_eq!(frame["ops"][0]["pos"], 5, "transformed past alice's insert");
    assert!(!c.settled());
}

#[test]
fn a_dry_run_checks_an_edit_without_changing_anything() {
    let mut c = new_core();
    c.apply(edit("alice", 1, 0, "a"), &[]).unwrap();
    assert!(c.try_apply(0, edit("bob", 1, 0, "b").ops, &[]).is_ok());
    let bad = op(json!([{"op": "del", "path": ["canvas", "layers", 3]}]));
    assert_eq!(
        c.try_apply(1, bad, &[]).unwrap_err().code,
        ErrorCode::BadRequest
    );
    assert_eq!((c.version, title(&c)), (1, "a".to_owned()));
}

#[test]
fn bases_ahead_or_too_old_are_refused_and_nothing_changes() {
    let mut c = new_core();
    let r = c.apply(edit("alice", 1, 1, "x"), &[]).unwrap_err();
    assert_eq!(r.code, ErrorCode::BadRequest);
    c.version = MAX_REBASE + 1;
    let r = c.apply(edit("alice", 1, 0, "x"), &[]).unwrap_err();
    assert_eq!(r.code, ErrorCode::Conflict);
    assert_eq!(title(&c), "");
}

#[test]
fn an_edit_that_breaks_the_document_shape_is_a_bad_request() {
    let mut c = new_core();
    let bad = Edit {
        ops: op(json!([{"op": "set", "path": ["canvas", "width"], "value": "wide"}])),
        ..edit("alice", 1, 0, "")
    };
    let r = c.apply(bad, &[]).unwrap_err();
    assert_eq!((r.code, r.broken), (ErrorCode::BadRequest, false));
    assert_eq!(c.version, 0);
}

#[test]
fn replies_wait_for_their_version_to_be_durable_in_order() {
    let mut c = new_core();
    assert_eq!(c.when_committed(0, "joined"), Some("joined"));
    let v1 = c.apply(edit("alice", 1, 0, "a"), &[]).unwrap().version;
    assert_eq!(c.when_committed(v1, "ack 1"), None);
    let v2 = c.apply(edit("alice", 2, 1, "b"), &[]).unwrap().version;
    assert_eq!(c.when_committed(v2, "ack 2"), None);
    // A reply about the durable head still queues behind the pending acks.
    assert_eq!(c.when_committed(0, "state"), None);
    assert_eq!(c.committed_through(v1), vec![(1, "ack 1")]);
    assert_eq!(c.committed_through(v2), vec![(2, "ack 2"), (0, "state")]);
    assert!(c.settled() && c.idle());
}

#[test]
fn resends_are_found_in_memory_and_the_store_is_asked_only_when_it_must() {
    let mut c = new_core();
    let key: SeqKey = (Arc::from("alice"), Arc::from("c"));
    assert_eq!(c.check_seq(&key, 1), SeqCheck::NeedStoreMax);
    c.note_store_max(&key, None);
    assert_eq!(c.check_seq(&key, 1), SeqCheck::New);
    c.apply(edit("alice", 1, 0, "a"), &[]).unwrap();
    assert_eq!(c.check_seq(&key, 1), SeqCheck::Applied(1));
    assert_eq!(c.check_seq(&key, 2), SeqCheck::New);
    // Another user's client of the same name is another client.
    let bob: SeqKey = (Arc::from("bob"), Arc::from("c"));
    assert_eq!(c.check_seq(&bob, 1), SeqCheck::NeedStoreMax);
    c.note_store_max(&bob, Some(7));
    assert_eq!(c.check_seq(&bob, 5), SeqCheck::NeedStoreFind);
    assert_eq!(c.check_seq(&bob, 8), SeqCheck::New);
}

#[test]
fn durable_history_past_the_memory_budget_is_read_from_the_store() {
    let mut c = new_core();
    for seq in 1..=6 {
        let a = c.apply(edit("alice", seq, seq - 1, "x"), &[]).unwrap();
        c.committed_through(a.version);
    }
    assert_eq!((c.history.len(), c.hist_start), (4, 3));
    assert_eq!(c.missing_history(0), Some((0, 2)));
    assert_eq!(c.missing_history(2), None);
    let e = c.entries_in_memory(4);
    assert_eq!(e.iter().map(|e| e.version).collect::<Vec<_>>(), vec![5, 6]);
    // An edit based on version 1 needs version 2 from the store, then the rest from memory.
    let older = [op(
        json!([{"op": "text", "path": ["title"], "pos": 0, "ins": "x"}]),
    )];
    let b = c.apply(edit("bob", 1, 1, "B"), &older).unwrap();
    let frame: serde_json::Value = serde_json::from_str(&b.broadcast).unwrap();
    assert_eq!(frame["ops"][0]["pos"], 5);
}

#[test]
fn snapshots_are_due_by_clock_or_by_count() {
    let mut c = new_core();
    assert!(c.snapshot_if_due(true).is_none(), "nothing moved");
    c.apply(edit("alice", 1, 0, "a"), &[]).unwrap();
    assert!(c.snapshot_if_due(false).is_none());
    assert_eq!(c.snapshot_if_due(true).map(|s| s.version), Some(1));
    c.apply(edit("alice", 2, 1, "b"), &[]).unwrap();
    c.apply(edit("alice", 3, 2, "c"), &[]).unwrap();
    let s = c.snapshot_if_due(false).unwrap();
    assert_eq!(s.version, 3);
    assert!(s.state.contains("\"cba\""));
    c.snapshot_written(3);
    assert!(c.snapshot_if_moved().is_none());
}

#[test]
fn a_rollback_undoes_unconfirmed_versions_and_drops_their_acks() {
    let mut c = new_core();
    let a = c.apply(edit("alice", 1, 0, "a"), &[]).unwrap();
    c.committed_through(1);
    let b = c.apply(edit("alice", 2, 1, "b"), &[]).unwrap();
    assert_eq!(c.when_committed(b.version, "ack 2"), None);
    assert_eq!(c.when_committed(b.version, "joined"), None);
    let left = c.roll_back([&b.inverse], |a| a.starts_with("ack")).unwrap();
    assert_eq!(left, vec![(1, "joined")]);
    assert_eq!((c.version, title(&c)), (1, "a".to_owned()));
    let key: SeqKey = (Arc::from("alice"), Arc::from("c"));
    assert_eq!(c.check_seq(&key, 2), SeqCheck::NeedStoreMax);
    // The other node's version 2 arrives and applies.
    let theirs = StoredOp {
        version: 2,
        user: "bob".into(),
        client: "c".into(),
        seq: 1,
        ops: r#"[{"op":"text","path":["title"],"pos":1,"ins":"Z"}]"#.into(),
        time: Some(7),
    };
    c.apply_committed(&theirs).unwrap();
    assert_eq!(
        (c.version, c.committed(), title(&c)),
        (2, 2, "aZ".to_owned())
    );
    assert!(c.apply_committed(&theirs).is_err(), "version 2 again");
    let _ = a;
}

/// `{"a":{"a":…1…}}`, `levels` objects deep.
fn nested(levels: usize) -> serde_json::Value {
    (0..levels).fold(json!(1), |v, _| json!({ "a": v }))
}

fn set_meta(seq: u64, base: u64, key: &str, value: serde_json::Value) -> Edit {
    Edit {
        ops: op(json!([{"op": "set", "path": ["meta", key], "value": value}])),
        ..edit("alice", seq, base, "")
    }
}

#[test]
fn an_edit_past_the_depth_cap_is_too_large_and_changes_nothing() {
    let mut c = new_core();
    // meta.k is 2 deep: a value of 62 levels reaches 64, one more passes it.
    c.apply(set_meta(1, 0, "k", nested(MAX_DOC_DEPTH - 2)), &[])
        .unwrap();
    let r = c
        .apply(set_meta(2, 1, "k", nested(MAX_DOC_DEPTH - 1)), &[])
        .unwrap_err();
    assert_eq!((r.code, r.broken), (ErrorCode::TooLarge, false));
    assert_eq!(c.version, 1);
    assert_eq!(c.doc.depth(), MAX_DOC_DEPTH);
    // Deep paths count too, not only deep values.
    let path: Vec<_> = std::iter::once(json!("meta"))
        .chain(std::iter::repeat_n(json!("a"), 63))
        .collect();
    let deep = Edit {
        ops: op(json!([{"op": "set", "path": path, "value": {"x": 1}}])),
        ..edit("alice", 3, 1, "")
    };
    assert_eq!(c.apply(deep, &[]).unwrap_err().code, ErrorCode::TooLarge);
}

#[test]
fn an_edit_that_would_pass_the_size_cap_is_refused_and_undone() {
    let mut c = new_core();
    c.config.max_doc_bytes = json_len(&c.doc) + 1_000;
    c.apply(set_meta(1, 0, "a", json!("x".repeat(600))), &[])
        .unwrap();
    let before = serde_json::to_string(&c.doc).unwrap();
    let r = c
        .apply(set_meta(2, 1, "b", json!("y".repeat(600))), &[])
        .unwrap_err();
    assert_eq!(r.code, ErrorCode::TooLarge);
    assert_eq!(serde_json::to_string(&c.doc).unwrap(), before);
    assert_eq!((c.version, c.history.len()), (1, 1));
    // Replacing the big value with a small one shrinks the document: room again.
    c.apply(set_meta(3, 1, "a", json!("x")), &[]).unwrap();
    c.apply(set_meta(4, 2, "b", json!("y".repeat(600))), &[])
        .unwrap();
    let drift = c.doc_bytes().abs_diff(json_len(&c.doc));
    assert!(drift < 32, "the estimate follows the edits ({drift})");
    // A suggestion is checked the same way.
    let big = set_meta(5, 3, "c", json!("z".repeat(600))).ops;
    assert_eq!(
        c.try_apply(3, big, &[]).unwrap_err().code,
        ErrorCode::TooLarge
    );
}

#[test]
fn a_stale_edit_past_the_transform_budget_is_a_conflict_carrying_the_head() {
    let mut c = new_core();
    c.config.history_keep = 100;
    for seq in 1..=20 {
        let a = c.apply(edit("bob", seq, seq - 1, "b"), &[]).unwrap();
        c.committed_through(a.version);
    }
    // 60 components × 20 versions behind = 1,200 pairs, past the budget of 1,000.
    let many: Vec<_> = (0..60)
        .map(|i| json!({"op": "set", "path": ["meta", format!("k{i}")], "value": i}))
        .collect();
    let stale = Edit {
        ops: op(json!(many)),
        ..edit("alice", 1, 0, "")
    };
    assert_eq!(c.transform_work(0, &stale.ops, None), 1_200);
    let r = c.apply(stale, &[]).unwrap_err();
    assert_eq!((r.code, r.version), (ErrorCode::Conflict, Some(20)));
    assert_eq!(c.version, 20);
    // The same edit rebased by its client onto the head is fine.
    let fresh = Edit {
        ops: op(json!(many)),
        ..edit("alice", 1, 20, "")
    };
    assert_eq!(c.apply(fresh, &[]).unwrap().version, 21);
    // Versions only the store holds count before they are read.
    c.config.history_keep = 1;
    c.committed_through(21);
    assert_eq!(c.missing_history(0), Some((0, 20)));
    // 20 versions unread (one each, at least) and version 21's 60 components.
    assert_eq!(c.transform_work(0, &op(json!(many)), None), 60 * (20 + 60));
}

#[test]
fn a_session_holding_a_document_deeper_than_the_cap_still_loads() {
    // What an older server let through: a 64-segment path holding a 124-level value.
    let mut doc = serde_json::to_value(Value::new_document()).unwrap();
    doc["meta"]["deep"] = nested(186);
    let loaded = Loaded {
        meta: meta(),
        snapshot: Some(Snapshot {
            version: 1,
            state: serde_json::to_string(&doc).unwrap(),
        }),
        ops: vec![StoredOp {
            version: 2,
            user: "alice".into(),
            client: "c".into(),
            seq: 1,
            ops: r#"[{"op":"set","path":["title"],"value":"t"}]"#.into(),
            time: None,
        }],
        snapshot_time: None,
    };
    let mut c: SessionCore<()> = SessionCore::load(Arc::from("s"), loaded, config()).unwrap();
    assert_eq!(
        (c.version, c.doc.depth(), title(&c)),
        (2, 188, "t".to_owned())
    );
    // It stays editable where edits stay within the cap, and its snapshot reads back.
    c.apply(edit("alice", 2, 2, "x"), &[]).unwrap();
    let s = c.snapshot_if_moved().unwrap();
    assert_eq!(Value::from_json_str(&s.state).unwrap(), c.doc);
}

#[test]
fn loading_replays_the_snapshot_and_the_ops_after_it() {
    let loaded = Loaded {
        meta: meta(),
        snapshot: Some(Snapshot {
            version: 2,
            state: serde_json::to_string(&Value::new_document()).unwrap(),
        }),
        ops: vec![StoredOp {
            version: 3,
            user: "alice".into(),
            client: "c".into(),
            seq: 1,
            ops: r#"[{"op":"set","path":["title"],"value":"t"}]"#.into(),
            time: None,
        }],
        snapshot_time: None,
    };
    let c: SessionCore<()> = SessionCore::load(Arc::from("s"), loaded.clone(), config()).unwrap();
    assert_eq!((c.version, c.committed(), c.hist_start), (3, 3, 3));
    assert_eq!(title(&c), "t");
    let mut gap = loaded;
    gap.ops[0].version = 4;
    let e = SessionCore::<()>::load(Arc::from("s"), gap, config()).unwrap_err();
    assert!(e.contains("follows"), "{e}");
}

/// Commit times never go back within a session, whatever the clock did, and travel with the
/// version into the store and the in-memory history; another node's time is taken as it is.
#[test]
fn commit_times_are_monotonic_per_session() {
    let mut c = new_core();
    let at = |seq, base, now_ms| Edit {
        now_ms,
        ..edit("alice", seq, base, "x")
    };
    let times: Vec<Option<i64>> = [(1, 0, 5_000), (2, 1, 4_000), (3, 2, 6_000)]
        .into_iter()
        .map(|(seq, base, now)| {
            let a = c.apply(at(seq, base, now), &[]).unwrap();
            let Write::Op { op, .. } = a.write else {
                panic!("an edit writes an op")
            };
            op.time
        })
        .collect();
    assert_eq!(times, [Some(5_000), Some(5_000), Some(6_000)]);
    let entries: Vec<_> = c.entries_in_memory(0).iter().map(|e| e.time).collect();
    assert_eq!(entries, times);

    // Loaded from a snapshot with no op after it, the snapshot version's time is the floor
    // (the clock stepped back across the restart).
    let loaded = Loaded {
        meta: meta(),
        snapshot: Some(Snapshot {
            version: 3,
            state: serde_json::to_string(&c.doc).unwrap(),
        }),
        ops: Vec::new(),
        snapshot_time: Some(6_000),
    };
    let mut c: SessionCore<&'static str> =
        SessionCore::load(Arc::from("s"), loaded, config()).unwrap();
    let a = c.apply(at(4, 3, 1_000), &[]).unwrap();
    let Write::Op { op, .. } = a.write else {
        panic!("an edit writes an op")
    };
    assert_eq!(op.time, Some(6_000));
}
