//! The browser side, run as part of `cargo test` so the README's one test command covers it:
//! the TypeScript client's suite (`web/scripts/test.sh`: type check, vitest — the shared OT
//! vectors, the client model, a real WebSocket —, the published packages (`@montage/client`,
//! `@montage/react`) packed, installed and used from ESM, CommonJS and TypeScript, the React
//! hooks' vitest suite, both packages' API references (TypeDoc), the docs' TypeScript snippets
//! type-checked, and the check that the committed page bundle matches its sources), the
//! demo page served by the real binary, the Playwright tests driving that page in Debian's
//! Chromium (`web/scripts/e2e.sh`), and the React hooks on a test page in Chromium
//! (`web/scripts/react-e2e.sh`). They need Node.js 20, npm and /usr/bin/chromium
//! (`scripts/install-test-deps.sh`); without them they fail and say so rather than passing
//! silently.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::{Value as Json, json};

use crate::harness::{Served, Server, http_client};

fn web_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web"))
}

/// Runs a script, failing with its whole output.
fn run_script(script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let path = web_dir().join("scripts").join(script);
    let out = Command::new("bash")
        .arg(&path)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e} (is bash installed?)", path.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "web/scripts/{script} failed (it needs Node.js 20, npm and /usr/bin/chromium):\n{text}"
    );
    text
}

#[test]
fn web_client_suite_passes() {
    let _web = crate::harness::WEB_CLIENT
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let text = run_script("test.sh", &[], &[]);
    assert!(text.contains("Test Files"), "vitest did not report: {text}");
    for package in ["@montage/client", "@montage/react"] {
        let line = format!(
            "pack test: {package} (ESM import, CommonJS require, strict TypeScript with node16 \
             and bundler resolution) ok"
        );
        assert!(
            text.contains(&line),
            "the packed {package} was not installed and used: {text}"
        );
    }
    assert_eq!(
        text.matches("Test Files").count(),
        2,
        "vitest did not report for both web/client and web/react: {text}"
    );
    assert!(
        text.contains("crates/server/webapp matches its sources"),
        "the bundle check did not run: {text}"
    );
    for package in ["client", "react"] {
        assert!(
            text.contains(&format!(
                "typedoc: @montage/{package} API reference in web/{package}/docs-api"
            )),
            "the API reference of @montage/{package} was not built: {text}"
        );
    }
    // check-snippets.mjs: "snippets: N blocks type-check"; none found would mean it read nothing.
    let snippets = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("snippets: ")?
                .strip_suffix(" blocks type-check")
        })
        .and_then(|n| n.parse::<usize>().ok());
    assert!(
        snippets.is_some_and(|n| n > 0),
        "the docs' TypeScript snippets were not type-checked: {text}"
    );
}

/// `montage serve --dev` for the Chromium scenarios, with sessions private by default as the
/// product ships them (the harness opens link access for suites not about access; the page's
/// scenarios open it the real way, through the share dialog).
fn start_dev(dir: &std::path::Path) -> Result<Server> {
    Server::start(dir, &["--dev", "--default-link-role", "none"])
}

/// POST a JSON body; returns (status, body).
async fn post_json(addr: &str, path: &str, body: &str) -> Result<(u16, String)> {
    let resp = http_client()?
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

#[tokio::test]
async fn the_page_is_served_and_dev_tokens_need_dev() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &[])?;
    let (status, html) = server.get("/", None).await?;
    assert_eq!(status, 200);
    assert!(
        html.contains("/app.js") && html.contains("<title>Montage"),
        "{html}"
    );
    let (status, js) = server.get("/app.js", None).await?;
    assert_eq!(status, 200);
    assert!(js.contains("MontageClient"), "the bundle holds the client");
    let (status, css) = server.get("/app.css", None).await?;
    assert_eq!((status, css.is_empty()), (200, false));
    // Without --dev nobody gets a token for the asking.
    let (status, body) = post_json(&server.addr, "/v1/dev/token", r#"{"user":"alice"}"#).await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(serde_json::from_str::<Json>(&body)?["code"], "forbidden");
    drop(server);

    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["--dev"])?;
    for bad in [
        r#"{"user":""}"#,
        r#"{"name":"x"}"#,
        "not json",
        r#"{"user":"a\u0001b"}"#,
    ] {
        let (status, body) = post_json(&server.addr, "/v1/dev/token", bad).await?;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = post_json(
        &server.addr,
        "/v1/dev/token",
        r#"{"user":"alice","name":"Alice"}"#,
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let answer: Json = serde_json::from_str(&body)?;
    let token = answer["token"].as_str().context("no token")?;
    assert_eq!(answer["user"], "alice");
    // The token works: the WebSocket takes it and the creator owns the new session.
    let mut c = crate::harness::Client::connect(&server.url(token)).await?;
    let joined = c.join("dev-session", "tab").await?;
    assert_eq!(joined["role"], json!("owner"));
    Ok(())
}

/// Two browser contexts as two users in one session, in Debian's Chromium, against the real
/// binary: the owner opens link access, both edit, one goes offline and comes back, both end
/// with the same document and see each other's cursors; screenshots in web/app/test-results.
#[test]
fn two_users_edit_in_chromium() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start_dev(dir.path())?;
    let url = format!("http://{}", server.addr);
    let text = run_script("e2e.sh", &["editing"], &[("MONTAGE_URL", &url)]);
    assert!(text.contains("1 passed, 0 failed"), "{text}");
    Ok(())
}

