//! The scale-out store: PostgreSQL through a sqlx pool, shared by every gateway node.
//!
//! PostgreSQL is the sequencer of record (DESIGN §5): `ops` has the primary key
//! `(session, version)`, so two nodes that both try to append version N cannot both succeed; the
//! loser gets `VersionConflict` and catches up (`sync::cluster`). A group commit is one
//! transaction, acked only after PostgreSQL committed it (`synchronous_commit` as configured on
//! the server, `on` by default).
//!
//! Schema changes are numbered steps in [`MIGRATIONS`] (`schema.rs`), applied in order under an
//! advisory lock (several nodes may start at once) and recorded in `montage_migrations`. The
//! storage traits run the SQL they share with SQLite (`store::sql`, `store::sql_records`); what
//! is PostgreSQL's own is here (the group commit) and in `tasks.rs` (claims that skip rows other
//! nodes hold).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::{Error, Result};
use crate::store::rows::to_i64;
use crate::store::{StoredOp, Write};

mod leases;
mod schema;
mod tasks;

pub use schema::{MIGRATIONS, Migration};

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
        let ops: Vec<(&str, &StoredOp, Option<u64>)> = batch
            .iter()
            .filter_map(|w| match w {
                Write::Op { session, op, fence } => Some((session.as_str(), op, *fence)),
                Write::Snapshot { .. } => None,
            })
            .collect();
        leases::check_fences(&mut tx, &ops).await?;
        // All appends first: a snapshot in the batch covers ops of the same transaction, so
        // their order inside it does not matter.
        insert_ops(&mut tx, &ops).await?;
        for w in batch {
            if let Write::Snapshot { session, snapshot } = w {
                self.write_snapshot(&mut tx, session, snapshot).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Appends every op of a batch with one statement. A version that exists already is not
/// inserted (`ON CONFLICT DO NOTHING`), so the rows that came back tell exactly which one lost
/// the race — the caller rolls the transaction back and reports it.
async fn insert_ops(
    tx: &mut sqlx::PgConnection,
    ops: &[(&str, &StoredOp, Option<u64>)],
) -> Result<()> {
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
    let mut times = Vec::with_capacity(ops.len());
    let mut epochs = Vec::with_capacity(ops.len());
    for (s, o, fence) in ops {
        sessions.push(*s);
        versions.push(to_i64(o.version));
        users.push(o.user.as_str());
        clients.push(o.client.as_str());
        seqs.push(to_i64(o.seq));
        bodies.push(o.ops.as_str());
        times.push(o.time);
        epochs.push(fence.map(to_i64));
    }
    let inserted: Vec<(String, i64)> = sqlx::query_as(
        "INSERT INTO ops (session, version, user_id, client, seq, ops, committed_at, epoch) \
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::int8[], $8::int8[]) \
         AS t(session, version, user_id, client, seq, ops, committed_at, epoch) ORDER BY session, version \
         ON CONFLICT (session, version) DO NOTHING RETURNING session, version",
    )
    .bind(&sessions)
    .bind(&versions)
    .bind(&users)
    .bind(&clients)
    .bind(&seqs)
    .bind(&bodies)
    .bind(&times)
    .bind(&epochs)
    .fetch_all(&mut *tx)
    .await?;
    if inserted.len() == ops.len() {
        return Ok(());
    }
    let got: std::collections::HashSet<(&str, i64)> =
        inserted.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    let (session, op, _) = ops
        .iter()
        .find(|(s, o, _)| !got.contains(&(*s, to_i64(o.version))))
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

impl PgStore {
    /// A row a write transaction changes after reading it is locked as it is read.
    const FOR_UPDATE: &str = " FOR UPDATE";
    const LOCK_EVENTS: Option<&str> = Some("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE");

    /// The group commit, tried again when PostgreSQL aborted it.
    async fn commit_writes(&self, batch: &[Write]) -> Result<()> {
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
    }

    async fn close_connections(&self) {
        self.pool.close().await;
    }

    /// A transaction that will write.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

crate::store::sql::sql_store!(PgStore, sqlx::Postgres);

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

    /// Runs `f` on a store over a throwaway database, then closes it and drops the database;
    /// does nothing (loudly) when no test database is configured, as [`create`].
    pub async fn with_store(test: &str, f: impl AsyncFnOnce(&super::PgStore)) {
        let Some(db) = create(test).await else {
            return;
        };
        let store = super::PgStore::connect(&db.url, 2)
            .await
            .unwrap_or_else(|e| panic!("{test}: {e}"));
        f(&store).await;
        store.pool().close().await;
        db.drop_db().await;
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
