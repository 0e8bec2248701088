//! The async half: one connection task per `Client` that dials, joins, pumps messages through
//! each session's [`SessionCore`] and reconnects with backoff. Handles lock a session's core
//! only for the synchronous work (never across an `.await`).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use montage_ot::{Op, Value};
use montage_protocol::{
    ClientMessage, ErrorCode, NewComment, Participant, Role, ServerMessage, Tier,
};
use serde_json::Value as Json;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::core::{Refusal, Saved, SessionCore};
use crate::http::{self, Api, http_base, ops_path};
use crate::sealed::{Keyring, SessionKey};
use crate::token::{Fixed, TokenSource, Tokens, now_secs, retry_delay};
use crate::{ConnectionState, Error, Event, Result, Tls};

/// Commands queued to the connection task; bounded, and a full queue only delays a flush
/// that the task does after every message anyway.
const COMMAND_QUEUE: usize = 256;
/// Longest the task waits on one `rate_limited` before resending.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);
/// A connection that lived this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(2);

/// How to connect. Built with [`Options::new`] (a fixed token) or
/// [`Options::with_token_source`] (tokens fetched when needed) and the setters.
#[derive(Clone)]
pub struct Options {
    urls: Vec<String>,
    token: Arc<dyn TokenSource>,
    client_id: Option<String>,
    offline_file: Option<PathBuf>,
    backoff_min: Duration,
    backoff_max: Duration,
    connect_timeout: Duration,
    compose: bool,
    event_capacity: usize,
    tls: Tls,
    binary: bool,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("urls", &self.urls)
            .field("client_id", &self.client_id)
            .field("offline_file", &self.offline_file)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// One server URL (`ws://host:port/v1/ws`) and a fixed token (sent as `Authorization:
    /// Bearer`). When it nears its expiry the server says so and nothing can replace it: use
    /// [`with_token_source`](Self::with_token_source) for sessions that outlive a token.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Options {
        Options::with_token_source(url, Fixed(token.into()))
    }
    /// One server URL and where tokens come from: asked before a connection (unless the token
    /// in hand has more than a minute left) and when the server warns that the token in use
    /// expires (`token_expiring`, about a minute ahead); the new token is sent on the open
    /// socket (`auth`), so nothing reconnects. See [`TokenSource`].
    pub fn with_token_source(url: impl Into<String>, source: impl TokenSource) -> Options {
        Options {
            urls: vec![url.into()],
            token: Arc::new(source),
            client_id: None,
            offline_file: None,
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            compose: true,
            event_capacity: 1024,
            tls: Tls::default(),
            binary: false,
        }
    }

    /// Speak `montage.v1.proto`: every frame a binary protobuf message (DESIGN §9.5), smaller
    /// than its JSON form and cheaper to read; the server must offer the subprotocol (a server
    /// that doesn't is a connection error). Default: JSON.
    pub fn binary(mut self, binary: bool) -> Options {
        self.binary = binary;
        self
    }

    /// Which servers to trust over TLS (`wss://`, and `https://` for the HTTP calls): the
    /// system's roots by default; add a private CA with [`Tls::add_ca_file`].
    pub fn tls(mut self, tls: Tls) -> Options {
        self.tls = tls;
        self
    }

    /// Replaces where tokens come from.
    pub fn token_source(mut self, source: impl TokenSource) -> Options {
        self.token = Arc::new(source);
        self
    }
    /// Several servers: on a failed connect the next one is tried, round robin.
    pub fn urls(mut self, urls: Vec<String>) -> Options {
        self.urls = urls;
        self
    }
    /// The `client` id sent with each join; default: random per SDK instance. Sessions
    /// restored from the offline file keep the id they were saved with, so their resent
    /// `(client, seq)` pairs stay idempotent across an app restart.
    pub fn client_id(mut self, id: impl Into<String>) -> Options {
        self.client_id = Some(id.into());
        self
    }
    /// Keep every session's replica and unacknowledged edits in this file (one JSON document,
    /// replaced atomically by write-then-rename after each change), and restore from it at
    /// start.
    pub fn offline_file(mut self, path: impl Into<PathBuf>) -> Options {
        self.offline_file = Some(path.into());
        self
    }
    /// Reconnect delays: the n-th retry waits `min · 2ⁿ` capped at `max`, times a random factor
    /// in 0.5..1 (so a crowd of clients does not reconnect in lockstep). Defaults 200 ms and
    /// 30 s.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Options {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }
    pub fn connect_timeout(mut self, t: Duration) -> Options {
        self.connect_timeout = t;
        self
    }
    /// Compose edits typed while one is in flight into one (default). Off: each edit is sent
    /// on its own, in order.
    pub fn compose_pending(mut self, compose: bool) -> Options {
        self.compose = compose;
        self
    }
    /// Events buffered per session before a slow reader gets [`Event::Lagged`].
    pub fn event_capacity(mut self, n: usize) -> Options {
        self.event_capacity = n.max(1);
        self
    }
}

enum Cmd {
    Join(String),
    /// A message about one session: its errors go to that session's events only.
    ToSession(ClientMessage),
    Flush,
    Send(ClientMessage),
    Leave(String),
    Close,
}

struct SessionShared {
    core: Mutex<SessionCore>,
    events: broadcast::Sender<Event>,
    /// Bumped after every change, for waiters (`join`, `sync`).
    tick: watch::Sender<u64>,
    /// Step-by-step mode (see [`SessionHandle::hold`]).
    hold_in: AtomicBool,
    hold_out: AtomicBool,
    held: Mutex<VecDeque<ServerMessage>>,
    release: AtomicU64,
    /// The first bytes of a large state whose download was cut, by its SHA-256: a download of
    /// the same state (the same version joined again) resumes from them.
    partial: Mutex<Option<(String, Vec<u8>)>>,
    /// Pieces of state downloaded: a join waits on while this moves.
    loaded: AtomicU64,
}

impl SessionShared {
    fn core(&self) -> MutexGuard<'_, SessionCore> {
        // A panic while holding the lock leaves a consistent core (every method finishes its
        // mutation before anything can fail), so poisoning is ignored.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn bump(&self) {
        self.tick.send_modify(|t| *t += 1);
    }
    fn held(&self) -> MutexGuard<'_, VecDeque<ServerMessage>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn emit(&self, e: Event) {
        // No receiver is fine: events are optional, the state is always readable.
        let _ = self.events.send(e);
    }
}

struct Shared {
    opts: Options,
    client_id: String,
    sessions: Mutex<HashMap<String, Arc<SessionShared>>>,
    state: watch::Sender<ConnectionState>,
    /// The tier the server last announced for this connection.
    tier: watch::Sender<Option<Tier>>,
    /// The app's measured downloads, smoothed, and the tier last hinted from them.
    downlink: Mutex<Downlink>,
    file_lock: Mutex<()>,
    file_counter: AtomicU64,
    /// For the ops endpoint (a rejoin that missed too much) and the [`Api`]: one pool per SDK
    /// instance.
    http: reqwest::Client,
    /// The token source and the token in hand.
    tokens: Arc<Tokens>,
    /// The connection's own events (link state, token refresh, server closes, errors that
    /// name no session).
    events: broadcast::Sender<Event>,
    /// The index in `opts.urls` of the server dialled last.
    url_i: AtomicU64,
    /// Why the server refused every token, once that is final.
    refused: Mutex<Option<String>>,
    /// For `wss://` (the HTTP client has the same).
    tls: Arc<rustls::ClientConfig>,
}

impl Shared {
    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Arc<SessionShared>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn all(&self) -> Vec<Arc<SessionShared>> {
        self.sessions().values().cloned().collect()
    }
    fn get(&self, s: &str) -> Option<Arc<SessionShared>> {
        self.sessions().get(s).cloned()
    }
    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }
    /// The server URL in use (or tried last).
    fn url(&self) -> &str {
        let i = self.url_i.load(Ordering::Relaxed) as usize;
        &self.opts.urls[i % self.opts.urls.len()]
    }
    /// A session the server will not let this client reach again: dropped from the client
    /// (and the offline file), so it is not rejoined.
    fn let_go(&self, session: &str) {
        self.sessions().remove(session);
        if let Err(e) = self.persist() {
            tracing::warn!(error = %e, "writing the offline file");
        }
    }
    fn add(&self, core: SessionCore) -> Arc<SessionShared> {
        let name = core.session().to_owned();
        let s = Arc::new(SessionShared {
            core: Mutex::new(core),
            events: broadcast::channel(self.opts.event_capacity).0,
            tick: watch::channel(0).0,
            hold_in: AtomicBool::new(false),
            hold_out: AtomicBool::new(false),
            held: Mutex::new(VecDeque::new()),
            release: AtomicU64::new(0),
            partial: Mutex::new(None),
            loaded: AtomicU64::new(0),
        });
        self.sessions().insert(name, s.clone());
        s
    }

    /// Writes every session to the offline file: temp file, fsync, rename.
    fn persist(&self) -> Result<()> {
        let Some(path) = &self.opts.offline_file else {
            return Ok(());
        };
        let saved: Vec<Saved> = self.all().iter().map(|s| s.core().save()).collect();
        let doc = OfflineFile {
            format: OFFLINE_FORMAT,
            sessions: saved,
        };
        let err = |e: &dyn std::fmt::Display| Error::OfflineFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let text = serde_json::to_vec(&doc).map_err(|e| err(&e))?;
        let _guard = self.file_lock.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.file_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| err(&e))
    }
}

