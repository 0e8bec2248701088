//! The storage seam of Media Sync: a session's metadata, its op log and snapshots, written in
//! group commits.

use std::collections::HashMap;

use montage_protocol::Role;

use super::{AssetStore, HistoryStore, SocialStore, StoreFuture, TaskStore};

/// Who may do what in a session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionMeta {
    pub owner: String,
    /// The role a joiner without a grant receives.
    pub link_role: Role,
    /// Explicit grants, the owner's included; `none` is a removal that sticks.
    pub roles: HashMap<String, Role>,
    pub title: Option<String>,
    /// End-to-end encrypted (DESIGN §9.4): edits are sealed payloads the server only orders.
    pub encrypted: bool,
    /// The key epoch an encrypted session's payloads must be sealed under; it moves when a
    /// member is removed or link access narrows.
    pub key_epoch: u64,
}

impl SessionMeta {
    pub fn role_of(&self, user: &str) -> Role {
        self.roles.get(user).copied().unwrap_or(self.link_role)
    }
}

/// The longest session title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// A session about to be created.
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    pub owner: &'a str,
    pub link_role: Role,
    pub title: Option<&'a str>,
    pub encrypted: bool,
}

impl<'a> NewSession<'a> {
    /// A session owned by `owner` with `link_role` and no title.
    pub fn new(owner: &'a str, link_role: Role) -> NewSession<'a> {
        NewSession {
            owner,
            link_role,
            title: None,
            encrypted: false,
        }
    }
}

/// A change of a session's settings (`PATCH /v1/sessions/{id}`); `None` leaves a field as is,
/// an empty title clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionUpdate {
    pub link_role: Option<Role>,
    pub title: Option<String>,
    /// A new key epoch for an encrypted session.
    pub key_epoch: Option<u64>,
}

/// One of a user's sessions (`GET /v1/sessions`).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    pub id: String,
    pub title: Option<String>,
    pub role: Role,
    pub link_role: Role,
    pub version: u64,
    /// Milliseconds since the epoch of the last settings change or snapshot (snapshots follow
    /// activity within the snapshot interval, and a session going idle writes one).
    pub updated: i64,
}

/// Every table holding rows of a session, by the column naming it; `delete_session` empties them
/// all (invite uses first: they name the invite, not the session).
pub const SESSION_TABLES: &[&str] = &[
    "roles",
    "ops",
    "snapshots",
    "comments",
    "suggestions",
    "tasks",
    "invites",
    "contributions",
    "awards",
    "checkpoints",
    "named_versions",
    "notifications",
    "comment_history",
    "showcase",
];

/// One stored version. `ops` is the edit's JSON (the array of DESIGN §2) as applied; in an
/// encrypted session, the JSON object of its [`Sealed`](montage_protocol::sealed::Sealed).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredOp {
    pub version: u64,
    pub user: String,
    pub client: String,
    pub seq: u64,
    pub ops: String,
    /// When it was committed, in ms since the epoch; `None` for versions stored before commit
    /// times were kept.
    pub time: Option<i64>,
}

/// The document at a version, as JSON text; in an encrypted session, the JSON object of the
/// client's [`Sealed`](montage_protocol::sealed::Sealed) snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub version: u64,
    pub state: String,
}

/// What loading a session reads: its metadata, its latest snapshot and the ops after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub meta: SessionMeta,
    pub snapshot: Option<Snapshot>,
    pub ops: Vec<StoredOp>,
    /// Commit time of the snapshot's version: later commits are never stamped earlier, even
    /// when no op follows the snapshot and the clock stepped back across a restart.
    pub snapshot_time: Option<i64>,
}

/// One write of a group commit.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Append a version; it must not exist yet. `fence`: the home's lease epoch
    /// (`store::leases`); the append is refused (`Fenced`) unless it is still the lease's.
    Op {
        session: String,
        op: StoredOp,
        fence: Option<u64>,
    },
    /// Replace the session's snapshot.
    Snapshot { session: String, snapshot: Snapshot },
}

