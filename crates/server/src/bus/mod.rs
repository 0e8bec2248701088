//! Fan-out between gateway nodes: committed edits, participant and role events, and presence
//! travel from the node that handled them to every other node, which forwards them to its own
//! clients.
//!
//! The bus is a notification path, never the record: committed edits are in the store first and
//! a node that misses a message (NATS core delivery is at most once) fills the gap from the store
//! (`session::cluster`). Presence is ephemeral and is only ever on the bus.
//!
//! Two implementations: [`LocalBus`] (in-process; one node, or several nodes inside one test
//! process) and [`NatsBus`] (`--nats-url`). Publishing never blocks the caller: events go
//! through a bounded queue, and a full queue drops the event (counted) rather than holding up a
//! session actor.
//!
//! Each session has a NATS subject of its own ([`session_subject`]) and a node subscribes only
//! to the sessions it has loaded ([`Bus::watch`] before loading, [`Bus::unwatch`] after
//! unloading), so a node hears the traffic of its own sessions, not the whole cluster's: with a
//! session-affine load balancer, adding nodes adds capacity instead of multiplying fan-in.

mod forward;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::{Error, Result};
use crate::store::StoredOp;

use forward::Awaited;
pub use forward::{FORWARD_TIMEOUT, Forward, ForwardReply, Incoming};

/// The envelope format this build writes and reads; other versions are dropped with a warning.
pub const BUS_FORMAT: u32 = 1;
/// The prefix of the per-session NATS subjects (see [`session_subject`]). Nodes of builds with a
/// different prefix do not hear each other: upgrade a cluster all at once (OPERATIONS.md).
pub const NATS_SUBJECT_PREFIX: &str = "montage.v3";
/// Events queued for publishing before new ones are dropped.
pub const PUBLISH_QUEUE: usize = 8_192;
/// Received events queued for dispatch to the session actors.
pub const RECEIVE_QUEUE: usize = 8_192;
/// How long a session load waits for NATS to confirm its subscription. Past it the load goes on
/// (the subscription still takes effect when NATS answers): a NATS outage delays fan-out, and
/// the store fills the gap, but never holds up loading sessions.
pub const WATCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What one node tells the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusEvent {
    /// A version is committed in the store.
    Committed {
        session: String,
        version: u64,
        user: String,
        client: String,
        seq: u64,
        /// The edit's JSON as stored.
        ops: String,
        /// Its commit time (absent from nodes of builds before commit times).
        #[serde(default)]
        time: Option<i64>,
    },
    /// A role changed (already stored); other nodes update their permission checks.
    Role {
        session: String,
        user: String,
        role: String,
        /// The `role_changed` frame for their clients.
        frame: String,
    },
    /// The owner changed link access or the title (stored already); other nodes update their
    /// checks, tell their clients and take out whoever lost access.
    Settings {
        session: String,
        link_role: Option<String>,
        title: Option<String>,
        /// An encrypted session's new key epoch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_epoch: Option<u64>,
    },
    /// The session was deleted: other nodes tell their clients and let it go.
    Deleted { session: String },
    /// A frame for every client of the session on other nodes: `participant_joined`,
    /// `participant_left`, and `presence` (opaque, never stored).
    Relay {
        session: String,
        /// Presence may be dropped by a tier or a slow reader; roster events may not.
        presence: bool,
        frame: String,
    },
    /// A comment or suggestion changed (stored already): other nodes drop their copy of the
    /// session's comments (read again from the store at next use) and forward the frame.
    Social { session: String, frame: String },
    /// Who is online in a session on `node` now (one entry per user; empty when nobody is).
    /// Sent whenever that changes; `query` asks the nodes that have the session loaded to send
    /// theirs (the sender just got its first participant and may know nobody elsewhere).
    Roster {
        session: String,
        node: String,
        participants: Vec<montage_protocol::Participant>,
        query: bool,
    },
    /// A notification for `user` (stored already): every node sends `frame` to the user's
    /// connections. Carried on its own channel (`social::notifications::BUS_CHANNEL`).
    Notification {
        user: String,
        session: String,
        frame: String,
    },
}

