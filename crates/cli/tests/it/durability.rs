//! Durability: kill -9 under load (edits, comments, suggestions, a webhook in flight), graceful
//! shutdown, unload and reload.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::harness::webhooks::{Answer, HOOK_SECRET, Receiver};
use super::harness::*;

backend_tests!(
    kill_9_under_load_keeps_every_acked_edit,
    sigterm_closes_sockets_with_1001_and_keeps_state,
    idle_sessions_unload_and_reload_from_snapshot_and_log,
    comments_and_suggestions_survive_a_restart,
    killed_server_delivers_after_restart,
);

fn meta_set(key: &str, value: u64) -> serde_json::Value {
    json!([{"op":"set","path":["meta",key],"value":value}])
}

async fn kill_9_under_load_keeps_every_acked_edit(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut server = Server::start_on(
        b,
        dir.path(),
        &["--edits-per-sec", "100000", "--messages-per-sec", "100000"],
    )?;
    let mut owner = server.connect("w0").await?;
    owner.join("crash", "c0").await?;
    for u in 1..3 {
        owner
            .send(
                json!({"type":"set_role","session":"crash","user":format!("w{u}"),"role":"editor"}),
            )
            .await?;
        owner.recv_type("role_changed").await?;
    }
    // (user, seq) -> acked version, shared by the writers.
    let acked: Arc<Mutex<HashMap<(u64, u64), u64>>> = Arc::default();
    let mut tasks = Vec::new();
    for u in 0..3u64 {
        let mut c = server.connect(&format!("w{u}")).await?;
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            c.join("crash", &format!("c{u}")).await?;
            let mut seq = 0u64;
            let mut in_flight = 0;
            // Pipeline up to 16 edits per writer, all at the stale base 0.
            loop {
                while in_flight < 16 {
                    seq += 1;
                    c.op("crash", 0, seq, meta_set(&format!("w{u}-{seq}"), seq))
                        .await?;
                    in_flight += 1;
                }
                let m = c.recv().await?;
                if m["type"] == "ack" {
                    in_flight -= 1;
                    let (s, v) = (
                        m["seq"].as_u64().unwrap_or(0),
                        m["version"].as_u64().unwrap_or(0),
                    );
                    acked
                        .lock()
                        .map_err(|_| anyhow::anyhow!("poisoned"))?
                        .insert((u, s), v);
                } else if m["type"] == "error" {
                    bail!("edit refused: {m}");
                }
            }
            #[allow(unreachable_code)]
            Ok::<_, anyhow::Error>(())
        }));
    }
    // Let a few hundred edits through, then pull the plug mid-stream.
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if acked.lock().map(|a| a.len()).unwrap_or(0) >= 400 {
            break;
        }
    }
    server.kill9();
    for t in tasks {
        let _ = t.await; // each writer ends with a socket error
    }
    let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
    assert!(
        acked.len() >= 100,
        "too few acks before the kill: {}",
        acked.len()
    );

    let server = Server::start_on(b, dir.path(), &[])?;
    let ops = all_ops(&server.addr, "crash", "w0").await?;
    for ((u, seq), version) in &acked {
        let e = ops
            .get(*version as usize - 1)
            .unwrap_or(&serde_json::Value::Null);
        assert_eq!(e["version"], *version);
        assert_eq!(e["user"], format!("w{u}"));
        assert_eq!(
            e["ops"],
            meta_set(&format!("w{u}-{seq}"), *seq),
            "version {version}"
        );
    }
    let st = server.get_json("/v1/sessions/crash", "w0").await?;
    assert_eq!(st["version"].as_u64(), Some(ops.len() as u64));
    assert_eq!(replay(&ops)?, st["state"]);
    // The session goes on from where the log ends; a resend of an acked edit is recognised.
    let mut c = server.connect("w0").await?;
    let j = c.join("crash", "c0").await?;
    assert_eq!(j["version"].as_u64(), Some(ops.len() as u64));
    let (&(_, seq), &version) = acked
        .iter()
        .find(|((u, _), _)| *u == 0)
        .expect("writer 0 got acks");
    assert_eq!(
        c.edit("crash", 0, seq, meta_set(&format!("w0-{seq}"), seq))
            .await?,
        version
    );
    assert_eq!(
        c.edit("crash", 0, 1_000_000, meta_set("after", 1)).await?,
        ops.len() as u64 + 1
    );
    Ok(())
}

async fn sigterm_closes_sockets_with_1001_and_keeps_state(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut server = Server::start_on(b, dir.path(), &[])?;
    let mut c = server.connect("a").await?;
    c.join("s", "c").await?;
    for seq in 1..=5 {
        c.edit("s", seq - 1, seq, meta_set("n", seq)).await?;
    }
    server.sigterm()?;
    assert_eq!(c.recv_close().await?.0, 1001);
    let status = tokio::task::spawn_blocking(move || server.child.wait()).await??;
    assert!(status.success(), "exit status {status}");

    let server = Server::start_on(b, dir.path(), &[])?;
    let st = server.get_json("/v1/sessions/s", "a").await?;
    assert_eq!(
        (st["version"].clone(), st["state"]["meta"]["n"].clone()),
        (json!(5), json!(5))
    );
    Ok(())
}

