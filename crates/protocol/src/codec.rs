//! The JSON codec: pure functions over text that return typed errors.

use serde::Deserialize;
use serde_json::Value as Json;

use crate::{ClientMessage, MAX_ID_LEN, ProtocolError, ServerMessage};

/// A decoded client message with the request id the client attached, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    pub rid: Option<Json>,
    pub msg: ClientMessage,
}

/// A frame that could not be decoded, with the `rid` when it could still be read, so the error
/// frame can echo it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}")]
pub struct Rejected {
    pub rid: Option<Json>,
    pub error: ProtocolError,
}

const CLIENT_TYPES: &[&str] = &[
    "join",
    "op",
    "snapshot",
    "presence",
    "set_role",
    "leave",
    "quality",
    "comment",
    "comment_edit",
    "comment_delete",
    "comment_resolve",
    "comment_react",
    "suggest",
    "suggestion_accept",
    "suggestion_reject",
    "preview_subscribe",
    "preview_unsubscribe",
    "set_link_role",
    "auth",
];

/// Decodes one JSON text frame from a client.
pub fn decode_client(text: &str) -> Result<ClientFrame, Rejected> {
    let reject = |rid: Option<Json>, error| Rejected { rid, error };
    let json: Json =
        serde_json::from_str(text).map_err(|e| reject(None, ProtocolError::Json(e.to_string())))?;
    let Json::Object(mut map) = json else {
        return Err(reject(None, ProtocolError::NotObject));
    };
    let rid = match map.remove("rid") {
        None | Some(Json::Null) => None,
        Some(r @ (Json::String(_) | Json::Number(_))) => Some(r),
        Some(_) => return Err(reject(None, ProtocolError::BadRid)),
    };
    let kind = match map.get("type") {
        Some(Json::String(t)) => t.clone(),
        _ => return Err(reject(rid, ProtocolError::MissingType)),
    };
    if !CLIENT_TYPES.contains(&kind.as_str()) {
        return Err(reject(rid, ProtocolError::UnknownType(kind)));
    }
    let msg = match ClientMessage::deserialize(Json::Object(map)) {
        Ok(m) => m,
        Err(e) => {
            return Err(reject(
                rid,
                ProtocolError::Invalid {
                    kind,
                    reason: e.to_string(),
                },
            ));
        }
    };
    if let Err(error) = validate(&msg) {
        return Err(reject(rid, error));
    }
    Ok(ClientFrame { rid, msg })
}

/// The longest token `auth` accepts (a JWT with a large `sessions` claim fits).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

fn check_id(field: &'static str, s: &str) -> Result<(), ProtocolError> {
    if s.is_empty() || s.len() > MAX_ID_LEN || s.chars().any(char::is_control) {
        return Err(ProtocolError::BadId {
            field,
            len: s.len(),
            max: MAX_ID_LEN,
        });
    }
    Ok(())
}

pub(crate) fn validate(msg: &ClientMessage) -> Result<(), ProtocolError> {
    if let Some(s) = msg.session() {
        check_id("session", s)?;
    }
    match msg {
        ClientMessage::Join { client, .. } => check_id("client", client),
        ClientMessage::Op {
            data: Some(data),
            ops,
            ..
        } => {
            if !ops.is_empty() {
                return Err(invalid("op", "an op carries `ops` or `data`, not both"));
            }
            check_sealed("op", data)
        }
        ClientMessage::Snapshot { data, .. } => check_sealed("snapshot", data),
        ClientMessage::SetRole { user, .. } => check_id("user", user),
        ClientMessage::Auth { token } if token.is_empty() || token.len() > MAX_TOKEN_LEN => {
            Err(ProtocolError::Invalid {
                kind: "auth".into(),
                reason: format!("token must be 1 to {MAX_TOKEN_LEN} bytes"),
            })
        }
        ClientMessage::CommentEdit { id, .. }
        | ClientMessage::CommentDelete { id, .. }
        | ClientMessage::CommentResolve { id, .. }
        | ClientMessage::CommentReact { id, .. }
        | ClientMessage::SuggestionAccept { id, .. }
        | ClientMessage::SuggestionReject { id, .. } => check_id("id", id),
        ClientMessage::Quality { downlink_mbps }
            if !downlink_mbps.is_finite() || *downlink_mbps < 0.0 =>
        {
            Err(ProtocolError::Invalid {
                kind: "quality".into(),
                reason: "downlink_mbps must be a non-negative number".into(),
            })
        }
        _ => Ok(()),
    }
}

