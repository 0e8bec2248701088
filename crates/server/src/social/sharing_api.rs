//! HTTP endpoints of the Task Manager, sharing, invites and recognition (docs/PROTOCOL.md).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use montage_protocol::{ErrorCode, Role};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::App;
use crate::api::{AppError, Caller, json};
use crate::social::http::SessionReader;
use crate::social::service::{Recipient, RecognitionType, award_json, invite_json};
use crate::tasks::task_json;

/// Largest request body these endpoints read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Tasks `GET /v1/sessions/{id}/tasks` returns (newest first).
pub const SESSION_TASKS_LIMIT: u32 = 200;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/tasks/{id}", get(task))
        .route("/v1/sessions/{id}/tasks", get(session_tasks))
        .route("/v1/sessions/{id}/share", post(share))
        .route(
            "/v1/sessions/{id}/invites",
            post(create_invite).get(list_invites),
        )
        .route("/v1/invites/{id}", get(show_invite).delete(revoke_invite))
        .route("/v1/invites/{id}/accept", post(accept_invite))
        .route(
            "/v1/sessions/{id}/contributions",
            get(session_contributions),
        )
        .route("/v1/users/{id}/contributions", get(user_contributions))
        .route("/v1/sessions/{id}/awards", get(session_awards).post(award))
        .route("/v1/users/{id}/awards", get(user_awards))
        .route("/v1/users/{id}/recognition", get(user_recognition))
        .route("/v1/events", get(app_events))
}

/// Events per `GET /v1/events` page at most (and by default).
const MAX_EVENTS_PAGE: u32 = 1_000;

#[derive(Debug, Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: u64,
    limit: Option<u32>,
}

/// `GET /v1/events?after=SEQ&limit=N`: the app event log after `SEQ`, in order
/// (`{"events":[{"seq","id","type","session"?,"time","data"}…]}`), for `--service-users` only.
async fn app_events(
    State(app): State<Arc<App>>,
    Query(q): Query<EventsQuery>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    if !app.config.sharing.service_users.contains(&claims.sub) {
        return Err(AppError(
            ErrorCode::Forbidden,
            "the event feed is for the app's service users (serve --service-users)".into(),
        ));
    }
    let log = app.store.events().ok_or_else(|| {
        AppError(
            ErrorCode::NotSupported,
            "this store keeps no event log".into(),
        )
    })?;
    let limit = q.limit.unwrap_or(MAX_EVENTS_PAGE).clamp(1, MAX_EVENTS_PAGE);
    let events: Vec<_> = log
        .events_after(q.after, limit)
        .await?
        .iter()
        .map(crate::store::StoredEvent::to_json)
        .collect();
    Ok(ok(json!({ "events": events })))
}

fn body<T: DeserializeOwned>(b: &Bytes) -> Result<T, AppError> {
    if b.len() > MAX_BODY_BYTES {
        return Err(AppError(
            ErrorCode::TooLarge,
            format!("body over {MAX_BODY_BYTES} bytes"),
        ));
    }
    crate::api::json_body(b, "a JSON object")
}

fn ok(v: serde_json::Value) -> Response {
    json(StatusCode::OK, v.to_string())
}

async fn task(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    let not_found = || AppError(ErrorCode::NotFound, format!("no task {id}"));
    let t = app.collab.db().task(&id).await?.ok_or_else(not_found)?;
    // Visible to whoever created it and to the session's readers; others learn nothing.
    if t.created_by != claims.sub {
        let Some(s) = &t.session else {
            return Err(not_found());
        };
        if app
            .collab
            .require(s, &claims.principal(), Role::Viewer)
            .await
            .is_err()
        {
            return Err(not_found());
        }
    }
    Ok(ok(task_json(&t)))
}

