//! The SQL the SQLite and PostgreSQL stores run alike, written once.
//!
//! Both schemas have the same tables, columns and kinds of values (text, 64-bit integers, a
//! boolean), and every statement here is one text for both: `$n` parameters (sqlx's SQLite
//! driver reads them too), `ON CONFLICT` upserts, `CAST(… AS …)` rather than `::`. What really
//! differs stays in each backend's folder: the schema and its migrations, the group commit, how
//! due tasks are claimed, and row locks.
//!
//! [`sql_store!`]`(Store, Database)` implements `Store` and `HistoryStore` for one store type,
//! and `SocialStore`, `TaskStore` and `AssetStore` through `sql_records.rs`. sqlx's executors are generic over the
//! database only through higher-ranked bounds that boxed `Send` futures do not carry well, so the
//! one text is instantiated per concrete type by a macro instead. The type must have these
//! inherent items:
//!
//! - `pool(&self) -> &Pool<_>`;
//! - `write_tx(&self) -> Result<Transaction<'static, _>>`: a transaction that will write;
//! - `FOR_UPDATE: &str`: appended to a `SELECT` whose rows a write transaction then changes
//!   (`" FOR UPDATE"` on PostgreSQL; SQLite's write transaction already excludes other writers);
//! - `LOCK_EVENTS: Option<&str>`: run first in a transaction that appends an event, so appends
//!   take turns and commit in number order (PostgreSQL's sequences don't; SQLite's single
//!   writer does already);
//! - `commit_writes(&self, &[Write])`: the group commit (it may call `write_snapshot`);
//! - `claim_due_tasks(&self, now, lease, limit)` and `reset_running_tasks(&self, now)`;
//! - `close_connections(&self)`: closes the pool and whatever connection is kept beside it.