impl BusEvent {
    pub fn session(&self) -> &str {
        match self {
            BusEvent::Committed { session, .. }
            | BusEvent::Role { session, .. }
            | BusEvent::Relay { session, .. }
            | BusEvent::Social { session, .. }
            | BusEvent::Roster { session, .. }
            | BusEvent::Settings { session, .. }
            | BusEvent::Deleted { session } => session,
            BusEvent::Notification { .. } => crate::social::notifications::BUS_CHANNEL,
        }
    }

    pub fn committed(session: &str, op: &StoredOp) -> BusEvent {
        BusEvent::Committed {
            session: session.to_owned(),
            version: op.version,
            user: op.user.clone(),
            client: op.client.clone(),
            seq: op.seq,
            ops: op.ops.clone(),
            time: op.time,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    v: u32,
    /// The publishing node, so a node skips its own events.
    node: String,
    event: BusEvent,
}

/// Encodes an event for the wire.
pub fn encode_event(node: &str, event: &BusEvent) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        v: BUS_FORMAT,
        node: node.to_owned(),
        event: event.clone(),
    })
    .unwrap_or_default()
}

/// Decodes an event; `Ok(None)` when it is this node's own.
pub fn decode_event(own_node: &str, bytes: &[u8]) -> Result<Option<BusEvent>> {
    let env: Envelope = serde_json::from_slice(bytes).map_err(|e| Error::Bus(e.to_string()))?;
    if env.v != BUS_FORMAT {
        return Err(Error::Bus(format!(
            "bus message format {} (this build reads {BUS_FORMAT})",
            env.v
        )));
    }
    Ok((env.node != own_node).then_some(env.event))
}

/// The NATS subject of a session's events: the prefix, the cluster (the id its database was
/// given, so deployments sharing one NATS server never hear each other's sessions) and the
/// session id in hex, because ids may hold any printable character and a subject token may not
/// hold `.`, `*`, `>` or spaces.
pub fn session_subject(cluster: &str, session: &str) -> String {
    format!(
        "{NATS_SUBJECT_PREFIX}.{}.{}",
        hex::encode(cluster),
        hex::encode(session)
    )
}

/// The NATS subject a node hears forwarded edits on. `node` is never hex-only like a session's
/// token, so the two never meet.
pub fn node_subject(cluster: &str, node: &str) -> String {
    format!("{NATS_SUBJECT_PREFIX}.{}.node.{node}", hex::encode(cluster))
}

/// A node's connection to the fan-out.
pub trait Bus: Send + Sync + 'static {
    /// This node's id (unique per process).
    fn node(&self) -> &str;
    /// Queues an event for the other nodes that watch its session; never waits.
    fn publish(&self, event: BusEvent);
    /// Starts hearing a session's events. Once it returns, events other nodes publish are
    /// delivered to this node, so an actor watches before it reads the store and misses
    /// nothing in between. Counted: each `watch` is paired with one [`Bus::unwatch`].
    fn watch<'a>(&'a self, session: &'a str) -> futures_util::future::BoxFuture<'a, ()>;
    /// Stops hearing a session once every `watch` of it has been undone.
    fn unwatch(&self, session: &str);
    /// Events from other nodes, in the order this node received them. Called once.
    fn take_events(&self) -> Option<mpsc::Receiver<BusEvent>>;
    /// Events dropped because the publish queue was full.
    fn dropped(&self) -> u64;
    /// Sends an edit to `node`, its session's home (DESIGN §9.7). The receiver gets the home's
    /// answer, or fails when the node could not be reached or did not answer within
    /// [`FORWARD_TIMEOUT`]. Requests go out in the order of these calls.
    fn forward(&self, node: &str, req: Forward) -> oneshot::Receiver<ForwardReply>;
    /// The edits other nodes forward to this one. Called once.
    fn take_forwards(&self) -> Option<mpsc::Receiver<Incoming>>;
}

