//! `MediaCollaborationService`, the system design's name for sharing and recognition.
//!
//! The asset of the system design's calls is the media project, i.e. the session id: that is
//! what is shared, what has an owner, and what contributions are made to.
//!
//! Two ways to call it:
//! - the ordinary API on a service value: [`MediaCollaborationService::share`],
//!   [`MediaCollaborationService::award`] (both async and durable when they return);
//! - the system design's receiver-less calls, [`MediaCollaborationService::share_media_asset`]
//!   and the synchronous [`MediaCollaborationService::award_recognition`]. They act for the
//!   *current* service and user, set for a piece of async work with
//!   [`MediaCollaborationService::scope`] (a tokio task-local, so two requests on one thread never
//!   see each other's user). A process-wide global would have no acting user, and awards need one:
//!   "nobody awards themselves" and "only owners feature" are rules about who is calling.
//!
//! The synchronous award cannot wait for the store, so it decides from what the service already
//! knows about the asset (its owner never changes; roles are as of the last time the service read
//! them — any share, award or listing does) and hands the award to a bounded queue; a writer
//! re-checks it against fresh metadata and stores it. Its `Reward` says `durable: false`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use montage_protocol::{ErrorCode, Role, ServerMessage, encode};

use crate::access::Principal;
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use super::recognition::{
    BADGE_RULES, ContributionKind, ContributionTally, RecognitionType, Reward, award_json,
};
use crate::clock::{now_ms, random_id};
use crate::error::{Error, Result};
use crate::store::tasks::{Invite, InviteRefusal, TaskRecord};
use crate::store::{SessionMeta, Store, TaskStore};
use crate::tasks::connectors::{Connector, ConnectorConfig, WebhookSender};
use crate::tasks::{TaskConfig, TaskManager, TaskRequest, task_info};

/// Distinct (session, user, kind) counters waiting to be written; a new contributor past it is
/// dropped (and logged) until the next flush. Repeat contributions only add to a counter.
pub const CONTRIBUTION_KEYS: usize = 65_536;
/// Contributions are written at most this often.
pub const CONTRIBUTION_FLUSH: Duration = Duration::from_millis(500);
/// Synchronous awards queued for the writer; more are refused with `rate_limited`.
pub const AWARD_QUEUE: usize = 1_024;
/// Session metadata kept for synchronous decisions.
const META_CACHE: usize = 10_000;

/// Sharing and recognition settings (flags in docs/OPERATIONS.md).
#[derive(Debug, Clone)]
pub struct SharingConfig {
    pub connectors: ConnectorConfig,
    pub tasks: TaskConfig,
    /// The base of links sent out (preview and invite links); default `http://<listen address>`.
    pub public_url: Option<String>,
    pub invite_default_ttl: Duration,
    pub invite_max_ttl: Duration,
    pub invite_max_uses: u32,
    /// Recipients of one share.
    pub max_recipients: usize,
    /// Characters of a share's message.
    pub max_message_chars: usize,
    /// Share recipients one user may send to per hour (each recipient counts).
    pub shares_per_user: u32,
    /// Share recipients per session per hour, whoever shares.
    pub shares_per_session: u32,
    /// Awards one user may give per hour.
    pub awards_per_user: u32,
    /// Awards per session per hour.
    pub awards_per_session: u32,
    /// Token subjects that may read the app event feed (`GET /v1/events`).
    pub service_users: Vec<String>,
    /// How often the community newsletter goes out (`None`: only when asked,
    /// `POST /v1/newsletters`).
    pub newsletter_every: Option<Duration>,
}

impl Default for SharingConfig {
    fn default() -> SharingConfig {
        SharingConfig {
            connectors: ConnectorConfig {
                timeout: Duration::from_secs(10),
                ..ConnectorConfig::default()
            },
            tasks: TaskConfig::default(),
            public_url: None,
            invite_default_ttl: Duration::from_secs(7 * 86_400),
            invite_max_ttl: Duration::from_secs(30 * 86_400),
            invite_max_uses: 10_000,
            max_recipients: 50,
            max_message_chars: 1_000,
            shares_per_user: 100,
            shares_per_session: 200,
            awards_per_user: 100,
            awards_per_session: 200,
            service_users: Vec::new(),
            newsletter_every: Some(Duration::from_secs(7 * 86_400)),
        }
    }
}

