//! Version history from outside (DESIGN §9.3): commit times on the op log, the state at any
//! version, named versions, and restore as one ordinary edit that concurrent edits survive.

use anyhow::{Result, ensure};
use serde_json::{Value as Json, json};

use crate::harness::*;

backend_tests!(
    times_states_and_named_versions,
    restore_is_one_edit_that_concurrent_edits_survive,
    a_partial_restore_brings_back_one_layer,
    a_restore_larger_than_one_edit_is_refused,
    a_rejoin_far_behind_gets_the_missed_edits_composed,
    history_past_the_retention_is_trimmed_but_named_versions_stay,
    a_comment_thread_is_restored_as_it_was,
);

fn set(path: &[&str], value: Json) -> Json {
    json!([{"op": "set", "path": path, "value": value}])
}

async fn times_states_and_named_versions(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &[]).await?;
    let mut alice = Client::connect(&s.url(&token("alice"))).await?;
    alice.join("h", "a").await?;
    for v in 1..=5u64 {
        alice
            .edit("h", v - 1, v, set(&["title"], json!(format!("t{v}"))))
            .await?;
    }
    let path = session_path("h");

    // Every entry has a commit time, never earlier than the one before.
    let ops = all_ops(&s.addr, "h", "alice").await?;
    let times: Vec<i64> = ops.iter().filter_map(|o| o["time"].as_i64()).collect();
    ensure!(times.len() == 5, "times: {ops:?}");
    ensure!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "times go back: {times:?}"
    );
    // A rejoin's catch-up carries them too.
    let mut again = Client::connect(&s.url(&token("alice"))).await?;
    again
        .send(json!({"type":"join","session":"h","client":"a2","since":3}))
        .await?;
    let joined = again.recv_type("joined").await?;
    ensure!(
        joined["ops"][0]["time"].as_i64() == Some(times[3]),
        "{joined}"
    );

    // The state at a version is the op log replayed to it.
    let (code, at3) = as_user(&s, "GET", &format!("{path}?version=3"), "bob", None).await?;
    ensure!(code == 200 && at3["version"] == 3, "{code} {at3}");
    ensure!(at3["state"] == replay(&ops[..3])?, "{at3}");
    let (code, at0) = as_user(&s, "GET", &format!("{path}?version=0"), "bob", None).await?;
    ensure!(code == 200 && at0["state"] == replay(&[])?, "{code} {at0}");
    let (code, _) = as_user(&s, "GET", &format!("{path}?version=6"), "bob", None).await?;
    ensure!(code == 404, "a version past the head: {code}");
    // Its picture too, past the head not.
    let preview = |v: u64| format!("{path}/preview?tier=poor&version={v}");
    let (code, _) = http_get(&s.addr, &preview(3), Some(&token("bob"))).await?;
    ensure!(code == 200, "preview at version 3: {code}");
    let (code, _) = http_get(&s.addr, &preview(6), Some(&token("bob"))).await?;
    ensure!(code == 404, "preview past the head: {code}");

    // Naming: editors only; viewers see the list.
    let name = |v: u64, n: &str| Some(json!({"version": v, "name": n}));
    let versions = format!("{path}/versions");
    let (code, e) = as_user(&s, "POST", &versions, "bob", name(3, "mine")).await?;
    ensure!(
        code == 403 && e["code"] == "forbidden",
        "a viewer names: {code} {e}"
    );
    let (code, named) = as_user(&s, "POST", &versions, "alice", name(3, "sent to client")).await?;
    ensure!(
        code == 201 && named["name"] == "sent to client",
        "{code} {named}"
    );
    let (code, _) = as_user(&s, "POST", &versions, "alice", name(9, "future")).await?;
    ensure!(code == 404, "naming a version that does not exist: {code}");
    let (code, _) = as_user(&s, "POST", &versions, "alice", name(2, "")).await?;
    ensure!(code == 400, "an empty name: {code}");
    let (code, list) = as_user(&s, "GET", &versions, "bob", None).await?;
    ensure!(code == 200, "{code} {list}");
    let v3 = list["versions"]
        .as_array()
        .and_then(|l| l.iter().find(|v| v["version"] == 3))
        .cloned()
        .unwrap_or_default();
    ensure!(
        v3["name"] == "sent to client" && v3["user"] == "alice" && v3["time"] == times[2],
        "{list}"
    );
    // Paging: nothing below version 3 but what was named or checkpointed there.
    let (_, below) = as_user(&s, "GET", &format!("{versions}?before=3"), "bob", None).await?;
    ensure!(
        below["versions"]
            .as_array()
            .is_some_and(|l| l.iter().all(|v| v["version"].as_u64() < Some(3))),
        "{below}"
    );

    // Every refusal: a name too long, bodies that are not what the endpoint reads, and a
    // session closed to link access refuses its history to a stranger everywhere.
    let long = "x".repeat(201);
    let (code, _) = as_user(&s, "POST", &versions, "alice", name(3, &long)).await?;
    ensure!(code == 400, "a 201-character name: {code}");
    let restore = format!("{path}/restore");
    for (url, body) in [
        (&versions, json!({"version": 3})),
        (&restore, json!({"v": 3})),
    ] {
        let (code, e) = as_user(&s, "POST", url, "alice", Some(body)).await?;
        ensure!(
            code == 400 && e["code"] == "bad_request",
            "{url}: {code} {e}"
        );
    }
    let private = Some(json!({"link_role": "none"}));
    ensure!(
        as_user(&s, "PATCH", &path, "alice", private).await?.0 == 200,
        "closing link access"
    );
    for url in [format!("{path}?version=3"), versions.clone(), preview(3)] {
        let (code, _) = as_user(&s, "GET", &url, "carol", None).await?;
        ensure!(code == 403, "a stranger reads {url}: {code}");
    }
    let (code, _) = as_user(&s, "POST", &restore, "carol", Some(json!({"version": 1}))).await?;
    ensure!(code == 403, "a stranger restores: {code}");
    Ok(())
}

