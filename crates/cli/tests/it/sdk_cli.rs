//! The client commands of the `montage` binary against the real server.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use media_services::auth::Auth;
use montage_protocol::Role;
use serde_json::Value as Json;

use super::harness::{
    Backend, OPEN_LIMITS, Running, SECRET, Server, backend_tests, fast_tempdir, token,
};

backend_tests!(
    session_edit_show_history_watch_and_join_commands,
    scoped_tokens_and_session_management_commands,
    refusals_tls_roles_and_invites_from_the_command_line,
    versions_names_and_restores_from_the_command_line,
    encrypted_sessions_from_the_command_line,
);

fn montage(server: &Server, user: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_montage"))
        .args(args)
        .env("MONTAGE_URL", format!("http://{}", server.addr))
        .env("MONTAGE_TOKEN", token(user))
        .env("RUST_LOG", "warn")
        .output()?;
    ensure!(
        out.status.success(),
        "montage {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

async fn session_edit_show_history_watch_and_join_commands(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start_on(b, dir.path(), OPEN_LIMITS)?;
    let created: Json =
        serde_json::from_str(&montage(&server, "ann", &["session", "create", "cli"])?)?;
    ensure!(created["role"] == "owner", "{created}");

    // A watcher prints events as JSON lines.
    let watch = Running::start(
        Command::new(env!("CARGO_BIN_EXE_montage"))
            .args(["watch", "cli"])
            .env("MONTAGE_URL", format!("http://{}", server.addr))
            .env("MONTAGE_TOKEN", token("ann"))
            .env("RUST_LOG", "warn"),
    )?;
    watch.expect("\"joined\"")?;

    let v: Json = serde_json::from_str(&montage(
        &server,
        "ann",
        &[
            "edit",
            "cli",
            r#"[{"op":"set","path":["title"],"value":"Hi"}]"#,
        ],
    )?)?;
    ensure!(v["version"] == 1, "{v}");
    // A viewer's edit is refused: the command says so and exits non-zero (it used to print a
    // version and exit 0).
    let out = Command::new(env!("CARGO_BIN_EXE_montage"))
        .args([
            "edit",
            "cli",
            r#"[{"op":"set","path":["title"],"value":"nope"}]"#,
        ])
        .env("MONTAGE_URL", format!("http://{}", server.addr))
        .env("MONTAGE_TOKEN", token("val"))
        .env("RUST_LOG", "warn")
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("forbidden"),
        "a viewer's edit: {} / {err}",
        String::from_utf8_lossy(&out.stdout)
    );
    let shown: Json = serde_json::from_str(&montage(&server, "ann", &["session", "show", "cli"])?)?;
    ensure!(shown["state"]["title"] == "Hi", "{shown}");
    ensure!(shown["version"] == 1, "{shown}");
    // Showing a session that doesn't exist fails and creates nothing.
    ensure!(
        montage(&server, "ann", &["session", "show", "typo"]).is_err(),
        "showing a missing session succeeded"
    );
    let listed = montage(&server, "ann", &["session", "list"])?;
    ensure!(!listed.contains("\"typo\""), "show created it: {listed}");
    let hist = montage(&server, "ann", &["session", "history", "cli"])?;
    let entries: Vec<Json> = hist
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    ensure!(entries.len() == 1 && entries[0]["version"] == 1, "{hist}");

    // The watcher saw the edit.
    watch.expect_where("the edit", |l| l.contains("\"edit\"") && l.contains("Hi"))?;
    drop(watch);

    // The interactive client, scripted through stdin.
    let mut join = Command::new(env!("CARGO_BIN_EXE_montage"))
        .args(["join", "cli"])
        .env("MONTAGE_URL", format!("http://{}", server.addr))
        .env("MONTAGE_TOKEN", token("ann"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = join.stdin.take().context("stdin")?;
    stdin.write_all(
        b"title Holiday cut\nlayer add text t1\nrotate 0 90\nundo\nlayer set 0 x 42\nquit\n",
    )?;
    drop(stdin);
    let out = tokio::task::spawn_blocking(move || join.wait_with_output()).await??;
    let text = String::from_utf8(out.stdout)?;
    ensure!(text.contains("title: \"Holiday cut\""), "{text}");
    ensure!(text.contains("\"id\":\"t1\""), "{text}");
    let shown: Json = serde_json::from_str(&montage(&server, "ann", &["session", "show", "cli"])?)?;
    let layer = &shown["state"]["canvas"]["layers"][0];
    ensure!(shown["state"]["title"] == "Holiday cut", "{shown}");
    ensure!(layer["x"] == 42 && layer["rotation"] == 0, "{shown}");
    Ok(())
}

/// `montage ARGS` with `token` against `server`; the whole output, whatever the exit status.
fn montage_as(server: &Server, token: &str, args: &[&str]) -> Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_montage"))
        .args(args)
        .env("MONTAGE_URL", format!("http://{}", server.addr))
        .env("MONTAGE_TOKEN", token)
        .env("MONTAGE_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .output()?)
}

/// Its stdout as JSON, when it succeeded.
fn ok_json(out: &Output) -> Result<Json> {
    ensure!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Its stderr, when it failed as it must.
fn refused(out: &Output) -> Result<String> {
    ensure!(
        !out.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `montage token --sessions` mints scoped tokens the server honours; `montage sessions
/// create|list|share|delete` manage sessions; a refusal by the server exits non-zero.
async fn scoped_tokens_and_session_management_commands(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start_on(b, dir.path(), &["--default-link-role", "none"])?;
    let ann = token("ann");
    let bob = token("bob");

    // A private session with a server-made id.
    let made = ok_json(&montage_as(
        &server,
        &ann,
        &["sessions", "create", "--title", "Cut"],
    )?)?;
    let id = made["session"].as_str().context("no id")?.to_owned();
    ensure!(
        made["role"] == "owner" && made["link_role"] == "none",
        "{made}"
    );
    ensure!(made["title"] == "Cut", "{made}");
    let list = montage_as(&server, &ann, &["sessions", "list"])?;
    ensure!(list.status.success());
    let listed: Vec<Json> = String::from_utf8(list.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    ensure!(
        listed.len() == 1 && listed[0]["session"] == id.as_str(),
        "{listed:?}"
    );

    // Bob may neither read nor share it until ann opens it.
    let err = refused(&montage_as(&server, &bob, &["session", "show", &id])?)?;
    ensure!(
        err.contains("forbidden") && err.contains("ask its owner"),
        "{err}"
    );
    let err = refused(&montage_as(
        &server,
        &bob,
        &["sessions", "share", &id, "viewer"],
    )?)?;
    ensure!(err.contains("forbidden"), "{err}");
    let shared = ok_json(&montage_as(
        &server,
        &ann,
        &["sessions", "share", &id, "viewer"],
    )?)?;
    ensure!(shared["link_role"] == "viewer", "{shared}");
    let shown = ok_json(&montage_as(&server, &bob, &["session", "show", &id])?)?;
    ensure!(shown["version"] == 0, "{shown}");

    // A token scoped to other sessions reaches none of ann's; one naming it does, with its role.
    let mint = |args: &[&str]| -> Result<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_montage"))
            .arg("token")
            .args(args)
            .env("MONTAGE_JWT_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .output()?;
        ensure!(
            out.status.success(),
            "montage token {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    };
    let scoped = mint(&[
        "carl",
        "--sessions",
        "team-*=viewer,brief=editor",
        "--sessions",
        "team-a*=commenter",
        "--ttl",
        "120",
    ])?;
    let claims = Auth::new(SECRET.as_bytes())?.verify(&scoped)?;
    let want: std::collections::BTreeMap<String, Role> = [
        ("team-*".to_owned(), Role::Viewer),
        ("brief".to_owned(), Role::Editor),
        ("team-a*".to_owned(), Role::Commenter),
    ]
    .into();
    ensure!(
        claims.sub == "carl" && claims.sessions == Some(want),
        "{claims:?}"
    );
    ensure!(claims.exp.abs_diff(now() + 120) <= 2, "exp {}", claims.exp);
    let err = refused(&montage_as(&server, &scoped, &["session", "show", &id])?)?;
    ensure!(err.contains("forbidden"), "{err}");
    let err = refused(&montage_as(&server, &scoped, &["sessions", "create"])?)?;
    ensure!(err.contains("forbidden"), "{err}");
    let named = mint(&["carl", "--sessions", &format!("{id}=commenter")])?;
    let shown = ok_json(&montage_as(&server, &named, &["session", "show", &id])?)?;
    ensure!(shown["version"] == 0, "{shown}");
    // Creating a session that exists fails, whoever asks (it used to join it quietly).
    let err = refused(&montage_as(&server, &named, &["session", "create", &id])?)?;
    ensure!(err.contains("already exists"), "{err}");
    let err = refused(&montage_as(&server, &ann, &["session", "create", &id])?)?;
    ensure!(err.contains("already exists"), "{err}");
    for bad in ["x", "x=boss", "a=viewer,a=editor", "*x=viewer"] {
        let out = Command::new(env!("CARGO_BIN_EXE_montage"))
            .args(["token", "carl", "--sessions", bad])
            .env("MONTAGE_JWT_SECRET", SECRET)
            .output()?;
        ensure!(!out.status.success(), "--sessions {bad:?} accepted");
    }

    // Only the owner deletes; then the id is gone for everyone.
    let err = refused(&montage_as(&server, &bob, &["sessions", "delete", &id])?)?;
    ensure!(err.contains("forbidden"), "{err}");
    ok_json(&montage_as(&server, &ann, &["sessions", "delete", &id])?)?;
    let err = refused(&montage_as(&server, &ann, &["session", "show", &id])?)?;
    ensure!(
        err.contains("not_found") && err.contains("deleted"),
        "{err}"
    );
    let err = refused(&montage_as(&server, &ann, &["sessions", "delete", &id])?)?;
    ensure!(err.contains("not_found"), "{err}");
    Ok(())
}

/// `montage ARGS` with only the arguments given (no MONTAGE_* from the environment).
fn montage_args(args: &[&str]) -> Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_montage"))
        .args(args)
        .env_remove("MONTAGE_URL")
        .env_remove("MONTAGE_TOKEN")
        .env_remove("MONTAGE_CA_FILE")
        .env("RUST_LOG", "warn")
        .output()?)
}

/// A refused token fails at once with the server's reason; an unreachable server fails with
/// the cause; global flags go after the subcommand; `wss://` works with `--ca-file`; `role`
/// and `invite` manage access; `watch` prints comments as JSON.
async fn refusals_tls_roles_and_invites_from_the_command_line(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start_on(b, dir.path(), &["--default-link-role", "none"])?;
    let url = format!("http://{}", server.addr);
    let ann = token("ann");
    let bob = token("bob");

    // A bad token: refused at once (not a 30 s timeout), saying why and what to do.
    let t0 = std::time::Instant::now();
    let out = montage_args(&["watch", "s", "--url", &url, "--token", "not.a.jwt"])?;
    let err = refused(&out)?;
    ensure!(
        err.contains("refused the token") && err.contains("invalid token"),
        "{err}"
    );
    ensure!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t0.elapsed()
    );
    let expired = super::harness::token_ttl("ann", 0);
    let err = refused(&montage_args(&[
        "edit", "s", "[]", "--url", &url, "--token", &expired,
    ])?)?;
    ensure!(err.contains("token expired"), "{err}");
    // No token at all, and nothing listening: both say what to do.
    let err = refused(&montage_args(&["session", "list", "--url", &url])?)?;
    ensure!(
        err.contains("no token") && err.contains("montage token"),
        "{err}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let err = refused(&montage_args(&[
        "watch",
        "s",
        "--url",
        &format!("http://{closed}"),
        "--token",
        &ann,
    ])?)?;
    ensure!(err.contains("could not connect"), "{err}");

    // Global flags after the subcommand; a session made by id.
    let made = ok_json(&montage_args(&[
        "session", "create", "cut", "--url", &url, "--token", &ann,
    ])?)?;
    ensure!(made["role"] == "owner", "{made}");

    // wss:// through a TLS endpoint, trusted with --ca-file; refused without it.
    let proxy = super::harness::tls::TlsProxy::start(&server.addr).await?;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &proxy.cert_pem)?;
    let port = proxy.addr.rsplit(':').next().unwrap_or_default();
    let https = format!("https://localhost:{port}");
    let edited = ok_json(&montage_args(&[
        "--url",
        &https,
        "--token",
        &ann,
        "--ca-file",
        ca.to_str().context("path")?,
        "edit",
        "cut",
        r#"[{"op":"set","path":["title"],"value":"secure"}]"#,
    ])?)?;
    ensure!(edited["version"] == 1, "{edited}");
    let shown = ok_json(&montage_args(&[
        "session",
        "show",
        "cut",
        "--url",
        &https,
        "--token",
        &ann,
        "--ca-file",
        ca.to_str().context("path")?,
    ])?)?;
    ensure!(shown["state"]["title"] == "secure", "{shown}");
    let err = refused(&montage_args(&[
        "session", "show", "cut", "--url", &https, "--token", &ann,
    ])?)?;
    ensure!(err.to_lowercase().contains("certificate"), "{err}");

    // Roles: bob can't see the private session until ann gives him a role; only owners set them.
    let err = refused(&montage_args(&[
        "session", "show", "cut", "--url", &url, "--token", &bob,
    ])?)?;
    ensure!(err.contains("forbidden"), "{err}");
    let set = ok_json(&montage_args(&[
        "role",
        "cut",
        "bob",
        "commenter",
        "--url",
        &url,
        "--token",
        &ann,
    ])?)?;
    ensure!(set["user"] == "bob" && set["role"] == "commenter", "{set}");
    ok_json(&montage_args(&[
        "session", "show", "cut", "--url", &url, "--token", &bob,
    ])?)?;
    let err = refused(&montage_args(&[
        "role", "cut", "carl", "editor", "--url", &url, "--token", &bob,
    ])?)?;
    ensure!(err.contains("forbidden"), "{err}");

    // Invites: ann makes one for carl; carl sees and accepts it; then it is used up.
    let inv = ok_json(&montage_args(&[
        "invite",
        "create",
        "cut",
        "--role",
        "editor",
        "--for",
        "carl",
        "--max-uses",
        "1",
        "--url",
        &url,
        "--token",
        &ann,
    ])?)?;
    let id = inv["id"].as_str().context("invite id")?.to_owned();
    ensure!(inv["role"] == "editor" && inv["for"] == "carl", "{inv}");
    let carl = token("carl");
    let shown = ok_json(&montage_args(&[
        "invite", "show", &id, "--url", &url, "--token", &carl,
    ])?)?;
    ensure!(shown["session"] == "cut", "{shown}");
    let accepted = ok_json(&montage_args(&[
        "invite", "accept", &id, "--url", &url, "--token", &carl,
    ])?)?;
    ensure!(
        accepted["session"] == "cut" && accepted["role"] == "editor",
        "{accepted}"
    );
    let listed = montage_args(&["invite", "list", "cut", "--url", &url, "--token", &ann])?;
    ensure!(listed.status.success());
    ensure!(
        String::from_utf8(listed.stdout)?.contains("\"uses\":1"),
        "the invite's use is not listed"
    );
    let err = refused(&montage_args(&[
        "invite", "accept", &id, "--url", &url, "--token", &bob,
    ])?)?;
    ensure!(err.contains("forbidden"), "{err}");
    ok_json(&montage_args(&[
        "invite", "revoke", &id, "--url", &url, "--token", &ann,
    ])?)?;

    // watch prints a comment as JSON with its fields, not a debug string.
    let watch = Running::start(
        Command::new(env!("CARGO_BIN_EXE_montage"))
            .args(["watch", "cut", "--url", &url, "--token", &carl])
            .env("RUST_LOG", "warn"),
    )?;
    watch.expect("\"joined\"")?;
    let mut ann_ws =
        super::harness::Client::connect(&format!("ws://{}/v1/ws?token={ann}", server.addr)).await?;
    ann_ws.join("cut", "c-ann").await?;
    ann_ws
        .send(
            serde_json::json!({"type":"comment","session":"cut","comment":{"content":"nice cut"}}),
        )
        .await?;
    let line = watch.expect("\"comment_added\"")?;
    let comment: Json = serde_json::from_str(&line)?;
    ensure!(
        comment["comment"]["content"] == "nice cut" && comment["comment"]["author_id"] == "ann",
        "{comment}"
    );
    Ok(())
}

/// Version history from the command line: past states, names, whole and partial restores.
async fn versions_names_and_restores_from_the_command_line(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start_on(b, dir.path(), OPEN_LIMITS)?;
    let run = |user: &str, args: &[&str]| -> Result<Json> {
        Ok(serde_json::from_str(&montage(&server, user, args)?)?)
    };
    run("ann", &["session", "create", "vh"])?;
    let layer = r##"[{"op":"ins","path":["canvas","layers",0],"value":{"id":"L1","kind":"text","text":"one","x":0,"y":0,"size":12,"color":"#fff"}}]"##;
    run("ann", &["edit", "vh", layer])?;
    run(
        "ann",
        &[
            "edit",
            "vh",
            r#"[{"op":"set","path":["title"],"value":"Draft"}]"#,
        ],
    )?;
    run(
        "ann",
        &[
            "edit",
            "vh",
            r#"[{"op":"set","path":["canvas","layers",0,"text"],"value":"ONE"}]"#,
        ],
    )?;
    run(
        "ann",
        &[
            "edit",
            "vh",
            r#"[{"op":"set","path":["title"],"value":"Final"}]"#,
        ],
    )?;

    let at2 = run("ann", &["session", "show", "vh", "--version", "2"])?;
    ensure!(
        at2["version"] == 2 && at2["state"]["title"] == "Draft",
        "{at2}"
    );
    let named = run("ann", &["session", "name", "vh", "2", "draft for review"])?;
    ensure!(named["name"] == "draft for review", "{named}");
    let listed = montage(&server, "ann", &["session", "versions", "vh"])?;
    let v2: Json = listed
        .lines()
        .map(serde_json::from_str::<Json>)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|v| v["version"] == 2)
        .unwrap_or_default();
    ensure!(
        v2["name"] == "draft for review" && v2["time"].is_i64(),
        "{listed}"
    );

    // One layer back to version 2: its text returns, the title stays.
    let one = run("ann", &["session", "restore", "vh", "2", "--id", "L1"])?;
    ensure!(one["version"] == 5, "{one}");
    let head = run("ann", &["session", "show", "vh"])?;
    ensure!(
        head["state"]["canvas"]["layers"][0]["text"] == "one",
        "{head}"
    );
    ensure!(head["state"]["title"] == "Final", "{head}");
    // The whole document back to version 2, then undone by restoring the version before.
    ensure!(
        run("ann", &["session", "restore", "vh", "2"])?["version"] == 6,
        "whole restore"
    );
    ensure!(
        run("ann", &["session", "show", "vh"])?["state"]["title"] == "Draft",
        "title"
    );
    ensure!(
        run("ann", &["session", "restore", "vh", "5"])?["version"] == 7,
        "undo"
    );
    ensure!(
        run("ann", &["session", "show", "vh"])?["state"]["title"] == "Final",
        "undone"
    );
    // A viewer may look but not restore; the refusal is an error exit.
    ensure!(
        montage(&server, "val", &["session", "restore", "vh", "1"]).is_err(),
        "a viewer restored"
    );
    Ok(())
}

/// `montage session create --encrypted` makes a key and prints it; `--key` (or
/// `MONTAGE_SESSION_KEY`) edits and shows the session, which the server can't show itself.
async fn encrypted_sessions_from_the_command_line(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start_on(b, dir.path(), OPEN_LIMITS)?;
    let ann = token("ann");
    let made = ok_json(&montage_as(
        &server,
        &ann,
        &["session", "create", "--encrypted"],
    )?)?;
    let id = made["session"].as_str().context("no id")?.to_owned();
    let key = made["key"].as_str().context("no key")?.to_owned();
    ensure!(key.len() == 43, "{made}");
    let edited = ok_json(&montage_as(
        &server,
        &ann,
        &[
            "edit",
            &id,
            r#"[{"op":"set","path":["title"],"value":"secret plan"}]"#,
            "--key",
            &key,
        ],
    )?)?;
    // Version 1 is the key check `session create` wrote.
    ensure!(edited["version"] == 2, "{edited}");
    let out = Command::new(env!("CARGO_BIN_EXE_montage"))
        .args(["session", "show", &id])
        .env("MONTAGE_URL", format!("http://{}", server.addr))
        .env("MONTAGE_TOKEN", &ann)
        .env("MONTAGE_SESSION_KEY", &key)
        .env("RUST_LOG", "warn")
        .output()?;
    let shown = ok_json(&out)?;
    ensure!(
        shown["state"]["title"] == "secret plan" && shown["version"] == 2,
        "{shown}"
    );
    // Without the key: the server has no state to show, and says why.
    let err = refused(&montage_as(&server, &ann, &["session", "show", &id])?)?;
    ensure!(err.contains("encrypted"), "{err}");
    // A wrong key is told apart from a refusal.
    let wrong = "A".repeat(43);
    let err = refused(&montage_as(
        &server,
        &ann,
        &["session", "show", &id, "--key", &wrong],
    )?)?;
    ensure!(err.contains("wrong key"), "{err}");
    // A key is base64url: one that begins with `-` is still the value of `--key`, not a flag
    // (one in 64 made keys does).
    let dashed = format!("-{}", "A".repeat(42));
    let err = refused(&montage_as(
        &server,
        &ann,
        &["session", "show", &id, "--key", &dashed],
    )?)?;
    ensure!(err.contains("wrong key"), "{err}");
    // Editing with it is refused before anything is written.
    let err = refused(&montage_as(
        &server,
        &ann,
        &[
            "edit",
            &id,
            r#"[{"op":"set","path":["title"],"value":"x"}]"#,
            "--key",
            &wrong,
        ],
    )?)?;
    ensure!(err.contains("wrong key"), "{err}");
    let head = ok_json(&montage_as(
        &server,
        &ann,
        &["session", "show", &id, "--key", &key],
    )?)?;
    ensure!(head["version"] == 2, "{head}");
    Ok(())
}
