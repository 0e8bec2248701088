//! The wire protocol of DESIGN §3 against in-process servers, on every backend.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use futures_util::StreamExt;
use serde_json::{Value as Json, json};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::*;

backend_tests!(
    collaboration_workflow,
    collaboration_workflow_with_a_binary_client,
    json_and_binary_clients_converge_to_the_replayed_log,
    binary_frames_are_negotiated_and_checked,
    idempotent_resend_and_many_sessions_per_connection,
    every_error_code,
    rate_limits_answer_then_close_with_1008,
    demotion_applies_to_the_very_next_message,
    malformed_frames_never_drop_the_connection,
    forged_expired_and_alg_none_tokens_get_4401,
    concurrent_stale_edits_converge_to_the_replayed_log,
    a_reader_that_stops_reading_is_dropped_and_others_go_on,
    connections_per_user_are_capped_with_429,
);

fn set(path: serde_json::Value, value: serde_json::Value) -> serde_json::Value {
    json!([{"op":"set","path":path,"value":value}])
}

async fn collaboration_workflow(b: Backend) -> Result<()> {
    collaboration_workflow_in(b, false).await
}

/// The same workflow, frame for frame, with u2 speaking `montage.v1.proto` (DESIGN §9.5): the
/// binary frames it gets decode to exactly the JSON ones, and what it sends reaches u1 as if
/// sent in JSON.
async fn collaboration_workflow_with_a_binary_client(b: Backend) -> Result<()> {
    collaboration_workflow_in(b, true).await
}

