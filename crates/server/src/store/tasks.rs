//! The durable records of the Task Manager and of sharing: tasks, invites, contributions and
//! awards. One trait (`TaskStore`) with the SQLite implementation (tables in the same
//! `montage.db`), the PostgreSQL one (`store::pg_records`, sharing the row decoding below) and an
//! in-memory one for tests and for stores that have no tables for them.

use std::collections::HashMap;
use std::sync::Mutex;

use super::StoreFuture;
use super::rows::{Cols, to_u32, to_u64};
use super::sqlite::SqliteStore;
use crate::error::{Error, Result};
use montage_protocol::Role;

/// Tables of this module, created with the rest of the SQLite schema (additive, so the schema
/// version stays 1: an older build simply ignores them).
pub(super) const TASK_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    session TEXT,
    created_by TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    next_run_at INTEGER NOT NULL,
    lease_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_due ON tasks (state, next_run_at);
CREATE INDEX IF NOT EXISTS tasks_by_session ON tasks (session, created_at);
CREATE TABLE IF NOT EXISTS invites (
    id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    role TEXT NOT NULL,
    created_by TEXT NOT NULL,
    for_user TEXT,
    expires_at INTEGER,
    max_uses INTEGER,
    uses INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS invites_by_session ON invites (session);
CREATE TABLE IF NOT EXISTS invite_uses (
    invite TEXT NOT NULL,
    user TEXT NOT NULL,
    PRIMARY KEY (invite, user)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contributions (
    session TEXT NOT NULL,
    user TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (session, user, kind)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS contributions_by_user ON contributions (user);
CREATE TABLE IF NOT EXISTS awards (
    key TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    user TEXT NOT NULL,
    kind TEXT NOT NULL,
    badge TEXT,
    awarded_by TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS awards_by_session ON awards (session);
CREATE INDEX IF NOT EXISTS awards_by_user ON awards (user);
"#;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Pending,
    Running,
    Succeeded,
    /// The last attempt failed; another is scheduled at `next_run_at`.
    Failed,
    /// Every attempt failed (or the failure was permanent); nothing more happens.
    Dead,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        Some(match s {
            "pending" => TaskState::Pending,
            "running" => TaskState::Running,
            "succeeded" => TaskState::Succeeded,
            "failed" => TaskState::Failed,
            "dead" => TaskState::Dead,
            _ => return None,
        })
    }
}

/// A task to create. `key` is the idempotency key: creating a task whose key exists returns the
/// existing task instead.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: String,
    pub key: String,
    pub kind: String,
    pub session: Option<String>,
    pub created_by: String,
    /// JSON, opaque to the store.
    pub payload: String,
    pub max_attempts: u32,
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub id: String,
    pub key: String,
    pub kind: String,
    pub session: Option<String>,
    pub created_by: String,
    pub payload: String,
    pub state: TaskState,
    /// Attempts started so far (a claim counts one).
    pub attempts: u32,
    pub max_attempts: u32,
    pub next_run_at_ms: i64,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    Succeeded,
    Retry { at_ms: i64, error: String },
    Dead { error: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Invite {
    pub id: String,
    pub session: String,
    pub role: Role,
    pub created_by: String,
    /// A targeted invite may only be accepted by this user; `None` is a public link.
    pub for_user: Option<String>,
    pub expires_at_ms: Option<i64>,
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub revoked: bool,
    pub created_at_ms: i64,
}

/// Why an accept did not go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteRefusal {
    NotFound,
    Revoked,
    Expired,
    Exhausted,
    NotForYou,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    pub session: String,
    pub user: String,
    pub kind: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Award {
    /// Unique: an award with the same key is given once.
    pub key: String,
    pub session: String,
    pub user: String,
    pub kind: String,
    pub badge: Option<String>,
    /// `None` for badges awarded by the rules.
    pub awarded_by: Option<String>,
    pub at_ms: i64,
}

/// Durable tasks, invites, contributions and awards.
pub trait TaskStore: Send + Sync + 'static {
    /// Inserts the task, or returns the one already stored under its key (`false`).
    fn create_task<'a>(&'a self, task: &'a NewTask) -> StoreFuture<'a, (TaskRecord, bool)>;
    fn task<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<TaskRecord>>;
    /// The newest `limit` tasks of a session, newest first.
    fn session_tasks<'a>(
        &'a self,
        session: &'a str,
        limit: u32,
    ) -> StoreFuture<'a, Vec<TaskRecord>>;
    /// Moves up to `limit` due tasks (pending or failed with `next_run_at <= now`, or running
    /// with an expired lease) to running, counts the attempt and leases them until `lease_until`.
    fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> StoreFuture<'_, Vec<TaskRecord>>;
    /// Records the end of the attempt of a running task.
    fn finish_task<'a>(
        &'a self,
        id: &'a str,
        outcome: &'a TaskOutcome,
        now_ms: i64,
    ) -> StoreFuture<'a, Option<TaskRecord>>;
    /// At boot: puts back to pending the running tasks the previous run of this node left. A
    /// store one process owns (SQLite, memory) resets every running task; a shared one
    /// (PostgreSQL) only those this node claimed, as other nodes may be running theirs.
    fn reset_running(&self, now_ms: i64) -> StoreFuture<'_, u64>;
    /// The earliest `next_run_at` of a waiting task.
    fn next_due(&self) -> StoreFuture<'_, Option<i64>>;

    fn create_invite<'a>(&'a self, invite: &'a Invite) -> StoreFuture<'a, ()>;
    fn invite<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Invite>>;
    fn session_invites<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Vec<Invite>>;
    /// Counts one use by `user` unless that user already used it (then it is free).
    fn accept_invite<'a>(
        &'a self,
        id: &'a str,
        user: &'a str,
        now_ms: i64,
    ) -> StoreFuture<'a, std::result::Result<Invite, InviteRefusal>>;
    /// `false` when there is no such invite.
    fn revoke_invite<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool>;

    /// Adds the counts and returns the new totals of the rows touched.
    fn add_contributions<'a>(
        &'a self,
        adds: &'a [Contribution],
    ) -> StoreFuture<'a, Vec<Contribution>>;
    /// Filtered by session and/or user.
    fn contributions<'a>(
        &'a self,
        session: Option<&'a str>,
        user: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<Contribution>>;
    /// `false` when an award with that key exists already.
    fn insert_award<'a>(&'a self, award: &'a Award) -> StoreFuture<'a, bool>;
    fn awards<'a>(
        &'a self,
        session: Option<&'a str>,
        user: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<Award>>;
}

