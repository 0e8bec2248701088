//! The scale-out store: PostgreSQL through a sqlx pool, shared by every gateway node.
//!
//! PostgreSQL is the sequencer of record (DESIGN §5): `ops` has the primary key
//! `(session, version)`, so two nodes that both try to append version N cannot both succeed; the
//! loser gets `VersionConflict` and catches up (`session::cluster`). A group commit is one
//! transaction, acked only after PostgreSQL committed it (`synchronous_commit` as configured on
//! the server, `on` by default).
//!
//! Schema changes are numbered steps in [`MIGRATIONS`], applied in order under an advisory lock
//! (several nodes may start at once) and recorded in `montage_migrations`. A feature that adds
//! tables appends its own step to that list and implements its storage trait for [`PgStore`] in
//! its own module, using [`PgStore::pool`] — the same pool, the same migration runner. Comments,
//! suggestions, tasks, invites, contributions and awards do so in `store::pg_records` (step 2).

use std::str::FromStr;
use std::time::Duration;

use montage_protocol::Role;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::{Error, Result};
use crate::store::rows::{session_meta, session_summary, stored_op, to_i64, to_u64};
use crate::store::{
    Loaded, NewSession, SESSION_TABLES, SessionMeta, SessionSummary, SessionUpdate, Snapshot,
    Store, StoreFuture, StoredOp, Write,
};

mod assets;
mod social;
mod tasks;

/// One numbered schema step.
pub struct Migration {
    pub id: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every schema step this build knows, oldest first. Append only; never edit a released step.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        id: 1,
        name: "sessions, roles, ops, snapshots",
        sql: r#"
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    link_role TEXT NOT NULL DEFAULT 'viewer',
    created_at BIGINT NOT NULL
);
CREATE TABLE roles (
    session TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (session, user_id)
);
CREATE TABLE ops (
    session TEXT NOT NULL,
    version BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    client TEXT NOT NULL,
    seq BIGINT NOT NULL,
    ops TEXT NOT NULL,
    PRIMARY KEY (session, version)
);
CREATE INDEX ops_by_client ON ops (session, user_id, client, seq);
CREATE TABLE snapshots (
    session TEXT NOT NULL,
    version BIGINT NOT NULL,
    format INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL,
    PRIMARY KEY (session, version)
);
"#,
    },
    Migration {
        id: 2,
        name: "comments, suggestions, tasks, invites, contributions, awards",
        sql: tasks::SCHEMA,
    },
    // Issue #7: asset metadata (`store::assets`).
    Migration {
        id: 3,
        name: "assets",
        sql: assets::ASSET_SCHEMA,
    },
    // The cluster's id: nodes sharing this database are one cluster and scope their NATS
    // subjects with it (`bus::session_subject`).
    Migration {
        id: 4,
        name: "cluster id",
        sql: r#"
CREATE TABLE montage_cluster (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
INSERT INTO montage_cluster (id, created_at)
    VALUES (md5(random()::text || clock_timestamp()::text), extract(epoch FROM now())::BIGINT);
"#,
    },
    // Issue #14: private sessions. Sessions made before keep their `link_role` (`viewer` unless
    // changed); title and last update for `GET /v1/sessions`; deleted sessions' tombstones.
    Migration {
        id: 5,
        name: "session titles, last updates, tombstones and the lookups of private sessions",
        sql: r#"
ALTER TABLE sessions ADD COLUMN title TEXT;
ALTER TABLE sessions ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN deleted_at BIGINT;
UPDATE sessions SET updated_at = created_at * 1000;
CREATE INDEX roles_by_user ON roles (user_id, session);
CREATE INDEX assets_by_session ON assets (session);
CREATE INDEX contributions_by_session ON contributions (session);
"#,
    },
    // Issue #15: the per-user asset quota sums a user's assets.
    Migration {
        id: 6,
        name: "assets by uploader",
        sql: "CREATE INDEX assets_by_uploader ON assets (uploader);",
    },
];

/// Serialises migrations between nodes starting at once (an arbitrary constant key).
const MIGRATION_LOCK: i64 = 0x6d6f_6e74_6167_6501;

/// Pool size when the caller does not say.
pub const DEFAULT_POOL: u32 = 8;

pub struct PgStore {
    pool: PgPool,
    /// Who this node's task claims are recorded as (`tasks.lease_owner`).
    task_owner: String,
}

impl PgStore {
    /// A store on `url` whose schema the test sets up itself (`migrate` with some steps).
    #[cfg(test)]
    pub(crate) async fn connect_without_migrating(url: &str) -> PgStore {
        PgStore {
            pool: PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .expect("test database"),
            task_owner: crate::clock::random_id(),
        }
    }