async fn collaboration_workflow_in(b: Backend, binary_u2: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut u1 = server.connect("u1").await?;
    let j = u1.join("film", "c1").await?;
    assert_eq!(j["version"], 0);
    assert_eq!(j["role"], "owner");
    assert_eq!(j["state"]["canvas"]["width"], 1920);
    let u1_colour = media_services::presence::colour("u1");
    assert_eq!(
        j["participants"],
        json!([{"user":"u1","role":"owner","online":true,"color":u1_colour}])
    );

    let mut u2 = if binary_u2 {
        server.connect_binary("u2").await?
    } else {
        server.connect("u2").await?
    };
    let j2 = u2.join("film", "c2").await?;
    assert_eq!(
        j2["role"], "viewer",
        "a joiner without a grant gets the link role"
    );
    assert_eq!(j2["state"], j["state"]);
    let pj = u1.recv().await?;
    assert_eq!(
        pj,
        json!({"type":"participant_joined","session":"film","user":"u2","role":"viewer",
            "color":media_services::presence::colour("u2")})
    );

    // Owner promotes u2; everyone hears it, the owner with its rid.
    u1.send(json!({"type":"set_role","session":"film","user":"u2","role":"editor","rid":"r1"}))
        .await?;
    let rc = u1.recv().await?;
    assert_eq!(
        rc,
        json!({"type":"role_changed","session":"film","user":"u2","role":"editor","rid":"r1"})
    );
    assert_eq!(
        u2.recv().await?,
        json!({"type":"role_changed","session":"film","user":"u2","role":"editor"})
    );

    // u1 edits; u2 gets the op, u1 the ack (with rid).
    u1.send(
        json!({"type":"op","session":"film","base":0,"seq":1,"rid":7,
        "ops":[{"op":"text","path":["title"],"pos":0,"ins":"Holiday"}]}),
    )
    .await?;
    assert_eq!(
        u1.recv().await?,
        json!({"type":"ack","session":"film","seq":1,"version":1,"rid":7})
    );
    let b = u2.recv().await?;
    assert_eq!(b["type"], "op");
    assert_eq!(
        (b["version"].clone(), b["user"].clone()),
        (json!(1), json!("u1"))
    );

    // u2 edits concurrently at the stale base 0: transformed past version 1.
    let v = u2
        .edit(
            "film",
            0,
            1,
            json!([{"op":"text","path":["title"],"pos":0,"ins":"2026 "}]),
        )
        .await?;
    assert_eq!(v, 2);
    let b = u1.recv().await?;
    assert_eq!(b["version"], 2);
    assert_eq!(
        b["ops"],
        json!([{"op":"text","path":["title"],"pos":7,"ins":"2026 "}])
    );

    // Layers, presence.
    let layer = json!({"id":"l1","kind":"text","text":"Hi","x":0,"y":0,"size":12,"color":"#fff"});
    assert_eq!(
        u2.edit(
            "film",
            2,
            2,
            json!([{"op":"ins","path":["canvas","layers",0],"value":layer}])
        )
        .await?,
        3
    );
    assert_eq!(u1.recv().await?["version"], 3);
    u1.send(json!({"type":"presence","session":"film","data":{"cursor":[1,2]}}))
        .await?;
    assert_eq!(
        u2.recv().await?,
        json!({"type":"presence","session":"film","user":"u1","data":{"cursor":[1,2]}})
    );

    // HTTP state and ops agree with the stream.
    let st = server.get_json("/v1/sessions/film", "u2").await?;
    assert_eq!(st["version"], 3);
    assert_eq!(st["state"]["title"], "Holiday2026 ");
    assert_eq!(st["state"]["canvas"]["layers"][0]["id"], "l1");
    let ops = all_ops(&server.addr, "film", "u2").await?;
    assert_eq!(ops.len(), 3);
    assert_eq!(replay(&ops)?, st["state"]);
    let page = server
        .get_json("/v1/sessions/film/ops?from=2", "u1")
        .await?;
    assert_eq!(page["ops"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["ops"][0]["user"], "u2");

    // Leave: the other side hears it; the leaver's later ops are refused.
    u2.send(json!({"type":"leave","session":"film"})).await?;
    assert_eq!(
        u1.recv().await?,
        json!({"type":"participant_left","session":"film","user":"u2"})
    );
    u2.expect_error(
        json!({"type":"op","session":"film","base":3,"seq":3,"ops":[]}),
        "not_found",
    )
    .await?;

    // Rejoin with `since`: the ops after that version instead of the state.
    u2.send(json!({"type":"join","session":"film","client":"c2","since":1}))
        .await?;
    let j = u2.recv_type("joined").await?;
    assert!(j.get("state").is_none());
    let vs: Vec<_> = j["ops"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["version"].clone())
        .collect();
    assert_eq!(vs, vec![json!(2), json!(3)]);
    assert_eq!(j["role"], "editor");

    // Health and metrics.
    assert_eq!(server.get("/healthz", None).await?, (200, "ok".to_owned()));
    let (status, m) = server.get("/metrics", None).await?;
    assert_eq!(status, 200);
    assert!(m.contains("montage_edits_total 3"), "{m}");
    assert!(m.contains("montage_connections 2"), "{m}");
    assert!(m.contains("montage_ack_latency_seconds_count 3"), "{m}");
    Ok(())
}

async fn idempotent_resend_and_many_sessions_per_connection(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut c = server.connect("alice").await?;
    c.join("a", "c").await?;
    c.join("b", "c").await?;
    let ops = json!([{"op":"add","path":["canvas","width"],"value":1}]);
    assert_eq!(c.edit("a", 0, 1, ops.clone()).await?, 1);
    assert_eq!(c.edit("b", 0, 1, ops.clone()).await?, 1);
    assert_eq!(c.edit("a", 1, 2, ops.clone()).await?, 2);
    // Resent seq 1 (as after a reconnect, with its old base): acked with version 1, not applied.
    assert_eq!(c.edit("a", 0, 1, ops.clone()).await?, 1);
    let st = server.get_json("/v1/sessions/a", "alice").await?;
    assert_eq!(
        (
            st["version"].as_u64(),
            st["state"]["canvas"]["width"].as_f64()
        ),
        (Some(2), Some(1922.0))
    );
    let st = server.get_json("/v1/sessions/b", "alice").await?;
    assert_eq!(st["version"], 1);
    // Also after a reconnect with a new connection.
    let mut c2 = server.connect("alice").await?;
    c2.join("a", "c").await?;
    assert_eq!(c2.edit("a", 0, 2, ops.clone()).await?, 2);
    assert_eq!(c2.edit("a", 2, 3, ops).await?, 3);
    Ok(())
}

async fn every_error_code(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &["--max-frame-bytes", "4096"]).await?;
    let mut owner = server.connect("owner").await?;
    owner.join("s", "o").await?;
    let mut viewer = server.connect("viewer").await?;
    viewer.join("s", "v").await?;

    // bad_request: malformed JSON, wrong shapes, an edit that breaks the document; rid echoed.
    let e = owner
        .expect_error(json!({"type":"teleport","rid":"x1"}), "bad_request")
        .await?;
    assert_eq!(e["rid"], "x1");
    owner.send_raw(Message::text("{not json")).await?;
    assert_eq!(owner.recv_type("error").await?["code"], "bad_request");
    let e = owner
        .expect_error(
            json!({"type":"op","session":"s","base":0,"seq":1,"rid":5,
            "ops":[{"op":"set","path":["canvas","width"],"value":"wide"}]}),
            "bad_request",
        )
        .await?;
    assert_eq!(e["rid"], 5);
    owner
        .expect_error(
            json!({"type":"op","session":"s","base":99,"seq":1,"ops":[]}),
            "bad_request",
        )
        .await?;
    // forbidden: a viewer edits; a non-owner changes roles.
    let e = viewer
        .expect_error(
            json!({"type":"op","session":"s","base":0,"seq":1,"ops":[],"rid":"v1"}),
            "forbidden",
        )
        .await?;
    assert_eq!(e["rid"], "v1");
    viewer
        .expect_error(
            json!({"type":"set_role","session":"s","user":"viewer","role":"owner"}),
            "forbidden",
        )
        .await?;
    // not_found: a session this connection has not joined; an unknown session over HTTP.
    owner
        .expect_error(
            json!({"type":"presence","session":"elsewhere","data":{}}),
            "not_found",
        )
        .await?;
    assert_eq!(server.get("/v1/sessions/nope", Some("owner")).await?.0, 404);
    assert_eq!(
        server.get("/v1/sessions/nope/ops", Some("owner")).await?.0,
        404
    );
    assert_eq!(server.get("/v1/sessions/s", None).await?.0, 401);
    // too_large: a frame over the limit; presence over its limit.
    let big = "x".repeat(5000);
    owner
        .expect_error(
            json!({"type":"presence","session":"s","data":{"blob":big}}),
            "too_large",
        )
        .await?;
    // conflict: the only owner may not demote themself.
    owner
        .expect_error(
            json!({"type":"set_role","session":"s","user":"owner","role":"viewer"}),
            "conflict",
        )
        .await?;
    // The connection survived all of that.
    assert_eq!(
        owner
            .edit(
                "s",
                0,
                1,
                json!([{"op":"set","path":["title"],"value":"ok"}])
            )
            .await?,
        1
    );

    // unauthorized: a token that expires while connected.
    let mut short = Client::connect(&server.url(&token_ttl("brief", 1))).await?;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    short
        .expect_error(
            json!({"type":"join","session":"s","client":"b"}),
            "unauthorized",
        )
        .await?;
    assert_eq!(short.recv_close().await?.0, 4401);
    Ok(())
}

