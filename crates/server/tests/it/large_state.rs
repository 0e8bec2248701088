//! Large states (docs/PROTOCOL.md "Large states"): a join that asks for it (`state_ref`) gets a
//! state past `--inline-state-bytes` as its size and hash, and downloads the exact bytes over
//! HTTP in byte ranges, so a slow or cut link resumes instead of starting over.

use anyhow::{Context, Result, ensure};
use serde_json::{Value as Json, json};
use sha2::Digest;

use crate::harness::*;

backend_tests!(
    a_large_state_is_joined_by_reference_and_downloaded_in_ranges,
    a_state_download_is_checked_like_any_read_of_the_session,
);

/// A GET of the state download as `user`, with extra headers: status, headers, body.
async fn download(
    s: &Server,
    path: &str,
    user: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>)> {
    let mut req = http_client()?
        .get(format!("http://{}{path}", s.addr))
        .bearer_auth(token(user));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await?;
    let (status, h) = (resp.status().as_u16(), resp.headers().clone());
    Ok((status, h, resp.bytes().await?.to_vec()))
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Makes session `big` about 60 KB of JSON, owned by alice; returns its version.
async fn big_session(s: &Server) -> Result<u64> {
    let mut alice = s.connect("alice").await?;
    alice.join("big", "a").await?;
    let mut v = 0;
    for i in 0..3u64 {
        let value = format!("{i}{}", "é1x".repeat(5_000));
        v = alice
            .edit(
                "big",
                v,
                i + 1,
                json!([{"op":"set","path":["meta",format!("notes{i}")],"value":value}]),
            )
            .await?;
    }
    Ok(v)
}

async fn a_large_state_is_joined_by_reference_and_downloaded_in_ranges(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &["--inline-state-bytes", "4096"]).await?;
    let version = big_session(&s).await?;

    // A client that does not ask gets the state inline, however large (the contract).
    let mut plain = s.connect("bob").await?;
    let inline = plain.join("big", "p").await?;
    ensure!(inline["state_ref"].is_null(), "{}", inline["state_ref"]);
    let state = inline["state"].clone();
    ensure!(state.is_object(), "no inline state");

    // One that asks gets its size and hash instead, and the ops after it on the socket.
    let mut bob = s.connect("bob").await?;
    bob.send(json!({"type":"join","session":"big","client":"b","state_ref":true}))
        .await?;
    let joined = bob.recv_type("joined").await?;
    ensure!(joined["state"].is_null(), "state inline as well");
    ensure!(joined["version"] == version, "{}", joined["version"]);
    let r = &joined["state_ref"];
    let bytes = r["bytes"].as_u64().context("state_ref.bytes")? as usize;
    let sha = r["sha256"].as_str().context("state_ref.sha256")?.to_owned();
    ensure!(bytes > 4096, "{bytes} bytes inline-able");

    // The whole body: exactly the bytes hashed, the same document as inline.
    let path = format!("{}/state?version={version}", session_path("big"));
    let (code, h, whole) = download(&s, &path, "bob", &[]).await?;
    ensure!(code == 200, "{code}");
    ensure!(
        whole.len() == bytes && hex_sha256(&whole) == sha,
        "bytes or hash differ"
    );
    ensure!(header(&h, "etag") == format!("\"{sha}\""), "{h:?}");
    ensure!(header(&h, "accept-ranges") == "bytes", "{h:?}");
    ensure!(
        serde_json::from_slice::<Json>(&whole)? == state,
        "not the inline state"
    );

    // In pieces, as a cut download resumes: they add up to the same bytes.
    let cut = bytes / 3;
    let (code, h, first) = download(
        &s,
        &path,
        "bob",
        &[("range", &format!("bytes=0-{}", cut - 1))],
    )
    .await?;
    ensure!(code == 206 && first.len() == cut, "{code} {}", first.len());
    ensure!(
        header(&h, "content-range") == format!("bytes 0-{}/{bytes}", cut - 1),
        "{h:?}"
    );
    let etag = format!("\"{sha}\"");
    let (code, h, rest) = download(
        &s,
        &path,
        "bob",
        &[("range", &format!("bytes={cut}-")), ("if-range", &etag)],
    )
    .await?;
    ensure!(code == 206, "{code}");
    ensure!(
        header(&h, "content-range") == format!("bytes {cut}-{}/{bytes}", bytes - 1),
        "{h:?}"
    );
    ensure!(
        [first, rest].concat() == whole,
        "pieces differ from the whole"
    );
    // A resume for other bytes (another version's hash) gets the whole body, not a splice.
    let (code, _, again) = download(
        &s,
        &path,
        "bob",
        &[("range", &format!("bytes={cut}-")), ("if-range", "\"00\"")],
    )
    .await?;
    ensure!(code == 200 && again == whole, "{code}");
    // Past the end: 416 with the size.
    let (code, h, _) = download(&s, &path, "bob", &[("range", &format!("bytes={bytes}-"))]).await?;
    ensure!(code == 416, "{code}");
    ensure!(
        header(&h, "content-range") == format!("bytes */{bytes}"),
        "{h:?}"
    );
    ensure!(
        s.metric("montage_state_download_bytes_total").await? as usize >= 3 * bytes,
        "downloads not counted"
    );

    // Edits made meanwhile reach the downloader as ops from the next version.
    let mut alice = s.connect("alice").await?;
    alice.join("big", "a2").await?;
    alice
        .edit(
            "big",
            version,
            1,
            json!([{"op":"set","path":["title"],"value":"later"}]),
        )
        .await?;
    let op = bob.recv_type("op").await?;
    ensure!(op["version"] == version + 1, "{op}");

    // Another server on the same store (nothing cached) serves the same bytes: a version's JSON
    // is the same wherever it is encoded.
    s.stop().await;
    let s = Server::start(b, dir.path(), &["--inline-state-bytes", "4096"]).await?;
    let (code, h, after) = download(&s, &path, "bob", &[]).await?;
    ensure!(
        code == 200 && after == whole,
        "{code}: not the same bytes after a restart"
    );
    ensure!(header(&h, "etag") == etag, "{h:?}");
    // A join that asks, in a session whose state is small, gets it inline.
    let mut c = s.connect("carol").await?;
    c.send(json!({"type":"join","session":"small","client":"c","state_ref":true}))
        .await?;
    let j = c.recv_type("joined").await?;
    ensure!(j["state"].is_object() && j["state_ref"].is_null(), "{j}");
    Ok(())
}

