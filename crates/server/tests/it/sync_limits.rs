//! Media Sync's limits (DESIGN §9.2, issue #15): document size and depth, the transform budget,
//! documents larger than a frame, and repeated joins.

use anyhow::Result;
use serde_json::{Value as Json, json};

use crate::harness::*;

backend_tests!(
    a_too_deep_edit_is_refused_and_a_deep_stored_document_still_loads,
    an_edit_past_the_size_cap_is_too_large_and_not_applied,
    a_stale_huge_edit_is_a_conflict_carrying_the_head,
    a_two_megabyte_document_is_joined_by_a_second_client,
    repeated_joins_do_not_send_the_state_again,
);

/// `{"a":{"a":…1…}}`, `levels` objects deep.
fn nested(levels: usize) -> Json {
    (0..levels).fold(json!(1), |v, _| json!({ "a": v }))
}

fn set_meta(key: &str, value: Json) -> Json {
    json!([{"op":"set","path":["meta",key],"value":value}])
}

async fn a_too_deep_edit_is_refused_and_a_deep_stored_document_still_loads(
    b: Backend,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    // What an older server let through (#15: a 64-segment path plus a 124-level value): a
    // document nested ~190 levels deep, stored as that server stored it.
    {
        let store = b.open_store(dir.path()).await?;
        let new = media_services::store::NewSession::new("u1", montage_protocol::Role::Viewer);
        store.create_session("old", new).await?;
        let mut doc = serde_json::to_value(montage_ot::Value::new_document())?;
        doc["meta"]["deep"] = nested(188);
        let snapshot = media_services::store::Snapshot {
            version: 0,
            state: serde_json::to_string(&doc)?,
        };
        store.save_snapshot("old", &snapshot).await?;
    }
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut u1 = server.connect("u1").await?;

    // Past the depth cap: refused, not applied.
    u1.join("film", "c1").await?;
    let e = u1
        .expect_error(
            json!({"type":"op","session":"film","base":0,"seq":1,"ops":set_meta("k", nested(63))}),
            "too_large",
        )
        .await?;
    assert!(e["message"].as_str().unwrap_or("").contains("64"), "{e}");
    assert_eq!(u1.edit("film", 0, 2, set_meta("k", nested(62))).await?, 1);

    // The old deep document loads: joined (with `since`, so this client need not parse it),
    // read over HTTP, previewed and edited.
    u1.send(json!({"type":"join","session":"old","client":"c1","since":0}))
        .await?;
    let j = u1.recv_type("joined").await?;
    assert_eq!(
        (j["version"].clone(), j["ops"].clone()),
        (json!(0), json!([]))
    );
    let (status, body) = server.get("/v1/sessions/old", Some("u1")).await?;
    assert_eq!(status, 200);
    assert!(
        body.len() > 188 * 6,
        "the whole state: {} bytes",
        body.len()
    );
    let (status, _) = server
        .get("/v1/sessions/old/preview?tier=poor", Some("u1"))
        .await?;
    assert_eq!(status, 200);
    assert_eq!(u1.edit("old", 0, 3, set_meta("k", json!(1))).await?, 1);
    Ok(())
}

async fn an_edit_past_the_size_cap_is_too_large_and_not_applied(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &["--max-doc-bytes", "200000"]).await?;
    let mut u1 = server.connect("u1").await?;
    u1.join("film", "c1").await?;
    let big = "x".repeat(150_000);
    assert_eq!(u1.edit("film", 0, 1, set_meta("a", json!(big))).await?, 1);
    let e = u1
        .expect_error(
            json!({"type":"op","session":"film","base":1,"seq":2,
                "ops":set_meta("b", json!("y".repeat(60_000)))}),
            "too_large",
        )
        .await?;
    assert!(
        e["message"].as_str().unwrap_or("").contains("200000"),
        "{e}"
    );
    // Nothing of it was kept; a smaller edit still fits.
    assert_eq!(u1.edit("film", 1, 3, set_meta("b", json!("y"))).await?, 2);
    let mut u2 = server.connect("u2").await?;
    let j = u2.join("film", "c2").await?;
    assert_eq!(j["version"], 2);
    assert_eq!(j["state"]["meta"]["b"], "y");
    Ok(())
}

