//! The HTTP side of the SDK: `GET /v1/sessions/{id}/ops`, for a rejoin that missed more edits
//! than the server sends over the WebSocket. One `reqwest::Client` per SDK [`Client`](crate::Client).

use std::fmt::Display;
use std::time::Duration;

use crate::{Error, Result};

/// Path and query of one page of `session`'s ops after version `from`.
pub(crate) fn ops_path(session: &str, from: u64, limit: u64) -> String {
    format!(
        "/v1/sessions/{}/ops?from={from}&limit={limit}",
        montage_protocol::path_segment(session)
    )
}

/// `http://host:port` of a `ws://` URL, `https://…` of a `wss://` one (the HTTP endpoints live
/// on the same server).
pub(crate) fn http_base(ws_url: &str) -> Option<String> {
    let (scheme, rest) = if let Some(r) = ws_url.strip_prefix("ws://") {
        ("http", r)
    } else {
        ("https", ws_url.strip_prefix("wss://")?)
    };
    let host = rest.split(['/', '?']).next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

/// The SDK's HTTP client. No proxy from the environment: the WebSocket goes straight to the
/// server, so the HTTP requests to the same server do too.
pub(crate) fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| Error::Connection(format!("HTTP client: {}", chain(&e))))
}

/// GET `base` + `path` with a bearer token; the body of a 200 answer, within `timeout` in all.
pub(crate) async fn get_text(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    timeout: Duration,
) -> Result<String> {
    let err = |e: &dyn Display| Error::Connection(format!("GET {path}: {e}"));
    let fetch = async {
        let resp = http
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| err(&chain(&e)))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(err(&format!("status {status}")));
        }
        resp.text().await.map_err(|e| err(&chain(&e)))
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| Error::Timeout("fetching missed edits"))?
}

/// An error with its causes ("error sending request" alone does not say "connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_one_escaped_path_segment() {
        let path = ops_path("a/b?c", 5, 1000);
        assert_eq!(path, "/v1/sessions/a%2Fb%3Fc/ops?from=5&limit=1000");
        // As the URL parser (and so the server) sees it: one segment, the query untouched.
        let url = reqwest::Url::parse(&format!("http://h:1{path}")).unwrap();
        assert_eq!(url.path(), "/v1/sessions/a%2Fb%3Fc/ops");
        assert_eq!(url.query(), Some("from=5&limit=1000"));
        let seg = url.path_segments().unwrap().nth(2).unwrap();
        let decoded = percent_encoding::percent_decode_str(seg)
            .decode_utf8()
            .unwrap();
        assert_eq!(decoded, "a/b?c");

        assert_eq!(
            ops_path("x#y%z w\\é", 0, 1),
            "/v1/sessions/x%23y%25z%20w%5C%C3%A9/ops?from=0&limit=1"
        );
        assert_eq!(
            ops_path("plain-id_1.2~", 0, 1),
            "/v1/sessions/plain-id_1.2~/ops?from=0&limit=1"
        );
    }

    #[test]
    fn http_base_of_websocket_urls() {
        assert_eq!(http_base("ws://h:1/v1/ws").as_deref(), Some("http://h:1"));
        assert_eq!(http_base("wss://h/v1/ws?x").as_deref(), Some("https://h"));
        assert_eq!(http_base("ws://h:1").as_deref(), Some("http://h:1"));
        assert_eq!(http_base("http://h:1/v1/ws"), None);
        assert_eq!(http_base("ws:///v1/ws"), None);
    }
}
