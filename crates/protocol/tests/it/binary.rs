//! The binary form (`montage.v1.proto`): every message type round-trips through both encodings,
//! the server's JSON frames translate to the same binary frames, and hostile frames are refused
//! with the same checks as JSON.

use std::collections::{BTreeMap, BTreeSet};

use montage_ot::{Component, CompressedDelta, Op, Rect, Run, Value, path};
use montage_protocol::pb::{self, client_frame as cf};
use montage_protocol::sealed::SealedSnapshot;
use montage_protocol::social::SuggestionStatus;
use montage_protocol::{
    Annotation, ClientMessage, Comment, CreateOptions, ErrorCode, NewComment, Notification,
    NotificationKind, OpEntry, Participant, ProtocolError, Region, Role, ServerMessage, StateRef,
    Suggestion, TaskInfo, Tier, TimeRange, decode_client, decode_client_binary, decode_server,
    decode_server_binary, encode_client_binary, encode_server_binary, encode_with_rid,
    server_json_to_binary,
};
use prost::Message;
use serde_json::{Value as Json, json};

/// An edit with every kind of component and values of every kind. (Its text edit is in wire
/// form, a step per component: a multi-step one comes back split, in JSON as in binary.)
fn every_component() -> Op {
    let value = Value::from_json(&json!({
        "a": [1, -2, 2.5, 1e300, null, true, "x", {}, []],
        "": {"nested": {"deep": [[["z"]]]}},
        "big": 9007199254740993u64,
        "long": "ü".repeat(600),
    }));
    Op::new(vec![
        Component::set(path!["title"], Value::str("t")),
        Component::set(path!["doc"], value),
        Component::del(path!["layers", 2]),
        Component::ins(path!["layers", 0], Value::obj([("id", Value::str("l1"))])),
        Component::mov(path!["layers", 1], 0),
        Component::add(path!["layers", 0, "x"], -0.25),
        Component::text_insert(path!["caption"], 3, "héllo"),
        Component::text_delete(path!["caption"], 10, 4),
        Component::Split {
            path: path!["timeline", "clips", 0],
            at: 2.5,
            media: 12.0,
            id: "c2".into(),
        },
        Component::Trim {
            path: path!["timeline", "clips", 1],
            start: Some(1.0),
            r#in: None,
            out: Some(7.75),
        },
        Component::Crop {
            path: path!["layers", 0],
            rect: Rect {
                x: 1.0,
                y: 2.0,
                w: 300.5,
                h: 40.0,
            },
        },
        Component::Rotate {
            path: path!["layers", 0],
            by: 90.0,
        },
        Component::Adjust {
            path: path!["layers", 0],
            param: "exposure".into(),
            value: 0.3,
        },
    ])
}

