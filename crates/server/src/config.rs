//! Server configuration: paths, intervals and per-connection limits.

use std::path::PathBuf;
use std::time::Duration;

/// Everything `server::run` needs besides its listener.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// The HS256 key for tokens.
    pub jwt_secret: Vec<u8>,
    /// A loaded session with new edits writes a snapshot this often.
    pub snapshot_interval: Duration,
    /// ... and also after this many edits since its last one, so loading stays fast.
    pub snapshot_every_ops: u64,
    /// A session with no participants is unloaded after this long.
    pub idle_unload: Duration,
    /// Several nodes: each repeats its roster of a session this often; another node's roster
    /// not repeated for three times this long is dropped (its node is gone).
    pub roster_refresh: Duration,
    /// Versions kept in memory for transformation and `since` catch-up; older bases read the store.
    pub history_keep: usize,
    /// Most appends the writer puts into one transaction.
    pub max_commit_batch: usize,
    pub limits: Limits,
    pub media: MediaConfig,
    /// `postgres://…`: share this PostgreSQL store with other nodes instead of SQLite.
    pub database_url: Option<String>,
    /// Connections in the PostgreSQL pool.
    pub database_pool: u32,
    /// `nats://…`: fan-out to other nodes (needs `database_url`).
    pub nats_url: Option<String>,
    /// Connectors, the Task Manager and invites.
    pub sharing: crate::social::service::SharingConfig,
    /// Where asset bytes go: `s3://bucket/prefix` or `file:///dir`; `None` is `<data_dir>/assets`.
    pub blob_url: Option<String>,
    /// Development mode: `POST /v1/dev/token` hands out tokens for any name (never in production).
    pub dev: bool,
    /// The `link_role` of new sessions: `none` (private) unless the deployment chooses another.
    pub default_link_role: montage_protocol::Role,
    /// `join` creates a session that does not exist yet (else only `POST /v1/sessions` does).
    pub create_on_join: bool,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>, jwt_secret: Vec<u8>) -> Config {
        Config {
            data_dir: data_dir.into(),
            jwt_secret,
            snapshot_interval: Duration::from_secs(300),
            snapshot_every_ops: 10_000,
            idle_unload: Duration::from_secs(30),
            roster_refresh: Duration::from_secs(5),
            history_keep: 2_000,
            max_commit_batch: 1_024,
            limits: Limits::default(),
            media: MediaConfig::default(),
            database_url: None,
            database_pool: crate::store::postgres::DEFAULT_POOL,
            nats_url: None,
            sharing: crate::social::service::SharingConfig::default(),
            blob_url: None,
            dev: false,
            default_link_role: montage_protocol::Role::Removed,
            create_on_join: true,
        }
    }
}

/// Per-connection limits. The defaults let an honest client move its cursor 120 times a second
/// while typing 30 edits a second (DESIGN §6).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest text frame answered normally; larger ones get `too_large`.
    pub max_frame_bytes: usize,
    pub messages_per_sec: f64,
    pub messages_burst: f64,
    pub edits_per_sec: f64,
    pub edits_burst: f64,
    pub bytes_per_sec: f64,
    pub bytes_burst: f64,
    /// Refused messages allowed per second (and burst) before the socket is closed with 1008.
    pub strikes_per_sec: f64,
    pub strikes_burst: f64,
    pub sessions_per_connection: usize,
    /// Open WebSocket connections in all; more are refused with HTTP 503.
    pub max_connections: usize,
    /// Open connections one user may hold; more are refused with HTTP 429.
    pub connections_per_user: usize,
    /// A user's messages, edits and bytes over all of its connections may reach this many times
    /// one connection's rates, so opening more sockets does not multiply a user's budget.
    pub user_rate_factor: f64,
    /// Frames queued for one connection; a reader that falls this far behind is dropped.
    pub send_queue: usize,
    pub max_presence_bytes: usize,
    /// Most ops a `since` catch-up sends; past it the joiner gets the whole state.
    pub max_catch_up: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_bytes: 256 * 1024,
            messages_per_sec: 200.0,
            messages_burst: 400.0,
            edits_per_sec: 60.0,
            edits_burst: 120.0,
            bytes_per_sec: 2.0 * 1024.0 * 1024.0,
            bytes_burst: 8.0 * 1024.0 * 1024.0,
            strikes_per_sec: 20.0,
            strikes_burst: 200.0,
            sessions_per_connection: 64,
            max_connections: 50_000,
            connections_per_user: 32,
            user_rate_factor: 4.0,
            send_queue: 1_024,
            max_presence_bytes: 8 * 1024,
            max_catch_up: 10_000,
        }
    }
}

/// Bounds of the media processor: uploads, decoded assets, renders.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Upload size, pixel count and side limits (`max_bytes` is the `POST /v1/assets` body limit).
    pub intake: montage_media::Limits,
    /// Decodes and renders running at once on the blocking pool: each may hold a decoded image
    /// of up to 440 MB, and the machine has few cores.
    pub max_renders: usize,
    /// Decoded assets (RGBA plus pyramid) kept for renders.
    pub asset_cache_bytes: usize,
    /// Encoded previews kept, newest version per (session, tier).
    pub preview_cache_bytes: usize,
    /// ffprobe runs (upload validation) at once: their own permits, so uploads can't starve
    /// renders.
    pub max_probes: usize,
    /// Temporary files holding copies of blobs that are not on local disk (S3), for ffmpeg:
    /// kept per asset, least-recently-used beyond this many bytes, so scrubbing a timeline
    /// doesn't download the video again for every frame.
    pub frame_copy_bytes: u64,
}

impl Default for MediaConfig {
    fn default() -> MediaConfig {
        MediaConfig {
            intake: montage_media::Limits::default(),
            max_renders: 2,
            asset_cache_bytes: 1024 * 1024 * 1024,
            preview_cache_bytes: 64 * 1024 * 1024,
            max_probes: 2,
            frame_copy_bytes: 1024 * 1024 * 1024,
        }
    }
}
