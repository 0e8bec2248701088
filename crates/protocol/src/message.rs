//! The JSON messages of wire protocol v1 (docs/PROTOCOL.md). Names and shapes here are contract.

use montage_ot::{Op, Value};
use serde::{Deserialize, Serialize};

use crate::ErrorCode;
use crate::sealed::SealedSnapshot;
use crate::social::{Comment, NewComment, Suggestion};

/// A participant's permission level. The derive order makes
/// `Owner > Editor > Commenter > Viewer > Removed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// No access: `set_role` with `"none"` removes a user from a session (and disconnects it);
    /// the grant overrides the session's link role.
    #[serde(rename = "none")]
    Removed,
    Viewer,
    Commenter,
    Editor,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Removed => "none",
            Role::Viewer => "viewer",
            Role::Commenter => "commenter",
            Role::Editor => "editor",
            Role::Owner => "owner",
        }
    }
    /// `none`, for serde defaults.
    pub fn none() -> Role {
        Role::Removed
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "none" => Some(Role::Removed),
            "viewer" => Some(Role::Viewer),
            "commenter" => Some(Role::Commenter),
            "editor" => Some(Role::Editor),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// Client → server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Join {
        session: String,
        client: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
        /// With `since`: the client holds no edit in flight, so the server may send the edits
        /// it missed composed into one `delta` (docs/PROTOCOL.md "Compact catch-up").
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        compact: bool,
        /// The client takes `op` frames that stand for a range of versions (`from`): the server
        /// may then compose consecutive edits into one frame for a slow or backlogged
        /// connection (docs/PROTOCOL.md "Ranges").
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        ranges: bool,
        /// The client can download a large state over HTTP: the server may answer `joined`
        /// with `state_ref` instead of `state` (docs/PROTOCOL.md "Large states").
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        state_ref: bool,
        /// How to create the session if it is missing (ignored when it exists).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        create: Option<CreateOptions>,
    },
    /// An edit: `ops` in a plain session; in an encrypted one `data` (base64 of the sealed
    /// edit, DESIGN §9.4) under `key_epoch`, and no `ops`.
    Op {
        session: String,
        base: u64,
        seq: u64,
        #[serde(default)]
        ops: Op,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        #[serde(default, skip_serializing_if = "is_zero")]
        key_epoch: u64,
    },
    /// An encrypted snapshot of `version` (≤ the head) of an encrypted session (editor).
    Snapshot {
        session: String,
        version: u64,
        data: String,
        #[serde(default, skip_serializing_if = "is_zero")]
        key_epoch: u64,
    },
    Presence {
        session: String,
        data: serde_json::Value,
    },
    SetRole {
        session: String,
        user: String,
        role: Role,
    },
    Leave {
        session: String,
    },
    Quality {
        downlink_mbps: f64,
    },
    Comment {
        session: String,
        comment: NewComment,
    },
    CommentEdit {
        session: String,
        id: String,
        content: String,
    },
    CommentDelete {
        session: String,
        id: String,
    },
    CommentResolve {
        session: String,
        id: String,
        resolved: bool,
    },
    CommentReact {
        session: String,
        id: String,
        emoji: String,
        on: bool,
    },
    /// A commenter's edit, stored as a pending suggestion.
    Suggest {
        session: String,
        base: u64,
        ops: Op,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    SuggestionAccept {
        session: String,
        id: String,
    },
    SuggestionReject {
        session: String,
        id: String,
    },
    /// Live `preview` messages for a session at a tier (without one: the connection's tier,
    /// followed as it changes), at most at the tier's frame rate. With `follow`, the timeline's
    /// composite frame at that user's playhead (their presence `playhead`) instead of the canvas.
    PreviewSubscribe {
        session: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tier: Option<Tier>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        follow: Option<String>,
    },
    PreviewUnsubscribe {
        session: String,
    },
    /// The owner opens or closes link access (`none` makes the session private).
    SetLinkRole {
        session: String,
        role: Role,
    },
    /// Replaces the connection's token (same `sub`) before it expires.
    Auth {
        token: String,
    },
}

