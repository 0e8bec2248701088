//! The flags of `montage serve` (each also read from its `MONTAGE_*` environment variable) and
//! the [`Config`] they make. The binary parses them; tests that start servers in-process parse
//! the same flags, so a test's server is configured exactly as an operator's would be.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use montage_protocol::Role;

use crate::collaboration::SharingConfig;
use crate::config::HttpLimits;
use crate::error::{Error, Result};
use crate::{Config, Limits, MediaConfig};

/// (No `Debug` here or on the other flag structs: they hold secrets and URLs with passwords;
/// [`Config`]'s `Debug` redacts them.)
#[derive(Args)]
pub struct SecretArgs {
    /// Where the database and the generated secret live.
    #[arg(long, env = "MONTAGE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// HS256 key for tokens, at least 32 bytes (e.g. `openssl rand -hex 32`); without it the
    /// secret file in the data dir is used.
    #[arg(long, env = "MONTAGE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
}

impl SecretArgs {
    /// The secret given by flag or environment, if any (an empty or short one is an error).
    pub fn given_secret(&self) -> Result<Option<Vec<u8>>> {
        match &self.jwt_secret {
            Some(v) if v.is_empty() => Err(Error::Config("MONTAGE_JWT_SECRET is empty".into())),
            Some(v) => {
                crate::auth::check_secret(v.as_bytes())?;
                Ok(Some(v.as_bytes().to_vec()))
            }
            None => Ok(None),
        }
    }
}

