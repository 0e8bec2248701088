//! Scale-out: several `montage serve` processes on one PostgreSQL and one NATS (DESIGN §5).
//!
//! They need `MONTAGE_TEST_DATABASE_URL` and `MONTAGE_TEST_NATS_URL` (`.ci/run` sets both);
//! without them each test says loudly on stderr that it did not run and returns.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use montage_client::{Client as Sdk, Event, Options};
use serde_json::{Value as Json, json};
use tokio::sync::watch;

use crate::harness::*;

const FAST: [&str; 4] = ["--edits-per-sec", "100000", "--messages-per-sec", "100000"];

/// The database and NATS of a scale test, or `None` (said loudly) when they are not configured.
fn services(test: &str) -> Result<Option<(TestDb, String)>> {
    let (Some(admin), Some(nats)) = (test_database_url(test), test_nats_url(test)) else {
        return Ok(None);
    };
    Ok(Some((TestDb::create(&admin, None)?, nats)))
}

fn start_node(dir: &Path, db: &TestDb, nats: &str, extra: &[&str]) -> Result<Server> {
    let mut args = vec!["--database-url", db.url.as_str(), "--nats-url", nats];
    args.extend_from_slice(&FAST);
    args.extend_from_slice(extra);
    Server::start(dir, &args)
}

/// `n` nodes, each with a data dir of its own (assets and nothing else: the store is shared).
fn start_cluster(
    n: usize,
    db: &TestDb,
    nats: &str,
) -> Result<(Vec<tempfile::TempDir>, Vec<Server>)> {
    start_cluster_with(n, db, nats, &[])
}

fn start_cluster_with(
    n: usize,
    db: &TestDb,
    nats: &str,
    extra: &[&str],
) -> Result<(Vec<tempfile::TempDir>, Vec<Server>)> {
    let mut dirs = Vec::new();
    let mut nodes = Vec::new();
    for _ in 0..n {
        let d = tempfile::tempdir()?;
        nodes.push(start_node(d.path(), db, nats, extra)?);
        dirs.push(d);
    }
    Ok((dirs, nodes))
}

/// Creates `session` on `node` as `owner` and makes `editors` editors.
async fn create_session(
    node: &Server,
    session: &str,
    owner: &str,
    editors: &[String],
) -> Result<Client> {
    let mut c = node.connect(owner).await?;
    c.join(session, "owner").await?;
    for u in editors {
        c.send(json!({"type":"set_role","session":session,"user":u,"role":"editor"}))
            .await?;
        c.recv_type("role_changed").await?;
    }
    Ok(c)
}

async fn state(node: &Server, session: &str, user: &str) -> Result<Json> {
    node.get_json(&format!("/v1/sessions/{session}"), user)
        .await
}

