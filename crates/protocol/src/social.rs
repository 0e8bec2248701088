//! Comments and suggestions on the wire (docs/PROTOCOL.md): the JSON shapes as serde types, and their
//! conversions to and from the protobuf types generated from `proto/montage.proto` (same field
//! names; the timestamp is an RFC 3339 string in JSON, `google.protobuf.Timestamp` in protobuf).

use std::collections::BTreeMap;

use montage_ot::Op;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub use crate::pb;

/// A rectangle in pixels (W3C media fragment `xywh=`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Region {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// A time range in seconds (W3C media fragment `t=`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeRange {
    pub start: f64,
    pub end: f64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Where a comment points: a region, a time range, a drawing, and the layer or clip it follows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drawing: Option<Json>,
    /// A layer or clip id the anchor follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Set by the server when the target was deleted; the anchor stays where it last was.
    #[serde(default, skip_serializing_if = "is_false")]
    pub orphaned: bool,
}

/// What a client sends in `comment`: the server adds id, author, timestamp and state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewComment {
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
}

/// A comment as the server sends it (`comment_added`, `comment_updated`, `GET …/comments`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub id: String,
    /// Empty when the comment is about the session's canvas/timeline rather than one asset.
    #[serde(default)]
    pub asset_id: String,
    pub author_id: String,
    pub content: String,
    /// RFC 3339, as proto3 JSON writes `google.protobuf.Timestamp`.
    pub timestamp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub annotations: Vec<Annotation>,
    #[serde(default)]
    pub resolved: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub edited: bool,
    /// emoji → users (sorted), only emojis someone currently reacts with.
    #[serde(default)]
    pub reactions: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub mentions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionStatus {
    Pending,
    Accepted,
    Rejected,
}

/// A suggested edit (`suggestion_added`, `suggestion_updated`, `GET …/suggestions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub id: String,
    pub author_id: String,
    pub base: u64,
    pub ops: Op,
    #[serde(default)]
    pub note: String,
    pub status: SuggestionStatus,
    pub timestamp: String,
    /// The version an accepted suggestion was applied as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Who the applied edit is credited to: the suggestion's author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credited: Option<String>,
    /// The editor who accepted or rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

/// A JSON ↔ protobuf conversion that could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    #[error("timestamp {0:?} is not RFC 3339")]
    Timestamp(String),
    #[error("{field} is missing")]
    Missing { field: &'static str },
    #[error("drawing: {0}")]
    Drawing(String),
    #[error("ops: {0}")]
    Ops(String),
    #[error("unknown suggestion status {0}")]
    Status(i32),
}

/// RFC 3339 (UTC, `Z`) for seconds and nanoseconds since the Unix epoch.
pub fn rfc3339(seconds: i64, nanos: i32) -> String {
    prost_types::Timestamp { seconds, nanos }.to_string()
}

fn parse_timestamp(s: &str) -> Result<prost_types::Timestamp, ConvertError> {
    s.parse::<prost_types::Timestamp>()
        .map_err(|_| ConvertError::Timestamp(s.to_owned()))
}

fn to_pb_value(v: &Json) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(to_pb_value).collect(),
        }),
        Json::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o.iter().map(|(k, v)| (k.clone(), to_pb_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

fn from_pb_value(v: prost_types::Value) -> Result<Json, ConvertError> {
    use prost_types::value::Kind;
    Ok(match v.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(b),
        Some(Kind::NumberValue(n)) => {
            // Integral values come back as integers, as they were written.
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Json::from(n as i64)
            } else {
                serde_json::Number::from_f64(n)
                    .map(Json::Number)
                    .ok_or_else(|| ConvertError::Drawing(format!("{n} is not a JSON number")))?
            }
        }
        Some(Kind::StringValue(s)) => Json::String(s),
        Some(Kind::ListValue(l)) => Json::Array(
            l.values
                .into_iter()
                .map(from_pb_value)
                .collect::<Result<_, _>>()?,
        ),
        Some(Kind::StructValue(s)) => Json::Object(
            s.fields
                .into_iter()
                .map(|(k, v)| from_pb_value(v).map(|v| (k, v)))
                .collect::<Result<_, _>>()?,
        ),
    })
}

impl From<&Annotation> for pb::Annotation {
    fn from(a: &Annotation) -> pb::Annotation {
        pb::Annotation {
            region: a.region.map(|r| pb::Region {
                x: r.x,
                y: r.y,
                w: r.w,
                h: r.h,
            }),
            time: a.time.map(|t| pb::TimeRange {
                start: t.start,
                end: t.end,
            }),
            drawing: a.drawing.as_ref().map(to_pb_value),
            target: a.target.clone(),
            orphaned: a.orphaned,
        }
    }
}

