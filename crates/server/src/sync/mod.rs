//! Media Sync: one actor task per loaded session owns its document, history, roles and
//! participants; nothing else touches them, so there is no lock on the edit path.
//!
//! An edit is transformed against the versions after its base, applied, handed to the group
//! committer and only acked (and broadcast) once the committer reports it durable. Replies that
//! depend on state — `joined`, HTTP state reads — wait for the same point, so no client ever sees a
//! version that a crash could take back.

mod actor;
mod cluster;
mod committer;
pub(crate) mod conn;
pub mod core;
mod history;
pub mod http;
mod membership;
mod observers;
pub(crate) mod rebase;
mod registry;
pub(crate) mod retention;
/// Link access, titles and deletion: the owner's settings of a session.
mod settings;
mod snapshots;
/// The actor's side of comments and suggestions.
mod social;
#[cfg(test)]
mod tests;
mod watches;

pub use cluster::{
    Homes, MAX_CONFLICT_RETRIES, spawn_bus_dispatcher, spawn_forward_dispatcher, spawn_renewals,
};
pub use committer::{CommitItem, CommitResult, run_committer, run_committer_with_bus};
pub use conn::{ConnHandle, ConnLink, Frame, Outbound};
pub use history::state_at;
pub(crate) use http::encrypted as encrypted_session;
pub use membership::JoinAs;
pub use observers::EditObserver;
pub use rebase::rebase;
pub use registry::{PlayheadWatch, Sessions, VersionWatch};
pub use settings::Configured;

use std::time::Instant;

use montage_ot::Op;
use montage_protocol::{ErrorCode, Role};
use serde_json::Value as Json;
use tokio::sync::oneshot;

use crate::bus::BusEvent;

/// What a session actor is asked to do.
#[derive(Debug)]
pub enum SessionMsg {
    Join {
        conn: ConnHandle,
        client: String,
        how: JoinAs,
        rid: Option<Json>,
    },
    Op {
        conn: ConnHandle,
        base: u64,
        seq: u64,
        ops: Op,
        /// An encrypted session's sealed edit (then `ops` is empty).
        sealed: Option<core::SealedEdit>,
        rid: Option<Json>,
        received: Instant,
    },
    /// An encrypted session's client snapshot of `version`.
    Snapshot {
        conn: ConnHandle,
        version: u64,
        payload: core::SealedEdit,
        rid: Option<Json>,
    },
    Presence {
        conn: ConnHandle,
        data: Json,
        rid: Option<Json>,
    },
    SetRole {
        conn: ConnHandle,
        user: String,
        role: Role,
        rid: Option<Json>,
    },
    Leave {
        conn: u64,
    },
    /// The connection is gone (closed, killed or shut down).
    Disconnect {
        conn: u64,
    },
    /// A frame for every ready participant (a `task` update).
    Notify {
        frame: Frame,
    },
    /// Raises `user` to `role` (never lowers): an accepted invite. Replies with the role held.
    Grant {
        user: String,
        role: Role,
        reply: oneshot::Sender<Result<Role, ErrorCode>>,
    },
    /// Turns the head (or one element of it) into `target`'s with one edit by `conn`'s user
    /// (`POST …/restore`); the reply
    /// comes once it is durable, refusals go to `conn`.
    Restore {
        conn: ConnHandle,
        /// The version restored, and its document.
        version: u64,
        target: montage_ot::Value,
        /// Only this layer, track, clip or comment thread (by id); the whole document when
        /// `None`.
        element: Option<String>,
        reply: oneshot::Sender<Result<(u64, String), ErrorCode>>,
    },
    /// Where `user`'s timeline playhead is (their presence `playhead`), for a timeline preview
    /// starting to follow it.
    Playhead {
        user: std::sync::Arc<str>,
        reply: oneshot::Sender<Option<f64>>,
    },
    /// The committed state, for the HTTP API.
    GetState {
        who: crate::access::Principal,
        reply: oneshot::Sender<Result<(u64, String), ErrorCode>>,
    },
    /// The owner opens or closes link access from a socket.
    SetLinkRole {
        conn: ConnHandle,
        role: Role,
        rid: Option<Json>,
    },
    /// A settings change over HTTP (`PATCH /v1/sessions/{id}`), by an owner.
    Configure {
        who: crate::access::Principal,
        update: crate::store::SessionUpdate,
        reply: oneshot::Sender<Result<Configured, (ErrorCode, String)>>,
    },
    /// Deletes the session (owner): replies with the ids of the asset records removed.
    Delete {
        who: crate::access::Principal,
        reply: oneshot::Sender<Result<Vec<String>, (ErrorCode, String)>>,
    },
    /// The connection's token changed scope: it leaves the session if it lost access.
    Recheck {
        conn: ConnHandle,
    },
    /// A comment or suggestion message (`crate::social`).
    Social {
        conn: ConnHandle,
        req: crate::social::Request,
        rid: Option<Json>,
    },
    /// Flush, snapshot and stop.
    Shutdown,
    /// An event from another node (scale-out).
    Remote(BusEvent),
    /// An edit another node forwards to this one, the session's home (`cluster::home`).
    Forwarded {
        req: crate::bus::Forward,
        reply: cluster::HomeReply,
    },
    /// The home's answer to forwarded edit `n`.
    ForwardAnswer {
        n: u64,
        /// Which send of it this answers.
        attempt: u32,
        outcome: cluster::ForwardOutcome,
    },
    /// Send the forwarded edits that failed again.
    Reforward,
    /// Look at forwarded edits waiting long for an answer (their home may be dead).
    ForwardCheck,
    /// The home acked `version`: read it from the store if the bus has not brought it.
    CatchUpTo {
        version: u64,
    },
    /// This node's lease of the session (of `epoch`) went to another node.
    LeaseLost {
        epoch: u64,
    },
}
