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
/// Named versions per session (each keeps a whole copy of the document).
pub const MAX_NAMED_VERSIONS: u64 = 1_000;

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
    /// Names `version` (renaming it if named already) and keeps `state`, the document at that
    /// version, as its checkpoint, so a named version stays computable whatever is trimmed;
    /// `false` if the session has no such version.
    fn name_version<'a>(
        &'a self,
        session: &'a str,
        version: u64,
        name: &'a str,
        by: &'a str,
        state: &'a str,
    ) -> StoreFuture<'a, bool>;
    /// How many versions of the session are named.
    fn named_count<'a>(&'a self, session: &'a str) -> StoreFuture<'a, u64>;
    /// Checkpoints and named versions below `before`, newest first, at most `limit`.
    fn versions<'a>(
        &'a self,
        session: &'a str,
        before: u64,
        limit: u32,
    ) -> StoreFuture<'a, Vec<VersionInfo>>;
    /// Retention (`serve --history-days`): in every session, the newest checkpoint committed
    /// before `cutoff` (ms since the epoch; at or below the session's snapshot, so loading
    /// never needs what goes) becomes the oldest point of history: the ops and checkpoints
    /// below it go, except named versions, which keep their op entry and checkpoint. The state
    /// at any version at or above it, or named, stays computable; a catch-up or ops read
    /// across the gap is refused (`not_found`), a join behind it gets the whole state.
    /// Idempotent; one short transaction per session.
    fn trim<'a>(&'a self, cutoff: i64) -> StoreFuture<'a, Trimmed>;
}

/// What one [`HistoryStore::trim`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Sessions that lost history.
    pub sessions: u64,
    pub ops: u64,
    pub checkpoints: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoredOp, Write};

    fn op_at(version: u64, time: i64) -> Write {
        Write::Op {
            session: "s".into(),
            op: StoredOp {
                version,
                user: format!("u{version}"),
                client: "c".into(),
                seq: version,
                ops: "[]".into(),
                time: Some(time),
            },
            fence: None,
        }
    }

    fn snapshot_at(version: u64) -> Write {
        Write::Snapshot {
            session: "s".into(),
            snapshot: Snapshot {
                version,
                state: format!("{{\"v\":{version}}}"),
            },
        }
    }

    /// Snapshots become checkpoints at most once per five minutes of commit time (or
    /// `CHECKPOINT_EVERY_OPS` versions), the state's base is the nearest one at or before a
    /// version, and named versions list beside them.
    async fn checkpoints_follow_commit_time(s: &dyn Store) {
        let h = s.history().expect("a history store");
        let t0 = 1_700_000_000_000;
        s.commit(&[op_at(1, t0), snapshot_at(1)]).await.unwrap();
        s.commit(&[op_at(2, t0 + 1_000), snapshot_at(2)])
            .await
            .unwrap();
        let later = t0 + CHECKPOINT_EVERY_MS + 1;
        s.commit(&[op_at(3, later), op_at(4, later + 1)])
            .await
            .unwrap();
        s.save_snapshot(
            "s",
            &Snapshot {
                version: 3,
                state: "{\"v\":3}".into(),
            },
        )
        .await
        .unwrap();
        let listed: Vec<u64> = h
            .versions("s", u64::MAX >> 1, 10)
            .await
            .unwrap()
            .iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(listed, [3, 1], "version 2 came too soon after 1");
        let base = |v| async move { h.base_at("s", v).await.unwrap().map(|b| b.version) };
        assert_eq!(base(2).await, Some(1));
        assert_eq!(base(4).await, Some(3));
        assert!(
            h.name_version("s", 2, "draft", "ann", "{\"v\":2}")
                .await
                .unwrap()
        );
        assert!(!h.name_version("s", 9, "future", "ann", "{}").await.unwrap());
        // A named version is a checkpoint of its own.
        assert_eq!(base(2).await, Some(2));
        assert_eq!(h.named_count("s").await.unwrap(), 1);
        let list = h.versions("s", 3, 10).await.unwrap();
        assert_eq!(
            list[0],
            VersionInfo {
                version: 2,
                time: Some(t0 + 1_000),
                user: "u2".into(),
                name: Some("draft".into()),
                named_by: Some("ann".into()),
            }
        );
        assert_eq!(list.len(), 2);

        // Retention: the newest checkpoint before the cutoff (3) is the oldest point kept;
        // below it only the named version stays. A second trim finds nothing.
        let trimmed = h.trim(later + 2).await.unwrap();
        assert_eq!(
            trimmed,
            Trimmed {
                sessions: 1,
                ops: 1,
                checkpoints: 1
            }
        );
        let listed: Vec<u64> = h
            .versions("s", u64::MAX >> 1, 10)
            .await
            .unwrap()
            .iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(listed, [3, 2]);
        let kept: Vec<u64> = s
            .ops_after("s", 0, 10)
            .await
            .unwrap()
            .iter()
            .map(|o| o.version)
            .collect();
        assert_eq!(kept, [2, 3, 4]);
        assert_eq!(base(2).await, Some(2));
        assert_eq!(h.trim(later + 2).await.unwrap(), Trimmed::default());
    }

    #[tokio::test]
    async fn memory_checkpoints_follow_commit_time() {
        checkpoints_follow_commit_time(&crate::store::MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn sqlite_checkpoints_follow_commit_time() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::SqliteStore::open(dir.path()).await.unwrap();
        checkpoints_follow_commit_time(&s).await;
    }

    #[tokio::test]
    async fn postgres_checkpoints_follow_commit_time() {
        crate::store::postgres::testdb::with_store(
            "postgres_checkpoints_follow_commit_time",
            async |s| checkpoints_follow_commit_time(s).await,
        )
        .await;
    }
}