/// Who a share goes to.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Recipient {
    /// A direct message (Messenger connector) with the rendered preview link.
    DirectMessage {
        user: String,
        #[serde(default)]
        message: Option<String>,
    },
    /// A post on a social network (`yapper` or `allat`) with the rendered preview link.
    SocialPost {
        network: String,
        #[serde(default)]
        message: Option<String>,
    },
    /// An invite link bound to `user` with `role`, sent to them by direct message.
    Invite {
        user: String,
        role: Role,
        #[serde(default)]
        expires_in_s: Option<u64>,
        #[serde(default)]
        max_uses: Option<u32>,
    },
}

/// The JSON of an invite (without its link).
pub fn invite_json(i: &Invite, url: &str) -> Json {
    json!({
        "id": i.id,
        "url": url,
        "session": i.session,
        "role": i.role.as_str(),
        "for": i.for_user,
        "expires_at": i.expires_at_ms.map(|ms| ms / 1000),
        "max_uses": i.max_uses,
        "uses": i.uses,
        "revoked": i.revoked,
        "created_by": i.created_by,
    })
}

pub(super) fn refused(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::refused(code, message)
}

/// Percent-encodes a path segment.
pub(super) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn check_user_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 128 {
        return Err(refused(
            ErrorCode::BadRequest,
            format!("{what} must be 1 to 128 bytes"),
        ));
    }
    Ok(())
}

/// How the service reaches the sessions Media Sync has loaded (`sync::Sessions` implements it),
/// so Social needs nothing of Media Sync's insides.
pub trait SessionLink: Send + Sync + 'static {
    /// Pushes a frame to the participants of a session on every node, without waiting.
    fn notify(&self, session: &str, frame: String);
    /// Gives `user` at least `role` in an existing session; answers the role they hold.
    fn grant<'a>(
        &'a self,
        session: &'a str,
        user: &'a str,
        role: Role,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<Role, ErrorCode>> + Send + 'a>>;
    /// Where the sessions count their durable edits towards badges.
    fn count_contributions(&self, tally: Arc<ContributionTally>);
    /// Puts an item in a user's inbox (and on their open connections), without waiting.
    fn inbox(&self, n: crate::store::NewNotification);
    /// Records an app event (`tasks::events`), without waiting.
    fn event(&self, kind: &str, session: Option<&str>, data: Json);
    /// The committed version and document (JSON text) of a session `user` may view.
    fn head<'a>(&'a self, session: &'a str, user: &'a str) -> HeadFuture<'a>;
}

/// What [`SessionLink::head`] answers: a session's version and document text.
pub type HeadFuture<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<(u64, String), ErrorCode>> + Send + 'a>>;

pub(super) struct Inner {
    /// Hourly quotas on shares and awards.
    pub(super) quotas: crate::quota::Quotas,
    pub(super) store: Arc<dyn Store>,
    pub(super) tasks: Arc<TaskManager>,
    pub(super) sessions: Option<Arc<dyn SessionLink>>,
    pub(super) cfg: SharingConfig,
    pub(super) public_url: String,
    pub(super) metas: Mutex<HashMap<String, SessionMeta>>,
    pub(super) contributions: Arc<ContributionTally>,
    pub(super) awards: mpsc::Sender<(String, Reward)>,
    pub(super) cancel: CancellationToken,
    pub(super) workers: TaskTracker,
}

