//! Presence over real sockets: the roster (names, colours, several connections per user),
//! late joiners, presence that follows edits, live roles and removal, and bandwidth tiers
//! (pacing per tier, a stalled reader demoted then dropped).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt;
use media_services::auth::Auth;
use media_services::presence::colour;
use serde_json::{Value as Json, json};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::*;

backend_tests!(
    roster_counts_a_user_once_and_hears_leaves_and_disconnects,
    a_selection_of_a_deleted_layer_is_dropped,
    a_caret_moves_with_concurrent_typing,
    roles_change_live_and_a_removed_user_is_disconnected,
    each_tier_gets_presence_at_its_rate_ending_at_the_last_position,
    a_stalled_reader_is_demoted_then_dropped_while_others_keep_up,
    the_sdk_sets_and_follows_presence_and_reports_its_tier,
);

async fn connect_named(server: &Server, user: &str, name: &str) -> Result<Client> {
    let token = Auth::new(SECRET.as_bytes())?.issue(user, Some(name), Duration::from_secs(3600))?;
    Client::connect(&server.url(&token)).await
}

/// The next frame that is not a `tier` announcement (those may come whenever the server
/// re-measures a connection).
async fn next(c: &mut Client) -> Result<Json> {
    loop {
        let m = c.recv().await?;
        if m["type"] != "tier" {
            return Ok(m);
        }
    }
}

fn presence(session: &str, data: Json) -> Json {
    json!({"type":"presence","session":session,"data":data})
}

/// Makes sure every message this connection sent to `session` before was handled by the session:
/// a `preview_subscribe` reads the session through the same mailbox, after them.
async fn barrier(c: &mut Client, session: &str) -> Result<()> {
    c.send(json!({"type":"preview_subscribe","session":session,"rid":"barrier"}))
        .await?;
    loop {
        let m = c.recv().await?;
        if m["rid"] == "barrier" {
            if m["type"] != "preview" {
                bail!("barrier refused: {m}");
            }
            c.send(json!({"type":"preview_unsubscribe","session":session}))
                .await?;
            return Ok(());
        }
    }
}

fn find<'a>(participants: &'a Json, user: &str) -> Option<&'a Json> {
    participants.as_array()?.iter().find(|p| p["user"] == user)
}

async fn roster_counts_a_user_once_and_hears_leaves_and_disconnects(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut alice = connect_named(&server, "alice", "Alice").await?;
    let j = alice.join("s", "a").await?;
    assert_eq!(
        j["participants"],
        json!([{"user":"alice","role":"owner","online":true,"name":"Alice","color":colour("alice")}])
    );

    let mut bob1 = connect_named(&server, "bob", "Bob").await?;
    let jb = bob1.join("s", "b1").await?;
    let a = find(&jb["participants"], "alice").cloned();
    assert_eq!(
        a,
        Some(
            json!({"user":"alice","role":"owner","online":true,"name":"Alice","color":colour("alice")})
        )
    );
    assert_eq!(
        next(&mut alice).await?,
        json!({"type":"participant_joined","session":"s","user":"bob","role":"viewer",
            "name":"Bob","color":colour("bob")})
    );

    // A second connection of bob: no second participant_joined. The next thing alice hears is
    // that connection's cursor.
    let mut bob2 = connect_named(&server, "bob", "Bob").await?;
    bob2.join("s", "b2").await?;
    bob2.send(presence("s", json!({"cursor":{"x":1,"y":1}})))
        .await?;
    assert_eq!(
        next(&mut alice).await?,
        json!({"type":"presence","session":"s","user":"bob","data":{"cursor":{"x":1,"y":1}}})
    );

    // One of bob's connections leaves: bob is still online, nobody hears a participant_left.
    bob1.send(json!({"type":"leave","session":"s"})).await?;
    barrier(&mut bob1, "s").await?;
    bob2.send(presence(
        "s",
        json!({"cursor":{"x":2,"y":2},"playhead":3.5}),
    ))
    .await?;
    let m = next(&mut alice).await?;
    assert_eq!(m["type"], "presence", "{m}");
    assert_eq!(m["data"]["cursor"]["x"], 2);

    // A late joiner sees bob once, online, with his current presence.
    let mut carol = connect_named(&server, "carol", "Carol").await?;
    let jc = carol.join("s", "c").await?;
    let ps = jc["participants"].as_array().cloned().unwrap_or_default();
    assert_eq!(ps.iter().filter(|p| p["user"] == "bob").count(), 1);
    let b = find(&jc["participants"], "bob")
        .cloned()
        .unwrap_or_default();
    assert_eq!(b["online"], true);
    assert_eq!(b["name"], "Bob");
    assert_eq!(b["color"], colour("bob"));
    assert_eq!(
        b["presence"],
        json!({"cursor":{"x":2,"y":2},"playhead":3.5})
    );
    assert!(find(&jc["participants"], "alice").is_some_and(|a| a.get("presence").is_none()));
    assert_eq!(next(&mut alice).await?["type"], "participant_joined");

    // Bob's last connection drops (no leave): everyone hears participant_left.
    drop(bob2);
    let left = json!({"type":"participant_left","session":"s","user":"bob"});
    assert_eq!(next(&mut alice).await?, left);
    assert_eq!(next(&mut carol).await?, left);
    // And his presence is gone with him.
    let mut dave = server.connect("dave").await?;
    let jd = dave.join("s", "d").await?;
    assert!(find(&jd["participants"], "bob").is_none(), "{jd}");
    Ok(())
}

