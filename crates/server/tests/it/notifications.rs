//! Notifications and app events from outside (DESIGN §9.6): each user's inbox over HTTP and
//! the live `notification` frame on every open connection, whatever session it is in; the app's
//! signed event webhooks and the event feed.

use anyhow::{Context, Result, ensure};
use serde_json::{Value as Json, json};

use crate::harness::*;
use montage_testkit::webhooks::{Answer, HOOK_SECRET, Receiver};

backend_tests!(
    mentions_replies_roles_and_reading,
    decided_suggestions_and_targeted_invites_notify_their_user,
    app_events_are_signed_delivered_once_each_and_replayed_in_order,
    app_events_logged_before_a_restart_are_delivered_after_it,
    recognition_is_seen_where_the_session_is_and_reaches_its_creator,
    the_showcase_shows_the_awarded_version_and_each_newsletter_carries_it_once,
);

/// `user`'s inbox (unread only if `unread`), once it holds at least `n` items: items are
/// stored a moment after what caused them.
async fn inbox(s: &Server, user: &str, unread: bool, n: usize) -> Result<Vec<Json>> {
    let path = format!("/v1/notifications?unread={unread}");
    for _ in 0..200 {
        let (code, body) = as_user(s, "GET", &path, user, None).await?;
        ensure!(code == 200, "{code} {body}");
        let items = body["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if items.len() >= n {
            return Ok(items);
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    anyhow::bail!("{user}'s inbox never held {n} items")
}

/// Comments and returns the comment (its own `comment_added`).
async fn comment(c: &mut Client, session: &str, body: Json) -> Result<Json> {
    c.social(session, json!({"type": "comment", "comment": body}))
        .await
}

async fn mentions_replies_roles_and_reading(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let fast = [
        "--default-link-role=none",
        "--messages-per-sec=100000",
        "--edits-per-sec=100000",
    ];
    let s = Server::start(b, dir.path(), &fast).await?;
    let mut alice = Client::connect(&s.url(&token("alice"))).await?;
    alice.join("n", "a").await?;
    alice
        .send(json!({"type":"set_role","session":"n","user":"bob","role":"editor"}))
        .await?;
    alice.recv_type("role_changed").await?;

    // bob is offline; mallory can't see the session.
    let c1 = comment(
        &mut alice,
        "n",
        json!({"content":"@bob have a look, @mallory"}),
    )
    .await?;
    let items = inbox(&s, "bob", true, 2).await?;
    let mention = items
        .iter()
        .find(|n| n["kind"] == "mention")
        .cloned()
        .unwrap_or_default();
    ensure!(
        mention["session"] == "n"
            && mention["actor"] == "alice"
            && mention["comment_id"] == c1["id"]
            && mention["read"] == false,
        "{items:?}"
    );
    let role = items.iter().find(|n| n["kind"] == "role_changed");
    ensure!(
        role.is_some_and(|r| r["role"] == "editor" && r["actor"] == "alice"),
        "{items:?}"
    );
    ensure!(items.len() == 2, "{items:?}");
    let (_, none) = as_user(&s, "GET", "/v1/notifications", "mallory", None).await?;
    ensure!(
        none["notifications"] == json!([]),
        "a stranger was notified: {none}"
    );

    // bob, online in another session, hears of a reply to his comment at once.
    let mut bob = Client::connect(&s.url(&token("bob"))).await?;
    bob.join("n", "b").await?;
    let mine = comment(&mut bob, "n", json!({"content":"done"})).await?;
    bob.send(json!({"type":"leave","session":"n"})).await?;
    bob.join("elsewhere", "b").await?;
    let reply = json!({"content":"thanks","parent_id":mine["id"]});
    let r1 = comment(&mut alice, "n", reply.clone()).await?;
    let live = match bob.next_notification().await {
        Ok(l) => l,
        Err(e) => {
            let all = inbox(&s, "bob", false, 0).await?;
            anyhow::bail!("the live reply: {e}; inbox {all:?}");
        }
    };
    ensure!(
        live["kind"] == "reply" && live["comment_id"] == r1["id"] && live["count"] == 1,
        "{live}"
    );

    // Reading: one by id, then all.
    let read = Some(json!({"ids": [mention["id"]]}));
    let (code, marked) = as_user(&s, "POST", "/v1/notifications/read", "bob", read).await?;
    ensure!(code == 200 && marked["marked"] == 1, "{code} {marked}");
    let unread = inbox(&s, "bob", true, 0).await?;
    ensure!(
        unread.iter().all(|n| n["id"] != mention["id"]) && unread.len() == 2,
        "{unread:?}"
    );
    let all = Some(json!({"all": true}));
    let (code, _) = as_user(&s, "POST", "/v1/notifications/read", "bob", all).await?;
    ensure!(code == 200, "{code}");
    ensure!(inbox(&s, "bob", true, 0).await?.is_empty(), "still unread");
    let (code, _) = as_user(&s, "POST", "/v1/notifications/read", "bob", Some(json!({}))).await?;
    ensure!(code == 400, "an empty body: {code}");
    let both = Some(json!({"ids": ["x"], "all": true}));
    let (code, _) = as_user(&s, "POST", "/v1/notifications/read", "bob", both).await?;
    ensure!(code == 400, "ids and all at once: {code}");
    let many: Vec<String> = (0..1_001).map(|i| format!("n{i}")).collect();
    let (code, e) = as_user(
        &s,
        "POST",
        "/v1/notifications/read",
        "bob",
        Some(json!({"ids": many})),
    )
    .await?;
    ensure!(
        code == 413 && e["code"] == "too_large",
        "1,001 ids: {code} {e}"
    );

    // A burst of 50 replies in one thread is one unread item.
    for _ in 0..50 {
        comment(&mut alice, "n", reply.clone()).await?;
    }
    let mut last = json!(null);
    for i in 0..50 {
        last = bob
            .next_notification()
            .await
            .with_context(|| format!("reply {i} of the burst"))?;
    }
    ensure!(last["count"] == 50, "{last}");
    let unread = inbox(&s, "bob", true, 1).await?;
    ensure!(
        unread.len() == 1 && unread[0]["kind"] == "reply" && unread[0]["count"] == 50,
        "{unread:?}"
    );
    ensure!(
        inbox(&s, "bob", false, 4).await?.len() == 4,
        "read items are kept"
    );
    // Without a token: 401, for reading and for marking.
    let (code, _) = http_get(&s.addr, "/v1/notifications", None).await?;
    ensure!(code == 401, "{code}");
    let (code, _) = http_json(
        &s.addr,
        "POST",
        "/v1/notifications/read",
        "",
        Some(json!({"all": true})),
    )
    .await?;
    ensure!(code == 401, "marking without a token: {code}");
    Ok(())
}

async fn decided_suggestions_and_targeted_invites_notify_their_user(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &["--default-link-role=none"]).await?;
    let mut alice = Client::connect(&s.url(&token("alice"))).await?;
    alice.join("d", "a").await?;
    alice
        .send(json!({"type":"set_role","session":"d","user":"carol","role":"commenter"}))
        .await?;
    alice.recv_type("role_changed").await?;
    let mut carol = Client::connect(&s.url(&token("carol"))).await?;
    carol.join("d", "c").await?;
    let ops = json!([{"op":"set","path":["title"],"value":"t"}]);
    for _ in 0..2 {
        carol
            .send(json!({"type":"suggest","session":"d","base":0,"ops":ops}))
            .await?;
    }
    let mut ids = Vec::new();
    while ids.len() < 2 {
        let m = alice.recv().await?;
        if m["type"] == "suggestion_added" {
            ids.push(m["suggestion"]["id"].clone());
        }
    }
    alice
        .send(json!({"type":"suggestion_accept","session":"d","id":ids[0]}))
        .await?;
    alice
        .send(json!({"type":"suggestion_reject","session":"d","id":ids[1]}))
        .await?;
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let n = carol.next_notification().await?;
        if n["kind"] != "role_changed" {
            ensure!(n["actor"] == "alice" && n["session"] == "d", "{n}");
            kinds.push(n["kind"].as_str().unwrap_or_default().to_owned());
        }
    }
    kinds.sort();
    ensure!(
        kinds == ["suggestion_accepted", "suggestion_rejected"],
        "{kinds:?}"
    );

    // An invite only dave may accept reaches dave's inbox; a public link reaches nobody's.
    let invites = format!("{}/invites", session_path("d"));
    let body = Some(json!({"role": "editor", "for": "dave"}));
    let (code, inv) = as_user(&s, "POST", &invites, "alice", body).await?;
    ensure!(code == 200 || code == 201, "{code} {inv}");
    let items = inbox(&s, "dave", true, 1).await?;
    ensure!(
        items[0]["kind"] == "invite" && items[0]["role"] == "editor" && items[0]["session"] == "d",
        "{items:?}"
    );
    Ok(())
}

