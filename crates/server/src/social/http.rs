//! `GET /v1/sessions/{id}/comments` and `/suggestions`: read from the store (everything
//! broadcast is already durable there), viewer or above.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use montage_protocol::{ErrorCode, Role, Suggestion};

use super::CommentRecord;
use crate::App;
use crate::api::{AppError, Caller, json};

/// Comments and suggestions (sharing, invites, tasks and recognition: `sharing_api`).
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/sessions/{id}/comments", get(comments))
        .route("/v1/sessions/{id}/suggestions", get(suggestions))
        .route("/v1/notifications", get(notifications))
        .route("/v1/notifications/read", post(mark_read))
}

/// Items per `GET /v1/notifications` page at most (and by default).
const MAX_NOTIFICATIONS_PAGE: u32 = 100;
/// Ids one `POST /v1/notifications/read` may name.
const MAX_READ_IDS: usize = 1_000;

#[derive(Debug, serde::Deserialize)]
struct InboxQuery {
    #[serde(default)]
    unread: bool,
    /// Only items older than this (ms since the epoch): the next page.
    before: Option<i64>,
    limit: Option<u32>,
}

fn no_inbox() -> AppError {
    AppError(
        ErrorCode::NotSupported,
        "this store keeps no notifications".into(),
    )
}

/// `GET /v1/notifications?unread=true&before=T&limit=N`: the caller's inbox, newest first
/// (DESIGN §9.6). A token scoped to some sessions sees only their items.
async fn notifications(
    State(app): State<Arc<App>>,
    Query(q): Query<InboxQuery>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    let inbox = app.store.notifications().ok_or_else(no_inbox)?;
    let limit = q
        .limit
        .unwrap_or(MAX_NOTIFICATIONS_PAGE)
        .clamp(1, MAX_NOTIFICATIONS_PAGE);
    let mut items = inbox
        .notifications(&claims.sub, q.unread, q.before, limit)
        .await?;
    if let Some(scope) = claims.principal().scope {
        items.retain(|n| scope.role_in(&n.session).is_some_and(|r| r >= Role::Viewer));
    }
    let body = serde_json::json!({ "notifications": items });
    Ok(json(StatusCode::OK, body.to_string()))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    ids: Option<Vec<String>>,
    #[serde(default)]
    all: bool,
}

/// `POST /v1/notifications/read` with `{"ids":[…]}` or `{"all":true}` → `{"marked":N}`.
async fn mark_read(
    State(app): State<Arc<App>>,
    Caller(claims): Caller,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let inbox = app.store.notifications().ok_or_else(no_inbox)?;
    let b: ReadBody = crate::api::json_body(&body, r#"{"ids":[…]} or {"all":true}"#)?;
    let ids = match (b.ids, b.all) {
        (Some(ids), false) if ids.len() <= MAX_READ_IDS => Some(ids),
        (Some(_), false) => {
            return Err(AppError(
                ErrorCode::TooLarge,
                format!("at most {MAX_READ_IDS} ids at once; or {{\"all\":true}}"),
            ));
        }
        (None, true) => None,
        _ => {
            return Err(AppError(
                ErrorCode::BadRequest,
                r#"expected {"ids":[…]} or {"all":true}"#.into(),
            ));
        }
    };
    let marked = inbox.mark_read(&claims.sub, ids.as_deref()).await?;
    Ok(json(
        StatusCode::OK,
        serde_json::json!({ "marked": marked }).to_string(),
    ))
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