const OFFLINE_FORMAT: u32 = 1;

#[derive(serde::Serialize, serde::Deserialize)]
struct OfflineFile {
    format: u32,
    sessions: Vec<Saved>,
}

fn load_offline(path: &std::path::Path) -> Result<Vec<Saved>> {
    let err = |e: &dyn std::fmt::Display| Error::OfflineFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(&e)),
    };
    let f: OfflineFile = serde_json::from_slice(&bytes).map_err(|e| err(&e))?;
    if f.format != OFFLINE_FORMAT {
        return Err(err(&format!("unknown format {}", f.format)));
    }
    Ok(f.sessions)
}

/// A connection to a Montage server (or a list of them), shared by every joined session.
/// Cloning is cheap; the connection task stops when the last clone and handle are dropped, or
/// on [`Client::close`].
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Cmd>,
}

impl Client {
    /// Connects to one server and waits until the connection is up.
    pub async fn connect(url: impl Into<String>, token: impl Into<String>) -> Result<Client> {
        let c = Client::start(Options::new(url, token))?;
        c.connected(Duration::from_secs(10)).await?;
        Ok(c)
    }

    /// Starts the connection task and returns at once, online or not (offline-first apps).
    /// Sessions in the offline file are restored and can be edited before any connection.
    pub fn start(opts: Options) -> Result<Client> {
        if opts.urls.is_empty() {
            return Err(Error::NoUrl);
        }
        let client_id = match &opts.client_id {
            Some(id) => id.clone(),
            None => format!("sdk-{:016x}", random_u64()),
        };
        let restored = match &opts.offline_file {
            Some(p) => load_offline(p)?,
            None => Vec::new(),
        };
        let tokens = Arc::new(Tokens::new(opts.token.clone()));
        let events = broadcast::channel(opts.event_capacity).0;
        let tls = opts.tls.config()?;
        let shared = Arc::new(Shared {
            opts,
            client_id,
            sessions: Mutex::new(HashMap::new()),
            state: watch::channel(ConnectionState::Connecting).0,
            tier: watch::channel(None).0,
            downlink: Mutex::new(Downlink::default()),
            file_lock: Mutex::new(()),
            file_counter: AtomicU64::new(0),
            http: http::client(&tls)?,
            tls,
            tokens,
            events,
            url_i: AtomicU64::new(0),
            refused: Mutex::new(None),
        });
        for saved in restored {
            let mut core = SessionCore::restore(saved);
            core.set_compose(shared.opts.compose);
            shared.add(core);
        }
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        tokio::spawn(run(shared.clone(), rx));
        Ok(Client { shared, tx })
    }

    /// The id this SDK instance joins with.
    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    /// The user this client is signed in as (the `sub` of its first token), once it has one.
    pub fn user(&self) -> Option<String> {
        self.shared.tokens.user()
    }

    /// The connection's own events from now on: [`Event::Connection`],
    /// [`Event::TokenRefreshed`], [`Event::TokenFailed`], [`Event::ServerClosed`], and
    /// [`Event::Error`]s that name no session. (Each session's stream has what happens in it.)
    pub fn events(&self) -> Events {
        Events(self.shared.events.subscribe())
    }

    /// The HTTP API of the server in use (create, list, change and delete sessions) with this
    /// client's tokens.
    pub fn api(&self) -> Result<Api> {
        Api::from_parts(
            self.shared.http.clone(),
            self.shared.url(),
            self.shared.tokens.clone(),
            self.shared.opts.connect_timeout,
        )
    }

    pub fn connection_state(&self) -> ConnectionState {
        *self.shared.state.borrow()
    }

    /// The bandwidth tier the server last announced (`None` before any): presence arrives at
    /// most at its rate.
    pub fn tier(&self) -> Option<Tier> {
        *self.shared.tier.borrow()
    }

    /// Watches the announced tier (it changes as the server measures the connection).
    pub fn watch_tier(&self) -> watch::Receiver<Option<Tier>> {
        self.shared.tier.subscribe()
    }

    /// Tells the server this client's own downlink estimate; it answers with the tier (the
    /// lower of this hint and what it measures).
    pub async fn set_quality(&self, downlink_mbps: f64) -> Result<()> {
        self.tx
            .send(Cmd::Send(ClientMessage::Quality { downlink_mbps }))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Reports a download the app timed (a preview or frame body: `bytes` in `elapsed`, from
    /// the request to the last byte). The SDK keeps a smoothed downlink estimate and, when it
    /// crosses into another tier, tells the server (`quality`), so the server's tier follows
    /// what the pictures really take even though the socket carries only small frames; a new
    /// socket hears the estimate again. Bodies under 4 KiB say nothing and are ignored.
    /// Returns the estimate in Mbit/s (`None` before any).
    pub fn report_download(&self, bytes: u64, elapsed: Duration) -> Option<f64> {
        let mut d = self
            .shared
            .downlink
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(hint) = d.record(bytes, elapsed)
            && self
                .tx
                .try_send(Cmd::Send(ClientMessage::Quality {
                    downlink_mbps: hint,
                }))
                .is_ok()
        {
            d.hinted = Some(Tier::from_mbps(hint));
        }
        d.mbps
    }

    /// The downlink estimate from [`report_download`](Self::report_download), in Mbit/s.
    pub fn downlink_mbps(&self) -> Option<f64> {
        self.shared
            .downlink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .mbps
    }

    /// Waits until connected, at most `timeout`. A token the server refuses for good is
    /// [`Error::Server`] with code `unauthorized` and the server's reason.
    pub async fn connected(&self, timeout: Duration) -> Result<()> {
        let mut rx = self.shared.state.subscribe();
        let wait = rx.wait_for(|s| {
            matches!(
                s,
                ConnectionState::Connected
                    | ConnectionState::Closed
                    | ConnectionState::Unauthorized
            )
        });
        let end = tokio::time::timeout(timeout, wait)
            .await
            .map(|r| r.map(|s| *s));
        match end {
            Ok(Ok(ConnectionState::Connected)) => Ok(()),
            Ok(Ok(ConnectionState::Unauthorized)) => Err(self.refusal()),
            Ok(_) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout("connecting")),
        }
    }

    /// Why the server refused this client's token, as an error.
    fn refusal(&self) -> Error {
        let reason = self
            .shared
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Error::Server {
            code: ErrorCode::Unauthorized,
            message: reason.unwrap_or_else(|| "the server refused the token".into()),
        }
    }

    /// Joins `session` (created on the server if missing, where the server allows it) and
    /// waits until the replica is there: the server's answer, or at once for a session
    /// restored from the offline file. A refusal is [`Error::Server`] with its code:
    /// `forbidden` (no access: ask its owner to share it) or `not_found` (no such session, or
    /// it was deleted).
    pub async fn join(&self, session: &str) -> Result<SessionHandle> {
        self.join_timeout(session, Duration::from_secs(30)).await
    }

    pub async fn join_timeout(&self, session: &str, timeout: Duration) -> Result<SessionHandle> {
        self.join_with(session, None, timeout).await
    }

    /// Joins an end-to-end encrypted session (DESIGN §9.4; created encrypted if missing) with
    /// its keys: edits, snapshots and comments are sealed here and opened here, and the server
    /// sees none of them. A wrong key fails with [`Error::Decrypt`]. The keys never leave this
    /// process (an offline file keeps none: pass them again after a restart).
    pub async fn join_encrypted(&self, session: &str, keys: Keyring) -> Result<SessionHandle> {
        self.join_with(session, Some(keys), Duration::from_secs(30))
            .await
    }

    async fn join_with(
        &self,
        session: &str,
        keys: Option<Keyring>,
        timeout: Duration,
    ) -> Result<SessionHandle> {
        if self.connection_state() == ConnectionState::Unauthorized {
            return Err(self.refusal());
        }
        let s = match self.shared.get(session) {
            Some(s) => s,
            None => {
                let mut core = SessionCore::new(session, self.shared.client_id.clone());
                core.set_compose(self.shared.opts.compose);
                self.shared.add(core)
            }
        };
        if let Some(keys) = keys {
            s.core().set_keys(keys);
        }
        self.tx
            .send(Cmd::Join(session.to_owned()))
            .await
            .map_err(|_| Error::Closed)?;
        let h = SessionHandle {
            client: self.clone(),
            s,
        };
        // A large state on a slow link may take longer than `timeout`: the wait goes on while
        // its download makes progress.
        let mut loaded = h.s.loaded.load(Ordering::Relaxed);
        loop {
            match h
                .wait(timeout, "joining", |c| c.is_synced() || c.gone().is_some())
                .await
            {
                Err(Error::Timeout(_)) if h.s.loaded.load(Ordering::Relaxed) != loaded => {
                    loaded = h.s.loaded.load(Ordering::Relaxed);
                }
                r => break r?,
            }
        }
        if let Some(e) = h.s.core().undecryptable() {
            return Err(Error::Decrypt(e.clone()));
        }
        if let Some((code, message)) = h.s.core().gone() {
            return Err(Error::Server {
                code: *code,
                message: message.clone(),
            });
        }
        Ok(h)
    }

    /// Closes the connection; handles keep their last state but edits no longer reach the
    /// server (they stay in the offline file, if one is set).
    pub async fn close(&self) {
        let _ = self.tx.send(Cmd::Close).await;
        let mut rx = self.shared.state.subscribe();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            rx.wait_for(|s| *s == ConnectionState::Closed),
        )
        .await;
    }
}

