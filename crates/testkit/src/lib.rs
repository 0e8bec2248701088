//! What Montage's end-to-end suites share: a WebSocket test client, tokens signed with the test
//! secret, HTTP helpers, a deterministic PRNG, and throwaway PostgreSQL databases for the
//! scale-out runs (`MONTAGE_TEST_DATABASE_URL`; a test whose service is not configured says
//! loudly that it did not run, or fails when `MONTAGE_TEST_REQUIRE_SERVICES` is set).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use media_services::auth::Auth;
use serde_json::{Value as Json, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod media;
mod server;
pub mod tls;
pub mod webhooks;

pub use server::{Backend, Server, as_user, database_of};

/// The JWT secret every test server runs with.
pub const SECRET: &str = "integration-test-secret-0123456789abcdef";
/// How long a test waits for one frame or HTTP answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn token(user: &str) -> String {
    token_ttl(user, 3600)
}

pub fn token_ttl(user: &str, ttl: u64) -> String {
    Auth::new(SECRET.as_bytes())
        .and_then(|a| a.issue(user, None, Duration::from_secs(ttl)))
        .unwrap_or_default()
}

/// An HTTP client for one test: redirects are returned, not followed, and no proxy is used.
/// (Not shared between tests: each test has its own runtime, and a pooled connection belongs to
/// the runtime that opened it.)
pub fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()?)
}

/// `/v1/sessions/{id}`, the id escaped as one path segment (ids may hold `/`, `?`, `#`, `%`).
pub fn session_path(id: &str) -> String {
    let id = montage_protocol::path_segment(id);
    format!("/v1/sessions/{id}")
}

