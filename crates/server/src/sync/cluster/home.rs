//! Home nodes (DESIGN §9.7): with `--nats-url`, each loaded session is sequenced by one node,
//! the holder of its lease (`store::leases`). Clients may connect to any node.
//!
//! - **Home.** Its actor sequences as a single node does, stamping its lease epoch on every
//!   append (`Write::Op.fence`), so the store refuses its writes once another node took the
//!   lease. Edits other nodes forward come in as [`SessionMsg::Forwarded`] and go through the
//!   same `apply_edit` as its own clients' edits; the answer goes back once the version is
//!   durable.
//! - **Elsewhere.** The actor still keeps the document (for joins, presence and previews) and
//!   applies the home's commits from the bus in order, but never appends: a client's edit is
//!   forwarded to the home ([`Bus::forward`], in arrival order). The client's `ack` is sent when
//!   its version arrives here (matched by user, client and seq), so it comes in version order
//!   with the `op`s around it.
//! - **Failover.** A forward that fails (no responders, a timeout, `not_home`) asks the store
//!   for the lease again, which takes it over once the old home stopped renewing it, and sends
//!   every edit not yet answered again, in order. The home dedupes them by `(client, seq)`
//!   against the store, so none is applied twice; the epoch fence makes sure a home that was
//!   only paused cannot append after the takeover.
//!
//! Each node renews all its leases with one statement every quarter of the lease
//! ([`spawn_renewals`]) and tells the actors whose lease went to another node.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use montage_ot::Op;
use montage_protocol::{ErrorCode, ServerMessage, encode_with_rid};
use tokio::sync::oneshot;

use super::super::actor::{Action, Actor, EditRequest};
use super::super::{ConnHandle, SessionMsg, Sessions};
use crate::bus::{Bus, Forward, ForwardReply};
use crate::error::Result;
use crate::store::{Lease, Store, StoredOp};

/// Times an edit is sent again after its home could not be reached before the client is told
/// (the lease expires long before: this only ends a store or NATS outage).
const MAX_FORWARD_ATTEMPTS: u32 = 20;
/// Waited before sending again after a failed forward, times the attempt (at most 10 times).
const RETRY_STEP: Duration = Duration::from_millis(100);
/// Forwarded edits of one session waiting for their answers on this node; past it a client's
/// edit is refused (`rate_limited`) instead of queued without bound behind a slow home.
const MAX_PENDING: usize = 4_096;
/// The same, per connection, so one client cannot take the whole session's share.
const MAX_PENDING_PER_CONN: usize = 256;
/// An edit whose caller waits for the answer (a restore, an accepted suggestion) holds up the
/// session's actor: it waits at most this many leases in all.
const WAIT_LEASES: u32 = 4;
/// After the home answered with a version this node has not heard yet, it is read from the
/// store if the bus has not brought it this long after.
const CATCH_UP_AFTER: Duration = Duration::from_millis(250);

/// This node's leases, shared by its session actors and the renewal task.
pub struct Homes {
    store: Arc<dyn Store>,
    node: String,
    ttl: Duration,
    /// Sessions whose lease this node holds, and the epoch.
    held: Mutex<HashMap<String, u64>>,
    /// `montage_home_sessions`: how many that is.
    gauge: prometheus::IntGauge,
}

impl Homes {
    /// Home nodes for `node` when the config asks for them and the store keeps leases.
    pub fn new(
        store: Arc<dyn Store>,
        node: &str,
        ttl: Option<Duration>,
        gauge: prometheus::IntGauge,
    ) -> Option<Homes> {
        store.leases()?;
        Some(Homes {
            store,
            node: node.to_owned(),
            ttl: ttl?,
            held: Mutex::default(),
            gauge,
        })
    }

