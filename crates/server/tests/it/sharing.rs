//! Sharing through the Task Manager, signed webhooks, invites and recognition, against a real
//! local HTTP receiver (an axum listener on port 0 in this process).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use media_services::collaboration::{MediaCollaborationService, Recipient, RecognitionType};
use media_services::store::Store;
use media_services::tasks::connectors::{DEFAULT_REPLAY_WINDOW, HttpSender, verify};
use serde_json::{Value as Json, json};

use crate::harness::webhooks::{Answer, HOOK_SECRET, Receiver, now_secs};
use crate::harness::*;

backend_tests!(
    shares_arrive_signed_and_verifiable,
    failing_receiver_gets_exactly_one_more_delivery,
    invites_accepted_expired_revoked_used_up,
    recognition_rules,
    system_design_calls_run_as_written,
);

const WAIT: Duration = Duration::from_secs(15);

async fn start(b: Backend, dir: &std::path::Path, flags: &[String]) -> Result<Server> {
    let f: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start(b, dir, &f).await
}

async fn call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    user: &str,
    body: Option<Json>,
) -> Result<(u16, Json)> {
    http_json(&server.addr, method.as_str(), path, &token(user), body).await
}

async fn post(server: &Server, path: &str, user: &str, body: Json) -> Result<(u16, Json)> {
    call(server, reqwest::Method::POST, path, user, Some(body)).await
}

/// Joins `session` as `user` (the first joiner creates and owns it).
async fn joined(server: &Server, user: &str, session: &str) -> Result<Client> {
    let mut c = server.connect(user).await?;
    c.join(session, &format!("{user}-c")).await?;
    Ok(c)
}

/// The next frame of type `t`, skipping every other (task updates arrive at any time).
async fn recv_skipping(c: &mut Client, t: &str) -> Result<Json> {
    loop {
        let f = c.recv().await?;
        if f["type"] == t {
            return Ok(f);
        }
        if f["type"] == "error" {
            bail!("expected {t}, got {f}");
        }
    }
}

/// Reads `task` frames until task `id` reaches `state`; returns the states seen on the way.
async fn task_until(c: &mut Client, id: &str, state: &str) -> Result<Vec<Json>> {
    let mut seen = Vec::new();
    loop {
        let f = recv_skipping(c, "task").await?;
        if f["task"]["id"] != id {
            continue;
        }
        seen.push(f["task"].clone());
        if f["task"]["state"] == state {
            return Ok(seen);
        }
        if f["task"]["state"] == "dead" {
            bail!("task died: {f}");
        }
    }
}

