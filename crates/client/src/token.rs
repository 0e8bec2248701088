//! Where the SDK gets its tokens: a [`TokenSource`] the app gives (a fixed token, or a callback
//! that asks the app's backend for a fresh one), the token in hand, and the pure rules for
//! when to ask again. The SDK reads a token's `sub` and `exp` to stay one user and to know when
//! the token in hand is stale; it never verifies tokens (the server does).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::{Error, Result};

/// What a token source may fail with (any error, or a message: `"backend down".into()`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The future a [`TokenSource`] returns.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<String, BoxError>> + Send + 'a>>;

/// Gives the SDK a token (a JWT signed by the server's secret, usually minted by the app's
/// backend) whenever it needs one: before a connection, when the server says the token in use
/// expires in about a minute (`token_expiring`), and for the HTTP helpers. Every token must be
/// for the same user.
///
/// Any `Fn() -> impl Future<Output = Result<String, E>>` is a token source:
///
/// ```rust,no_run
/// # async fn fetch_from_my_backend() -> Result<String, std::io::Error> { Ok(String::new()) }
/// let opts = montage_client::Options::with_token_source("ws://127.0.0.1:7070/v1/ws", || async {
///     fetch_from_my_backend().await
/// });
/// ```
pub trait TokenSource: Send + Sync + 'static {
    fn token(&self) -> TokenFuture<'_>;
    /// Whether asking again can give another token. A fixed token can't, so its refusal by the
    /// server is final at once.
    fn renews(&self) -> bool {
        true
    }
}

impl<F, Fut, E> TokenSource for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, E>> + Send + 'static,
    E: Into<BoxError>,
{
    fn token(&self) -> TokenFuture<'_> {
        let fut = self();
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

/// The same token every time (`Options::new(url, token)`).
pub(crate) struct Fixed(pub(crate) String);

impl TokenSource for Fixed {
    fn token(&self) -> TokenFuture<'_> {
        let t = self.0.clone();
        Box::pin(async move { Ok(t) })
    }
    fn renews(&self) -> bool {
        false
    }
}

/// What the SDK reads from a token's payload, unverified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peek {
    pub sub: Option<String>,
    pub exp: Option<u64>,
}

/// The `sub` and `exp` of a JWT (`header.payload.signature`, base64url), if it is one.
pub(crate) fn peek(token: &str) -> Option<Peek> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64url(payload)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(Peek {
        sub: v.get("sub").and_then(|s| s.as_str()).map(str::to_owned),
        exp: v.get("exp").and_then(serde_json::Value::as_u64),
    })
}

