//! The sans-I/O core of one session: its document, history, the edits applied but not yet
//! durable and the idempotency table. Methods take an input (an edit, a commit result, a version
//! another node committed) and return what to do (the row to commit, the frame to broadcast, the
//! replies that may go out now); the actor (`actor.rs`) reads and writes the store, talks to
//! connections and runs timers. Nothing here awaits, reads a clock or touches a socket, so it is
//! tested without a runtime or a store.
//!
//! What waits for a version to be durable is the caller's own type `A` (the actor's replies):
//! the core keeps it in version order and hands it back once the version is committed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use montage_ot::{Op, Value};
use montage_protocol::{ErrorCode, OpEntry, encode_op};

use super::rebase::rebase;
use crate::store::{Loaded, SessionMeta, Snapshot, StoredOp, Write};

/// Versions between a base and the head past which an edit is refused with `conflict`.
pub const MAX_REBASE: u64 = 100_000;
/// Recent `(seq, version)` pairs kept per client for idempotency; older ones are looked up.
const RECENT_SEQS: usize = 256;
/// Clients whose recent seqs a session keeps in memory before forgetting idle ones.
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// How much a session keeps in memory.
#[derive(Debug, Clone, Copy)]
pub struct CoreConfig {
    /// Ops kept in memory for transforms and catch-up (older ones are read from the store).
    pub history_keep: usize,
    /// A snapshot is due after this many versions, whatever the clock says.
    pub snapshot_every_ops: u64,
}

/// One version of the history.
#[derive(Debug)]
pub struct HistEntry {
    pub op: Op,
    pub user: Arc<str>,
}

/// A client's edits: `(user, client)`, since client ids are chosen by clients and only unique
/// per user.
pub type SeqKey = (Arc<str>, Arc<str>);

#[derive(Debug, Default)]
struct ClientSeqs {
    /// The store was asked for this client's highest seq (None: it had none).
    store_checked: bool,
    store_max: Option<u64>,
    recent: VecDeque<(u64, u64)>,
}

/// Whether `(client, seq)` was applied already, as far as memory knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// Applied as this version: ack it again.
    Applied(u64),
    /// Never seen: apply it.
    New,
    /// Ask the store for the client's highest seq and give it to [`SessionCore::note_store_max`].
    NeedStoreMax,
    /// At or below a seq the store has: ask the store which version it went to.
    NeedStoreFind,
}

/// An edit to transform and apply.
#[derive(Debug)]
pub struct Edit {
    pub user: Arc<str>,
    pub client: Arc<str>,
    pub seq: u64,
    pub base: u64,
    pub ops: Op,
}

/// An edit applied as the new head, not yet durable.
#[derive(Debug)]
pub struct Applied {
    pub version: u64,
    /// Undoes the edit (presence and cross-node rollbacks use it).
    pub inverse: Op,
    /// The row to hand to the committer.
    pub write: Write,
    /// The `op` frame for everyone but the sender, once durable.
    pub broadcast: String,
}

/// An edit that was not applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    /// The OT engine panicked: the document may be half-changed and must be reloaded.
    pub broken: bool,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            broken: false,
        }
    }
}

/// One loaded session's document and everything ordered with it.
#[derive(Debug)]
pub struct SessionCore<A> {
    id: Arc<str>,
    pub meta: SessionMeta,
    pub doc: Value,
    /// The head: the newest version applied (durable or not).
    pub version: u64,
    /// The ops of versions `hist_start ..= version`.
    pub history: VecDeque<HistEntry>,
    pub hist_start: u64,
    pub snapshot_version: u64,
    /// The newest durable version.
    committed: u64,
    seqs: HashMap<SeqKey, ClientSeqs>,
    /// What waits for a version to be durable, in version order.
    pending: VecDeque<(u64, A)>,
    config: CoreConfig,
}

