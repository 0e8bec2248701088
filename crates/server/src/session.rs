//! Media Sync: one actor task per loaded session owns its document, history, roles and
//! participants; nothing else touches them, so there is no lock on the edit path.
//!
//! An edit is transformed against the versions after its base, applied, handed to the group
//! committer and only acked (and broadcast) once the committer reports it durable. Replies that
//! depend on state — `joined`, HTTP state reads — wait for the same point, so no client ever sees a
//! version that a crash could take back.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use montage_ot::{Op, Value};
use montage_protocol::{
    ErrorCode, OpEntry, Participant as WireParticipant, Role, ServerMessage, encode,
    encode_with_rid,
};
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bus::{Bus, BusEvent};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::presence::{Offer, PresenceTable};
use crate::quality::ConnLink;
use crate::rebase::rebase;
use crate::store::{Loaded, SessionMeta, Snapshot, Store, StoredOp, Write};

mod cluster;
pub use cluster::{MAX_CONFLICT_RETRIES, spawn_bus_dispatcher};
/// The actor's side of comments and suggestions.
mod social;

/// Versions between a base and the head past which an edit is refused with `conflict`.
const MAX_REBASE: u64 = 100_000;
/// Recent `(seq, version)` pairs kept per client for idempotency; older ones are looked up.
const RECENT_SEQS: usize = 256;
/// Clients whose recent seqs a session keeps in memory before forgetting idle ones.
const MAX_TRACKED_CLIENTS: usize = 10_000;
/// Mailbox of one session actor.
const MAILBOX: usize = 512;

/// The roles check of the system design: may `user` do what needs `required`?
pub fn check_permission(meta: &SessionMeta, user: &str, required: Role) -> bool {
    meta.role_of(user) >= required
}

/// What a connection's writer task sends.
#[derive(Debug)]
pub enum Outbound {
    Frame(Utf8Bytes),
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
    kill: CancellationToken,
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