async fn session_tasks(
    State(app): State<Arc<App>>,
    SessionReader(id): SessionReader,
) -> Result<Response, AppError> {
    let tasks = app
        .collab
        .db()
        .session_tasks(&id, SESSION_TASKS_LIMIT)
        .await?;
    Ok(ok(
        json!({"tasks": tasks.iter().map(task_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    recipients: Vec<Recipient>,
}

async fn share(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
    headers: HeaderMap,
    b: Bytes,
) -> Result<Response, AppError> {
    let req: ShareBody = body(&b)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 128);
    let tasks = app
        .collab
        .share(&claims.principal(), &id, &req.recipients, key)
        .await?;
    Ok(json(
        StatusCode::ACCEPTED,
        json!({"tasks": tasks.iter().map(task_json).collect::<Vec<_>>()}).to_string(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    role: Role,
    #[serde(default)]
    expires_in_s: Option<u64>,
    #[serde(default)]
    max_uses: Option<u32>,
    /// Binds the invite to one user (then it may give up to editor).
    #[serde(default, rename = "for")]
    for_user: Option<String>,
}

async fn create_invite(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
    b: Bytes,
) -> Result<Response, AppError> {
    let req: InviteBody = body(&b)?;
    let inv = app
        .collab
        .create_invite(
            &claims.principal(),
            &id,
            req.role,
            req.expires_in_s,
            req.max_uses,
            req.for_user.as_deref(),
        )
        .await?;
    Ok(json(
        StatusCode::CREATED,
        invite_json(&inv, &app.collab.invite_url(&inv.id)).to_string(),
    ))
}

async fn list_invites(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    app.collab
        .require(&id, &claims.principal(), Role::Editor)
        .await?;
    let list = app.collab.db().session_invites(&id).await?;
    let v: Vec<_> = list
        .iter()
        .map(|i| invite_json(i, &app.collab.invite_url(&i.id)))
        .collect();
    Ok(ok(json!({ "invites": v })))
}

async fn show_invite(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(_): Caller,
) -> Result<Response, AppError> {
    let inv = app
        .collab
        .db()
        .invite(&id)
        .await?
        .ok_or_else(|| AppError(ErrorCode::NotFound, "no such invite".into()))?;
    Ok(ok(invite_json(&inv, &app.collab.invite_url(&inv.id))))
}

async fn revoke_invite(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    app.collab.revoke_invite(&claims.principal(), &id).await?;
    Ok(ok(json!({"id": id, "revoked": true})))
}

async fn accept_invite(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    let (session, role) = app.collab.accept_invite(&claims.sub, &id).await?;
    Ok(ok(json!({"session": session, "role": role.as_str()})))
}

fn self_only(claims_sub: &str, user: &str) -> Result<(), AppError> {
    if claims_sub != user {
        return Err(AppError(
            ErrorCode::Forbidden,
            "only your own contributions and awards".into(),
        ));
    }
    Ok(())
}

fn contributions_json(list: &[crate::store::tasks::Contribution]) -> serde_json::Value {
    json!({"contributions": list.iter().map(|c| json!({
        "session": c.session, "user": c.user, "kind": c.kind, "count": c.count,
    })).collect::<Vec<_>>()})
}

async fn session_contributions(
    State(app): State<Arc<App>>,
    SessionReader(id): SessionReader,
) -> Result<Response, AppError> {
    let list = app.collab.db().contributions(Some(&id), None).await?;
    Ok(ok(contributions_json(&list)))
}

async fn user_contributions(
    State(app): State<Arc<App>>,
    Path(user): Path<String>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    self_only(&claims.sub, &user)?;
    let list = app.collab.db().contributions(None, Some(&user)).await?;
    Ok(ok(contributions_json(&list)))
}

async fn session_awards(
    State(app): State<Arc<App>>,
    SessionReader(id): SessionReader,
) -> Result<Response, AppError> {
    let list = app.collab.db().awards(Some(&id), None).await?;
    Ok(ok(
        json!({"awards": list.iter().map(award_json).collect::<Vec<_>>()}),
    ))
}

async fn user_awards(
    State(app): State<Arc<App>>,
    Path(user): Path<String>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    self_only(&claims.sub, &user)?;
    let list = app.collab.db().awards(None, Some(&user)).await?;
    Ok(ok(
        json!({"awards": list.iter().map(award_json).collect::<Vec<_>>()}),
    ))
}

/// `GET /v1/users/{id}/recognition`: a user's badges and awards that the caller may see —
/// those of sessions the caller can view (the people list shows them), newest first:
/// `{"user","badges":[award…],"awards":[award…]}`.
async fn user_recognition(
    State(app): State<Arc<App>>,
    Path(user): Path<String>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    let mut list = app.collab.db().awards(None, Some(&user)).await?;
    let who = claims.principal();
    // One metadata read per session the awards name (the list is bounded by the store).
    let mut visible: std::collections::HashMap<String, bool> = Default::default();
    for a in &list {
        if !visible.contains_key(&a.session) {
            let ok = match app.store.meta(&a.session).await? {
                Some(meta) => who.role_in(&a.session, &meta) >= Role::Viewer,
                None => false,
            };
            visible.insert(a.session.clone(), ok);
        }
    }
    list.retain(|a| visible.get(&a.session).copied().unwrap_or(false));
    list.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then_with(|| b.key.cmp(&a.key)));
    let (badges, awards): (Vec<_>, Vec<_>) = list
        .iter()
        .partition(|a| a.kind == RecognitionType::AchievementBadge.as_str());
    Ok(ok(json!({
        "user": user,
        "badges": badges.into_iter().map(award_json).collect::<Vec<_>>(),
        "awards": awards.into_iter().map(award_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AwardBody {
    user: String,
    #[serde(rename = "type")]
    kind: String,
}

async fn award(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
    b: Bytes,
) -> Result<Response, AppError> {
    let req: AwardBody = body(&b)?;
    let kind = RecognitionType::parse(&req.kind).ok_or_else(|| {
        AppError(
            ErrorCode::BadRequest,
            "type is featured_creator, community_spotlight, achievement_badge or social_recognition"
                .into(),
        )
    })?;
    let r = app
        .collab
        .award(&claims.principal(), &id, &req.user, kind)
        .await?;
    Ok(json(
        StatusCode::CREATED,
        json!({"id": r.id, "session": r.asset_id, "user": r.creator_id, "type": kind.as_str(),
               "awarded_by": r.awarded_by})
        .to_string(),
    ))
}
