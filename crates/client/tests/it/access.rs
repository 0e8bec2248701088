//! The SDK's side of access control (docs/PROTOCOL.md "Access") against the real server: token sources and
//! refresh before expiry, link access opened and closed live, refused joins, and the HTTP
//! session management helpers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use media_services::auth::{Auth, Claims};
use montage_client::{
    Api, Client, Component, ErrorCode, Event, Events, Op, Options, Role, SessionSettings, Value,
    path,
};

use montage_testkit::*;

backend_tests!(
    a_token_source_refreshes_before_expiry_and_the_socket_outlives_the_first_token,
    a_failed_refresh_is_reported_and_the_client_reconnects_with_a_new_token_after_expiry,
    a_token_for_another_user_is_never_sent,
    link_access_opens_and_closes_live,
    sessions_are_managed_over_http,
    recognition_and_the_showcase_over_http,
);

/// How long a test waits for one event.
const EVENT: Duration = Duration::from_secs(15);

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A token for `user` that expires at `exp`, optionally scoped to `sessions`.
fn token_until(user: &str, exp: u64, sessions: &[(&str, Role)]) -> Result<String> {
    let claims = Claims {
        sub: user.to_owned(),
        name: None,
        exp,
        nbf: None,
        sessions: (!sessions.is_empty()).then(|| {
            sessions
                .iter()
                .map(|(s, r)| ((*s).to_owned(), *r))
                .collect()
        }),
    };
    Ok(Auth::new(SECRET.as_bytes())?.sign(&claims)?)
}

/// A token source that hands out `tokens(n)` on its n-th call (from 0) and counts the calls.
fn counting_source(
    tokens: impl Fn(u32) -> Result<String, String> + Send + Sync + 'static,
) -> (impl montage_client::TokenSource, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let source = move || {
        let r = tokens(c.fetch_add(1, Ordering::SeqCst));
        async move { r }
    };
    (source, calls)
}

fn ws(server: &Server) -> String {
    format!("ws://{}/v1/ws", server.addr)
}