async fn rate_limits_answer_then_close_with_1008(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut c = server.connect("flood").await?;
    c.join("s", "c").await?;
    // Far past 200 messages/s: some get rate_limited (with retry_after_ms), then the socket closes.
    let mut limited = None;
    for _ in 0..3000 {
        if c.send(json!({"type":"presence","session":"s","data":{}}))
            .await
            .is_err()
        {
            break;
        }
    }
    let code = loop {
        match tokio::time::timeout(
            std::time::Duration::from_secs(10),
            futures_util::StreamExt::next(&mut c.ws),
        )
        .await?
        {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str())?;
                if v["code"] == "rate_limited" && limited.is_none() {
                    limited = Some(v);
                }
            }
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break None,
        }
    };
    let limited = limited.expect("no rate_limited error before the close");
    assert!(limited["retry_after_ms"].as_u64().is_some(), "{limited}");
    assert_eq!(code, Some(1008));

    // An honest client — 120 cursor moves and 30 edits a second — is never limited.
    let mut h = server.connect("honest").await?;
    h.join("s2", "h").await?;
    let mut seq = 0;
    for i in 0..150u64 {
        if i % 5 == 0 {
            seq += 1;
            h.op(
                "s2",
                seq - 1,
                seq,
                json!([{"op":"add","path":["canvas","width"],"value":1}]),
            )
            .await?;
        } else {
            h.send(json!({"type":"presence","session":"s2","data":{"i":i}}))
                .await?;
        }
        tokio::time::sleep(std::time::Duration::from_micros(6_600)).await;
    }
    for want in 1..=seq {
        let a = h.recv_type("ack").await?;
        assert_eq!(a["seq"], want);
    }
    Ok(())
}

