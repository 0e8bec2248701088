//! How the SDK ends a connection the server refuses, and TLS: a bad or expired token ends in
//! the terminal `Unauthorized` state at once with the server's reason (close 4401), a token
//! source gets one more try, and `wss://`/`https://` work through a TLS endpoint whose
//! self-signed certificate the app trusts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use montage_client::{
    Api, Client, Component, ConnectionState, ErrorCode, Event, Op, Options, SessionSettings, Tls,
    Value, path,
};
use montage_testkit::tls::TlsProxy;
use montage_testkit::*;

backend_tests!(
    a_bad_or_expired_fixed_token_is_unauthorized_at_once_with_the_reason,
    a_token_source_gets_one_more_try_and_no_queued_edit_is_lost,
    wss_and_https_work_through_tls_with_a_trusted_certificate,
);

fn title(text: &str) -> Op {
    Op::new(vec![Component::set(path!["title"], Value::str(text))])
}

fn ws(server: &Server) -> String {
    format!("ws://{}/v1/ws", server.addr)
}

/// Fast retries, so a test that expects none would see them.
fn quick(opts: Options) -> Options {
    opts.backoff(Duration::from_millis(20), Duration::from_millis(100))
}

async fn a_bad_or_expired_fixed_token_is_unauthorized_at_once_with_the_reason(
    b: Backend,
) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    for (token, reason) in [
        ("not.a.jwt".to_owned(), "invalid token"),
        (token_ttl("ann", 0), "token expired"),
    ] {
        let t0 = Instant::now();
        let client = Client::start(quick(Options::new(ws(&server), token)))?;
        let err = client
            .connected(Duration::from_secs(10))
            .await
            .err()
            .context("a refused token connected")?;
        let took = t0.elapsed();
        ensure!(err.code() == Some(ErrorCode::Unauthorized), "{err}");
        ensure!(err.to_string().contains(reason), "{err}");
        // Not a timeout: told by the server (the bound is loose for a loaded CI machine).
        ensure!(took < Duration::from_secs(5), "took {took:?}");
        ensure!(client.connection_state() == ConnectionState::Unauthorized);
        // Terminal: joins fail the same way, and nothing is retried.
        let err = client
            .join("s")
            .await
            .err()
            .context("joined with a refused token")?;
        ensure!(err.code() == Some(ErrorCode::Unauthorized), "{err}");
        let mut events = client.events();
        tokio::time::sleep(Duration::from_millis(300)).await;
        while let Some(e) = events.try_next() {
            ensure!(
                !matches!(e, Event::Connection(ConnectionState::Connecting)),
                "retried after a final refusal"
            );
        }
    }
    Ok(())
}

/// The source's first token is refused (expired): the SDK asks it again at once and goes on
/// with the new one, the edit made before connecting intact. A source whose every token is
/// refused ends in `Unauthorized` after its second.
async fn a_token_source_gets_one_more_try_and_no_queued_edit_is_lost(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let source = move || {
        let n = c.fetch_add(1, Ordering::SeqCst);
        let t = if n == 0 {
            token_ttl("ann", 0)
        } else {
            token("ann")
        };
        async move { Ok::<_, std::io::Error>(t) }
    };
    let client = Client::start(quick(Options::with_token_source(ws(&server), source)))?;
    // Join first, edit before the server is reached: the edit waits in the queue.
    let joining = {
        let client = client.clone();
        tokio::spawn(async move { client.join("refreshed").await })
    };
    let h = joining.await??;
    h.edit(title("kept"))?;
    h.sync(Duration::from_secs(10)).await?;
    ensure!(calls.load(Ordering::SeqCst) == 2, "{calls:?} source calls");
    let head = server.get_json(&session_path("refreshed"), "ann").await?;
    ensure!(head["state"]["title"] == "kept", "{head}");
    client.close().await;

    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let refused = move || {
        c.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, std::io::Error>(token_ttl("ann", 0)) }
    };
    let client = Client::start(quick(Options::with_token_source(ws(&server), refused)))?;
    let err = client
        .connected(Duration::from_secs(10))
        .await
        .err()
        .context("connected with expired tokens")?;
    ensure!(err.code() == Some(ErrorCode::Unauthorized), "{err}");
    ensure!(calls.load(Ordering::SeqCst) == 2, "{calls:?} source calls");
    Ok(())
}

async fn wss_and_https_work_through_tls_with_a_trusted_certificate(b: Backend) -> Result<()> {
    let dir = fast_tempdir()?;
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    let proxy = TlsProxy::start(&server.addr).await?;
    let port = proxy.addr.rsplit(':').next().unwrap_or_default().to_owned();
    let url = format!("wss://localhost:{port}/v1/ws");

    // Without the certificate the TLS handshake fails, and says so.
    let client = Client::start(quick(Options::new(url.clone(), token("ann"))))?;
    let mut events = client.events();
    let failed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.next().await {
                Some(Event::ConnectFailed { message, .. }) => return Some(message),
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await?
    .context("no connect failure")?;
    ensure!(
        failed.to_lowercase().contains("certificate"),
        "not a certificate error: {failed}"
    );
    client.close().await;

    let tls = Tls::system().add_ca_pem(proxy.cert_pem.as_bytes())?;
    let client = Client::start(quick(
        Options::new(url.clone(), token("ann")).tls(tls.clone()),
    ))?;
    client.connected(Duration::from_secs(10)).await?;
    let h = client.join("secure").await?;
    h.edit(title("over TLS"))?;
    h.sync(Duration::from_secs(10)).await?;
    // The HTTP side over https, through the same endpoint and certificate.
    let api = client.api()?;
    let head = api.session("secure").await?;
    ensure!(head.state["title"] == "over TLS", "{:?}", head.state);
    ensure!(api.ops("secure", 0, 10).await?.len() == 1);
    let alone = Api::new(&format!("https://localhost:{port}"), token("ann"))?.tls(&tls)?;
    let made = alone
        .create_session(&SessionSettings::new().title("t"))
        .await?;
    ensure!(made.title.as_deref() == Some("t"), "{made:?}");
    client.close().await;
    Ok(())
}
