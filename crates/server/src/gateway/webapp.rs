//! The demo editor page at `/` and, with `--dev`, `POST /v1/dev/token`.
//!
//! The page's built bundle (`crates/server/webapp`, made by `web/scripts/build-app.sh` and
//! committed inside this crate so it packages whole) is compiled into the binary, so `montage serve` needs no Node.js and no files beside it;
//! `web/scripts/test.sh` fails when the committed bundle differs from a fresh build of
//! `web/app/src` and `web/client/src`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use montage_protocol::ErrorCode;
use serde::Deserialize;

use crate::App;
use crate::api::{AppError, json};

const INDEX_HTML: &str = include_str!("../../webapp/index.html");
const APP_JS: &str = include_str!("../../webapp/app.js");
const APP_CSS: &str = include_str!("../../webapp/app.css");

/// Lifetime of a dev token.
pub const DEV_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);
/// Longest user id and display name a dev token may carry (bytes).
pub const MAX_DEV_NAME_BYTES: usize = 128;
/// Largest `POST /v1/dev/token` body.
pub const MAX_DEV_TOKEN_BODY: usize = 4096;

fn asset(body: &'static str, mime: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
            // Small and compiled in: revalidating costs nothing, and a new binary is seen at once.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

pub fn routes() -> axum::Router<Arc<App>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/app.css", get(app_css))
        .route("/v1/dev/token", post(dev_token))
}

pub async fn index() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}
pub async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}
pub async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

#[derive(Debug, Deserialize)]
struct DevTokenRequest {
    user: String,
    #[serde(default)]
    name: Option<String>,
}

/// An id for `sub`: 1–128 bytes, no control characters (the protocol's id rule).
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_DEV_NAME_BYTES && !s.chars().any(char::is_control)
}

/// Whether a request's `Host` (`name[:port]`) names this machine: `localhost` or a loopback
/// address (`127.x.x.x`, `[::1]`). A page that a DNS-rebinding attack points at the server
/// sends its own host name, so it fails this.
fn loopback_host(host: &str) -> bool {
    let bracketed = host.starts_with('[');
    let (name, port) = match host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`
        Some(rest) => match rest.split_once(']') {
            Some((v6, "")) => (v6, None),
            Some((v6, rest)) => match rest.strip_prefix(':') {
                Some(port) => (v6, Some(port)),
                None => return false,
            },
            None => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if port.is_some_and(|p| !port_ok(p)) {
        return false;
    }
    if bracketed {
        name.parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
    } else {
        name.eq_ignore_ascii_case("localhost")
            || name
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// `POST /v1/dev/token {"user","name"?}` → `{"token","user","expires_in_s"}`: a token for any
/// user, for trying the demo page. Only with `montage serve --dev`, and only for requests whose
/// `Host` is a loopback name unless `--dev-allow-remote`; otherwise 403 `forbidden`.
pub async fn dev_token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, AppError> {
    if !app.config.dev {
        return Err(AppError(
            ErrorCode::Forbidden,
            "dev tokens are off: start the server with --dev (never in production)".into(),
        ));
    }
    if !app.config.dev_allow_remote {
        // HTTP/1.1 sends `Host`; HTTP/2 the URI's authority.
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .unwrap_or("");
        if !loopback_host(host) {
            tracing::warn!(host, "dev token refused: not a loopback Host");
            return Err(AppError(
                ErrorCode::Forbidden,
                "dev tokens are only given to pages opened at localhost, 127.0.0.1 or [::1] \
                 (start the server with --dev-allow-remote to lift this)"
                    .into(),
            ));
        }
    }
    if body.len() > MAX_DEV_TOKEN_BODY {
        return Err(AppError(ErrorCode::TooLarge, "body too large".into()));
    }
    let req: DevTokenRequest = serde_json::from_slice(&body).map_err(|e| {
        AppError(
            ErrorCode::BadRequest,
            format!("expected {{\"user\":…,\"name\":…}}: {e}"),
        )
    })?;
    let user = req.user.trim();
    if !valid_name(user) {
        return Err(AppError(
            ErrorCode::BadRequest,
            "user must be 1–128 bytes without control characters".into(),
        ));
    }
    let name = req.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if name.is_some_and(|n| !valid_name(n)) {
        return Err(AppError(
            ErrorCode::BadRequest,
            "name must be at most 128 bytes without control characters".into(),
        ));
    }
    let token = app.auth.issue(user, name, DEV_TOKEN_TTL)?;
    tracing::info!(user, "dev token issued");
    let body = serde_json::json!({
        "token": token,
        "user": user,
        "expires_in_s": DEV_TOKEN_TTL.as_secs(),
    });
    Ok(json(StatusCode::OK, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_compiled_in() {
        assert!(INDEX_HTML.contains("app.js"), "index.html loads the bundle");
        assert!(!APP_JS.is_empty() && !APP_CSS.is_empty());
    }

    #[test]
    fn dev_tokens_go_to_loopback_hosts_only() {
        for good in [
            "localhost",
            "LocalHost:7070",
            "127.0.0.1",
            "127.0.0.1:41234",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:7070",
            "[::ffff:127.0.0.1]:7070",
        ] {
            assert!(loopback_host(good), "{good}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:7070",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "localhost:",
            "localhost:70x",
            "localhost:7070:1",
            "10.0.0.1:7070",
            "0.0.0.0:7070",
            "[::]:7070",
            "[::1]x",
            "[::1",
            "::1",
            "user@localhost",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn dev_names_are_checked() {
        assert!(valid_name("alice"));
        assert!(valid_name("Zoë"));
        for bad in ["", "a\nb", &"x".repeat(129)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