async fn restore_is_one_edit_that_concurrent_edits_survive(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &["--default-link-role=editor"]).await?;
    let mut alice = Client::connect(&s.url(&token("alice"))).await?;
    alice.join("r", "a").await?;
    alice
        .edit("r", 0, 1, set(&["title"], json!("first")))
        .await?;
    alice.edit("r", 1, 2, set(&["meta", "x"], json!(1))).await?;
    alice
        .edit("r", 2, 3, set(&["title"], json!("second")))
        .await?;
    let mut bob = Client::connect(&s.url(&token("bob"))).await?;
    bob.join("r", "b").await?;

    let restore = format!("{}/restore", session_path("r"));
    let (code, e) = as_user(&s, "POST", &restore, "carol", Some(json!({"version": 99}))).await?;
    ensure!(
        code == 404,
        "restoring a version not in history: {code} {e}"
    );
    let (code, done) = as_user(&s, "POST", &restore, "carol", Some(json!({"version": 1}))).await?;
    ensure!(code == 200 && done["version"] == 4, "{code} {done}");

    // Everyone connected gets it as one `op`, credited to the restorer.
    for c in [&mut alice, &mut bob] {
        let op = c.recv_type("op").await?;
        ensure!(op["version"] == 4 && op["user"] == "carol", "{op}");
    }
    // bob's edit made on version 3, before he saw the restore, is transformed past it.
    let v = bob.edit("r", 3, 1, set(&["meta", "y"], json!(2))).await?;
    ensure!(v == 5, "bob's edit became {v}");
    let (_, head) = as_user(&s, "GET", &session_path("r"), "alice", None).await?;
    let state = &head["state"];
    ensure!(state["title"] == "first", "title not restored: {head}");
    ensure!(state["meta"].get("x").is_none(), "meta.x came back: {head}");
    ensure!(
        state["meta"]["y"] == 2,
        "bob's concurrent edit was lost: {head}"
    );

    // Restoring the head changes nothing; viewers may not restore.
    let mut owner = Client::connect(&s.url(&token("alice"))).await?;
    owner.join("r2", "a").await?;
    owner.edit("r2", 0, 1, set(&["title"], json!("x"))).await?;
    let r2 = format!("{}/restore", session_path("r2"));
    let (code, _) = as_user(&s, "POST", &r2, "alice", Some(json!({"version": 1}))).await?;
    ensure!(code == 200, "restoring the head: {code}");
    let ops = all_ops(&s.addr, "r2", "alice").await?;
    ensure!(ops.len() == 1, "restoring the head made an edit: {ops:?}");
    let viewers = Some(json!({"link_role": "viewer"}));
    let (code, _) = as_user(&s, "PATCH", &session_path("r2"), "alice", viewers).await?;
    ensure!(code == 200, "{code}");
    let (code, e) = as_user(&s, "POST", &r2, "carol", Some(json!({"version": 0}))).await?;
    ensure!(
        code == 403 && e["code"] == "forbidden",
        "a viewer restores: {code} {e}"
    );
    Ok(())
}