/// The in-process bus: a broadcast channel shared by the nodes of one process.
#[derive(Clone)]
pub struct LocalHub {
    tx: broadcast::Sender<Arc<Vec<u8>>>,
    /// Each node's queue of forwarded edits.
    homes: Arc<std::sync::Mutex<HashMap<String, mpsc::Sender<Incoming>>>>,
}

impl Default for LocalHub {
    fn default() -> Self {
        LocalHub::new()
    }
}

impl LocalHub {
    pub fn new() -> LocalHub {
        LocalHub {
            tx: broadcast::channel(RECEIVE_QUEUE).0,
            homes: Arc::default(),
        }
    }

    /// A node on this hub.
    pub fn node(&self, id: &str) -> Arc<LocalBus> {
        let (tx, rx) = mpsc::channel(RECEIVE_QUEUE);
        let mut sub = self.tx.subscribe();
        let own = id.to_owned();
        tokio::spawn(async move {
            loop {
                match sub.recv().await {
                    Ok(bytes) => match decode_event(&own, &bytes) {
                        Ok(Some(ev)) => {
                            if tx.send(ev).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "bad bus message"),
                    },
                    // Missed events are recovered from the store, like NATS losses.
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "local bus lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        let (fwd_tx, fwd_rx) = mpsc::channel(RECEIVE_QUEUE);
        self.homes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), fwd_tx);
        Arc::new(LocalBus {
            node: id.to_owned(),
            hub: self.tx.clone(),
            rx: std::sync::Mutex::new(Some(rx)),
            homes: self.homes.clone(),
            forwards: std::sync::Mutex::new(Some(fwd_rx)),
        })
    }
}

pub struct LocalBus {
    node: String,
    hub: broadcast::Sender<Arc<Vec<u8>>>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<BusEvent>>>,
    homes: Arc<std::sync::Mutex<HashMap<String, mpsc::Sender<Incoming>>>>,
    forwards: std::sync::Mutex<Option<mpsc::Receiver<Incoming>>>,
}

impl Bus for LocalBus {
    fn node(&self) -> &str {
        &self.node
    }

    fn publish(&self, event: BusEvent) {
        // No receivers (a single node): nothing to do.
        let _ = self.hub.send(Arc::new(encode_event(&self.node, &event)));
    }

    /// In process every node hears every session (the dispatcher ignores sessions not loaded).
    fn watch<'a>(&'a self, _session: &'a str) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }

    fn unwatch(&self, _session: &str) {}

    fn take_events(&self) -> Option<mpsc::Receiver<BusEvent>> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn dropped(&self) -> u64 {
        0
    }

    fn forward(&self, node: &str, req: Forward) -> oneshot::Receiver<ForwardReply> {
        let (tx, rx) = oneshot::channel();
        let home = self
            .homes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)
            .cloned();
        // Unknown or overloaded: `tx` drops and the caller sees the node unreachable.
        if let Some(home) = home {
            let _ = home.try_send((req, tx));
        }
        rx
    }

    fn take_forwards(&self) -> Option<mpsc::Receiver<Incoming>> {
        self.forwards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// The NATS bus (core NATS, a subject per session). Reconnects are async-nats's (it restores
/// the subscriptions); while disconnected, published events are dropped once its buffer fills
/// and receivers fill gaps from the store.
/// What a node's publisher task sends, in order.
enum Outgoing {
    Event(BusEvent),
    /// A forwarded edit; its answer comes to the inbox subject ending in `id`.
    Request {
        node: String,
        id: u64,
        req: Forward,
    },
    /// A home's answer to a forwarding node.
    Reply {
        subject: async_nats::Subject,
        reply: ForwardReply,
    },
}

pub struct NatsBus {
    node: String,
    /// The cluster's id, the second token of every subject.
    cluster: String,
    client: async_nats::Client,
    out: mpsc::Sender<Outgoing>,
    awaited: Arc<Awaited>,
    forwards: std::sync::Mutex<Option<mpsc::Receiver<Incoming>>>,
    /// Where every subscription's events go, in arrival order.
    in_tx: mpsc::Sender<BusEvent>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<BusEvent>>>,
    watched: std::sync::Mutex<HashMap<String, Watch>>,
    dropped: Arc<AtomicU64>,
}

impl NatsBus {
    /// Connects as a node of `cluster`: nodes hear only nodes that name the same cluster (the
    /// server passes its database's cluster id).
    pub async fn connect(url: &str, cluster: &str) -> Result<NatsBus> {
        let node = crate::clock::random_node_id();
        let client = async_nats::ConnectOptions::new()
            .name(format!("montage-{node}"))
            .connect(url)
            .await
            .map_err(|e| {
                let url = crate::redact::redact_url(url);
                Error::Bus(format!("connecting to {url}: {e}"))
            })?;
        let (in_tx, in_rx) = mpsc::channel(RECEIVE_QUEUE);
        let (out, mut out_rx) = mpsc::channel::<Outgoing>(PUBLISH_QUEUE);
        // Answers to this node's forwarded edits come to `<inbox>.<request number>`.
        let inbox = client.new_inbox();
        let pub_node = node.clone();
        let pub_cluster = cluster.to_owned();
        let publisher = client.clone();
        let pub_inbox = inbox.clone();
        tokio::spawn(async move {
            while let Some(o) = out_rx.recv().await {
                let sent = match o {
                    Outgoing::Event(ev) => {
                        let bytes = encode_event(&pub_node, &ev);
                        let subject = session_subject(&pub_cluster, ev.session());
                        publisher.publish(subject, bytes.into()).await
                    }
                    Outgoing::Request { node, id, req } => {
                        let bytes = serde_json::to_vec(&req).unwrap_or_default();
                        let subject = node_subject(&pub_cluster, &node);
                        let reply = format!("{pub_inbox}.{id}");
                        publisher
                            .publish_with_reply(subject, reply, bytes.into())
                            .await
                    }
                    Outgoing::Reply { subject, reply } => {
                        let bytes = serde_json::to_vec(&reply).unwrap_or_default();
                        publisher.publish(subject, bytes.into()).await
                    }
                };
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "bus publish failed");
                }
            }
            let _ = publisher.flush().await;
        });
        let awaited = Arc::new(Awaited::default());
        let answers = client
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(|e| Error::Bus(format!("subscribing to answers: {e}")))?;
        tokio::spawn(receive_answers(answers, awaited.clone()));
        let (fwd_tx, fwd_rx) = mpsc::channel(RECEIVE_QUEUE);
        let asked = client
            .subscribe(node_subject(cluster, &node))
            .await
            .map_err(|e| Error::Bus(format!("subscribing to forwarded edits: {e}")))?;
        tokio::spawn(receive_forwards(asked, fwd_tx, out.clone()));
        Ok(NatsBus {
            node,
            cluster: cluster.to_owned(),
            client,
            out,
            awaited,
            forwards: std::sync::Mutex::new(Some(fwd_rx)),
            in_tx,
            rx: std::sync::Mutex::new(Some(in_rx)),
            watched: std::sync::Mutex::default(),
            dropped: Arc::default(),
        })
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, HashMap<String, Watch>> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to a session's subject and forwards its events; `None` if NATS refused or did
    /// not take the subscription within [`WATCH_TIMEOUT`].
    async fn subscribe(&self, session: &str) -> Option<tokio::task::AbortHandle> {
        let subscribe = self
            .client
            .subscribe(session_subject(&self.cluster, session));
        let mut sub = match tokio::time::timeout(WATCH_TIMEOUT, subscribe).await {
            Ok(Ok(sub)) => sub,
            Ok(Err(e)) => {
                tracing::warn!(%session, error = %e, "bus subscribe failed");
                return None;
            }
            Err(_) => {
                tracing::warn!(%session, "bus subscribe timed out; the store fills the gaps");
                return None;
            }
        };
        let own = self.node.clone();
        let in_tx = self.in_tx.clone();
        let task = tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                match decode_event(&own, &m.payload) {
                    Ok(Some(ev)) => {
                        if in_tx.send(ev).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "bad bus message"),
                }
            }
        });
        // Registered with the server before the actor reads the store — unless NATS is slow or
        // away: then the subscription stays queued and the load goes on without it.
        if tokio::time::timeout(WATCH_TIMEOUT, self.round_trip())
            .await
            .is_err()
        {
            tracing::warn!(%session, "bus subscribe unconfirmed; the store fills the gaps");
        }
        Some(task.abort_handle())
    }

    /// Returns once the server has processed everything this client sent before: it handles
    /// one connection's operations in order, so a message published to a fresh inbox coming
    /// back means the subscriptions before it are in place. (`flush` only empties the local
    /// write buffer.)
    async fn round_trip(&self) {
        let inbox = self.client.new_inbox();
        let Ok(mut probe) = self.client.subscribe(inbox.clone()).await else {
            return;
        };
        if self.client.publish(inbox, Default::default()).await.is_ok() {
            probe.next().await;
        }
    }
}

