//! The blind sequencer of an end-to-end encrypted session (DESIGN §9.4): the same core orders
//! sealed payloads it cannot read. An edit is taken only on the head (a client rebases the rest
//! itself), under the session's key epoch, and gets the next value of a hash chain over every
//! stored payload (`montage_protocol::sealed::chain_next`) that clients check. The document
//! stays empty and history entries carry empty ops, so everything that follows an edit
//! (idempotency, durability, broadcasting, forwarding to a home node) runs unchanged.

use std::collections::VecDeque;
use std::sync::Arc;

use montage_ot::{Op, Value};
use montage_protocol::sealed::{
    GENESIS_CHAIN, Payload, Sealed, SealedSnapshot, chain_hex, chain_next, parse_chain,
};
use montage_protocol::{ErrorCode, encode_stored_op};

use super::{Applied, CoreConfig, Edit, HistEntry, Refusal, SessionCore, json_len};
use crate::store::{Loaded, Snapshot, StoredOp};

/// What a join replays may weigh this many times `--max-doc-bytes` between client snapshots: the
/// server can't make snapshots of what it can't read.
const SEALED_BUDGET: usize = 4;

/// What a stored payload costs a join besides its bytes: the entry around it (version, user,
/// time, key epoch, 64 hex digits of chain). Counted so that tiny payloads can't pile up
/// without bound under a budget of bytes.
const ENTRY_COST: usize = 160;

/// A payload's weight against [`SEALED_BUDGET`].
fn cost(data: &str) -> usize {
    data.len() + ENTRY_COST
}

/// A sealed edit or snapshot as a client sent it.
pub type SealedEdit = Payload;

/// What an encrypted session keeps beside the history.
#[derive(Debug)]
pub(super) struct SealedState {
    /// The chain value of version `hist_start - 1` (the genesis value before version 1).
    base_chain: [u8; 32],
    /// The newest client snapshot.
    snapshot: Option<SealedSnapshot>,
}

impl SealedState {
    /// A history entry fell off the front: its chain value is the new base.
    pub(super) fn forgot(&mut self, e: &Sealed) {
        if let Some(c) = parse_chain(&e.chain) {
            self.base_chain = c;
        }
    }
}

/// A stored sealed body (an op row's or a snapshot's text).
pub fn parse_sealed(text: &str, what: &str) -> Result<Sealed, String> {
    serde_json::from_str(text).map_err(|e| format!("{what}: not a sealed payload ({e})"))
}

impl<A> SessionCore<A> {
    /// An encrypted session from its newest client snapshot and the payloads after it; the chain
    /// is recomputed over every one of them, so a row changed in the store shows here.
    pub(super) fn replay_sealed(
        id: Arc<str>,
        l: Loaded,
        config: CoreConfig,
    ) -> Result<Self, String> {
        let keep = config.history_keep.max(1);
        let snapshot = match &l.snapshot {
            Some(s) => {
                let sealed = parse_sealed(&s.state, "snapshot")?;
                Some(SealedSnapshot {
                    version: s.version,
                    data: sealed.data,
                    key_epoch: sealed.key_epoch,
                    chain: sealed.chain,
                })
            }
            None => None,
        };
        let (mut version, mut chain) = match &snapshot {
            Some(s) => (
                s.version,
                parse_chain(&s.chain).ok_or("snapshot: its chain value is not hex")?,
            ),
            None => (0, GENESIS_CHAIN),
        };
        let mut base_chain = chain;
        // What a join replays: the snapshot and every payload after it (`apply_sealed`).
        let mut payload_bytes = snapshot.as_ref().map_or(0, |s| cost(&s.data));
        let mut last_time = l.snapshot_time.unwrap_or(0);
        let mut history: VecDeque<HistEntry> = VecDeque::new();
        for o in l.ops {
            if o.version != version + 1 {
                return Err(format!("version {} follows {version}", o.version));
            }
            let sealed = parse_sealed(&o.ops, &format!("op {}", o.version))?;
            let next = chain_next(&chain, o.version, sealed.key_epoch, &sealed.data);
            if chain_hex(&next) != sealed.chain {
                return Err(format!("op {}: the chain does not continue", o.version));
            }
            chain = next;
            payload_bytes += cost(&sealed.data);
            version = o.version;
            last_time = o.time.unwrap_or(last_time);
            history.push_back(HistEntry {
                op: Op::default(),
                user: Arc::from(o.user),
                time: o.time,
                sealed: Some(Arc::new(sealed)),
            });
            if history.len() > keep
                && let Some(HistEntry {
                    sealed: Some(e), ..
                }) = history.pop_front()
            {
                base_chain = parse_chain(&e.chain).unwrap_or(base_chain);
            }
        }
        let doc = Value::new_document();
        let doc_bytes = json_len(&doc) + payload_bytes;
        Ok(SessionCore {
            id,
            meta: l.meta,
            doc,
            version,
            hist_start: version + 1 - history.len() as u64,
            history,
            snapshot_version: snapshot.as_ref().map_or(0, |s| s.version),
            committed: version,
            seqs: Default::default(),
            pending: VecDeque::new(),
            config,
            doc_bytes,
            bytes_measured_at: version,
            last_time,
            sealed: Some(SealedState {
                base_chain,
                snapshot,
            }),
        })
    }

