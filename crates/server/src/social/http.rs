//! `GET /v1/sessions/{id}/comments` and `/suggestions`: read from the store (everything
//! broadcast is already durable there), viewer or above.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::get;
use montage_protocol::{ErrorCode, Role, Suggestion};

use super::CommentRecord;
use crate::App;
use crate::api::{AppError, Caller, json};

/// Comments and suggestions (sharing, invites, tasks and recognition: `sharing_api`).
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/sessions/{id}/comments", get(comments))
        .route("/v1/sessions/{id}/suggestions", get(suggestions))
}

/// The session of the path (`{id}`), for a caller who may view it: a handler that takes it
/// answers 401, 403 or 404 before doing anything.
pub(super) struct SessionReader(pub(super) String);

impl FromRequestParts<Arc<App>> for SessionReader {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, AppError> {
        let Caller(claims) = Caller::from_request_parts(parts, app).await?;
        let Path(id) = Path::<String>::from_request_parts(parts, app)
            .await
            .map_err(|e| AppError(ErrorCode::BadRequest, e.body_text()))?;
        app.collab
            .require(&id, &claims.principal(), Role::Viewer)
            .await?;
        Ok(SessionReader(id))
    }
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

/// The stored records of a session as `{"<key>": [...]}`, each parsed as `R` and shown as
/// `pick` makes it.
fn listing<R: serde::de::DeserializeOwned, T: serde::Serialize>(
    id: &str,
    key: &str,
    rows: Vec<String>,
    pick: impl Fn(R) -> T,
) -> Result<Response, AppError> {
    let list = rows
        .iter()
        .map(|r| {
            serde_json::from_str(r)
                .map(&pick)
                .map_err(|e| corrupt(id, e))
        })
        .collect::<Result<Vec<T>, AppError>>()?;
    let body = serde_json::json!({ key: list });
    Ok(json(StatusCode::OK, body.to_string()))
}

async fn comments(
    State(app): State<Arc<App>>,
    SessionReader(id): SessionReader,
) -> Result<Response, AppError> {
    let social = app.store.social().ok_or_else(no_social)?;
    listing(
        &id,
        "comments",
        social.comments(&id).await?,
        |r: CommentRecord| r.comment,
    )
}

async fn suggestions(
    State(app): State<Arc<App>>,
    SessionReader(id): SessionReader,
) -> Result<Response, AppError> {
    let social = app.store.social().ok_or_else(no_social)?;
    listing(
        &id,
        "suggestions",
        social.suggestions(&id).await?,
        |s: Suggestion| s,
    )
}