/// Sharing through the Task Manager, invites, contributions and recognition. Cheap to clone.
#[derive(Clone)]
pub struct MediaCollaborationService {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for MediaCollaborationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaCollaborationService")
            .field("public_url", &self.inner.public_url)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub(super) struct Current {
    service: MediaCollaborationService,
    acting: Arc<str>,
}

tokio::task_local! {
    static CURRENT: Current;
}

impl MediaCollaborationService {
    /// Starts the Task Manager workers, the contribution recorder and the award writer.
    /// `sessions` (when given) receives `task` frames and role grants from accepted invites.
    pub fn start(
        store: Arc<dyn Store>,
        cfg: SharingConfig,
        public_url: String,
        sender: Arc<dyn WebhookSender>,
        sessions: Option<Arc<dyn SessionLink>>,
    ) -> Result<MediaCollaborationService> {
        let notify = sessions.clone();
        let listener: crate::tasks::TaskListener = Box::new(move |t: &TaskRecord| {
            let (Some(sessions), Some(session)) = (&notify, &t.session) else {
                return;
            };
            let frame = encode(&ServerMessage::Task {
                session: session.clone(),
                task: task_info(t),
            });
            sessions.notify(session, frame);
        });
        let tasks = Arc::new(TaskManager::new(
            store.clone(),
            cfg.tasks.clone(),
            cfg.connectors.clone(),
            sender,
            Some(listener),
        )?);
        let tally = Arc::new(ContributionTally::default());
        let (atx, arx) = mpsc::channel(AWARD_QUEUE);
        let cancel = CancellationToken::new();
        let svc = MediaCollaborationService {
            inner: Arc::new(Inner {
                store,
                tasks: tasks.clone(),
                sessions: sessions.clone(),
                cfg,
                public_url: public_url.trim_end_matches('/').to_owned(),
                quotas: Default::default(),
                metas: Mutex::new(HashMap::new()),
                contributions: tally.clone(),
                awards: atx,
                cancel: cancel.clone(),
                workers: TaskTracker::new(),
            }),
        };
        if let Some(s) = &sessions {
            s.count_contributions(tally);
        }
        let w = &svc.inner.workers;
        w.spawn(tasks.run(cancel.clone()));
        w.spawn(svc.clone().record_contributions());
        w.spawn(svc.clone().write_awards(arx));
        Ok(svc)
    }

    /// Stops the workers (unfinished attempts resume at the next start).
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        self.inner.workers.close();
        self.inner.workers.wait().await;
    }

    /// The Task Manager, to hand work to from elsewhere (the app event log).
    pub fn task_manager(&self) -> Arc<TaskManager> {
        self.inner.tasks.clone()
    }

    pub fn tasks(&self) -> &TaskManager {
        &self.inner.tasks
    }

    pub fn db(&self) -> &dyn TaskStore {
        self.inner.tasks.db()
    }

    pub fn config(&self) -> &SharingConfig {
        &self.inner.cfg
    }

    pub fn invite_url(&self, id: &str) -> String {
        format!("{}/v1/invites/{}", self.inner.public_url, segment(id))
    }

    pub fn preview_url(&self, session: &str) -> String {
        format!(
            "{}/v1/sessions/{}/preview",
            self.inner.public_url,
            segment(session)
        )
    }

    /// The public rendition of a session's version published to the showcase.
    pub fn showcase_url(&self, session: &str, version: u64) -> String {
        format!(
            "{}/v1/showcase/{}/{version}/preview",
            self.inner.public_url,
            segment(session)
        )
    }

    /// Runs `f` with this service and `acting_user` as the current ones, for the system design's
    /// receiver-less calls inside it.
    pub async fn scope<F: std::future::Future>(&self, acting_user: &str, f: F) -> F::Output {
        let cur = Current {
            service: self.clone(),
            acting: Arc::from(acting_user),
        };
        CURRENT.scope(cur, f).await
    }

    pub(super) fn current() -> Result<Current> {
        CURRENT.try_with(Current::clone).map_err(|_| {
            refused(
                ErrorCode::Internal,
                "no MediaCollaborationService in scope: call it inside MediaCollaborationService::scope",
            )
        })
    }

    /// The system design's share: one task per recipient, for the current service. `sharer_id`
    /// must be the current user.
    pub async fn share_media_asset(
        asset_id: impl AsRef<str>,
        sharer_id: impl AsRef<str>,
        recipients: impl IntoIterator<Item = Recipient>,
    ) -> Result<Vec<TaskRecord>> {
        let cur = Self::current()?;
        if &*cur.acting != sharer_id.as_ref() {
            return Err(refused(
                ErrorCode::Forbidden,
                "you may only share as yourself",
            ));
        }
        let recipients: Vec<Recipient> = recipients.into_iter().collect();
        cur.service
            .share(
                &Principal::new(sharer_id.as_ref(), None),
                asset_id.as_ref(),
                &recipients,
                None,
            )
            .await
    }

