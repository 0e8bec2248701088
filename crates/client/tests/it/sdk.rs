//! The Rust SDK (`montage-client`) against the real server: random concurrent edits through a
//! fault-injecting proxy, offline editing, undo/redo.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use montage_client::{
    Api, Client, Component, ErrorCode, Event, Op, Role, SessionHandle, Value, path,
};
use serde_json::json;

use crate::proxy::{Faults, Proxy};
use montage_testkit::*;

backend_tests!(
    random_edits_under_faults_converge_without_loss_or_duplicates,
    offline_edits_survive_a_restart_and_merge_with_concurrent_work,
    undo_twice_redo_once_keeps_the_other_users_work_and_works_after_reconnect,
    a_viewers_edit_is_refused_and_the_replica_resets,
    offline_past_the_servers_catch_up_limit_still_reconciles,
    catch_up_over_http_escapes_the_session_id,
    fails_over_along_the_url_list,
    an_edit_past_the_transform_budget_is_rebased_by_the_sdk,
    a_past_version_is_restored_as_one_undoable_edit,
    concurrent_trims_and_splits_never_leave_an_empty_clip,
    timed_downloads_move_the_tier_and_a_new_socket_hears_them,
    a_large_state_downloads_in_pieces_that_resume_through_cuts,
);

/// Creates `session` as `owner` with `init` applied, and makes `editors` editors.
pub async fn create_session(
    server: &Server,
    session: &str,
    owner: &str,
    editors: &[&str],
    init: Op,
) -> Result<()> {
    let mut c = server.connect(owner).await?;
    c.join(session, "setup").await?;
    for u in editors.iter().filter(|u| **u != owner) {
        c.send(json!({"type":"set_role","session":session,"user":u,"role":"editor"}))
            .await?;
        c.recv_type("role_changed").await?;
    }
    if !init.is_empty() {
        c.edit(session, 0, 1, init.to_json()).await?;
    }
    Ok(())
}

pub fn layer(id: &str) -> Value {
    Value::from_json(&json!({"id":id,"kind":"image","asset":"a","x":0,"y":0,"w":100,"h":100}))
}

fn layers_of(d: &Value) -> usize {
    d.at(path!["canvas", "layers"].segs())
        .and_then(Value::as_arr)
        .map_or(0, Vec::len)
}