/// Comments (drag a box, reply, resolve) and invite links in Chromium.
#[test]
fn comments_and_invites_in_chromium() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start_dev(dir.path())?;
    let url = format!("http://{}", server.addr);
    let text = run_script("e2e.sh", &["comments"], &[("MONTAGE_URL", &url)]);
    assert!(text.contains("1 passed, 0 failed"), "{text}");
    Ok(())
}

/// Live previews in Chromium: one user whose page subscribed edits at a human's pace; every
/// edit brings a `preview` frame on that page's own socket, also after a tier change.
#[test]
fn live_previews_of_ones_own_edits_in_chromium() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start_dev(dir.path())?;
    let url = format!("http://{}", server.addr);
    let text = run_script("e2e.sh", &["previews"], &[("MONTAGE_URL", &url)]);
    assert!(text.contains("1 passed, 0 failed"), "{text}");
    Ok(())
}

/// Private sessions in Chromium (DESIGN §9.1): the owner makes a session from her list; a
/// stranger opening its link sees the no-access panel; the owner opens link access to editors in
/// the share dialog and the stranger's page joins and edits; closing it takes him out; deleting
/// it empties her list and the stranger's page finds no session.
#[test]
fn private_sessions_and_sharing_in_chromium() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start_dev(dir.path())?;
    let url = format!("http://{}", server.addr);
    let text = run_script("e2e.sh", &["sharing"], &[("MONTAGE_URL", &url)]);
    assert!(text.contains("1 passed, 0 failed"), "{text}");
    Ok(())
}

/// Version history in Chromium (docs/PROTOCOL.md "Version history"): the owner sets the title
/// twice, then in the History dialog names, previews and restores the version of the first title;
/// both pages show it, and the owner's Undo takes the restore back on both.
#[test]
fn history_restore_and_undo_in_chromium() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start_dev(dir.path())?;
    let url = format!("http://{}", server.addr);
    let text = run_script("e2e.sh", &["history"], &[("MONTAGE_URL", &url)]);
    assert!(text.contains("1 passed, 0 failed"), "{text}");
    Ok(())
}

/// Notifications in the page: bob, in another session, sees alice's mention of him in his bell
/// and inbox, opens it (which takes him to her session) and marks everything read; the people
/// list there shows alice's badge.
#[test]
fn a_mention_shows_in_the_other_users_bell_in_chromium() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start_dev(dir.path())?;
    let url = format!("http://{}", server.addr);
    let text = run_script("e2e.sh", &["notifications"], &[("MONTAGE_URL", &url)]);
    assert!(text.contains("1 passed, 0 failed"), "{text}");
    Ok(())
}

/// The timeline in the page, two people at once: a video added, one's playhead seen by the other
/// and the composite frame at it, a split, a drag seen while it lasts and landing as one edit, a
/// trim; both pages and the server agree.
#[test]
fn two_people_edit_a_video_timeline_in_chromium() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start_dev(dir.path())?;
    let url = format!("http://{}", server.addr);
    let text = run_script("e2e.sh", &["timeline"], &[("MONTAGE_URL", &url)]);
    assert!(text.contains("1 passed, 0 failed"), "{text}");
    Ok(())
}

/// "auto" previews through Chromium's download throttling (2 Mbit/s, 8, none): the page reports
/// what its previews' bodies took, the connection moves to poor, fair and back to excellent, and
/// the pictures follow.
#[test]
fn previews_follow_a_throttled_link_in_chromium() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start_dev(dir.path())?;
    let url = format!("http://{}", server.addr);
    let text = run_script("e2e.sh", &["quality"], &[("MONTAGE_URL", &url)]);
    assert!(text.contains("1 passed, 0 failed"), "{text}");
    Ok(())
}

