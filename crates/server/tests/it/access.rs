//! Who may see a session (DESIGN §9.1), from outside: private by default, link access opened and
//! closed live, token scopes, session management over HTTP, deletion, removal that sticks, assets
//! that belong to their session, token refresh on an open socket, and quotas on shares. Every
//! server here runs with the product's default (`--default-link-role none`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use media_services::auth::{Auth, Claims};
use montage_protocol::Role;
use serde_json::{Value as Json, json};

use crate::harness::media::picture;
use crate::harness::*;

backend_tests!(
    a_stranger_is_refused_everywhere,
    link_access_is_opened_and_closed_live,
    token_scopes_decide_access,
    sessions_are_managed_over_http,
    delete_leaves_nothing_behind,
    removal_sticks,
    refresh_keeps_a_socket_past_its_first_token,
    sharing_needs_an_editor_and_has_quotas,
    sessions_only_from_the_api_with_no_create_on_join,
    session_creation_and_refresh_are_bounded,
);

/// The product default, named so the harness does not open link access.
const PRIVATE: &str = "--default-link-role=none";

async fn server(b: Backend, dir: &std::path::Path, extra: &[&str]) -> Result<Server> {
    let mut flags = vec![PRIVATE];
    flags.extend_from_slice(extra);
    Server::start(b, dir, &flags).await
}