/// The next frame of type `t`, skipping everything else (edits of others included).
async fn until(c: &mut Client, t: &str) -> Result<Json> {
    loop {
        let m = c.recv().await?;
        if m["type"] == t {
            return Ok(m);
        }
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn two_nodes_sequence_one_session_and_fan_out_edits_roles_and_presence() -> Result<()> {
    let Some((db, nats)) = services("scale::two_nodes_sequence_one_session")? else {
        return Ok(());
    };
    let (_dirs, nodes) = start_cluster(2, &db, &nats)?;
    let writers: Vec<String> = (0..4).map(|i| format!("w{i}")).collect();
    let mut owner = create_session(&nodes[0], "doc", "owner", &writers).await?;
    const EACH: u64 = 40;
    let total = EACH * writers.len() as u64;
    let mut tasks = Vec::new();
    for (i, w) in writers.iter().enumerate() {
        // Writers alternate between the nodes: both nodes append to the same session at once.
        let mut c = nodes[i % 2].connect(w).await?;
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            // Versions up to this one come in the joined state, later ones as acks or ops.
            let from = c.join("doc", &format!("c{i}")).await?["version"]
                .as_u64()
                .context("joined version")?;
            let mut seen: BTreeMap<u64, String> = BTreeMap::new();
            let mut in_flight = 0;
            let mut seq = 0;
            let mut acked = 0;
            while acked < EACH {
                while in_flight < 8 && seq < EACH {
                    seq += 1;
                    // Stale base 0 and overlapping text: every edit is transformed.
                    let ops = if seq % 2 == 0 {
                        json!([{"op":"text","path":["title"],"pos":0,"ins":"x"}])
                    } else {
                        json!([{"op":"set","path":["meta",format!("{w}-{seq}")],"value":seq}])
                    };
                    c.op("doc", 0, seq, ops).await?;
                    in_flight += 1;
                }
                let m = c
                    .recv()
                    .await
                    .with_context(|| format!("{w}: {acked} acked, {} versions seen", seen.len()))?;
                match m["type"].as_str() {
                    Some("ack") => {
                        in_flight -= 1;
                        acked += 1;
                        let v = m["version"].as_u64().context("ack version")?;
                        ensure!(seen.insert(v, w.clone()).is_none(), "version {v} twice");
                    }
                    Some("op") => {
                        let v = m["version"].as_u64().context("op version")?;
                        let u = m["user"].as_str().unwrap_or_default().to_owned();
                        ensure!(seen.insert(v, u).is_none(), "version {v} twice: {m}");
                    }
                    Some(
                        "participant_joined" | "participant_left" | "presence" | "role_changed",
                    ) => {}
                    _ => bail!("{w}: unexpected {m}"),
                }
            }
            // Every version reaches every client, from whichever node committed it.
            while seen.len() < (total - from) as usize {
                let m = c.recv().await.with_context(|| {
                    let missing: Vec<u64> = (from + 1..=total)
                        .filter(|v| !seen.contains_key(v))
                        .collect();
                    format!("{w}: all acked, missing versions {missing:?}")
                })?;
                if m["type"] == "op" {
                    let v = m["version"].as_u64().context("op version")?;
                    let u = m["user"].as_str().unwrap_or_default().to_owned();
                    ensure!(seen.insert(v, u).is_none(), "version {v} twice: {m}");
                }
            }
            let expect: Vec<u64> = (from + 1..=total).collect();
            ensure!(
                seen.keys().copied().collect::<Vec<_>>() == expect,
                "{w}: versions {:?}",
                seen.keys()
            );
            Ok::<_, anyhow::Error>((c, seen))
        }));
    }
    let mut clients = Vec::new();
    let mut views = Vec::new();
    for t in tasks {
        let (c, seen) = t.await??;
        clients.push(c);
        views.push(seen);
    }
    // Every client saw each later version once, and all agree who made which.
    let mut authors: BTreeMap<u64, String> = BTreeMap::new();
    for v in &views {
        for (version, user) in v {
            let known = authors.entry(*version).or_insert_with(|| user.clone());
            ensure!(known == user, "clients disagree on the author of {version}");
        }
    }
    // Both nodes serve the same state, which is the replay of the one op log.
    let a = state(&nodes[0], "doc", "owner").await?;
    let b = state(&nodes[1], "doc", "owner").await?;
    ensure!(a == b, "nodes differ:\n{a}\n{b}");
    ensure!(a["version"] == total, "version {} != {total}", a["version"]);
    let log = all_ops(&nodes[1].addr, "doc", "owner").await?;
    ensure!(
        replay(&log)? == a["state"],
        "state is not the replay of the log"
    );
    let title = a["state"]["title"].as_str().unwrap_or_default();
    ensure!(title.len() as u64 == total / 2, "title {title:?}");
    let mut retries = 0;
    for n in &nodes {
        let (_, text) = n.get("/metrics", None).await?;
        retries += metric(&text, "montage_conflict_retries_total");
    }
    // One home node sequences the session; the other forwards its clients' edits there.
    ensure!(retries == 0, "{retries} conflict retries with a home node");
    let (_, text) = nodes[1].get("/metrics", None).await?;
    let forwarded = metric(&text, "montage_forwarded_edits_total");
    ensure!(forwarded >= 2 * EACH, "node 1 forwarded {forwarded} edits");
    // Node 0 created the session: it is its home (renewed twice a second), node 1 is not.
    ensure!(
        metric(&text, "montage_home_sessions") == 0,
        "node 1 is a home"
    );
    let (_, text) = nodes[0].get("/metrics", None).await?;
    ensure!(
        metric(&text, "montage_home_sessions") == 1,
        "node 0 is not the home"
    );

    // A demotion made on node 0 applies on node 1 from the very next message.
    owner
        .send(json!({"type":"set_role","session":"doc","user":"w1","role":"viewer"}))
        .await?;
    until(&mut owner, "role_changed").await?;
    let w1 = &mut clients[1];
    let rc = until(w1, "role_changed").await?;
    ensure!(rc["user"] == "w1" && rc["role"] == "viewer", "{rc}");
    w1.expect_error(
        json!({"type":"op","session":"doc","base":total,"seq":EACH + 1,
               "ops":[{"op":"set","path":["meta","late"],"value":1}]}),
        "forbidden",
    )
    .await?;

    // Presence crosses nodes too (relayed, not stored).
    owner
        .send(json!({"type":"presence","session":"doc","data":{"cursor":{"x":1,"y":2}}}))
        .await?;
    let m = until(&mut clients[3], "presence").await?;
    ensure!(m["user"] == "owner" && m["data"]["cursor"]["x"] == 1, "{m}");
    drop(nodes);
    Ok(())
}

/// Acked `(user, version)` pairs, when each came, and a counter the test waits on.
#[derive(Default)]
struct Acks {
    list: Mutex<Vec<(String, u64, std::time::Instant)>>,
}

#[tokio::test]
async fn kill_9_one_of_three_nodes_mid_load_loses_no_acked_edit() -> Result<()> {
    let Some((db, nats)) = services("scale::kill_9_one_of_three_nodes")? else {
        return Ok(());
    };
    // Node 0 loads the session first and is its home; node 1 only forwards.
    let (_dirs, nodes) = start_cluster(3, &db, &nats)?;
    writers_survive(nodes, Fault::Kill9(1)).await
}

/// DESIGN §9.7: the home node dies under load; another takes its lease, the edits in flight go
/// to the new home, and no acked edit is lost or applied twice.
#[tokio::test]
async fn kill_9_of_the_home_node_mid_load_loses_no_acked_edit() -> Result<()> {
    let Some((db, nats)) = services("scale::kill_9_of_the_home_node")? else {
        return Ok(());
    };
    let (_dirs, nodes) = start_cluster(3, &db, &nats)?;
    writers_survive(nodes, Fault::Kill9(0)).await
}

