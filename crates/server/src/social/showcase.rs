//! The showcase and the community newsletter: where Featured Creator and Community Spotlight
//! become visible (DESIGN §7, issue #19).
//!
//! Awarding either publishes the session's version at that moment (`recognition::publish`): its
//! owner chose to show it, so every signed-in user may list the showcase and open a read-only
//! picture of exactly that version, even of a private session, and never anything newer. The
//! published document is stored with the entry, so neither later edits nor history retention
//! change what is shown; deleting the session removes it.
//!
//! The newsletter is a durable task through the `newsletter` connector: every
//! `--newsletter-days` (or on `POST /v1/newsletters`) the entries no earlier issue carried go
//! into the next numbered issue (`TaskStore::issue_newsletter` gives each entry to one issue,
//! even with several nodes), delivered once per issue by the Task Manager.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use montage_protocol::ErrorCode;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use tokio_util::sync::CancellationToken;

use super::service::MediaCollaborationService;
use crate::App;
use crate::api::{AppError, Caller, json};
use crate::error::Result;
use crate::store::tasks::{Newsletter, ShowcaseEntry};
use crate::tasks::TaskRequest;
use crate::tasks::connectors::Connector;

/// Entries one `GET /v1/showcase` lists at most (and by default).
const MAX_LISTED: u32 = 200;
/// Entries one newsletter issue carries at most; the rest wait for the next.
pub const MAX_ISSUE_ENTRIES: u32 = 100;
/// How often the schedule looks whether an issue is due.
const CHECK_EVERY: Duration = Duration::from_secs(3600);

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/showcase", get(list))
        .route("/v1/showcase/{session}/{version}/preview", get(preview))
        .route("/v1/newsletters", post(issue_now))
}

fn entry_json(collab: &MediaCollaborationService, e: &ShowcaseEntry) -> Json {
    json!({
        "award": e.award,
        "type": e.kind,
        "session": e.session,
        "title": e.title,
        "user": e.user,
        "awarded_by": e.awarded_by,
        "version": e.version,
        "at": e.at_ms,
        "preview_url": collab.showcase_url(&e.session, e.version),
    })
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    before: Option<i64>,
    limit: Option<u32>,
}

/// `GET /v1/showcase?before=MS&limit=N`: featured creators and spotlighted projects, newest
/// first, for any signed-in user (`{"showcase":[…]}`; page on with `before` = the last `at`).
async fn list(
    State(app): State<Arc<App>>,
    Query(q): Query<ListQuery>,
    Caller(_): Caller,
) -> Result<Response, AppError> {
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_LISTED);
    let entries = app
        .collab
        .db()
        .showcase(q.before.unwrap_or(i64::MAX), limit)
        .await?;
    let list: Vec<_> = entries.iter().map(|e| entry_json(&app.collab, e)).collect();
    Ok(json(
        StatusCode::OK,
        json!({ "showcase": list }).to_string(),
    ))
}

#[derive(Debug, Deserialize)]
struct PreviewQuery {
    tier: Option<String>,
}

/// `GET /v1/showcase/{session}/{version}/preview?tier=T`: the published version's picture for
/// any signed-in user; 404 unless an entry of the showcase shows that version.
async fn preview(
    State(app): State<Arc<App>>,
    Path((session, version)): Path<(String, u64)>,
    Query(q): Query<PreviewQuery>,
    Caller(claims): Caller,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let tier = crate::media::http::tier_param(q.tier.as_deref())?;
    // Read first every time: a session deleted since must not be served from a cache.
    let state = app
        .collab
        .db()
        .showcase_state(&session, version)
        .await?
        .ok_or_else(|| {
            AppError(
                ErrorCode::NotFound,
                format!("version {version} of {session} is not in the showcase"),
            )
        })?;
    crate::media::http::render(
        &app,
        &session,
        version,
        &state,
        true,
        tier,
        &claims.sub,
        &headers,
    )
    .await
}