    /// Whether this is an encrypted session.
    pub fn is_sealed(&self) -> bool {
        self.sealed.is_some()
    }

    /// The newest client snapshot of an encrypted session.
    pub fn client_snapshot(&self) -> Option<&SealedSnapshot> {
        self.sealed.as_ref()?.snapshot.as_ref()
    }

    /// The chain value of `version` (hex), when it is in memory.
    pub fn chain_at(&self, version: u64) -> Option<String> {
        let s = self.sealed.as_ref()?;
        if version + 1 == self.hist_start {
            return Some(chain_hex(&s.base_chain));
        }
        let i = version.checked_sub(self.hist_start)?;
        let e = self.history.get(usize::try_from(i).ok()?)?;
        e.sealed.as_ref().map(|x| x.chain.clone())
    }

    fn head_chain(&self) -> [u8; 32] {
        let base = self.sealed.as_ref().map_or(GENESIS_CHAIN, |s| s.base_chain);
        self.history
            .back()
            .and_then(|h| h.sealed.as_ref())
            .and_then(|s| parse_chain(&s.chain))
            .unwrap_or(base)
    }

    /// A payload must be sealed under the session's key epoch. One under a retired epoch is a
    /// `conflict` with the head, like a stale base: the client seals it again with the new key
    /// (it heard `key_rotated` first) and resends.
    fn check_key_epoch(&self, key_epoch: u64) -> Result<(), Refusal> {
        let now = self.meta.key_epoch;
        if key_epoch == now {
            return Ok(());
        }
        if key_epoch > now {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                format!("key epoch {key_epoch} is ahead of the session's, {now}"),
            ));
        }
        Err(Refusal {
            version: Some(self.version),
            ..Refusal::new(
                ErrorCode::Conflict,
                format!(
                    "key epoch {key_epoch} is retired: the session's key moved to epoch {now}; \
                     seal it again with the new key"
                ),
            )
        })
    }

    /// Orders a sealed edit as the new head: only on the head (`conflict` with it otherwise,
    /// and the client rebases locally) and under the session's key epoch. The server reads
    /// nothing of it but its length.
    pub fn apply_sealed(&mut self, edit: Edit, payload: SealedEdit) -> Result<Applied, Refusal> {
        let head = self.version;
        if edit.base != head {
            if edit.base > head {
                return Err(Refusal::new(
                    ErrorCode::BadRequest,
                    format!("base {} is ahead of the head {head}", edit.base),
                ));
            }
            return Err(Refusal {
                version: Some(head),
                ..Refusal::new(
                    ErrorCode::Conflict,
                    format!(
                        "an encrypted session takes edits on the head only: base {} is behind \
                         {head}; rebase onto {head} and seal again",
                        edit.base
                    ),
                )
            });
        }
        self.check_key_epoch(payload.key_epoch)?;
        // The payloads of history count against the document size limit, so a session can't
        // grow without bound where the server can't see what it holds.
        let grown = cost(&payload.data);
        if self.doc_bytes.saturating_add(grown)
            > self.config.max_doc_bytes.saturating_mul(SEALED_BUDGET)
        {
            return Err(Refusal::new(
                ErrorCode::TooLarge,
                "the session's payloads since its last snapshot pass the size limit; store a \
                 snapshot (`snapshot`) first",
            ));
        }
        let version = head + 1;
        let chain = chain_next(
            &self.head_chain(),
            version,
            payload.key_epoch,
            &payload.data,
        );
        let sealed = Arc::new(Sealed {
            data: payload.data,
            key_epoch: payload.key_epoch,
            chain: chain_hex(&chain),
        });
        let body = serde_json::to_string(&*sealed).unwrap_or_default();
        self.doc_bytes += grown;
        self.version = version;
        self.last_time = self.last_time.max(edit.now_ms);
        let broadcast = encode_stored_op(&self.id, version, &edit.user, &body);
        self.history.push_back(HistEntry {
            op: Op::default(),
            user: edit.user.clone(),
            time: Some(self.last_time),
            sealed: Some(sealed),
        });
        let write = self.appended(edit.user, edit.client, edit.seq, version, body);
        Ok(Applied {
            version,
            inverse: Op::default(),
            write,
            broadcast,
        })
    }

    /// A sealed version another node committed; its chain value must follow this node's.
    pub(super) fn apply_committed_sealed(&mut self, o: &StoredOp) -> Result<Op, String> {
        let sealed = parse_sealed(&o.ops, &format!("op {}", o.version))?;
        let next = chain_next(
            &self.head_chain(),
            o.version,
            sealed.key_epoch,
            &sealed.data,
        );
        if chain_hex(&next) != sealed.chain {
            return Err(format!("op {}: the chain does not continue", o.version));
        }
        let user: Arc<str> = Arc::from(o.user.as_str());
        self.doc_bytes += cost(&sealed.data);
        self.version = o.version;
        self.last_time = o.time.unwrap_or(self.last_time);
        self.history.push_back(HistEntry {
            op: Op::default(),
            user: user.clone(),
            time: o.time,
            sealed: Some(Arc::new(sealed)),
        });
        self.committed = o.version;
        if let Some(s) = self.seqs.get_mut(&(user, Arc::from(o.client.as_str()))) {
            s.recent.push_back((o.seq, o.version));
        }
        self.trim();
        Ok(Op::default())
    }

    /// A client's encrypted snapshot of `version`, checked and made into the row to store: the
    /// version must be durable and newer than the stored snapshot, its chain value still in
    /// memory, and the key epoch the session's. Becomes what joins start from once stored.
    pub fn take_client_snapshot(
        &mut self,
        version: u64,
        payload: SealedEdit,
    ) -> Result<Snapshot, Refusal> {
        if self.sealed.is_none() {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                "snapshots are sent only in encrypted sessions",
            ));
        }
        if version == 0 {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                "version 0 is the empty document: nothing to snapshot",
            ));
        }
        if version > self.committed {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                format!(
                    "version {version} is not durable yet (the head is {})",
                    self.committed
                ),
            ));
        }
        if version <= self.snapshot_version {
            return Err(Refusal::new(
                ErrorCode::Conflict,
                format!(
                    "a snapshot of version {} is stored already",
                    self.snapshot_version
                ),
            ));
        }
        self.check_key_epoch(payload.key_epoch)?;
        let Some(chain) = self.chain_at(version) else {
            return Err(Refusal::new(
                ErrorCode::Conflict,
                format!("version {version} is too old to snapshot here; snapshot the head"),
            ));
        };
        let sealed = Sealed {
            data: payload.data,
            key_epoch: payload.key_epoch,
            chain,
        };
        let state = serde_json::to_string(&sealed).unwrap_or_default();
        // What joins replay shrinks to the versions after it.
        let after: usize = self
            .history
            .iter()
            .skip((version + 1).saturating_sub(self.hist_start) as usize)
            .filter_map(|h| h.sealed.as_ref().map(|s| cost(&s.data)))
            .sum();
        self.doc_bytes = json_len(&self.doc) + cost(&sealed.data) + after;
        if let Some(s) = &mut self.sealed {
            s.snapshot = Some(SealedSnapshot {
                version,
                data: sealed.data,
                key_epoch: sealed.key_epoch,
                chain: sealed.chain,
            });
        }
        self.snapshot_version = version;
        Ok(Snapshot { version, state })
    }

    /// The session's key epoch moved: payloads must be sealed under `key_epoch` from now on.
    pub fn set_key_epoch(&mut self, key_epoch: u64) {
        self.meta.key_epoch = self.meta.key_epoch.max(key_epoch);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use montage_protocol::Role;

    use super::*;
    use crate::store::{SessionMeta, Write};

    fn loaded(snapshot: Option<Snapshot>, ops: Vec<StoredOp>) -> Loaded {
        Loaded {
            meta: SessionMeta {
                owner: "alice".into(),
                link_role: Role::Removed,
                roles: HashMap::new(),
                title: None,
                encrypted: true,
                key_epoch: 0,
            },
            snapshot,
            ops,
            snapshot_time: None,
        }
    }

    fn config() -> CoreConfig {
        CoreConfig {
            history_keep: 3,
            snapshot_every_ops: 2,
            max_doc_bytes: 1 << 20,
            max_transform_work: 1_000,
        }
    }

    fn core(l: Loaded) -> SessionCore<u64> {
        SessionCore::load(Arc::from("s"), l, config()).unwrap()
    }

    fn edit(seq: u64, base: u64) -> Edit {
        Edit {
            user: Arc::from("alice"),
            client: Arc::from("c"),
            seq,
            base,
            ops: Op::default(),
            now_ms: 1_000,
        }
    }

    fn payload(data: &str) -> SealedEdit {
        SealedEdit {
            data: data.into(),
            key_epoch: 0,
        }
    }

    /// Applies and commits `n` sealed edits; their stored rows.
    fn write(c: &mut SessionCore<u64>, n: u64) -> Vec<StoredOp> {
        (0..n)
            .map(|_| {
                let v = c.version;
                let a = c.apply_sealed(edit(v + 1, v), payload("AAAA")).unwrap();
                c.committed_through(a.version);
                let Write::Op { op, .. } = a.write else {
                    panic!()
                };
                op
            })
            .collect()
    }

    #[test]
    fn sealed_edits_are_taken_on_the_head_only_and_chained() {
        let mut c = core(loaded(None, Vec::new()));
        assert!(c.is_sealed());
        let a = c.apply_sealed(edit(1, 0), payload("AAAA")).unwrap();
        assert_eq!(a.version, 1);
        let want = chain_hex(&chain_next(&GENESIS_CHAIN, 1, 0, "AAAA"));
        assert_eq!(c.chain_at(1), Some(want.clone()));
        assert_eq!(c.chain_at(0), Some(chain_hex(&GENESIS_CHAIN)));
        // Stored and relayed byte for byte, with the chain value.
        let Write::Op { op, .. } = &a.write else {
            panic!()
        };
        let stored = parse_sealed(&op.ops, "row").unwrap();
        assert_eq!(
            (stored.data.as_str(), stored.chain.as_str()),
            ("AAAA", &*want)
        );
        let frame: serde_json::Value = serde_json::from_str(&a.broadcast).unwrap();
        assert_eq!(frame["data"], "AAAA");
        assert_eq!(frame["chain"], want.as_str());
        assert!(frame.get("ops").is_none());
        // A stale base is a conflict carrying the head; a base ahead is a bad request.
        let r = c.apply_sealed(edit(2, 0), payload("BBBB")).unwrap_err();
        assert_eq!((r.code, r.version), (ErrorCode::Conflict, Some(1)));
        let r = c.apply_sealed(edit(2, 5), payload("BBBB")).unwrap_err();
        assert_eq!(r.code, ErrorCode::BadRequest);
        assert_eq!(c.version, 1, "refusals change nothing");
    }

    #[test]
    fn a_retired_key_epoch_is_a_conflict_and_one_ahead_is_refused() {
        let mut c = core(loaded(None, Vec::new()));
        c.set_key_epoch(2);
        let r = c.apply_sealed(edit(1, 0), payload("AAAA")).unwrap_err();
        assert_eq!((r.code, r.version), (ErrorCode::Conflict, Some(0)));
        assert!(r.message.contains("retired"), "{}", r.message);
        let ahead = SealedEdit {
            data: "AAAA".into(),
            key_epoch: 3,
        };
        assert_eq!(
            c.apply_sealed(edit(1, 0), ahead).unwrap_err().code,
            ErrorCode::BadRequest
        );
        let now = SealedEdit {
            data: "AAAA".into(),
            key_epoch: 2,
        };
        assert_eq!(c.apply_sealed(edit(1, 0), now).unwrap().version, 1);
    }

    #[test]
    fn the_server_makes_no_snapshots_and_takes_the_clients() {
        let mut c = core(loaded(None, Vec::new()));
        let rows = write(&mut c, 5);
        assert!(!c.snapshot_overdue() && c.snapshot_if_moved().is_none());
        assert!(c.take_client_snapshot(0, payload("SNAP")).is_err());
        assert_eq!(
            c.take_client_snapshot(6, payload("SNAP")).unwrap_err().code,
            ErrorCode::BadRequest,
            "not durable"
        );
        // History keeps 3 versions: 1 is too old to know its chain value.
        assert_eq!(
            c.take_client_snapshot(1, payload("SNAP")).unwrap_err().code,
            ErrorCode::Conflict
        );
        let snap = c.take_client_snapshot(4, payload("SNAP")).unwrap();
        assert_eq!(snap.version, 4);
        let s = c.client_snapshot().unwrap();
        assert_eq!((s.version, s.chain.clone()), (4, c.chain_at(4).unwrap()));
        assert_eq!(
            c.take_client_snapshot(3, payload("OLD=")).unwrap_err().code,
            ErrorCode::Conflict,
            "an older one than stored"
        );
        // Loading from it and the row after it gives the same head and chain.
        let again = core(loaded(Some(snap), rows[4..].to_vec()));
        assert_eq!(again.version, 5);
        assert_eq!(again.chain_at(5), c.chain_at(5));
        assert_eq!(again.client_snapshot().map(|s| s.version), Some(4));
    }

    #[test]
    fn a_changed_row_or_another_nodes_broken_chain_is_found() {
        let mut c = core(loaded(None, Vec::new()));
        let mut rows = write(&mut c, 3);
        let ok = core(loaded(None, rows.clone()));
        assert_eq!(ok.chain_at(3), c.chain_at(3));
        // A payload changed in the store: replay stops at it.
        rows[1].ops = rows[1].ops.replace("AAAA", "AAAB");
        let err = SessionCore::<u64>::load(Arc::from("s"), loaded(None, rows.clone()), config())
            .unwrap_err();
        assert!(err.contains("op 2"), "{err}");
        // The same from the bus: another node's version must continue this node's chain.
        let mut d = core(loaded(None, Vec::new()));
        let good = write(&mut core(loaded(None, Vec::new())), 1);
        d.apply_committed(&good[0]).unwrap();
        assert!(d.apply_committed(&rows[1]).is_err());
    }
}
