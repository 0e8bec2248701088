//! The Collaboration Gateway: authenticates the upgrade, then per connection decodes frames,
//! applies limits and routes each message to its session's actor. Each socket has a reader (this
//! task) and a writer task fed by a bounded queue, so a slow reader never slows anyone else.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use montage_protocol::{
    ClientFrame, ClientMessage, ErrorCode, SUBPROTOCOL_JSON, SUBPROTOCOL_PROTO, ServerMessage,
    decode_client, decode_client_binary, encode, encode_server_binary, encode_with_rid,
    tier_for_mbps,
};
use serde::Deserialize;
use serde_json::Value as Json;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::App;
use crate::api::bearer;
use crate::auth::Claims;
use crate::clock::now_secs;
use crate::gateway::limits::{ConnLimiter, Cost, Verdict, is_edit};
use crate::gateway::quality::Meter;
use crate::media::live::{PreviewTier, preview_loop};
use crate::sync::ConnLink;
use crate::sync::{ConnHandle, JoinAs, Outbound, SessionMsg};

use montage_protocol::close::{POLICY as CLOSE_POLICY, UNAUTHORIZED as CLOSE_UNAUTHORIZED};
use montage_protocol::sealed::Payload;

/// What a client is told when its token is refused: enough to act on, nothing about the secret.
fn unauthorized_reason(e: &crate::error::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match e {
        crate::error::Error::Token(t) if matches!(t.kind(), ErrorKind::ExpiredSignature) => {
            "token expired"
        }
        crate::error::Error::Token(t) if matches!(t.kind(), ErrorKind::ImmatureSignature) => {
            "token not valid yet"
        }
        _ => "invalid token",
    }
}

/// The largest frame read from a socket whose token was refused (a close frame is ≤ 125 bytes).
const REFUSED_FRAME_BYTES: usize = 1024;

/// A client frame in the connection's form: JSON text (tungstenite already checked it is
/// UTF-8) or `montage.v1.proto` bytes.
#[derive(Clone, Copy)]
enum Incoming<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl Incoming<'_> {
    fn len(self) -> usize {
        match self {
            Incoming::Text(t) => t.len(),
            Incoming::Binary(b) => b.len(),
        }
    }
    fn decode(self) -> Result<ClientFrame, montage_protocol::Rejected> {
        match self {
            Incoming::Text(t) => decode_client(t),
            Incoming::Binary(b) => decode_client_binary(b),
        }
    }
}

/// The subprotocols the server speaks, preferred first: a client that offers both gets JSON.
const SUBPROTOCOLS: [&str; 2] = [SUBPROTOCOL_JSON, SUBPROTOCOL_PROTO];

/// Whether the upgrade chose the binary form (`montage.v1.proto`).
fn speaks_binary(socket: &WebSocket) -> bool {
    socket
        .protocol()
        .is_some_and(|p| p.as_bytes() == SUBPROTOCOL_PROTO.as_bytes())
}

/// Answers an upgrade whose token was refused: one `unauthorized` error, then close 4401. Reads
/// nothing from the client beyond the closing handshake, and not for long.
async fn refuse(mut socket: WebSocket, reason: &'static str) {
    let err = ServerMessage::error(ErrorCode::Unauthorized, reason);
    let err = if speaks_binary(&socket) {
        Message::Binary(encode_server_binary(&err, None).into())
    } else {
        Message::text(encode(&err))
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        socket.send(err).await?;
        socket
            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                code: CLOSE_UNAUTHORIZED,
                reason: reason.into(),
            })))
            .await?;
        while let Some(Ok(m)) = socket.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
        Ok::<_, axum::Error>(())
    })
    .await;
}

#[derive(Debug, Deserialize)]
pub struct WsQuery {
    #[serde(default)]
    token: Option<String>,
}

