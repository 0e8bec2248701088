//! Rate limits as an honest client meets them (DESIGN §9.2): a real typing trace through the
//! server with its default limits, one edit in flight, waiting exactly `retry_after_ms` after
//! each `rate_limited`, reaches the trace's end text and is never closed.

use std::io::Read;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::{Value as Json, json};

use crate::harness::*;

backend_tests!(typing_trace_with_default_limits_reaches_the_end_text,);

/// Keystrokes per edit. The trace's 259,778 transactions, one edit each, would take 72 minutes
/// at the default 60 edits/s; an editor with one edit in flight sends what was typed meanwhile
/// as one edit of several components. 260 a batch gives ~1,000 edits: past the 120-edit burst,
/// so most of them meet the limiter, and about 15 s at the default rate.
const BATCH: usize = 260;

fn load(name: &str) -> Result<Json> {
    let file = format!("{}/../../traces/{name}.json.gz", env!("CARGO_MANIFEST_DIR"));
    let gz = std::fs::read(&file).with_context(|| format!("read {file}"))?;
    let mut s = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut s)?;
    Ok(serde_json::from_str(&s)?)
}

/// The trace's patches, `BATCH` transactions to an edit, as `text` components on `title`.
fn edits(trace: &Json) -> Result<Vec<Json>> {
    let txns = trace["txns"].as_array().ok_or_else(|| anyhow!("txns"))?;
    let mut out = Vec::new();
    for chunk in txns.chunks(BATCH) {
        let mut comps = Vec::new();
        for p in chunk
            .iter()
            .flat_map(|t| t["patches"].as_array().into_iter().flatten())
        {
            let pos = p[0].as_u64().ok_or_else(|| anyhow!("pos in {p}"))?;
            let del = p[1].as_u64().ok_or_else(|| anyhow!("del in {p}"))?;
            let ins = p[2].as_str().ok_or_else(|| anyhow!("ins in {p}"))?;
            if del > 0 {
                comps.push(json!({"op":"text","path":["title"],"pos":pos,"del":del}));
            }
            if !ins.is_empty() {
                comps.push(json!({"op":"text","path":["title"],"pos":pos,"ins":ins}));
            }
        }
        out.push(Json::Array(comps));
    }
    Ok(out)
}

async fn typing_trace_with_default_limits_reaches_the_end_text(b: Backend) -> Result<()> {
    let trace = load("automerge-paper")?;
    let want = trace["endContent"]
        .as_str()
        .ok_or_else(|| anyhow!("endContent"))?;
    let edits = edits(&trace)?;
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut c = server.connect("typist").await?;
    c.join("paper", "t").await?;
    let mut refused = 0usize;
    for (i, ops) in edits.iter().enumerate() {
        let seq = i as u64 + 1;
        loop {
            c.op("paper", i as u64, seq, ops.clone())
                .await
                .with_context(|| format!("sending edit {seq}"))?;
            let v = c
                .recv_type_or_error("ack")
                .await
                .with_context(|| format!("edit {seq} of {} ({refused} refused)", edits.len()))?;
            if v["type"] == "ack" {
                ensure!(v["seq"] == seq && v["version"] == seq, "edit {seq}: {v}");
                break;
            }
            ensure!(v["code"] == "rate_limited", "edit {seq}: {v}");
            let wait = v["retry_after_ms"]
                .as_u64()
                .ok_or_else(|| anyhow!("no retry_after_ms: {v}"))?;
            refused += 1;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
    eprintln!("{} edits, {refused} refused and resent", edits.len());
    let head = server.get_json("/v1/sessions/paper", "typist").await?;
    let got = head["state"]["title"]
        .as_str()
        .ok_or_else(|| anyhow!("no title"))?;
    if got != want {
        bail!(
            "end text differs: {} chars, want {}",
            got.chars().count(),
            want.chars().count()
        );
    }
    Ok(())
}

trait AckOrError {
    async fn recv_type_or_error(&mut self, t: &str) -> Result<Json>;
}

impl AckOrError for Client {
    /// The next frame of type `t` or an error, skipping events.
    async fn recv_type_or_error(&mut self, t: &str) -> Result<Json> {
        loop {
            let v = self.recv().await?;
            if v["type"] == t || v["type"] == "error" {
                return Ok(v);
            }
        }
    }
}