/// One joined session: the local replica and the way to edit it.
#[derive(Clone)]
pub struct SessionHandle {
    client: Client,
    s: Arc<SessionShared>,
}

impl SessionHandle {
    pub fn session(&self) -> String {
        self.s.core().session().to_owned()
    }
    /// The local replica: the server's state with my unacknowledged edits on top.
    pub fn state(&self) -> Value {
        self.s.core().doc().clone()
    }
    /// The replica read into the app's own type (all of it, or the parts the type names):
    /// `let doc: MyProject = film.state_as()?;`.
    pub fn state_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let json = self.with_state(Value::to_json);
        serde_json::from_value(json).map_err(|e| Error::Decode(e.to_string()))
    }
    /// Reads the replica without cloning it.
    pub fn with_state<R>(&self, f: impl FnOnce(&Value) -> R) -> R {
        f(self.s.core().doc())
    }
    /// The last server version the replica includes.
    pub fn version(&self) -> u64 {
        self.s.core().version()
    }
    /// My edits not yet acknowledged (in flight plus pending).
    pub fn pending(&self) -> usize {
        self.s.core().unacked()
    }
    pub fn role(&self) -> Option<Role> {
        self.s.core().role()
    }
    /// Everyone known in the session: online state, role, name, colour and latest presence.
    pub fn participants(&self) -> Vec<Participant> {
        self.s.core().participants()
    }
    /// A user's latest presence `data` (as adjusted by the server after edits).
    pub fn presence_of(&self, user: &str) -> Option<Json> {
        self.s
            .core()
            .participants()
            .into_iter()
            .find(|p| p.user == user)
            .and_then(|p| p.presence)
    }
    pub fn is_live(&self) -> bool {
        self.s.core().is_live()
    }
    /// The session's link role: what a signed-in user without a grant gets (`none`: private).
    pub fn link_role(&self) -> Option<Role> {
        self.s.core().link_role()
    }
    pub fn title(&self) -> Option<String> {
        self.s.core().title().map(str::to_owned)
    }
    /// Why the session can no longer be reached (refused, access lost, deleted), if so: the
    /// client has let it go, and edits are refused with this error.
    pub fn gone(&self) -> Option<Error> {
        self.s.core().gone().map(|(code, message)| Error::Server {
            code: *code,
            message: message.clone(),
        })
    }

    /// Applies `op` to the replica at once and queues it for the server. A locally invalid
    /// edit is refused with [`Error::InvalidEdit`] and changes nothing.
    pub fn edit(&self, op: Op) -> Result<()> {
        self.local(|c| c.edit(op).map(|()| true)).map(|_| ())
    }

    /// Builds an edit from the replica and applies it under one lock, so no remote edit can
    /// slip in between reading the state and editing it. `None` edits nothing.
    pub fn edit_with(&self, f: impl FnOnce(&Value) -> Option<Op>) -> Result<bool> {
        self.local(|c| match f(c.doc()) {
            Some(op) => c.edit(op).map(|()| true),
            None => Ok(false),
        })
    }

    /// Turns the replica into `old` — a past state, e.g. [`Api::session_at`]'s — with one edit of
    /// mine, undoable with [`undo`](Self::undo): the whole document, or with `element` only that
    /// layer, track or clip (docs/PROTOCOL.md "Version history"). Only what differs is touched,
    /// so others' edits elsewhere stay. False: nothing differed, or `element` is in neither.
    ///
    /// [`Api::session_at`]: crate::Api::session_at
    pub fn restore_to(&self, old: &Value, element: Option<&str>) -> Result<bool> {
        self.edit_with(|doc| {
            let op = match element {
                None => montage_ot::diff(doc, old),
                Some(id) => montage_ot::restore_element(doc, old, id)?,
            };
            (!op.is_empty()).then_some(op)
        })
    }

    /// Parses docs/PROTOCOL.md "The document" components (a JSON array) and edits with them.
    pub fn edit_json(&self, components: &Json) -> Result<()> {
        self.edit(Op::from_json(components)?)
    }

    /// Undoes my most recent edit not yet undone (others' edits stay). False: nothing to undo.
    pub fn undo(&self) -> Result<bool> {
        self.local(SessionCore::undo)
    }

    /// Re-applies what the last undo reverted. False: nothing to redo.
    pub fn redo(&self) -> Result<bool> {
        self.local(SessionCore::redo)
    }

    fn local(&self, f: impl FnOnce(&mut SessionCore) -> Result<bool>) -> Result<bool> {
        let changed = f(&mut self.s.core())?;
        if changed {
            self.s.bump();
            self.client.shared.persist()?;
            // A full queue means a flush is already coming.
            let _ = self.client.tx.try_send(Cmd::Flush);
        }
        Ok(changed)
    }

    /// Sends my presence — `cursor`, `selection`, `playhead`, `viewport`, `caret`, or anything
    /// else small — to the other participants (they see it as [`Event::Presence`]).
    pub async fn presence(&self, data: Json) -> Result<()> {
        self.send(ClientMessage::Presence {
            session: self.session(),
            data,
        })
        .await
    }

    /// Moves my cursor (canvas pixels), keeping nothing else: a shorthand for `presence`.
    pub async fn set_cursor(&self, x: f64, y: f64) -> Result<()> {
        self.presence(serde_json::json!({"cursor": {"x": x, "y": y}}))
            .await
    }

    /// Changes a user's role (owners only; a refusal comes back as [`Event::Error`]).
    /// [`Role::Removed`] (`"none"`) removes the user from the session and disconnects it.
    pub async fn set_role(&self, user: &str, role: Role) -> Result<()> {
        self.send(ClientMessage::SetRole {
            session: self.session(),
            user: user.to_owned(),
            role,
        })
        .await
    }

    /// Opens or closes link access (owners only): what a signed-in user without a grant gets
    /// here, `Role::Removed` (`"none"`) for a private session. Everyone in the session hears
    /// [`Event::LinkRoleChanged`]; users left without access are taken out at once (they hear
    /// [`Event::AccessLost`]). A refusal comes back as [`Event::Error`].
    pub async fn set_link_role(&self, role: Role) -> Result<()> {
        self.send(ClientMessage::SetLinkRole {
            session: self.session(),
            role,
        })
        .await
    }

    /// Posts a comment (or, with `parent_id`, a reply); it comes back to every participant as
    /// [`Event::CommentAdded`] once stored. Needs commenter rights. In an encrypted session its
    /// content and annotations are sealed into one opaque `content` (and opened again in the
    /// events).
    pub async fn comment(&self, mut comment: NewComment) -> Result<()> {
        if let Some(sealed) = self.seal_comment(&comment.content, &comment.annotations)? {
            comment.content = sealed;
            comment.annotations.clear();
        }
        self.send(ClientMessage::Comment {
            session: self.session(),
            comment,
        })
        .await
    }

    /// In an encrypted session, a comment's content and annotations sealed under the current
    /// key epoch; `None` in a plain one.
    fn seal_comment(
        &self,
        content: &str,
        annotations: &[montage_protocol::Annotation],
    ) -> Result<Option<String>> {
        let c = self.s.core();
        let (Some(keys), Some(epoch)) = (c.keys(), c.key_epoch()) else {
            return Ok(None);
        };
        let plain = serde_json::to_vec(&crate::core::SealedComment {
            content: content.to_owned(),
            annotations: annotations.to_vec(),
        })
        .map_err(|e| Error::Decode(e.to_string()))?;
        Ok(Some(crate::sealed::seal_comment(
            keys,
            epoch,
            c.session(),
            &plain,
        )?))
    }

    /// In an encrypted session, `file` sealed for upload under the current key epoch
    /// ([`sealed::seal_asset`](crate::sealed::seal_asset)): hand it to
    /// [`Api::upload_asset`](crate::Api::upload_asset) with this session's id. `None` in a
    /// plain session (upload the file as it is).
    pub fn seal_asset(&self, file: &[u8]) -> Result<Option<Vec<u8>>> {
        let c = self.s.core();
        let (Some(keys), Some(epoch)) = (c.keys(), c.key_epoch()) else {
            return Ok(None);
        };
        Ok(Some(crate::sealed::seal_asset(
            keys,
            epoch,
            c.session(),
            file,
        )?))
    }

    /// Opens an asset of this encrypted session as [`Api::asset`](crate::Api::asset) answered
    /// it: the file that was sealed. [`Error::Decrypt`] for a wrong key or changed bytes, and in
    /// a plain session.
    pub fn open_asset(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        let c = self.s.core();
        let keys = c.keys().ok_or_else(|| {
            Error::Decrypt(crate::sealed::SealError::Malformed(format!(
                "session {} is not encrypted: its assets are not sealed",
                c.session()
            )))
        })?;
        Ok(crate::sealed::open_asset(keys, c.session(), sealed)?)
    }

    /// Adds the key of an encrypted session's new key epoch ([`Event::KeyRotated`]): edits
    /// waiting for it go out.
    pub fn add_key(&self, epoch: u64, key: SessionKey) {
        self.s.core().add_key(epoch, key);
        self.s.bump();
        let _ = self.client.tx.try_send(Cmd::Flush);
    }

    /// The key epoch an encrypted session's server takes now (`None`: a plain session).
    pub fn key_epoch(&self) -> Option<u64> {
        self.s.core().key_epoch()
    }

    /// Replies to comment `parent` with plain text.
    pub async fn reply(&self, parent: &str, content: &str) -> Result<()> {
        self.comment(NewComment {
            content: content.to_owned(),
            parent_id: Some(parent.to_owned()),
            ..NewComment::default()
        })
        .await
    }

    /// Changes my comment's text ([`Event::CommentUpdated`] with `edited`).
    pub async fn edit_comment(&self, id: &str, content: &str) -> Result<()> {
        let content = self
            .seal_comment(content, &[])?
            .unwrap_or_else(|| content.to_owned());
        self.send(ClientMessage::CommentEdit {
            session: self.session(),
            id: id.to_owned(),
            content,
        })
        .await
    }

    /// Deletes a comment (mine, or any as an owner); replies stay.
    pub async fn delete_comment(&self, id: &str) -> Result<()> {
        self.send(ClientMessage::CommentDelete {
            session: self.session(),
            id: id.to_owned(),
        })
        .await
    }

    /// Resolves (`true`) or reopens (`false`) a comment.
    pub async fn resolve_comment(&self, id: &str, resolved: bool) -> Result<()> {
        self.send(ClientMessage::CommentResolve {
            session: self.session(),
            id: id.to_owned(),
            resolved,
        })
        .await
    }

    /// Turns my `emoji` reaction on a comment on or off.
    pub async fn react(&self, id: &str, emoji: &str, on: bool) -> Result<()> {
        self.send(ClientMessage::CommentReact {
            session: self.session(),
            id: id.to_owned(),
            emoji: emoji.to_owned(),
            on,
        })
        .await
    }

    /// Suggests `ops`, made on the server version this replica has ([`version`](Self::version)),
    /// instead of editing (commenters). Comes back as [`Event::SuggestionAdded`].
    pub async fn suggest(&self, ops: Op, note: Option<&str>) -> Result<()> {
        self.send(ClientMessage::Suggest {
            session: self.session(),
            base: self.version(),
            ops,
            note: note.map(str::to_owned),
        })
        .await
    }

    /// Accepts a pending suggestion (editors): it is applied as an edit credited to its author.
    pub async fn accept_suggestion(&self, id: &str) -> Result<()> {
        self.send(ClientMessage::SuggestionAccept {
            session: self.session(),
            id: id.to_owned(),
        })
        .await
    }

    /// Rejects a pending suggestion (editors).
    pub async fn reject_suggestion(&self, id: &str) -> Result<()> {
        self.send(ClientMessage::SuggestionReject {
            session: self.session(),
            id: id.to_owned(),
        })
        .await
    }

    /// Leaves the session; the handle stops receiving.
    pub async fn leave(&self) -> Result<()> {
        self.client
            .tx
            .send(Cmd::Leave(self.session()))
            .await
            .map_err(|_| Error::Closed)
    }

    async fn send(&self, m: ClientMessage) -> Result<()> {
        self.client
            .tx
            .send(Cmd::ToSession(m))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Step-by-step mode, for tests and tools that must control the interleaving exactly.
    /// While held, incoming edits and acks wait until [`deliver_held`](Self::deliver_held)
    /// and an edit in flight is sent only after [`release_one`](Self::release_one). Joins,
    /// presence and errors still flow; reconnection is not meant to happen while held.
    pub fn hold(&self, on: bool) {
        self.s.hold_in.store(on, Ordering::SeqCst);
        self.s.hold_out.store(on, Ordering::SeqCst);
        if !on {
            while self.deliver_held().is_some() {}
            let _ = self.client.tx.try_send(Cmd::Flush);
        }
    }

    /// What the next held message is: `Some(None)` an ack, `Some(Some(v))` someone's edit
    /// that made version `v`, `None` nothing held.
    pub fn held_front(&self) -> Option<Option<u64>> {
        match self.s.held().front()? {
            ServerMessage::Op { version, .. } => Some(Some(*version)),
            _ => Some(None),
        }
    }

    pub fn held_len(&self) -> usize {
        self.s.held().len()
    }

    /// Delivers the next held message to the replica; returns its events.
    pub fn deliver_held(&self) -> Option<Vec<Event>> {
        let msg = self.s.held().pop_front()?;
        let (ev, join) = {
            let mut c = self.s.core();
            let ev = c.receive(msg);
            (ev, c.wants_join())
        };
        for e in &ev {
            self.s.emit(e.clone());
        }
        self.s.bump();
        // A gap it showed (or a reset) joins again, as a frame that is not held would.
        let cmd = if join {
            Cmd::Join(self.session())
        } else {
            Cmd::Flush
        };
        let _ = self.client.tx.try_send(cmd);
        Some(ev)
    }

    /// Whether an edit is in flight and not sent yet (held back).
    pub fn has_unsent(&self) -> bool {
        self.s.core().has_unsent()
    }

    /// Lets one held-back send go out.
    pub fn release_one(&self) {
        self.s.release.fetch_add(1, Ordering::SeqCst);
        let _ = self.client.tx.try_send(Cmd::Flush);
    }

    /// Waits until at least `n` messages are held.
    pub async fn wait_held(&self, n: usize, timeout: Duration) -> Result<()> {
        let s = self.s.clone();
        self.wait(timeout, "waiting for held messages", move |_| {
            s.held().len() >= n
        })
        .await
    }

    /// Events of this session from now on.
    pub fn events(&self) -> Events {
        Events(self.s.events.subscribe())
    }

    /// Waits until every local edit is acknowledged and the session is live.
    pub async fn sync(&self, timeout: Duration) -> Result<()> {
        self.wait(timeout, "syncing", |c| c.is_live() && c.unacked() == 0)
            .await
    }

    /// Waits until the replica includes server version `v`.
    pub async fn wait_version(&self, v: u64, timeout: Duration) -> Result<()> {
        self.wait(timeout, "waiting for a version", |c| c.version() >= v)
            .await
    }

    async fn wait(
        &self,
        timeout: Duration,
        what: &'static str,
        mut ok: impl FnMut(&SessionCore) -> bool,
    ) -> Result<()> {
        let mut rx = self.s.tick.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if ok(&self.s.core()) {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Error::Closed),
                Err(_) => return Err(Error::Timeout(what)),
            }
        }
    }
}

