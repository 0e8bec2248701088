//! Every attack of #15 at once against one server, while an honest client keeps editing: its
//! acks keep coming, `/healthz` keeps answering, the server's peak memory stays under a stated
//! bound, and after kill -9 nothing it was acked is lost. Each attack's own regression test lives
//! with its component; this one shows they hold together.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value as Json, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::harness::*;

/// The server's peak resident memory may grow by at most this much while every attack runs. The
/// attacks would take far more without their limits (300 re-joins of a large document alone
/// queued 256 MB; 8 unfinished uploads held 380 MB).
const PEAK_GROWTH_BOUND: u64 = 384 * 1024 * 1024;

/// How long the honest client keeps editing after every attack has been sent.
const AFTER_ATTACKS: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_client_keeps_editing_while_every_attack_runs() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut server = Server::start(dir.path(), &[])?;
    let pid = server.child.id();
    let addr = server.addr.clone();
    let base_peak = peak_rss(pid)?;

    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let honest = tokio::spawn(honest_editor(
        server.url(&token("honest")),
        stop.clone(),
        acks.clone(),
    ));
    let health = tokio::spawn(health_checks(addr.clone(), stop.clone()));

    // Wait for the honest client to be editing before the attacks start.
    while acks.load(Ordering::Relaxed) < 5 {
        if honest.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let url = |user: &str| server.url(&token(user));
    let attacks = tokio::try_join!(
        deep_document(url("mallory-deep")),
        stale_edits(url("mallory-stale")),
        large_document_and_rejoins(url("mallory-big"), url("viewer-big"), url("joiner-big")),
        previews_of_missing_sessions(url("mallory-preview")),
        session_spam(url("mallory-spam")),
        idle_connections(&server, 300),
        silent_sockets(addr.clone(), 300),
        unfinished_uploads(addr.clone(), 8),
        picture_bombs(addr.clone(), 4),
    );
    let mid = acks.load(Ordering::Relaxed);
    let attack_result = attacks.map(|_| ());
    tokio::time::sleep(AFTER_ATTACKS).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, title) = honest.await.context("honest editor panicked")??;
    health.await.context("health checks panicked")??;
    attack_result?;

    let peak = peak_rss(pid)?;
    eprintln!(
        "hostile: {acked} honest edits acked ({mid} by the end of the attacks); server peak RSS \
         {} MiB → {} MiB",
        base_peak >> 20,
        peak >> 20
    );
    if acked <= mid || mid < 5 {
        bail!("the honest client's acks stopped: {mid} during the attacks, {acked} in all");
    }
    if peak.saturating_sub(base_peak) > PEAK_GROWTH_BOUND {
        bail!(
            "server peak memory grew by {} MiB, over the {} MiB bound",
            (peak - base_peak) >> 20,
            PEAK_GROWTH_BOUND >> 20
        );
    }

    // Nothing acked is lost: kill -9, restart, read the honest session back.
    server.kill9();
    let server = Server::start(dir.path(), &[])?;
    let state = server.get_json(&session_path("honest"), "honest").await?;
    if state["version"] != acked || state["state"]["title"] != title.as_str() {
        bail!(
            "after kill -9: version {} title {:?}, acked {acked} edits ending in {title:?}",
            state["version"],
            state["state"]["title"]
        );
    }
    Ok(())
}

/// Peak resident memory of process `pid` in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmHWM")?;
    Ok(kb * 1024)
}