    /// Queues presence at this connection's tier rate: now if its interval has passed, else
    /// held (the newest per session and user) until the reader's flush.
    pub fn send_presence(&self, session: &Arc<str>, user: &Arc<str>, frame: Utf8Bytes) {
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

    /// Queues a frame without waiting: a full queue means the reader is too slow, and it is
    /// dropped rather than allowed to hold up everyone else in the session.
    pub fn send(&self, frame: impl Into<Utf8Bytes>) -> bool {
        match self.tx.try_send(Outbound::Frame(frame.into())) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.kill.is_cancelled() {
                    self.metrics.dropped_slow_total.fetch_add(1, Relaxed);
                    tracing::info!(conn = self.id, user = %self.user, "dropping slow reader");
                }
                self.kill.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub fn error(&self, code: ErrorCode, message: impl Into<String>, rid: Option<&Json>) {
        self.send(encode_with_rid(&ServerMessage::error(code, message), rid));
    }
}

/// What a session actor is asked to do.
#[derive(Debug)]
pub enum SessionMsg {
    Join {
        conn: ConnHandle,
        client: String,
        since: Option<u64>,
        rid: Option<Json>,
    },
    Op {
        conn: ConnHandle,
        base: u64,
        seq: u64,
        ops: Op,
        rid: Option<Json>,
        received: Instant,
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
        frame: Utf8Bytes,
    },
    /// Raises `user` to `role` (never lowers): an accepted invite. Replies with the role held.
    Grant {
        user: String,
        role: Role,
        reply: oneshot::Sender<Result<Role, ErrorCode>>,
    },
    /// The committed state, for the HTTP API.
    GetState {
        user: String,
        reply: oneshot::Sender<Result<(u64, String), ErrorCode>>,
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
}

/// A write for the group committer, with where to report the outcome.
#[derive(Debug)]
pub struct CommitItem {
    pub generation: u64,
    pub write: Write,
    pub done: mpsc::UnboundedSender<CommitResult>,
}

#[derive(Debug, Clone, Copy)]
pub struct CommitResult {
    pub version: u64,
    pub snapshot: bool,
    pub ok: bool,
    /// Not written because another node holds the version (shared store only).
    pub conflict: bool,
    /// The `generation` of the item.
    pub epoch: u64,
}

/// The writer task: drains whatever appends are queued — from any number of sessions — into one
/// transaction, so concurrent edits share one fsync.
pub async fn run_committer(
    store: Arc<dyn Store>,
    rx: mpsc::Receiver<CommitItem>,
    metrics: Arc<Metrics>,
    max_batch: usize,
) {
    run_committer_with_bus(store, rx, metrics, max_batch, None).await
}

/// `run_committer` that also publishes every committed version on the fan-out bus.
pub async fn run_committer_with_bus(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<CommitItem>,
    metrics: Arc<Metrics>,
    max_batch: usize,
    bus: Option<Arc<dyn Bus>>,
) {
    // A session whose write failed must not get later versions in (that would leave a gap):
    // its actor generation is poisoned, and a reload (or a conflict retry) starts a new one.
    // Generations only grow, so one entry per session — the newest poisoned one — is enough,
    // and it goes when a newer generation writes. The flag says whether it was a conflict.
    let mut poisoned: HashMap<String, (u64, bool)> = HashMap::new();
    let mut items = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut items, max_batch).await > 0 {
        let mut writes = Vec::with_capacity(items.len());
        let mut notify = Vec::with_capacity(items.len());
        for item in items.drain(..) {
            let (version, snapshot) = match &item.write {
                Write::Op { op, .. } => (op.version, false),
                Write::Snapshot { snapshot, .. } => (snapshot.version, true),
            };
            let key = (item.write.session().to_owned(), item.generation);
            match poisoned.get(&key.0) {
                Some(&(g, conflict)) if key.1 <= g => {
                    let _ = item.done.send(CommitResult {
                        version,
                        snapshot,
                        ok: false,
                        conflict,
                        epoch: key.1,
                    });
                    continue;
                }
                Some(_) => {
                    poisoned.remove(&key.0);
                }
                None => {}
            }
            notify.push((key, item.done, version, snapshot));
            writes.push(item.write);
        }
        if writes.is_empty() {
            continue;
        }
        let (result, conflicted) = cluster::commit_isolating_conflicts(&*store, &mut writes).await;
        let ok = match result {
            Ok(()) => {
                metrics.commit_batches_total.fetch_add(1, Relaxed);
                true
            }
            Err(e) => {
                metrics.commit_failures_total.fetch_add(1, Relaxed);
                tracing::error!(error = %e, writes = writes.len(), "group commit failed");
                false
            }
        };
        if ok && let Some(bus) = &bus {
            for w in &writes {
                if let Write::Op { session, op } = w {
                    bus.publish(BusEvent::committed(session, op));
                }
            }
        }
        for ((session, generation), done, version, snapshot) in notify {
            let conflict = conflicted.contains(&session);
            if !ok || conflict {
                let e = poisoned.entry(session).or_insert((generation, conflict));
                *e = (e.0.max(generation), conflict);
            }
            let _ = done.send(CommitResult {
                version,
                snapshot,
                ok: ok && !conflict,
                conflict,
                epoch: generation,
            });
        }
    }
}

struct Entry {
    generation: u64,
    tx: mpsc::Sender<SessionMsg>,
}

/// The loaded sessions: spawns an actor on first use, forgets it when it unloads.
pub struct Sessions {
    map: Mutex<HashMap<Arc<str>, Entry>>,
    store: Arc<dyn Store>,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    committer: Mutex<Option<mpsc::Sender<CommitItem>>>,
    next_generation: AtomicU64,
    tasks: TaskTracker,
    /// The newest committed version per session, for live preview subscribers. Kept outside the
    /// actors so a subscription outlives an unload; an entry goes when its last watcher does.
    versions: Mutex<HashMap<Arc<str>, watch::Sender<u64>>>,
    /// Set when nodes share the store: actors then sequence across nodes (`cluster`).
    bus: Option<Arc<dyn Bus>>,
    /// Where accepted edits are reported for recognition (set by the collaboration service).
    contributions: crate::collaboration::ContributionSink,
}

impl Sessions {
    pub fn new(
        store: Arc<dyn Store>,
        committer: mpsc::Sender<CommitItem>,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
    ) -> Arc<Sessions> {
        Sessions::with_bus(store, committer, config, metrics, None)
    }

    /// `new` for a node that shares its store with other nodes and hears them on `bus`.
    pub fn with_bus(
        store: Arc<dyn Store>,
        committer: mpsc::Sender<CommitItem>,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        bus: Option<Arc<dyn Bus>>,
    ) -> Arc<Sessions> {
        Arc::new(Sessions {
            map: Mutex::new(HashMap::new()),
            store,
            config,
            metrics,
            committer: Mutex::new(Some(committer)),
            next_generation: AtomicU64::new(1),
            tasks: TaskTracker::new(),
            versions: Mutex::new(HashMap::new()),
            bus,
            contributions: std::sync::OnceLock::new(),
        })
    }

    pub fn set_contribution_sink(&self, tally: Arc<crate::collaboration::ContributionTally>) {
        let _ = self.contributions.set(tally);
    }

    /// Counts a contribution towards badges; never waits (see `collaboration`). Comments and
    /// suggestions call this with `CommentResolvedByOther` / `SuggestionAccepted`.
    pub fn record_contribution(
        &self,
        session: &str,
        user: &str,
        kind: crate::collaboration::ContributionKind,
    ) {
        if let Some(tally) = self.contributions.get() {
            tally.add(session, user, kind);
        }
    }

    /// Pushes a frame to the participants of a session on every node without waiting; a session
    /// that is not loaded has nobody to tell, and a full mailbox drops it (HTTP has the same data).
    pub fn notify(self: &Arc<Self>, id: &str, frame: String) {
        if let Some(bus) = &self.bus {
            bus.publish(BusEvent::Relay {
                session: id.to_owned(),
                presence: false,
                frame: frame.clone(),
            });
        }
        if let Some((_, tx)) = self.get(id, false) {
            let _ = tx.try_send(SessionMsg::Notify {
                frame: Utf8Bytes::from(frame),
            });
        }
    }

    /// Gives `user` at least `role` in an existing session; returns the role they hold.
    pub async fn grant(
        self: &Arc<Self>,
        id: &str,
        user: &str,
        role: Role,
    ) -> Result<Role, ErrorCode> {
        match self.store.meta(id).await {
            Ok(Some(_)) => {}
            Ok(None) => return Err(ErrorCode::NotFound),
            Err(e) => {
                tracing::error!(session = id, error = %e, "meta read failed");
                return Err(ErrorCode::Internal);
            }
        }
        let (reply, rx) = oneshot::channel();
        let msg = SessionMsg::Grant {
            user: user.to_owned(),
            role,
            reply,
        };
        if self.send(id, msg, true).await.is_err() {
            return Err(ErrorCode::Internal);
        }
        rx.await.unwrap_or(Err(ErrorCode::Internal))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn loaded(&self) -> usize {
        self.lock().len()
    }

    fn get(self: &Arc<Self>, id: &str, spawn: bool) -> Option<(u64, mpsc::Sender<SessionMsg>)> {
        let mut map = self.lock();
        if let Some(e) = map.get(id) {
            return Some((e.generation, e.tx.clone()));
        }
        if !spawn {
            return None;
        }
        let committer = self
            .committer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let generation = self.next_generation.fetch_add(1, Relaxed);
        let (tx, rx) = mpsc::channel(MAILBOX);
        let id: Arc<str> = Arc::from(id);
        map.insert(
            id.clone(),
            Entry {
                generation,
                tx: tx.clone(),
            },
        );
        let actor = Actor::new(id, generation, Arc::clone(self), rx, committer);
        self.tasks.spawn(actor.run());
        Some((generation, tx))
    }

    fn remove_if(&self, id: &str, generation: u64) {
        let mut map = self.lock();
        if map.get(id).is_some_and(|e| e.generation == generation) {
            map.remove(id);
        }
    }

    /// Delivers a message to a session's actor, loading it first when `spawn` is set. Gives the
    /// message back when the session is not loaded (and `spawn` is off) or the server is closing.
    pub async fn send(
        self: &Arc<Self>,
        id: &str,
        mut msg: SessionMsg,
        spawn: bool,
    ) -> Result<(), SessionMsg> {
        // An actor may unload between the lookup and the send; then the entry is gone and the
        // next lookup starts a fresh one.
        for _ in 0..4 {
            let Some((generation, tx)) = self.get(id, spawn) else {
                return Err(msg);
            };
            match tx.send(msg).await {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendError(m)) => {
                    msg = m;
                    self.remove_if(id, generation);
                }
            }
        }
        Err(msg)
    }

    /// Watches the newest committed version of a session (0 until an edit commits after the
    /// first watch). Access is the caller's to check.
    pub fn watch_versions(&self, id: &str) -> watch::Receiver<u64> {
        let mut map = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(Arc::from(id))
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Whether a live-preview subscription watches the session's versions.
    fn has_version_watchers(&self, id: &str) -> bool {
        let map = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).is_some_and(|tx| tx.receiver_count() > 0)
    }

    /// Tells the watchers of a session that `version` is committed; never blocks.
    fn publish_version(&self, id: &str, version: u64) {
        let mut map = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = map.get(id) else { return };
        if tx.receiver_count() == 0 {
            map.remove(id);
            return;
        }
        tx.send_if_modified(|v| {
            let newer = version > *v;
            if newer {
                *v = version;
            }
            newer
        });
    }

    /// The committed `(version, state JSON)` of a session, for a reader with at least viewer rights.
    pub async fn state(self: &Arc<Self>, id: &str, user: &str) -> Result<(u64, String), ErrorCode> {
        // Reads of ids that do not exist must not load anything: ask the store first.
        if self.get(id, false).is_none() {
            match self.store.meta(id).await {
                Ok(Some(_)) => {}
                Ok(None) => return Err(ErrorCode::NotFound),
                Err(e) => {
                    tracing::error!(session = id, error = %e, "meta read failed");
                    return Err(ErrorCode::Internal);
                }
            }
        }
        let (reply, rx) = oneshot::channel();
        if self
            .send(
                id,
                SessionMsg::GetState {
                    user: user.to_owned(),
                    reply,
                },
                true,
            )
            .await
            .is_err()
        {
            return Err(ErrorCode::Internal);
        }
        rx.await.unwrap_or(Err(ErrorCode::Internal))
    }

    /// Stops every actor after it flushed its pending writes and wrote a snapshot.
    pub async fn shutdown(&self) {
        // No new actors from here on. (Never hold both locks: `get` takes them map-first.)
        *self.committer.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let senders: Vec<_> = self.lock().values().map(|e| e.tx.clone()).collect();
        for tx in senders {
            let _ = tx.send(SessionMsg::Shutdown).await;
        }
        self.tasks.close();
        self.tasks.wait().await;
    }
}

struct Participant {
    conn: ConnHandle,
    client: Arc<str>,
    /// Versions up to this one were in the state this participant joined with.
    from_version: u64,
    /// Its `joined` went out; until then it gets no presence.
    ready: bool,
}

struct HistEntry {
    op: Op,
    user: Arc<str>,
}

struct Doc {
    meta: SessionMeta,
    doc: Value,
    version: u64,
    /// The ops of versions `hist_start ..= version`.
    history: VecDeque<HistEntry>,
    hist_start: u64,
    snapshot_version: u64,
}

#[derive(Default)]
struct ClientSeqs {
    /// The store was asked for this client's highest seq (None: it had none).
    store_checked: bool,
    store_max: Option<u64>,
    recent: VecDeque<(u64, u64)>,
}

enum Action {
    Edit {
        conn: u64,
        user: Arc<str>,
        seq: u64,
        rid: Option<Json>,
        received: Instant,
        broadcast: Utf8Bytes,
        /// Users whose presence this edit moved: sent again after the edit.
        moved: Vec<Arc<str>>,
    },
    Reply {
        conn: u64,
        frame: Utf8Bytes,
    },
    State {
        reply: oneshot::Sender<Result<(u64, String), ErrorCode>>,
        state: String,
    },
    /// A social event: `to_sender` (with its `rid`) to `conn`, `to_all` to everyone else, on
    /// this node and (through the bus) on the others.
    Notify {
        conn: u64,
        to_sender: Utf8Bytes,
        to_all: Utf8Bytes,
    },
}

/// Something to do once `version` is durable.
struct Pending {
    version: u64,
    action: Action,
}

struct Actor {
    id: Arc<str>,
    generation: u64,
    /// The generation the committer knows this actor's writes by; a conflict retry renews it.
    epoch: u64,
    /// Cross-node sequencing, when the store is shared.
    cluster: Option<cluster::Cluster>,
    sessions: Arc<Sessions>,
    config: Arc<Config>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    rx: mpsc::Receiver<SessionMsg>,
    committer: mpsc::Sender<CommitItem>,
    done_tx: mpsc::UnboundedSender<CommitResult>,
    done_rx: mpsc::UnboundedReceiver<CommitResult>,
    state: Option<Doc>,
    participants: HashMap<u64, Participant>,
    /// Names, colours and latest presence of the users online here.
    presence: PresenceTable,
    /// Keyed by (user, client): client ids are chosen by clients, so only unique per user.
    seqs: HashMap<(Arc<str>, Arc<str>), ClientSeqs>,
    pending: VecDeque<Pending>,
    committed: u64,
    inflight: usize,
    snapshot_due: bool,
    /// A snapshot write is with the committer.
    snapshot_in_flight: bool,
    /// A write failed or the session could not load: refuse everything, unload when empty.
    broken: bool,
    /// Broken by a failed write: a fresh load will be consistent, so joins wait for it.
    reload: bool,
    /// Joins that arrived after a failed write, handed to the next actor on unload.
    deferred: Vec<SessionMsg>,
    shutting_down: bool,
    idle_since: Instant,
    /// Comments and suggestions, loaded on first use.
    social: Option<crate::social::Social>,
}

fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

impl Actor {
    fn new(
        id: Arc<str>,
        generation: u64,
        sessions: Arc<Sessions>,
        rx: mpsc::Receiver<SessionMsg>,
        committer: mpsc::Sender<CommitItem>,
    ) -> Actor {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Actor {
            id,
            generation,
            epoch: generation,
            cluster: sessions.bus.clone().map(cluster::Cluster::new),
            config: sessions.config.clone(),
            store: sessions.store.clone(),
            metrics: sessions.metrics.clone(),
            sessions,
            rx,
            committer,
            done_tx,
            done_rx,
            state: None,
            participants: HashMap::new(),
            presence: PresenceTable::default(),
            seqs: HashMap::new(),
            pending: VecDeque::new(),
            committed: 0,
            inflight: 0,
            snapshot_due: false,
            snapshot_in_flight: false,
            broken: false,
            reload: false,
            deferred: Vec::new(),
            shutting_down: false,
            idle_since: Instant::now(),
            social: None,
        }
    }

    async fn run(mut self) {
        /// Undoes an actor's [`Bus::watch`] when the actor ends.
        struct Watching(Arc<dyn Bus>, Arc<str>);
        impl Drop for Watching {
            fn drop(&mut self) {
                self.0.unwatch(&self.1);
            }
        }
        self.metrics.sessions_loaded.fetch_add(1, Relaxed);
        // Hear other nodes' commits before reading the store, so none falls in between. The
        // guard unwatches however this task ends (a panic included).
        let _watching = match self.sessions.bus.clone() {
            Some(bus) => {
                bus.watch(&self.id).await;
                Some(Watching(bus, self.id.clone()))
            }
            None => None,
        };
        match self.store.load(&self.id).await {
            Ok(Some(l)) => match self.build(l) {
                Ok(doc) => {
                    self.committed = doc.version;
                    self.state = Some(doc);
                }
                Err(reason) => {
                    tracing::error!(session = %self.id, %reason, "session could not be loaded");
                    self.broken = true;
                }
            },
            Ok(None) => {}
            Err(e) => {
                tracing::error!(session = %self.id, error = %e, "session could not be loaded");
                self.broken = true;
            }
        }
        let period = self.config.snapshot_interval.max(Duration::from_millis(10));
        let mut snapshot_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let refresh = self.config.roster_refresh.max(Duration::from_millis(10));
        let mut roster_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + refresh, refresh);
        loop {
            // With several nodes a session also stays loaded while someone here watches its live
            // previews: only a loaded session hears other nodes' commits.
            let idle = self.participants.is_empty()
                && self.pending.is_empty()
                && self.inflight == 0
                && !(self.cluster.is_some() && self.sessions.has_version_watchers(&self.id));
            // A session that does not exist (a read of a missing id) goes at once.
            let linger = if self.state.is_none() {
                Duration::ZERO
            } else {
                self.config.idle_unload
            };
            let deadline = tokio::time::Instant::from_std(self.idle_since + linger);
            tokio::select! {
                biased;
                Some(r) = self.done_rx.recv() => self.on_commit(r),
                m = self.rx.recv() => match m {
                    Some(SessionMsg::Shutdown) => self.shutting_down = true,
                    Some(m) => self.handle(m).await,
                    None => break,
                },
                _ = snapshot_tick.tick() => {
                    self.snapshot_due = true;
                    self.maybe_snapshot().await;
                }
                _ = roster_tick.tick(), if self.cluster.is_some() => self.cluster_heartbeat(),
                _ = tokio::time::sleep_until(deadline), if idle => {
                    if self.unload().await {
                        break;
                    }
                }
            }
            self.cluster_tick().await;
            if self.shutting_down && self.pending.is_empty() && self.inflight == 0 {
                self.save_snapshot_now().await;
                break;
            }
        }
        self.sessions.remove_if(&self.id, self.generation);
        self.metrics.sessions_loaded.fetch_sub(1, Relaxed);
    }

    /// The in-memory session from what the store holds (a panic while replaying is an error).
    fn build(&self, l: Loaded) -> Result<Doc, String> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.build_inner(l)))
            .unwrap_or_else(|_| Err("the OT engine panicked while replaying".to_owned()))
    }

    fn build_inner(&self, l: Loaded) -> Result<Doc, String> {
        let (mut doc, mut version) = match &l.snapshot {
            Some(s) => (
                serde_json::from_str::<Value>(&s.state).map_err(|e| format!("snapshot: {e}"))?,
                s.version,
            ),
            None => (Value::new_document(), 0),
        };
        let snapshot_version = version;
        let keep = self.config.history_keep.max(1);
        let mut history = VecDeque::with_capacity(l.ops.len().min(keep));
        for o in l.ops {
            if o.version != version + 1 {
                return Err(format!("version {} follows {version}", o.version));
            }
            let op: Op =
                serde_json::from_str(&o.ops).map_err(|e| format!("op {}: {e}", o.version))?;
            op.apply(&mut doc)
                .map_err(|e| format!("op {}: {e}", o.version))?;
            version = o.version;
            history.push_back(HistEntry {
                op,
                user: Arc::from(o.user),
            });
            if history.len() > keep {
                history.pop_front();
            }
        }
        let hist_start = version + 1 - history.len() as u64;
        Ok(Doc {
            meta: l.meta,
            doc,
            version,
            history,
            hist_start,
            snapshot_version,
        })
    }

    async fn handle(&mut self, m: SessionMsg) {
        let Some(m) = self.cluster_gate(m).await else {
            return;
        };
        match m {
            SessionMsg::Join {
                conn,
                client,
                since,
                rid,
            } => self.join(conn, client, since, rid).await,
            SessionMsg::Op {
                conn,
                base,
                seq,
                ops,
                rid,
                received,
            } => self.edit(conn, base, seq, ops, rid, received).await,
            SessionMsg::Presence { conn, data, rid } => self.presence(conn, data, rid),
            SessionMsg::SetRole {
                conn,
                user,
                role,
                rid,
            } => self.set_role(conn, user, role, rid).await,
            SessionMsg::Leave { conn } | SessionMsg::Disconnect { conn } => self.leave(conn),
            SessionMsg::GetState { user, reply } => self.get_state(user, reply),
            SessionMsg::Social { conn, req, rid } => self.social_request(conn, req, rid).await,
            SessionMsg::Notify { frame } => {
                // Best effort: a joiner still waiting for `joined` reads tasks over HTTP.
                for p in self.participants.values().filter(|p| p.ready) {
                    p.conn.send(frame.clone());
                }
            }
            SessionMsg::Grant { user, role, reply } => self.grant(user, role, reply).await,
            SessionMsg::Shutdown => self.shutting_down = true,
            SessionMsg::Remote(_) => {}
        }
    }

    fn online(&self, user: &str) -> bool {
        self.participants.values().any(|p| &*p.conn.user == user)
    }

    /// Roster and role events: a joiner still waiting for its `joined` gets them right after it,
    /// so what it learns later is never overwritten by the older `joined`.
    fn announce(&mut self, frame: &Utf8Bytes, except: Option<u64>) {
        let head = self.state.as_ref().map_or(0, |d| d.version);
        let mut later = Vec::new();
        for (id, p) in &self.participants {
            if Some(*id) == except {
                continue;
            }
            if p.ready {
                p.conn.send(frame.clone());
            } else {
                later.push(*id);
            }
        }
        for conn in later {
            self.when_committed(
                head,
                Action::Reply {
                    conn,
                    frame: frame.clone(),
                },
            );
        }
    }

    /// Runs `action` once `version` is durable: now, or when the committer says so.
    fn when_committed(&mut self, version: u64, action: Action) {
        if version <= self.committed && self.pending.is_empty() {
            self.run_action(version, action);
        } else {
            self.pending.push_back(Pending { version, action });
        }
    }

    async fn join(
        &mut self,
        conn: ConnHandle,
        client: String,
        since: Option<u64>,
        rid: Option<Json>,
    ) {
        if self.reload && !self.shutting_down {
            self.deferred.push(SessionMsg::Join {
                conn,
                client,
                since,
                rid,
            });
            return;
        }
        if self.broken || self.shutting_down {
            conn.error(
                ErrorCode::Internal,
                "session unavailable, try again",
                rid.as_ref(),
            );
            return;
        }
        if self.state.is_none() {
            // The first joiner creates the session and owns it.
            if let Err(e) = self.store.create_session(&self.id, &conn.user).await {
                tracing::error!(session = %self.id, error = %e, "create session failed");
                conn.error(
                    ErrorCode::Internal,
                    "could not create session",
                    rid.as_ref(),
                );
                return;
            }
            match self.store.load(&self.id).await {
                Ok(Some(l)) => match self.build(l) {
                    Ok(doc) => {
                        self.committed = doc.version;
                        self.state = Some(doc);
                    }
                    Err(reason) => {
                        tracing::error!(session = %self.id, %reason, "created session unreadable");
                        conn.error(
                            ErrorCode::Internal,
                            "could not create session",
                            rid.as_ref(),
                        );
                        return;
                    }
                },
                _ => {
                    conn.error(
                        ErrorCode::Internal,
                        "could not create session",
                        rid.as_ref(),
                    );
                    return;
                }
            }
        }
        let Some(doc) = &self.state else { return };
        let version = doc.version;
        let role = doc.meta.role_of(&conn.user);
        if role < Role::Viewer {
            conn.error(
                ErrorCode::Forbidden,
                format!("removed from session {}", self.id),
                rid.as_ref(),
            );
            return;
        }
        let mut state = Some(doc.doc.clone());
        let mut ops = None;
        if let Some(since) = since {
            if since > version {
                conn.error(
                    ErrorCode::BadRequest,
                    format!("since {since} is ahead of the head {version}"),
                    rid.as_ref(),
                );
                return;
            }
            if version - since <= self.config.limits.max_catch_up {
                match self.entries_after(since, version).await {
                    Ok(list) => {
                        ops = Some(list);
                        state = None;
                    }
                    Err(e) => {
                        tracing::error!(session = %self.id, error = %e, "catch-up read failed");
                        conn.error(ErrorCode::Internal, "could not read history", rid.as_ref());
                        return;
                    }
                }
            }
        }
        let Some(doc) = &self.state else { return };
        let rejoin = self.participants.contains_key(&conn.id);
        let was_online = self
            .participants
            .values()
            .any(|p| p.conn.user == conn.user && p.conn.id != conn.id);
        let user = conn.user.clone();
        let conn_id = conn.id;
        let name = conn.name.clone();
        self.presence.enter(&user, name.clone());
        self.participants.insert(
            conn.id,
            Participant {
                conn,
                client: Arc::from(client),
                from_version: version,
                ready: false,
            },
        );
        let mut roster: Vec<WireParticipant> = Vec::new();
        let mut seen = HashSet::new();
        for p in self.participants.values() {
            if seen.insert(p.conn.user.clone()) {
                let rec = self.presence.get(&p.conn.user);
                roster.push(WireParticipant {
                    user: p.conn.user.to_string(),
                    role: doc.meta.role_of(&p.conn.user),
                    online: true,
                    name: rec.and_then(|r| r.name.as_deref().map(str::to_owned)),
                    color: rec.map(|r| r.colour.clone()),
                    presence: rec.and_then(|r| r.data.clone()),
                });
            }
        }
        // Users online on other nodes of a cluster.
        for p in self.remote_online() {
            seen.insert(Arc::from(p.user.as_str()));
            roster.push(p);
        }
        for (u, r) in &doc.meta.roles {
            if !seen.contains(u.as_str()) && *r >= Role::Viewer {
                roster.push(WireParticipant {
                    user: u.clone(),
                    role: *r,
                    online: false,
                    name: None,
                    color: Some(crate::presence::colour(u)),
                    presence: None,
                });
            }
        }
        roster.sort_by(|a, b| a.user.cmp(&b.user));
        let joined = ServerMessage::Joined {
            session: self.id.to_string(),
            version,
            state,
            role,
            participants: roster,
            ops,
        };
        let frame = Utf8Bytes::from(encode_with_rid(&joined, rid.as_ref()));
        if !rejoin && !was_online {
            let ev = encode(&ServerMessage::ParticipantJoined {
                session: self.id.to_string(),
                user: user.to_string(),
                role,
                name: name.as_deref().map(str::to_owned),
                color: Some(crate::presence::colour(&user)),
            });
            // The other nodes learn it from the roster; the first participant here also asks
            // them for theirs.
            self.cluster_roster(self.participants.len() == 1);
            if !self.online_elsewhere(&user) {
                self.announce(&Utf8Bytes::from(ev), Some(conn_id));
            }
        }
        self.when_committed(
            version,
            Action::Reply {
                conn: conn_id,
                frame,
            },
        );
    }

    /// `{"version","user","ops"}` entries for versions `after+1 ..= head`.
    async fn entries_after(&self, after: u64, head: u64) -> crate::error::Result<Vec<OpEntry>> {
        let Some(doc) = &self.state else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity((head - after) as usize);
        if after + 1 < doc.hist_start {
            for o in self
                .store
                .ops_after(&self.id, after, doc.hist_start - after - 1)
                .await?
            {
                out.push(parse_entry(&self.id, o)?);
            }
        }
        let skip = (after + 1).saturating_sub(doc.hist_start) as usize;
        for (i, h) in doc.history.iter().enumerate().skip(skip) {
            out.push(OpEntry {
                version: doc.hist_start + i as u64,
                user: h.user.to_string(),
                ops: h.op.clone(),
            });
        }
        Ok(out)
    }

    /// The version `user`'s `(client, seq)` was applied as, if it was.
    async fn lookup_seq(
        &mut self,
        key: &(Arc<str>, Arc<str>),
        seq: u64,
    ) -> crate::error::Result<Option<u64>> {
        let (user, client) = key;
        let entry = self.seqs.entry(key.clone()).or_default();
        if let Some(&(_, v)) = entry.recent.iter().rev().find(|(s, _)| *s == seq) {
            return Ok(Some(v));
        }
        if !entry.store_checked {
            entry.store_max = self.store.max_seq(&self.id, user, client).await?;
            entry.store_checked = true;
        }
        let entry = self.seqs.entry(key.clone()).or_default();
        let max_recent = entry.recent.iter().map(|(s, _)| *s).max();
        let max_known = entry.store_max.max(max_recent);
        // Clients number their edits upwards: a seq above all known ones is new, no query needed.
        if max_known.is_some_and(|m| seq <= m) {
            return self.store.find_seq(&self.id, user, client, seq).await;
        }
        Ok(None)
    }

    /// The participant behind `conn`, or a `not_found` reply when it is not (or no longer) in.
    fn member(&self, conn: &ConnHandle, rid: Option<&Json>) -> Option<&Participant> {
        let p = self.participants.get(&conn.id);
        if p.is_none() {
            conn.error(
                ErrorCode::NotFound,
                format!("not joined to session {}", self.id),
                rid,
            );
        }
        p
    }

    async fn edit(
        &mut self,
        conn: ConnHandle,
        base: u64,
        seq: u64,
        ops: Op,
        rid: Option<Json>,
        received: Instant,
    ) {
        let Some(p) = self.member(&conn, rid.as_ref()) else {
            return;
        };
        let (pconn, client) = (p.conn.clone(), p.client.clone());
        let conn = conn.id;
        let Some(doc) = &self.state else { return };
        if !check_permission(&doc.meta, &pconn.user, Role::Editor) {
            pconn.error(
                ErrorCode::Forbidden,
                format!("{} may not edit", doc.meta.role_of(&pconn.user).as_str()),
                rid.as_ref(),
            );
            return;
        }
        if self.broken || self.shutting_down {
            pconn.error(
                ErrorCode::Internal,
                "session unavailable, join again",
                rid.as_ref(),
            );
            return;
        }
        let user = pconn.user.clone();
        self.apply_edit(
            &pconn,
            user,
            client,
            seq,
            base,
            ops,
            Some(conn),
            rid,
            received,
        )
        .await;
    }

    /// Transforms an edit past the versions after `base`, applies it as `user`'s and hands it
    /// to the committer; `ack` (when set) gets the ack, everyone else the `op`. Errors go to
    /// `pconn`. Returns the version it was (or, for a resend, had been) applied as.
    #[allow(clippy::too_many_arguments)]
    async fn apply_edit(
        &mut self,
        pconn: &ConnHandle,
        user: Arc<str>,
        client: Arc<str>,
        seq: u64,
        base: u64,
        ops: Op,
        ack: Option<u64>,
        rid: Option<Json>,
        received: Instant,
    ) -> Option<u64> {
        // No participant has this id: an edit without an ack (an accepted suggestion).
        let conn = ack.unwrap_or(u64::MAX);
        // Comments load before the head moves, so their anchors and suggestions see it move.
        if self.social.is_none() {
            let _ = self.ensure_social().await;
        }
        let seq_key = (user.clone(), client.clone());
        match self.lookup_seq(&seq_key, seq).await {
            Ok(Some(v)) => {
                // A resend of an applied edit: ack it again with its version, once durable.
                let frame = ack_frame(&self.id, seq, v, rid.as_ref());
                self.when_committed(v, Action::Reply { conn, frame });
                return Some(v);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(session = %self.id, error = %e, "seq lookup failed");
                pconn.error(ErrorCode::Internal, "storage error", rid.as_ref());
                return None;
            }
        }
        let Some(doc) = &self.state else { return None };
        let head = doc.version;
        if base > head {
            pconn.error(
                ErrorCode::BadRequest,
                format!("base {base} is ahead of the head {head}"),
                rid.as_ref(),
            );
            return None;
        }
        if head - base > MAX_REBASE {
            pconn.error(
                ErrorCode::Conflict,
                format!("base {base} is too old; join again with since"),
                rid.as_ref(),
            );
            return None;
        }
        // Transform past every version after the base, the sender's own included (DESIGN §2).
        let mut older = Vec::new();
        if base + 1 < doc.hist_start {
            let stored = match self
                .store
                .ops_after(&self.id, base, doc.hist_start - base - 1)
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!(session = %self.id, error = %e, "history read failed");
                    pconn.error(ErrorCode::Internal, "storage error", rid.as_ref());
                    return None;
                }
            };
            for o in stored {
                match serde_json::from_str::<Op>(&o.ops) {
                    Ok(h) => older.push(h),
                    Err(e) => {
                        tracing::error!(session = %self.id, version = o.version, error = %e, "stored op unreadable");
                        pconn.error(ErrorCode::Internal, "storage error", rid.as_ref());
                        return None;
                    }
                }
            }
        }
        // Kept to run again if another node takes this version first.
        let original = self.cluster.is_some().then(|| ops.clone());
        // A retry whose author sent presence since the first try: that presence shows it already.
        let skip_author = self.retry_presence_seen();
        let Some(doc) = &mut self.state else {
            return None;
        };
        let skip = (base + 1).saturating_sub(doc.hist_start) as usize;
        // The OT engine is pure and trusted, but a panic in it must cost one session, not the
        // server: the document may be half-changed then, so the session reloads from the store.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let memory = doc.history.iter().skip(skip).map(|h| &h.op);
            let op = rebase(ops, older.iter().chain(memory));
            op.apply(&mut doc.doc).map(|inverse| (op, inverse))
        }));
        let (op, inverse) = match outcome {
            Ok(Ok(op)) => op,
            Ok(Err(e)) => {
                pconn.error(ErrorCode::BadRequest, e.to_string(), rid.as_ref());
                return None;
            }
            Err(_) => {
                tracing::error!(session = %self.id, base, "the OT engine panicked on an edit");
                pconn.error(
                    ErrorCode::Internal,
                    "the edit could not be processed",
                    rid.as_ref(),
                );
                self.abandon();
                return None;
            }
        };
        let Some(doc) = &mut self.state else {
            return None;
        };
        doc.version += 1;
        let version = doc.version;
        let ops_json = serde_json::to_string(&op).unwrap_or_else(|_| "[]".to_owned());
        let broadcast = Utf8Bytes::from(format!(
            r#"{{"type":"op","session":{},"version":{version},"user":{},"ops":{ops_json}}}"#,
            js(&self.id),
            js(&user)
        ));
        // Carets and selections follow the edit (sent again once it is broadcast). Across nodes
        // a rollback puts the old values back, so each committed edit moves them once.
        let moved_before = self.presence.transform(
            &op,
            &inverse,
            &user,
            &doc.doc,
            skip_author.then_some(&*user),
        );
        let moved = moved_before.iter().map(|(u, _)| u.clone()).collect();
        doc.history.push_back(HistEntry {
            op,
            user: user.clone(),
        });
        let write = Write::Op {
            session: self.id.to_string(),
            op: StoredOp {
                version,
                user: user.to_string(),
                client: client.to_string(),
                seq,
                ops: ops_json,
            },
        };
        let recent = &mut self.seqs.entry(seq_key).or_default().recent;
        recent.push_back((seq, version));
        if let Some(original) = original {
            self.track_unconfirmed(
                version,
                inverse,
                base,
                original,
                conn,
                seq,
                rid.clone(),
                received,
                user.clone(),
                moved_before,
            );
        }
        self.pending.push_back(Pending {
            version,
            action: Action::Edit {
                conn,
                user: pconn.user.clone(),
                seq,
                rid,
                received,
                broadcast,
                moved,
            },
        });
        self.submit(write, version, false).await;
        // Bound what a load replays: snapshot after this many edits, whatever the clock says.
        if let Some(doc) = &self.state
            && doc.version - doc.snapshot_version >= self.config.snapshot_every_ops
        {
            self.maybe_snapshot().await;
        }
        self.anchors_after_edit(version).await;
        Some(version)
    }

    async fn submit(&mut self, write: Write, version: u64, snapshot: bool) {
        self.inflight += 1;
        let item = CommitItem {
            generation: self.epoch,
            write,
            done: self.done_tx.clone(),
        };
        if self.committer.send(item).await.is_err() {
            // The writer is gone (shutting down): report it like a failed write.
            self.on_commit(CommitResult {
                version,
                snapshot,
                ok: false,
                conflict: false,
                epoch: self.epoch,
            });
        }
    }

    fn on_commit(&mut self, r: CommitResult) {
        self.inflight = self.inflight.saturating_sub(1);
        if r.epoch != self.epoch {
            // A write given up after a conflict: its edit is being sequenced again.
            if r.snapshot {
                self.snapshot_in_flight = false;
            }
            return;
        }
        if !r.ok {
            if r.conflict && self.cluster.is_some() {
                self.on_conflict();
                return;
            }
            self.fail();
            return;
        }
        if r.snapshot {
            self.snapshot_in_flight = false;
            if let Some(doc) = &mut self.state {
                doc.snapshot_version = doc.snapshot_version.max(r.version);
            }
            return;
        }
        self.committed = self.committed.max(r.version);
        self.sessions.publish_version(&self.id, self.committed);
        while self
            .pending
            .front()
            .is_some_and(|p| p.version <= self.committed)
        {
            if let Some(p) = self.pending.pop_front() {
                self.run_action(p.version, p.action);
            }
        }
        self.trim();
    }

    fn run_action(&mut self, version: u64, action: Action) {
        match action {
            Action::Edit {
                conn,
                user,
                seq,
                rid,
                received,
                broadcast,
                moved,
            } => {
                self.sessions.record_contribution(
                    &self.id,
                    &user,
                    crate::collaboration::ContributionKind::EditAccepted,
                );
                if let Some(p) = self.participants.get(&conn) {
                    p.conn.send(ack_frame(&self.id, seq, version, rid.as_ref()));
                }
                self.metrics.edits_total.fetch_add(1, Relaxed);
                self.metrics.observe_ack(received.elapsed());
                for (id, p) in &self.participants {
                    if *id != conn && p.from_version < version {
                        p.conn.send(broadcast.clone());
                    }
                }
                for user in moved {
                    self.send_presence_of(&user);
                }
            }
            Action::Reply { conn, frame } => {
                if let Some(p) = self.participants.get_mut(&conn) {
                    p.ready = true;
                    p.conn.send(frame);
                }
            }
            Action::State { reply, state } => {
                let _ = reply.send(Ok((version, state)));
            }
            Action::Notify {
                conn,
                to_sender,
                to_all,
            } => {
                for (id, p) in &self.participants {
                    if !p.ready {
                        continue;
                    }
                    p.conn.send(if *id == conn {
                        to_sender.clone()
                    } else {
                        to_all.clone()
                    });
                }
                self.cluster_social(&to_all);
            }
        }
    }

    /// Drops history and seq records that are durable and past what is kept in memory.
    fn trim(&mut self) {
        let keep = self.config.history_keep.max(1);
        if let Some(doc) = &mut self.state {
            while doc.history.len() > keep && doc.hist_start <= self.committed {
                doc.history.pop_front();
                doc.hist_start += 1;
            }
        }
        for s in self.seqs.values_mut() {
            while s.recent.len() > RECENT_SEQS
                && s.recent.front().is_some_and(|(_, v)| *v <= self.committed)
            {
                if let Some((seq, _)) = s.recent.pop_front() {
                    s.store_max = s.store_max.max(Some(seq));
                }
            }
        }
        // Clients that come and go with fresh ids must not grow this forever: forget those with
        // nothing in flight (the store answers for them).
        if self.seqs.len() > MAX_TRACKED_CLIENTS {
            let committed = self.committed;
            self.seqs
                .retain(|_, s| s.recent.iter().any(|(_, v)| *v > committed));
        }
    }

    /// A write failed: nothing applied since the last durable version may be shown to anyone.
    /// Everyone waiting is told, participants are let go, and the session unloads so the next
    /// join reloads what the store really holds.
    fn fail(&mut self) {
        if !self.broken {
            tracing::error!(session = %self.id, "session write failed; unloading");
        }
        self.broken = true;
        self.reload = true;
        for p in std::mem::take(&mut self.pending) {
            match p.action {
                Action::Edit { conn, rid, .. } => {
                    if let Some(pp) = self.participants.get(&conn) {
                        pp.conn.error(
                            ErrorCode::Internal,
                            "edit not stored; join again",
                            rid.as_ref(),
                        );
                    }
                }
                Action::Reply { .. } | Action::Notify { .. } => {}
                Action::State { reply, .. } => {
                    let _ = reply.send(Err(ErrorCode::Internal));
                }
            }
        }
        self.abandon();
    }

    /// Lets everyone go and refuses new work, so the session unloads and the next join reloads
    /// it from the store. Writes already in flight still complete.
    fn abandon(&mut self) {
        self.broken = true;
        self.reload = true;
        let frame = Utf8Bytes::from(encode(&ServerMessage::error(
            ErrorCode::Internal,
            format!("session {} failed; join again", self.id),
        )));
        for p in self.participants.values() {
            p.conn.send(frame.clone());
        }
        self.participants.clear();
        self.idle_since = Instant::now() - self.config.idle_unload;
    }

    fn presence(&mut self, conn: ConnHandle, data: Json, rid: Option<Json>) {
        let Some(p) = self.member(&conn, rid.as_ref()) else {
            return;
        };
        let conn = conn.id;
        let Some(doc) = &self.state else { return };
        if !check_permission(&doc.meta, &p.conn.user, Role::Viewer) {
            p.conn
                .error(ErrorCode::Forbidden, "no access", rid.as_ref());
            return;
        }
        let msg = ServerMessage::Presence {
            session: self.id.to_string(),
            user: p.conn.user.to_string(),
            data,
        };
        let frame = encode(&msg);
        if frame.len() > self.config.limits.max_presence_bytes {
            let max = self.config.limits.max_presence_bytes;
            p.conn.error(
                ErrorCode::TooLarge,
                format!("presence is limited to {max} bytes"),
                rid.as_ref(),
            );
            return;
        }
        let user = p.conn.user.clone();
        // Kept for late joiners and to follow edits.
        if let ServerMessage::Presence { data, .. } = msg {
            self.presence.set(&user, data);
            self.cluster_presence_set(&user, conn);
        }
        self.cluster_relay(&frame, true);
        let frame = Utf8Bytes::from(frame);
        for (id, p) in &self.participants {
            if *id != conn && p.ready {
                p.conn.send_presence(&self.id, &user, frame.clone());
            }
        }
    }

    /// A user removed from the session: every connection of theirs here leaves it now (they got
    /// the `role_changed`; their next message here is `not_found`, a new join `forbidden`).
    fn remove_user_connections(&mut self, user: &str) {
        let gone: Vec<u64> = self
            .participants
            .iter()
            .filter(|(_, p)| &*p.conn.user == user)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.leave(id);
        }
    }

    /// Relays another node's presence frame to this node's connections, paced like our own.
    fn relay_remote_presence(&self, frame: Utf8Bytes) {
        let user: Option<Arc<str>> = serde_json::from_str::<Json>(&frame)
            .ok()
            .and_then(|v| v.get("user")?.as_str().map(Arc::from));
        let Some(user) = user else { return };
        for p in self.participants.values() {
            if p.ready && p.conn.user != user {
                p.conn.send_presence(&self.id, &user, frame.clone());
            }
        }
    }

    /// Sends a user's current presence to every ready connection of the other users, paced.
    fn send_presence_of(&self, user: &Arc<str>) {
        let Some(data) = self.presence.get(user).and_then(|r| r.data.clone()) else {
            return;
        };
        let frame = Utf8Bytes::from(encode(&ServerMessage::Presence {
            session: self.id.to_string(),
            user: user.to_string(),
            data,
        }));
        // Other nodes hold no record of this node's users: they get the adjusted value too.
        self.cluster_relay(&frame, true);
        for p in self.participants.values() {
            if p.ready && p.conn.user != *user {
                p.conn.send_presence(&self.id, user, frame.clone());
            }
        }
    }

    async fn set_role(&mut self, conn: ConnHandle, user: String, role: Role, rid: Option<Json>) {
        let Some(p) = self.member(&conn, rid.as_ref()) else {
            return;
        };
        let pconn = p.conn.clone();
        let conn = conn.id;
        let Some(doc) = &self.state else { return };
        if !check_permission(&doc.meta, &pconn.user, Role::Owner) {
            pconn.error(
                ErrorCode::Forbidden,
                "only an owner may change roles",
                rid.as_ref(),
            );
            return;
        }
        let owners = doc
            .meta
            .roles
            .values()
            .filter(|r| **r == Role::Owner)
            .count();
        if doc.meta.role_of(&user) == Role::Owner && role < Role::Owner && owners <= 1 {
            pconn.error(
                ErrorCode::Conflict,
                "a session keeps at least one owner",
                rid.as_ref(),
            );
            return;
        }
        if let Err(e) = self.store.set_role(&self.id, &user, role).await {
            tracing::error!(session = %self.id, error = %e, "set_role failed");
            pconn.error(
                ErrorCode::Internal,
                "could not store the role",
                rid.as_ref(),
            );
            return;
        }
        let Some(doc) = &mut self.state else { return };
        // From here on every message of `user` is checked against the new role.
        doc.meta.roles.insert(user.clone(), role);
        let target = user.clone();
        let msg = ServerMessage::RoleChanged {
            session: self.id.to_string(),
            user,
            role,
        };
        if let Some(p) = self.participants.get(&conn) {
            p.conn.send(encode_with_rid(&msg, rid.as_ref()));
        }
        let frame = encode(&msg);
        if let ServerMessage::RoleChanged { user, role, .. } = &msg {
            self.cluster_role(user, *role, &frame);
        }
        self.announce(&Utf8Bytes::from(frame), Some(conn));
        if role == Role::Removed {
            self.remove_user_connections(&target);
        }
    }

    async fn grant(
        &mut self,
        user: String,
        role: Role,
        reply: oneshot::Sender<Result<Role, ErrorCode>>,
    ) {
        let Some(doc) = &self.state else {
            let _ = reply.send(Err(if self.broken {
                ErrorCode::Internal
            } else {
                ErrorCode::NotFound
            }));
            return;
        };
        let held = doc.meta.role_of(&user);
        if self.broken || self.shutting_down || held >= role {
            let _ = reply.send(if self.broken || self.shutting_down {
                Err(ErrorCode::Internal)
            } else {
                Ok(held)
            });
            return;
        }
        if let Err(e) = self.store.set_role(&self.id, &user, role).await {
            tracing::error!(session = %self.id, error = %e, "set_role failed");
            let _ = reply.send(Err(ErrorCode::Internal));
            return;
        }
        let Some(doc) = &mut self.state else { return };
        doc.meta.roles.insert(user.clone(), role);
        let msg = ServerMessage::RoleChanged {
            session: self.id.to_string(),
            user,
            role,
        };
        self.announce(&Utf8Bytes::from(encode(&msg)), None);
        let _ = reply.send(Ok(role));
    }

    fn leave(&mut self, conn: u64) {
        let Some(p) = self.participants.remove(&conn) else {
            return;
        };
        p.conn.forget_presence(&self.id, None);
        if !self.online(&p.conn.user) {
            // Gone with the user: a presence still held for someone must not follow the
            // `participant_left` and bring it back.
            self.presence.remove(&p.conn.user);
            for q in self.participants.values() {
                q.conn.forget_presence(&self.id, Some(&p.conn.user));
            }
            self.cluster_roster(false);
            if !self.online_elsewhere(&p.conn.user) {
                let ev = encode(&ServerMessage::ParticipantLeft {
                    session: self.id.to_string(),
                    user: p.conn.user.to_string(),
                });
                self.announce(&Utf8Bytes::from(ev), None);
            }
        }
        if self.participants.is_empty() {
            self.idle_since = Instant::now();
        }
    }

    fn get_state(
        &mut self,
        user: String,
        reply: oneshot::Sender<Result<(u64, String), ErrorCode>>,
    ) {
        if self.reload && !self.shutting_down {
            self.deferred.push(SessionMsg::GetState { user, reply });
            return;
        }
        if self.broken {
            let _ = reply.send(Err(ErrorCode::Internal));
            return;
        }
        let Some(doc) = &self.state else {
            let _ = reply.send(Err(ErrorCode::NotFound));
            return;
        };
        if !check_permission(&doc.meta, &user, Role::Viewer) {
            let _ = reply.send(Err(ErrorCode::Forbidden));
            return;
        }
        let state = serde_json::to_string(&doc.doc).unwrap_or_else(|_| "null".to_owned());
        let version = doc.version;
        if self.participants.is_empty() {
            self.idle_since = Instant::now();
        }
        self.when_committed(version, Action::State { reply, state });
    }

    /// Periodic snapshot through the committer, ordered after the appends it covers.
    async fn maybe_snapshot(&mut self) {
        if self.broken || self.snapshot_in_flight {
            return;
        }
        let Some(doc) = &self.state else { return };
        let behind = doc.version - doc.snapshot_version;
        if behind == 0 || !(self.snapshot_due || behind >= self.config.snapshot_every_ops) {
            return;
        }
        let state = serde_json::to_string(&doc.doc).unwrap_or_else(|_| "null".to_owned());
        let version = doc.version;
        self.snapshot_due = false;
        self.snapshot_in_flight = true;
        let write = Write::Snapshot {
            session: self.id.to_string(),
            snapshot: Snapshot { version, state },
        };
        self.submit(write, version, true).await;
    }

    /// A direct snapshot, when nothing of this session is in flight (idle unload, shutdown).
    async fn save_snapshot_now(&mut self) {
        if self.broken || self.inflight > 0 || !self.pending.is_empty() {
            return;
        }
        let Some(doc) = &mut self.state else { return };
        if doc.version == doc.snapshot_version {
            return;
        }
        let snapshot = Snapshot {
            version: doc.version,
            state: serde_json::to_string(&doc.doc).unwrap_or_else(|_| "null".to_owned()),
        };
        match self.store.save_snapshot(&self.id, &snapshot).await {
            Ok(()) => doc.snapshot_version = snapshot.version,
            Err(e) => tracing::warn!(session = %self.id, error = %e, "snapshot failed"),
        }
    }

    /// Leaves memory when no one is here. Messages that raced with leaving are handed to the
    /// registry, which loads the session afresh for them.
    async fn unload(&mut self) -> bool {
        self.save_snapshot_now().await;
        if !self.rx.is_empty() {
            return false;
        }
        self.sessions.remove_if(&self.id, self.generation);
        self.rx.close();
        let mut waiting = std::mem::take(&mut self.deferred);
        while let Ok(m) = self.rx.try_recv() {
            waiting.push(m);
        }
        for m in waiting {
            // Only joins and reads can be waiting: nobody is a participant any more.
            if matches!(
                m,
                SessionMsg::Join { .. } | SessionMsg::GetState { .. } | SessionMsg::Grant { .. }
            ) {
                let sessions = self.sessions.clone();
                let id = self.id.clone();
                tokio::spawn(async move {
                    let _ = sessions.send(&id, m, true).await;
                });
            }
        }
        tracing::debug!(session = %self.id, "unloaded");
        true
    }
}