/// Rows a filtered listing returns at most.
pub const MAX_LIST_ROWS: u32 = 500;

fn corrupt(what: &str, value: &str) -> Error {
    Error::Corrupt {
        session: String::new(),
        reason: format!("unknown {what} {value:?}"),
    }
}

/// Columns of a task row, in the order `task_row` reads them (the same names on both backends).
pub(super) const TASK_COLUMNS: &str = "id, key, kind, session, created_by, payload, state, attempts, max_attempts, next_run_at, last_error, created_at, updated_at";

pub(super) fn task_row(r: &impl Cols) -> Result<TaskRecord> {
    let state = r.text(6)?;
    Ok(TaskRecord {
        id: r.text(0)?,
        key: r.text(1)?,
        kind: r.text(2)?,
        session: r.opt_text(3)?,
        created_by: r.text(4)?,
        payload: r.text(5)?,
        state: TaskState::parse(&state).ok_or_else(|| corrupt("task state", &state))?,
        attempts: to_u32(r.int(7)?),
        max_attempts: to_u32(r.int(8)?),
        next_run_at_ms: r.int(9)?,
        last_error: r.opt_text(10)?,
        created_at_ms: r.int(11)?,
        updated_at_ms: r.int(12)?,
    })
}

pub(super) const INVITE_COLUMNS: &str =
    "id, session, role, created_by, for_user, expires_at, max_uses, uses, revoked, created_at";