fn caption(id: &str, text: &str) -> Json {
    json!({"id": id, "kind": "text", "text": text, "x": 0, "y": 0, "size": 12, "color": "#fff"})
}

async fn a_partial_restore_brings_back_one_layer(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &["--default-link-role=editor"]).await?;
    let mut alice = Client::connect(&s.url(&token("alice"))).await?;
    alice.join("p", "a").await?;
    let ins =
        |i: usize, l: Json| json!([{"op": "ins", "path": ["canvas", "layers", i], "value": l}]);
    alice.edit("p", 0, 1, ins(0, caption("L1", "one"))).await?;
    alice.edit("p", 1, 2, ins(1, caption("L2", "two"))).await?;
    let text = |i: usize, t: &str| json!([{"op": "set", "path": ["canvas", "layers", i, "text"], "value": t}]);
    alice.edit("p", 2, 3, text(0, "ONE")).await?;
    alice.edit("p", 3, 4, text(1, "TWO")).await?;
    let mut bob = Client::connect(&s.url(&token("bob"))).await?;
    bob.join("p", "b").await?;

    let restore = format!("{}/restore", session_path("p"));
    let body = Some(json!({"version": 2, "id": "L1"}));
    let (code, done) = as_user(&s, "POST", &restore, "carol", body).await?;
    ensure!(code == 200 && done["version"] == 5, "{code} {done}");
    let op = bob.recv_type("op").await?;
    ensure!(op["user"] == "carol", "{op}");
    // bob moves L2 on version 4, before he saw the restore: it lands too.
    let moved = json!([{"op": "set", "path": ["canvas", "layers", 1, "x"], "value": 40}]);
    ensure!(bob.edit("p", 4, 1, moved).await? == 6, "bob's edit");
    let (_, head) = as_user(&s, "GET", &session_path("p"), "alice", None).await?;
    let layers = &head["state"]["canvas"]["layers"];
    ensure!(layers[0]["text"] == "one", "L1 not restored: {head}");
    ensure!(
        layers[1]["text"] == "TWO" && layers[1]["x"] == 40,
        "L2 disturbed: {head}"
    );
    let (code, e) = as_user(
        &s,
        "POST",
        &restore,
        "carol",
        Some(json!({"version": 2, "id": "L9"})),
    )
    .await?;
    ensure!(
        code == 404 && e["code"] == "not_found",
        "an unknown element: {code} {e}"
    );
    Ok(())
}