async fn shares_arrive_signed_and_verifiable(b: Backend) -> Result<()> {
    let mut rx = Receiver::start(&[]).await?;
    let dir = tempfile::tempdir()?;
    let server = start(b, dir.path(), &rx.flags()).await?;
    let mut alice = joined(&server, "alice", "poster").await?;

    let (status, body) = post(
        &server,
        "/v1/sessions/poster/share",
        "alice",
        json!({"recipients": [
            {"type": "direct_message", "user": "bob", "message": "look"},
            {"type": "social_post", "network": "yapper"},
            {"type": "invite", "user": "carol", "role": "editor"},
        ]}),
    )
    .await?;
    assert_eq!(status, 202, "{body}");
    let tasks = body["tasks"].as_array().context("tasks")?.clone();
    assert_eq!(tasks.len(), 3);

    let mut hooks = Vec::new();
    for _ in 0..3 {
        hooks.push(rx.next().await?);
    }
    for h in &hooks {
        assert_eq!(h.verify(HOOK_SECRET), Ok(()), "{h:?}");
        assert!(tasks.iter().any(|t| t["id"] == h.delivery.as_str()));
        // The signature covers the body and the timestamp; a tampered copy fails.
        let mut forged = h.clone();
        forged.body.extend_from_slice(b" ");
        assert!(forged.verify(HOOK_SECRET).is_err());
        assert!(h.verify("wrong-secret").is_err());
        let stale = verify(
            HOOK_SECRET.as_bytes(),
            h.timestamp.as_deref(),
            h.signature.as_deref(),
            &h.body,
            now_secs() + 3_600,
            DEFAULT_REPLAY_WINDOW,
        );
        assert!(stale.is_err(), "replayed an hour later");
    }
    let of_type = |t: &str| {
        hooks
            .iter()
            .find(|h| h.json()["type"] == t)
            .map(|h| (h.connector.clone(), h.json()))
            .with_context(|| format!("no {t} webhook"))
    };
    let (dm_to, dm) = of_type("direct_message")?;
    let (invite_to, invite) = of_type("collaboration_invite")?;
    let (post_to, post_body) = of_type("social_post")?;
    assert_eq!(
        (dm_to.as_str(), invite_to.as_str(), post_to.as_str()),
        ("messenger", "messenger", "yapper")
    );
    assert_eq!(
        (dm["type"].as_str(), dm["to"].as_str(), dm["text"].as_str()),
        (Some("direct_message"), Some("bob"), Some("look"))
    );
    assert_eq!(invite["type"], "collaboration_invite");
    // Social posts link the rendered preview, never the editable session.
    let preview = post_body["preview_url"].as_str().context("preview_url")?;
    assert_eq!(
        preview,
        format!("http://{}/v1/sessions/poster/preview", server.addr)
    );
    assert!(!post_body.to_string().contains("/v1/ws"));
    assert!(post_body.get("invite_url").is_none());

    // The invite link works for carol, who becomes an editor (and is told so live).
    let mut carol = joined(&server, "carol", "poster").await?;
    let url = invite["invite_url"].as_str().context("invite_url")?;
    let id = url.rsplit('/').next().context("invite id")?;
    let (status, acc) = post(
        &server,
        &format!("/v1/invites/{id}/accept"),
        "carol",
        json!({}),
    )
    .await?;
    assert_eq!(
        (status, acc),
        (200, json!({"session":"poster","role":"editor"}))
    );
    let rc = recv_skipping(&mut carol, "role_changed").await?;
    assert_eq!(
        (rc["user"].as_str(), rc["role"].as_str()),
        (Some("carol"), Some("editor"))
    );
    carol
        .op(
            "poster",
            0,
            1,
            json!([{"op":"text","path":["title"],"pos":0,"ins":"hi"}]),
        )
        .await?;
    assert_eq!(recv_skipping(&mut carol, "ack").await?["version"], 1);
    // Nobody else may use carol's invite.
    let (status, _) = post(
        &server,
        &format!("/v1/invites/{id}/accept"),
        "mallory",
        json!({}),
    )
    .await?;
    assert_eq!(status, 403);

    // Every task ends succeeded, pushed to the session and readable over HTTP.
    for t in &tasks {
        let id = t["id"].as_str().context("id")?;
        let got = server.get_json(&format!("/v1/tasks/{id}"), "alice").await?;
        if got["state"] != "succeeded" {
            task_until(&mut alice, id, "succeeded").await?;
        }
        let got = server.get_json(&format!("/v1/tasks/{id}"), "alice").await?;
        assert_eq!(
            (got["state"].as_str(), got["attempts"].as_u64()),
            (Some("succeeded"), Some(1))
        );
    }
    let listed = server
        .get_json("/v1/sessions/poster/tasks", "alice")
        .await?;
    assert_eq!(listed["tasks"].as_array().map(Vec::len), Some(3));
    // Sessions are readable by link (viewer), so anyone signed in with the id may look; an
    // unknown id is 404 and a missing token 401.
    assert_eq!(server.get("/v1/tasks/nope", Some("alice")).await?.0, 404);
    let first = format!("/v1/tasks/{}", tasks[0]["id"].as_str().unwrap_or(""));
    assert_eq!(server.get(&first, None).await?.0, 401);
    // A viewer may not hand out invites; nobody may share an unknown session.
    let (status, _) = post(
        &server,
        "/v1/sessions/poster/share",
        "bob",
        json!({"recipients":[{"type":"invite","user":"x","role":"viewer"}]}),
    )
    .await?;
    assert_eq!(status, 403);
    let (status, _) = post(
        &server,
        "/v1/sessions/nope/share",
        "alice",
        json!({"recipients":[{"type":"direct_message","user":"x"}]}),
    )
    .await?;
    assert_eq!(status, 404);
    let (status, _) = post(
        &server,
        "/v1/sessions/poster/share",
        "alice",
        json!({"recipients":[{"type":"fax","user":"x"}]}),
    )
    .await?;
    assert_eq!(status, 400);
    Ok(())
}

