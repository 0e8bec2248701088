//! Social: comments on regions and moments of the media, threads, reactions, mentions, and
//! suggested edits (DESIGN §7). One [`Social`] per loaded session, owned by its actor: the
//! actor checks membership, hands requests here with the sender's current role and the
//! document, persists the records this returns (durable before anything is broadcast) and
//! sends the frames. Anchors that name a layer or clip follow it after every edit
//! ([`anchors`]); reactions are an OR-set CRDT (`montage_ot::orset`).

pub mod anchors;
pub mod comments;
pub mod http;
pub mod limits;
pub mod notifications;
pub mod recognition;
pub mod service;
pub mod sharing_api;
pub mod showcase;
pub mod suggestions;

use std::collections::HashMap;

use montage_ot::Op;
use montage_protocol::{ClientMessage, ErrorCode, NewComment, Suggestion};

pub use comments::CommentRecord;

/// A refused social request: its error frame.
#[derive(Debug, Clone, PartialEq)]
pub struct SocialError {
    pub code: ErrorCode,
    pub message: String,
}

pub(crate) fn refuse(code: ErrorCode, message: impl Into<String>) -> SocialError {
    SocialError {
        code,
        message: message.into(),
    }
}

pub(crate) fn bad(message: impl Into<String>) -> SocialError {
    refuse(ErrorCode::BadRequest, message)
}

/// A social message from a client, without its session.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Comment(NewComment),
    Edit { id: String, content: String },
    Delete { id: String },
    Resolve { id: String, resolved: bool },
    React { id: String, emoji: String, on: bool },
    Suggest { base: u64, ops: Op, note: String },
    Accept { id: String },
    Reject { id: String },
}

impl Request {
    /// The session and request of a social client message; any other message comes back.
    pub fn from_message(m: ClientMessage) -> Result<(String, Request), ClientMessage> {
        Ok(match m {
            ClientMessage::Comment { session, comment } => (session, Request::Comment(comment)),
            ClientMessage::CommentEdit {
                session,
                id,
                content,
            } => (session, Request::Edit { id, content }),
            ClientMessage::CommentDelete { session, id } => (session, Request::Delete { id }),
            ClientMessage::CommentResolve {
                session,
                id,
                resolved,
            } => (session, Request::Resolve { id, resolved }),
            ClientMessage::CommentReact {
                session,
                id,
                emoji,
                on,
            } => (session, Request::React { id, emoji, on }),
            ClientMessage::Suggest {
                session,
                base,
                ops,
                note,
            } => (
                session,
                Request::Suggest {
                    base,
                    ops,
                    note: note.unwrap_or_default(),
                },
            ),
            ClientMessage::SuggestionAccept { session, id } => (session, Request::Accept { id }),
            ClientMessage::SuggestionReject { session, id } => (session, Request::Reject { id }),
            other => return Err(other),
        })
    }
}

/// A record to make durable.
#[derive(Debug, Clone, PartialEq)]
pub enum SocialWrite {
    Comment { id: String, record: String },
    Suggestion { id: String, record: String },
}

impl SocialWrite {
    pub fn comment(r: &CommentRecord) -> SocialWrite {
        SocialWrite::Comment {
            id: r.comment.id.clone(),
            record: serde_json::to_string(r).unwrap_or_default(),
        }
    }

    pub fn suggestion(s: &Suggestion) -> SocialWrite {
        SocialWrite::Suggestion {
            id: s.id.clone(),
            record: serde_json::to_string(s).unwrap_or_default(),
        }
    }
}

/// The replica name of this server in reaction OR-sets (a scale-out node would use its own).
pub const REPLICA: &str = "montage";

/// One session's comments and suggestions, in creation order.
#[derive(Debug, Default)]
pub struct Social {
    pub(crate) comments: Vec<CommentRecord>,
    pub(crate) comment_index: HashMap<String, usize>,
    pub(crate) suggestions: Vec<Suggestion>,
    pub(crate) suggestion_index: HashMap<String, usize>,
}

impl Social {
    /// Rebuilds the state from stored records (as `SocialStore` lists them).
    pub fn load(comments: Vec<String>, suggestions: Vec<String>) -> Result<Social, String> {
        let mut s = Social::default();
        for (i, r) in comments.iter().enumerate() {
            let rec: CommentRecord =
                serde_json::from_str(r).map_err(|e| format!("comment record {i}: {e}"))?;
            s.comment_index
                .insert(rec.comment.id.clone(), s.comments.len());
            s.comments.push(rec);
        }
        for (i, r) in suggestions.iter().enumerate() {
            let sug: Suggestion =
                serde_json::from_str(r).map_err(|e| format!("suggestion record {i}: {e}"))?;
            s.suggestion_index
                .insert(sug.id.clone(), s.suggestions.len());
            s.suggestions.push(sug);
        }
        Ok(s)
    }

    pub fn comment(&self, id: &str) -> Option<&CommentRecord> {
        self.comment_index.get(id).map(|&i| &self.comments[i])
    }

    pub fn suggestion(&self, id: &str) -> Option<&Suggestion> {
        self.suggestion_index.get(id).map(|&i| &self.suggestions[i])
    }
}
