//! Task claims on SQLite. One node owns the file, so a claim needs no owner and every task left
//! running at start-up was this node's.

use crate::error::Result;
use crate::store::rows::{TASK_COLUMNS, task_row};
use crate::store::tasks::TaskRecord;

use super::SqliteStore;

impl SqliteStore {
    pub(super) async fn claim_due_tasks(
        &self,
        now: i64,
        lease: i64,
        limit: u32,
    ) -> Result<Vec<TaskRecord>> {
        // One writer at a time: the rows read are the rows changed.
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "UPDATE tasks SET state = 'running', attempts = attempts + 1, lease_until = $1, updated_at = $2 \
             WHERE id IN (SELECT id FROM tasks WHERE (state IN ('pending', 'failed') AND next_run_at <= $2) \
             OR (state = 'running' AND lease_until < $2) ORDER BY next_run_at LIMIT $3) RETURNING {TASK_COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(lease)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(task_row).collect()
    }

    pub(super) async fn reset_running_tasks(&self, now: i64) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE tasks SET state = 'pending', lease_until = NULL, next_run_at = $1, updated_at = $1 \
             WHERE state = 'running'",
        )
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected())
    }
}
