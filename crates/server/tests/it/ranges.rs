//! Ranges (docs/PROTOCOL.md "Ranges"): consecutive versions composed into one `op` for a
//! connection that asked for them and can't take them one by one — a `fair` or `poor` reader, a
//! reader that fell behind — never dropping or reordering a version.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use montage_ot::{Op, Value};
use serde_json::json;

use crate::harness::*;

backend_tests!(
    a_slider_drag_reaches_a_poor_reader_as_a_few_ranges_and_the_same_document,
    a_stalled_reader_that_takes_ranges_catches_up_instead_of_being_dropped,
);

/// What one reader saw: `op` frames, those that were ranges, their bytes, and its document.
#[derive(Debug)]
struct Seen {
    frames: usize,
    ranges: usize,
    bytes: usize,
    doc: Value,
}

/// Joins `session` asking for ranges (or not) after hinting `mbps`; returns the joined state and
/// version.
async fn reader(
    server: &Server,
    user: &str,
    mbps: f64,
    ranges: bool,
) -> Result<(Client, Value, u64)> {
    let mut c = server.connect(user).await?;
    c.send(json!({"type":"quality","downlink_mbps":mbps,"rid":"q"}))
        .await?;
    c.recv_type("tier").await?;
    c.send(json!({"type":"join","session":"s","client":user,"ranges":ranges}))
        .await?;
    let j = c.recv_type("joined").await?;
    let state: Value = serde_json::from_value(j["state"].clone())?;
    Ok((c, state, j["version"].as_u64().context("version")?))
}