/// `GET /v1/ws`. A WebSocket upgrade with a missing or bad token is accepted and closed at once
/// with [`CLOSE_UNAUTHORIZED`] and the reason, after an `unauthorized` error frame: browsers never
/// see an upgrade's HTTP status, so this is how a client tells a refusal from a network drop
/// (DESIGN §9.1, docs/PROTOCOL.md). A plain HTTP request without a valid token gets 401.
pub async fn ws_handler(
    State(app): State<Arc<App>>,
    query: Result<Query<WsQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let token = query
        .as_ref()
        .ok()
        .and_then(|q| q.token.as_deref())
        .or_else(|| bearer(&headers));
    let claims = match token.map(|t| app.auth.verify(t)) {
        Some(Ok(c)) => c,
        refused => {
            let reason = match refused {
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "token refused");
                    unauthorized_reason(&e)
                }
                _ => "missing token",
            };
            return match ws {
                // Nothing but a close is read from a refused socket: tiny buffers and frames,
                // so an unauthenticated client can't make it hold more (and for 5 s at most).
                Ok(ws) => ws
                    .protocols(SUBPROTOCOLS)
                    .read_buffer_size(REFUSED_FRAME_BYTES)
                    .write_buffer_size(REFUSED_FRAME_BYTES)
                    .max_message_size(REFUSED_FRAME_BYTES)
                    .max_frame_size(REFUSED_FRAME_BYTES)
                    .on_upgrade(move |socket| refuse(socket, reason)),
                Err(_) => (StatusCode::UNAUTHORIZED, reason).into_response(),
            };
        }
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return e.into_response(),
    };
    if usize::try_from(app.metrics.connections.get()).unwrap_or(0)
        >= app.config.limits.max_connections
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "server is at its connection limit",
        )
            .into_response();
    }
    let user: Arc<str> = Arc::from(claims.sub.as_str());
    let Some(user_limiter) = app.users.connect(&user, &app.config.limits) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many connections for this user",
        )
            .into_response();
    };
    // From here the slot is counted; `connection` gives it back, and so does this guard if the
    // upgrade never completes.
    let slot = UserSlot {
        app: app.clone(),
        user,
    };
    let l = &app.config.limits;
    // tungstenite's own cap sits above ours so an oversized frame gets a `too_large` answer
    // instead of a dropped connection; only far larger ones hit the hard cap.
    let hard_cap = l.max_frame_bytes.saturating_mul(4);
    ws.protocols(SUBPROTOCOLS)
        .read_buffer_size(1024)
        .write_buffer_size(1024)
        // What we send is bounded before it is queued (`send_queue_bytes`, the document and
        // presence caps), and tungstenite holds one frame past `write_buffer_size` at most: a
        // cap here would only drop, without a word, a `joined` larger than it (DESIGN §9.2).
        .max_write_buffer_size(usize::MAX)
        .max_message_size(hard_cap)
        .max_frame_size(hard_cap)
        .on_upgrade(move |socket| connection(socket, app, claims, user_limiter, slot))
}

/// How long before a token expires the server sends `token_expiring` (DESIGN §9.1).
pub const TOKEN_WARNING_SECS: u64 = 60;

/// When to warn about a token expiring at `exp` (now, if that is already past).
fn warn_at(exp: u64) -> tokio::time::Instant {
    let left = exp
        .saturating_sub(now_secs())
        .saturating_sub(TOKEN_WARNING_SECS);
    tokio::time::Instant::now() + Duration::from_secs(left)
}

/// When a token expiring at `exp` stops holding (its `exp` second is the first it is refused).
fn expire_at(exp: u64) -> tokio::time::Instant {
    let left = exp.saturating_sub(now_secs());
    tokio::time::Instant::now() + Duration::from_secs(left)
}

enum End {
    /// The client went away (or was killed): nothing more to send.
    Gone,
    /// A close frame is queued; let the writer deliver it.
    Closing,
}

