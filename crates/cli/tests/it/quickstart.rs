//! docs/QUICKSTART.md, run as written: every fenced block with a `file=NAME` is taken from the
//! page. Blocks naming a file of the repository must equal it (the Rust examples, which
//! `cargo test` compiles); the others are written to a scratch directory and run against a real
//! server: tokens minted in Node, Python and Rust are accepted, the Rust and TypeScript
//! hello-worlds edit one session together, and the CLI grants a role.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::{Value as Json, json};

use crate::harness::{Client, Running, SECRET, Server, http_get, token};

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The page's `file=` blocks: name → text.
fn snippets(page: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let Some(name) = info
            .split_whitespace()
            .find_map(|w| w.strip_prefix("file="))
        else {
            // An unnamed block: skip to its end.
            for l in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
            }
            continue;
        };
        let mut body = String::new();
        loop {
            let l = lines
                .next()
                .with_context(|| format!("{name}: no closing fence"))?;
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        ensure!(out.insert(name.to_owned(), body).is_none(), "{name} twice");
    }
    Ok(out)
}

/// Runs a command to completion; its stdout, trimmed, or an error with everything it said.
fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("could not run {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// A Rust example of montage-client, built if needed (cargo builds examples for `cargo test`,
/// but not for `cargo test -p montage`).
fn example(name: &str) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    output(Command::new(cargo).current_dir(repo()).args([
        "build",
        "-q",
        "-p",
        "montage-client",
        "--example",
        name,
    ]))?;
    // Tests run from target/debug/deps; examples sit in target/debug/examples.
    let exe = std::env::current_exe()?;
    let debug = exe
        .parent()
        .and_then(Path::parent)
        .context("no target dir")?;
    let bin = debug.join("examples").join(name);
    ensure!(bin.exists(), "no {}", bin.display());
    Ok(bin)
}

/// Whether `token` is one the server takes.
async fn accepted(server: &Server, token: &str) -> Result<()> {
    let (status, body) = http_get(&server.addr, "/v1/sessions", Some(token)).await?;
    ensure!(status == 200, "token refused: {status} {body}");
    Ok(())
}

/// The TypeScript client where a scratch Node project imports it as `@montage/client` (its
/// built package and the `ws` package from web/client's install).
fn node_project(dir: &Path) -> Result<()> {
    let client = repo().join("web/client");
    let _web = crate::harness::WEB_CLIENT
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    output(
        Command::new("bash")
            .arg(repo().join("web/scripts/npm-ci.sh"))
            .arg(&client),
    )?;
    // The package's own build: ESM and CommonJS, as `npm pack` makes them.
    output(
        Command::new("npm")
            .current_dir(&client)
            .args(["run", "--silent", "build"]),
    )?;
    let modules = dir.join("node_modules");
    std::fs::create_dir_all(modules.join("@montage"))?;
    std::os::unix::fs::symlink(&client, modules.join("@montage/client"))?;
    std::os::unix::fs::symlink(client.join("node_modules/ws"), modules.join("ws"))?;
    Ok(())
}

#[tokio::test]
async fn the_quick_start_runs_as_written() -> Result<()> {
    let page = std::fs::read_to_string(repo().join("docs/QUICKSTART.md"))?;
    let files = snippets(&page)?;
    let scratch = tempfile::tempdir()?;
    for (name, text) in &files {
        if name.starts_with("crates/") {
            let real = std::fs::read_to_string(repo().join(name))
                .with_context(|| format!("the page names {name}"))?;
            ensure!(
                *text == real,
                "docs/QUICKSTART.md's {name} differs from the file: copy the file into the page"
            );
        } else {
            std::fs::write(scratch.path().join(name), text)?;
        }
    }
    for name in [
        "mint-token.mjs",
        "mint_token.py",
        "hello.mjs",
        "grant.sh",
        "crates/client/examples/hello.rs",
        "crates/client/examples/mint_token.rs",
    ] {
        ensure!(files.contains_key(name), "the page has no {name}");
    }
    let dir = tempfile::tempdir()?;
    let server = Server::start(dir.path(), &["--default-link-role", "none"])?;
    let at = |cmd: &mut Command| {
        cmd.current_dir(scratch.path())
            .env("MONTAGE_JWT_SECRET", SECRET)
            .env("MONTAGE_URL", format!("ws://{}/v1/ws", server.addr))
            .env("RUST_LOG", "warn");
    };

    // Tokens minted by the three backends' snippets.
    let mut node = Command::new("node");
    node.args(["mint-token.mjs", "alice"]);
    at(&mut node);
    accepted(&server, &output(&mut node)?)
        .await
        .context("Node")?;
    let mut py = Command::new("python3");
    py.args(["mint_token.py", "alice"]);
    at(&mut py);
    accepted(&server, &output(&mut py)?)
        .await
        .context("Python")?;
    let mut rs = Command::new(example("mint_token")?);
    rs.arg("alice");
    at(&mut rs);
    let alice = output(&mut rs)?;
    accepted(&server, &alice).await.context("Rust")?;

    // The Rust hello-world creates "hello" and waits; the TypeScript one, as alice too, edits it.
    let mut cmd = Command::new(example("hello")?);
    at(&mut cmd);
    cmd.env("MONTAGE_TOKEN", &alice);
    let rust = Running::start(&mut cmd)?;
    rust.expect("here: [\"alice\"]")?;
    node_project(scratch.path())?;
    let mut cmd = Command::new("node");
    cmd.arg("hello.mjs");
    at(&mut cmd);
    cmd.env("MONTAGE_TOKEN", &alice);
    let ts = Running::start(&mut cmd)?;
    ts.expect("here:")?;
    let seen = rust.expect("changed it")?;
    ensure!(seen.contains("Hello from TypeScript"), "{seen}");

    // The CLI grants bob a role; his edit reaches both hello-worlds.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_montage"));
    let path = format!(
        "{}:{}",
        bin.parent().context("bin dir")?.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut grant = Command::new("bash");
    grant.arg("grant.sh").env("PATH", path);
    at(&mut grant);
    grant
        .env("MONTAGE_URL", format!("http://{}", server.addr))
        .env("MONTAGE_TOKEN", &alice);
    output(&mut grant)?;
    let (_, listed) = http_get(&server.addr, "/v1/sessions", Some(&token("bob"))).await?;
    let listed: Json = serde_json::from_str(&listed)?;
    ensure!(
        listed["sessions"][0]["id"] == "hello" && listed["sessions"][0]["role"] == "editor",
        "{listed}"
    );
    let mut bob = Client::connect(&format!(
        "ws://{}/v1/ws?token={}",
        server.addr,
        token("bob")
    ))
    .await?;
    let joined = bob.join("hello", "bob-1").await?;
    let v = joined["version"].as_u64().context("version")?;
    bob.send(json!({"type":"op","session":"hello","base":v,"seq":1,
        "ops":[{"op":"set","path":["title"],"value":"Hello from bob"}]}))
        .await?;
    ensure!(rust.expect("bob changed it")?.contains("Hello from bob"));
    ensure!(ts.expect("bob changed it")?.contains("Hello from bob"));
    Ok(())
}
