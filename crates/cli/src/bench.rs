//! `montage bench`: a load generator over real WebSockets.
//!
//! S sessions × C clients, each client sending R edits a second for D seconds at the newest
//! version it knows of (so edits are concurrent and get transformed). Each edit sets
//! `meta.c<client>` to its send time, which lets every receiver measure broadcast latency on the
//! same clock. Without `--addr` it starts its own `montage serve` on a temp dir (or `--nodes N`
//! of them on `--database-url` and `--nats-url`) and reports their CPU time and peak memory as
//! well. With several nodes, client i talks to node i mod N (`--route client`), so every session
//! is written through several nodes at once, and the edits forwarded to home nodes and the
//! conflict retries the nodes counted are reported.

use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use media_services::auth::Auth;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

#[derive(Args)]
pub struct BenchArgs {
    /// Server address HOST:PORT, or several comma-separated (nodes of one cluster); without it
    /// bench starts its own server(s) on temp data dirs.
    #[arg(long)]
    addr: Option<String>,
    /// Nodes to start when bench starts the servers (more than one needs --database-url).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// PostgreSQL for the servers bench starts (postgres://…).
    #[arg(long)]
    database_url: Option<String>,
    /// NATS for the servers bench starts (nats://…).
    #[arg(long)]
    nats_url: Option<String>,
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// Clients per session.
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Edits per second per writing client.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Clients per session that edit (the first W); the others only read. Default: all.
    #[arg(long)]
    writers: Option<usize>,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Instead of edits: open this many idle connections (each joined to a session, 20 to a
    /// session) and report the server's memory per connection and its CPU while they idle.
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// With --idle: the server's `--idle-ping-secs` (default: the server's own default). The
    /// idle CPU is the sparse pings: measure over --idle-secs longer than this.
    #[arg(long)]
    idle_ping_secs: Option<u64>,
    /// Seconds over which --idle measures the server's CPU.
    #[arg(long, default_value_t = 30.0)]
    idle_secs: f64,
    /// Instead of edits: store this many ops in one session, unload it, and time joins that
    /// load it.
    #[arg(long, default_value_t = 0)]
    history: u64,
    /// Readers per session that read like the others for the first half of the run, then stop
    /// reading (a stalled reader): the server must move them down a tier and drop them without
    /// raising the writers' or the other readers' latency. Latencies are reported for both halves.
    #[arg(long, default_value_t = 0)]
    stalled: usize,
    /// How clients are spread over several nodes: `client` (client i on node i mod N, so every
    /// session is written through every node: most edits are forwarded to the session's home
    /// node, or with `--home-lease-ms 0` sequenced against each other) or
    /// `session` (all clients of session s on node s mod N, as a session-affine load balancer
    /// places them).
    #[arg(long, value_enum, default_value_t = Route::Client)]
    route: Route,
    /// Bytes of padding added to every edit (fills a stalled reader's buffers sooner), as a list
    /// of 500-byte strings.
    #[arg(long, default_value_t = 0)]
    pad: usize,
    /// Send queue (frames) of the server bench starts (its `--send-queue`).
    #[arg(long)]
    send_queue: Option<usize>,
    /// `--home-lease-ms` of the nodes bench starts (0: no home nodes, every node sequences).
    #[arg(long)]
    home_lease_ms: Option<u64>,
    /// End-to-end encrypted sessions: every edit is sealed as the SDKs seal it
    /// (XChaCha20-Poly1305) and sent on the head the client knows; a `conflict` is sealed again
    /// on the head it names (counted as a retry, its ack latency from the first send), and
    /// every client opens every edit it receives.
    #[arg(long)]
    encrypted: bool,
    /// Clients speak `montage.v1.proto` (binary protobuf frames) instead of JSON: the server's
    /// CPU per edit for each encoding. Applies to the edit load (not --idle or --history).
    #[arg(long)]
    binary: bool,
    /// CPUs (a `taskset` list, e.g. `1`) the servers bench starts run on; run bench itself on
    /// the others (`taskset -c 0 montage bench --server-cpus 1 …`) so the load generator
    /// doesn't share the server's core. Needs `taskset` (util-linux).
    #[arg(long)]
    server_cpus: Option<String>,
    /// Instead of the edit load: one editor drags a slider (an `adjust` of a layer's
    /// brightness, 60 steps a second) for this many seconds, and four readers report the frames
    /// and bytes that reached them: `poor`, `fair` and `excellent` readers that take ranges
    /// (docs/PROTOCOL.md "Ranges") and an `excellent` one that does not.
    #[arg(long, default_value_t = 0.0)]
    drag: f64,
    /// Secret to sign tokens with (needed with --addr, unless --data-dir holds the secret).
    #[arg(long, env = "MONTAGE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    #[arg(long, env = "MONTAGE_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Route {
    Client,
    Session,
}

/// A log-linear latency histogram in microseconds (≤ 1.6 % error), cheap to merge.
#[derive(Clone)]
struct Hist {
    counts: Vec<u64>,
    max: u64,
    n: u64,
}

impl Hist {
    fn new() -> Hist {
        Hist {
            counts: vec![0; 1024 + 64 * 54],
            max: 0,
            n: 0,
        }
    }
    fn bucket(v: u64) -> usize {
        if v < 1024 {
            return v as usize;
        }
        let e = 63 - v.leading_zeros() as usize; // >= 10
        let sub = ((v >> (e - 6)) & 63) as usize;
        1024 + (e - 10) * 64 + sub
    }
    fn lower(b: usize) -> u64 {
        if b < 1024 {
            return b as u64;
        }
        let e = (b - 1024) / 64 + 10;
        let sub = ((b - 1024) % 64) as u64;
        (1u64 << e) | (sub << (e - 6))
    }
    fn record(&mut self, micros: u64) {
        let b = Self::bucket(micros).min(self.counts.len() - 1);
        self.counts[b] += 1;
        self.max = self.max.max(micros);
        self.n += 1;
    }
    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.max = self.max.max(o.max);
        self.n += o.n;
    }
    fn quantile(&self, q: f64) -> u64 {
        let want = ((self.n as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Self::lower(b);
            }
        }
        self.max
    }
    fn line(&self) -> String {
        if self.n == 0 {
            return "no samples".into();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        format!(
            "p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} samples)",
            ms(self.quantile(0.50)),
            ms(self.quantile(0.99)),
            ms(self.max),
            self.n
        )
    }
}

/// The server process when bench started it.
struct Spawned {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn spawn_server(secret: &str, extra: &[String], cpus: Option<&str>) -> Result<(Spawned, String)> {
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    // taskset execs the server: the child's pid is the server's.
    let mut cmd = match cpus {
        Some(list) => {
            let mut c = Command::new("taskset");
            c.args(["-c", list]).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut child = cmd
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args([
            "--edits-per-sec",
            "1000000",
            "--messages-per-sec",
            "1000000",
            "--bytes-per-sec",
            "1e12",
        ])
        .args(extra)
        .env("MONTAGE_JWT_SECRET", secret)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .context("starting montage serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| anyhow!("unexpected output {line:?}"))?
        .to_owned();
    Ok((Spawned { child, _dir: dir }, addr))
}

/// CPU seconds (user + system) and peak RSS in KiB of a process, from /proc.
fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ on Linux
    let cpu = (f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((cpu, rss("VmHWM:")?.max(rss("VmRSS:")?)))
}

fn current_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The parts of a server frame the load generator reads.
#[derive(serde::Deserialize)]
struct Lite<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    ops: Vec<LiteComponent>,
    /// A sealed edit (`--encrypted`): base64, never escaped.
    #[serde(default)]
    data: Option<&'a str>,
    #[serde(default)]
    code: Option<&'a str>,
    #[serde(default)]
    rid: Option<u64>,
}

#[derive(serde::Deserialize)]
struct LiteComponent {
    #[serde(default)]
    value: Option<MaybeNum>,
}

/// A component's `value` when it is a number (the send time); anything else (padding) is
/// skipped without being kept.
struct MaybeNum(Option<f64>);

impl<'de> serde::Deserialize<'de> for MaybeNum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MaybeNum;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<MaybeNum, E> {
                Ok(MaybeNum(Some(v)))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<MaybeNum, E> {
                Ok(MaybeNum(Some(v as f64)))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<MaybeNum, E> {
                Ok(MaybeNum(Some(v as f64)))
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<MaybeNum, E> {
                Ok(MaybeNum(None))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<MaybeNum, E> {
                Ok(MaybeNum(None))
            }
            fn visit_unit<E>(self) -> std::result::Result<MaybeNum, E> {
                Ok(MaybeNum(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<MaybeNum, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(MaybeNum(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<MaybeNum, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(MaybeNum(None))
            }
        }
        d.deserialize_any(V)
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `--binary`: the edit load's clients speak `montage.v1.proto`. Set once before the load
/// starts; the load keeps building its frames as JSON text (what it measures is the server)
/// and `out`/`text_of` translate at the socket.
static BINARY: AtomicBool = AtomicBool::new(false);

/// A client frame (JSON text) in the connection's form.
fn out(text: String) -> Message {
    if !BINARY.load(Relaxed) {
        return Message::text(text);
    }
    match montage_protocol::decode_client(&text) {
        Ok(f) => Message::binary(montage_protocol::encode_client_binary(
            &f.msg,
            f.rid.as_ref(),
        )),
        // Never for the frames bench makes; sent as is, the server says what is wrong.
        Err(_) => Message::text(text),
    }
}

/// A server frame's JSON text, whichever form it came in; `None` for control frames.
fn text_of(m: Message) -> Option<tokio_tungstenite::tungstenite::Utf8Bytes> {
    match m {
        Message::Text(t) => Some(t),
        Message::Binary(b) => {
            let (msg, rid) = montage_protocol::decode_server_binary(&b).ok()?;
            let mut v = serde_json::to_value(msg).ok()?;
            if let Some(rid) = rid {
                v["rid"] = rid;
            }
            Some(v.to_string().into())
        }
        _ => None,
    }
}

async fn connect(addr: &str, token: &str) -> Result<Ws> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/v1/ws?token={token}").into_client_request()?;
    if BINARY.load(Relaxed) {
        req.headers_mut().insert(
            "sec-websocket-protocol",
            montage_protocol::SUBPROTOCOL_PROTO.parse()?,
        );
    }
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    Ok(ws)
}

async fn recv_json(ws: &mut Ws) -> Result<serde_json::Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await? {
            Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                let t = text_of(m).context("an undecodable binary frame")?;
                return Ok(serde_json::from_str(t.as_str())?);
            }
            Some(Ok(Message::Close(c))) => bail!("closed: {c:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("socket ended"),
        }
    }
}

async fn join(ws: &mut Ws, session: &str, client: &str) -> Result<serde_json::Value> {
    join_as(ws, session, client, false).await
}

/// `join`, creating the session end-to-end encrypted when `encrypted`.
async fn join_as(
    ws: &mut Ws,
    session: &str,
    client: &str,
    encrypted: bool,
) -> Result<serde_json::Value> {
    let mut m = serde_json::json!({"type":"join","session":session,"client":client});
    if encrypted {
        m["create"] = serde_json::json!({"encrypted": true});
    }
    ws.send(out(m.to_string())).await?;
    loop {
        let m = recv_json(ws).await?;
        match m["type"].as_str() {
            Some("joined") => return Ok(m),
            Some("error") => bail!("join refused: {m}"),
            _ => {}
        }
    }
}

pub fn run(a: BenchArgs) -> Result<()> {
    if a.binary && (a.idle > 0 || a.history > 0) {
        bail!("--binary applies to the edit load, not to --idle or --history");
    }
    BINARY.store(a.binary, Relaxed);
    if a.idle > 0 {
        let n = raise_nofile(a.idle as u64 * 2 + 1_024);
        if n < (a.idle as u64) * 2 + 64 {
            eprintln!(
                "note: {n} file descriptors per process (hard limit); {} connections need about {} \
                 here and as many in the server",
                a.idle,
                a.idle + 64
            );
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(a))
}

async fn run_async(a: BenchArgs) -> Result<()> {
    let mut spawned = Vec::new();
    let (addrs, secret) = match &a.addr {
        Some(addr) => {
            let secret = match (&a.jwt_secret, &a.data_dir) {
                (Some(s), _) => s.clone(),
                (None, Some(d)) => String::from_utf8(
                    media_services::auth::read_secret(d)?.context("no secret in the data dir")?,
                )?,
                (None, None) => bail!("with --addr, give MONTAGE_JWT_SECRET or --data-dir"),
            };
            let addrs: Vec<String> = addr.split(',').map(|s| s.trim().to_owned()).collect();
            (addrs, secret)
        }
        None => {
            let mut b = [0u8; 16];
            getrandom::fill(&mut b).map_err(|e| anyhow!("no randomness: {e}"))?;
            let secret: String = b.iter().map(|x| format!("{x:02x}")).collect();
            let mut extra: Vec<String> = Vec::new();
            if a.history > 0 {
                extra.extend(["--idle-unload".into(), "0".into()]);
            }
            if a.idle > 0 {
                // The server inherits the descriptor limit raised below; give it room for all.
                extra.extend(["--max-connections".into(), (a.idle + 16).to_string()]);
                if let Some(p) = a.idle_ping_secs {
                    extra.extend(["--idle-ping-secs".into(), p.to_string()]);
                }
            }
            if let Some(q) = a.send_queue {
                extra.extend(["--send-queue".into(), q.to_string()]);
            }
            if let Some(ms) = a.home_lease_ms {
                extra.extend(["--home-lease-ms".into(), ms.to_string()]);
            }
            if a.nodes > 1 && a.database_url.is_none() {
                bail!("--nodes above 1 needs --database-url (nodes share the store)");
            }
            if let Some(u) = &a.database_url {
                extra.extend(["--database-url".into(), u.clone()]);
            }
            if let Some(u) = &a.nats_url {
                extra.extend(["--nats-url".into(), u.clone()]);
            }
            let mut addrs = Vec::new();
            for _ in 0..a.nodes.max(1) {
                let (s, addr) = spawn_server(&secret, &extra, a.server_cpus.as_deref())?;
                spawned.push(s);
                addrs.push(addr);
            }
            (addrs, secret)
        }
    };
    let addr = addrs[0].clone();
    let pid = (spawned.len() == 1).then(|| spawned[0].child.id());
    let pids: Vec<u32> = spawned.iter().map(|s| s.child.id()).collect();
    let auth = Auth::new(secret.as_bytes())?;
    let token = |u: &str| auth.issue(u, None, Duration::from_secs(3600));
    if a.idle > 0 {
        return idle(&a, &addr, pid, &token).await;
    }
    if a.history > 0 {
        return history(&a, &addr, &token).await;
    }
    if a.drag > 0.0 {
        return drag(&a, &addr, &token).await;
    }
    load(&a, &addrs, &pids, &token).await
}

/// What one reader of `--drag` received.
struct Received {
    frames: u64,
    ranges: u64,
    bytes: u64,
}

/// `--drag`: a slider dragged for `a.drag` seconds, and what each kind of reader received.
async fn drag(
    a: &BenchArgs,
    addr: &str,
    token: &impl Fn(&str) -> media_services::Result<String>,
) -> Result<()> {
    const STEPS_PER_SEC: f64 = 60.0;
    let session = "drag";
    let mut editor = connect(addr, &token("editor")?).await?;
    join(&mut editor, session, "editor").await?;
    let layer =
        serde_json::json!({"id":"l","kind":"image","asset":"a","x":0,"y":0,"w":100,"h":100});
    let first = serde_json::json!({"type":"op","session":session,"base":0,"seq":1,
        "ops":[{"op":"ins","path":["canvas","layers",0],"value":layer}]});
    editor.send(out(first.to_string())).await?;
    while recv_json(&mut editor).await?["type"] != "ack" {}
    // Readers join through the link.
    let link =
        serde_json::json!({"type":"set_link_role","session":session,"role":"viewer","rid":"link"});
    editor.send(out(link.to_string())).await?;
    while recv_json(&mut editor).await?["rid"] != "link" {}
    let steps = (a.drag * STEPS_PER_SEC).round().max(1.0) as u64;
    let last = 1 + steps;
    // (name, hinted Mbit/s, asks for ranges)
    let kinds = [
        ("poor, ranges", 1.0, true),
        ("fair, ranges", 7.0, true),
        ("excellent, ranges", 100.0, true),
        ("excellent, one by one", 100.0, false),
    ];
    let mut readers = Vec::new();
    for (i, (name, mbps, ranges)) in kinds.into_iter().enumerate() {
        let user = format!("reader{i}");
        let mut ws = connect(addr, &token(&user)?).await?;
        let q = serde_json::json!({"type":"quality","downlink_mbps":mbps});
        ws.send(out(q.to_string())).await?;
        let m = serde_json::json!({"type":"join","session":session,"client":user,"ranges":ranges});
        ws.send(out(m.to_string())).await?;
        loop {
            let m = recv_json(&mut ws).await?;
            match m["type"].as_str() {
                Some("joined") => break,
                Some("error") => bail!("{user} could not join: {m}"),
                _ => {}
            }
        }
        readers.push((
            name,
            tokio::spawn(async move {
                let mut r = Received {
                    frames: 0,
                    ranges: 0,
                    bytes: 0,
                };
                loop {
                    let m = match tokio::time::timeout(Duration::from_secs(30), ws.next()).await? {
                        Some(Ok(m)) => m,
                        _ => bail!("the reader's socket ended"),
                    };
                    let len = match &m {
                        Message::Text(t) => t.len(),
                        Message::Binary(b) => b.len(),
                        _ => continue,
                    };
                    let Some(t) = text_of(m) else { continue };
                    let v: serde_json::Value = serde_json::from_str(t.as_str())?;
                    if v["type"] != "op" {
                        continue;
                    }
                    r.frames += 1;
                    r.bytes += len as u64;
                    r.ranges += u64::from(v.get("from").is_some());
                    if v["version"].as_u64() >= Some(last) {
                        return Ok::<_, anyhow::Error>(r);
                    }
                }
            }),
        ));
    }
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / STEPS_PER_SEC));
    for i in 1..=steps {
        tick.tick().await;
        let value = (i % 200) as f64 / 100.0 - 1.0;
        let op = serde_json::json!({"type":"op","session":session,"base":i,"seq":i + 1,
            "ops":[{"op":"adjust","path":["canvas","layers",0],"param":"brightness","value":value}]});
        editor.send(out(op.to_string())).await?;
        // Acks are read as they come, so the editor's own queue never backs up.
        while let Some(Some(Ok(_))) = ws_ready(&mut editor) {}
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "slider drag: {steps} steps in {secs:.1} s ({} encoding), what each reader received:",
        if BINARY.load(Relaxed) {
            "binary"
        } else {
            "JSON"
        }
    );
    println!(
        "{:<24} {:>7} {:>7} {:>10} {:>10}",
        "reader", "frames", "ranges", "bytes", "bytes/s"
    );
    for (name, h) in readers {
        let r = h.await??;
        println!(
            "{name:<24} {:>7} {:>7} {:>10} {:>10.0}",
            r.frames,
            r.ranges,
            r.bytes,
            r.bytes as f64 / secs
        );
    }
    Ok(())
}

/// The next message if one is already there, without waiting.
fn ws_ready(
    ws: &mut Ws,
) -> Option<Option<std::result::Result<Message, tokio_tungstenite::tungstenite::Error>>> {
    use futures_util::FutureExt;
    ws.next().now_or_never()
}

/// Raises this process's descriptor limit to `need` (servers bench starts inherit it): past the
/// hard limit when privileged (root may raise it up to `fs.nr_open`), else to the hard limit.
/// Returns the limit now in force.
fn raise_nofile(need: u64) -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur < need && r.rlim_max < need {
            let want = libc::rlimit {
                rlim_cur: need,
                rlim_max: need,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return need;
            }
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r = want;
            }
        }
    }
    r.rlim_cur
}

/// A connection from local address 127.0.0.`k` when the server is on loopback: one source
/// address has only ~28,000 ephemeral ports.
async fn connect_from(addr: &str, token: &str, i: usize) -> Result<Ws> {
    let server: std::net::SocketAddr = addr.parse().context("--idle needs HOST:PORT")?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    if server.ip().is_loopback() {
        let k = 1 + (i / 20_000) as u8;
        socket.bind(std::net::SocketAddr::from(([127, 0, 0, k], 0)))?;
    }
    let tcp = socket.connect(server).await?;
    tcp.set_nodelay(true)?;
    let (ws, _) = tokio_tungstenite::client_async(
        format!("ws://{addr}/v1/ws?token={token}"),
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
    )
    .await?;
    Ok(ws)
}

async fn idle(
    a: &BenchArgs,
    addr: &str,
    pid: Option<u32>,
    token: &dyn Fn(&str) -> media_services::Result<String>,
) -> Result<()> {
    let pid = pid.context(
        "--idle measures the server's memory, so it needs the server bench starts (no --addr)",
    )?;
    // Warm up: one connection, so runtime and allocator set-up are not counted.
    let mut warm = connect(addr, &token("warm")?).await?;
    join(&mut warm, "warm", "warm").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = current_rss_kib(pid).context("reading server memory")?;
    let sessions = a.idle.div_ceil(20);
    let mut readers = Vec::with_capacity(a.idle);
    for i in 0..a.idle {
        // The 20 connections of a session are its owner's (who creates it by joining first):
        // no grants needed, and within --connections-per-user.
        let s = i % sessions;
        let mut ws = connect_from(addr, &token(&format!("idle{s}"))?, i)
            .await
            .with_context(|| format!("connection {i}"))?;
        join(&mut ws, &format!("idle-{s}"), &format!("c{i}")).await?;
        // Each client reads (and so answers pings) until the end, as a browser would.
        readers.push(tokio::spawn(async move {
            while let Some(Ok(_)) = ws.next().await {}
        }));
        if i.is_multiple_of(500) {
            eprint!("\ropened {i}/{}", a.idle);
        }
    }
    // Let the joins' broadcasts settle before measuring.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = current_rss_kib(pid).context("reading server memory")?;
    eprintln!();
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / a.idle as f64;
    println!(
        "idle connections: {}  server RSS {} KiB -> {} KiB  ≈ {:.1} KB per connection",
        a.idle,
        before,
        after,
        per / 1000.0
    );
    let (cpu0, _) = proc_usage(pid).context("reading server CPU")?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(a.idle_secs)).await;
    let (cpu1, _) = proc_usage(pid).context("reading server CPU")?;
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "server CPU while idle: {:.2} s over {wall:.1} s = {:.2} % of a core",
        cpu1 - cpu0,
        (cpu1 - cpu0) / wall * 100.0
    );
    for r in readers {
        r.abort();
    }
    Ok(())
}

async fn history(
    a: &BenchArgs,
    addr: &str,
    token: &dyn Fn(&str) -> media_services::Result<String>,
) -> Result<()> {
    let mut ws = connect(addr, &token("writer")?).await?;
    join(&mut ws, "history", "w").await?;
    // The writer owns the new session; the readers below are other users.
    ws.send(Message::text(
        r#"{"type":"set_link_role","session":"history","role":"viewer"}"#,
    ))
    .await?;
    let started = Instant::now();
    let mut acked = 0u64;
    let mut sent = 0u64;
    let mut known = 0u64;
    while acked < a.history {
        while sent < a.history && sent - acked < 256 {
            sent += 1;
            let op = serde_json::json!({"type":"op","session":"history","base":known,"seq":sent,
                "ops":[{"op":"set","path":["meta",format!("k{}", sent % 1000)],"value":sent}]});
            ws.feed(Message::text(op.to_string())).await?;
        }
        ws.flush().await?;
        let m = recv_json(&mut ws).await?;
        if m["type"] == "ack" {
            acked += 1;
            known = known.max(m["version"].as_u64().unwrap_or(0));
            if acked.is_multiple_of(10_000) {
                eprint!("\rwrote {acked}/{}", a.history);
            }
        } else if m["type"] == "error" {
            bail!("edit refused: {m}");
        }
    }
    eprintln!();
    let write_secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {} ops in {:.2} s ({:.0} durable edits/s, one pipelined client)",
        a.history,
        write_secs,
        a.history as f64 / write_secs
    );
    ws.send(Message::text(r#"{"type":"leave","session":"history"}"#))
        .await?;
    let mut h = Hist::new();
    for i in 0..20 {
        // The server unloads an idle session at once (--idle-unload 0); give it a moment.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut c = connect(addr, &token(&format!("reader{i}"))?).await?;
        let t = Instant::now();
        let j = join(&mut c, "history", "r").await?;
        h.record(t.elapsed().as_micros() as u64);
        if j["version"] != a.history {
            bail!("joined at {} instead of {}", j["version"], a.history);
        }
        c.close(None).await.ok();
    }
    println!(
        "join of a session with {} ops of history, loaded from the store: {}",
        a.history,
        h.line()
    );
    // The state at past versions (DESIGN §9.3): the nearest checkpoint plus the ops after it,
    // read over HTTP at 50 versions spread over the history, then the same ones again (cached).
    let http = crate::http::client(Duration::from_secs(60))?;
    let reader = token("reader")?;
    let versions: Vec<u64> = (1..=50).map(|i| i * a.history / 51).collect();
    let (mut first, mut again) = (Hist::new(), Hist::new());
    for h in [&mut first, &mut again] {
        for v in &versions {
            let url = format!("http://{addr}/v1/sessions/history?version={v}");
            let t = Instant::now();
            crate::http::get_text(&http, &url, Some(&reader)).await?;
            h.record(t.elapsed().as_micros() as u64);
        }
    }
    println!(
        "state at a past version of those {} (nearest checkpoint + ops): first read {}",
        a.history,
        first.line()
    );
    println!("  read again (cached): {}", again.line());
    catch_up_bytes(addr, token).await
}

/// The bytes of a rejoin's catch-up after 1,000 missed keystrokes, as entries one by one and
/// as one compact `delta` (docs/PROTOCOL.md "join").
async fn catch_up_bytes(
    addr: &str,
    token: &dyn Fn(&str) -> media_services::Result<String>,
) -> Result<()> {
    const KEYS: u64 = 1_000;
    let mut ws = connect(addr, &token("writer")?).await?;
    join(&mut ws, "typing", "w").await?;
    ws.send(Message::text(
        r#"{"type":"set_link_role","session":"typing","role":"viewer"}"#,
    ))
    .await?;
    // Version 1 empties the title; each keystroke after it is one edit, as the page sends them.
    for v in 1..=KEYS + 1 {
        let ops = if v == 1 {
            serde_json::json!([{"op":"set","path":["title"],"value":""}])
        } else {
            serde_json::json!([{"op":"text","path":["title"],"pos":v - 2,"ins":"k"}])
        };
        let op = serde_json::json!({"type":"op","session":"typing","base":v - 1,"seq":v,"ops":ops});
        ws.send(Message::text(op.to_string())).await?;
        loop {
            let m = recv_json(&mut ws).await?;
            match m["type"].as_str() {
                Some("ack") => break,
                Some("error") => bail!("edit refused: {m}"),
                _ => {}
            }
        }
    }
    let mut sizes = Vec::new();
    for compact in [false, true] {
        let mut c = connect(addr, &token("reader")?).await?;
        let j = serde_json::json!({"type":"join","session":"typing","client":"r","since":1,"compact":compact});
        c.send(Message::text(j.to_string())).await?;
        let size = loop {
            match tokio::time::timeout(Duration::from_secs(30), c.next()).await? {
                Some(Ok(Message::Text(t))) if t.as_str().contains(r#""type":"joined""#) => {
                    break t.len();
                }
                Some(Ok(Message::Text(t))) if t.as_str().contains(r#""type":"error""#) => {
                    bail!("join refused: {}", t.as_str())
                }
                Some(Ok(_)) => {}
                other => bail!("no joined: {other:?}"),
            }
        };
        sizes.push(size);
        c.close(None).await.ok();
    }
    println!(
        "catch-up after {KEYS} missed keystrokes: {} B as entries, {} B as one compact delta ({:.0}× smaller)",
        sizes[0],
        sizes[1],
        sizes[0] as f64 / sizes[1].max(1) as f64
    );
    Ok(())
}

struct Shared {
    start: Instant,
    stop: AtomicBool,
    acks: AtomicU64,
    deliveries: AtomicU64,
    errors: AtomicU64,
    /// `--encrypted`: edits sealed again after a `conflict`.
    resealed: AtomicU64,
    /// `tier` messages the (healthy) load clients got: each one moved down or up.
    tiers: AtomicU64,
    /// When the stalled readers stop reading (`None`: none do); latencies are kept apart for
    /// before and after it.
    stall_at: Option<Instant>,
    ack_hist: Mutex<[Hist; 2]>,
    bcast_hist: Mutex<[Hist; 2]>,
}

impl Shared {
    /// 0 before the stall (or without one), 1 from it on.
    fn phase(&self, now: Instant) -> usize {
        usize::from(self.stall_at.is_some_and(|s| now >= s))
    }
}

/// One client's latencies, per phase, merged into [`Shared`] now and then.
struct LocalHists {
    ack: [Hist; 2],
    bcast: [Hist; 2],
}

impl LocalHists {
    fn new() -> LocalHists {
        LocalHists {
            ack: [Hist::new(), Hist::new()],
            bcast: [Hist::new(), Hist::new()],
        }
    }
    fn n(&self) -> u64 {
        self.ack.iter().chain(&self.bcast).map(|h| h.n).sum()
    }
    async fn merge_into(&self, shared: &Shared) {
        let mut a = shared.ack_hist.lock().await;
        for (s, l) in a.iter_mut().zip(&self.ack) {
            s.merge(l);
        }
        drop(a);
        let mut b = shared.bcast_hist.lock().await;
        for (s, l) in b.iter_mut().zip(&self.bcast) {
            s.merge(l);
        }
    }
}

/// A stalled reader: reads (and drops) everything until `stall_at`, then never polls its socket
/// again; the socket stays open until `end` (or until the server closes it, unseen).
async fn stalled_reader(mut ws: Ws, stall_at: tokio::time::Instant, end: tokio::time::Instant) {
    let reading = async {
        while let Some(Ok(_)) = ws.next().await {}
        // The server ended it early: wait out the run anyway.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = tokio::time::sleep_until(stall_at) => {}
        _ = reading => {}
    }
    tokio::time::sleep_until(end).await;
    drop(ws);
}

/// A stalled-reader event: the seconds after the stall of the first poll at which its counter
/// had grown by `by`.
struct Milestone {
    name: &'static str,
    by: u64,
    at: Option<f64>,
}

async fn load(
    a: &BenchArgs,
    addrs: &[String],
    pids: &[u32],
    token: &dyn Fn(&str) -> media_services::Result<String>,
) -> Result<()> {
    let addr = addrs.join(",");
    let total = a.sessions * a.clients;
    eprintln!(
        "connecting {total} clients ({} sessions × {})…",
        a.sessions, a.clients
    );
    let mut sockets = Vec::with_capacity(total);
    for s in 0..a.sessions {
        for c in 0..a.clients {
            let id = s * a.clients + c;
            let node = match a.route {
                Route::Client => id,
                Route::Session => s,
            };
            let mut ws = connect(&addrs[node % addrs.len()], &token(&format!("u{id}"))?).await?;
            let session = format!("bench-{s}");
            let j = join_as(&mut ws, &session, &format!("c{id}"), a.encrypted).await?;
            if c == 0 {
                // The first joiner owns the session: make everyone an editor.
                for o in 1..a.clients {
                    let m = serde_json::json!({"type":"set_role","session":session,"user":format!("u{}", id + o),"role":"editor"});
                    ws.send(out(m.to_string())).await?;
                }
            }
            sockets.push((id, session, ws, j["version"].as_u64().unwrap_or(0)));
        }
    }
    // Stalled readers: joined; they read for the first half of the run, then never again.
    let mut stalled = Vec::new();
    for s in 0..a.sessions {
        for k in 0..a.stalled {
            let node = match a.route {
                Route::Client => s * a.clients + k,
                Route::Session => s,
            };
            let node = &addrs[node % addrs.len()];
            let mut ws = connect(node, &token(&format!("stalled-{s}-{k}"))?).await?;
            join(&mut ws, &format!("bench-{s}"), &format!("z{s}-{k}")).await?;
            stalled.push(ws);
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let usage = || -> Option<(f64, u64)> {
        let all: Option<Vec<(f64, u64)>> = pids.iter().map(|p| proc_usage(*p)).collect();
        let all = all.filter(|v| !v.is_empty())?;
        Some((all.iter().map(|u| u.0).sum(), all.iter().map(|u| u.1).sum()))
    };
    let http = crate::http::client(Duration::from_secs(5))?;
    let cluster0 = sum_metrics(&http, addrs, &CLUSTER_METRICS).await;
    let metrics0 = sum_metrics(&http, addrs, &MILESTONE_METRICS).await;
    let cpu0 = usage();
    let t0 = Instant::now();
    let dur = Duration::from_secs_f64(a.duration);
    let stall_at = (!stalled.is_empty()).then(|| t0 + dur / 2);
    let shared = Arc::new(Shared {
        start: t0,
        stop: AtomicBool::new(false),
        acks: AtomicU64::new(0),
        deliveries: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        resealed: AtomicU64::new(0),
        tiers: AtomicU64::new(0),
        stall_at,
        ack_hist: Mutex::new([Hist::new(), Hist::new()]),
        bcast_hist: Mutex::new([Hist::new(), Hist::new()]),
    });
    let end = tokio::time::Instant::from_std(t0 + dur);
    let stalled_n = stalled.len() as u64;
    let stalled_tasks: Vec<_> = stalled
        .drain(..)
        .map(|ws| {
            let at = tokio::time::Instant::from_std(stall_at.unwrap_or(t0));
            tokio::spawn(stalled_reader(ws, at, end))
        })
        .collect();
    // From the stall on: when the stalled readers were moved down a tier and dropped (any
    // connection's counters; the healthy ones' own `tier` messages are counted apart).
    let mut milestones = [
        Milestone {
            name: "first moved down a tier",
            by: 1,
            at: None,
        },
        Milestone {
            name: "first dropped as slow",
            by: 1,
            at: None,
        },
        Milestone {
            name: "all dropped as slow",
            by: stalled_n,
            at: None,
        },
    ];
    let mut tasks = Vec::with_capacity(total);
    // One key for every encrypted session of the run (each client seals and opens for real).
    let key = Arc::new(montage_client::sealed::SessionKey::generate());
    for (id, session, ws, version) in sockets {
        let shared = shared.clone();
        let writers = a.writers.unwrap_or(a.clients);
        let rate = if id % a.clients < writers {
            a.rate
        } else {
            0.0
        };
        let c = BenchClient {
            id,
            rate,
            pad: a.pad,
            key: a.encrypted.then(|| key.clone()),
            end,
        };
        tasks.push(tokio::spawn(async move {
            client(c, session, ws, version, shared).await
        }));
    }
    while t0.elapsed() < dur {
        tokio::time::sleep(Duration::from_millis(if stall_at.is_some() {
            100
        } else {
            250
        }))
        .await;
        if let Some(at) = stall_at
            && Instant::now() >= at
            && milestones.iter().any(|m| m.at.is_none())
        {
            let now = sum_metrics(&http, addrs, &MILESTONE_METRICS).await;
            let since = at.elapsed().as_secs_f64();
            let grown = |i: usize| now[i].saturating_sub(metrics0[i]);
            for (m, g) in milestones.iter_mut().zip([grown(0), grown(1), grown(1)]) {
                if m.at.is_none() && g >= m.by {
                    m.at = Some(since);
                }
            }
        }
        let done = (t0.elapsed().as_secs_f64() / a.duration).min(1.0);
        let bar = (done * 30.0) as usize;
        eprint!(
            "\r[{}{}] {:>5.1}/{:.0}s  acks {}  deliveries {}  errors {}",
            "=".repeat(bar),
            " ".repeat(30 - bar),
            t0.elapsed().as_secs_f64(),
            a.duration,
            shared.acks.load(Relaxed),
            shared.deliveries.load(Relaxed),
            shared.errors.load(Relaxed)
        );
    }
    shared.stop.store(true, Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = usage();
    // Each client counts acks of its edits still in flight for a moment, then reports.
    for t in tasks {
        if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(5), t).await {
            eprintln!("\nclient failed: {e}");
        }
    }
    eprintln!();
    let acks = shared.acks.load(Relaxed);
    let deliveries = shared.deliveries.load(Relaxed);
    println!(
        "{} sessions × {} clients ({} writing) × {} edits/s for {:.0} s over {addr}",
        a.sessions,
        a.clients,
        a.writers.unwrap_or(a.clients).min(a.clients),
        a.rate,
        a.duration
    );
    println!(
        "edits acked: {acks}  ({:.0} edits/s, offered {:.0}/s)",
        acks as f64 / elapsed,
        (a.sessions * a.writers.unwrap_or(a.clients).min(a.clients)) as f64 * a.rate
    );
    {
        let ack = shared.ack_hist.lock().await;
        let bcast = shared.bcast_hist.lock().await;
        if stall_at.is_some() {
            let half = a.duration / 2.0;
            println!("before the stall (0–{half:.0} s):");
            println!("  ack latency:       {}", ack[0].line());
            println!("  broadcast latency: {}", bcast[0].line());
            println!("while stalled ({half:.0}–{:.0} s):", a.duration);
            println!("  ack latency:       {}", ack[1].line());
            println!("  broadcast latency: {}", bcast[1].line());
        } else {
            println!("ack latency:       {}", ack[0].line());
            println!("broadcast latency: {}", bcast[0].line());
        }
    }
    println!(
        "deliveries: {deliveries}  ({:.0}/s)  errors: {}",
        deliveries as f64 / elapsed,
        shared.errors.load(Relaxed)
    );
    if a.encrypted {
        let resealed = shared.resealed.load(Relaxed);
        println!(
            "encrypted: sealed again after a conflict {resealed} times ({:.1} % of acked edits)",
            resealed as f64 * 100.0 / acks.max(1) as f64
        );
    }
    if stall_at.is_some() {
        let m1 = sum_metrics(&http, addrs, &MILESTONE_METRICS).await;
        println!(
            "stalled readers: {stalled_n}  moved down a tier: {}  dropped as slow: {}  \
             (all connections)  tier messages to the other clients: {}",
            m1[0].saturating_sub(metrics0[0]),
            m1[1].saturating_sub(metrics0[1]),
            shared.tiers.load(Relaxed)
        );
        for m in &milestones {
            match m.at {
                Some(s) => println!("  {}: {s:.1} s after the stall", m.name),
                None => println!("  {}: not within the run", m.name),
            }
        }
    }
    for t in stalled_tasks {
        t.abort();
    }
    if addrs.len() > 1 {
        let cluster = sum_metrics(&http, addrs, &CLUSTER_METRICS).await;
        let [retries, forwarded] = [0, 1].map(|i| cluster[i].saturating_sub(cluster0[i]));
        let share = |n: u64| n as f64 * 100.0 / acks.max(1) as f64;
        println!(
            "conflict retries: {retries}  ({:.1} % of acked edits)  forwarded to a home node: {forwarded}  ({:.1} %)",
            share(retries),
            share(forwarded)
        );
    }
    if let (Some((c0, _)), Some((c1, peak))) = (cpu0, cpu1) {
        println!(
            "server CPU ({} node(s)): {:.0} % of one core  peak RSS: {:.1} MiB",
            pids.len(),
            (c1 - c0) / elapsed * 100.0,
            peak as f64 / 1024.0
        );
    }
    let _ = std::io::stdout().flush();
    Ok(())
}

/// The counters the stalled-reader milestones follow.
const MILESTONE_METRICS: [&str; 2] = ["montage_tier_down_total", "montage_dropped_slow_total"];

/// Each of `names` summed over the nodes.
async fn sum_metrics(http: &reqwest::Client, addrs: &[String], names: &[&str]) -> Vec<u64> {
    let mut sums = vec![0; names.len()];
    for a in addrs {
        let text = scrape(http, a).await.unwrap_or_default();
        for (s, n) in sums.iter_mut().zip(names) {
            *s += metric(&text, n);
        }
    }
    sums
}

/// The server's `/metrics` text.
async fn scrape(http: &reqwest::Client, addr: &str) -> Result<String> {
    crate::http::get_text(http, &format!("http://{addr}/metrics"), None).await
}

/// One counter's value in a metrics text (0 if absent).
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// What several nodes count: edits sequenced again after a conflict, edits forwarded home.
const CLUSTER_METRICS: [&str; 2] = [
    "montage_conflict_retries_total",
    "montage_forwarded_edits_total",
];

/// Bytes per padding string (under the OT engine's 512-byte rope threshold).
const PAD_PIECE: usize = 500;

/// One load client's settings.
struct BenchClient {
    id: usize,
    /// Edits per second (0: a reader).
    rate: f64,
    pad: usize,
    /// `--encrypted`: the sessions' key.
    key: Option<Arc<montage_client::sealed::SessionKey>>,
    end: tokio::time::Instant,
}

/// The `op` frame of an edit: plain `ops`, or sealed into `data` (bound to the version it
/// becomes, as the SDKs bind it; the bench keeps no chain, so it binds zeros).
fn edit_frame(
    session: &str,
    base: u64,
    seq: u64,
    ops: &str,
    key: Option<&montage_client::sealed::SessionKey>,
) -> String {
    let Some(key) = key else {
        return format!(
            r#"{{"type":"op","session":"{session}","base":{base},"seq":{seq},"ops":{ops}}}"#
        );
    };
    let data = montage_client::sealed::seal(key, sealed_binding(session, base + 1), ops.as_bytes());
    format!(
        r#"{{"type":"op","session":"{session}","base":{base},"seq":{seq},"data":"{data}","rid":{seq}}}"#
    )
}

fn sealed_binding(session: &str, version: u64) -> montage_client::sealed::Binding<'_> {
    montage_client::sealed::Binding {
        kind: "op",
        session,
        version,
        key_epoch: 0,
        chain: &[0; 32],
    }
}

async fn client(
    c: BenchClient,
    session: String,
    ws: Ws,
    mut known: u64,
    shared: Arc<Shared>,
) -> Result<()> {
    let BenchClient {
        id,
        rate,
        pad,
        key,
        end,
    } = c;
    let key = key.as_deref();
    let (mut tx, mut rx) = ws.split();
    let mut hists = LocalHists::new();
    let sent_at: Arc<std::sync::Mutex<std::collections::HashMap<u64, Instant>>> = Arc::default();
    let mine = format!("c{id}");
    // Sealed edits not yet acked, by seq: sealed again after a conflict.
    let mut unsealed: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
    // Padding is a list of short strings: the bytes travel the same, but none of them becomes a
    // rope on the server (in a debug build a 20 KB rope takes ~700 KB: jumprope's nodes hold
    // 10 bytes there instead of 392), so the figures measure the network path.
    let padding = if pad > 0 {
        let piece = format!("\"{}\"", "x".repeat(PAD_PIECE));
        let pieces = vec![piece; pad.div_ceil(PAD_PIECE + 3)];
        format!(
            r#",{{"op":"set","path":["meta","p{id}"],"value":[{}]}}"#,
            pieces.join(",")
        )
    } else {
        String::new()
    };
    // Spread the clients' send instants over one period.
    // A reader (rate 0) never sends: its first tick is after the run.
    let period = if rate > 0.0 {
        Duration::from_secs_f64(1.0 / rate)
    } else {
        Duration::from_secs(86_400 * 365)
    };
    let offset = period.mul_f64((id % 97) as f64 / 97.0);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    let flush = |h: &mut LocalHists, shared: &Arc<Shared>| {
        let h = std::mem::replace(h, LocalHists::new());
        let shared = shared.clone();
        tokio::spawn(async move { h.merge_into(&shared).await });
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => {
                // Keep counting acks of edits still in flight for a moment, then report.
                let grace = tokio::time::sleep(Duration::from_millis(300));
                tokio::pin!(grace);
                loop {
                    tokio::select! {
                        _ = &mut grace => break,
                        m = rx.next() => {
                            let Some(t) = m.and_then(|m| m.ok()).and_then(text_of) else { break };
                            if let Ok(v) = serde_json::from_str::<Lite<'_>>(t.as_str())
                                && v.kind == "ack"
                                && let Some(t) = sent_at.lock().ok().and_then(|mut g| g.remove(&v.seq.unwrap_or(0)))
                            {
                                hists.ack[shared.phase(t)].record(t.elapsed().as_micros() as u64);
                                shared.acks.fetch_add(1, Relaxed);
                            }
                        }
                    }
                }
                hists.merge_into(&shared).await;
                return Ok(());
            }
            _ = tick.tick() => {
                if shared.stop.load(Relaxed) {
                    flush(&mut hists, &shared);
                    return Ok(());
                }
                seq += 1;
                let now_us = shared.start.elapsed().as_micros() as u64;
                let ops = format!(
                    r#"[{{"op":"set","path":["meta","{mine}"],"value":{now_us}}}{padding}]"#
                );
                let m = edit_frame(&session, known, seq, &ops, key);
                if let Ok(mut g) = sent_at.lock() {
                    g.insert(seq, Instant::now());
                }
                if key.is_some() {
                    unsealed.insert(seq, ops);
                }
                tx.send(out(m)).await?;
            }
            m = rx.next() => {
                let Some(m) = m else { bail!("socket ended") };
                let Some(t) = m.ok().and_then(text_of) else { continue };
                // Only the fields bench needs: the client must not be the bottleneck.
                let v: Lite<'_> = serde_json::from_str(t.as_str())?;
                match v.kind {
                    "ack" => {
                        known = known.max(v.version.unwrap_or(0));
                        if let Some(t) = sent_at.lock().ok().and_then(|mut g| g.remove(&v.seq.unwrap_or(0))) {
                            hists.ack[shared.phase(t)].record(t.elapsed().as_micros() as u64);
                        }
                        unsealed.remove(&v.seq.unwrap_or(0));
                        shared.acks.fetch_add(1, Relaxed);
                    }
                    // A sealed edit on a stale head: sealed again on the one named, new seq.
                    "error" if v.code == Some("conflict") && key.is_some() => {
                        known = known.max(v.version.unwrap_or(0));
                        let old = v.rid.unwrap_or(0);
                        if let Some(ops) = unsealed.remove(&old) {
                            seq += 1;
                            if let Ok(mut g) = sent_at.lock()
                                && let Some(t) = g.remove(&old)
                            {
                                g.insert(seq, t);
                            }
                            let m = edit_frame(&session, known, seq, &ops, key);
                            unsealed.insert(seq, ops);
                            shared.resealed.fetch_add(1, Relaxed);
                            tx.send(out(m)).await?;
                        }
                    }
                    "op" => {
                        known = known.max(v.version.unwrap_or(0));
                        // Opened as an SDK opens it; the send time is inside.
                        let opened = match (key, v.data) {
                            (Some(k), Some(data)) => montage_client::sealed::open(
                                k,
                                sealed_binding(&session, v.version.unwrap_or(0)),
                                data,
                            )
                            .ok()
                            .and_then(|p| serde_json::from_slice::<Vec<LiteComponent>>(&p).ok()),
                            _ => None,
                        };
                        let first = opened.as_ref().unwrap_or(&v.ops).first();
                        if let Some(sent) = first.and_then(|c| c.value.as_ref()?.0) {
                            let now = shared.start.elapsed().as_micros() as f64;
                            // Phase of the send: an edit sent before the stall counts before.
                            let sent_at = shared.start + Duration::from_micros(sent as u64);
                            hists.bcast[shared.phase(sent_at)].record((now - sent).max(0.0) as u64);
                        }
                        shared.deliveries.fetch_add(1, Relaxed);
                    }
                    "tier" => {
                        shared.tiers.fetch_add(1, Relaxed);
                    }
                    // Every error is counted (in the guard); the first one is shown.
                    "error" if shared.errors.fetch_add(1, Relaxed) == 0 => {
                        eprintln!("\nfirst error: {}", t.as_str());
                    }
                    _ => {}
                }
                if hists.n() >= 10_000 {
                    flush(&mut hists, &shared);
                }
            }
        }
    }
}
