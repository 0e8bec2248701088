//! The embedded default store: SQLite in the data dir, WAL, `synchronous=FULL`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use montage_protocol::Role;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{Error, Result};
use crate::store::rows::{session_meta, session_summary, stored_op, to_i64, to_u64};
use crate::store::{
    Loaded, NewSession, SESSION_TABLES, SessionMeta, SessionSummary, SessionUpdate, Snapshot,
    SocialStore, Store, StoreFuture, StoredOp, Write,
};

mod assets;
mod social;
mod tasks;

/// The database file inside the data dir.
pub const DB_FILE: &str = "montage.db";
/// The schema this build writes; a newer one on disk is refused rather than misread.
const SCHEMA_VERSION: i64 = 2;

/// Steps from one schema version to the next: `STEPS[i]` takes version `i + 1` to `i + 2`.
/// Append only; each runs once, in a transaction, and bumps `schema_version`.
const STEPS: &[&str] = &[
    // 2: private sessions (#14). Sessions made before keep their `link_role` (`viewer` unless
    // changed); title and last update for `GET /v1/sessions`; deleted sessions' tombstones.
    r#"
ALTER TABLE sessions ADD COLUMN title TEXT;
ALTER TABLE sessions ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN deleted_at INTEGER;
UPDATE sessions SET updated_at = created_at * 1000;
CREATE INDEX IF NOT EXISTS roles_by_user ON roles (user, session);
CREATE INDEX IF NOT EXISTS assets_by_session ON assets (session);
CREATE INDEX IF NOT EXISTS contributions_by_session ON contributions (session);
"#,
];

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    link_role TEXT NOT NULL DEFAULT 'viewer',
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS roles (
    session TEXT NOT NULL,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (session, user)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ops (
    session TEXT NOT NULL,
    version INTEGER NOT NULL,
    user TEXT NOT NULL,
    client TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ops TEXT NOT NULL,
    PRIMARY KEY (session, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ops_by_client ON ops (session, client, seq);
CREATE TABLE IF NOT EXISTS snapshots (
    session TEXT NOT NULL,
    version INTEGER NOT NULL,
    format INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL,
    PRIMARY KEY (session, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS comments (
    n INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    id TEXT NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (session, id)
);
CREATE INDEX IF NOT EXISTS comments_by_session ON comments (session, n);
CREATE TABLE IF NOT EXISTS suggestions (
    n INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    id TEXT NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (session, id)
);
CREATE INDEX IF NOT EXISTS suggestions_by_session ON suggestions (session, n);
"#;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
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
            .connect_with(opts)
            .await?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
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
        sqlx::raw_sql(SCHEMA).execute(&self.pool).await?;
        sqlx::raw_sql(tasks::TASK_SCHEMA)
            .execute(&self.pool)
            .await?;
        sqlx::raw_sql(assets::ASSET_SCHEMA)
            .execute(&self.pool)
            .await?;
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
            sqlx::query("UPDATE meta SET value = ? WHERE key = 'schema_version'")
                .bind((found + 1).to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version = found + 1, "SQLite schema upgraded");
        }
    }

    async fn meta_inner(&self, session: &str) -> Result<Option<SessionMeta>> {
        let Some(row) = sqlx::query_as(
            "SELECT owner, link_role, title FROM sessions WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(session)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let grants = sqlx::query_as("SELECT user, role FROM roles WHERE session = ?")
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
            "SELECT version, user, client, seq, ops FROM ops WHERE session = ? AND version > ? ORDER BY version LIMIT ?",
        )
        .bind(session)
        .bind(to_i64(after))
        .bind(to_i64(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_op).collect()
    }
}

/// Rows per multi-row INSERT (6 parameters each, far below SQLite's limit).
const INSERT_CHUNK: usize = 64;

/// Appends ops with one statement: far fewer round trips to the SQLite worker than one per op.
async fn insert_ops(tx: &mut sqlx::SqliteConnection, ops: &[(&str, &StoredOp)]) -> Result<()> {
    let Some((first_session, first)) = ops.first() else {
        return Ok(());
    };
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO ops (session, version, user, client, seq, ops) ",
    );
    q.push_values(ops, |mut b, (session, op)| {
        b.push_bind(*session)
            .push_bind(to_i64(op.version))
            .push_bind(op.user.as_str())
            .push_bind(op.client.as_str())
            .push_bind(to_i64(op.seq))
            .push_bind(op.ops.as_str());
    });
    match q.build().execute(&mut *tx).await {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Error::VersionConflict {
            session: (*first_session).to_owned(),
            version: first.version,
        }),
        Err(e) => Err(e.into()),
    }
}

async fn write_snapshot(
    tx: &mut sqlx::SqliteConnection,
    session: &str,
    snapshot: &Snapshot,
) -> Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO snapshots (session, version, format, state) VALUES (?, ?, 1, ?)",
    )
    .bind(session)
    .bind(to_i64(snapshot.version))
    .bind(&snapshot.state)
    .execute(&mut *tx)
    .await?;
    // Older snapshots are never read again; the op log keeps the full history.
    sqlx::query("DELETE FROM snapshots WHERE session = ? AND version < ?")
        .bind(session)
        .bind(to_i64(snapshot.version))
        .execute(&mut *tx)
        .await?;
    // `GET /v1/sessions`'s `updated`: moved with snapshots (every few minutes of activity and
    // on idle), not per commit, which keeps the edit path at one statement per batch.
    sqlx::query("UPDATE sessions SET updated_at = MAX(updated_at, ?) WHERE id = ?")
        .bind(crate::clock::now_ms())
        .bind(session)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl Store for SqliteStore {
    fn task_store(&self) -> Option<&dyn crate::store::TaskStore> {
        Some(self)
    }

    fn load<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Option<Loaded>> {
        Box::pin(async move {
            let Some(meta) = self.meta_inner(session).await? else {
                return Ok(None);
            };
            let snapshot = sqlx::query(
                "SELECT version, format, state FROM snapshots WHERE session = ? ORDER BY version DESC LIMIT 1",
            )
            .bind(session)
            .fetch_optional(&self.pool)
            .await?;
            let snapshot = match snapshot {
                None => None,
                Some(r) => {
                    let format: i64 = r.try_get(1)?;
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
            let mut tx = self.write_tx().await?;
            let now = crate::clock::now_ms();
            let created = sqlx::query(
                "INSERT OR IGNORE INTO sessions (id, owner, link_role, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
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
                    "INSERT OR REPLACE INTO roles (session, user, role) VALUES (?, ?, 'owner')",
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
                "UPDATE sessions SET link_role = COALESCE(?, link_role), \
                 title = CASE WHEN ? IS NULL THEN title ELSE NULLIF(?, '') END, updated_at = ? \
                 WHERE id = ?",
            )
            .bind(update.link_role.map(Role::as_str))
            .bind(update.title.as_deref())
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
                 WHERE r.user = ? AND r.role <> 'none' ORDER BY s.updated_at DESC, s.id LIMIT ?",
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
            let mut tx = self.write_tx().await?;
            let assets: Vec<String> = sqlx::query_scalar("SELECT id FROM assets WHERE session = ?")
                .bind(session)
                .fetch_all(&mut *tx)
                .await?;
            sqlx::query(
                "DELETE FROM invite_uses WHERE invite IN (SELECT id FROM invites WHERE session = ?)",
            )
            .bind(session)
            .execute(&mut *tx)
            .await?;
            for table in SESSION_TABLES.iter().chain(&["assets"]) {
                sqlx::query(&format!("DELETE FROM {table} WHERE session = ?"))
                    .bind(session)
                    .execute(&mut *tx)
                    .await?;
            }
            // The row stays as a tombstone holding only the id: a deleted session's id is never
            // reused (a later join is not_found, not a new session under an old link).
            sqlx::query(
                "UPDATE sessions SET owner = '', title = NULL, deleted_at = ? WHERE id = ?",
            )
            .bind(crate::clock::now_ms())
            .bind(session)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(assets)
        })
    }

    fn set_role<'a>(&'a self, session: &'a str, user: &'a str, role: Role) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query("INSERT OR REPLACE INTO roles (session, user, role) VALUES (?, ?, ?)")
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
            let mut tx = self.write_tx().await?;
            let mut ops: Vec<(&str, &StoredOp)> = Vec::with_capacity(INSERT_CHUNK);
            for w in batch {
                match w {
                    Write::Op { session, op } => {
                        ops.push((session, op));
                        if ops.len() == INSERT_CHUNK {
                            insert_ops(&mut tx, &ops).await?;
                            ops.clear();
                        }
                    }
                    Write::Snapshot { session, snapshot } => {
                        // In order: the ops a snapshot covers are written before it.
                        insert_ops(&mut tx, &ops).await?;
                        ops.clear();
                        write_snapshot(&mut tx, session, snapshot).await?
                    }
                }
            }
            insert_ops(&mut tx, &ops).await?;
            // One commit, one fsync for the whole batch: this is the group commit.
            tx.commit().await?;
            Ok(())
        })
    }

    fn save_snapshot<'a>(
        &'a self,
        session: &'a str,
        snapshot: &'a Snapshot,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.write_tx().await?;
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
                "SELECT version FROM ops WHERE session = ? AND client = ? AND seq = ? AND user = ? LIMIT 1",
            )
            .bind(session)
            .bind(client)
            .bind(to_i64(seq))
            .bind(user)
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
                "SELECT MAX(seq) FROM ops WHERE session = ? AND client = ? AND user = ?",
            )
            .bind(session)
            .bind(client)
            .bind(user)
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
    fn social(&self) -> Option<&dyn SocialStore> {
        Some(self)
    }
    fn assets(&self) -> Option<&dyn crate::store::AssetStore> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(v: u64, seq: u64) -> Write {
        Write::Op {
            session: "s".into(),
            op: StoredOp {
                version: v,
                user: "u".into(),
                client: "c".into(),
                seq,
                ops: "[]".into(),
            },
        }
    }

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

    #[tokio::test]
    async fn sqlite_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).await.unwrap();
        assert!(s.load("s").await.unwrap().is_none());
        s.create_session("s", NewSession::new("alice", Role::Viewer))
            .await
            .unwrap();
        s.create_session("s", NewSession::new("bob", Role::Viewer))
            .await
            .unwrap();
        s.commit(&[op(1, 1), op(2, 2)]).await.unwrap();
        assert!(matches!(
            s.commit(&[op(3, 3), op(2, 9)]).await,
            Err(Error::VersionConflict { .. })
        ));
        // The failed batch left nothing behind.
        assert_eq!(s.ops_after("s", 0, 100).await.unwrap().len(), 2);
        s.save_snapshot(
            "s",
            &Snapshot {
                version: 1,
                state: "{}".into(),
            },
        )
        .await
        .unwrap();
        s.set_role("s", "bob", Role::Editor).await.unwrap();
        let l = s.load("s").await.unwrap().unwrap();
        assert_eq!(l.meta.owner, "alice");
        assert_eq!(l.meta.role_of("alice"), Role::Owner);
        assert_eq!(l.meta.role_of("bob"), Role::Editor);
        assert_eq!(l.meta.role_of("carol"), Role::Viewer);
        assert_eq!(l.snapshot.unwrap().version, 1);
        assert_eq!(l.ops.iter().map(|o| o.version).collect::<Vec<_>>(), vec![2]);
        assert_eq!(s.find_seq("s", "u", "c", 2).await.unwrap(), Some(2));
        assert_eq!(s.find_seq("s", "u", "c", 3).await.unwrap(), None);
        assert_eq!(s.find_seq("s", "mallory", "c", 2).await.unwrap(), None);
        assert_eq!(s.max_seq("s", "u", "c").await.unwrap(), Some(2));
        assert_eq!(s.max_seq("s", "u", "d").await.unwrap(), None);
        assert_eq!(s.max_seq("s", "mallory", "c").await.unwrap(), None);
        s.close().await.unwrap();
        // Reopen: everything is still there.
        let s = SqliteStore::open(dir.path()).await.unwrap();
        assert_eq!(s.ops_after("s", 0, 100).await.unwrap().len(), 2);
    }

    /// A file written by a schema-1 build: step 2 keeps its sessions' link role (`viewer`, the
    /// old default) and lists them with their head versions.
    #[tokio::test]
    async fn schema_1_files_upgrade_keeping_their_link_role() {
        let dir = tempfile::tempdir().unwrap();
        {
            let url = format!("sqlite://{}?mode=rwc", dir.path().join(DB_FILE).display());
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::raw_sql(SCHEMA).execute(&pool).await.unwrap();
            sqlx::raw_sql(tasks::TASK_SCHEMA)
                .execute(&pool)
                .await
                .unwrap();
            sqlx::raw_sql(assets::ASSET_SCHEMA)
                .execute(&pool)
                .await
                .unwrap();
            sqlx::raw_sql(
                "INSERT INTO meta VALUES ('schema_version', '1');
                 INSERT INTO sessions (id, owner, created_at) VALUES ('old', 'alice', 1700000000);
                 INSERT INTO roles VALUES ('old', 'alice', 'owner');
                 INSERT INTO ops VALUES ('old', 1, 'alice', 'c', 1, '[]'), ('old', 2, 'alice', 'c', 2, '[]');",
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
        // New sessions get what they are created with.
        let new = crate::store::NewSession {
            owner: "bob",
            link_role: Role::Removed,
            title: Some("t"),
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