/// NATS goes away under load and comes back: forwarded edits wait and go again, commits the
/// bus lost are read from the store, and every node ends with every edit. The test runs its
/// own `nats-server` (the shared one must stay up for the other tests).
#[tokio::test]
async fn nats_restarted_mid_load_every_node_catches_up() -> Result<()> {
    let Some((db, _)) = services("scale::nats_restarted_mid_load")? else {
        return Ok(());
    };
    let Some(mut own) = OwnNats::start()? else {
        return Ok(());
    };
    let (_dirs, nodes) = start_cluster(3, &db, &own.url())?;
    writers_survive(nodes, Fault::RestartNats(&mut own)).await
}

/// PostgreSQL restarts (an immediate shutdown: crash recovery) under load: commits fail while
/// it is away, sessions reload, clients rejoin and resend, and no acked edit is lost. The test
/// runs a PostgreSQL of its own (the shared one serves the other tests).
#[tokio::test]
async fn postgres_restarted_mid_load_loses_no_acked_edit() -> Result<()> {
    let Some((_, nats)) = services("scale::postgres_restarted_mid_load")? else {
        return Ok(());
    };
    let Some(mut pg) = OwnPostgres::start()? else {
        return Ok(());
    };
    let db = TestDb::create(&pg.url(), None)?;
    let (_dirs, nodes) = start_cluster(3, &db, &nats)?;
    writers_survive(nodes, Fault::RestartPostgres(&mut pg)).await
}

/// Fails the test when `MONTAGE_TEST_REQUIRE_SERVICES` is set; else says loudly that `test`
/// did not run because of `why`.
fn not_run(test: &str, why: &str) -> Result<()> {
    ensure!(
        std::env::var_os("MONTAGE_TEST_REQUIRE_SERVICES").is_none(),
        "{why}; MONTAGE_TEST_REQUIRE_SERVICES is set"
    );
    eprintln!("\n!!!!! {test} DID NOT RUN: {why} !!!!!\n");
    Ok(())
}

