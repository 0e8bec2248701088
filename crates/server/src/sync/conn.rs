//! How the session actors (and live previews) reach one connection: its bounded send queue, its
//! kill switch, and the link it shares with its reader and writer tasks (tier, drained bytes,
//! paced presence).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use montage_ot::Op;
use montage_protocol::{
    ErrorCode, Role, ServerMessage, Tier, encode_op_range, encode_server_binary, encode_with_rid,
    server_json_to_binary,
};
use serde_json::Value as Json;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::access::{Principal, Scope};
use crate::metrics::Metrics;
use crate::presence::{Offer, Outbox, PresenceKey};
use crate::sync::core::json_len;

/// A server frame, made once for every connection it goes to: its JSON text, and its binary
/// form (`montage.v1.proto`), translated from the text when the first binary connection writes
/// it and then shared, so a broadcast is translated once however many binary clients get it.
#[derive(Clone)]
pub struct Frame(Arc<FrameForms>);

struct FrameForms {
    json: Utf8Bytes,
    binary: OnceLock<Bytes>,
}

impl Frame {
    pub fn from_static(s: &'static str) -> Frame {
        Frame::from(Utf8Bytes::from_static(s))
    }
    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.json.as_str()
    }
    /// Bytes of the JSON text: what the send queue counts (the binary form is smaller).
    pub fn len(&self) -> usize {
        self.0.json.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.json.is_empty()
    }
    pub fn json(&self) -> Utf8Bytes {
        self.0.json.clone()
    }
    pub fn binary(&self) -> Bytes {
        self.0
            .binary
            .get_or_init(|| match server_json_to_binary(self.as_str()) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    // Every frame the server makes decodes; this would be a bug, not input.
                    tracing::error!(error = %e, "a server frame did not translate to protobuf");
                    let msg = ServerMessage::error(ErrorCode::Internal, "encoding failed");
                    Bytes::from(encode_server_binary(&msg, None))
                }
            })
            .clone()
    }
}

impl From<Utf8Bytes> for Frame {
    fn from(json: Utf8Bytes) -> Frame {
        Frame(Arc::new(FrameForms {
            json,
            binary: OnceLock::new(),
        }))
    }
}

impl From<String> for Frame {
    fn from(json: String) -> Frame {
        Frame::from(Utf8Bytes::from(json))
    }
}

impl From<&str> for Frame {
    fn from(json: &str) -> Frame {
        Frame::from(Utf8Bytes::from(json))
    }
}

impl std::ops::Deref for Frame {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Frame) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// What a connection's writer task sends.
#[derive(Debug)]
pub enum Outbound {
    Frame(Frame),
    /// Close the socket with this code and reason after the frames queued before it.
    Close(u16, String),
    /// A WebSocket ping carrying this number (connection quality: its pong times the round trip).
    Ping(u64),
}

/// How a session actor reaches one connection.
#[derive(Clone, Debug)]
pub struct ConnHandle {
    pub id: u64,
    pub user: Arc<str>,
    tx: mpsc::Sender<Outbound>,
    /// Cancelled when the connection must go at once (its reader fell behind).
    pub(super) kill: CancellationToken,
    metrics: Arc<Metrics>,
    /// Display name from the token's `name`.
    pub name: Option<Arc<str>>,
    /// Tier, drain count and paced presence, shared with the connection's reader and writer.
    link: Arc<ConnLink>,
}

impl ConnHandle {
    pub fn new(
        id: u64,
        user: Arc<str>,
        tx: mpsc::Sender<Outbound>,
        kill: CancellationToken,
        metrics: Arc<Metrics>,
    ) -> ConnHandle {
        ConnHandle {
            id,
            user,
            tx,
            kill,
            metrics,
            name: None,
            link: Arc::new(ConnLink::default()),
        }
    }

    pub fn with_name(mut self, name: Option<&str>) -> ConnHandle {
        self.name = name.map(Arc::from);
        self
    }

    pub fn link(&self) -> &Arc<ConnLink> {
        &self.link
    }