fn client_messages() -> Vec<ClientMessage> {
    let s = || "s1".to_owned();
    vec![
        ClientMessage::Join {
            session: s(),
            client: "c1".into(),
            since: Some(7),
            compact: true,
            ranges: true,
            state_ref: true,
            create: Some(CreateOptions { encrypted: true }),
        },
        ClientMessage::Join {
            session: s(),
            client: "c1".into(),
            since: None,
            compact: false,
            ranges: false,
            state_ref: false,
            create: None,
        },
        ClientMessage::Op {
            session: s(),
            base: 3,
            seq: 9,
            ops: every_component(),
            data: None,
            key_epoch: 0,
        },
        ClientMessage::Op {
            session: s(),
            base: 3,
            seq: 10,
            ops: Op::default(),
            data: Some("AAAA".into()),
            key_epoch: 2,
        },
        ClientMessage::Snapshot {
            session: s(),
            version: 4,
            data: "AAAA".into(),
            key_epoch: 1,
        },
        ClientMessage::Presence {
            session: s(),
            data: json!({"cursor": {"x": 1.5, "y": -3}, "sel": ["a", 18446744073709551615u64], "n": null}),
        },
        ClientMessage::SetRole {
            session: s(),
            user: "bob".into(),
            role: Role::Commenter,
        },
        ClientMessage::SetRole {
            session: s(),
            user: "bob".into(),
            role: Role::Removed,
        },
        ClientMessage::Leave { session: s() },
        ClientMessage::Quality { downlink_mbps: 2.5 },
        ClientMessage::Comment {
            session: s(),
            comment: NewComment {
                content: "look @bob".into(),
                parent_id: Some("p".into()),
                asset_id: Some("a".into()),
                annotations: vec![Annotation {
                    region: Some(Region {
                        x: 1.0,
                        y: 2.0,
                        w: 3.0,
                        h: 4.5,
                    }),
                    time: Some(TimeRange {
                        start: 0.5,
                        end: 1.0,
                    }),
                    drawing: Some(json!({"strokes": [[1, 2], [3, 4]]})),
                    target: Some("l1".into()),
                    orphaned: false,
                }],
            },
        },
        ClientMessage::CommentEdit {
            session: s(),
            id: "c".into(),
            content: "new".into(),
        },
        ClientMessage::CommentDelete {
            session: s(),
            id: "c".into(),
        },
        ClientMessage::CommentResolve {
            session: s(),
            id: "c".into(),
            resolved: true,
        },
        ClientMessage::CommentReact {
            session: s(),
            id: "c".into(),
            emoji: "👍".into(),
            on: true,
        },
        ClientMessage::Suggest {
            session: s(),
            base: 2,
            ops: Op::new(vec![Component::set(path!["title"], Value::str("x"))]),
            note: Some("why".into()),
        },
        ClientMessage::SuggestionAccept {
            session: s(),
            id: "g".into(),
        },
        ClientMessage::SuggestionReject {
            session: s(),
            id: "g".into(),
        },
        ClientMessage::PreviewSubscribe {
            session: s(),
            tier: Some(Tier::Fair),
            follow: Some("bob".into()),
        },
        ClientMessage::PreviewSubscribe {
            session: s(),
            tier: Some(Tier::Excellent),
            follow: None,
        },
        ClientMessage::PreviewUnsubscribe { session: s() },
        ClientMessage::SetLinkRole {
            session: s(),
            role: Role::Viewer,
        },
        ClientMessage::Auth {
            token: "a.b.c".into(),
        },
    ]
}

fn comment() -> Comment {
    Comment {
        id: "c".into(),
        asset_id: String::new(),
        author_id: "alice".into(),
        content: "hi".into(),
        timestamp: montage_protocol::rfc3339(1_795_650_001, 250_000_000),
        parent_id: None,
        annotations: vec![Annotation {
            region: Some(Region {
                x: 1.0,
                y: 2.0,
                w: 3.0,
                h: 4.0,
            }),
            ..Annotation::default()
        }],
        resolved: false,
        deleted: false,
        edited: true,
        reactions: BTreeMap::from([("🎉".to_owned(), vec!["bob".to_owned()])]),
        mentions: vec!["bob".into()],
    }
}

