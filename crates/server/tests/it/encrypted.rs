//! End-to-end encrypted sessions from outside (DESIGN §9.4), with payloads that are just bytes
//! here (the SDK suite seals real edits): the server orders sealed edits only on the head,
//! chains them, stores and relays them byte for byte, keeps the clients' snapshots, moves the
//! key epoch when a member is removed, takes uploads only sealed, and refuses whatever would
//! need the plaintext.

use anyhow::{Result, ensure};
use montage_protocol::sealed::{GENESIS_CHAIN, chain_hex, chain_next, parse_chain};
use serde_json::{Value as Json, json};

use crate::harness::*;
use montage_testkit::media::{Resp, picture, request};

backend_tests!(
    sealed_edits_are_ordered_chained_and_kept_byte_for_byte,
    what_needs_the_plaintext_is_refused,
    removing_a_member_retires_the_key_epoch,
    sealed_inputs_are_checked_and_bounded,
    sealed_uploads_are_stored_as_they_came,
    tiny_payloads_count_against_the_budget_too,
    out_of_place_sealed_inputs_are_refused,
);

fn sealed(session: &str, base: u64, seq: u64, data: &str, epoch: u64) -> Json {
    json!({"type":"op","session":session,"base":base,"seq":seq,"data":data,"key_epoch":epoch})
}

async fn join_encrypted(c: &mut Client, session: &str, client: &str) -> Result<Json> {
    c.send(json!({"type":"join","session":session,"client":client,"create":{"encrypted":true}}))
        .await?;
    c.recv_type("joined").await
}

/// The chain value after `data` at `version`, from the one before.
/// Rotates session `e`'s key the way a member's removal does: `c` (its owner) makes bob an
/// editor and removes him again; returns the `key_rotated` it hears.
async fn rotate_key(c: &mut Client) -> Result<Json> {
    c.send(json!({"type":"set_role","session":"e","user":"bob","role":"editor"}))
        .await?;
    c.recv_type("role_changed").await?;
    c.send(json!({"type":"set_role","session":"e","user":"bob","role":"none"}))
        .await?;
    next_of(c, "key_rotated").await
}

fn next(prev: &str, version: u64, epoch: u64, data: &str) -> String {
    let prev = parse_chain(prev).unwrap_or(GENESIS_CHAIN);
    chain_hex(&chain_next(&prev, version, epoch, data))
}

