//! Recognition (DESIGN §7): contributions counted as they come, badges awarded by rules once
//! each, Featured Creator and Community Spotlight given by owners, Social Recognition sent to the
//! feeds as tasks. The awards' side of [`MediaCollaborationService`].

use std::collections::HashMap;
use std::sync::Mutex;

use montage_protocol::{ErrorCode, Role};
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;

use super::service::*;
use crate::access::Principal;
use crate::clock::now_ms;
use crate::error::Result;
use crate::store::SessionMeta;
use crate::store::tasks::{Award, Contribution, ShowcaseEntry};
use crate::tasks::TaskRequest;
use crate::tasks::connectors::Connector;

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

    /// Kinds that publish the session's version to the showcase (`social::showcase`).
    pub fn is_showcased(self) -> bool {
        matches!(
            self,
            RecognitionType::FeaturedCreator | RecognitionType::CommunitySpotlight
        )
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

    pub(super) fn take(&self) -> HashMap<(String, String, ContributionKind), u64> {
        std::mem::take(&mut *self.sums.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Counts that could not be written go back, to be tried again at the next flush.
    pub(super) fn put_back(&self, sums: HashMap<(String, String, ContributionKind), u64>) {
        let mut now = self.sums.lock().unwrap_or_else(|p| p.into_inner());
        for (key, n) in sums {
            *now.entry(key).or_default() += n;
        }
        drop(now);
        self.ready.notify_one();
    }
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

impl MediaCollaborationService {
    /// Decides an award by `awarder` (holding `awarder_role` in the session). Recognition is
    /// among members: the awarder must see the session and so must the one awarded.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reward_for(
        awarder: &str,
        awarder_role: Role,
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
        if awarder_role < Role::Viewer {
            return Err(refused(ErrorCode::Forbidden, "no access to this session"));
        }
        if meta.role_of(creator) < Role::Viewer {
            return Err(refused(
                ErrorCode::BadRequest,
                format!("{creator} is not a member of this session"),
            ));
        }
        match kind {
            RecognitionType::AchievementBadge => {
                return Err(refused(
                    ErrorCode::BadRequest,
                    "achievement badges are awarded by rules on contributions",
                ));
            }
            RecognitionType::FeaturedCreator | RecognitionType::CommunitySpotlight => {
                if awarder_role < Role::Owner {
                    return Err(refused(
                        ErrorCode::Forbidden,
                        "only the session owner awards this",
                    ));
                }
            }
            RecognitionType::SocialRecognition => {
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

    pub(super) fn has_feeds(&self) -> bool {
        Connector::FEEDS
            .iter()
            .any(|c| self.inner.tasks.has_connector(*c))
    }

    /// Awards `kind` to `creator` for `asset`, by `awarder`; stored when it returns. Awarding
    /// the same again returns the same reward.
    pub async fn award(
        &self,
        awarder: &Principal,
        asset: &str,
        creator: &str,
        kind: RecognitionType,
    ) -> Result<Reward> {
        let meta = self.meta(asset).await?;
        let role = awarder.role_in(asset, &meta);
        let mut reward = Self::reward_for(
            &awarder.user,
            role,
            asset,
            creator,
            kind,
            &meta,
            self.has_feeds(),
        )?;
        self.take_quota("award", &awarder.user, asset, 1)?;
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
        let role = meta.role_of(awarder);
        let reward =
            Self::reward_for(awarder, role, asset, creator, kind, &meta, self.has_feeds())?;
        self.take_quota("award", awarder, asset, 1)?;
        self.inner
            .awards
            .try_send((awarder.to_owned(), reward.clone()))
            .map_err(|_| refused(ErrorCode::RateLimited, "too many awards queued"))?;
        Ok(reward)
    }

    pub(super) async fn store_reward(&self, r: &Reward) -> Result<()> {
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
        let fresh = self.db().insert_award(&award).await?;
        if let (true, Some(sessions)) = (fresh, &self.inner.sessions) {
            sessions.event(
                "award.granted",
                Some(&r.asset_id),
                json!({"award_id": r.id, "user": r.creator_id, "type": r.kind.as_str(),
                       "badge": r.badge, "awarded_by": r.awarded_by}),
            );
            let actor = r.awarded_by.as_deref().unwrap_or("montage");
            sessions.inbox(super::notifications::Notifier::new_item(
                &r.creator_id,
                montage_protocol::NotificationKind::Award,
                &r.asset_id,
                actor,
            ));
        }
        if r.kind.is_showcased() {
            // Also on an award given before: a first publication that failed is made now.
            self.publish(r).await?;
        }
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

    /// Publishes the session's head version to the showcase under the award, as the awarder
    /// (its owner, who chose to show it) sees it now. The first publication of an award stays.
    async fn publish(&self, r: &Reward) -> Result<()> {
        let Some(sessions) = &self.inner.sessions else {
            return Ok(());
        };
        let awarder = r.awarded_by.as_deref().unwrap_or_default();
        let (version, state) = sessions
            .head(&r.asset_id, awarder)
            .await
            .map_err(|code| refused(code, "could not read the session to publish it"))?;
        let title = self.meta(&r.asset_id).await?.title;
        let entry = ShowcaseEntry {
            award: r.id.clone(),
            session: r.asset_id.clone(),
            kind: r.kind.as_str().to_owned(),
            user: r.creator_id.clone(),
            awarded_by: awarder.to_owned(),
            version,
            title,
            at_ms: now_ms(),
            newsletter: None,
        };
        if self.db().publish(&entry, &state).await? {
            tracing::info!(award = %r.id, session = %r.asset_id, version, "published to the showcase");
        }
        Ok(())
    }

    pub(super) async fn write_awards(self, mut rx: mpsc::Receiver<(String, Reward)>) {
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
                    meta.role_of(&awarder),
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

    pub(super) async fn record_contributions(self) {
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
    pub(super) async fn write_contributions(
        &self,
        sums: HashMap<(String, String, ContributionKind), u64>,
    ) {
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