fn title_of(d: &Value) -> String {
    d.get("title")
        .and_then(Value::as_text)
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Waits until every handle is acked and at the server's head, then checks each replica
/// equals the server's state. Returns the server state.
pub async fn assert_converged(
    server: &Server,
    session: &str,
    user: &str,
    hs: &[&SessionHandle],
) -> Result<Value> {
    for h in hs {
        h.sync(SDK_SYNC).await.context("sync")?;
    }
    let head = server.get_json(&session_path(session), user).await?;
    let v = head["version"]
        .as_u64()
        .ok_or_else(|| anyhow!("no version"))?;
    let state = Value::from_json(&head["state"]);
    for (i, h) in hs.iter().enumerate() {
        h.wait_version(v, SDK_SYNC).await?;
        ensure!(h.version() == v, "client {i} at {} not {v}", h.version());
        let mine = h.state();
        if mine != state {
            bail!(
                "client {i} diverged at v{v}:\n mine   {}\n server {}",
                mine.to_json(),
                state.to_json()
            );
        }
    }
    Ok(state)
}

/// One random edit built from the local replica: typing, layer inserts/moves/sets/deletes,
/// adjustments and rotations (integers and dyadic values only: other float sums may differ
/// in the last bit between sites, OT.md §13 Q2), and a unique token appended to `meta.log`.
fn random_edit(d: &Value, rng: &mut Rng, who: usize, n: u64) -> Op {
    let layers = path!["canvas", "layers"];
    let nl = layers_of(d);
    let title_len = d
        .get("title")
        .and_then(Value::as_text)
        .map_or(0, |t| t.len_chars());
    let log_len = d
        .at(path!["meta", "log"].segs())
        .and_then(Value::as_arr)
        .map_or(0, Vec::len);
    let token = Component::ins(
        path!["meta", "log"].child(log_len),
        Value::str(format!("c{who}-{n}")),
    );
    let pick = rng.below(10);
    let mut comps = vec![token];
    let li = |rng: &mut Rng| layers.child(rng.below(nl as u64) as usize);
    match pick {
        0..=3 => {
            let pos = rng.below(title_len as u64 + 1) as usize;
            let ch = char::from(b'a' + (rng.below(26) as u8));
            comps.push(Component::text_insert(path!["title"], pos, ch.to_string()));
        }
        4 if nl < 12 => {
            let at = rng.below(nl as u64 + 1) as usize;
            comps.push(Component::ins(
                layers.child(at),
                layer(&format!("l{who}-{n}")),
            ));
        }
        5 if nl > 1 => {
            let to = rng.below(nl as u64) as usize;
            comps.push(Component::mov(li(rng), to));
        }
        6 if nl > 0 => comps.push(Component::set(
            li(rng).child("x"),
            Value::Num(rng.below(1000) as f64),
        )),
        7 if nl > 0 => comps.push(Component::Adjust {
            path: li(rng),
            param: "brightness".into(),
            value: (rng.below(8) as f64) / 8.0,
        }),
        8 if nl > 0 => comps.push(Component::Rotate {
            path: li(rng),
            by: (rng.below(4) * 90) as f64,
        }),
        9 if nl > 6 => comps.push(Component::del(li(rng))),
        _ => {}
    }
    Op::new(comps)
}

/// Five SDK clients (two speaking `montage.v1.proto`, three JSON; one `poor`, one `fair`, so
/// they take ranges) edit one session at random through a proxy that cuts, delays and
/// duplicates; every replica ends equal to the server's.
async fn random_edits_under_faults_converge_without_loss_or_duplicates(b: Backend) -> Result<()> {
    const CLIENTS: usize = 5;
    const EDITS: u64 = 800;
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    let users: Vec<String> = (0..CLIENTS).map(|i| format!("u{i}")).collect();
    let editors: Vec<&str> = users.iter().map(String::as_str).collect();
    let init = Op::new(vec![Component::set(
        path!["meta", "log"],
        Value::Arr(vec![]),
    )]);
    create_session(&server, "faults", "owner", &editors, init).await?;
    let proxy = Proxy::start(&server.addr, 0x5eed).await?;
    proxy.set_faults(Faults {
        cut_one_in: 400,
        max_delay_ms: 3,
        dup_one_in: 10,
    });
    let mut handles = Vec::new();
    let mut clients = Vec::new();
    for (i, u) in users.iter().enumerate() {
        // Every other client speaks `montage.v1.proto`: both forms share the session.
        let opts = sdk_options(&proxy.ws_url(), u).binary(i % 2 == 1);
        let c = Client::start(opts)?;
        // Two read slowly (`poor`, `fair`: as if their pictures came at 1 and 7 Mbit/s, hinted
        // on every socket), so they get other clients' edits composed into ranges while their
        // own are in flight (docs/PROTOCOL.md "Ranges").
        match i {
            2 => c.report_download(125_000, Duration::from_secs(1)),
            3 => c.report_download(875_000, Duration::from_secs(1)),
            _ => None,
        };
        c.connected(SDK_SYNC).await?;
        let h = c.join("faults").await?;
        clients.push(c);
        handles.push(h);
    }
    let refused = Arc::new(AtomicU64::new(0));
    let server_errors = Arc::new(AtomicU64::new(0));
    for h in &handles {
        let mut ev = h.events();
        let errs = server_errors.clone();
        tokio::spawn(async move {
            while let Some(e) = ev.next().await {
                if let montage_client::Event::Error { code, message } = e {
                    eprintln!("server error: {code:?} {message}");
                    errs.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for (who, h) in handles.iter().cloned().enumerate() {
        let refused = refused.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((who as u64 + 1) * 0x1234_5678));
            for n in 0..EDITS {
                let r = h.edit_with(|d| Some(random_edit(d, &mut rng, who, n)));
                if let Err(e) = r {
                    refused.fetch_add(1, Ordering::Relaxed);
                    return Err(anyhow!("client {who} edit {n} refused locally: {e}"));
                }
                // Typing speed varies: bursts that compose, pauses that let edits go alone.
                if rng.below(4) == 0 {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(Duration::from_micros(rng.below(8000))).await;
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    // Whole-proxy outages on top of the random cuts.
    let p2 = proxy.clone();
    let chaos = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            p2.cut_all();
        }
    });
    for t in tasks {
        t.await??;
    }
    chaos.abort();
    proxy.set_faults(Faults::default());
    let hs: Vec<&SessionHandle> = handles.iter().collect();
    let state = assert_converged(&server, "faults", "owner", &hs).await?;
    // Every token exactly once: nothing lost, nothing applied twice.
    let log = state
        .at(path!["meta", "log"].segs())
        .and_then(Value::as_arr)
        .ok_or_else(|| anyhow!("no meta.log"))?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for t in log {
        *seen.entry(t.to_string()).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    ensure!(dups.is_empty(), "applied twice: {dups:?}");
    ensure!(
        log.len() as u64 == CLIENTS as u64 * EDITS,
        "{} tokens, want {}",
        log.len(),
        CLIENTS as u64 * EDITS
    );
    ensure!(
        proxy.cuts() > 5,
        "the proxy cut only {} times",
        proxy.cuts()
    );
    ensure!(
        server_errors.load(Ordering::Relaxed) == 0,
        "the server refused edits"
    );
    let merged = server.metric("montage_range_merged_total").await?;
    ensure!(merged > 0, "no edit reached a slow client inside a range");
    eprintln!(
        "fault run: {:?}, {} edits, {} versions, {} cuts, {} duplicated frames, {} connections, {merged} edits merged into ranges",
        started.elapsed(),
        CLIENTS as u64 * EDITS,
        handles[0].version(),
        proxy.cuts(),
        proxy.dups(),
        proxy.accepted()
    );
    for c in &clients {
        c.close().await;
    }
    proxy.stop();
    Ok(())
}

fn set(p: montage_client::Path, v: impl Into<Value>) -> Component {
    Component::set(p, v)
}

fn num_at(d: &Value, p: &montage_client::Path) -> Option<f64> {
    d.at(p.segs()).and_then(Value::as_f64)
}

async fn offline_edits_survive_a_restart_and_merge_with_concurrent_work(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    let l0 = path!["canvas", "layers", 0];
    let l1 = path!["canvas", "layers", 1];
    let init = Op::new(vec![
        set(path!["title"], Value::str("Hello")),
        Component::ins(l0.clone(), layer("L0")),
        Component::ins(l1.clone(), layer("L1")),
    ]);
    create_session(&server, "off", "ann", &["ann", "bob"], init).await?;
    let proxy = Proxy::start(&server.addr, 7).await?;
    let file = dir.path().join("ann-offline.json");
    let a = Client::start(sdk_options(&proxy.ws_url(), "ann").offline_file(&file))?;
    let ha = a.join("off").await?;
    let b = sdk(&format!("ws://{}/v1/ws", server.addr), "bob").await?;
    let hb = b.join("off").await?;
    assert_converged(&server, "off", "ann", &[&ha, &hb]).await?;

    // Ann goes offline and edits the same layers and title as Bob.
    proxy.set_online(false);
    let len = title_of(&ha.state()).chars().count();
    ha.edit(Op::new(vec![Component::text_insert(
        path!["title"],
        len,
        " world",
    )]))?;
    ha.edit(Op::new(vec![set(l0.child("x"), 10.0)]))?;
    ha.edit(Op::new(vec![Component::Rotate {
        path: l1.clone(),
        by: 90.0,
    }]))?;
    ha.edit(Op::new(vec![set(l0.child("opacity"), 0.5)]))?;
    ha.edit(Op::new(vec![Component::mov(l1.clone(), 0)]))?; // L1 now first
    ensure!(ha.pending() > 0, "offline edits are queued");
    // The app quits while offline; its edits are in the file.
    a.close().await;
    drop(ha);

    hb.edit(Op::new(vec![Component::text_insert(
        path!["title"],
        0,
        "Oh, ",
    )]))?;
    hb.edit(Op::new(vec![set(l0.child("y"), 20.0)]))?;
    hb.edit(Op::new(vec![set(l1.child("x"), 5.0)]))?;
    hb.edit(Op::new(vec![set(l0.child("opacity"), 0.8)]))?;
    hb.sync(SDK_SYNC).await?;

    // Restarted app, still offline: the replica and queue come back from the file.
    let a2 = Client::start(sdk_options(&proxy.ws_url(), "ann").offline_file(&file))?;
    let ha2 = a2.join_timeout("off", Duration::from_secs(5)).await?;
    ensure!(
        title_of(&ha2.state()) == "Hello world",
        "restored replica: {}",
        ha2.state().to_json()
    );
    ensure!(ha2.pending() > 0, "restored queue");
    proxy.set_online(true);
    let s = assert_converged(&server, "off", "ann", &[&ha2, &hb]).await?;
    ensure!(title_of(&s) == "Oh, Hello world", "title {}", title_of(&s));
    // L1 was moved to the front by Ann; paths followed it.
    let (n0, n1) = (path!["canvas", "layers", 0], path!["canvas", "layers", 1]);
    ensure!(
        s.at(n0.child("id").segs()) == Some(&Value::str("L1")),
        "{}",
        s.to_json()
    );
    ensure!(num_at(&s, &n0.child("rotation")) == Some(90.0));
    ensure!(num_at(&s, &n0.child("x")) == Some(5.0));
    ensure!(num_at(&s, &n1.child("x")) == Some(10.0));
    ensure!(num_at(&s, &n1.child("y")) == Some(20.0));
    // Same path set twice: the later version (Ann's, sent after reconnecting) wins.
    ensure!(num_at(&s, &n1.child("opacity")) == Some(0.5));
    a2.close().await;
    b.close().await;
    Ok(())
}

async fn undo_twice_redo_once_keeps_the_other_users_work_and_works_after_reconnect(
    b: Backend,
) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    create_session(&server, "undo", "ann", &["ann", "bob"], Op::new(vec![])).await?;
    let proxy = Proxy::start(&server.addr, 11).await?;
    let a = sdk(&proxy.ws_url(), "ann").await?;
    let ha = a.join("undo").await?;
    let b = sdk(&format!("ws://{}/v1/ws", server.addr), "bob").await?;
    let hb = b.join("undo").await?;
    let l0 = path!["canvas", "layers", 0];
    let both = [&ha, &hb];
    let step = |h: &SessionHandle, c: Vec<Component>| h.edit(Op::new(c));

    step(&ha, vec![Component::ins(l0.clone(), layer("A"))])?;
    assert_converged(&server, "undo", "ann", &both).await?;
    step(&hb, vec![Component::text_insert(path!["title"], 0, "B1")])?;
    assert_converged(&server, "undo", "ann", &both).await?;
    step(&ha, vec![Component::text_insert(path!["title"], 2, "A1")])?;
    assert_converged(&server, "undo", "ann", &both).await?;
    step(&hb, vec![set(l0.child("x"), 50.0)])?;
    assert_converged(&server, "undo", "ann", &both).await?;
    step(
        &ha,
        vec![Component::Rotate {
            path: l0.clone(),
            by: 90.0,
        }],
    )?;
    // Bob adjusts concurrently with Ann's rotation (no sync in between).
    step(
        &hb,
        vec![Component::Adjust {
            path: l0.clone(),
            param: "brightness".into(),
            value: 0.25,
        }],
    )?;
    assert_converged(&server, "undo", "ann", &both).await?;

    ensure!(ha.undo()?, "undo rotate");
    ensure!(ha.undo()?, "undo A1");
    ensure!(ha.redo()?, "redo A1");
    let s = assert_converged(&server, "undo", "ann", &both).await?;
    ensure!(title_of(&s) == "B1A1", "title {}", title_of(&s));
    ensure!(num_at(&s, &l0.child("rotation")).unwrap_or(0.0) == 0.0);
    ensure!(num_at(&s, &l0.child("x")) == Some(50.0), "Bob's x kept");
    ensure!(
        num_at(&s, &l0.child("adjust").child("brightness")) == Some(0.25),
        "Bob's adjustment kept: {}",
        s.to_json()
    );

    // Ann drops; Bob types meanwhile; after reconnecting Ann's undo still reverts only hers.
    proxy.cut_all();
    step(&hb, vec![Component::text_insert(path!["title"], 0, ">")])?;
    hb.sync(SDK_SYNC).await?;
    ensure!(ha.undo()?, "undo A1 again");
    let s = assert_converged(&server, "undo", "ann", &both).await?;
    ensure!(title_of(&s) == ">B1", "title {}", title_of(&s));
    ensure!(ha.undo()?, "undo the layer insert");
    let s = assert_converged(&server, "undo", "ann", &both).await?;
    ensure!(layers_of(&s) == 0, "layer removed: {}", s.to_json());
    ensure!(title_of(&s) == ">B1");
    a.close().await;
    b.close().await;
    Ok(())
}

async fn a_viewers_edit_is_refused_and_the_replica_resets(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    create_session(&server, "ro", "ann", &[], Op::new(vec![])).await?;
    let c = sdk(&format!("ws://{}/v1/ws", server.addr), "val").await?;
    let h = c.join("ro").await?;
    ensure!(h.role() == Some(Role::Viewer));
    let mut ev = h.events();
    h.edit(Op::new(vec![set(path!["title"], Value::str("nope"))]))?;
    loop {
        match tokio::time::timeout(SDK_SYNC, ev.next()).await? {
            Some(montage_client::Event::Error { code, .. }) => {
                ensure!(code == montage_client::ErrorCode::Forbidden);
                break;
            }
            Some(_) => {}
            None => bail!("events ended"),
        }
    }
    h.sync(SDK_SYNC).await?;
    ensure!(
        title_of(&h.state()).is_empty(),
        "rolled back from the server"
    );
    c.close().await;
    Ok(())
}

/// More versions missed than the server sends in `joined` (10,000): it answers with a
/// snapshot, and the SDK fetches the missed edits over HTTP to rebase the offline edit.
async fn offline_past_the_servers_catch_up_limit_still_reconciles(b: Backend) -> Result<()> {
    offline_past_the_catch_up_limit(b, "long", 10_050).await
}

/// The same over HTTP for a session id that is not a plain path segment: the SDK escapes it in
/// `/v1/sessions/{id}/ops` and the server decodes it back.
async fn catch_up_over_http_escapes_the_session_id(b: Backend) -> Result<()> {
    offline_past_the_catch_up_limit(b, "a/b?c #%\u{e9}", 10_001).await
}

/// Ann edits offline while Bob makes `n` edits to `session`; back online, Ann's SDK has to
/// fetch them over HTTP to rebase her edit.
async fn offline_past_the_catch_up_limit(b: Backend, session: &str, n: u64) -> Result<()> {
    use futures_util::{SinkExt, StreamExt};
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    let init = Op::new(vec![set(path!["meta", "n"], 0.0)]);
    create_session(&server, session, "ann", &["ann", "bob"], init).await?;
    let proxy = Proxy::start(&server.addr, 3).await?;
    let a = sdk(&proxy.ws_url(), "ann").await?;
    let ha = a.join(session).await?;
    proxy.set_online(false);
    ha.edit(Op::new(vec![Component::text_insert(
        path!["title"],
        0,
        "offline",
    )]))?;

    // Bob makes n edits, pipelined: each based on the version the previous one gets.
    let mut bob = server.connect("bob").await?;
    let joined = bob.join(session, "bob-raw").await?;
    let v0 = joined["version"].as_u64().context("version")?;
    let (mut tx, mut rx) = bob.ws.split();
    // At most 256 unacknowledged, well under the server's 1,024-frame send queue, so a
    // reader slowed down by the other tests is never dropped as a slow reader.
    let window = Arc::new(tokio::sync::Semaphore::new(256));
    let w2 = window.clone();
    let reader = tokio::spawn(async move {
        let mut acks = 0;
        while acks < n {
            match rx.next().await {
                Some(Ok(m)) if m.is_text() && m.to_text()?.contains("\"ack\"") => {
                    acks += 1;
                    w2.add_permits(1);
                }
                Some(Ok(_)) => {}
                other => bail!("bob's socket: {other:?}"),
            }
        }
        Ok(())
    });
    for i in 0..n {
        window.acquire().await?.forget();
        let m = json!({"type":"op","session":session,"base":v0 + i,"seq":i + 1,
            "ops":[{"op":"add","path":["meta","n"],"value":1}]});
        tx.send(tokio_tungstenite::tungstenite::Message::text(m.to_string()))
            .await?;
    }
    tokio::time::timeout(SDK_SYNC, reader).await???;

    proxy.set_online(true);
    let s = assert_converged(&server, session, "ann", &[&ha]).await?;
    ensure!(title_of(&s) == "offline", "the offline edit survived");
    ensure!(num_at(&s, &path!["meta", "n"]) == Some(n as f64));
    a.close().await;
    Ok(())
}

/// A dead URL first in the list, then a server that goes away: the SDK moves along the list
/// and keeps its edits.
async fn fails_over_along_the_url_list(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    create_session(&server, "fo", "ann", &[], Op::new(vec![])).await?;
    let dead = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        format!("ws://{}/v1/ws", l.local_addr()?)
    };
    let (p1, p2) = (
        Proxy::start(&server.addr, 1).await?,
        Proxy::start(&server.addr, 2).await?,
    );
    let opts = sdk_options(&dead, "ann").urls(vec![dead.clone(), p1.ws_url(), p2.ws_url()]);
    let a = Client::start(opts)?;
    let h = a.join("fo").await?;
    ensure!(p1.accepted() == 1 && p2.accepted() == 0);
    h.edit(Op::new(vec![set(path!["title"], Value::str("one"))]))?;
    h.sync(SDK_SYNC).await?;
    p1.set_online(false);
    h.edit(Op::new(vec![set(path!["title"], Value::str("two"))]))?;
    let s = assert_converged(&server, "fo", "ann", &[&h]).await?;
    ensure!(title_of(&s) == "two");
    ensure!(p2.accepted() >= 1, "moved on to the third URL");
    a.close().await;
    Ok(())
}

/// docs/PROTOCOL.md "Limits": an edit the server finds too costly to rebase is refused with `conflict` and the
/// head version; the SDK rebases it on its replica and sends it again, so nothing typed is lost.
async fn an_edit_past_the_transform_budget_is_rebased_by_the_sdk(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    // Ann's 150-component edits behind Bob's two 1-component edits pass the budget (300 pairs);
    // Bob's edit behind one of Ann's stays within it (150).
    let mut flags = OPEN_LIMITS.to_vec();
    flags.extend(["--max-transform-work", "200"]);
    let server = Server::start(b, dir.path(), &flags).await?;
    create_session(&server, "budget", "ann", &["ann", "bob"], Op::new(vec![])).await?;
    // Ann's frames take up to 200 ms each way, so Bob's edits usually land before hers.
    let proxy = Proxy::start(&server.addr, 11).await?;
    proxy.set_faults(Faults {
        max_delay_ms: 200,
        ..Faults::default()
    });
    let a = Client::start(sdk_options(&proxy.ws_url(), "ann"))?;
    let ha = a.join("budget").await?;
    let conflicts = Arc::new(AtomicU64::new(0));
    let mut events = ha.events();
    let counter = conflicts.clone();
    let counting = tokio::spawn(async move {
        while let Some(e) = events.next().await {
            if matches!(
                e,
                Event::Error {
                    code: ErrorCode::Conflict,
                    ..
                }
            ) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let mut bob = server.connect("bob").await?;
    bob.join("budget", "b").await?;
    let (rounds, width) = (8u64, 150u64);
    let mut seq = 0;
    for round in 0..rounds {
        let head = server.get_json(&session_path("budget"), "bob").await?;
        let mut version = head["version"].as_u64().context("version")?;
        let comps = (0..width)
            .map(|i| set(path!["meta", format!("a{round}_{i}")], i as f64))
            .collect();
        ha.edit(Op::new(comps))?;
        for k in 0..2 {
            seq += 1;
            let ops = json!([{"op":"set","path":["meta",format!("b{round}_{k}")],"value":k}]);
            version = edit_skipping_broadcasts(&mut bob, "budget", version, seq, ops).await?;
        }
        ha.sync(SDK_SYNC)
            .await
            .with_context(|| format!("round {round}"))?;
    }
    let s = assert_converged(&server, "budget", "ann", &[&ha]).await?;
    counting.abort();
    let meta = s.get("meta").and_then(Value::as_obj).context("meta")?;
    ensure!(
        meta.len() as u64 == rounds * (width + 2),
        "{} keys in meta, want {}",
        meta.len(),
        rounds * (width + 2)
    );
    let n = conflicts.load(Ordering::Relaxed);
    ensure!(
        n > 0,
        "no edit met the transform budget: the test proved nothing"
    );
    eprintln!("{n} of {rounds} edits came back as conflict and were rebased by the SDK");
    a.close().await;
    Ok(())
}

/// Sends an edit and waits for its ack, past the broadcasts of others' edits.
async fn edit_skipping_broadcasts(
    c: &mut montage_testkit::Client,
    session: &str,
    base: u64,
    seq: u64,
    ops: serde_json::Value,
) -> Result<u64> {
    c.op(session, base, seq, ops).await?;
    loop {
        let v = c.recv().await?;
        match v["type"].as_str() {
            Some("ack") if v["seq"] == seq => {
                return v["version"].as_u64().context("ack without version");
            }
            Some("error") => bail!("edit {seq} refused: {v}"),
            _ => {}
        }
    }
}

/// Restore through the SDK (DESIGN §9.3): a past state from `Api::session_at` becomes one edit of
/// mine that the other user gets as one op and that `undo` takes back; a partial restore brings
/// back one layer only.
async fn a_past_version_is_restored_as_one_undoable_edit(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    create_session(&server, "past", "ann", &["ann", "bob"], Op::new(vec![])).await?;
    let url = format!("ws://{}/v1/ws", server.addr);
    let a = sdk(&url, "ann").await?;
    let ha = a.join("past").await?;
    let bob = sdk(&url, "bob").await?;
    let hb = bob.join("past").await?;
    let both = [&ha, &hb];
    let l0 = path!["canvas", "layers", 0];
    ha.edit(Op::new(vec![Component::ins(l0.clone(), layer("A"))]))?;
    ha.edit(Op::new(vec![Component::text_insert(
        path!["title"],
        0,
        "one",
    )]))?;
    let v2 = assert_converged(&server, "past", "ann", &both).await?;
    hb.edit(Op::new(vec![set(l0.child("x"), 50.0)]))?;
    hb.edit(Op::new(vec![Component::text_insert(
        path!["title"],
        3,
        " two",
    )]))?;
    assert_converged(&server, "past", "ann", &both).await?;

    let api = Api::new(&url, token("ann"))?;
    let old = Value::from_json(&api.session_at("past", 2).await?.state);
    ensure!(old == v2, "the state at version 2: {}", old.to_json());
    // Only the layer: its x goes back, the title stays.
    ensure!(
        ha.restore_to(&old, Some("A"))?,
        "a partial restore changed nothing"
    );
    let s = assert_converged(&server, "past", "ann", &both).await?;
    ensure!(
        num_at(&s, &l0.child("x")) == num_at(&v2, &l0.child("x")),
        "{}",
        s.to_json()
    );
    ensure!(title_of(&s) == "one two", "title {}", title_of(&s));
    // The whole document, then undone.
    ensure!(ha.restore_to(&old, None)?, "a restore changed nothing");
    let s = assert_converged(&server, "past", "ann", &both).await?;
    ensure!(s == v2, "not restored: {}", s.to_json());
    ensure!(ha.undo()?, "undo the restore");
    let s = assert_converged(&server, "past", "ann", &both).await?;
    ensure!(title_of(&s) == "one two", "undo: {}", s.to_json());
    ensure!(!ha.restore_to(&s, None)?, "restoring the head is no edit");
    a.close().await;
    bob.close().await;
    Ok(())
}

/// Times in sixteenths of a second: dyadic, so every site computes the same floats.
fn sixteenths(v: &Value, k: &str) -> i64 {
    v.get(k)
        .and_then(Value::as_f64)
        .map_or(0, |t| (t * 16.0).round() as i64)
}

/// A random trim or split of a random clip of track 0, valid at `d`: every clip it leaves is at
/// least a quarter second long.
fn random_clip_edit(d: &Value, rng: &mut Rng, who: usize, n: u64) -> Option<Op> {
    let track = path!["timeline", "tracks", 0, "clips"];
    let clips = d.at(track.segs()).and_then(Value::as_arr)?;
    if clips.is_empty() {
        return None;
    }
    let i = rng.below(clips.len() as u64) as usize;
    let c = &clips[i];
    let (start, t_in, t_out) = (
        sixteenths(c, "start"),
        sixteenths(c, "in"),
        sixteenths(c, "out"),
    );
    let len = t_out - t_in;
    let at = |x: i64| x as f64 / 16.0;
    let path = track.child(i);
    let comp = match rng.below(3) {
        0 if len > 4 => {
            let k = 1 + rng.below((len - 4) as u64) as i64;
            Component::Trim {
                path,
                start: Some(at(start + k)),
                r#in: Some(at(t_in + k)),
                out: None,
            }
        }
        1 if len >= 8 && clips.len() < 40 => {
            // Both halves keep at least a quarter second.
            let cut = 4 + rng.below((len - 7) as u64) as i64;
            Component::Split {
                path,
                at: at(start + cut),
                media: at(t_in + cut),
                id: format!("c{who}-{n}"),
            }
        }
        _ => {
            // Shorten (keeping a quarter second) or lengthen the tail.
            let out = if len > 4 && rng.below(2) == 0 {
                t_out - 1 - rng.below((len - 4) as u64) as i64
            } else {
                t_out + 1 + rng.below(16) as i64
            };
            Component::Trim {
                path,
                start: None,
                r#in: None,
                out: Some(at(out)),
            }
        }
    };
    Some(Op::new(vec![comp]))
}

/// Three editors trim and split the clips of one track at once, each edit valid where it was
/// made, through a proxy that delays frames: the replicas converge, and no clip ends up
/// playing less than `MIN_CLIP_LENGTH` (docs/OT.md §13 Q4: concurrent trims and cuts never make
/// a clip vanish).
async fn concurrent_trims_and_splits_never_leave_an_empty_clip(b: Backend) -> Result<()> {
    const CLIENTS: usize = 3;
    const EDITS: u64 = 150;
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    let users: Vec<String> = (0..CLIENTS).map(|i| format!("u{i}")).collect();
    let editors: Vec<&str> = users.iter().map(String::as_str).collect();
    let clips: Vec<serde_json::Value> = (0..4)
        .map(|i| json!({"id": format!("k{i}"), "asset": "a", "start": i * 5, "in": 0, "out": 4}))
        .collect();
    let init = Op::new(vec![Component::set(
        path!["timeline", "tracks"],
        Value::from_json(&json!([{"id": "v", "kind": "video", "clips": clips}])),
    )]);
    create_session(&server, "cuts", "owner", &editors, init).await?;
    let proxy = Proxy::start(&server.addr, 0xc075).await?;
    proxy.set_faults(Faults {
        cut_one_in: 0,
        max_delay_ms: 4,
        dup_one_in: 0,
    });
    let mut handles = Vec::new();
    let mut clients = Vec::new();
    for u in &users {
        let c = sdk(&proxy.ws_url(), u).await?;
        handles.push(c.join("cuts").await?);
        clients.push(c);
    }
    let mut tasks = Vec::new();
    for (who, h) in handles.iter().cloned().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x5eed_c0de ^ ((who as u64 + 1) * 0x9e37_79b9));
            for n in 0..EDITS {
                h.edit_with(|d| random_clip_edit(d, &mut rng, who, n))
                    .map_err(|e| anyhow!("client {who} edit {n} refused locally: {e}"))?;
                tokio::time::sleep(Duration::from_micros(rng.below(6000))).await;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    proxy.set_faults(Faults::default());
    let hs: Vec<&SessionHandle> = handles.iter().collect();
    let state = assert_converged(&server, "cuts", "owner", &hs).await?;
    let clips = state
        .at(path!["timeline", "tracks", 0, "clips"].segs())
        .and_then(Value::as_arr)
        .context("no clips")?;
    ensure!(clips.len() > 4, "nothing was split: {}", state.to_json());
    for c in clips {
        let len = sixteenths(c, "out") - sixteenths(c, "in");
        ensure!(
            len >= 1,
            "a clip plays {len}/16 s (< MIN_CLIP_LENGTH): {}",
            c.to_json()
        );
    }
    Ok(())
}

/// `Client::report_download` (#18): slow timed downloads move the connection to poor (the
/// server answers the hint with `tier`), fast ones back to excellent, and after the link is cut
/// the new socket is told the estimate at once: a fresh `tier` announcement with no download.
async fn timed_downloads_move_the_tier_and_a_new_socket_hears_them(b: Backend) -> Result<()> {
    use montage_client::Tier;
    use tokio::sync::watch;
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let proxy = Proxy::start(&server.addr, 7).await?;
    let ann = sdk(&proxy.ws_url(), "ann").await?;
    let _s = ann.join("s").await?;
    let mut tier = ann.watch_tier();
    // The next announcement (after those already seen) that says `want`.
    async fn announced(tier: &mut watch::Receiver<Option<Tier>>, want: Tier) -> Result<()> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                tier.changed().await?;
                if *tier.borrow_and_update() == Some(want) {
                    return Ok::<_, anyhow::Error>(());
                }
            }
        })
        .await
        .map_err(|_| anyhow!("never told {want:?}"))?
    }
    // 300 kB previews taking 1.2 s each: 2 Mbit/s.
    assert_eq!(
        ann.report_download(300_000, Duration::from_millis(1_200)),
        Some(2.0)
    );
    announced(&mut tier, Tier::Poor).await?;
    // Then fast ones: 8 MB in 50 ms.
    for _ in 0..4 {
        ann.report_download(8_000_000, Duration::from_millis(50));
    }
    ensure!(ann.downlink_mbps().is_some_and(|m| m > 50.0));
    announced(&mut tier, Tier::Excellent).await?;
    // Slow again; then the socket drops, and the new one hears the estimate.
    for _ in 0..12 {
        ann.report_download(300_000, Duration::from_millis(1_200));
    }
    announced(&mut tier, Tier::Poor).await?;
    proxy.cut_all();
    announced(&mut tier, Tier::Poor).await?;
    Ok(())
}

/// A state past `--inline-state-bytes` reaches the SDK as a download (docs/PROTOCOL.md "Large
/// states"). Through a proxy that cuts connections mid-body every few hundred KB, each cut
/// resumes where it stopped (progress never goes back) — starting over would rarely get
/// through — and the session then goes on like any other.
async fn a_large_state_downloads_in_pieces_that_resume_through_cuts(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    // Documents up to 1.1 MB: an edit past that is refused, which resets the replica.
    let flags = ["--inline-state-bytes", "8192", "--max-doc-bytes", "1100000"];
    let server = Server::start(b, dir.path(), &flags).await?;
    // About 1 MB of state.
    create_session(&server, "big", "ann", &["bob"], Op::default()).await?;
    let mut ann = server.connect("ann").await?;
    ann.join("big", "ann").await?;
    let mut v = 0;
    for i in 0..10u64 {
        let value = format!("{i}{}", "abcdefgh".repeat(12_500));
        let ops = json!([{"op":"set","path":["meta",format!("n{i}")],"value":value}]);
        v = ann.edit("big", v, i + 1, ops).await?;
    }
    let proxy = Proxy::start(&server.addr, 11).await?;
    let bob = sdk(&proxy.ws_url(), "bob").await?;
    let mut events = bob.events();
    // Per 4 KB chunk, 1 in 48 is cut: ~5 cuts in the state, almost never none in 1 MB.
    proxy.set_faults(Faults {
        cut_one_in: 48,
        max_delay_ms: 1,
        dup_one_in: 0,
    });
    let h = bob.join("big").await?;
    proxy.set_faults(Faults::default());
    let cuts = proxy.cuts();
    ensure!(h.version() == v, "joined at {} not {v}", h.version());

    let mut progress = Vec::new();
    while let Some(e) = events.try_next() {
        if let Event::Loading {
            session,
            received,
            total,
        } = e
        {
            ensure!(session == "big", "{session}");
            progress.push((received, total));
        }
    }
    let total = progress.last().map(|p| p.1).context("no Loading events")?;
    ensure!(total > 1_000_000, "{total} bytes");
    ensure!(
        progress.last() == Some(&(total, total)),
        "progress ended at {:?}",
        progress.last()
    );
    ensure!(
        progress.windows(2).all(|w| w[0].0 <= w[1].0),
        "a download started over: {progress:?}"
    );
    ensure!(cuts >= 2, "only {cuts} cuts: nothing to resume");

    // The session goes on: both ways.
    ann.edit(
        "big",
        v,
        11,
        json!([{"op":"set","path":["title"],"value":"after"}]),
    )
    .await?;
    h.edit(Op::new(vec![set(path!["meta", "bob"], 1.0)]))?;
    let s = assert_converged(&server, "big", "ann", &[&h]).await?;
    ensure!(title_of(&s) == "after", "{}", s.to_json());

    // An edit the server refuses (the document would pass its limit) resets the replica: the
    // state is downloaded again and the session goes on (it used to leave and join again on
    // every frame while the download ran, for ever).
    let mut sev = h.events();
    h.edit(Op::new(vec![set(
        path!["meta", "huge"],
        Value::str("h".repeat(200_000)),
    )]))?;
    let refused = tokio::time::timeout(SDK_SYNC, async {
        while let Some(e) = sev.next().await {
            if let Event::EditRefused { code, .. } = e {
                return Some(code);
            }
        }
        None
    })
    .await?;
    ensure!(refused == Some(ErrorCode::TooLarge), "{refused:?}");
    // Live again once the state is back (edits typed during a reset are dropped with it).
    h.sync(SDK_SYNC)
        .await
        .context("live again after the reset")?;
    h.edit(Op::new(vec![set(path!["meta", "bob"], 2.0)]))?;
    let s = assert_converged(&server, "big", "ann", &[&h]).await?;
    ensure!(
        num_at(&s, &path!["meta", "bob"]) == Some(2.0)
            && s.get("meta").and_then(|m| m.get("huge")).is_none(),
        "{}",
        s.to_json()
            .to_string()
            .chars()
            .take(300)
            .collect::<String>()
    );
    bob.close().await;
    Ok(())
}
