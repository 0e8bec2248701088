//! Connectors to outside apps: Messenger (direct messages), Yapper and Allat (social posts).
//! Each delivers a signed webhook — a JSON POST — to the URL configured for it.
//!
//! Signature scheme (docs/WEBHOOKS.md): `Montage-Timestamp: <unix seconds>` and
//! `Montage-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`; receivers recompute
//! it and refuse timestamps outside their replay window. `Montage-Delivery: <task id>` is the same
//! on every attempt, so receivers can drop duplicates (delivery is at least once).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const HEADER_TIMESTAMP: &str = "montage-timestamp";
pub const HEADER_SIGNATURE: &str = "montage-signature";
pub const HEADER_DELIVERY: &str = "montage-delivery";
/// How far a timestamp may be from the receiver's clock by default.
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(300);

/// The outside apps Montage posts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Connector {
    /// Direct messages to one user.
    Messenger,
    /// Social network posts.
    Yapper,
    /// Social network posts.
    Allat,
    /// The app's own backend (`--events-url`): signed app events (DESIGN §9.6).
    Events,
    /// The community newsletter's mailer: an issue of spotlighted projects and featured
    /// creators (`social::showcase`).
    Newsletter,
}

impl Connector {
    pub const ALL: [Connector; 5] = [
        Connector::Messenger,
        Connector::Yapper,
        Connector::Allat,
        Connector::Events,
        Connector::Newsletter,
    ];
    /// The connectors that publish to a feed (social posts, social recognition).
    pub const FEEDS: [Connector; 2] = [Connector::Yapper, Connector::Allat];

    pub fn as_str(self) -> &'static str {
        match self {
            Connector::Messenger => "messenger",
            Connector::Yapper => "yapper",
            Connector::Allat => "allat",
            Connector::Events => "events",
            Connector::Newsletter => "newsletter",
        }
    }

    pub fn parse(s: &str) -> Option<Connector> {
        Connector::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

/// Connector URLs and the shared secret, from flags, the environment or a config file.
#[derive(Clone, Default)]
pub struct ConnectorConfig {
    pub urls: HashMap<Connector, String>,
    /// Signs every webhook. Required as soon as a URL is configured.
    pub secret: Vec<u8>,
    /// One delivery attempt gives up after this long.
    pub timeout: Duration,
}

impl std::fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Webhook URLs may carry credentials (a password, a `?token=`).
        let urls: HashMap<_, _> = self
            .urls
            .iter()
            .map(|(c, u)| (c, crate::redact::redact_url(u)))
            .collect();
        f.debug_struct("ConnectorConfig")
            .field("urls", &urls)
            .field("secret", &crate::redact::REDACTED)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ConnectorConfig {
    /// Parses `name=url` (the form of `--connector-url` and `MONTAGE_CONNECTOR_URLS`).
    pub fn add_url(&mut self, spec: &str) -> Result<(), String> {
        let (name, url) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec:?}: expected NAME=URL"))?;
        let c = Connector::parse(name.trim()).ok_or_else(|| {
            format!(
                "unknown connector {name:?} (known: messenger, yapper, allat, events, newsletter)"
            )
        })?;
        let url = url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("{name}: {url:?} is not an http(s) URL"));
        }
        self.urls.insert(c, url.to_owned());
        Ok(())
    }

    /// Reads a config file of `name = url` lines (`#` comments) plus an optional
    /// `secret = …` line.
    pub fn add_file(&mut self, text: &str) -> Result<(), String> {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!("line {}: expected NAME = URL", n + 1));
            };
            if k.trim() == "secret" {
                self.secret = v.trim().as_bytes().to_vec();
            } else {
                self.add_url(line)
                    .map_err(|e| format!("line {}: {e}", n + 1))?;
            }
        }
        Ok(())
    }
}

/// `v1=<hex>` for `timestamp.body`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    format!("v1={}", hex::encode(mac(secret, timestamp, body)))
}

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret) else {
        return Vec::new();
    };
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// Why a receiver refused a webhook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing or malformed timestamp")]
    BadTimestamp,
    #[error("timestamp outside the replay window")]
    Stale,
    #[error("missing or malformed signature")]
    BadSignature,
    #[error("signature does not match")]
    Mismatch,
}

/// What a receiver calls: checks the header values against the raw body, the shared secret and
/// its own clock (`now` in unix seconds). Comparison is constant-time.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: u64,
    window: Duration,
) -> Result<(), VerifyError> {
    let ts: u64 = timestamp
        .and_then(|t| t.trim().parse().ok())
        .ok_or(VerifyError::BadTimestamp)?;
    if ts.abs_diff(now) > window.as_secs() {
        return Err(VerifyError::Stale);
    }
    let sig = signature
        .and_then(|s| s.trim().strip_prefix("v1="))
        .and_then(|h| hex::decode(h).ok())
        .ok_or(VerifyError::BadSignature)?;
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret) else {
        return Err(VerifyError::Mismatch);
    };
    m.update(ts.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.verify_slice(&sig).map_err(|_| VerifyError::Mismatch)
}