/// `@montage/react` in Chromium against the real binary: two users on a test page built from
/// the hooks (served from another origin by a node:http server) see each other through
/// `useOthers` with the note each types (`useMyPresence`), an edit on one page shows on the
/// other through `useDoc`, and one user's undo and redo (`useUndo`) reach the other.
#[test]
fn react_hooks_two_users_in_chromium() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start_dev(dir.path())?;
    let url = format!("http://{}", server.addr);
    let text = run_script("react-e2e.sh", &[], &[("MONTAGE_URL", &url)]);
    assert!(
        text.contains("react hooks, two users: 1 passed, 0 failed"),
        "{text}"
    );
    Ok(())
}

/// Runs `web/scripts/interop.sh FILE` (web/client/interop/FILE.test.ts, signed in as bob, with
/// `env` besides the URL, token, expected start and result path) while the Rust SDK's `h`
/// races it: from the TypeScript client's first "2" on (it types and goes offline a while),
/// sixty "1"s and " [rust done]" at the end of the title. Returns the title the TypeScript
/// client ended with, checked to hold every keystroke of both sides.
async fn race_typescript(
    h: &montage_client::SessionHandle,
    file: &'static str,
    env: &[(&'static str, &str)],
    ws: &str,
) -> Result<String> {
    use montage_client::{Component, Op, Value, path};
    use std::time::Duration;

    let token = crate::harness::token("bob");
    // Beside the data dir, not in it (tests search that for plain text).
    let out = tempfile::tempdir()?;
    let result = out.path().join("typescript-title.txt");
    let mut vars: Vec<(&'static str, String)> = vec![
        ("MONTAGE_WS_URL", ws.to_owned()),
        ("MONTAGE_TOKEN", token),
        ("MONTAGE_EXPECT", "typed in Rust".to_owned()),
        ("MONTAGE_RESULT", result.display().to_string()),
    ];
    vars.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let script = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let _web = crate::harness::WEB_CLIENT
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        run_script("interop.sh", &[file], &env)
    });
    let title_has_2 = || {
        h.state()
            .get("title")
            .and_then(Value::as_text)
            .is_some_and(|t| t.to_string().contains('2'))
    };
    let type_at_end = |s: &str| {
        h.edit_with(|d| {
            let n = d
                .get("title")
                .and_then(Value::as_text)
                .map_or(0, |t| t.len_chars());
            Some(Op::new(vec![Component::text_insert(path!["title"], n, s)]))
        })
    };
    // Each side's edits race the other's (in an encrypted session some lose to `conflict`).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while !title_has_2() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline && !script.is_finished(),
            "the TypeScript client never typed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..60 {
        type_at_end("1")?;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    type_at_end(" [rust done]")?;
    h.sync(crate::harness::SDK_SYNC).await?;
    let text = script.await?;
    anyhow::ensure!(text.contains("1 passed"), "{text}");
    let want = std::fs::read_to_string(&result)?;
    for (c, n) in [('1', 60), ('2', 30), ('3', 15)] {
        anyhow::ensure!(want.matches(c).count() == n, "{n} {c}s: {want}");
    }
    anyhow::ensure!(
        want.starts_with("typed in Rust + typed in TypeScript"),
        "{want}"
    );
    Ok(want)
}

/// Rust and TypeScript in one end-to-end encrypted session on a real server: the Rust SDK
/// creates it and types; the TypeScript SDK (web/scripts/interop.sh, web/client/interop) opens
/// that; both type at once, the TypeScript one also offline for a while, and they converge to
/// the same title with every keystroke; the Rust SDK reads the TypeScript comment. What either
/// typed is in no file of the server's data dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typescript_client_shares_an_encrypted_session_with_a_rust_one() -> Result<()> {
    use montage_client::sealed::{Keyring, SessionKey};
    use montage_client::{Component, Event, Op, Role, Value, path};

    let dir = crate::harness::fast_tempdir()?;
    let server = Server::start(dir.path(), &[])?;
    let ws = format!("ws://{}/v1/ws", server.addr);
    let key = SessionKey::generate();
    let alice = crate::harness::sdk(&ws, "alice").await?;
    let h = alice
        .join_encrypted("interop", Keyring::new(key.clone()))
        .await?;
    let mut events = h.events();
    h.set_role("bob", Role::Editor).await?;
    h.edit(Op::new(vec![Component::text_insert(
        path!["title"],
        0,
        "typed in Rust",
    )]))?;
    h.sync(crate::harness::SDK_SYNC).await?;

    let key_text = key.to_text();
    let want = race_typescript(
        &h,
        "encrypted",
        &[
            ("MONTAGE_SESSION", "interop"),
            ("MONTAGE_SESSION_KEY", &key_text),
        ],
        &ws,
    )
    .await?;
    let title = |v: &Value| {
        v.get("title")
            .and_then(Value::as_text)
            .map(ToString::to_string)
            .unwrap_or_default()
    };

    let mut comment = None;
    let deadline = tokio::time::Instant::now() + crate::harness::SDK_SYNC;
    while title(&h.state()) != want || comment.is_none() {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(Event::CommentAdded(c))) => comment = Some(c.content),
            Ok(Some(_)) => {}
            _ => anyhow::bail!(
                "the two clients did not converge, or the comment did not arrive: {:?} vs {want:?}, {comment:?}",
                title(&h.state())
            ),
        }
    }
    anyhow::ensure!(
        comment.as_deref() == Some("a comment sealed in TypeScript"),
        "{comment:?}"
    );
    alice.close().await;
    drop(server);
    let found = crate::harness::Backend::Sqlite
        .find_stored(dir.path(), "typed in")
        .await?;
    anyhow::ensure!(found.is_empty(), "stored in the clear: {found:?}");
    Ok(())
}