#[derive(Args)]
pub struct ServeArgs {
    #[arg(long, env = "MONTAGE_ADDR", default_value = "127.0.0.1:7070")]
    pub addr: String,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Snapshot a session with new edits this often (seconds).
    #[arg(long, env = "MONTAGE_SNAPSHOT_INTERVAL", default_value_t = 300)]
    pub snapshot_interval: u64,
    /// Unload a session this long (seconds) after its last participant left.
    #[arg(long, env = "MONTAGE_IDLE_UNLOAD", default_value_t = 30)]
    pub idle_unload: u64,
    #[arg(long, env = "MONTAGE_MAX_FRAME_BYTES", default_value_t = Limits::default().max_frame_bytes)]
    pub max_frame_bytes: usize,
    /// Messages per second per connection (burst twice that).
    #[arg(long, env = "MONTAGE_MESSAGES_PER_SEC", default_value_t = Limits::default().messages_per_sec)]
    pub messages_per_sec: f64,
    /// Edits per second per connection (burst twice that).
    #[arg(long, env = "MONTAGE_EDITS_PER_SEC", default_value_t = Limits::default().edits_per_sec)]
    pub edits_per_sec: f64,
    /// Bytes per second per connection (burst four times that).
    #[arg(long, env = "MONTAGE_BYTES_PER_SEC", default_value_t = Limits::default().bytes_per_sec)]
    pub bytes_per_sec: f64,
    /// Open WebSocket connections in all; more are refused with HTTP 503.
    #[arg(long, env = "MONTAGE_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Open connections per user; more are refused with HTTP 429.
    #[arg(long, env = "MONTAGE_CONNECTIONS_PER_USER", default_value_t = Limits::default().connections_per_user)]
    pub connections_per_user: usize,
    /// Frames queued per connection before a slow reader is dropped.
    #[arg(long, env = "MONTAGE_SEND_QUEUE", default_value_t = Limits::default().send_queue)]
    pub send_queue: usize,
    /// Bytes queued per connection before a slow reader is dropped.
    #[arg(long, env = "MONTAGE_SEND_QUEUE_BYTES", default_value_t = Limits::default().send_queue_bytes)]
    pub send_queue_bytes: usize,
    /// Largest session document in bytes of JSON; edits past it get `too_large`.
    #[arg(long, env = "MONTAGE_MAX_DOC_BYTES", default_value_t = Limits::default().max_doc_bytes)]
    pub max_doc_bytes: usize,
    /// Largest state sent inside `joined` to a client that can download it over HTTP instead
    /// (`join.state_ref`); larger states travel as resumable downloads.
    #[arg(long, env = "MONTAGE_INLINE_STATE_BYTES", default_value_t = Limits::default().inline_state_bytes)]
    pub inline_state_bytes: usize,
    /// Component pairs one edit may be transformed through; past it `conflict` with the head.
    #[arg(long, env = "MONTAGE_MAX_TRANSFORM_WORK", default_value_t = Limits::default().max_transform_work)]
    pub max_transform_work: u64,
    /// Seconds between pings of a connection with no traffic. Behind a load balancer or proxy
    /// that closes idle connections (often after 60 s), set it below that timeout.
    #[arg(long, env = "MONTAGE_IDLE_PING_SECS", default_value_t = Limits::default().idle_ping.as_secs())]
    pub idle_ping_secs: u64,
    /// Largest asset upload in bytes (`POST /v1/assets`); larger ones get 413.
    #[arg(long, env = "MONTAGE_MAX_UPLOAD_BYTES", default_value_t = crate::MediaConfig::default().intake.max_bytes)]
    pub max_upload_bytes: u64,
    /// Decodes and renders running at once (each a core and up to ~440 MB).
    #[arg(long, env = "MONTAGE_MAX_RENDERS", default_value_t = crate::MediaConfig::default().max_renders)]
    pub max_renders: usize,
    /// Store in PostgreSQL (postgres://…), shared with other nodes, instead of SQLite.
    #[arg(long, env = "MONTAGE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Connections in the PostgreSQL pool.
    #[arg(long, env = "MONTAGE_DATABASE_POOL", default_value_t = crate::store::postgres::DEFAULT_POOL)]
    pub database_pool: u32,
    /// Fan out edits, roster and presence to other nodes through NATS (nats://…); needs --database-url.
    #[arg(long, env = "MONTAGE_NATS_URL")]
    pub nats_url: Option<String>,
    /// With --nats-url: each loaded session has one home node, holding a lease this long
    /// (renewed every quarter of it); the others forward its edits there. The longest a dead
    /// home holds up its sessions. 0: no homes (every node sequences; conflicts retry).
    #[arg(long, env = "MONTAGE_HOME_LEASE_MS", default_value_t = 2_000)]
    pub home_lease_ms: u64,
    #[command(flatten)]
    pub sharing: SharingArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    /// Where asset bytes go: `s3://bucket/prefix` (credentials from AWS_* variables) or
    /// `file:///dir`; default DATA_DIR/assets.
    #[arg(long, env = "MONTAGE_BLOB_URL")]
    pub blob_url: Option<String>,
    /// Development mode: `POST /v1/dev/token` signs a token for any user name (for the demo
    /// page), only on a loopback address and for pages opened at a loopback host. Never in
    /// production.
    #[arg(long, env = "MONTAGE_DEV")]
    pub dev: bool,
    /// With --dev: listen on any address and give dev tokens whatever the request's `Host`, so
    /// everyone who can reach the server may act as any user.
    #[arg(long, env = "MONTAGE_DEV_ALLOW_REMOTE")]
    pub dev_allow_remote: bool,
    /// The link role of new sessions: none (private), viewer, commenter or editor.
    #[arg(long, env = "MONTAGE_DEFAULT_LINK_ROLE", default_value = "none", value_parser = parse_link_role)]
    pub default_link_role: Role,
    /// Sessions are created only through `POST /v1/sessions`; `join` of a missing one is not_found.
    #[arg(long, env = "MONTAGE_NO_CREATE_ON_JOIN")]
    pub no_create_on_join: bool,
    /// Sessions one user may create per hour (by join or POST /v1/sessions; per node).
    #[arg(long, env = "MONTAGE_SESSIONS_PER_USER", default_value_t = 100)]
    pub sessions_per_user: u32,
    /// Keep this many days of version history (named versions always stay); 0 keeps only what
    /// the newest checkpoint needs. Unset: keep everything.
    #[arg(long, env = "MONTAGE_HISTORY_DAYS")]
    pub history_days: Option<u32>,
}

fn parse_link_role(s: &str) -> std::result::Result<Role, String> {
    match Role::parse(s) {
        Some(Role::Owner) | None => Err("expected none, viewer, commenter or editor".into()),
        Some(r) => Ok(r),
    }
}