/// `--events-url`: every app event reaches the receiver signed, through the Task Manager — the
/// first one after two failures, with the same delivery id and bytes each time — and
/// `GET /v1/events` replays them in order to a service user only.
async fn app_events_are_signed_delivered_once_each_and_replayed_in_order(b: Backend) -> Result<()> {
    let mut rx = Receiver::start(&[Answer::Status(500), Answer::Status(503)]).await?;
    let dir = fast_tempdir()?;
    let mut flags = rx.flags();
    flags.extend(
        [
            "--events-url",
            &format!("http://{}/events", rx.addr),
            "--service-users",
            "backend",
        ]
        .map(String::from),
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let s = Server::start(b, dir.path(), &flags).await?;
    let mut alice = Client::connect(&s.url(&token("alice"))).await?;
    alice.join("ev", "a").await?;

    let mut created = Vec::new();
    for _ in 0..3 {
        let h = rx.next().await?;
        ensure!(h.connector == "events", "{h:?}");
        created.push(h);
    }
    ensure!(
        created
            .iter()
            .all(|h| h.delivery == created[0].delivery && h.body == created[0].body),
        "retries differ: {created:?}"
    );
    ensure!(
        created.iter().all(|h| h.verify(HOOK_SECRET).is_ok()),
        "unsigned"
    );
    let first = created[0].json();
    ensure!(
        first["type"] == "session.created"
            && first["session"] == "ev"
            && first["data"]["owner"] == "alice",
        "{first}"
    );

    let c = comment(&mut alice, "ev", json!({"content":"hello"})).await?;
    let h = rx.next().await?;
    let second = h.json();
    ensure!(
        second["type"] == "comment.created"
            && second["data"]["comment_id"] == c["id"]
            && second["seq"].as_u64() > first["seq"].as_u64()
            && h.delivery != created[0].delivery,
        "{second}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    ensure!(rx.rx.try_recv().is_err(), "an event was delivered twice");

    // The pull feed: the same events in order, after a sequence number; service users only.
    let (code, feed) = as_user(&s, "GET", "/v1/events?after=0", "backend", None).await?;
    ensure!(code == 200, "{code} {feed}");
    let types: Vec<&str> = feed["events"]
        .as_array()
        .map(|l| l.iter().filter_map(|e| e["type"].as_str()).collect())
        .unwrap_or_default();
    ensure!(types == ["session.created", "comment.created"], "{feed}");
    ensure!(
        feed["events"][0] == first && feed["events"][1] == second,
        "{feed}"
    );
    let after = format!("/v1/events?after={}", first["seq"]);
    let (_, rest) = as_user(&s, "GET", &after, "backend", None).await?;
    ensure!(rest["events"].as_array().map(Vec::len) == Some(1), "{rest}");
    let (code, _) = as_user(&s, "GET", "/v1/events", "alice", None).await?;
    ensure!(code == 403, "a user who is not a service user: {code}");
    let (code, _) = http_get(&s.addr, "/v1/events", None).await?;
    ensure!(code == 401, "the feed without a token: {code}");
    Ok(())
}

/// A user's recognition as others see it: badges and awards of the sessions the reader can
/// view, nothing of the others; the award reaches the creator's inbox.
async fn recognition_is_seen_where_the_session_is_and_reaches_its_creator(
    b: Backend,
) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &["--default-link-role=none"]).await?;
    let mut alice = Client::connect(&s.url(&token("alice"))).await?;
    alice.join("rec", "a").await?;
    alice
        .send(json!({"type":"set_role","session":"rec","user":"bob","role":"editor"}))
        .await?;
    alice.recv_type("role_changed").await?;
    let mut bob = Client::connect(&s.url(&token("bob"))).await?;
    bob.join("rec", "b").await?;
    bob.edit(
        "rec",
        0,
        1,
        json!([{"op":"set","path":["title"],"value":"mine"}]),
    )
    .await?;
    let awards = format!("{}/awards", session_path("rec"));
    let body = Some(json!({"user": "bob", "type": "featured_creator"}));
    let (code, e) = as_user(&s, "POST", &awards, "alice", body).await?;
    ensure!(code == 200 || code == 201, "{code} {e}");

    // The first-edit badge comes a moment after the edit (contributions are counted in the
    // background).
    let mut seen = json!(null);
    for _ in 0..200 {
        let (code, r) = as_user(&s, "GET", "/v1/users/bob/recognition", "alice", None).await?;
        ensure!(code == 200, "{code} {r}");
        if r["badges"].as_array().is_some_and(|l| !l.is_empty()) {
            seen = r;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    ensure!(
        seen["badges"][0]["badge"] == "first_edit"
            && seen["awards"][0]["type"] == "featured_creator"
            && seen["awards"][0]["awarded_by"] == "alice",
        "{seen}"
    );
    // A stranger to the private session sees none of it.
    let (code, r) = as_user(&s, "GET", "/v1/users/bob/recognition", "carol", None).await?;
    ensure!(
        code == 200 && r["badges"] == json!([]) && r["awards"] == json!([]),
        "{code} {r}"
    );
    let (code, _) = http_get(&s.addr, "/v1/users/bob/recognition", None).await?;
    ensure!(code == 401, "recognition without a token: {code}");
    let items = inbox(&s, "bob", true, 2).await?;
    ensure!(
        items
            .iter()
            .any(|n| n["kind"] == "award" && n["actor"] == "alice"),
        "{items:?}"
    );
    Ok(())
}

/// The path of an absolute link the server made.
fn path_of(url: &Json) -> String {
    let url = url.as_str().unwrap_or_default();
    url.find("/v1/")
        .map_or_else(String::new, |i| url[i..].to_owned())
}

/// The newsletter hooks that arrive (the other connectors' are skipped), until `n` of them.
async fn newsletters(rx: &mut Receiver, n: usize) -> Result<Vec<Json>> {
    let mut out = Vec::new();
    while out.len() < n {
        let h = rx.next().await?;
        if h.connector == "newsletter" {
            ensure!(h.verify(HOOK_SECRET).is_ok(), "unsigned: {h:?}");
            out.push(h.json());
        }
    }
    Ok(out)
}

/// Featured Creator and Community Spotlight publish the version awarded: every signed-in user
/// lists it and opens its picture — of that version only, even though the session is private —
/// and deleting the session takes it away. Each newsletter issue carries the entries no issue
/// carried before, each project once, through the signed `newsletter` connector.
async fn the_showcase_shows_the_awarded_version_and_each_newsletter_carries_it_once(
    b: Backend,
) -> Result<()> {
    let mut rx = Receiver::start(&[Answer::Status(500)]).await?;
    let dir = fast_tempdir()?;
    let mut flags = rx.flags();
    flags.extend(
        [
            "--connector-url",
            &format!("newsletter=http://{}/newsletter", rx.addr),
            "--service-users",
            "backend",
            "--default-link-role=none",
        ]
        .map(String::from),
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let s = Server::start(b, dir.path(), &flags).await?;
    let mut alice = Client::connect(&s.url(&token("alice"))).await?;
    for id in ["show", "two"] {
        alice.join(id, "a").await?;
        alice
            .send(json!({"type":"set_role","session":id,"user":"bob","role":"editor"}))
            .await?;
        alice.recv_type("role_changed").await?;
    }
    let set = |v: &str| json!([{"op":"set","path":["title"],"value":v}]);
    alice.edit("show", 0, 1, set("first")).await?;
    let award = |session: &str, kind: &str| {
        let path = format!("{}/awards", session_path(session));
        let body = json!({"user": "bob", "type": kind});
        (path, body)
    };
    let (path, body) = award("show", "community_spotlight");
    let (code, e) = as_user(&s, "POST", &path, "alice", Some(body)).await?;
    ensure!(code == 201, "{code} {e}");
    alice.edit("show", 1, 2, set("second")).await?;

    // carol is a stranger to the session, yet sees the showcase and version 1's picture.
    let (code, list) = as_user(&s, "GET", "/v1/showcase", "carol", None).await?;
    ensure!(code == 200, "{code} {list}");
    let entry = &list["showcase"][0];
    ensure!(
        entry["session"] == "show"
            && entry["version"] == 1
            && entry["type"] == "community_spotlight"
            && entry["user"] == "bob"
            && entry["awarded_by"] == "alice"
            && list["showcase"].as_array().map(Vec::len) == Some(1),
        "{list}"
    );
    let shown = format!("{}?tier=poor", path_of(&entry["preview_url"]));
    let pic = montage_testkit::media::get(&s, &shown, Some("carol")).await?;
    ensure!(pic.status == 200, "the showcase picture: {}", pic.status);
    let own = format!("{}/preview?tier=poor&version=1", session_path("show"));
    let same = montage_testkit::media::get(&s, &own, Some("alice")).await?;
    ensure!(
        same.status == 200 && same.body == pic.body,
        "not the picture of version 1"
    );
    let newer = shown.replace("/1/preview", "/2/preview");
    let code = montage_testkit::media::get(&s, &newer, Some("carol"))
        .await?
        .status;
    ensure!(code == 404, "an unpublished version: {code}");
    let head = format!("{}/preview?tier=poor", session_path("show"));
    let code = montage_testkit::media::get(&s, &head, Some("carol"))
        .await?
        .status;
    ensure!(
        code == 404 || code == 403,
        "the session itself opened: {code}"
    );
    let (code, _) = http_get(&s.addr, "/v1/showcase", None).await?;
    ensure!(code == 401, "the showcase without a token: {code}");

    // The first issue (delivered after one failure) carries the spotlight.
    let (code, _) = as_user(&s, "POST", "/v1/newsletters", "alice", None).await?;
    ensure!(code == 403, "a user who is not a service user: {code}");
    let (code, issued) = as_user(&s, "POST", "/v1/newsletters", "backend", None).await?;
    ensure!(
        code == 201 && issued["newsletter"]["issue"] == 1,
        "{code} {issued}"
    );
    let first = newsletters(&mut rx, 2).await?;
    ensure!(first[0] == first[1], "a retry changed the issue: {first:?}");
    let projects = &first[0]["spotlighted_projects"];
    ensure!(
        first[0]["issue"] == 1
            && projects.as_array().map(Vec::len) == Some(1)
            && projects[0]["session"] == "show"
            && projects[0]["creators"] == json!(["bob"])
            && path_of(&projects[0]["preview_url"]) == path_of(&entry["preview_url"]),
        "{first:?}"
    );

    // The second carries only what is new: one project, however many spotlights, and the
    // featured creator.
    alice.edit("two", 0, 1, set("two")).await?;
    for kind in ["community_spotlight", "featured_creator"] {
        let (path, body) = award("two", kind);
        let (code, e) = as_user(&s, "POST", &path, "alice", Some(body)).await?;
        ensure!(code == 201, "{code} {e}");
    }
    let (code, issued) = as_user(&s, "POST", "/v1/newsletters", "backend", None).await?;
    ensure!(
        code == 201 && issued["newsletter"]["entries"].as_array().map(Vec::len) == Some(2),
        "{code} {issued}"
    );
    let second = newsletters(&mut rx, 1).await?.remove(0);
    ensure!(
        second["issue"] == 2
            && second["spotlighted_projects"].as_array().map(Vec::len) == Some(1)
            && second["spotlighted_projects"][0]["session"] == "two"
            && second["featured_creators"][0]["user"] == "bob",
        "{second}"
    );
    let (code, none) = as_user(&s, "POST", "/v1/newsletters", "backend", None).await?;
    ensure!(code == 200 && none["newsletter"].is_null(), "{code} {none}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    while let Ok(h) = rx.rx.try_recv() {
        ensure!(h.connector != "newsletter", "an issue came twice: {h:?}");
    }

    // Deleting the session takes it out of the showcase.
    let (code, e) = as_user(&s, "DELETE", &session_path("show"), "alice", None).await?;
    ensure!(code == 200 || code == 204, "{code} {e}");
    let (_, list) = as_user(&s, "GET", "/v1/showcase", "carol", None).await?;
    ensure!(
        list["showcase"]
            .as_array()
            .is_some_and(|l| l.iter().all(|e| e["session"] != "show")),
        "{list}"
    );
    let code = montage_testkit::media::get(&s, &shown, Some("carol"))
        .await?
        .status;
    ensure!(code == 404, "a deleted session's picture: {code}");
    Ok(())
}

/// An event in the log without its webhook task (here: logged before `--events-url` was set; in
/// life, a stop between the two writes) is delivered when the server starts again, once.
async fn app_events_logged_before_a_restart_are_delivered_after_it(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &["--service-users", "backend"]).await?;
    let mut alice = Client::connect(&s.url(&token("alice"))).await?;
    alice.join("early", "a").await?;
    let mut logged = json!([]);
    for _ in 0..200 {
        let (_, feed) = as_user(&s, "GET", "/v1/events", "backend", None).await?;
        if feed["events"].as_array().is_some_and(|l| !l.is_empty()) {
            logged = feed["events"].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    ensure!(logged[0]["type"] == "session.created", "{logged}");
    // No newsletter connector on this server: issuing one says so.
    let (code, e) = as_user(&s, "POST", "/v1/newsletters", "backend", None).await?;
    ensure!(code == 501 && e["code"] == "not_supported", "{code} {e}");
    drop(alice);
    s.stop().await;

    let mut rx = Receiver::start(&[]).await?;
    let mut flags = rx.flags();
    flags.extend(["--events-url".into(), format!("http://{}/events", rx.addr)]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let _s = Server::start(b, dir.path(), &flags).await?;
    let h = rx.next().await?;
    ensure!(
        h.connector == "events" && h.json() == logged[0] && h.verify(HOOK_SECRET).is_ok(),
        "{h:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    ensure!(rx.rx.try_recv().is_err(), "delivered twice");
    Ok(())
}