    /// The held leases, for a change: the gauge follows when the guard goes.
    fn held_mut(&self) -> HeldGuard<'_> {
        HeldGuard {
            map: self.held(),
            gauge: &self.gauge,
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `session`'s lease if it is free or expired; answers who holds it now.
    async fn acquire(&self, session: &str) -> Result<Lease> {
        let Some(leases) = self.store.leases() else {
            return Err(crate::error::Error::Closed);
        };
        let lease = leases.acquire(session, &self.node, self.ttl).await?;
        if lease.node == self.node {
            self.held_mut().insert(session.to_owned(), lease.epoch);
        }
        Ok(lease)
    }

    async fn release(&self, session: &str, epoch: u64) {
        {
            let mut held = self.held_mut();
            if held.get(session) == Some(&epoch) {
                held.remove(session);
            }
        }
        if let Some(leases) = self.store.leases()
            && let Err(e) = leases.release(session, &self.node, epoch).await
        {
            tracing::warn!(%session, error = %e, "releasing a home lease failed; it expires");
        }
    }
}

/// The held leases, locked; sets the gauge to their number when dropped.
struct HeldGuard<'a> {
    map: std::sync::MutexGuard<'a, HashMap<String, u64>>,
    gauge: &'a prometheus::IntGauge,
}

impl std::ops::Deref for HeldGuard<'_> {
    type Target = HashMap<String, u64>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl std::ops::DerefMut for HeldGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.gauge.set(self.map.len() as i64);
    }
}

/// Renews this node's leases every quarter of their length and tells each actor whose lease
/// another node took (or that the store no longer lists) that it is not the home any more.
pub fn spawn_renewals(sessions: Arc<Sessions>) {
    let Some(homes) = sessions.homes.clone() else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(homes.ttl / 4);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(leases) = homes.store.leases() else {
                return;
            };
            // Only sessions whose actor still runs here: one that ended without giving its
            // lease up (a panic) lets it expire. Judged against this snapshot, so a lease taken
            // during the round trip is not mistaken for a lost one.
            let snapshot: Vec<(String, u64)> = homes
                .held()
                .iter()
                .filter(|(s, _)| {
                    sessions
                        .get(s, false)
                        .is_some_and(|(_, tx)| !tx.is_closed())
                })
                .map(|(s, e)| (s.clone(), *e))
                .collect();
            let names: Vec<String> = snapshot.iter().map(|(s, _)| s.clone()).collect();
            let renewed = match leases.renew(&homes.node, &names, homes.ttl).await {
                Ok(r) => r,
                Err(e) => {
                    // Other nodes take the leases over once they expire; the fence stops this
                    // node's appends from then on.
                    tracing::warn!(error = %e, "renewing home leases failed");
                    continue;
                }
            };
            let renewed: HashMap<String, u64> = renewed.into_iter().collect();
            let lost: Vec<(String, u64)> = {
                let mut held = homes.held_mut();
                // Actors that ended without a word: nothing more to tell them.
                held.retain(|s, _| {
                    sessions
                        .get(s, false)
                        .is_some_and(|(_, tx)| !tx.is_closed())
                });
                let lost: Vec<(String, u64)> = snapshot
                    .into_iter()
                    .filter(|(s, e)| renewed.get(s) != Some(e) && held.get(s) == Some(e))
                    .collect();
                for (s, _) in &lost {
                    held.remove(s);
                }
                lost
            };
            sessions
                .metrics
                .home_leases_lost_total
                .inc_by(lost.len() as u64);
            for (session, epoch) in lost {
                tracing::info!(%session, epoch, "home lease lost");
                // Never waits on a busy session: the renewal of every other one would wait.
                let sessions = sessions.clone();
                tokio::spawn(async move {
                    let _ = sessions
                        .send(&session, SessionMsg::LeaseLost { epoch }, false)
                        .await;
                });
            }
        }
    });
}