fn ack_frame(session: &str, seq: u64, version: u64, rid: Option<&Json>) -> Utf8Bytes {
    Utf8Bytes::from(encode_with_rid(
        &ServerMessage::Ack {
            session: session.to_owned(),
            seq,
            version,
        },
        rid,
    ))
}

fn parse_entry(session: &str, o: StoredOp) -> crate::error::Result<OpEntry> {
    let ops = serde_json::from_str::<Op>(&o.ops).map_err(|e| crate::error::Error::Corrupt {
        session: session.to_owned(),
        reason: format!("op {}: {e}", o.version),
    })?;
    Ok(OpEntry {
        version: o.version,
        user: o.user,
        ops,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use montage_ot::Op;
    use serde_json::json;

    use super::*;
    use crate::store::MemoryStore;

    struct Rig {
        sessions: Arc<Sessions>,
        store: Arc<MemoryStore>,
        metrics: Arc<Metrics>,
    }

    fn rig(config: Config) -> Rig {
        let store = Arc::new(MemoryStore::new());
        let metrics = Arc::new(Metrics::default());
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(run_committer(store.clone(), rx, metrics.clone(), 64));
        let sessions = Sessions::new(store.clone(), tx, Arc::new(config), metrics.clone());
        Rig {
            sessions,
            store,
            metrics,
        }
    }

    fn config() -> Config {
        Config::new("/nonexistent", b"k".to_vec())
    }

    struct Peer {
        conn: ConnHandle,
        rx: mpsc::Receiver<Outbound>,
    }

    fn peer(rig: &Rig, id: u64, user: &str, queue: usize) -> Peer {
        let (tx, rx) = mpsc::channel(queue);
        let conn = ConnHandle::new(
            id,
            Arc::from(user),
            tx,
            CancellationToken::new(),
            rig.metrics.clone(),
        );
        Peer { conn, rx }
    }

    impl Peer {
        async fn recv(&mut self) -> Json {
            match tokio::time::timeout(Duration::from_secs(5), self.rx.recv()).await {
                Ok(Some(Outbound::Frame(f))) => serde_json::from_str(f.as_str()).unwrap(),
                other => panic!("no frame: {other:?}"),
            }
        }
        async fn join(&mut self, rig: &Rig, session: &str) -> Json {
            let m = SessionMsg::Join {
                conn: self.conn.clone(),
                client: format!("c{}", self.conn.id),
                since: None,
                rid: None,
            };
            rig.sessions.send(session, m, true).await.unwrap();
            self.recv().await
        }
        async fn op(&mut self, rig: &Rig, session: &str, base: u64, seq: u64, ops: Json) {
            let ops: Op = serde_json::from_value(ops).unwrap();
            let m = SessionMsg::Op {
                conn: self.conn.clone(),
                base,
                seq,
                ops,
                rid: None,
                received: Instant::now(),
            };
            rig.sessions.send(session, m, false).await.unwrap();
        }
    }

    fn title(s: &str) -> Json {
        json!([{"op":"set","path":["title"],"value":s}])
    }

    #[tokio::test]
    async fn edits_are_acked_after_commit_and_idempotent() {
        let rig = rig(config());
        let mut a = peer(&rig, 1, "alice", 64);
        assert_eq!(a.join(&rig, "s").await["role"], "owner");
        a.op(&rig, "s", 0, 1, title("one")).await;
        assert_eq!(
            a.recv().await,
            json!({"type":"ack","session":"s","seq":1,"version":1})
        );
        assert_eq!(rig.store.op_count("s"), 1);
        a.op(&rig, "s", 0, 1, title("one")).await;
        assert_eq!(a.recv().await["version"], 1);
        assert_eq!(rig.store.op_count("s"), 1, "a resend is not applied twice");
        let (v, state) = rig.sessions.state("s", "alice").await.unwrap();
        assert_eq!(v, 1);
        assert!(state.contains("\"one\""));
    }

    #[tokio::test]
    async fn a_failed_write_is_never_acked_and_the_session_reloads_from_the_store() {
        let rig = rig(config());
        let mut a = peer(&rig, 1, "alice", 64);
        a.join(&rig, "s").await;
        a.op(&rig, "s", 0, 1, title("kept")).await;
        assert_eq!(a.recv().await["type"], "ack");
        rig.store.fail_appends.store(true, Ordering::Relaxed);
        a.op(&rig, "s", 1, 2, title("lost")).await;
        let e = a.recv().await;
        assert_eq!(e["code"], "internal", "{e}");
        rig.store.fail_appends.store(false, Ordering::Relaxed);
        // Joining again loads what the store holds: version 1, not the failed version 2.
        let mut b = peer(&rig, 2, "alice", 64);
        let mut joined = b.join(&rig, "s").await;
        while joined["type"] != "joined" {
            joined = b.recv().await;
        }
        assert_eq!(joined["version"], 1);
        assert_eq!(joined["state"]["title"], "kept");
    }

    #[tokio::test]
    async fn a_slow_reader_is_dropped_without_holding_up_others() {
        let rig = rig(config());
        let mut fast = peer(&rig, 1, "fast", 1024);
        fast.join(&rig, "s").await;
        let mut slow = peer(&rig, 2, "slow", 2);
        slow.join(&rig, "s").await;
        assert_eq!(fast.recv().await["type"], "participant_joined");
        for i in 0..10 {
            let m = SessionMsg::Presence {
                conn: fast.conn.clone(),
                data: json!({"i": i}),
                rid: None,
            };
            rig.sessions.send("s", m, false).await.unwrap();
        }
        // Presence is paced (one goes out, the newest waits), edits are not: they fill it.
        for seq in 1..=3 {
            fast.op(&rig, "s", seq - 1, seq, title("x")).await;
            assert_eq!(fast.recv().await["type"], "ack");
        }
        assert!(slow.conn.kill.is_cancelled(), "slow reader not flagged");
        assert_eq!(rig.metrics.dropped_slow_total.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn snapshots_on_unload_and_reload_from_snapshot_plus_ops() {
        let mut c = config();
        c.idle_unload = Duration::from_millis(10);
        let rig = rig(c);
        let mut a = peer(&rig, 1, "alice", 64);
        a.join(&rig, "s").await;
        for seq in 1..=3 {
            a.op(&rig, "s", seq - 1, seq, title(&format!("t{seq}")))
                .await;
            a.recv().await;
        }
        rig.sessions
            .send("s", SessionMsg::Leave { conn: 1 }, false)
            .await
            .unwrap();
        for _ in 0..200 {
            if rig.sessions.loaded() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(rig.sessions.loaded(), 0, "idle session stayed loaded");
        let loaded = rig.store.load("s").await.unwrap().unwrap();
        assert_eq!(loaded.snapshot.map(|s| s.version), Some(3));
        assert!(loaded.ops.is_empty());
        let j = a.join(&rig, "s").await;
        assert_eq!(
            (j["version"].clone(), j["state"]["title"].clone()),
            (json!(3), json!("t3"))
        );
    }

    #[tokio::test]
    async fn stale_bases_older_than_memory_are_transformed_from_the_store() {
        let mut c = config();
        c.history_keep = 2;
        let rig = rig(c);
        let mut a = peer(&rig, 1, "alice", 256);
        a.join(&rig, "s").await;
        for seq in 1..=10 {
            let ops = json!([{"op":"text","path":["title"],"pos":0,"ins":"a"}]);
            a.op(&rig, "s", seq - 1, seq, ops).await;
            a.recv().await;
        }
        // Based on version 0: must land after the ten inserts at position 0 that came first.
        a.op(
            &rig,
            "s",
            0,
            11,
            json!([{"op":"text","path":["title"],"pos":0,"ins":"b"}]),
        )
        .await;
        assert_eq!(a.recv().await["version"], 11);
        let (_, state) = rig.sessions.state("s", "alice").await.unwrap();
        let state: Json = serde_json::from_str(&state).unwrap();
        assert_eq!(state["title"], "aaaaaaaaaab");
    }

    #[tokio::test]
    async fn client_ids_are_scoped_per_user() {
        let rig = rig(config());
        let mut alice = peer(&rig, 1, "alice", 64);
        alice.join(&rig, "s").await;
        let m = SessionMsg::SetRole {
            conn: alice.conn.clone(),
            user: "mallory".into(),
            role: Role::Editor,
            rid: None,
        };
        rig.sessions.send("s", m, false).await.unwrap();
        alice.recv().await;
        // Mallory joins with the same client id as alice's edits will use ("c1").
        let mut mallory = peer(&rig, 2, "mallory", 64);
        let m = SessionMsg::Join {
            conn: mallory.conn.clone(),
            client: "c1".into(),
            since: None,
            rid: None,
        };
        rig.sessions.send("s", m, true).await.unwrap();
        mallory.recv().await;
        mallory.op(&rig, "s", 0, 1, title("mallory")).await;
        assert_eq!(mallory.recv().await["version"], 1);
        // Alice's seq 1 on client "c1" is a different edit: applied, not taken for a resend.
        alice.op(&rig, "s", 1, 1, title("alice")).await;
        let mut ack = alice.recv().await;
        while ack["type"] != "ack" {
            ack = alice.recv().await;
        }
        assert_eq!(ack["version"], 2);
        assert_eq!(rig.store.op_count("s"), 2);
    }

    #[tokio::test]
    async fn an_active_session_snapshots_on_its_interval() {
        let mut c = config();
        c.snapshot_interval = Duration::from_millis(50);
        let rig = rig(c);
        let mut a = peer(&rig, 1, "alice", 64);
        a.join(&rig, "s").await;
        for seq in 1..=2 {
            a.op(&rig, "s", seq - 1, seq, title(&format!("t{seq}")))
                .await;
            a.recv().await;
        }
        let mut snap = None;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            snap = rig.store.load("s").await.unwrap().and_then(|l| l.snapshot);
            if snap.is_some() {
                break;
            }
        }
        let snap = snap.expect("no snapshot while the session stayed loaded");
        assert_eq!(snap.version, 2);
        assert!(snap.state.contains("\"t2\""));
        assert_eq!(rig.sessions.loaded(), 1, "the participant keeps it loaded");
    }

    #[tokio::test]
    async fn a_busy_session_snapshots_every_n_edits() {
        let mut c = config();
        c.snapshot_every_ops = 3;
        let rig = rig(c);
        let mut a = peer(&rig, 1, "alice", 64);
        a.join(&rig, "s").await;
        for seq in 1..=4 {
            a.op(&rig, "s", seq - 1, seq, title(&format!("t{seq}")))
                .await;
            a.recv().await;
        }
        // The snapshot is ordered after the third edit in the committer; the fourth edit's ack
        // came after it.
        let l = rig.store.load("s").await.unwrap().unwrap();
        assert_eq!(l.snapshot.map(|s| s.version), Some(3));
        assert_eq!(l.ops.iter().map(|o| o.version).collect::<Vec<_>>(), vec![4]);
    }
}