impl Write {
    pub fn session(&self) -> &str {
        match self {
            Write::Op { session, .. } | Write::Snapshot { session, .. } => session,
        }
    }
}

/// Durable session storage. `commit` writes a whole batch in one transaction (group commit):
/// when it returns `Ok`, every write of the batch is durable; on `Err`, none is.
pub trait Store: Send + Sync + 'static {
    fn load<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Option<Loaded>>;
    fn meta<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Option<SessionMeta>>;
    /// Creates a session owned by `new.owner`; does nothing and answers false if it exists.
    fn create_session<'a>(&'a self, session: &'a str, new: NewSession<'a>)
    -> StoreFuture<'a, bool>;
    /// Changes a session's link role and/or title.
    fn update_session<'a>(
        &'a self,
        session: &'a str,
        update: &'a SessionUpdate,
    ) -> StoreFuture<'a, ()>;
    /// The sessions `user` holds a grant in (owned or shared; not removed), most recently
    /// updated first, at most `limit`.
    fn user_sessions<'a>(
        &'a self,
        user: &'a str,
        limit: u32,
    ) -> StoreFuture<'a, Vec<SessionSummary>>;
    /// Deletes the session and everything of it (state, history, comments, suggestions, tasks,
    /// invites, grants, awards, asset records) in one transaction; answers the ids of the asset
    /// records removed, whose bytes the caller releases.
    fn delete_session<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Vec<String>>;
    fn set_role<'a>(&'a self, session: &'a str, user: &'a str, role: Role) -> StoreFuture<'a, ()>;
    /// Writes a batch atomically; a version that already exists fails it with `VersionConflict`.
    fn commit<'a>(&'a self, batch: &'a [Write]) -> StoreFuture<'a, ()>;
    fn save_snapshot<'a>(&'a self, session: &'a str, snapshot: &'a Snapshot)
    -> StoreFuture<'a, ()>;
    /// Versions `after+1 ..`, at most `limit`, in order.
    fn ops_after<'a>(
        &'a self,
        session: &'a str,
        after: u64,
        limit: u64,
    ) -> StoreFuture<'a, Vec<StoredOp>>;
    /// The version `user`'s edit `(client, seq)` was stored as, if it was. Client ids are the
    /// clients' own choice, so they are only unique per user.
    fn find_seq<'a>(
        &'a self,
        session: &'a str,
        user: &'a str,
        client: &'a str,
        seq: u64,
    ) -> StoreFuture<'a, Option<u64>>;
    /// The highest seq stored for `user`'s `client`.
    fn max_seq<'a>(
        &'a self,
        session: &'a str,
        user: &'a str,
        client: &'a str,
    ) -> StoreFuture<'a, Option<u64>>;
    fn close(&self) -> StoreFuture<'_, ()>;
    /// Comments and suggestions, when this store keeps them (a store without them makes the
    /// social messages answer `not_supported`).
    fn social(&self) -> Option<&dyn SocialStore> {
        None
    }
    /// The durable tasks, invites and awards kept beside the sessions, when this store has them
    /// (without, the Task Manager keeps them in memory).
    fn task_store(&self) -> Option<&dyn TaskStore> {
        None
    }
    /// Asset metadata (kind, size, uploader…), when this store keeps it (without, uploads are
    /// stored with no record and `GET /v1/assets/{id}/meta` answers `not_found`).
    fn assets(&self) -> Option<&dyn AssetStore> {
        None
    }
    /// Checkpoints and named versions (`None`: this store keeps none).
    fn history(&self) -> Option<&dyn HistoryStore> {
        None
    }
    /// Users' notification inboxes (`None`: this store keeps none; nobody is notified).
    fn notifications(&self) -> Option<&dyn super::NotificationStore> {
        None
    }
    /// The app event log (`None`: this store keeps none; no events are sent).
    fn events(&self) -> Option<&dyn super::EventStore> {
        None
    }
    /// Home-node leases (`None`: this store is one node's own).
    fn leases(&self) -> Option<&dyn super::LeaseStore> {
        None
    }
}

/// What every `Store` must do, run over each backend by its own tests.
#[cfg(test)]
pub(super) mod contract {
    use montage_protocol::Role;