async fn a_selection_of_a_deleted_layer_is_dropped(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut alice = server.connect("alice").await?;
    alice.join("s", "a").await?;
    let layer =
        |id: &str| json!({"id":id,"kind":"text","text":id,"x":0,"y":0,"size":12,"color":"#000000"});
    alice
        .edit(
            "s",
            0,
            1,
            json!([{"op":"ins","path":["canvas","layers",0],"value":layer("l1")},
                   {"op":"ins","path":["canvas","layers",1],"value":layer("l2")}]),
        )
        .await?;
    let mut bob = server.connect("bob").await?;
    bob.join("s", "b").await?;
    next_of(&mut alice, "participant_joined").await?;
    bob.send(presence(
        "s",
        json!({"selection":["l1","l2"],"cursor":{"x":5,"y":6}}),
    ))
    .await?;
    assert_eq!(
        next(&mut alice).await?["data"]["selection"],
        json!(["l1", "l2"])
    );

    alice
        .edit(
            "s",
            1,
            2,
            json!([{"op":"del","path":["canvas","layers",0]}]),
        )
        .await?;
    // Alice (the author) hears bob's adjusted selection right after her ack.
    let m = next(&mut alice).await?;
    assert_eq!(
        m,
        json!({"type":"presence","session":"s","user":"bob",
            "data":{"selection":["l2"],"cursor":{"x":5,"y":6}}})
    );
    // Bob gets the edit; a late joiner gets the adjusted selection.
    assert_eq!(next(&mut bob).await?["version"], 2);
    let mut carol = server.connect("carol").await?;
    let jc = carol.join("s", "c").await?;
    let b = find(&jc["participants"], "bob")
        .cloned()
        .unwrap_or_default();
    assert_eq!(b["presence"]["selection"], json!(["l2"]));
    Ok(())
}

async fn a_caret_moves_with_concurrent_typing(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut alice = server.connect("alice").await?;
    alice.join("s", "a").await?;
    alice
        .send(json!({"type":"set_role","session":"s","user":"bob","role":"editor"}))
        .await?;
    next_of(&mut alice, "role_changed").await?;
    alice
        .edit(
            "s",
            0,
            1,
            json!([{"op":"set","path":["title"],"value":"hello"}]),
        )
        .await?;
    let mut bob = server.connect("bob").await?;
    bob.join("s", "b").await?;
    next_of(&mut alice, "participant_joined").await?;
    // Bob's caret selects "ello" (anchor 1, caret at the end).
    bob.send(presence(
        "s",
        json!({"caret":{"path":["title"],"index":5,"anchor":1}}),
    ))
    .await?;
    assert_eq!(next(&mut alice).await?["data"]["caret"]["index"], 5);

    // Alice types "XX" in front: bob's caret and anchor move right by two.
    alice
        .edit(
            "s",
            1,
            2,
            json!([{"op":"text","path":["title"],"pos":0,"ins":"XX"}]),
        )
        .await?;
    assert_eq!(
        next(&mut alice).await?["data"]["caret"],
        json!({"path":["title"],"index":7,"anchor":3})
    );
    // Bob, not having seen that yet, types "!" at his caret (base 1, position 5): the server
    // moves his edit to 7 and his caret after what he typed.
    bob.op(
        "s",
        1,
        1,
        json!([{"op":"text","path":["title"],"pos":5,"ins":"!"}]),
    )
    .await?;
    let op = next_of(&mut alice, "op").await?;
    assert_eq!(op["ops"][0]["pos"], 7);
    assert_eq!(
        next(&mut alice).await?["data"]["caret"],
        json!({"path":["title"],"index":8,"anchor":3})
    );
    // Alice deletes "XXh": the caret and anchor move left, the anchor to the delete's start.
    alice
        .edit(
            "s",
            3,
            3,
            json!([{"op":"text","path":["title"],"pos":0,"del":3}]),
        )
        .await?;
    assert_eq!(
        next(&mut alice).await?["data"]["caret"],
        json!({"path":["title"],"index":5,"anchor":0})
    );
    let st = server.get_json("/v1/sessions/s", "alice").await?;
    assert_eq!(st["state"]["title"], "ello!");
    Ok(())
}

