//! Media Sync over HTTP: a session's committed state and its op log, and the management of
//! sessions (DESIGN §9.1): create, list mine, change settings, delete.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use montage_protocol::{ErrorCode, Role};
use serde::Deserialize;

use crate::App;
use crate::access::check_permission;
use crate::api::{AppError, Caller, json};
use crate::store::{NewSession, SessionSummary, SessionUpdate};

/// Most ops one request returns; clients page with `from`.
const MAX_OPS_PER_REQUEST: u64 = 1_000;

/// Most sessions `GET /v1/sessions` lists.
const MAX_LISTED_SESSIONS: u32 = 500;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/sessions", post(create_session).get(my_sessions))
        .route(
            "/v1/sessions/{id}",
            get(session_state)
                .patch(configure_session)
                .delete(delete_session),
        )
        .route("/v1/sessions/{id}/ops", get(session_ops))
        .merge(super::history::routes())
}

/// `POST /v1/sessions` and `PATCH /v1/sessions/{id}` bodies.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    link_role: Option<Role>,
    #[serde(default)]
    encrypted: Option<bool>,
}

fn parse_body(body: &[u8]) -> Result<SessionBody, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(SessionBody::default());
    }
    crate::api::json_body(body, r#"{"title"?, "link_role"?}"#)
}

fn summary_json(s: &SessionSummary) -> serde_json::Value {
    serde_json::json!({
        "id": s.id,
        "title": s.title,
        "role": s.role.as_str(),
        "link_role": s.link_role.as_str(),
        "version": s.version,
        "updated": s.updated,
    })
}

fn refused((code, message): (ErrorCode, String)) -> AppError {
    AppError(code, message)
}

/// `POST /v1/sessions`: a new session with a server-made id (128 random bits), owned by the
/// caller.
async fn create_session(
    State(app): State<Arc<App>>,
    Caller(claims): Caller,
    body: Bytes,
) -> Result<Response, AppError> {
    let b = parse_body(&body)?;
    if claims.sessions.is_some() {
        return Err(AppError(
            ErrorCode::Forbidden,
            "a token with a sessions claim reaches only the sessions it names and creates none"
                .into(),
        ));
    }
    let update = SessionUpdate {
        link_role: b.link_role,
        title: b.title.clone(),
        key_epoch: None,
    };
    super::settings::validate(&update).map_err(refused)?;
    app.sessions
        .may_create_session(&claims.sub)
        .map_err(|m| AppError(ErrorCode::RateLimited, m))?;
    let id = crate::clock::random_id();
    let link_role = b.link_role.unwrap_or(app.config.default_link_role);
    let title = b.title.as_deref().filter(|t| !t.is_empty());
    let new = NewSession {
        owner: &claims.sub,
        link_role,
        title,
        encrypted: b.encrypted == Some(true),
    };
    if !app.store.create_session(&id, new).await? {
        return Err(AppError(
            ErrorCode::Conflict,
            "session id taken; retry".into(),
        ));
    }
    tracing::info!(session = %id, owner = %claims.sub, "session created");
    app.sessions.events.emit(
        "session.created",
        Some(&id),
        serde_json::json!({"owner": claims.sub, "title": title}),
    );
    let s = SessionSummary {
        id,
        title: title.map(str::to_owned),
        role: Role::Owner,
        link_role,
        version: 0,
        updated: crate::clock::now_ms(),
    };
    let mut body = summary_json(&s);
    if b.encrypted == Some(true) {
        body["encrypted"] = serde_json::Value::Bool(true);
    }
    Ok(json(StatusCode::CREATED, body.to_string()))
}

/// `GET /v1/sessions`: the caller's sessions (owned or granted), most recently updated first.
/// With a scoped token: those of them the scope names, with the scope's role.
async fn my_sessions(
    State(app): State<Arc<App>>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    let mut list = app
        .store
        .user_sessions(&claims.sub, MAX_LISTED_SESSIONS)
        .await?;
    if let Some(scope) = claims.principal().scope {
        list.retain_mut(|s| match scope.role_in(&s.id) {
            Some(r) if r >= Role::Viewer => {
                s.role = r;
                true
            }
            _ => false,
        });
    }
    let sessions: Vec<_> = list.iter().map(summary_json).collect();
    Ok(json(
        StatusCode::OK,
        serde_json::json!({ "sessions": sessions }).to_string(),
    ))
}