/// A session's event stream.
pub struct Events(broadcast::Receiver<Event>);

impl Events {
    /// The next event; `None` once the client is gone.
    pub async fn next(&mut self) -> Option<Event> {
        match self.0.recv().await {
            Ok(e) => Some(e),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Event::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        match self.0.try_recv() {
            Ok(e) => Some(e),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Event::Lagged(n)),
            Err(_) => None,
        }
    }
}

// ---- the connection task ----

enum Ended {
    Dropped,
    Closed,
    /// The server refused the token (close 4401 or HTTP 401), with its reason.
    Refused(String),
}

async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Cmd>) {
    let urls = shared.opts.urls.clone();
    let mut url_i = 0usize;
    let mut attempt = 0u32;
    // Token refusals since the server last took one: the second in a row is final.
    let mut refusals = 0u32;
    loop {
        set_state(&shared, ConnectionState::Connecting);
        let started = Instant::now();
        shared.url_i.store(url_i as u64, Ordering::Relaxed);
        let ended = match dial(&shared, &urls[url_i]).await {
            Ok(ws) => {
                let e = serve(&shared, &urls[url_i], ws, &mut rx, &mut refusals).await;
                if started.elapsed() >= HEALTHY_AFTER {
                    attempt = 0;
                }
                e
            }
            Err(Error::Token(message)) => {
                // Not the server's fault: the same URL is tried again after the backoff.
                tracing::debug!(%message, "no token to connect with");
                shared.emit(Event::TokenFailed { message });
                Ended::Dropped
            }
            Err(Error::Server { message, .. }) => Ended::Refused(message),
            Err(e) => {
                tracing::debug!(url = %urls[url_i], error = %e, "connect failed");
                shared.emit(Event::ConnectFailed {
                    url: urls[url_i].clone(),
                    message: e.to_string(),
                });
                url_i = (url_i + 1) % urls.len();
                Ended::Dropped
            }
        };
        for s in shared.all() {
            s.core().disconnected();
            s.bump();
        }
        match ended {
            Ended::Closed => {
                set_state(&shared, ConnectionState::Closed);
                return;
            }
            Ended::Refused(reason) => {
                // That token will be refused again: the next try asks the source for another.
                shared.tokens.forget();
                refusals += 1;
                if !shared.tokens.renews() || refusals >= 2 {
                    unauthorized(&shared, reason);
                    return;
                }
                // A new token can be fetched at once; no backoff.
                continue;
            }
            Ended::Dropped => {}
        }
        set_state(&shared, ConnectionState::Disconnected);
        let delay = backoff(&shared.opts, attempt);
        attempt = attempt.saturating_add(1);
        // Keep taking commands while waiting, so joins register and close is prompt.
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                cmd = rx.recv() => match cmd {
                    None | Some(Cmd::Close) => {
                        set_state(&shared, ConnectionState::Closed);
                        return;
                    }
                    Some(Cmd::Leave(s)) => {
                        shared.sessions().remove(&s);
                    }
                    Some(_) => {}
                },
            }
        }
    }
}