/// `POST /v1/newsletters`: issues the next newsletter now (`--service-users` only) →
/// 201 `{"newsletter":{"issue","at","entries":[…]}}`, or 200 `{"newsletter":null}` when no
/// entry is new since the last issue.
async fn issue_now(
    State(app): State<Arc<App>>,
    Caller(claims): Caller,
) -> Result<Response, AppError> {
    if !app.config.sharing.service_users.contains(&claims.sub) {
        return Err(AppError(
            ErrorCode::Forbidden,
            "issuing the newsletter is for the app's service users (serve --service-users)".into(),
        ));
    }
    let Some(n) = issue(&app.collab).await? else {
        return Ok(json(
            StatusCode::OK,
            json!({"newsletter": null}).to_string(),
        ));
    };
    let entries: Vec<_> = n
        .entries
        .iter()
        .map(|e| entry_json(&app.collab, e))
        .collect();
    Ok(json(
        StatusCode::CREATED,
        json!({"newsletter": {"issue": n.issue, "at": n.at_ms, "entries": entries}}).to_string(),
    ))
}

/// Issues the next newsletter and hands it to the Task Manager; `None` when nothing is new.
pub async fn issue(collab: &MediaCollaborationService) -> Result<Option<Newsletter>> {
    if !collab.tasks().has_connector(Connector::Newsletter) {
        return Err(crate::error::Error::refused(
            ErrorCode::NotSupported,
            "no newsletter connector is configured (--connector-url newsletter=URL)",
        ));
    }
    // A stop between numbering an issue and submitting its task leaves the newest issue
    // undelivered: it is submitted again first (its task key makes that a no-op otherwise).
    if let Some(last) = collab.db().latest_newsletter().await? {
        submit(collab, &last).await?;
    }
    let issued = collab
        .db()
        .issue_newsletter(crate::clock::now_ms(), MAX_ISSUE_ENTRIES)
        .await?;
    if let Some(n) = &issued {
        submit(collab, n).await?;
        tracing::info!(
            issue = n.issue,
            entries = n.entries.len(),
            "newsletter issued"
        );
    }
    Ok(issued)
}

async fn submit(collab: &MediaCollaborationService, n: &Newsletter) -> Result<()> {
    collab
        .tasks()
        .submit(TaskRequest {
            key: format!("newsletter:{}", n.issue),
            kind: "newsletter".into(),
            session: None,
            created_by: "montage".into(),
            connector: Connector::Newsletter,
            body: newsletter_body(collab, n),
        })
        .await?;
    Ok(())
}

/// The webhook body of an issue: each spotlighted project once (with every creator recognised
/// for it in this issue, shown at its newest published version) and the featured creators.
fn newsletter_body(collab: &MediaCollaborationService, n: &Newsletter) -> Json {
    let mut projects: BTreeMap<&str, (&ShowcaseEntry, Vec<&str>)> = BTreeMap::new();
    let mut creators = Vec::new();
    for e in &n.entries {
        if e.kind == super::service::RecognitionType::CommunitySpotlight.as_str() {
            let p = projects.entry(&e.session).or_insert((e, Vec::new()));
            if e.version > p.0.version {
                p.0 = e;
            }
            p.1.push(&e.user);
        } else {
            creators.push(json!({
                "user": e.user,
                "session": e.session,
                "title": e.title,
                "preview_url": collab.showcase_url(&e.session, e.version),
            }));
        }
    }
    let projects: Vec<_> = projects
        .values()
        .map(|(e, users)| {
            json!({
                "session": e.session,
                "title": e.title,
                "version": e.version,
                "creators": users,
                "preview_url": collab.showcase_url(&e.session, e.version),
            })
        })
        .collect();
    json!({
        "type": "newsletter",
        "issue": n.issue,
        "at": n.at_ms,
        "spotlighted_projects": projects,
        "featured_creators": creators,
    })
}

/// Issues the newsletter whenever `every` has passed since the last issue (checked hourly and
/// at start), until `cancel` fires. Every node may run it: an entry goes into one issue.
pub(crate) fn spawn(collab: MediaCollaborationService, every: Duration, cancel: CancellationToken) {
    let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let due = match collab.db().latest_newsletter().await {
                Ok(last) => {
                    last.is_none_or(|n| n.at_ms.saturating_add(every_ms) <= crate::clock::now_ms())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the last newsletter failed");
                    false
                }
            };
            if !due {
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = issue(&collab) => if let Err(e) = r {
                    // Tried again at the next check.
                    tracing::warn!(error = %e, "issuing the newsletter failed");
                }
            }
        }
    });
}
