//! Delta compression ratios on the slider-drag trace and on automerge-paper in 1-second
//! batches: `cargo run --release -p montage-ot --example delta_ratio`.

use std::io::Read;

use montage_ot::{Component, MediaDelta, Op, path};

fn trace_path(name: &str) -> String {
    format!("{}/../../traces/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn report(name: &str, deltas: &[MediaDelta]) {
    let (mut c0, mut c1, mut b0, mut b1) = (0, 0, 0, 0);
    for d in deltas {
        let z = d.compress();
        c0 += d.component_count();
        c1 += z.component_count();
        b0 += d.json_bytes();
        b1 += z.json_bytes();
    }
    println!(
        "{name}: {} batches; components {c0} → {c1} ({:.1}×); JSON bytes {b0} → {b1} ({:.1}×)",
        deltas.len(),
        c0 as f64 / c1.max(1) as f64,
        b0 as f64 / b1.max(1) as f64
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Slider drag: one batch per second of events, and the whole drag as one batch.
    let drag: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(trace_path("slider-drag.json"))?)?;
    let events = drag["events"].as_array().ok_or("events")?;
    let mut per_second: Vec<MediaDelta> = Vec::new();
    let mut all = MediaDelta::default();
    let mut second = u64::MAX;
    for e in events {
        let op = Op::from_json(&e["ops"])?;
        let s = e["time_ms"].as_u64().unwrap_or(0) / 1000;
        if s != second {
            per_second.push(MediaDelta::new(0, Vec::new()));
            second = s;
        }
        if let Some(d) = per_second.last_mut() {
            d.operations.push(op.clone());
        }
        all.operations.push(op);
    }
    report("slider-drag, whole drag", std::slice::from_ref(&all));
    report("slider-drag, 1 s batches", &per_second);

    // automerge-paper. Its timestamps span 0.3 s in all (the recording kept no real timing), so
    // batching by them gives one batch; batches of 6 and 60 transactions stand for a second of
    // typing at about 70 and 700 words a minute.
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(trace_path("automerge-paper.json.gz"))?)
        .read_to_string(&mut s)?;
    let t: serde_json::Value = serde_json::from_str(&s)?;
    let txns = t["txns"].as_array().ok_or("txns")?;
    let mut by_time: Vec<MediaDelta> = Vec::new();
    let mut by_6: Vec<MediaDelta> = Vec::new();
    let mut by_60: Vec<MediaDelta> = Vec::new();
    let mut key = String::new();
    for (i, txn) in txns.iter().enumerate() {
        let k = txn["time"]
            .as_str()
            .unwrap_or("")
            .get(..19)
            .unwrap_or("")
            .to_owned();
        if k != key {
            by_time.push(MediaDelta::default());
            key = k;
        }
        if i % 6 == 0 {
            by_6.push(MediaDelta::default());
        }
        if i % 60 == 0 {
            by_60.push(MediaDelta::default());
        }
        let mut comps = Vec::new();
        for p in txn["patches"].as_array().ok_or("patches")? {
            let pos = p[0].as_u64().unwrap_or(0) as usize;
            let del = p[1].as_u64().unwrap_or(0) as usize;
            let ins = p[2].as_str().unwrap_or("");
            if del > 0 {
                comps.push(Component::text_delete(path!["title"], pos, del));
            }
            if !ins.is_empty() {
                comps.push(Component::text_insert(path!["title"], pos, ins));
            }
        }
        let op = Op::new(comps);
        for batches in [&mut by_time, &mut by_6, &mut by_60] {
            if let Some(b) = batches.last_mut() {
                b.operations.push(op.clone());
            }
        }
    }
    report("automerge-paper, by its timestamps' second", &by_time);
    report("automerge-paper, 6 transactions a batch", &by_6);
    report("automerge-paper, 60 transactions a batch", &by_60);
    Ok(())
}
