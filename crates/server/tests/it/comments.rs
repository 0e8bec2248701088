//! Comments and suggestions over real sockets: threads, anchors, roles, reactions under
//! concurrent toggles, suggestions accepted once. (Durability across kill -9 is in the CLI's
//! `durability` suite.)

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde_json::{Value as Json, json};

use crate::harness::*;

backend_tests!(
    threads_edits_tombstones_and_roles,
    anchors_follow_their_layer_and_bad_anchors_are_refused,
    reactions_converge_under_concurrent_toggles,
    suggestions_are_accepted_once_or_rejected,
    the_sdk_comments_reacts_and_suggests,
);

async fn grant(owner: &mut Client, session: &str, user: &str, role: &str) -> Result<()> {
    owner
        .send(json!({"type":"set_role","session":session,"user":user,"role":role}))
        .await?;
    owner.recv_type("role_changed").await?;
    Ok(())
}

/// Sends `msg` and waits for its error, skipping other frames; checks the code.
async fn refused(c: &mut Client, msg: Json, code: &str) -> Result<Json> {
    c.send(msg).await?;
    let e = next_of_error(c).await?;
    if e["code"] != code {
        bail!("expected {code}, got {e}");
    }
    Ok(e)
}

async fn comment(c: &mut Client, session: &str, body: Json) -> Result<Json> {
    c.send(json!({"type":"comment","session":session,"comment":body}))
        .await?;
    Ok(next_of(c, "comment_added").await?["comment"].clone())
}

fn layer(id: &str, x: f64) -> Json {
    json!({"id":id,"kind":"image","asset":"a1","x":x,"y":100,"w":400,"h":300})
}