async fn demotion_applies_to_the_very_next_message(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut o = server.connect("o").await?;
    o.join("s", "o").await?;
    o.send(json!({"type":"set_role","session":"s","user":"e","role":"editor"}))
        .await?;
    o.recv_type("role_changed").await?;
    let mut e = server.connect("e").await?;
    assert_eq!(e.join("s", "e").await?["role"], "editor");
    o.recv_type("participant_joined").await?;
    assert_eq!(
        e.edit("s", 0, 1, set(json!(["title"]), json!("mine")))
            .await?,
        1
    );
    o.recv_type("op").await?;
    o.send(json!({"type":"set_role","session":"s","user":"e","role":"commenter"}))
        .await?;
    o.recv_type("role_changed").await?;
    // e's very next message after the demotion is refused.
    e.send(json!({"type":"op","session":"s","base":1,"seq":2,"ops":[{"op":"set","path":["title"],"value":"again"}]})).await?;
    assert_eq!(e.recv().await?["type"], "role_changed");
    assert_eq!(e.recv().await?["code"], "forbidden");
    // Grants persist across a rejoin; promotion restores editing.
    let mut e2 = server.connect("e").await?;
    assert_eq!(e2.join("s", "e2").await?["role"], "commenter");
    o.send(json!({"type":"set_role","session":"s","user":"e","role":"owner"}))
        .await?;
    o.recv_type("role_changed").await?;
    e2.recv_type("role_changed").await?;
    assert_eq!(
        e2.edit("s", 1, 1, set(json!(["meta", "by"]), json!("e")))
            .await?,
        2
    );
    o.recv_type("op").await?;
    // Now there are two owners, so the first may step down.
    o.send(json!({"type":"set_role","session":"s","user":"o","role":"viewer"}))
        .await?;
    o.recv_type("role_changed").await?;
    o.expect_error(
        json!({"type":"op","session":"s","base":2,"seq":9,"ops":[]}),
        "forbidden",
    )
    .await?;
    Ok(())
}

async fn malformed_frames_never_drop_the_connection(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let mut c = server.connect("m").await?;
    c.join("s", "c").await?;
    let bad = [
        "",
        "null",
        "[]",
        "42",
        "\"join\"",
        "{}",
        r#"{"type":42}"#,
        r#"{"type":"join"}"#,
        r#"{"type":"join","session":"s"}"#,
        r#"{"type":"op","session":"s","base":"zero","seq":1,"ops":[]}"#,
        r#"{"type":"op","session":"s","base":0,"seq":1,"ops":{"op":"set"}}"#,
        r#"{"type":"op","session":"s","base":0,"seq":1,"ops":[{"op":"del","path":["nope","deeper"]}]}"#,
        r#"{"type":"op","session":"s","base":0,"seq":1,"ops":[{"op":"ins","path":["canvas","layers",5],"value":{}}]}"#,
        r#"{"type":"op","session":"s","base":0,"seq":1,"ops":[{"op":"ins","path":["canvas","layers",0],"value":{"kind":"text"}}]}"#,
        r#"{"type":"op","session":"s","base":18446744073709551615,"seq":1,"ops":[]}"#,
        r#"{"type":"set_role","session":"s","user":"x","role":"emperor"}"#,
        r#"{"type":"quality","downlink_mbps":-1}"#,
        r#"{"type":"join","session":"s","client":"c","rid":[1]}"#,
        "\u{0}\u{1}garbage",
    ];
    for b in bad {
        c.send_raw(Message::text(b)).await?;
        let e = c.recv_type("error").await?;
        assert_eq!(e["code"], "bad_request", "{b:?} -> {e}");
    }
    c.send_raw(Message::binary(vec![0u8, 159, 146, 150]))
        .await?;
    assert_eq!(c.recv_type("error").await?["code"], "bad_request");
    c.send(json!({"type":"quality","downlink_mbps":12.5,"rid":1}))
        .await?;
    assert_eq!(
        c.recv().await?,
        json!({"type":"tier","tier":"good","fps":30,"resolution":[1280,720],"rid":1})
    );
    assert_eq!(
        c.edit("s", 0, 1, set(json!(["title"]), json!("still here")))
            .await?,
        1
    );
    Ok(())
}

