#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

// The system design's components, one folder each.
pub mod bus;
pub mod gateway;
pub mod media;
pub mod presence;
pub mod social;
pub mod store;
pub mod sync;
pub mod tasks;

// What they share.
pub mod access;
pub mod api;
pub mod auth;
pub mod byte_lru;
pub mod clock;
pub mod config;
pub mod error;
pub mod files;
pub mod flags;
pub mod metrics;
pub mod quota;
pub mod redact;

/// The system design's name for the sharing and recognition service (contract path).
pub use social::service as collaboration;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, Limits, MediaConfig};
pub use error::{Error, Result};

use crate::auth::Auth;
use crate::bus::{Bus, LocalHub, NatsBus};
use crate::media::Media;
use crate::media::blobs::{BlobStore, ObjectBlobStore};
use crate::metrics::Metrics;
use crate::store::{PgStore, SqliteStore, Store};
use crate::sync::{
    Sessions, run_committer_with_bus, spawn_bus_dispatcher, spawn_forward_dispatcher,
    spawn_renewals,
};

/// What every handler shares.
pub struct App {
    pub config: Arc<Config>,
    pub auth: Auth,
    pub sessions: Arc<Sessions>,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    /// Cancelled on shutdown: sockets close with 1001.
    pub shutdown: CancellationToken,
    /// Open WebSocket connections, waited for on shutdown.
    pub conns: TaskTracker,
    pub next_conn: AtomicU64,
    /// Connection counts and shared rate budgets per user.
    pub users: gateway::limits::UserLimits,
    /// Asset storage, decoded assets, preview cache and render permits.
    pub media: Arc<Media>,
    /// Sharing, invites, recognition and the Task Manager.
    pub collab: collaboration::MediaCollaborationService,
}

/// Serves on `listener` with the SQLite store (or PostgreSQL and NATS when `config` names them)
/// and asset files in `config.data_dir` until `shutdown` resolves, then stops accepting, closes
/// sockets with 1001, flushes every session and returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    config.check_listen_addr(listener.local_addr().map_err(Error::Serve)?)?;
    files::create_private_dir(&config.data_dir)?;
    files::warn_if_open(&config.data_dir);
    let blobs = match &config.blob_url {
        Some(url) => ObjectBlobStore::from_url(url)?,
        None => ObjectBlobStore::local(config.data_dir.join("assets"))?,
    };
    tracing::info!(blobs = blobs.describe(), "asset store");
    let blobs: Arc<dyn BlobStore> = Arc::new(blobs);
    let Some(url) = config.database_url.clone() else {
        if config.nats_url.is_some() {
            return Err(Error::Bus(
                "--nats-url needs --database-url: nodes must share one store".to_owned(),
            ));
        }
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.data_dir).await?);
        return run_with_store(listener, config, store, blobs, shutdown).await;
    };
    let store = PgStore::connect(&url, config.database_pool)
        .await?
        .with_task_owner(node_identity(&config.data_dir)?);
    // Without NATS a node still sequences correctly against the others (conflicts read the
    // store); it only hears their edits late.
    let bus: Arc<dyn Bus> = match &config.nats_url {
        Some(nats) => Arc::new(NatsBus::connect(nats, &store.cluster_id().await?).await?),
        None => LocalHub::new().node(&clock::random_node_id()),
    };
    let store: Arc<dyn Store> = Arc::new(store);
    tracing::info!(node = bus.node(), "scale-out: PostgreSQL store");
    run_node(listener, config, store, blobs, Some(bus), shutdown).await
}

/// The file in the data dir that names this node across restarts.
const NODE_ID_FILE: &str = "node-id";

/// This node's lasting name in a shared store (its task claims): kept in the data dir, so a
/// restart on the same dir takes back what it was doing. Each node needs a data dir of its own.
fn node_identity(dir: &std::path::Path) -> Result<String> {
    let path = dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(Error::Io { path, source }),
    }
    let id = clock::random_id();
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let mut file = match files::create_private_file(&path) {
        Ok(f) => f,
        // An empty file left by a crash between creating and writing it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(io)?,
        Err(e) => return Err(io(e)),
    };
    std::io::Write::write_all(&mut file, id.as_bytes()).map_err(io)?;
    Ok(id)
}

