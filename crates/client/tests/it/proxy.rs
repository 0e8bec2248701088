//! A fault-injecting TCP proxy: sits between SDK clients and the server and, at random,
//! delays chunks, cuts connections (sometimes mid-frame, after writing part of a chunk), and
//! can go offline (cut everything and refuse new connections).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use montage_testkit::Rng;

#[derive(Clone, Copy, Default, Debug)]
pub struct Faults {
    /// Per forwarded chunk, 1 in `cut_one_in` cuts the connection (0: never).
    pub cut_one_in: u64,
    /// Per chunk, a random delay up to this many milliseconds.
    pub max_delay_ms: u64,
    /// Client → server, 1 in `dup_one_in` complete WebSocket text frames is sent twice (0:
    /// never): a resent `op`/`join` as a confused network or client would produce.
    pub dup_one_in: u64,
}

struct Inner {
    upstream: String,
    online: AtomicBool,
    faults: Mutex<Faults>,
    rng: Mutex<Rng>,
    conns: Mutex<Vec<AbortHandle>>,
    cuts: AtomicU64,
    accepted: AtomicU64,
    dups: AtomicU64,
}

#[derive(Clone)]
pub struct Proxy {
    pub addr: String,
    inner: Arc<Inner>,
    accept: AbortHandle,
}

impl Proxy {
    pub async fn start(upstream: &str, seed: u64) -> Result<Proxy> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?.to_string();
        let inner = Arc::new(Inner {
            upstream: upstream.to_owned(),
            online: AtomicBool::new(true),
            faults: Mutex::new(Faults::default()),
            rng: Mutex::new(Rng(seed | 1)),
            conns: Mutex::new(Vec::new()),
            cuts: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            dups: AtomicU64::new(0),
        });
        let i2 = inner.clone();
        let accept = tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                if !i2.online.load(Ordering::SeqCst) {
                    drop(s);
                    continue;
                }
                i2.accepted.fetch_add(1, Ordering::Relaxed);
                let i3 = i2.clone();
                let h = tokio::spawn(async move {
                    let _ = pipe(i3, s).await;
                });
                let mut conns = i2.conns.lock().unwrap();
                conns.retain(|h| !h.is_finished());
                conns.push(h.abort_handle());
            }
        })
        .abort_handle();
        Ok(Proxy {
            addr,
            inner,
            accept,
        })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    pub fn set_faults(&self, f: Faults) {
        *self.inner.faults.lock().unwrap() = f;
    }

    /// Cuts every open connection.
    pub fn cut_all(&self) {
        for h in self.inner.conns.lock().unwrap().drain(..) {
            h.abort();
        }
        self.inner.cuts.fetch_add(1, Ordering::Relaxed);
    }

    /// Offline: cut everything and refuse new connections until back online.
    pub fn set_online(&self, on: bool) {
        self.inner.online.store(on, Ordering::SeqCst);
        if !on {
            self.cut_all();
        }
    }

    pub fn cuts(&self) -> u64 {
        self.inner.cuts.load(Ordering::Relaxed)
    }
    pub fn dups(&self) -> u64 {
        self.inner.dups.load(Ordering::Relaxed)
    }
    pub fn accepted(&self) -> u64 {
        self.inner.accepted.load(Ordering::Relaxed)
    }
}

impl Proxy {
    pub fn stop(&self) {
        self.accept.abort();
        self.cut_all();
    }
}

async fn pipe(inner: Arc<Inner>, client: TcpStream) -> Result<()> {
    let server = TcpStream::connect(&inner.upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let a = pump_frames(inner.clone(), cr, sw);
    let b = pump(inner.clone(), sr, cw);
    // Either direction ending (or being cut) ends both.
    tokio::select! {
        _ = a => {}
        _ = b => {}
    }
    Ok(())
}

async fn pump(
    inner: Arc<Inner>,
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
) -> Result<()> {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let (delay, cut, part) = {
            let f = *inner.faults.lock().unwrap();
            let mut rng = inner.rng.lock().unwrap();
            let delay = if f.max_delay_ms > 0 {
                rng.below(f.max_delay_ms + 1)
            } else {
                0
            };
            let cut = f.cut_one_in > 0 && rng.below(f.cut_one_in) == 0;
            (delay, cut, rng.below(n as u64) as usize)
        };
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if cut {
            // Mid-frame: forward a prefix of the chunk, then drop the connection.
            w.write_all(&buf[..part]).await?;
            inner.cuts.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        w.write_all(&buf[..n]).await?;
    }
}

/// Length of the complete WebSocket frame at the start of `b`, if it is all there, and
/// whether it is a final text frame.
fn ws_frame(b: &[u8]) -> Option<(usize, bool)> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize, 4),
        127 => {
            let mut x = [0u8; 8];
            x.copy_from_slice(b.get(2..10)?);
            (u64::from_be_bytes(x) as usize, 10)
        }
        n => (n as usize, 2),
    };
    if masked {
        at += 4;
    }
    let total = at + len;
    (b.len() >= total).then_some((total, b0 == 0x81))
}

/// Client → server: forwards the HTTP upgrade as it is, then whole WebSocket frames, with the
/// same delays and (mid-frame) cuts as `pump`, and duplicated text frames. A request that is not
/// an upgrade is plain HTTP: it and all that follows go through `pump`.
async fn pump_frames(
    inner: Arc<Inner>,
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
) -> Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 4096];
    let mut upgraded = false;
    loop {
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if !upgraded {
            let Some(end) = buf.windows(4).position(|x| x == b"\r\n\r\n") else {
                continue;
            };
            w.write_all(&buf[..end + 4]).await?;
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            buf.drain(..end + 4);
            if !head.contains("upgrade: websocket") {
                // Plain HTTP (the SDK's ops requests, kept alive for the next page): no
                // frames to find, so bytes as they come.
                w.write_all(&buf).await?;
                return pump(inner, r, w).await;
            }
            upgraded = true;
        }
        while let Some((len, text)) = ws_frame(&buf) {
            let (delay, cut, dup, part) = {
                let f = *inner.faults.lock().unwrap();
                let mut rng = inner.rng.lock().unwrap();
                let delay = if f.max_delay_ms > 0 {
                    rng.below(f.max_delay_ms + 1)
                } else {
                    0
                };
                let cut = f.cut_one_in > 0 && rng.below(f.cut_one_in) == 0;
                let dup = text && f.dup_one_in > 0 && rng.below(f.dup_one_in) == 0;
                (delay, cut, dup, rng.below(len as u64) as usize)
            };
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if cut {
                w.write_all(&buf[..part]).await?;
                inner.cuts.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            w.write_all(&buf[..len]).await?;
            if dup {
                w.write_all(&buf[..len]).await?;
                inner.dups.fetch_add(1, Ordering::Relaxed);
            }
            buf.drain(..len);
        }
    }
}
