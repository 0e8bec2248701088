//! HTTP limits (issue #15, DESIGN §9.2), each refused the way an attacker found it open: silent
//! sockets, a socket flood, request bursts, uploads read before any permit, a PNG bomb, the
//! per-user asset quota, and preview subscriptions to sessions that don't exist.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::media::*;
use crate::harness::*;

backend_tests!(
    silent_and_slow_header_sockets_are_closed_after_the_header_timeout,
    the_socket_cap_holds_and_healthz_answers_once_it_frees,
    a_request_burst_is_answered_429_with_retry_after,
    an_upload_waits_for_its_permit_before_its_body_is_read,
    a_png_bomb_is_refused_from_its_header,
    the_asset_quota_is_refused_with_413,
    preview_subscriptions_register_nothing_that_outlives_them,
    a_reader_that_takes_nothing_loses_its_socket,
    one_host_holds_at_most_its_share_of_sockets,
    one_users_uploads_hold_one_permit_at_a_time,
    a_stalled_upload_gives_its_permit_back_without_waiting_for_the_whole_body_timeout,
);

/// Longest any step here may take before the test calls it stuck (a guard, not a measurement).
const STUCK: Duration = Duration::from_secs(20);

/// Reads until the server closes `tcp`; what it wrote on the way.
async fn read_to_close(tcp: &mut TcpStream) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    tokio::time::timeout(STUCK, tcp.read_to_end(&mut out))
        .await
        .context("the server kept the socket open")??;
    Ok(out)
}

/// Reads what has arrived within `wait` (nothing is an empty answer).
async fn read_for(tcp: &mut TcpStream, wait: Duration) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(wait, tcp.read(&mut buf)).await {
        Ok(n) => {
            buf.truncate(n?);
            Ok(buf)
        }
        Err(_) => Ok(Vec::new()),
    }
}

/// Reads until `needle` has arrived.
async fn read_until(tcp: &mut TcpStream, needle: &str) -> Result<String> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    tokio::time::timeout(STUCK, async {
        while !String::from_utf8_lossy(&got).contains(needle) {
            let n = tcp.read(&mut buf).await?;
            if n == 0 {
                bail!(
                    "closed before {needle:?}: {:?}",
                    String::from_utf8_lossy(&got)
                );
            }
            got.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&got).into_owned())
    })
    .await
    .with_context(|| format!("no {needle:?}"))?
}

async fn silent_and_slow_header_sockets_are_closed_after_the_header_timeout(
    b: Backend,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &["--header-timeout-ms", "300"]).await?;
    // Connects and says nothing.
    let mut silent = TcpStream::connect(&server.addr).await?;
    // Starts a request and never finishes its headers.
    let mut slow = TcpStream::connect(&server.addr).await?;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await?;
    read_to_close(&mut silent).await?;
    let answer = read_to_close(&mut slow).await?;
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "{answer:?}"
    );
    // A request that is sent in time is answered, and the idle socket after it closes too.
    let mut ok = TcpStream::connect(&server.addr).await?;
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await?;
    let answer = read_to_close(&mut ok).await?;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{answer:?}"
    );
    Ok(())
}

async fn the_socket_cap_holds_and_healthz_answers_once_it_frees(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(
        b,
        dir.path(),
        &["--max-sockets", "3", "--header-timeout-ms", "60000"],
    )
    .await?;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(&server.addr).await?);
    }
    // Give the listener time to accept all three (set-up, not a measurement).
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The kernel completes the handshake, but the server accepts no fourth socket.
    let mut waiting = TcpStream::connect(&server.addr).await?;
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let early = read_for(&mut waiting, Duration::from_millis(500)).await?;
    assert!(
        early.is_empty(),
        "answered past the cap: {:?}",
        String::from_utf8_lossy(&early)
    );
    // One socket closes: the waiting one is accepted and answered.
    held.pop();
    let answer = read_to_close(&mut waiting).await?;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{answer:?}"
    );
    drop(held);
    let (status, body) = server.get("/healthz", None).await?;
    assert_eq!((status, body.as_str()), (200, "ok"));
    Ok(())
}