/// A token for `user` with a `sessions` claim and `ttl` seconds to live.
fn scoped(user: &str, sessions: Option<&[(&str, Role)]>, ttl: u64) -> String {
    let claims = Claims {
        sub: user.into(),
        name: None,
        exp: now_secs() + ttl,
        nbf: None,
        sessions: sessions.map(|s| {
            s.iter()
                .map(|(k, r)| (k.to_string(), *r))
                .collect::<BTreeMap<_, _>>()
        }),
    };
    Auth::new(SECRET.as_bytes())
        .and_then(|a| a.sign(&claims))
        .unwrap_or_default()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A WebSocket client with a raw token.
async fn connect_with(server: &Server, token: &str) -> Result<Client> {
    Client::connect(&server.url(token)).await
}

fn set_title(text: &str) -> Json {
    json!([{"op":"set","path":["title"],"value":text}])
}

/// Joins and expects `forbidden`; returns the error's message.
async fn join_refused(c: &mut Client, session: &str, code: &str) -> Result<String> {
    let e = c
        .expect_error(
            json!({"type":"join","session":session,"client":"c","rid":"j"}),
            code,
        )
        .await?;
    Ok(e["message"].as_str().unwrap_or_default().to_owned())
}

async fn a_stranger_is_refused_everywhere(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = server(b, dir.path(), &[]).await?;
    let mut alice = s.connect("alice").await?;
    let j = alice.join("doc", "a").await?;
    ensure!(j["role"] == "owner" && j["link_role"] == "none", "{j}");
    alice.edit("doc", 0, 1, set_title("secret plan")).await?;
    alice
        .send(json!({"type":"comment","session":"doc","comment":{"content":"top secret"}}))
        .await?;
    alice.recv_type("comment_added").await?;
    // The upload for a session needs its editor: alice uploads for doc, bob may not.
    let asset = {
        let r = crate::harness::media::request(
            &s.addr,
            "POST",
            "/v1/assets?session=doc",
            Some("alice"),
            Some(&picture()?),
            &[],
        )
        .await?;
        ensure!(r.status == 201, "upload for doc: {}", r.status);
        r.json()?["id"].as_str().context("asset id")?.to_owned()
    };

    let mut bob = s.connect("bob").await?;
    let msg = join_refused(&mut bob, "doc", "forbidden").await?;
    ensure!(msg.contains("ask its owner"), "{msg}");
    // Every message for the session: forbidden, and nothing of it reaches bob.
    for m in [
        json!({"type":"op","session":"doc","base":1,"seq":1,"ops":set_title("mine")}),
        json!({"type":"presence","session":"doc","data":{"x":1}}),
        json!({"type":"comment","session":"doc","comment":{"content":"hi"}}),
        json!({"type":"set_role","session":"doc","user":"bob","role":"owner"}),
        json!({"type":"set_link_role","session":"doc","role":"editor"}),
        json!({"type":"suggest","session":"doc","base":1,"ops":set_title("x")}),
    ] {
        let e = bob.expect_error(m.clone(), "forbidden").await?;
        ensure!(!e.to_string().contains("secret"), "{m} leaked: {e}");
    }
    let e = bob
        .expect_error(
            json!({"type":"preview_subscribe","session":"doc"}),
            "forbidden",
        )
        .await?;
    ensure!(!e.to_string().contains("secret"), "{e}");

    // Every HTTP path of the session, its asset and its preview.
    let p = session_path("doc");
    for (method, path, body) in [
        ("GET", p.clone(), None),
        ("GET", format!("{p}/ops"), None),
        ("GET", format!("{p}/comments"), None),
        ("GET", format!("{p}/suggestions"), None),
        ("GET", format!("{p}/tasks"), None),
        ("GET", format!("{p}/invites"), None),
        ("GET", format!("{p}/contributions"), None),
        ("GET", format!("{p}/awards"), None),
        ("GET", format!("{p}/preview?tier=poor"), None),
        ("GET", format!("{p}/frame?t=0&tier=poor"), None),
        ("PATCH", p.clone(), Some(json!({"link_role":"editor"}))),
        ("DELETE", p.clone(), None),
        (
            "POST",
            format!("{p}/invites"),
            Some(json!({"role":"viewer"})),
        ),
        (
            "POST",
            format!("{p}/share"),
            Some(json!({"recipients":[{"type":"direct_message","user":"x"}]})),
        ),
        (
            "POST",
            format!("{p}/awards"),
            Some(json!({"user":"alice","type":"social_recognition"})),
        ),
        ("GET", format!("/v1/assets/{asset}"), None),
        ("GET", format!("/v1/assets/{asset}/meta"), None),
    ] {
        let (status, body) = as_user(&s, method, &path, "bob", body).await?;
        ensure!(
            status == 403 || status == 404,
            "{method} {path} answered {status} {body}"
        );
        ensure!(!body.to_string().contains("secret"), "{path} leaked {body}");
    }
    let r = crate::harness::media::request(
        &s.addr,
        "POST",
        "/v1/assets?session=doc",
        Some("bob"),
        Some(&picture()?),
        &[],
    )
    .await?;
    ensure!(r.status == 403, "bob uploaded for doc: {}", r.status);
    // The owner still reads all of it.
    let (status, body) = as_user(&s, "GET", &p, "alice", None).await?;
    ensure!(
        status == 200 && body["state"]["title"] == "secret plan",
        "{body}"
    );
    let (status, _) = as_user(&s, "GET", &format!("/v1/assets/{asset}"), "alice", None).await?;
    ensure!(status == 200, "owner's asset: {status}");
    Ok(())
}

async fn link_access_is_opened_and_closed_live(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = server(b, dir.path(), &[]).await?;
    let mut alice = s.connect("alice").await?;
    alice.join("doc", "a").await?;
    let mut bob = s.connect("bob").await?;
    join_refused(&mut bob, "doc", "forbidden").await?;

    // Opened to editors from the socket: alice's answer carries her rid.
    alice
        .send(json!({"type":"set_link_role","session":"doc","role":"editor","rid":7}))
        .await?;
    let ch = alice.recv_type("link_role_changed").await?;
    ensure!(ch["role"] == "editor" && ch["rid"] == 7, "{ch}");
    let j = bob.join("doc", "b").await?;
    ensure!(j["role"] == "editor" && j["link_role"] == "editor", "{j}");
    let v = bob.edit("doc", 0, 1, set_title("bob was here")).await?;
    ensure!(v == 1);

    // Only the owner changes it.
    bob.expect_error(
        json!({"type":"set_link_role","session":"doc","role":"none"}),
        "forbidden",
    )
    .await?;
    // Narrowed to viewers over HTTP: bob stays, but may no longer edit.
    let (status, body) = as_user(
        &s,
        "PATCH",
        &session_path("doc"),
        "alice",
        Some(json!({"link_role":"viewer"})),
    )
    .await?;
    ensure!(
        status == 200 && body["link_role"] == "viewer",
        "{status} {body}"
    );
    ensure!(next_of(&mut bob, "link_role_changed").await?["role"] == "viewer");
    ensure!(next_of(&mut alice, "link_role_changed").await?["role"] == "viewer");
    bob.expect_error(
        json!({"type":"op","session":"doc","base":1,"seq":2,"ops":set_title("no")}),
        "forbidden",
    )
    .await?;
    // Closed: bob is told, taken out (his live previews too), and refused from then on.
    bob.send(json!({"type":"preview_subscribe","session":"doc","tier":"poor","rid":"pv"}))
        .await?;
    next_of(&mut bob, "preview").await?;
    let (status, _) = as_user(
        &s,
        "PATCH",
        &session_path("doc"),
        "alice",
        Some(json!({"link_role":"none"})),
    )
    .await?;
    ensure!(status == 200);
    ensure!(next_of(&mut bob, "link_role_changed").await?["role"] == "none");
    let e = bob.recv_type("error").await?;
    ensure!(e["code"] == "forbidden", "{e}");
    ensure!(next_of(&mut alice, "link_role_changed").await?["role"] == "none");
    loop {
        let m = alice.recv().await?;
        if m["type"] == "participant_left" && m["user"] == "bob" {
            break;
        }
    }
    bob.expect_error(
        json!({"type":"presence","session":"doc","data":{}}),
        "forbidden",
    )
    .await?;
    // His preview subscription went with him: an edit now sends him nothing.
    alice.edit("doc", 1, 1, set_title("after")).await?;
    bob.expect_error(
        json!({"type":"preview_unsubscribe","session":"doc"}),
        "not_found",
    )
    .await?;
    let (status, _) = as_user(&s, "GET", &session_path("doc"), "bob", None).await?;
    ensure!(status == 403, "bob reads a closed session: {status}");
    join_refused(&mut bob, "doc", "forbidden").await?;
    // Bad values are refused.
    alice
        .expect_error(
            json!({"type":"set_link_role","session":"doc","role":"owner"}),
            "bad_request",
        )
        .await?;
    Ok(())
}

async fn token_scopes_decide_access(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = server(b, dir.path(), &[]).await?;
    let mut alice = s.connect("alice").await?;
    for id in ["team-a", "team-b", "other"] {
        alice.join(id, "a").await?;
    }
    // "other" is open to every signed-in editor; the scope still keeps carol out.
    alice
        .send(json!({"type":"set_link_role","session":"other","role":"editor"}))
        .await?;
    alice.recv_type("link_role_changed").await?;

    let scope: &[(&str, Role)] = &[
        ("team-*", Role::Viewer),
        ("team-a", Role::Editor),
        ("app-1", Role::Owner),
    ];
    let t = scoped("carol", Some(scope), 3600);
    let mut carol = connect_with(&s, &t).await?;
    // A prefix: viewer.
    let j = carol.join("team-b", "c").await?;
    ensure!(j["role"] == "viewer", "{j}");
    carol
        .expect_error(
            json!({"type":"op","session":"team-b","base":0,"seq":1,"ops":set_title("x")}),
            "forbidden",
        )
        .await?;
    // The exact id beats the prefix: editor.
    let j = carol.join("team-a", "c").await?;
    ensure!(j["role"] == "editor", "{j}");
    carol.edit("team-a", 0, 1, set_title("carol")).await?;
    // A session the scope does not name: refused whatever its link role.
    let msg = join_refused(&mut carol, "other", "forbidden").await?;
    ensure!(msg.contains("token"), "{msg}");
    let (status, _) = http_json(&s.addr, "GET", &session_path("other"), &t, None).await?;
    ensure!(
        status == 403,
        "scoped token read an unnamed session: {status}"
    );
    let (status, _) = http_json(&s.addr, "GET", &session_path("team-b"), &t, None).await?;
    ensure!(status == 200, "scoped viewer read: {status}");
    // A viewer scope creates nothing; an owner scope creates what it names.
    join_refused(&mut carol, "team-new", "forbidden").await?;
    let j = carol.join("app-1", "c").await?;
    ensure!(j["role"] == "owner", "{j}");
    // Scoped tokens create no sessions over HTTP either.
    let (status, _) = http_json(&s.addr, "POST", "/v1/sessions", &t, Some(json!({}))).await?;
    ensure!(status == 403, "scoped POST /v1/sessions: {status}");
    // A bad claim is no token at all.
    let bad = scoped("carol", Some(&[("a*b", Role::Viewer)]), 3600);
    let (status, _) = http_json(&s.addr, "GET", "/v1/sessions", &bad, None).await?;
    ensure!(status == 401, "bad scope accepted: {status}");

    // Refreshing to a narrower scope takes carol out of team-b (and app-1) at once.
    let narrower = scoped("carol", Some(&[("team-a", Role::Editor)]), 3600);
    carol.send(json!({"type":"auth","token":narrower})).await?;
    let mut out_of = Vec::new();
    while out_of.len() < 2 {
        let m = carol.recv().await?;
        if m["type"] == "error" {
            ensure!(m["code"] == "forbidden", "{m}");
            out_of.push(m["message"].as_str().unwrap_or("").to_owned());
        }
    }
    ensure!(
        out_of.iter().any(|m| m.contains("team-b")) && out_of.iter().any(|m| m.contains("app-1")),
        "{out_of:?}"
    );
    carol.edit("team-a", 1, 2, set_title("still in")).await?;
    carol
        .expect_error(
            json!({"type":"presence","session":"team-b","data":{}}),
            "forbidden",
        )
        .await?;
    Ok(())
}

async fn sessions_are_managed_over_http(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = server(b, dir.path(), &[]).await?;
    let (status, created) = as_user(
        &s,
        "POST",
        "/v1/sessions",
        "alice",
        Some(json!({"title":"Brief"})),
    )
    .await?;
    ensure!(status == 201, "{status} {created}");
    let id = created["id"].as_str().context("id")?.to_owned();
    ensure!(
        id.len() >= 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "id {id} is not 128 random bits in hex"
    );
    ensure!(created["role"] == "owner" && created["link_role"] == "none");
    let (_, other) = as_user(&s, "POST", "/v1/sessions", "alice", None).await?;
    ensure!(other["id"] != created["id"]);

    // A joined session is listed too, with its head version.
    let mut alice = s.connect("alice").await?;
    alice.join("joined-one", "a").await?;
    alice.edit("joined-one", 0, 1, set_title("t")).await?;
    let (status, list) = as_user(&s, "GET", "/v1/sessions", "alice", None).await?;
    ensure!(status == 200, "{list}");
    let list = list["sessions"].as_array().context("sessions")?.clone();
    ensure!(list.len() == 3, "{list:?}");
    let brief = list
        .iter()
        .find(|e| e["id"] == id.as_str())
        .context("listed")?;
    ensure!(
        brief["title"] == "Brief" && brief["role"] == "owner",
        "{brief}"
    );
    let joined = list
        .iter()
        .find(|e| e["id"] == "joined-one")
        .context("joined one listed")?;
    ensure!(
        joined["version"] == 1 && joined["updated"].as_i64() > Some(0),
        "{joined}"
    );
    let (_, bobs) = as_user(&s, "GET", "/v1/sessions", "bob", None).await?;
    ensure!(
        bobs["sessions"].as_array().is_some_and(Vec::is_empty),
        "{bobs}"
    );

    // Rename and open: only the owner.
    let path = session_path(&id);
    let (status, _) = as_user(&s, "PATCH", &path, "bob", Some(json!({"title":"Mine"}))).await?;
    ensure!(status == 403, "bob renamed: {status}");
    let (status, body) = as_user(
        &s,
        "PATCH",
        &path,
        "alice",
        Some(json!({"title":"Final","link_role":"commenter"})),
    )
    .await?;
    ensure!(status == 200 && body["title"] == "Final", "{status} {body}");
    let mut bob = s.connect("bob").await?;
    let j = bob.join(&id, "b").await?;
    ensure!(
        j["role"] == "commenter" && j["link_role"] == "commenter" && j["title"] == "Final",
        "{j}"
    );
    // Bad bodies and values.
    for body in [
        json!({"link_role":"owner"}),
        json!({"title":"x".repeat(201)}),
        json!({"colour":"red"}),
    ] {
        let (status, _) = as_user(&s, "PATCH", &path, "alice", Some(body.clone())).await?;
        ensure!(status == 400, "{body} answered {status}");
    }
    let (status, _) = as_user(
        &s,
        "POST",
        "/v1/sessions",
        "alice",
        Some(json!({"encrypted":true})),
    )
    .await?;
    ensure!(status == 201, "an encrypted session is created: {status}");
    let (status, _) = as_user(&s, "PATCH", &session_path("nope"), "alice", Some(json!({}))).await?;
    ensure!(status == 404);
    Ok(())
}

async fn delete_leaves_nothing_behind(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = server(b, dir.path(), &[]).await?;
    let mut alice = s.connect("alice").await?;
    alice.join("doc", "a").await?;
    alice.edit("doc", 0, 1, set_title("going")).await?;
    alice
        .send(json!({"type":"comment","session":"doc","comment":{"content":"c"}}))
        .await?;
    alice.recv_type("comment_added").await?;
    alice
        .send(json!({"type":"set_link_role","session":"doc","role":"commenter"}))
        .await?;
    alice.recv_type("link_role_changed").await?;
    let r = crate::harness::media::request(
        &s.addr,
        "POST",
        "/v1/assets?session=doc",
        Some("alice"),
        Some(&picture()?),
        &[],
    )
    .await?;
    ensure!(r.status == 201, "upload: {}", r.status);
    let asset = r.json()?["id"].as_str().context("asset id")?.to_owned();
    let (status, _) = as_user(
        &s,
        "POST",
        &format!("{}/invites", session_path("doc")),
        "alice",
        Some(json!({"role":"viewer"})),
    )
    .await?;
    ensure!(status == 201, "invite: {status}");
    let mut bob = s.connect("bob").await?;
    bob.join("doc", "b").await?;
    bob.send(json!({"type":"comment","session":"doc","comment":{"content":"bye"}}))
        .await?;
    bob.recv_type("comment_added").await?;

    let (status, _) = as_user(&s, "DELETE", &session_path("doc"), "bob", None).await?;
    ensure!(status == 403, "a commenter deleted: {status}");
    let (status, _) = as_user(&s, "DELETE", &session_path("doc"), "alice", None).await?;
    ensure!(status == 204, "delete: {status}");
    let gone = next_of(&mut bob, "session_deleted").await?;
    ensure!(gone["session"] == "doc");
    next_of(&mut alice, "session_deleted").await?;

    for path in [
        session_path("doc"),
        format!("{}/ops", session_path("doc")),
        format!("{}/comments", session_path("doc")),
        format!("/v1/assets/{asset}"),
        format!("/v1/assets/{asset}/meta"),
    ] {
        let (status, _) = as_user(&s, "GET", &path, "alice", None).await?;
        ensure!(status == 404, "{path} after delete: {status}");
    }
    // The id is not reused: a join is not_found, not a new session.
    let msg = join_refused(&mut alice, "doc", "not_found").await?;
    ensure!(msg.contains("deleted"), "{msg}");
    let (_, list) = as_user(&s, "GET", "/v1/sessions", "alice", None).await?;
    ensure!(
        list["sessions"].as_array().is_some_and(Vec::is_empty),
        "{list}"
    );
    // Nothing of it is left in the store or the blob directory.
    let left = rows_of(b, dir.path(), "doc").await?;
    ensure!(left.is_empty(), "rows left behind: {left:?}");
    let blob = dir.path().join("assets").join(&asset);
    ensure!(!blob.exists(), "blob {} left behind", blob.display());
    Ok(())
}

/// Rows still naming `session` in any of its tables (the sessions row is a tombstone and is
/// checked to hold nothing but its id).
async fn rows_of(b: Backend, dir: &std::path::Path, session: &str) -> Result<Vec<String>> {
    // One list of queries for both backends; only the placeholder differs.
    let p = match b {
        Backend::Sqlite => "?",
        Backend::Postgres => "$1",
    };
    let mut checks: Vec<(String, String)> = media_services::store::SESSION_TABLES
        .iter()
        .chain(&["assets"])
        .map(|t| {
            (
                t.to_string(),
                format!("SELECT COUNT(*) FROM {t} WHERE session = {p}"),
            )
        })
        .collect();
    checks.push((
        "sessions (an owner)".into(),
        format!("SELECT COUNT(*) FROM sessions WHERE id = {p} AND owner <> ''"),
    ));
    macro_rules! count_all {
        ($pool:expr) => {{
            let mut left = Vec::new();
            for (what, sql) in &checks {
                let n: i64 = sqlx::query_scalar(sql)
                    .bind(session)
                    .fetch_one(&$pool)
                    .await?;
                if n > 0 {
                    left.push(format!("{what}: {n}"));
                }
            }
            left
        }};
    }
    Ok(match b {
        Backend::Sqlite => {
            let url = format!("sqlite://{}?mode=ro", dir.join("montage.db").display());
            count_all!(sqlx::SqlitePool::connect(&url).await?)
        }
        Backend::Postgres => count_all!(sqlx::PgPool::connect(&database_of(dir)?.url).await?),
    })
}

async fn removal_sticks(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = server(b, dir.path(), &[]).await?;
    let mut alice = s.connect("alice").await?;
    alice.join("doc", "a").await?;
    let invites = format!("{}/invites", session_path("doc"));
    let (status, inv) = as_user(
        &s,
        "POST",
        &invites,
        "alice",
        Some(json!({"role":"editor","for":"bob","max_uses":1})),
    )
    .await?;
    ensure!(status == 201, "{inv}");
    let inv_id = inv["id"].as_str().context("invite id")?.to_owned();
    let accept = format!("/v1/invites/{inv_id}/accept");
    let (status, got) = as_user(&s, "POST", &accept, "bob", Some(json!({}))).await?;
    ensure!(status == 200 && got["role"] == "editor", "{status} {got}");
    let mut bob = s.connect("bob").await?;
    bob.join("doc", "b").await?;
    bob.edit("doc", 0, 1, set_title("bob")).await?;

    // Removed: told, taken out, refused.
    alice
        .send(json!({"type":"set_role","session":"doc","user":"bob","role":"none"}))
        .await?;
    next_of(&mut alice, "role_changed").await?;
    ensure!(next_of(&mut bob, "role_changed").await?["role"] == "none");
    let e = bob.recv_type("error").await?;
    ensure!(e["code"] == "forbidden", "{e}");
    // The used invite, a fresh one, and an open link bring him back no more.
    let (status, body) = as_user(&s, "POST", &accept, "bob", Some(json!({}))).await?;
    ensure!(status == 403, "used invite re-accepted: {status} {body}");
    let (_, fresh) = as_user(
        &s,
        "POST",
        &invites,
        "alice",
        Some(json!({"role":"viewer"})),
    )
    .await?;
    let fresh = format!("/v1/invites/{}/accept", fresh["id"].as_str().context("id")?);
    let (status, body) = as_user(&s, "POST", &fresh, "bob", Some(json!({}))).await?;
    ensure!(
        status == 403,
        "fresh invite let a removed user in: {status} {body}"
    );
    ensure!(
        body["message"].as_str().unwrap_or("").contains("removed"),
        "{body}"
    );
    alice
        .send(json!({"type":"set_link_role","session":"doc","role":"editor"}))
        .await?;
    next_of(&mut alice, "link_role_changed").await?;
    let msg = join_refused(&mut bob, "doc", "forbidden").await?;
    ensure!(msg.contains("removed"), "{msg}");
    let (status, _) = as_user(&s, "GET", &session_path("doc"), "bob", None).await?;
    ensure!(status == 403);
    // Only the owner's set_role brings him back.
    alice
        .send(json!({"type":"set_role","session":"doc","user":"bob","role":"viewer"}))
        .await?;
    alice.recv_type("role_changed").await?;
    let j = bob.join("doc", "b").await?;
    ensure!(j["role"] == "viewer", "{j}");
    Ok(())
}

async fn refresh_keeps_a_socket_past_its_first_token(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = server(b, dir.path(), &[]).await?;
    // A token with 3 s to live: the warning (due 60 s before) comes at once.
    let first = scoped("alice", None, 3);
    let mut alice = connect_with(&s, &first).await?;
    let warn = alice.recv_type("token_expiring").await?;
    let first_exp = warn["exp"].as_u64().context("exp")?;
    let second = scoped("alice", None, 3600);
    alice
        .send(json!({"type":"auth","token":second,"rid":"r"}))
        .await?;
    let authed = alice.recv_type("authed").await?;
    ensure!(
        authed["rid"] == "r" && authed["exp"].as_u64() > Some(first_exp),
        "{authed}"
    );
    // Past the first token's expiry the socket still works.
    let wait = (first_exp + 1).saturating_sub(now_secs());
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(200)).await;
    alice.join("doc", "a").await?;
    alice.edit("doc", 0, 1, set_title("still here")).await?;
    // A bad token is refused and the socket keeps its own.
    alice
        .expect_error(json!({"type":"auth","token":"not.a.jwt"}), "unauthorized")
        .await?;
    alice.edit("doc", 1, 2, set_title("and here")).await?;
    // Another user's token: refused, and the socket closes with 4401.
    alice
        .send(json!({"type":"auth","token":token("mallory")}))
        .await?;
    let e = alice.recv_type("error").await?;
    ensure!(e["code"] == "unauthorized", "{e}");
    let (code, _) = alice.recv_close().await?;
    ensure!(code == 4401, "close code {code}");
    // Without a refresh, a connection that only listens is closed when its token expires.
    let short = scoped("bob", None, 2);
    let mut bob = connect_with(&s, &short).await?;
    bob.recv_type("token_expiring").await?;
    let e = bob.recv_type("error").await?;
    ensure!(e["code"] == "unauthorized", "{e}");
    let (code, reason) = bob.recv_close().await?;
    ensure!(
        code == 4401 && reason.contains("expired"),
        "{code} {reason}"
    );
    Ok(())
}