async fn a_stale_huge_edit_is_a_conflict_carrying_the_head(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let flags = ["--max-transform-work", "100000"];
    let server = Server::start(b, dir.path(), &flags).await?;
    let mut u1 = server.connect("u1").await?;
    u1.join("film", "c1").await?;
    for seq in 1..=30 {
        let ops = json!([{"op":"text","path":["title"],"pos":0,"ins":"t"}]);
        u1.edit("film", seq - 1, seq, ops).await?;
    }
    let many = |n: usize| -> Json {
        (0..n)
            .map(|i| json!({"op":"set","path":["meta",format!("k{i}")],"value":i}))
            .collect()
    };
    // Within the budget but heavy (1,000 × 30 pairs): applied on the blocking pool.
    assert_eq!(u1.edit("film", 0, 31, many(1_000)).await?, 31);
    // 4,500 components × (30 + 1,000) components behind: past the budget of 100,000 pairs.
    let e = u1
        .expect_error(
            json!({"type":"op","session":"film","base":0,"seq":32,"ops":many(4_500)}),
            "conflict",
        )
        .await?;
    assert_eq!(e["version"], 31, "{e}");
    // Rebased onto the head by its client, the same edit is accepted.
    assert_eq!(u1.edit("film", 31, 33, many(4_500)).await?, 32);
    let (_, metrics) = server.get("/metrics", None).await?;
    let heavy = metrics
        .lines()
        .find_map(|l| l.strip_prefix("montage_heavy_work_total "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(heavy.is_some_and(|n| n >= 1), "{heavy:?}");
    assert_eq!(server.get("/healthz", None).await?, (200, "ok".to_owned()));
    Ok(())
}

async fn a_two_megabyte_document_is_joined_by_a_second_client(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut u1 = server.connect("u1").await?;
    u1.join("film", "c1").await?;
    for seq in 1..=10 {
        let value = json!("z".repeat(200_000));
        u1.edit("film", seq - 1, seq, set_meta(&format!("k{seq}"), value))
            .await?;
    }
    let mut u2 = server.connect("u2").await?;
    let j = u2.join("film", "c2").await?;
    assert_eq!(j["version"], 10);
    assert_eq!(
        j["state"]["meta"]["k10"].as_str().map(str::len),
        Some(200_000)
    );
    // The owner's own connection joins it again from scratch, too.
    let mut u1b = server.connect("u1").await?;
    assert_eq!(u1b.join("film", "c3").await?["version"], 10);
    Ok(())
}

async fn repeated_joins_do_not_send_the_state_again(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut u1 = server.connect("u1").await?;
    u1.join("film", "c1").await?;
    let value = json!("z".repeat(200_000));
    assert_eq!(u1.edit("film", 0, 1, set_meta("k", value)).await?, 1);
    let mut u2 = server.connect("u2").await?;
    let first = u2.join("film", "c2").await?;
    assert!(first["state"].is_object());
    for _ in 0..50 {
        u2.send(json!({"type":"join","session":"film","client":"c2"}))
            .await?;
    }
    let mut answers = Vec::new();
    while answers.len() < 50 {
        answers.push(u2.recv_type("joined").await?);
    }
    for a in &answers {
        assert!(a.get("state").is_none(), "a second copy of the state: {a}");
        assert_eq!(
            (a["version"].clone(), a["ops"].clone()),
            (json!(1), json!([]))
        );
    }
    // Still a participant that gets every edit.
    assert_eq!(u1.edit("film", 1, 2, set_meta("j", json!(2))).await?, 2);
    assert_eq!(u2.recv_type("op").await?["version"], 2);
    Ok(())
}
