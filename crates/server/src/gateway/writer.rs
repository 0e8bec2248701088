//! A connection's writer task: takes frames off the connection's bounded queue and writes them
//! in batches (one flush per batch), closes the socket with the right code when the reader,
//! the queue or shutdown says so, and reports what reached the socket (the drain rate the
//! connection's tier is measured from).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use montage_protocol::close::{GOING_AWAY as CLOSE_GOING_AWAY, POLICY as CLOSE_POLICY};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::sync::conn::range_interval;
use crate::sync::{ConnLink, Frame, Outbound};

/// Most queued frames written before one flush.
const WRITE_BATCH: usize = 64;

pub(super) async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    kill: CancellationToken,
    shutdown: CancellationToken,
    reader_done: CancellationToken,
    link: Arc<ConnLink>,
    binary: bool,
) {
    // The connection's form of a frame: its JSON text, or (`montage.v1.proto`) its binary form.
    let message = |f: Frame| {
        if binary {
            Message::Binary(f.binary())
        } else {
            Message::Text(f.json())
        }
    };
    let close = |code: u16, reason: &str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    // Made once: a `cancelled()` made per frame registers with (and leaves) its token each time.
    let killed = kill.cancelled();
    let shut = shutdown.cancelled();
    let read_end = reader_done.cancelled();
    tokio::pin!(killed, shut, read_end);
    // When the last range went out: ranges are paced by the tier.
    let mut last_edit: Option<Instant> = None;
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut killed => {
                // The queue is full, so the socket is likely stuck too: try briefly, then go.
                let _ = tokio::time::timeout(Duration::from_millis(100), sink.send(close(CLOSE_POLICY, "send queue full"))).await;
                break;
            }
            _ = &mut shut => {
                let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close(CLOSE_GOING_AWAY, "server shutting down"))).await;
                break;
            }
            _ = &mut read_end => break,
            m = rx.recv() => match m {
                Some(m) => Next::Queued(m),
                None => break,
            },
            () = held_due(&link, last_edit) => {
                // Edits held as ranges, now due: everything queued before them has gone.
                let mut frames = Vec::new();
                for h in link.take_held(|| !rx.is_empty()) {
                    link.release_queue_bytes(h.counted());
                    frames.extend(h.into_frames());
                }
                if frames.is_empty() {
                    continue; // a sender took them, or queued frames go first
                }
                last_edit = Some(Instant::now());
                Next::Held(frames)
            }
        };
        // A frame for a quiet connection: its reader measures again.
        if link.quiet.swap(false, Relaxed) {
            link.wake.notify_one();
        }
        let (first, more) = match next {
            Next::Held(frames) => (frames.into_iter().map(message).collect(), false),
            Next::Queued(Outbound::Frame(f)) => {
                link.release_queue_bytes(f.len());
                (vec![message(f)], true)
            }
            Next::Queued(Outbound::Ping(n)) => {
                (vec![Message::Ping(n.to_be_bytes().to_vec().into())], true)
            }
            Next::Queued(Outbound::Close(code, reason)) => {
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), sink.send(close(code, &reason)))
                        .await;
                break;
            }
        };
        // Whatever else is already queued goes out with a queued frame: one flush (one syscall)
        // per batch instead of one per frame when a busy session fans out.
        let mut closing = None;
        let mut bytes = first.iter().map(message_len).sum::<usize>();
        let batch = async {
            for m in first {
                sink.feed(m).await?;
            }
            for _ in 0..if more { WRITE_BATCH } else { 0 } {
                match rx.try_recv() {
                    Ok(Outbound::Frame(f)) => {
                        link.release_queue_bytes(f.len());
                        let m = message(f);
                        bytes += message_len(&m);
                        sink.feed(m).await?
                    }
                    Ok(Outbound::Ping(n)) => {
                        sink.feed(Message::Ping(n.to_be_bytes().to_vec().into()))
                            .await?
                    }
                    Ok(Outbound::Close(code, reason)) => {
                        closing = Some((code, reason));
                        break;
                    }
                    Err(_) => break,
                }
            }
            sink.flush().await
        };
        tokio::select! {
            r = batch => if r.is_err() { break },
            _ = &mut killed => break,
            _ = &mut read_end => break,
        }
        // What reached the socket: the connection's measured drain rate.
        link.drained.fetch_add(bytes as u64, Relaxed);
        if let Some((code, reason)) = closing {
            let _ =
                tokio::time::timeout(Duration::from_secs(1), sink.send(close(code, &reason))).await;
            break;
        }
    }
    // Without its writer the connection can't work: the reader goes too (its `kill` arm), so the
    // socket closes and the client reconnects rather than waiting on a half-open connection.
    kill.cancel();
    let _ = tokio::time::timeout(Duration::from_millis(200), sink.close()).await;
}

/// What the writer takes next: a frame off the queue, or the ranges held for the connection.
enum Next {
    Queued(Outbound),
    Held(Vec<Frame>),
}

/// Resolves when ranges are held and their time has come: at once at the `excellent` and `good`
/// tiers (they were held only while other frames waited), one tier interval after the last
/// edit sent otherwise.
async fn held_due(link: &ConnLink, last_edit: Option<Instant>) {
    loop {
        if link.has_held() {
            let Some(at) = last_edit.map(|l| l + range_interval(link.tier())) else {
                return;
            };
            if Instant::now() < at {
                tokio::time::sleep_until(at.into()).await;
            }
            return;
        }
        link.held_ready.notified().await;
    }
}

fn message_len(m: &Message) -> usize {
    match m {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    }
}