async fn idle_sessions_unload_and_reload_from_snapshot_and_log(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start_on(b, dir.path(), &["--idle-unload", "0"])?;
    let mut c = server.connect("a").await?;
    c.join("s", "c").await?;
    for seq in 1..=3 {
        c.edit("s", seq - 1, seq, meta_set("n", seq)).await?;
    }
    c.send(json!({"type":"leave","session":"s"})).await?;
    // Unloading writes a snapshot; wait until the gauge says it is gone.
    let mut unloaded = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (_, m) = server.get("/metrics", None).await?;
        if m.contains("montage_sessions_loaded 0") {
            unloaded = true;
            break;
        }
    }
    assert!(unloaded, "session never unloaded");
    let j = c.join("s", "c").await?;
    assert_eq!(j["version"], 3);
    assert_eq!(j["state"]["meta"]["n"], 3);
    assert_eq!(c.edit("s", 3, 4, meta_set("n", 4)).await?, 4);
    // A read of a missing session leaves nothing loaded behind.
    assert_eq!(server.get("/v1/sessions/ghost", Some("a")).await?.0, 404);
    Ok(())
}

/// Comments and suggestions are durable before they are broadcast: kill -9 loses none.
async fn comments_and_suggestions_survive_a_restart(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut server = Server::start_on(b, dir.path(), &[])?;
    let mut alice = server.connect("alice").await?;
    alice.join("d", "a").await?;
    alice
        .send(json!({"type":"comment","session":"d","comment":{"content":"keep me","annotations":[{"time":{"start":1,"end":2},"drawing":{"stroke":[[1,2],[3,4]]}}]}}))
        .await?;
    let c = next_of(&mut alice, "comment_added").await?["comment"].clone();
    let id = c["id"].as_str().unwrap_or_default().to_owned();
    alice
        .send(json!({"type":"comment_react","session":"d","id":id,"emoji":"🔥","on":true}))
        .await?;
    next_of(&mut alice, "comment_updated").await?;
    alice
        .send(json!({"type":"suggest","session":"d","base":0,"ops":[{"op":"set","path":["title"],"value":"Later"}],"note":"n"}))
        .await?;
    let sug = next_of(&mut alice, "suggestion_added").await?["suggestion"].clone();
    let before = server.get_json("/v1/sessions/d/comments", "alice").await?;
    // kill -9: what was broadcast was durable.
    server.kill9();
    drop(alice);
    let server = Server::start_on(b, dir.path(), &[])?;
    let after = server.get_json("/v1/sessions/d/comments", "alice").await?;
    assert_eq!(after, before);
    assert_eq!(after["comments"][0]["reactions"], json!({"🔥":["alice"]}));
    let sugs = server
        .get_json("/v1/sessions/d/suggestions", "alice")
        .await?;
    assert_eq!(sugs["suggestions"][0], sug);
    // And the reloaded session keeps working on them.
    let mut alice = server.connect("alice").await?;
    alice.join("d", "a2").await?;
    alice
        .send(json!({"type":"comment_react","session":"d","id":id,"emoji":"🔥","on":false}))
        .await?;
    let c = next_of(&mut alice, "comment_updated").await?["comment"].clone();
    assert_eq!(c["reactions"], json!({}));
    alice
        .send(json!({"type":"suggestion_accept","session":"d","id":sug["id"]}))
        .await?;
    let s = next_of(&mut alice, "suggestion_updated").await?["suggestion"].clone();
    assert_eq!(s["status"], "accepted");
    Ok(())
}

/// A share whose delivery was in flight when the server died is delivered after the restart.
async fn killed_server_delivers_after_restart(b: Backend) -> Result<()> {
    let mut rx = Receiver::start(&[Answer::Hang]).await?;
    let dir = tempfile::tempdir()?;
    let mut flags = rx.flags();
    flags.extend(["--webhook-timeout-ms".into(), "60000".into()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut server = Server::start_on(b, dir.path(), &flags)?;
    let mut alice = server.connect("alice").await?;
    alice.join("reel", "alice-c").await?;
    let r = http_client()?
        .post(format!("http://{}/v1/sessions/reel/share", server.addr))
        .bearer_auth(token("alice"))
        .body(
            json!({"recipients":[{"type":"social_post","network":"allat","message":"new reel"}]})
                .to_string(),
        )
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 202);
    let body: serde_json::Value = serde_json::from_str(&r.text().await?)?;
    let id = body["tasks"][0]["id"].as_str().context("id")?.to_owned();
    // The first attempt is in flight (the receiver holds it open) when the server dies.
    let first = rx.next().await?;
    assert_eq!(first.delivery, id);
    let t = server.get_json(&format!("/v1/tasks/{id}"), "alice").await?;
    assert_eq!(t["state"], "running");
    server.kill9();

    let server = Server::start_on(b, dir.path(), &flags)?;
    let second = rx.next().await?;
    assert_eq!(
        (second.delivery.as_str(), &second.body),
        (id.as_str(), &first.body)
    );
    assert!(second.verify(HOOK_SECRET).is_ok());
    // The delivery was acknowledged; the record follows right after the answer.
    let mut t = server.get_json(&format!("/v1/tasks/{id}"), "alice").await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while t["state"] != "succeeded" && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        t = server.get_json(&format!("/v1/tasks/{id}"), "alice").await?;
    }
    assert_eq!(
        (t["state"].as_str(), t["attempts"].as_u64()),
        (Some("succeeded"), Some(2))
    );
    Ok(())
}