/// `PATCH /v1/sessions/{id}`: link role and/or title (owner).
async fn configure_session(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
    body: Bytes,
) -> Result<Response, AppError> {
    let b = parse_body(&body)?;
    if b.encrypted.is_some() {
        return Err(AppError(
            ErrorCode::BadRequest,
            "encrypted is chosen when a session is created".into(),
        ));
    }
    let update = SessionUpdate {
        link_role: b.link_role,
        title: b.title,
        key_epoch: None,
    };
    super::settings::validate(&update).map_err(refused)?;
    let c = app
        .sessions
        .configure(&id, claims.principal(), update)
        .await
        .map_err(refused)?;
    let body = serde_json::json!({
        "id": id,
        "title": c.title,
        "role": Role::Owner.as_str(),
        "link_role": c.link_role.as_str(),
        "version": c.version,
    });
    Ok(json(StatusCode::OK, body.to_string()))
}

/// `DELETE /v1/sessions/{id}` (owner): everything of the session goes, its assets' bytes too.
async fn delete_session(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    let assets = app
        .sessions
        .delete(&id, claims.principal())
        .await
        .map_err(refused)?;
    for asset in assets {
        app.media.forget_asset(&asset).await;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The 404 of a session that does not exist (any more).
/// The 409 of what needs an encrypted session's plaintext (state, past states, restores,
/// previews): the server holds none (DESIGN §9.4).
pub(crate) fn encrypted(id: &str) -> AppError {
    AppError(
        ErrorCode::Conflict,
        format!(
            "session {id} is end-to-end encrypted: the server can't read its state; clients \
             decrypt it (and render its previews) themselves"
        ),
    )
}

pub(super) fn no_session(id: &str) -> AppError {
    AppError(
        ErrorCode::NotFound,
        format!("no session {id}: it does not exist or was deleted"),
    )
}

/// The 403 of a session one may not read, saying what to do (as a refused `join` does).
pub(super) fn no_access(id: &str) -> AppError {
    AppError(
        ErrorCode::Forbidden,
        format!("no access to session {id}: ask its owner to share it"),
    )
}

#[derive(Debug, Deserialize)]
struct StateQuery {
    version: Option<u64>,
}

/// `GET /v1/sessions/{id}[?version=V]`: the committed head, or the state at a past version.
async fn session_state(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<StateQuery>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    if let Some(version) = q.version {
        let state = super::history::state_at(&app, &id, &claims.principal(), version).await?;
        return Ok(json(
            StatusCode::OK,
            format!(r#"{{"version":{version},"state":{state}}}"#),
        ));
    }
    match app.sessions.state(&id, &claims.principal()).await {
        Ok((version, state)) => Ok(json(
            StatusCode::OK,
            format!(r#"{{"version":{version},"state":{state}}}"#),
        )),
        Err(ErrorCode::NotFound) => Err(no_session(&id)),
        Err(ErrorCode::Forbidden) => Err(no_access(&id)),
        Err(ErrorCode::Conflict) => Err(encrypted(&id)),
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
    let meta = app.store.meta(&id).await?.ok_or_else(|| no_session(&id))?;
    if !check_permission(&meta, &id, &claims.principal(), Role::Viewer) {
        return Err(no_access(&id));
    }
    let limit = q
        .limit
        .unwrap_or(MAX_OPS_PER_REQUEST)
        .clamp(1, MAX_OPS_PER_REQUEST);
    let ops = app.store.ops_after(&id, q.from, limit).await?;
    // History trimmed by `--history-days` leaves a gap: a reader can't catch up across it.
    if let Some(gap) = ops
        .iter()
        .zip(q.from + 1..)
        .find(|(o, want)| o.version != *want)
    {
        return Err(AppError(
            ErrorCode::NotFound,
            format!(
                "version {} of {id} is no longer in history (trimmed); the next kept is {}: read the whole state instead",
                gap.1, gap.0.version
            ),
        ));
    }
    // The stored op JSON goes out as it is: no parse and re-encode per entry.
    let mut body = String::with_capacity(64 + ops.iter().map(|o| o.ops.len() + 64).sum::<usize>());
    body.push_str(r#"{"ops":["#);
    for (i, o) in ops.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let user = serde_json::to_string(&o.user).unwrap_or_else(|_| "\"\"".into());
        let time = o.time.map_or_else(|| "null".to_owned(), |t| t.to_string());
        // A sealed row is an object (`data`, `key_epoch`, `chain`): its fields go in the entry.
        let body_fields = match o.ops.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(fields) => format!(r#""ops":[],{fields}"#),
            None => format!(r#""ops":{}"#, o.ops),
        };
        body.push_str(&format!(
            r#"{{"version":{},"user":{user},"time":{time},{body_fields}}}"#,
            o.version
        ));
    }
    body.push_str("]}");
    Ok(json(StatusCode::OK, body))
}