/// The server refuses every token the source gives: stop for good, and say why to every waiter
/// (joins fail with `unauthorized` and the reason).
fn unauthorized(shared: &Shared, reason: String) {
    tracing::warn!(%reason, "the server refused the token; not retrying");
    *shared.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
    for s in shared.all() {
        let (_, events) = s
            .core()
            .join_refused(ErrorCode::Unauthorized, reason.clone());
        for e in events {
            s.emit(e);
        }
        s.bump();
    }
    set_state(shared, ConnectionState::Unauthorized);
}

fn set_state(shared: &Shared, st: ConnectionState) {
    shared.state.send_replace(st);
    shared.emit(Event::Connection(st));
    for s in shared.all() {
        s.emit(Event::Connection(st));
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn dial(shared: &Shared, url: &str) -> Result<Ws> {
    let mut req = url
        .into_client_request()
        .map_err(|e| Error::Connection(e.to_string()))?;
    let timeout = shared.opts.connect_timeout;
    let token = shared.tokens.usable(now_secs(), timeout).await?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|e| Error::Token(format!("not usable as a header: {e}")))?;
    req.headers_mut().insert("authorization", bearer);
    if shared.opts.binary {
        req.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(montage_protocol::SUBPROTOCOL_PROTO),
        );
    }
    match tokio::time::timeout(
        timeout,
        // Small frames both ways: Nagle's algorithm would hold an edit back for an ACK.
        tokio_tungstenite::connect_async_tls_with_config(
            req,
            None,
            true,
            Some(tokio_tungstenite::Connector::Rustls(shared.tls.clone())),
        ),
    )
    .await
    {
        Ok(Ok((ws, resp))) => {
            let chosen = resp.headers().get("sec-websocket-protocol");
            if shared.opts.binary && chosen.is_none_or(|p| p != montage_protocol::SUBPROTOCOL_PROTO)
            {
                return Err(Error::Connection(format!(
                    "the server does not speak {} (it chose {chosen:?}): use a newer server \
                     or Options::binary(false)",
                    montage_protocol::SUBPROTOCOL_PROTO
                )));
            }
            Ok(ws)
        }
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp)))
            if resp.status() == tokio_tungstenite::tungstenite::http::StatusCode::UNAUTHORIZED =>
        {
            // A server from before close code 4401.
            Err(Error::Server {
                code: ErrorCode::Unauthorized,
                message: "the server refused the token (HTTP 401)".into(),
            })
        }
        Ok(Err(e)) => Err(Error::Connection(e.to_string())),
        Err(_) => Err(Error::Timeout("connecting")),
    }
}

/// Downloads the app reported, smoothed (half the weight on the newest), and the tier last
/// hinted to the server from them.
#[derive(Debug, Default)]
struct Downlink {
    mbps: Option<f64>,
    hinted: Option<Tier>,
}

/// A body smaller than this says more about latency than about the link.
const MIN_DOWNLOAD_BYTES: u64 = 4 * 1024;
/// Weight of the newest download in the estimate.
const DOWNLINK_SMOOTHING: f64 = 0.5;

impl Downlink {
    /// Takes one timed download; returns the estimate to hint when it crossed into a tier other
    /// than the one last hinted.
    fn record(&mut self, bytes: u64, elapsed: Duration) -> Option<f64> {
        let secs = elapsed.as_secs_f64();
        if bytes < MIN_DOWNLOAD_BYTES || secs <= 0.0 {
            return None;
        }
        let sample = bytes as f64 * 8.0 / secs / 1_000_000.0;
        let mbps = match self.mbps {
            Some(old) => DOWNLINK_SMOOTHING * sample + (1.0 - DOWNLINK_SMOOTHING) * old,
            None => sample,
        };
        self.mbps = Some(mbps);
        (self.hinted != Some(Tier::from_mbps(mbps))).then_some(mbps)
    }
}

/// What a `rid` names, so the answer (or error) goes where it belongs.
#[derive(Debug, PartialEq, Eq)]
enum Rid<'a> {
    /// `op:SEQ:SESSION`: an edit.
    Op(u64, &'a str),
    /// `join:SESSION`.
    Join(&'a str),
    /// `to:SESSION`: any other message about a session.
    Session(&'a str),
    /// `auth:N`: a refreshed token.
    Auth(u64),
}

fn op_rid(seq: u64, session: &str) -> String {
    format!("op:{seq}:{session}")
}

fn parse_rid(rid: &Json) -> Option<Rid<'_>> {
    let s = rid.as_str()?;
    let (kind, rest) = s.split_once(':')?;
    match kind {
        "op" => {
            let (seq, session) = rest.split_once(':')?;
            Some(Rid::Op(seq.parse().ok()?, session))
        }
        "join" => Some(Rid::Join(rest)),
        "to" => Some(Rid::Session(rest)),
        "auth" => Some(Rid::Auth(rest.parse().ok()?)),
        _ => None,
    }
}

/// A frame to send, encoded when it goes out (in the connection's form).
enum Out {
    Msg(ClientMessage, Option<String>),
    Ping,
}

impl Out {
    fn encode(self, binary: bool) -> Message {
        match self {
            Out::Ping => Message::Ping(Vec::new().into()),
            Out::Msg(m, rid) if binary => {
                let rid = rid.map(Json::String);
                Message::binary(montage_protocol::encode_client_binary(&m, rid.as_ref()))
            }
            Out::Msg(m, rid) => {
                let mut v = serde_json::to_value(m).unwrap_or(Json::Null);
                if let (Some(rid), Json::Object(map)) = (rid, &mut v) {
                    map.insert("rid".into(), Json::String(rid));
                }
                Message::text(v.to_string())
            }
        }
    }
}

fn frame(m: &ClientMessage, rid: Option<String>) -> Out {
    Out::Msg(m.clone(), rid)
}

/// A server frame in either form; `None` for control frames.
fn decode_server_frame(
    m: &Message,
) -> Option<Result<(ServerMessage, Option<Json>), montage_protocol::ProtocolError>> {
    match m {
        Message::Text(t) => Some(montage_protocol::decode_server(t.as_str())),
        Message::Binary(b) => Some(montage_protocol::decode_server_binary(b)),
        _ => None,
    }
}

/// The session's `join`, with a rid that routes a refusal back to it (after a `leave` when
/// the join resets a replica on a connection already in the session).
fn join_frames(c: &mut SessionCore, out: &mut Vec<Out>) {
    if let Some(leave) = c.leave_for_reset() {
        out.push(frame(&leave, None));
    }
    let rid = format!("join:{}", c.session());
    out.push(frame(&c.join_message(), Some(rid)));
}

/// The server's words when it takes a connection out of a session it can no longer see
/// (`sync/settings.rs`); the error frame names no session otherwise.
const ACCESS_LOST: &str = "no longer has access to session ";

/// The session an rid-less `forbidden` error takes me out of, if it is one: the longest
/// joined session id that the message names.
fn lost_session<'a>(message: &str, sessions: impl Iterator<Item = &'a String>) -> Option<String> {
    let rest = message.strip_prefix(ACCESS_LOST)?;
    sessions
        .filter(|s| {
            rest.strip_prefix(s.as_str())
                .is_some_and(|r| r.is_empty() || r.starts_with(':'))
        })
        .max_by_key(|s| s.len())
        .cloned()
}

