//! Edits forwarded to a session's home node and the home's answers (DESIGN §9.7): request and
//! reply between two nodes, beside the fan-out. `sync::cluster::home` decides what to forward
//! and where; the bus only carries it, in the order it was asked to.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::sync::oneshot;

/// How long a forwarding node waits for the home's answer before it asks where the home is
/// now and tries again (the edit is idempotent by its `(client, seq)`).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// An edit for the home node to sequence, as the client sent it; the forwarding node checked
/// the sender's role already.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forward {
    pub session: String,
    pub user: String,
    pub client: String,
    pub seq: u64,
    pub base: u64,
    /// The edit's JSON.
    pub ops: String,
    /// An encrypted session's sealed edit (then `ops` is `[]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<montage_protocol::sealed::Payload>,
    /// The client's request id, for a refusal the home words.
    #[serde(default)]
    pub rid: Option<Json>,
}

/// The home's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ForwardReply {
    /// Durable as this version (an earlier one for a resend).
    Acked { version: u64 },
    /// Not applied: this error frame is for the client.
    Refused { frame: String },
    /// This node is not the session's home (any more): ask the lease again.
    NotHome,
}

/// What a home node is asked, with where its answer goes. Dropping `reply` unanswered tells
/// the forwarding node nothing; it times out and asks again.
pub type Incoming = (Forward, oneshot::Sender<ForwardReply>);

/// Answers awaited by a forwarding node, by request number.
#[derive(Default)]
pub(super) struct Awaited {
    next: std::sync::atomic::AtomicU64,
    waiting: Mutex<HashMap<u64, (oneshot::Sender<ForwardReply>, Instant)>>,
}

type Waiting = HashMap<u64, (oneshot::Sender<ForwardReply>, Instant)>;

impl Awaited {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A number for a new request and the receiver of its answer. The entry goes when the
    /// answer comes, on [`Awaited::forget`], or with a sweep once it is too old.
    pub(super) fn start(&self) -> (u64, oneshot::Receiver<ForwardReply>) {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting().insert(id, (tx, Instant::now()));
        (id, rx)
    }

    /// Hands the answer to request `id` over; `None` drops its sender (unreachable).
    pub(super) fn answer(&self, id: u64, reply: Option<ForwardReply>) {
        if let Some((tx, _)) = self.waiting().remove(&id)
            && let Some(reply) = reply
        {
            let _ = tx.send(reply);
        }
    }

    pub(super) fn forget(&self, id: u64) {
        self.waiting().remove(&id);
    }

    /// Gives up on requests older than [`FORWARD_TIMEOUT`]: their callers see them fail.
    pub(super) fn sweep(&self) {
        self.waiting()
            .retain(|_, (_, at)| at.elapsed() < FORWARD_TIMEOUT);
    }
}