impl ClientMessage {
    /// The session the message is about, if any.
    pub fn session(&self) -> Option<&str> {
        match self {
            ClientMessage::Join { session, .. }
            | ClientMessage::Op { session, .. }
            | ClientMessage::Snapshot { session, .. }
            | ClientMessage::Presence { session, .. }
            | ClientMessage::SetRole { session, .. }
            | ClientMessage::Leave { session }
            | ClientMessage::Comment { session, .. }
            | ClientMessage::CommentEdit { session, .. }
            | ClientMessage::CommentDelete { session, .. }
            | ClientMessage::CommentResolve { session, .. }
            | ClientMessage::CommentReact { session, .. }
            | ClientMessage::Suggest { session, .. }
            | ClientMessage::SuggestionAccept { session, .. }
            | ClientMessage::SuggestionReject { session, .. }
            | ClientMessage::PreviewSubscribe { session, .. }
            | ClientMessage::PreviewUnsubscribe { session }
            | ClientMessage::SetLinkRole { session, .. } => Some(session),
            ClientMessage::Quality { .. } | ClientMessage::Auth { .. } => None,
        }
    }
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Join { .. } => "join",
            ClientMessage::Op { .. } => "op",
            ClientMessage::Snapshot { .. } => "snapshot",
            ClientMessage::Presence { .. } => "presence",
            ClientMessage::SetRole { .. } => "set_role",
            ClientMessage::Leave { .. } => "leave",
            ClientMessage::Quality { .. } => "quality",
            ClientMessage::Comment { .. } => "comment",
            ClientMessage::CommentEdit { .. } => "comment_edit",
            ClientMessage::CommentDelete { .. } => "comment_delete",
            ClientMessage::CommentResolve { .. } => "comment_resolve",
            ClientMessage::CommentReact { .. } => "comment_react",
            ClientMessage::Suggest { .. } => "suggest",
            ClientMessage::SuggestionAccept { .. } => "suggestion_accept",
            ClientMessage::SuggestionReject { .. } => "suggestion_reject",
            ClientMessage::PreviewSubscribe { .. } => "preview_subscribe",
            ClientMessage::PreviewUnsubscribe { .. } => "preview_unsubscribe",
            ClientMessage::SetLinkRole { .. } => "set_link_role",
            ClientMessage::Auth { .. } => "auth",
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `join`'s `create`: how a session the join creates is made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateOptions {
    /// End-to-end encrypted (DESIGN §9.4): the server orders and stores what it can't read.
    #[serde(default)]
    pub encrypted: bool,
}

/// One entry of `participants` in `joined`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub user: String,
    pub role: Role,
    pub online: bool,
    /// Display name (the token's `name`), for users online with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `#rrggbb`, stable per user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// The user's latest presence `data`, if it sent any (adjusted by later edits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<serde_json::Value>,
}

/// An entry of an op list (`joined.ops`, the HTTP ops endpoint). In an encrypted session
/// `ops` is empty and `sealed` holds the edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpEntry {
    pub version: u64,
    pub user: String,
    #[serde(default)]
    pub ops: Op,
    /// Commit time, ms since the Unix epoch; `null` for versions committed before servers kept
    /// times (and absent from older servers).
    #[serde(default)]
    pub time: Option<i64>,
    /// The sealed edit (base64), its key epoch and chain value, in an encrypted session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_epoch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
}

/// A connection-quality tier (docs/PROTOCOL.md): how often presence and previews go to a connection and
/// how large its previews are. The one tier type of the wire, the server and the media processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// > 50 Mbps: 60 fps, 1920×1080.
    Excellent,
    /// 10–50 Mbps: 30 fps, 1280×720.
    Good,
    /// 5–10 Mbps: 15 fps, 854×480.
    Fair,
    /// < 5 Mbps: 5 fps, a thumbnail at most 320 px on its longer side.
    Poor,
}

impl Tier {
    /// Best first.
    pub const ALL: [Tier; 4] = [Tier::Excellent, Tier::Good, Tier::Fair, Tier::Poor];

