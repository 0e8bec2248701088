//! Version history (DESIGN §9.3): the versions people can return to, names for them, the
//! document at any version still in history, and restoring one.
//!
//! The state at version V is the nearest checkpoint at or before V plus the ops after it
//! (`store::history` keeps checkpoints close enough that this replays a bounded number of ops),
//! computed on the blocking pool and cached by bytes, since a history panel asks for the same
//! few versions again and again.
//!
//! A restore is one ordinary edit: the difference from the head to the old state
//! (`montage_ot::diff`, which touches only what differs), applied by the session's actor like any
//! edit, so concurrent edits are transformed against it and everyone gets one `op`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use montage_protocol::{ErrorCode, Role};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::actor::{Action, Actor, EditRequest};
use super::{ConnHandle, Outbound, SessionMsg};
use crate::App;
use crate::access::{Principal, check_permission};
use crate::api::{AppError, Caller, json};
use crate::byte_lru::ByteLru;
use crate::store::history::{MAX_NAMED_VERSIONS, MAX_VERSION_NAME_CHARS};
use crate::store::{HistoryStore, SessionMeta, Store};

/// Versions one `GET …/versions` lists at most.
const MAX_LISTED_VERSIONS: u32 = 200;
/// Bytes of past states kept for repeated reads.
const STATE_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Their hashes (128 bytes counted each).
const HASH_CACHE_BYTES: u64 = 1024 * 1024;
/// Ops replayed for one state at most; past it (a store whose checkpoints fell behind) the
/// version is treated as trimmed rather than tying up a thread.
const MAX_REPLAY_OPS: u64 = 100_000;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/v1/sessions/{id}/versions",
            get(list_versions).post(name_version),
        )
        .route("/v1/sessions/{id}/restore", post(restore))
}

/// Past states as JSON text, by `session\0version`, and the SHA-256 of those that were
/// downloaded (`joined.state_ref`). A version's state never changes once durable, and its JSON
/// is the same bytes wherever it is encoded (object keys sorted), so any node can serve it.
pub struct StateCache {
    states: ByteLru<Arc<str>>,
    hashes: ByteLru<Arc<str>>,
}

impl Default for StateCache {
    fn default() -> StateCache {
        StateCache {
            states: ByteLru::new(STATE_CACHE_BYTES),
            hashes: ByteLru::new(HASH_CACHE_BYTES),
        }
    }
}

impl StateCache {
    fn key(id: &str, version: u64) -> String {
        format!("{id}\0{version}")
    }

    fn get(&self, id: &str, version: u64) -> Option<Arc<str>> {
        self.states.get(&Self::key(id, version))
    }

    /// Keeps the durable state of `version` (and its hash, when known).
    pub(super) fn insert(&self, id: &str, version: u64, state: Arc<str>, sha256: Option<Arc<str>>) {
        let key = Self::key(id, version);
        if let Some(h) = sha256 {
            self.hashes.insert(&key, h, 128);
        }
        let bytes = state.len() as u64;
        self.states.insert(&key, state, bytes);
    }

    pub(super) fn clear(&self) {
        self.states.clear();
        self.hashes.clear();
    }
}

/// The SHA-256 of `bytes` as lowercase hex: `joined.state_ref.sha256` and the state download's
/// `ETag`.
pub(super) fn sha256_hex(bytes: &[u8]) -> Arc<str> {
    use sha2::Digest;
    Arc::from(hex::encode(sha2::Sha256::digest(bytes)))
}

fn history(store: &dyn Store) -> Result<&dyn HistoryStore, AppError> {
    store.history().ok_or_else(|| {
        AppError(
            ErrorCode::NotSupported,
            "this store keeps no version history".into(),
        )
    })
}

/// The session's metadata, if `who` holds at least `role` in it.
async fn require(
    app: &App,
    id: &str,
    who: &Principal,
    role: Role,
) -> Result<SessionMeta, AppError> {
    let meta = app
        .store
        .meta(id)
        .await?
        .ok_or_else(|| super::http::no_session(id))?;
    if !check_permission(&meta, id, who, Role::Viewer) {
        return Err(super::http::no_access(id));
    }
    if !check_permission(&meta, id, who, role) {
        return Err(AppError(
            ErrorCode::Forbidden,
            format!(
                "{} may not do this; it needs {}",
                who.role_in(id, &meta).as_str(),
                role.as_str()
            ),
        ));
    }
    Ok(meta)
}