async fn failing_receiver_gets_exactly_one_more_delivery(b: Backend) -> Result<()> {
    let mut rx = Receiver::start(&[Answer::Status(500), Answer::Status(503)]).await?;
    let dir = tempfile::tempdir()?;
    let server = start(b, dir.path(), &rx.flags()).await?;
    let mut alice = joined(&server, "alice", "clip").await?;
    let (status, body) = post(
        &server,
        "/v1/sessions/clip/share",
        "alice",
        json!({"recipients":[{"type":"direct_message","user":"bob"}]}),
    )
    .await?;
    assert_eq!(status, 202, "{body}");
    let id = body["tasks"][0]["id"].as_str().context("id")?.to_owned();
    let seen = task_until(&mut alice, &id, "succeeded").await?;
    let failed: Vec<u64> = seen
        .iter()
        .filter(|t| t["state"] == "failed")
        .filter_map(|t| t["attempts"].as_u64())
        .collect();
    assert_eq!(failed, vec![1, 2], "{seen:?}");
    let mut hooks = Vec::new();
    for _ in 0..3 {
        hooks.push(rx.next().await?);
    }
    assert!(
        hooks
            .iter()
            .all(|h| h.delivery == id && h.body == hooks[0].body)
    );
    assert!(hooks.iter().all(|h| h.verify(HOOK_SECRET).is_ok()));
    let t = server.get_json(&format!("/v1/tasks/{id}"), "alice").await?;
    assert_eq!(
        (t["state"].as_str(), t["attempts"].as_u64()),
        (Some("succeeded"), Some(3))
    );
    assert!(
        rx.rx.try_recv().is_err(),
        "a succeeded task is not delivered again"
    );

    // The same idempotency key gives the same task, and nothing is sent again.
    let again = |server: &Server| {
        let addr = server.addr.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("http://{addr}/v1/sessions/clip/share"))
                .bearer_auth(token("alice"))
                .header("idempotency-key", "k-1")
                .body(json!({"recipients":[{"type":"direct_message","user":"carol"}]}).to_string())
                .send()
                .await?;
            anyhow::Ok(serde_json::from_str::<Json>(&r.text().await?)?)
        }
    };
    let a = again(&server).await?;
    let b = again(&server).await?;
    assert_eq!(a["tasks"][0]["id"], b["tasks"][0]["id"]);
    let h = rx.next().await?;
    assert_eq!(h.json()["to"], "carol");
    task_until(
        &mut alice,
        a["tasks"][0]["id"].as_str().unwrap_or(""),
        "succeeded",
    )
    .await?;
    assert!(rx.rx.try_recv().is_err());
    Ok(())
}

async fn invites_accepted_expired_revoked_used_up(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let _alice = joined(&server, "alice", "deck").await?;
    let inv = |body: Json| post(&server, "/v1/sessions/deck/invites", "alice", body);

    // Public links give at most commenter; only editors and above invite.
    let (status, e) = inv(json!({"role":"editor"})).await?;
    assert_eq!(status, 403, "{e}");
    assert!(e["message"].as_str().unwrap_or("").contains("commenter"));
    let (status, _) = post(
        &server,
        "/v1/sessions/deck/invites",
        "bob",
        json!({"role":"viewer"}),
    )
    .await?;
    assert_eq!(status, 403);
    let (status, _) = inv(json!({"role":"commenter","max_uses":0})).await?;
    assert_eq!(status, 400);

    // Accepted, once per user, until the uses run out.
    let (status, once) = inv(json!({"role":"commenter","max_uses":1})).await?;
    assert_eq!(status, 201, "{once}");
    assert_eq!(once["role"], "commenter");
    assert!(once["expires_at"].as_u64().is_some());
    let id = once["id"].as_str().context("id")?.to_owned();
    assert_eq!(
        once["url"],
        format!("http://{}/v1/invites/{id}", server.addr)
    );
    let accept = |user: &'static str, id: String| {
        let server = &server;
        async move { post(server, &format!("/v1/invites/{id}/accept"), user, json!({})).await }
    };
    assert_eq!(
        accept("bob", id.clone()).await?,
        (200, json!({"session":"deck","role":"commenter"}))
    );
    assert_eq!(
        accept("bob", id.clone()).await?.0,
        200,
        "the same user again is free"
    );
    let (status, e) = accept("carol", id.clone()).await?;
    assert_eq!(
        (status, e["message"].as_str()),
        (403, Some("invite used up"))
    );
    // bob really is a commenter now: he may comment-level things but not edit.
    let mut bob = joined(&server, "bob", "deck").await?;
    bob.expect_error(
        json!({"type":"op","session":"deck","base":0,"seq":1,"ops":[{"op":"text","path":["title"],"pos":0,"ins":"x"}]}),
        "forbidden",
    )
    .await?;
    // An invite never lowers a role: the owner stays owner.
    let (_, v) = inv(json!({"role":"viewer"})).await?;
    let vid = v["id"].as_str().context("id")?.to_owned();
    assert_eq!(accept("alice", vid).await?.1["role"], "owner");

    // Revoked.
    let (_, r) = inv(json!({"role":"viewer"})).await?;
    let rid = r["id"].as_str().context("id")?.to_owned();
    let (status, _) = call(
        &server,
        reqwest::Method::DELETE,
        &format!("/v1/invites/{rid}"),
        "bob",
        None,
    )
    .await?;
    assert_eq!(status, 403, "only the creator or an owner revokes");
    let (status, _) = call(
        &server,
        reqwest::Method::DELETE,
        &format!("/v1/invites/{rid}"),
        "alice",
        None,
    )
    .await?;
    assert_eq!(status, 200);
    let (status, e) = accept("dave", rid).await?;
    assert_eq!(
        (status, e["message"].as_str()),
        (403, Some("invite revoked"))
    );

    // Expired: a one-second link, tried after it ran out (expiry is wall-clock time).
    let (_, x) = inv(json!({"role":"viewer","expires_in_s":1})).await?;
    let xid = x["id"].as_str().context("id")?.to_owned();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (status, e) = accept("erin", xid).await?;
    assert_eq!(
        (status, e["message"].as_str()),
        (403, Some("invite expired"))
    );
    let (status, _) = accept("erin", "no-such-invite".into()).await?;
    assert_eq!(status, 404);

    let list = server
        .get_json("/v1/sessions/deck/invites", "alice")
        .await?;
    assert_eq!(list["invites"].as_array().map(Vec::len), Some(4));
    Ok(())
}

