//! The client commands of the `montage` binary against the real server.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use media_services::auth::Auth;
use montage_protocol::Role;
use serde_json::Value as Json;

use super::harness::{Backend, OPEN_LIMITS, SECRET, Server, backend_tests, fast_tempdir, token};

backend_tests!(
    session_edit_show_history_watch_and_join_commands,
    scoped_tokens_and_session_management_commands,
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
    let mut watch = Command::new(env!("CARGO_BIN_EXE_montage"))
        .args(["watch", "cli"])
        .env("MONTAGE_URL", format!("http://{}", server.addr))
        .env("MONTAGE_TOKEN", token("ann"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(watch.stdout.take().context("stdout")?).lines();
    let first = lines.next().context("watch printed nothing")??;
    ensure!(first.contains("\"joined\""), "{first}");

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
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut saw = false;
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(10)) {
        if l.contains("\"edit\"") && l.contains("Hi") {
            saw = true;
            break;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    ensure!(saw, "watch did not print the edit");

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
    let joined = ok_json(&montage_as(&server, &named, &["session", "create", &id])?)?;
    ensure!(joined["role"] == "commenter", "{joined}");
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
