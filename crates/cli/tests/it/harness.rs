//! Starting the server, minting tokens, and a small WebSocket client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use media_services::auth::Auth;
use serde_json::{Value as Json, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "integration-test-secret";
const TIMEOUT: Duration = Duration::from_secs(10);

/// A running `montage serve`. Dropping it kills the process.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub dir: PathBuf,
}

impl Server {
    pub fn start(dir: &Path, extra: &[&str]) -> Result<Server> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_montage"))
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env("MONTAGE_JWT_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning montage")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| anyhow!("unexpected first line {line:?}"))?;
        Ok(Server {
            child,
            addr: addr.to_owned(),
            dir: dir.to_owned(),
        })
    }

    pub fn url(&self, token: &str) -> String {
        format!("ws://{}/v1/ws?token={token}", self.addr)
    }

    pub async fn connect(&self, user: &str) -> Result<Client> {
        Client::connect(&self.url(&token(user))).await
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm(&self) -> Result<()> {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !st.success() {
            bail!("kill -TERM failed");
        }
        Ok(())
    }

    /// GET with a bearer token; returns (status, body).
    pub async fn get(&self, path: &str, user: Option<&str>) -> Result<(u16, String)> {
        http_get(&self.addr, path, user.map(token).as_deref()).await
    }

    pub async fn get_json(&self, path: &str, user: &str) -> Result<Json> {
        let (status, body) = self.get(path, Some(user)).await?;
        if status != 200 {
            bail!("GET {path}: {status} {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn token(user: &str) -> String {
    token_ttl(user, 3600)
}

pub fn token_ttl(user: &str, ttl: u64) -> String {
    Auth::new(SECRET.as_bytes())
        .and_then(|a| a.issue(user, None, Duration::from_secs(ttl)))
        .unwrap_or_default()
}

/// A minimal HTTP/1.1 GET, so the tests need no HTTP client crate.
pub async fn http_get(addr: &str, path: &str, token: Option<&str>) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut buf)).await??;
    let text = String::from_utf8(buf)?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("bad response {text:?}"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("no status"))?
        .parse()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn connect(url: &str) -> Result<Client> {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
        Ok(Client { ws })
    }

    pub async fn send(&mut self, v: Json) -> Result<()> {
        self.ws.send(Message::text(v.to_string())).await?;
        Ok(())
    }

    pub async fn send_raw(&mut self, m: Message) -> Result<()> {
        self.ws.send(m).await?;
        Ok(())
    }

    /// The next text frame as JSON.
    pub async fn recv(&mut self) -> Result<Json> {
        loop {
            let m = tokio::time::timeout(TIMEOUT, self.ws.next())
                .await
                .context("timed out waiting for a frame")?;
            match m {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
                Some(Ok(Message::Close(c))) => bail!("closed: {c:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("socket error: {e}"),
                None => bail!("socket ended"),
            }
        }
    }

    /// The next frame of type `t`, skipping presence, participant and tier events.
    pub async fn recv_type(&mut self, t: &str) -> Result<Json> {
        loop {
            let v = self.recv().await?;
            if v["type"] == t {
                return Ok(v);
            }
            let skippable = ["presence", "participant_joined", "participant_left", "tier"];
            if !skippable.iter().any(|s| v["type"] == *s) {
                bail!("expected {t}, got {v}");
            }
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn recv_close(&mut self) -> Result<(u16, String)> {
        loop {
            let m = tokio::time::timeout(TIMEOUT, self.ws.next())
                .await
                .context("timed out waiting for close")?;
            match m {
                Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                    return Ok((code.into(), reason.to_string()));
                }
                Some(Ok(Message::Close(None))) => return Ok((1005, String::new())),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("socket error before close: {e}"),
                None => bail!("socket ended without close frame"),
            }
        }
    }

    pub async fn join(&mut self, session: &str, client: &str) -> Result<Json> {
        self.send(json!({"type":"join","session":session,"client":client}))
            .await?;
        self.recv_type("joined").await
    }

    pub async fn op(&mut self, session: &str, base: u64, seq: u64, ops: Json) -> Result<()> {
        self.send(json!({"type":"op","session":session,"base":base,"seq":seq,"ops":ops}))
            .await
    }

    /// Sends an edit and waits for its ack; returns the version.
    pub async fn edit(&mut self, session: &str, base: u64, seq: u64, ops: Json) -> Result<u64> {
        self.op(session, base, seq, ops).await?;
        let a = self.recv_type("ack").await?;
        if a["seq"] != seq {
            bail!("ack for another seq: {a}");
        }
        a["version"]
            .as_u64()
            .ok_or_else(|| anyhow!("ack without version: {a}"))
    }

    /// Sends `msg` and expects an error frame with `code`, returning it.
    pub async fn expect_error(&mut self, msg: Json, code: &str) -> Result<Json> {
        self.send(msg).await?;
        let e = self.recv_type("error").await?;
        if e["code"] != code {
            bail!("expected {code}, got {e}");
        }
        Ok(e)
    }
}

/// Replays a stored op log onto a new document (what a fresh server would do).
pub fn replay(ops: &[Json]) -> Result<Json> {
    let mut doc = montage_ot::Value::new_document();
    for (i, e) in ops.iter().enumerate() {
        if e["version"] != (i as u64 + 1) {
            bail!("op log has a gap at {i}: {e}");
        }
        let op: montage_ot::Op = serde_json::from_value(e["ops"].clone())?;
        op.apply(&mut doc)
            .map_err(|err| anyhow!("replaying version {}: {err}", i + 1))?;
    }
    Ok(doc.to_json())
}

/// Every op of a session through the paged HTTP endpoint.
pub async fn all_ops(server: &Server, session: &str, user: &str) -> Result<Vec<Json>> {
    let mut out = Vec::new();
    loop {
        let page = server
            .get_json(
                &format!("/v1/sessions/{session}/ops?from={}", out.len()),
                user,
            )
            .await?;
        let ops = page["ops"].as_array().cloned().unwrap_or_default();
        if ops.is_empty() {
            return Ok(out);
        }
        out.extend(ops);
    }
}

/// A tiny deterministic PRNG for the randomized tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
