//! The session actor end to end over the in-memory store.

use std::sync::atomic::Ordering;

use montage_ot::Op;
use serde_json::json;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::access::Principal;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{MemoryStore, Store};

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
    // Link access open: these tests are about sync, not access (the `access` suite is).
    let mut c = Config::new("/nonexistent", b"k".to_vec());
    c.default_link_role = montage_protocol::Role::Viewer;
    c
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
            how: JoinAs::default(),
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
            sealed: None,
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
    let (v, state) = rig
        .sessions
        .state("s", &Principal::new("alice", None))
        .await
        .unwrap();
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
    assert_eq!(rig.metrics.dropped_slow_total.get(), 1);
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
    let (_, state) = rig
        .sessions
        .state("s", &Principal::new("alice", None))
        .await
        .unwrap();
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
        how: JoinAs::default(),
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

/// Records what it hears.
#[derive(Default)]
struct Heard(std::sync::Mutex<Vec<(String, String, u64)>>);

impl EditObserver for Heard {
    fn edit_committed(&self, session: &str, user: &str, version: u64) {
        self.0
            .lock()
            .unwrap()
            .push((session.into(), user.into(), version));
    }
}

#[tokio::test]
async fn observers_hear_each_durable_edit_once_and_no_resend() {
    let rig = rig(config());
    let heard = Arc::new(Heard::default());
    rig.sessions.observe_edits(heard.clone());
    let mut a = peer(&rig, 1, "alice", 64);
    a.join(&rig, "s").await;
    a.op(&rig, "s", 0, 1, title("one")).await;
    assert_eq!(a.recv().await["type"], "ack");
    a.op(&rig, "s", 1, 2, title("two")).await;
    assert_eq!(a.recv().await["type"], "ack");
    // A resend is acked again but is no new edit.
    a.op(&rig, "s", 1, 2, title("two")).await;
    assert_eq!(a.recv().await["version"], 2);
    let heard = heard.0.lock().unwrap().clone();
    assert_eq!(
        heard,
        vec![
            ("s".to_owned(), "alice".to_owned(), 1),
            ("s".to_owned(), "alice".to_owned(), 2)
        ]
    );
}

/// Heavy work leaves the async worker threads free: on a runtime of one worker, a task on that
/// worker runs, and lets the work finish, while the work waits for it. Had the work run on the
/// worker, the task could not run until the work gave up waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn heavy_work_runs_off_the_async_worker_threads() {
    let permits = Arc::new(tokio::sync::Semaphore::new(1));
    let (started, has_started) = tokio::sync::oneshot::channel::<()>();
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let work = tokio::spawn(async move {
        super::actor::off_runtime(&permits, (started, wait), |(started, wait)| {
            let _ = std::mem::replace(started, tokio::sync::oneshot::channel().0).send(());
            // Bounds only a failure: the test passes as soon as the other task runs.
            wait.recv_timeout(Duration::from_secs(10)).is_ok()
        })
        .await
    });
    // Waits (without blocking) for the work to start, then lets it finish.
    let other = tokio::spawn(async move { has_started.await.is_ok() && go.send(()).is_ok() });
    assert!(other.await.unwrap());
    let (_, released) = work.await.unwrap().unwrap();
    assert!(released, "the work held the only worker thread");
}