async fn awards_of(server: &Server, user: &str) -> Result<Vec<Json>> {
    let v = server
        .get_json(&format!("/v1/users/{user}/awards"), user)
        .await?;
    Ok(v["awards"].as_array().cloned().unwrap_or_default())
}

async fn recognition_rules(b: Backend) -> Result<()> {
    let mut rx = Receiver::start(&[]).await?;
    let dir = tempfile::tempdir()?;
    let server = start(b, dir.path(), &rx.flags()).await?;
    let mut alice = joined(&server, "alice", "album").await?;
    alice
        .send(json!({"type":"set_role","session":"album","user":"bob","role":"editor"}))
        .await?;
    alice.recv_type("role_changed").await?;
    let mut bob = joined(&server, "bob", "album").await?;
    for seq in 1..=3 {
        bob.edit(
            "album",
            seq - 1,
            seq,
            json!([{"op":"text","path":["title"],"pos":0,"ins":"b"}]),
        )
        .await?;
    }
    // The badge follows the edits (recorded in the background): wait for it, then check it
    // is there once although three edits each met its rule.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut contrib = server
        .get_json("/v1/sessions/album/contributions", "alice")
        .await?;
    while contrib["contributions"][0]["count"] != 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        contrib = server
            .get_json("/v1/sessions/album/contributions", "alice")
            .await?;
    }
    // Badges are written right after the counts they follow from.
    let mut awards = awards_of(&server, "bob").await?;
    while awards.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        awards = awards_of(&server, "bob").await?;
    }
    assert_eq!(
        contrib["contributions"],
        json!([{"session":"album","user":"bob","kind":"edit_accepted","count":3}])
    );
    let badges: Vec<&Json> = awards
        .iter()
        .filter(|a| a["badge"] == "first_edit")
        .collect();
    assert_eq!(badges.len(), 1, "{awards:?}");
    assert_eq!(badges[0]["type"], "achievement_badge");
    assert_eq!(awards.len(), 1);

    let award = |by: &'static str, user: &'static str, t: &'static str| {
        let server = &server;
        async move {
            post(
                server,
                "/v1/sessions/album/awards",
                by,
                json!({"user": user, "type": t}),
            )
            .await
        }
    };
    let (status, e) = award("alice", "alice", "featured_creator").await?;
    assert_eq!(
        (status, e["message"].as_str()),
        (403, Some("nobody awards themselves"))
    );
    let (status, e) = award("bob", "alice", "community_spotlight").await?;
    assert_eq!(status, 403, "{e}");
    assert!(e["message"].as_str().unwrap_or("").contains("owner"));
    let (status, _) = award("alice", "bob", "achievement_badge").await?;
    assert_eq!(status, 400, "badges come from the rules only");
    let (status, first) = award("alice", "bob", "community_spotlight").await?;
    assert_eq!(status, 201, "{first}");
    let (status, second) = award("alice", "bob", "community_spotlight").await?;
    assert_eq!((status, &second["id"]), (201, &first["id"]));
    let all = server
        .get_json("/v1/sessions/album/awards", "alice")
        .await?;
    let spot = all["awards"].as_array().map_or(0, |a| {
        a.iter()
            .filter(|x| x["type"] == "community_spotlight")
            .count()
    });
    assert_eq!(spot, 1);

    // Social recognition posts to both feeds, signed, via tasks.
    let (status, sr) = award("bob", "alice", "social_recognition").await?;
    assert_eq!(status, 201, "{sr}");
    let mut feeds = vec![rx.next().await?, rx.next().await?];
    feeds.sort_by_key(|h| h.connector.clone());
    assert_eq!(
        feeds
            .iter()
            .map(|h| h.connector.as_str())
            .collect::<Vec<_>>(),
        ["allat", "yapper"]
    );
    for h in &feeds {
        assert!(h.verify(HOOK_SECRET).is_ok());
        let b = h.json();
        assert_eq!(
            (
                b["type"].as_str(),
                b["creator"].as_str(),
                b["awarded_by"].as_str()
            ),
            (Some("social_recognition"), Some("alice"), Some("bob"))
        );
    }
    let (status, _) = server.get("/v1/users/alice/awards", Some("bob")).await?;
    assert_eq!(status, 403);
    Ok(())
}