async fn sealed_edits_are_ordered_chained_and_kept_byte_for_byte(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &[]).await?;
    let mut alice = s.connect("alice").await?;
    let j = join_encrypted(&mut alice, "e", "a").await?;
    ensure!(
        j["encrypted"] == true && j["key_epoch"] == 0 && j.get("state").is_none(),
        "{j}"
    );
    alice
        .send(json!({"type":"set_role","session":"e","user":"bob","role":"editor"}))
        .await?;
    alice.recv_type("role_changed").await?;

    // The head takes it; the ack carries the chain value every client can compute.
    let d1 = "c2VhbGVkIG9uZQ==";
    alice.send(sealed("e", 0, 1, d1, 0)).await?;
    let ack = alice.recv_type("ack").await?;
    let c1 = next(&chain_hex(&GENESIS_CHAIN), 1, 0, d1);
    ensure!(ack["version"] == 1 && ack["chain"] == c1.as_str(), "{ack}");

    // A joiner gets it as it was sent, with its chain value.
    let mut bob = s.connect("bob").await?;
    let j = join_encrypted(&mut bob, "e", "b").await?;
    let e = &j["ops"][0];
    ensure!(
        j["version"] == 1 && e["data"] == d1 && e["chain"] == c1.as_str() && e["user"] == "alice",
        "{j}"
    );
    // A stale base is a conflict carrying the head; on the head it is taken.
    let err = bob
        .expect_error(sealed("e", 0, 1, "YmFk", 0), "conflict")
        .await?;
    ensure!(err["version"] == 1, "{err}");
    let d2 = "dHdv";
    bob.send(sealed("e", 1, 2, d2, 0)).await?;
    ensure!(bob.recv_type("ack").await?["version"] == 2);
    let op = alice.recv_type("op").await?;
    let c2 = next(&c1, 2, 0, d2);
    ensure!(
        op["data"] == d2 && op["chain"] == c2.as_str() && op.get("ops").is_none(),
        "{op}"
    );
    // A resend is acked again with its version, not stored twice.
    bob.send(sealed("e", 1, 2, d2, 0)).await?;
    ensure!(bob.recv_type("ack").await?["version"] == 2);

    // Over HTTP the entries are the sealed ones.
    let ops = s
        .get_json(&format!("{}/ops", session_path("e")), "bob")
        .await?;
    ensure!(ops["ops"][1]["data"] == d2, "{ops}");

    // A client snapshot of version 2: later joins start there.
    alice
        .send(json!({"type":"snapshot","session":"e","version":2,"data":"c25hcA=="}))
        .await?;
    alice
        .expect_error(
            json!({"type":"snapshot","session":"e","version":9,"data":"c25hcA=="}),
            "bad_request",
        )
        .await?;
    let mut carol = s.connect("carol").await?;
    let j = join_encrypted(&mut carol, "e", "c").await?;
    let snap = &j["snapshot"];
    ensure!(
        snap["version"] == 2 && snap["data"] == "c25hcA==" && snap["chain"] == c2.as_str(),
        "{j}"
    );
    ensure!(j["ops"].as_array().is_some_and(Vec::is_empty), "{j}");

    // After a restart: the same head, chain and snapshot.
    drop((alice, bob, carol));
    s.stop().await;
    let s = Server::start(b, dir.path(), &[]).await?;
    let mut alice = s.connect("alice").await?;
    let j = join_encrypted(&mut alice, "e", "a2").await?;
    ensure!(j["version"] == 2 && j["snapshot"]["version"] == 2, "{j}");
    let d3 = "dGhyZWU=";
    alice.send(sealed("e", 2, 1, d3, 0)).await?;
    let ack = alice.recv_type("ack").await?;
    ensure!(ack["chain"] == next(&c2, 3, 0, d3).as_str(), "{ack}");

    // Created over HTTP too.
    let (code, created) = as_user(
        &s,
        "POST",
        "/v1/sessions",
        "alice",
        Some(json!({"encrypted": true})),
    )
    .await?;
    ensure!(
        code == 201 && created["encrypted"] == true,
        "{code} {created}"
    );
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let j = alice.join(&id, "a").await?;
    ensure!(j["encrypted"] == true, "{j}");
    Ok(())
}

async fn what_needs_the_plaintext_is_refused(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &[]).await?;
    let mut alice = s.connect("alice").await?;
    join_encrypted(&mut alice, "e", "a").await?;
    alice.send(sealed("e", 0, 1, "b25l", 0)).await?;
    alice.recv_type("ack").await?;
    let plain = json!([{"op":"set","path":["title"],"value":"x"}]);

    let err = alice
        .expect_error(
            json!({"type":"op","session":"e","base":1,"seq":2,"ops":plain}),
            "bad_request",
        )
        .await?;
    ensure!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("encrypted")),
        "{err}"
    );
    for bad in [
        json!({"type":"op","session":"e","base":1,"seq":2,"data":"not base64!"}),
        json!({"type":"op","session":"e","base":1,"seq":2,"data":"b25l","ops":plain}),
        json!({"type":"suggest","session":"e","base":1,"ops":plain}),
        json!({"type":"comment","session":"e","comment":{"content":"x",
              "annotations":[{"region":{"x":1,"y":1,"w":1,"h":1}}]}}),
        json!({"type":"preview_subscribe","session":"e"}),
    ] {
        alice.expect_error(bad, "bad_request").await?;
    }
    // Comments keep their threading in the clear; the content is the client's opaque string.
    let c = alice
        .social(
            "e",
            json!({"type":"comment","session":"e","comment":{"content":"e2e1:0:b3BhcXVl"}}),
        )
        .await?;
    ensure!(c["content"] == "e2e1:0:b3BhcXVl", "{c}");

    // HTTP: no state, no past states, no previews, no restores, no named versions.
    let path = session_path("e");
    for (method, p, body) in [
        ("GET", path.clone(), None),
        ("GET", format!("{path}?version=1"), None),
        ("GET", format!("{path}/preview?tier=poor"), None),
        (
            "POST",
            format!("{path}/restore"),
            Some(json!({"version": 0})),
        ),
        (
            "POST",
            format!("{path}/versions"),
            Some(json!({"version": 1, "name": "n"})),
        ),
    ] {
        let (code, e) = as_user(&s, method, &p, "alice", body).await?;
        ensure!(code == 409, "{method} {p}: {code} {e}");
    }

    // A plain session takes no sealed edits.
    alice.join("plain", "a").await?;
    alice
        .expect_error(sealed("plain", 0, 1, "b25l", 0), "bad_request")
        .await?;
    Ok(())
}

