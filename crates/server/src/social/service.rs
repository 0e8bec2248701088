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
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use montage_protocol::{ErrorCode, Role, ServerMessage, encode};
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::store::tasks::{Award, Contribution, Invite, InviteRefusal, TaskRecord};
use crate::store::{SessionMeta, Store, TaskStore};
use crate::tasks::connectors::{Connector, ConnectorConfig, WebhookSender};
use crate::tasks::{TaskConfig, TaskManager, TaskRequest, now_ms, random_id, task_info};

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
        }
    }
}

/// The non-monetary recognition kinds of the system design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecognitionType {
    /// Highlighted in community showcases. Owner only.
    FeaturedCreator,
    /// Featured in community newsletters. Owner only.
    CommunitySpotlight,
    /// Collectible badges for milestones: given by the rules in [`BADGE_RULES`], never by hand.
    AchievementBadge,
    /// A public acknowledgment posted to the feed connectors (Yapper, Allat).
    SocialRecognition,
}

impl RecognitionType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecognitionType::FeaturedCreator => "featured_creator",
            RecognitionType::CommunitySpotlight => "community_spotlight",
            RecognitionType::AchievementBadge => "achievement_badge",
            RecognitionType::SocialRecognition => "social_recognition",
        }
    }

    pub fn parse(s: &str) -> Option<RecognitionType> {
        [
            RecognitionType::FeaturedCreator,
            RecognitionType::CommunitySpotlight,
            RecognitionType::AchievementBadge,
            RecognitionType::SocialRecognition,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// What people do that counts towards badges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContributionKind {
    /// An edit of theirs was applied and stored.
    EditAccepted,
    /// Their comment was resolved by somebody else (the caller checks it was somebody else).
    CommentResolvedByOther,
    /// Their suggestion was accepted.
    SuggestionAccepted,
    /// They shared the project with someone (one per recipient).
    Share,
}

impl ContributionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContributionKind::EditAccepted => "edit_accepted",
            ContributionKind::CommentResolvedByOther => "comment_resolved_by_other",
            ContributionKind::SuggestionAccepted => "suggestion_accepted",
            ContributionKind::Share => "share",
        }
    }
}

/// Badge rules: `(badge, contribution, count)` — a user whose count of that contribution in a
/// session reaches the threshold gets the badge for that session, once.
pub const BADGE_RULES: &[(&str, ContributionKind, u64)] = &[
    ("first_edit", ContributionKind::EditAccepted, 1),
    ("hundred_edits", ContributionKind::EditAccepted, 100),
    (
        "helpful_commenter",
        ContributionKind::CommentResolvedByOther,
        1,
    ),
    ("good_suggestion", ContributionKind::SuggestionAccepted, 1),
    ("five_suggestions", ContributionKind::SuggestionAccepted, 5),
    ("first_share", ContributionKind::Share, 1),
    ("ambassador", ContributionKind::Share, 10),
];

/// Contributions counted but not yet written, summed per (session, user, kind). A burst of
/// thousands of edits costs one counter per contributor, not an event each, so nothing is lost
/// to a full queue and adding never waits.
#[derive(Default)]
pub struct ContributionTally {
    sums: Mutex<HashMap<(String, String, ContributionKind), u64>>,
    ready: tokio::sync::Notify,
}

impl ContributionTally {
    pub fn add(&self, session: &str, user: &str, kind: ContributionKind) {
        let mut sums = self.sums.lock().unwrap_or_else(|p| p.into_inner());
        let key = (session.to_owned(), user.to_owned(), kind);
        if sums.len() >= CONTRIBUTION_KEYS && !sums.contains_key(&key) {
            tracing::warn!(
                session,
                user,
                kind = kind.as_str(),
                "too many contributors waiting to be counted; dropped"
            );
            return;
        }
        *sums.entry(key).or_default() += 1;
        drop(sums);
        // Stores a permit when the recorder is busy: no wake-up is lost.
        self.ready.notify_one();
    }

