//! Media Sync over HTTP: a session's committed state and its op log, and the management of
//! sessions (DESIGN §9.1): create, list mine, change settings, delete.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
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
        .route("/v1/sessions/{id}/state", get(state_download))
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

/// `?version=V` of a state read.
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

/// `GET /v1/sessions/{id}/state?version=V`: the state a `joined.state_ref` names, as the exact
/// JSON bytes its `sha256` (the `ETag`) was taken of, in byte ranges (`Range: bytes=N-`) so a
/// cut download resumes where it stopped. Any version still in history can be read so.
async fn state_download(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<StateQuery>,
    Caller(claims): Caller,
    req: HeaderMap,
) -> Result<Response, AppError> {
    let Some(version) = q.version else {
        return Err(AppError(
            ErrorCode::BadRequest,
            "name the version: ?version=V (a joined's version)".into(),
        ));
    };
    let (state, sha256) =
        super::history::state_download(&app, &id, &claims.principal(), version).await?;
    let etag = format!("\"{sha256}\"");
    let len = state.len() as u64;
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // A version's state never changes.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // `If-Range` naming other bytes: the whole body, not a piece of something else.
    let same = req
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let range = match req.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) if same => byte_range(r, len),
        _ => Ok(None),
    };
    let body = Bytes::from_owner(JsonText(state));
    let (status, body) = match range {
        Ok(None) => (StatusCode::OK, body),
        Ok(Some((start, end))) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
                h.insert(header::CONTENT_RANGE, v);
            }
            let part = body.slice(start as usize..end as usize);
            (StatusCode::PARTIAL_CONTENT, part)
        }
        Err(()) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, h).into_response());
        }
    };
    app.metrics.state_download_bytes.inc_by(body.len() as u64);
    Ok((status, h, body).into_response())
}

/// A state's JSON text as a response body, without copying it.
struct JsonText(Arc<str>);

impl AsRef<[u8]> for JsonText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The one byte range of a `Range` header over `len` bytes, as `start..end`: `Ok(None)` for the
/// whole body (no usable range, or several: RFC 9110 lets a server answer those whole),
/// `Err` when it starts past the end (416).
fn byte_range(header: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (first, last) = (first.trim(), last.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (num(first), num(last)) {
        // `-N`: the last N bytes.
        (None, Some(0)) if first.is_empty() => return Err(()),
        (None, Some(n)) if first.is_empty() => (len.saturating_sub(n), len),
        (Some(a), None) if last.is_empty() => (a, len),
        (Some(a), Some(b)) if a <= b => (a, b.saturating_add(1).min(len)),
        _ => return Ok(None),
    };
    if start >= len {
        return Err(());
    }
    Ok(Some((start, end)))
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

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn byte_ranges_are_read_as_rfc_9110_says() {
        assert_eq!(byte_range("bytes=0-", 10), Ok(Some((0, 10))));
        assert_eq!(byte_range("bytes=4-", 10), Ok(Some((4, 10))));
        assert_eq!(byte_range("bytes=2-5", 10), Ok(Some((2, 6))));
        assert_eq!(byte_range("bytes=2-500", 10), Ok(Some((2, 10))));
        assert_eq!(byte_range("bytes=-3", 10), Ok(Some((7, 10))));
        assert_eq!(byte_range("bytes=-30", 10), Ok(Some((0, 10))));
        assert_eq!(byte_range("bytes=10-", 10), Err(()));
        assert_eq!(byte_range("bytes=-0", 10), Err(()));
        // Whole body: several ranges, other units, nonsense.
        assert_eq!(byte_range("bytes=0-1,4-5", 10), Ok(None));
        assert_eq!(byte_range("items=0-1", 10), Ok(None));
        assert_eq!(byte_range("bytes=5-2", 10), Ok(None));
        assert_eq!(byte_range("bytes=x-", 10), Ok(None));
        assert_eq!(byte_range("bytes=-", 10), Ok(None));
        assert_eq!(byte_range("bytes=18446744073709551615-", 10), Err(()));
    }
}