/// GET with an optional bearer token; returns (status, body).
pub async fn http_get(addr: &str, path: &str, token: Option<&str>) -> Result<(u16, String)> {
    let mut req = http_client()?.get(format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

/// An HTTP call with an optional JSON body and a raw bearer token; returns the status and the
/// body as JSON (null when it is not JSON).
pub async fn http_json(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Json>,
) -> Result<(u16, Json)> {
    let method = reqwest::Method::from_bytes(method.as_bytes())?;
    let mut req = http_client()?
        .request(method, format!("http://{addr}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Json::Null)))
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// `notification` frames set aside by `recv` (they arrive whenever their writer gets to
    /// them, so a test reading a session's frames in order would trip on them); read with
    /// [`Client::next_notification`].
    pub notifications: std::collections::VecDeque<Json>,
    /// Other frames `next_notification` read past, for `recv` to return first.
    held: std::collections::VecDeque<Json>,
    /// Speaks `montage.v1.proto`: `send` encodes the JSON message it is given as a binary frame
    /// and `recv` decodes binary frames back to their JSON form, so a test reads the same
    /// either way.
    pub binary: bool,
}

impl Client {
    pub async fn connect(url: &str) -> Result<Client> {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
        Ok(Client::new(ws))
    }

    /// A client that asks for the binary subprotocol only; fails unless the server chose it.
    pub async fn connect_binary(url: &str) -> Result<Client> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request()?;
        req.headers_mut().insert(
            "sec-websocket-protocol",
            montage_protocol::SUBPROTOCOL_PROTO.parse()?,
        );
        let (ws, resp) = tokio_tungstenite::connect_async_with_config(req, None, true).await?;
        let chosen = resp.headers().get("sec-websocket-protocol");
        anyhow::ensure!(
            chosen.is_some_and(|p| p == montage_protocol::SUBPROTOCOL_PROTO),
            "the server chose {chosen:?}"
        );
        let mut c = Client::new(ws);
        c.binary = true;
        Ok(c)
    }

    pub fn new(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Client {
        Client {
            ws,
            notifications: Default::default(),
            held: Default::default(),
            binary: false,
        }
    }

    /// The next `notification` item for this connection's user (set aside by `recv` or read
    /// now), skipping the other frames.
    pub async fn next_notification(&mut self) -> Result<Json> {
        loop {
            if let Some(n) = self.notifications.pop_front() {
                return Ok(n["notification"].clone());
            }
            let v = self.recv_frame().await?;
            if v["type"] == "notification" {
                return Ok(v["notification"].clone());
            }
            self.held.push_back(v);
        }
    }

    /// Sends a social message (`comment`, `comment_edit`, `comment_resolve`, …) to `session`
    /// under a fresh rid and returns the comment of its own answer, skipping other frames.
    pub async fn social(&mut self, session: &str, mut msg: Json) -> Result<Json> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let rid = format!("social-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        msg["session"] = json!(session);
        msg["rid"] = json!(rid);
        self.send(msg).await?;
        loop {
            let m = self.recv().await?;
            anyhow::ensure!(m["type"] != "error", "{m}");
            if m["rid"] == rid {
                return Ok(m["comment"].clone());
            }
        }
    }

    pub async fn send(&mut self, v: Json) -> Result<()> {
        let m = if self.binary {
            // Only messages that decode can be sent in binary: send hostile ones with `send_raw`.
            let f = montage_protocol::decode_client(&v.to_string())
                .map_err(|e| anyhow!("{v} has no binary form: {e}"))?;
            Message::binary(montage_protocol::encode_client_binary(
                &f.msg,
                f.rid.as_ref(),
            ))
        } else {
            Message::text(v.to_string())
        };
        self.ws.send(m).await?;
        Ok(())
    }

    pub async fn send_raw(&mut self, m: Message) -> Result<()> {
        self.ws.send(m).await?;
        Ok(())
    }

    /// The next text frame as JSON; `notification` frames are set aside (see `notifications`).
    pub async fn recv(&mut self) -> Result<Json> {
        if let Some(v) = self.held.pop_front() {
            return Ok(v);
        }
        loop {
            let v = self.recv_frame().await?;
            if v["type"] != "notification" {
                return Ok(v);
            }
            self.notifications.push_back(v);
        }
    }

    /// The next frame from the socket, whatever it is, as JSON.
    async fn recv_frame(&mut self) -> Result<Json> {
        loop {
            let m = tokio::time::timeout(TIMEOUT, self.ws.next())
                .await
                .context("timed out waiting for a frame")?;
            match m {
                Some(Ok(Message::Text(t))) if !self.binary => {
                    return Ok(serde_json::from_str(t.as_str())?);
                }
                Some(Ok(Message::Binary(b))) if self.binary => {
                    let (msg, rid) = montage_protocol::decode_server_binary(&b)?;
                    let mut v = serde_json::to_value(msg)?;
                    if let Some(rid) = rid {
                        v["rid"] = rid;
                    }
                    return Ok(v);
                }
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                    bail!("a frame in the other form: {m:?}")
                }
                Some(Ok(Message::Close(c))) => bail!("closed: {c:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("socket error: {e}"),
                None => bail!("socket ended"),
            }
        }
    }

    /// The next frame of type `t`, skipping presence, participant, tier and notification events.
    pub async fn recv_type(&mut self, t: &str) -> Result<Json> {
        loop {
            let v = self.recv().await?;
            if v["type"] == t {
                return Ok(v);
            }
            let skippable = [
                "presence",
                "participant_joined",
                "participant_left",
                "tier",
                "token_expiring",
                "notification",
            ];
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

/// What a test does with a running server, however it was started (in-process or the binary).
#[allow(async_fn_in_trait)] // tests await these where they stand; no Send bound needed
pub trait Served {
    /// `host:port`.
    fn addr(&self) -> &str;

    /// The WebSocket URL with `token`.
    fn url(&self, token: &str) -> String {
        format!("ws://{}/v1/ws?token={token}", self.addr())
    }

    /// A WebSocket client signed in as `user`.
    async fn connect(&self, user: &str) -> Result<Client> {
        Client::connect(&self.url(&token(user))).await
    }

    /// A WebSocket client signed in as `user` that speaks `montage.v1.proto`.
    async fn connect_binary(&self, user: &str) -> Result<Client> {
        Client::connect_binary(&self.url(&token(user))).await
    }

    /// GET with a bearer token for `user`, if any; returns (status, body).
    async fn get(&self, path: &str, user: Option<&str>) -> Result<(u16, String)> {
        http_get(self.addr(), path, user.map(token).as_deref()).await
    }

    /// The value of an unlabelled metric in `GET /metrics`.
    async fn metric(&self, name: &str) -> Result<i64> {
        let (status, text) = self.get("/metrics", None).await?;
        anyhow::ensure!(status == 200, "GET /metrics: {status}");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .with_context(|| format!("no {name} in {text}"))
    }

    /// GET as `user`, answered 200 with JSON.
    async fn get_json(&self, path: &str, user: &str) -> Result<Json> {
        let (status, body) = self.get(path, Some(user)).await?;
        if status != 200 {
            bail!("GET {path}: {status} {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }
}

/// The next frame of type `t`, skipping anything else (ops, role changes, other events); an
/// error frame on the way is an error.
pub async fn next_of(c: &mut Client, t: &str) -> Result<Json> {
    loop {
        let v = c.recv().await?;
        if v["type"] == t {
            return Ok(v);
        }
        if v["type"] == "error" {
            bail!("expected {t}, got {v}");
        }
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

/// A fresh PostgreSQL database on the server named by `MONTAGE_TEST_DATABASE_URL`, dropped when
/// this value is. Names carry their creation time, so databases left by a killed test run are
/// swept by a later one.
pub struct TestDb {
    pub url: String,
    admin: String,
    name: String,
    keep: bool,
}

/// How long a test database may outlive its run before a later run sweeps it.
const TEST_DB_MAX_AGE_SECS: u64 = 6 * 3600;

/// The admin URL from `MONTAGE_TEST_DATABASE_URL`, or `None` after saying loudly that `test`
/// did not run.
pub fn test_database_url(test: &str) -> Option<String> {
    service_url(test, "MONTAGE_TEST_DATABASE_URL")
}

/// The NATS URL from `MONTAGE_TEST_NATS_URL`, or `None` after saying loudly that `test` did not run.
pub fn test_nats_url(test: &str) -> Option<String> {
    service_url(test, "MONTAGE_TEST_NATS_URL")
}

fn service_url(test: &str, var: &str) -> Option<String> {
    let url = std::env::var(var).ok().filter(|u| !u.is_empty());
    if url.is_none() {
        did_not_run(test, var);
    }
    url
}

/// Says so on the real stderr: the test harness would hide `eprintln!` of a passing test.
/// With `MONTAGE_TEST_REQUIRE_SERVICES` set (`.ci/run` sets it) a missing service fails the test
/// instead, so CI cannot pass without running it.
fn did_not_run(test: &str, var: &str) {
    if std::env::var_os("MONTAGE_TEST_REQUIRE_SERVICES").is_some() {
        panic!("{test} needs {var} (MONTAGE_TEST_REQUIRE_SERVICES is set)");
    }
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!! {test} DID NOT RUN: {var} is not set (`.ci/run` sets it) !!!!!\n"
    );
}

/// Runs admin statements on a thread of its own, so sync code (`Server::start`, `Drop`) can too.
fn admin_sql(admin: &str, statements: Vec<String>) -> Result<Vec<String>> {
    let admin = admin.to_owned();
    std::thread::spawn(move || -> Result<Vec<String>> {
        use sqlx::Connection;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let mut c = sqlx::PgConnection::connect(&admin).await?;
            let mut names = Vec::new();
            for s in statements {
                if s.starts_with("SELECT") {
                    names = sqlx::query_scalar::<_, String>(&s)
                        .fetch_all(&mut c)
                        .await?;
                } else {
                    sqlx::query(&s).execute(&mut c).await?;
                }
            }
            Ok(names)
        })
    })
    .join()
    .map_err(|_| anyhow!("admin thread panicked"))?
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TestDb {
    /// Creates `montage_test_<unix time>_<random>` next to the database of `admin`. With
    /// `owner`, the database belongs to that data dir: it is dropped by a later `create` once
    /// the dir is gone (a test may restart its server on the same dir after any point).
    pub fn create(admin: &str, owner: Option<&Path>) -> Result<TestDb> {
        let mut b = [0u8; 5];
        getrandom::fill(&mut b).map_err(|e| anyhow!("getrandom: {e}"))?;
        let rand: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let name = format!("montage_test_{}_{rand}", now_secs());
        let existing = admin_sql(
            admin,
            vec![
                "SELECT d.datname::text || '|' || coalesce(shobj_description(d.oid, 'pg_database'), '') \
                 FROM pg_database d WHERE d.datname LIKE 'montage_test_%'"
                    .into(),
            ],
        )?;
        let mut statements: Vec<String> = existing
            .iter()
            .filter_map(|row| {
                let (n, owner) = row.split_once('|')?;
                let created = n.split('_').nth(2)?.parse::<u64>().ok()?;
                let orphan = !owner.is_empty() && !Path::new(owner).exists();
                let old = created + TEST_DB_MAX_AGE_SECS < now_secs();
                (orphan || old).then(|| format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
            })
            .collect();
        statements.push(format!("CREATE DATABASE {name}"));
        if let Some(dir) = owner {
            let dir = dir.display().to_string().replace('\'', "''");
            statements.push(format!("COMMENT ON DATABASE {name} IS '{dir}'"));
        }
        admin_sql(admin, statements)?;
        let (base, _) = admin
            .rsplit_once('/')
            .ok_or_else(|| anyhow!("MONTAGE_TEST_DATABASE_URL has no database part"))?;
        Ok(TestDb {
            url: format!("{base}/{name}"),
            admin: admin.to_owned(),
            name,
            keep: owner.is_some(),
        })
    }

    /// An existing test database (a restart of the same data dir); the sweep removes it later.
    pub fn reuse(admin: &str, name: &str) -> Result<TestDb> {
        let (base, _) = admin
            .rsplit_once('/')
            .ok_or_else(|| anyhow!("MONTAGE_TEST_DATABASE_URL has no database part"))?;
        Ok(TestDb {
            url: format!("{base}/{name}"),
            admin: admin.to_owned(),
            name: name.to_owned(),
            keep: true,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.keep {
            let _ = admin_sql(
                &self.admin,
                vec![format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                )],
            );
        }
    }
}

/// How long an SDK client may take to connect or sync in a test.
pub const SDK_SYNC: Duration = Duration::from_secs(60);

/// SDK options for `user` at the WebSocket `url`, with short reconnect backoff for tests.
pub fn sdk_options(url: &str, user: &str) -> montage_client::Options {
    montage_client::Options::new(url, token(user))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// An SDK client for `user`, connected.
pub async fn sdk(url: &str, user: &str) -> Result<montage_client::Client> {
    let c = montage_client::Client::start(sdk_options(url, user))?;
    c.connected(SDK_SYNC).await?;
    Ok(c)
}

/// Limits high enough that random bursts from many clients are never refused.
pub const OPEN_LIMITS: &[&str] = &[
    "--edits-per-sec",
    "100000",
    "--messages-per-sec",
    "100000",
    "--bytes-per-sec",
    "1000000000",
    "--connections-per-user",
    "10000",
];

/// A data dir on tmpfs when there is one: durable acks then cost no disk flush.
pub fn fast_tempdir() -> Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    Ok(if shm.is_dir() {
        tempfile::tempdir_in(shm)?
    } else {
        tempfile::tempdir()?
    })
}

/// Every op of a session through the paged HTTP endpoint of the server at `addr`.
pub async fn all_ops(addr: &str, session: &str, user: &str) -> Result<Vec<Json>> {
    let mut out = Vec::new();
    loop {
        let path = format!("{}/ops?from={}", session_path(session), out.len());
        let (status, body) = http_get(addr, &path, Some(&token(user))).await?;
        if status != 200 {
            bail!("GET {path}: {status} {body}");
        }
        let page: Json = serde_json::from_str(&body)?;
        let ops = page["ops"].as_array().cloned().unwrap_or_default();
        if ops.is_empty() {
            return Ok(out);
        }
        out.extend(ops);
    }
}