/// Hands edits other nodes forward here to their sessions' actors, in arrival order. A session
/// not loaded here is not homed here: the message drops and its `HomeReply` says `not_home`.
pub fn spawn_forward_dispatcher(sessions: Arc<Sessions>, bus: &dyn Bus) {
    let Some(mut rx) = bus.take_forwards() else {
        return;
    };
    tokio::spawn(async move {
        while let Some((req, reply)) = rx.recv().await {
            let id = req.session.clone();
            let msg = SessionMsg::Forwarded {
                req,
                reply: HomeReply(Some(reply)),
            };
            let _ = sessions.send(&id, msg, false).await;
        }
    });
}

/// The answer owed to a forwarding node. Dropped unanswered — the edit was rolled back, the
/// write failed, the actor went away — it answers `not_home`, so the other node asks the
/// lease again at once instead of waiting out its timeout.
#[derive(Debug)]
pub struct HomeReply(Option<oneshot::Sender<ForwardReply>>);

impl HomeReply {
    pub(crate) fn send(mut self, reply: ForwardReply) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(reply);
        }
    }
}

impl Drop for HomeReply {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(ForwardReply::NotHome);
        }
    }
}

impl Forward {
    fn new(session: &str, e: &EditRequest) -> Forward {
        Forward {
            session: session.to_owned(),
            user: e.user.to_string(),
            client: e.client.to_string(),
            seq: e.seq,
            base: e.base,
            ops: serde_json::to_string(&e.ops).unwrap_or_default(),
            sealed: e.sealed.clone(),
            rid: e.rid.clone(),
        }
    }
}

/// Where a session is sequenced, as this node's actor knows it.
#[derive(Debug, Clone, PartialEq)]
enum Home {
    /// This node, under this lease epoch.
    Here(u64),
    /// Another node (by bus id).
    There(String),
    /// Not known: asked at the next edit.
    Unknown,
}

/// A client's edit sent to the home, until its ack or refusal is sent.
struct Pending {
    conn: u64,
    req: EditRequest,
    /// Times sent; an answer to an earlier send is stale and ignored.
    attempts: u32,
    /// Sent and not yet answered, or answered with a version not applied here yet.
    awaiting: bool,
    /// When it was last sent.
    sent: Instant,
    /// The version the home answered, until it arrives here.
    acked: Option<u64>,
}

/// Forwarded edits in the order they came, findable by who sent them.
#[derive(Default)]
struct Queue {
    by_number: BTreeMap<u64, Pending>,
    by_seq: HashMap<(Arc<str>, Arc<str>, u64), u64>,
    per_conn: HashMap<u64, usize>,
    next: u64,
}

impl Queue {
    fn push(&mut self, p: Pending) -> u64 {
        let n = self.next;
        self.next += 1;
        self.by_seq
            .insert((p.req.user.clone(), p.req.client.clone(), p.req.seq), n);
        *self.per_conn.entry(p.conn).or_default() += 1;
        self.by_number.insert(n, p);
        n
    }

    fn take(&mut self, n: u64) -> Option<Pending> {
        let p = self.by_number.remove(&n)?;
        self.by_seq
            .remove(&(p.req.user.clone(), p.req.client.clone(), p.req.seq));
        if let Some(c) = self.per_conn.get_mut(&p.conn) {
            *c -= 1;
            if *c == 0 {
                self.per_conn.remove(&p.conn);
            }
        }
        Some(p)
    }

    fn find(&self, user: &str, client: &str, seq: u64) -> Option<u64> {
        self.by_seq
            .get(&(Arc::from(user), Arc::from(client), seq))
            .copied()
    }

    fn of_conn(&self, conn: u64) -> usize {
        self.per_conn.get(&conn).copied().unwrap_or(0)
    }
}

/// The actor's side of home nodes; `None` in `Cluster` when they are off.
pub(in crate::sync) struct HomeState {
    at: Home,
    homes: Arc<Homes>,
    pending: Queue,
    /// A re-send of failed forwards is scheduled.
    retry_due: bool,
    /// A look at edits waiting long for their answer is scheduled.
    check_due: bool,
}