/// One signed POST.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub url: String,
    pub delivery: String,
    pub timestamp: u64,
    pub signature: String,
    pub body: String,
}

impl Webhook {
    pub fn signed(secret: &[u8], url: &str, delivery: &str, timestamp: u64, body: String) -> Self {
        Webhook {
            url: url.to_owned(),
            delivery: delivery.to_owned(),
            timestamp,
            signature: sign(secret, timestamp, body.as_bytes()),
            body,
        }
    }
}

/// How a delivery went, as far as the sender can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// A 2xx answer.
    Delivered,
    /// Worth another attempt: 5xx, 408, 429, timeouts, refused connections.
    Transient(String),
    /// Retrying will not help: any other 4xx.
    Permanent(String),
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = SendOutcome> + Send + 'a>>;

/// The seam between the Task Manager and the network.
pub trait WebhookSender: Send + Sync + 'static {
    fn send<'a>(&'a self, hook: &'a Webhook) -> SendFuture<'a>;
}

/// The real sender: reqwest with rustls.
pub struct HttpSender {
    client: reqwest::Client,
}

impl HttpSender {
    pub fn new(timeout: Duration) -> Result<HttpSender, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("montage/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpSender { client })
    }
}

fn classify(status: u16) -> SendOutcome {
    match status {
        200..=299 => SendOutcome::Delivered,
        408 | 429 | 500..=599 => SendOutcome::Transient(format!("HTTP {status}")),
        _ => SendOutcome::Permanent(format!("HTTP {status}")),
    }
}

impl WebhookSender for HttpSender {
    fn send<'a>(&'a self, hook: &'a Webhook) -> SendFuture<'a> {
        Box::pin(async move {
            let r = self
                .client
                .post(&hook.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(HEADER_TIMESTAMP, hook.timestamp.to_string())
                .header(HEADER_SIGNATURE, &hook.signature)
                .header(HEADER_DELIVERY, &hook.delivery)
                .body(hook.body.clone())
                .send()
                .await;
            match r {
                Ok(resp) => classify(resp.status().as_u16()),
                // The error text can carry the URL; the task record only says what kind it was.
                Err(e) if e.is_timeout() => SendOutcome::Transient("timeout".into()),
                Err(e) if e.is_connect() => SendOutcome::Transient("connection failed".into()),
                Err(e) => {
                    tracing::debug!(error = %e, "webhook failed");
                    SendOutcome::Transient("request failed".into())
                }
            }
        })
    }
}

/// The in-memory double: records every webhook and answers with scripted statuses
/// (then 200 once the script runs out).
#[derive(Default)]
pub struct MemorySender {
    inner: Mutex<(Vec<Webhook>, std::collections::VecDeque<u16>)>,
}

impl MemorySender {
    pub fn new() -> MemorySender {
        MemorySender::default()
    }

    /// The next answers, in order.
    pub fn script(&self, statuses: &[u16]) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.1.extend(statuses);
    }

    pub fn sent(&self) -> Vec<Webhook> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }
}

impl WebhookSender for MemorySender {
    fn send<'a>(&'a self, hook: &'a Webhook) -> SendFuture<'a> {
        let status = {
            let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            g.0.push(hook.clone());
            g.1.pop_front().unwrap_or(200)
        };
        Box::pin(async move { classify(status) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip_and_replay_window() {
        let body = br#"{"type":"direct_message"}"#;
        let sig = sign(b"k", 1_000, body);
        let w = DEFAULT_REPLAY_WINDOW;
        assert_eq!(
            verify(b"k", Some("1000"), Some(&sig), body, 1_100, w),
            Ok(())
        );
        assert_eq!(
            verify(b"k", Some("1000"), Some(&sig), body, 1_301, w),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            verify(b"other", Some("1000"), Some(&sig), body, 1_000, w),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"k", Some("1001"), Some(&sig), body, 1_001, w),
            Err(VerifyError::Mismatch),
            "the timestamp is signed"
        );
        assert_eq!(
            verify(b"k", Some("1000"), Some(&sig), b"{}", 1_000, w),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"k", None, Some(&sig), body, 1_000, w),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify(b"k", Some("1000"), Some("v1=zz"), body, 1_000, w),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn config_parsing() {
        let mut c = ConnectorConfig::default();
        c.add_url("messenger=http://127.0.0.1:9/dm").unwrap();
        assert!(c.add_url("fax=http://x").is_err());
        assert!(c.add_url("yapper=ftp://x").is_err());
        c.add_file("# hooks\nyapper = https://y.example/hook\nsecret = s3\n")
            .unwrap();
        assert_eq!(c.urls.len(), 2);
        assert_eq!(c.secret, b"s3");
    }
}