/// A refused token still gets its upgrade, then one `unauthorized` error and close 4401 with the
/// reason: browsers never see an upgrade's HTTP status, so this is how a client can tell.
async fn expect_4401(url: &str, reason: &str) -> Result<()> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let mut got_error = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await? {
            Some(Ok(Message::Text(t))) => {
                let v: Json = serde_json::from_str(&t)?;
                ensure!(v["type"] == "error" && v["code"] == "unauthorized", "{v}");
                ensure!(v["message"] == reason, "{v}");
                got_error = true;
            }
            Some(Ok(Message::Close(Some(f)))) => {
                ensure!(u16::from(f.code) == 4401, "close code {}", f.code);
                ensure!(f.reason.as_str() == reason, "close reason {:?}", f.reason);
                ensure!(got_error, "closed without an error frame");
                return Ok(());
            }
            other => anyhow::bail!("expected an error then close 4401, got {other:?}"),
        }
    }
}

async fn forged_expired_and_alg_none_tokens_get_4401(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;
    let good = token("mallory");
    let forged = media_services::auth::Auth::new(b"another-secret-0123456789abcdef-012345")?
        .issue("mallory", None, std::time::Duration::from_secs(60))?;
    let expired = token_ttl("mallory", 0);
    let payload = good.split('.').nth(1).unwrap_or_default();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let hs512 = {
        // Same secret, another algorithm: refused (only HS256 is accepted).
        let h = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9";
        format!("{h}.{payload}.AAAA")
    };
    for (what, t, reason) in [
        ("forged", forged, "invalid token"),
        ("expired", expired, "token expired"),
        ("alg none", none, "invalid token"),
        ("hs512", hs512, "invalid token"),
        ("garbage", "x.y.z".into(), "invalid token"),
    ] {
        expect_4401(&server.url(&t), reason)
            .await
            .with_context(|| what.to_owned())?;
    }
    expect_4401(&format!("ws://{}/v1/ws", server.addr), "missing token").await?;
    // A plain HTTP request (no upgrade) is told 401.
    let plain = http_client()?
        .get(format!("http://{}/v1/ws", server.addr))
        .send()
        .await?;
    assert_eq!(plain.status().as_u16(), 401);
    // The Authorization header works as well as the query parameter.
    // (The rejected attempts above did not use up any of mallory's connection slots.)
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/v1/ws", server.addr).into_client_request()?;
    req.headers_mut()
        .insert("Authorization", format!("Bearer {good}").parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    let mut c = Client::new(ws);
    assert_eq!(c.join("s", "c").await?["role"], "owner");
    Ok(())
}

async fn concurrent_stale_edits_converge_to_the_replayed_log(b: Backend) -> Result<()> {
    stale_edits_converge(b, false).await
}

/// The same race with every other client speaking `montage.v1.proto`.
async fn json_and_binary_clients_converge_to_the_replayed_log(b: Backend) -> Result<()> {
    stale_edits_converge(b, true).await
}

async fn stale_edits_converge(b: Backend, mixed: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &["--edits-per-sec", "1000"]).await?;
    const CLIENTS: u64 = 4;
    const EDITS: u64 = 60;
    let mut owner = server.connect("u0").await?;
    owner.join("race", "c0").await?;
    for u in 1..CLIENTS {
        owner
            .send(
                json!({"type":"set_role","session":"race","user":format!("u{u}"),"role":"editor"}),
            )
            .await?;
        owner.recv_type("role_changed").await?;
    }
    drop(owner);
    let mut tasks = Vec::new();
    for u in 0..CLIENTS {
        let mut c = if mixed && u % 2 == 1 {
            server.connect_binary(&format!("u{u}")).await?
        } else {
            server.connect(&format!("u{u}")).await?
        };
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((u + 1) * 0x1234_5678));
            c.join("race", &format!("c{u}")).await?;
            let mut known = 0u64; // highest version this client has heard of
            let mut acked = Vec::new();
            for seq in 1..=EDITS {
                // A base anywhere between 0 and what the client knows: stale on purpose.
                let base = rng.below(known + 1);
                let ops = match rng.below(5) {
                    0 => json!([{"op":"text","path":["title"],"pos":0,"ins":format!("{u}")}]),
                    1 => json!([{"op":"ins","path":["canvas","layers",0],"value":
                        {"id":format!("l{u}-{seq}"),"kind":"text","text":"t","x":0,"y":0,"size":1,"color":"#000"}}]),
                    2 => json!([{"op":"set","path":["meta",format!("k{}", rng.below(4))],"value":seq}]),
                    3 => json!([{"op":"add","path":["canvas","height"],"value":1}]),
                    _ => json!([{"op":"ins","path":["timeline","tracks",0],"value":{"id":format!("t{u}-{seq}"),"kind":"audio","clips":[]}},
                                {"op":"text","path":["title"],"pos":0,"ins":"~"}]),
                };
                c.op("race", base, seq, ops).await?;
                loop {
                    let m = c.recv().await?;
                    match m["type"].as_str() {
                        Some("ack") => {
                            known = known.max(m["version"].as_u64().unwrap_or(0));
                            acked.push(m["version"].as_u64().unwrap_or(0));
                            break;
                        }
                        Some("op") => known = known.max(m["version"].as_u64().unwrap_or(0)),
                        Some("error") => anyhow::bail!("edit refused: {m}"),
                        _ => {}
                    }
                }
            }
            Ok::<_, anyhow::Error>(acked)
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.extend(t.await??);
    }
    versions.sort_unstable();
    let total = CLIENTS * EDITS;
    assert_eq!(
        versions,
        (1..=total).collect::<Vec<_>>(),
        "every edit accepted with a distinct version"
    );
    let st = server.get_json("/v1/sessions/race", "u0").await?;
    assert_eq!(st["version"], total);
    let ops = all_ops(&server.addr, "race", "u0").await?;
    assert_eq!(ops.len() as u64, total);
    assert_eq!(replay(&ops)?, st["state"]);
    let layers = st["state"]["canvas"]["layers"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(layers > 0, "no layer survived");
    Ok(())
}