async fn removing_a_member_retires_the_key_epoch(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &[]).await?;
    let mut alice = s.connect("alice").await?;
    join_encrypted(&mut alice, "e", "a").await?;
    alice
        .send(json!({"type":"set_role","session":"e","user":"bob","role":"editor"}))
        .await?;
    alice.recv_type("role_changed").await?;
    let mut bob = s.connect("bob").await?;
    join_encrypted(&mut bob, "e", "b").await?;
    alice
        .send(json!({"type":"set_role","session":"e","user":"bob","role":"none"}))
        .await?;
    let rotated = next_of(&mut alice, "key_rotated").await?;
    ensure!(rotated["key_epoch"] == 1, "{rotated}");
    // Sealed under the retired key: a conflict, sealed again under the new one it is taken.
    let err = alice
        .expect_error(sealed("e", 0, 1, "b2xk", 0), "conflict")
        .await?;
    ensure!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("retired")),
        "{err}"
    );
    alice.send(sealed("e", 0, 2, "bmV3", 1)).await?;
    let ack = alice.recv_type("ack").await?;
    ensure!(
        ack["chain"] == next(&chain_hex(&GENESIS_CHAIN), 1, 1, "bmV3").as_str(),
        "{ack}"
    );
    // Narrowing link access retires it too; a new joiner hears the epoch.
    alice
        .send(json!({"type":"set_link_role","session":"e","role":"viewer"}))
        .await?;
    next_of(&mut alice, "link_role_changed").await?;
    alice
        .send(json!({"type":"set_link_role","session":"e","role":"none"}))
        .await?;
    let rotated = next_of(&mut alice, "key_rotated").await?;
    ensure!(rotated["key_epoch"] == 2, "{rotated}");
    drop(alice);
    s.stop().await;
    let s = Server::start(b, dir.path(), &[]).await?;
    let mut alice = s.connect("alice").await?;
    let j = join_encrypted(&mut alice, "e", "a").await?;
    ensure!(j["key_epoch"] == 2, "the epoch is stored: {j}");
    Ok(())
}

/// Who may send sealed edits and snapshots, and how much a session may hold between snapshots.
async fn sealed_inputs_are_checked_and_bounded(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    // 4 KiB documents: sealed payloads since the last snapshot may total 16 KiB.
    let s = Server::start(b, dir.path(), &["--max-doc-bytes", "4096"]).await?;
    let mut alice = s.connect("alice").await?;
    join_encrypted(&mut alice, "e", "a").await?;
    // A viewer (the harness's link role) may neither edit nor store a snapshot.
    let mut val = s.connect("val").await?;
    join_encrypted(&mut val, "e", "v").await?;
    val.expect_error(sealed("e", 0, 1, "b25l", 0), "forbidden")
        .await?;
    val.expect_error(
        json!({"type":"snapshot","session":"e","version":0,"data":"c25hcA=="}),
        "forbidden",
    )
    .await?;
    // 6,000 bytes a payload: the third passes the budget and is refused, nothing applied.
    let big = "A".repeat(6_000);
    for v in 0..2u64 {
        alice.send(sealed("e", v, v + 1, &big, 0)).await?;
        ensure!(alice.recv_type("ack").await?["version"] == v + 1);
    }
    let err = alice
        .expect_error(sealed("e", 2, 3, &big, 0), "too_large")
        .await?;
    ensure!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("snapshot")),
        "{err}"
    );
    // A client snapshot of the head makes room again.
    alice
        .send(json!({"type":"snapshot","session":"e","version":2,"data":"c25hcA=="}))
        .await?;
    alice.send(sealed("e", 2, 4, &big, 0)).await?;
    ensure!(alice.recv_type("ack").await?["version"] == 3);
    Ok(())
}

