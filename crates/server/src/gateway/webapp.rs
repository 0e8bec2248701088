//! The demo editor page at `/` and, with `--dev`, `POST /v1/dev/token`.
//!
//! The page's built bundle (`web/app/dist`, made by `web/scripts/build-app.sh` and committed)
//! is compiled into the binary, so `montage serve` needs no Node.js and no files beside it;
//! `web/scripts/test.sh` fails when the committed bundle differs from a fresh build of
//! `web/app/src` and `web/client/src`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use montage_protocol::ErrorCode;
use serde::Deserialize;

use crate::App;
use crate::api::{AppError, json};

const INDEX_HTML: &str = include_str!("../../../../web/app/dist/index.html");
const APP_JS: &str = include_str!("../../../../web/app/dist/app.js");
const APP_CSS: &str = include_str!("../../../../web/app/dist/app.css");

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

/// `POST /v1/dev/token {"user","name"?}` → `{"token","user","expires_in_s"}`: a token for any
/// user, for trying the demo page. Only with `montage serve --dev`; otherwise 403 `forbidden`.
pub async fn dev_token(State(app): State<Arc<App>>, body: Bytes) -> Result<Response, AppError> {
    if !app.config.dev {
        return Err(AppError(
            ErrorCode::Forbidden,
            "dev tokens are off: start the server with --dev (never in production)".into(),
        ));
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
    fn dev_names_are_checked() {
        assert!(valid_name("alice"));
        assert!(valid_name("Zoë"));
        for bad in ["", "a\nb", &"x".repeat(129)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
