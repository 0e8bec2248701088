//! What every HTTP handler shares: the error answer, JSON responses and the bearer token.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use montage_protocol::{ErrorCode, ServerMessage, encode};

use crate::App;
use crate::auth::Claims;

/// The bearer token of a request, if it carries one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(str::trim)
}

/// An error answer shaped like the WebSocket's error frame; internal details stay in the log.
pub struct AppError(pub(crate) ErrorCode, pub(crate) String);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match self.0 {
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::NotSupported => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        json(status, encode(&ServerMessage::error(self.0, self.1)))
    }
}

impl From<crate::error::Error> for AppError {
    fn from(e: crate::error::Error) -> AppError {
        if let crate::error::Error::Refused { code, message } = e {
            return AppError(code, message);
        }
        tracing::error!(error = %e, "request failed");
        AppError(ErrorCode::Internal, "internal error".into())
    }
}

pub(crate) fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The caller of an HTTP request, from its bearer token. A handler that takes it answers 401
/// before its body is read.
pub struct Caller(pub Claims);

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Caller, AppError> {
        let token = bearer(&parts.headers)
            .ok_or_else(|| AppError(ErrorCode::Unauthorized, "missing bearer token".into()))?;
        app.auth
            .verify(token)
            .map(Caller)
            .map_err(|_| AppError(ErrorCode::Unauthorized, "invalid token".into()))
    }
}

/// A JSON request body read as `T`, or a 400 that says what was `expected` and what was wrong.
/// (The router already bounds bodies; a handler with a smaller bound checks it first.)
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    expected: &str,
) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError(ErrorCode::BadRequest, format!("expected {expected}: {e}")))
}
