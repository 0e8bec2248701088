//! Comments, suggestions, tasks, invites, contributions and awards on PostgreSQL: the
//! `SocialStore` and `TaskStore` of [`PgStore`], with the semantics of the SQLite ones
//! (`store::sqlite`, `store::tasks`) made safe for several nodes writing at once:
//!
//! - `claim_due` locks the due rows `FOR UPDATE SKIP LOCKED`: two nodes claiming together get
//!   disjoint tasks, and neither waits for the other.
//! - `accept_invite` reads the invite `FOR UPDATE`, so concurrent accepts count uses one at a time.
//! - `create_task` and `insert_award` are `INSERT … ON CONFLICT DO NOTHING` on their keys.
//! - `reset_running` only resets tasks this node claimed (`lease_owner`, see
//!   [`PgStore::with_task_owner`]): at boot another node may be running the rest, whose leases
//!   expire if that node is dead.
//!
//! Row decoding is shared with SQLite (`store::rows`, `store::tasks::*_row`); only SQL differs
//! (`$n` parameters, `user_id` for the reserved word `user`).

use crate::error::Result;
use crate::store::StoreFuture;
use crate::store::rows::{
    INVITE_COLUMNS, TASK_COLUMNS, award_row, contribution_row, invite_row, task_row, to_i64, to_u64,
};
use crate::store::tasks::*;

use super::PgStore;

/// Migration step 2 (`postgres::MIGRATIONS`): the tables of this module. Numbers are BIGINT so
/// they decode like SQLite's INTEGER.
pub(super) const SCHEMA: &str = r#"
CREATE TABLE comments (
    n BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session TEXT NOT NULL,
    id TEXT NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (session, id)
);
CREATE INDEX comments_by_session ON comments (session, n);
CREATE TABLE suggestions (
    n BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session TEXT NOT NULL,
    id TEXT NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (session, id)
);
CREATE INDEX suggestions_by_session ON suggestions (session, n);
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    session TEXT,
    created_by TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    next_run_at BIGINT NOT NULL,
    lease_until BIGINT,
    lease_owner TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tasks_due ON tasks (state, next_run_at);
CREATE INDEX tasks_by_session ON tasks (session, created_at);
CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    role TEXT NOT NULL,
    created_by TEXT NOT NULL,
    for_user TEXT,
    expires_at BIGINT,
    max_uses BIGINT,
    uses BIGINT NOT NULL DEFAULT 0,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