impl<A> SessionCore<A> {
    /// The session from what the store holds: the latest snapshot plus the ops after it. A
    /// panic of the OT engine while replaying is an error like any other.
    pub fn load(id: Arc<str>, loaded: Loaded, config: CoreConfig) -> Result<Self, String> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::replay(id, loaded, config)
        }))
        .unwrap_or_else(|_| Err("the OT engine panicked while replaying".to_owned()))
    }

    fn replay(id: Arc<str>, l: Loaded, config: CoreConfig) -> Result<Self, String> {
        let (mut doc, mut version) = match &l.snapshot {
            Some(s) => (
                serde_json::from_str::<Value>(&s.state).map_err(|e| format!("snapshot: {e}"))?,
                s.version,
            ),
            None => (Value::new_document(), 0),
        };
        let snapshot_version = version;
        let keep = config.history_keep.max(1);
        let mut history = VecDeque::with_capacity(l.ops.len().min(keep));
        for o in l.ops {
            if o.version != version + 1 {
                return Err(format!("version {} follows {version}", o.version));
            }
            let op: Op =
                serde_json::from_str(&o.ops).map_err(|e| format!("op {}: {e}", o.version))?;
            op.apply(&mut doc)
                .map_err(|e| format!("op {}: {e}", o.version))?;
            version = o.version;
            history.push_back(HistEntry {
                op,
                user: Arc::from(o.user),
            });
            if history.len() > keep {
                history.pop_front();
            }
        }
        let hist_start = version + 1 - history.len() as u64;
        Ok(SessionCore {
            id,
            meta: l.meta,
            doc,
            version,
            history,
            hist_start,
            snapshot_version,
            committed: version,
            seqs: HashMap::new(),
            pending: VecDeque::new(),
            config,
        })
    }

    /// The newest durable version.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Every applied version is durable.
    pub fn settled(&self) -> bool {
        self.version == self.committed
    }

    /// Nothing waits for a commit.
    pub fn idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// The op of the head version, if it is in memory.
    pub fn head_op(&self) -> Option<&Op> {
        self.history.back().map(|h| &h.op)
    }

    // --- idempotency -------------------------------------------------------------------------

    /// Whether `user`'s `(client, seq)` was applied, as far as memory can tell.
    pub fn check_seq(&self, key: &SeqKey, seq: u64) -> SeqCheck {
        let Some(entry) = self.seqs.get(key) else {
            return SeqCheck::NeedStoreMax;
        };
        if let Some(&(_, v)) = entry.recent.iter().rev().find(|(s, _)| *s == seq) {
            return SeqCheck::Applied(v);
        }
        if !entry.store_checked {
            return SeqCheck::NeedStoreMax;
        }
        let max_recent = entry.recent.iter().map(|(s, _)| *s).max();
        // Clients number their edits upwards: a seq above all known ones is new, no query needed.
        match entry.store_max.max(max_recent) {
            Some(m) if seq <= m => SeqCheck::NeedStoreFind,
            _ => SeqCheck::New,
        }
    }

    /// The store's answer to [`SeqCheck::NeedStoreMax`].
    pub fn note_store_max(&mut self, key: &SeqKey, max: Option<u64>) {
        let entry = self.seqs.entry(key.clone()).or_default();
        entry.store_max = max;
        entry.store_checked = true;
    }

    // --- history -----------------------------------------------------------------------------

    /// The versions after `after` that are no longer in memory, as `(after, count)` for
    /// `Store::ops_after`, if any.
    pub fn missing_history(&self, after: u64) -> Option<(u64, u64)> {
        (after + 1 < self.hist_start).then(|| (after, self.hist_start - after - 1))
    }

    /// The entries after `after` that are in memory.
    pub fn entries_in_memory(&self, after: u64) -> Vec<OpEntry> {
        let skip = (after + 1).saturating_sub(self.hist_start) as usize;
        self.history
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, h)| OpEntry {
                version: self.hist_start + i as u64,
                user: h.user.to_string(),
                ops: h.op.clone(),
            })
            .collect()
    }

    // --- edits -------------------------------------------------------------------------------

    /// Refuses a base the head can't transform from: ahead of it, or too far behind.
    pub fn check_base(&self, base: u64) -> Result<(), Refusal> {
        let head = self.version;
        if base > head {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                format!("base {base} is ahead of the head {head}"),
            ));
        }
        if head - base > MAX_REBASE {
            return Err(Refusal::new(
                ErrorCode::Conflict,
                format!("base {base} is too old; join again with since"),
            ));
        }
        Ok(())
    }

    /// Transforms `edit` past every version after its base (the sender's own included, DESIGN
    /// §2) and applies it as the new head. `older` are the ops [`missing_history`] named, read
    /// from the store. The OT engine is trusted but a panic must cost one session, not the
    /// server: then the refusal says `broken`, and the session must reload from the store.
    ///
    /// [`missing_history`]: SessionCore::missing_history
    pub fn apply(&mut self, edit: Edit, older: &[Op]) -> Result<Applied, Refusal> {
        self.check_base(edit.base)?;
        let (op, inverse) = rebase_and_apply(
            &self.history,
            self.hist_start,
            edit.base,
            edit.ops,
            older,
            &mut self.doc,
        )?;
        self.version += 1;
        let version = self.version;
        let ops_json = serde_json::to_string(&op).unwrap_or_else(|_| "[]".to_owned());
        let broadcast = encode_op(&self.id, version, &edit.user, &ops_json);
        self.history.push_back(HistEntry {
            op,
            user: edit.user.clone(),
        });
        let write = Write::Op {
            session: self.id.to_string(),
            op: StoredOp {
                version,
                user: edit.user.to_string(),
                client: edit.client.to_string(),
                seq: edit.seq,
                ops: ops_json,
            },
        };
        self.seqs
            .entry((edit.user, edit.client))
            .or_default()
            .recent
            .push_back((edit.seq, version));
        Ok(Applied {
            version,
            inverse,
            write,
            broadcast,
        })
    }

    /// Whether `ops` made at `base` would apply at the head (checked on a copy; nothing
    /// changes): a suggestion is checked so before it is stored.
    pub fn try_apply(&self, base: u64, ops: Op, older: &[Op]) -> Result<(), Refusal> {
        self.check_base(base)?;
        let mut copy = self.doc.clone();
        rebase_and_apply(&self.history, self.hist_start, base, ops, older, &mut copy).map(|_| ())
    }

    /// Applies a version another node committed (it is durable already). Returns its inverse;
    /// the op is [`head_op`](SessionCore::head_op).
    pub fn apply_committed(&mut self, o: &StoredOp) -> Result<Op, String> {
        if o.version != self.version + 1 {
            return Err(format!("version {} follows {}", o.version, self.version));
        }
        let op: Op = serde_json::from_str(&o.ops).map_err(|e| format!("op {}: {e}", o.version))?;
        let doc = &mut self.doc;
        let inverse = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op.apply(doc)))
            .map_err(|_| format!("op {}: the OT engine panicked", o.version))?
            .map_err(|e| format!("op {}: {e}", o.version))?;
        let user: Arc<str> = Arc::from(o.user.as_str());
        self.version = o.version;
        self.history.push_back(HistEntry {
            op,
            user: user.clone(),
        });
        self.committed = o.version;
        // The same (client, seq) may be resent here later: remember where it went.
        if let Some(s) = self.seqs.get_mut(&(user, Arc::from(o.client.as_str()))) {
            s.recent.push_back((o.seq, o.version));
        }
        self.trim();
        Ok(inverse)
    }

    /// Takes back the versions after the last durable one (another node committed them first):
    /// `inverses` undo them, newest first. What waited for them is dropped when `lost` says so
    /// (their acks never went out); everything else is handed back to run now. `Err` when an
    /// inverse did not apply (why): the document must be reloaded.
    pub fn roll_back<'a>(
        &mut self,
        inverses: impl IntoIterator<Item = &'a Op>,
        lost: impl Fn(&A) -> bool,
    ) -> Result<Vec<(u64, A)>, String> {
        for inverse in inverses {
            inverse
                .apply_unchecked(&mut self.doc)
                .map_err(|e| e.to_string())?;
        }
        let committed = self.committed;
        while self.version > committed {
            self.history.pop_back();
            self.version -= 1;
        }
        for s in self.seqs.values_mut() {
            s.recent.retain(|(_, v)| *v <= committed);
        }
        Ok(std::mem::take(&mut self.pending)
            .into_iter()
            .filter(|(v, a)| *v <= committed || !lost(a))
            .map(|(v, a)| (v.min(committed), a))
            .collect())
    }

    // --- durability --------------------------------------------------------------------------

    /// `action` once `version` is durable: handed back now when it is (and nothing earlier
    /// still waits), else kept until [`committed_through`](SessionCore::committed_through).
    pub fn when_committed(&mut self, version: u64, action: A) -> Option<A> {
        if version <= self.committed && self.pending.is_empty() {
            Some(action)
        } else {
            self.pending.push_back((version, action));
            None
        }
    }

    /// `action` once the version just applied is durable (queued: it can't be yet).
    pub fn after_applied(&mut self, version: u64, action: A) {
        self.pending.push_back((version, action));
    }

    /// The committer made every version up to `version` durable: what waited for them, in
    /// order. History and seqs that are durable and past what memory keeps are dropped.
    pub fn committed_through(&mut self, version: u64) -> Vec<(u64, A)> {
        self.committed = self.committed.max(version);
        let mut ready = Vec::new();
        while self
            .pending
            .front()
            .is_some_and(|(v, _)| *v <= self.committed)
        {
            ready.extend(self.pending.pop_front());
        }
        self.trim();
        ready
    }

    /// A write failed: nothing applied since the last durable version may be shown. Returns
    /// everything that waited, to be refused.
    pub fn take_pending(&mut self) -> Vec<(u64, A)> {
        std::mem::take(&mut self.pending).into()
    }

    /// Drops history and seq records that are durable and past what is kept in memory.
    pub fn trim(&mut self) {
        let keep = self.config.history_keep.max(1);
        while self.history.len() > keep && self.hist_start <= self.committed {
            self.history.pop_front();
            self.hist_start += 1;
        }
        let committed = self.committed;
        for s in self.seqs.values_mut() {
            while s.recent.len() > RECENT_SEQS
                && s.recent.front().is_some_and(|(_, v)| *v <= committed)
            {
                if let Some((seq, _)) = s.recent.pop_front() {
                    s.store_max = s.store_max.max(Some(seq));
                }
            }
        }
        // Clients that come and go with fresh ids must not grow this forever: forget those with
        // nothing in flight (the store answers for them).
        if self.seqs.len() > MAX_TRACKED_CLIENTS {
            self.seqs
                .retain(|_, s| s.recent.iter().any(|(_, v)| *v > committed));
        }
    }

    // --- snapshots ---------------------------------------------------------------------------

    /// The head as a snapshot when one is due: the clock said so (`due`) or
    /// `snapshot_every_ops` versions passed, and the head moved since the last one.
    pub fn snapshot_if_due(&self, due: bool) -> Option<Snapshot> {
        if due || self.snapshot_overdue() {
            self.snapshot_if_moved()
        } else {
            None
        }
    }

    /// Whether `snapshot_every_ops` versions passed since the last snapshot.
    pub fn snapshot_overdue(&self) -> bool {
        self.version - self.snapshot_version >= self.config.snapshot_every_ops
    }

    /// The head as a snapshot, if it moved since the last one.
    pub fn snapshot_if_moved(&self) -> Option<Snapshot> {
        (self.version != self.snapshot_version).then(|| self.snapshot())
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: self.version,
            state: serde_json::to_string(&self.doc).unwrap_or_else(|_| "null".to_owned()),
        }
    }

    /// A snapshot of `version` is durable.
    pub fn snapshot_written(&mut self, version: u64) {
        self.snapshot_version = self.snapshot_version.max(version);
    }
}