async fn roles_change_live_and_a_removed_user_is_disconnected(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut alice = server.connect("alice").await?;
    alice.join("s", "a").await?;
    alice
        .send(json!({"type":"set_role","session":"s","user":"bob","role":"editor"}))
        .await?;
    next_of(&mut alice, "role_changed").await?;
    let mut bob = server.connect("bob").await?;
    let mut bob_tab = server.connect("bob").await?;
    bob.join("s", "b").await?;
    bob_tab.join("s", "b2").await?;
    let mut carol = server.connect("carol").await?;
    carol.join("s", "c").await?;
    assert_eq!(
        bob.edit(
            "s",
            0,
            1,
            json!([{"op":"set","path":["title"],"value":"x"}])
        )
        .await?,
        1
    );

    // Demoted: the role change reaches everyone, and bob's very next edit is refused.
    alice
        .send(json!({"type":"set_role","session":"s","user":"bob","role":"viewer"}))
        .await?;
    let rc = json!({"type":"role_changed","session":"s","user":"bob","role":"viewer"});
    assert_eq!(next_of(&mut bob, "role_changed").await?, rc);
    assert_eq!(next_of(&mut bob_tab, "role_changed").await?, rc);
    assert_eq!(next_of(&mut carol, "role_changed").await?, rc);
    bob.expect_error(
        json!({"type":"op","session":"s","base":1,"seq":2,"ops":[{"op":"set","path":["title"],"value":"y"}]}),
        "forbidden",
    )
    .await?;

    // Removed: both of bob's connections are told and taken out; the others hear him leave.
    alice
        .send(json!({"type":"set_role","session":"s","user":"bob","role":"none"}))
        .await?;
    let rc = json!({"type":"role_changed","session":"s","user":"bob","role":"none"});
    assert_eq!(next_of(&mut bob, "role_changed").await?, rc);
    assert_eq!(next_of(&mut bob_tab, "role_changed").await?, rc);
    assert_eq!(next_of(&mut carol, "role_changed").await?, rc);
    assert_eq!(
        next_of(&mut carol, "participant_left").await?,
        json!({"type":"participant_left","session":"s","user":"bob"})
    );
    // Each of his connections is told why it was taken out; then every message is refused.
    for c in [&mut bob, &mut bob_tab] {
        let e = next_of(c, "error").await?;
        assert_eq!(e["code"], "forbidden", "{e}");
    }
    bob.expect_error(presence("s", json!({"cursor":{"x":1,"y":1}})), "forbidden")
        .await?;
    // He cannot come back (the grant overrides the link role), nor read over HTTP.
    bob_tab
        .expect_error(
            json!({"type":"join","session":"s","client":"b3"}),
            "forbidden",
        )
        .await?;
    let (status, _) = http_get(&server.addr, "/v1/sessions/s", Some(&token("bob"))).await?;
    assert_eq!(status, 403);
    // The roster does not list him.
    let mut dave = server.connect("dave").await?;
    let jd = dave.join("s", "d").await?;
    assert!(find(&jd["participants"], "bob").is_none(), "{jd}");
    // A non-owner cannot remove anyone.
    carol
        .expect_error(
            json!({"type":"set_role","session":"s","user":"alice","role":"none"}),
            "forbidden",
        )
        .await?;
    Ok(())
}

/// Reads presence and ops until it has seen `last_x` and `ops` edits; returns (presence frames,
/// the last cursor x, versions seen, when the last frame arrived).
async fn drain_until(
    mut c: Client,
    last_x: u64,
    ops: usize,
) -> Result<(usize, u64, Vec<u64>, Instant)> {
    let mut count = 0;
    let mut x = u64::MAX;
    let mut versions = Vec::new();
    loop {
        let m = next(&mut c).await?;
        match m["type"].as_str() {
            Some("presence") => {
                count += 1;
                x = m["data"]["cursor"]["x"].as_u64().unwrap_or(u64::MAX);
            }
            Some("op") => versions.push(m["version"].as_u64().unwrap_or(0)),
            _ => {}
        }
        if x == last_x && versions.len() == ops {
            return Ok((count, x, versions, Instant::now()));
        }
    }
}