async fn a_request_burst_is_answered_429_with_retry_after(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    // One every 4 s, burst 1: slow enough that a busy machine still sends two in time.
    let server = Server::start(b, dir.path(), &["--requests-per-sec", "0.25"]).await?;
    let missing = format!("/v1/assets/{}", "0".repeat(32));
    assert_eq!(get(&server, &missing, Some("u1")).await?.status, 404);
    let r = get(&server, &missing, Some("u1")).await?;
    assert_eq!(r.status, 429, "{:?}", String::from_utf8_lossy(&r.body));
    let retry: u64 = r.header("retry-after").context("no Retry-After")?.parse()?;
    assert!((1..=4).contains(&retry), "Retry-After: {retry}");
    let body = r.json()?;
    assert_eq!(body["type"], "error");
    assert_eq!(body["code"], "rate_limited");
    assert!(
        body["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0),
        "{body}"
    );
    // Another user has a budget of its own, and the health check is never limited.
    assert_eq!(get(&server, &missing, Some("u2")).await?.status, 404);
    let (status, _) = server.get("/healthz", None).await?;
    assert_eq!(status, 200);
    // Requests without a token spend their address's budget.
    assert_eq!(get(&server, &missing, None).await?.status, 401);
    assert_eq!(get(&server, &missing, None).await?.status, 429);
    assert!(server.metric("montage_http_rate_limited_total").await? >= 2);
    Ok(())
}

/// With one upload permit, a second upload is not read (its `Expect: 100-continue` is not
/// answered) while the first holds the permit; a first upload that stalls loses the permit at
/// the body timeout.
async fn an_upload_waits_for_its_permit_before_its_body_is_read(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(
        b,
        dir.path(),
        &[
            "--max-uploads",
            "1",
            // Room for a busy box between the first's permit and the second's question.
            "--body-timeout-ms",
            "5000",
            "--max-upload-bytes",
            &MAX_UPLOAD.to_string(),
        ],
    )
    .await?;
    let png = picture()?;
    let head = |expect: bool| upload_head("u1", png.len(), expect);
    // The first waits for its 100 Continue — it holds the permit then — sends half its body,
    // then stalls. (Sending at once and sleeping a while raced on a busy box: the first could
    // still be before its permit, looking up its session, when the second asked.)
    let mut first = TcpStream::connect(&server.addr).await?;
    first.write_all(head(true).as_bytes()).await?;
    read_until(&mut first, "100 Continue").await?;
    first.write_all(&png[..png.len() / 2]).await?;
    // The second asks before sending its body: nobody reads it while the first holds the permit.
    let mut second = TcpStream::connect(&server.addr).await?;
    second.write_all(head(true).as_bytes()).await?;
    let early = read_for(&mut second, Duration::from_millis(500)).await?;
    assert!(
        early.is_empty(),
        "the second upload's body was wanted before a permit: {:?}",
        String::from_utf8_lossy(&early)
    );
    // The first times out (400) and frees the permit; then the second is read and stored.
    let answer = String::from_utf8_lossy(&read_to_close(&mut first).await?).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("not sent in time"), "{answer}");
    read_until(&mut second, "100 Continue").await?;
    second.write_all(&png).await?;
    let answer = String::from_utf8_lossy(&read_to_close(&mut second).await?).into_owned();
    assert!(answer.contains("201 Created"), "{answer}");
    Ok(())
}

async fn a_png_bomb_is_refused_from_its_header(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    // 100 MP (under the 110 MP cap) in ~100 KiB: 1,000 pixels a byte.
    let bomb = png_bomb(10_000, 10_000)?;
    assert!(bomb.len() < 200_000, "{} bytes", bomb.len());
    let r = upload(&server, Some("u1"), &bomb).await?;
    assert_eq!(r.status, 413, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()?["code"], "too_large");
    // An honest picture still goes in.
    assert_eq!(upload(&server, Some("u1"), &picture()?).await?.status, 201);
    Ok(())
}

async fn the_asset_quota_is_refused_with_413(b: Backend) -> Result<()> {
    let png = picture()?;
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &["--assets-per-user", "2"]).await?;
    for _ in 0..2 {
        assert_eq!(upload(&server, Some("u1"), &png).await?.status, 201);
    }
    let r = upload(&server, Some("u1"), &png).await?;
    assert_eq!(r.status, 413, "{:?}", String::from_utf8_lossy(&r.body));
    let body = r.json()?;
    assert_eq!(body["code"], "too_large");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("quota")),
        "{body}"
    );
    assert_eq!(upload(&server, Some("u2"), &png).await?.status, 201);
    drop(server);

    // Bytes: room for two pictures, not three.
    let dir = tempfile::tempdir()?;
    let room = (png.len() * 2 + png.len() / 2).to_string();
    let server = Server::start(b, dir.path(), &["--asset-bytes-per-user", &room]).await?;
    for _ in 0..2 {
        assert_eq!(upload(&server, Some("u1"), &png).await?.status, 201);
    }
    let r = upload(&server, Some("u1"), &png).await?;
    assert_eq!((r.status, &r.json()?["code"]), (413, &json!("too_large")));
    Ok(())
}

async fn preview_subscriptions_register_nothing_that_outlives_them(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &["--default-link-role", "none"]).await?;
    let mut owner = server.connect("u1").await?;
    owner.join("film", "c1").await?;
    let mut c = server.connect("u2").await?;
    for i in 0..50 {
        c.expect_error(
            json!({"type":"preview_subscribe","session":format!("missing-{i}")}),
            "not_found",
        )
        .await?;
    }
    // A private session u2 may not see registers nothing either.
    c.expect_error(
        json!({"type":"preview_subscribe","session":"film"}),
        "forbidden",
    )
    .await?;
    assert_eq!(server.metric("montage_preview_watches").await?, 0);
    // The owner's subscription is one entry, gone when it unsubscribes.
    owner
        .send(json!({"type":"preview_subscribe","session":"film"}))
        .await?;
    owner.recv_type("preview").await?;
    assert_eq!(server.metric("montage_preview_watches").await?, 1);
    owner
        .send(json!({"type":"preview_unsubscribe","session":"film"}))
        .await?;
    wait_for_watches(&server, 0).await?;
    // ... and when its connection goes.
    owner
        .send(json!({"type":"preview_subscribe","session":"film"}))
        .await?;
    owner.recv_type("preview").await?;
    assert_eq!(server.metric("montage_preview_watches").await?, 1);
    drop(owner);
    wait_for_watches(&server, 0).await
}