/// Types into the session title one character an edit, one edit in flight, waiting exactly as
/// told on every `rate_limited`. Returns the acked version and the title it expects.
async fn honest_editor(
    url: String,
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicU64>,
) -> Result<(u64, String)> {
    let mut c = Client::connect(&url).await?;
    let joined = c.join("honest", "h").await?;
    let mut version = joined["version"].as_u64().unwrap_or(0);
    let mut title = String::new();
    let mut seq = 0;
    let letters: Vec<char> = "the quick brown fox jumps over the lazy dog "
        .chars()
        .collect();
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let ch = letters[(seq as usize) % letters.len()];
        let ops = json!([{"op":"text","path":["title"],"pos":title.chars().count(),"ins":ch.to_string()}]);
        loop {
            c.op("honest", version, seq, ops.clone()).await?;
            let reply = reply_to(&mut c, "honest").await?;
            match reply["type"].as_str() {
                Some("ack") => {
                    version = reply["version"].as_u64().context("ack without version")?;
                    title.push(ch);
                    acks.store(version, Ordering::Relaxed);
                    break;
                }
                Some("error") if reply["code"] == "rate_limited" => {
                    let wait = reply["retry_after_ms"].as_u64().unwrap_or(10);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                _ => bail!("honest edit {seq} refused: {reply}"),
            }
        }
    }
    Ok((version, title))
}

/// The next ack or error for `session`, skipping presence, participants and the like.
async fn reply_to(c: &mut Client, session: &str) -> Result<Json> {
    loop {
        let v = c.recv().await.context("no reply to an honest edit")?;
        if matches!(v["type"].as_str(), Some("ack" | "error")) {
            if v["type"] == "error" && v["session"].is_string() && v["session"] != session {
                continue;
            }
            return Ok(v);
        }
    }
}

/// `/healthz` answers 200 throughout (each within the test client's timeout).
async fn health_checks(addr: String, stop: Arc<AtomicBool>) -> Result<()> {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let (status, body) = http_get(&addr, "/healthz", None)
            .await
            .with_context(|| format!("/healthz did not answer (check {n})"))?;
        if status != 200 {
            bail!("/healthz answered {status}: {body}");
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A value nested `depth` objects deep.
fn nested(depth: usize) -> Json {
    let mut v = json!(1);
    for _ in 0..depth {
        v = json!({ "a": v });
    }
    v
}

/// Finding 1: a value nested past depth 64 (built in two edits, each within the frame limits)
/// is refused, and the session can still be joined afterwards.
async fn deep_document(url: String) -> Result<()> {
    let mut c = Client::connect(&url).await?;
    c.join("deep", "d").await?;
    let base = c
        .edit(
            "deep",
            0,
            1,
            json!([{"op":"set","path":["meta","x"],"value":nested(40)}]),
        )
        .await?;
    let mut path = vec![json!("meta"), json!("x")];
    path.extend(std::iter::repeat_n(json!("a"), 39));
    path.push(json!("b"));
    c.op(
        "deep",
        base,
        2,
        json!([{"op":"set","path":path,"value":nested(100)}]),
    )
    .await?;
    let second = reply_to(&mut c, "deep").await?;
    if second["type"] == "ack" {
        bail!("a document 142 levels deep was accepted: {second}");
    }
    let mut again = Client::connect(&url).await?;
    again
        .join("deep", "d2")
        .await
        .context("rejoining the deep session")?;
    Ok(())
}

/// Finding 2: large edits based many versions back.
async fn stale_edits(url: String) -> Result<()> {
    let mut c = Client::connect(&url).await?;
    c.join("stale", "s").await?;
    let mut version = 0;
    for seq in 1..=24 {
        version = c
            .edit(
                "stale",
                version,
                seq,
                json!([{"op":"set","path":["meta",format!("k{seq}")],"value":seq}]),
            )
            .await?;
    }
    for seq in 25..=26 {
        let ops: Vec<Json> = (0..4_500)
            .map(|i| json!({"op":"set","path":["meta",format!("k{}", i % 24 + 1)],"value":i}))
            .collect();
        c.op("stale", 0, seq, Json::Array(ops)).await?;
        reply_to(&mut c, "stale").await?;
    }
    Ok(())
}

/// Findings 3 and 4: a document of ~2 MB can be joined, and a viewer that never reads sends 300
/// joins of it.
async fn large_document_and_rejoins(owner: String, viewer: String, joiner: String) -> Result<()> {
    let mut c = Client::connect(&owner).await?;
    c.join("big", "b").await?;
    let mut version = 0;
    let chunk = "x".repeat(200 * 1024);
    for seq in 1..=10 {
        loop {
            c.op(
                "big",
                version,
                seq,
                json!([{"op":"set","path":["meta",format!("b{seq}")],"value":chunk}]),
            )
            .await?;
            let r = reply_to(&mut c, "big").await?;
            if r["type"] == "ack" {
                version = r["version"].as_u64().context("ack without version")?;
                break;
            }
            if r["code"] != "rate_limited" {
                bail!("building the large document: {r}");
            }
            let wait = r["retry_after_ms"].as_u64().unwrap_or(10);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
    let mut other = Client::connect(&joiner).await?;
    let joined = other
        .join("big", "j")
        .await
        .context("joining a 2 MB document")?;
    if joined["version"] != version {
        bail!(
            "joined the large document at {} not {version}",
            joined["version"]
        );
    }
    // The stalled viewer: 300 joins, never reading. Its socket stays open until the test ends
    // (the server may close it; that is fine).
    let mut v = Client::connect(&viewer).await?;
    for _ in 0..300 {
        if v.send(json!({"type":"join","session":"big","client":"v"}))
            .await
            .is_err()
        {
            break;
        }
    }
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(v);
    });
    Ok(())
}

/// Finding 5: live previews of 2,000 sessions that do not exist.
async fn previews_of_missing_sessions(url: String) -> Result<()> {
    let mut c = Client::connect(&url).await?;
    for i in 0..2_000 {
        let sub = json!({"type":"preview_subscribe","session":format!("missing-{i}")});
        // The server may close this socket for abuse; that is a fine outcome.
        if c.send(sub).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// Finding 9: one connection creating sessions as fast as it can.
async fn session_spam(url: String) -> Result<()> {
    let mut c = Client::connect(&url).await?;
    for i in 0..1_024 {
        if c.send(json!({"type":"join","session":format!("spam-{i}"),"client":"s"}))
            .await
            .is_err()
        {
            break;
        }
    }
    Ok(())
}

/// Finding 8: many joined connections that then do nothing.
async fn idle_connections(server: &Server, n: usize) -> Result<()> {
    let mut idle = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = server.connect(&format!("idle-{i}")).await?;
        c.join("idle", &format!("i{i}")).await?;
        idle.push(c);
    }
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(idle);
    });
    Ok(())
}

/// Finding 6: sockets that connect and never send a request.
async fn silent_sockets(addr: String, n: usize) -> Result<()> {
    let mut socks = Vec::with_capacity(n);
    for _ in 0..n {
        socks.push(TcpStream::connect(&addr).await?);
    }
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(socks);
    });
    Ok(())
}