    /// Who this connection is now: its user and its token's current scope (a refresh may
    /// change the scope, never the user).
    pub fn principal(&self) -> Principal {
        Principal::new(self.user.clone(), self.link.scope())
    }

    /// The connection's effective role in `session`.
    pub fn role_in(&self, session: &str, meta: &crate::store::SessionMeta) -> Role {
        crate::access::role_in(&self.user, self.link.scope().as_deref(), session, meta)
    }

    /// Queues presence at this connection's tier rate: now if its interval has passed, else
    /// held (the newest per session and user) until the reader's flush.
    pub fn send_presence(&self, session: &Arc<str>, user: &Arc<str>, frame: Frame) {
        let Some(frame) = self.presence_behind_range(session, user, frame) else {
            return;
        };
        let tier = self.link.tier();
        let offer =
            self.link
                .outbox()
                .offer((session.clone(), user.clone()), frame, tier, Instant::now());
        match offer {
            Offer::SendNow(f) => {
                self.send(f);
            }
            Offer::HeldFirst => self.link.wake.notify_one(),
            Offer::Held => {}
        }
    }

    /// Drops held presence of a session (of one user, or all of it).
    pub fn forget_presence(&self, session: &str, user: Option<&str>) {
        self.link.outbox().forget(session, user);
    }

    /// Sends presence the reader's pacing held, behind a held range of its session if there is
    /// one (see [`send_presence`](Self::send_presence)).
    pub fn send_held_presence(&self, (session, user): PresenceKey, frame: Frame) -> bool {
        match self.presence_behind_range(&session, &user, frame) {
            Some(frame) => self.send(frame),
            None => true,
        }
    }

    /// Presence of a session whose edits are held in a range goes out right after the range, as
    /// the newest per user: it was made on the range's last version, and a later edit that
    /// moves it sends it again. `Some`: no range is held; send it as usual.
    fn presence_behind_range(
        &self,
        session: &Arc<str>,
        user: &Arc<str>,
        frame: Frame,
    ) -> Option<Frame> {
        if !self.link.has_held.load(Relaxed) {
            return Some(frame);
        }
        let mut held = self.link.held();
        let Some(h) = held.iter_mut().find(|h| h.session == *session) else {
            return Some(frame);
        };
        // Older presence of the user still paced in the outbox must not come after this.
        self.link.outbox().forget(session, Some(user));
        let len = frame.len();
        let old = match h.after.iter_mut().find(|(u, _)| u == user) {
            Some(slot) => std::mem::replace(&mut slot.1, frame).len(),
            None => {
                h.after.push((user.clone(), frame));
                0
            }
        };
        self.link.release_queue_bytes(old);
        self.link.force_queue_bytes(len);
        None
    }