/// The system design's two calls, exactly as it writes them (kept out of rustfmt's hands so they
/// stay verbatim), against a real store, the real reqwest sender and the local receiver.
#[rustfmt::skip]
async fn system_design_calls_run_as_written(b: Backend) -> Result<()> {
    let mut rx = Receiver::start(&[]).await?;
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = b.open_store(dir.path()).await?;
    store.create_session("poster", media_services::store::NewSession::new("alice", montage_protocol::Role::Viewer)).await?;
    let mut cfg = media_services::collaboration::SharingConfig::default();
    cfg.connectors.add_url(&format!("messenger=http://{}/messenger", rx.addr)).map_err(anyhow::Error::msg)?;
    cfg.connectors.secret = HOOK_SECRET.as_bytes().to_vec();
    let sender = Arc::new(HttpSender::new(Duration::from_secs(10))?);
    let service = MediaCollaborationService::start(
        store.clone(),
        cfg,
        "https://montage.example".into(),
        sender,
        None,
    )?;

    let reward = service
        .scope("alice", async {
            let asset_id = "poster";
            let sharer_id = "alice";
            let creator_id = "bob";
            let recipients = vec![Recipient::DirectMessage {
                user: "bob".into(),
                message: None,
            }];

            // Share a media asset with other users
            MediaCollaborationService::share_media_asset(
                asset_id,
                sharer_id,
                recipients
            ).await?;

            // Award non-monetary recognition for contributions
            let reward = MediaCollaborationService::award_recognition(
                asset_id,
                creator_id,
                RecognitionType::CommunitySpotlight
            )?;
            anyhow::Ok(reward)
        })
        .await?;
    assert_eq!((reward.creator_id.as_str(), reward.kind), ("bob", RecognitionType::CommunitySpotlight));

    let dm = rx.next().await?;
    assert!(dm.verify(HOOK_SECRET).is_ok());
    assert_eq!(dm.json()["preview_url"], "https://montage.example/v1/sessions/poster/preview");

    // Outside a scope there is no current user, and bob may not spotlight anyone.
    assert!(MediaCollaborationService::award_recognition("poster", "carol", RecognitionType::FeaturedCreator).is_err());
    let refused = service
        .scope("bob", async {
            MediaCollaborationService::award_recognition("poster", "carol", RecognitionType::CommunitySpotlight)
        })
        .await;
    assert!(refused.is_err());

    // The queued award is stored by the writer.
    service.shutdown().await;
    let awards = service.db().awards(Some("poster"), Some("bob")).await?;
    assert_eq!(awards.len(), 1);
    assert_eq!(awards[0].key, reward.id);
    Ok(())
}