/// Finding 6: uploads that announce 47 MiB and stop after a few bytes.
async fn unfinished_uploads(addr: String, n: usize) -> Result<()> {
    let mut socks = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(&addr).await?;
        let head = format!(
            "POST /v1/assets HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: image/png\r\nContent-Length: {}\r\n\r\n",
            token(&format!("mallory-upload-{i}")),
            47 * 1024 * 1024
        );
        s.write_all(head.as_bytes()).await?;
        s.write_all(&[0u8; 4096]).await?;
        socks.push(s);
    }
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(socks);
    });
    Ok(())
}

/// Finding 6: small PNGs that claim 10000×10000 pixels.
async fn picture_bombs(addr: String, n: usize) -> Result<()> {
    let bomb = media::png_bomb(10_000, 10_000)?;
    for i in 0..n {
        let r = media::request(
            &addr,
            "POST",
            "/v1/assets",
            Some(&format!("mallory-bomb-{i}")),
            Some(&bomb),
            &[],
        )
        .await;
        // Refused, or still queued behind the unfinished uploads' permits when the client gives
        // up: either way it must not take the server's async threads with it. The honest client
        // and /healthz are the judges (the bomb's own refusal is tested in http_limits).
        match r {
            Ok(r) => eprintln!("hostile: picture bomb {i} answered {}", r.status),
            Err(e) => eprintln!("hostile: picture bomb {i}: {e}"),
        }
    }
    Ok(())
}