    /// Queues `version` of `session` (`op` as applied, its `op` frame made once for everyone).
    /// A connection whose client takes ranges (`ranges`) and that can't take edits one by one —
    /// at the `fair` or `poor` tier, or with frames still waiting for its writer — gets
    /// consecutive versions composed into one frame (docs/PROTOCOL.md "Ranges"), so a slow
    /// reader keeps up with a slider drag instead of being dropped. The composition is exact for
    /// transforms (`Op::compose_range`), so the client rebases its own edits past the range
    /// exactly as the server rebases them past the versions one by one.
    pub fn send_op(
        &self,
        session: &Arc<str>,
        version: u64,
        user: &Arc<str>,
        op: Option<&Op>,
        frame: &Frame,
    ) -> bool {
        let Some(op) = op else {
            return self.send(frame.clone());
        };
        let mut held = self.link.held();
        if let Some(i) = held.iter().position(|h| h.session == *session) {
            let h = &mut held[i];
            if h.to + 1 == version && !h.full {
                h.op.append_range(op);
                h.to = version;
                if h.user.as_ref().is_some_and(|u| u != user) {
                    h.user = None;
                }
                h.single = None;
                // The range grew by at most this version's frame: that bound stands for its size
                // until it passes the cap, and only then is the range measured (serializing a
                // range of typing on every keystroke would cost a slow reader's server up to
                // 64 KiB of JSON per edit).
                let bound = h.bytes + frame.len();
                let bytes = if bound > MAX_RANGE_BYTES {
                    range_bytes(session, &h.op)
                } else {
                    bound
                };
                let before = std::mem::replace(&mut h.bytes, bytes);
                // Past the cap a range takes no more once it grows (a large value written
                // again and again does not grow it).
                h.full = bytes > MAX_RANGE_BYTES && bytes > before;
                self.link.release_queue_bytes(before);
                if !self.link.take_queue_bytes(bytes) {
                    drop(held);
                    self.drop_slow();
                    return false;
                }
                self.metrics.range_merged_total.inc();
                return true;
            }
            // Not the next version (or big enough): what is held goes first.
            let h = held.remove(i);
            self.link.has_held.store(!held.is_empty(), Relaxed);
            if !self.push_held(h) {
                return false;
            }
        }
        let tier = self.link.tier();
        let backlog = self.link.queued_bytes() > 0;
        if !backlog && range_interval(tier).is_zero() {
            drop(held);
            return self.send(frame.clone());
        }
        let bytes = range_bytes(session, op);
        if !self.link.take_queue_bytes(bytes) {
            drop(held);
            self.drop_slow();
            return false;
        }
        held.push(Held {
            session: session.clone(),
            from: version,
            to: version,
            user: Some(user.clone()),
            op: op.clone(),
            single: Some(frame.clone()),
            bytes,
            full: false,
            after: Vec::new(),
        });
        self.link.has_held.store(true, Relaxed);
        drop(held);
        self.link.held_ready.notify_one();
        true
    }

    /// Queues a frame without waiting: a full queue (in frames or in bytes) means the reader
    /// is too slow, and it is dropped rather than allowed to hold up everyone else in the
    /// session or to hold the server's memory. Held ranges go first (they are older).
    pub fn send(&self, frame: impl Into<Frame>) -> bool {
        if self.link.has_held.load(Relaxed) {
            // Under the lock until the frame is queued too: no range of a session may be held
            // and written between the older range and this frame.
            let mut held = self.link.held();
            self.link.has_held.store(false, Relaxed);
            for h in std::mem::take(&mut *held) {
                if !self.push_held(h) {
                    return false;
                }
            }
            return self.send_unordered(frame);
        }
        self.send_unordered(frame)
    }

    /// [`send`](Self::send) for a frame of no session (`tier`, `token_expiring`, a
    /// notification): it need not follow the edits held in ranges, so it leaves them held.
    pub fn send_unordered(&self, frame: impl Into<Frame>) -> bool {
        let frame = frame.into();
        let len = frame.len();
        if !self.link.take_queue_bytes(len) {
            self.drop_slow();
            return false;
        }
        match self.tx.try_send(Outbound::Frame(frame)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.link.release_queue_bytes(len);
                self.drop_slow();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.link.release_queue_bytes(len);
                false
            }
        }
    }

    /// Queues a held range's frames for the writer (their bytes were counted when held).
    fn push_held(&self, h: Held) -> bool {
        let counted = h.counted();
        let frames = h.into_frames();
        self.link.release_queue_bytes(counted);
        self.link
            .force_queue_bytes(frames.iter().map(Frame::len).sum::<usize>());
        for f in frames {
            match self.tx.try_send(Outbound::Frame(f)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(Outbound::Frame(f))) => {
                    self.link.release_queue_bytes(f.len());
                    self.drop_slow();
                    return false;
                }
                Err(_) => return false,
            }
        }
        true
    }

    fn drop_slow(&self) {
        if !self.kill.is_cancelled() {
            self.metrics.dropped_slow_total.inc();
            tracing::info!(conn = self.id, user = %self.user, "dropping slow reader");
        }
        self.kill.cancel();
    }

    pub fn error(&self, code: ErrorCode, message: impl Into<String>, rid: Option<&Json>) {
        self.send(encode_with_rid(&ServerMessage::error(code, message), rid));
    }
}

