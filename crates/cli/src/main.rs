//! The `montage` command.

mod bench;
mod client_cmd;
mod http;
mod sharing_args;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use media_services::auth::{self, Auth};
use media_services::{Config, Limits};

#[derive(Parser)]
#[command(
    name = "montage",
    version,
    about = "Real-time collaboration server for media editing"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server (embedded SQLite in the data dir, or PostgreSQL + NATS for several nodes).
    Serve(ServeArgs),
    /// Print a token for USER signed with the server's secret.
    Token(TokenArgs),
    /// Load generator over real WebSockets.
    Bench(bench::BenchArgs),
    /// Create a session, show its state, or print its history.
    Session(client_cmd::SessionArgs),
    /// Apply one edit (a JSON array of components) and wait for its ack.
    Edit(client_cmd::EditArgs),
    /// Print a session's events as JSON lines.
    Watch(client_cmd::SessionOnly),
    /// A small interactive terminal client.
    Join(client_cmd::SessionOnly),
}

#[derive(Args)]
struct SecretArgs {
    /// Where the database and the generated secret live.
    #[arg(long, env = "MONTAGE_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// HS256 key for tokens; without it the secret file in the data dir is used.
    #[arg(long, env = "MONTAGE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long, env = "MONTAGE_ADDR", default_value = "127.0.0.1:7070")]
    addr: String,
    #[command(flatten)]
    secret: SecretArgs,
    /// Snapshot a session with new edits this often (seconds).
    #[arg(long, env = "MONTAGE_SNAPSHOT_INTERVAL", default_value_t = 300)]
    snapshot_interval: u64,
    /// Unload a session this long (seconds) after its last participant left.
    #[arg(long, env = "MONTAGE_IDLE_UNLOAD", default_value_t = 30)]
    idle_unload: u64,
    #[arg(long, env = "MONTAGE_MAX_FRAME_BYTES", default_value_t = Limits::default().max_frame_bytes)]
    max_frame_bytes: usize,
    /// Messages per second per connection (burst twice that).
    #[arg(long, env = "MONTAGE_MESSAGES_PER_SEC", default_value_t = Limits::default().messages_per_sec)]
    messages_per_sec: f64,
    /// Edits per second per connection (burst twice that).
    #[arg(long, env = "MONTAGE_EDITS_PER_SEC", default_value_t = Limits::default().edits_per_sec)]
    edits_per_sec: f64,
    /// Bytes per second per connection (burst four times that).
    #[arg(long, env = "MONTAGE_BYTES_PER_SEC", default_value_t = Limits::default().bytes_per_sec)]
    bytes_per_sec: f64,
    /// Open WebSocket connections in all; more are refused with HTTP 503.
    #[arg(long, env = "MONTAGE_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Open connections per user; more are refused with HTTP 429.
    #[arg(long, env = "MONTAGE_CONNECTIONS_PER_USER", default_value_t = Limits::default().connections_per_user)]
    connections_per_user: usize,
    /// Frames queued per connection before a slow reader is dropped.
    #[arg(long, env = "MONTAGE_SEND_QUEUE", default_value_t = Limits::default().send_queue)]
    send_queue: usize,
    /// Largest asset upload in bytes (`POST /v1/assets`); larger ones get 413.
    #[arg(long, env = "MONTAGE_MAX_UPLOAD_BYTES", default_value_t = media_services::MediaConfig::default().intake.max_bytes)]
    max_upload_bytes: u64,
    /// Decodes and renders running at once (each a core and up to ~440 MB).
    #[arg(long, env = "MONTAGE_MAX_RENDERS", default_value_t = media_services::MediaConfig::default().max_renders)]
    max_renders: usize,
    /// Store in PostgreSQL (postgres://…), shared with other nodes, instead of SQLite.
    #[arg(long, env = "MONTAGE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Connections in the PostgreSQL pool.
    #[arg(long, env = "MONTAGE_DATABASE_POOL", default_value_t = media_services::store::postgres::DEFAULT_POOL)]
    database_pool: u32,
    /// Fan out edits, roster and presence to other nodes through NATS (nats://…); needs --database-url.
    #[arg(long, env = "MONTAGE_NATS_URL")]
    nats_url: Option<String>,
    #[command(flatten)]
    sharing: sharing_args::SharingArgs,
    /// Where asset bytes go: `s3://bucket/prefix` (credentials from AWS_* variables) or
    /// `file:///dir`; default DATA_DIR/assets.
    #[arg(long, env = "MONTAGE_BLOB_URL")]
    blob_url: Option<String>,
    /// Development mode: `POST /v1/dev/token` signs a token for any user name (for the demo
    /// page). Never in production.
    #[arg(long, env = "MONTAGE_DEV")]
    dev: bool,
}