impl HomeState {
    pub(in crate::sync) fn new(homes: Arc<Homes>) -> HomeState {
        HomeState {
            at: Home::Unknown,
            homes,
            pending: Queue::default(),
            retry_due: false,
            check_due: false,
        }
    }
}

/// What became of a forwarded edit, for the actor.
#[derive(Debug)]
pub enum ForwardOutcome {
    Replied(ForwardReply),
    /// No answer: the node is gone, unreachable or did not answer in time.
    Unreachable,
}

impl Actor {
    fn home_state(&mut self) -> Option<&mut HomeState> {
        self.cluster.as_mut()?.home.as_mut()
    }

    /// The epoch to stamp on this node's appends: its lease's, when it is the home.
    pub(in crate::sync) fn fence(&self) -> Option<u64> {
        match self.cluster.as_ref()?.home.as_ref()?.at {
            Home::Here(epoch) => Some(epoch),
            _ => None,
        }
    }

    /// Asks the store who the home is, taking the lease when it is free or expired.
    pub(in crate::sync) async fn resolve_home(&mut self) {
        let Some(h) = self.home_state() else { return };
        let homes = h.homes.clone();
        let at = match homes.acquire(&self.id).await {
            Ok(l) if l.node == homes.node => {
                tracing::debug!(session = %self.id, epoch = l.epoch, "home here");
                Home::Here(l.epoch)
            }
            Ok(l) => Home::There(l.node),
            Err(e) => {
                tracing::warn!(session = %self.id, error = %e, "reading the home lease failed");
                Home::Unknown
            }
        };
        let Some(h) = self.home_state() else { return };
        let took_over = matches!(at, Home::Here(_)) && !matches!(h.at, Home::Here(_));
        h.at = at;
        if took_over {
            // The old home may have committed versions whose bus messages died with it.
            self.catch_up().await;
        }
    }

    /// Gives the lease up as the actor ends, so another node may take it at once.
    pub(in crate::sync) async fn release_home(&mut self) {
        let Some(h) = self.home_state() else { return };
        if let Home::Here(epoch) = h.at {
            h.at = Home::Unknown;
            let homes = h.homes.clone();
            homes.release(&self.id, epoch).await;
        }
    }

    /// The renewal found the lease (of `epoch`) gone: appends would be refused from now on.
    pub(in crate::sync) fn lease_lost(&mut self, epoch: u64) {
        if let Some(h) = self.home_state()
            && h.at == Home::Here(epoch)
        {
            h.at = Home::Unknown;
        }
    }

    /// An append of ours was refused: whoever holds the lease now is asked at the next edit.
    pub(in crate::sync) fn home_unknown(&mut self) {
        if let Some(h) = self.home_state() {
            h.at = Home::Unknown;
        }
    }

    /// Whether edits go to another node; asks the store first when the home is unknown.
    pub(in crate::sync) async fn forwarding(&mut self) -> bool {
        let Some(h) = self.home_state() else {
            return false;
        };
        if h.at == Home::Unknown {
            self.resolve_home().await;
        }
        self.home_state()
            .is_some_and(|h| !matches!(h.at, Home::Here(_)))
    }