fn options(server: &Server, source: impl montage_client::TokenSource) -> Options {
    Options::with_token_source(ws(server), source)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// The next event that `pick` takes, skipping others.
async fn next_where<T>(
    events: &mut Events,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> Result<T> {
    loop {
        let e = tokio::time::timeout(EVENT, events.next())
            .await
            .context("timed out waiting for an event")?
            .context("events ended")?;
        if let Some(t) = pick(&e) {
            return Ok(t);
        }
    }
}

fn title(text: &str) -> Op {
    Op::new(vec![Component::set(path!["title"], Value::str(text))])
}

/// Sleeps until the wall clock is past second `t`.
async fn sleep_past(t: u64) {
    while now() <= t {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first token expires within a minute, so the server warns at once; the SDK asks the
/// source, sends `auth`, and the socket then outlives the first token.
///
/// The first token's `exp` is only 4 s ahead, not the ~62 s that would make the warning fall
/// exactly where it falls in production: the server warns as soon as less than 60 s are left,
/// so a short `exp` tests the same path, and waiting past it takes seconds instead of a
/// minute. An edit sent after the first `exp` is the proof: on the old token the server would
/// answer `unauthorized` and close the socket (4401).
async fn a_token_source_refreshes_before_expiry_and_the_socket_outlives_the_first_token(
    b: Backend,
) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    let first_exp = now() + 4;
    let second_exp = now() + 3600;
    let (source, calls) = counting_source(move |n| {
        let exp = if n == 0 { first_exp } else { second_exp };
        token_until("ann", exp, &[]).map_err(|e| e.to_string())
    });
    let client = Client::start(options(&server, source))?;
    let mut events = client.events();
    client.connected(SDK_SYNC).await?;
    let h = client.join("refresh").await?;
    h.edit(title("before"))?;
    h.sync(SDK_SYNC).await?;

    let exp = next_where(&mut events, |e| match e {
        Event::TokenRefreshed { exp } => Some(Ok(*exp)),
        Event::TokenFailed { message } => Some(Err(message.clone())),
        _ => None,
    })
    .await?;
    ensure!(
        exp == Ok(second_exp),
        "refreshed to {exp:?}, want {second_exp}"
    );
    ensure!(client.user().as_deref() == Some("ann"));

    sleep_past(first_exp).await;
    h.edit(title("after"))?;
    h.sync(Duration::from_secs(10))
        .await
        .context("an edit after the first token's exp")?;
    let v = h.version();
    let head = server.get_json(&session_path("refresh"), "ann").await?;
    ensure!(
        head["state"]["title"] == "after" && head["version"] == v,
        "{head}"
    );
    // One connection all along: the source was asked once to connect and once to refresh.
    ensure!(
        calls.load(Ordering::SeqCst) == 2,
        "{} calls",
        calls.load(Ordering::SeqCst)
    );
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(50), events.next()).await {
        ensure!(
            !matches!(
                e,
                Event::ServerClosed { .. }
                    | Event::Connection(montage_client::ConnectionState::Disconnected)
            ),
            "the connection dropped: {e:?}"
        );
    }
    client.close().await;
    Ok(())
}

/// The source fails: reported, and the connection goes on with the old token. Once that
/// expires the server closes the socket (4401, reported as `ServerClosed`); the client
/// reconnects with a new token as soon as the source gives one, and the edit made in between
/// is not lost.
async fn a_failed_refresh_is_reported_and_the_client_reconnects_with_a_new_token_after_expiry(
    b: Backend,
) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    let first_exp = now() + 4;
    let failing = Arc::new(AtomicBool::new(true));
    let f = failing.clone();
    let (source, _calls) = counting_source(move |n| {
        if n == 0 {
            token_until("ann", first_exp, &[]).map_err(|e| e.to_string())
        } else if f.load(Ordering::SeqCst) {
            Err("token backend down".to_owned())
        } else {
            token_until("ann", now() + 3600, &[]).map_err(|e| e.to_string())
        }
    });
    let client = Client::start(options(&server, source))?;
    let mut events = client.events();
    client.connected(SDK_SYNC).await?;
    let h = client.join("expiry").await?;
    let failed = next_where(&mut events, |e| match e {
        Event::TokenFailed { message } => Some(message.clone()),
        Event::TokenRefreshed { exp } => Some(format!("refreshed to {exp}")),
        _ => None,
    })
    .await?;
    ensure!(failed.contains("token backend down"), "{failed}");
    // The old token still holds.
    h.edit(title("on the old token"))?;
    h.sync(Duration::from_secs(10)).await?;

    sleep_past(first_exp).await;
    h.edit(title("after expiry"))?;
    let (code, reason) = next_where(&mut events, |e| match e {
        Event::ServerClosed { code, reason } => Some((*code, reason.clone())),
        _ => None,
    })
    .await?;
    ensure!(
        code == 4401 && reason.contains("expired"),
        "{code} {reason}"
    );
    // Reconnecting needs a token the source can't give yet: reported again.
    next_where(&mut events, |e| {
        matches!(e, Event::TokenFailed { .. }).then_some(())
    })
    .await?;
    ensure!(h.pending() == 1, "the edit waits: {}", h.pending());
    failing.store(false, Ordering::SeqCst);
    h.sync(SDK_SYNC)
        .await
        .context("after the source recovered")?;
    let head = server.get_json(&session_path("expiry"), "ann").await?;
    ensure!(head["state"]["title"] == "after expiry", "{head}");
    client.close().await;
    Ok(())
}

/// A source that hands out another user's token: the SDK refuses it (an app bug must not
/// switch the client's user, whose replicas and unacknowledged edits belong to the first
/// user), reports it, keeps its connection and tries again. (Sent anyway, the server would
/// close the socket with 4401: `crates/server/tests/it/access.rs` covers that.)
async fn a_token_for_another_user_is_never_sent(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    let first_exp = now() + 30;
    let final_exp = now() + 3600;
    let (source, calls) = counting_source(move |n| match n {
        0 => token_until("ann", first_exp, &[]).map_err(|e| e.to_string()),
        1 => token_until("bob", final_exp, &[]).map_err(|e| e.to_string()),
        _ => token_until("ann", final_exp, &[]).map_err(|e| e.to_string()),
    });
    let client = Client::start(options(&server, source))?;
    let mut events = client.events();
    client.connected(SDK_SYNC).await?;
    let h = client.join("who").await?;
    let failed = next_where(&mut events, |e| match e {
        Event::TokenFailed { message } => Some(message.clone()),
        _ => None,
    })
    .await?;
    ensure!(
        failed.contains("\"bob\"") && failed.contains("\"ann\""),
        "{failed}"
    );
    // Retried after a second: ann's own token.
    let exp = next_where(&mut events, |e| match e {
        Event::TokenRefreshed { exp } => Some(Ok(*exp)),
        Event::TokenFailed { message } => Some(Err(message.clone())),
        _ => None,
    })
    .await?;
    ensure!(exp == Ok(final_exp), "refreshed to {exp:?}");
    ensure!(calls.load(Ordering::SeqCst) == 3);
    ensure!(client.user().as_deref() == Some("ann"));
    h.edit(title("still ann"))?;
    h.sync(Duration::from_secs(10)).await?;
    let ops = all_ops(&server.addr, "who", "ann").await?;
    ensure!(ops.len() == 1 && ops[0]["user"] == "ann", "{ops:?}");
    ensure!(client.connection_state() == montage_client::ConnectionState::Connected);
    client.close().await;
    Ok(())
}

/// Private by default; the owner opens link access and a second user can join and edit, then
/// closes it and that user is taken out at once. Refusals come back from `join()` with their
/// code, and a deleted session is `not_found`.
async fn link_access_opens_and_closes_live(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let mut flags = OPEN_LIMITS.to_vec();
    flags.push("--default-link-role=none");
    let server = Server::start(b, dir.path(), &flags).await?;
    let ann = Client::start(sdk_options(&ws(&server), "ann"))?;
    let film = ann.join("film").await?;
    ensure!(film.role() == Some(Role::Owner) && film.link_role() == Some(Role::Removed));
    let mut ann_ev = film.events();

    let bob = Client::start(sdk_options(&ws(&server), "bob"))?;
    let refused = match bob.join("film").await {
        Err(e) => e,
        Ok(_) => bail!("bob joined a private session"),
    };
    ensure!(refused.code() == Some(ErrorCode::Forbidden), "{refused}");
    ensure!(
        refused.to_string().contains("ask its owner to share it"),
        "{refused}"
    );
    bob.connected(SDK_SYNC)
        .await
        .context("a refused join does not hold the connection back")?;

    film.set_link_role(Role::Editor).await?;
    let role = next_where(&mut ann_ev, |e| match e {
        Event::LinkRoleChanged { role } => Some(*role),
        _ => None,
    })
    .await?;
    ensure!(role == Role::Editor && film.link_role() == Some(Role::Editor));
    let bob_film = bob.join("film").await?;
    ensure!(bob_film.role() == Some(Role::Editor));
    let mut bob_ev = bob_film.events();
    bob_film.edit(title("bob was here"))?;
    bob_film.sync(SDK_SYNC).await?;
    film.wait_version(bob_film.version(), SDK_SYNC).await?;

    // Only the owner sets link access: bob's try comes back on that session's events.
    bob_film.set_link_role(Role::Viewer).await?;
    let (code, message) = next_where(&mut bob_ev, |e| match e {
        Event::Error { code, message } => Some((*code, message.clone())),
        _ => None,
    })
    .await?;
    ensure!(
        code == ErrorCode::Forbidden && message.contains("owner"),
        "{code:?} {message}"
    );

    film.set_link_role(Role::Removed).await?;
    let seen = next_where(&mut bob_ev, |e| match e {
        Event::LinkRoleChanged { role } => Some(format!("link {}", role.as_str())),
        Event::AccessLost { message } => Some(format!("lost {message}")),
        _ => None,
    })
    .await?;
    ensure!(seen == "link none", "{seen}");
    let lost = next_where(&mut bob_ev, |e| match e {
        Event::AccessLost { message } => Some(message.clone()),
        _ => None,
    })
    .await?;
    ensure!(lost.contains("film"), "{lost}");
    ensure!(bob_film.gone().and_then(|e| e.code()) == Some(ErrorCode::Forbidden));
    let edit = bob_film.edit(title("too late"));
    ensure!(
        matches!(&edit, Err(e) if e.code() == Some(ErrorCode::Forbidden)),
        "{edit:?}"
    );
    next_where(&mut ann_ev, |e| {
        matches!(e, Event::ParticipantLeft { user } if user == "bob").then_some(())
    })
    .await?;
    let again = bob.join("film").await.err().context("bob rejoined")?;
    ensure!(again.code() == Some(ErrorCode::Forbidden), "{again}");

    // Deleted: the owner's handle hears it, and the id is not found from then on.
    ann.api()?.delete_session("film").await?;
    next_where(&mut ann_ev, |e| {
        matches!(e, Event::SessionDeleted).then_some(())
    })
    .await?;
    ensure!(film.gone().is_some());
    let gone = ann
        .join("film")
        .await
        .err()
        .context("joined a deleted session")?;
    ensure!(gone.code() == Some(ErrorCode::NotFound), "{gone}");
    ensure!(gone.to_string().contains("deleted"), "{gone}");
    ann.close().await;
    bob.close().await;
    Ok(())
}

/// Create, list, update and delete through `Api`, with the server's refusals as typed errors.
async fn sessions_are_managed_over_http(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let mut flags = OPEN_LIMITS.to_vec();
    flags.push("--default-link-role=none");
    let server = Server::start(b, dir.path(), &flags).await?;
    let base = format!("http://{}", server.addr);
    let ann = Api::new(&base, token("ann"))?;
    let bob = Api::new(&ws(&server), token("bob"))?;

    let made = ann
        .create_session(&SessionSettings::new().title("Trailer"))
        .await?;
    ensure!(made.id.len() >= 22, "server-made id {:?}", made.id);
    ensure!(made.role == Role::Owner && made.link_role == Some(Role::Removed));
    ensure!(made.title.as_deref() == Some("Trailer") && made.version == 0);
    let open = ann
        .create_session(&SessionSettings::new().link_role(Role::Viewer))
        .await?;
    ensure!(open.link_role == Some(Role::Viewer) && open.title.is_none());

    let mine = ann.sessions().await?;
    let ids: Vec<&str> = mine.iter().map(|s| s.id.as_str()).collect();
    ensure!(
        ids.contains(&made.id.as_str()) && ids.contains(&open.id.as_str()),
        "{ids:?}"
    );
    ensure!(bob.sessions().await?.is_empty());

    // Bob can't join the private one until ann shares it by link.
    let bob_ws = Client::start(sdk_options(&ws(&server), "bob"))?;
    let e = bob_ws.join(&made.id).await.err().context("joined")?;
    ensure!(e.code() == Some(ErrorCode::Forbidden), "{e}");
    let changed = ann
        .update_session(
            &made.id,
            &SessionSettings::new()
                .link_role(Role::Commenter)
                .title("Trailer v2"),
        )
        .await?;
    ensure!(changed.link_role == Some(Role::Commenter));
    ensure!(changed.title.as_deref() == Some("Trailer v2"));
    let h = bob_ws.join(&made.id).await?;
    ensure!(h.role() == Some(Role::Commenter) && h.title().as_deref() == Some("Trailer v2"));

    // Only the owner changes or deletes it.
    for r in [
        bob.update_session(&made.id, &SessionSettings::new().link_role(Role::Editor))
            .await
            .map(drop),
        bob.delete_session(&made.id).await,
    ] {
        ensure!(
            matches!(&r, Err(e) if e.code() == Some(ErrorCode::Forbidden)),
            "{r:?}"
        );
    }
    let bad = ann
        .update_session(&made.id, &SessionSettings::new().link_role(Role::Owner))
        .await;
    ensure!(
        matches!(&bad, Err(e) if e.code() == Some(ErrorCode::BadRequest)),
        "{bad:?}"
    );
    // A scoped token reaches only what it names and creates nothing.
    let scoped = Api::new(
        &base,
        token_until("ann", now() + 600, &[(open.id.as_str(), Role::Viewer)])?,
    )?;
    let r = scoped.create_session(&SessionSettings::new()).await;
    ensure!(
        matches!(&r, Err(e) if e.code() == Some(ErrorCode::Forbidden)),
        "{r:?}"
    );
    let listed: Vec<_> = scoped
        .sessions()
        .await?
        .into_iter()
        .map(|s| (s.id, s.role))
        .collect();
    ensure!(
        listed == vec![(open.id.clone(), Role::Viewer)],
        "{listed:?}"
    );

    let mut bob_ev = h.events();
    ann.delete_session(&made.id).await?;
    next_where(&mut bob_ev, |e| {
        matches!(e, Event::SessionDeleted).then_some(())
    })
    .await?;
    let again = ann.delete_session(&made.id).await;
    ensure!(
        matches!(&again, Err(e) if e.code() == Some(ErrorCode::NotFound)),
        "{again:?}"
    );
    let left: Vec<String> = ann.sessions().await?.into_iter().map(|s| s.id).collect();
    ensure!(left == vec![open.id.clone()], "{left:?}");
    // A bad token is not a server refusal of the request but of the caller.
    let nobody = Api::new(&base, "not-a-token")?;
    let r = nobody.sessions().await;
    ensure!(
        matches!(&r, Err(e) if e.code() == Some(ErrorCode::Unauthorized)),
        "{r:?}"
    );
    bob_ws.close().await;
    Ok(())
}

/// Awards, a user's recognition and the showcase through the SDK: the spotlight shows the
/// version awarded to anyone signed in, and only members see the award on the user.
async fn recognition_and_the_showcase_over_http(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let mut flags = OPEN_LIMITS.to_vec();
    flags.push("--default-link-role=none");
    let server = Server::start(b, dir.path(), &flags).await?;
    let base = format!("http://{}", server.addr);
    let ann = Api::new(&base, token("ann"))?;
    let carol = Api::new(&base, token("carol"))?;
    let made = ann
        .create_session(&SessionSettings::new().title("Poster"))
        .await?;
    let r = ann.award(&made.id, "bob", "community_spotlight").await;
    ensure!(
        matches!(&r, Err(e) if e.code() == Some(ErrorCode::BadRequest)),
        "bob is no member yet: {r:?}"
    );
    ann.update_session(&made.id, &SessionSettings::new().link_role(Role::Viewer))
        .await?;
    let id = ann.award(&made.id, "bob", "community_spotlight").await?;
    ensure!(ann.award(&made.id, "bob", "community_spotlight").await? == id);

    let seen = ann.recognition("bob").await?;
    ensure!(
        seen.user == "bob"
            && seen.awards.len() == 1
            && seen.awards[0].kind == "community_spotlight"
            && seen.awards[0].awarded_by.as_deref() == Some("ann"),
        "{seen:?}"
    );
    let shown = carol.showcase(None, 10).await?;
    ensure!(
        shown.len() == 1
            && shown[0].award == id
            && shown[0].session == made.id
            && shown[0].title.as_deref() == Some("Poster")
            && shown[0].version == 0
            && shown[0]
                .preview_url
                .ends_with(&format!("/{}/0/preview", made.id)),
        "{shown:?}"
    );
    ensure!(carol.showcase(Some(shown[0].at), 10).await?.is_empty());
    // Private again: the award no longer shows on bob for carol, the showcase still does.
    ann.update_session(&made.id, &SessionSettings::new().link_role(Role::Removed))
        .await?;
    ensure!(carol.recognition("bob").await?.awards.is_empty());
    ensure!(carol.showcase(None, 10).await?.len() == 1);
    Ok(())
}