    /// Connects with a pool of `max_connections` and applies missing migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<PgStore> {
        let opts = PgConnectOptions::from_str(url)?.application_name("montage");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        let store = PgStore {
            pool,
            task_owner: crate::clock::random_id(),
        };
        store.migrate(MIGRATIONS).await?;
        Ok(store)
    }

    /// Records this node's task claims as `owner` instead of an id of this process only. With an
    /// owner that outlives the process (the server derives one from its data dir), a restarted
    /// node puts back the tasks it was running when it stopped (`TaskStore::reset_running`)
    /// instead of waiting for their leases to expire. Two live nodes must not share one.
    pub fn with_task_owner(mut self, owner: impl Into<String>) -> PgStore {
        self.task_owner = owner.into();
        self
    }

    pub(super) fn task_owner(&self) -> &str {
        &self.task_owner
    }

    /// The id every node on this database shares (made by the migration that added it).
    pub async fn cluster_id(&self) -> Result<String> {
        Ok(sqlx::query_scalar("SELECT id FROM montage_cluster LIMIT 1")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The pool, for storage traits of other features implemented on this store.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the steps of `steps` not yet recorded, in one transaction.
    pub async fn migrate(&self, steps: &[Migration]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS montage_migrations (id BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT id FROM montage_migrations")
            .fetch_all(&mut *tx)
            .await?;
        let known = steps.iter().map(|m| m.id).max().unwrap_or(0);
        if let Some(&found) = applied.iter().max()
            && found > known
        {
            return Err(Error::UnsupportedSchema { found, known });
        }
        for m in steps.iter().filter(|m| !applied.contains(&m.id)) {
            sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO montage_migrations (id, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.id)
            .bind(m.name)
            .bind(to_i64(crate::clock::now_secs()))
            .execute(&mut *tx)
            .await?;
            tracing::info!(id = m.id, name = m.name, "applied migration");
        }
        tx.commit().await?;
        Ok(())
    }

    /// One attempt at a group commit: one transaction.
    async fn commit_once(&self, batch: &[Write]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let ops: Vec<(&str, &StoredOp)> = batch
            .iter()
            .filter_map(|w| match w {
                Write::Op { session, op } => Some((session.as_str(), op)),
                Write::Snapshot { .. } => None,
            })
            .collect();
        // All appends first: a snapshot in the batch covers ops of the same transaction, so
        // their order inside it does not matter.
        insert_ops(&mut tx, &ops).await?;
        for w in batch {
            if let Write::Snapshot { session, snapshot } = w {
                write_snapshot(&mut tx, session, snapshot).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn meta_inner(&self, session: &str) -> Result<Option<SessionMeta>> {
        let Some(row) = sqlx::query_as(
            "SELECT owner, link_role, title FROM sessions WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(session)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let grants = sqlx::query_as("SELECT user_id, role FROM roles WHERE session = $1")
            .bind(session)
            .fetch_all(&self.pool)
            .await?;
        session_meta(session, row, grants).map(Some)
    }

    async fn ops_after_inner(
        &self,
        session: &str,
        after: u64,
        limit: u64,
    ) -> Result<Vec<StoredOp>> {
        let rows = sqlx::query(
            "SELECT version, user_id, client, seq, ops FROM ops WHERE session = $1 AND version > $2 ORDER BY version LIMIT $3",
        )
        .bind(session)
        .bind(to_i64(after))
        .bind(to_i64(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_op).collect()
    }
}

/// Appends every op of a batch with one statement. A version that exists already is not
/// inserted (`ON CONFLICT DO NOTHING`), so the rows that came back tell exactly which one lost
/// the race — the caller rolls the transaction back and reports it.
async fn insert_ops(tx: &mut sqlx::PgConnection, ops: &[(&str, &StoredOp)]) -> Result<()> {
    if ops.is_empty() {
        return Ok(());
    }
    // Every node inserts in key order: two batches that touch the same sessions then wait for
    // each other instead of deadlocking.
    let mut ops = ops.to_vec();
    ops.sort_by(|a, b| (a.0, a.1.version).cmp(&(b.0, b.1.version)));
    let ops = &ops[..];
    let mut sessions = Vec::with_capacity(ops.len());
    let mut versions = Vec::with_capacity(ops.len());
    let mut users = Vec::with_capacity(ops.len());
    let mut clients = Vec::with_capacity(ops.len());
    let mut seqs = Vec::with_capacity(ops.len());
    let mut bodies = Vec::with_capacity(ops.len());
    for (s, o) in ops {
        sessions.push(*s);
        versions.push(to_i64(o.version));
        users.push(o.user.as_str());
        clients.push(o.client.as_str());
        seqs.push(to_i64(o.seq));
        bodies.push(o.ops.as_str());
    }
    let inserted: Vec<(String, i64)> = sqlx::query_as(
        "INSERT INTO ops (session, version, user_id, client, seq, ops) \
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::text[]) \
         AS t(session, version, user_id, client, seq, ops) ORDER BY session, version \
         ON CONFLICT (session, version) DO NOTHING RETURNING session, version",
    )
    .bind(&sessions)
    .bind(&versions)
    .bind(&users)
    .bind(&clients)
    .bind(&seqs)
    .bind(&bodies)
    .fetch_all(&mut *tx)
    .await?;
    if inserted.len() == ops.len() {
        return Ok(());
    }
    let got: std::collections::HashSet<(&str, i64)> =
        inserted.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    let (session, op) = ops
        .iter()
        .find(|(s, o)| !got.contains(&(*s, to_i64(o.version))))
        .unwrap_or(&ops[0]);
    Err(Error::VersionConflict {
        session: (*session).to_owned(),
        version: op.version,
    })
}

/// Aborted commits tried again before the error is reported.
const COMMIT_RETRIES: u32 = 3;

/// Deadlock detected (40P01) or serialization failure (40001): the transaction did nothing.
fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40P01" | "40001")))
}

async fn write_snapshot(
    tx: &mut sqlx::PgConnection,
    session: &str,
    snapshot: &Snapshot,
) -> Result<()> {
    // Two nodes may snapshot the same version; both hold the same committed state.
    sqlx::query(
        "INSERT INTO snapshots (session, version, format, state) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (session, version) DO UPDATE SET state = EXCLUDED.state, format = 1",
    )
    .bind(session)
    .bind(to_i64(snapshot.version))
    .bind(&snapshot.state)
    .execute(&mut *tx)
    .await?;
    // Older snapshots are never read again; the op log keeps the full history.
    sqlx::query("DELETE FROM snapshots WHERE session = $1 AND version < $2")
        .bind(session)
        .bind(to_i64(snapshot.version))
        .execute(&mut *tx)
        .await?;
    // `GET /v1/sessions`'s `updated`: moved with snapshots (every few minutes of activity and
    // on idle), not per commit, which keeps the edit path at one statement per batch.
    sqlx::query("UPDATE sessions SET updated_at = GREATEST(updated_at, $1) WHERE id = $2")
        .bind(crate::clock::now_ms())
        .bind(session)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

impl Store for PgStore {
    fn social(&self) -> Option<&dyn crate::store::SocialStore> {
        Some(self)
    }

    fn task_store(&self) -> Option<&dyn crate::store::TaskStore> {
        Some(self)
    }

    fn load<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Option<Loaded>> {
        Box::pin(async move {
            let Some(meta) = self.meta_inner(session).await? else {
                return Ok(None);
            };
            let snapshot = sqlx::query(
                "SELECT version, format, state FROM snapshots WHERE session = $1 ORDER BY version DESC LIMIT 1",
            )
            .bind(session)
            .fetch_optional(&self.pool)
            .await?;
            let snapshot = match snapshot {
                None => None,
                Some(r) => {
                    let format: i32 = r.try_get(1)?;
                    if format != 1 {
                        return Err(Error::Corrupt {
                            session: session.to_owned(),
                            reason: format!("snapshot format {format} is unknown"),
                        });
                    }
                    Some(Snapshot {
                        version: to_u64(r.try_get(0)?),
                        state: r.try_get(2)?,
                    })
                }
            };
            let from = snapshot.as_ref().map_or(0, |s| s.version);
            let ops = self.ops_after_inner(session, from, u64::MAX >> 1).await?;
            Ok(Some(Loaded {
                meta,
                snapshot,
                ops,
            }))
        })
    }

    fn meta<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Option<SessionMeta>> {
        Box::pin(self.meta_inner(session))
    }

    fn create_session<'a>(
        &'a self,
        session: &'a str,
        new: NewSession<'a>,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let now = crate::clock::now_ms();
            // Two nodes may create the same session at once: the first insert wins and only it
            // grants ownership.
            let created = sqlx::query(
                "INSERT INTO sessions (id, owner, link_role, title, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
            )
            .bind(session)
            .bind(new.owner)
            .bind(new.link_role.as_str())
            .bind(new.title)
            .bind(now / 1000)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let created = created.rows_affected() == 1;
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
        update: &'a SessionUpdate,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE sessions SET link_role = COALESCE($1, link_role), \
                 title = CASE WHEN $2::TEXT IS NULL THEN title ELSE NULLIF($2, '') END, \
                 updated_at = $3 WHERE id = $4",
            )
            .bind(update.link_role.map(Role::as_str))
            .bind(update.title.as_deref())
            .bind(crate::clock::now_ms())
            .bind(session)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn user_sessions<'a>(
        &'a self,
        user: &'a str,
        limit: u32,
    ) -> StoreFuture<'a, Vec<SessionSummary>> {
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
            .fetch_all(&self.pool)
            .await?;
            rows.into_iter().map(session_summary).collect()
        })
    }

    fn delete_session<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
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
            for table in SESSION_TABLES.iter().chain(&["assets"]) {
                sqlx::query(&format!("DELETE FROM {table} WHERE session = $1"))
                    .bind(session)
                    .execute(&mut *tx)
                    .await?;
            }
            // The row stays as a tombstone holding only the id: a deleted session's id is never
            // reused (a later join is not_found, not a new session under an old link).
            sqlx::query(
                "UPDATE sessions SET owner = '', title = NULL, deleted_at = $2 WHERE id = $1",
            )
            .bind(session)
            .bind(crate::clock::now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(assets)
        })
    }

    fn set_role<'a>(&'a self, session: &'a str, user: &'a str, role: Role) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO roles (session, user_id, role) VALUES ($1, $2, $3) \
                 ON CONFLICT (session, user_id) DO UPDATE SET role = EXCLUDED.role",
            )
            .bind(session)
            .bind(user)
            .bind(role.as_str())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn commit<'a>(&'a self, batch: &'a [Write]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // PostgreSQL may still abort a transaction to break a lock cycle (snapshot rows,
            // other writers); nothing of it was written, so it is tried again.
            let mut attempt = 0;
            loop {
                match self.commit_once(batch).await {
                    Err(Error::Database(e)) if is_retryable(&e) && attempt < COMMIT_RETRIES => {
                        attempt += 1;
                        tracing::debug!(error = %e, attempt, "retrying an aborted group commit");
                    }
                    r => return r,
                }
            }
        })
    }

    fn save_snapshot<'a>(
        &'a self,
        session: &'a str,
        snapshot: &'a Snapshot,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            write_snapshot(&mut tx, session, snapshot).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn ops_after<'a>(
        &'a self,
        session: &'a str,
        after: u64,
        limit: u64,
    ) -> StoreFuture<'a, Vec<StoredOp>> {
        Box::pin(self.ops_after_inner(session, after, limit))
    }

    fn find_seq<'a>(
        &'a self,
        session: &'a str,
        user: &'a str,
        client: &'a str,
        seq: u64,
    ) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            let v: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM ops WHERE session = $1 AND user_id = $2 AND client = $3 AND seq = $4 LIMIT 1",
            )
            .bind(session)
            .bind(user)
            .bind(client)
            .bind(to_i64(seq))
            .fetch_optional(&self.pool)
            .await?;
            Ok(v.map(to_u64))
        })
    }

    fn max_seq<'a>(
        &'a self,
        session: &'a str,
        user: &'a str,
        client: &'a str,
    ) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            let v: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(seq) FROM ops WHERE session = $1 AND user_id = $2 AND client = $3",
            )
            .bind(session)
            .bind(user)
            .bind(client)
            .fetch_one(&self.pool)
            .await?;
            Ok(v.map(to_u64))
        })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.pool.close().await;
            Ok(())
        })
    }
    fn assets(&self) -> Option<&dyn crate::store::AssetStore> {
        Some(self)
    }
}

