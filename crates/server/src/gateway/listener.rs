//! The HTTP listener (DESIGN §9.2), after mini-redis: a permit per open socket, held for the
//! socket's life (accept waits when none is left, so the kernel's backlog holds newcomers instead
//! of the process running out of descriptors), backoff on accept errors such as `EMFILE` instead
//! of a busy loop, a deadline for each request's headers (a silent socket is closed), a deadline
//! for reading each request body, a cap on sockets per address (one host can't take them all),
//! a deadline for writes that make no progress (a peer that stops reading gives its socket
//! back), and the peer address on every request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::HttpLimits;

/// The first wait after an accept error; doubled per error in a row up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(10);
/// The one route whose bodies are large (uploads, up to `--max-upload-bytes`): its body may
/// take `--body-timeout-ms`. Every other body is a small JSON document and must arrive within
/// the header timeout.
const UPLOAD_PATH: &str = "/v1/assets";

/// The address a request came from (an extension on every request).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// A request body that was not read in time.
#[derive(Debug)]
pub struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body was not sent in time")
    }
}

impl std::error::Error for BodyTimeout {}

/// Serves `router` on `listener` within `limits` until `shutdown` is cancelled; then stops
/// accepting, lets requests in flight finish (at most `DRAIN`) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_sockets.max(1)));
    let hosts = Arc::new(Hosts::default());
    let conns = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut backoff = MIN_BACKOFF;
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(accepted) => {
                    backoff = MIN_BACKOFF;
                    accepted
                }
                // One connection's trouble (reset before it was accepted): take the next.
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of descriptors or memory: wait for some to free instead of spinning.
                    tracing::warn!(error = %e, wait = ?backoff, "accept failed; backing off");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        let Some(slot) = hosts.take(peer.ip(), limits.sockets_per_address) else {
            tracing::debug!(%peer, "too many sockets from this address; closed");
            continue;
        };
        nodelay(&tcp);
        let (body_timeout, small_body_timeout) = (limits.body_timeout, limits.header_timeout);
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let limit = if req.uri().path() == UPLOAD_PATH {
                body_timeout
            } else {
                small_body_timeout.min(body_timeout)
            };
            let mut req = req.map(|b| Body::new(TimedBody::new(b, limit, small_body_timeout)));
            req.extensions_mut().insert(PeerAddr(peer));
            let mut router = router.clone();
            async move {
                let r: Result<_, Infallible> = tower_service::Service::call(&mut router, req).await;
                r
            }
        });
        let conn = http
            .serve_connection(
                TokioIo::new(WriteDeadline::new(tcp, limits.write_timeout)),
                service,
            )
            .with_upgrades();
        let stop = shutdown.clone();
        conns.spawn(async move {
            // Held until the socket closes, or until it is handed to a WebSocket (which then
            // counts under `--max-connections`).
            let _permit = (permit, slot);
            let mut conn = std::pin::pin!(conn);
            let r = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
    drop(listener);
    conns.close();
    if tokio::time::timeout(DRAIN, conns.wait()).await.is_err() {
        tracing::warn!("some HTTP requests did not finish in time");
    }
    Ok(())
}

/// Small frames (acks, cursor moves) must leave at once: Nagle plus delayed ACKs would hold
/// them for ~40 ms. And a peer that vanished (power off, network gone) is found by the kernel's
/// keepalive probes after about two minutes of silence, at no cost to the server while the
/// connection is merely idle (its own pings are sparse, `--idle-ping-secs`).
fn nodelay(tcp: &TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY failed");
    }
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(15))
        .with_retries(4);
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "TCP keepalive failed");
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// The host an address stands for: IPv6 by its /64 (one host may hold a whole /64), IPv4 (and
/// IPv4-mapped IPv6) as is.
pub fn host(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

/// Open sockets per host.
#[derive(Default)]
struct Hosts(Mutex<HashMap<IpAddr, usize>>);

/// One open socket of a host; dropping it gives the slot back.
struct HostSlot {
    hosts: Arc<Hosts>,
    host: IpAddr,
}

impl Hosts {
    /// A slot for a socket from `ip`, unless its host already has `max` open.
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<HostSlot> {
        let host = host(ip);
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(host).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(HostSlot {
            hosts: self.clone(),
            host,
        })
    }
}

impl Drop for HostSlot {
    fn drop(&mut self) {
        let mut m = self.hosts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.host) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.host);
            }
        }
    }
}

/// A socket whose writes fail with `TimedOut` once one has made no progress for `limit`: a peer
/// that stops reading (a response, or WebSocket frames, it never takes) gives the socket back
/// instead of holding it forever. Reads are bounded elsewhere (header and body deadlines; a
/// WebSocket may rightly be silent for hours).
pub struct WriteDeadline<T> {
    inner: T,
    limit: Duration,
    /// Set while a write is pending; cleared by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteDeadline<T> {
    pub fn new(inner: T, limit: Duration) -> WriteDeadline<T> {
        WriteDeadline {
            inner,
            limit,
            stalled: None,
        }
    }

    fn check<R>(&mut self, r: Poll<io::Result<R>>, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer took nothing written to it in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(r, cx)
    }
}

/// A request body that fails with [`BodyTimeout`] once `limit` has passed since it was first
/// read, or once `idle` passes without a byte of it: the clock starts with the handler's first
/// read, so a body waiting for a permit (an upload) is not yet timed, and a stalled body gives
/// its permit back within `idle` rather than holding it for the whole `limit`.
pub struct TimedBody {
    inner: Incoming,
    limit: Duration,
    idle: Duration,
    /// When the whole body is due (set by the first read).
    end: Option<tokio::time::Instant>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl TimedBody {
    fn new(inner: Incoming, limit: Duration, idle: Duration) -> TimedBody {
        TimedBody {
            inner,
            limit,
            idle,
            end: None,
            timer: None,
        }
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let now = tokio::time::Instant::now();
        let end = *this.end.get_or_insert(now + this.limit);
        let next = end.min(now + this.idle);
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            // Progress: the next frame has `idle` again (within the whole body's deadline).
            if let Some(t) = &mut this.timer {
                t.as_mut().reset(next);
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(next)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a body error is [`BodyTimeout`].
pub fn is_body_timeout(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<BodyTimeout>() {
            return true;
        }
        source = s.source();
    }
    false
}