fn invalid(kind: &str, reason: &str) -> ProtocolError {
    ProtocolError::Invalid {
        kind: kind.into(),
        reason: reason.into(),
    }
}

fn check_sealed(kind: &str, data: &str) -> Result<(), ProtocolError> {
    if crate::sealed::is_base64(data) {
        Ok(())
    } else {
        Err(invalid(
            kind,
            "data must be standard padded base64 of at most 16 MiB",
        ))
    }
}

/// Decodes a server frame (for clients, tests and the load generator).
pub fn decode_server(text: &str) -> Result<(ServerMessage, Option<Json>), ProtocolError> {
    let json: Json = serde_json::from_str(text).map_err(|e| ProtocolError::Json(e.to_string()))?;
    let Json::Object(mut map) = json else {
        return Err(ProtocolError::NotObject);
    };
    let rid = map.remove("rid");
    let kind = match map.get("type") {
        Some(Json::String(t)) => t.clone(),
        _ => return Err(ProtocolError::MissingType),
    };
    let msg =
        ServerMessage::deserialize(Json::Object(map)).map_err(|e| ProtocolError::Invalid {
            kind,
            reason: e.to_string(),
        })?;
    Ok((msg, rid))
}

/// Encodes a server message as a JSON text frame.
pub fn encode(msg: &ServerMessage) -> String {
    serde_json::to_string(msg).unwrap_or_else(|_| FALLBACK.to_owned())
}

/// Encodes a server message with the client's `rid` echoed.
pub fn encode_with_rid(msg: &ServerMessage, rid: Option<&Json>) -> String {
    let Some(rid) = rid else { return encode(msg) };
    match serde_json::to_value(msg) {
        Ok(Json::Object(mut map)) => {
            map.insert("rid".into(), rid.clone());
            serde_json::to_string(&Json::Object(map)).unwrap_or_else(|_| FALLBACK.to_owned())
        }
        _ => FALLBACK.to_owned(),
    }
}

/// The `op` frame for an edit whose `ops` are already JSON (the server stores that same text, so
/// it serializes an edit once). `ops_json` must be an encoded [`Op`](montage_ot::Op); the frame
/// decodes as [`ServerMessage::Op`].
pub fn encode_op(session: &str, version: u64, user: &str, ops_json: &str) -> String {
    let session = serde_json::to_string(session).unwrap_or_else(|_| "\"\"".to_owned());
    let user = serde_json::to_string(user).unwrap_or_else(|_| "\"\"".to_owned());
    format!(
        r#"{{"type":"op","session":{session},"version":{version},"user":{user},"ops":{ops_json}}}"#
    )
}

/// The `op` frame of versions `from..=version` composed into one (`ops_json`), for a client that
/// joined with `ranges`; `user` is empty when the versions have several authors.
pub fn encode_op_range(
    session: &str,
    from: u64,
    version: u64,
    user: &str,
    ops_json: &str,
) -> String {
    let session = serde_json::to_string(session).unwrap_or_else(|_| "\"\"".to_owned());
    let user = serde_json::to_string(user).unwrap_or_else(|_| "\"\"".to_owned());
    format!(
        r#"{{"type":"op","session":{session},"from":{from},"version":{version},"user":{user},"ops":{ops_json}}}"#
    )
}