pub(super) fn invite_row(r: &impl Cols) -> Result<Invite> {
    let role = r.text(2)?;
    Ok(Invite {
        id: r.text(0)?,
        session: r.text(1)?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        created_by: r.text(3)?,
        for_user: r.opt_text(4)?,
        expires_at_ms: r.opt_int(5)?,
        max_uses: r.opt_int(6)?.map(to_u32),
        uses: to_u32(r.int(7)?),
        revoked: r.flag(8)?,
        created_at_ms: r.int(9)?,
    })
}

/// `session, user, kind, count`.
pub(super) fn contribution_row(r: &impl Cols) -> Result<Contribution> {
    Ok(Contribution {
        session: r.text(0)?,
        user: r.text(1)?,
        kind: r.text(2)?,
        count: to_u64(r.int(3)?),
    })
}

/// `key, session, user, kind, badge, awarded_by, at`.
pub(super) fn award_row(r: &impl Cols) -> Result<Award> {
    Ok(Award {
        key: r.text(0)?,
        session: r.text(1)?,
        user: r.text(2)?,
        kind: r.text(3)?,
        badge: r.opt_text(4)?,
        awarded_by: r.opt_text(5)?,
        at_ms: r.int(6)?,
    })
}

/// Why an invite that could not be used was refused (the caller already knows it exists).
fn refusal(inv: &Invite, now_ms: i64) -> InviteRefusal {
    if inv.revoked {
        InviteRefusal::Revoked
    } else if inv.expires_at_ms.is_some_and(|e| e <= now_ms) {
        InviteRefusal::Expired
    } else {
        InviteRefusal::Exhausted
    }
}

pub(super) fn usable(
    inv: &Invite,
    user: &str,
    now_ms: i64,
) -> std::result::Result<(), InviteRefusal> {
    if inv.for_user.as_deref().is_some_and(|u| u != user) {
        return Err(InviteRefusal::NotForYou);
    }
    if inv.revoked
        || inv.expires_at_ms.is_some_and(|e| e <= now_ms)
        || inv.max_uses.is_some_and(|m| inv.uses >= m)
    {
        return Err(refusal(inv, now_ms));
    }
    Ok(())
}