/// The one place an edit is transformed and applied: past `older` (read from the store) and
/// the history after `base`, then onto `doc`. Returns the op as applied and its inverse.
fn rebase_and_apply(
    history: &VecDeque<HistEntry>,
    hist_start: u64,
    base: u64,
    ops: Op,
    older: &[Op],
    doc: &mut Value,
) -> Result<(Op, Op), Refusal> {
    let skip = (base + 1).saturating_sub(hist_start) as usize;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let memory = history.iter().skip(skip).map(|h| &h.op);
        let op = rebase(ops, older.iter().chain(memory));
        op.apply(doc).map(|inverse| (op, inverse))
    }));
    match outcome {
        Ok(Ok(applied)) => Ok(applied),
        Ok(Err(e)) => Err(Refusal::new(ErrorCode::BadRequest, e.to_string())),
        Err(_) => Err(Refusal {
            code: ErrorCode::Internal,
            message: "the edit could not be processed".into(),
            broken: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    fn meta() -> SessionMeta {
        SessionMeta {
            owner: "alice".into(),
            link_role: montage_protocol::Role::Viewer,
            roles: HashMap::new(),
            title: None,
        }
    }

    fn config() -> CoreConfig {
        CoreConfig {
            history_keep: 4,
            snapshot_every_ops: 3,
        }
    }

    fn new_core() -> SessionCore<&'static str> {
        let loaded = Loaded {
            meta: meta(),
            snapshot: None,
            ops: Vec::new(),
        };
        SessionCore::load(Arc::from("s"), loaded, config()).unwrap()
    }

    fn op(v: serde_json::Value) -> Op {
        serde_json::from_value(v).unwrap()
    }

    fn edit(user: &str, seq: u64, base: u64, text: &str) -> Edit {
        Edit {
            user: Arc::from(user),
            client: Arc::from("c"),
            seq,
            base,
            ops: op(json!([{"op": "text", "path": ["title"], "pos": 0, "ins": text}])),
        }
    }

    fn title<A>(c: &SessionCore<A>) -> String {
        let doc = serde_json::to_value(&c.doc).unwrap();
        doc["title"].as_str().unwrap().to_owned()
    }

    #[test]
    fn an_edit_is_rebased_past_later_versions_and_written_once_applied() {
        let mut c = new_core();
        let a = c.apply(edit("alice", 1, 0, "world"), &[]).unwrap();
        assert_eq!(a.version, 1);
        // Bob typed at the start too, based on version 0: the earlier version stands first.
        let b = c.apply(edit("bob", 1, 0, "hello "), &[]).unwrap();
        assert_eq!((b.version, title(&c)), (2, "worldhello ".to_owned()));
        let Write::Op { op, .. } = &b.write else {
            panic!("{:?}", b.write)
        };
        assert_eq!((op.version, op.user.as_str(), op.seq), (2, "bob", 1));
        let frame: serde_json::Value = serde_json::from_str(&b.broadcast).unwrap();
        assert_eq!(frame["type"], "op");
        assert_eq!(frame["ops"][0]["pos"], 5, "transformed past alice's insert");
        assert!(!c.settled());
    }

    #[test]
    fn a_dry_run_checks_an_edit_without_changing_anything() {
        let mut c = new_core();
        c.apply(edit("alice", 1, 0, "a"), &[]).unwrap();
        assert!(c.try_apply(0, edit("bob", 1, 0, "b").ops, &[]).is_ok());
        let bad = op(json!([{"op": "del", "path": ["canvas", "layers", 3]}]));
        assert_eq!(
            c.try_apply(1, bad, &[]).unwrap_err().code,
            ErrorCode::BadRequest
        );
        assert_eq!((c.version, title(&c)), (1, "a".to_owned()));
    }

    #[test]
    fn bases_ahead_or_too_old_are_refused_and_nothing_changes() {
        let mut c = new_core();
        let r = c.apply(edit("alice", 1, 1, "x"), &[]).unwrap_err();
        assert_eq!(r.code, ErrorCode::BadRequest);
        c.version = MAX_REBASE + 1;
        let r = c.apply(edit("alice", 1, 0, "x"), &[]).unwrap_err();
        assert_eq!(r.code, ErrorCode::Conflict);
        assert_eq!(title(&c), "");
    }

    #[test]
    fn an_edit_that_breaks_the_document_shape_is_a_bad_request() {
        let mut c = new_core();
        let bad = Edit {
            ops: op(json!([{"op": "set", "path": ["canvas", "width"], "value": "wide"}])),
            ..edit("alice", 1, 0, "")
        };
        let r = c.apply(bad, &[]).unwrap_err();
        assert_eq!((r.code, r.broken), (ErrorCode::BadRequest, false));
        assert_eq!(c.version, 0);
    }

    #[test]
    fn replies_wait_for_their_version_to_be_durable_in_order() {
        let mut c = new_core();
        assert_eq!(c.when_committed(0, "joined"), Some("joined"));
        let v1 = c.apply(edit("alice", 1, 0, "a"), &[]).unwrap().version;
        assert_eq!(c.when_committed(v1, "ack 1"), None);
        let v2 = c.apply(edit("alice", 2, 1, "b"), &[]).unwrap().version;
        assert_eq!(c.when_committed(v2, "ack 2"), None);
        // A reply about the durable head still queues behind the pending acks.
        assert_eq!(c.when_committed(0, "state"), None);
        assert_eq!(c.committed_through(v1), vec![(1, "ack 1")]);
        assert_eq!(c.committed_through(v2), vec![(2, "ack 2"), (0, "state")]);
        assert!(c.settled() && c.idle());
    }

    #[test]
    fn resends_are_found_in_memory_and_the_store_is_asked_only_when_it_must() {
        let mut c = new_core();
        let key: SeqKey = (Arc::from("alice"), Arc::from("c"));
        assert_eq!(c.check_seq(&key, 1), SeqCheck::NeedStoreMax);
        c.note_store_max(&key, None);
        assert_eq!(c.check_seq(&key, 1), SeqCheck::New);
        c.apply(edit("alice", 1, 0, "a"), &[]).unwrap();
        assert_eq!(c.check_seq(&key, 1), SeqCheck::Applied(1));
        assert_eq!(c.check_seq(&key, 2), SeqCheck::New);
        // Another user's client of the same name is another client.
        let bob: SeqKey = (Arc::from("bob"), Arc::from("c"));
        assert_eq!(c.check_seq(&bob, 1), SeqCheck::NeedStoreMax);
        c.note_store_max(&bob, Some(7));
        assert_eq!(c.check_seq(&bob, 5), SeqCheck::NeedStoreFind);
        assert_eq!(c.check_seq(&bob, 8), SeqCheck::New);
    }

    #[test]
    fn durable_history_past_the_memory_budget_is_read_from_the_store() {
        let mut c = new_core();
        for seq in 1..=6 {
            let a = c.apply(edit("alice", seq, seq - 1, "x"), &[]).unwrap();
            c.committed_through(a.version);
        }
        assert_eq!((c.history.len(), c.hist_start), (4, 3));
        assert_eq!(c.missing_history(0), Some((0, 2)));
        assert_eq!(c.missing_history(2), None);
        let e = c.entries_in_memory(4);
        assert_eq!(e.iter().map(|e| e.version).collect::<Vec<_>>(), vec![5, 6]);
        // An edit based on version 1 needs version 2 from the store, then the rest from memory.
        let older = [op(
            json!([{"op": "text", "path": ["title"], "pos": 0, "ins": "x"}]),
        )];
        let b = c.apply(edit("bob", 1, 1, "B"), &older).unwrap();
        let frame: serde_json::Value = serde_json::from_str(&b.broadcast).unwrap();
        assert_eq!(frame["ops"][0]["pos"], 5);
    }

    #[test]
    fn snapshots_are_due_by_clock_or_by_count() {
        let mut c = new_core();
        assert!(c.snapshot_if_due(true).is_none(), "nothing moved");
        c.apply(edit("alice", 1, 0, "a"), &[]).unwrap();
        assert!(c.snapshot_if_due(false).is_none());
        assert_eq!(c.snapshot_if_due(true).map(|s| s.version), Some(1));
        c.apply(edit("alice", 2, 1, "b"), &[]).unwrap();
        c.apply(edit("alice", 3, 2, "c"), &[]).unwrap();
        let s = c.snapshot_if_due(false).unwrap();
        assert_eq!(s.version, 3);
        assert!(s.state.contains("\"cba\""));
        c.snapshot_written(3);
        assert!(c.snapshot_if_moved().is_none());
    }

    #[test]
    fn a_rollback_undoes_unconfirmed_versions_and_drops_their_acks() {
        let mut c = new_core();
        let a = c.apply(edit("alice", 1, 0, "a"), &[]).unwrap();
        c.committed_through(1);
        let b = c.apply(edit("alice", 2, 1, "b"), &[]).unwrap();
        assert_eq!(c.when_committed(b.version, "ack 2"), None);
        assert_eq!(c.when_committed(b.version, "joined"), None);
        let left = c.roll_back([&b.inverse], |a| a.starts_with("ack")).unwrap();
        assert_eq!(left, vec![(1, "joined")]);
        assert_eq!((c.version, title(&c)), (1, "a".to_owned()));
        let key: SeqKey = (Arc::from("alice"), Arc::from("c"));
        assert_eq!(c.check_seq(&key, 2), SeqCheck::NeedStoreMax);
        // The other node's version 2 arrives and applies.
        let theirs = StoredOp {
            version: 2,
            user: "bob".into(),
            client: "c".into(),
            seq: 1,
            ops: r#"[{"op":"text","path":["title"],"pos":1,"ins":"Z"}]"#.into(),
        };
        c.apply_committed(&theirs).unwrap();
        assert_eq!(
            (c.version, c.committed(), title(&c)),
            (2, 2, "aZ".to_owned())
        );
        assert!(c.apply_committed(&theirs).is_err(), "version 2 again");
        let _ = a;
    }

    #[test]
    fn loading_replays_the_snapshot_and_the_ops_after_it() {
        let loaded = Loaded {
            meta: meta(),
            snapshot: Some(Snapshot {
                version: 2,
                state: serde_json::to_string(&Value::new_document()).unwrap(),
            }),
            ops: vec![StoredOp {
                version: 3,
                user: "alice".into(),
                client: "c".into(),
                seq: 1,
                ops: r#"[{"op":"set","path":["title"],"value":"t"}]"#.into(),
            }],
        };
        let c: SessionCore<()> =
            SessionCore::load(Arc::from("s"), loaded.clone(), config()).unwrap();
        assert_eq!((c.version, c.committed(), c.hist_start), (3, 3, 3));
        assert_eq!(title(&c), "t");
        let mut gap = loaded;
        gap.ops[0].version = 4;
        let e = SessionCore::<()>::load(Arc::from("s"), gap, config()).unwrap_err();
        assert!(e.contains("follows"), "{e}");
    }
}
