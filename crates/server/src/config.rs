//! Server configuration: paths, intervals and per-connection limits.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::redact::{REDACTED, redact_url};

/// Everything `server::run` needs besides its listener. Its `Debug` leaves out the JWT secret,
/// the webhook secret and passwords in URLs.
#[derive(Clone)]
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
    /// Several nodes on NATS: how long a session's home node holds its lease without renewing
    /// it (renewed every quarter of it), so the most a dead home holds up its sessions' edits.
    /// `None`: no home nodes; every node sequences and conflicts resolve through the store.
    pub home_lease: Option<Duration>,
    /// Versions kept in memory for transformation and `since` catch-up; older bases read the store.
    pub history_keep: usize,
    /// Most appends the writer puts into one transaction.
    pub max_commit_batch: usize,
    pub limits: Limits,
    pub media: MediaConfig,
    /// The HTTP listener's and API's limits.
    pub http: HttpLimits,
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
    /// With `dev`: listen on any address and give dev tokens whatever the `Host` (else only on
    /// loopback addresses, to pages opened at a loopback host).
    pub dev_allow_remote: bool,
    /// The `link_role` of new sessions: `none` (private) unless the deployment chooses another.
    pub default_link_role: montage_protocol::Role,
    /// `join` creates a session that does not exist yet (else only `POST /v1/sessions` does).
    pub create_on_join: bool,
    /// Sessions one user may create per hour (by `join` or `POST /v1/sessions`; per node).
    pub sessions_per_user: u32,
    /// Version history older than this is trimmed (named versions stay); `None` keeps it all.
    pub history_retention: Option<Duration>,
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
            home_lease: None,
            history_keep: 2_000,
            max_commit_batch: 1_024,
            limits: Limits::default(),
            media: MediaConfig::default(),
            http: HttpLimits::default(),
            database_url: None,
            database_pool: crate::store::postgres::DEFAULT_POOL,
            nats_url: None,
            sharing: crate::social::service::SharingConfig::default(),
            blob_url: None,
            dev: false,
            dev_allow_remote: false,
            default_link_role: montage_protocol::Role::Removed,
            create_on_join: true,
            sessions_per_user: 100,
            history_retention: None,
        }
    }
}

impl Config {
    /// Refuses to serve `--dev` on `addr` unless it is a loopback address or
    /// `dev_allow_remote` is set: dev mode signs a token for any name for whoever asks.
    pub fn check_listen_addr(&self, addr: SocketAddr) -> Result<()> {
        if self.dev && !self.dev_allow_remote && !addr.ip().to_canonical().is_loopback() {
            return Err(Error::DevRemote { addr });
        }
        Ok(())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured, so a new field can't be added without deciding how it is printed.
        let Config {
            data_dir,
            jwt_secret: _,
            snapshot_interval,
            snapshot_every_ops,
            idle_unload,
            roster_refresh,
            home_lease,
            history_keep,
            max_commit_batch,
            limits,
            media,
            http,
            database_url,
            database_pool,
            nats_url,
            sharing,
            blob_url,
            dev,
            dev_allow_remote,
            default_link_role,
            create_on_join,
            sessions_per_user,
            history_retention,
        } = self;
        let url = |u: &Option<String>| u.as_deref().map(redact_url);
        f.debug_struct("Config")
            .field("data_dir", data_dir)
            .field("jwt_secret", &REDACTED)
            .field("snapshot_interval", snapshot_interval)
            .field("snapshot_every_ops", snapshot_every_ops)
            .field("idle_unload", idle_unload)
            .field("roster_refresh", roster_refresh)
            .field("home_lease", home_lease)
            .field("history_keep", history_keep)
            .field("max_commit_batch", max_commit_batch)
            .field("limits", limits)
            .field("media", media)
            .field("http", http)
            .field("database_url", &url(database_url))
            .field("database_pool", database_pool)
            .field("nats_url", &url(nats_url))
            .field("sharing", sharing)
            .field("blob_url", &url(blob_url))
            .field("dev", dev)
            .field("dev_allow_remote", dev_allow_remote)
            .field("default_link_role", default_link_role)
            .field("create_on_join", create_on_join)
            .field("sessions_per_user", sessions_per_user)
            .field("history_retention", history_retention)
            .finish()
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
    /// Bytes queued for one connection; past them its reader is dropped like past `send_queue`
    /// (one frame always fits, however large, so any `joined` can go out).
    pub send_queue_bytes: usize,
    /// Largest document, in bytes of JSON; an edit that would pass it gets `too_large`.
    pub max_doc_bytes: usize,
    /// Largest state a `joined` carries inline to a client that can download it instead
    /// (`join.state_ref`); a larger one travels over HTTP in resumable ranges.
    pub inline_state_bytes: usize,
    /// Component pairs one edit's rebase may compare (its components × those of the versions
    /// it is behind); past it the edit gets `conflict` with the head version.
    pub max_transform_work: u64,
    /// How often a connection with no traffic is pinged. Each ping costs ~70 µs of CPU, so this
    /// is what idle connections cost; below a proxy's idle timeout it also keeps them open.
    pub idle_ping: Duration,
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
            send_queue_bytes: 32 << 20,
            max_doc_bytes: 8 << 20,
            inline_state_bytes: 256 * 1024,
            max_transform_work: 16_000_000,
            idle_ping: Duration::from_secs(600),
        }
    }
}