/// A throwaway database on the test server named by `MONTAGE_TEST_DATABASE_URL`.
#[cfg(test)]
pub(crate) mod testdb {
    use sqlx::Connection;

    pub struct TestDb {
        pub url: String,
        admin: String,
        name: String,
    }

    /// `None`, said loudly on stderr, when the variable is not set — unless
    /// `MONTAGE_TEST_REQUIRE_SERVICES` is (`.ci/run` sets both): then the test fails, so a
    /// PostgreSQL regression cannot pass unnoticed in CI.
    pub async fn create(test: &str) -> Option<TestDb> {
        let admin = match std::env::var("MONTAGE_TEST_DATABASE_URL") {
            Ok(u) if !u.is_empty() => u,
            _ if std::env::var_os("MONTAGE_TEST_REQUIRE_SERVICES").is_some() => panic!(
                "{test} needs PostgreSQL: set MONTAGE_TEST_DATABASE_URL (`.ci/run` does), e.g. postgres://postgres@127.0.0.1:5432/postgres"
            ),
            _ => {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "\n!!!!! {test} DID NOT RUN: MONTAGE_TEST_DATABASE_URL is not set (`.ci/run` sets it) !!!!!\n"
                );
                return None;
            }
        };
        let mut b = [0u8; 6];
        getrandom::fill(&mut b).expect("getrandom");
        let name = format!(
            "montage_unit_{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        );
        let mut c = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("{test}: connecting to {admin}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{test}: CREATE DATABASE: {e}"));
        let (base, _) = admin
            .rsplit_once('/')
            .expect("MONTAGE_TEST_DATABASE_URL has no database part");
        Some(TestDb {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }

    impl TestDb {
        pub async fn drop_db(self) {
            if let Ok(mut c) = sqlx::PgConnection::connect(&self.admin).await {
                let _ = sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .execute(&mut c)
                .await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
