//! The client commands of the `montage` binary against the real server.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::Value as Json;

use super::harness::{Backend, OPEN_LIMITS, Server, backend_tests, fast_tempdir, token};

backend_tests!(session_edit_show_history_watch_and_join_commands,);

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
    let shown: Json = serde_json::from_str(&montage(&server, "ann", &["session", "show", "cli"])?)?;
    ensure!(shown["state"]["title"] == "Hi", "{shown}");
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