/// Kills a spawned task when dropped (with its connection).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Token refresh on one connection (docs/PROTOCOL.md "Access"): `token_expiring` → ask the source → `auth`
/// → `authed`, retrying a failed fetch while the old token still holds.
struct Refresh {
    shared: Arc<Shared>,
    /// Fetches answer here.
    done_tx: mpsc::Sender<Result<String>>,
    /// The fetch under way, if any.
    fetching: Option<AbortOnDrop>,
    /// The `auth` sent and not yet answered: its rid number and token.
    sent: Option<(u64, String)>,
    next_rid: u64,
    /// When the token in use expires, as the server said.
    exp: Option<u64>,
    /// Failed tries since the warning.
    failures: u32,
}

impl Refresh {
    fn new(shared: Arc<Shared>) -> (Refresh, mpsc::Receiver<Result<String>>) {
        let (done_tx, done_rx) = mpsc::channel(1);
        let r = Refresh {
            shared,
            done_tx,
            fetching: None,
            sent: None,
            next_rid: 1,
            exp: None,
            failures: 0,
        };
        (r, done_rx)
    }

    /// Asks the source after `delay`, unless a fetch or an `auth` is under way.
    fn start(&mut self, delay: Duration) {
        if self.fetching.is_some() || self.sent.is_some() {
            return;
        }
        let shared = self.shared.clone();
        let done = self.done_tx.clone();
        let timeout = shared.opts.connect_timeout;
        self.fetching = Some(AbortOnDrop(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let r = shared.tokens.fetch(timeout).await;
            let _ = done.send(r).await;
        })));
    }

    /// A failure: reported; tried again while the token in use holds.
    fn failed(&mut self, message: String) {
        tracing::warn!(%message, "token refresh failed");
        self.shared.emit(Event::TokenFailed { message });
        let Some(exp) = self.exp else { return };
        if let Some(d) = retry_delay(self.failures, now_secs(), exp) {
            self.start(d);
        }
        self.failures = self.failures.saturating_add(1);
    }

    fn expiring(&mut self, exp: u64) {
        self.exp = Some(exp);
        self.failures = 0;
        self.start(Duration::ZERO);
    }

    /// A fetch finished: the token goes out as `auth`.
    fn fetched(&mut self, r: Result<String>, out: &mut Vec<Out>) {
        self.fetching = None;
        match r {
            Ok(token) => {
                let n = self.next_rid;
                self.next_rid += 1;
                out.push(frame(
                    &ClientMessage::Auth {
                        token: token.clone(),
                    },
                    Some(format!("auth:{n}")),
                ));
                self.sent = Some((n, token));
            }
            Err(e) => self.failed(e.to_string()),
        }
    }

    fn authed(&mut self, exp: u64) {
        if let Some((_, token)) = self.sent.take() {
            self.shared.tokens.accept(token);
        }
        self.exp = Some(exp);
        self.failures = 0;
        self.shared.emit(Event::TokenRefreshed { exp });
    }

    fn refused(&mut self, n: u64, message: &str) {
        if self.sent.as_ref().is_some_and(|(m, _)| *m == n) {
            self.sent = None;
            self.failed(format!("the server refused the new token: {message}"));
        }
    }
}

async fn serve(
    shared: &Arc<Shared>,
    url: &str,
    ws: Ws,
    rx: &mut mpsc::Receiver<Cmd>,
    refusals: &mut u32,
) -> Ended {
    let (mut sink, mut stream) = ws.split();
    // A refused token is answered at once with an error and close 4401; a taken one with the
    // pong (frames keep their order). Only then is a connection without sessions connected.
    let mut out: Vec<Out> = vec![Out::Ping];
    // The server's hint is per socket: a new one hears the estimate again.
    {
        let mut d = shared.downlink.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mbps) = d.mbps {
            out.push(frame(
                &ClientMessage::Quality {
                    downlink_mbps: mbps,
                },
                None,
            ));
            d.hinted = Some(Tier::from_mbps(mbps));
        }
    }
    let mut heard = false;
    for s in shared.all() {
        join_frames(&mut s.core(), &mut out);
    }
    let (mut refresh, mut refreshed) = Refresh::new(shared.clone());
    let mut connected = false;
    // Large states being downloaded (`joined.state_ref`), by session: the hash and the task,
    // which ends with the state's bytes. They end with this connection (the bytes so far are
    // kept for a resume).
    let mut downloads = DownloadTasks::new();
    let mut downloading: HashMap<String, (String, tokio::task::AbortHandle)> = HashMap::new();
    loop {
        for s in shared.all() {
            start_download(shared, &s, url, &mut downloads, &mut downloading);
        }
        // Edits ready to go: at most one in flight per session.
        for s in shared.all() {
            // Held: only as many sends as the app released (step-by-step replays).
            if s.hold_out.load(Ordering::SeqCst) {
                let unsent = s.core().has_unsent();
                if !unsent || s.release.load(Ordering::SeqCst) == 0 {
                    continue;
                }
                s.release.fetch_sub(1, Ordering::SeqCst);
            }
            let mut c = s.core();
            if let Some((m, seq)) = c.poll_send() {
                let rid = op_rid(seq, c.session());
                out.push(frame(&m, Some(rid)));
            }
            if let Some(m) = c.poll_snapshot() {
                // A refusal reaches the session's listeners as an error.
                out.push(frame(&m, Some(format!("to:{}", c.session()))));
            }
        }
        for m in out.drain(..) {
            if sink.send(m.encode(shared.opts.binary)).await.is_err() {
                return Ended::Dropped;
            }
        }
        if !connected && heard && shared.all().iter().all(|s| s.core().is_live()) {
            connected = true;
            set_state(shared, ConnectionState::Connected);
        }
        tokio::select! {
            m = stream.next() => match m {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                    let (mut msg, rid) = match decode_server_frame(&m) {
                        Some(Ok(x)) => x,
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "undecodable server frame");
                            continue;
                        }
                        None => continue,
                    };
                    if let ServerMessage::Error { code: ErrorCode::Unauthorized, .. } = &msg
                        && rid.is_none()
                    {
                        // The close 4401 that follows says it all.
                        continue;
                    }
                    // The server took the token: refusals count from zero again.
                    (heard, *refusals) = (true, 0);
                    match (&msg, rid.as_ref().and_then(parse_rid)) {
                        (ServerMessage::TokenExpiring { exp }, _) => {
                            refresh.expiring(*exp);
                            continue;
                        }
                        (ServerMessage::Authed { exp }, _) => {
                            refresh.authed(*exp);
                            continue;
                        }
                        (ServerMessage::Error { message, .. }, Some(Rid::Auth(n))) => {
                            refresh.refused(n, message);
                            continue;
                        }
                        _ => {}
                    }
                    if let Err(e) = fetch_long_catchup(shared, url, &mut msg).await {
                        // Retry the whole rejoin later rather than drop local edits.
                        tracing::warn!(error = %e, "fetching missed edits");
                        return Ended::Dropped;
                    }
                    if let Some(held) = hold_incoming(shared, &msg) {
                        held.held().push_back(msg);
                        held.bump();
                        continue;
                    }
                    if let Some(d) = handle_frame(shared, msg, rid, &mut out) {
                        tokio::time::sleep(d).await;
                    }
                }
                Some(Ok(Message::Close(close))) => {
                    if let Some(f) = close {
                        let (code, reason) = (u16::from(f.code), f.reason.to_string());
                        tracing::info!(code, %reason, "the server closed the connection");
                        shared.emit(Event::ServerClosed { code, reason: reason.clone() });
                        if code == montage_protocol::close::UNAUTHORIZED {
                            return Ended::Refused(reason);
                        }
                    }
                    return Ended::Dropped;
                }
                Some(Err(_)) | None => return Ended::Dropped,
                Some(Ok(Message::Pong(_))) => (heard, *refusals) = (true, 0),
                Some(Ok(_)) => {}
            },
            Some(r) = refreshed.recv() => refresh.fetched(r, &mut out),
            Some(done) = downloads.join_next(), if !downloads.is_empty() => {
                let Ok((session, sha, res)) = done else { continue };
                if downloading.get(&session).is_some_and(|(h, _)| *h == sha) {
                    downloading.remove(&session);
                }
                downloaded(shared, &session, &sha, res, &mut out);
            }
            cmd = rx.recv() => match cmd {
                None | Some(Cmd::Close) => {
                    let _ = sink.send(Message::Close(None)).await;
                    return Ended::Closed;
                }
                Some(Cmd::Join(session)) => {
                    if let Some(s) = shared.get(&session) {
                        let mut c = s.core();
                        // (Not while its state downloads: that is the join's answer.)
                        if !c.is_live() && c.download().is_none() {
                            join_frames(&mut c, &mut out);
                        }
                    }
                }
                Some(Cmd::Flush) => {}
                Some(Cmd::Send(m)) => out.push(frame(&m, None)),
                Some(Cmd::ToSession(m)) => {
                    let rid = m.session().map(|s| format!("to:{s}"));
                    out.push(frame(&m, rid));
                }
                Some(Cmd::Leave(session)) => {
                    shared.sessions().remove(&session);
                    out.push(frame(&ClientMessage::Leave { session }, None));
                }
            },
        }
    }
}

