//! What a session handle reports to the app.

use montage_ot::Op;
use montage_protocol::{Comment, ErrorCode, Role, Suggestion, TaskInfo};

/// The link to the server, as the connection task sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Dialling a server URL (the first time or after a drop).
    Connecting,
    /// Connected and the session joined: edits flow.
    Connected,
    /// Dropped; edits are kept and sent after the next reconnect.
    Disconnected,
    /// The client was closed; nothing more will happen.
    Closed,
    /// The server refused the token (close 4401, or HTTP 401 from an older server) and the
    /// token source gave none it takes: a fixed token at once, a token source after two refusals
    /// in a row. Terminal: the client stops retrying; start a new one with a good token.
    Unauthorized,
}

/// One thing that happened in a session.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The server answered a join (first join or rejoin after a reconnect).
    Joined {
        version: u64,
        role: Role,
    },
    /// A session's state is large and being downloaded (docs/PROTOCOL.md "Large states"):
    /// `received` of `total` bytes so far (a cut download resumes where it stopped). On
    /// [`Client::events`](crate::Client::events), since the join waiting for it has not
    /// returned yet; a download that makes progress keeps that join waiting past its timeout.
    Loading {
        session: String,
        received: u64,
        total: u64,
    },
    /// Someone else's edit, as applied to the local replica (already transformed past the
    /// local edits not yet acknowledged). `version` is the newest it brings: a range on a slow
    /// link (docs/PROTOCOL.md "Ranges") or a compact catch-up stands for several versions, and
    /// `user` is empty when they have more than one author.
    Edit {
        version: u64,
        user: String,
        op: Op,
    },
    /// An encrypted session's payload did not open (a wrong or missing key, or a payload
    /// changed on the way) or its hash chain broke: nothing more of the session is applied and
    /// the handle reports [`Error::Decrypt`](crate::Error::Decrypt).
    Undecryptable {
        message: String,
    },
    /// An encrypted session's key moved to `key_epoch` (a member was removed or link access
    /// narrowed). Without its key (`have_key` false) edits wait until
    /// [`SessionHandle::add_key`](crate::SessionHandle::add_key).
    KeyRotated {
        key_epoch: u64,
        have_key: bool,
    },
    /// One of my edits is durable on the server as `version`.
    Ack {
        seq: u64,
        version: u64,
    },
    Presence {
        user: String,
        data: serde_json::Value,
    },
    ParticipantJoined {
        user: String,
        role: Role,
    },
    ParticipantLeft {
        user: String,
    },
    RoleChanged {
        user: String,
        role: Role,
    },
    /// The owner opened or closed link access (`none`: private).
    LinkRoleChanged {
        role: Role,
    },
    /// The owner deleted the session. The client lets it go (no rejoin).
    SessionDeleted,
    /// The server refused to join (or rejoin) the session for good: `forbidden` (no access:
    /// its owner must share it, or the token's `sessions` claim does not name it) or
    /// `not_found` (no such session, or it was deleted). The client lets it go; a later
    /// [`Client::join`](crate::Client::join) tries again.
    JoinRefused {
        code: ErrorCode,
        message: String,
    },
    /// I was taken out of the session: the owner closed link access, removed me, or my new
    /// token's scope no longer names it. The client lets it go.
    AccessLost {
        message: String,
    },
    /// A new comment or reply (mine included).
    CommentAdded(Comment),
    /// A comment was edited, deleted (a tombstone), resolved, reacted to, or its anchor moved
    /// with its layer/clip.
    CommentUpdated(Comment),
    /// A new pending suggestion.
    SuggestionAdded(Suggestion),
    /// A suggestion was accepted (applied as `version`, its edit arriving as [`Event::Edit`])
    /// or rejected.
    SuggestionUpdated(Suggestion),
    /// A task of the session (a share being delivered, …) changed state.
    Task(TaskInfo),
    /// The server refused my edit `seq` for good (`forbidden`, `bad_request`, …): the replica
    /// was reset from the server's state, dropping that edit and the `lost` local edits in all
    /// (it and those made on top of it). Also reported as an [`Event::Error`].
    EditRefused {
        seq: u64,
        code: ErrorCode,
        message: String,
        lost: usize,
    },
    /// The server refused something, or the replica had to be reset.
    Error {
        code: ErrorCode,
        message: String,
    },
    Connection(ConnectionState),
    /// (Client events.) The server closed the connection with this close frame, e.g. 4401
    /// `token expired`, 1008 `rate limit exceeded`, or 1001 when shutting down. The client
    /// reconnects (after 4401 with a new token from the source) unless the refusal is final
    /// ([`ConnectionState::Unauthorized`]).
    ServerClosed {
        code: u16,
        reason: String,
    },
    /// (Client events.) Dialling `url` failed (refused, unreachable, TLS, timed out); the
    /// client tries the next URL after the backoff.
    ConnectFailed {
        url: String,
        message: String,
    },
    /// (Client events.) The server took the refreshed token; it holds until `exp` (seconds
    /// since the Unix epoch).
    TokenRefreshed {
        exp: u64,
    },
    /// (Client events.) No new token: the source failed or timed out, gave a token for another
    /// user, or the server refused it. The connection goes on with the token it has until that
    /// expires; the SDK tries again (1 s, doubling, while the old token holds) and asks the
    /// source again before the next connection.
    TokenFailed {
        message: String,
    },
    /// (Client events.) Something for this user landed in their inbox (a mention, a reply, an
    /// invite, a role, an award, a decided suggestion), in any session, joined or not. The
    /// inbox itself: [`Api::notifications`](crate::Api::notifications).
    Notification(montage_protocol::Notification),
    /// The app read events too slowly and this many were skipped; `state()` is still exact.
    Lagged(u64),
}
