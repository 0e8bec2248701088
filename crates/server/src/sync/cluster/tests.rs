//! Two nodes in one process over the in-process bus and one in-memory store.

use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::super::{ConnHandle, JoinAs, Outbound, run_committer_with_bus};
use super::*;
use crate::bus::LocalHub;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::MemoryStore;

/// One node: its own committer and sessions over the shared store.
struct Node {
    sessions: Arc<Sessions>,
    metrics: Arc<Metrics>,
}

/// `user`'s entry in a `joined` message.
fn participant(joined: &Json, user: &str) -> Json {
    joined["participants"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["user"] == user))
        .cloned()
        .unwrap_or_else(|| panic!("no {user} in {joined}"))
}

fn node(store: Arc<MemoryStore>, bus: Arc<dyn Bus>) -> Node {
    node_with(store, bus, open_config())
}

fn node_with(store: Arc<MemoryStore>, bus: Arc<dyn Bus>, config: Config) -> Node {
    let metrics = Arc::new(Metrics::default());
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(run_committer_with_bus(
        store.clone(),
        rx,
        metrics.clone(),
        64,
        Some(bus.clone()),
    ));
    let config = Arc::new(config);
    let sessions = Sessions::with_bus(store, tx, config, metrics.clone(), Some(bus.clone()));
    spawn_bus_dispatcher(sessions.clone(), &*bus);
    Node { sessions, metrics }
}

struct Peer {
    conn: ConnHandle,
    rx: mpsc::Receiver<Outbound>,
}

impl Peer {
    fn new(n: &Node, id: u64, user: &str) -> Peer {
        let (tx, rx) = mpsc::channel(256);
        let conn = ConnHandle::new(
            id,
            Arc::from(user),
            tx,
            CancellationToken::new(),
            n.metrics.clone(),
        );
        Peer { conn, rx }
    }
    async fn recv(&mut self) -> Json {
        match tokio::time::timeout(Duration::from_secs(5), self.rx.recv()).await {
            Ok(Some(Outbound::Frame(f))) => serde_json::from_str(f.as_str()).unwrap(),
            other => panic!("no frame: {other:?}"),
        }
    }
    /// The next frame of `kind`, skipping roster events.
    async fn recv_type(&mut self, kind: &str) -> Json {
        loop {
            let m = self.recv().await;
            if m["type"] == kind {
                return m;
            }
            assert!(
                m["type"].as_str().unwrap_or("").starts_with("participant_"),
                "expected {kind}, got {m}"
            );
        }
    }
    async fn join(&mut self, n: &Node, session: &str) -> Json {
        let m = SessionMsg::Join {
            conn: self.conn.clone(),
            client: format!("c{}", self.conn.id),
            how: JoinAs::default(),
            rid: None,
        };
        n.sessions.send(session, m, true).await.unwrap();
        self.recv_type("joined").await
    }
    async fn op(&self, n: &Node, session: &str, base: u64, seq: u64, ops: Json) {
        let m = SessionMsg::Op {
            conn: self.conn.clone(),
            base,
            seq,
            ops: serde_json::from_value(ops).unwrap(),
            rid: None,
            received: Instant::now(),
            sealed: None,
        };
        n.sessions.send(session, m, false).await.unwrap();
    }
}

impl Peer {
    /// The next frame of `kind`, skipping everything else.
    async fn until(&mut self, kind: &str) -> Json {
        loop {
            let m = self.recv().await;
            if m["type"] == kind {
                return m;
            }
        }
    }
    async fn presence(&self, n: &Node, session: &str, data: Json) {
        let m = SessionMsg::Presence {
            conn: self.conn.clone(),
            data,
            rid: None,
        };
        n.sessions.send(session, m, false).await.unwrap();
    }
}

fn ins(s: &str) -> Json {
    json!([{"op":"text","path":["title"],"pos":0,"ins":s}])
}