/// A finished state download: its bytes, how many of them came now (not from an earlier cut
/// download) and how long those took.
struct Fetched {
    bytes: Vec<u8>,
    fresh: u64,
    took: Duration,
}

/// State downloads under way on a connection; each ends with its session, hash and result.
type DownloadTasks = tokio::task::JoinSet<(String, String, Result<Fetched>)>;

/// Starts downloading the large state `s` waits for (`joined.state_ref`), unless that is under
/// way.
fn start_download(
    shared: &Arc<Shared>,
    s: &Arc<SessionShared>,
    url: &str,
    tasks: &mut DownloadTasks,
    downloading: &mut HashMap<String, (String, tokio::task::AbortHandle)>,
) {
    let (session, version, r) = {
        let c = s.core();
        let Some((version, r)) = c.download() else {
            return;
        };
        if downloading
            .get(c.session())
            .is_some_and(|(h, _)| *h == r.sha256)
        {
            return;
        }
        (c.session().to_owned(), version, r.clone())
    };
    let (shared, s, url) = (shared.clone(), s.clone(), url.to_owned());
    let sha = r.sha256.clone();
    let task = tasks.spawn({
        let session = session.clone();
        async move {
            let res = fetch_state(&shared, &s, &url, &session, version, &r).await;
            (session, r.sha256, res)
        }
    });
    // A newer join's state replaces one still downloading.
    if let Some((_, old)) = downloading.insert(session, (sha, task)) {
        old.abort();
    }
}

/// The bytes of a cut download, put back for a resume however its task ends (an error, or
/// aborted with its connection).
struct Partial {
    s: Arc<SessionShared>,
    sha: String,
    buf: Vec<u8>,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let mut p = self.s.partial.lock().unwrap_or_else(|e| e.into_inner());
            *p = Some((std::mem::take(&mut self.sha), std::mem::take(&mut self.buf)));
        }
    }
}

/// Least progress between two [`Event::Loading`]s.
const LOADING_STEP: u64 = 64 * 1024;

/// Downloads the state `r` names, resuming from what an earlier cut download of it left:
/// its bytes, how many of them came now and how long that took (a downlink measurement).
async fn fetch_state(
    shared: &Shared,
    s: &Arc<SessionShared>,
    url: &str,
    session: &str,
    version: u64,
    r: &montage_protocol::StateRef,
) -> Result<Fetched> {
    let base = http_base(url).ok_or_else(|| Error::Connection(format!("no host in {url}")))?;
    let kept = s.partial.lock().unwrap_or_else(|e| e.into_inner()).take();
    let buf = match kept {
        Some((sha, buf)) if sha == r.sha256 => buf,
        _ => Vec::new(),
    };
    let mut part = Partial {
        s: s.clone(),
        sha: r.sha256.clone(),
        buf,
    };
    let (from, started) = (part.buf.len(), Instant::now());
    let (total, mut told) = (r.bytes, 0);
    s.loaded.fetch_add(1, Ordering::Relaxed);
    shared.emit(Event::Loading {
        session: session.to_owned(),
        received: from as u64,
        total,
    });
    let path = http::state_path(session, version);
    let src = http::StateSource {
        http: &shared.http,
        base: &base,
        path: &path,
        tokens: &shared.tokens,
        timeout: shared.opts.connect_timeout,
        state: r,
    };
    http::download(&src, &mut part.buf, |got| {
        s.loaded.fetch_add(1, Ordering::Relaxed);
        // (Fewer bytes than told: a download that had to start over says so.)
        if got >= told + LOADING_STEP || got < told || got == total {
            told = got;
            shared.emit(Event::Loading {
                session: session.to_owned(),
                received: got,
                total,
            });
        }
    })
    .await?;
    let bytes = std::mem::take(&mut part.buf);
    let fresh = (bytes.len() - from.min(bytes.len())) as u64;
    Ok(Fetched {
        bytes,
        fresh,
        took: started.elapsed(),
    })
}

/// A download ended: its state answers the session's join (or it joins again), and the time it
/// took tells the downlink estimate, as a preview the app reports does.
fn downloaded(
    shared: &Arc<Shared>,
    session: &str,
    sha: &str,
    res: Result<Fetched>,
    out: &mut Vec<Out>,
) {
    let Some(s) = shared.get(session) else { return };
    let events = {
        let mut c = s.core();
        if c.download().is_none_or(|(_, r)| r.sha256 != sha) {
            return;
        }
        let ev = match res {
            Ok(Fetched { bytes, fresh, took }) => {
                let mut d = shared.downlink.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(hint) = d.record(fresh, took) {
                    out.push(frame(
                        &ClientMessage::Quality {
                            downlink_mbps: hint,
                        },
                        None,
                    ));
                    d.hinted = Some(Tier::from_mbps(hint));
                }
                drop(d);
                c.downloaded(&bytes)
            }
            Err(e) => c.download_failed(e.to_string()),
        };
        if c.wants_join() {
            join_frames(&mut c, out);
        }
        ev
    };
    for e in events {
        s.emit(e);
    }
    s.bump();
    if let Err(e) = shared.persist() {
        tracing::warn!(error = %e, "writing the offline file");
    }
}

/// The session holding this edit or ack back, if it is in step-by-step mode.
fn hold_incoming(shared: &Shared, msg: &ServerMessage) -> Option<Arc<SessionShared>> {
    let session = match msg {
        ServerMessage::Ack { session, .. } | ServerMessage::Op { session, .. } => session,
        _ => return None,
    };
    shared
        .get(session)
        .filter(|s| s.hold_in.load(Ordering::SeqCst))
}

/// Pause before joining again after a passing refusal without `retry_after_ms`.
const JOIN_RETRY: Duration = Duration::from_millis(500);

/// An error frame. Returns a delay to wait before going on (`rate_limited`, a passing join
/// refusal).
/// An error frame's fields.
struct Refused {
    code: ErrorCode,
    message: String,
    retry_after_ms: Option<u64>,
    /// With `conflict`: the head version to rebase the refused edit onto.
    head: Option<u64>,
}

fn handle_error(
    shared: &Arc<Shared>,
    refusal: Refused,
    about: Option<&str>,
    rid: Option<&Json>,
    out: &mut Vec<Out>,
) -> Option<Duration> {
    let Refused {
        code,
        message,
        retry_after_ms,
        head,
    } = refusal;
    let error = || Event::Error {
        code,
        message: message.clone(),
    };
    match rid.and_then(parse_rid) {
        Some(Rid::Op(seq, session)) => {
            let s = shared.get(session)?;
            s.emit(error());
            let mut c = s.core();
            let mut delay = None;
            let mut refused = None;
            match code {
                // Not applied; the same edit may be sent again.
                ErrorCode::RateLimited => {
                    c.resend();
                    let ms = retry_after_ms.unwrap_or(100);
                    delay = Some(Duration::from_millis(ms).min(MAX_RETRY_AFTER));
                }
                // The session is reloading on the server: rejoin, then resend.
                ErrorCode::Internal => join_frames(&mut c, out),
                // Too costly to rebase on the server (docs/PROTOCOL.md "Limits"): rebased here, sent again.
                ErrorCode::Conflict if head.is_some() => {
                    let mut events = Vec::new();
                    if !c.rebase_inflight(seq, &mut events) {
                        tracing::debug!(seq, "conflict for an edit no longer in flight");
                    }
                    drop(c);
                    for e in events {
                        s.emit(e);
                    }
                    s.bump();
                    let _ = shared.persist();
                    return None;
                }
                _ => {
                    let lost = c.unacked();
                    if c.refused(seq) {
                        join_frames(&mut c, out);
                        refused = Some(Event::EditRefused {
                            seq,
                            code,
                            message: message.clone(),
                            lost,
                        });
                    }
                }
            }
            drop(c);
            if let Some(e) = refused {
                s.emit(e);
            }
            s.bump();
            let _ = shared.persist();
            delay
        }
        Some(Rid::Join(session)) => {
            let s = shared.get(session)?;
            let (what, events) = s.core().join_refused(code, message.clone());
            if what != Refusal::Final {
                s.emit(error());
            }
            for e in events {
                s.emit(e);
            }
            let delay = match what {
                Refusal::Retry => {
                    join_frames(&mut s.core(), out);
                    let wait = retry_after_ms.map_or(JOIN_RETRY, Duration::from_millis);
                    Some(wait.min(MAX_RETRY_AFTER))
                }
                Refusal::Resync => {
                    join_frames(&mut s.core(), out);
                    None
                }
                Refusal::Final => {
                    tracing::info!(%session, ?code, %message, "join refused");
                    shared.let_go(session);
                    None
                }
            };
            s.bump();
            delay
        }
        Some(Rid::Session(session)) => {
            if let Some(s) = shared.get(session) {
                s.emit(error());
            }
            None
        }
        Some(Rid::Auth(_)) => None,
        None => {
            // The frame names the session (servers before it did: read it from the message).
            let lost = (code == ErrorCode::Forbidden)
                .then(|| {
                    about
                        .map(str::to_owned)
                        .filter(|s| shared.sessions().contains_key(s))
                        .or_else(|| lost_session(&message, shared.sessions().keys()))
                })
                .flatten();
            if let Some(session) = lost {
                if let Some(s) = shared.get(&session) {
                    for e in s.core().access_lost(message.clone()) {
                        s.emit(e);
                    }
                    s.bump();
                }
                shared.let_go(&session);
                return None;
            }
            shared.emit(error());
            for s in shared.all() {
                s.emit(error());
            }
            None
        }
    }
}