    fn take(&self) -> HashMap<(String, String, ContributionKind), u64> {
        std::mem::take(&mut *self.sums.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Counts that could not be written go back, to be tried again at the next flush.
    fn put_back(&self, sums: HashMap<(String, String, ContributionKind), u64>) {
        let mut now = self.sums.lock().unwrap_or_else(|p| p.into_inner());
        for (key, n) in sums {
            *now.entry(key).or_default() += n;
        }
        drop(now);
        self.ready.notify_one();
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

/// What an award gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Reward {
    /// Unique per award: awarding the same again gives the same id and nothing new.
    pub id: String,
    pub asset_id: String,
    pub creator_id: String,
    pub kind: RecognitionType,
    pub badge: Option<String>,
    pub awarded_by: Option<String>,
    /// Stored when the call returned (the async API), or only queued (the synchronous call).
    pub durable: bool,
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

pub fn award_json(a: &Award) -> Json {
    json!({
        "id": a.key,
        "session": a.session,
        "user": a.user,
        "type": a.kind,
        "badge": a.badge,
        "awarded_by": a.awarded_by,
        "at": a.at_ms,
    })
}

fn refused(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::refused(code, message)
}

/// Percent-encodes a path segment.
fn segment(s: &str) -> String {
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

fn check_user_id(what: &str, id: &str) -> Result<()> {
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
}

struct Inner {
    store: Arc<dyn Store>,
    tasks: Arc<TaskManager>,
    sessions: Option<Arc<dyn SessionLink>>,
    cfg: SharingConfig,
    public_url: String,
    metas: Mutex<HashMap<String, SessionMeta>>,
    contributions: Arc<ContributionTally>,
    awards: mpsc::Sender<(String, Reward)>,
    cancel: CancellationToken,
    workers: TaskTracker,
}

/// Sharing through the Task Manager, invites, contributions and recognition. Cheap to clone.
#[derive(Clone)]
pub struct MediaCollaborationService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MediaCollaborationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaCollaborationService")
            .field("public_url", &self.inner.public_url)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Current {
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

    /// Runs `f` with this service and `acting_user` as the current ones, for the system design's
    /// receiver-less calls inside it.
    pub async fn scope<F: std::future::Future>(&self, acting_user: &str, f: F) -> F::Output {
        let cur = Current {
            service: self.clone(),
            acting: Arc::from(acting_user),
        };
        CURRENT.scope(cur, f).await
    }

    fn current() -> Result<Current> {
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
            .share(sharer_id.as_ref(), asset_id.as_ref(), &recipients, None)
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

    /// Checks `user` has at least `role` in `session`.
    pub async fn require(&self, session: &str, user: &str, role: Role) -> Result<SessionMeta> {
        let meta = self.meta(session).await?;
        if meta.role_of(user) < role {
            return Err(refused(
                ErrorCode::Forbidden,
                format!("needs {} or above", role.as_str()),
            ));
        }
        Ok(meta)
    }

    /// Queues a contribution for the recorder without waiting (the session actors call this
    /// through `Sessions::record_contribution`; comments and suggestions call either).
    pub fn record_contribution(&self, session: &str, user: &str, kind: ContributionKind) {
        self.inner.contributions.add(session, user, kind);
    }

    /// Shares `session` from `sharer` with each recipient: validates them all, then creates one
    /// durable task per recipient. `idempotency` (an `Idempotency-Key`) makes a repeated request
    /// return the same tasks.
    pub async fn share(
        &self,
        sharer: &str,
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
        let meta = self.require(session, sharer, Role::Viewer).await?;
        let my_role = meta.role_of(sharer);
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
        Ok(inv)
    }

    /// A link invite (editor or owner only; public ones give at most commenter).
    pub async fn create_invite(
        &self,
        creator: &str,
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
        self.check_invite_role(meta.role_of(creator), role, for_user.is_some())?;
        self.new_invite(creator, session, role, expires_in_s, max_uses, for_user)
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
                .map_err(|code| refused(code, "could not grant the role; try again"))?,
            None => {
                let meta = self.meta(&inv.session).await?;
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
    pub async fn revoke_invite(&self, user: &str, id: &str) -> Result<()> {
        let inv = self
            .db()
            .invite(id)
            .await?
            .ok_or_else(|| refused(ErrorCode::NotFound, "no such invite"))?;
        let meta = self.meta(&inv.session).await?;
        if inv.created_by != user && meta.role_of(user) < Role::Owner {
            return Err(refused(
                ErrorCode::Forbidden,
                "only its creator or an owner revokes an invite",
            ));
        }
        self.db().revoke_invite(id).await?;
        Ok(())
    }

    fn reward_for(
        awarder: &str,
        asset: &str,
        creator: &str,
        kind: RecognitionType,
        meta: &SessionMeta,
        feeds: bool,
    ) -> Result<Reward> {
        check_user_id("creator_id", creator)?;
        if awarder == creator {
            return Err(refused(ErrorCode::Forbidden, "nobody awards themselves"));
        }
        match kind {
            RecognitionType::AchievementBadge => {
                return Err(refused(
                    ErrorCode::BadRequest,
                    "achievement badges are awarded by rules on contributions",
                ));
            }
            RecognitionType::FeaturedCreator | RecognitionType::CommunitySpotlight => {
                if meta.owner != awarder {
                    return Err(refused(
                        ErrorCode::Forbidden,
                        "only the session owner awards this",
                    ));
                }
            }
            RecognitionType::SocialRecognition => {
                if meta.role_of(awarder) < Role::Viewer {
                    return Err(refused(ErrorCode::Forbidden, "no access to this session"));
                }
                if !feeds {
                    return Err(refused(
                        ErrorCode::NotSupported,
                        "no feed connector (yapper, allat) is configured",
                    ));
                }
            }
        }
        let id = match kind {
            RecognitionType::SocialRecognition => {
                format!("{}:{asset}:{creator}:{awarder}", kind.as_str())
            }
            _ => format!("{}:{asset}:{creator}", kind.as_str()),
        };
        Ok(Reward {
            id,
            asset_id: asset.to_owned(),
            creator_id: creator.to_owned(),
            kind,
            badge: None,
            awarded_by: Some(awarder.to_owned()),
            durable: false,
        })
    }

    fn has_feeds(&self) -> bool {
        Connector::FEEDS
            .iter()
            .any(|c| self.inner.tasks.has_connector(*c))
    }

    /// Awards `kind` to `creator` for `asset`, by `awarder`; stored when it returns. Awarding
    /// the same again returns the same reward.
    pub async fn award(
        &self,
        awarder: &str,
        asset: &str,
        creator: &str,
        kind: RecognitionType,
    ) -> Result<Reward> {
        let meta = self.meta(asset).await?;
        let mut reward = Self::reward_for(awarder, asset, creator, kind, &meta, self.has_feeds())?;
        self.store_reward(&reward).await?;
        reward.durable = true;
        Ok(reward)
    }

    /// The synchronous award: decided from the cached metadata, stored by the award writer.
    pub fn award_now(
        &self,
        awarder: &str,
        asset: &str,
        creator: &str,
        kind: RecognitionType,
    ) -> Result<Reward> {
        let meta = self
            .inner
            .metas
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(asset)
            .cloned()
            .ok_or_else(|| {
                refused(
                    ErrorCode::NotFound,
                    format!("asset {asset} is not known to this service yet (use award)"),
                )
            })?;
        let reward = Self::reward_for(awarder, asset, creator, kind, &meta, self.has_feeds())?;
        self.inner
            .awards
            .try_send((awarder.to_owned(), reward.clone()))
            .map_err(|_| refused(ErrorCode::RateLimited, "too many awards queued"))?;
        Ok(reward)
    }

    async fn store_reward(&self, r: &Reward) -> Result<()> {
        let award = Award {
            key: r.id.clone(),
            session: r.asset_id.clone(),
            user: r.creator_id.clone(),
            kind: r.kind.as_str().to_owned(),
            badge: r.badge.clone(),
            awarded_by: r.awarded_by.clone(),
            at_ms: now_ms(),
        };
        // The feed tasks carry keys derived from the award, so a retry after a crash between the
        // two writes creates them then, and never twice.
        self.db().insert_award(&award).await?;
        if r.kind == RecognitionType::SocialRecognition {
            let awarder = r.awarded_by.clone().unwrap_or_default();
            for c in Connector::FEEDS {
                if !self.inner.tasks.has_connector(c) {
                    continue;
                }
                self.inner
                    .tasks
                    .submit(TaskRequest {
                        key: format!("{}:{}", r.id, c.as_str()),
                        kind: "recognition.social".into(),
                        session: Some(r.asset_id.clone()),
                        created_by: awarder.clone(),
                        connector: c,
                        body: json!({
                            "type": "social_recognition", "network": c.as_str(),
                            "asset_id": r.asset_id, "creator": r.creator_id, "awarded_by": awarder,
                            "text": format!("{awarder} recognises {} for their work", r.creator_id),
                            "preview_url": self.preview_url(&r.asset_id),
                        }),
                    })
                    .await?;
            }
        }
        Ok(())
    }

    async fn write_awards(self, mut rx: mpsc::Receiver<(String, Reward)>) {
        loop {
            let next = tokio::select! {
                m = rx.recv() => m,
                _ = self.inner.cancel.cancelled() => {
                    rx.close();
                    rx.recv().await
                }
            };
            let Some((awarder, reward)) = next else { break };
            // Re-checked against fresh metadata: the synchronous decision used a cache.
            let ok = match self.meta(&reward.asset_id).await {
                Ok(meta) => Self::reward_for(
                    &awarder,
                    &reward.asset_id,
                    &reward.creator_id,
                    reward.kind,
                    &meta,
                    self.has_feeds(),
                ),
                Err(e) => Err(e),
            };
            let r = match ok {
                Ok(r) => self.store_reward(&r).await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                tracing::warn!(award = %reward.id, error = %e, "queued award not stored");
            }
        }
    }

    async fn record_contributions(self) {
        let tally = self.inner.contributions.clone();
        loop {
            let closing = tokio::select! {
                _ = tally.ready.notified() => false,
                _ = self.inner.cancel.cancelled() => true,
            };
            // Gather for a moment: one transaction (one fsync) per flush, not per edit, so
            // counting never competes with the edit committer for the disk.
            if !closing {
                tokio::select! {
                    _ = tokio::time::sleep(CONTRIBUTION_FLUSH) => {}
                    _ = self.inner.cancel.cancelled() => {}
                }
            }
            let sums = tally.take();
            if !sums.is_empty() {
                self.write_contributions(sums).await;
            }
            if closing || self.inner.cancel.is_cancelled() {
                // Whatever came in while writing goes too.
                let rest = tally.take();
                if !rest.is_empty() {
                    self.write_contributions(rest).await;
                }
                break;
            }
        }
    }

    /// Adds the counts to the store and gives the badges whose thresholds they crossed.
    async fn write_contributions(&self, sums: HashMap<(String, String, ContributionKind), u64>) {
        let adds: Vec<Contribution> = sums
            .iter()
            .map(|((s, u, k), n)| Contribution {
                session: s.clone(),
                user: u.clone(),
                kind: k.as_str().to_owned(),
                count: *n,
            })
            .collect();
        let totals = match self.db().add_contributions(&adds).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, rows = adds.len(), "recording contributions failed; retrying at the next flush");
                self.inner.contributions.put_back(sums);
                return;
            }
        };
        for (t, add) in totals.iter().zip(&adds) {
            let before = t.count.saturating_sub(add.count);
            for (badge, kind, threshold) in BADGE_RULES {
                if kind.as_str() != t.kind || *threshold > t.count || *threshold <= before {
                    continue;
                }
                let award = Award {
                    key: format!("achievement_badge:{}:{}:{badge}", t.session, t.user),
                    session: t.session.clone(),
                    user: t.user.clone(),
                    kind: RecognitionType::AchievementBadge.as_str().to_owned(),
                    badge: Some((*badge).to_owned()),
                    awarded_by: None,
                    at_ms: now_ms(),
                };
                if let Err(e) = self.db().insert_award(&award).await {
                    tracing::error!(error = %e, "awarding a badge failed");
                }
            }
        }
    }
}

/// Where the session actors count contributions (set once by the service).
pub(crate) type ContributionSink = OnceLock<Arc<ContributionTally>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::tasks::connectors::MemorySender;

    async fn service() -> (MediaCollaborationService, Arc<MemorySender>) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        store.create_session("s", "owner").await.unwrap();
        let mut cfg = SharingConfig::default();
        cfg.connectors
            .add_url("messenger=http://127.0.0.1:9/m")
            .unwrap();
        cfg.connectors
            .add_url("yapper=http://127.0.0.1:9/y")
            .unwrap();
        cfg.connectors.secret = b"k".to_vec();
        let sender = Arc::new(MemorySender::new());
        let svc = MediaCollaborationService::start(
            store,
            cfg,
            "http://m.example/".into(),
            sender.clone(),
            None,
        )
        .unwrap();
        (svc, sender)
    }

    fn code(r: Result<impl std::fmt::Debug>) -> ErrorCode {
        match r {
            Err(Error::Refused { code, .. }) => code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn award_rules() {
        let (svc, _) = service().await;
        let spot = RecognitionType::CommunitySpotlight;
        assert_eq!(
            code(svc.award("owner", "s", "owner", spot).await),
            ErrorCode::Forbidden
        );
        assert_eq!(
            code(svc.award("bob", "s", "carol", spot).await),
            ErrorCode::Forbidden
        );
        assert_eq!(
            code(
                svc.award("owner", "s", "bob", RecognitionType::AchievementBadge)
                    .await
            ),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(svc.award("owner", "nope", "bob", spot).await),
            ErrorCode::NotFound
        );
        let a = svc.award("owner", "s", "bob", spot).await.unwrap();
        let b = svc.award("owner", "s", "bob", spot).await.unwrap();
        assert_eq!((a.id.clone(), a.durable), (b.id, true));
        assert_eq!(svc.db().awards(Some("s"), None).await.unwrap().len(), 1);
        // Outside a scope there is no caller.
        assert!(MediaCollaborationService::award_recognition("s", "bob", spot).is_err());
        svc.shutdown().await;
    }

    /// More contributions at once than any queue would hold: every one is counted.
    #[tokio::test]
    async fn a_burst_of_contributions_is_counted_whole() {
        let (svc, _) = service().await;
        for i in 0..20_000 {
            let user = if i % 2 == 0 { "bob" } else { "carol" };
            svc.record_contribution("s", user, ContributionKind::EditAccepted);
        }
        svc.shutdown().await; // drains the recorder
        let c = svc.db().contributions(Some("s"), None).await.unwrap();
        assert_eq!(c.iter().map(|c| c.count).sum::<u64>(), 20_000, "{c:?}");
        assert_eq!(c.len(), 2);
    }

    #[tokio::test]
    async fn badges_once_from_contributions() {
        let (svc, _) = service().await;
        for _ in 0..3 {
            svc.record_contribution("s", "bob", ContributionKind::EditAccepted);
        }
        svc.record_contribution("s", "bob", ContributionKind::SuggestionAccepted);
        svc.shutdown().await; // drains the recorder
        let awards = svc.db().awards(Some("s"), Some("bob")).await.unwrap();
        let mut badges: Vec<_> = awards.iter().filter_map(|a| a.badge.clone()).collect();
        badges.sort();
        assert_eq!(badges, ["first_edit", "good_suggestion"]);
        let c = svc
            .db()
            .contributions(Some("s"), Some("bob"))
            .await
            .unwrap();
        assert_eq!(c.iter().map(|c| c.count).sum::<u64>(), 4);
    }

    #[tokio::test]
    async fn share_checks_every_recipient_first() {
        let (svc, _) = service().await;
        let dm = Recipient::DirectMessage {
            user: "bob".into(),
            message: None,
        };
        let allat = Recipient::SocialPost {
            network: "allat".into(),
            message: None,
        };
        // Allat has no URL: nothing at all is created.
        let r = svc.share("owner", "s", &[dm.clone(), allat], None).await;
        assert_eq!(code(r), ErrorCode::NotSupported);
        assert!(svc.db().session_tasks("s", 10).await.unwrap().is_empty());
        let public_editor = svc
            .create_invite("owner", "s", Role::Editor, None, None, None)
            .await;
        assert_eq!(code(public_editor), ErrorCode::Forbidden);
        let t = svc.share("owner", "s", &[dm], Some("k")).await.unwrap();
        assert_eq!(t[0].kind, "share.direct_message");
        let body: Json = serde_json::from_str(&t[0].payload).unwrap();
        assert_eq!(
            body["body"]["preview_url"],
            "http://m.example/v1/sessions/s/preview"
        );
        svc.shutdown().await;
    }
}