#[tokio::test]
async fn a_version_taken_by_another_node_is_caught_up_and_retried() {
    let store = Arc::new(MemoryStore::new());
    // Two hubs: the nodes never hear each other, as if every bus message were lost.
    let a = node(store.clone(), LocalHub::new().node("a"));
    let b = node(store.clone(), LocalHub::new().node("b"));
    let mut pa = Peer::new(&a, 1, "alice");
    pa.join(&a, "s").await;
    let mut pb = Peer::new(&b, 2, "alice");
    pb.join(&b, "s").await;
    pa.op(&a, "s", 0, 1, ins("A")).await;
    assert_eq!(pa.recv_type("ack").await["version"], 1);
    // Node b still thinks the head is 0: its append of version 1 conflicts.
    pb.op(&b, "s", 0, 1, ins("B")).await;
    let first = pb.recv_type("op").await;
    assert_eq!(
        (first["version"].as_u64(), first["user"].as_str()),
        (Some(1), Some("alice"))
    );
    assert_eq!(pb.recv_type("ack").await["version"], 2);
    assert_eq!(b.metrics.conflict_retries_total.get(), 1);
    assert_eq!(store.op_count("s"), 2);
    // Reads catch up from the store: both nodes serve version 2, the same state.
    let sa = a
        .sessions
        .state("s", &crate::access::Principal::new("alice", None))
        .await
        .unwrap();
    let sb = b
        .sessions
        .state("s", &crate::access::Principal::new("alice", None))
        .await
        .unwrap();
    assert_eq!(sa, sb);
    assert_eq!(sa.0, 2);
    assert!(sa.1.contains(r#""title":"AB""#), "{}", sa.1);
    // A resend of b's edit to node a is recognised through the store.
    let mut pa2 = Peer::new(&a, 3, "alice");
    let m = SessionMsg::Join {
        conn: pa2.conn.clone(),
        client: "c2".into(),
        how: JoinAs::default(),
        rid: None,
    };
    a.sessions.send("s", m, true).await.unwrap();
    pa2.recv_type("joined").await;
    pa2.op(&a, "s", 0, 1, ins("B")).await;
    assert_eq!(pa2.recv_type("ack").await["version"], 2);
    assert_eq!(store.op_count("s"), 2, "not applied twice");
}

#[tokio::test]
async fn commits_roles_and_presence_fan_out_over_the_bus() {
    let store = Arc::new(MemoryStore::new());
    let hub = LocalHub::new();
    let a = node(store.clone(), hub.node("a"));
    let b = node(store.clone(), hub.node("b"));
    let mut owner = Peer::new(&a, 1, "alice");
    owner.join(&a, "s").await;
    let mut bob = Peer::new(&b, 2, "bob");
    assert_eq!(bob.join(&b, "s").await["role"], "viewer");
    // Bob's arrival on node b reaches node a's clients.
    assert_eq!(owner.recv().await["type"], "participant_joined");
    let m = SessionMsg::SetRole {
        conn: owner.conn.clone(),
        user: "bob".into(),
        role: Role::Editor,
        rid: None,
    };
    a.sessions.send("s", m, false).await.unwrap();
    owner.recv_type("role_changed").await;
    assert_eq!(bob.recv_type("role_changed").await["role"], "editor");
    // Node b applies the new role: bob's edit is accepted there.
    bob.op(&b, "s", 0, 1, ins("b")).await;
    assert_eq!(bob.recv_type("ack").await["version"], 1);
    let op = owner.recv_type("op").await;
    assert_eq!(
        (op["version"].as_u64(), op["user"].as_str()),
        (Some(1), Some("bob"))
    );
    owner.op(&a, "s", 1, 1, ins("a")).await;
    assert_eq!(owner.recv_type("ack").await["version"], 2);
    assert_eq!(bob.recv_type("op").await["version"], 2);
    let p = SessionMsg::Presence {
        conn: owner.conn.clone(),
        data: json!({"cursor":{"x":1,"y":2}}),
        rid: None,
    };
    a.sessions.send("s", p, false).await.unwrap();
    let got = bob.recv_type("presence").await;
    assert_eq!(got["user"], "alice");
    assert_eq!(
        a.sessions
            .state("s", &crate::access::Principal::new("bob", None))
            .await
            .unwrap(),
        b.sessions
            .state("s", &crate::access::Principal::new("bob", None))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_retried_edit_moves_carets_once() {
    let store = Arc::new(MemoryStore::new());
    // Two hubs: node b never hears node a, so its append of version 2 conflicts.
    let a = node(store.clone(), LocalHub::new().node("a"));
    let b = node(store.clone(), LocalHub::new().node("b"));
    let mut pa = Peer::new(&a, 1, "alice");
    pa.join(&a, "s").await;
    pa.op(&a, "s", 0, 1, ins("hello")).await;
    assert_eq!(pa.until("ack").await["version"], 1);
    let mut pb = Peer::new(&b, 2, "alice");
    pb.join(&b, "s").await;
    let mut bob = Peer::new(&b, 3, "bob");
    bob.join(&b, "s").await;
    // Bob's caret is at the end of "hello"; alice (on b) sees it, so it is stored.
    bob.presence(&b, "s", json!({"caret":{"path":["title"],"index":5}}))
        .await;
    assert_eq!(pb.until("presence").await["data"]["caret"]["index"], 5);
    // Alice types "XY" at the start through node a...
    pa.op(&a, "s", 1, 2, ins("XY")).await;
    assert_eq!(pa.until("ack").await["version"], 2);
    // ...and "Q" through node b, which applies it as version 2 (moving bob's caret), loses
    // that version to node a, rolls back, catches up and applies it again as version 3.
    pb.op(&b, "s", 1, 2, ins("Q")).await;
    assert_eq!(pb.until("ack").await["version"], 3);
    assert_eq!(b.metrics.conflict_retries_total.get(), 1);
    // Each committed insert moved the caret once: 5 + 2 + 1.
    let mut carol = Peer::new(&b, 4, "carol");
    let joined = carol.join(&b, "s").await;
    assert!(
        joined["state"]["title"]
            .as_str()
            .unwrap()
            .ends_with("hello")
    );
    let bob_now = participant(&joined, "bob");
    assert_eq!(bob_now["presence"]["caret"]["index"], 8, "{bob_now}");
}

/// Node a appends "XY" to "hello" (version 2) while node b, which has not heard of it,
/// gets alice's "Q" at the start and, right after, a caret from alice: from the same
/// connection (it has seen the "Q") or from another tab of hers (it has not). Node b loses
/// version 2 and runs the "Q" again; returns alice's caret index as a joiner then sees it.
async fn caret_after_retry(from_other_tab: bool, caret: u64) -> Json {
    let store = Arc::new(MemoryStore::new());
    let a = node(store.clone(), LocalHub::new().node("a"));
    let b = node(store.clone(), LocalHub::new().node("b"));
    let mut pa = Peer::new(&a, 1, "alice");
    pa.join(&a, "s").await;
    pa.op(&a, "s", 0, 1, ins("hello")).await;
    assert_eq!(pa.until("ack").await["version"], 1);
    let mut tab1 = Peer::new(&b, 2, "alice");
    tab1.join(&b, "s").await;
    let mut tab2 = Peer::new(&b, 4, "alice");
    tab2.join(&b, "s").await;
    let end = json!([{"op":"text","path":["title"],"pos":5,"ins":"XY"}]);
    pa.op(&a, "s", 1, 2, end).await;
    assert_eq!(pa.until("ack").await["version"], 2);
    tab1.op(&b, "s", 1, 2, ins("Q")).await;
    let sender = if from_other_tab { &mut tab2 } else { &mut tab1 };
    sender
        .presence(&b, "s", json!({"caret":{"path":["title"],"index":caret}}))
        .await;
    assert_eq!(tab1.until("ack").await["version"], 3);
    assert_eq!(b.metrics.conflict_retries_total.get(), 1);
    let mut carol = Peer::new(&b, 3, "carol");
    let joined = carol.join(&b, "s").await;
    assert_eq!(joined["state"]["title"], "QhelloXY");
    let alice = participant(&joined, "alice");
    alice["presence"]["caret"]["index"].clone()
}

/// The caret already shows the edit (same connection, after the "Q"): the retry leaves it.
#[tokio::test]
async fn a_retry_leaves_alone_the_authors_newer_caret() {
    assert_eq!(caret_after_retry(false, 1).await, 1);
}

/// The caret comes from the author's other tab, which has not seen the edit: the retry
/// moves it past the "Q".
#[tokio::test]
async fn a_retry_moves_the_caret_of_the_authors_other_tab() {
    assert_eq!(caret_after_retry(true, 3).await, 4);
}

/// A node that dies without closing its sockets stops repeating its roster: its users go
/// offline on the other nodes after three refresh periods.
#[tokio::test]
async fn a_silent_nodes_users_go_offline() {
    let store = Arc::new(MemoryStore::new());
    let hub = LocalHub::new();
    let mut config = open_config();
    config.roster_refresh = Duration::from_millis(50);
    let a = node_with(store.clone(), hub.node("a"), config);
    let ghost = hub.node("ghost");
    let mut alice = Peer::new(&a, 1, "alice");
    alice.join(&a, "s").await;
    // The ghost node says once that bob is online there, then never again.
    ghost.publish(BusEvent::Roster {
        session: "s".into(),
        node: "ghost".into(),
        participants: vec![WireParticipant {
            user: "bob".into(),
            role: Role::Viewer,
            online: true,
            name: None,
            color: None,
            presence: None,
        }],
        query: false,
    });
    assert_eq!(alice.until("participant_joined").await["user"], "bob");
    assert_eq!(alice.until("participant_left").await["user"], "bob");
    let mut carol = Peer::new(&a, 2, "carol");
    let joined = carol.join(&a, "s").await;
    let online: Vec<&Json> = joined["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["online"] == true)
        .map(|p| &p["user"])
        .collect();
    assert_eq!(online, [&json!("alice"), &json!("carol")], "{joined}");
}

/// A node with home leases on the shared store (DESIGN §9.7).
fn home_node(store: Arc<MemoryStore>, bus: Arc<dyn Bus>, idle_unload: Duration) -> Node {
    let mut config = open_config();
    config.default_link_role = Role::Editor;
    config.home_lease = Some(Duration::from_millis(400));
    config.idle_unload = idle_unload;
    let n = node_with(store, bus.clone(), config);
    super::spawn_forward_dispatcher(n.sessions.clone(), &*bus);
    super::spawn_renewals(n.sessions.clone());
    n
}

/// Nodes a and b on one store and bus with home leases; node a unloads idle sessions after
/// `a_idle_unload`.
fn two_home_nodes(a_idle_unload: Duration) -> (Arc<MemoryStore>, Node, Node) {
    let store = Arc::new(MemoryStore::new());
    let hub = LocalHub::new();
    let a = home_node(store.clone(), hub.node("a"), a_idle_unload);
    let b = home_node(store.clone(), hub.node("b"), Duration::from_secs(30));
    (store, a, b)
}

/// Frames until `acks` acks came; panics on an `op` of `user`'s own (it gets the ack instead).
async fn acks_of(p: &mut Peer, user: &str, acks: usize) -> Vec<u64> {
    let mut got = Vec::new();
    while got.len() < acks {
        let m = p.recv().await;
        match m["type"].as_str() {
            Some("ack") => got.push(m["version"].as_u64().unwrap()),
            Some("op") => assert_ne!(m["user"], user, "its own edit came back as an op: {m}"),
            _ => {}
        }
    }
    got
}

#[tokio::test]
async fn the_home_node_sequences_the_edits_of_every_node() {
    let (store, a, b) = two_home_nodes(Duration::from_secs(30));
    // Node a loads the session first: it is the home.
    let mut alice = Peer::new(&a, 1, "alice");
    alice.join(&a, "s").await;
    let mut bob = Peer::new(&b, 2, "bob");
    bob.join(&b, "s").await;
    // Both write at once from a stale base; node b forwards bob's edits to node a.
    for seq in 1..=3 {
        bob.op(&b, "s", 0, seq, ins("b")).await;
    }
    for seq in 1..=2 {
        alice.op(&a, "s", 0, seq, ins("a")).await;
    }
    let bobs = acks_of(&mut bob, "bob", 3).await;
    let alices = acks_of(&mut alice, "alice", 2).await;
    let mut all: Vec<u64> = bobs.iter().chain(&alices).copied().collect();
    all.sort_unstable();
    assert_eq!(all, [1, 2, 3, 4, 5], "bob {bobs:?}, alice {alices:?}");
    assert!(bobs.windows(2).all(|w| w[0] < w[1]), "in order: {bobs:?}");
    assert_eq!(store.op_count("s"), 5);
    assert_eq!(b.metrics.forwarded_edits_total.get(), 3);
    assert_eq!(a.metrics.forwarded_edits_total.get(), 0);
    assert_eq!(
        a.metrics.conflict_retries_total.get() + b.metrics.conflict_retries_total.get(),
        0,
        "nobody sequenced against the home"
    );
    let who = crate::access::Principal::new("alice", None);
    let (sa, sb) = (
        a.sessions.state("s", &who).await.unwrap(),
        b.sessions.state("s", &who).await.unwrap(),
    );
    assert_eq!(sa, sb);
    assert_eq!(sa.0, 5);
    // A resend of an applied edit is acked with its version again, not applied twice.
    bob.op(&b, "s", 0, 2, ins("b")).await;
    assert_eq!(acks_of(&mut bob, "bob", 1).await, [bobs[1]]);
    assert_eq!(store.op_count("s"), 5);
    // The home's refusal reaches the client on the forwarding node.
    let bad = json!([{"op":"text","path":["title"],"pos":999,"ins":"x"}]);
    bob.op(&b, "s", 5, 4, bad).await;
    let e = bob.until("error").await;
    assert_eq!(e["code"], "bad_request", "{e}");
    assert_eq!(store.op_count("s"), 5);
}

/// The home unloads the session (its last client left) and gives the lease up: the next edit
/// forwarded there hears `not_home`, and the forwarding node takes the lease and sequences it.
#[tokio::test]
async fn the_lease_moves_to_a_node_whose_home_let_the_session_go() {
    let (store, a, b) = two_home_nodes(Duration::from_millis(50));
    let mut alice = Peer::new(&a, 1, "alice");
    alice.join(&a, "s").await;
    alice.op(&a, "s", 0, 1, ins("a")).await;
    assert_eq!(alice.until("ack").await["version"], 1);
    let mut bob = Peer::new(&b, 2, "bob");
    bob.join(&b, "s").await;
    bob.op(&b, "s", 1, 1, ins("b")).await;
    assert_eq!(acks_of(&mut bob, "bob", 1).await, [2]);
    a.sessions
        .send("s", SessionMsg::Leave { conn: 1 }, false)
        .await
        .unwrap();
    // Node a unloads the session and releases its lease.
    for _ in 0..100 {
        if a.sessions.get("s", false).is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        a.sessions.get("s", false).is_none(),
        "node a kept the session"
    );
    bob.op(&b, "s", 2, 2, ins("c")).await;
    assert_eq!(acks_of(&mut bob, "bob", 1).await, [3]);
    assert_eq!(store.op_count("s"), 3);
    // Node a, loading it again, forwards to node b now.
    let mut alice = Peer::new(&a, 3, "alice");
    alice.join(&a, "s").await;
    alice.op(&a, "s", 3, 2, ins("d")).await;
    assert_eq!(acks_of(&mut alice, "alice", 1).await, [4]);
    assert_eq!(a.metrics.forwarded_edits_total.get(), 1);
    assert_eq!(
        a.metrics.conflict_retries_total.get() + b.metrics.conflict_retries_total.get(),
        0
    );
}

/// A restore asked on a node that is not the home is sequenced by the home, and its caller hears
/// the version once this node has it.
#[tokio::test]
async fn a_restore_on_another_node_is_sequenced_by_the_home() {
    let (store, a, b) = two_home_nodes(Duration::from_secs(30));
    let mut alice = Peer::new(&a, 1, "alice");
    alice.join(&a, "s").await;
    alice.op(&a, "s", 0, 1, ins("one")).await;
    assert_eq!(alice.until("ack").await["version"], 1);
    let who = crate::access::Principal::new("alice", None);
    let (_, at_1) = a.sessions.state("s", &who).await.unwrap();
    alice.op(&a, "s", 1, 2, ins("two")).await;
    assert_eq!(alice.until("ack").await["version"], 2);
    let bob = Peer::new(&b, 2, "bob");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let m = SessionMsg::Restore {
        conn: bob.conn.clone(),
        version: 1,
        target: serde_json::from_str(&at_1).unwrap(),
        element: None,
        reply: tx,
    };
    b.sessions.send("s", m, true).await.unwrap();
    let (version, _) = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(version, 3);
    assert_eq!(
        b.metrics.forwarded_edits_total.get(),
        0,
        "waited for, not queued"
    );
    assert_eq!(store.op_count("s"), 3);
    // Both nodes hold the document of version 1 again, as version 3.
    assert_eq!(
        a.sessions.state("s", &who).await.unwrap(),
        (3, at_1.clone())
    );
    assert_eq!(b.sessions.state("s", &who).await.unwrap(), (3, at_1));
}

/// Edits waiting for a home that never answers are bounded per connection: past 256 the client
/// hears `rate_limited` and nothing more is sent; none is applied meanwhile.
#[tokio::test]
async fn edits_waiting_for_a_silent_home_are_bounded_per_connection() {
    let store = Arc::new(MemoryStore::new());
    let hub = LocalHub::new();
    // The "ghost" node holds the lease and takes forwarded edits, but never answers them.
    let ghost = hub.node("ghost");
    let mut asked = ghost.take_forwards().unwrap();
    let new = crate::store::NewSession::new("alice", Role::Editor);
    store.create_session("s", new).await.unwrap();
    let leases = store.leases().unwrap();
    leases
        .acquire("s", "ghost", Duration::from_secs(60))
        .await
        .unwrap();
    let b = home_node(store.clone(), hub.node("b"), Duration::from_secs(30));
    let mut bob = Peer::new(&b, 2, "bob");
    bob.join(&b, "s").await;
    for seq in 1..=257 {
        bob.op(&b, "s", 0, seq, ins("x")).await;
    }
    let e = bob.until("error").await;
    assert_eq!(e["code"], "rate_limited", "{e}");
    // Held, not dropped: a dropped answer would count as the ghost being unreachable.
    let mut held = Vec::new();
    while let Ok(Some(incoming)) =
        tokio::time::timeout(Duration::from_millis(100), asked.recv()).await
    {
        held.push(incoming);
    }
    let seqs: std::collections::BTreeSet<u64> = held.iter().map(|(f, _)| f.seq).collect();
    assert_eq!(seqs, (1..=256).collect(), "what reached the home");
    assert_eq!(store.op_count("s"), 0);
}

/// Link access open: these tests are about the cluster, not access.
fn open_config() -> Config {
    let mut c = Config::new("/nonexistent", b"k".to_vec());
    c.default_link_role = montage_protocol::Role::Viewer;
    c
}