impl ServeArgs {
    /// The server's configuration, signing tokens with `secret`.
    pub fn config(&self, secret: Vec<u8>) -> Result<Config> {
        let mut config = Config::new(self.secret.data_dir.clone(), secret);
        config.snapshot_interval = Duration::from_secs(self.snapshot_interval.max(1));
        config.idle_unload = Duration::from_secs(self.idle_unload);
        config.limits.max_frame_bytes = self.max_frame_bytes;
        config.limits.messages_per_sec = rate("--messages-per-sec", self.messages_per_sec)?;
        config.limits.messages_burst = self.messages_per_sec * 2.0;
        config.limits.edits_per_sec = rate("--edits-per-sec", self.edits_per_sec)?;
        config.limits.edits_burst = self.edits_per_sec * 2.0;
        config.limits.bytes_per_sec = rate("--bytes-per-sec", self.bytes_per_sec)?;
        config.limits.bytes_burst = self.bytes_per_sec * 4.0;
        config.limits.send_queue = self.send_queue;
        config.limits.send_queue_bytes = self.send_queue_bytes;
        config.limits.max_doc_bytes = self.max_doc_bytes;
        config.limits.inline_state_bytes = self.inline_state_bytes;
        config.limits.max_transform_work = self.max_transform_work;
        config.limits.idle_ping = secs("--idle-ping-secs", self.idle_ping_secs)?;
        config.limits.connections_per_user = self.connections_per_user;
        config.limits.max_connections = self.max_connections;
        config.media.intake.max_bytes = self.max_upload_bytes;
        config.media.max_renders = self.max_renders;
        config.database_url = self.database_url.clone();
        config.database_pool = self.database_pool;
        config.nats_url = self.nats_url.clone();
        config.home_lease = (self.nats_url.is_some() && self.home_lease_ms > 0)
            .then(|| std::time::Duration::from_millis(self.home_lease_ms.max(100)));
        self.sharing.apply(&mut config.sharing)?;
        self.http.apply(&mut config)?;
        config.blob_url = self.blob_url.clone();
        config.dev = self.dev;
        config.dev_allow_remote = self.dev_allow_remote;
        config.default_link_role = self.default_link_role;
        config.create_on_join = !self.no_create_on_join;
        config.sessions_per_user = self.sessions_per_user;
        config.history_retention = self
            .history_days
            .map(|d| Duration::from_secs(u64::from(d) * 86_400));
        Ok(config)
    }
}

