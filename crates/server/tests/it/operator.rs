//! Operator safety (#14): dev tokens only for pages opened at a loopback host, and a data dir the
//! server creates, its database and SQLite's WAL files private to the server's user.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value as Json, json};

use crate::harness::{Backend, Served, Server, http_client};

/// `POST /v1/dev/token` with the given `Host` header; returns (status, body).
async fn dev_token(addr: &str, host: &str) -> Result<(u16, String)> {
    let resp = http_client()?
        .post(format!("http://{addr}/v1/dev/token"))
        .header("host", host)
        .header("content-type", "application/json")
        .body(r#"{"user":"alice"}"#)
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_tokens_go_only_to_loopback_hosts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(Backend::Sqlite, dir.path(), &["--dev"]).await?;
    let port = server.addr.rsplit_once(':').context("no port")?.1;
    // A DNS-rebinding page reaches 127.0.0.1 under its own name, and says so in `Host`.
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("192.168.1.20:{port}"),
    ] {
        let (status, body) = dev_token(&server.addr, &host).await?;
        assert_eq!(status, 403, "{host}: {body}");
        let body: Json = serde_json::from_str(&body)?;
        assert_eq!(body["code"], "forbidden", "{host}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("--dev-allow-remote")),
            "{body}"
        );
    }
    for host in [
        server.addr.clone(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, body) = dev_token(&server.addr, &host).await?;
        assert_eq!(status, 200, "{host}: {body}");
        let token = serde_json::from_str::<Json>(&body)?["token"]
            .as_str()
            .context("no token")?
            .to_owned();
        let mut c = crate::harness::Client::connect(&server.url(&token)).await?;
        let joined = c.join("dev", "tab").await?;
        assert_eq!(joined["role"], json!("owner"), "{host}");
    }
    drop(server);

    let dir = tempfile::tempdir()?;
    let server = Server::start(
        Backend::Sqlite,
        dir.path(),
        &["--dev", "--dev-allow-remote"],
    )
    .await?;
    let (status, body) = dev_token(&server.addr, "evil.example").await?;
    assert_eq!(status, 200, "--dev-allow-remote: {body}");
    Ok(())
}

fn mode(p: &Path) -> Result<u32> {
    Ok(std::fs::metadata(p)
        .with_context(|| format!("{}", p.display()))?
        .permissions()
        .mode()
        & 0o777)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_data_dir_and_its_database_are_private() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("new").join("data");
    let server = Server::start(Backend::Sqlite, &dir, &[]).await?;
    let mut c = server.connect("ann").await?;
    c.join("s", "c").await?;
    c.edit(
        "s",
        0,
        1,
        json!([{"op":"set","path":["assets","a1"],"value":{"kind":"image","width":64,"height":48}}]),
    )
    .await?;
    assert_eq!(mode(&dir)?, 0o700, "the data dir");
    // The WAL and SHM files exist while the server runs; SQLite copies the database's mode.
    for name in ["montage.db", "montage.db-wal", "montage.db-shm"] {
        assert_eq!(mode(&dir.join(name))?, 0o600, "{name}");
    }
    Ok(())
}