/// A TypeScript client speaking the binary subprotocol (`binary: binaryFrames`,
/// montage.v1.proto) and the Rust SDK speaking JSON edit one session on a real server
/// (web/scripts/interop.sh binary, web/client/interop/binary.test.ts): Rust creates it and
/// types; the TypeScript client reads that, both type at once (the TypeScript one also offline
/// for a while), and they converge to the same title with every keystroke; each reads the
/// other's presence, and Rust the comment the TypeScript client sent in binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_typescript_client_and_a_json_rust_one_converge() -> Result<()> {
    use montage_client::{Component, Event, Op, Role, Value, path};

    let dir = crate::harness::fast_tempdir()?;
    let server = Server::start(dir.path(), &[])?;
    let ws = format!("ws://{}/v1/ws", server.addr);
    let alice = crate::harness::sdk(&ws, "alice").await?;
    let h = alice.join("binary-interop").await?;
    let mut events = h.events();
    h.set_role("bob", Role::Editor).await?;
    h.edit(Op::new(vec![Component::text_insert(
        path!["title"],
        0,
        "typed in Rust",
    )]))?;
    h.presence(json!({"from": "rust", "at": [0.25, -3]}))
        .await?;
    h.sync(crate::harness::SDK_SYNC).await?;

    let want = race_typescript(&h, "binary", &[("MONTAGE_SESSION", "binary-interop")], &ws).await?;
    let title = |v: &Value| {
        v.get("title")
            .and_then(Value::as_text)
            .map(ToString::to_string)
            .unwrap_or_default()
    };

    // (Its presence is gone once it left: the event says what it was.)
    let (mut comment, mut presence) = (None, None);
    let deadline = tokio::time::Instant::now() + crate::harness::SDK_SYNC;
    while title(&h.state()) != want || comment.is_none() || presence.is_none() {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(Event::CommentAdded(c))) => comment = Some(c),
            Ok(Some(Event::Presence { user, data })) if user == "bob" => presence = Some(data),
            Ok(Some(_)) => {}
            _ => anyhow::bail!(
                "the two clients did not converge, or the comment or presence did not arrive: \
                 {:?} vs {want:?}, {comment:?}, {presence:?}",
                title(&h.state())
            ),
        }
    }
    let comment = comment.context("a comment")?;
    anyhow::ensure!(
        comment.content == "a comment from a binary client" && comment.author_id == "bob",
        "{comment:?}"
    );
    let drawing = comment.annotations.first().and_then(|a| a.drawing.clone());
    anyhow::ensure!(drawing == Some(json!({"strokes": [[1, 2]]})), "{comment:?}");
    anyhow::ensure!(
        presence
            == Some(
                json!({"from": "typescript", "big": 1_099_511_627_776u64, "list": [1.5, null, true, "ü"]})
            ),
        "{presence:?}"
    );
    alice.close().await;
    Ok(())
}

/// An end-to-end encrypted session in Chromium (docs/E2E.md): the owner makes one from her list
/// (its key in the link's `#key=` fragment) and shares the link; she uploads a picture (sealed in
/// her page), both pages draw it, the other moves and resizes it, both edit a text layer and
/// comment, the server answering only sealed data; pages without the key, or with a wrong one,
/// say why they can't read it and show no layers, and a picture changed on its way is not drawn.
#[test]
fn an_encrypted_session_in_chromium() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start_dev(dir.path())?;
    let url = format!("http://{}", server.addr);
    let text = run_script("e2e.sh", &["encrypted"], &[("MONTAGE_URL", &url)]);
    assert!(text.contains("1 passed, 0 failed"), "{text}");
    Ok(())
}