async fn a_reader_that_stops_reading_is_dropped_and_others_go_on(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(
        b,
        dir.path(),
        &[
            "--send-queue",
            "8",
            "--bytes-per-sec",
            "100000000",
            "--edits-per-sec",
            "10000",
        ],
    )
    .await?;
    let mut fast = server.connect("fast").await?;
    fast.join("s", "f").await?;
    let mut slow = server.connect("slow").await?;
    slow.join("s", "s").await?;
    fast.recv_type("participant_joined").await?;
    // ~40 MB of broadcasts: far more than the socket buffers of a reader that never reads.
    let chunk = "x".repeat(200_000);
    let mut left = false;
    for seq in 1..=200u64 {
        fast.op(
            "s",
            seq - 1,
            seq,
            json!([{"op":"set","path":["meta","blob"],"value":chunk}]),
        )
        .await?;
        loop {
            let m = fast.recv().await?;
            if m["type"] == "participant_left" && m["user"] == "slow" {
                left = true;
            }
            if m["type"] == "ack" {
                break;
            }
        }
        if left {
            break;
        }
    }
    assert!(left, "the slow reader was never dropped");
    // The fast client still edits normally.
    let st = server.get_json("/v1/sessions/s", "fast").await?;
    let v = st["version"].as_u64().unwrap_or(0);
    assert_eq!(
        fast.edit("s", v, 1000, set(json!(["title"]), json!("done")))
            .await?,
        v + 1
    );
    Ok(())
}

async fn connections_per_user_are_capped_with_429(b: Backend) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &["--connections-per-user", "2"]).await?;
    let a = server.connect("greedy").await?;
    let _b = server.connect("greedy").await?;
    match tokio_tungstenite::connect_async(server.url(&token("greedy"))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 429),
        other => panic!("third connection: {:?}", other.map(|_| ())),
    }
    // Other users are unaffected, and a closed connection frees its slot.
    server.connect("modest").await?;
    drop(a);
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if server.connect("greedy").await.is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "the slot was not given back");
    Ok(())
}

