//! `TaskStore` on SQLite: tables in the same `montage.db`.

use crate::error::Result;
use crate::store::StoreFuture;
use crate::store::rows::{
    INVITE_COLUMNS, TASK_COLUMNS, award_row, contribution_row, invite_row, task_row, to_u64,
};
use crate::store::tasks::*;

use super::SqliteStore;

/// Tables of this module, created with the rest of the SQLite schema (additive, so the schema
/// version stays 1: an older build simply ignores them).
pub(super) const TASK_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    session TEXT,
    created_by TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    next_run_at INTEGER NOT NULL,
    lease_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_due ON tasks (state, next_run_at);
CREATE INDEX IF NOT EXISTS tasks_by_session ON tasks (session, created_at);
CREATE TABLE IF NOT EXISTS invites (
    id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    role TEXT NOT NULL,
    created_by TEXT NOT NULL,
    for_user TEXT,
    expires_at INTEGER,
    max_uses INTEGER,
    uses INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS invites_by_session ON invites (session);
CREATE TABLE IF NOT EXISTS invite_uses (
    invite TEXT NOT NULL,
    user TEXT NOT NULL,
    PRIMARY KEY (invite, user)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contributions (
    session TEXT NOT NULL,
    user TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (session, user, kind)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS contributions_by_user ON contributions (user);
CREATE TABLE IF NOT EXISTS awards (
    key TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    user TEXT NOT NULL,
    kind TEXT NOT NULL,
    badge TEXT,
    awarded_by TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS awards_by_session ON awards (session);
CREATE INDEX IF NOT EXISTS awards_by_user ON awards (user);
"#;

impl SqliteStore {
    async fn claim_due_inner(&self, now: i64, lease: i64, limit: u32) -> Result<Vec<TaskRecord>> {
        // IMMEDIATE: take the write lock up front; a read-then-write upgrade in WAL fails at once
        // (SQLITE_BUSY_SNAPSHOT) when another connection wrote in between.
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let sql = format!(
            "UPDATE tasks SET state = 'running', attempts = attempts + 1, lease_until = ?, updated_at = ? \
             WHERE id IN (SELECT id FROM tasks WHERE (state IN ('pending', 'failed') AND next_run_at <= ?) \
             OR (state = 'running' AND lease_until < ?) ORDER BY next_run_at LIMIT ?) RETURNING {TASK_COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(lease)
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(task_row).collect()
    }

    async fn accept_inner(
        &self,
        id: &str,
        user: &str,
        now: i64,
    ) -> Result<std::result::Result<Invite, InviteRefusal>> {
        // IMMEDIATE: take the write lock up front; a read-then-write upgrade in WAL fails at once
        // (SQLITE_BUSY_SNAPSHOT) when another connection wrote in between.
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let sql = format!("SELECT {INVITE_COLUMNS} FROM invites WHERE id = ?");
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await? else {
            return Ok(Err(InviteRefusal::NotFound));
        };
        let mut inv = invite_row(&row)?;
        if let Err(r) = usable(&inv, user, now) {
            // A user who already joined through this link may accept it again for free, unless
            // it was revoked or expired.
            let used = sqlx::query("SELECT 1 FROM invite_uses WHERE invite = ? AND user = ?")
                .bind(id)
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !(used && r == InviteRefusal::Exhausted) {
                return Ok(Err(r));
            }
            return Ok(Ok(inv));
        }
        let fresh = sqlx::query("INSERT OR IGNORE INTO invite_uses (invite, user) VALUES (?, ?)")
            .bind(id)
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if fresh {
            sqlx::query("UPDATE invites SET uses = uses + 1 WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            inv.uses += 1;
        }
        tx.commit().await?;
        Ok(Ok(inv))
    }
}

impl TaskStore for SqliteStore {
    fn create_task<'a>(&'a self, t: &'a NewTask) -> StoreFuture<'a, (TaskRecord, bool)> {
        Box::pin(async move {
            let inserted = sqlx::query(
                "INSERT OR IGNORE INTO tasks (id, key, kind, session, created_by, payload, state, attempts, max_attempts, next_run_at, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?)",
            )
            .bind(&t.id)
            .bind(&t.key)
            .bind(&t.kind)
            .bind(&t.session)
            .bind(&t.created_by)
            .bind(&t.payload)
            .bind(i64::from(t.max_attempts))
            .bind(t.now_ms)
            .bind(t.now_ms)
            .bind(t.now_ms)
            .execute(self.pool())
            .await?
            .rows_affected()
                > 0;
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE key = ?");
            let row = sqlx::query(&sql)
                .bind(&t.key)
                .fetch_one(self.pool())
                .await?;
            Ok((task_row(&row)?, inserted))
        })
    }

    fn task<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<TaskRecord>> {
        Box::pin(async move {
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?");
            let row = sqlx::query(&sql)
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(task_row).transpose()
        })
    }

    fn session_tasks<'a>(
        &'a self,
        session: &'a str,
        limit: u32,
    ) -> StoreFuture<'a, Vec<TaskRecord>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE session = ? ORDER BY created_at DESC, id DESC LIMIT ?"
            );
            let rows = sqlx::query(&sql)
                .bind(session)
                .bind(i64::from(limit.min(MAX_LIST_ROWS)))
                .fetch_all(self.pool())
                .await?;
            rows.iter().map(task_row).collect()
        })
    }

    fn claim_due(&self, now: i64, lease: i64, limit: u32) -> StoreFuture<'_, Vec<TaskRecord>> {
        Box::pin(self.claim_due_inner(now, lease, limit))
    }

    fn finish_task<'a>(
        &'a self,
        id: &'a str,
        outcome: &'a TaskOutcome,
        now: i64,
    ) -> StoreFuture<'a, Option<TaskRecord>> {
        Box::pin(async move {
            let (state, next, error) = match outcome {
                TaskOutcome::Succeeded => ("succeeded", None, None),
                TaskOutcome::Retry { at_ms, error } => {
                    ("failed", Some(*at_ms), Some(error.as_str()))
                }
                TaskOutcome::Dead { error } => ("dead", None, Some(error.as_str())),
            };
            let sql = format!(
                "UPDATE tasks SET state = ?, next_run_at = COALESCE(?, next_run_at), last_error = COALESCE(?, last_error), \
                 lease_until = NULL, updated_at = ? WHERE id = ? AND state = 'running' RETURNING {TASK_COLUMNS}"
            );
            let row = sqlx::query(&sql)
                .bind(state)
                .bind(next)
                .bind(error)
                .bind(now)
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(task_row).transpose()
        })
    }

    fn reset_running(&self, now: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            Ok(sqlx::query(
                "UPDATE tasks SET state = 'pending', lease_until = NULL, next_run_at = ?, updated_at = ? WHERE state = 'running'",
            )
            .bind(now)
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected())
        })
    }

    fn next_due(&self) -> StoreFuture<'_, Option<i64>> {
        Box::pin(async move {
            let v: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(t) FROM (SELECT MIN(next_run_at) AS t FROM tasks WHERE state IN ('pending', 'failed') \
                 UNION ALL SELECT MIN(lease_until) FROM tasks WHERE state = 'running')",
            )
            .fetch_one(self.pool())
            .await?;
            Ok(v)
        })
    }

    fn create_invite<'a>(&'a self, i: &'a Invite) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO invites (id, session, role, created_by, for_user, expires_at, max_uses, uses, revoked, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?)",
            )
            .bind(&i.id)
            .bind(&i.session)
            .bind(i.role.as_str())
            .bind(&i.created_by)
            .bind(&i.for_user)
            .bind(i.expires_at_ms)
            .bind(i.max_uses.map(i64::from))
            .bind(i.created_at_ms)
            .execute(self.pool())
            .await?;
            Ok(())
        })
    }

    fn invite<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Invite>> {
        Box::pin(async move {
            let sql = format!("SELECT {INVITE_COLUMNS} FROM invites WHERE id = ?");
            let row = sqlx::query(&sql)
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(invite_row).transpose()
        })
    }

    fn session_invites<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Vec<Invite>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {INVITE_COLUMNS} FROM invites WHERE session = ? ORDER BY created_at DESC LIMIT ?"
            );
            let rows = sqlx::query(&sql)
                .bind(session)
                .bind(i64::from(MAX_LIST_ROWS))
                .fetch_all(self.pool())
                .await?;
            rows.iter().map(invite_row).collect()
        })
    }

    fn accept_invite<'a>(
        &'a self,
        id: &'a str,
        user: &'a str,
        now: i64,
    ) -> StoreFuture<'a, std::result::Result<Invite, InviteRefusal>> {
        Box::pin(self.accept_inner(id, user, now))
    }

    fn revoke_invite<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            Ok(sqlx::query("UPDATE invites SET revoked = 1 WHERE id = ?")
                .bind(id)
                .execute(self.pool())
                .await?
                .rows_affected()
                > 0)
        })
    }

    fn add_contributions<'a>(
        &'a self,
        adds: &'a [Contribution],
    ) -> StoreFuture<'a, Vec<Contribution>> {
        Box::pin(async move {
            // IMMEDIATE: take the write lock up front; a read-then-write upgrade in WAL fails at once
            // (SQLITE_BUSY_SNAPSHOT) when another connection wrote in between.
            let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
            let mut out = Vec::with_capacity(adds.len());
            for c in adds {
                let total: i64 = sqlx::query_scalar(
                    "INSERT INTO contributions (session, user, kind, count) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (session, user, kind) DO UPDATE SET count = count + excluded.count RETURNING count",
                )
                .bind(&c.session)
                .bind(&c.user)
                .bind(&c.kind)
                .bind(i64::try_from(c.count).unwrap_or(i64::MAX))
                .fetch_one(&mut *tx)
                .await?;
                out.push(Contribution {
                    count: to_u64(total),
                    ..c.clone()
                });
            }
            tx.commit().await?;
            Ok(out)
        })
    }

    fn contributions<'a>(
        &'a self,
        session: Option<&'a str>,
        user: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<Contribution>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT session, user, kind, count FROM contributions WHERE (?1 IS NULL OR session = ?1) \
                 AND (?2 IS NULL OR user = ?2) ORDER BY session, user, kind LIMIT ?3",
            )
            .bind(session)
            .bind(user)
            .bind(i64::from(MAX_LIST_ROWS))
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(contribution_row).collect()
        })
    }

    fn insert_award<'a>(&'a self, a: &'a Award) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            Ok(sqlx::query(
                "INSERT OR IGNORE INTO awards (key, session, user, kind, badge, awarded_by, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&a.key)
            .bind(&a.session)
            .bind(&a.user)
            .bind(&a.kind)
            .bind(&a.badge)
            .bind(&a.awarded_by)
            .bind(a.at_ms)
            .execute(self.pool())
            .await?
            .rows_affected()
                > 0)
        })
    }

    fn awards<'a>(
        &'a self,
        session: Option<&'a str>,
        user: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<Award>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT key, session, user, kind, badge, awarded_by, at FROM awards WHERE (?1 IS NULL OR session = ?1) \
                 AND (?2 IS NULL OR user = ?2) ORDER BY at, key LIMIT ?3",
            )
            .bind(session)
            .bind(user)
            .bind(i64::from(MAX_LIST_ROWS))
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(award_row).collect()
        })
    }
}