    /// The wire name (`"excellent"`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Excellent => "excellent",
            Tier::Good => "good",
            Tier::Fair => "fair",
            Tier::Poor => "poor",
        }
    }
    pub fn parse(s: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.as_str() == s)
    }
    /// Its place in [`Tier::ALL`] (0: excellent), e.g. to keep it in an atomic.
    pub fn index(self) -> u8 {
        self as u8
    }
    /// The tier at `i` in [`Tier::ALL`]; past the end, the worst.
    pub fn from_index(i: u8) -> Tier {
        Tier::ALL[usize::from(i).min(Tier::ALL.len() - 1)]
    }
    /// One step better (excellent stays excellent). Tiers order best first, so the worse of
    /// two is their `max`.
    pub fn better(self) -> Tier {
        Tier::from_index(self.index().saturating_sub(1))
    }
    /// Updates (presence, previews) per second, at most.
    pub fn fps(self) -> u32 {
        match self {
            Tier::Excellent => 60,
            Tier::Good => 30,
            Tier::Fair => 15,
            Tier::Poor => 5,
        }
    }
    /// The least time between two updates to one connection.
    pub fn min_interval(self) -> std::time::Duration {
        std::time::Duration::from_secs(1) / self.fps()
    }
    /// The preview resolution the `tier` message announces (the table in docs/PROTOCOL.md; a 16:9 thumbnail
    /// for poor).
    pub fn resolution(self) -> [u32; 2] {
        match self {
            Tier::Excellent => [1920, 1080],
            Tier::Good => [1280, 720],
            Tier::Fair => [854, 480],
            Tier::Poor => [320, 180],
        }
    }
    /// The tier for a downlink (docs/PROTOCOL.md thresholds). Non-finite counts as poor.
    pub fn from_mbps(mbps: f64) -> Tier {
        if mbps > 50.0 {
            Tier::Excellent
        } else if mbps >= 10.0 {
            Tier::Good
        } else if mbps >= 5.0 {
            Tier::Fair
        } else {
            Tier::Poor
        }
    }
}

/// The tier for a downlink estimate, with its update rate and preview resolution.
pub fn tier_for_mbps(mbps: f64) -> (Tier, u32, [u32; 2]) {
    let t = Tier::from_mbps(mbps);
    (t, t.fps(), t.resolution())
}

/// A Task Manager task as the `task` frame and the HTTP task endpoints show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub id: String,
    /// `share.direct_message`, `share.social_post`, `recognition.social`, …
    pub kind: String,
    /// `pending`, `running`, `succeeded`, `failed` or `dead`.
    pub state: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub session: Option<String>,
    pub created_by: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
    /// When a pending or failed task runs next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The connector a share goes to (`messenger`, `yapper`, `allat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<serde_json::Value>,
}

/// Where a `joined` state too large to inline is (`joined.state_ref`): the exact bytes of the
/// state's JSON served by `GET /v1/sessions/{id}/state?version=V` — `bytes` long, with this
/// SHA-256 (lowercase hex, also the response's `ETag`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRef {
    pub bytes: u64,
    pub sha256: String,
}