async fn a_state_download_is_checked_like_any_read_of_the_session(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let s = Server::start(b, dir.path(), &["--inline-state-bytes", "4096"]).await?;
    let version = big_session(&s).await?;
    let path = format!("{}/state?version={version}", session_path("big"));
    let (code, _) = as_user(
        &s,
        "PATCH",
        &session_path("big"),
        "alice",
        Some(json!({"link_role":"none"})),
    )
    .await?;
    ensure!(code == 200, "{code}");
    // Private now: mallory may not read it, nor learn its size.
    let (code, _, body) = download(&s, &path, "mallory", &[]).await?;
    ensure!(code == 403, "{code} {}", String::from_utf8_lossy(&body));
    let (code, _, _) = download(&s, &path, "mallory", &[("range", "bytes=0-")]).await?;
    ensure!(code == 403, "{code}");
    // No token.
    let (code, _) = s.get(&path, None).await?;
    ensure!(code == 401, "{code}");
    // A version that does not exist yet; none named; no such session.
    let (code, _, _) = download(
        &s,
        &format!("{}/state?version={}", session_path("big"), version + 5),
        "alice",
        &[],
    )
    .await?;
    ensure!(code == 404, "{code}");
    let (code, _, body) =
        download(&s, &format!("{}/state", session_path("big")), "alice", &[]).await?;
    ensure!(
        code == 400 && String::from_utf8_lossy(&body).contains("version"),
        "{code}"
    );
    let (code, _, _) = download(
        &s,
        &format!("{}/state?version=0", session_path("nope")),
        "alice",
        &[],
    )
    .await?;
    ensure!(code == 404, "{code}");
    // An encrypted session's state is not the server's to give.
    let mut e = s.connect("alice").await?;
    e.send(json!({"type":"join","session":"sealed","client":"e","state_ref":true,"create":{"encrypted":true}}))
        .await?;
    let j = e.recv_type("joined").await?;
    ensure!(j["encrypted"] == true && j["state_ref"].is_null(), "{j}");
    let (code, _, _) = download(
        &s,
        &format!("{}/state?version=0", session_path("sealed")),
        "alice",
        &[],
    )
    .await?;
    ensure!(code == 409, "{code}");
    Ok(())
}
