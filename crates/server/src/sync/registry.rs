//! The loaded sessions: one actor per session, spawned on first use.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::sync::Frame;
use montage_protocol::{ErrorCode, Role};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::access::Principal;
use crate::bus::{Bus, BusEvent};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;

use super::actor::Actor;
use super::watches::{KeyedWatch, Watches};
use super::{CommitItem, EditObserver, SessionMsg};
use crate::social::service::{ContributionKind, ContributionTally};

/// Mailbox of one session actor.
const MAILBOX: usize = 512;

pub(super) struct Entry {
    pub(super) generation: u64,
    pub(super) tx: mpsc::Sender<SessionMsg>,
}

/// A live preview's watch of a session's committed versions.
pub type VersionWatch = KeyedWatch<u64>;
/// A timeline preview's watch of one user's playhead in a session (presence `playhead`, in
/// seconds).
pub type PlayheadWatch = KeyedWatch<Option<f64>>;

fn playhead_key(session: &str, user: &str) -> String {
    format!("{session}\0{user}")
}

/// The loaded sessions: spawns an actor on first use, forgets it when it unloads.
pub struct Sessions {
    pub(super) map: Mutex<HashMap<Arc<str>, Entry>>,
    pub(super) store: Arc<dyn Store>,
    pub(super) config: Arc<Config>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) committer: Mutex<Option<mpsc::Sender<CommitItem>>>,
    pub(super) next_generation: AtomicU64,
    pub(super) tasks: TaskTracker,
    /// The newest committed version per session, for live preview subscribers. Kept outside the
    /// actors so a subscription outlives an unload; an entry goes when its last watcher does.
    pub(super) versions: Watches<u64>,
    /// Followed playheads by `session\0user`, for timeline previews; an entry goes when its
    /// last watcher does.
    pub(super) playheads: Watches<Option<f64>>,
    /// Set when nodes share the store: actors then sequence across nodes (`cluster`).
    pub(super) bus: Option<Arc<dyn Bus>>,
    /// This node's home leases, when sessions have home nodes (`cluster::home`).
    pub(super) homes: Option<Arc<super::Homes>>,
    /// Told of every durable edit (`observers.rs`).
    pub(super) observers: std::sync::RwLock<Vec<Arc<dyn EditObserver>>>,
    /// Sessions created per user per hour.
    creations: crate::quota::Quotas,
    /// Heavy rebases and applies running at once on the blocking pool (one per core).
    pub(super) heavy: Arc<tokio::sync::Semaphore>,
    /// States of past versions read over HTTP (`history.rs`).
    pub(super) past_states: super::history::StateCache,
    /// Users' inboxes and their live delivery (Social).
    pub notifier: Arc<crate::social::notifications::Notifier>,
    /// The app event log (Task Manager).
    pub events: Arc<crate::tasks::events::EventLog>,
}