/// Server → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Joined {
        session: String,
        version: u64,
        /// Absent when the join named `since`: the client gets `ops` instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<Value>,
        /// Instead of `state`, for a join that asked (`state_ref`) when the state is large: the
        /// state at `version` is downloaded from `GET /v1/sessions/{id}/state?version=V`, in
        /// ranges when a download is cut; these are its size and hash.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state_ref: Option<StateRef>,
        role: Role,
        participants: Vec<Participant>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ops: Option<Vec<OpEntry>>,
        /// Instead of `ops`, for a `compact` join far enough behind: every edit after `since`
        /// composed and compressed into one (its `base_version` is `since`; applying it brings
        /// the replica to `version`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delta: Option<montage_ot::CompressedDelta>,
        /// The session's link role: what a signed-in user without a grant receives.
        #[serde(default = "Role::none")]
        link_role: Role,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// An end-to-end encrypted session (DESIGN §9.4): `state` is absent; the newest client
        /// snapshot and the sealed entries after it (or after `since`) take its place.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        encrypted: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snapshot: Option<SealedSnapshot>,
        /// In an encrypted session: this answer is the whole session (the snapshot, if any, and
        /// every entry after it), which replaces the replica — where a plain one sends `state`.
        /// Without it the entries follow the version the client has.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        whole: bool,
        /// The encrypted session's key epoch: edits and snapshots must be sealed under it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_epoch: Option<u64>,
    },
    ParticipantJoined {
        session: String,
        user: String,
        role: Role,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        color: Option<String>,
    },
    ParticipantLeft {
        session: String,
        user: String,
    },
    Ack {
        session: String,
        seq: u64,
        version: u64,
        /// In an encrypted session: the chain value of `version` (hex).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chain: Option<String>,
    },
    /// Another user's edit: `ops`, or in an encrypted session `data` (with its key epoch and
    /// chain value) and no `ops`. With `from`, the edits of versions `from..=version` composed
    /// into one (only to a client that joined with `ranges`); `user` is then their author, or
    /// empty when they have several.
    Op {
        session: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<u64>,
        version: u64,
        user: String,
        #[serde(default)]
        ops: Op,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_epoch: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chain: Option<String>,
    },
    /// An encrypted session's key epoch moved (a member was removed or link access narrowed):
    /// payloads sealed under an older epoch are refused; SDKs switch to the new key.
    KeyRotated {
        session: String,
        key_epoch: u64,
    },
    Presence {
        session: String,
        user: String,
        data: serde_json::Value,
    },
    RoleChanged {
        session: String,
        user: String,
        role: Role,
    },
    Tier {
        tier: Tier,
        fps: u32,
        resolution: [u32; 2],
    },
    /// A newer committed version of a subscribed session can be fetched at `url` (same token);
    /// with `t`, the composite frame at that playhead (a `follow` subscription).
    Preview {
        session: String,
        version: u64,
        tier: Tier,
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        t: Option<f64>,
    },
    CommentAdded {
        session: String,
        comment: Comment,
    },
    CommentUpdated {
        session: String,
        comment: Comment,
    },
    SuggestionAdded {
        session: String,
        suggestion: Suggestion,
    },
    SuggestionUpdated {
        session: String,
        suggestion: Suggestion,
    },
    /// A task of the session changed state (a share being delivered, …).
    Task {
        session: String,
        task: TaskInfo,
    },
    /// The owner changed link access; users left without access are taken out.
    LinkRoleChanged {
        session: String,
        role: Role,
    },
    /// The owner deleted the session: it is gone for everyone.
    SessionDeleted {
        session: String,
    },
    /// Something for this user (DESIGN §9.6), sent to every open connection of the user,
    /// joined to its session or not.
    Notification {
        notification: crate::social::Notification,
    },
    /// The `auth` token replaced the connection's; `exp` is its expiry (seconds since the epoch).
    Authed {
        exp: u64,
    },
    /// The connection's token expires at `exp`, about a minute from now: send `auth`.
    TokenExpiring {
        exp: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
        /// The session an unasked-for error is about (being taken out of it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        /// With `conflict`: the head version to rebase the refused edit onto.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u64>,
    },
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error {
            code,
            message: message.into(),
            retry_after_ms: None,
            session: None,
            version: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tier;

    #[test]
    fn tiers_order_best_first_and_step_up_one_at_a_time() {
        for (i, t) in Tier::ALL.into_iter().enumerate() {
            assert_eq!(Tier::from_index(t.index()), t);
            assert_eq!(usize::from(t.index()), i);
        }
        assert_eq!(Tier::from_index(200), Tier::Poor);
        assert_eq!(Tier::Poor.better(), Tier::Fair);
        assert_eq!(Tier::Good.better(), Tier::Excellent);
        assert_eq!(Tier::Excellent.better(), Tier::Excellent);
        assert_eq!(
            Tier::Good.max(Tier::Fair),
            Tier::Fair,
            "the worse is the greater"
        );
    }
}