async fn sharing_needs_an_editor_and_has_quotas(b: Backend) -> Result<()> {
    use crate::harness::webhooks::{HOOK_SECRET, Receiver};
    let rx = Receiver::start(&[]).await?;
    let hook = format!("messenger=http://{}/messenger", rx.addr);
    let dir = fast_tempdir()?;
    let s = server(
        b,
        dir.path(),
        &[
            "--connector-url",
            &hook,
            "--webhook-secret",
            HOOK_SECRET,
            "--shares-per-user",
            "2",
        ],
    )
    .await?;
    let mut alice = s.connect("alice").await?;
    alice.join("doc", "a").await?;
    alice
        .send(json!({"type":"set_link_role","session":"doc","role":"viewer"}))
        .await?;
    alice.recv_type("link_role_changed").await?;
    let share = format!("{}/share", session_path("doc"));
    let dm = |to: &str| json!({"recipients":[{"type":"direct_message","user":to}]});
    // A viewer may not make the server send messages, nor may a stranger to a private session.
    let (status, _) = as_user(&s, "POST", &share, "bob", Some(dm("x"))).await?;
    ensure!(status == 403, "a viewer shared: {status}");
    let (status, _) = as_user(&s, "POST", "/v1/sessions/nope/share", "bob", Some(dm("x"))).await?;
    ensure!(status == 404, "{status}");
    // The owner, within the hourly quota of 2 recipients.
    let (status, body) = as_user(&s, "POST", &share, "alice", Some(dm("u1"))).await?;
    ensure!(status == 202, "{status} {body}");
    let (status, _) = as_user(&s, "POST", &share, "alice", Some(dm("u2"))).await?;
    ensure!(status == 202);
    let (status, body) = as_user(&s, "POST", &share, "alice", Some(dm("u3"))).await?;
    ensure!(status == 429, "past the quota: {status} {body}");
    ensure!(
        body["message"].as_str().unwrap_or("").contains("quota"),
        "{body}"
    );
    // Recognition is among members: with the link closed, zed is none of them.
    let (status, _) = as_user(
        &s,
        "PATCH",
        &session_path("doc"),
        "alice",
        Some(json!({"link_role":"none"})),
    )
    .await?;
    ensure!(status == 200);
    let awards = format!("{}/awards", session_path("doc"));
    let (status, body) = as_user(
        &s,
        "POST",
        &awards,
        "alice",
        Some(json!({"user":"zed","type":"featured_creator"})),
    )
    .await?;
    ensure!(status == 400, "an award to a non-member: {status} {body}");
    alice
        .send(json!({"type":"set_role","session":"doc","user":"zed","role":"commenter"}))
        .await?;
    next_of(&mut alice, "role_changed").await?;
    let (status, body) = as_user(
        &s,
        "POST",
        &awards,
        "alice",
        Some(json!({"user":"zed","type":"featured_creator"})),
    )
    .await?;
    ensure!(status == 201, "an award to a member: {status} {body}");
    Ok(())
}

