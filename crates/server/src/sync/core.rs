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
use montage_protocol::sealed::Sealed;
use montage_protocol::{ErrorCode, OpEntry, ServerMessage, encode_op};

use super::rebase::rebase;
use crate::store::{Loaded, SessionMeta, Snapshot, StoredOp, Write};

/// Versions between a base and the head past which an edit is refused with `conflict`.
pub const MAX_REBASE: u64 = 100_000;
/// Component pairs past which a rebase runs on the blocking pool rather than the actor's thread.
const HEAVY_WORK: u64 = 16_384;
/// Components past which applying an edit runs on the blocking pool.
const HEAVY_COMPONENTS: usize = 512;
/// Documents past this many bytes are copied (to check a suggestion) on the blocking pool.
const HEAVY_COPY_BYTES: usize = 256 * 1024;
/// Deepest JSON nesting an edit may give the document (DESIGN §9.2).
pub const MAX_DOC_DEPTH: usize = 64;
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
    /// Largest document, in bytes of JSON, an edit may leave.
    pub max_doc_bytes: usize,
    /// Component pairs one edit's rebase may compare (see [`SessionCore::transform_work`]).
    pub max_transform_work: u64,
}

/// One version of the history.
#[derive(Debug)]
pub struct HistEntry {
    /// The edit as applied (empty in an encrypted session).
    pub op: Op,
    pub user: Arc<str>,
    /// Commit time, ms since the epoch (`None`: stored before times were kept).
    pub time: Option<i64>,
    /// An encrypted session's sealed edit, with its chain value.
    pub sealed: Option<Arc<Sealed>>,
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
    /// The clock when it arrived (ms since the epoch); the version's commit time is this or the
    /// previous version's, whichever is later, so times never go back within a session.
    pub now_ms: i64,
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
    /// The head, for a `conflict` the client resolves by rebasing locally onto it.
    pub version: Option<u64>,
}