/// Decodes unpadded (or padded) base64url.
fn base64url(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A token in hand is used for a new connection (or an HTTP request) only while it has more
/// than this left; else the source is asked. The server warns 60 s before `exp`, so a token
/// taken with less would be refreshed at once.
pub(crate) const FRESH_FOR: u64 = 60;

/// How long to wait before asking the source again after a failed refresh: 1 s, doubling up to
/// 30 s, and never when the next try would come after the token in use expires (the server
/// then closes the socket on the next message, and the reconnect asks the source anyway).
pub(crate) fn retry_delay(attempt: u32, now: u64, exp: u64) -> Option<Duration> {
    let d = Duration::from_secs(1u64 << attempt.min(5)).min(Duration::from_secs(30));
    (now + d.as_secs() < exp).then_some(d)
}

/// The source, the token in hand and the user they are for; shared by the connection task and
/// the HTTP helpers.
pub(crate) struct Tokens {
    source: Arc<dyn TokenSource>,
    state: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    current: Option<String>,
    /// The user of the first token: every later one must be for the same user (an SDK
    /// instance's replicas, unacknowledged edits and client id belong to one user).
    user: Option<String>,
}

impl Tokens {
    pub(crate) fn new(source: Arc<dyn TokenSource>) -> Tokens {
        Tokens {
            source,
            state: Mutex::new(Held::default()),
        }
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the source can give another token after the server refused one.
    pub(crate) fn renews(&self) -> bool {
        self.source.renews()
    }

    /// The user the SDK signed in as, once a token was read.
    pub(crate) fn user(&self) -> Option<String> {
        self.held().user.clone()
    }

    /// Asks the source for a new token (within `timeout`) and checks that it is for the same
    /// user. It is not the token in hand until [`accept`](Self::accept)ed.
    pub(crate) async fn fetch(&self, timeout: Duration) -> Result<String> {
        let t = match tokio::time::timeout(timeout, self.source.token()).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => return Err(Error::Token(format!("the token source failed: {e}"))),
            Err(_) => return Err(Error::Token("the token source timed out".into())),
        };
        if t.is_empty() {
            return Err(Error::Token("the token source gave an empty token".into()));
        }
        let sub = peek(&t).and_then(|p| p.sub);
        if let (Some(user), Some(sub)) = (self.user(), sub)
            && user != sub
        {
            return Err(Error::Token(format!(
                "the token source gave a token for user {sub:?}; this client is {user:?}"
            )));
        }
        Ok(t)
    }

    /// Makes `token` the one in hand (it reached the server, or is about to).
    pub(crate) fn accept(&self, token: String) {
        let sub = peek(&token).and_then(|p| p.sub);
        let mut h = self.held();
        if h.user.is_none() {
            h.user = sub;
        }
        h.current = Some(token);
    }

    /// Drops the token in hand (the server refused it): the next use asks the source.
    pub(crate) fn forget(&self) {
        self.held().current = None;
    }

    /// The token in hand while it has more than [`FRESH_FOR`] left (or no readable `exp`);
    /// else a new one from the source, which becomes the one in hand.
    pub(crate) async fn usable(&self, now: u64, timeout: Duration) -> Result<String> {
        let held = self.held().current.clone();
        if let Some(t) = held {
            let exp = peek(&t).and_then(|p| p.exp);
            if exp.is_none_or(|e| e > now + FRESH_FOR) {
                return Ok(t);
            }
        }
        let t = self.fetch(timeout).await?;
        self.accept(t.clone());
        Ok(t)
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    // {"alg":"HS256","typ":"JWT"} . {"sub":"alice","exp":2000000000} . (any signature)
    const ALICE: &str =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMH0.sig";
    // {"sub":"bob","exp":2000000000}
    const BOB: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IiLCJleHAiOjIwMDAwMDAwMDB9.sig";

    #[test]
    fn peeks_sub_and_exp_of_a_jwt() {
        let p = peek(ALICE).unwrap();
        assert_eq!(p.sub.as_deref(), Some("alice"));
        assert_eq!(p.exp, Some(2_000_000_000));
        assert_eq!(peek("not-a-jwt"), None);
        assert_eq!(peek("a.%%%.c"), None);
        assert_eq!(base64url("aGk").unwrap(), b"hi");
        assert_eq!(base64url("aGk=").unwrap(), b"hi");
        assert_eq!(base64url("-_8").unwrap(), [0xfb, 0xff]);
    }

    #[test]
    fn retries_double_and_stop_before_expiry() {
        assert_eq!(retry_delay(0, 100, 200), Some(Duration::from_secs(1)));
        assert_eq!(retry_delay(3, 100, 200), Some(Duration::from_secs(8)));
        assert_eq!(retry_delay(9, 100, 200), Some(Duration::from_secs(30)));
        assert_eq!(retry_delay(9, 100, 130), None, "would come after exp");
        assert_eq!(retry_delay(0, 100, 101), None);
    }

    #[tokio::test]
    async fn a_token_for_another_user_is_refused() {
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let c = calls.clone();
        let tokens = Tokens::new(Arc::new(move || {
            let n = c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                match n {
                    0 => Ok(ALICE.to_owned()),
                    1 => Ok(BOB.to_owned()),
                    _ => Err("backend down"),
                }
            }
        }));
        let t = tokens.usable(0, Duration::from_secs(1)).await.unwrap();
        assert_eq!(
            (t.as_str(), tokens.user().as_deref()),
            (ALICE, Some("alice"))
        );
        // Still fresh: the source is not asked again.
        assert_eq!(
            tokens.usable(0, Duration::from_secs(1)).await.unwrap(),
            ALICE
        );
        let e = tokens.fetch(Duration::from_secs(1)).await.unwrap_err();
        assert!(e.to_string().contains("\"bob\""), "{e}");
        let e = tokens.fetch(Duration::from_secs(1)).await.unwrap_err();
        assert!(e.to_string().contains("backend down"), "{e}");
        // Stale (exp within a minute of "now"): asked again.
        assert!(
            tokens
                .usable(2_000_000_000, Duration::from_secs(1))
                .await
                .is_err()
        );
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
    }
}