/// A watched session: how many watches, and the subscription, made once by the first watch
/// (the others wait for it). Inside, the task forwarding the subscription's messages (aborting
/// it drops the subscriber, which unsubscribes), or `None` when subscribing failed: the session
/// then relies on the store (joins and reads catch up from it) until it is unloaded.
struct Watch {
    count: usize,
    sub: Arc<tokio::sync::OnceCell<Option<tokio::task::AbortHandle>>>,
}

impl Bus for NatsBus {
    fn node(&self) -> &str {
        &self.node
    }

    fn publish(&self, event: BusEvent) {
        if self.out.try_send(Outgoing::Event(event)).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    fn forward(&self, node: &str, req: Forward) -> oneshot::Receiver<ForwardReply> {
        let (id, rx) = self.awaited.start();
        let node = node.to_owned();
        if self
            .out
            .try_send(Outgoing::Request { node, id, req })
            .is_err()
        {
            self.awaited.forget(id);
        }
        rx
    }

    fn take_forwards(&self) -> Option<mpsc::Receiver<Incoming>> {
        self.forwards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn watch<'a>(&'a self, session: &'a str) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            let sub = {
                let mut watched = self.watched();
                let w = watched.entry(session.to_owned()).or_insert_with(|| Watch {
                    count: 0,
                    sub: Arc::default(),
                });
                w.count += 1;
                w.sub.clone()
            };
            // Sessions subscribe concurrently; watches of one session wait for its first.
            let handle = sub.get_or_init(|| self.subscribe(session)).await;
            // Unwatched meanwhile (not done by the actors, which watch before anything else):
            // nobody would abort the subscription later, so do it now.
            let current = self
                .watched()
                .get(session)
                .is_some_and(|w| Arc::ptr_eq(&w.sub, &sub));
            if !current && let Some(h) = handle {
                h.abort();
            }
        })
    }

    fn unwatch(&self, session: &str) {
        let mut watched = self.watched();
        if let Some(w) = watched.get_mut(session) {
            w.count -= 1;
            if w.count == 0 {
                if let Some(Some(h)) = w.sub.get() {
                    h.abort();
                }
                watched.remove(session);
            }
        }
    }

    fn take_events(&self) -> Option<mpsc::Receiver<BusEvent>> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