    /// The system design's award, by the current user, decided synchronously and stored by a
    /// writer shortly after (see the module docs).
    pub fn award_recognition(
        asset_id: impl AsRef<str>,
        creator_id: impl AsRef<str>,
        kind: RecognitionType,
    ) -> Result<Reward> {
        let cur = Self::current()?;
        cur.service
            .award_now(&cur.acting, asset_id.as_ref(), creator_id.as_ref(), kind)
    }

    /// A session's metadata from the store (and into the cache for synchronous decisions).
    pub async fn meta(&self, session: &str) -> Result<SessionMeta> {
        let meta = self
            .inner
            .store
            .meta(session)
            .await?
            .ok_or_else(|| refused(ErrorCode::NotFound, format!("no session {session}")))?;
        let mut cache = self.inner.metas.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= META_CACHE {
            cache.clear();
        }
        cache.insert(session.to_owned(), meta.clone());
        Ok(meta)
    }

    /// Checks `who` has at least `role` in `session`.
    pub async fn require(&self, session: &str, who: &Principal, role: Role) -> Result<SessionMeta> {
        let meta = self.meta(session).await?;
        if who.role_in(session, &meta) < role {
            return Err(refused(
                ErrorCode::Forbidden,
                format!("needs {} or above", role.as_str()),
            ));
        }
        Ok(meta)
    }

    /// Takes `n` from the hourly quotas of `user` and `session` for `what` (`share`, `award`).
    pub(super) fn take_quota(&self, what: &str, user: &str, session: &str, n: u32) -> Result<()> {
        let cfg = &self.inner.cfg;
        let (per_user, per_session) = match what {
            "share" => (cfg.shares_per_user, cfg.shares_per_session),
            _ => (cfg.awards_per_user, cfg.awards_per_session),
        };
        let keys = [
            (format!("{what}:u:{user}"), per_user),
            (format!("{what}:s:{session}"), per_session),
        ];
        self.inner
            .quotas
            .take(&keys, n, std::time::Instant::now())
            .map_err(|wait| {
                refused(
                    ErrorCode::RateLimited,
                    format!(
                        "hourly {what} quota reached (at most {per_user} per user and {per_session} per session); try again in {} s",
                        wait.as_secs().max(1)
                    ),
                )
            })
    }

    /// Queues a contribution for the recorder without waiting. Shares are counted here; what a
    /// session credits (edits, resolved comments, accepted suggestions) reaches the same tally
    /// through the session observers (`SessionLink::count_contributions`).
    pub fn record_contribution(&self, session: &str, user: &str, kind: ContributionKind) {
        self.inner.contributions.add(session, user, kind);
    }