async fn sessions_only_from_the_api_with_no_create_on_join(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = server(b, dir.path(), &["--no-create-on-join"]).await?;
    let mut alice = s.connect("alice").await?;
    let msg = join_refused(&mut alice, "typo", "not_found").await?;
    ensure!(msg.contains("POST /v1/sessions"), "{msg}");
    let (status, created) = as_user(
        &s,
        "POST",
        "/v1/sessions",
        "alice",
        Some(json!({"link_role":"viewer"})),
    )
    .await?;
    ensure!(status == 201, "{created}");
    let id = created["id"].as_str().context("id")?;
    let j = alice.join(id, "a").await?;
    ensure!(j["role"] == "owner" && j["link_role"] == "viewer", "{j}");
    let mut bob = s.connect("bob").await?;
    ensure!(bob.join(id, "b").await?["role"] == "viewer");
    Ok(())
}

async fn session_creation_and_refresh_are_bounded(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = server(b, dir.path(), &["--sessions-per-user", "2"]).await?;
    // Two new sessions an hour: one over HTTP, one by join; the third is refused both ways.
    let (status, _) = as_user(&s, "POST", "/v1/sessions", "alice", None).await?;
    ensure!(status == 201);
    let mut alice = s.connect("alice").await?;
    alice.join("second", "a").await?;
    let (status, body) = as_user(&s, "POST", "/v1/sessions", "alice", None).await?;
    ensure!(status == 429, "third session over HTTP: {status} {body}");
    let msg = join_refused(&mut alice, "third", "rate_limited").await?;
    ensure!(msg.contains("per hour"), "{msg}");
    // Joining what exists is not creating; another user has a quota of their own.
    alice.join("second", "a2").await?;
    let (status, _) = as_user(&s, "POST", "/v1/sessions", "bob", None).await?;
    ensure!(status == 201);
    // A token in `auth` is bounded before it is verified.
    let huge = "x".repeat(montage_protocol::MAX_TOKEN_LEN + 1);
    alice
        .expect_error(json!({"type":"auth","token":huge}), "bad_request")
        .await?;
    alice
        .expect_error(json!({"type":"auth","token":""}), "bad_request")
        .await?;
    Ok(())
}
