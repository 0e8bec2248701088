//! What PostgreSQL does differently for tasks and invites, so several nodes may write at once
//! (the rest of `TaskStore` is `store::sql_records`):
//!
//! - `claim_due` locks the due rows `FOR UPDATE SKIP LOCKED`: two nodes claiming together get
//!   disjoint tasks, and neither waits for the other.
//! - `accept_invite` reads the invite `FOR UPDATE`, so concurrent accepts count uses one at a time.
//! - `create_task` and `insert_award` are `INSERT … ON CONFLICT DO NOTHING` on their keys.
//! - `reset_running` only resets tasks this node claimed (`lease_owner`, see
//!   [`PgStore::with_task_owner`]): at boot another node may be running the rest, whose leases
//!   expire if that node is dead.

use crate::error::Result;
use crate::store::rows::{TASK_COLUMNS, task_row};
use crate::store::tasks::TaskRecord;

use super::PgStore;

impl PgStore {
    pub(super) async fn claim_due_tasks(
        &self,
        now: i64,
        lease: i64,
        limit: u32,
    ) -> Result<Vec<TaskRecord>> {
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

    /// Puts back only this node's own claims: the other nodes' running tasks may be running
    /// right now, and a dead node's come back when their leases expire.
    pub(super) async fn reset_running_tasks(&self, now: i64) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE tasks SET state = 'pending', lease_until = NULL, lease_owner = NULL, next_run_at = $1, updated_at = $1 \
             WHERE state = 'running' AND lease_owner = $2",
        )
        .bind(now)
        .bind(self.task_owner())
        .execute(self.pool())
        .await?
        .rows_affected())
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
