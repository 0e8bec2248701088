//! The CLI's HTTP requests (history pages, bench's metrics scrapes): one `reqwest::Client` per
//! command, and user-supplied ids escaped as URL path segments.

use std::fmt::Display;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// Escaped in a URL path segment: controls, space, non-ASCII (always), `%` itself, the bytes
/// that end or split a segment (`/ ? #`, and `\`, which URL parsers read as `/`), and the rest of
/// the URL standard's path set (`" < > ` { }`).
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%')
    .add(b'\\');

/// `s` as one URL path segment (session ids may hold any printable character).
pub fn segment(s: &str) -> impl Display + '_ {
    utf8_percent_encode(s, PATH_SEGMENT)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_escape_separators() {
        assert_eq!(segment("a/b?c#d").to_string(), "a%2Fb%3Fc%23d");
        assert_eq!(
            segment("50% off é\\").to_string(),
            "50%25%20off%20%C3%A9%5C"
        );
        assert_eq!(segment("plain-id_1.2~").to_string(), "plain-id_1.2~");
    }
}
