//! `GET /v1/sessions/{id}/comments` and `/suggestions`: read from the store (everything
//! broadcast is already durable there), viewer or above.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use montage_protocol::{ErrorCode, Role, Suggestion};

use super::CommentRecord;
use crate::App;
use crate::http::{AppError, authenticate, json};

async fn readable(app: &App, id: &str, headers: &HeaderMap) -> Result<(), AppError> {
    let claims = authenticate(app, headers)?;
    let meta = app
        .store
        .meta(id)
        .await?
        .ok_or_else(|| AppError(ErrorCode::NotFound, format!("no session {id}")))?;
    if !crate::session::check_permission(&meta, &claims.sub, Role::Viewer) {
        return Err(AppError(ErrorCode::Forbidden, "no access".into()));
    }
    Ok(())
}

fn no_social() -> AppError {
    AppError(
        ErrorCode::NotSupported,
        "this store keeps no comments".into(),
    )
}

fn corrupt(id: &str, e: serde_json::Error) -> AppError {
    tracing::error!(session = id, error = %e, "stored social record unreadable");
    AppError(ErrorCode::Internal, "internal error".into())
}

pub async fn comments(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    readable(&app, &id, &headers).await?;
    let social = app.store.social().ok_or_else(no_social)?;
    let mut list = Vec::new();
    for r in social.comments(&id).await? {
        let rec: CommentRecord = serde_json::from_str(&r).map_err(|e| corrupt(&id, e))?;
        list.push(rec.comment);
    }
    let body = serde_json::json!({ "comments": list });
    Ok(json(StatusCode::OK, body.to_string()))
}

pub async fn suggestions(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    readable(&app, &id, &headers).await?;
    let social = app.store.social().ok_or_else(no_social)?;
    let mut list = Vec::new();
    for r in social.suggestions(&id).await? {
        let s: Suggestion = serde_json::from_str(&r).map_err(|e| corrupt(&id, e))?;
        list.push(s);
    }
    let body = serde_json::json!({ "suggestions": list });
    Ok(json(StatusCode::OK, body.to_string()))
}