async fn each_tier_gets_presence_at_its_rate_ending_at_the_last_position(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut w = server.connect("writer").await?;
    w.join("s", "w").await?;
    // (user, hinted Mbps, tier, presence messages per second)
    let tiers = [
        ("ex", 100.0, "excellent", 60.0),
        ("good", 20.0, "good", 30.0),
        ("fair", 7.0, "fair", 15.0),
        ("poor", 1.0, "poor", 5.0),
    ];
    let mut readers = Vec::new();
    for (user, mbps, tier, fps) in tiers {
        let mut r = server.connect(user).await?;
        r.send(json!({"type":"quality","downlink_mbps":mbps,"rid":"q"}))
            .await?;
        let t = r.recv().await?;
        assert_eq!(
            (t["type"].clone(), t["tier"].clone()),
            (json!("tier"), json!(tier))
        );
        assert_eq!(t["fps"], fps as u64);
        r.join("s", user).await?;
        next_of(&mut w, "participant_joined").await?;
        readers.push((tier, fps, r));
    }
    // 100 cursor moves a second for two seconds, an edit after every 20th.
    const MOVES: u64 = 200;
    const EDITS: usize = 10;
    let mut handles = Vec::new();
    let start = Instant::now();
    for (tier, fps, r) in readers {
        handles.push((tier, fps, tokio::spawn(drain_until(r, MOVES - 1, EDITS))));
    }
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut seq = 0;
    for x in 0..MOVES {
        tick.tick().await;
        w.send(presence("s", json!({"cursor":{"x":x,"y":0}})))
            .await?;
        if x % 20 == 19 {
            seq += 1;
            w.op(
                "s",
                seq - 1,
                seq,
                json!([{"op":"add","path":["canvas","width"],"value":1}]),
            )
            .await?;
        }
    }
    for (tier, fps, h) in handles {
        let (count, x, versions, end) = h.await??;
        assert_eq!(x, MOVES - 1, "{tier}: the last position must arrive");
        assert_eq!(
            versions,
            (1..=EDITS as u64).collect::<Vec<_>>(),
            "{tier}: every edit, in order"
        );
        // Every presence frame left the server between the first move and its arrival, at
        // least 1/fps apart: no more than fps × window + 1 (plus one of slack).
        let window = end.duration_since(start).as_secs_f64();
        let cap = (fps * window).floor() as usize + 2;
        assert!(
            count <= cap,
            "{tier}: {count} presence frames in {window:.2}s, cap {cap}"
        );
        assert!(count >= 1);
        if tier == "poor" {
            // Coalesced: far fewer frames than moves.
            assert!(count < (MOVES / 4) as usize, "poor got {count} of {MOVES}");
        }
    }
    Ok(())
}

/// Sets `meta.blob` and waits for the ack; returns the version.
async fn set_blob(w: &mut Client, seq: &mut u64, value: Json) -> Result<u64> {
    *seq += 1;
    let op = json!([{"op":"set","path":["meta","blob"],"value":value}]);
    w.edit("s", *seq - 1, *seq, op).await
}