/// A restore whose difference is more components than one edit may carry is refused with
/// `too_large` (it would be an edit no client could read), and nothing is applied.
async fn a_restore_larger_than_one_edit_is_refused(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &[]).await?;
    let mut alice = Client::connect(&s.url(&token("alice"))).await?;
    alice.join("big", "a").await?;
    // Four edits of 2,600 keys each (a frame holds at most 256 KiB).
    for v in 1..=4u64 {
        let from = (v - 1) * 2_600;
        let keys: Vec<Json> = (from..from + 2_600)
            .map(|i| json!({"op": "set", "path": ["meta", format!("k{i}")], "value": 1}))
            .collect();
        alice.edit("big", v - 1, v, Json::Array(keys)).await?;
    }
    let restore = format!("{}/restore", session_path("big"));
    let (code, e) = as_user(&s, "POST", &restore, "alice", Some(json!({"version": 0}))).await?;
    ensure!(code == 413 && e["code"] == "too_large", "{code} {e}");
    let (_, head) = as_user(&s, "GET", &session_path("big"), "alice", None).await?;
    ensure!(
        head["version"] == 4,
        "something was applied: {}",
        head["version"]
    );
    Ok(())
}

/// A `compact` join far behind gets every missed edit as one composed `delta` that brings its
/// replica to the head, in far fewer bytes than the edits one by one; a join that does not ask
/// for it, or is only a few versions behind, gets the entries.
async fn a_rejoin_far_behind_gets_the_missed_edits_composed(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let fast = ["--edits-per-sec=100000", "--messages-per-sec=100000"];
    let s = Server::start(b, dir.path(), &fast).await?;
    let mut alice = Client::connect(&s.url(&token("alice"))).await?;
    alice.join("c", "a").await?;
    alice.edit("c", 0, 1, set(&["title"], json!(""))).await?;
    // 200 keystrokes, as the page sends typing.
    for v in 2..=201u64 {
        let key = json!([{"op": "text", "path": ["title"], "pos": v - 2, "ins": "k"}]);
        alice.edit("c", v - 1, v, key).await?;
    }
    let ops = all_ops(&s.addr, "c", "alice").await?;
    let mut bytes = Vec::new();
    for compact in [false, true] {
        let mut bob = Client::connect(&s.url(&token("bob"))).await?;
        let join = json!({"type":"join","session":"c","client":"b","since":1,"compact":compact});
        bob.send(join).await?;
        let joined = bob.recv_type("joined").await?;
        ensure!(
            joined["version"] == 201 && joined.get("state").is_none(),
            "{joined}"
        );
        bytes.push(joined.to_string().len());
        if !compact {
            ensure!(
                joined["ops"].as_array().is_some_and(|l| l.len() == 200),
                "{joined}"
            );
            continue;
        }
        ensure!(joined.get("ops").is_none(), "{joined}");
        let delta: montage_ot::CompressedDelta = serde_json::from_value(joined["delta"].clone())?;
        ensure!(delta.base_version == 1, "{joined}");
        let mut doc = montage_ot::Value::from_json(&replay(&ops[..1])?);
        delta.expand().apply(&mut doc)?;
        ensure!(
            doc.to_json() == replay(&ops)?,
            "the delta does not reach the head: {joined}"
        );
    }
    ensure!(
        bytes[1] * 10 < bytes[0],
        "compact {} B vs {} B one by one",
        bytes[1],
        bytes[0]
    );
    // A few versions behind: the entries, with their authors and times.
    let mut carol = Client::connect(&s.url(&token("carol"))).await?;
    carol
        .send(json!({"type":"join","session":"c","client":"c","since":198,"compact":true}))
        .await?;
    let joined = carol.recv_type("joined").await?;
    ensure!(
        joined["ops"].as_array().is_some_and(|l| l.len() == 3),
        "{joined}"
    );
    Ok(())
}