/// The next frame, waiting up to a minute (the test kit gives up after 10 s; a stalled reader's
/// backlog on a loaded machine may take longer to drain).
async fn recv_patiently(c: &mut Client) -> Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match c.recv().await {
            Ok(m) => return Ok(m),
            Err(e) if Instant::now() < deadline && e.to_string().contains("timed out") => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sends an edit and waits for its ack (skipping other frames); returns the version.
async fn edit_patiently(c: &mut Client, seq: u64, ops: serde_json::Value) -> Result<u64> {
    c.op("s", 0, seq, ops).await?;
    loop {
        let m = recv_patiently(c).await?;
        ensure!(m["type"] != "error", "{m}");
        if m["type"] == "ack" && m["seq"] == seq {
            return m["version"].as_u64().context("version");
        }
    }
}

/// Reads `op` frames, applying each, until the document has `meta.done`. Every frame must start
/// right after the version before it.
async fn follow(mut c: Client, mut doc: Value, mut version: u64) -> Result<Seen> {
    let mut seen = Seen {
        frames: 0,
        ranges: 0,
        bytes: 0,
        doc: Value::Null,
    };
    loop {
        let m = recv_patiently(&mut c).await?;
        if m["type"] != "op" {
            continue;
        }
        let to = m["version"].as_u64().context("version")?;
        let from = m["from"].as_u64().unwrap_or(to);
        ensure!(
            from == version + 1 && from <= to,
            "versions {from}..={to} after {version}"
        );
        if m.get("from").is_some() {
            seen.ranges += 1;
        }
        seen.frames += 1;
        seen.bytes += m.to_string().len();
        let op: Op = serde_json::from_value(m["ops"].clone())?;
        op.apply(&mut doc)?;
        version = to;
        if doc.at(montage_ot::path!["meta", "done"].segs()).is_some() {
            seen.doc = doc;
            return Ok(seen);
        }
    }
}

async fn a_slider_drag_reaches_a_poor_reader_as_a_few_ranges_and_the_same_document(
    b: Backend,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let flags = ["--edits-per-sec", "10000", "--default-link-role=editor"];
    let server = Server::start(b, dir.path(), &flags).await?;
    let mut ann = server.connect("ann").await?;
    ann.join("s", "ann").await?;
    let mut bob = server.connect("bob").await?;
    bob.join("s", "bob").await?;
    // (user, hinted Mbps, asks for ranges)
    let readers = [
        ("poor", 1.0, true),
        ("fair", 7.0, true),
        ("excellent", 100.0, true),
        ("plain", 100.0, false),
    ];
    let mut tasks = Vec::new();
    for (user, mbps, ranges) in readers {
        let (c, doc, v) = reader(&server, user, mbps, ranges).await?;
        tasks.push((user, tokio::spawn(follow(c, doc, v))));
    }
    // Ann drags a slider (100 steps a second for 3 s) while Bob types into the title: edits of
    // two authors interleave, each made on a stale base the server rebases.
    const STEPS: u64 = 300;
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut bob_seq = 0;
    for i in 1..=STEPS {
        tick.tick().await;
        ann.op(
            "s",
            0,
            i,
            json!([{"op":"set","path":["meta","slider"],"value":i}]),
        )
        .await?;
        if i % 10 == 0 {
            bob_seq += 1;
            bob.op(
                "s",
                0,
                bob_seq,
                json!([{"op":"text","path":["title"],"pos":0,"ins":"ab"}]),
            )
            .await?;
        }
    }
    let drag = start.elapsed().as_secs_f64();
    // Every edit of both was applied; then the last one, after all of them.
    for (c, n) in [(&mut ann, STEPS), (&mut bob, bob_seq)] {
        let mut acks = 0;
        while acks < n {
            let m = c.recv().await?;
            ensure!(m["type"] != "error", "{m}");
            acks += u64::from(m["type"] == "ack");
        }
    }
    ann.op(
        "s",
        0,
        STEPS + 1,
        json!([{"op":"set","path":["meta","done"],"value":true}]),
    )
    .await?;
    while ann.recv().await?["type"] != "ack" {}
    let versions = STEPS + bob_seq + 1;
    let mut seen = Vec::new();
    for (user, t) in tasks {
        let s = tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .with_context(|| format!("{user} never saw the last edit"))???;
        seen.push((user, s));
    }
    // Everyone ends with the server's document.
    let mut late = server.connect("late").await?;
    let head: Value = serde_json::from_value(late.join("s", "late").await?["state"].clone())?;
    for (user, s) in &seen {
        assert_eq!(s.doc, head, "{user} ends with the server's document");
    }
    let get = |u: &str| &seen.iter().find(|(n, _)| *n == u).expect("reader").1;
    let (poor, fair, plain) = (get("poor"), get("fair"), get("plain"));
    // The client that did not ask gets every version as its own frame.
    assert_eq!(
        plain.frames as u64, versions,
        "plain: one frame per version"
    );
    assert_eq!(plain.ranges, 0);
    // A poor reader gets about one frame a second, a fair one four: ranges, not hundreds.
    let cap = |per_sec: f64| (drag * per_sec).ceil() as usize + 3;
    assert!(poor.ranges >= 1 && fair.ranges >= 1, "{poor:?} {fair:?}");
    assert!(
        poor.frames <= cap(1.0),
        "poor: {} frames for {versions} versions in {drag:.1}s",
        poor.frames
    );
    assert!(
        fair.frames <= cap(4.0),
        "fair: {} frames for {versions} versions in {drag:.1}s",
        fair.frames
    );
    assert!(
        poor.bytes * 10 < plain.bytes,
        "poor: {} bytes against {} one by one",
        poor.bytes,
        plain.bytes
    );
    Ok(())
}

/// The reader of `a_stalled_reader_is_demoted_then_dropped_while_others_keep_up` (presence.rs),
/// which is dropped, stalls here beside one that asked for ranges: that one is kept, and once it
/// reads again it catches up with a range and ends with the document.
async fn a_stalled_reader_that_takes_ranges_catches_up_instead_of_being_dropped(
    b: Backend,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(
        b,
        dir.path(),
        &[
            "--send-queue",
            "64",
            "--send-queue-bytes",
            "2000000",
            "--bytes-per-sec",
            "100000000",
            "--edits-per-sec",
            "10000",
        ],
    )
    .await?;
    let mut w = server.connect("writer").await?;
    w.join("s", "w").await?;
    let mut plain = server.connect("plain").await?;
    plain.join("s", "plain").await?;
    let (ranged, doc, version) = reader(&server, "ranged", 100.0, true).await?;
    // Neither reads from here. The writer sets a 200 KB value again and again (a slider over a
    // large field) until the plain reader is dropped for its full queue (2 MB here) once the
    // kernel's socket buffers are full too.
    let chunk = "x".repeat(200_000);
    let mut seq = 0u64;
    let mut dropped = false;
    // The next 200 KB write, as edit `seq`.
    let blob =
        |seq: u64| json!([{"op":"set","path":["meta","blob"],"value":format!("{seq}{chunk}")}]);
    for _ in 0..300 {
        seq += 1;
        edit_patiently(&mut w, seq, blob(seq)).await?;
        if server.metric("montage_dropped_slow_total").await? >= 1 {
            dropped = true;
            break;
        }
    }
    ensure!(
        dropped,
        "the plain stalled reader was never dropped ({seq} edits)"
    );
    // A few more, then the last.
    for _ in 0..5 {
        seq += 1;
        edit_patiently(&mut w, seq, blob(seq)).await?;
    }
    seq += 1;
    edit_patiently(
        &mut w,
        seq,
        json!([{"op":"set","path":["meta","done"],"value":true}]),
    )
    .await?;
    assert_eq!(
        server.metric("montage_dropped_slow_total").await?,
        1,
        "only the reader without ranges was dropped"
    );
    let seen = tokio::time::timeout(Duration::from_secs(120), follow(ranged, doc, version))
        .await
        .context("the stalled reader never caught up")??;
    assert!(seen.ranges >= 1, "{seen:?}");
    assert!(
        (seen.frames as u64) < seq,
        "{} frames for {seq} versions",
        seen.frames
    );
    let mut late = server.connect("late").await?;
    let head: Value = serde_json::from_value(late.join("s", "late").await?["state"].clone())?;
    assert_eq!(seen.doc, head);
    drop(plain);
    Ok(())
}