impl SqliteStore {
    async fn claim_due_inner(&self, now: i64, lease: i64, limit: u32) -> Result<Vec<TaskRecord>> {
        // IMMEDIATE: take the write lock up front; a read-then-write upgrade in WAL fails at once
        // (SQLITE_BUSY_SNAPSHOT) when another connection wrote in between.
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let sql = format!(
            "UPDATE tasks SET state = 'running', attempts = attempts + 1, lease_until = ?, updated_at = ? \
             WHERE id IN (SELECT id FROM tasks WHERE (state IN ('pending', 'failed') AND next_run_at <= ?) \
             OR (state = 'running' AND lease_until < ?) ORDER BY next_run_at LIMIT ?) RETURNING {TASK_COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(lease)
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(task_row).collect()
    }

    async fn accept_inner(
        &self,
        id: &str,
        user: &str,
        now: i64,
    ) -> Result<std::result::Result<Invite, InviteRefusal>> {
        // IMMEDIATE: take the write lock up front; a read-then-write upgrade in WAL fails at once
        // (SQLITE_BUSY_SNAPSHOT) when another connection wrote in between.
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let sql = format!("SELECT {INVITE_COLUMNS} FROM invites WHERE id = ?");
        let Some(row) = sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await? else {
            return Ok(Err(InviteRefusal::NotFound));
        };
        let mut inv = invite_row(&row)?;
        if let Err(r) = usable(&inv, user, now) {
            // A user who already joined through this link may accept it again for free, unless
            // it was revoked or expired.
            let used = sqlx::query("SELECT 1 FROM invite_uses WHERE invite = ? AND user = ?")
                .bind(id)
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !(used && r == InviteRefusal::Exhausted) {
                return Ok(Err(r));
            }
            return Ok(Ok(inv));
        }
        let fresh = sqlx::query("INSERT OR IGNORE INTO invite_uses (invite, user) VALUES (?, ?)")
            .bind(id)
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if fresh {
            sqlx::query("UPDATE invites SET uses = uses + 1 WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            inv.uses += 1;
        }
        tx.commit().await?;
        Ok(Ok(inv))
    }
}

impl TaskStore for SqliteStore {
    fn create_task<'a>(&'a self, t: &'a NewTask) -> StoreFuture<'a, (TaskRecord, bool)> {
        Box::pin(async move {
            let inserted = sqlx::query(
                "INSERT OR IGNORE INTO tasks (id, key, kind, session, created_by, payload, state, attempts, max_attempts, next_run_at, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?)",
            )
            .bind(&t.id)
            .bind(&t.key)
            .bind(&t.kind)
            .bind(&t.session)
            .bind(&t.created_by)
            .bind(&t.payload)
            .bind(i64::from(t.max_attempts))
            .bind(t.now_ms)
            .bind(t.now_ms)
            .bind(t.now_ms)
            .execute(self.pool())
            .await?
            .rows_affected()
                > 0;
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE key = ?");
            let row = sqlx::query(&sql)
                .bind(&t.key)
                .fetch_one(self.pool())
                .await?;
            Ok((task_row(&row)?, inserted))
        })
    }

    fn task<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<TaskRecord>> {
        Box::pin(async move {
            let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?");
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
                "SELECT {TASK_COLUMNS} FROM tasks WHERE session = ? ORDER BY created_at DESC, id DESC LIMIT ?"
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
                "UPDATE tasks SET state = ?, next_run_at = COALESCE(?, next_run_at), last_error = COALESCE(?, last_error), \
                 lease_until = NULL, updated_at = ? WHERE id = ? AND state = 'running' RETURNING {TASK_COLUMNS}"
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
            Ok(sqlx::query(
                "UPDATE tasks SET state = 'pending', lease_until = NULL, next_run_at = ?, updated_at = ? WHERE state = 'running'",
            )
            .bind(now)
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected())
        })
    }

    fn next_due(&self) -> StoreFuture<'_, Option<i64>> {
        Box::pin(async move {
            let v: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(t) FROM (SELECT MIN(next_run_at) AS t FROM tasks WHERE state IN ('pending', 'failed') \
                 UNION ALL SELECT MIN(lease_until) FROM tasks WHERE state = 'running')",
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
                 VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?)",
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
            let sql = format!("SELECT {INVITE_COLUMNS} FROM invites WHERE id = ?");
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
                "SELECT {INVITE_COLUMNS} FROM invites WHERE session = ? ORDER BY created_at DESC LIMIT ?"
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
            Ok(sqlx::query("UPDATE invites SET revoked = 1 WHERE id = ?")
                .bind(id)
                .execute(self.pool())
                .await?
                .rows_affected()
                > 0)
        })
    }