CREATE INDEX invites_by_session ON invites (session);
CREATE TABLE invite_uses (
    invite TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (invite, user_id)
);
CREATE TABLE contributions (
    session TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (session, user_id, kind)
);
CREATE INDEX contributions_by_user ON contributions (user_id);
CREATE TABLE awards (
    key TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    badge TEXT,
    awarded_by TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX awards_by_session ON awards (session);
CREATE INDEX awards_by_user ON awards (user_id);
"#;

impl PgStore {
    async fn claim_due_inner(&self, now: i64, lease: i64, limit: u32) -> Result<Vec<TaskRecord>> {
        // SKIP LOCKED: rows another node is claiming right now are left to it, so concurrent
        // claims return disjoint tasks. A row committed as claimed meanwhile is re-checked
        // against the WHERE clause under its lock and drops out.
        let sql = format!(
            "WITH due AS (SELECT id FROM tasks WHERE (state IN ('pending', 'failed') AND next_run_at <= $2) \
             OR (state = 'running' AND lease_until < $2) ORDER BY next_run_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE tasks t SET state = 'running', attempts = attempts + 1, lease_until = $1, lease_owner = $4, \
             updated_at = $2 FROM due WHERE t.id = due.id RETURNING {}",
            prefixed("t.", TASK_COLUMNS)
        );
        let rows = sqlx::query(&sql)
            .bind(lease)
            .bind(now)
            .bind(i64::from(limit))
            .bind(self.task_owner())
            .fetch_all(self.pool())
            .await?;
        let mut tasks = rows.iter().map(task_row).collect::<Result<Vec<_>>>()?;
        tasks.sort_by_key(|t| t.next_run_at_ms);
        Ok(tasks)
    }

    async fn accept_inner(
        &self,
        id: &str,
        user: &str,
        now: i64,
    ) -> Result<std::result::Result<Invite, InviteRefusal>> {
        let mut tx = self.pool().begin().await?;
        // The row lock makes accepts of one invite take turns, on every node: the use count
        // read here is the one the UPDATE below increments.
        let sql = format!("SELECT {INVITE_COLUMNS} FROM invites WHERE id = $1 FOR UPDATE");
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await? else {
            return Ok(Err(InviteRefusal::NotFound));
        };
        let mut inv = invite_row(&row)?;
        if let Err(r) = usable(&inv, user, now) {
            // A user who already joined through this link may accept it again for free, unless
            // it was revoked or expired.
            let used = sqlx::query("SELECT 1 FROM invite_uses WHERE invite = $1 AND user_id = $2")
                .bind(id)
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            return Ok(if used && r == InviteRefusal::Exhausted {
                Ok(inv)
            } else {
                Err(r)
            });
        }
        let fresh = sqlx::query(
            "INSERT INTO invite_uses (invite, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(user)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if fresh {
            sqlx::query("UPDATE invites SET uses = uses + 1 WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            inv.uses += 1;
        }
        tx.commit().await?;
        Ok(Ok(inv))
    }
}

/// `a, b` → `p.a, p.b`: the RETURNING list of an UPDATE … FROM, where bare names are ambiguous.
fn prefixed(p: &str, columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{p}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl TaskStore for PgStore {
    fn create_task<'a>(&'a self, t: &'a NewTask) -> StoreFuture<'a, (TaskRecord, bool)> {
        Box::pin(async move {
            // Two nodes creating the same key: the second insert waits for the first to commit,
            // then does nothing, and both read the same row.
            let inserted = sqlx::query(
                "INSERT INTO tasks (id, key, kind, session, created_by, payload, state, attempts, max_attempts, next_run_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $8, $8) ON CONFLICT DO NOTHING",
            )
            .bind(&t.id)
            .bind(&t.key)
            .bind(&t.kind)
            .bind(&t.session)
            .bind(&t.created_by)
            .bind(&t.payload)
            .bind(i64::from(t.max_attempts))
            .bind(t.now_ms)
            .execute(self.pool())
            .await?
            .rows_affected()
                > 0;
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE key = $1");
            let row = sqlx::query(&sql)
                .bind(&t.key)
                .fetch_one(self.pool())
                .await?;
            Ok((task_row(&row)?, inserted))
        })
    }

    fn task<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<TaskRecord>> {
        Box::pin(async move {
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
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
                "SELECT {TASK_COLUMNS} FROM tasks WHERE session = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
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
                "UPDATE tasks SET state = $1, next_run_at = COALESCE($2, next_run_at), last_error = COALESCE($3, last_error), \
                 lease_until = NULL, lease_owner = NULL, updated_at = $4 WHERE id = $5 AND state = 'running' RETURNING {TASK_COLUMNS}"
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
            // Only this node's own claims: the other nodes' running tasks may be running right
            // now, and a dead node's come back when their leases expire.
            Ok(sqlx::query(
                "UPDATE tasks SET state = 'pending', lease_until = NULL, lease_owner = NULL, next_run_at = $1, updated_at = $1 \
                 WHERE state = 'running' AND lease_owner = $2",
            )
            .bind(now)
            .bind(self.task_owner())
            .execute(self.pool())
            .await?
            .rows_affected())
        })
    }

    fn next_due(&self) -> StoreFuture<'_, Option<i64>> {
        Box::pin(async move {
            let v: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(t) FROM (SELECT MIN(next_run_at) AS t FROM tasks WHERE state IN ('pending', 'failed') \
                 UNION ALL SELECT MIN(lease_until) FROM tasks WHERE state = 'running') AS due",
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 0, FALSE, $8)",
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
            let sql = format!("SELECT {INVITE_COLUMNS} FROM invites WHERE id = $1");
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
                "SELECT {INVITE_COLUMNS} FROM invites WHERE session = $1 ORDER BY created_at DESC LIMIT $2"
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
            Ok(
                sqlx::query("UPDATE invites SET revoked = TRUE WHERE id = $1")
                    .bind(id)
                    .execute(self.pool())
                    .await?
                    .rows_affected()
                    > 0,
            )
        })
    }

    fn add_contributions<'a>(
        &'a self,
        adds: &'a [Contribution],
    ) -> StoreFuture<'a, Vec<Contribution>> {
        Box::pin(async move {
            // Rows are locked in key order on every node, so two overlapping batches wait for
            // each other instead of deadlocking; the totals come back in the caller's order.
            let mut order: Vec<usize> = (0..adds.len()).collect();
            order.sort_by_key(|&i| (&adds[i].session, &adds[i].user, &adds[i].kind));
            let mut out = adds.to_vec();
            let mut tx = self.pool().begin().await?;
            for i in order {
                let c = &adds[i];
                let total: i64 = sqlx::query_scalar(
                    "INSERT INTO contributions (session, user_id, kind, count) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (session, user_id, kind) DO UPDATE SET count = contributions.count + EXCLUDED.count \
                     RETURNING count",
                )
                .bind(&c.session)
                .bind(&c.user)
                .bind(&c.kind)
                .bind(to_i64(c.count))
                .fetch_one(&mut *tx)
                .await?;
                out[i].count = to_u64(total);
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
                "SELECT session, user_id, kind, count FROM contributions WHERE ($1::text IS NULL OR session = $1) \
                 AND ($2::text IS NULL OR user_id = $2) ORDER BY session, user_id, kind LIMIT $3",
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
                "INSERT INTO awards (key, session, user_id, kind, badge, awarded_by, at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (key) DO NOTHING",
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
                "SELECT key, session, user_id, kind, badge, awarded_by, at FROM awards WHERE ($1::text IS NULL OR session = $1) \
                 AND ($2::text IS NULL OR user_id = $2) ORDER BY at, key LIMIT $3",
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