    /// Shares `session` from `sharer` with each recipient: validates them all, then creates one
    /// durable task per recipient. `idempotency` (an `Idempotency-Key`) makes a repeated request
    /// return the same tasks.
    pub async fn share(
        &self,
        who: &Principal,
        session: &str,
        recipients: &[Recipient],
        idempotency: Option<&str>,
    ) -> Result<Vec<TaskRecord>> {
        let cfg = &self.inner.cfg;
        if recipients.is_empty() || recipients.len() > cfg.max_recipients {
            return Err(refused(
                ErrorCode::BadRequest,
                format!("a share needs 1 to {} recipients", cfg.max_recipients),
            ));
        }
        // Sharing sends the server's messages to people outside Montage: editors only.
        let meta = self.require(session, who, Role::Editor).await?;
        let my_role = who.role_in(session, &meta);
        let sharer: &str = &who.user;
        let need = |c: Connector| {
            if self.inner.tasks.has_connector(c) {
                Ok(())
            } else {
                Err(refused(
                    ErrorCode::NotSupported,
                    format!("the {} connector is not configured", c.as_str()),
                ))
            }
        };
        let check_message = |m: &Option<String>| {
            if m.as_ref()
                .is_some_and(|m| m.chars().count() > cfg.max_message_chars)
            {
                return Err(refused(
                    ErrorCode::TooLarge,
                    format!("a message has at most {} characters", cfg.max_message_chars),
                ));
            }
            Ok(())
        };
        for r in recipients {
            match r {
                Recipient::DirectMessage { user, message } => {
                    check_user_id("user", user)?;
                    check_message(message)?;
                    need(Connector::Messenger)?;
                }
                Recipient::SocialPost { network, message } => {
                    check_message(message)?;
                    let c = Connector::parse(network)
                        .filter(|c| Connector::FEEDS.contains(c))
                        .ok_or_else(|| {
                            refused(ErrorCode::BadRequest, "network must be yapper or allat")
                        })?;
                    need(c)?;
                }
                Recipient::Invite { user, role, .. } => {
                    check_user_id("user", user)?;
                    need(Connector::Messenger)?;
                    self.check_invite_role(my_role, *role, true)?;
                }
            }
        }
        self.take_quota("share", sharer, session, recipients.len() as u32)?;
        let batch = idempotency.map_or_else(random_id, |k| format!("{sharer}:{k}"));
        let preview = self.preview_url(session);
        let mut out = Vec::with_capacity(recipients.len());
        for (i, r) in recipients.iter().enumerate() {
            let key = format!("share:{session}:{batch}:{i}");
            let (kind, connector, body) = match r {
                Recipient::DirectMessage { user, message } => (
                    "share.direct_message",
                    Connector::Messenger,
                    json!({
                        "type": "direct_message", "asset_id": session, "from": sharer, "to": user,
                        "text": message.clone().unwrap_or_else(|| format!("{sharer} shared a media project with you")),
                        "preview_url": preview,
                    }),
                ),
                Recipient::SocialPost { network, message } => {
                    let c = Connector::parse(network).unwrap_or(Connector::Yapper);
                    (
                        "share.social_post",
                        c,
                        json!({
                            "type": "social_post", "network": c.as_str(), "asset_id": session,
                            "author": sharer,
                            "text": message.clone().unwrap_or_else(|| format!("New work from {sharer}")),
                            "preview_url": preview,
                        }),
                    )
                }
                Recipient::Invite {
                    user,
                    role,
                    expires_in_s,
                    max_uses,
                } => {
                    let inv = self
                        .new_invite(
                            sharer,
                            session,
                            *role,
                            *expires_in_s,
                            *max_uses,
                            Some(user.as_str()),
                        )
                        .await?;
                    (
                        "share.invite",
                        Connector::Messenger,
                        json!({
                            "type": "collaboration_invite", "asset_id": session, "from": sharer,
                            "to": user, "role": role.as_str(), "invite_url": self.invite_url(&inv.id),
                            "expires_at": inv.expires_at_ms.map(|ms| ms / 1000),
                            "preview_url": preview,
                        }),
                    )
                }
            };
            let (t, fresh) = self
                .inner
                .tasks
                .submit(TaskRequest {
                    key,
                    kind: kind.into(),
                    session: Some(session.to_owned()),
                    created_by: sharer.to_owned(),
                    connector,
                    body,
                })
                .await?;
            if fresh {
                self.record_contribution(session, sharer, ContributionKind::Share);
            }
            out.push(t);
        }
        Ok(out)
    }

    fn check_invite_role(&self, mine: Role, role: Role, targeted: bool) -> Result<()> {
        if mine < Role::Editor {
            return Err(refused(
                ErrorCode::Forbidden,
                "only editors and owners invite",
            ));
        }
        if role == Role::Owner {
            return Err(refused(
                ErrorCode::BadRequest,
                "an invite cannot make owners",
            ));
        }
        if role > mine {
            return Err(refused(
                ErrorCode::Forbidden,
                "an invite cannot give more than your role",
            ));
        }
        if !targeted && role > Role::Commenter {
            return Err(refused(
                ErrorCode::Forbidden,
                "public invites are capped at commenter",
            ));
        }
        Ok(())
    }