    fn add_contributions<'a>(
        &'a self,
        adds: &'a [Contribution],
    ) -> StoreFuture<'a, Vec<Contribution>> {
        Box::pin(async move {
            // IMMEDIATE: take the write lock up front; a read-then-write upgrade in WAL fails at once
            // (SQLITE_BUSY_SNAPSHOT) when another connection wrote in between.
            let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
            let mut out = Vec::with_capacity(adds.len());
            for c in adds {
                let total: i64 = sqlx::query_scalar(
                    "INSERT INTO contributions (session, user, kind, count) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (session, user, kind) DO UPDATE SET count = count + excluded.count RETURNING count",
                )
                .bind(&c.session)
                .bind(&c.user)
                .bind(&c.kind)
                .bind(i64::try_from(c.count).unwrap_or(i64::MAX))
                .fetch_one(&mut *tx)
                .await?;
                out.push(Contribution {
                    count: to_u64(total),
                    ..c.clone()
                });
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
                "SELECT session, user, kind, count FROM contributions WHERE (?1 IS NULL OR session = ?1) \
                 AND (?2 IS NULL OR user = ?2) ORDER BY session, user, kind LIMIT ?3",
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
                "INSERT OR IGNORE INTO awards (key, session, user, kind, badge, awarded_by, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
                "SELECT key, session, user, kind, badge, awarded_by, at FROM awards WHERE (?1 IS NULL OR session = ?1) \
                 AND (?2 IS NULL OR user = ?2) ORDER BY at, key LIMIT ?3",
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

/// An in-memory `TaskStore`: for unit tests, and the fallback of stores without task tables
/// (tasks then live as long as the process).
#[derive(Default)]
pub struct MemoryTaskStore {
    inner: Mutex<Mem>,
}

#[derive(Default)]
struct Mem {
    tasks: HashMap<String, (TaskRecord, Option<i64>)>,
    keys: HashMap<String, String>,
    invites: HashMap<String, Invite>,
    invite_uses: std::collections::HashSet<(String, String)>,
    contributions: std::collections::BTreeMap<(String, String, String), u64>,
    awards: Vec<Award>,
}

impl MemoryTaskStore {
    pub fn new() -> MemoryTaskStore {
        MemoryTaskStore::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Mem) -> T) -> T {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> StoreFuture<'a, T> {
    Box::pin(async move { Ok(v) })
}

impl TaskStore for MemoryTaskStore {
    fn create_task<'a>(&'a self, t: &'a NewTask) -> StoreFuture<'a, (TaskRecord, bool)> {
        ready(self.with(|m| {
            if let Some(id) = m.keys.get(&t.key)
                && let Some((rec, _)) = m.tasks.get(id)
            {
                return (rec.clone(), false);
            }
            let rec = TaskRecord {
                id: t.id.clone(),
                key: t.key.clone(),
                kind: t.kind.clone(),
                session: t.session.clone(),
                created_by: t.created_by.clone(),
                payload: t.payload.clone(),
                state: TaskState::Pending,
                attempts: 0,
                max_attempts: t.max_attempts,
                next_run_at_ms: t.now_ms,
                last_error: None,
                created_at_ms: t.now_ms,
                updated_at_ms: t.now_ms,
            };
            m.keys.insert(t.key.clone(), t.id.clone());
            m.tasks.insert(t.id.clone(), (rec.clone(), None));
            (rec, true)
        }))
    }

    fn task<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<TaskRecord>> {
        ready(self.with(|m| m.tasks.get(id).map(|(r, _)| r.clone())))
    }

    fn session_tasks<'a>(
        &'a self,
        session: &'a str,
        limit: u32,
    ) -> StoreFuture<'a, Vec<TaskRecord>> {
        ready(self.with(|m| {
            let mut v: Vec<TaskRecord> = m
                .tasks
                .values()
                .filter(|(r, _)| r.session.as_deref() == Some(session))
                .map(|(r, _)| r.clone())
                .collect();
            v.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
            v.truncate(limit.min(MAX_LIST_ROWS) as usize);
            v
        }))
    }

    fn claim_due(&self, now: i64, lease: i64, limit: u32) -> StoreFuture<'_, Vec<TaskRecord>> {
        ready(self.with(|m| {
            let mut due: Vec<&mut (TaskRecord, Option<i64>)> = m
                .tasks
                .values_mut()
                .filter(|(r, l)| match r.state {
                    TaskState::Pending | TaskState::Failed => r.next_run_at_ms <= now,
                    TaskState::Running => l.is_some_and(|l| l < now),
                    _ => false,
                })
                .collect();
            due.sort_by_key(|(r, _)| r.next_run_at_ms);
            due.into_iter()
                .take(limit as usize)
                .map(|(r, l)| {
                    r.state = TaskState::Running;
                    r.attempts += 1;
                    r.updated_at_ms = now;
                    *l = Some(lease);
                    r.clone()
                })
                .collect()
        }))
    }

    fn finish_task<'a>(
        &'a self,
        id: &'a str,
        outcome: &'a TaskOutcome,
        now: i64,
    ) -> StoreFuture<'a, Option<TaskRecord>> {
        ready(self.with(|m| {
            let (r, l) = m.tasks.get_mut(id)?;
            if r.state != TaskState::Running {
                return None;
            }
            match outcome {
                TaskOutcome::Succeeded => r.state = TaskState::Succeeded,
                TaskOutcome::Retry { at_ms, error } => {
                    r.state = TaskState::Failed;
                    r.next_run_at_ms = *at_ms;
                    r.last_error = Some(error.clone());
                }
                TaskOutcome::Dead { error } => {
                    r.state = TaskState::Dead;
                    r.last_error = Some(error.clone());
                }
            }
            *l = None;
            r.updated_at_ms = now;
            Some(r.clone())
        }))
    }

    fn reset_running(&self, now: i64) -> StoreFuture<'_, u64> {
        ready(self.with(|m| {
            let mut n = 0;
            for (r, l) in m.tasks.values_mut() {
                if r.state == TaskState::Running {
                    r.state = TaskState::Pending;
                    r.next_run_at_ms = now;
                    *l = None;
                    n += 1;
                }
            }
            n
        }))
    }

    fn next_due(&self) -> StoreFuture<'_, Option<i64>> {
        ready(self.with(|m| {
            m.tasks
                .values()
                .filter_map(|(r, l)| match r.state {
                    TaskState::Pending | TaskState::Failed => Some(r.next_run_at_ms),
                    TaskState::Running => *l,
                    _ => None,
                })
                .min()
        }))
    }

    fn create_invite<'a>(&'a self, i: &'a Invite) -> StoreFuture<'a, ()> {
        self.with(|m| m.invites.insert(i.id.clone(), i.clone()));
        ready(())
    }

    fn invite<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Invite>> {
        ready(self.with(|m| m.invites.get(id).cloned()))
    }

    fn session_invites<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Vec<Invite>> {
        ready(self.with(|m| {
            m.invites
                .values()
                .filter(|i| i.session == session)
                .cloned()
                .collect()
        }))
    }

    fn accept_invite<'a>(
        &'a self,
        id: &'a str,
        user: &'a str,
        now: i64,
    ) -> StoreFuture<'a, std::result::Result<Invite, InviteRefusal>> {
        ready(self.with(|m| {
            let used = m.invite_uses.contains(&(id.to_owned(), user.to_owned()));
            let Some(inv) = m.invites.get_mut(id) else {
                return Err(InviteRefusal::NotFound);
            };
            if let Err(r) = usable(inv, user, now) {
                return if used && r == InviteRefusal::Exhausted {
                    Ok(inv.clone())
                } else {
                    Err(r)
                };
            }
            if !used {
                inv.uses += 1;
            }
            let inv = inv.clone();
            m.invite_uses.insert((id.to_owned(), user.to_owned()));
            Ok(inv)
        }))
    }

    fn revoke_invite<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        ready(self.with(|m| m.invites.get_mut(id).map(|i| i.revoked = true).is_some()))
    }

    fn add_contributions<'a>(
        &'a self,
        adds: &'a [Contribution],
    ) -> StoreFuture<'a, Vec<Contribution>> {
        ready(self.with(|m| {
            adds.iter()
                .map(|c| {
                    let n = m
                        .contributions
                        .entry((c.session.clone(), c.user.clone(), c.kind.clone()))
                        .or_default();
                    *n += c.count;
                    Contribution {
                        count: *n,
                        ..c.clone()
                    }
                })
                .collect()
        }))
    }

    fn contributions<'a>(
        &'a self,
        session: Option<&'a str>,
        user: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<Contribution>> {
        ready(self.with(|m| {
            m.contributions
                .iter()
                .filter(|((s, u, _), _)| {
                    session.is_none_or(|x| x == s.as_str()) && user.is_none_or(|x| x == u.as_str())
                })
                .take(MAX_LIST_ROWS as usize)
                .map(|((s, u, k), n)| Contribution {
                    session: s.clone(),
                    user: u.clone(),
                    kind: k.clone(),
                    count: *n,
                })
                .collect()
        }))
    }

    fn insert_award<'a>(&'a self, a: &'a Award) -> StoreFuture<'a, bool> {
        ready(self.with(|m| {
            if m.awards.iter().any(|x| x.key == a.key) {
                return false;
            }
            m.awards.push(a.clone());
            true
        }))
    }

    fn awards<'a>(
        &'a self,
        session: Option<&'a str>,
        user: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<Award>> {
        ready(self.with(|m| {
            m.awards
                .iter()
                .filter(|a| {
                    session.is_none_or(|x| x == a.session) && user.is_none_or(|x| x == a.user)
                })
                .take(MAX_LIST_ROWS as usize)
                .cloned()
                .collect()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_task(id: &str, key: &str) -> NewTask {
        NewTask {
            id: id.into(),
            key: key.into(),
            kind: "k".into(),
            session: Some("s".into()),
            created_by: "u".into(),
            payload: "{}".into(),
            max_attempts: 3,
            now_ms: 10,
        }
    }

    async fn exercise(db: &dyn TaskStore) {
        let (a, fresh) = db.create_task(&new_task("t1", "key")).await.unwrap();
        assert!(fresh);
        let (b, fresh) = db.create_task(&new_task("t2", "key")).await.unwrap();
        assert!(!fresh, "same idempotency key, same task");
        assert_eq!(a.id, b.id);
        assert!(
            db.claim_due(5, 100, 10).await.unwrap().is_empty(),
            "not due yet"
        );
        let claimed = db.claim_due(10, 100, 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].attempts, 1);
        assert!(
            db.claim_due(50, 150, 10).await.unwrap().is_empty(),
            "leased"
        );
        let reclaimed = db.claim_due(101, 200, 10).await.unwrap();
        assert_eq!(
            reclaimed[0].attempts, 2,
            "an expired lease is claimed again"
        );
        let retry = TaskOutcome::Retry {
            at_ms: 300,
            error: "HTTP 500".into(),
        };
        let r = db.finish_task("t1", &retry, 110).await.unwrap().unwrap();
        assert_eq!(r.state, TaskState::Failed);
        assert_eq!(db.next_due().await.unwrap(), Some(300));
        db.claim_due(300, 400, 10).await.unwrap();
        assert_eq!(db.reset_running(301).await.unwrap(), 1);
        db.claim_due(301, 400, 10).await.unwrap();
        let done = db
            .finish_task("t1", &TaskOutcome::Succeeded, 302)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((done.state, done.attempts), (TaskState::Succeeded, 4));
        assert!(
            db.finish_task("t1", &TaskOutcome::Succeeded, 303)
                .await
                .unwrap()
                .is_none(),
            "only a running task finishes"
        );

        let inv = Invite {
            id: "i".into(),
            session: "s".into(),
            role: Role::Commenter,
            created_by: "o".into(),
            for_user: None,
            expires_at_ms: Some(1_000),
            max_uses: Some(1),
            uses: 0,
            revoked: false,
            created_at_ms: 0,
        };
        db.create_invite(&inv).await.unwrap();
        assert_eq!(
            db.accept_invite("i", "a", 10).await.unwrap().unwrap().uses,
            1
        );
        assert_eq!(
            db.accept_invite("i", "a", 11).await.unwrap().unwrap().uses,
            1
        );
        assert_eq!(
            db.accept_invite("i", "b", 12).await.unwrap(),
            Err(InviteRefusal::Exhausted)
        );
        assert_eq!(
            db.accept_invite("i", "a", 1_000).await.unwrap(),
            Err(InviteRefusal::Expired)
        );
        assert!(db.revoke_invite("i").await.unwrap());
        assert_eq!(
            db.accept_invite("i", "a", 12).await.unwrap(),
            Err(InviteRefusal::Revoked)
        );

        let c = Contribution {
            session: "s".into(),
            user: "a".into(),
            kind: "edit".into(),
            count: 2,
        };
        db.add_contributions(std::slice::from_ref(&c))
            .await
            .unwrap();
        let t = db.add_contributions(&[c]).await.unwrap();
        assert_eq!(t[0].count, 4);
        let award = Award {
            key: "k".into(),
            session: "s".into(),
            user: "a".into(),
            kind: "achievement_badge".into(),
            badge: Some("first_edit".into()),
            awarded_by: None,
            at_ms: 1,
        };
        assert!(db.insert_award(&award).await.unwrap());
        assert!(!db.insert_award(&award).await.unwrap());
        assert_eq!(db.awards(None, Some("a")).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn memory_store_semantics() {
        exercise(&MemoryTaskStore::new()).await;
    }

    #[tokio::test]
    async fn sqlite_store_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteStore::open(dir.path()).await.unwrap();
        exercise(&db).await;
    }

    #[tokio::test]
    async fn postgres_store_semantics() {
        let Some(tdb) = crate::store::postgres::testdb::create("postgres_store_semantics").await
        else {
            return;
        };
        let db = crate::store::PgStore::connect(&tdb.url, 2).await.unwrap();
        exercise(&db).await;
        db.pool().close().await;
        tdb.drop_db().await;
    }

    /// Two nodes on one database: claims are disjoint, an invite's last use goes to one
    /// accept, a node's boot reset leaves the other's tasks alone, a key makes one task.
    #[tokio::test]
    async fn postgres_nodes_share_tasks_safely() {
        use crate::store::PgStore;
        let Some(tdb) =
            crate::store::postgres::testdb::create("postgres_nodes_share_tasks_safely").await
        else {
            return;
        };
        let a = PgStore::connect(&tdb.url, 4)
            .await
            .unwrap()
            .with_task_owner("node-a");
        let b = PgStore::connect(&tdb.url, 4)
            .await
            .unwrap()
            .with_task_owner("node-b");
        for i in 0..40 {
            let t = new_task(&format!("t{i}"), &format!("k{i}"));
            let db: &dyn TaskStore = if i % 2 == 0 { &a } else { &b };
            db.create_task(&t).await.unwrap();
        }
        // Both claim repeatedly at the same time until nothing is left.
        let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
        loop {
            let (ca, cb) = tokio::join!(a.claim_due(10, 1_000, 3), b.claim_due(10, 1_000, 3));
            let (ca, cb) = (ca.unwrap(), cb.unwrap());
            if ca.is_empty() && cb.is_empty() {
                break;
            }
            got_a.extend(ca.into_iter().map(|t| t.id));
            got_b.extend(cb.into_iter().map(|t| t.id));
        }
        let mut all: Vec<&String> = got_a.iter().chain(&got_b).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 40, "every task claimed exactly once");
        assert_eq!(got_a.len() + got_b.len(), 40, "no task claimed twice");
        // Node A restarts: it takes back its own claims only.
        assert_eq!(
            TaskStore::reset_running(&a, 20).await.unwrap(),
            got_a.len() as u64
        );
        for id in &got_b {
            let t = b.task(id).await.unwrap().unwrap();
            assert_eq!((t.state, t.attempts), (TaskState::Running, 1));
        }

        // Concurrent creates under one key make one task.
        let (ta, tb) = (new_task("same-a", "same"), new_task("same-b", "same"));
        let (x, y) = tokio::join!(a.create_task(&ta), b.create_task(&tb));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x.0.id, y.0.id);
        assert!(x.1 ^ y.1, "exactly one insert won");

        // Ten users race for the last two uses of an invite.
        let inv = Invite {
            id: "race".into(),
            session: "s".into(),
            role: Role::Editor,
            created_by: "o".into(),
            for_user: None,
            expires_at_ms: None,
            max_uses: Some(2),
            uses: 0,
            revoked: false,
            created_at_ms: 0,
        };
        a.create_invite(&inv).await.unwrap();
        let users: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
        let tries = users.iter().enumerate().map(|(i, u)| {
            let db: &dyn TaskStore = if i % 2 == 0 { &a } else { &b };
            db.accept_invite("race", u, 5)
        });
        let results = futures_util::future::join_all(tries).await;
        let ok = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(ok, 2, "{results:?}");
        assert_eq!(a.invite("race").await.unwrap().unwrap().uses, 2);

        // Awards by key: concurrent inserts store one.
        let award = Award {
            key: "once".into(),
            session: "s".into(),
            user: "u".into(),
            kind: "k".into(),
            badge: None,
            awarded_by: Some("o".into()),
            at_ms: 1,
        };
        let (x, y) = tokio::join!(a.insert_award(&award), b.insert_award(&award));
        assert!(x.unwrap() ^ y.unwrap());
        assert_eq!(b.awards(Some("s"), None).await.unwrap(), vec![award]);
        a.pool().close().await;
        b.pool().close().await;
        tdb.drop_db().await;
    }
}
