//! A real local webhook receiver for the sharing tests: an axum listener on port 0 in the test's
//! process that records every delivery and answers from a script.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use media_services::tasks::connectors::{DEFAULT_REPLAY_WINDOW, VerifyError, verify};
use serde_json::Value as Json;
use tokio::sync::mpsc;

/// The webhook secret the receiver's servers sign with (`Receiver::flags`).
pub const HOOK_SECRET: &str = "webhook-test-secret";
/// How long `Receiver::next` waits for a delivery.
const WAIT: Duration = Duration::from_secs(15);

/// How the receiver answers one delivery.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Never answer (the request stays open).
    Hang,
}

#[derive(Debug, Clone)]
pub struct Hook {
    pub connector: String,
    pub timestamp: Option<String>,
    pub signature: Option<String>,
    pub delivery: String,
    pub body: Vec<u8>,
}

impl Hook {
    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or(Json::Null)
    }

    pub fn verify(&self, secret: &str) -> Result<(), VerifyError> {
        verify(
            secret.as_bytes(),
            self.timestamp.as_deref(),
            self.signature.as_deref(),
            &self.body,
            now_secs(),
            DEFAULT_REPLAY_WINDOW,
        )
    }
}

/// Seconds since the Unix epoch, as webhook timestamps count them.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Clone)]
struct ReceiverState {
    script: Arc<Mutex<VecDeque<Answer>>>,
    tx: mpsc::UnboundedSender<Hook>,
}

/// A webhook receiver: records every request, answers from its script (then 200).
pub struct Receiver {
    pub addr: String,
    pub rx: mpsc::UnboundedReceiver<Hook>,
}

async fn receive(
    State(st): State<ReceiverState>,
    Path(connector): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let answer = st
        .script
        .lock()
        .map(|mut s| s.pop_front())
        .ok()
        .flatten()
        .unwrap_or(Answer::Status(200));
    let _ = st.tx.send(Hook {
        connector,
        timestamp: h("montage-timestamp"),
        signature: h("montage-signature"),
        delivery: h("montage-delivery").unwrap_or_default(),
        body: body.to_vec(),
    });
    match answer {
        Answer::Status(s) => StatusCode::from_u16(s).unwrap_or(StatusCode::OK),
        Answer::Hang => std::future::pending().await,
    }
}

impl Receiver {
    pub async fn start(script: &[Answer]) -> Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(script.iter().copied().collect()));
        let st = ReceiverState { script, tx };
        let app = axum::Router::new()
            .route("/{connector}", axum::routing::post(receive))
            .with_state(st);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { addr, rx })
    }

    pub async fn next(&mut self) -> Result<Hook> {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .context("no webhook arrived")?
            .context("receiver stopped")
    }

    /// The server flags that point every connector here.
    pub fn flags(&self) -> Vec<String> {
        let mut v = Vec::new();
        for c in ["messenger", "yapper", "allat"] {
            v.push("--connector-url".into());
            v.push(format!("{c}=http://{}/{c}", self.addr));
        }
        v.extend(
            [
                "--webhook-secret",
                HOOK_SECRET,
                "--task-backoff-ms",
                "20",
                "--task-backoff-max-ms",
                "40",
            ]
            .map(String::from),
        );
        v
    }
}