/// `montage.v1.proto` (DESIGN §9.5): chosen only when asked for, one form per connection, the
/// same refusals as JSON (with the `rid` kept) and the connection going on after them.
async fn binary_frames_are_negotiated_and_checked(b: Backend) -> Result<()> {
    use montage_protocol::pb::{self, client_frame as cf};
    use prost::Message as _;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let dir = tempfile::tempdir()?;
    let server = Server::start(b, dir.path(), &[]).await?;

    // A client offering both gets JSON, the server's preference.
    let mut req = server.url(&token("both")).into_client_request()?;
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "montage.v1.proto, montage.v1.json".parse()?,
    );
    let (_ws, resp) = tokio_tungstenite::connect_async(req).await?;
    assert_eq!(resp.headers()["sec-websocket-protocol"], "montage.v1.json");

    // One form per connection, and a refusal says which.
    let mut bin = server.connect_binary("alice").await?;
    bin.send_raw(Message::text(
        r#"{"type":"join","session":"s","client":"c"}"#,
    ))
    .await?;
    let e = bin.recv().await?;
    assert_eq!(e["code"], "bad_request");
    assert!(
        e["message"]
            .as_str()
            .context("message")?
            .contains("send binary frames"),
        "{e}"
    );
    let mut text = server.connect("bob").await?;
    text.send_raw(Message::binary(vec![1u8, 2, 3])).await?;
    let e = text.recv().await?;
    assert!(
        e["message"]
            .as_str()
            .context("message")?
            .contains("montage.v1.proto"),
        "{e}"
    );

    // Not protobuf: refused, and the connection goes on.
    bin.send_raw(Message::binary(vec![0xffu8; 7])).await?;
    let e = bin.recv().await?;
    assert_eq!(e["code"], "bad_request");
    assert!(
        e["message"]
            .as_str()
            .context("message")?
            .contains("protobuf"),
        "{e}"
    );
    let j = bin.join("s", "c").await?;
    assert_eq!(j["role"], "owner");

    // An edit JSON could not even express (a NaN) is refused like a malformed JSON one, with
    // its rid.
    let nan = pb::ClientFrame {
        rid: Some(cf::Rid::RidString("r-nan".into())),
        msg: Some(cf::Msg::Op(cf::Op {
            session: "s".into(),
            base: 0,
            seq: 1,
            ops: vec![pb::Component {
                path: vec![pb::Seg {
                    seg: Some(pb::seg::Seg::Key("n".into())),
                }],
                op: Some(pb::component::Op::Add(pb::component::Add {
                    value: f64::NAN,
                })),
            }],
            ..Default::default()
        })),
    };
    bin.send_raw(Message::binary(nan.encode_to_vec())).await?;
    let e = bin.recv().await?;
    assert_eq!(
        (&e["code"], &e["rid"]),
        (&json!("bad_request"), &json!("r-nan")),
        "{e}"
    );
    assert!(
        e["message"].as_str().context("message")?.contains("finite"),
        "{e}"
    );
    // A real edit goes through, and the JSON client sees it as JSON.
    text.join("s", "c2").await?;
    let v = bin
        .edit(
            "s",
            0,
            1,
            json!([{"op":"text","path":["title"],"pos":0,"ins":"Bin"}]),
        )
        .await?;
    assert_eq!(v, 1);
    let op = text.recv_type("op").await?;
    assert_eq!(
        op["ops"],
        json!([{"op":"text","path":["title"],"pos":0,"ins":"Bin"}])
    );
    assert_eq!(op["user"], "alice");

    // Bounded like JSON: a binary frame over --max-frame-bytes (256 KiB) is `too_large`,
    // undecoded, and the connection goes on.
    let big = pb::ClientFrame {
        rid: None,
        msg: Some(cf::Msg::Auth(cf::Auth {
            token: "x".repeat(300 * 1024),
        })),
    };
    bin.send_raw(Message::binary(big.encode_to_vec())).await?;
    let e = bin.recv_type("error").await?;
    assert_eq!(e["code"], "too_large", "{e}");
    assert_eq!(bin.join("s2", "c").await?["type"], "joined");
    // And rate-limited like JSON: a burst far past 200 messages/s is answered `rate_limited`
    // (then closed, as abuse).
    let mut flood = server.connect_binary("flood").await?;
    let leave = pb::ClientFrame {
        rid: None,
        msg: Some(cf::Msg::Leave(cf::Leave {
            session: "s".into(),
        })),
    }
    .encode_to_vec();
    for _ in 0..3000 {
        if flood
            .send_raw(Message::binary(leave.clone()))
            .await
            .is_err()
        {
            break;
        }
    }
    let limited = loop {
        let m = flood.recv().await?;
        if m["code"] == "rate_limited" {
            break m;
        }
    };
    assert!(limited["retry_after_ms"].as_u64().is_some(), "{limited}");

    // A refused token over the binary subprotocol: the error in binary, then 4401.
    let mut refused = Client::connect_binary(&server.url("not-a-token")).await?;
    let e = refused.recv().await?;
    assert_eq!(e["code"], "unauthorized");
    assert_eq!(refused.recv_close().await?.0, 4401);
    Ok(())
}
