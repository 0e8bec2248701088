//! The embedded default store: SQLite in the data dir, WAL, `synchronous=FULL`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use crate::error::{Error, Result};
use crate::store::rows::to_i64;
use crate::store::{StoredOp, Write};

mod schema;
mod tasks;

use schema::{ASSET_SCHEMA, SCHEMA, SCHEMA_VERSION, STEPS, TASK_SCHEMA};

/// The database file inside the data dir.
pub const DB_FILE: &str = "montage.db";

pub struct SqliteStore {
    pool: SqlitePool,
    /// The group commit's own connection, outside the pool: its page cache stays warm (a
    /// connection drops its cache whenever another one wrote), and a batch of appends is one
    /// request to its worker thread instead of four (ping, begin, insert, commit).
    writer: tokio::sync::Mutex<Writer>,
}

struct Writer {
    conn: Option<SqliteConnection>,
    /// False while a batch is under way: a batch cut short (its future dropped, an error)
    /// may leave the connection inside its transaction, rolled back before the next one.
    clean: bool,
}

impl SqliteStore {
    /// A write transaction holds the only write lock of the file: no row needs locking.
    const FOR_UPDATE: &str = "";
    const LOCK_EVENTS: Option<&str> = None;

    /// Opens (creating if needed) `DIR/montage.db`.
    ///
    /// A new database file is created here with mode 0600 before SQLite opens it (an existing
    /// one keeps its mode). SQLite makes `montage.db-wal` and `montage.db-shm` itself, and gives
    /// them the main file's permission bits: its unix VFS opens both with the database file's
    /// `st_mode` (`findCreateFileMode` for the WAL, `unixOpenSharedMemory` for the SHM) and
    /// `fchmod`s a new one to exactly that, whatever the umask — so they are 0600 too
    /// (`wal_and_shm_files_get_the_database_files_mode` checks it).
    pub async fn open(data_dir: &Path) -> Result<SqliteStore> {
        let path = data_dir.join(DB_FILE);
        crate::files::ensure_private_file(&path)?;
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acked edit must survive power loss, not just a process crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // A ping is a round trip to the connection's worker thread and proves nothing
            // about a file this process has open.
            .test_before_acquire(false)
            .connect_with(opts.clone())
            .await?;
        let writer = SqliteConnection::connect_with(&opts).await?;
        let store = SqliteStore {
            pool,
            writer: tokio::sync::Mutex::new(Writer {
                conn: Some(writer),
                clean: true,
            }),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Closes the writer connection, then the pool's.
    async fn close_connections(&self) {
        if let Some(conn) = self.writer.lock().await.conn.take() {
            let _ = conn.close().await;
        }
        self.pool.close().await;
    }

    pub(super) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that writes: `BEGIN IMMEDIATE` takes the write lock at the start, waiting
    /// up to the busy timeout for it. A deferred one that reads first and writes later fails at
    /// once with "database is locked" (SQLITE_BUSY_SNAPSHOT, which the busy timeout does not
    /// retry) whenever another connection wrote in between.
    pub(super) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn migrate(&self) -> Result<()> {
        for shape in [SCHEMA, TASK_SCHEMA, ASSET_SCHEMA] {
            sqlx::raw_sql(shape).execute(&self.pool).await?;
        }
        // A new file starts at 1, the shape SCHEMA creates, and takes every step like an old one.
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1')")
            .execute(&self.pool)
            .await?;
        loop {
            let mut tx = self.write_tx().await?;
            let found: String =
                sqlx::query_scalar("SELECT value FROM meta WHERE key = 'schema_version'")
                    .fetch_one(&mut *tx)
                    .await?;
            let found = found.parse::<i64>().unwrap_or(i64::MAX);
            if found > SCHEMA_VERSION {
                return Err(Error::UnsupportedSchema {
                    found,
                    known: SCHEMA_VERSION,
                });
            }
            if found == SCHEMA_VERSION {
                return Ok(());
            }
            sqlx::raw_sql(STEPS[(found - 1) as usize])
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE meta SET value = $1 WHERE key = 'schema_version'")
                .bind((found + 1).to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version = found + 1, "SQLite schema upgraded");
        }
    }
}

/// Rows per INSERT statement (7 parameters each, far below SQLite's limit).
const INSERT_CHUNK: usize = 256;

/// Batches of at most this many appends keep their statement prepared: the common sizes under
/// load, without filling the statement cache with one entry per batch size.
const CACHED_BATCH: usize = 16;

/// `INSERT … ;` statements for `rows` appends, `INSERT_CHUNK` rows each. Anonymous `?`
/// parameters, bound in order across the statements: SQLite looks each named one (`$n`) up
/// among the names before it while parsing, which made preparing a large batch quadratic.
/// `OR ROLLBACK`: a version already there ends the whole transaction (the batch fails as one
/// anyway), so SQLite keeps no statement journal for a statement-only rollback.
fn insert_sql(rows: usize) -> String {
    const ROW: &str = "(?,?,?,?,?,?,?)";
    let mut sql = String::with_capacity(rows * (ROW.len() + 1) + 128);
    for start in (0..rows).step_by(INSERT_CHUNK) {
        sql.push_str(
            "INSERT OR ROLLBACK INTO ops (session, version, user_id, client, seq, ops, committed_at) \
             VALUES ",
        );
        let n = rows.min(start + INSERT_CHUNK) - start;
        sql.push_str(&vec![ROW; n].join(","));
        sql.push(';');
    }
    sql
}

/// Runs `sql` (made by `insert_sql` for `ops`, perhaps inside `BEGIN …; COMMIT;`) with the
/// appends bound: one request to the connection's worker thread.
async fn insert_ops(
    conn: &mut SqliteConnection,
    sql: &str,
    ops: &[(&str, &StoredOp)],
    persistent: bool,
) -> Result<()> {
    let Some(&(first_session, first)) = ops.first() else {
        return Ok(());
    };
    let mut q = sqlx::query(sql).persistent(persistent);
    for (session, op) in ops {
        q = q
            .bind(*session)
            .bind(to_i64(op.version))
            .bind(op.user.as_str())
            .bind(op.client.as_str())
            .bind(to_i64(op.seq))
            .bind(op.ops.as_str())
            .bind(op.time);
    }
    q.execute(conn)
        .await
        .map(drop)
        .map_err(|e| conflict_or(e, first_session, first))
}

/// A unique violation on `ops` is a version another writer holds.
fn conflict_or(e: sqlx::Error, session: &str, op: &StoredOp) -> Error {
    if is_unique_violation(&e) {
        Error::VersionConflict {
            session: session.to_owned(),
            version: op.version,
        }
    } else {
        e.into()
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl SqliteStore {
    /// One node owns an SQLite file: no home-node leases.
    fn lease_store(&self) -> Option<&dyn crate::store::LeaseStore> {
        None
    }
}

impl SqliteStore {
    /// The group commit: every append and snapshot of `batch` in one transaction (one commit,
    /// one fsync), on the writer connection.
    async fn commit_writes(&self, batch: &[Write]) -> Result<()> {
        let mut writer = self.writer.lock().await;
        let writer = &mut *writer;
        let conn = writer.conn.as_mut().ok_or(Error::Closed)?;
        if !writer.clean {
            rollback(conn).await;
        }
        writer.clean = false;
        let result = self.write_batch(conn, batch).await;
        if result.is_err() {
            rollback(conn).await;
        }
        writer.clean = true;
        result
    }

    async fn write_batch(&self, conn: &mut SqliteConnection, batch: &[Write]) -> Result<()> {
        let is_snapshot = |w: &Write| matches!(w, Write::Snapshot { .. });
        if !batch.iter().any(is_snapshot) {
            // Appends only (the edit path): the whole transaction is one request.
            let ops = appends(batch);
            let sql = format!("BEGIN IMMEDIATE;{}COMMIT;", insert_sql(ops.len()));
            return insert_ops(conn, &sql, &ops, ops.len() <= CACHED_BATCH).await;
        }
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        // Each snapshot after the ops before it, which it may cover.
        for run in batch.split_inclusive(is_snapshot) {
            let ops = appends(run);
            insert_ops(conn, &insert_sql(ops.len()), &ops, false).await?;
            if let Some(Write::Snapshot { session, snapshot }) = run.last() {
                self.write_snapshot(conn, session, snapshot).await?;
            }
        }
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        Ok(())
    }
}

/// The appends of `writes`, in order.
fn appends(writes: &[Write]) -> Vec<(&str, &StoredOp)> {
    writes
        .iter()
        .filter_map(|w| match w {
            Write::Op { session, op, .. } => Some((session.as_str(), op)),
            Write::Snapshot { .. } => None,
        })
        .collect()
}

/// Ends whatever transaction a batch left open ("no transaction is active" when none: ignored).
async fn rollback(conn: &mut SqliteConnection) {
    let _ = sqlx::query("ROLLBACK").execute(conn).await;
}

crate::store::sql::sql_store!(SqliteStore, sqlx::Sqlite);

#[cfg(test)]
mod tests {
    use montage_protocol::Role;

    use super::*;
    use crate::store::sessions::contract::op;
    use crate::store::{NewSession, Store, TaskStore};

    /// What the comment on `open` says: the database file is made 0600 before SQLite opens
    /// it, and SQLite gives its `-wal` and `-shm` files the main file's mode (a database made
    /// 0640 by hand gets 0640 ones: copied from the file, not from the umask).
    #[tokio::test]
    async fn wal_and_shm_files_get_the_database_files_mode() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for (before, want) in [(None, 0o600), (Some(0o640), 0o640)] {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join(DB_FILE);
            if let Some(m) = before {
                std::fs::write(&db, b"").unwrap();
                std::fs::set_permissions(&db, std::fs::Permissions::from_mode(m)).unwrap();
            }
            let s = SqliteStore::open(dir.path()).await.unwrap();
            s.commit(&[op(1, 1)]).await.unwrap();
            for name in [DB_FILE, "montage.db-wal", "montage.db-shm"] {
                assert_eq!(mode(&dir.path().join(name)), want, "{name} of {before:?}");
            }
            s.close().await.unwrap();
        }
    }

    /// A write transaction that reads first (as `delete_session` does) while another
    /// connection commits: the other commit waits for it, and both go through. A deferred
    /// transaction failed at its first write with "database is locked" (SQLITE_BUSY_SNAPSHOT,
    /// not retried by the busy timeout): the demo page's DELETE answered 500 now and then.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_that_reads_first_is_not_overtaken_by_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        s.create_session("d", NewSession::new("alice", Role::Viewer))
            .await
            .unwrap();
        let mut tx = s.write_tx().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ops")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let other = {
            let s = s.clone();
            tokio::spawn(async move { s.commit(&[op(1, 1)]).await })
        };
        // Give the other commit time to try (and wait) before this transaction writes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!other.is_finished(), "the commit did not wait");
        sqlx::query("UPDATE sessions SET title = 'x' WHERE id = 'd'")
            .execute(&mut *tx)
            .await
            .expect("a write after a read in the same transaction");
        tx.commit().await.unwrap();
        other.await.unwrap().expect("the waiting commit");
        assert_eq!(n, 0);
    }

    /// A batch cut short (its future dropped between `BEGIN` and `COMMIT`) leaves the writer
    /// inside a transaction holding the file's write lock: the next batch ends it first instead
    /// of failing (and of blocking every other writer for the busy timeout).
    #[tokio::test]
    async fn a_batch_cut_short_does_not_wedge_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        {
            let mut w = s.writer.lock().await;
            let conn = w.conn.as_mut().unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *conn)
                .await
                .unwrap();
            insert_version_1_uncommitted(conn).await;
            w.clean = false;
        }
        s.commit(&[op(1, 1)]).await.unwrap();
        // The cut-short batch's row is gone; the new one is there; others can write.
        let ops = s.ops_after("s", 0, 10).await.unwrap();
        assert_eq!((ops.len(), ops[0].seq), (1, 1));
        s.create_session("t", NewSession::new("alice", Role::Viewer))
            .await
            .unwrap();
        s.close().await.unwrap();
    }

    /// An insert of version 1 (seq 7) inside the open transaction, never committed.
    async fn insert_version_1_uncommitted(conn: &mut SqliteConnection) {
        sqlx::query(
            "INSERT INTO ops (session, version, user_id, client, seq, ops) \
             VALUES ('s', 1, 'u', 'c', 7, '[]')",
        )
        .execute(conn)
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn sqlite_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        crate::store::sessions::contract::round_trip(&s).await;
        s.close().await.unwrap();
        // Reopen: everything is still there.
        let s = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(s.ops_after("s", 0, 1_000).await.unwrap().len(), 605);
    }

    /// A file written by a schema-1 build: step 2 keeps its sessions' link role (`viewer`, the
    /// old default) and lists them with their head versions; step 3's renamed columns keep
    /// their values (op authors, contributions, awards, invite uses).
    #[tokio::test]
    async fn schema_1_files_upgrade_keeping_their_link_role_and_records() {
        let dir = tempfile::tempdir().unwrap();
        {
            let url = format!("sqlite://{}?mode=rwc", dir.path().join(DB_FILE).display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::raw_sql(SCHEMA).execute(&pool).await.unwrap();
            for shape in [TASK_SCHEMA, ASSET_SCHEMA] {
                sqlx::raw_sql(shape).execute(&pool).await.unwrap();
            }
            sqlx::raw_sql(
                "INSERT INTO meta VALUES ('schema_version', '1');
                 INSERT INTO sessions (id, owner, created_at) VALUES ('old', 'alice', 1700000000);
                 INSERT INTO roles VALUES ('old', 'alice', 'owner');
                 INSERT INTO ops VALUES ('old', 1, 'alice', 'c', 1, '[]'), ('old', 2, 'alice', 'c', 2, '[]');
                 INSERT INTO contributions VALUES ('old', 'alice', 'edit_accepted', 2);
                 INSERT INTO awards VALUES ('k', 'old', 'alice', 'badge', 'first_edit', NULL, 5);
                 INSERT INTO invites (id, session, role, created_by, max_uses, created_at)
                     VALUES ('i', 'old', 'editor', 'alice', 1, 1);
                 INSERT INTO invite_uses VALUES ('i', 'bob'); UPDATE invites SET uses = 1;",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let s = SqliteStore::open(dir.path()).await.unwrap();
        let meta = s.meta("old").await.unwrap().unwrap();
        assert_eq!((meta.link_role, meta.title), (Role::Viewer, None));
        let list = s.user_sessions("alice", 10).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].version, list[0].updated), (2, 1_700_000_000_000));
        assert_eq!(s.max_seq("old", "alice", "c").await.unwrap(), Some(2));
        let mine = s.contributions(None, Some("alice")).await.unwrap();
        assert_eq!((mine.len(), mine[0].count), (1, 2));
        assert_eq!(s.awards(Some("old"), None).await.unwrap()[0].user, "alice");
        // bob used the one use already: accepting again is free, carol finds it used up.
        let now = crate::clock::now_ms();
        assert!(s.accept_invite("i", "bob", now).await.unwrap().is_ok());
        assert!(s.accept_invite("i", "carol", now).await.unwrap().is_err());
        // New sessions get what they are created with.
        let new = crate::store::NewSession {
            owner: "bob",
            link_role: Role::Removed,
            title: Some("t"),
            encrypted: false,
        };
        assert!(s.create_session("new", new).await.unwrap());
        assert_eq!(
            s.meta("new").await.unwrap().unwrap().link_role,
            Role::Removed
        );
        // Opening again runs no step twice.
        s.close().await.unwrap();
        SqliteStore::open(dir.path()).await.unwrap();
    }
}