/// A PostgreSQL of one test's own: Debian's binaries run as the `postgres` user on a data dir
/// and a port of its own, trust auth on 127.0.0.1.
struct OwnPostgres {
    dir: tempfile::TempDir,
    port: u16,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

impl OwnPostgres {
    /// `None` (said loudly) when PostgreSQL's server binaries or its user are not here.
    fn start() -> Result<Option<OwnPostgres>> {
        let test = "scale::postgres_restarted_mid_load";
        if !Path::new(PG_BIN).join("initdb").exists() {
            not_run(test, &format!("no PostgreSQL server binaries in {PG_BIN}"))?;
            return Ok(None);
        }
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let own = OwnPostgres { dir, port };
        let st = std::process::Command::new("chown")
            .args(["postgres"])
            .arg(own.dir.path())
            .status()?;
        ensure!(st.success(), "chown postgres {:?}", own.dir.path());
        own.pg(&[
            "initdb",
            "-D",
            &own.data(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ])?;
        own.pg_ctl("start")?;
        Ok(Some(own))
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir.path().display())
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs one of PostgreSQL's programs as the `postgres` user.
    fn pg(&self, args: &[&str]) -> Result<()> {
        let out = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{PG_BIN}/{}", args[0]))
            .args(&args[1..])
            .output()?;
        ensure!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    fn pg_ctl(&self, action: &str) -> Result<()> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = format!("{}/log", self.dir.path().display());
        let data = self.data();
        self.pg(&[
            "pg_ctl",
            "-D",
            &data,
            "-m",
            "immediate",
            "-w",
            "-o",
            &opts,
            "-l",
            &log,
            action,
        ])
    }

    /// Stops it at once (no checkpoint: it recovers from its WAL), waits `down`, starts it.
    fn restart(&mut self, down: Duration) -> Result<()> {
        self.pg_ctl("stop")?;
        std::thread::sleep(down);
        self.pg_ctl("start")
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl("stop");
    }
}

/// A `nats-server` of one test's own, on a port of its own.
struct OwnNats {
    child: std::process::Child,
    port: u16,
}

impl OwnNats {
    /// `None` (said loudly) when `nats-server` is not installed.
    fn start() -> Result<Option<OwnNats>> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        match OwnNats::spawn(port) {
            Ok(child) => Ok(Some(OwnNats { child, port })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                not_run(
                    "scale::nats_restarted_mid_load",
                    "nats-server is not installed (scripts/install-test-deps.sh installs it)",
                )?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn spawn(port: u16) -> std::io::Result<std::process::Child> {
        // Debian puts it in /usr/sbin, which not every PATH has.
        let bin = if std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let child = std::process::Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        // Listening once a connection is taken.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(child)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it, waits `down`, and starts it again on the same port.
    fn restart(&mut self, down: Duration) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        self.child = OwnNats::spawn(self.port)?;
        Ok(())
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What happens to the cluster mid-load.
enum Fault<'a> {
    Kill9(usize),
    RestartNats(&'a mut OwnNats),
    RestartPostgres(&'a mut OwnPostgres),
}

/// Six SDK writers spread over three nodes write one session (each knows every node); once a
/// third of their edits are acked, `fault` strikes. Every edit ends up in, once, every acked
/// version holds its writer's edit, the surviving nodes agree, and no node sequenced against
/// another (no conflict retries).
async fn writers_survive(mut nodes: Vec<Server>, fault: Fault<'_>) -> Result<()> {
    let users: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
    let _owner = create_session(&nodes[0], "k", "owner", &users).await?;
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    const EACH: u64 = 60;
    let acks = Arc::new(Acks::default());
    let (progress_tx, mut progress) = watch::channel(0usize);
    let progress_tx = Arc::new(progress_tx);
    let mut tasks = Vec::new();
    for (i, u) in users.iter().enumerate() {
        // Client i starts on node i % 3 and knows the others as fallbacks.
        let urls: Vec<String> = (0..3)
            .map(|k| format!("ws://{}/v1/ws", addrs[(i + k) % 3]))
            .collect();
        let opts = Options::new(urls[0].clone(), token(u))
            .urls(urls)
            .backoff(Duration::from_millis(20), Duration::from_millis(200))
            .event_capacity(100_000);
        let sdk = Sdk::start(opts)?;
        let u = u.clone();
        let acks = acks.clone();
        let progress_tx = progress_tx.clone();
        tasks.push(tokio::spawn(async move {
            let s = sdk.join_timeout("k", Duration::from_secs(20)).await?;
            let mut events = s.events();
            let collector = {
                let acks = acks.clone();
                let u = u.clone();
                tokio::spawn(async move {
                    while let Some(e) = events.next().await {
                        match e {
                            Event::Ack { version, .. } => {
                                let mut l = acks.list.lock().unwrap_or_else(|p| p.into_inner());
                                l.push((u.clone(), version, std::time::Instant::now()));
                                progress_tx.send_replace(l.len());
                            }
                            Event::Lagged(n) => return Err(anyhow!("lagged {n}")),
                            _ => {}
                        }
                    }
                    Ok(())
                })
            };
            for k in 0..EACH {
                s.edit_json(&json!([{"op":"set","path":["meta",format!("{u}-{k}")],"value":k}]))?;
                if k % 5 == 4 {
                    // Keeps the load going through the kill: waits out the reconnect.
                    s.sync(Duration::from_secs(30)).await?;
                }
            }
            s.sync(Duration::from_secs(30)).await?;
            let version = s.version();
            sdk.close().await;
            collector.abort();
            Ok::<_, anyhow::Error>(version)
        }));
    }
    // Mid-load: once a third of the edits are acked, node 1 dies without a word.
    let third = (EACH as usize * users.len()) / 3;
    progress
        .wait_for(|n| *n >= third)
        .await
        .map_err(|_| anyhow!("writers stopped early"))?;
    let acked_before: Vec<(String, u64, std::time::Instant)> =
        acks.list.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let killed = std::time::Instant::now();
    let survivors: Vec<usize> = match fault {
        Fault::Kill9(victim) => {
            nodes[victim].kill9();
            (0..3).filter(|i| *i != victim).collect()
        }
        Fault::RestartNats(nats) => {
            nats.restart(Duration::from_secs(1))?;
            (0..3).collect()
        }
        Fault::RestartPostgres(pg) => {
            pg.restart(Duration::from_secs(1))?;
            (0..3).collect()
        }
    };
    for t in tasks {
        t.await??;
    }
    let a = state(&nodes[survivors[0]], "k", "owner").await?;
    for i in &survivors[1..] {
        let c = state(&nodes[*i], "k", "owner").await?;
        ensure!(a == c, "the surviving nodes differ:\n{a}\n{c}");
    }
    // Every edit of every client is in, once.
    let meta = a["state"]["meta"].as_object().context("meta")?;
    for u in &users {
        for k in 0..EACH {
            let key = format!("{u}-{k}");
            ensure!(meta.get(&key) == Some(&json!(k)), "{key} lost");
        }
    }
    let log = all_ops(&nodes[survivors[1]].addr, "k", "owner").await?;
    ensure!(
        replay(&log)? == a["state"],
        "state is not the replay of the log"
    );
    ensure!(log.len() as u64 == a["version"].as_u64().unwrap_or(0));
    // Each acked version (those acked before the kill included) holds that user's edit.
    let by_version: HashMap<u64, &str> = log
        .iter()
        .filter_map(|e| Some((e["version"].as_u64()?, e["user"].as_str()?)))
        .collect();
    let all_acked = acks.list.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for (u, v, _) in all_acked.iter().chain(&acked_before) {
        ensure!(
            by_version.get(v) == Some(&u.as_str()),
            "acked version {v} of {u} is not theirs"
        );
    }
    // No version was acked twice (to one client or two).
    let distinct: HashSet<u64> = all_acked.iter().map(|(_, v, _)| *v).collect();
    ensure!(
        distinct.len() == all_acked.len(),
        "a version was acked twice"
    );
    ensure!(!acked_before.is_empty());
    // A figure, not an assertion: the longest time without any ack after the fault.
    let mut after: Vec<std::time::Instant> = all_acked
        .iter()
        .map(|(_, _, at)| *at)
        .filter(|at| *at > killed)
        .collect();
    after.sort_unstable();
    let stall = after
        .iter()
        .scan(killed, |prev, at| {
            let gap = at.duration_since(*prev);
            *prev = *at;
            Some(gap)
        })
        .max();
    eprintln!("longest pause in acks after the fault: {stall:?}");
    let mut retries = 0;
    for i in &survivors {
        let (_, text) = nodes[*i].get("/metrics", None).await?;
        retries += metric(&text, "montage_conflict_retries_total");
    }
    ensure!(
        retries == 0,
        "{retries} conflict retries: the nodes sequenced the session against each other"
    );
    Ok(())
}

/// Where a writer is: its client, the newest version it saw, its last seq.
type Writer = (Client, u64, u64);

/// Sends `n` inserts of "x" at the start of the title (8 in flight, each based on the newest
/// version seen) and returns the writer and how many were acked.
async fn type_at_start(w: Writer, session: &'static str, n: u64) -> Result<(Writer, u64)> {
    let (mut c, mut known, mut seq) = w;
    let (mut sent, mut acked, mut done, mut in_flight) = (0, 0, 0, 0);
    while done < n {
        while in_flight < 8 && sent < n {
            seq += 1;
            sent += 1;
            in_flight += 1;
            c.op(
                session,
                known,
                seq,
                json!([{"op":"text","path":["title"],"pos":0,"ins":"x"}]),
            )
            .await?;
        }
        let m = c.recv().await?;
        match m["type"].as_str() {
            Some("ack") => {
                known = known.max(m["version"].as_u64().context("ack version")?);
                acked += 1;
                done += 1;
                in_flight -= 1;
            }
            Some("op") => known = known.max(m["version"].as_u64().context("op version")?),
            // An edit that lost its version too often (`conflict`): not applied.
            Some("error") => {
                ensure!(m["code"] == "conflict", "{m}");
                done += 1;
                in_flight -= 1;
            }
            _ => {}
        }
    }
    Ok(((c, known, seq), acked))
}

#[tokio::test]
async fn a_caret_moves_once_per_edit_when_nodes_conflict() -> Result<()> {
    let Some((db, nats)) = services("scale::a_caret_moves_once_per_edit_when_nodes_conflict")?
    else {
        return Ok(());
    };
    // Without home nodes, so both nodes sequence and lose versions to each other.
    let (_dirs, nodes) = start_cluster_with(2, &db, &nats, &["--home-lease-ms", "0"])?;
    let writers = ["w0".to_owned(), "w1".to_owned()];
    let mut owner = create_session(&nodes[0], "caret", "owner", &writers).await?;
    owner
        .edit(
            "caret",
            0,
            1,
            json!([{"op":"text","path":["title"],"pos":0,"ins":"hello"}]),
        )
        .await?;
    // Bob (a viewer on node 1) puts his caret at the end of "hello"; node 1 holds his presence.
    let mut bob = nodes[1].connect("bob").await?;
    bob.join("caret", "bob").await?;
    let mut watcher = nodes[1].connect("watcher").await?;
    watcher.join("caret", "watch").await?;
    bob.send(json!({"type":"presence","session":"caret",
                    "data":{"caret":{"path":["title"],"index":5}}}))
        .await?;
    let m = until(&mut watcher, "presence").await?;
    ensure!(m["data"]["caret"]["index"] == 5, "{m}");
    drop(watcher);
    // Both nodes take inserts before the caret at once until node 1 has lost versions to node 0
    // (its edits were applied there, moving the caret, then rolled back and retried).
    let mut ws = Vec::new();
    for (i, u) in writers.iter().enumerate() {
        let mut c = nodes[i].connect(u).await?;
        let v = c.join("caret", &format!("c{i}")).await?["version"]
            .as_u64()
            .context("joined version")?;
        ws.push((c, v, 0));
    }
    let (mut typed, mut retries) = (0, 0);
    for _round in 0..20 {
        let tasks: Vec<_> = ws
            .drain(..)
            .map(|w| tokio::spawn(type_at_start(w, "caret", 30)))
            .collect();
        for t in tasks {
            let (w, acked) = t.await??;
            ws.push(w);
            typed += acked;
        }
        let (_, text) = nodes[1].get("/metrics", None).await?;
        retries = metric(&text, "montage_conflict_retries_total");
        if retries > 0 {
            break;
        }
    }
    ensure!(
        retries > 0,
        "node 1 never lost a version: nothing was tested"
    );
    eprintln!("{typed} inserts, {retries} conflict retries on node 1");
    // Every acked insert is before the caret and moved it once.
    let s = state(&nodes[1], "caret", "owner").await?;
    let title = s["state"]["title"].as_str().unwrap_or_default();
    ensure!(
        title.len() as u64 == 5 + typed && title.ends_with("hello"),
        "{title}"
    );
    let mut late = nodes[1].connect("late").await?;
    let joined = late.join("caret", "late").await?;
    let bob_now = joined["participants"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["user"] == "bob"))
        .context("bob in the roster")?;
    ensure!(
        bob_now["presence"]["caret"]["index"] == 5 + typed,
        "caret {} after {typed} inserts (expected {})",
        bob_now["presence"]["caret"],
        5 + typed
    );
    drop(bob);
    Ok(())
}

/// POST with a JSON body and a bearer token; returns (status, body).
async fn post(node: &Server, path: &str, user: &str, body: Json) -> Result<(u16, Json)> {
    let resp = reqwest::Client::new()
        .post(format!("http://{}{path}", node.addr))
        .bearer_auth(token(user))
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, serde_json::from_str(&resp.text().await?)?))
}

/// Comments, invites and tasks are in PostgreSQL and every node sees their changes: a comment
/// made on one node reaches the clients of the other, an edit made on one is kept by a reaction
/// made on the other (no stale copy overwrites it), an invite made on one node is used up on the
/// other, and a task created on one node is announced to the session's clients on the other.
#[tokio::test]
async fn comments_and_invites_are_shared_between_nodes() -> Result<()> {
    let Some((db, nats)) = services("scale::comments_and_invites_are_shared_between_nodes")? else {
        return Ok(());
    };
    // A messenger nobody answers (the discard port): its task fails and is retried.
    let hooks = [
        "--connector-url",
        "messenger=http://127.0.0.1:9/dm",
        "--webhook-secret",
        "s",
    ];
    let (_dirs, nodes) = start_cluster_with(2, &db, &nats, &hooks)?;
    let mut alice = create_session(&nodes[0], "doc", "alice", &["bob".into()]).await?;
    let mut bob = nodes[1].connect("bob").await?;
    bob.join("doc", "b").await?;

    alice
        .send(json!({"type":"comment","session":"doc","comment":{"content":"first"}}))
        .await?;
    let root = until(&mut alice, "comment_added").await?["comment"].clone();
    let id = root["id"].as_str().context("comment id")?.to_owned();
    assert_eq!(until(&mut bob, "comment_added").await?["comment"], root);
    // Node 1 knows the comment: bob replies to it there.
    bob.send(
        json!({"type":"comment","session":"doc","comment":{"content":"reply","parent_id":id}}),
    )
    .await?;
    let reply = until(&mut bob, "comment_added").await?["comment"].clone();
    assert_eq!(reply["parent_id"], json!(id));
    assert_eq!(until(&mut alice, "comment_added").await?["comment"], reply);
    // Alice edits on node 0; once bob has seen it, his reaction on node 1 keeps the edit.
    alice
        .send(json!({"type":"comment_edit","session":"doc","id":id,"content":"first, edited"}))
        .await?;
    let edited = until(&mut bob, "comment_updated").await?["comment"].clone();
    assert_eq!(edited["content"], "first, edited");
    bob.send(json!({"type":"comment_react","session":"doc","id":id,"emoji":"👍","on":true}))
        .await?;
    // Alice's own edit comes back to her first.
    let reacted = loop {
        let m = until(&mut alice, "comment_updated").await?;
        if m["comment"]["reactions"]["👍"].is_array() {
            break m;
        }
    };
    assert_eq!(reacted["comment"]["content"], "first, edited");
    assert_eq!(reacted["comment"]["reactions"]["👍"], json!(["bob"]));
    for node in &nodes {
        let list = node.get_json("/v1/sessions/doc/comments", "bob").await?;
        let list = list["comments"].as_array().context("comments")?;
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["content"], "first, edited");
        assert_eq!(list[0]["reactions"]["👍"], json!(["bob"]));
    }

    // An invite made on node 0 is used on node 1; its only use then is gone on node 0 too.
    let (status, inv) = post(
        &nodes[0],
        "/v1/sessions/doc/invites",
        "alice",
        json!({"role":"commenter","max_uses":1}),
    )
    .await?;
    assert_eq!(status, 201, "{inv}");
    let accept = format!("/v1/invites/{}/accept", inv["id"].as_str().context("id")?);
    assert_eq!(
        post(&nodes[1], &accept, "carol", json!({})).await?,
        (200, json!({"session":"doc","role":"commenter"}))
    );
    let (status, e) = post(&nodes[0], &accept, "dave", json!({})).await?;
    assert_ne!(status, 200, "{e}");

    // A share on node 0 creates a task there; bob on node 1 hears of it as it is created
    // (`pending` comes only from the node that created it, whichever node runs it).
    let (status, shared) = post(
        &nodes[0],
        "/v1/sessions/doc/share",
        "alice",
        json!({"recipients":[{"type":"direct_message","user":"bob"}]}),
    )
    .await?;
    assert_eq!(status, 202, "{shared}");
    let task = shared["tasks"][0]["id"].clone();
    // Frames of later attempts keep coming: a bound, so a missing one fails instead of hanging.
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let f = until(&mut bob, "task").await?;
            if f["task"]["id"] == task && f["task"]["state"] == "pending" {
                return anyhow::Ok(());
            }
        }
    })
    .await
    .context("bob never heard of the task made on node 0")??;
    Ok(())
}