impl TryFrom<pb::Annotation> for Annotation {
    type Error = ConvertError;
    fn try_from(a: pb::Annotation) -> Result<Annotation, ConvertError> {
        Ok(Annotation {
            region: a.region.map(|r| Region {
                x: r.x,
                y: r.y,
                w: r.w,
                h: r.h,
            }),
            time: a.time.map(|t| TimeRange {
                start: t.start,
                end: t.end,
            }),
            drawing: a.drawing.map(from_pb_value).transpose()?,
            target: a.target,
            orphaned: a.orphaned,
        })
    }
}

impl TryFrom<&Comment> for pb::MediaComment {
    type Error = ConvertError;
    fn try_from(c: &Comment) -> Result<pb::MediaComment, ConvertError> {
        Ok(pb::MediaComment {
            id: c.id.clone(),
            asset_id: c.asset_id.clone(),
            author_id: c.author_id.clone(),
            content: c.content.clone(),
            timestamp: Some(parse_timestamp(&c.timestamp)?),
            parent_id: c.parent_id.clone(),
            annotations: c.annotations.iter().map(pb::Annotation::from).collect(),
            resolved: c.resolved,
            deleted: c.deleted,
            edited: c.edited,
            reactions: c
                .reactions
                .iter()
                .map(|(e, users)| {
                    (
                        e.clone(),
                        pb::Users {
                            users: users.clone(),
                        },
                    )
                })
                .collect(),
            mentions: c.mentions.clone(),
        })
    }
}

impl TryFrom<pb::MediaComment> for Comment {
    type Error = ConvertError;
    fn try_from(c: pb::MediaComment) -> Result<Comment, ConvertError> {
        let ts = c
            .timestamp
            .ok_or(ConvertError::Missing { field: "timestamp" })?;
        Ok(Comment {
            id: c.id,
            asset_id: c.asset_id,
            author_id: c.author_id,
            content: c.content,
            timestamp: ts.to_string(),
            parent_id: c.parent_id,
            annotations: c
                .annotations
                .into_iter()
                .map(Annotation::try_from)
                .collect::<Result<_, _>>()?,
            resolved: c.resolved,
            deleted: c.deleted,
            edited: c.edited,
            reactions: c.reactions.into_iter().map(|(e, u)| (e, u.users)).collect(),
            mentions: c.mentions,
        })
    }
}

impl TryFrom<&Suggestion> for pb::Suggestion {
    type Error = ConvertError;
    fn try_from(s: &Suggestion) -> Result<pb::Suggestion, ConvertError> {
        let status = match s.status {
            SuggestionStatus::Pending => pb::SuggestionStatus::Pending,
            SuggestionStatus::Accepted => pb::SuggestionStatus::Accepted,
            SuggestionStatus::Rejected => pb::SuggestionStatus::Rejected,
        };
        Ok(pb::Suggestion {
            id: s.id.clone(),
            author_id: s.author_id.clone(),
            base: s.base,
            ops: serde_json::to_string(&s.ops).map_err(|e| ConvertError::Ops(e.to_string()))?,
            note: s.note.clone(),
            status: status as i32,
            timestamp: Some(parse_timestamp(&s.timestamp)?),
            version: s.version,
            credited: s.credited.clone(),
            decided_by: s.decided_by.clone(),
        })
    }
}