/// Polls the watch count until it is `n` (unsubscribing and disconnecting are asynchronous).
async fn wait_for_watches(server: &Server, n: i64) -> Result<()> {
    let mut last = -1;
    for _ in 0..200 {
        last = server.metric("montage_preview_watches").await?;
        if last == n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{last} preview watches, expected {n}")
}

/// Finding 6's slow reader: a client that asks for responses and never reads them gives its
/// socket back once a write has made no progress for `--write-timeout-ms`.
async fn a_reader_that_takes_nothing_loses_its_socket(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &["--write-timeout-ms", "500"]).await?;
    let (status, js) = server.get("/app.js", None).await?;
    assert_eq!(status, 200);
    // A small receive window, and 100 pipelined requests for the 120 KB bundle: far more than
    // the socket buffers on both sides hold.
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.set_recv_buffer_size(4096)?;
    let mut tcp = sock.connect(server.addr.parse()?).await?;
    let requests = 100;
    let ask = "GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n".repeat(requests);
    tcp.write_all(ask.as_bytes()).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Now read: what was buffered arrives, then the close. Without the deadline every response
    // would come (and the socket stay open until the header timeout).
    let got = read_to_close(&mut tcp).await?;
    assert!(
        got.len() < requests * js.len() / 2,
        "{} bytes of {} responses arrived: the server kept writing to a reader that took nothing",
        got.len(),
        requests
    );
    let (status, _) = server.get("/healthz", None).await?;
    assert_eq!(status, 200);
    Ok(())
}

/// One host can't take every socket: past `--sockets-per-address` its new sockets are closed
/// at once, and they are accepted again once its others close.
async fn one_host_holds_at_most_its_share_of_sockets(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &["--sockets-per-address", "4"]).await?;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(&server.addr).await?);
    }
    // Let the server accept them all before the fifth.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fifth = TcpStream::connect(&server.addr).await?;
    let closed = tokio::time::timeout(Duration::from_secs(5), fifth.read(&mut [0u8; 16])).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a fifth socket from the same host was kept: {closed:?}"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = server.get("/healthz", None).await?;
    assert_eq!((status, body.as_str()), (200, "ok"));
    Ok(())
}

/// The head of an upload of `len` bytes by `user`.
fn upload_head(user: &str, len: usize, expect: bool) -> String {
    format!(
        "POST /v1/assets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: image/png\r\nContent-Length: {len}\r\n{}Connection: close\r\n\r\n",
        token(user),
        if expect {
            "Expect: 100-continue\r\n"
        } else {
            ""
        }
    )
}

/// Finding 6's upload starvation: a user's slow uploads take one upload permit at a time, so
/// another user's upload goes ahead instead of waiting behind them.
async fn one_users_uploads_hold_one_permit_at_a_time(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(
        b,
        dir.path(),
        &["--max-uploads", "2", "--body-timeout-ms", "60000"],
    )
    .await?;
    let png = picture()?;
    // u1 starts two uploads and stalls both halfway.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(&server.addr).await?;
        s.write_all(upload_head("u1", png.len(), false).as_bytes())
            .await?;
        s.write_all(&png[..png.len() / 2]).await?;
        stalled.push(s);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // u2's upload gets the second permit at once.
    let mut other = TcpStream::connect(&server.addr).await?;
    other
        .write_all(upload_head("u2", png.len(), true).as_bytes())
        .await?;
    let early = read_for(&mut other, Duration::from_secs(5)).await?;
    let early = String::from_utf8_lossy(&early).into_owned();
    assert!(
        early.contains("100 Continue"),
        "u2's upload waited behind u1's stalled ones: {early:?}"
    );
    other.write_all(&png).await?;
    let answer = String::from_utf8_lossy(&read_to_close(&mut other).await?).into_owned();
    assert!(answer.contains("201 Created"), "{answer}");
    drop(stalled);
    Ok(())
}

/// Finding 6's unfinished uploads: a body that stops arriving is refused once the header
/// timeout passes without a byte of it, well before the whole body's `--body-timeout-ms`.
async fn a_stalled_upload_gives_its_permit_back_without_waiting_for_the_whole_body_timeout(
    b: Backend,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &["--header-timeout-ms", "1000"]).await?;
    let png = picture()?;
    let mut s = TcpStream::connect(&server.addr).await?;
    s.write_all(upload_head("u1", png.len(), false).as_bytes())
        .await?;
    s.write_all(&png[..png.len() / 2]).await?;
    let answer = String::from_utf8_lossy(&read_to_close(&mut s).await?).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("not sent in time"), "{answer}");
    Ok(())
}