impl Sessions {
    /// Forgets the states of past versions read (history was trimmed: some may be gone).
    pub fn forget_past_states(&self) {
        self.past_states.clear();
    }

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
        let notifier = crate::social::notifications::Notifier::start(store.clone(), bus.clone());
        let events = crate::tasks::events::EventLog::start(store.clone());
        let homes = bus
            .as_ref()
            .and_then(|b| {
                let gauge = metrics.home_sessions.clone();
                super::Homes::new(store.clone(), b.node(), config.home_lease, gauge)
            })
            .map(Arc::new);
        let versions = Watches::new(Some(metrics.preview_watches.clone()));
        Arc::new(Sessions {
            homes,
            map: Mutex::new(HashMap::new()),
            store,
            config,
            metrics,
            committer: Mutex::new(Some(committer)),
            next_generation: AtomicU64::new(1),
            tasks: TaskTracker::new(),
            versions,
            playheads: Watches::new(None),
            bus,
            observers: std::sync::RwLock::new(Vec::new()),
            creations: crate::quota::Quotas::default(),
            heavy: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
            past_states: Default::default(),
            notifier,
            events,
        })
    }

    /// Takes one from `user`'s hourly quota of new sessions, or says when to try again.
    pub fn may_create_session(&self, user: &str) -> Result<(), String> {
        let limit = self.config.sessions_per_user;
        self.creations
            .take(&[(user.to_owned(), limit)], 1, std::time::Instant::now())
            .map_err(|wait| {
                format!(
                    "at most {limit} new sessions per user per hour; try again in {} s",
                    wait.as_secs().max(1)
                )
            })
    }

    /// Registers `o` to hear of every edit that becomes durable on this node.
    pub fn observe_edits(&self, o: Arc<dyn EditObserver>) {
        self.observers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(o);
    }

    /// Tells every observer. (Observers only register at start-up: the read lock is uncontended
    /// and nothing is copied per event.)
    fn tell(&self, event: impl Fn(&dyn EditObserver)) {
        for o in self
            .observers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            event(o.as_ref());
        }
    }

    /// `user`'s edit to `session` is durable as `version`.
    pub(super) fn edit_committed(&self, session: &str, user: &str, version: u64) {
        self.tell(|o| o.edit_committed(session, user, version));
    }

    /// `author`'s comment in `session` was resolved by another user.
    pub(super) fn comment_resolved_by_other(&self, session: &str, author: &str) {
        self.tell(|o| o.comment_resolved_by_other(session, author));
    }

    /// `author`'s suggestion in `session` was accepted.
    pub(super) fn suggestion_accepted(&self, session: &str, author: &str) {
        self.tell(|o| o.suggestion_accepted(session, author));
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
                frame: Frame::from(frame),
            });
        }
    }

    /// `not_found` unless the store holds the session (looked up without loading it).
    async fn require_stored(&self, id: &str) -> Result<(), ErrorCode> {
        match self.store.meta(id).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ErrorCode::NotFound),
            Err(e) => {
                tracing::error!(session = id, error = %e, "meta read failed");
                Err(ErrorCode::Internal)
            }
        }
    }

    /// Gives `user` at least `role` in an existing session; returns the role they hold.
    pub async fn grant(
        self: &Arc<Self>,
        id: &str,
        user: &str,
        role: Role,
    ) -> Result<Role, ErrorCode> {
        self.require_stored(id).await?;
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

    /// Asks an existing session's actor (loading it) and waits for its answer; a missing
    /// session is not_found without loading anything.
    async fn ask<T>(
        self: &Arc<Self>,
        id: &str,
        msg: impl FnOnce(oneshot::Sender<Result<T, (ErrorCode, String)>>) -> SessionMsg,
    ) -> Result<T, (ErrorCode, String)> {
        let internal = || {
            (
                ErrorCode::Internal,
                "could not reach the session".to_owned(),
            )
        };
        match self.store.meta(id).await {
            Ok(Some(_)) => {}
            Ok(None) => return Err((ErrorCode::NotFound, format!("no session {id}"))),
            Err(e) => {
                tracing::error!(session = id, error = %e, "meta read failed");
                return Err(internal());
            }
        }
        let (reply, rx) = oneshot::channel();
        if self.send(id, msg(reply), true).await.is_err() {
            return Err(internal());
        }
        rx.await.unwrap_or_else(|_| Err(internal()))
    }

    /// Changes a session's settings for its owner (`PATCH /v1/sessions/{id}`).
    pub async fn configure(
        self: &Arc<Self>,
        id: &str,
        who: Principal,
        update: crate::store::SessionUpdate,
    ) -> Result<super::Configured, (ErrorCode, String)> {
        self.ask(id, |reply| SessionMsg::Configure { who, update, reply })
            .await
    }

    /// Deletes a session for its owner; answers the asset ids whose bytes are to be released.
    pub async fn delete(
        self: &Arc<Self>,
        id: &str,
        who: Principal,
    ) -> Result<Vec<String>, (ErrorCode, String)> {
        self.ask(id, |reply| SessionMsg::Delete { who, reply })
            .await
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn loaded(&self) -> usize {
        self.lock().len()
    }

    pub(super) fn get(
        self: &Arc<Self>,
        id: &str,
        spawn: bool,
    ) -> Option<(u64, mpsc::Sender<SessionMsg>)> {
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

    pub(super) fn remove_if(&self, id: &str, generation: u64) {
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
    /// first watch). Access is the caller's to check, before calling this: the entry lives as
    /// long as its watches and goes with the last one.
    pub fn watch_versions(&self, id: &str) -> VersionWatch {
        self.versions.watch(id, 0)
    }

    /// Sessions whose versions are watched (each entry held by at least one watch).
    pub fn version_watches(&self) -> usize {
        self.versions.len()
    }

    /// Whether a live-preview subscription watches the session's versions.
    pub(super) fn has_version_watchers(&self, id: &str) -> bool {
        self.versions.is_watched(id)
    }

    /// A watch of `user`'s playhead in `session` (unknown until they move it or
    /// [`Sessions::seed_playhead`]). Access is the caller's to check.
    pub fn watch_playhead(&self, session: &str, user: &str) -> PlayheadWatch {
        self.playheads.watch(&playhead_key(session, user), None)
    }

    /// Where `user`'s playhead is in `session` now, if the session is loaded and they said.
    pub async fn playhead(self: &Arc<Self>, session: &str, user: &str) -> Option<f64> {
        let (reply, rx) = oneshot::channel();
        let msg = SessionMsg::Playhead {
            user: Arc::from(user),
            reply,
        };
        self.send(session, msg, false).await.ok()?;
        rx.await.ok().flatten()
    }

    /// Sets a watched playhead read from the session, unless a move was heard meanwhile.
    pub fn seed_playhead(&self, session: &str, user: &str, t: f64) {
        self.playheads.update(&playhead_key(session, user), |v| {
            let unknown = v.is_none();
            if unknown {
                *v = Some(t);
            }
            unknown
        });
    }

    /// Tells the watchers of `user`'s playhead in `session` where it is; never blocks.
    pub(super) fn publish_playhead(&self, session: &str, user: &str, t: f64) {
        if self.playheads.len() == 0 {
            return;
        }
        self.playheads.update(&playhead_key(session, user), |v| {
            let moved = *v != Some(t);
            *v = Some(t);
            moved
        });
    }

    /// Tells the watchers of a session that `version` is committed; never blocks.
    pub(super) fn publish_version(&self, id: &str, version: u64) {
        self.versions.update(id, |v| {
            let newer = version > *v;
            if newer {
                *v = version;
            }
            newer
        });
    }

    /// The committed `(version, state JSON)` of a session, for a reader with at least viewer rights.
    pub async fn state(
        self: &Arc<Self>,
        id: &str,
        who: &Principal,
    ) -> Result<(u64, String), ErrorCode> {
        // Reads of ids that do not exist must not load anything: ask the store first.
        if self.get(id, false).is_none() {
            self.require_stored(id).await?;
        }
        let (reply, rx) = oneshot::channel();
        if self
            .send(
                id,
                SessionMsg::GetState {
                    who: who.clone(),
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

impl crate::social::service::SessionLink for Arc<Sessions> {
    fn notify(&self, session: &str, frame: String) {
        Sessions::notify(self, session, frame);
    }

    fn inbox(&self, n: crate::store::NewNotification) {
        self.notifier.send(n);
    }

    fn event(&self, kind: &str, session: Option<&str>, data: serde_json::Value) {
        self.events.emit(kind, session, data);
    }

    fn grant<'a>(
        &'a self,
        session: &'a str,
        user: &'a str,
        role: Role,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Role, ErrorCode>> + Send + 'a>> {
        Box::pin(Sessions::grant(self, session, user, role))
    }

    fn count_contributions(&self, tally: Arc<ContributionTally>) {
        self.observe_edits(Arc::new(CountContributions(tally)));
    }

    fn head<'a>(
        &'a self,
        session: &'a str,
        user: &'a str,
    ) -> crate::social::service::HeadFuture<'a> {
        Box::pin(async move { self.state(session, &Principal::new(user, None)).await })
    }
}

/// What a session credits, counted towards badges: every durable edit is its author's accepted
/// edit; resolved comments and accepted suggestions count for their authors.
struct CountContributions(Arc<ContributionTally>);

impl EditObserver for CountContributions {
    fn edit_committed(&self, session: &str, user: &str, _version: u64) {
        self.0.add(session, user, ContributionKind::EditAccepted);
    }

    fn comment_resolved_by_other(&self, session: &str, author: &str) {
        self.0
            .add(session, author, ContributionKind::CommentResolvedByOther);
    }

    fn suggestion_accepted(&self, session: &str, author: &str) {
        self.0
            .add(session, author, ContributionKind::SuggestionAccepted);
    }
}