    async fn new_invite(
        &self,
        creator: &str,
        session: &str,
        role: Role,
        expires_in_s: Option<u64>,
        max_uses: Option<u32>,
        for_user: Option<&str>,
    ) -> Result<Invite> {
        let cfg = &self.inner.cfg;
        let ttl = match expires_in_s {
            None => cfg.invite_default_ttl,
            Some(0) => return Err(refused(ErrorCode::BadRequest, "expires_in_s must be > 0")),
            Some(s) if s > cfg.invite_max_ttl.as_secs() => {
                return Err(refused(
                    ErrorCode::BadRequest,
                    format!("expires_in_s is at most {}", cfg.invite_max_ttl.as_secs()),
                ));
            }
            Some(s) => Duration::from_secs(s),
        };
        if max_uses.is_some_and(|m| m == 0 || m > cfg.invite_max_uses) {
            return Err(refused(
                ErrorCode::BadRequest,
                format!("max_uses is 1 to {}", cfg.invite_max_uses),
            ));
        }
        let now = now_ms();
        let inv = Invite {
            id: random_id(),
            session: session.to_owned(),
            role,
            created_by: creator.to_owned(),
            for_user: for_user.map(str::to_owned),
            expires_at_ms: Some(now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
            max_uses,
            uses: 0,
            revoked: false,
            created_at_ms: now,
        };
        self.db().create_invite(&inv).await?;
        if let (Some(user), Some(sessions)) = (for_user, &self.inner.sessions) {
            let mut n = super::notifications::Notifier::new_item(
                user,
                montage_protocol::NotificationKind::Invite,
                session,
                creator,
            );
            n.role = Some(role);
            sessions.inbox(n);
        }
        Ok(inv)
    }

    /// A link invite (editor or owner only; public ones give at most commenter).
    pub async fn create_invite(
        &self,
        who: &Principal,
        session: &str,
        role: Role,
        expires_in_s: Option<u64>,
        max_uses: Option<u32>,
        for_user: Option<&str>,
    ) -> Result<Invite> {
        if let Some(u) = for_user {
            check_user_id("for", u)?;
        }
        let meta = self.meta(session).await?;
        self.check_invite_role(who.role_in(session, &meta), role, for_user.is_some())?;
        self.new_invite(&who.user, session, role, expires_in_s, max_uses, for_user)
            .await
    }

    /// Uses an invite: `user` gets its role in the session unless they already have more.
    /// Returns the session and the role they now hold.
    pub async fn accept_invite(&self, user: &str, id: &str) -> Result<(String, Role)> {
        let inv = match self.db().accept_invite(id, user, now_ms()).await? {
            Ok(inv) => inv,
            Err(r) => {
                let (code, msg) = match r {
                    InviteRefusal::NotFound => (ErrorCode::NotFound, "no such invite"),
                    InviteRefusal::Revoked => (ErrorCode::Forbidden, "invite revoked"),
                    InviteRefusal::Expired => (ErrorCode::Forbidden, "invite expired"),
                    InviteRefusal::Exhausted => (ErrorCode::Forbidden, "invite used up"),
                    InviteRefusal::NotForYou => {
                        (ErrorCode::Forbidden, "invite is for someone else")
                    }
                };
                return Err(refused(code, msg));
            }
        };
        let role = match &self.inner.sessions {
            Some(s) => s
                .grant(&inv.session, user, inv.role)
                .await
                .map_err(|code| match code {
                    ErrorCode::Forbidden => refused(
                        code,
                        "you were removed from this session; only its owner can add you back",
                    ),
                    _ => refused(code, "could not grant the role; try again"),
                })?,
            None => {
                let meta = self.meta(&inv.session).await?;
                if meta.roles.get(user) == Some(&Role::Removed) {
                    return Err(refused(
                        ErrorCode::Forbidden,
                        "you were removed from this session; only its owner can add you back",
                    ));
                }
                let current = meta.role_of(user);
                if current >= inv.role {
                    current
                } else {
                    self.inner
                        .store
                        .set_role(&inv.session, user, inv.role)
                        .await?;
                    inv.role
                }
            }
        };
        Ok((inv.session, role))
    }

    /// Revokes an invite; its creator or an owner of its session may.
    pub async fn revoke_invite(&self, who: &Principal, id: &str) -> Result<()> {
        let inv = self
            .db()
            .invite(id)
            .await?
            .ok_or_else(|| refused(ErrorCode::NotFound, "no such invite"))?;
        let meta = self.meta(&inv.session).await?;
        if inv.created_by != *who.user && who.role_in(&inv.session, &meta) < Role::Owner {
            return Err(refused(
                ErrorCode::Forbidden,
                "only its creator or an owner revokes an invite",
            ));
        }
        self.db().revoke_invite(id).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