/// A composed range that grows past this many bytes of JSON takes no more versions.
const MAX_RANGE_BYTES: usize = 64 * 1024;

/// About the bytes of a range's `op` frame: its edit's JSON and the envelope.
fn range_bytes(session: &str, op: &Op) -> usize {
    json_len(op) + session.len() + 96
}

/// How long edits for a connection at `tier` are gathered into one range before its writer
/// sends them (zero: only while frames wait for the writer). A slider dragged for ten seconds
/// reaches a `poor` reader as about ten frames.
pub fn range_interval(tier: Tier) -> Duration {
    match tier {
        Tier::Excellent | Tier::Good => Duration::ZERO,
        Tier::Fair => Duration::from_millis(250),
        Tier::Poor => Duration::from_secs(1),
    }
}

/// Consecutive versions of one session held for a connection, composed into one edit, and the
/// presence of that session that must follow them.
#[derive(Debug)]
pub struct Held {
    session: Arc<str>,
    from: u64,
    to: u64,
    /// Their author; `None` when they have several.
    user: Option<Arc<str>>,
    op: Op,
    /// The shared `op` frame while the range holds one version (sent as it is).
    single: Option<Frame>,
    /// Bytes counted against the connection's queue budget for the range.
    bytes: usize,
    /// It grew past [`MAX_RANGE_BYTES`]: the next version starts a new range.
    full: bool,
    after: Vec<(Arc<str>, Frame)>,
}

impl Held {
    /// The range's `op` frame, then the presence behind it.
    pub fn into_frames(self) -> Vec<Frame> {
        let op = self.single.unwrap_or_else(|| {
            let ops = serde_json::to_string(&self.op).unwrap_or_else(|_| "[]".to_owned());
            let user = self.user.as_deref().unwrap_or("");
            Frame::from(encode_op_range(
                &self.session,
                self.from,
                self.to,
                user,
                &ops,
            ))
        });
        let mut frames = Vec::with_capacity(1 + self.after.len());
        frames.push(op);
        frames.extend(self.after.into_iter().map(|(_, f)| f));
        frames
    }
    /// Bytes counted for it: the range's estimate and the presence behind it.
    pub fn counted(&self) -> usize {
        self.bytes + self.after.iter().map(|(_, f)| f.len()).sum::<usize>()
    }
}

/// What a connection's reader, writer and the session actors share about it: its effective
/// tier, the bytes its writer drained, and the presence held back for it.
#[derive(Debug)]
pub struct ConnLink {
    tier: AtomicU8,
    pub drained: AtomicU64,
    pub outbox: Mutex<Outbox>,
    /// Woken when the outbox holds a first value, so the reader schedules its flush, and when
    /// a frame reaches the writer of a `quiet` connection.
    pub wake: Notify,
    /// Bytes of frames queued for the writer, and how many may be (`send_queue_bytes`).
    queued_bytes: AtomicUsize,
    queue_budget: AtomicUsize,
    /// Set by the reader while it measures nothing (no per-connection timer work); the writer
    /// clears it and wakes the reader when a frame comes.
    pub quiet: AtomicBool,
    /// The token's `sessions` scope, replaced when the client refreshes its token.
    scope: Mutex<Option<Arc<Scope>>>,
    /// Live preview subscriptions: session → what stops its pacing task. Shared so a session
    /// that takes the connection out (lost access) stops its previews too.
    previews: Mutex<HashMap<String, CancellationToken>>,
    /// Edits held for this connection as ranges (usually none), and whether any are.
    held: Mutex<Vec<Held>>,
    has_held: AtomicBool,
    /// Woken when a range is first held, so the writer schedules it.
    pub held_ready: Notify,
}

impl Default for ConnLink {
    fn default() -> Self {
        ConnLink {
            tier: AtomicU8::new(Tier::Excellent.index()),
            drained: AtomicU64::new(0),
            outbox: Mutex::new(Outbox::default()),
            wake: Notify::new(),
            queued_bytes: AtomicUsize::new(0),
            queue_budget: AtomicUsize::new(usize::MAX),
            quiet: AtomicBool::new(false),
            scope: Mutex::new(None),
            previews: Mutex::new(HashMap::new()),
            held: Mutex::new(Vec::new()),
            has_held: AtomicBool::new(false),
            held_ready: Notify::new(),
        }
    }
}