/// [`require`] for what needs the session's plain state: an encrypted session's is 409.
async fn require_plain(
    app: &App,
    id: &str,
    who: &Principal,
    role: Role,
) -> Result<SessionMeta, AppError> {
    let meta = require(app, id, who, role).await?;
    if meta.encrypted {
        return Err(super::http::encrypted(id));
    }
    Ok(meta)
}

/// The document at `version` as JSON text, for a caller who may view the session.
pub async fn state_at(
    app: &App,
    id: &str,
    who: &Principal,
    version: u64,
) -> Result<Arc<str>, AppError> {
    require_plain(app, id, who, Role::Viewer).await?;
    past_state(app, id, version).await
}

/// The document at `version` as JSON text, for a caller whose access was checked.
async fn past_state(app: &App, id: &str, version: u64) -> Result<Arc<str>, AppError> {
    if let Some(state) = app.sessions.past_states.get(id, version) {
        return Ok(state);
    }
    let trimmed = || {
        AppError(
            ErrorCode::NotFound,
            format!("version {version} of {id} is not in history"),
        )
    };
    // One replay per core at a time (with heavy rebases): many past states asked for at once
    // queue here instead of taking every thread and their ops' memory.
    let _permit = app.sessions.heavy.clone().acquire_owned().await.ok();
    // Asked for at once by many (a download resumed, several nodes' readers): one replays.
    if let Some(state) = app.sessions.past_states.get(id, version) {
        return Ok(state);
    }
    let base = history(&*app.store)?.base_at(id, version).await?;
    let from = base.as_ref().map_or(0, |b| b.version);
    let count = version - from;
    if count > MAX_REPLAY_OPS {
        return Err(trimmed());
    }
    let ops = app.store.ops_after(id, from, count).await?;
    // Missing ops: past the head, or trimmed (`--history-days` leaves gaps below its point,
    // so the versions read must be exactly from+1 ..= version).
    let whole = ops.len() as u64 == count
        && ops.first().is_none_or(|o| o.version == from + 1)
        && ops.last().is_none_or(|o| o.version == version);
    if !whole {
        return Err(trimmed());
    }
    let session = id.to_owned();
    let state = tokio::task::spawn_blocking(move || {
        let (doc, _) = super::core::replay_ops(base.as_ref(), ops, |_, _| {})?;
        serde_json::to_string(&doc).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|reason| {
        tracing::error!(session = %session, version, %reason, "history replay failed");
        AppError(ErrorCode::Internal, "internal error".into())
    })?;
    let state: Arc<str> = Arc::from(state);
    app.sessions
        .past_states
        .insert(id, version, state.clone(), None);
    Ok(state)
}

/// The state at `version` as it is downloaded (`joined.state_ref`): its exact JSON bytes and
/// their SHA-256, for a caller who may view the session.
pub async fn state_download(
    app: &App,
    id: &str,
    who: &Principal,
    version: u64,
) -> Result<(Arc<str>, Arc<str>), AppError> {
    let cache = &app.sessions.past_states;
    let key = StateCache::key(id, version);
    // The hash taken of these very bytes: a cached hash goes only with the cached state it
    // was taken of (a state replayed after it left the cache is hashed again), so a resume can
    // never splice two encodings under one `ETag`.
    let cached = cache.get(id, version).is_some();
    let state = state_at(app, id, who, version).await?;
    if cached && let Some(h) = cache.hashes.get(&key) {
        return Ok((state, h));
    }
    // Megabytes of hashing: off the async workers.
    let s = state.clone();
    let h = tokio::task::spawn_blocking(move || sha256_hex(s.as_bytes()))
        .await
        .map_err(|_| AppError(ErrorCode::Internal, "internal error".into()))?;
    cache.hashes.insert(&key, h.clone(), 128);
    Ok((state, h))
}

#[derive(Debug, Deserialize)]
struct VersionsQuery {
    before: Option<u64>,
    limit: Option<u32>,
}

/// `GET /v1/sessions/{id}/versions?before=V&limit=N`: checkpoints and named versions, newest
/// first (viewer or above).
async fn list_versions(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<VersionsQuery>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    require(&app, &id, &claims.principal(), Role::Viewer).await?;
    let limit = q
        .limit
        .unwrap_or(MAX_LISTED_VERSIONS)
        .clamp(1, MAX_LISTED_VERSIONS);
    let list = history(&*app.store)?
        .versions(&id, q.before.unwrap_or(u64::MAX >> 1), limit)
        .await?;
    let versions: Vec<_> = list
        .iter()
        .map(|v| {
            let mut j = serde_json::json!({"version": v.version, "time": v.time, "user": v.user});
            if let Some(name) = &v.name {
                j["name"] = name.as_str().into();
                j["named_by"] = v.named_by.as_deref().into();
            }
            j
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        serde_json::json!({ "versions": versions }).to_string(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    version: u64,
    name: String,
}

/// `POST /v1/sessions/{id}/versions` `{"version","name"}`: names a version (editor or above).
async fn name_version(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
    body: Bytes,
) -> Result<Response, AppError> {
    let b: NameBody = crate::api::json_body(&body, r#"{"version", "name"}"#)?;
    let name = b.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_VERSION_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(AppError(
            ErrorCode::BadRequest,
            format!(
                "a name is 1 to {MAX_VERSION_NAME_CHARS} characters without control characters"
            ),
        ));
    }
    let who = claims.principal();
    require_plain(&app, &id, &who, Role::Editor).await?;
    // Each named version keeps a whole copy of the document: a session has a bounded number
    // (renaming one is always allowed).
    let h = history(&*app.store)?;
    let renaming = h
        .versions(&id, b.version + 1, 1)
        .await?
        .first()
        .is_some_and(|v| v.version == b.version && v.name.is_some());
    if !renaming && h.named_count(&id).await? >= MAX_NAMED_VERSIONS {
        return Err(AppError(
            ErrorCode::TooLarge,
            format!(
                "a session has at most {MAX_NAMED_VERSIONS} named versions; rename one instead"
            ),
        ));
    }
    // Kept as the version's own checkpoint, so a named version can always be read back.
    let state = past_state(&app, &id, b.version).await?;
    if !h
        .name_version(&id, b.version, name, &claims.sub, &state)
        .await?
    {
        return Err(AppError(
            ErrorCode::NotFound,
            format!("{id} has no version {}", b.version),
        ));
    }
    app.sessions.events.emit(
        "version.named",
        Some(&id),
        serde_json::json!({"version": b.version, "name": name, "by": claims.sub}),
    );
    Ok(json(
        StatusCode::CREATED,
        serde_json::json!({"version": b.version, "name": name, "named_by": claims.sub}).to_string(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    version: u64,
    /// A layer, track or clip id: restore only that element.
    #[serde(default)]
    id: Option<String>,
}

/// `POST /v1/sessions/{id}/restore` `{"version":V,"id"?}` (editor or above) → `{"version":NEW}`:
/// one edit, credited to the caller, that turns the head into version V's state — or, with
/// `id`, brings back only that layer, track or clip as it was at V.
async fn restore(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Caller(claims): Caller,
    body: Bytes,
) -> Result<Response, AppError> {
    let b: RestoreBody = crate::api::json_body(&body, r#"{"version", "id"?}"#)?;
    let who = claims.principal();
    require_plain(&app, &id, &who, Role::Editor).await?;
    let state = past_state(&app, &id, b.version).await?;
    let target = montage_ot::Value::from_json_str(&state).map_err(|e| {
        tracing::error!(session = %id, version = b.version, error = %e, "stored state unreadable");
        AppError(ErrorCode::Internal, "internal error".into())
    })?;
    // The actor answers like a connection: refusals arrive as `error` frames on this queue.
    let (tx, mut refusals) = mpsc::channel(4);
    let conn = ConnHandle::new(
        u64::MAX - 1,
        Arc::from(claims.sub.as_str()),
        tx,
        Default::default(),
        app.metrics.clone(),
    );
    conn.link().set_scope(who.scope.clone());
    let (reply, done) = oneshot::channel();
    let msg = SessionMsg::Restore {
        conn,
        version: b.version,
        target,
        element: b.id,
        reply,
    };
    if app.sessions.send(&id, msg, true).await.is_err() {
        return Err(AppError(ErrorCode::Internal, "session unavailable".into()));
    }
    match done.await {
        Ok(Ok((version, _))) => Ok(json(
            StatusCode::OK,
            serde_json::json!({ "version": version }).to_string(),
        )),
        Ok(Err(code)) => Err(AppError(code, "could not restore".into())),
        Err(_) => Err(refusal(refusals.try_recv().ok())),
    }
}

/// The `error` frame the actor sent instead of applying the restore, as an HTTP error.
fn refusal(frame: Option<Outbound>) -> AppError {
    let parsed = match frame {
        Some(Outbound::Frame(f)) => serde_json::from_str::<serde_json::Value>(f.as_str()).ok(),
        _ => None,
    };
    let code = parsed
        .as_ref()
        .and_then(|v| serde_json::from_value::<ErrorCode>(v["code"].clone()).ok())
        .unwrap_or(ErrorCode::Internal);
    let message = parsed
        .as_ref()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "could not restore".into());
    AppError(code, message)
}

impl Actor {
    /// Applies the edit that turns the head (or its `element`) into `target`'s as `conn`'s
    /// user's, and replies once it is durable. Nothing to change: the head, once durable.
    pub(super) async fn restore(
        &mut self,
        conn: ConnHandle,
        version: u64,
        target: montage_ot::Value,
        element: Option<String>,
        reply: oneshot::Sender<Result<(u64, String), ErrorCode>>,
    ) {
        if self.reload && !self.shutting_down {
            self.deferred.push(SessionMsg::Restore {
                conn,
                version,
                target,
                element,
                reply,
            });
            return;
        }
        if self.refuse_if_unavailable(&conn, None) {
            return;
        }
        let Some(core) = &self.state else {
            let _ = reply.send(Err(ErrorCode::NotFound));
            return;
        };
        if !check_permission(&core.meta, &self.id, &conn.principal(), Role::Editor) {
            let role = conn.role_in(&self.id, &core.meta);
            conn.error(
                ErrorCode::Forbidden,
                format!("{} may not restore", role.as_str()),
                None,
            );
            return;
        }
        if let Some(id) = &element
            && montage_ot::find_element(&core.doc, id).is_none()
            && montage_ot::find_element(&target, id).is_none()
        {
            // Not a layer, track or clip: a comment thread, if anything.
            let id = id.clone();
            return self.restore_thread(conn, version, &id, reply).await;
        }
        let ops = match &element {
            None => montage_ot::diff(&core.doc, &target),
            Some(id) => match montage_ot::restore_element(&core.doc, &target, id) {
                Some(ops) => ops,
                None => {
                    let message = format!(
                        "no layer, track or clip {id} in the head or that version (or its track is gone)"
                    );
                    conn.error(ErrorCode::NotFound, message, None);
                    return;
                }
            },
        };
        // An edit of more components than a client may send would be unreadable by clients and
        // by the store's own decoder.
        if ops.len() > montage_ot::MAX_COMPONENTS {
            let message = format!(
                "restoring this takes {} changes, more than the {} of one edit; restore one layer, track or clip at a time",
                ops.len(),
                montage_ot::MAX_COMPONENTS
            );
            conn.error(ErrorCode::TooLarge, message, None);
            return;
        }
        let head = core.version;
        let version = if ops.is_empty() {
            head
        } else {
            let client = Arc::from(format!("restore:{}", crate::clock::random_id()));
            let user = conn.user.clone();
            let applied = self
                .apply_edit(
                    &conn,
                    EditRequest::server_made(user, client, head, ops),
                    None,
                )
                .await;
            let Some(version) = applied else {
                return;
            };
            version
        };
        self.when_committed(
            version,
            Action::State {
                reply,
                state: String::new(),
            },
        );
    }
}
