//! An in-memory `Store` for unit tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use montage_protocol::Role;

use crate::error::Error;
use crate::store::{
    Loaded, NewSession, SessionMeta, SessionSummary, SessionUpdate, Snapshot, SocialStore, Store,
    StoreFuture, StoredOp, Write,
};

mod assets;
mod history;
mod leases;
mod notifications;
mod social;
mod tasks;

pub use assets::MemoryAssets;
pub use tasks::MemoryTaskStore;

#[derive(Default)]
struct Entry {
    meta: Option<SessionMeta>,
    snapshot: Option<Snapshot>,
    ops: BTreeMap<u64, StoredOp>,
    /// Milliseconds since the epoch of the last settings change or snapshot.
    updated: i64,
    /// Deleted: the id is never used again.
    deleted: bool,
    /// Checkpoints, spaced as the SQL stores space them.
    checkpoints: BTreeMap<u64, String>,
    /// version → (name, named by).
    named: BTreeMap<u64, (String, String)>,
}

/// Everything in a mutex-guarded map; `fail_appends` lets tests simulate a failing disk.
#[derive(Default)]
pub struct MemoryStore {
    sessions: Mutex<HashMap<String, Entry>>,
    pub fail_appends: std::sync::atomic::AtomicBool,
    /// (kind, session) → (id, record) in insertion order.
    #[allow(clippy::type_complexity)]
    social: Mutex<HashMap<(crate::store::SocialKind, String), Vec<(String, String)>>>,
    pub(super) assets: MemoryAssets,
    /// Every user's items: (user, group, item), oldest first.
    notifications: Mutex<Vec<(String, Option<String>, montage_protocol::Notification)>>,
    /// The app event log, in order.
    events: Mutex<Vec<crate::store::StoredEvent>>,
    /// (session, comment, version, record) in the order kept.
    comment_states: Mutex<Vec<(String, String, u64, String)>>,
    pub(super) leases: leases::MemoryLeases,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        let mut g = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// How many ops are stored for a session (for tests).
    pub fn op_count(&self, session: &str) -> usize {
        self.with(|m| m.get(session).map_or(0, |e| e.ops.len()))
    }
}

impl Store for MemoryStore {
    fn load<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Option<Loaded>> {
        let r = self.with(|m| {
            let e = m.get(session)?;
            let meta = e.meta.clone()?;
            let from = e.snapshot.as_ref().map_or(0, |s| s.version);
            let ops = e.ops.range(from + 1..).map(|(_, o)| o.clone()).collect();
            Some(Loaded {
                meta,
                snapshot: e.snapshot.clone(),
                ops,
                snapshot_time: e.ops.get(&from).and_then(|o| o.time),
            })
        });
        Box::pin(async move { Ok(r) })
    }

    fn meta<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Option<SessionMeta>> {
        let r = self.with(|m| m.get(session).and_then(|e| e.meta.clone()));
        Box::pin(async move { Ok(r) })
    }