fn server_messages() -> Vec<ServerMessage> {
    let s = || "s1".to_owned();
    let entry = OpEntry {
        version: 5,
        user: "alice".into(),
        ops: every_component(),
        time: Some(1_700_000_000_000),
        data: None,
        key_epoch: None,
        chain: None,
    };
    let sealed_entry = OpEntry {
        version: 6,
        user: "bob".into(),
        ops: Op::default(),
        time: None,
        data: Some("AAAA".into()),
        key_epoch: Some(3),
        chain: Some("ab".repeat(32)),
    };
    let suggestion = Suggestion {
        id: "g".into(),
        author_id: "carol".into(),
        base: 3,
        ops: Op::new(vec![Component::set(path!["title"], Value::str("x"))]),
        note: "n".into(),
        status: SuggestionStatus::Accepted,
        timestamp: montage_protocol::rfc3339(1_795_650_001, 0),
        version: Some(4),
        credited: Some("carol".into()),
        decided_by: Some("alice".into()),
    };
    vec![
        ServerMessage::Joined {
            session: s(),
            version: 12,
            state: Some(Value::new_document()),
            state_ref: None,
            role: Role::Owner,
            participants: vec![
                Participant {
                    user: "alice".into(),
                    role: Role::Owner,
                    online: true,
                    name: Some("Alice".into()),
                    color: Some("#112233".into()),
                    presence: Some(json!({"cursor": [1, 2]})),
                },
                Participant {
                    user: "bob".into(),
                    role: Role::Viewer,
                    online: false,
                    name: None,
                    color: None,
                    presence: None,
                },
            ],
            ops: None,
            delta: None,
            link_role: Role::Removed,
            title: Some("Title".into()),
            encrypted: false,
            snapshot: None,
            whole: false,
            key_epoch: None,
        },
        ServerMessage::Joined {
            session: s(),
            version: 12,
            state: None,
            state_ref: None,
            role: Role::Editor,
            participants: vec![],
            ops: Some(vec![entry.clone(), sealed_entry]),
            delta: None,
            link_role: Role::Viewer,
            title: None,
            encrypted: true,
            snapshot: Some(SealedSnapshot {
                version: 4,
                data: "AAAA".into(),
                key_epoch: 1,
                chain: "cd".repeat(32),
            }),
            whole: true,
            key_epoch: Some(3),
        },
        ServerMessage::Joined {
            session: s(),
            version: 12,
            state: None,
            state_ref: None,
            role: Role::Editor,
            participants: vec![],
            // An empty list is not the same as none.
            ops: Some(vec![]),
            delta: None,
            link_role: Role::Viewer,
            title: None,
            encrypted: false,
            snapshot: None,
            whole: false,
            key_epoch: None,
        },
        ServerMessage::Joined {
            session: s(),
            version: 612,
            state: None,
            state_ref: None,
            role: Role::Editor,
            participants: vec![],
            ops: None,
            delta: Some(CompressedDelta {
                base_version: 12,
                runs: vec![
                    Run {
                        count: 600,
                        component: Component::add(path!["layers", 0, "x"], 1.0),
                    },
                    Run {
                        count: 1,
                        component: every_component().0[7].clone(),
                    },
                ],
            }),
            link_role: Role::Removed,
            title: None,
            encrypted: false,
            snapshot: None,
            whole: false,
            key_epoch: None,
        },
        // A large state downloaded over HTTP instead.
        ServerMessage::Joined {
            session: s(),
            version: 40,
            state: None,
            state_ref: Some(StateRef {
                bytes: 9_000_000,
                sha256: "ab".repeat(32),
            }),
            role: Role::Viewer,
            participants: vec![],
            ops: None,
            delta: None,
            link_role: Role::Viewer,
            title: None,
            encrypted: false,
            snapshot: None,
            whole: false,
            key_epoch: None,
        },
        ServerMessage::ParticipantJoined {
            session: s(),
            user: "bob".into(),
            role: Role::Editor,
            name: Some("Bob".into()),
            color: Some("#445566".into()),
        },
        ServerMessage::ParticipantLeft {
            session: s(),
            user: "bob".into(),
        },
        ServerMessage::Ack {
            session: s(),
            seq: 3,
            version: 9,
            chain: Some("ef".repeat(32)),
        },
        ServerMessage::Op {
            session: s(),
            from: Some(2),
            version: 5,
            user: "alice".into(),
            ops: every_component(),
            data: None,
            key_epoch: None,
            chain: None,
        },
        ServerMessage::KeyRotated {
            session: s(),
            key_epoch: 4,
        },
        ServerMessage::Presence {
            session: s(),
            user: "bob".into(),
            data: json!({"playhead": 12.5, "sel": [], "deep": {"a": {"b": -1}}}),
        },
        ServerMessage::RoleChanged {
            session: s(),
            user: "bob".into(),
            role: Role::Viewer,
        },
        ServerMessage::Tier {
            tier: Tier::Poor,
            fps: 5,
            resolution: [320, 180],
        },
        ServerMessage::Preview {
            session: s(),
            version: 5,
            tier: Tier::Good,
            url: "/v1/sessions/s1/preview?version=5&tier=good".into(),
            t: Some(3.25),
        },
        ServerMessage::CommentAdded {
            session: s(),
            comment: comment(),
        },
        ServerMessage::CommentUpdated {
            session: s(),
            comment: Comment {
                deleted: true,
                content: String::new(),
                ..comment()
            },
        },
        ServerMessage::SuggestionAdded {
            session: s(),
            suggestion: Suggestion {
                status: SuggestionStatus::Pending,
                version: None,
                credited: None,
                decided_by: None,
                ..suggestion.clone()
            },
        },
        ServerMessage::SuggestionUpdated {
            session: s(),
            suggestion,
        },
        ServerMessage::Task {
            session: s(),
            task: TaskInfo {
                id: "t".into(),
                kind: "share.direct_message".into(),
                state: "failed".into(),
                attempts: 2,
                max_attempts: 5,
                session: Some(s()),
                created_by: "alice".into(),
                created_at: 1,
                updated_at: 2,
                next_run_at: Some(3),
                last_error: Some("503".into()),
                connector: Some(json!({"name": "messenger"})),
            },
        },
        ServerMessage::LinkRoleChanged {
            session: s(),
            role: Role::Commenter,
        },
        ServerMessage::SessionDeleted { session: s() },
        ServerMessage::Notification {
            notification: Notification {
                id: "n".into(),
                kind: NotificationKind::RoleChanged,
                session: s(),
                actor: "alice".into(),
                time: 1_700_000_000_000,
                read: false,
                comment_id: None,
                role: Some(Role::Editor),
                count: 1,
            },
        },
        ServerMessage::Notification {
            notification: Notification {
                id: "n2".into(),
                kind: NotificationKind::Reply,
                session: s(),
                actor: "bob".into(),
                time: 5,
                read: true,
                comment_id: Some("c".into()),
                role: None,
                count: 3,
            },
        },
        ServerMessage::Authed { exp: 1_800_000_000 },
        ServerMessage::TokenExpiring { exp: 1_800_000_000 },
        ServerMessage::Error {
            code: ErrorCode::Conflict,
            message: "rebase".into(),
            retry_after_ms: Some(20),
            session: Some(s()),
            version: Some(14),
        },
        ServerMessage::error(ErrorCode::RateLimited, "slow down"),
    ]
}

