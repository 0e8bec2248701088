//! The storage seam of the Task Manager and of sharing: tasks, invites, contributions and awards.
//! Implemented for SQLite and PostgreSQL by `sql.rs` (with their own task claims in
//! `sqlite/tasks.rs` and `postgres/tasks.rs`) and by `memory/tasks.rs`.

use super::StoreFuture;
use montage_protocol::Role;

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

/// A version of a session published to the showcase by a Featured Creator or Community
/// Spotlight award: readable by every signed-in user, as it was when awarded.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowcaseEntry {
    /// The award's key: one entry per award.
    pub award: String,
    pub session: String,
    /// `featured_creator` or `community_spotlight`.
    pub kind: String,
    /// The creator recognised.
    pub user: String,
    pub awarded_by: String,
    /// The version shown.
    pub version: u64,
    /// The session's title when awarded.
    pub title: Option<String>,
    pub at_ms: i64,
    /// The newsletter issue that carried it.
    pub newsletter: Option<u64>,
}

/// One issue of the community newsletter: the showcase entries no earlier issue carried.
#[derive(Debug, Clone, PartialEq)]
pub struct Newsletter {
    pub issue: u64,
    pub at_ms: i64,
    /// Oldest first.
    pub entries: Vec<ShowcaseEntry>,
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

    /// Publishes `entry` with the document it shows (`state`, JSON text); `false` when its award
    /// was published already (the first version published stays).
    fn publish<'a>(&'a self, entry: &'a ShowcaseEntry, state: &'a str) -> StoreFuture<'a, bool>;
    /// Showcase entries awarded before `before_ms`, newest first, at most `limit`.
    fn showcase(&self, before_ms: i64, limit: u32) -> StoreFuture<'_, Vec<ShowcaseEntry>>;
    /// The document published for a session's version, if an entry shows that version.
    fn showcase_state<'a>(
        &'a self,
        session: &'a str,
        version: u64,
    ) -> StoreFuture<'a, Option<String>>;
    /// Issues the next newsletter with up to `limit` entries no issue carried yet (oldest
    /// first), numbered after the last; `None` when there is nothing new. Concurrent callers
    /// (nodes sharing the store) never put an entry in two issues.
    fn issue_newsletter(&self, now_ms: i64, limit: u32) -> StoreFuture<'_, Option<Newsletter>>;
    /// The newest issue with its entries.
    fn latest_newsletter(&self) -> StoreFuture<'_, Option<Newsletter>>;
}

/// Rows a filtered listing returns at most.
pub const MAX_LIST_ROWS: u32 = 500;

/// Why an invite that could not be used was refused (the caller already knows it exists).
pub(super) fn refusal(inv: &Invite, now_ms: i64) -> InviteRefusal {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryTaskStore, SqliteStore};

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

        showcase(db).await;
    }

    fn entry(award: &str, session: &str, version: u64, at_ms: i64) -> ShowcaseEntry {
        ShowcaseEntry {
            award: award.into(),
            session: session.into(),
            kind: "community_spotlight".into(),
            user: "a".into(),
            awarded_by: "o".into(),
            version,
            title: Some("Poster".into()),
            at_ms,
            newsletter: None,
        }
    }

    async fn showcase(db: &dyn TaskStore) {
        assert_eq!(
            db.issue_newsletter(1, 10).await.unwrap(),
            None,
            "nothing new"
        );
        assert!(
            db.publish(&entry("x", "s1", 3, 10), "{\"v\":3}")
                .await
                .unwrap()
        );
        assert!(
            !db.publish(&entry("x", "s1", 9, 11), "{\"v\":9}")
                .await
                .unwrap(),
            "the first version published stays"
        );
        assert!(db.publish(&entry("y", "s2", 5, 20), "{}").await.unwrap());
        assert!(db.publish(&entry("z", "s3", 1, 30), "{}").await.unwrap());
        let list = db.showcase(i64::MAX, 10).await.unwrap();
        let order: Vec<_> = list.iter().map(|e| e.award.as_str()).collect();
        assert_eq!(order, ["z", "y", "x"], "newest first");
        assert_eq!(list[2], entry("x", "s1", 3, 10));
        assert_eq!(db.showcase(30, 1).await.unwrap()[0].award, "y");
        assert_eq!(
            db.showcase_state("s1", 3).await.unwrap().as_deref(),
            Some("{\"v\":3}")
        );
        assert_eq!(db.showcase_state("s1", 9).await.unwrap(), None);

        let first = db.issue_newsletter(100, 2).await.unwrap().unwrap();
        assert_eq!(first.issue, 1);
        let carried: Vec<_> = first.entries.iter().map(|e| e.award.as_str()).collect();
        assert_eq!(carried, ["x", "y"], "oldest first, at most the limit");
        assert!(first.entries.iter().all(|e| e.newsletter == Some(1)));
        let second = db.issue_newsletter(200, 10).await.unwrap().unwrap();
        assert_eq!((second.issue, second.entries.len()), (2, 1));
        assert_eq!(second.entries[0].award, "z");
        assert_eq!(db.issue_newsletter(300, 10).await.unwrap(), None);
        assert_eq!(db.latest_newsletter().await.unwrap(), Some(second));
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
        crate::store::postgres::testdb::with_store("postgres_store_semantics", async |db| {
            exercise(db).await
        })
        .await;
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
