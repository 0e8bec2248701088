//! The storage seam of version history (DESIGN §9.3): checkpoints — the document kept whole at
//! points people can return to — and versions people named.
//!
//! Checkpoints are written with snapshots (`Store::commit`, `Store::save_snapshot`): a snapshot
//! also becomes a checkpoint when the session's newest checkpoint is more than
//! [`CHECKPOINT_EVERY_MS`] of commit time or [`CHECKPOINT_EVERY_OPS`] versions behind it. So
//! there is one per five minutes of activity, and the state at any version is the nearest
//! checkpoint at or before it plus a bounded number of ops. Implemented for SQLite and PostgreSQL
//! by `sql.rs` and by `memory/`.

use super::{Snapshot, StoreFuture};

/// Commit time between automatic checkpoints (the system design's 5-minute snapshots).
pub const CHECKPOINT_EVERY_MS: i64 = 5 * 60 * 1000;
/// Versions between automatic checkpoints at most (as far as snapshots come that often): the
/// bound on the ops replayed to compute a state.
pub const CHECKPOINT_EVERY_OPS: u64 = 10_000;
/// Characters of a version's name.
pub const MAX_VERSION_NAME_CHARS: usize = 200;

/// One entry of a session's version list.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionInfo {
    pub version: u64,
    /// Commit time of the version (ms since the epoch); `None` if stored before times were kept.
    pub time: Option<i64>,
    /// Who made the edit that became this version.
    pub user: String,
    /// Set for named versions.
    pub name: Option<String>,
    pub named_by: Option<String>,
}

pub trait HistoryStore: Send + Sync + 'static {
    /// The newest checkpoint (or snapshot) at or before `version`, if any.
    fn base_at<'a>(&'a self, session: &'a str, version: u64) -> StoreFuture<'a, Option<Snapshot>>;
    /// Names `version` (renaming it if named already); `false` if the session has no such
    /// version.
    fn name_version<'a>(
        &'a self,
        session: &'a str,
        version: u64,
        name: &'a str,
        by: &'a str,
    ) -> StoreFuture<'a, bool>;
    /// Checkpoints and named versions below `before`, newest first, at most `limit`.
    fn versions<'a>(
        &'a self,
        session: &'a str,
        before: u64,
        limit: u32,
    ) -> StoreFuture<'a, Vec<VersionInfo>>;
}
