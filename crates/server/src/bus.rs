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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::error::{Error, Result};
use crate::store::StoredOp;

/// The envelope format this build writes and reads; other versions are dropped with a warning.
pub const BUS_FORMAT: u32 = 1;
/// The NATS subject every node publishes to and subscribes on.
pub const NATS_SUBJECT: &str = "montage.v1.events";
/// Events queued for publishing before new ones are dropped.
pub const PUBLISH_QUEUE: usize = 8_192;
/// Received events queued for dispatch to the session actors.
pub const RECEIVE_QUEUE: usize = 8_192;

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
    },
    /// A role changed (already stored); other nodes update their permission checks.
    Role {
        session: String,
        user: String,
        role: String,
        /// The `role_changed` frame for their clients.
        frame: String,
    },
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
}

impl BusEvent {
    pub fn session(&self) -> &str {
        match self {
            BusEvent::Committed { session, .. }
            | BusEvent::Role { session, .. }
            | BusEvent::Relay { session, .. }
            | BusEvent::Social { session, .. }
            | BusEvent::Roster { session, .. } => session,
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

/// A node's connection to the fan-out.
pub trait Bus: Send + Sync + 'static {
    /// This node's id (unique per process).
    fn node(&self) -> &str;
    /// Queues an event for every other node; never waits.
    fn publish(&self, event: BusEvent);
    /// Events from other nodes, in the order this node received them. Called once.
    fn take_events(&self) -> Option<mpsc::Receiver<BusEvent>>;
    /// Events dropped because the publish queue was full.
    fn dropped(&self) -> u64;
}

/// A random node id: nodes need not be configured with names.
pub fn random_node_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        b = (nanos ^ u64::from(std::process::id()) << 32).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The in-process bus: a broadcast channel shared by the nodes of one process.
#[derive(Clone)]
pub struct LocalHub {
    tx: broadcast::Sender<Arc<Vec<u8>>>,
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
        Arc::new(LocalBus {
            node: id.to_owned(),
            hub: self.tx.clone(),
            rx: std::sync::Mutex::new(Some(rx)),
        })
    }
}

pub struct LocalBus {
    node: String,
    hub: broadcast::Sender<Arc<Vec<u8>>>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<BusEvent>>>,
}

impl Bus for LocalBus {
    fn node(&self) -> &str {
        &self.node
    }

    fn publish(&self, event: BusEvent) {
        // No receivers (a single node): nothing to do.
        let _ = self.hub.send(Arc::new(encode_event(&self.node, &event)));
    }

    fn take_events(&self) -> Option<mpsc::Receiver<BusEvent>> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn dropped(&self) -> u64 {
        0
    }
}

/// The NATS bus (core NATS, one subject). Reconnects are async-nats's; while disconnected,
/// published events are dropped once its buffer fills and receivers fill gaps from the store.
pub struct NatsBus {
    node: String,
    out: mpsc::Sender<BusEvent>,
    rx: std::sync::Mutex<Option<mpsc::Receiver<BusEvent>>>,
    dropped: Arc<AtomicU64>,
}

impl NatsBus {
    pub async fn connect(url: &str) -> Result<NatsBus> {
        let node = random_node_id();
        let client = async_nats::ConnectOptions::new()
            .name(format!("montage-{node}"))
            .connect(url)
            .await
            .map_err(|e| Error::Bus(format!("connecting to {url}: {e}")))?;
        let mut sub = client
            .subscribe(NATS_SUBJECT)
            .await
            .map_err(|e| Error::Bus(format!("subscribing: {e}")))?;
        // The subscription is registered with the server before this node serves anything.
        client
            .flush()
            .await
            .map_err(|e| Error::Bus(format!("flushing: {e}")))?;
        let (in_tx, in_rx) = mpsc::channel(RECEIVE_QUEUE);
        let own = node.clone();
        tokio::spawn(async move {
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
        let (out, mut out_rx) = mpsc::channel::<BusEvent>(PUBLISH_QUEUE);
        let pub_node = node.clone();
        tokio::spawn(async move {
            while let Some(ev) = out_rx.recv().await {
                let bytes = encode_event(&pub_node, &ev);
                if let Err(e) = client.publish(NATS_SUBJECT, bytes.into()).await {
                    tracing::warn!(error = %e, "bus publish failed");
                }
            }
            let _ = client.flush().await;
        });
        Ok(NatsBus {
            node,
            out,
            rx: std::sync::Mutex::new(Some(in_rx)),
            dropped: Arc::default(),
        })
    }
}

impl Bus for NatsBus {
    fn node(&self) -> &str {
        &self.node
    }

    fn publish(&self, event: BusEvent) {
        if self.out.try_send(event).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    fn take_events(&self) -> Option<mpsc::Receiver<BusEvent>> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
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

    #[test]
    fn envelopes_round_trip_and_refuse_other_formats() {
        let ev = BusEvent::Committed {
            session: "s".into(),
            version: 3,
            user: "u".into(),
            client: "c".into(),
            seq: 9,
            ops: "[]".into(),
        };
        let bytes = encode_event("n1", &ev);
        assert_eq!(decode_event("n2", &bytes).unwrap(), Some(ev));
        assert_eq!(decode_event("n1", &bytes).unwrap(), None);
        let future = br#"{"v":2,"node":"x","event":{"kind":"relay","session":"s","presence":true,"frame":"{}"}}"#;
        assert!(decode_event("n2", future).is_err());
        assert!(decode_event("n2", b"garbage").is_err());
    }
}