    fn create_session<'a>(
        &'a self,
        session: &'a str,
        new: NewSession<'a>,
    ) -> StoreFuture<'a, bool> {
        let created = self.with(|m| {
            let e = m.entry(session.to_owned()).or_default();
            if e.meta.is_some() || e.deleted {
                return false;
            }
            e.meta = Some(SessionMeta {
                owner: new.owner.to_owned(),
                link_role: new.link_role,
                roles: HashMap::from([(new.owner.to_owned(), Role::Owner)]),
                title: new.title.map(str::to_owned),
                encrypted: new.encrypted,
                key_epoch: 0,
            });
            e.updated = crate::clock::now_ms();
            true
        });
        Box::pin(async move { Ok(created) })
    }

    fn update_session<'a>(
        &'a self,
        session: &'a str,
        update: &'a SessionUpdate,
    ) -> StoreFuture<'a, ()> {
        self.with(|m| {
            if let Some(e) = m.get_mut(session)
                && let Some(meta) = &mut e.meta
            {
                if let Some(r) = update.link_role {
                    meta.link_role = r;
                }
                if let Some(t) = &update.title {
                    meta.title = (!t.is_empty()).then(|| t.clone());
                }
                if let Some(k) = update.key_epoch {
                    meta.key_epoch = k;
                }
                e.updated = crate::clock::now_ms();
            }
        });
        Box::pin(async { Ok(()) })
    }

    fn user_sessions<'a>(
        &'a self,
        user: &'a str,
        limit: u32,
    ) -> StoreFuture<'a, Vec<SessionSummary>> {
        let mut list: Vec<SessionSummary> = self.with(|m| {
            m.iter()
                .filter_map(|(id, e)| {
                    let meta = e.meta.as_ref()?;
                    let role = *meta.roles.get(user)?;
                    (role != Role::Removed).then(|| SessionSummary {
                        id: id.clone(),
                        title: meta.title.clone(),
                        role,
                        link_role: meta.link_role,
                        version: e.ops.keys().next_back().copied().unwrap_or(0),
                        updated: e.updated,
                    })
                })
                .collect()
        });
        list.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.id.cmp(&b.id)));
        list.truncate(limit as usize);
        Box::pin(async move { Ok(list) })
    }

    fn delete_session<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Vec<String>> {
        self.with(|m| {
            m.insert(
                session.to_owned(),
                Entry {
                    deleted: true,
                    ..Entry::default()
                },
            )
        });
        self.social
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(_, s), _| s != session);
        self.notifications
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(.., n)| n.session != session);
        self.comment_states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(s, ..)| s != session);
        let assets = self.assets.remove_session(session);
        Box::pin(async move { Ok(assets) })
    }

    fn set_role<'a>(&'a self, session: &'a str, user: &'a str, role: Role) -> StoreFuture<'a, ()> {
        self.with(|m| {
            if let Some(meta) = m.get_mut(session).and_then(|e| e.meta.as_mut()) {
                meta.roles.insert(user.to_owned(), role);
            }
        });
        Box::pin(async { Ok(()) })
    }

    fn commit<'a>(&'a self, batch: &'a [Write]) -> StoreFuture<'a, ()> {
        let r = if self.fail_appends.load(std::sync::atomic::Ordering::Relaxed) {
            Err(Error::Closed)
        } else {
            self.with(|m| {
                self.leases.check_fences(batch)?;
                for w in batch {
                    if let Write::Op { session, op, .. } = w
                        && m.get(session)
                            .is_some_and(|e| e.ops.contains_key(&op.version))
                    {
                        return Err(Error::VersionConflict {
                            session: session.clone(),
                            version: op.version,
                        });
                    }
                }
                for w in batch {
                    match w {
                        Write::Op { session, op, .. } => {
                            let e = m.entry(session.clone()).or_default();
                            e.ops.insert(op.version, op.clone());
                        }
                        Write::Snapshot { session, snapshot } => {
                            let e = m.entry(session.clone()).or_default();
                            e.keep_snapshot(snapshot);
                            e.updated = crate::clock::now_ms();
                        }
                    }
                }
                Ok(())
            })
        };
        Box::pin(async move { r })
    }

    fn save_snapshot<'a>(
        &'a self,
        session: &'a str,
        snapshot: &'a Snapshot,
    ) -> StoreFuture<'a, ()> {
        self.with(|m| {
            m.entry(session.to_owned())
                .or_default()
                .keep_snapshot(snapshot)
        });
        Box::pin(async { Ok(()) })
    }

    fn ops_after<'a>(
        &'a self,
        session: &'a str,
        after: u64,
        limit: u64,
    ) -> StoreFuture<'a, Vec<StoredOp>> {
        let r = self.with(|m| {
            m.get(session).map_or_else(Vec::new, |e| {
                e.ops
                    .range(after + 1..)
                    .take(limit as usize)
                    .map(|(_, o)| o.clone())
                    .collect()
            })
        });
        Box::pin(async move { Ok(r) })
    }

    fn find_seq<'a>(
        &'a self,
        session: &'a str,
        user: &'a str,
        client: &'a str,
        seq: u64,
    ) -> StoreFuture<'a, Option<u64>> {
        let r = self.with(|m| {
            m.get(session)?
                .ops
                .values()
                .find(|o| o.user == user && o.client == client && o.seq == seq)
                .map(|o| o.version)
        });
        Box::pin(async move { Ok(r) })
    }

    fn max_seq<'a>(
        &'a self,
        session: &'a str,
        user: &'a str,
        client: &'a str,
    ) -> StoreFuture<'a, Option<u64>> {
        let r = self.with(|m| {
            m.get(session)?
                .ops
                .values()
                .filter(|o| o.user == user && o.client == client)
                .map(|o| o.seq)
                .max()
        });
        Box::pin(async move { Ok(r) })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    fn social(&self) -> Option<&dyn SocialStore> {
        Some(self)
    }
    fn assets(&self) -> Option<&dyn crate::store::AssetStore> {
        Some(self)
    }
    fn history(&self) -> Option<&dyn crate::store::HistoryStore> {
        Some(self)
    }
    fn notifications(&self) -> Option<&dyn crate::store::NotificationStore> {
        Some(self)
    }
    fn events(&self) -> Option<&dyn crate::store::EventStore> {
        Some(self)
    }

    fn leases(&self) -> Option<&dyn crate::store::LeaseStore> {
        Some(&self.leases)
    }
}

impl crate::store::EventStore for MemoryStore {
    fn append_event<'a>(&'a self, e: &'a crate::store::NewEvent) -> StoreFuture<'a, u64> {
        let mut log = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let seq = log.last().map_or(1, |l| l.seq + 1);
        log.push(crate::store::StoredEvent {
            seq,
            event: e.clone(),
        });
        Box::pin(async move { Ok(seq) })
    }

    fn events_after<'a>(
        &'a self,
        after: u64,
        limit: u32,
    ) -> StoreFuture<'a, Vec<crate::store::StoredEvent>> {
        let log = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let out = log
            .iter()
            .filter(|e| e.seq > after)
            .take(limit as usize)
            .cloned()
            .collect();
        Box::pin(async move { Ok(out) })
    }
    fn last_event_seq(&self) -> StoreFuture<'_, u64> {
        let log = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let last = log.last().map_or(0, |e| e.seq);
        Box::pin(async move { Ok(last) })
    }
}

impl Entry {
    /// Keeps the snapshot, and a checkpoint with the SQL stores' spacing (`store::history`).
    fn keep_snapshot(&mut self, snapshot: &Snapshot) {
        use crate::store::history::{CHECKPOINT_EVERY_MS, CHECKPOINT_EVERY_OPS};
        let v = snapshot.version;
        let time_of = |v: &u64| self.ops.get(v).and_then(|o| o.time);
        let recent = time_of(&v).is_some_and(|t| {
            self.checkpoints
                .range(v.saturating_sub(CHECKPOINT_EVERY_OPS - 1)..)
                .any(|(c, _)| time_of(c).is_some_and(|ct| ct > t - CHECKPOINT_EVERY_MS))
        });
        if !recent {
            self.checkpoints.insert(v, snapshot.state.clone());
        }
        self.snapshot = Some(snapshot.clone());
    }
}

#[cfg(test)]
mod tests {
    /// The test double keeps the contract the real stores keep.
    #[tokio::test]
    async fn memory_round_trip() {
        crate::store::sessions::contract::round_trip(&super::MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn memory_leases() {
        crate::store::leases::contract::lease_semantics(&super::MemoryStore::new()).await;
    }
}