async fn upload_to(s: &Server, user: &str, session: Option<&str>, body: &[u8]) -> Result<Resp> {
    let path = match session {
        Some(id) => format!("/v1/assets?session={id}"),
        None => "/v1/assets".to_owned(),
    };
    request(&s.addr, "POST", &path, Some(user), Some(body), &[]).await
}

/// An encrypted session's uploads are taken only sealed, under the session's key epoch, and
/// stored and served as they came, never decoded; a picture in the clear, a retired epoch, a
/// truncated asset and a viewer are refused, and a sealed asset has no place outside one.
async fn sealed_uploads_are_stored_as_they_came(b: Backend) -> Result<()> {
    use montage_protocol::sealed::asset_header;
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &[]).await?;
    let mut alice = s.connect("alice").await?;
    join_encrypted(&mut alice, "e", "a").await?;
    alice.join("plain", "a").await?;
    let sealed_under = |epoch: u64| {
        let mut body = asset_header(epoch).to_vec();
        body.extend_from_slice(&[7; 24]);
        body.extend_from_slice(b"opaque ciphertext and its tag");
        body
    };
    let body = sealed_under(0);
    let r = upload_to(&s, "alice", Some("e"), &body).await?;
    ensure!(r.status == 201, "{}", String::from_utf8_lossy(&r.body));
    let j = r.json()?;
    ensure!(
        j["kind"] == "sealed" && j["format"] == "sealed" && j["bytes"] == body.len(),
        "{j}"
    );
    let id = j["id"].as_str().unwrap_or_default();
    let got = request(
        &s.addr,
        "GET",
        &format!("/v1/assets/{id}"),
        Some("alice"),
        None,
        &[],
    )
    .await?;
    ensure!(got.status == 200 && got.body == body, "served as stored");
    ensure!(got.header("content-type") == Some("application/octet-stream"));
    let meta = request(
        &s.addr,
        "GET",
        &format!("/v1/assets/{id}/meta"),
        Some("alice"),
        None,
        &[],
    )
    .await?
    .json()?;
    ensure!(meta["kind"] == "sealed" && meta["session"] == "e", "{meta}");
    let wave = request(
        &s.addr,
        "GET",
        &format!("/v1/assets/{id}/waveform"),
        Some("alice"),
        None,
        &[],
    )
    .await?;
    ensure!(wave.status == 409, "{}", wave.status);

    // A picture in the clear, a retired or future epoch, a truncated asset.
    let r = upload_to(&s, "alice", Some("e"), &picture()?).await?;
    ensure!(
        r.status == 400 && String::from_utf8_lossy(&r.body).contains("must be sealed"),
        "{} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    let r = upload_to(&s, "alice", Some("e"), &sealed_under(1)).await?;
    ensure!(r.status == 409, "{}", r.status);
    let r = upload_to(&s, "alice", Some("e"), &body[..40]).await?;
    ensure!(r.status == 400, "{}", r.status);
    // A viewer (the harness's link role) may not upload.
    let r = upload_to(&s, "val", Some("e"), &body).await?;
    ensure!(r.status == 403, "{}", r.status);
    // Sealed bytes belong to an encrypted session: not to a plain one, nor to none.
    for session in [Some("plain"), None] {
        let r = upload_to(&s, "alice", session, &body).await?;
        ensure!(
            r.status == 400 && String::from_utf8_lossy(&r.body).contains("encrypted session"),
            "{session:?}: {}",
            r.status
        );
    }

    // After a rotation the new epoch is taken and the old one refused.
    rotate_key(&mut alice).await?;
    ensure!(upload_to(&s, "alice", Some("e"), &body).await?.status == 409);
    ensure!(
        upload_to(&s, "alice", Some("e"), &sealed_under(1))
            .await?
            .status
            == 201
    );
    Ok(())
}