/// `montage serve` flags for connectors, webhooks, invites and the Task Manager.
#[derive(Args)]
pub struct SharingArgs {
    /// A connector's webhook URL as NAME=URL (messenger, yapper, allat, events, newsletter); repeat the flag, or
    /// separate entries with commas in the environment variable.
    #[arg(
        long = "connector-url",
        env = "MONTAGE_CONNECTOR_URLS",
        value_delimiter = ','
    )]
    pub connector_urls: Vec<String>,
    /// A file of `name = url` lines (and optionally `secret = …`); flags override it.
    #[arg(long, env = "MONTAGE_CONNECTORS_FILE")]
    pub connectors_file: Option<PathBuf>,
    /// The app's backend: receives signed app events (docs/WEBHOOKS.md "App events") through
    /// the Task Manager. Same as `--connector-url events=URL`.
    #[arg(long, env = "MONTAGE_EVENTS_URL")]
    pub events_url: Option<String>,
    /// Token subjects allowed to read `GET /v1/events` (the app backend's service accounts);
    /// repeat the flag or separate with commas.
    #[arg(
        long = "service-users",
        env = "MONTAGE_SERVICE_USERS",
        value_delimiter = ','
    )]
    pub service_users: Vec<String>,
    /// The HMAC-SHA256 key that signs every webhook (required with any connector URL).
    #[arg(long, env = "MONTAGE_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// One webhook attempt gives up after this many milliseconds.
    #[arg(long, env = "MONTAGE_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,
    /// Base of the preview and invite links sent out (default `http://<listen address>`).
    #[arg(long, env = "MONTAGE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Task attempts running at once.
    #[arg(long, env = "MONTAGE_TASK_WORKERS", default_value_t = 4)]
    pub task_workers: usize,
    /// Attempts before a task is dead.
    #[arg(long, env = "MONTAGE_TASK_MAX_ATTEMPTS", default_value_t = 8)]
    pub task_max_attempts: u32,
    /// Wait after a task's first failure (doubles per failure, with jitter).
    #[arg(long, env = "MONTAGE_TASK_BACKOFF_MS", default_value_t = 1_000)]
    pub task_backoff_ms: u64,
    /// Longest wait between attempts.
    #[arg(long, env = "MONTAGE_TASK_BACKOFF_MAX_MS", default_value_t = 300_000)]
    pub task_backoff_max_ms: u64,
    /// A claimed task not finished within this is run again (keep it above the webhook timeout).
    #[arg(long, env = "MONTAGE_TASK_LEASE_MS", default_value_t = 120_000)]
    pub task_lease_ms: u64,
    /// Share recipients one user may send to per hour (per node).
    #[arg(long, env = "MONTAGE_SHARES_PER_USER", default_value_t = SharingConfig::default().shares_per_user)]
    pub shares_per_user: u32,
    /// Share recipients per session per hour (per node).
    #[arg(long, env = "MONTAGE_SHARES_PER_SESSION", default_value_t = SharingConfig::default().shares_per_session)]
    pub shares_per_session: u32,
    /// Awards one user may give per hour (per node).
    #[arg(long, env = "MONTAGE_AWARDS_PER_USER", default_value_t = SharingConfig::default().awards_per_user)]
    pub awards_per_user: u32,
    /// Awards per session per hour (per node).
    #[arg(long, env = "MONTAGE_AWARDS_PER_SESSION", default_value_t = SharingConfig::default().awards_per_session)]
    pub awards_per_session: u32,
    /// Days between issues of the community newsletter (spotlighted projects and featured
    /// creators, through the `newsletter` connector); 0: only on `POST /v1/newsletters`.
    #[arg(long, env = "MONTAGE_NEWSLETTER_DAYS", default_value_t = 7)]
    pub newsletter_days: u32,
}

impl SharingArgs {
    pub fn apply(&self, cfg: &mut SharingConfig) -> Result<()> {
        let c = &mut cfg.connectors;
        if let Some(path) = &self.connectors_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
            c.add_file(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        }
        for spec in self.connector_urls.iter().filter(|s| !s.trim().is_empty()) {
            c.add_url(spec)
                .map_err(|e| Error::Config(format!("--connector-url {e}")))?;
        }
        if let Some(url) = &self.events_url {
            c.add_url(&format!("events={url}"))
                .map_err(|e| Error::Config(format!("--events-url {e}")))?;
        }
        if let Some(s) = &self.webhook_secret {
            c.secret = s.as_bytes().to_vec();
        }
        cfg.service_users = self
            .service_users
            .iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        c.timeout = Duration::from_millis(self.webhook_timeout_ms.max(1));
        cfg.public_url = self.public_url.clone();
        cfg.shares_per_user = self.shares_per_user;
        cfg.shares_per_session = self.shares_per_session;
        cfg.awards_per_user = self.awards_per_user;
        cfg.awards_per_session = self.awards_per_session;
        cfg.newsletter_every = (self.newsletter_days > 0)
            .then(|| Duration::from_secs(u64::from(self.newsletter_days) * 86_400));
        let t = &mut cfg.tasks;
        t.workers = self.task_workers.max(1);
        t.max_attempts = self.task_max_attempts.max(1);
        t.backoff_base = Duration::from_millis(self.task_backoff_ms.max(1));
        t.backoff_max = Duration::from_millis(self.task_backoff_max_ms.max(self.task_backoff_ms));
        t.lease = Duration::from_millis(self.task_lease_ms.max(self.webhook_timeout_ms + 1_000));
        Ok(())
    }
}