async fn threads_edits_tombstones_and_roles(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut alice = server.connect("alice").await?;
    alice.join("t", "a").await?;
    grant(&mut alice, "t", "bob", "commenter").await?;
    let mut bob = server.connect("bob").await?;
    bob.join("t", "b").await?;
    let mut carol = server.connect("carol").await?;
    assert_eq!(carol.join("t", "c").await?["role"], "viewer");

    alice
        .send(json!({"type":"comment","session":"t","rid":"r1","comment":{"content":"Crop this, @bob and @carol"}}))
        .await?;
    let added = next_of(&mut alice, "comment_added").await?;
    assert_eq!(added["rid"], "r1");
    let root = added["comment"].clone();
    assert_eq!(root["author_id"], "alice");
    assert_eq!(root["mentions"], json!(["bob", "carol"]));
    assert_eq!(root["asset_id"], "");
    assert!(root["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    let id = root["id"].as_str().unwrap_or_default().to_owned();
    // Everyone in the session gets it, the viewer too; only the sender gets the rid.
    let seen = next_of(&mut bob, "comment_added").await?;
    assert_eq!(seen["comment"], root);
    assert!(seen.get("rid").is_none());
    assert_eq!(next_of(&mut carol, "comment_added").await?["comment"], root);

    let reply = comment(&mut bob, "t", json!({"content":"on it","parent_id":id})).await?;
    assert_eq!(reply["parent_id"], json!(id));
    refused(
        &mut bob,
        json!({"type":"comment","session":"t","comment":{"content":"x","parent_id":"nope"}}),
        "bad_request",
    )
    .await?;
    refused(
        &mut bob,
        json!({"type":"comment","session":"t","comment":{"content":"   "}}),
        "bad_request",
    )
    .await?;
    // Only the author edits.
    refused(
        &mut bob,
        json!({"type":"comment_edit","session":"t","id":id,"content":"mine now"}),
        "forbidden",
    )
    .await?;
    alice
        .send(json!({"type":"comment_edit","session":"t","id":id,"content":"Crop this, @dave"}))
        .await?;
    let edited = next_of(&mut alice, "comment_updated").await?["comment"].clone();
    assert_eq!(edited["edited"], true);
    assert_eq!(edited["mentions"], json!(["dave"]));
    assert_eq!(
        next_of(&mut bob, "comment_updated").await?["comment"],
        edited
    );
    // The viewer reads but may not comment or react.
    refused(
        &mut carol,
        json!({"type":"comment","session":"t","comment":{"content":"hi"}}),
        "forbidden",
    )
    .await?;
    refused(
        &mut carol,
        json!({"type":"comment_react","session":"t","id":id,"emoji":"👍","on":true}),
        "forbidden",
    )
    .await?;
    // Resolve, then delete as a tombstone: the reply stays.
    bob.send(json!({"type":"comment_resolve","session":"t","id":id,"resolved":true}))
        .await?;
    assert_eq!(
        next_of(&mut bob, "comment_updated").await?["comment"]["resolved"],
        true
    );
    assert_eq!(
        next_of(&mut alice, "comment_updated").await?["comment"]["resolved"],
        true
    );
    refused(
        &mut bob,
        json!({"type":"comment_delete","session":"t","id":id}),
        "forbidden",
    )
    .await?;
    alice
        .send(json!({"type":"comment_delete","session":"t","id":id}))
        .await?;
    let gone = next_of(&mut alice, "comment_updated").await?["comment"].clone();
    assert_eq!(
        (gone["deleted"].clone(), gone["content"].clone()),
        (json!(true), json!(""))
    );

    let list = server.get_json("/v1/sessions/t/comments", "carol").await?;
    let list = list["comments"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["deleted"], true);
    assert_eq!(list[1]["parent_id"], json!(id));
    assert_eq!(list[1]["content"], "on it");
    let (status, _) = server
        .get("/v1/sessions/t/comments", Some("mallory"))
        .await?;
    assert_eq!(status, 200, "link role viewer reads");
    let (status, _) = server
        .get("/v1/sessions/none/comments", Some("alice"))
        .await?;
    assert_eq!(status, 404);
    let (status, _) = server.get("/v1/sessions/t/comments", None).await?;
    assert_eq!(status, 401);
    Ok(())
}

async fn anchors_follow_their_layer_and_bad_anchors_are_refused(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut alice = server.connect("alice").await?;
    alice.join("a", "a").await?;
    grant(&mut alice, "a", "bob", "commenter").await?;
    let mut bob = server.connect("bob").await?;
    bob.join("a", "b").await?;
    let v1 = alice
        .edit(
            "a",
            0,
            1,
            json!([{"op":"ins","path":["canvas","layers",0],"value":layer("L1", 100.0)},
                   {"op":"set","path":["assets","a1"],"value":{"kind":"image","width":640,"height":480}}]),
        )
        .await?;
    let c = comment(
        &mut bob,
        "a",
        json!({"content":"this face","annotations":[{"region":{"x":150,"y":150,"w":50,"h":40},"target":"L1"}]}),
    )
    .await?;
    let id = c["id"].clone();
    next_of(&mut alice, "comment_added").await?;

    // Bad anchors: each is bad_request and stores nothing.
    for (what, ann) in [
        (
            "outside the canvas",
            json!({"region":{"x":1900,"y":0,"w":100,"h":10}}),
        ),
        (
            "outside the asset",
            json!({"region":{"x":600,"y":0,"w":100,"h":10}}),
        ),
        ("end before start", json!({"time":{"start":5,"end":2}})),
        (
            "negative size",
            json!({"region":{"x":1,"y":1,"w":-3,"h":1}}),
        ),
        (
            "unknown target",
            json!({"region":{"x":1,"y":1,"w":3,"h":1},"target":"L9"}),
        ),
        ("empty", json!({})),
    ] {
        let e = refused(&mut bob,
                json!({"type":"comment","session":"a","rid":what,"comment":{"content":"x","asset_id":"a1","annotations":[ann]}}),
                "bad_request",
            )
            .await?;
        assert_eq!(e["rid"], what);
    }

    // Move the layer right by 200 and make it twice as tall: the region follows.
    alice
        .edit(
            "a",
            v1,
            2,
            json!([{"op":"add","path":["canvas","layers",0,"x"],"value":200},
                   {"op":"set","path":["canvas","layers",0,"h"],"value":600}]),
        )
        .await?;
    let op = next_of(&mut bob, "op").await?;
    assert_eq!(op["version"], 2);
    let moved = next_of(&mut bob, "comment_updated").await?["comment"].clone();
    assert_eq!(
        next_of(&mut alice, "comment_updated").await?["comment"],
        moved
    );
    assert_eq!(moved["id"], id);
    assert_eq!(
        moved["annotations"][0]["region"],
        json!({"x":350.0,"y":200.0,"w":50.0,"h":80.0})
    );
    // Deleting the layer orphans the anchor; the comment stays.
    alice
        .edit(
            "a",
            2,
            3,
            json!([{"op":"del","path":["canvas","layers",0]}]),
        )
        .await?;
    let orphan = next_of(&mut bob, "comment_updated").await?["comment"].clone();
    assert_eq!(orphan["annotations"][0]["orphaned"], true);
    assert_eq!(orphan["annotations"][0]["region"]["x"], 350.0);
    let list = server.get_json("/v1/sessions/a/comments", "bob").await?;
    assert_eq!(list["comments"][0], orphan);
    Ok(())
}

async fn reactions_converge_under_concurrent_toggles(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut alice = server.connect("alice").await?;
    alice.join("r", "a").await?;
    grant(&mut alice, "r", "bob", "commenter").await?;
    let mut bob = server.connect("bob").await?;
    bob.join("r", "b").await?;
    let c = comment(&mut alice, "r", json!({"content":"vote"})).await?;
    next_of(&mut bob, "comment_added").await?;
    let id = c["id"].as_str().unwrap_or_default().to_owned();

    // Both toggle two emojis 40 times each without waiting; each user's last word per emoji
    // is what must remain.
    const N: usize = 40;
    let emojis = ["👍", "🎉"];
    let mut rng = Rng(0x5eed);
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut plans = Vec::new();
    for user in ["alice", "bob"] {
        let mut last: BTreeMap<&str, bool> = BTreeMap::new();
        let mut plan = Vec::new();
        for _ in 0..N {
            let e = emojis[rng.below(2) as usize];
            let on = rng.below(2) == 0;
            last.insert(e, on);
            plan.push(json!({"type":"comment_react","session":"r","id":id,"emoji":e,"on":on}));
        }
        for (e, on) in last {
            if on {
                expected
                    .entry(e.to_owned())
                    .or_default()
                    .push(user.to_owned());
            }
        }
        plans.push(plan);
    }
    let (pa, pb) = (plans.remove(0), plans.remove(0));
    let send_all = |mut c: Client, plan: Vec<Json>| async move {
        for m in plan {
            c.send(m).await?;
        }
        // Every toggle of both users comes back to everyone as one update.
        let mut last = Json::Null;
        for _ in 0..2 * N {
            last = next_of(&mut c, "comment_updated").await?["comment"].clone();
        }
        anyhow::Ok(last)
    };
    let (la, lb) = tokio::join!(send_all(alice, pa), send_all(bob, pb));
    let (la, lb) = (la?, lb?);
    assert_eq!(la, lb, "both clients end on the same state");
    assert_eq!(la["reactions"], serde_json::to_value(&expected)?);
    let list = server.get_json("/v1/sessions/r/comments", "alice").await?;
    assert_eq!(list["comments"][0], la);
    Ok(())
}

async fn suggestions_are_accepted_once_or_rejected(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut alice = server.connect("alice").await?;
    alice.join("s", "a").await?;
    grant(&mut alice, "s", "bob", "commenter").await?;
    grant(&mut alice, "s", "dave", "editor").await?;
    let mut bob = server.connect("bob").await?;
    bob.join("s", "b").await?;
    let mut dave = server.connect("dave").await?;
    dave.join("s", "d").await?;
    let mut carol = server.connect("carol").await?;
    carol.join("s", "c").await?;

    // A commenter may not edit, but may suggest; a viewer may do neither.
    refused(&mut bob,
        json!({"type":"op","session":"s","base":0,"seq":1,"ops":[{"op":"set","path":["title"],"value":"x"}]}),
        "forbidden",
    )
    .await?;
    refused(&mut carol,
            json!({"type":"suggest","session":"s","base":0,"ops":[{"op":"set","path":["title"],"value":"x"}]}),
            "forbidden",
        )
        .await?;
    refused(&mut bob,
        json!({"type":"suggest","session":"s","base":0,"ops":[{"op":"del","path":["nothing","here"]}]}),
        "bad_request",
    )
    .await?;
    bob.send(json!({"type":"suggest","session":"s","base":0,"ops":[{"op":"text","path":["title"],"pos":0,"ins":"Hello"}],"note":"a title"}))
        .await?;
    let sug = next_of(&mut bob, "suggestion_added").await?["suggestion"].clone();
    assert_eq!(
        (
            sug["status"].clone(),
            sug["author_id"].clone(),
            sug["note"].clone()
        ),
        (json!("pending"), json!("bob"), json!("a title"))
    );
    let sid = sug["id"].clone();
    next_of(&mut alice, "suggestion_added").await?;
    next_of(&mut dave, "suggestion_added").await?;
    // Meanwhile the title changes: the suggestion is transformed past it when accepted.
    alice
        .edit(
            "s",
            0,
            1,
            json!([{"op":"text","path":["title"],"pos":0,"ins":"X"}]),
        )
        .await?;
    refused(
        &mut bob,
        json!({"type":"suggestion_accept","session":"s","id":sid}),
        "forbidden",
    )
    .await?;

    // Two editors accept at once: it is applied once.
    let accept = json!({"type":"suggestion_accept","session":"s","id":sid});
    alice.send(accept.clone()).await?;
    dave.send(accept).await?;
    let mut outcomes = Vec::new();
    for c in [&mut alice, &mut dave] {
        let mut got = (None, None, None);
        while got.0.is_none() || got.1.is_none() {
            let m = c.recv().await?;
            match m["type"].as_str() {
                Some("op") if m["user"] == "bob" => got.0 = Some(m["version"].clone()),
                Some("suggestion_updated") => got.1 = Some(m["suggestion"].clone()),
                Some("error") => got.2 = Some(m["code"].clone()),
                _ => {}
            }
        }
        outcomes.push(got);
    }
    for o in &outcomes {
        assert_eq!(
            o.0,
            Some(json!(2)),
            "the suggestion is version 2: {outcomes:?}"
        );
        let s = o.1.clone().unwrap_or_default();
        assert_eq!(s["status"], "accepted");
        assert_eq!(s["version"], 2);
        assert_eq!(s["credited"], "bob");
    }
    // Exactly one of them was refused, with conflict.
    let winner = outcomes[0].1.clone().unwrap_or_default()["decided_by"].clone();
    let (i, loser) = if winner == "alice" {
        (1, &mut dave)
    } else {
        (0, &mut alice)
    };
    let code = match outcomes[i].2.clone() {
        Some(code) => code,
        None => next_of_error(loser).await?["code"].clone(),
    };
    assert_eq!(code, "conflict");
    assert!(
        outcomes[1 - i].2.is_none(),
        "the winner got no error: {outcomes:?}"
    );
    let state = server.get_json("/v1/sessions/s", "carol").await?;
    assert_eq!(state["version"], 2);
    assert_eq!(state["state"]["title"], "XHello");
    let ops = all_ops(&server.addr, "s", "carol").await?;
    assert_eq!(
        ops[1]["user"], "bob",
        "the author is credited in the history"
    );

    // Reject; a decided suggestion can't be decided again.
    bob.send(json!({"type":"suggest","session":"s","base":2,"ops":[{"op":"set","path":["title"],"value":"No"}]}))
        .await?;
    let s2 = next_of(&mut bob, "suggestion_added").await?["suggestion"]["id"].clone();
    dave.send(json!({"type":"suggestion_reject","session":"s","id":s2}))
        .await?;
    let r = next_of(&mut dave, "suggestion_updated").await?["suggestion"].clone();
    assert_eq!(
        (r["status"].clone(), r["decided_by"].clone()),
        (json!("rejected"), json!("dave"))
    );
    refused(
        &mut dave,
        json!({"type":"suggestion_accept","session":"s","id":s2}),
        "conflict",
    )
    .await?;
    let list = server
        .get_json("/v1/sessions/s/suggestions", "carol")
        .await?;
    let statuses: Vec<_> = list["suggestions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!("accepted"), json!("rejected")]);
    Ok(())
}

async fn next_of_error(c: &mut Client) -> Result<Json> {
    loop {
        let v = c.recv().await?;
        if v["type"] == "error" {
            return Ok(v);
        }
    }
}

/// The SDK's social calls and events against the real server.
async fn the_sdk_comments_reacts_and_suggests(b: Backend) -> Result<()> {
    use montage_client::{Event, NewComment, Op, SuggestionStatus};
    use std::time::Duration;

    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut setup = server.connect("alice").await?;
    setup.join("k", "setup").await?;
    grant(&mut setup, "k", "bob", "commenter").await?;
    let url = format!("ws://{}/v1/ws", server.addr);
    let alice = sdk(&url, "alice").await?;
    let bob = sdk(&url, "bob").await?;
    let ha = alice.join("k").await?;
    let hb = bob.join("k").await?;
    let mut ea = ha.events();
    let mut eb = hb.events();
    async fn wait<T>(
        ev: &mut montage_client::Events,
        mut pick: impl FnMut(Event) -> Option<T>,
    ) -> Result<T> {
        tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(e) = ev.next().await {
                if let Some(t) = pick(e) {
                    return Ok(t);
                }
            }
            bail!("events ended")
        })
        .await?
    }
    hb.comment(NewComment {
        content: "hello @alice".into(),
        ..NewComment::default()
    })
    .await?;
    let c = wait(&mut ea, |e| match e {
        Event::CommentAdded(c) => Some(c),
        _ => None,
    })
    .await?;
    assert_eq!(
        (c.author_id.as_str(), c.mentions.clone()),
        ("bob", vec!["alice".to_owned()])
    );
    ha.reply(&c.id, "hi").await?;
    let r = wait(&mut eb, |e| match e {
        Event::CommentAdded(r) if r.parent_id.is_some() => Some(r),
        _ => None,
    })
    .await?;
    assert_eq!(r.parent_id.as_deref(), Some(c.id.as_str()));
    hb.react(&c.id, "👍", true).await?;
    let u = wait(&mut ea, |e| match e {
        Event::CommentUpdated(u) => Some(u),
        _ => None,
    })
    .await?;
    assert_eq!(u.reactions.get("👍"), Some(&vec!["bob".to_owned()]));
    ha.resolve_comment(&c.id, true).await?;
    // Bob edits once he has seen the resolve: two connections' messages are not ordered
    // otherwise, and the deleted record below must carry both.
    wait(&mut eb, |e| match e {
        Event::CommentUpdated(u) if u.resolved => Some(()),
        _ => None,
    })
    .await?;
    hb.edit_comment(&c.id, "edited").await?;
    hb.delete_comment(&c.id).await?;
    let d = wait(&mut ea, |e| match e {
        Event::CommentUpdated(d) if d.deleted => Some(d),
        _ => None,
    })
    .await?;
    assert!(d.resolved && d.edited && d.content.is_empty());

    let ops: Op = serde_json::from_value(json!([{"op":"set","path":["title"],"value":"Dawn"}]))?;
    hb.suggest(ops, Some("title")).await?;
    let s = wait(&mut ea, |e| match e {
        Event::SuggestionAdded(s) => Some(s),
        _ => None,
    })
    .await?;
    ha.accept_suggestion(&s.id).await?;
    let s = wait(&mut eb, |e| match e {
        Event::SuggestionUpdated(s) => Some(s),
        _ => None,
    })
    .await?;
    assert_eq!(s.status, SuggestionStatus::Accepted);
    assert_eq!(s.credited.as_deref(), Some("bob"));
    hb.wait_version(s.version.unwrap_or(0), Duration::from_secs(10))
        .await?;
    assert_eq!(
        hb.state().to_json()["title"],
        "Dawn",
        "the accepted edit reached the commenter's replica"
    );
    ha.reject_suggestion(&s.id).await?;
    let e = wait(&mut ea, |e| match e {
        Event::Error { code, .. } => Some(code),
        _ => None,
    })
    .await?;
    assert_eq!(e, montage_client::ErrorCode::Conflict);
    Ok(())
}