impl Refusal {
    /// The error frame that tells the sender.
    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::Error {
            code: self.code,
            message: self.message.clone(),
            retry_after_ms: None,
            session: None,
            version: self.version,
        }
    }

    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            broken: false,
            version: None,
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
    /// Size of `doc` as JSON: exact when measured, else moved by each edit's estimated growth.
    doc_bytes: usize,
    /// The version `doc_bytes` was last measured at: near the cap it is measured at most once
    /// per version, so refused edits cost no serialization of the document.
    bytes_measured_at: u64,
    /// Commit time of the head (0 when unknown).
    last_time: i64,
    /// An encrypted session's chain and client snapshot (`sealed.rs`); `None` for a plain one.
    sealed: Option<sealed::SealedState>,
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
        if l.meta.encrypted {
            return Self::replay_sealed(id, l, config);
        }
        let keep = config.history_keep.max(1);
        let mut history = VecDeque::with_capacity(l.ops.len().min(keep));
        let mut last_time = l.snapshot_time.unwrap_or(0);
        let (doc, version) = replay_ops(l.snapshot.as_ref(), l.ops, |o, op| {
            last_time = o.time.unwrap_or(last_time);
            history.push_back(HistEntry {
                op,
                user: Arc::from(o.user),
                time: o.time,
                sealed: None,
            });
            if history.len() > keep {
                history.pop_front();
            }
        })?;
        let snapshot_version = l.snapshot.as_ref().map_or(0, |s| s.version);
        let hist_start = version + 1 - history.len() as u64;
        let doc_bytes = json_len(&doc);
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
            doc_bytes,
            bytes_measured_at: version,
            last_time,
            sealed: None,
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

    /// The edit applied as `version`, if it is in memory and readable (not sealed).
    pub fn op_at(&self, version: u64) -> Option<&Op> {
        let i = version.checked_sub(self.hist_start)?;
        let h = self.history.get(usize::try_from(i).ok()?)?;
        h.sealed.is_none().then_some(&h.op)
    }

    /// The entries after `after` that are in memory.
    pub fn entries_in_memory(&self, after: u64) -> Vec<OpEntry> {
        let skip = (after + 1).saturating_sub(self.hist_start) as usize;
        self.history
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, h)| {
                let version = self.hist_start + i as u64;
                let mut e = OpEntry {
                    version,
                    user: h.user.to_string(),
                    ops: h.op.clone(),
                    time: h.time,
                    data: None,
                    key_epoch: None,
                    chain: None,
                };
                if let Some(s) = &h.sealed {
                    e.data = Some(s.data.clone());
                    e.key_epoch = Some(s.key_epoch);
                    e.chain = Some(s.chain.clone());
                }
                e
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
        self.check_work(edit.base, &edit.ops, Some(older))?;
        let (op, inverse) = rebase_and_apply(
            &self.history,
            self.hist_start,
            edit.base,
            edit.ops,
            older,
            &mut self.doc,
        )?;
        let ops_json = serde_json::to_string(&op).unwrap_or_else(|_| "[]".to_owned());
        if let Err(r) = self.check_size(&ops_json, &inverse) {
            // Undo it: nothing of a refused edit stays.
            let undone = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                inverse.apply_unchecked(&mut self.doc)
            }));
            return match undone {
                Ok(Ok(_)) => Err(r),
                _ => Err(Refusal {
                    broken: true,
                    ..Refusal::new(ErrorCode::Internal, "the edit could not be processed")
                }),
            };
        }
        self.version += 1;
        let version = self.version;
        let broadcast = encode_op(&self.id, version, &edit.user, &ops_json);
        self.last_time = self.last_time.max(edit.now_ms);
        self.history.push_back(HistEntry {
            op,
            user: edit.user.clone(),
            time: Some(self.last_time),
            sealed: None,
        });
        let write = self.appended(edit.user, edit.client, edit.seq, version, ops_json);
        Ok(Applied {
            version,
            inverse,
            write,
            broadcast,
        })
    }

    /// The row of `user`'s edit `(client, seq)` applied as `version` with `body` (its ops, or
    /// its sealed payload), stamped with the head's commit time; its seq is remembered.
    fn appended(
        &mut self,
        user: Arc<str>,
        client: Arc<str>,
        seq: u64,
        version: u64,
        body: String,
    ) -> Write {
        let write = Write::Op {
            session: self.id.to_string(),
            op: StoredOp {
                version,
                user: user.to_string(),
                client: client.to_string(),
                seq,
                ops: body,
                time: Some(self.last_time),
            },
            fence: None,
        };
        self.seqs
            .entry((user, client))
            .or_default()
            .recent
            .push_back((seq, version));
        write
    }

    /// Whether `ops` made at `base` would apply at the head (checked on a copy; nothing
    /// changes): a suggestion is checked so before it is stored.
    pub fn try_apply(&self, base: u64, ops: Op, older: &[Op]) -> Result<(), Refusal> {
        self.check_base(base)?;
        self.check_work(base, &ops, Some(older))?;
        let mut copy = self.doc.clone();
        let (op, inverse) =
            rebase_and_apply(&self.history, self.hist_start, base, ops, older, &mut copy)?;
        let grown = json_len(&op) as i64 - json_len(&inverse) as i64;
        if self.doc_bytes.saturating_add_signed(grown as isize) > self.config.max_doc_bytes
            && json_len(&copy) > self.config.max_doc_bytes
        {
            return Err(self.too_large());
        }
        Ok(())
    }

    /// The component pairs rebasing `ops` from `base` compares: its components times those of
    /// every version after `base` (DESIGN §9.2: components × versions behind). `older` are the
    /// versions read from the store; without them each one missing from memory counts once,
    /// so an edit far past the budget is refused before the store is read.
    pub fn transform_work(&self, base: u64, ops: &Op, older: Option<&[Op]>) -> u64 {
        let skip = (base + 1).saturating_sub(self.hist_start) as usize;
        let memory: usize = self.history.iter().skip(skip).map(|h| h.op.len()).sum();
        let before = match (older, self.missing_history(base)) {
            (Some(older), _) => older.iter().map(Op::len).sum::<usize>() as u64,
            (None, Some((_, count))) => count,
            (None, None) => 0,
        };
        (ops.len() as u64).saturating_mul(memory as u64 + before)
    }

    /// Whether transforming and applying `ops` (or, for a suggestion, checking it on a copy of
    /// the document) is too much work for an async worker thread: the actor then runs it on the
    /// blocking pool. Near the size cap an edit may measure the whole document.
    pub fn is_heavy(&self, base: u64, ops: &Op, older: &[Op], copy: bool) -> bool {
        let max = self.config.max_doc_bytes;
        self.transform_work(base, ops, Some(older)) > HEAVY_WORK
            || ops.len() > HEAVY_COMPONENTS
            || self.doc_bytes > max - max / 8
            || (copy && self.doc_bytes > HEAVY_COPY_BYTES)
    }

    /// Refuses an edit whose rebase would pass the transform budget with `conflict` and the
    /// head: the client rebases it locally (it has those versions) and sends it again.
    pub fn check_work(&self, base: u64, ops: &Op, older: Option<&[Op]>) -> Result<(), Refusal> {
        let work = self.transform_work(base, ops, older);
        if work <= self.config.max_transform_work {
            return Ok(());
        }
        let head = self.version;
        Err(Refusal {
            version: Some(head),
            ..Refusal::new(
                ErrorCode::Conflict,
                format!(
                    "an edit of {} components based on {base} is too far behind the head {head} \
                     to transform here; rebase it onto {head} and send it again",
                    ops.len()
                ),
            )
        })
    }

    fn too_large(&self) -> Refusal {
        Refusal::new(
            ErrorCode::TooLarge,
            format!(
                "the document would pass {} bytes of JSON",
                self.config.max_doc_bytes
            ),
        )
    }

    /// Whether the document, with the edit just applied (`ops_json`, undone by `inverse`),
    /// stays within `max_doc_bytes`. The size moves by the edit's estimated growth (what it
    /// writes minus what its inverse would put back); only when that passes the cap is the
    /// document measured, at most once per version.
    fn check_size(&mut self, ops_json: &str, inverse: &Op) -> Result<(), Refusal> {
        let max = self.config.max_doc_bytes;
        let grown = ops_json.len() as i64 - json_len(inverse) as i64;
        let mut bytes = self.doc_bytes.saturating_add_signed(grown as isize);
        if bytes > max && self.bytes_measured_at != self.version {
            bytes = json_len(&self.doc);
            self.doc_bytes = bytes.saturating_add_signed(-grown as isize);
            self.bytes_measured_at = self.version;
        }
        if bytes > max {
            return Err(self.too_large());
        }
        self.doc_bytes = bytes;
        Ok(())
    }

    /// Applies a version another node committed (it is durable already). Returns its inverse;
    /// the op is [`head_op`](SessionCore::head_op).
    pub fn apply_committed(&mut self, o: &StoredOp) -> Result<Op, String> {
        if o.version != self.version + 1 {
            return Err(format!("version {} follows {}", o.version, self.version));
        }
        if self.sealed.is_some() {
            return self.apply_committed_sealed(o);
        }
        let op: Op = serde_json::from_str(&o.ops).map_err(|e| format!("op {}: {e}", o.version))?;
        let doc = &mut self.doc;
        let inverse = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op.apply(doc)))
            .map_err(|_| format!("op {}: the OT engine panicked", o.version))?
            .map_err(|e| format!("op {}: {e}", o.version))?;
        let grown = o.ops.len() as i64 - json_len(&inverse) as i64;
        self.doc_bytes = self.doc_bytes.saturating_add_signed(grown as isize);
        let user: Arc<str> = Arc::from(o.user.as_str());
        self.version = o.version;
        self.last_time = o.time.unwrap_or(self.last_time);
        self.history.push_back(HistEntry {
            op,
            user: user.clone(),
            time: o.time,
            sealed: None,
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
            let gone = self.history.pop_front();
            self.hist_start += 1;
            if let (
                Some(s),
                Some(HistEntry {
                    sealed: Some(e), ..
                }),
            ) = (&mut self.sealed, gone)
            {
                s.forgot(&e);
            }
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
        self.sealed.is_none()
            && self.version - self.snapshot_version >= self.config.snapshot_every_ops
    }

    /// The head as a snapshot, if it moved since the last one (never in an encrypted session:
    /// its snapshots are the clients', `client_snapshot`).
    pub fn snapshot_if_moved(&self) -> Option<Snapshot> {
        (self.sealed.is_none() && self.version != self.snapshot_version).then(|| self.snapshot())
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: self.version,
            state: serde_json::to_string(&self.doc).unwrap_or_else(|_| "null".to_owned()),
        }
    }

    /// The document's size as JSON, as far as the core knows (see `check_size`).
    pub fn doc_bytes(&self) -> usize {
        self.doc_bytes
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
        // Checked after the rebase, which moves paths, and before anything changes.
        let depth = op.depth();
        if depth > MAX_DOC_DEPTH {
            return Err(Refusal::new(
                ErrorCode::TooLarge,
                format!(
                    "the edit nests {depth} levels deep; documents hold at most {MAX_DOC_DEPTH}"
                ),
            ));
        }
        op.apply(doc)
            .map(|inverse| (op, inverse))
            .map_err(|e| Refusal::new(ErrorCode::BadRequest, e.to_string()))
    }));
    match outcome {
        Ok(r) => r,
        Err(_) => Err(Refusal {
            broken: true,
            ..Refusal::new(ErrorCode::Internal, "the edit could not be processed")
        }),
    }
}