/// `run` with any store and blob store (tests use the in-memory ones).
pub async fn run_with_store(
    listener: TcpListener,
    config: Config,
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    run_node(listener, config, store, blobs, None, shutdown).await
}

/// `run_with_store` for one node of several: `bus` carries committed edits, roster, role and
/// presence events between the nodes sharing `store`.
pub async fn run_node(
    listener: TcpListener,
    config: Config,
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    bus: Option<Arc<dyn Bus>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let auth = Auth::new(&config.jwt_secret)?;
    config.check_listen_addr(listener.local_addr().map_err(Error::Serve)?)?;
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::default());
    let batch = config.max_commit_batch.max(1);
    let (commit_tx, commit_rx) = mpsc::channel(batch * 4);
    let committer = tokio::spawn(run_committer_with_bus(
        store.clone(),
        commit_rx,
        metrics.clone(),
        batch,
        bus.clone(),
    ));
    let sessions = Sessions::with_bus(
        store.clone(),
        commit_tx,
        config.clone(),
        metrics.clone(),
        bus.clone(),
    );
    if let Some(bus) = &bus {
        spawn_bus_dispatcher(sessions.clone(), &**bus);
        spawn_forward_dispatcher(sessions.clone(), &**bus);
        spawn_renewals(sessions.clone());
        // Every node hears every notification (its users may be connected here).
        bus.watch(social::notifications::BUS_CHANNEL).await;
    }
    let cancel = CancellationToken::new();
    let media = Arc::new(Media::new(blobs, &config.media));
    let public_url = config.sharing.public_url.clone().unwrap_or_else(|| {
        listener
            .local_addr()
            .map_or_else(|_| "http://127.0.0.1".into(), |a| format!("http://{a}"))
    });
    let sender = tasks::connectors::HttpSender::new(config.sharing.connectors.timeout)
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
    let collab = collaboration::MediaCollaborationService::start(
        store.clone(),
        config.sharing.clone(),
        public_url,
        Arc::new(sender),
        Some(Arc::new(sessions.clone())),
    )?;
    sessions.events.deliver_through(collab.task_manager());
    let app = Arc::new(App {
        config,
        auth,
        sessions: sessions.clone(),
        store: store.clone(),
        metrics,
        shutdown: cancel.clone(),
        conns: TaskTracker::new(),
        next_conn: AtomicU64::new(1),
        users: gateway::limits::UserLimits::default(),
        media,
        collab: collab.clone(),
    });
    if let Some(every) = app.config.sharing.newsletter_every
        && collab
            .tasks()
            .has_connector(tasks::connectors::Connector::Newsletter)
    {
        social::showcase::spawn(collab.clone(), every, cancel.clone());
    }
    if let Some(keep) = app.config.history_retention {
        let caches = app.clone();
        sync::retention::spawn(store.clone(), keep, cancel.clone(), move || {
            caches.sessions.forget_past_states();
            caches.media.forget_past_previews();
        });
    }
    let trigger = cancel.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let limits = app.config.http.clone();
    let served = gateway::listener::serve(
        listener,
        gateway::router(app.clone()),
        &limits,
        cancel.clone(),
    )
    .await;
    // The listener is closed. Sockets watch `cancel` and close with 1001; then every session
    // flushes its pending writes and snapshots before the store closes.
    cancel.cancel();
    app.conns.close();
    if tokio::time::timeout(Duration::from_secs(10), app.conns.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
    sessions.shutdown().await;
    collab.shutdown().await;
    drop(collab);
    drop(app);
    drop(sessions);
    let _ = committer.await;
    store.close().await?;
    tracing::info!("shut down cleanly");
    served.map_err(Error::Serve)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_node_id_file_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let id = super::node_identity(dir.path()).unwrap();
        let path = dir.path().join(super::NODE_ID_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(super::node_identity(dir.path()).unwrap(), id);
        // An empty file (a crash between creating and writing it) gets an id.
        std::fs::write(&path, "").unwrap();
        let again = super::node_identity(dir.path()).unwrap();
        assert!(!again.is_empty() && again != id);
        assert_eq!(super::node_identity(dir.path()).unwrap(), again);
    }
}
