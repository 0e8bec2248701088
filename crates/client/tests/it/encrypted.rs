//! End-to-end encrypted sessions through the Rust SDK (DESIGN §9.4): two clients seal their
//! edits and comments, one of them offline for a while, and converge; nothing they typed is in
//! the server's files or database; a wrong key (told at the join: the session's first payload
//! is its creator's key check) and a payload changed in the store are refused with a clear
//! error; removing a member moves the key epoch and work goes on under a new key.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use montage_client::sealed::{Keyring, SessionKey};
use montage_client::{Annotation, Region, path};
use montage_client::{
    Client, Component, Error, Event, Events, NewComment, Op, Role, SessionHandle, Value,
};
use montage_protocol::sealed::{GENESIS_CHAIN, Sealed, chain_hex, chain_next, parse_chain};
use serde_json::json;

use crate::proxy::Proxy;
use montage_testkit::*;

backend_tests!(
    two_clients_converge_and_the_server_keeps_no_plaintext,
    a_wrong_key_and_a_changed_payload_are_refused,
    a_removed_member_retires_the_key_and_work_goes_on_under_the_next,
    editors_opening_a_new_session_at_once_write_one_key_check,
);

const MARKER: &str = "MARKER-e2e-7f3a9c";

fn title_of(d: &Value) -> String {
    d.get("title")
        .and_then(Value::as_text)
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn type_at_end(h: &SessionHandle, text: &str) -> Result<()> {
    h.edit_with(|d| {
        let n = d
            .get("title")
            .and_then(Value::as_text)
            .map_or(0, |t| t.len_chars());
        Some(Op::new(vec![Component::text_insert(
            path!["title"],
            n,
            text,
        )]))
    })?;
    Ok(())
}

/// Every handle acked, at one version, with one state.
async fn converged(hs: &[&SessionHandle]) -> Result<Value> {
    for h in hs {
        h.sync(SDK_SYNC).await?;
    }
    let v = hs.iter().map(|h| h.version()).max().unwrap_or(0);
    for h in hs {
        h.wait_version(v, SDK_SYNC).await?;
    }
    let first = hs[0].state();
    for (i, h) in hs.iter().enumerate() {
        if h.state() != first {
            bail!(
                "client {i} diverged at v{v}:\n {}\n {}",
                h.state().to_json(),
                first.to_json()
            );
        }
    }
    Ok(first)
}

/// The first event `pick` takes, within `SDK_SYNC`.
async fn next_event<T>(ev: &mut Events, mut pick: impl FnMut(Event) -> Option<T>) -> Result<T> {
    loop {
        match tokio::time::timeout(SDK_SYNC, ev.next()).await? {
            Some(e) => {
                if let Some(t) = pick(e) {
                    return Ok(t);
                }
            }
            None => bail!("events ended"),
        }
    }
}

/// A server on `dir`, and alice in the new encrypted session `enc` under a fresh key.
struct Started {
    server: Server,
    ws: String,
    keys: Keyring,
    alice: Client,
    ha: SessionHandle,
}

async fn start(b: Backend, dir: &std::path::Path) -> Result<Started> {
    let server = Server::start(b, dir, OPEN_LIMITS).await?;
    let ws = format!("ws://{}/v1/ws", server.addr);
    let keys = Keyring::new(SessionKey::generate());
    let alice = sdk(&ws, "alice").await?;
    let ha = alice.join_encrypted("enc", keys.clone()).await?;
    Ok(Started {
        server,
        ws,
        keys,
        alice,
        ha,
    })
}

/// A real PNG with `text` in a `tEXt` chunk after its header.
fn picture_with(text: &str) -> Result<Vec<u8>> {
    let png = montage_testkit::media::picture()?;
    // Signature (8) and IHDR (4 + 4 + 13 + 4).
    let mut out = png[..33].to_vec();
    out.extend(montage_testkit::media::chunk(
        b"tEXt",
        format!("Comment\0{text}").as_bytes(),
    ));
    out.extend_from_slice(&png[33..]);
    Ok(out)
}

/// Makes `user` an editor and waits until the server says so.
async fn editor(h: &SessionHandle, user: &str) -> Result<()> {
    let mut ev = h.events();
    h.set_role(user, Role::Editor).await?;
    next_event(&mut ev, |e| {
        matches!(e, Event::RoleChanged { user: ref u, .. } if u == user).then_some(())
    })
    .await
}

async fn two_clients_converge_and_the_server_keeps_no_plaintext(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let Started {
        server,
        ws,
        keys,
        alice,
        ha,
    } = start(b, dir.path()).await?;
    ensure!(ha.key_epoch() == Some(0));
    editor(&ha, "bob").await?;
    let proxy = Proxy::start(&server.addr, 11).await?;
    let bob = Client::start(sdk_options(&proxy.ws_url(), "bob"))?;
    let hb = bob.join_encrypted("enc", keys.clone()).await?;

    // Both type at once: the loser of each race is refused at a stale base and rebases locally.
    let mut events = hb.events();
    for i in 0..40 {
        type_at_end(&ha, if i == 7 { MARKER } else { "a" })?;
        type_at_end(&hb, "b")?;
        if i % 8 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    converged(&[&ha, &hb]).await?;

    // Bob goes offline and keeps editing; Alice too; then Bob is back.
    proxy.set_online(false);
    for _ in 0..15 {
        type_at_end(&hb, "B")?;
        type_at_end(&ha, "A")?;
    }
    ha.sync(SDK_SYNC).await?;
    ensure!(hb.pending() > 0, "bob's offline edits are queued");
    proxy.set_online(true);
    let s = converged(&[&ha, &hb]).await?;
    let t = title_of(&s);
    for (c, n) in [('a', 39), ('b', 40), ('A', 15), ('B', 15)] {
        ensure!(t.matches(c).count() >= n, "{c}: {t}");
    }
    ensure!(t.contains(MARKER), "{t}");

    // A comment with an annotation: sealed whole, opened for the other participant.
    ha.comment(NewComment {
        content: format!("look here {MARKER}"),
        annotations: vec![Annotation {
            region: Some(Region {
                x: 1.0,
                y: 2.0,
                w: 3.0,
                h: 4.0,
            }),
            ..Annotation::default()
        }],
        ..NewComment::default()
    })
    .await?;
    let got = next_event(&mut events, |e| match e {
        Event::CommentAdded(c) => Some(c),
        _ => None,
    })
    .await?;
    ensure!(
        got.content == format!("look here {MARKER}")
            && got.annotations.first().and_then(|a| a.region).map(|r| r.w) == Some(3.0),
        "{got:?}"
    );

    // A picture (its marker in a PNG text chunk), sealed before upload: the server takes it
    // without reading it, bob fetches and opens it and renders the canvas himself.
    let api = montage_client::Api::new(&ws, token("alice"))?;
    let file = picture_with(MARKER)?;
    let sealed = ha.seal_asset(&file)?.expect("an encrypted session seals");
    let asset = api.upload_asset(Some("enc"), sealed).await?;
    ensure!(asset.kind == "sealed" && asset.width.is_none(), "{asset:?}");
    ha.edit(Op::new(vec![
        Component::set(path!["canvas", "width"], 400.0),
        Component::set(path!["canvas", "height"], 300.0),
        Component::set(
            path!["assets", asset.id.as_str()],
            Value::from_json(&json!({"kind": "image", "width": 400, "height": 300})),
        ),
        Component::ins(
            path!["canvas", "layers", 0],
            Value::from_json(&json!({"id": "pic", "kind": "image", "asset": asset.id,
                "x": 0, "y": 0, "w": 400, "h": 300})),
        ),
    ]))?;
    let s = converged(&[&ha, &hb]).await?;
    let bob_api = montage_client::Api::new(&ws, token("bob"))?;
    let got = bob_api.asset(&asset.id).await?;
    ensure!(
        got.starts_with(montage_protocol::sealed::ASSET_MAGIC),
        "stored sealed"
    );
    ensure!(hb.open_asset(&got)? == file, "bob opens alice's picture");
    let mut tampered = got.clone();
    tampered[100] ^= 1;
    ensure!(matches!(hb.open_asset(&tampered), Err(Error::Decrypt(_))));
    let limits = montage_media::asset::Limits::default();
    let mut assets = montage_media::asset::MemoryAssets::new();
    assets.insert(
        asset.id.clone(),
        montage_media::asset::Asset::decode(&hb.open_asset(&got)?, &limits)?,
    );
    let size = montage_media::Size {
        width: 400,
        height: 300,
    };
    let drawn = montage_media::render(&s, &assets, size)?;
    let red = drawn.image.get_pixel(75, 75).0;
    ensure!(
        red[0] > 150 && red[1] < 80,
        "the red square, drawn locally: {red:?}"
    );
    // A picture in the clear is refused in an encrypted session.
    let plain = api.upload_asset(Some("enc"), file.clone()).await;
    ensure!(
        matches!(&plain, Err(e) if e.code() == Some(montage_client::ErrorCode::BadRequest)),
        "{plain:?}"
    );

    // Enough versions for a client snapshot (one edit each: typing meanwhile is composed):
    // a newcomer starts from it and agrees.
    for _ in 0..montage_client::core::SessionCore::SNAPSHOT_EVERY {
        type_at_end(&ha, "x")?;
        ha.sync(SDK_SYNC).await?;
    }
    converged(&[&ha, &hb]).await?;
    // The snapshot goes out once a client is idle: look for it for a while.
    let mut snapshot = json!(null);
    for i in 0..100 {
        let mut raw = server.connect("carol").await?;
        snapshot = raw.join("enc", &format!("peek{i}")).await?["snapshot"].take();
        if snapshot["version"].as_u64().is_some_and(|v| v >= 100) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(
        snapshot["version"].as_u64().is_some_and(|v| v >= 100),
        "no client snapshot: {snapshot}"
    );
    let carol = sdk(&ws, "carol").await?;
    let hc = carol.join_encrypted("enc", keys.clone()).await?;
    let s = converged(&[&ha, &hb, &hc]).await?;
    ensure!(title_of(&s).contains(MARKER));

    // Nothing typed reached the server in the clear: not its files, not its database.
    alice.close().await;
    bob.close().await;
    carol.close().await;
    server.stop().await;
    let found = b.find_stored(dir.path(), MARKER).await?;
    ensure!(
        found.is_empty(),
        "the marker is stored in the clear: {found:?}"
    );
    let found = b.find_stored(dir.path(), "look here").await?;
    ensure!(
        found.is_empty(),
        "the comment is stored in the clear: {found:?}"
    );
    Ok(())
}

async fn a_wrong_key_and_a_changed_payload_are_refused(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let Started {
        server,
        ws,
        keys,
        alice,
        ha,
    } = start(b, dir.path()).await?;
    // Opening the new session wrote its key check: an editor with another key is told at the
    // join, before it could write anything the others can't open.
    ha.sync(SDK_SYNC).await?;
    ensure!(ha.version() == 1 && ha.pending() == 0);
    ensure!(!ha.undo()?, "the key check is no edit of alice's to undo");
    editor(&ha, "mallory").await?;
    let mallory = sdk(&ws, "mallory").await?;
    match mallory
        .join_encrypted("enc", Keyring::new(SessionKey::generate()))
        .await
    {
        Err(Error::Decrypt(e)) => ensure!(e.to_string().contains("op 1"), "{e}"),
        other => bail!("a wrong key joined: {:?}", other.map(|h| h.version())),
    }
    ensure!(ha.version() == 1, "nothing was written");
    mallory.close().await;
    for _ in 0..5 {
        type_at_end(&ha, "abc")?;
    }
    ha.sync(SDK_SYNC).await?;
    let head = ha.version();

    // A viewer with another key: a clear error, no garbage.
    let eve = sdk(&ws, "eve").await?;
    match eve
        .join_encrypted("enc", Keyring::new(SessionKey::generate()))
        .await
    {
        Err(Error::Decrypt(e)) => ensure!(e.to_string().contains("wrong key"), "{e}"),
        other => bail!(
            "a wrong key joined: {:?}",
            other.map(|h| h.state().to_json())
        ),
    }
    // Without a key at all: told so.
    let eve2 = sdk(&ws, "eve").await?;
    match eve2.join("enc").await {
        Err(Error::Decrypt(e)) => ensure!(e.to_string().contains("encrypted"), "{e}"),
        other => bail!("joined without a key: {:?}", other.map(|h| h.version())),
    }

    // The server (or its disk) changes the last payload and forges its chain value: the
    // clients' AEAD refuses it.
    alice.close().await;
    eve.close().await;
    eve2.close().await;
    server.stop().await;
    let prev: Sealed = serde_json::from_str(&b.stored_op(dir.path(), "enc", head - 1).await?)?;
    let mut last: Sealed = serde_json::from_str(&b.stored_op(dir.path(), "enc", head).await?)?;
    let mut bytes: Vec<char> = last.data.chars().collect();
    bytes[30] = if bytes[30] == 'A' { 'B' } else { 'A' };
    last.data = bytes.into_iter().collect();
    let prev_chain = parse_chain(&prev.chain).unwrap_or(GENESIS_CHAIN);
    last.chain = chain_hex(&chain_next(&prev_chain, head, last.key_epoch, &last.data));
    b.rewrite_op(dir.path(), "enc", head, &serde_json::to_string(&last)?)
        .await?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    let ws = format!("ws://{}/v1/ws", server.addr);
    let bob = sdk(&ws, "bob").await?;
    match bob.join_encrypted("enc", keys).await {
        Err(Error::Decrypt(e)) => {
            ensure!(e.to_string().contains(&format!("op {head}")), "{e}")
        }
        other => bail!(
            "a changed payload was taken: {:?}",
            other.map(|h| h.version())
        ),
    }
    Ok(())
}

async fn a_removed_member_retires_the_key_and_work_goes_on_under_the_next(
    b: Backend,
) -> Result<()> {
    let dir = fast_tempdir()?;
    // Server and alice's client live to the end of the test.
    let Started {
        server: _server,
        ws,
        keys,
        alice: _alice,
        ha,
    } = start(b, dir.path()).await?;
    editor(&ha, "bob").await?;
    editor(&ha, "mallory").await?;
    let bob = sdk(&ws, "bob").await?;
    let hb = bob.join_encrypted("enc", keys.clone()).await?;
    type_at_end(&ha, "before ")?;
    converged(&[&ha, &hb]).await?;

    let mut ev_a = ha.events();
    ha.set_role("mallory", Role::Removed).await?;
    let rotated = loop {
        match tokio::time::timeout(SDK_SYNC, ev_a.next()).await? {
            Some(Event::KeyRotated {
                key_epoch,
                have_key,
            }) => break (key_epoch, have_key),
            Some(_) => continue,
            None => bail!("events ended"),
        }
    };
    ensure!(rotated == (1, false), "{rotated:?}");
    // Edits wait for the new key, which the app hands to those who stay.
    type_at_end(&ha, "after")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    ensure!(ha.pending() == 1, "an edit went out without the new key");
    let next = SessionKey::generate();
    ha.add_key(1, next.clone());
    hb.add_key(1, next);
    let s = converged(&[&ha, &hb]).await?;
    ensure!(title_of(&s) == "before after", "{}", s.to_json());
    ensure!(hb.key_epoch() == Some(1));
    Ok(())
}

/// A session made over HTTP has no payload until an editor opens it; two opening it at once
/// both send a key check, the one beaten to it is dropped rather than sealed again, and both
/// end at version 1; their edits follow. (Three sessions: whether the two race is the
/// scheduler's choice; the outcome must be the same either way.)
async fn editors_opening_a_new_session_at_once_write_one_key_check(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    let ws = format!("ws://{}/v1/ws", server.addr);
    let api = montage_client::Api::new(&ws, token("alice"))?;
    let settings = montage_client::SessionSettings::new()
        .encrypted()
        .link_role(Role::Editor);
    let keys = Keyring::new(SessionKey::generate());
    for _ in 0..3 {
        let id = api.create_session(&settings).await?.id;
        let (alice, bob) = (sdk(&ws, "alice").await?, sdk(&ws, "bob").await?);
        let (ha, hb) = tokio::join!(
            alice.join_encrypted(&id, keys.clone()),
            bob.join_encrypted(&id, keys.clone())
        );
        let (ha, hb) = (ha?, hb?);
        converged(&[&ha, &hb]).await?;
        ensure!(ha.version() == 1, "one key check, not {}", ha.version());
        type_at_end(&ha, "a")?;
        type_at_end(&hb, "b")?;
        let s = converged(&[&ha, &hb]).await?;
        ensure!(
            ha.version() == 3 && title_of(&s).len() == 2,
            "{}",
            title_of(&s)
        );
        alice.close().await;
        bob.close().await;
    }
    Ok(())
}