/// Hands each answer to the request awaiting it; NATS's "no responders" (the home is gone)
/// and anything unreadable fail the request. Requests unanswered for too long fail too.
async fn receive_answers(mut answers: async_nats::Subscriber, awaited: Arc<Awaited>) {
    let mut sweep = tokio::time::interval(FORWARD_TIMEOUT / 5);
    loop {
        tokio::select! {
            m = answers.next() => {
                let Some(m) = m else { return };
                let Some(id) = m.subject.rsplit('.').next().and_then(|t| t.parse().ok()) else {
                    continue;
                };
                let reply = if m.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                    None
                } else {
                    serde_json::from_slice(&m.payload).ok()
                };
                awaited.answer(id, reply);
            }
            _ = sweep.tick() => awaited.sweep(),
        }
    }
}

/// Queues the edits other nodes forward here and sends each answer back once the session's
/// actor gives it (none when it drops the request, or past [`FORWARD_TIMEOUT`]).
async fn receive_forwards(
    mut asked: async_nats::Subscriber,
    to_sessions: mpsc::Sender<Incoming>,
    out: mpsc::Sender<Outgoing>,
) {
    while let Some(m) = asked.next().await {
        let Some(subject) = m.reply else { continue };
        let req: Forward = match serde_json::from_slice(&m.payload) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "bad forwarded edit");
                continue;
            }
        };
        let (tx, rx) = oneshot::channel();
        if to_sessions.try_send((req, tx)).is_err() {
            // Overloaded: the forwarding node times out and tries again.
            continue;
        }
        let out = out.clone();
        tokio::spawn(async move {
            if let Ok(Ok(reply)) = tokio::time::timeout(FORWARD_TIMEOUT, rx).await {
                let _ = out.try_send(Outgoing::Reply { subject, reply });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_hub_delivers_to_other_nodes_only() {
        let hub = LocalHub::new();
        let a = hub.node("a");
        let b = hub.node("b");
        let mut ra = a.take_events().unwrap();
        let mut rb = b.take_events().unwrap();
        assert!(a.take_events().is_none());
        let ev = BusEvent::Relay {
            session: "s".into(),
            presence: true,
            frame: "{}".into(),
        };
        a.publish(ev.clone());
        assert_eq!(rb.recv().await.unwrap(), ev);
        b.publish(ev.clone());
        assert_eq!(ra.recv().await.unwrap(), ev);
        assert!(ra.try_recv().is_err());
    }

    /// A NATS server that completes the handshake and then never answers again (a stalled
    /// or partitioned NATS): watching a session must still return, so sessions still load.
    #[tokio::test]
    async fn a_silent_nats_does_not_hold_up_watch() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let (r, mut w) = sock.into_split();
            w.write_all(b"INFO {\"server_id\":\"x\",\"version\":\"2.10.0\",\"max_payload\":1048576,\"proto\":1}\r\n")
                .await
                .unwrap();
            let mut lines = BufReader::new(r).lines();
            // Answer the handshake's PING, then nothing more (but keep reading).
            let mut answered = false;
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("PING") && !answered {
                    answered = true;
                    w.write_all(b"PONG\r\n").await.unwrap();
                }
            }
        });
        let bus = NatsBus::connect(&format!("nats://{addr}"), "c")
            .await
            .unwrap();
        tokio::time::timeout(WATCH_TIMEOUT * 5, bus.watch("s"))
            .await
            .expect("watch waited for a NATS that never answers");
        bus.unwatch("s");
        assert!(bus.watched().is_empty());
    }

    #[test]
    fn envelopes_round_trip_and_refuse_other_formats() {
        let ev = BusEvent::Committed {
            session: "s".into(),
            version: 3,
            user: "u".into(),
            client: "c".into(),
            seq: 9,
            ops: "[]".into(),
            time: Some(5),
        };
        let bytes = encode_event("n1", &ev);
        assert_eq!(decode_event("n2", &bytes).unwrap(), Some(ev));
        assert_eq!(decode_event("n1", &bytes).unwrap(), None);
        let future = br#"{"v":2,"node":"x","event":{"kind":"relay","session":"s","presence":true,"frame":"{}"}}"#;
        assert!(decode_event("n2", future).is_err());
        assert!(decode_event("n2", b"garbage").is_err());
    }
}