/// `--history-days`: history older than the retention is trimmed to the newest checkpoint
/// before the cutoff, once at start and then hourly. Named versions stay whole; what was
/// trimmed is `not_found` (state, restore, ops), and a join behind it gets the whole state.
async fn history_past_the_retention_is_trimmed_but_named_versions_stay(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &["--default-link-role=editor"]).await?;
    let mut alice = Client::connect(&s.url(&token("alice"))).await?;
    alice.join("t", "a").await?;
    for v in 1..=10u64 {
        alice
            .edit("t", v - 1, v, set(&["meta", &format!("k{v}")], json!(v)))
            .await?;
    }
    let path = session_path("t");
    let versions = format!("{path}/versions");
    for (v, name) in [(2, "early draft"), (6, "sent to client")] {
        let body = Some(json!({"version": v, "name": name}));
        let (code, e) = as_user(&s, "POST", &versions, "alice", body).await?;
        ensure!(code == 201, "naming {v}: {code} {e}");
    }
    drop(alice);
    // Stopped, so its last snapshot (version 10) is written; a retention of 0 days keeps only
    // what the newest checkpoint before now needs: from version 6 on.
    s.stop().await;
    let s = Server::start(
        b,
        dir.path(),
        &["--default-link-role=editor", "--history-days=0"],
    )
    .await?;
    let listed = |l: &Json| -> Vec<u64> {
        l["versions"]
            .as_array()
            .map(|l| l.iter().filter_map(|v| v["version"].as_u64()).collect())
            .unwrap_or_default()
    };
    // The trim runs in the background at start (polled through the op log, which is not
    // cached as past states are).
    let mut trimmed = false;
    for _ in 0..100 {
        let (code, _) = as_user(&s, "GET", &format!("{path}/ops?from=3"), "bob", None).await?;
        if code == 404 {
            trimmed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    ensure!(trimmed, "version 5 is still in history");
    let (_, list) = as_user(&s, "GET", &versions, "bob", None).await?;
    ensure!(
        listed(&list).iter().all(|&v| v == 2 || v >= 6) && listed(&list).contains(&2),
        "{list}"
    );
    // Named versions and everything from the kept checkpoint on stay computable.
    let ops = all_ops_from(&s, 5).await?;
    ensure!(ops.len() == 5, "ops after 5: {ops:?}");
    for v in [2, 6, 8, 10] {
        let (code, at) = as_user(&s, "GET", &format!("{path}?version={v}"), "bob", None).await?;
        ensure!(
            code == 200 && at["state"]["meta"][format!("k{v}")] == v,
            "{v}: {code} {at}"
        );
    }
    for v in [1, 3, 5] {
        let (code, e) = as_user(&s, "GET", &format!("{path}?version={v}"), "bob", None).await?;
        ensure!(
            code == 404 && e["code"] == "not_found",
            "state at {v}: {code} {e}"
        );
    }
    let restore = format!("{path}/restore");
    let (code, e) = as_user(&s, "POST", &restore, "alice", Some(json!({"version": 4}))).await?;
    ensure!(
        code == 404 && e["code"] == "not_found",
        "restoring 4: {code} {e}"
    );
    let (code, e) = as_user(&s, "GET", &format!("{path}/ops?from=4"), "bob", None).await?;
    ensure!(
        code == 404 && e["code"] == "not_found",
        "ops across the gap: {code} {e}"
    );
    // A join behind the kept history gets the whole state; one within it, the entries.
    let mut bob = Client::connect(&s.url(&token("bob"))).await?;
    bob.send(json!({"type":"join","session":"t","client":"b","since":3}))
        .await?;
    let joined = bob.recv_type("joined").await?;
    ensure!(
        joined["state"]["meta"]["k1"] == 1 && joined.get("ops").is_none(),
        "{joined}"
    );
    let mut carol = Client::connect(&s.url(&token("carol"))).await?;
    carol
        .send(json!({"type":"join","session":"t","client":"c","since":7}))
        .await?;
    let joined = carol.recv_type("joined").await?;
    ensure!(
        joined["ops"].as_array().is_some_and(|l| l.len() == 3),
        "{joined}"
    );
    Ok(())
}

/// The op log after `from`, as bob reads it over HTTP.
async fn all_ops_from(s: &Server, from: u64) -> Result<Vec<Json>> {
    let (code, page) = as_user(
        s,
        "GET",
        &format!("{}/ops?from={from}", session_path("t")),
        "bob",
        None,
    )
    .await?;
    ensure!(code == 200, "{code} {page}");
    Ok(page["ops"].as_array().cloned().unwrap_or_default())
}

/// Sets the title of "ct" on `base` and waits for its ack, skipping the session's other frames.
async fn edit_skipping(c: &mut Client, base: u64, seq: u64, title: &str) -> Result<()> {
    c.op("ct", base, seq, set(&["title"], json!(title))).await?;
    loop {
        let m = c.recv().await?;
        ensure!(m["type"] != "error", "{m}");
        if m["type"] == "ack" {
            return Ok(());
        }
    }
}

/// Partial restore of a comment thread: restoring the root's id at version V gives every
/// comment of the thread its state at V back (content, resolved) and makes a tombstone of each
/// reply written since; other threads and the document stay as they are.
async fn a_comment_thread_is_restored_as_it_was(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &["--default-link-role=editor"]).await?;
    let mut alice = Client::connect(&s.url(&token("alice"))).await?;
    alice.join("ct", "a").await?;
    let mut bob = Client::connect(&s.url(&token("bob"))).await?;
    bob.join("ct", "b").await?;
    edit_skipping(&mut alice, 0, 1, "one").await?;
    let new = |c: &str, parent: Option<&Json>| {
        let mut body = json!({"content": c});
        if let Some(p) = parent {
            body["parent_id"] = p.clone();
        }
        json!({"type": "comment", "comment": body})
    };
    let root = alice.social("ct", new("first draft", None)).await?;
    let agree = bob.social("ct", new("agree", Some(&root["id"]))).await?;
    edit_skipping(&mut alice, 1, 2, "two").await?;
    let id = root["id"].clone();
    alice
        .social(
            "ct",
            json!({"type":"comment_edit","id":id,"content":"changed"}),
        )
        .await?;
    alice
        .social(
            "ct",
            json!({"type":"comment_resolve","id":id,"resolved":true}),
        )
        .await?;
    let late = bob.social("ct", new("late", Some(&root["id"]))).await?;
    let other = bob.social("ct", new("another thread", None)).await?;

    let restore = format!("{}/restore", session_path("ct"));
    let (code, done) = as_user(
        &s,
        "POST",
        &restore,
        "alice",
        Some(json!({"version": 1, "id": id})),
    )
    .await?;
    ensure!(code == 200 && done["version"] == 2, "{code} {done}");
    let (_, list) = as_user(
        &s,
        "GET",
        &format!("{}/comments", session_path("ct")),
        "bob",
        None,
    )
    .await?;
    let by_id = |c: &Json| {
        list["comments"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["id"] == c["id"]))
            .cloned()
            .unwrap_or_default()
    };
    let r = by_id(&root);
    ensure!(
        r["content"] == "first draft" && r["resolved"] == false,
        "{list}"
    );
    ensure!(by_id(&agree)["content"] == "agree", "{list}");
    ensure!(
        by_id(&late)["deleted"] == true,
        "a reply made since stays: {list}"
    );
    ensure!(by_id(&other)["content"] == "another thread", "{list}");
    // Everyone in the session hears of it.
    loop {
        let m = bob.recv().await?;
        if m["type"] == "comment_updated" && m["comment"]["id"] == id {
            ensure!(m["comment"]["content"] == "first draft", "{m}");
            break;
        }
    }
    let (_, head) = as_user(&s, "GET", &session_path("ct"), "alice", None).await?;
    ensure!(
        head["version"] == 2 && head["state"]["title"] == "two",
        "{head}"
    );
    // A viewer may not restore a thread.
    let viewers = Some(json!({"link_role": "viewer"}));
    let (code, _) = as_user(&s, "PATCH", &session_path("ct"), "alice", viewers).await?;
    ensure!(code == 200, "{code}");
    let body = Some(json!({"version": 1, "id": id}));
    let (code, e) = as_user(&s, "POST", &restore, "carol", body).await?;
    ensure!(
        code == 403 && e["code"] == "forbidden",
        "a viewer restores a thread: {code} {e}"
    );
    Ok(())
}