/// `joined.participants` lists users online on other nodes too, and a user going offline on
/// another node is announced here.
#[tokio::test]
async fn joiners_see_participants_of_every_node() -> Result<()> {
    let Some((db, nats)) = services("scale::joiners_see_participants_of_every_node")? else {
        return Ok(());
    };
    let (_dirs, nodes) = start_cluster(2, &db, &nats)?;
    let mut alice = create_session(&nodes[0], "doc", "alice", &[]).await?;
    let online = |joined: &Json| -> Vec<String> {
        joined["participants"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["online"] == true)
            .filter_map(|p| p["user"].as_str().map(str::to_owned))
            .collect()
    };
    // Bob is the first on node 1: alice is in his `joined`, or (when node 0's answer to node
    // 1's roster query comes after it) announced right after.
    let mut bob = nodes[1].connect("bob").await?;
    let joined = bob.join("doc", "b").await?;
    if !online(&joined).contains(&"alice".to_owned()) {
        let j = until(&mut bob, "participant_joined").await?;
        assert_eq!(j["user"], "alice");
    }
    assert_eq!(
        until(&mut alice, "participant_joined").await?["user"],
        "bob"
    );
    // Node 1 knows alice now: a later joiner there lists her at once, online.
    let mut carol = nodes[1].connect("carol").await?;
    let joined = carol.join("doc", "c").await?;
    assert_eq!(online(&joined), ["alice", "bob", "carol"]);
    // And node 0 lists the users of node 1.
    let mut dave = nodes[0].connect("dave").await?;
    assert_eq!(
        until(&mut alice, "participant_joined").await?["user"],
        "carol"
    );
    let joined = dave.join("doc", "d").await?;
    assert_eq!(online(&joined), ["alice", "bob", "carol", "dave"]);
    // Bob leaves node 1: node 0's clients hear it.
    drop(bob);
    let left = until(&mut dave, "participant_left").await?;
    assert_eq!(left["user"], "bob");
    Ok(())
}