/// The `op` frame of a stored edit, from its stored body as it is (never parsed): a plain edit's
/// components (a JSON array) go in `ops`; an encrypted session's payload, stored as the JSON
/// object of its [`Sealed`](crate::sealed::Sealed), gives its fields (`data`, `key_epoch`,
/// `chain`) to the frame, which then decodes as [`ServerMessage::Op`] with them and no `ops`.
pub fn encode_stored_op(session: &str, version: u64, user: &str, body: &str) -> String {
    let Some(fields) = body.strip_prefix('{').and_then(|b| b.strip_suffix('}')) else {
        return encode_op(session, version, user, body);
    };
    let session = serde_json::to_string(session).unwrap_or_else(|_| "\"\"".to_owned());
    let user = serde_json::to_string(user).unwrap_or_else(|_| "\"\"".to_owned());
    format!(r#"{{"type":"op","session":{session},"version":{version},"user":{user},{fields}}}"#)
}

/// Serializing these types cannot fail (string keys only); this is the answer if it ever does.
const FALLBACK: &str = r#"{"type":"error","code":"internal","message":"encoding failed"}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorCode, Role};

    #[test]
    fn a_stored_sealed_edit_becomes_a_sealed_op_frame() {
        let sealed = crate::sealed::Sealed {
            data: "AAAA".into(),
            key_epoch: 2,
            chain: "ab".repeat(32),
        };
        let body = serde_json::to_string(&sealed).unwrap();
        let frame = encode_stored_op("s", 3, "u", &body);
        match decode_server(&frame).unwrap().0 {
            ServerMessage::Op {
                version,
                ops,
                data,
                key_epoch,
                chain,
                ..
            } => {
                assert_eq!(version, 3);
                assert!(ops.is_noop());
                assert_eq!(data.as_deref(), Some("AAAA"));
                assert_eq!(key_epoch, Some(2));
                assert_eq!(chain, Some(sealed.chain));
            }
            other => panic!("{other:?}"),
        }
        assert!(!frame.contains("\"ops\""));
        // A plain edit's array goes in `ops`, as `encode_op` writes it.
        assert_eq!(
            encode_stored_op("s", 1, "u", "[]"),
            encode_op("s", 1, "u", "[]")
        );
    }

    #[test]
    fn decodes_join_with_rid() {
        let f = decode_client(r#"{"type":"join","session":"s1","client":"c1","rid":7}"#).unwrap();
        assert_eq!(f.rid, Some(Json::from(7)));
        assert_eq!(
            f.msg,
            ClientMessage::Join {
                session: "s1".into(),
                client: "c1".into(),
                since: None,
                compact: false,
                ranges: false,
                state_ref: false,
                create: None,
            }
        );
    }

    #[test]
    fn decodes_op() {
        let f = decode_client(r#"{"type":"op","session":"s","base":3,"seq":1,"ops":[{"op":"set","path":["title"],"value":"x"}]}"#)
            .unwrap();
        match f.msg {
            ClientMessage::Op { base, seq, ops, .. } => {
                assert_eq!((base, seq, ops.len()), (3, 1, 1));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn errors_are_typed_and_keep_rid() {
        assert!(matches!(
            decode_client("nope").unwrap_err().error,
            ProtocolError::Json(_)
        ));
        assert_eq!(
            decode_client("[1]").unwrap_err().error,
            ProtocolError::NotObject
        );
        let r = decode_client(r#"{"rid":"a"}"#).unwrap_err();
        assert_eq!(
            (r.rid, r.error),
            (Some(Json::from("a")), ProtocolError::MissingType)
        );
        assert_eq!(
            decode_client(r#"{"type":"fly"}"#).unwrap_err().error,
            ProtocolError::UnknownType("fly".into())
        );
        let r = decode_client(r#"{"type":"op","session":"s","rid":1}"#).unwrap_err();
        assert!(matches!(r.error, ProtocolError::Invalid { .. }));
        assert_eq!(r.rid, Some(Json::from(1)));
        assert_eq!(
            decode_client(r#"{"type":"leave","session":"s","rid":{}}"#)
                .unwrap_err()
                .error,
            ProtocolError::BadRid
        );
        assert!(matches!(
            decode_client(r#"{"type":"leave","session":""}"#)
                .unwrap_err()
                .error,
            ProtocolError::BadId {
                field: "session",
                ..
            }
        ));
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert!(decode_client(&format!(r#"{{"type":"leave","session":"{long}"}}"#)).is_err());
        assert!(
            decode_client(r#"{"type":"set_role","session":"s","user":"u","role":"king"}"#).is_err()
        );
        assert!(
            decode_client(r#"{"type":"op","session":"s","base":-1,"seq":1,"ops":[]}"#).is_err()
        );
        assert!(
            decode_client(r#"{"type":"op","session":"s","base":0,"seq":1,"ops":[{"op":"zap"}]}"#)
                .is_err()
        );
    }

    #[test]
    fn encodes_contract_shapes() {
        let e = encode_with_rid(
            &ServerMessage::error(ErrorCode::RateLimited, "slow down"),
            Some(&Json::from("r1")),
        );
        let v: Json = serde_json::from_str(&e).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "rate_limited");
        assert_eq!(v["rid"], "r1");
        let j = encode(&ServerMessage::RoleChanged {
            session: "s".into(),
            user: "u".into(),
            role: Role::Editor,
        });
        assert_eq!(
            j,
            r#"{"type":"role_changed","session":"s","user":"u","role":"editor"}"#
        );
        let (m, rid) = decode_server(&e).unwrap();
        assert!(matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            }
        ));
        assert_eq!(rid, Some(Json::from("r1")));
    }

    #[test]
    fn a_pre_encoded_op_frame_decodes_as_the_op_message() {
        let ops: montage_ot::Op =
            serde_json::from_str(r#"[{"op":"text","path":["title"],"pos":0,"ins":"hé \"x\""}]"#)
                .unwrap();
        let json = serde_json::to_string(&ops).unwrap();
        let frame = encode_op("a/b?\"c", 7, "ü\\ser", &json);
        let (msg, rid) = decode_server(&frame).unwrap();
        assert_eq!(rid, None);
        assert_eq!(
            msg,
            ServerMessage::Op {
                session: "a/b?\"c".into(),
                from: None,
                version: 7,
                user: "ü\\ser".into(),
                ops,
                data: None,
                key_epoch: None,
                chain: None,
            }
        );
    }

    #[test]
    fn task_frames_round_trip() {
        let text = r#"{"type":"task","session":"s","task":{"id":"t1","kind":"share.direct_message","state":"failed","attempts":1,"max_attempts":5,"session":"s","created_by":"alice","created_at":1,"updated_at":2,"next_run_at":3,"last_error":"HTTP 500","connector":"messenger"}}"#;
        let (msg, _) = decode_server(text).unwrap();
        let ServerMessage::Task { session, task } = &msg else {
            panic!("{msg:?}")
        };
        assert_eq!((session.as_str(), task.state.as_str()), ("s", "failed"));
        assert_eq!(task.next_run_at, Some(3));
        let again: Json = serde_json::from_str(&encode(&msg)).unwrap();
        assert_eq!(again, serde_json::from_str::<Json>(text).unwrap());
    }

    #[test]
    fn tiers_follow_the_design_table() {
        use crate::{Tier, tier_for_mbps};
        assert_eq!(tier_for_mbps(100.0), (Tier::Excellent, 60, [1920, 1080]));
        assert_eq!(tier_for_mbps(50.0), (Tier::Good, 30, [1280, 720]));
        assert_eq!(tier_for_mbps(5.0), (Tier::Fair, 15, [854, 480]));
        assert_eq!(tier_for_mbps(f64::NAN), (Tier::Poor, 5, [320, 180]));
        assert!(Tier::Excellent < Tier::Poor);
        for t in Tier::ALL {
            assert_eq!(Tier::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn roles_are_ordered() {
        assert!(
            Role::Owner > Role::Editor
                && Role::Editor > Role::Commenter
                && Role::Commenter > Role::Viewer
        );
        assert_eq!(Role::parse(Role::Commenter.as_str()), Some(Role::Commenter));
    }

    #[test]
    fn decodes_the_social_messages() {
        let f = decode_client(
            r#"{"type":"comment","session":"s","rid":2,"comment":{"content":"hi @bob","annotations":[{"region":{"x":1,"y":2,"w":3,"h":4},"target":"L1"}]}}"#,
        )
        .unwrap();
        match f.msg {
            ClientMessage::Comment { comment, .. } => {
                assert_eq!(comment.content, "hi @bob");
                assert_eq!(comment.annotations[0].target.as_deref(), Some("L1"));
                assert_eq!(comment.annotations[0].region.map(|r| r.w), Some(3.0));
            }
            other => panic!("unexpected {other:?}"),
        }
        let f = decode_client(
            r#"{"type":"comment_react","session":"s","id":"c1","emoji":"👍","on":true}"#,
        )
        .unwrap();
        assert_eq!(f.msg.type_name(), "comment_react");
        let f = decode_client(r#"{"type":"suggest","session":"s","base":0,"ops":[{"op":"set","path":["title"],"value":"x"}]}"#)
            .unwrap();
        assert!(matches!(f.msg, ClientMessage::Suggest { note: None, .. }));
        // A region missing a field, a bad id and a missing content are refused.
        assert!(decode_client(r#"{"type":"comment","session":"s","comment":{"content":"x","annotations":[{"region":{"x":1}}]}}"#).is_err());
        assert!(decode_client(r#"{"type":"comment_delete","session":"s","id":""}"#).is_err());
        assert!(decode_client(r#"{"type":"comment","session":"s","comment":{}}"#).is_err());
    }
}