    /// Sends a client's edit (`ack` is its connection) to the home; the ack or refusal comes
    /// later. An edit without a connection to ack (an accepted suggestion, a restore) waits for
    /// the answer and returns its version once this node has applied it.
    pub(in crate::sync) async fn forward_edit(
        &mut self,
        pconn: &ConnHandle,
        req: EditRequest,
        ack: Option<u64>,
    ) -> Option<u64> {
        let Some(conn) = ack else {
            return self.forward_and_wait(pconn, req).await;
        };
        let h = self.home_state()?;
        if h.pending.by_number.len() >= MAX_PENDING
            || h.pending.of_conn(conn) >= MAX_PENDING_PER_CONN
        {
            pconn.error(
                ErrorCode::RateLimited,
                "too many edits waiting for this session's home node; resend once acked",
                req.rid.as_ref(),
            );
            return None;
        }
        // Behind edits waiting to be sent again, it waits too: they go in order.
        let queued = h.retry_due || h.pending.by_number.values().any(|p| !p.awaiting);
        let n = h.pending.push(Pending {
            conn,
            req,
            attempts: 0,
            awaiting: false,
            sent: Instant::now(),
            acked: None,
        });
        self.metrics.forwarded_edits_total.inc();
        if queued {
            self.schedule_reforward(0);
        } else if !self.send_forward(n) {
            // No home known (the store did not answer): asked again shortly.
            self.schedule_reforward(0);
        }
        None
    }