/// Bounds of the HTTP listener and API (DESIGN §9.2).
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Open sockets: past it accept waits (the kernel's backlog holds newcomers). A socket that
    /// becomes a WebSocket leaves this count for `Limits::max_connections`.
    pub max_sockets: usize,
    /// Open sockets from one address (an IPv6 /64): past it new ones from there are closed at
    /// once, so one host can't take every socket.
    pub sockets_per_address: usize,
    /// How long a write may make no progress before its socket is closed (a peer that stopped
    /// reading).
    pub write_timeout: Duration,
    /// A request's headers (and an idle keep-alive socket's next request) must arrive within this.
    pub header_timeout: Duration,
    /// A request body must be read within this, counted from when the handler starts reading it
    /// (an upload waiting for its permit has not started).
    pub body_timeout: Duration,
    /// Requests per second per user (by token subject; by peer address without a token).
    pub requests_per_sec: f64,
    pub requests_burst: f64,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            max_sockets: 10_000,
            sockets_per_address: 1_024,
            write_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(300),
            requests_per_sec: 50.0,
            requests_burst: 200.0,
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
    /// Uploads at once, each holding its permit from before its body is read until it is
    /// stored: bounds upload memory at `max_uploads × intake.max_bytes` (plus decodes).
    pub max_uploads: usize,
    /// Image decodes of uploads at once: permits of their own, so uploads can't starve renders.
    pub max_upload_decodes: usize,
    /// Assets one user may keep (counted from the store's records, so across nodes).
    pub assets_per_user: u64,
    /// Bytes of assets one user may keep.
    pub asset_bytes_per_user: u64,
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
            max_uploads: 4,
            max_upload_decodes: 1,
            assets_per_user: 10_000,
            asset_bytes_per_user: 10 * 1024 * 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_out_secrets_and_passwords() {
        let secret = b"jwt-0123456789abcdef-0123456789abcdef".to_vec();
        let mut c = Config::new("/data", secret.clone());
        c.database_url = Some("postgres://montage:db-pa55word@db:5432/montage".into());
        c.nats_url = Some("nats://bus:nats-pa55word@nats:4222".into());
        c.sharing.connectors.secret = b"hook-0123456789abcdef".to_vec();
        c.sharing.connectors.urls.insert(
            crate::tasks::connectors::Connector::Yapper,
            "https://y.example/in?token=tok-pa55".into(),
        );
        let text = format!("{c:?} {c:#?}");
        for secret in [
            "jwt-0123456789abcdef",
            "db-pa55word",
            "nats-pa55word",
            "hook-0123456789abcdef",
            "tok-pa55",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        // Nor as a byte list (`Vec<u8>`'s own Debug).
        let bytes = format!("{:?}", &secret[..6]);
        assert!(!text.contains(bytes.trim_matches(['[', ']'])), "{text}");
        assert!(
            text.contains("postgres://montage:[redacted]@db:5432/montage"),
            "{text}"
        );
        assert!(text.contains("data_dir: \"/data\""), "{text}");
    }

    #[test]
    fn dev_listens_only_on_loopback_unless_allowed() {
        let mut c = Config::new("/data", Vec::new());
        let remote: SocketAddr = "0.0.0.0:7070".parse().unwrap();
        c.check_listen_addr(remote).unwrap();
        c.dev = true;
        for local in [
            "127.0.0.1:0",
            "127.0.0.2:7070",
            "[::1]:7070",
            "[::ffff:127.0.0.1]:1",
        ] {
            c.check_listen_addr(local.parse().unwrap()).unwrap();
        }
        for remote in [
            "0.0.0.0:7070",
            "[::]:7070",
            "192.168.1.2:7070",
            "[::ffff:10.0.0.1]:1",
        ] {
            let e = c.check_listen_addr(remote.parse().unwrap()).unwrap_err();
            assert!(matches!(e, Error::DevRemote { .. }), "{remote}");
            let msg = e.to_string();
            assert!(
                msg.contains("--dev-allow-remote") && msg.contains("any user"),
                "{msg}"
            );
        }
        c.dev_allow_remote = true;
        c.check_listen_addr(remote).unwrap();
    }
}