/// A live-preview subscriber that never joins, on another node than the editor: the session
/// stays loaded on its node (idle-unload 0 would unload it at once otherwise), so it hears the
/// other node's commits and gets their previews.
#[tokio::test]
async fn previews_follow_edits_made_on_another_node() -> Result<()> {
    let Some((db, nats)) = services("scale::previews_follow_edits_made_on_another_node")? else {
        return Ok(());
    };
    let (_dirs, nodes) = start_cluster_with(2, &db, &nats, &["--idle-unload", "0"])?;
    let mut editor = create_session(&nodes[0], "pv", "owner", &[]).await?;
    let mut viewer = nodes[1].connect("viewer").await?;
    viewer
        .send(json!({"type":"preview_subscribe","session":"pv","tier":"poor"}))
        .await?;
    assert_eq!(until(&mut viewer, "preview").await?["version"], 0);
    // Long enough for an idle session to have unloaded (idle-unload is 0).
    tokio::time::sleep(Duration::from_millis(300)).await;
    for seq in 1..=3u64 {
        editor
            .edit(
                "pv",
                seq - 1,
                seq,
                json!([{"op":"set","path":["title"],"value":format!("t{seq}")}]),
            )
            .await?;
    }
    // Paced at the tier's rate, the newest version arrives last.
    let newest = async {
        loop {
            let p = until(&mut viewer, "preview").await?;
            if p["version"] == 3 {
                return anyhow::Ok(());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), newest)
        .await
        .context("no preview of the other node's edits")??;
    Ok(())
}

/// Access across nodes (DESIGN §9.1): link access closed on one node takes a user out on the
/// other at once; a removal made on one node sticks on the other; a delete on one node tells the
/// other's clients and leaves the id unusable there. The nodes run the product's default
/// (private sessions).
#[tokio::test]
async fn access_changes_reach_every_node() -> Result<()> {
    let Some((db, nats)) = services("scale::access_changes_reach_every_node")? else {
        return Ok(());
    };
    let (_dirs, nodes) = start_cluster_with(2, &db, &nats, &["--default-link-role", "none"])?;
    let mut alice = nodes[0].connect("alice").await?;
    alice.join("doc", "a").await?;
    let mut bob = nodes[1].connect("bob").await?;
    bob.expect_error(
        json!({"type":"join","session":"doc","client":"b"}),
        "forbidden",
    )
    .await?;
    // Opened on node 0: bob joins on node 1 as an editor and edits.
    alice
        .send(json!({"type":"set_link_role","session":"doc","role":"editor"}))
        .await?;
    until(&mut alice, "link_role_changed").await?;
    let j = bob.join("doc", "b").await?;
    ensure!(j["role"] == "editor", "{j}");
    // (The bus may bring node 0's link_role_changed after bob's join read the store: skip it.)
    bob.op(
        "doc",
        0,
        1,
        json!([{"op":"set","path":["title"],"value":"b"}]),
    )
    .await?;
    until(&mut bob, "ack").await?;
    // Closed on node 0: node 1 tells bob and takes him out.
    alice
        .send(json!({"type":"set_link_role","session":"doc","role":"none"}))
        .await?;
    while until(&mut bob, "link_role_changed").await?["role"] != "none" {}
    let e = until(&mut bob, "error").await?;
    ensure!(e["code"] == "forbidden", "{e}");
    bob.expect_error(
        json!({"type":"op","session":"doc","base":1,"seq":2,"ops":[{"op":"set","path":["title"],"value":"x"}]}),
        "forbidden",
    )
    .await?;
    // Carol, granted then removed on node 0, is out on node 1 and stays out.
    alice
        .send(json!({"type":"set_role","session":"doc","user":"carol","role":"editor"}))
        .await?;
    until(&mut alice, "role_changed").await?;
    let mut carol = nodes[1].connect("carol").await?;
    carol.join("doc", "c").await?;
    alice
        .send(json!({"type":"set_role","session":"doc","user":"carol","role":"none"}))
        .await?;
    // (A late `role_changed` to editor from the bus may come first.)
    while until(&mut carol, "role_changed").await?["role"] != "none" {}
    ensure!(until(&mut carol, "error").await?["code"] == "forbidden");
    carol
        .expect_error(
            json!({"type":"join","session":"doc","client":"c"}),
            "forbidden",
        )
        .await?;
    // Deleted through node 1's HTTP API while alice is on node 0: she is told; the id is gone
    // on both nodes.
    let resp = reqwest::Client::new()
        .delete(format!("http://{}/v1/sessions/doc", nodes[1].addr))
        .bearer_auth(token("alice"))
        .send()
        .await?;
    ensure!(resp.status().as_u16() == 204, "delete: {}", resp.status());
    ensure!(until(&mut alice, "session_deleted").await?["session"] == "doc");
    for node in &nodes {
        let (status, _) = node.get("/v1/sessions/doc", Some("alice")).await?;
        ensure!(status == 404, "{} still serves doc: {status}", node.addr);
        let mut again = node.connect("alice").await?;
        again
            .expect_error(
                json!({"type":"join","session":"doc","client":"z"}),
                "not_found",
            )
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_mention_reaches_its_user_on_another_node() -> Result<()> {
    let Some((db, nats)) = services("scale::a_mention_reaches_its_user_on_another_node")? else {
        return Ok(());
    };
    let (_dirs, nodes) = start_cluster(2, &db, &nats)?;
    let mut alice = create_session(&nodes[0], "doc", "alice", &["bob".into()]).await?;
    // bob is connected to the other node, in another session.
    let mut bob = nodes[1].connect("bob").await?;
    bob.join("elsewhere", "b").await?;
    alice
        .send(json!({"type":"comment","session":"doc","comment":{"content":"@bob look"}}))
        .await?;
    let comment = until(&mut alice, "comment_added").await?["comment"].clone();
    // (Being made an editor may reach bob first.)
    let n = loop {
        let n = bob.next_notification().await?;
        if n["kind"] != "role_changed" {
            break n;
        }
    };
    assert_eq!(
        (&n["kind"], &n["session"], &n["actor"], &n["comment_id"]),
        (
            &json!("mention"),
            &json!("doc"),
            &json!("alice"),
            &comment["id"]
        )
    );
    // One inbox whichever node reads it.
    let unread = nodes[1]
        .get_json("/v1/notifications?unread=true", "bob")
        .await?;
    assert!(
        unread["notifications"]
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["id"] == n["id"])),
        "{unread}"
    );
    let (status, _) = post(
        &nodes[0],
        "/v1/notifications/read",
        "bob",
        json!({"all": true}),
    )
    .await?;
    assert_eq!(status, 200);
    let unread = nodes[1]
        .get_json("/v1/notifications?unread=true", "bob")
        .await?;
    assert_eq!(unread["notifications"], json!([]), "{unread}");
    Ok(())
}

/// An end-to-end encrypted session across two nodes: alice's on node 0, bob's on node 1 (his
/// sealed edits forwarded to the session's home, the home's commits relayed back as sealed `op`
/// frames with their chain). Both type at once and converge, and a raw client on node 1 sees
/// sealed frames only.
#[tokio::test]
async fn an_encrypted_session_spans_nodes() -> Result<()> {
    use montage_client::sealed::{Keyring, SessionKey};
    use montage_client::{Component, Op, Role, Value, path};

    let Some((db, nats)) = services("scale::an_encrypted_session_spans_nodes")? else {
        return Ok(());
    };
    let (_dirs, nodes) = start_cluster(2, &db, &nats)?;
    let ws = |n: &Server| format!("ws://{}/v1/ws", n.addr);
    let keys = Keyring::new(SessionKey::generate());
    let alice = sdk(&ws(&nodes[0]), "alice").await?;
    let ha = alice.join_encrypted("enc", keys.clone()).await?;
    ha.set_role("bob", Role::Editor).await?;
    ha.sync(SDK_SYNC).await?;
    let mut raw = nodes[1].connect("carol").await?;
    let joined = raw.join("enc", "c").await?;
    ensure!(joined["encrypted"] == true, "{joined}");
    let bob = sdk(&ws(&nodes[1]), "bob").await?;
    let hb = bob.join_encrypted("enc", keys.clone()).await?;
    let type_at_end = |h: &montage_client::SessionHandle, s: &str| {
        h.edit_with(|d| {
            let n = d
                .get("title")
                .and_then(Value::as_text)
                .map_or(0, |t| t.len_chars());
            Some(Op::new(vec![Component::text_insert(path!["title"], n, s)]))
        })
    };
    for _ in 0..20 {
        type_at_end(&ha, "a")?;
        type_at_end(&hb, "b")?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ha.sync(SDK_SYNC).await?;
    hb.sync(SDK_SYNC).await?;
    let v = ha.version().max(hb.version());
    ha.wait_version(v, SDK_SYNC).await?;
    hb.wait_version(v, SDK_SYNC).await?;
    ensure!(ha.state() == hb.state(), "diverged");
    let title = ha
        .state()
        .get("title")
        .and_then(Value::as_text)
        .map(ToString::to_string)
        .unwrap_or_default();
    ensure!(
        title.matches('a').count() == 20 && title.matches('b').count() == 20,
        "{title}"
    );
    // Node 1 relayed alice's edits (sequenced on another node or not) sealed, with the chain.
    let op = until(&mut raw, "op").await?;
    ensure!(
        op["data"].is_string() && op["chain"].is_string() && op.get("ops").is_none(),
        "{op}"
    );
    Ok(())
}