async fn a_stalled_reader_is_demoted_then_dropped_while_others_keep_up(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(
        b,
        dir.path(),
        &[
            "--send-queue",
            "64",
            "--bytes-per-sec",
            "100000000",
            "--edits-per-sec",
            "10000",
        ],
    )
    .await?;
    let mut w = server.connect("writer").await?;
    w.join("s", "w").await?;
    let mut readers = Vec::new();
    for r in ["reader1", "reader2"] {
        let mut c = server.connect(r).await?;
        c.join("s", r).await?;
        readers.push(c);
    }
    let mut stalled = server.connect("stalled").await?;
    stalled.join("s", "z").await?;
    for _ in 0..3 {
        next_of(&mut w, "participant_joined").await?;
    }
    next_of(&mut readers[0], "participant_joined").await?;
    next_of(&mut readers[0], "participant_joined").await?;
    next_of(&mut readers[1], "participant_joined").await?;
    // The healthy readers keep reading: every edit, in order, up to the final "done".
    let healthy: Vec<_> = readers
        .into_iter()
        .map(|mut reader| {
            tokio::spawn(async move {
                let mut want = 1u64;
                loop {
                    let m = next(&mut reader).await?;
                    if m["type"] != "op" {
                        continue;
                    }
                    if m["version"] != want {
                        bail!("reader got version {} wanting {want}", m["version"]);
                    }
                    want += 1;
                    if m["ops"][0]["value"] == "done" {
                        return Ok::<u64, anyhow::Error>(want - 1);
                    }
                }
            })
        })
        .collect();
    // From here `stalled` never reads: its pings go unanswered and its queue backs up.
    let mut seq = 0u64;
    // Phase 1, light traffic: the unanswered pings move it down a tier.
    let mut polls = 0;
    while server.metric("montage_tier_down_total").await? == 0 {
        let n = seq;
        set_blob(&mut w, &mut seq, json!(n)).await?;
        polls += 1;
        if polls > 2000 {
            bail!("the stalled reader was never demoted");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        server.metric("montage_dropped_slow_total").await?,
        0,
        "dropped before demoted"
    );
    // Phase 2, heavy edits: its buffers and queue fill and it is dropped. Every edit is acked
    // before the next is sent: a writer held up by the stalled reader would stop the test here.
    let chunk = "x".repeat(100_000);
    let mut dropped = false;
    for _ in 0..400 {
        set_blob(&mut w, &mut seq, json!(chunk)).await?;
        if server.metric("montage_dropped_slow_total").await? >= 1 {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the stalled reader was never dropped");
    let last = set_blob(&mut w, &mut seq, json!("done")).await?;
    for h in healthy {
        assert_eq!(h.await??, last, "a healthy reader got every edit");
    }
    assert_eq!(server.metric("montage_dropped_slow_total").await?, 1);
    // The stalled socket ends; reading it now drains what the kernel held: the `tier` it was
    // told it moved down to, then edits up to where it was dropped, then the end.
    let mut tiers = Vec::new();
    let mut newest = 0;
    let ended = async {
        while let Some(Ok(m)) = stalled.ws.next().await {
            match m {
                Message::Text(t) => {
                    let v: Json = serde_json::from_str(t.as_str())?;
                    if v["type"] == "tier" {
                        tiers.push(v["tier"].as_str().unwrap_or_default().to_owned());
                    } else if v["type"] == "op" {
                        newest = v["version"].as_u64().unwrap_or_default();
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        Ok::<_, anyhow::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(30), ended).await??;
    assert!(
        tiers.iter().any(|t| t != "excellent"),
        "the stalled reader was never sent a lower tier: {tiers:?}"
    );
    assert!(newest < last, "the dropped reader got edits after the drop");
    Ok(())
}

async fn the_sdk_sets_and_follows_presence_and_reports_its_tier(b: Backend) -> Result<()> {
    use montage_client::{Event, Tier};
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let url = format!("ws://{}/v1/ws", server.addr);
    let ann = sdk(&url, "ann").await?;
    let bob = sdk(&url, "bob").await?;
    let a = ann.join("s").await?;
    let b = bob.join("s").await?;
    let mut events = b.events();

    // The tier: the answer to a hint, and watchable.
    let mut tier = ann.watch_tier();
    ann.set_quality(7.0).await?;
    let t =
        *tokio::time::timeout(Duration::from_secs(10), tier.wait_for(|t| t.is_some())).await??;
    assert_eq!(t, Some(Tier::Fair));
    assert_eq!(ann.tier(), Some(Tier::Fair));

    a.set_cursor(10.0, 20.0).await?;
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.next().await {
                Some(Event::Presence { user, data }) if user == "ann" => return Some(data),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await?;
    assert_eq!(got, Some(json!({"cursor":{"x":10.0,"y":20.0}})));
    assert_eq!(b.presence_of("ann"), got);
    let p = b
        .participants()
        .into_iter()
        .find(|p| p.user == "ann")
        .ok_or_else(|| anyhow::anyhow!("ann not listed"))?;
    assert!(p.online);
    assert_eq!(p.color.as_deref(), Some(colour("ann").as_str()));

    // Ann leaves: bob's view marks her offline and forgets her presence.
    a.leave().await?;
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.next().await {
                Some(Event::ParticipantLeft { user }) if user == "ann" => return,
                None => return,
                _ => {}
            }
        }
    })
    .await?;
    assert_eq!(b.presence_of("ann"), None);
    ann.close().await;
    bob.close().await;
    Ok(())
}