    use super::*;
    use crate::error::Error;

    pub fn op(v: u64, seq: u64) -> Write {
        Write::Op {
            session: "s".into(),
            op: StoredOp {
                version: v,
                user: "u".into(),
                client: "c".into(),
                seq,
                ops: "[]".into(),
                time: Some(1_000 + i64::try_from(v).unwrap_or(0)),
            },
            fence: None,
        }
    }

    /// Creation, ownership, appends, version conflicts that leave nothing behind, snapshots,
    /// roles and the idempotency lookups, on an empty store.
    pub async fn round_trip(s: &dyn Store) {
        assert!(s.load("s").await.unwrap().is_none());
        assert!(
            s.create_session("s", NewSession::new("alice", Role::Viewer))
                .await
                .unwrap()
        );
        // The second creation finds the first: its owner stays.
        assert!(
            !s.create_session("s", NewSession::new("bob", Role::Viewer))
                .await
                .unwrap()
        );
        s.commit(&[op(1, 1), op(2, 2)]).await.unwrap();
        match s.commit(&[op(3, 3), op(2, 9_999)]).await {
            Err(Error::VersionConflict { session, .. }) => assert_eq!(session, "s"),
            other => panic!("expected a conflict, got {other:?}"),
        }
        // The failed batch left nothing behind, and the next one goes in.
        assert_eq!(s.ops_after("s", 0, 100).await.unwrap().len(), 2);
        s.commit(&[op(3, 3)]).await.unwrap();
        // Batches larger than one INSERT statement: all or nothing, in order.
        let big = |from: u64| (from..from + 600).map(|v| op(v, v)).collect::<Vec<_>>();
        let mut clash = big(4);
        clash.push(op(3, 9_999));
        assert!(matches!(
            s.commit(&clash).await,
            Err(Error::VersionConflict { .. })
        ));
        assert_eq!(s.ops_after("s", 0, 1_000).await.unwrap().len(), 3);
        s.commit(&big(4)).await.unwrap();
        let all = s.ops_after("s", 0, 1_000).await.unwrap();
        assert_eq!(all.len(), 603);
        assert!(
            all.iter()
                .zip(1..)
                .all(|(o, v)| o.version == v && o.seq == v)
        );
        // A batch mixing appends and a snapshot of them.
        let snap = Write::Snapshot {
            session: "s".into(),
            snapshot: Snapshot {
                version: 604,
                state: "{}".into(),
            },
        };
        s.commit(&[op(604, 604), snap, op(605, 605)]).await.unwrap();
        assert_eq!(s.ops_after("s", 600, 100).await.unwrap().len(), 5);
        let snapshot = Snapshot {
            version: 605,
            state: "{}".into(),
        };
        s.save_snapshot("s", &snapshot).await.unwrap();
        s.set_role("s", "bob", Role::Editor).await.unwrap();
        let l = s.load("s").await.unwrap().unwrap();
        assert_eq!(l.meta.owner, "alice");
        assert_eq!(l.meta.role_of("alice"), Role::Owner);
        assert_eq!(l.meta.role_of("bob"), Role::Editor);
        assert_eq!(l.meta.role_of("carol"), Role::Viewer);
        assert_eq!(l.snapshot.unwrap().version, 605);
        assert!(l.ops.is_empty());
        assert_eq!(s.find_seq("s", "u", "c", 2).await.unwrap(), Some(2));
        assert_eq!(s.find_seq("s", "u", "c", 3).await.unwrap(), Some(3));
        // seq 9,999 came only in the batches that conflicted.
        assert_eq!(s.find_seq("s", "u", "c", 9_999).await.unwrap(), None);
        assert_eq!(s.find_seq("s", "mallory", "c", 2).await.unwrap(), None);
        assert_eq!(s.max_seq("s", "u", "c").await.unwrap(), Some(605));
        assert_eq!(s.max_seq("s", "u", "d").await.unwrap(), None);
        assert_eq!(s.max_seq("s", "mallory", "c").await.unwrap(), None);
    }
}