macro_rules! sql_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Writes a snapshot in `tx` and drops the older ones of its session.
            async fn write_snapshot(
                &self,
                tx: &mut <$db as sqlx::Database>::Connection,
                session: &str,
                snapshot: &$crate::store::Snapshot,
            ) -> $crate::error::Result<()> {
                use $crate::store::rows::to_i64;
                // Two nodes may snapshot the same version; both hold the same committed state.
                sqlx::query(
                    "INSERT INTO snapshots (session, version, format, state) VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (session, version) DO UPDATE SET state = excluded.state, format = 1",
                )
                .bind(session)
                .bind(to_i64(snapshot.version))
                .bind(&snapshot.state)
                .execute(&mut *tx)
                .await?;
                // It is also a checkpoint unless the newest one is recent in both commit time and
                // versions (`store::history`); versions without a time always make one.
                sqlx::query(
                    "INSERT INTO checkpoints (session, version, state) SELECT $1, $2, $3 \
                     WHERE NOT EXISTS (SELECT 1 FROM checkpoints c \
                     JOIN ops o ON o.session = c.session AND o.version = c.version \
                     WHERE c.session = $1 AND c.version > $2 - $4 AND o.committed_at > \
                     (SELECT committed_at FROM ops WHERE session = $1 AND version = $2) - $5) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(session)
                .bind(to_i64(snapshot.version))
                .bind(&snapshot.state)
                .bind(to_i64($crate::store::history::CHECKPOINT_EVERY_OPS))
                .bind($crate::store::history::CHECKPOINT_EVERY_MS)
                .execute(&mut *tx)
                .await?;
                // Older snapshots are never read again (checkpoints keep what history needs).
                sqlx::query("DELETE FROM snapshots WHERE session = $1 AND version < $2")
                    .bind(session)
                    .bind(to_i64(snapshot.version))
                    .execute(&mut *tx)
                    .await?;
                // `GET /v1/sessions`'s `updated`: moved with snapshots (every few minutes of
                // activity and on idle), not per commit, which keeps the edit path at one
                // statement per batch.
                sqlx::query(
                    "UPDATE sessions SET updated_at = CASE WHEN updated_at < $1 THEN $1 ELSE updated_at END \
                     WHERE id = $2",
                )
                .bind($crate::clock::now_ms())
                .bind(session)
                .execute(&mut *tx)
                .await?;
                Ok(())
            }

            async fn meta_of(
                &self,
                session: &str,
            ) -> $crate::error::Result<Option<$crate::store::SessionMeta>> {
                let Some(row) = sqlx::query_as(
                    "SELECT owner, link_role, title, encrypted, key_epoch FROM sessions \
                     WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(session)
                .fetch_optional(self.pool())
                .await?
                else {
                    return Ok(None);
                };
                let grants = sqlx::query_as("SELECT user_id, role FROM roles WHERE session = $1")
                    .bind(session)
                    .fetch_all(self.pool())
                    .await?;
                $crate::store::rows::session_meta(session, row, grants).map(Some)
            }

            async fn ops_after_version(
                &self,
                session: &str,
                after: u64,
                limit: u64,
            ) -> $crate::error::Result<Vec<$crate::store::StoredOp>> {
                use $crate::store::rows::to_i64;
                let sql = format!(
                    "SELECT {} FROM ops WHERE session = $1 AND version > $2 ORDER BY version LIMIT $3",
                    $crate::store::rows::OP_COLUMNS
                );
                let rows = sqlx::query(&sql)
                .bind(session)
                .bind(to_i64(after))
                .bind(to_i64(limit))
                .fetch_all(self.pool())
                .await?;
                rows.iter().map($crate::store::rows::stored_op).collect()
            }

            async fn accept_invite_tx(
                &self,
                id: &str,
                user: &str,
                now: i64,
            ) -> $crate::error::Result<
                std::result::Result<$crate::store::tasks::Invite, $crate::store::tasks::InviteRefusal>,
            > {
                use $crate::store::tasks::InviteRefusal;
                let mut tx = self.write_tx().await?;
                // Accepts of one invite take turns (the row lock on PostgreSQL, the write
                // transaction on SQLite): the use count read here is the one incremented below.
                let sql = format!(
                    "SELECT {} FROM invites WHERE id = $1{}",
                    $crate::store::rows::INVITE_COLUMNS,
                    Self::FOR_UPDATE
                );
                let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await? else {
                    return Ok(Err(InviteRefusal::NotFound));
                };
                let mut inv = $crate::store::rows::invite_row(&row)?;
                if let Err(r) = $crate::store::tasks::usable(&inv, user, now) {
                    // A user who already joined through this link may accept it again for free,
                    // unless it was revoked or expired.
                    let used =
                        sqlx::query("SELECT 1 FROM invite_uses WHERE invite = $1 AND user_id = $2")
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

        impl $crate::store::Store for $store {
            fn load<'a>(
                &'a self,
                session: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::Loaded>> {
                Box::pin(async move {
                    use sqlx::Row as _;
                    let Some(meta) = self.meta_of(session).await? else {
                        return Ok(None);
                    };
                    let snapshot = sqlx::query(
                        "SELECT version, CAST(format AS BIGINT), state FROM snapshots \
                         WHERE session = $1 ORDER BY version DESC LIMIT 1",
                    )
                    .bind(session)
                    .fetch_optional(self.pool())
                    .await?;
                    let snapshot = match snapshot {
                        None => None,
                        Some(r) => {
                            let format: i64 = r.try_get(1)?;
                            if format != 1 {
                                return Err($crate::error::Error::Corrupt {
                                    session: session.to_owned(),
                                    reason: format!("snapshot format {format} is unknown"),
                                });
                            }
                            Some($crate::store::Snapshot {
                                version: $crate::store::rows::to_u64(r.try_get(0)?),
                                state: r.try_get(2)?,
                            })
                        }
                    };
                    let from = snapshot.as_ref().map_or(0, |s| s.version);
                    let ops = self.ops_after_version(session, from, u64::MAX >> 1).await?;
                    let snapshot_time: Option<i64> = sqlx::query_scalar(
                        "SELECT committed_at FROM ops WHERE session = $1 AND version = $2",
                    )
                    .bind(session)
                    .bind($crate::store::rows::to_i64(from))
                    .fetch_optional(self.pool())
                    .await?
                    .flatten();
                    Ok(Some($crate::store::Loaded {
                        meta,
                        snapshot,
                        ops,
                        snapshot_time,
                    }))
                })
            }

            fn meta<'a>(
                &'a self,
                session: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::SessionMeta>> {
                Box::pin(self.meta_of(session))
            }

            fn create_session<'a>(
                &'a self,
                session: &'a str,
                new: $crate::store::NewSession<'a>,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    let mut tx = self.write_tx().await?;
                    let now = $crate::clock::now_ms();
                    // Two nodes may create the same session at once: the first insert wins and
                    // only it grants ownership.
                    let created = sqlx::query(
                        "INSERT INTO sessions (id, owner, link_role, title, created_at, updated_at, \
                         encrypted) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(session)
                    .bind(new.owner)
                    .bind(new.link_role.as_str())
                    .bind(new.title)
                    .bind(now / 1000)
                    .bind(now)
                    .bind(i64::from(new.encrypted))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    if created {
                        sqlx::query(
                            "INSERT INTO roles (session, user_id, role) VALUES ($1, $2, 'owner') \
                             ON CONFLICT (session, user_id) DO UPDATE SET role = 'owner'",
                        )
                        .bind(session)
                        .bind(new.owner)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(created)
                })
            }

            fn update_session<'a>(
                &'a self,
                session: &'a str,
                update: &'a $crate::store::SessionUpdate,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE sessions SET link_role = COALESCE($1, link_role), \
                         title = CASE WHEN CAST($2 AS TEXT) IS NULL THEN title ELSE NULLIF($2, '') END, \
                         key_epoch = COALESCE($5, key_epoch), updated_at = $3 WHERE id = $4",
                    )
                    .bind(update.link_role.map(montage_protocol::Role::as_str))
                    .bind(update.title.as_deref())
                    .bind($crate::clock::now_ms())
                    .bind(session)
                    .bind(update.key_epoch.map($crate::store::rows::to_i64))
                    .execute(self.pool())
                    .await?;
                    Ok(())
                })
            }

            fn user_sessions<'a>(
                &'a self,
                user: &'a str,
                limit: u32,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::SessionSummary>> {
                Box::pin(async move {
                    let rows = sqlx::query_as(
                        "SELECT s.id, s.title, r.role, s.link_role, \
                         (SELECT COALESCE(MAX(version), 0) FROM ops WHERE ops.session = s.id), s.updated_at \
                         FROM roles r JOIN sessions s ON s.id = r.session \
                         WHERE r.user_id = $1 AND r.role <> 'none' \
                         ORDER BY s.updated_at DESC, s.id LIMIT $2",
                    )
                    .bind(user)
                    .bind(i64::from(limit))
                    .fetch_all(self.pool())
                    .await?;
                    rows.into_iter()
                        .map($crate::store::rows::session_summary)
                        .collect()
                })
            }

            fn delete_session<'a>(
                &'a self,
                session: &'a str,
            ) -> $crate::store::StoreFuture<'a, Vec<String>> {
                Box::pin(async move {
                    let mut tx = self.write_tx().await?;
                    let assets: Vec<String> =
                        sqlx::query_scalar("SELECT id FROM assets WHERE session = $1")
                            .bind(session)
                            .fetch_all(&mut *tx)
                            .await?;
                    sqlx::query(
                        "DELETE FROM invite_uses WHERE invite IN (SELECT id FROM invites WHERE session = $1)",
                    )
                    .bind(session)
                    .execute(&mut *tx)
                    .await?;
                    for table in $crate::store::SESSION_TABLES.iter().chain(&["assets"]) {
                        sqlx::query(&format!("DELETE FROM {table} WHERE session = $1"))
                            .bind(session)
                            .execute(&mut *tx)
                            .await?;
                    }
                    // The row stays as a tombstone holding only the id: a deleted session's id
                    // is never reused (a later join is not_found, not a new session under an
                    // old link).
                    sqlx::query(
                        "UPDATE sessions SET owner = '', title = NULL, deleted_at = $2 WHERE id = $1",
                    )
                    .bind(session)
                    .bind($crate::clock::now_ms())
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(assets)
                })
            }

            fn set_role<'a>(
                &'a self,
                session: &'a str,
                user: &'a str,
                role: montage_protocol::Role,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO roles (session, user_id, role) VALUES ($1, $2, $3) \
                         ON CONFLICT (session, user_id) DO UPDATE SET role = excluded.role",
                    )
                    .bind(session)
                    .bind(user)
                    .bind(role.as_str())
                    .execute(self.pool())
                    .await?;
                    Ok(())
                })
            }

            fn commit<'a>(
                &'a self,
                batch: &'a [$crate::store::Write],
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(self.commit_writes(batch))
            }

            fn save_snapshot<'a>(
                &'a self,
                session: &'a str,
                snapshot: &'a $crate::store::Snapshot,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let mut tx = self.write_tx().await?;
                    self.write_snapshot(&mut tx, session, snapshot).await?;
                    tx.commit().await?;
                    Ok(())
                })
            }

            fn ops_after<'a>(
                &'a self,
                session: &'a str,
                after: u64,
                limit: u64,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::StoredOp>> {
                Box::pin(self.ops_after_version(session, after, limit))
            }

            fn find_seq<'a>(
                &'a self,
                session: &'a str,
                user: &'a str,
                client: &'a str,
                seq: u64,
            ) -> $crate::store::StoreFuture<'a, Option<u64>> {
                Box::pin(async move {
                    let v: Option<i64> = sqlx::query_scalar(
                        "SELECT version FROM ops \
                         WHERE session = $1 AND user_id = $2 AND client = $3 AND seq = $4 LIMIT 1",
                    )
                    .bind(session)
                    .bind(user)
                    .bind(client)
                    .bind($crate::store::rows::to_i64(seq))
                    .fetch_optional(self.pool())
                    .await?;
                    Ok(v.map($crate::store::rows::to_u64))
                })
            }

            fn max_seq<'a>(
                &'a self,
                session: &'a str,
                user: &'a str,
                client: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<u64>> {
                Box::pin(async move {
                    let v: Option<i64> = sqlx::query_scalar(
                        "SELECT MAX(seq) FROM ops WHERE session = $1 AND user_id = $2 AND client = $3",
                    )
                    .bind(session)
                    .bind(user)
                    .bind(client)
                    .fetch_one(self.pool())
                    .await?;
                    Ok(v.map($crate::store::rows::to_u64))
                })
            }

            fn close(&self) -> $crate::store::StoreFuture<'_, ()> {
                Box::pin(async move {
                    self.close_connections().await;
                    Ok(())
                })
            }

            fn social(&self) -> Option<&dyn $crate::store::SocialStore> {
                Some(self)
            }

            fn task_store(&self) -> Option<&dyn $crate::store::TaskStore> {
                Some(self)
            }

            fn assets(&self) -> Option<&dyn $crate::store::AssetStore> {
                Some(self)
            }

            fn history(&self) -> Option<&dyn $crate::store::HistoryStore> {
                Some(self)
            }

            fn notifications(&self) -> Option<&dyn $crate::store::NotificationStore> {
                Some(self)
            }

            fn events(&self) -> Option<&dyn $crate::store::EventStore> {
                Some(self)
            }

            fn leases(&self) -> Option<&dyn $crate::store::LeaseStore> {
                self.lease_store()
            }
        }

        impl $crate::store::HistoryStore for $store {
            fn base_at<'a>(
                &'a self,
                session: &'a str,
                version: u64,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::Snapshot>> {
                Box::pin(async move {
                    use $crate::store::rows::{to_i64, to_u64};
                    // The session's snapshot is the newest base when it is old enough.
                    let row: Option<(i64, String)> = sqlx::query_as(
                        "SELECT version, state FROM (\
                         SELECT version, state FROM checkpoints WHERE session = $1 AND version <= $2 \
                         UNION ALL SELECT version, state FROM snapshots WHERE session = $1 AND version <= $2\
                         ) AS b ORDER BY version DESC LIMIT 1",
                    )
                    .bind(session)
                    .bind(to_i64(version))
                    .fetch_optional(self.pool())
                    .await?;
                    Ok(row.map(|(version, state)| $crate::store::Snapshot {
                        version: to_u64(version),
                        state,
                    }))
                })
            }

            fn name_version<'a>(
                &'a self,
                session: &'a str,
                version: u64,
                name: &'a str,
                by: &'a str,
                state: &'a str,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    use $crate::store::rows::to_i64;
                    let mut tx = self.write_tx().await?;
                    let named = sqlx::query(
                        "INSERT INTO named_versions (session, version, name, named_by, named_at) \
                         SELECT $1, $2, $3, $4, $5 WHERE EXISTS \
                         (SELECT 1 FROM ops WHERE session = $1 AND version = $2) \
                         ON CONFLICT (session, version) DO UPDATE SET name = excluded.name, \
                         named_by = excluded.named_by, named_at = excluded.named_at",
                    )
                    .bind(session)
                    .bind(to_i64(version))
                    .bind(name)
                    .bind(by)
                    .bind($crate::clock::now_ms())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        > 0;
                    if named {
                        sqlx::query(
                            "INSERT INTO checkpoints (session, version, state) VALUES ($1, $2, $3) \
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(session)
                        .bind(to_i64(version))
                        .bind(state)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(named)
                })
            }

            fn versions<'a>(
                &'a self,
                session: &'a str,
                before: u64,
                limit: u32,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::VersionInfo>> {
                Box::pin(async move {
                    use $crate::store::rows::{to_i64, to_u64};
                    let rows: Vec<(i64, Option<i64>, String, Option<String>, Option<String>)> =
                        sqlx::query_as(
                            "SELECT v.version, o.committed_at, o.user_id, n.name, n.named_by FROM (\
                             SELECT version FROM checkpoints WHERE session = $1 AND version < $2 \
                             UNION SELECT version FROM named_versions WHERE session = $1 AND version < $2\
                             ) AS v JOIN ops o ON o.session = $1 AND o.version = v.version \
                             LEFT JOIN named_versions n ON n.session = $1 AND n.version = v.version \
                             ORDER BY v.version DESC LIMIT $3",
                        )
                        .bind(session)
                        .bind(to_i64(before))
                        .bind(i64::from(limit))
                        .fetch_all(self.pool())
                        .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(version, time, user, name, named_by)| $crate::store::VersionInfo {
                            version: to_u64(version),
                            time,
                            user,
                            name,
                            named_by,
                        })
                        .collect())
                })
            }

            fn named_count<'a>(
                &'a self,
                session: &'a str,
            ) -> $crate::store::StoreFuture<'a, u64> {
                Box::pin(async move {
                    let n: i64 =
                        sqlx::query_scalar("SELECT COUNT(*) FROM named_versions WHERE session = $1")
                            .bind(session)
                            .fetch_one(self.pool())
                            .await?;
                    Ok($crate::store::rows::to_u64(n))
                })
            }

            fn trim<'a>(
                &'a self,
                cutoff: i64,
            ) -> $crate::store::StoreFuture<'a, $crate::store::Trimmed> {
                Box::pin(self.trim_history(cutoff))
            }
        }

        impl $store {
            /// [`HistoryStore::trim`](crate::store::HistoryStore::trim).
            async fn trim_history(
                &self,
                cutoff: i64,
            ) -> $crate::error::Result<$crate::store::Trimmed> {
                let floors: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT c.session, MAX(c.version) FROM checkpoints c \
                     JOIN ops o ON o.session = c.session AND o.version = c.version \
                     WHERE o.committed_at < $1 AND c.version <= \
                     (SELECT MAX(s.version) FROM snapshots s WHERE s.session = c.session) \
                     GROUP BY c.session",
                )
                .bind(cutoff)
                .fetch_all(self.pool())
                .await?;
                let mut out = $crate::store::Trimmed::default();
                for (session, floor) in floors {
                    let mut tx = self.write_tx().await?;
                    let mut removed = [0; 2];
                    for (i, table) in ["ops", "checkpoints"].iter().enumerate() {
                        removed[i] = sqlx::query(&format!(
                            "DELETE FROM {table} WHERE session = $1 AND version < $2 AND version \
                             NOT IN (SELECT version FROM named_versions WHERE session = $1)"
                        ))
                        .bind(&session)
                        .bind(floor)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    }
                    tx.commit().await?;
                    if removed != [0, 0] {
                        tracing::info!(%session, floor, ops = removed[0], checkpoints = removed[1], "history trimmed");
                        out.sessions += 1;
                        out.ops += removed[0];
                        out.checkpoints += removed[1];
                    }
                }
                Ok(out)
            }
        }

        $crate::store::sql_records::sql_records!($store);
    };
}

pub(super) use sql_store;