/// The budget between client snapshots counts every payload's entry, not only its bytes: tiny
/// payloads can't pile up without bound (4 KiB documents: 16 KiB, 164 a 4-byte payload).
async fn tiny_payloads_count_against_the_budget_too(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &["--max-doc-bytes", "4096"]).await?;
    let mut alice = s.connect("alice").await?;
    join_encrypted(&mut alice, "e", "a").await?;
    let mut taken = 0u64;
    loop {
        alice.send(sealed("e", taken, taken + 1, "AAAA", 0)).await?;
        let m = alice.recv().await?;
        if m["type"] == "ack" {
            taken += 1;
            ensure!(taken <= 100, "over 100 tiny payloads taken");
            continue;
        }
        ensure!(m["code"] == "too_large", "{m}");
        break;
    }
    ensure!(taken >= 90, "only {taken} taken");
    Ok(())
}

/// Sealed inputs out of place, each refused with its reason: a snapshot in a plain session, of
/// version 0, of a version not yet durable, of one already snapshotted, under a key epoch ahead
/// or retired; an edit on a base or key epoch ahead; a join `since` ahead of the head.
async fn out_of_place_sealed_inputs_are_refused(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &[]).await?;
    let mut alice = s.connect("alice").await?;
    alice.join("plain", "p").await?;
    let snap = |session: &str, version: u64, epoch: u64| json!({"type":"snapshot","session":session,"version":version,"data":"c25hcA==","key_epoch":epoch});
    let refused = |e: &Json, what: &str| e["message"].as_str().is_some_and(|m| m.contains(what));
    let e = alice
        .expect_error(snap("plain", 0, 0), "bad_request")
        .await?;
    ensure!(refused(&e, "only in encrypted sessions"), "{e}");

    join_encrypted(&mut alice, "e", "a").await?;
    let e = alice.expect_error(snap("e", 0, 0), "bad_request").await?;
    ensure!(refused(&e, "version 0"), "{e}");
    let e = alice
        .expect_error(sealed("e", 3, 1, "AAAA", 0), "bad_request")
        .await?;
    ensure!(refused(&e, "ahead of the head"), "{e}");
    let e = alice
        .expect_error(sealed("e", 0, 2, "AAAA", 7), "bad_request")
        .await?;
    ensure!(refused(&e, "key epoch 7 is ahead"), "{e}");
    alice.send(sealed("e", 0, 3, "AAAA", 0)).await?;
    alice.recv_type("ack").await?;
    let e = alice.expect_error(snap("e", 5, 0), "bad_request").await?;
    ensure!(refused(&e, "not durable yet"), "{e}");
    let e = alice.expect_error(snap("e", 1, 7), "bad_request").await?;
    ensure!(refused(&e, "ahead"), "{e}");
    // Taken (no answer), then the same version again is a conflict.
    alice.send(snap("e", 1, 0)).await?;
    let e = alice.expect_error(snap("e", 1, 0), "conflict").await?;
    ensure!(refused(&e, "stored already"), "{e}");
    let mut c = s.connect("alice").await?;
    c.send(json!({"type":"join","session":"e","client":"a2","since":9}))
        .await?;
    let e = c.recv_type("error").await?;
    ensure!(
        e["code"] == "bad_request" && refused(&e, "since 9 is ahead of the head 1"),
        "{e}"
    );
    // A retired key epoch: a conflict for a snapshot as for an edit.
    rotate_key(&mut alice).await?;
    alice.send(sealed("e", 1, 4, "QUJD", 1)).await?;
    alice.recv_type("ack").await?;
    let e = alice.expect_error(snap("e", 2, 0), "conflict").await?;
    ensure!(refused(&e, "retired"), "{e}");
    Ok(())
}
