//! The SQL of comments, suggestions, tasks, invites, contributions, awards and asset records,
//! shared by SQLite and PostgreSQL like the rest of `sql.rs` (which invokes [`sql_records!`] for
//! each store type; the inherent items it needs are listed there).

macro_rules! sql_records {
    ($store:ty) => {
        impl $crate::store::SocialStore for $store {
            /// Upserts one record; the row keeps its first `n`, so lists stay in creation order.
            fn put<'a>(
                &'a self,
                kind: $crate::store::SocialKind,
                session: &'a str,
                id: &'a str,
                record: &'a str,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    let sql = format!(
                        "INSERT INTO {} (session, id, record) VALUES ($1, $2, $3) \
                         ON CONFLICT (session, id) DO UPDATE SET record = excluded.record",
                        kind.table()
                    );
                    sqlx::query(&sql)
                        .bind(session)
                        .bind(id)
                        .bind(record)
                        .execute(self.pool())
                        .await?;
                    Ok(())
                })
            }

            fn keep_comment_state<'a>(
                &'a self,
                session: &'a str,
                id: &'a str,
                version: u64,
                record: &'a str,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO comment_history (session, id, version, record) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(session)
                    .bind(id)
                    .bind($crate::store::rows::to_i64(version))
                    .bind(record)
                    .execute(self.pool())
                    .await?;
                    Ok(())
                })
            }

            fn comments_at<'a>(
                &'a self,
                session: &'a str,
                version: u64,
            ) -> $crate::store::StoreFuture<'a, Vec<(String, Option<String>)>> {
                Box::pin(async move {
                    Ok(sqlx::query_as(
                        "SELECT d.id, (SELECT h.record FROM comment_history h \
                         WHERE h.session = $1 AND h.id = d.id AND h.version <= $2 \
                         ORDER BY h.n DESC LIMIT 1) \
                         FROM (SELECT DISTINCT id FROM comment_history WHERE session = $1) AS d",
                    )
                    .bind(session)
                    .bind($crate::store::rows::to_i64(version))
                    .fetch_all(self.pool())
                    .await?)
                })
            }

            fn list<'a>(
                &'a self,
                kind: $crate::store::SocialKind,
                session: &'a str,
            ) -> $crate::store::StoreFuture<'a, Vec<String>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT record FROM {} WHERE session = $1 ORDER BY n",
                        kind.table()
                    );
                    Ok(sqlx::query_scalar(&sql)
                        .bind(session)
                        .fetch_all(self.pool())
                        .await?)
                })
            }
        }

        impl $crate::store::AssetStore for $store {
            fn put_asset<'a>(
                &'a self,
                r: &'a $crate::store::AssetRecord,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    use $crate::store::rows::to_i64;
                    sqlx::query(&format!(
                        "INSERT INTO assets ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, format = excluded.format, \
                         width = excluded.width, height = excluded.height, duration = excluded.duration, \
                         bytes = excluded.bytes, uploader = excluded.uploader, session = excluded.session, \
                         created_at = excluded.created_at",
                        $crate::store::rows::ASSET_COLUMNS
                    ))
                    .bind(&r.id)
                    .bind(&r.kind)
                    .bind(&r.format)
                    .bind(r.width.map(i64::from))
                    .bind(r.height.map(i64::from))
                    .bind(r.duration)
                    .bind(to_i64(r.bytes))
                    .bind(&r.uploader)
                    .bind(&r.session)
                    .bind(to_i64(r.created_at))
                    .execute(self.pool())
                    .await?;
                    Ok(())
                })
            }

            fn asset<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::AssetRecord>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {} FROM assets WHERE id = $1",
                        $crate::store::rows::ASSET_COLUMNS
                    );
                    let row = sqlx::query(&sql)
                        .bind(id)
                        .fetch_optional(self.pool())
                        .await?;
                    row.as_ref().map($crate::store::rows::asset_row).transpose()
                })
            }

            fn usage<'a>(
                &'a self,
                uploader: &'a str,
            ) -> $crate::store::StoreFuture<'a, $crate::store::AssetUsage> {
                Box::pin(async move {
                    let (count, bytes): (i64, i64) = sqlx::query_as(
                        "SELECT COUNT(*), CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM assets \
                         WHERE uploader = $1",
                    )
                    .bind(uploader)
                    .fetch_one(self.pool())
                    .await?;
                    Ok($crate::store::AssetUsage {
                        count: $crate::store::rows::to_u64(count),
                        bytes: $crate::store::rows::to_u64(bytes),
                    })
                })
            }
        }

        impl $crate::store::TaskStore for $store {
            fn create_task<'a>(
                &'a self,
                t: &'a $crate::store::tasks::NewTask,
            ) -> $crate::store::StoreFuture<'a, ($crate::store::tasks::TaskRecord, bool)> {
                Box::pin(async move {
                    // Two nodes creating the same key: the second insert waits for the first to
                    // commit, then does nothing, and both read the same row.
                    let inserted = sqlx::query(
                        "INSERT INTO tasks (id, key, kind, session, created_by, payload, state, attempts, \
                         max_attempts, next_run_at, created_at, updated_at) \
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
                    let sql = format!(
                        "SELECT {} FROM tasks WHERE key = $1",
                        $crate::store::rows::TASK_COLUMNS
                    );
                    let row = sqlx::query(&sql).bind(&t.key).fetch_one(self.pool()).await?;
                    Ok(($crate::store::rows::task_row(&row)?, inserted))
                })
            }

            fn task<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::tasks::TaskRecord>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {} FROM tasks WHERE id = $1",
                        $crate::store::rows::TASK_COLUMNS
                    );
                    let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?;
                    row.as_ref().map($crate::store::rows::task_row).transpose()
                })
            }

            fn session_tasks<'a>(
                &'a self,
                session: &'a str,
                limit: u32,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::tasks::TaskRecord>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {} FROM tasks WHERE session = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                        $crate::store::rows::TASK_COLUMNS
                    );
                    let rows = sqlx::query(&sql)
                        .bind(session)
                        .bind(i64::from(limit.min($crate::store::tasks::MAX_LIST_ROWS)))
                        .fetch_all(self.pool())
                        .await?;
                    rows.iter().map($crate::store::rows::task_row).collect()
                })
            }

            fn claim_due(
                &self,
                now: i64,
                lease: i64,
                limit: u32,
            ) -> $crate::store::StoreFuture<'_, Vec<$crate::store::tasks::TaskRecord>> {
                Box::pin(self.claim_due_tasks(now, lease, limit))
            }

            fn finish_task<'a>(
                &'a self,
                id: &'a str,
                outcome: &'a $crate::store::tasks::TaskOutcome,
                now: i64,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::tasks::TaskRecord>> {
                Box::pin(async move {
                    use $crate::store::tasks::TaskOutcome;
                    let (state, next, error) = match outcome {
                        TaskOutcome::Succeeded => ("succeeded", None, None),
                        TaskOutcome::Retry { at_ms, error } => {
                            ("failed", Some(*at_ms), Some(error.as_str()))
                        }
                        TaskOutcome::Dead { error } => ("dead", None, Some(error.as_str())),
                    };
                    let sql = format!(
                        "UPDATE tasks SET state = $1, next_run_at = COALESCE($2, next_run_at), \
                         last_error = COALESCE($3, last_error), lease_until = NULL, lease_owner = NULL, \
                         updated_at = $4 WHERE id = $5 AND state = 'running' RETURNING {}",
                        $crate::store::rows::TASK_COLUMNS
                    );
                    let row = sqlx::query(&sql)
                        .bind(state)
                        .bind(next)
                        .bind(error)
                        .bind(now)
                        .bind(id)
                        .fetch_optional(self.pool())
                        .await?;
                    row.as_ref().map($crate::store::rows::task_row).transpose()
                })
            }

            fn reset_running(&self, now: i64) -> $crate::store::StoreFuture<'_, u64> {
                Box::pin(self.reset_running_tasks(now))
            }

            fn next_due(&self) -> $crate::store::StoreFuture<'_, Option<i64>> {
                Box::pin(async move {
                    let v: Option<i64> = sqlx::query_scalar(
                        "SELECT MIN(t) FROM (SELECT MIN(next_run_at) AS t FROM tasks \
                         WHERE state IN ('pending', 'failed') \
                         UNION ALL SELECT MIN(lease_until) FROM tasks WHERE state = 'running') AS due",
                    )
                    .fetch_one(self.pool())
                    .await?;
                    Ok(v)
                })
            }

            fn create_invite<'a>(
                &'a self,
                i: &'a $crate::store::tasks::Invite,
            ) -> $crate::store::StoreFuture<'a, ()> {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO invites (id, session, role, created_by, for_user, expires_at, \
                         max_uses, uses, revoked, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9)",
                    )
                    .bind(&i.id)
                    .bind(&i.session)
                    .bind(i.role.as_str())
                    .bind(&i.created_by)
                    .bind(&i.for_user)
                    .bind(i.expires_at_ms)
                    .bind(i.max_uses.map(i64::from))
                    .bind(false)
                    .bind(i.created_at_ms)
                    .execute(self.pool())
                    .await?;
                    Ok(())
                })
            }

            fn invite<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::store::StoreFuture<'a, Option<$crate::store::tasks::Invite>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {} FROM invites WHERE id = $1",
                        $crate::store::rows::INVITE_COLUMNS
                    );
                    let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?;
                    row.as_ref().map($crate::store::rows::invite_row).transpose()
                })
            }

            fn session_invites<'a>(
                &'a self,
                session: &'a str,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::tasks::Invite>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {} FROM invites WHERE session = $1 ORDER BY created_at DESC LIMIT $2",
                        $crate::store::rows::INVITE_COLUMNS
                    );
                    let rows = sqlx::query(&sql)
                        .bind(session)
                        .bind(i64::from($crate::store::tasks::MAX_LIST_ROWS))
                        .fetch_all(self.pool())
                        .await?;
                    rows.iter().map($crate::store::rows::invite_row).collect()
                })
            }

            fn accept_invite<'a>(
                &'a self,
                id: &'a str,
                user: &'a str,
                now: i64,
            ) -> $crate::store::StoreFuture<
                'a,
                std::result::Result<$crate::store::tasks::Invite, $crate::store::tasks::InviteRefusal>,
            > {
                Box::pin(self.accept_invite_tx(id, user, now))
            }

            fn revoke_invite<'a>(&'a self, id: &'a str) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    Ok(sqlx::query("UPDATE invites SET revoked = $1 WHERE id = $2")
                        .bind(true)
                        .bind(id)
                        .execute(self.pool())
                        .await?
                        .rows_affected()
                        > 0)
                })
            }

            fn add_contributions<'a>(
                &'a self,
                adds: &'a [$crate::store::tasks::Contribution],
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::tasks::Contribution>> {
                Box::pin(async move {
                    use $crate::store::rows::{to_i64, to_u64};
                    // Rows are written in key order on every node, so two overlapping batches
                    // wait for each other instead of deadlocking; the totals come back in the
                    // caller's order.
                    let mut order: Vec<usize> = (0..adds.len()).collect();
                    order.sort_by_key(|&i| (&adds[i].session, &adds[i].user, &adds[i].kind));
                    let mut out = adds.to_vec();
                    let mut tx = self.write_tx().await?;
                    for i in order {
                        let c = &adds[i];
                        let total: i64 = sqlx::query_scalar(
                            "INSERT INTO contributions (session, user_id, kind, count) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (session, user_id, kind) \
                             DO UPDATE SET count = contributions.count + excluded.count RETURNING count",
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
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::tasks::Contribution>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT session, user_id, kind, count FROM contributions \
                         WHERE (CAST($1 AS TEXT) IS NULL OR session = $1) \
                         AND (CAST($2 AS TEXT) IS NULL OR user_id = $2) \
                         ORDER BY session, user_id, kind LIMIT $3",
                    )
                    .bind(session)
                    .bind(user)
                    .bind(i64::from($crate::store::tasks::MAX_LIST_ROWS))
                    .fetch_all(self.pool())
                    .await?;
                    rows.iter().map($crate::store::rows::contribution_row).collect()
                })
            }

            fn insert_award<'a>(
                &'a self,
                a: &'a $crate::store::tasks::Award,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    Ok(sqlx::query(
                        "INSERT INTO awards (key, session, user_id, kind, badge, awarded_by, at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING",
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
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::tasks::Award>> {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "SELECT key, session, user_id, kind, badge, awarded_by, at FROM awards \
                         WHERE (CAST($1 AS TEXT) IS NULL OR session = $1) \
                         AND (CAST($2 AS TEXT) IS NULL OR user_id = $2) ORDER BY at, key LIMIT $3",
                    )
                    .bind(session)
                    .bind(user)
                    .bind(i64::from($crate::store::tasks::MAX_LIST_ROWS))
                    .fetch_all(self.pool())
                    .await?;
                    rows.iter().map($crate::store::rows::award_row).collect()
                })
            }

            fn publish<'a>(
                &'a self,
                e: &'a $crate::store::tasks::ShowcaseEntry,
                state: &'a str,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(async move {
                    Ok(sqlx::query(
                        "INSERT INTO showcase (award, session, kind, user_id, awarded_by, version, \
                         title, at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                         ON CONFLICT (award) DO NOTHING",
                    )
                    .bind(&e.award)
                    .bind(&e.session)
                    .bind(&e.kind)
                    .bind(&e.user)
                    .bind(&e.awarded_by)
                    .bind($crate::store::rows::to_i64(e.version))
                    .bind(&e.title)
                    .bind(e.at_ms)
                    .bind(state)
                    .execute(self.pool())
                    .await?
                    .rows_affected()
                        > 0)
                })
            }

            fn showcase(
                &self,
                before_ms: i64,
                limit: u32,
            ) -> $crate::store::StoreFuture<'_, Vec<$crate::store::tasks::ShowcaseEntry>> {
                Box::pin(async move {
                    let rows = sqlx::query(&format!(
                        "SELECT {} FROM showcase WHERE at < $1 ORDER BY at DESC, award DESC LIMIT $2",
                        $crate::store::rows::SHOWCASE_COLUMNS
                    ))
                    .bind(before_ms)
                    .bind(i64::from(limit))
                    .fetch_all(self.pool())
                    .await?;
                    rows.iter().map($crate::store::rows::showcase_row).collect()
                })
            }

            fn showcase_state<'a>(
                &'a self,
                session: &'a str,
                version: u64,
            ) -> $crate::store::StoreFuture<'a, Option<String>> {
                Box::pin(async move {
                    Ok(sqlx::query_scalar(
                        "SELECT state FROM showcase WHERE session = $1 AND version = $2 LIMIT 1",
                    )
                    .bind(session)
                    .bind($crate::store::rows::to_i64(version))
                    .fetch_optional(self.pool())
                    .await?)
                })
            }

            fn issue_newsletter(
                &self,
                now_ms: i64,
                limit: u32,
            ) -> $crate::store::StoreFuture<'_, Option<$crate::store::tasks::Newsletter>> {
                Box::pin(async move {
                    let mut tx = self.write_tx().await?;
                    let last: i64 =
                        sqlx::query_scalar("SELECT COALESCE(MAX(issue), 0) FROM newsletters")
                            .fetch_one(&mut *tx)
                            .await?;
                    let issue = last + 1;
                    // Two nodes issuing at once compute the same number: the second insert
                    // waits for the first to commit and then finds the number taken.
                    let mine = sqlx::query(
                        "INSERT INTO newsletters (issue, at) VALUES ($1, $2) \
                         ON CONFLICT (issue) DO NOTHING",
                    )
                    .bind(issue)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if mine == 0 {
                        return Ok(None);
                    }
                    let carried = sqlx::query(
                        "UPDATE showcase SET newsletter = $1 WHERE award IN (SELECT award FROM \
                         showcase WHERE newsletter IS NULL ORDER BY at, award LIMIT $2)",
                    )
                    .bind(issue)
                    .bind(i64::from(limit))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if carried == 0 {
                        // Nothing new: no empty issue (the transaction rolls back).
                        return Ok(None);
                    }
                    let rows = sqlx::query(&format!(
                        "SELECT {} FROM showcase WHERE newsletter = $1 ORDER BY at, award",
                        $crate::store::rows::SHOWCASE_COLUMNS
                    ))
                    .bind(issue)
                    .fetch_all(&mut *tx)
                    .await?;
                    let entries = rows
                        .iter()
                        .map($crate::store::rows::showcase_row)
                        .collect::<$crate::error::Result<Vec<_>>>()?;
                    tx.commit().await?;
                    Ok(Some($crate::store::tasks::Newsletter {
                        issue: $crate::store::rows::to_u64(issue),
                        at_ms: now_ms,
                        entries,
                    }))
                })
            }

            fn latest_newsletter(
                &self,
            ) -> $crate::store::StoreFuture<'_, Option<$crate::store::tasks::Newsletter>> {
                Box::pin(async move {
                    let Some((issue, at_ms)): Option<(i64, i64)> = sqlx::query_as(
                        "SELECT issue, at FROM newsletters ORDER BY issue DESC LIMIT 1",
                    )
                    .fetch_optional(self.pool())
                    .await?
                    else {
                        return Ok(None);
                    };
                    let rows = sqlx::query(&format!(
                        "SELECT {} FROM showcase WHERE newsletter = $1 ORDER BY at, award",
                        $crate::store::rows::SHOWCASE_COLUMNS
                    ))
                    .bind(issue)
                    .fetch_all(self.pool())
                    .await?;
                    Ok(Some($crate::store::tasks::Newsletter {
                        issue: $crate::store::rows::to_u64(issue),
                        at_ms,
                        entries: rows
                            .iter()
                            .map($crate::store::rows::showcase_row)
                            .collect::<$crate::error::Result<Vec<_>>>()?,
                    }))
                })
            }
        }

        impl $crate::store::EventStore for $store {
            fn append_event<'a>(
                &'a self,
                e: &'a $crate::store::NewEvent,
            ) -> $crate::store::StoreFuture<'a, u64> {
                Box::pin(async move {
                    let mut tx = self.write_tx().await?;
                    if let Some(lock) = Self::LOCK_EVENTS {
                        sqlx::query(lock).execute(&mut *tx).await?;
                    }
                    let seq: i64 = sqlx::query_scalar(
                        "INSERT INTO events (id, kind, session, data, time) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING seq",
                    )
                    .bind(&e.id)
                    .bind(&e.kind)
                    .bind(e.session.as_deref())
                    .bind(&e.data)
                    .bind(e.time)
                    .fetch_one(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok($crate::store::rows::to_u64(seq))
                })
            }

            fn events_after<'a>(
                &'a self,
                after: u64,
                limit: u32,
            ) -> $crate::store::StoreFuture<'a, Vec<$crate::store::StoredEvent>> {
                Box::pin(async move {
                    let rows: Vec<(i64, String, String, Option<String>, String, i64)> =
                        sqlx::query_as(
                            "SELECT seq, id, kind, session, data, time FROM events \
                             WHERE seq > $1 ORDER BY seq LIMIT $2",
                        )
                        .bind($crate::store::rows::to_i64(after))
                        .bind(i64::from(limit))
                        .fetch_all(self.pool())
                        .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(seq, id, kind, session, data, time)| $crate::store::StoredEvent {
                            seq: $crate::store::rows::to_u64(seq),
                            event: $crate::store::NewEvent {
                                id,
                                kind,
                                session,
                                data,
                                time,
                            },
                        })
                        .collect())
                })
            }

            fn last_event_seq(&self) -> $crate::store::StoreFuture<'_, u64> {
                Box::pin(async move {
                    let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
                        .fetch_one(self.pool())
                        .await?;
                    Ok($crate::store::rows::to_u64(last))
                })
            }
        }

        impl $crate::store::NotificationStore for $store {
            fn add_notification<'a>(
                &'a self,
                n: &'a $crate::store::NewNotification,
            ) -> $crate::store::StoreFuture<'a, montage_protocol::Notification> {
                Box::pin(async move {
                    let mut tx = self.write_tx().await?;
                    // A grouped item joins the user's unread one of its group, if there is one.
                    let sql = format!(
                        "INSERT INTO notifications \
                         (id, user_id, kind, session, actor, time, comment_id, role, group_key, count) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1) \
                         ON CONFLICT (user_id, group_key) WHERE read_at IS NULL AND group_key IS NOT NULL \
                         DO UPDATE SET count = notifications.count + 1, actor = excluded.actor, \
                         time = excluded.time, comment_id = excluded.comment_id RETURNING {}",
                        $crate::store::rows::NOTIFICATION_COLUMNS
                    );
                    let row = sqlx::query(&sql)
                        .bind(&n.id)
                        .bind(&n.user)
                        .bind(n.kind.as_str())
                        .bind(&n.session)
                        .bind(&n.actor)
                        .bind(n.time)
                        .bind(n.comment_id.as_deref())
                        .bind(n.role.map(montage_protocol::Role::as_str))
                        .bind(n.group.as_deref())
                        .fetch_one(&mut *tx)
                        .await?;
                    let item = $crate::store::rows::notification_row(&row)?;
                    sqlx::query(
                        "DELETE FROM notifications WHERE user_id = $1 AND time < \
                         (SELECT time FROM notifications WHERE user_id = $1 \
                         ORDER BY time DESC LIMIT 1 OFFSET $2)",
                    )
                    .bind(&n.user)
                    .bind(i64::from($crate::store::notifications::MAX_PER_USER) - 1)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(item)
                })
            }

            fn notifications<'a>(
                &'a self,
                user: &'a str,
                unread: bool,
                before: Option<i64>,
                limit: u32,
            ) -> $crate::store::StoreFuture<'a, Vec<montage_protocol::Notification>> {
                Box::pin(async move {
                    let sql = format!(
                        "SELECT {} FROM notifications WHERE user_id = $1 \
                         AND ($2 = 0 OR read_at IS NULL) AND time < $3 \
                         ORDER BY time DESC, id DESC LIMIT $4",
                        $crate::store::rows::NOTIFICATION_COLUMNS
                    );
                    let rows = sqlx::query(&sql)
                        .bind(user)
                        .bind(i64::from(unread))
                        .bind(before.unwrap_or(i64::MAX))
                        .bind(i64::from(limit))
                        .fetch_all(self.pool())
                        .await?;
                    rows.iter()
                        .map($crate::store::rows::notification_row)
                        .collect()
                })
            }

            fn mark_read<'a>(
                &'a self,
                user: &'a str,
                ids: Option<&'a [String]>,
            ) -> $crate::store::StoreFuture<'a, u64> {
                Box::pin(async move {
                    let now = $crate::clock::now_ms();
                    let mark = "UPDATE notifications SET read_at = $2 \
                                WHERE user_id = $1 AND read_at IS NULL";
                    let Some(ids) = ids else {
                        let done = sqlx::query(mark)
                            .bind(user)
                            .bind(now)
                            .execute(self.pool())
                            .await?;
                        return Ok(done.rows_affected());
                    };
                    if ids.is_empty() {
                        return Ok(0);
                    }
                    // One statement, `id IN ($3, $4, …)`: the HTTP request caps the ids at
                    // 1,000, far below either backend's limit on parameters.
                    let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
                    let sql = format!("{mark} AND id IN ({})", list.join(", "));
                    let mut q = sqlx::query(&sql).bind(user).bind(now);
                    for id in ids {
                        q = q.bind(id);
                    }
                    Ok(q.execute(self.pool()).await?.rows_affected())
                })
            }
        }
    };
}

pub(super) use sql_records;