impl TryFrom<pb::Suggestion> for Suggestion {
    type Error = ConvertError;
    fn try_from(s: pb::Suggestion) -> Result<Suggestion, ConvertError> {
        let status = match pb::SuggestionStatus::try_from(s.status) {
            Ok(pb::SuggestionStatus::Pending) => SuggestionStatus::Pending,
            Ok(pb::SuggestionStatus::Accepted) => SuggestionStatus::Accepted,
            Ok(pb::SuggestionStatus::Rejected) => SuggestionStatus::Rejected,
            Err(_) => return Err(ConvertError::Status(s.status)),
        };
        let ts = s
            .timestamp
            .ok_or(ConvertError::Missing { field: "timestamp" })?;
        Ok(Suggestion {
            id: s.id,
            author_id: s.author_id,
            base: s.base,
            ops: serde_json::from_str(&s.ops).map_err(|e| ConvertError::Ops(e.to_string()))?,
            note: s.note,
            status,
            timestamp: ts.to_string(),
            version: s.version,
            credited: s.credited,
            decided_by: s.decided_by,
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use serde_json::json;

    use super::*;

    fn sample() -> Comment {
        serde_json::from_value(json!({
            "id": "c1", "asset_id": "a1", "author_id": "alice", "content": "look @bob",
            "timestamp": "2026-11-25T23:40:01.250Z", "parent_id": "c0",
            "annotations": [
                {"region": {"x": 10.0, "y": 20.5, "w": 30.0, "h": 40.0}, "target": "L1"},
                {"time": {"start": 1.5, "end": 2.0}, "drawing": {"path": [[1, 2], [3.5, 4]], "color": "#ff0000", "closed": true, "none": null}},
                {"region": {"x": 0.0, "y": 0.0, "w": 1.0, "h": 1.0}, "target": "gone", "orphaned": true}
            ],
            "resolved": true, "deleted": false, "edited": true,
            "reactions": {"👍": ["alice", "bob"], "🎉": ["carol"]},
            "mentions": ["bob"]
        }))
        .unwrap()
    }

    #[test]
    fn comment_round_trips_through_protobuf_bytes() {
        let c = sample();
        let pb = pb::MediaComment::try_from(&c).unwrap();
        assert_eq!(pb.timestamp.unwrap().seconds, 1_795_650_001);
        let bytes = pb.encode_to_vec();
        let back = Comment::try_from(pb::MediaComment::decode(bytes.as_slice()).unwrap()).unwrap();
        assert_eq!(back, c);
        // And the JSON shape is the pinned one.
        let j = serde_json::to_value(&back).unwrap();
        assert_eq!(j["timestamp"], "2026-11-25T23:40:01.250Z");
        assert_eq!(j["reactions"]["👍"], json!(["alice", "bob"]));
        assert_eq!(j["annotations"][0]["region"]["y"], 20.5);
        assert!(j["annotations"][0].get("orphaned").is_none());
    }

    #[test]
    fn a_comment_without_parent_has_no_parent_field() {
        let mut c = sample();
        c.parent_id = None;
        let back = Comment::try_from(pb::MediaComment::try_from(&c).unwrap()).unwrap();
        assert_eq!(back.parent_id, None);
        assert!(
            serde_json::to_value(&back)
                .unwrap()
                .get("parent_id")
                .is_none()
        );
    }

    #[test]
    fn bad_timestamps_are_typed_errors() {
        let mut c = sample();
        c.timestamp = "yesterday".into();
        assert_eq!(
            pb::MediaComment::try_from(&c).unwrap_err(),
            ConvertError::Timestamp("yesterday".into())
        );
        let mut pb = pb::MediaComment::try_from(&sample()).unwrap();
        pb.timestamp = None;
        assert!(matches!(
            Comment::try_from(pb),
            Err(ConvertError::Missing { .. })
        ));
    }

    #[test]
    fn suggestion_round_trips() {
        let s: Suggestion = serde_json::from_value(json!({
            "id": "s1", "author_id": "carol", "base": 4,
            "ops": [{"op": "set", "path": ["title"], "value": "Dawn"}],
            "note": "better title", "status": "accepted", "timestamp": "2026-01-02T03:04:05Z",
            "version": 9, "credited": "carol", "decided_by": "alice"
        }))
        .unwrap();
        let bytes = pb::Suggestion::try_from(&s).unwrap().encode_to_vec();
        let back = Suggestion::try_from(pb::Suggestion::decode(bytes.as_slice()).unwrap()).unwrap();
        assert_eq!(back, s);
        let mut bad = pb::Suggestion::try_from(&s).unwrap();
        bad.status = 7;
        assert_eq!(
            Suggestion::try_from(bad).unwrap_err(),
            ConvertError::Status(7)
        );
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_795_650_001, 250_000_000),
            "2026-11-25T23:40:01.250Z"
        );
    }
}

/// What a notification is about (DESIGN §9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// `actor` named me (`@me`) in comment `comment_id`.
    Mention,
    /// `actor` replied in a thread where I wrote the comment replied to; a burst in one thread
    /// is one unread item (`count`).
    Reply,
    /// `actor` invited me to the session (an invite only I may accept).
    Invite,
    /// `actor` gave me `role` in the session.
    RoleChanged,
    /// My work in the session was recognised (`actor` awarded it, or the server's badge rules).
    Award,
    SuggestionAccepted,
    SuggestionRejected,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Mention => "mention",
            NotificationKind::Reply => "reply",
            NotificationKind::Invite => "invite",
            NotificationKind::RoleChanged => "role_changed",
            NotificationKind::Award => "award",
            NotificationKind::SuggestionAccepted => "suggestion_accepted",
            NotificationKind::SuggestionRejected => "suggestion_rejected",
        }
    }

    pub fn parse(s: &str) -> Option<NotificationKind> {
        serde_json::from_value(Json::String(s.to_owned())).ok()
    }
}

/// One item of a user's inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub kind: NotificationKind,
    pub session: String,
    /// Who caused it (the latest one, for a grouped item).
    pub actor: String,
    /// Milliseconds since the Unix epoch (the latest event, for a grouped item).
    pub time: i64,
    pub read: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::Role>,
    /// Events this item stands for (a burst of replies in one thread is one item).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}