/// A connection registered for its user's notifications while it lives.
struct Attached {
    notifier: Arc<crate::social::notifications::Notifier>,
    conn: ConnHandle,
}

impl Attached {
    fn new(app: &App, conn: &ConnHandle) -> Attached {
        app.sessions.notifier.attach(conn);
        Attached {
            notifier: app.sessions.notifier.clone(),
            conn: conn.clone(),
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.notifier.detach(&self.conn);
    }
}

/// Gives a user's connection slot back when dropped.
struct UserSlot {
    app: Arc<App>,
    user: Arc<str>,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        self.app.users.disconnect(&self.user);
    }
}

async fn connection(
    socket: WebSocket,
    app: Arc<App>,
    claims: Claims,
    user_limiter: Arc<Mutex<ConnLimiter>>,
    _slot: UserSlot,
) {
    let _tracked = app.conns.token();
    app.metrics.connections.inc();
    app.metrics.connections_total.inc();
    let id = app.next_conn.fetch_add(1, Relaxed);
    let user: Arc<str> = Arc::from(claims.sub.as_str());
    let (tx, rx) = mpsc::channel(app.config.limits.send_queue.max(1));
    let kill = CancellationToken::new();
    let reader_done = CancellationToken::new();
    let handle = ConnHandle::new(
        id,
        user.clone(),
        tx.clone(),
        kill.clone(),
        app.metrics.clone(),
    )
    .with_name(claims.name.as_deref());
    let link = handle.link().clone();
    link.set_scope(claims.principal().scope);
    // The user's notifications reach it from now until it closes.
    let _inbox = Attached::new(&app, &handle);
    link.set_queue_budget(app.config.limits.send_queue_bytes);
    let binary = speaks_binary(&socket);
    let (sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(super::writer::write_loop(
        sink,
        rx,
        kill.clone(),
        app.shutdown.clone(),
        reader_done.clone(),
        link.clone(),
        binary,
    ));
    tracing::debug!(conn = id, %user, "connected");

    let mut reader = Reader {
        limiter: ConnLimiter::new(&app.config.limits, Instant::now()),
        user_limiter,
        app: app.clone(),
        handle,
        tx,
        joined: HashSet::new(),
        exp: claims.exp,
        tier_tx: watch::channel(link.tier()).0,
        link,
        meter: Meter::new(Instant::now(), app.config.limits.idle_ping),
        binary,
    };
    let end = reader.run(&mut stream, &kill).await;
    for (_, stop) in reader.link.previews().drain() {
        stop.cancel();
    }
    for s in std::mem::take(&mut reader.joined) {
        let _ = app
            .sessions
            .send(&s, SessionMsg::Disconnect { conn: id }, false)
            .await;
    }
    drop(reader);
    match end {
        End::Gone => reader_done.cancel(),
        End::Closing => {
            // Let the writer deliver what is queued and the close frame; not forever.
            if tokio::time::timeout(Duration::from_secs(5), &mut writer)
                .await
                .is_err()
            {
                reader_done.cancel();
            }
        }
    }
    if !writer.is_finished() {
        let _ = writer.await;
    }
    if matches!(end, End::Closing) {
        // Finish the closing handshake: read (and drop) until the client's close, so unread
        // data does not turn our close into a TCP reset that loses the close frame.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(m)) = stream.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    app.metrics.connections.dec();
    tracing::debug!(conn = id, %user, "disconnected");
}

struct Reader {
    app: Arc<App>,
    handle: ConnHandle,
    tx: mpsc::Sender<Outbound>,
    joined: HashSet<String>,
    limiter: ConnLimiter,
    user_limiter: Arc<Mutex<ConnLimiter>>,
    exp: u64,
    /// The connection's effective tier, for live previews that follow it (subscribed without
    /// a `tier`).
    tier_tx: watch::Sender<montage_protocol::Tier>,
    /// Tier and paced presence, shared with the writer and the session actors.
    link: Arc<ConnLink>,
    /// Measures the connection's tier.
    meter: Meter,
    /// The connection speaks `montage.v1.proto`: binary frames only, both ways.
    binary: bool,
}

impl Reader {
    async fn run(&mut self, stream: &mut SplitStream<WebSocket>, kill: &CancellationToken) -> End {
        let shutdown = self.app.shutdown.clone();
        let link = self.link.clone();
        // One sampling timer, re-armed only when the meter's next sample moves: at the usual
        // pace while there is traffic, at the sparse ping when quiet.
        let mut sample_at = self.meter.next_sample();
        let sample = tokio::time::sleep_until(sample_at.into());
        tokio::pin!(sample);
        // One timer per connection, re-armed when `auth` brings a new expiry: first it sends
        // `token_expiring`, then at `exp` it closes the socket (a connection that only listens
        // must not keep receiving on an expired token).
        let mut armed_for = self.exp;
        let expiring = tokio::time::sleep_until(warn_at(self.exp));
        tokio::pin!(expiring);
        let mut warned = false;
        // Made once, not per frame (each one made registers with its token or `Notify`);
        // `wake` is made again after it fires.
        let killed = kill.cancelled();
        let shut = shutdown.cancelled();
        let wake = link.wake.notified();
        tokio::pin!(killed, shut, wake);
        loop {
            if armed_for != self.exp {
                armed_for = self.exp;
                warned = false;
                expiring.as_mut().reset(warn_at(self.exp));
            }
            // Held presence goes out when the tier's interval has passed.
            let flush_at = link.outbox().due(link.tier());
            // Idle connections (no session, no preview subscription) are not sampled: no timer
            // work per socket.
            let sampling = !self.joined.is_empty() || !self.link.previews().is_empty();
            if self.meter.is_quiet() && !link.quiet.load(Relaxed) {
                self.meter.wake();
            }
            if self.meter.next_sample() != sample_at {
                sample_at = self.meter.next_sample();
                sample.as_mut().reset(sample_at.into());
            }
            let next = tokio::select! {
                biased;
                _ = &mut killed => return End::Gone,
                _ = &mut shut => return End::Closing,
                _ = async { tokio::time::sleep_until(flush_at.unwrap_or_else(Instant::now).into()).await },
                    if flush_at.is_some() => {
                    self.flush_presence();
                    continue;
                }
                _ = &mut wake => {
                    wake.set(link.wake.notified());
                    continue;
                }
                _ = &mut expiring => {
                    if warned {
                        self.error(ErrorCode::Unauthorized, "token expired", None);
                        return self.close(CLOSE_UNAUTHORIZED, "token expired");
                    }
                    warned = true;
                    self.handle
                        .send_unordered(encode(&ServerMessage::TokenExpiring { exp: self.exp }));
                    expiring.as_mut().reset(expire_at(self.exp));
                    continue;
                }
                _ = &mut sample, if sampling => {
                    self.sample();
                    continue;
                }
                m = stream.next() => m,
            };
            let end = match next {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return End::Gone,
                Some(Ok(Message::Pong(p))) => {
                    self.meter.pong(&p, Instant::now());
                    None
                }
                Some(Ok(Message::Text(t))) if !self.binary => {
                    self.on_frame(Incoming::Text(t.as_str())).await
                }
                Some(Ok(Message::Binary(b))) if self.binary => {
                    self.on_frame(Incoming::Binary(&b)).await
                }
                Some(Ok(Message::Text(t))) => self.wrong_form(
                    t.len(),
                    "this connection speaks montage.v1.proto: send binary frames",
                ),
                Some(Ok(Message::Binary(b))) => self.wrong_form(
                    b.len(),
                    "binary frames need the montage.v1.proto subprotocol",
                ),
                Some(Ok(_)) => None, // ping/pong: answered by the socket itself
            };
            if let Some(end) = end {
                return end;
            }
        }
    }

    fn error(&self, code: ErrorCode, message: impl Into<String>, rid: Option<&Json>) {
        self.handle.error(code, message, rid);
    }

    fn flush_presence(&self) {
        let frames = self.link.outbox().flush(self.link.tier(), Instant::now());
        for (key, f) in frames {
            if !self.handle.send_held_presence(key, f) {
                break;
            }
        }
    }

    fn sample(&mut self) {
        // Quiet unless the sample finds something: a frame the writer takes from here on
        // clears the flag and wakes the reader.
        self.link.quiet.store(true, Relaxed);
        let changed = self.meter.sample(&self.tx, &self.link, Instant::now());
        if !self.meter.is_quiet() {
            self.link.quiet.store(false, Relaxed);
        }
        if let Some(t) = changed {
            self.set_tier(t, None);
        }
    }

    /// Applies and announces a new effective tier.
    fn set_tier(&mut self, t: montage_protocol::Tier, rid: Option<&Json>) {
        let before = self.link.tier();
        self.link.set_tier(t);
        self.tier_tx
            .send_if_modified(|cur| std::mem::replace(cur, t) != t);
        let m = &self.app.metrics;
        if t > before {
            m.tier_down_total.inc();
            tracing::debug!(conn = self.handle.id, tier = t.as_str(), "tier down");
        } else if t < before {
            m.tier_up_total.inc();
        }
        let msg = crate::gateway::quality::tier_message(t);
        self.handle.send_unordered(encode_with_rid(&msg, rid));
    }

    /// Queues a close frame behind whatever is already queued.
    fn close(&self, code: u16, reason: &str) -> End {
        if self
            .tx
            .try_send(Outbound::Close(code, reason.to_owned()))
            .is_err()
        {
            return End::Gone;
        }
        End::Closing
    }

    fn verdict(&self, v: Verdict, rid: Option<&Json>) -> Result<(), Option<End>> {
        match v {
            Verdict::Allow => Ok(()),
            Verdict::Limited { retry_after } => {
                self.app.metrics.rate_limited_total.inc();
                let msg = ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    message: "rate limit exceeded".into(),
                    retry_after_ms: Some(retry_after.as_millis().max(1) as u64),
                    session: None,
                    version: None,
                };
                self.handle.send(encode_with_rid(&msg, rid));
                Err(None)
            }
            Verdict::Abuse => {
                tracing::info!(conn = self.handle.id, user = %self.handle.user, "closing: rate limits abused");
                Err(Some(self.close(CLOSE_POLICY, "rate limit exceeded")))
            }
        }
    }

    /// Admits (`take`) or only checks a frame against this connection's and its user's buckets.
    fn limit(&mut self, cost: Cost, take: bool, rid: Option<&Json>) -> Result<(), Option<End>> {
        let now = Instant::now();
        let mut user = self.user_limiter.lock().unwrap_or_else(|p| p.into_inner());
        let v = if take {
            self.limiter.admit(Some(&mut user), cost, now)
        } else {
            self.limiter.check(Some(&mut user), cost, now)
        };
        drop(user);
        self.verdict(v, rid)
    }

    /// A frame in the other form than the connection's: charged as a frame, answered with
    /// what to do.
    fn wrong_form(&mut self, len: usize, message: &str) -> Option<End> {
        match self.limit(Cost::frame(len), true, None) {
            Err(end) => end,
            Ok(()) => {
                self.error(ErrorCode::BadRequest, message, None);
                None
            }
        }
    }

    /// One frame in the connection's form.
    async fn on_frame(&mut self, frame: Incoming<'_>) -> Option<End> {
        let len = frame.len();
        // A frame the buckets refuse anyway is not decoded; one that fits is decoded before it
        // is admitted, because edit-like frames also need the edit rate, and a refused frame
        // takes nothing from any bucket.
        if let Err(end) = self.limit(Cost::frame(len), false, None) {
            return end;
        }
        let max = self.app.config.limits.max_frame_bytes;
        let decoded = (len <= max).then(|| frame.decode());
        let (cost, rid) = match &decoded {
            Some(Ok(f)) if is_edit(&f.msg) => (Cost::edit(len), f.rid.as_ref()),
            _ => (Cost::frame(len), None),
        };
        if let Err(end) = self.limit(cost, true, rid) {
            return end;
        }
        let Some(decoded) = decoded else {
            self.error(
                ErrorCode::TooLarge,
                format!("frames are limited to {max} bytes"),
                None,
            );
            return None;
        };
        if now_secs() >= self.exp {
            self.error(ErrorCode::Unauthorized, "token expired", None);
            return Some(self.close(CLOSE_UNAUTHORIZED, "token expired"));
        }
        let frame = match decoded {
            Ok(f) => f,
            Err(r) => {
                self.error(r.error.code(), r.error.to_string(), r.rid.as_ref());
                return None;
            }
        };
        self.dispatch(frame).await
    }

    /// Starts (or restarts, at a new tier) live previews of a session for this connection: a
    /// `preview` now, then after committed edits at most at the tier's frame rate, the newest
    /// version always last. Without `tier` the subscription follows the connection's tier. The
    /// subscriber needs viewer rights; joining is not required. With `follow`, the previews
    /// are the timeline's composite frames at that user's playhead (`media::live`).
    async fn preview_subscribe(
        &mut self,
        session: String,
        tier: Option<montage_protocol::Tier>,
        follow: Option<String>,
        rid: Option<Json>,
    ) {
        if follow
            .as_ref()
            .is_some_and(|u| u.is_empty() || u.len() > montage_protocol::MAX_ID_LEN)
        {
            self.error(
                ErrorCode::BadRequest,
                "follow names a user: 1 to 128 bytes",
                rid.as_ref(),
            );
            return;
        }
        let max = self.app.config.limits.sessions_per_connection;
        let full = {
            let p = self.link.previews();
            !p.contains_key(&session) && p.len() >= max
        };
        if full {
            self.error(
                ErrorCode::TooLarge,
                format!("at most {max} preview subscriptions per connection"),
                rid.as_ref(),
            );
            return;
        }
        // No tier asked for: follow the connection's (measured or hinted) as it changes.
        let tier = match tier {
            Some(t) => PreviewTier::Fixed(t),
            None => PreviewTier::Follow(self.tier_tx.subscribe()),
        };
        // Access first: nothing is registered for a session this user may not see (or that
        // does not exist). Then watch, then read: an edit committed in between is seen by the
        // watch. A watch dropped on the way out takes its entry with it.
        let who = self.handle.principal();
        let read = match self.may_view(&session, &who).await {
            Ok(()) => {
                let versions = self.app.sessions.watch_versions(&session);
                let state = self.app.sessions.state(&session, &who).await;
                state.map(|(version, _)| (versions, version))
            }
            Err(code) => Err(code),
        };
        let (versions, version) = match read {
            Ok(r) => r,
            Err(code) => {
                let (code, message) = match code {
                    ErrorCode::NotFound => (code, format!("no session {session}")),
                    ErrorCode::Forbidden => (code, format!("no access to session {session}")),
                    ErrorCode::Conflict => (
                        ErrorCode::BadRequest,
                        format!(
                            "session {session} is end-to-end encrypted: the server renders no \
                             previews of it; render them in the client"
                        ),
                    ),
                    _ => (code, "could not read the session".to_owned()),
                };
                self.error(code, message, rid.as_ref());
                return;
            }
        };
        // Watch, then read where the followed user is: a move in between is seen by the watch.
        let playhead = match &follow {
            Some(user) => {
                let w = self.app.sessions.watch_playhead(&session, user);
                if let Some(t) = self.app.sessions.playhead(&session, user).await {
                    self.app.sessions.seed_playhead(&session, user, t);
                }
                Some(w)
            }
            None => None,
        };
        let stop = self.app.shutdown.child_token();
        let old = self.link.previews().insert(session.clone(), stop.clone());
        if let Some(old) = old {
            old.cancel();
        }
        tokio::spawn(preview_loop(
            self.handle.clone(),
            session,
            tier,
            versions,
            version,
            playhead,
            rid,
            stop,
        ));
    }

    /// Whether `who` may view `session`, from the store's record (loads nothing).
    async fn may_view(
        &self,
        session: &str,
        who: &crate::access::Principal,
    ) -> Result<(), ErrorCode> {
        let meta = match self.app.store.meta(session).await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(ErrorCode::NotFound),
            Err(e) => {
                tracing::error!(session, error = %e, "meta read failed");
                return Err(ErrorCode::Internal);
            }
        };
        if crate::access::check_permission(&meta, session, who, montage_protocol::Role::Viewer) {
            Ok(())
        } else {
            Err(ErrorCode::Forbidden)
        }
    }

    /// `auth`: the client's new token replaces the connection's (same user only). A changed
    /// scope is checked at once in every session the connection is in.
    async fn refresh(&mut self, token: &str, rid: Option<&Json>) -> Option<End> {
        let claims = match self.app.auth.verify(token) {
            Ok(c) => c,
            Err(e) => {
                // The connection keeps its current token, which still holds.
                self.error(ErrorCode::Unauthorized, e.to_string(), rid);
                return None;
            }
        };
        if claims.sub != *self.handle.user {
            tracing::info!(conn = self.handle.id, user = %self.handle.user, "closing: auth with another user's token");
            self.error(
                ErrorCode::Unauthorized,
                "a refreshed token must be for the same user",
                rid,
            );
            return Some(self.close(CLOSE_UNAUTHORIZED, "token for another user"));
        }
        let scope = claims.principal().scope;
        let changed = scope != self.link.scope();
        self.link.set_scope(scope);
        self.exp = claims.exp;
        self.handle.send(encode_with_rid(
            &ServerMessage::Authed { exp: claims.exp },
            rid,
        ));
        if changed {
            for s in &self.joined {
                let msg = SessionMsg::Recheck {
                    conn: self.handle.clone(),
                };
                let _ = self.app.sessions.send(s, msg, false).await;
            }
        }
        None
    }

    /// A message for a session this connection is not in: `forbidden` when the user may not see
    /// it (DESIGN §9.1), else `not_found` (join first). Only this refusal path reads the store.
    async fn not_joined(&self, session: &str, rid: Option<&Json>) {
        let meta = self.app.store.meta(session).await.ok().flatten();
        match meta {
            Some(m) if self.handle.role_in(session, &m) < montage_protocol::Role::Viewer => self
                .error(
                    ErrorCode::Forbidden,
                    format!("no access to session {session}"),
                    rid,
                ),
            _ => self.error(
                ErrorCode::NotFound,
                format!("not joined to session {session}"),
                rid,
            ),
        }
    }

    async fn dispatch(&mut self, ClientFrame { rid, msg }: ClientFrame) -> Option<End> {
        let conn = self.handle.clone();
        let sessions = self.app.sessions.clone();
        let (session, smsg) = match msg {
            ClientMessage::Join {
                session,
                client,
                since,
                compact,
                ranges,
                state_ref,
                create,
            } => {
                let max = self.app.config.limits.sessions_per_connection;
                if !self.joined.contains(&session) && self.joined.len() >= max {
                    self.error(
                        ErrorCode::TooLarge,
                        format!("at most {max} sessions per connection"),
                        rid.as_ref(),
                    );
                    return None;
                }
                if sessions
                    .send(
                        &session,
                        SessionMsg::Join {
                            conn,
                            client,
                            how: JoinAs {
                                since,
                                compact,
                                ranges,
                                state_ref,
                                encrypted: create.is_some_and(|c| c.encrypted),
                            },
                            rid: rid.clone(),
                        },
                        true,
                    )
                    .await
                    .is_err()
                {
                    self.error(ErrorCode::Internal, "server is shutting down", rid.as_ref());
                    return None;
                }
                self.joined.insert(session);
                return None;
            }
            ClientMessage::Leave { session } => {
                if !self.joined.remove(&session) {
                    self.error(
                        ErrorCode::NotFound,
                        format!("not joined to session {session}"),
                        rid.as_ref(),
                    );
                    return None;
                }
                let _ = sessions
                    .send(&session, SessionMsg::Leave { conn: conn.id }, false)
                    .await;
                return None;
            }
            ClientMessage::Quality { downlink_mbps } => {
                let (hint, _, _) = tier_for_mbps(downlink_mbps);
                // The answer names the effective tier: the hint, or lower if measured lower.
                let t = self.meter.hint(hint);
                self.set_tier(t, rid.as_ref());
                return None;
            }
            ClientMessage::Auth { token } => return self.refresh(&token, rid.as_ref()).await,
            ClientMessage::SetLinkRole { session, role } => (
                session,
                SessionMsg::SetLinkRole {
                    conn,
                    role,
                    rid: rid.clone(),
                },
            ),
            ClientMessage::PreviewSubscribe {
                session,
                tier,
                follow,
            } => {
                self.preview_subscribe(session, tier, follow, rid).await;
                return None;
            }
            ClientMessage::PreviewUnsubscribe { session } => {
                if !self.link.stop_previews(&session) {
                    self.error(
                        ErrorCode::NotFound,
                        format!("no preview subscription for session {session}"),
                        rid.as_ref(),
                    );
                }
                return None;
            }
            m @ (ClientMessage::Comment { .. }
            | ClientMessage::CommentEdit { .. }
            | ClientMessage::CommentDelete { .. }
            | ClientMessage::CommentResolve { .. }
            | ClientMessage::CommentReact { .. }
            | ClientMessage::Suggest { .. }
            | ClientMessage::SuggestionAccept { .. }
            | ClientMessage::SuggestionReject { .. }) => {
                let Ok((session, req)) = crate::social::Request::from_message(m) else {
                    return None;
                };
                (
                    session,
                    SessionMsg::Social {
                        conn,
                        req,
                        rid: rid.clone(),
                    },
                )
            }
            ClientMessage::Op {
                session,
                base,
                seq,
                ops,
                data,
                key_epoch,
            } => (
                session,
                SessionMsg::Op {
                    conn,
                    base,
                    seq,
                    ops,
                    sealed: data.map(|data| Payload { data, key_epoch }),
                    rid: rid.clone(),
                    received: Instant::now(),
                },
            ),
            ClientMessage::Snapshot {
                session,
                version,
                data,
                key_epoch,
            } => (
                session,
                SessionMsg::Snapshot {
                    conn,
                    version,
                    payload: Payload { data, key_epoch },
                    rid: rid.clone(),
                },
            ),
            ClientMessage::Presence { session, data } => (
                session,
                SessionMsg::Presence {
                    conn,
                    data,
                    rid: rid.clone(),
                },
            ),
            ClientMessage::SetRole {
                session,
                user,
                role,
            } => (
                session,
                SessionMsg::SetRole {
                    conn,
                    user,
                    role,
                    rid: rid.clone(),
                },
            ),
        };
        if !self.joined.contains(&session) {
            self.not_joined(&session, rid.as_ref()).await;
            return None;
        }
        if sessions.send(&session, smsg, false).await.is_err() {
            self.joined.remove(&session);
            self.error(
                ErrorCode::NotFound,
                format!("session {session} is no longer loaded; join again"),
                rid.as_ref(),
            );
        }
        None
    }
}