/// One server frame. Returns a delay to wait before going on (`rate_limited`).
fn handle_frame(
    shared: &Arc<Shared>,
    msg: ServerMessage,
    rid: Option<Json>,
    out: &mut Vec<Out>,
) -> Option<Duration> {
    let session = match msg {
        ServerMessage::Tier { tier, .. } => {
            shared.tier.send_replace(Some(tier));
            return None;
        }
        ServerMessage::Notification { notification } => {
            shared.emit(Event::Notification(notification));
            return None;
        }
        ServerMessage::Error {
            code,
            message,
            retry_after_ms,
            session,
            version,
        } => {
            let about = session.as_deref();
            let refusal = Refused {
                code,
                message,
                retry_after_ms,
                head: version,
            };
            return handle_error(shared, refusal, about, rid.as_ref(), out);
        }
        ServerMessage::Authed { .. } | ServerMessage::TokenExpiring { .. } => return None,
        ServerMessage::Joined { ref session, .. }
        | ServerMessage::ParticipantJoined { ref session, .. }
        | ServerMessage::ParticipantLeft { ref session, .. }
        | ServerMessage::Ack { ref session, .. }
        | ServerMessage::Op { ref session, .. }
        | ServerMessage::Presence { ref session, .. }
        | ServerMessage::RoleChanged { ref session, .. }
        | ServerMessage::Preview { ref session, .. }
        | ServerMessage::CommentAdded { ref session, .. }
        | ServerMessage::CommentUpdated { ref session, .. }
        | ServerMessage::SuggestionAdded { ref session, .. }
        | ServerMessage::SuggestionUpdated { ref session, .. }
        | ServerMessage::Task { ref session, .. }
        | ServerMessage::KeyRotated { ref session, .. }
        | ServerMessage::LinkRoleChanged { ref session, .. }
        | ServerMessage::SessionDeleted { ref session } => session.clone(),
    };
    let s = shared.get(&session)?;
    let persist = matches!(
        msg,
        ServerMessage::Ack { .. } | ServerMessage::Joined { .. }
    );
    let events = {
        let mut c = s.core();
        let ev = c.receive(msg);
        if c.wants_join() {
            join_frames(&mut c, out);
        }
        ev
    };
    let gone = s.core().gone().is_some();
    for e in events {
        s.emit(e);
    }
    s.bump();
    if gone {
        shared.let_go(&session);
    } else if persist && let Err(e) = shared.persist() {
        tracing::warn!(error = %e, "writing the offline file");
    }
    None
}

fn backoff(opts: &Options, attempt: u32) -> Duration {
    let base = opts
        .backoff_min
        .saturating_mul(1u32 << attempt.min(20))
        .min(opts.backoff_max);
    // Equal jitter: half fixed, half random.
    let frac = (random_u64() % 1_000) as f64 / 2_000.0 + 0.5;
    base.mul_f64(frac)
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: the clock still spreads clients apart.
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

/// Versions fetched per HTTP request (the server's page limit).
const OPS_PAGE: u64 = 1000;

/// A rejoin after a long absence: the server answers with a snapshot instead of the missed
/// edits (more than it sends in `joined`), but local edits can only be rebased on the edits
/// themselves. Fetch them from the HTTP ops endpoint, page by page, and turn the answer into
/// an ordinary catch-up.
async fn fetch_long_catchup(shared: &Shared, url: &str, msg: &mut ServerMessage) -> Result<()> {
    let ServerMessage::Joined {
        session,
        version,
        state,
        state_ref,
        ops,
        ..
    } = msg
    else {
        return Ok(());
    };
    let from = match shared.get(session) {
        Some(s) => {
            let c = s.core();
            // Nothing local to rebase (no edits, no undo history): the snapshot will do.
            let local = c.unacked() > 0 || c.can_undo() || c.can_redo();
            let whole = state.is_some() || state_ref.is_some();
            if !whole || !c.is_synced() || c.needs_reset() || !local {
                return Ok(());
            }
            c.version()
        }
        None => return Ok(()),
    };
    let base = http_base(url).ok_or_else(|| Error::Connection(format!("no host in {url}")))?;
    let token = shared
        .tokens
        .usable(now_secs(), shared.opts.connect_timeout)
        .await?;
    let mut got: Vec<montage_protocol::OpEntry> = Vec::new();
    let mut at = from;
    while at < *version {
        let body = match http::get_text(
            &shared.http,
            &base,
            &ops_path(session, at, OPS_PAGE),
            &token,
            shared.opts.connect_timeout,
        )
        .await
        {
            // Trimmed from history (or gone): the snapshot stands and the local edits that
            // can't be rebased are reported as dropped.
            Err(Error::Server {
                code: ErrorCode::NotFound,
                message,
            }) => {
                tracing::warn!(%message, "missed edits no longer in history");
                return Ok(());
            }
            other => other?,
        };
        #[derive(serde::Deserialize)]
        struct Page {
            ops: Vec<montage_protocol::OpEntry>,
        }
        let page: Page =
            serde_json::from_str(&body).map_err(|e| Error::Connection(e.to_string()))?;
        let Some(last) = page.ops.last().map(|e| e.version) else {
            break;
        };
        if last <= at {
            break;
        }
        got.extend(page.ops.into_iter().filter(|e| e.version <= *version));
        at = last;
    }
    if got.last().map(|e| e.version) != Some(*version) && *version > from {
        return Err(Error::Connection(format!(
            "ops endpoint ended before version {version}"
        )));
    }
    *state = None;
    *state_ref = None;
    *ops = Some(got);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_downloads_hint_the_server_only_when_the_tier_changes() {
        let mut d = Downlink::default();
        assert_eq!(
            d.record(1_000, Duration::from_secs(1)),
            None,
            "too small to say"
        );
        assert_eq!(d.record(100_000, Duration::ZERO), None, "no time");
        assert_eq!(d.mbps, None);
        // 250 kB in 1 s: 2 Mbit/s, poor.
        assert_eq!(d.record(250_000, Duration::from_secs(1)), Some(2.0));
        d.hinted = Some(Tier::Poor);
        assert_eq!(
            d.record(250_000, Duration::from_secs(1)),
            None,
            "still poor"
        );
        // 8 Mbit/s weighs half: 5 Mbit/s, fair.
        assert_eq!(d.record(1_000_000, Duration::from_secs(1)), Some(5.0));
        d.hinted = Some(Tier::Fair);
        // Fast ones pull it up through good to excellent.
        let mut hints = Vec::new();
        for _ in 0..6 {
            if let Some(m) = d.record(10_000_000, Duration::from_millis(100)) {
                hints.push(Tier::from_mbps(m));
                d.hinted = Some(Tier::from_mbps(m));
            }
        }
        assert_eq!(hints, [Tier::Excellent], "{:?}", d.mbps);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let o = Options::new("ws://x/v1/ws", "t")
            .backoff(Duration::from_millis(100), Duration::from_secs(2));
        for attempt in 0..40 {
            let full = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(20))
                .min(Duration::from_secs(2));
            let d = backoff(&o, attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn rids_round_trip() {
        let rid = Json::String(op_rid(42, "a:b"));
        assert_eq!(parse_rid(&rid), Some(Rid::Op(42, "a:b")));
        assert_eq!(parse_rid(&Json::from("join:x:y")), Some(Rid::Join("x:y")));
        assert_eq!(parse_rid(&Json::from("to:s")), Some(Rid::Session("s")));
        assert_eq!(parse_rid(&Json::from("auth:7")), Some(Rid::Auth(7)));
        assert_eq!(parse_rid(&Json::from("auth:x")), None);
        assert_eq!(parse_rid(&Json::from(3)), None);
    }

    #[test]
    fn the_session_access_was_lost_to_is_read_from_the_message() {
        let joined = ["a".to_owned(), "a:b".to_owned(), "c".to_owned()];
        let lost = |m: &str| lost_session(m, joined.iter());
        let m = "no longer has access to session a:b: ask its owner to share it";
        assert_eq!(lost(m).as_deref(), Some("a:b"));
        let m = "no longer has access to session a: ask its owner to share it";
        assert_eq!(lost(m).as_deref(), Some("a"));
        assert_eq!(lost("no longer has access to session zz: x"), None);
        assert_eq!(lost("only an owner may change roles"), None);
    }
}
