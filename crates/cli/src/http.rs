//! The CLI's HTTP requests (history pages, bench's metrics scrapes): one `reqwest::Client` per
//! command (ids in paths are escaped by `montage_protocol::path_segment`).

use std::time::Duration;

use anyhow::{Context, Result, bail};

/// A client whose requests give up after `timeout`. No proxy from the environment: the
/// WebSocket connections go straight to the server, so these requests to it do too.
pub fn client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .context("building the HTTP client")
}

/// GET `url` (with a bearer token if given); the body of a 200 answer, else an error naming the
/// status and carrying the body.
pub async fn get_text(http: &reqwest::Client, url: &str, token: Option<&str>) -> Result<String> {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body = resp.text().await.with_context(|| format!("GET {url}"))?;
    if status != reqwest::StatusCode::OK {
        bail!("GET {url}: {status} {body}");
    }
    Ok(body)
}