/// Bytes of `v` as JSON, counted without building the text.
pub fn json_len<T: serde::Serialize + ?Sized>(v: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

mod sealed;
#[cfg(test)]
mod tests;

pub use sealed::{SealedEdit, parse_sealed};

/// The document at the last of `ops`, replayed from `base` (a snapshot or checkpoint; the empty
/// document when `None`): ops must follow it version by version. `each` sees every op applied.
/// Returns the document and its version.
pub fn replay_ops(
    base: Option<&Snapshot>,
    ops: Vec<StoredOp>,
    mut each: impl FnMut(StoredOp, Op),
) -> Result<(Value, u64), String> {
    let (mut doc, mut version) = match base {
        // Any depth: a document written before depth was capped must still load.
        Some(s) => (
            Value::from_json_str(&s.state).map_err(|e| format!("snapshot: {e}"))?,
            s.version,
        ),
        None => (Value::new_document(), 0),
    };
    for o in ops {
        if o.version != version + 1 {
            return Err(format!("version {} follows {version}", o.version));
        }
        let op: Op = serde_json::from_str(&o.ops).map_err(|e| format!("op {}: {e}", o.version))?;
        op.apply(&mut doc)
            .map_err(|e| format!("op {}: {e}", o.version))?;
        version = o.version;
        each(o, op);
    }
    Ok((doc, version))
}
