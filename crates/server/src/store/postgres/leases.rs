//! Home-node leases in `session_leases` (`store::leases`), and the fence every group commit
//! checks.
//!
//! A takeover is one `UPDATE` of the lease row, which waits for commits holding that row
//! `FOR SHARE`; a commit that reads the row after a takeover sees the new epoch and is refused.
//! So the old home's last commit is either wholly before the new epoch (and the new home reads
//! it when it catches up) or refused.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::rows::{to_i64, to_u64};
use crate::store::{Lease, LeaseStore, StoreFuture, StoredOp};

use super::PgStore;

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

impl PgStore {
    pub(super) fn lease_store(&self) -> Option<&dyn LeaseStore> {
        Some(self)
    }
}

impl LeaseStore for PgStore {
    fn acquire<'a>(
        &'a self,
        session: &'a str,
        node: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            // Read first: a live lease of another node needs no row lock (an upsert would
            // lock it even when it changes nothing, queueing behind the home's commits).
            let current: Option<(String, i64, bool)> = sqlx::query_as(
                "SELECT node, epoch, expires_at < now() FROM session_leases WHERE session = $1",
            )
            .bind(session)
            .fetch_optional(self.pool())
            .await?;
            if let Some((holder, epoch, false)) = current
                && holder != node
                && !holder.is_empty()
            {
                return Ok(Lease {
                    node: holder,
                    epoch: to_u64(epoch),
                });
            }
            let taken: Option<(String, i64)> = sqlx::query_as(
                "INSERT INTO session_leases (session, node, epoch, expires_at) \
                 VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond') \
                 ON CONFLICT (session) DO UPDATE SET node = EXCLUDED.node, \
                   epoch = session_leases.epoch + 1, expires_at = EXCLUDED.expires_at \
                 WHERE session_leases.expires_at < now() OR session_leases.node = EXCLUDED.node \
                 RETURNING node, epoch",
            )
            .bind(session)
            .bind(node)
            .bind(ttl_ms(ttl))
            .fetch_optional(self.pool())
            .await?;
            let (node, epoch) = match taken {
                Some(t) => t,
                None => {
                    sqlx::query_as("SELECT node, epoch FROM session_leases WHERE session = $1")
                        .bind(session)
                        .fetch_one(self.pool())
                        .await?
                }
            };
            Ok(Lease {
                node,
                epoch: to_u64(epoch),
            })
        })
    }

    fn renew<'a>(
        &'a self,
        node: &'a str,
        sessions: &'a [String],
        ttl: Duration,
    ) -> StoreFuture<'a, Vec<(String, u64)>> {
        Box::pin(async move {
            if sessions.is_empty() {
                return Ok(Vec::new());
            }
            // Rows locked in session order, as commits lock them (`check_fences`): no deadlock.
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "UPDATE session_leases l SET expires_at = now() + $2 * interval '1 millisecond' \
                 FROM (SELECT session FROM session_leases WHERE node = $1 AND session = ANY($3) \
                       ORDER BY session FOR UPDATE) s \
                 WHERE l.session = s.session AND l.node = $1 RETURNING l.session, l.epoch",
            )
            .bind(node)
            .bind(ttl_ms(ttl))
            .bind(sessions)
            .fetch_all(self.pool())
            .await?;
            Ok(rows.into_iter().map(|(s, e)| (s, to_u64(e))).collect())
        })
    }

    fn release<'a>(&'a self, session: &'a str, node: &'a str, epoch: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE session_leases SET node = '', expires_at = now() \
                 WHERE session = $1 AND node = $2 AND epoch = $3",
            )
            .bind(session)
            .bind(node)
            .bind(to_i64(epoch))
            .execute(self.pool())
            .await?;
            Ok(())
        })
    }
}

/// Refuses the batch (`Fenced`) when an append's epoch is no longer its session's lease epoch.
/// The lease rows stay locked `FOR SHARE` until the commit, so no takeover slips in between.
pub(super) async fn check_fences(
    tx: &mut sqlx::PgConnection,
    ops: &[(&str, &StoredOp, Option<u64>)],
) -> Result<()> {
    let mut fences: Vec<(&str, u64)> = ops
        .iter()
        .filter_map(|(s, _, f)| f.map(|e| (*s, e)))
        .collect();
    if fences.is_empty() {
        return Ok(());
    }
    fences.sort_unstable();
    fences.dedup();
    let sessions: Vec<&str> = fences.iter().map(|(s, _)| *s).collect();
    let held: Vec<(String, i64)> = sqlx::query_as(
        "SELECT session, epoch FROM session_leases WHERE session = ANY($1) \
         ORDER BY session FOR SHARE",
    )
    .bind(&sessions)
    .fetch_all(&mut *tx)
    .await?;
    for (session, epoch) in fences {
        let current = held
            .iter()
            .find(|(s, _)| s == session)
            .map(|(_, e)| to_u64(*e));
        if current != Some(epoch) {
            return Err(Error::Fenced {
                session: session.to_owned(),
                epoch,
            });
        }
    }
    Ok(())
}
