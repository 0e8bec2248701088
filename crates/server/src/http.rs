//! The HTTP API beside the WebSocket: session state and ops, health, metrics.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use montage_protocol::{ErrorCode, Role, ServerMessage, encode};
use serde::Deserialize;

use crate::App;
use crate::auth::Claims;
use crate::gateway::{self, bearer};

/// Most ops one request returns; clients page with `from`.
const MAX_OPS_PER_REQUEST: u64 = 1_000;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/v1/ws", get(gateway::ws_handler))
        .route("/v1/sessions/{id}", get(session_state))
        .route("/v1/sessions/{id}/ops", get(session_ops))
        .route(
            "/v1/sessions/{id}/comments",
            get(crate::social::http::comments),
        )
        .route(
            "/v1/sessions/{id}/suggestions",
            get(crate::social::http::suggestions),
        )
        .route("/v1/sessions/{id}/preview", get(crate::media::preview))
        .route("/v1/sessions/{id}/frame", get(crate::media::frame))
        .route("/v1/assets", post(crate::media::upload))
        .route("/v1/assets/{id}", get(crate::media::download))
        .route("/v1/assets/{id}/meta", get(crate::media::meta))
        .merge(crate::sharing_api::routes())
        .route("/", get(crate::webapp::index))
        .route("/app.js", get(crate::webapp::app_js))
        .route("/app.css", get(crate::webapp::app_css))
        .route("/v1/dev/token", post(crate::webapp::dev_token))
        .with_state(app)
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

pub(crate) fn authenticate(app: &App, headers: &HeaderMap) -> Result<Claims, AppError> {
    let token = bearer(headers)
        .ok_or_else(|| AppError(ErrorCode::Unauthorized, "missing bearer token".into()))?;
    app.auth
        .verify(token)
        .map_err(|_| AppError(ErrorCode::Unauthorized, "invalid token".into()))
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

async fn session_state(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let claims = authenticate(&app, &headers)?;
    match app.sessions.state(&id, &claims.sub).await {
        Ok((version, state)) => Ok(json(
            StatusCode::OK,
            format!(r#"{{"version":{version},"state":{state}}}"#),
        )),
        Err(ErrorCode::NotFound) => Err(AppError(ErrorCode::NotFound, format!("no session {id}"))),
        Err(ErrorCode::Forbidden) => Err(AppError(ErrorCode::Forbidden, "no access".into())),
        Err(code) => Err(AppError(code, "could not read the session".into())),
    }
}

#[derive(Debug, Deserialize)]
struct OpsQuery {
    #[serde(default)]
    from: u64,
    #[serde(default)]
    limit: Option<u64>,
}

async fn session_ops(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<OpsQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let claims = authenticate(&app, &headers)?;
    let meta = app
        .store
        .meta(&id)
        .await?
        .ok_or_else(|| AppError(ErrorCode::NotFound, format!("no session {id}")))?;
    if !crate::session::check_permission(&meta, &claims.sub, Role::Viewer) {
        return Err(AppError(ErrorCode::Forbidden, "no access".into()));
    }
    let limit = q
        .limit
        .unwrap_or(MAX_OPS_PER_REQUEST)
        .clamp(1, MAX_OPS_PER_REQUEST);
    let ops = app.store.ops_after(&id, q.from, limit).await?;
    // The stored op JSON goes out as it is: no parse and re-encode per entry.
    let mut body = String::with_capacity(64 + ops.iter().map(|o| o.ops.len() + 64).sum::<usize>());
    body.push_str(r#"{"ops":["#);
    for (i, o) in ops.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let user = serde_json::to_string(&o.user).unwrap_or_else(|_| "\"\"".into());
        body.push_str(&format!(
            r#"{{"version":{},"user":{user},"ops":{}}}"#,
            o.version, o.ops
        ));
    }
    body.push_str("]}");
    Ok(json(StatusCode::OK, body))
}