/// `montage serve` flags bounding HTTP: sockets, read timeouts, request rates, uploads and the
/// per-user asset quota (DESIGN §9.2).
#[derive(Args)]
pub struct HttpArgs {
    /// Open sockets (HTTP, and WebSockets until upgraded); past it new ones wait to be accepted.
    #[arg(long, env = "MONTAGE_MAX_SOCKETS", default_value_t = HttpLimits::default().max_sockets)]
    pub max_sockets: usize,
    /// Open sockets from one address (an IPv6 /64); past it new ones from there are closed at
    /// once. Behind a reverse proxy every client shares its address: raise this there.
    #[arg(long, env = "MONTAGE_SOCKETS_PER_ADDRESS", default_value_t = HttpLimits::default().sockets_per_address)]
    pub sockets_per_address: usize,
    /// Milliseconds a write to a socket (a response, a WebSocket frame) may make no progress
    /// before the socket is closed: a peer that stops reading gives its socket back.
    #[arg(long, env = "MONTAGE_WRITE_TIMEOUT_MS", default_value_t = ms(HttpLimits::default().write_timeout))]
    pub write_timeout_ms: u64,
    /// Milliseconds a client has to send a request's headers (and an idle socket its next request).
    #[arg(long, env = "MONTAGE_HEADER_TIMEOUT_MS", default_value_t = ms(HttpLimits::default().header_timeout))]
    pub header_timeout_ms: u64,
    /// Milliseconds a request body may take to arrive once the server starts reading it.
    #[arg(long, env = "MONTAGE_BODY_TIMEOUT_MS", default_value_t = ms(HttpLimits::default().body_timeout))]
    pub body_timeout_ms: u64,
    /// HTTP requests per second per user (by peer address without a token); burst 4×.
    #[arg(long, env = "MONTAGE_REQUESTS_PER_SEC", default_value_t = HttpLimits::default().requests_per_sec)]
    pub requests_per_sec: f64,
    /// Uploads at once (each holds its permit from before its body is read until it is stored).
    #[arg(long, env = "MONTAGE_MAX_UPLOADS", default_value_t = MediaConfig::default().max_uploads)]
    pub max_uploads: usize,
    /// Assets one user may keep.
    #[arg(long, env = "MONTAGE_ASSETS_PER_USER", default_value_t = MediaConfig::default().assets_per_user)]
    pub assets_per_user: u64,
    /// Bytes of assets one user may keep.
    #[arg(long, env = "MONTAGE_ASSET_BYTES_PER_USER", default_value_t = MediaConfig::default().asset_bytes_per_user)]
    pub asset_bytes_per_user: u64,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl HttpArgs {
    pub fn apply(&self, config: &mut Config) -> Result<()> {
        let h = &mut config.http;
        h.max_sockets = self.max_sockets.max(1);
        h.sockets_per_address = self.sockets_per_address.max(1);
        h.write_timeout = timeout("--write-timeout-ms", self.write_timeout_ms)?;
        h.header_timeout = timeout("--header-timeout-ms", self.header_timeout_ms)?;
        h.body_timeout = timeout("--body-timeout-ms", self.body_timeout_ms)?;
        h.requests_per_sec = rate("--requests-per-sec", self.requests_per_sec)?;
        h.requests_burst = self.requests_per_sec * 4.0;
        let m = &mut config.media;
        m.max_uploads = self.max_uploads.max(1);
        m.assets_per_user = self.assets_per_user;
        m.asset_bytes_per_user = self.asset_bytes_per_user;
        Ok(())
    }
}

/// Longest timeout a flag takes: a day (far larger ones overflow the clock).
const MAX_TIMEOUT_MS: u64 = 86_400_000;

fn timeout(flag: &str, ms: u64) -> Result<Duration> {
    if !(1..=MAX_TIMEOUT_MS).contains(&ms) {
        return Err(Error::Config(format!(
            "{flag} must be 1 to {MAX_TIMEOUT_MS} milliseconds, got {ms}"
        )));
    }
    Ok(Duration::from_millis(ms))
}

/// A flag in seconds: 1 s to a day.
fn secs(flag: &str, secs: u64) -> Result<Duration> {
    let max = MAX_TIMEOUT_MS / 1_000;
    if !(1..=max).contains(&secs) {
        return Err(Error::Config(format!(
            "{flag} must be 1 to {max} seconds, got {secs}"
        )));
    }
    Ok(Duration::from_secs(secs))
}

/// A rate flag: a positive number (per second).
fn rate(flag: &str, r: f64) -> Result<f64> {
    if !(r.is_finite() && r > 0.0) {
        return Err(Error::Config(format!(
            "{flag} must be a positive number per second, got {r}"
        )));
    }
    Ok(r)
}