#[derive(Args)]
struct TokenArgs {
    user: String,
    #[arg(long)]
    name: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    ttl: u64,
    #[command(flatten)]
    secret: SecretArgs,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.cmd {
        Cmd::Serve(a) => serve(a),
        Cmd::Token(a) => token(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Session(a) => client_cmd::session(a),
        Cmd::Edit(a) => client_cmd::edit(a),
        Cmd::Watch(a) => client_cmd::watch(a),
        Cmd::Join(a) => client_cmd::join(a),
    }
}

fn env_secret(s: &SecretArgs) -> Result<Option<Vec<u8>>> {
    match &s.jwt_secret {
        Some(v) if v.is_empty() => bail!("MONTAGE_JWT_SECRET is empty"),
        Some(v) => Ok(Some(v.as_bytes().to_vec())),
        None => Ok(None),
    }
}

fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating data dir {}", dir.display()))
}

fn serve(a: ServeArgs) -> Result<()> {
    ensure_dir(&a.secret.data_dir)?;
    let secret = match env_secret(&a.secret)? {
        Some(s) => s,
        None => {
            let (s, created) = auth::load_or_create_secret(&a.secret.data_dir)?;
            let path = auth::secret_path(&a.secret.data_dir);
            if created {
                tracing::warn!(path = %path.display(), "no MONTAGE_JWT_SECRET: generated a random secret (mode 0600); `montage token` reads it");
            } else {
                tracing::info!(path = %path.display(), "using the JWT secret from the data dir");
            }
            s
        }
    };
    let mut config = Config::new(a.secret.data_dir.clone(), secret);
    config.snapshot_interval = Duration::from_secs(a.snapshot_interval.max(1));
    config.idle_unload = Duration::from_secs(a.idle_unload);
    config.limits.max_frame_bytes = a.max_frame_bytes;
    config.limits.messages_per_sec = a.messages_per_sec;
    config.limits.messages_burst = a.messages_per_sec * 2.0;
    config.limits.edits_per_sec = a.edits_per_sec;
    config.limits.edits_burst = a.edits_per_sec * 2.0;
    config.limits.bytes_per_sec = a.bytes_per_sec;
    config.limits.bytes_burst = a.bytes_per_sec * 4.0;
    config.limits.send_queue = a.send_queue;
    config.limits.connections_per_user = a.connections_per_user;
    config.limits.max_connections = a.max_connections;
    config.media.intake.max_bytes = a.max_upload_bytes;
    config.media.max_renders = a.max_renders;
    config.database_url = a.database_url.clone();
    config.database_pool = a.database_pool;
    config.nats_url = a.nats_url.clone();
    a.sharing.apply(&mut config.sharing)?;
    config.blob_url = a.blob_url.clone();
    config.dev = a.dev;
    if a.dev {
        tracing::warn!("--dev: anyone can get a token for any user at POST /v1/dev/token");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&a.addr)
            .await
            .with_context(|| format!("binding {}", a.addr))?;
        let addr = listener.local_addr()?;
        // Tests and scripts read this line to find the port when binding port 0.
        println!("listening on {addr}");
        std::io::stdout().flush()?;
        tracing::info!(%addr, data_dir = %a.secret.data_dir.display(), "serving");
        media_services::run(listener, config, shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

fn token(a: TokenArgs) -> Result<()> {
    let secret = match env_secret(&a.secret)? {
        Some(s) => s,
        None => auth::read_secret(&a.secret.data_dir)?.with_context(|| {
            format!(
                "no MONTAGE_JWT_SECRET and no secret in {}; run `montage serve` once first",
                a.secret.data_dir.display()
            )
        })?,
    };
    let t = Auth::new(&secret)?.issue(&a.user, a.name.as_deref(), Duration::from_secs(a.ttl))?;
    println!("{t}");
    Ok(())
}