    /// Sends pending edit `n` to the home and has its answer come back as a message; false
    /// when no other node is known as the home.
    fn send_forward(&mut self, n: u64) -> bool {
        let Some(cl) = &mut self.cluster else {
            return false;
        };
        let Some(h) = &mut cl.home else { return false };
        let Home::There(node) = &h.at else {
            return false;
        };
        let Some(p) = h.pending.by_number.get_mut(&n) else {
            return true;
        };
        p.awaiting = true;
        p.acked = None;
        p.attempts += 1;
        p.sent = Instant::now();
        let attempt = p.attempts;
        let req = Forward::new(&self.id, &p.req);
        let answer = cl.bus.forward(node, req);
        if !h.check_due {
            // A home killed with edits in flight never answers them, and NATS only says "no
            // responders" to later ones: look again at half the lease.
            h.check_due = true;
            let sessions = self.sessions.clone();
            let id = self.id.clone();
            let wait = h.homes.ttl / 2;
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                let _ = sessions.send(&id, SessionMsg::ForwardCheck, false).await;
            });
        }
        let sessions = self.sessions.clone();
        let id = self.id.clone();
        tokio::spawn(async move {
            let outcome = match answer.await {
                Ok(r) => ForwardOutcome::Replied(r),
                Err(_) => ForwardOutcome::Unreachable,
            };
            let msg = SessionMsg::ForwardAnswer {
                n,
                attempt,
                outcome,
            };
            let _ = sessions.send(&id, msg, false).await;
        });
        true
    }

    /// Has the edits not awaiting an answer sent again after a pause that grows with
    /// `attempts`; once at a time.
    fn schedule_reforward(&mut self, attempts: u32) {
        let Some(h) = self.home_state() else { return };
        if h.retry_due {
            return;
        }
        h.retry_due = true;
        let sessions = self.sessions.clone();
        let id = self.id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RETRY_STEP * attempts.clamp(1, 10)).await;
            let _ = sessions.send(&id, SessionMsg::Reforward, false).await;
        });
    }

    /// The home's answer to the `attempt`th send of pending edit `n`.
    pub(in crate::sync) async fn on_forward_answer(
        &mut self,
        n: u64,
        attempt: u32,
        outcome: ForwardOutcome,
    ) {
        // Compared with what is durable here: a node that was the home may still hold its own
        // unconfirmed versions, which a rollback takes back.
        let committed = self.committed();
        let Some(h) = self.home_state() else { return };
        let Some(p) = h.pending.by_number.get_mut(&n) else {
            // Acked already: its version came first.
            return;
        };
        if p.attempts != attempt || !p.awaiting {
            // The answer to a send that was given up on; a later one is on its way.
            return;
        }
        match outcome {
            ForwardOutcome::Replied(ForwardReply::Acked { version }) => {
                if version <= committed {
                    // A resend of an edit applied before: ack it now.
                    if let Some(p) = h.pending.take(n) {
                        self.send_forwarded_ack(&p, version);
                    }
                } else {
                    // Its `op` is on the way; the store has it if the bus lost it.
                    p.acked = Some(version);
                    let sessions = self.sessions.clone();
                    let id = self.id.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(CATCH_UP_AFTER).await;
                        let _ = sessions
                            .send(&id, SessionMsg::CatchUpTo { version }, false)
                            .await;
                    });
                }
            }
            ForwardOutcome::Replied(ForwardReply::Refused { frame }) => {
                if let Some(p) = h.pending.take(n)
                    && let Some(pp) = self.participants.get(&p.conn)
                {
                    pp.conn.send(frame);
                }
            }
            ForwardOutcome::Replied(ForwardReply::NotHome) | ForwardOutcome::Unreachable => {
                // The home is gone or moved: every edit sent to it before this one is in the
                // same state, so all go again (the home dedupes any it did apply).
                let attempts = p.attempts;
                for q in h.pending.by_number.range_mut(..=n) {
                    if q.1.acked.is_none() {
                        q.1.awaiting = false;
                    }
                }
                self.schedule_reforward(attempts);
            }
        }
    }

    /// Edits unanswered for half a lease or more: when the lease has moved (or expired, and
    /// this node took it), they go to the new home now instead of waiting out their timeout.
    /// Versions the home acked that never arrived are read from the store.
    pub(in crate::sync) async fn forward_check(&mut self) {
        let Some(h) = self.home_state() else { return };
        h.check_due = false;
        let patience = h.homes.ttl / 2;
        let before = h.at.clone();
        let newest_acked = h.pending.by_number.values().filter_map(|p| p.acked).max();
        let waiting = |p: &Pending| p.awaiting && p.acked.is_none();
        let overdue = !matches!(before, Home::Here(_))
            && h.pending
                .by_number
                .values()
                .any(|p| waiting(p) && p.sent.elapsed() >= patience);
        // Past a whole lease the request itself was likely lost (NATS restarting): the same
        // home gets it again, and dedupes it if it did arrive.
        let lost = h
            .pending
            .by_number
            .values()
            .any(|p| waiting(p) && p.sent.elapsed() >= patience * 2);
        if let Some(v) = newest_acked {
            self.catch_up_to(v).await;
        }
        if overdue {
            self.home_unknown();
            self.resolve_home().await;
        }
        let id = self.id.clone();
        let Some(h) = self.home_state() else { return };
        if overdue && h.at != Home::Unknown && (h.at != before || lost) {
            tracing::info!(session = %id, from = ?before, to = ?h.at, "sending the edits waiting for the home again");
            for p in h.pending.by_number.values_mut() {
                if p.acked.is_none() {
                    p.awaiting = false;
                }
            }
            self.reforward().await;
        }
        let Some(h) = self.home_state() else { return };
        if !h.pending.by_number.is_empty() && !h.check_due {
            h.check_due = true;
            let sessions = self.sessions.clone();
            tokio::spawn(async move {
                tokio::time::sleep(patience).await;
                let _ = sessions.send(&id, SessionMsg::ForwardCheck, false).await;
            });
        }
    }

    /// The home answered with a version the bus has not brought yet: read it from the store.
    pub(in crate::sync) async fn catch_up_to(&mut self, version: u64) {
        if self.settled() && self.committed() < version {
            self.catch_up().await;
        }
    }

    /// Sends again every forwarded edit that is not awaiting an answer, in order, to the home
    /// as the store names it now — or applies them here when this node took the lease.
    pub(in crate::sync) async fn reforward(&mut self) {
        let Some(h) = self.home_state() else { return };
        h.retry_due = false;
        // Asked again unless this node is the home (asking would give it a new epoch and
        // fence its own writes in flight).
        if !matches!(h.at, Home::Here(_)) {
            h.at = Home::Unknown;
            self.resolve_home().await;
        }
        let Some(h) = self.home_state() else { return };
        let idle: Vec<u64> = h
            .pending
            .by_number
            .iter()
            .filter(|(_, p)| !p.awaiting)
            .map(|(n, _)| *n)
            .collect();
        let here = matches!(h.at, Home::Here(_));
        for n in idle {
            let Some(h) = self.home_state() else { return };
            let Some(p) = h.pending.by_number.get(&n) else {
                continue;
            };
            let attempts = p.attempts;
            if here || attempts >= MAX_FORWARD_ATTEMPTS {
                let Some(p) = h.pending.take(n) else {
                    continue;
                };
                let Some(conn) = self.participants.get(&p.conn).map(|pp| pp.conn.clone()) else {
                    continue;
                };
                if here {
                    // This node is the home now: the edit is sequenced here (a resend of one
                    // the old home applied is found in the store and acked with its version).
                    self.apply_edit(&conn, p.req, Some(p.conn)).await;
                } else {
                    conn.error(
                        ErrorCode::Internal,
                        "this session's home node could not be reached; join again",
                        p.req.rid.as_ref(),
                    );
                }
            } else if !self.send_forward(n) {
                // The store did not say who the home is: asked again shortly.
                self.schedule_reforward(attempts);
                return;
            }
        }
    }

    /// A version arrived from the home: when it is an edit forwarded from here, its connection
    /// gets the ack and its id is returned (that connection gets no `op` of it).
    pub(in crate::sync) fn ack_forwarded(&mut self, o: &StoredOp) -> Option<u64> {
        let h = self.home_state()?;
        let n = h.pending.find(&o.user, &o.client, o.seq)?;
        let p = h.pending.take(n)?;
        self.send_forwarded_ack(&p, o.version);
        Some(p.conn)
    }

    fn send_forwarded_ack(&self, p: &Pending, version: u64) {
        self.metrics.edits_total.inc();
        self.metrics.observe_ack(p.req.received.elapsed());
        if let Some(pp) = self.participants.get(&p.conn) {
            pp.conn
                .send(self.ack_frame(p.req.seq, version, p.req.rid.as_ref()));
        }
    }

    /// The session broke (a failed write, an unreadable version): it stops being the home at
    /// once — no more renewals, so another node takes the lease when it expires.
    pub(in crate::sync) fn give_up_home(&mut self) {
        let id = self.id.clone();
        let Some(h) = self.home_state() else { return };
        if let Home::Here(epoch) = h.at {
            let mut held = h.homes.held_mut();
            if held.get(&*id) == Some(&epoch) {
                held.remove(&*id);
            }
        }
        h.at = Home::Unknown;
    }

    /// An edit with nobody to ack, sent to the home and waited for (a suggestion accepted or a
    /// version restored on this node: rare, and their callers need the version).
    async fn forward_and_wait(&mut self, pconn: &ConnHandle, edit: EditRequest) -> Option<u64> {
        let req = Forward::new(&self.id, &edit);
        let ttl = self.home_state().map(|h| h.homes.ttl)?;
        let deadline = tokio::time::Instant::now() + ttl * WAIT_LEASES;
        for attempt in 0..MAX_FORWARD_ATTEMPTS {
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            let Some(cl) = &self.cluster else { return None };
            let node = match cl.home.as_ref().map(|h| &h.at) {
                Some(Home::There(node)) => node.clone(),
                Some(Home::Here(_)) => {
                    // Took the lease meanwhile: sequence it here.
                    return Box::pin(self.apply_edit(pconn, edit, None)).await;
                }
                _ => String::new(),
            };
            let answer = if node.is_empty() {
                None
            } else {
                let answer = cl.bus.forward(&node, req.clone());
                match tokio::time::timeout_at(deadline, answer).await {
                    Ok(Ok(reply)) => Some(reply),
                    _ => None,
                }
            };
            match answer {
                Some(ForwardReply::Acked { version }) => {
                    self.catch_up_to(version).await;
                    return Some(version);
                }
                Some(ForwardReply::Refused { frame }) => {
                    pconn.send(frame);
                    return None;
                }
                Some(ForwardReply::NotHome) | None => {
                    tokio::time::sleep(RETRY_STEP * attempt.min(10)).await;
                    self.home_unknown();
                    self.resolve_home().await;
                }
            }
        }
        // The home may still apply it: a blind retry could do it twice.
        pconn.error(
            ErrorCode::Internal,
            "this session's home node did not answer in time; the change may still be applied, so look at the session before trying again",
            edit.rid.as_ref(),
        );
        None
    }

    /// Sequences an edit another node forwarded here; the answer goes back once it is durable.
    pub(in crate::sync) async fn home_edit(&mut self, req: Forward, reply: HomeReply) {
        if self.broken || self.state.is_none() {
            return reply.send(ForwardReply::NotHome);
        }
        if self.home_state().is_some_and(|h| h.at == Home::Unknown) {
            // A refused append left it unsure: the store says whether it still is the home.
            self.resolve_home().await;
        }
        if self.fence().is_none() {
            return reply.send(ForwardReply::NotHome);
        }
        if self.state.as_ref().is_some_and(|c| req.base > c.version) && self.settled() {
            // Based on a version this node has not applied (its bus message is late).
            self.catch_up().await;
        }
        let ops: Op = match serde_json::from_str(&req.ops) {
            Ok(o) => o,
            Err(e) => {
                let frame = encode_with_rid(
                    &ServerMessage::error(ErrorCode::BadRequest, format!("edit unreadable: {e}")),
                    req.rid.as_ref(),
                );
                return reply.send(ForwardReply::Refused {
                    frame: frame.to_string(),
                });
            }
        };
        // Refusals sent to this stand-in connection go back to the forwarding node.
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let stand_in = ConnHandle::new(
            u64::MAX,
            Arc::from(req.user.as_str()),
            tx,
            tokio_util::sync::CancellationToken::new(),
            self.metrics.clone(),
        );
        let edit = EditRequest {
            user: Arc::from(req.user.as_str()),
            client: Arc::from(req.client.as_str()),
            seq: req.seq,
            base: req.base,
            ops,
            sealed: req.sealed,
            rid: req.rid,
            received: Instant::now(),
        };
        let applied = self.apply_edit(&stand_in, edit, None).await;
        match applied {
            Some(version) => self.when_committed(version, Action::Forwarded { reply }),
            None => match rx.try_recv() {
                Ok(crate::sync::Outbound::Frame(frame)) => reply.send(ForwardReply::Refused {
                    frame: frame.to_string(),
                }),
                // Nothing said (the session broke): the other node asks again.
                _ => drop(reply),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(conn: u64, client: &str, seq: u64) -> Pending {
        Pending {
            conn,
            req: EditRequest {
                seq,
                ..EditRequest::server_made(Arc::from("u"), Arc::from(client), 0, Op::default())
            },
            attempts: 0,
            awaiting: false,
            sent: Instant::now(),
            acked: None,
        }
    }

    #[test]
    fn the_queue_keeps_order_and_finds_edits_by_sender() {
        let mut q = Queue::default();
        let a = q.push(pending(1, "c1", 1));
        let b = q.push(pending(1, "c1", 2));
        let c = q.push(pending(2, "c2", 1));
        assert!(a < b && b < c);
        assert_eq!((q.of_conn(1), q.of_conn(2), q.of_conn(3)), (2, 1, 0));
        assert_eq!(q.find("u", "c1", 2), Some(b));
        assert_eq!(q.find("u", "c2", 2), None);
        assert_eq!(q.take(b).map(|p| p.req.seq), Some(2));
        assert!(q.take(b).is_none(), "taken once");
        assert_eq!(q.find("u", "c1", 2), None);
        assert_eq!(q.of_conn(1), 1);
        assert_eq!(q.by_number.keys().copied().collect::<Vec<_>>(), [a, c]);
    }
}