fn type_of<T: serde::Serialize>(m: &T) -> String {
    serde_json::to_value(m).unwrap()["type"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn every_client_message_round_trips_through_both_encodings() {
    let mut types = BTreeSet::new();
    for (i, msg) in client_messages().into_iter().enumerate() {
        types.insert(type_of(&msg));
        let rid = match i % 3 {
            0 => None,
            1 => Some(Json::from(i as u64)),
            _ => Some(Json::from(format!("r{i}"))),
        };
        let bytes = encode_client_binary(&msg, rid.as_ref());
        let frame =
            decode_client_binary(&bytes).unwrap_or_else(|e| panic!("{}: {e}", msg.type_name()));
        assert_eq!(frame.msg, msg, "binary");
        assert_eq!(frame.rid, rid);
        // And the same message through JSON.
        let mut json = serde_json::to_value(&msg).unwrap();
        if let Some(r) = &rid {
            json["rid"] = r.clone();
        }
        let from_json = decode_client(&json.to_string()).unwrap();
        assert_eq!(from_json.msg, msg, "JSON");
    }
    assert_eq!(types.len(), 19, "every client message type: {types:?}");
}

#[test]
fn every_server_message_round_trips_through_both_encodings() {
    let mut types = BTreeSet::new();
    for (i, msg) in server_messages().into_iter().enumerate() {
        types.insert(type_of(&msg));
        let rid = (i % 2 == 1).then(|| Json::from(i as u64));
        let bytes = encode_server_binary(&msg, rid.as_ref());
        let (back, back_rid) =
            decode_server_binary(&bytes).unwrap_or_else(|e| panic!("{}: {e}", type_of(&msg)));
        assert_eq!(back, msg, "binary");
        assert_eq!(back_rid, rid);
        // The server keeps frames as JSON text and translates them for binary connections:
        // the translation is the binary frame of the same message.
        let text = encode_with_rid(&msg, rid.as_ref());
        assert_eq!(decode_server(&text).unwrap().0, msg, "JSON");
        let translated = server_json_to_binary(&text).unwrap();
        assert_eq!(decode_server_binary(&translated).unwrap(), (msg, rid));
    }
    assert_eq!(types.len(), 21, "every server message type: {types:?}");
}

#[test]
fn a_deep_document_travels_flat() {
    // Deeper than protobuf's nesting limit (100): values are flat, so decoding never recurses.
    let mut v = json!("leaf");
    for i in 0..300 {
        v = if i % 2 == 0 {
            json!([v])
        } else {
            json!({"k": v})
        };
    }
    let doc = Value::from_json(&v);
    let msg = ServerMessage::Joined {
        session: "s".into(),
        version: 1,
        state: Some(doc),
        state_ref: None,
        role: Role::Viewer,
        participants: vec![],
        ops: None,
        delta: None,
        link_role: Role::Removed,
        title: None,
        encrypted: false,
        snapshot: None,
        whole: false,
        key_epoch: None,
    };
    let bytes = encode_server_binary(&msg, None);
    assert_eq!(decode_server_binary(&bytes).unwrap().0, msg);
}

fn op_frame(ops: Vec<pb::Component>) -> Vec<u8> {
    pb::ClientFrame {
        rid: Some(cf::Rid::RidNumber(4)),
        msg: Some(cf::Msg::Op(cf::Op {
            session: "s".into(),
            base: 0,
            seq: 1,
            ops,
            data: None,
            key_epoch: 0,
        })),
    }
    .encode_to_vec()
}

fn set_title(nodes: Vec<pb::Node>) -> pb::Component {
    pb::Component {
        path: vec![pb::Seg {
            seg: Some(pb::seg::Seg::Key("title".into())),
        }],
        op: Some(pb::component::Op::Set(pb::component::Set {
            value: Some(pb::Value { nodes }),
        })),
    }
}

fn node(kind: pb::node::Kind) -> pb::Node {
    pb::Node {
        key: String::new(),
        kind: Some(kind),
    }
}

#[test]
fn hostile_binary_frames_are_refused_with_the_rid_kept() {
    use pb::node::Kind;
    let refused = |bytes: &[u8]| -> (Option<Json>, String) {
        let r = decode_client_binary(bytes).expect_err("refused");
        (r.rid, r.error.to_string())
    };
    // Not protobuf at all.
    let (rid, e) = refused(&[0xff, 0xff, 0xff]);
    assert_eq!(rid, None);
    assert!(e.contains("protobuf"), "{e}");
    // No message.
    let empty = pb::ClientFrame {
        rid: Some(cf::Rid::RidString("x".into())),
        msg: None,
    }
    .encode_to_vec();
    assert_eq!(
        decode_client_binary(&empty).unwrap_err().error,
        ProtocolError::MissingType
    );
    // A list that claims more items than follow: refused before anything is allocated for it.
    let (rid, e) = refused(&op_frame(vec![set_title(vec![node(Kind::List(u32::MAX))])]));
    assert_eq!(rid, Some(Json::from(4)));
    assert!(e.contains("claims more items"), "{e}");
    // Nodes after the value's end, and a value cut short.
    let (_, e) = refused(&op_frame(vec![set_title(vec![
        node(Kind::Int(1)),
        node(Kind::Int(2)),
    ])]));
    assert!(e.contains("after its end"), "{e}");
    let (_, e) = refused(&op_frame(vec![set_title(vec![
        node(Kind::List(2)),
        node(Kind::Int(2)),
    ])]));
    assert!(
        e.contains("missing nodes") || e.contains("claims more"),
        "{e}"
    );
    // Numbers JSON can't carry.
    for bad in [f64::NAN, f64::INFINITY] {
        let (_, e) = refused(&op_frame(vec![set_title(vec![node(Kind::Number(bad))])]));
        assert!(e.contains("finite"), "{e}");
        let add = pb::Component {
            path: vec![pb::Seg {
                seg: Some(pb::seg::Seg::Key("n".into())),
            }],
            op: Some(pb::component::Op::Add(pb::component::Add { value: bad })),
        };
        let (_, e) = refused(&op_frame(vec![add]));
        assert!(e.contains("finite"), "{e}");
    }
    // The engine's own checks apply as for JSON: too deep, too many, ins without an index,
    // a text step with both `ins` and `del`.
    let deep = pb::Component {
        path: (0..=montage_ot::MAX_PATH_DEPTH)
            .map(|_| pb::Seg {
                seg: Some(pb::seg::Seg::Index(0)),
            })
            .collect(),
        op: Some(pb::component::Op::Del(pb::component::Del {})),
    };
    assert!(refused(&op_frame(vec![deep])).1.contains("deep"));
    let many = vec![set_title(vec![node(Kind::Null(true))]); montage_ot::MAX_COMPONENTS + 1];
    assert!(refused(&op_frame(many)).1.contains("at most"));
    let ins = pb::Component {
        path: vec![pb::Seg {
            seg: Some(pb::seg::Seg::Key("k".into())),
        }],
        op: Some(pb::component::Op::Ins(pb::component::Ins {
            value: Some(pb::Value {
                nodes: vec![node(Kind::Null(true))],
            }),
        })),
    };
    assert!(refused(&op_frame(vec![ins])).1.contains("list index"));
    let both = pb::Component {
        path: vec![pb::Seg {
            seg: Some(pb::seg::Seg::Key("caption".into())),
        }],
        op: Some(pb::component::Op::Text(pb::component::Text {
            pos: 0,
            ins: Some("a".into()),
            del: Some(1),
        })),
    };
    assert!(refused(&op_frame(vec![both])).1.contains("exactly one"));
    // The same id checks as JSON.
    let join = pb::ClientFrame {
        rid: None,
        msg: Some(cf::Msg::Join(cf::Join {
            session: String::new(),
            client: "c".into(),
            ..Default::default()
        })),
    }
    .encode_to_vec();
    assert!(matches!(
        decode_client_binary(&join).unwrap_err().error,
        ProtocolError::BadId {
            field: "session",
            ..
        }
    ));
    // An unknown role.
    let role = pb::ClientFrame {
        rid: None,
        msg: Some(cf::Msg::SetRole(cf::SetRole {
            session: "s".into(),
            user: "u".into(),
            role: 9,
        })),
    }
    .encode_to_vec();
    assert!(refused(&role).1.contains("unknown role"));
}

#[test]
fn a_typing_edit_is_smaller_in_binary() {
    let msg = ClientMessage::Op {
        session: "a1b2c3d4".into(),
        base: 1234,
        seq: 56,
        ops: Op::new(vec![Component::text_insert(path!["caption"], 17, "e")]),
        data: None,
        key_epoch: 0,
    };
    let json = serde_json::to_string(&msg).unwrap();
    let bin = encode_client_binary(&msg, None);
    assert!(
        bin.len() * 2 < json.len(),
        "{} bytes binary, {} JSON",
        bin.len(),
        json.len()
    );
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `web/test-vectors/binary-frames.json`: every client and server message of the builders above
/// in both forms — its JSON (with `rid`) and the base64 of its binary frame — so the TypeScript
/// SDK's mapping (web/client/src/binary.ts, test/binary.test.ts) can't drift from this one.
/// `MONTAGE_WRITE_VECTORS=1 cargo test -p montage-protocol --test it binary` rewrites the file;
/// without it the test fails if the committed file differs from what this makes.
#[test]
fn binary_vectors_match_the_committed_file() {
    let mut lines = Vec::new();
    let mut vector = |kind: &str, json: Json, bytes: Vec<u8>| {
        let v = json!({"kind": kind, "json": json, "binary": base64(&bytes)});
        lines.push(serde_json::to_string(&v).expect("a vector serializes"));
    };
    for (i, msg) in client_messages().into_iter().enumerate() {
        // No rid, a number, a string, a number beyond 2^53 (JSON.parse reads it rounded, as the
        // binary form's reader must).
        let rid = match i % 4 {
            0 => None,
            1 => Some(Json::from(i as u64)),
            2 => Some(Json::from(format!("s1:op:{i}"))),
            _ => Some(Json::from((1u64 << 60) + i as u64)),
        };
        let mut json = serde_json::to_value(&msg).expect("a message serializes");
        if let Some(r) = &rid {
            json["rid"] = r.clone();
        }
        vector("client", json, encode_client_binary(&msg, rid.as_ref()));
    }
    for (i, msg) in server_messages().into_iter().enumerate() {
        let rid = match i % 3 {
            0 => None,
            1 => Some(Json::from(i as u64)),
            _ => Some(Json::from(format!("s1:op:{i}"))),
        };
        // The JSON a text frame carries, as a client parses it.
        let json: Json = serde_json::from_str(&encode_with_rid(&msg, rid.as_ref()))
            .expect("a server frame is JSON");
        vector("server", json, encode_server_binary(&msg, rid.as_ref()));
    }
    // A few more a client must read exactly: a comment's timestamp with micro- and nanoseconds,
    // a year past 9999, and one before the epoch.
    for (n, (secs, nanos)) in [
        (1_795_650_001, 250_000),
        (1_795_650_001, 7),
        (253_402_300_800, 0),
        (-1, 999_000_000),
    ]
    .into_iter()
    .enumerate()
    {
        let msg = ServerMessage::CommentUpdated {
            session: "s1".into(),
            comment: Comment {
                timestamp: montage_protocol::rfc3339(secs, nanos),
                parent_id: Some(format!("p{n}")),
                ..comment()
            },
        };
        let json: Json = serde_json::from_str(&encode_with_rid(&msg, None)).expect("JSON");
        let bytes = encode_server_binary(&msg, None);
        assert_eq!(decode_server_binary(&bytes).expect("decodes").0, msg);
        vector("server", json, bytes);
    }
    let text = format!("[\n{}\n]\n", lines.join(",\n"));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../web/test-vectors/binary-frames.json");
    if std::env::var("MONTAGE_WRITE_VECTORS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &text).expect("write web/test-vectors/binary-frames.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} is not what the generator makes; run \
         MONTAGE_WRITE_VECTORS=1 cargo test -p montage-protocol --test it binary",
        path.display()
    );
}
