//! Media Sync over HTTP: a session's committed state and its op log.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use montage_protocol::{ErrorCode, Role};
use serde::Deserialize;

use crate::App;
use crate::access::check_permission;
use crate::api::{AppError, Caller, json};

/// Most ops one request returns; clients page with `from`.
const MAX_OPS_PER_REQUEST: u64 = 1_000;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/sessions/{id}", get(session_state))
        .route("/v1/sessions/{id}/ops", get(session_ops))
}

async fn session_state(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
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
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    let meta = app
        .store
        .meta(&id)
        .await?
        .ok_or_else(|| AppError(ErrorCode::NotFound, format!("no session {id}")))?;
    if !check_permission(&meta, &claims.sub, Role::Viewer) {
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