impl ConnLink {
    /// Bounds the bytes queued for this connection.
    pub fn set_queue_budget(&self, bytes: usize) {
        self.queue_budget.store(bytes, Relaxed);
    }
    /// Bytes queued for the writer now.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Relaxed)
    }
    /// Counts `len` more bytes queued, unless that passes the budget. An empty queue takes any
    /// one frame, so a `joined` larger than the budget still goes out.
    fn take_queue_bytes(&self, len: usize) -> bool {
        let budget = self.queue_budget.load(Relaxed);
        self.queued_bytes
            .fetch_update(Relaxed, Relaxed, |q| {
                (q == 0 || q.saturating_add(len) <= budget).then(|| q.saturating_add(len))
            })
            .is_ok()
    }
    /// Counts `len` more bytes queued whatever the budget (presence replacing older presence).
    fn force_queue_bytes(&self, len: usize) {
        self.queued_bytes.fetch_add(len, Relaxed);
    }
    fn held(&self) -> std::sync::MutexGuard<'_, Vec<Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Whether ranges are held for the writer.
    pub fn has_held(&self) -> bool {
        self.has_held.load(Relaxed)
    }
    /// Takes every held range (their bytes stay counted until the writer releases them), unless
    /// `queued_first` says frames wait in the queue: those are older and go first.
    pub fn take_held(&self, queued_first: impl FnOnce() -> bool) -> Vec<Held> {
        let mut held = self.held();
        if queued_first() {
            return Vec::new();
        }
        self.has_held.store(false, Relaxed);
        std::mem::take(&mut *held)
    }
    /// The writer took a frame of `len` bytes off the queue.
    pub fn release_queue_bytes(&self, len: usize) {
        let _ = self
            .queued_bytes
            .fetch_update(Relaxed, Relaxed, |q| Some(q.saturating_sub(len)));
    }
    pub fn tier(&self) -> Tier {
        Tier::from_index(self.tier.load(Relaxed))
    }
    pub fn set_tier(&self, t: Tier) {
        self.tier.store(t.index(), Relaxed);
    }
    pub fn scope(&self) -> Option<Arc<Scope>> {
        self.scope.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn set_scope(&self, scope: Option<Arc<Scope>>) {
        *self.scope.lock().unwrap_or_else(|p| p.into_inner()) = scope;
    }
    /// The live preview subscriptions of this connection.
    pub fn previews(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.previews.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Stops the live previews of `session`, if subscribed.
    pub fn stop_previews(&self, session: &str) -> bool {
        self.previews()
            .remove(session)
            .map(|stop| stop.cancel())
            .is_some()
    }
    pub fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_past_its_byte_budget_is_dropped_but_one_large_frame_always_fits() {
        let (tx, mut rx) = mpsc::channel(64);
        let kill = CancellationToken::new();
        let h = ConnHandle::new(1, Arc::from("u"), tx, kill.clone(), Arc::default());
        h.link().set_queue_budget(1_000);
        // An empty queue takes one frame of any size (a large `joined`).
        assert!(h.send("x".repeat(5_000)));
        assert_eq!(h.link().queued_bytes(), 5_000);
        // The writer takes it off the queue.
        let Ok(Outbound::Frame(f)) = rx.try_recv() else {
            panic!("no frame")
        };
        h.link().release_queue_bytes(f.len());
        assert!(h.send("y".repeat(600)));
        assert!(!kill.is_cancelled());
        // Far fewer frames than the queue holds, but more bytes than the budget.
        assert!(!h.send("z".repeat(600)));
        assert!(
            kill.is_cancelled(),
            "dropped like a reader past its frame budget"
        );
        assert_eq!(
            h.link().queued_bytes(),
            600,
            "the refused frame is not counted"
        );
    }
}
