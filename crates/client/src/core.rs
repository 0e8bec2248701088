//! The sans-I/O client half of OT for one session: the local replica, the edit in flight, the
//! pending edits, the bridge that transforms incoming edits past them, reconnect catch-up and
//! per-user selective undo. No sockets, clocks or files: server messages go in as values and
//! messages to send come out as values, so tests drive it step by step.

use std::collections::{BTreeMap, VecDeque};

use montage_ot::{Component, Op, Side, Value};
use montage_protocol::{
    ClientMessage, CreateOptions, ErrorCode, OpEntry, Participant, Role, ServerMessage, StateRef,
};
use serde::{Deserialize, Serialize};

use crate::sealed::{E2e, Keyring, SealError, SessionKey};
use crate::{Error, Event, Result};

/// SHA-256 as lowercase hex (`StateRef::sha256`).
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Undo entries kept per session; the oldest fall off. Every entry is transformed past every
/// later edit, so this bounds the cost per edit.
pub const UNDO_LIMIT: usize = 200;

/// The edit the server has (maybe) received and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    pub seq: u64,
    /// The server version it was made on.
    pub base: u64,
    /// Exactly what was sent: a resend after a reconnect must repeat it byte for byte with
    /// the same `base` and `seq`, so the server can recognise or transform it.
    pub sent: Op,
    /// The same edit as it stands on the local replica, transformed past the server edits
    /// received since (what pending edits and incoming edits are transformed against).
    pub local: Op,
    /// In an encrypted session: `sent` sealed (its `data` and key epoch), made when it is
    /// first sent and repeated byte for byte by a resend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<(String, u64)>,
}

/// Where the session stands with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// No connection, or the join was not answered yet.
    Offline,
    /// `join` sent on the current connection.
    Joining,
    /// Joined: edits flow.
    Live,
}

/// The part of a session that survives an app restart (the offline file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub session: String,
    pub client: String,
    pub next_seq: u64,
    pub version: u64,
    pub doc: Value,
    pub inflight: Option<InFlight>,
    pub pending: Vec<Op>,
    #[serde(default)]
    pub undo: Vec<Op>,
    #[serde(default)]
    pub redo: Vec<Op>,
    /// An encrypted session's chain value at `version` (hex), to go on checking from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
}

/// A `joined` whose state is downloaded over HTTP (`state_ref`), and the session's messages
/// that came after it, held until the state is here.
#[derive(Debug)]
struct Download {
    joined: ServerMessage,
    after: VecDeque<ServerMessage>,
}

/// Messages held behind a state download at most; past them the download starts over from a
/// newer version (a join), rather than memory growing with a busy session on a slow link.
const MAX_HELD_BEHIND_DOWNLOAD: usize = 20_000;

/// State downloads that may fail in a row before a join asks for the state inline.
const MAX_DOWNLOAD_FAILURES: u32 = 2;

/// What to do after the server refused this session's join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A passing refusal (`rate_limited`, `internal`: the session is reloading or the server
    /// is busy): join again after a pause.
    Retry,
    /// The server could not serve `since` (ahead of its head): join again for the whole state.
    Resync,
    /// For good (`forbidden`, `not_found`, …): the session is [`gone`](SessionCore::gone).
    Final,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Edit,
    Undo,
    Redo,
}

/// One session's client state. See the module docs.
#[derive(Debug)]
pub struct SessionCore {
    session: String,
    client: String,
    next_seq: u64,
    /// Whether `doc` is a replica of the server's (joined once, or restored).
    synced: bool,
    doc: Value,
    /// The last server version applied to `doc`.
    version: u64,
    inflight: Option<InFlight>,
    pending: VecDeque<Op>,
    /// Compose everything typed while an edit is in flight into one pending edit (the usual
    /// Jupiter client). Off: each edit is sent on its own, in order (trace replays).
    compose: bool,
    undo: Vec<Op>,
    redo: Vec<Op>,
    link: Link,
    /// The seq of the in-flight edit once it was sent on the current connection.
    sent_on_link: Option<u64>,
    /// After a reconnect with an edit in flight: the server edits received since the rejoin,
    /// held until the resend is acked, because one of them may be that very edit (applied
    /// before the drop, its ack lost). The ack's version says which.
    catchup: Option<VecDeque<(u64, String, Op)>>,
    /// The replica diverged or the in-flight edit was refused: the next join must fetch the
    /// whole state.
    needs_reset: bool,
    /// Versions were missed: join again at once from this replica's version.
    rejoin: bool,
    role: Option<Role>,
    participants: BTreeMap<String, Participant>,
    /// The session's link role and title, as of the last `joined` or `link_role_changed`.
    link_role: Option<Role>,
    title: Option<String>,
    /// The `since` of the last join sent.
    joined_since: Option<u64>,
    /// This connection is in the session (a `joined` came on it).
    joined_here: bool,
    /// Why the session can no longer be reached (join refused for good, access lost, deleted).
    gone: Option<(ErrorCode, String)>,
    /// An encrypted session's keys and chain (`set_keys`).
    e2e: Option<E2e>,
    /// A payload of an encrypted session did not open or its chain broke: nothing more of the
    /// session is applied.
    undecryptable: Option<SealError>,
    /// The chain value an offline file kept for `version`, until the keys are set.
    saved_chain: Option<String>,
    /// A large state being downloaded (`joined.state_ref`).
    download: Option<Download>,
    /// Downloads failed since the session last joined: past [`MAX_DOWNLOAD_FAILURES`] joins ask
    /// for the state inline, so a download that can't succeed (a proxy that blocks it) can't
    /// loop.
    download_failures: u32,
}

impl SessionCore {
    pub fn new(session: impl Into<String>, client: impl Into<String>) -> SessionCore {
        SessionCore {
            session: session.into(),
            client: client.into(),
            next_seq: 1,
            synced: false,
            doc: Value::new_document(),
            version: 0,
            inflight: None,
            pending: VecDeque::new(),
            compose: true,
            undo: Vec::new(),
            redo: Vec::new(),
            link: Link::Offline,
            sent_on_link: None,
            catchup: None,
            needs_reset: false,
            rejoin: false,
            role: None,
            participants: BTreeMap::new(),
            link_role: None,
            title: None,
            joined_since: None,
            joined_here: false,
            gone: None,
            e2e: None,
            undecryptable: None,
            saved_chain: None,
            download: None,
            download_failures: 0,
        }
    }

    /// Makes this an encrypted session's core (DESIGN §9.4): edits, snapshots and comments are
    /// sealed with `keys`, and what arrives is opened and its chain checked. A join of a missing
    /// session creates it encrypted.
    pub fn set_keys(&mut self, keys: Keyring) {
        match &mut self.e2e {
            Some(e) => e.keys.merge(keys),
            None => {
                let mut e = E2e::new(keys);
                if let Some(c) = self
                    .saved_chain
                    .take()
                    .and_then(|c| montage_protocol::sealed::parse_chain(&c))
                {
                    e.record(self.version, c);
                }
                self.e2e = Some(e);
            }
        }
    }

    /// Adds the key of a new key epoch (after `key_rotated`).
    pub fn add_key(&mut self, epoch: u64, key: SessionKey) {
        if let Some(e) = &mut self.e2e {
            e.keys.add(epoch, key);
        }
    }

    /// An encrypted session's keys.
    pub fn keys(&self) -> Option<&Keyring> {
        self.e2e.as_ref().map(|e| &e.keys)
    }

    /// Whether this core seals what it sends.
    pub fn is_encrypted(&self) -> bool {
        self.e2e.is_some()
    }

    /// The key epoch the server takes now, in an encrypted session.
    pub fn key_epoch(&self) -> Option<u64> {
        self.e2e.as_ref().map(|e| e.key_epoch)
    }

    /// Why the session's payloads could not be opened, if they could not.
    pub fn undecryptable(&self) -> Option<&SealError> {
        self.undecryptable.as_ref()
    }

    /// Sends every edit on its own instead of composing what is typed meanwhile.
    pub fn set_compose(&mut self, compose: bool) {
        self.compose = compose;
    }

    pub fn restore(saved: Saved) -> SessionCore {
        let mut c = SessionCore::new(saved.session, saved.client);
        c.next_seq = saved.next_seq;
        c.version = saved.version;
        c.doc = saved.doc;
        c.inflight = saved.inflight;
        c.pending = saved.pending.into();
        c.undo = saved.undo;
        c.redo = saved.redo;
        c.synced = true;
        c.saved_chain = saved.chain;
        c
    }

    pub fn save(&self) -> Saved {
        Saved {
            session: self.session.clone(),
            client: self.client.clone(),
            next_seq: self.next_seq,
            version: self.version,
            doc: self.doc.clone(),
            inflight: self.inflight.clone(),
            pending: self.pending.iter().cloned().collect(),
            undo: self.undo.clone(),
            redo: self.redo.clone(),
            chain: self
                .e2e
                .as_ref()
                .and_then(|e| e.chain_at(self.version))
                .map(|c| montage_protocol::sealed::chain_hex(&c)),
        }
    }

    pub fn session(&self) -> &str {
        &self.session
    }
    pub fn client(&self) -> &str {
        &self.client
    }
    pub fn doc(&self) -> &Value {
        &self.doc
    }
    pub fn version(&self) -> u64 {
        self.version
    }
    pub fn is_synced(&self) -> bool {
        self.synced
    }
    /// Versions were missed on a live connection: it must join again (from its version).
    pub fn needs_rejoin(&self) -> bool {
        self.rejoin
    }
    /// Whether to send a `join` now: the replica must be reset or missed versions, it is not
    /// live, and no answer is being completed (a state download: a new join would leave and
    /// throw the answer away, again and again).
    pub fn wants_join(&self) -> bool {
        (self.needs_reset || self.rejoin)
            && self.link != Link::Live
            && self.download.is_none()
            && self.gone.is_none()
    }
    pub fn is_live(&self) -> bool {
        self.link == Link::Live
    }
    pub fn inflight(&self) -> Option<&InFlight> {
        self.inflight.as_ref()
    }
    /// Local edits not yet acknowledged: the one in flight plus the pending ones.
    pub fn unacked(&self) -> usize {
        usize::from(self.inflight.is_some()) + self.pending.len()
    }
    pub fn role(&self) -> Option<Role> {
        self.role
    }
    pub fn participants(&self) -> Vec<Participant> {
        self.participants.values().cloned().collect()
    }
    /// The role a signed-in user without a grant gets (`none`: private), once joined.
    pub fn link_role(&self) -> Option<Role> {
        self.link_role
    }
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }
    /// Why the session can't be reached any more (the join was refused for good, I was taken
    /// out, or it was deleted): nothing is sent for it again.
    pub fn gone(&self) -> Option<&(ErrorCode, String)> {
        self.gone.as_ref()
    }
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    // ---- local edits ----

    /// Applies a local edit to the replica at once and queues it for the server. A locally
    /// invalid edit is refused and changes nothing.
    pub fn edit(&mut self, op: Op) -> Result<()> {
        self.apply_local(op, Kind::Edit)
    }

    /// Reverts my most recent not-yet-undone edit, transformed past everything since (mine and
    /// others'). Returns false when there is nothing left to undo.
    pub fn undo(&mut self) -> Result<bool> {
        self.pop_and_apply(Kind::Undo)
    }

    /// Re-applies the most recently undone edit. Returns false when there is nothing to redo.
    pub fn redo(&mut self) -> Result<bool> {
        self.pop_and_apply(Kind::Redo)
    }

    fn pop_and_apply(&mut self, kind: Kind) -> Result<bool> {
        loop {
            let stack = if kind == Kind::Undo {
                &mut self.undo
            } else {
                &mut self.redo
            };
            let Some(op) = stack.pop() else {
                return Ok(false);
            };
            // Its whole target was deleted by a later edit: nothing of it is left to revert.
            if op.is_noop() {
                continue;
            }
            self.apply_local(op, kind)?;
            return Ok(true);
        }
    }

    fn apply_local(&mut self, op: Op, kind: Kind) -> Result<()> {
        if let Some((code, message)) = &self.gone {
            return Err(Error::Server {
                code: *code,
                message: message.clone(),
            });
        }
        if !self.synced {
            return Err(Error::NotJoined {
                session: self.session.clone(),
            });
        }
        if op.is_noop() {
            return Ok(());
        }
        let needs_before = op
            .components()
            .iter()
            .any(|c| matches!(c, Component::Rotate { .. } | Component::Adjust { .. }));
        let before = needs_before.then(|| self.doc.clone());
        let exact = op.apply(&mut self.doc)?;
        let inverse = match &before {
            Some(b) => narrow_inverse(&op, b).unwrap_or(exact),
            None => exact,
        };
        self.transform_stacks(&op);
        match kind {
            Kind::Edit => {
                self.redo.clear();
                push_bounded(&mut self.undo, inverse);
            }
            Kind::Undo => push_bounded(&mut self.redo, inverse),
            Kind::Redo => push_bounded(&mut self.undo, inverse),
        }
        match self.pending.back_mut() {
            Some(last) if self.compose => *last = last.compose(&op),
            _ => self.pending.push_back(op),
        }
        self.promote();
        Ok(())
    }

    /// An encrypted session with no payload yet gets one at once from the editor who opens it
    /// (its creator, on `join.create`): an empty edit sealed under its key. Whoever joins later
    /// opens it before making any edit of their own, so a wrong key shows at the join, as
    /// [`Error::Decrypt`], instead of writing a first payload nobody else can open.
    fn write_key_check(&mut self) {
        if self.e2e.is_some()
            && self.version == 0
            && self.inflight.is_none()
            && self.pending.is_empty()
            && self.role.is_some_and(|r| r >= Role::Editor)
        {
            self.pending.push_back(Op::default());
        }
    }

    /// Nothing in flight and the link is up: the first pending edit goes in flight now, based
    /// on the current version (what the reference client's flush does after an edit or an
    /// ack). Offline, edits stay pending so they compose into one.
    fn promote(&mut self) {
        if self.link != Link::Live || self.inflight.is_some() {
            return;
        }
        if let Some(op) = self.pending.pop_front() {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.inflight = Some(InFlight {
                seq,
                base: self.version,
                sent: op.clone(),
                local: op,
                sealed: None,
            });
        }
    }

    /// Every stored inverse moves past an edit applied after it (it will be the later one).
    fn transform_stacks(&mut self, applied: &Op) {
        for u in self.undo.iter_mut().chain(self.redo.iter_mut()) {
            *u = u.transform(applied, Side::Right);
        }
    }

    // ---- connection lifecycle ----

    /// The connection dropped: the in-flight edit must be resent after the rejoin.
    pub fn disconnected(&mut self) {
        self.link = Link::Offline;
        self.joined_here = false;
        self.sent_on_link = None;
        self.catchup = None;
        self.download = None;
    }

    /// The in-flight edit was not taken (`rate_limited`): send it again, unchanged.
    pub fn resend(&mut self) {
        self.sent_on_link = None;
    }

    /// Whether an edit is in flight but not yet sent on this connection.
    pub fn has_unsent(&self) -> bool {
        self.link == Link::Live
            && self
                .inflight
                .as_ref()
                .is_some_and(|f| self.sent_on_link != Some(f.seq))
    }

    /// The `leave` to send before the next `join`, if that join must fetch the whole state on
    /// a connection already in the session: a repeated join is answered without the state
    /// (PROTOCOL.md), so a reset leaves first.
    pub fn leave_for_reset(&mut self) -> Option<ClientMessage> {
        let reset = !self.synced || self.needs_reset;
        if !(self.joined_here && reset) {
            return None;
        }
        self.joined_here = false;
        Some(ClientMessage::Leave {
            session: self.session.clone(),
        })
    }

    /// The `join` to send on a fresh connection (or to reset a diverged replica, or to get
    /// missed versions).
    pub fn join_message(&mut self) -> ClientMessage {
        self.link = Link::Joining;
        self.rejoin = false;
        self.sent_on_link = None;
        self.catchup = None;
        self.download = None;
        let since = (self.synced && !self.needs_reset).then_some(self.version);
        self.joined_since = since;
        ClientMessage::Join {
            session: self.session.clone(),
            client: self.client.clone(),
            since,
            // Missed edits composed are only safe to take with nothing in flight: an in-flight
            // edit is resent on its old base and transformed by the server edit by edit, so
            // its local copy must see the same edits one by one (docs/OT.md §10.2).
            compact: since.is_some() && self.inflight.is_none() && self.e2e.is_none(),
            // Ranges (several versions composed into one `op`) likewise: a resent edit may come
            // back inside one as someone else's after a drop, and could not be told apart.
            ranges: self.inflight.is_none() && self.e2e.is_none(),
            // A large state comes as a reference to download (`download`), in resumable
            // pieces, instead of one frame that a slow link takes minutes over.
            state_ref: self.e2e.is_none() && self.download_failures < MAX_DOWNLOAD_FAILURES,
            create: self
                .e2e
                .is_some()
                .then_some(CreateOptions { encrypted: true }),
        }
    }

    /// The next `op` to send, if any: the in-flight edit, once per connection. Returns
    /// `(message, seq)`.
    pub fn poll_send(&mut self) -> Option<(ClientMessage, u64)> {
        if self.link != Link::Live {
            return None;
        }
        self.promote();
        let f = self.inflight.as_mut()?;
        if self.sent_on_link == Some(f.seq) {
            return None;
        }
        let (ops, data, key_epoch) = match &self.e2e {
            None => (f.sent.clone(), None, 0),
            Some(e) => {
                if f.sealed.is_none() {
                    let plain = serde_json::to_vec(&f.sent).unwrap_or_default();
                    // Without the key of the session's epoch the edit waits (`add_key`).
                    f.sealed = Some(e.seal_edit(&self.session, f.base, &plain).ok()?);
                }
                let (data, epoch) = f.sealed.clone()?;
                (Op::default(), Some(data), epoch)
            }
        };
        self.sent_on_link = Some(f.seq);
        Some((
            ClientMessage::Op {
                session: self.session.clone(),
                base: f.base,
                seq: f.seq,
                ops,
                data,
                key_epoch,
            },
            f.seq,
        ))
    }

    /// Versions between the snapshots an encrypted session's clients store.
    pub const SNAPSHOT_EVERY: u64 = 100;

    /// In an encrypted session, a sealed snapshot of the replica when one is due: every
    /// [`SNAPSHOT_EVERY`](Self::SNAPSHOT_EVERY) versions, sent by an editor with nothing
    /// unacknowledged (the replica is then exactly the server's version), so joins replay
    /// little.
    pub fn poll_snapshot(&mut self) -> Option<ClientMessage> {
        let e = self.e2e.as_mut()?;
        let due = self.link == Link::Live
            && self.inflight.is_none()
            && self.pending.is_empty()
            && self.catchup.is_none()
            && self.role.is_some_and(|r| r >= Role::Editor)
            && self.version >= e.snapshot_version + Self::SNAPSHOT_EVERY;
        if !due {
            return None;
        }
        let plain = serde_json::to_vec(&self.doc).unwrap_or_default();
        let (data, key_epoch) = e.seal_snapshot(&self.session, self.version, &plain).ok()?;
        e.snapshot_version = self.version;
        Some(ClientMessage::Snapshot {
            session: self.session.clone(),
            version: self.version,
            data,
            key_epoch,
        })
    }

    // ---- large states ----

    /// The state to download before this session goes on, if a `joined` named one
    /// (`state_ref`): `(version, reference)`. Give the bytes to [`downloaded`](Self::downloaded).
    pub fn download(&self) -> Option<(u64, &StateRef)> {
        match &self.download.as_ref()?.joined {
            ServerMessage::Joined {
                version,
                state_ref: Some(r),
                ..
            } => Some((*version, r)),
            _ => None,
        }
    }

    /// The downloaded state of [`download`](Self::download): checked against its size and
    /// hash, it answers the join, then the messages held behind it apply.
    pub fn downloaded(&mut self, bytes: &[u8]) -> Vec<Event> {
        let Some(Download { mut joined, after }) = self.download.take() else {
            return Vec::new();
        };
        let ServerMessage::Joined {
            state, state_ref, ..
        } = &mut joined
        else {
            return Vec::new();
        };
        let want = state_ref.take();
        let sha = sha256_hex(bytes);
        let value = match want {
            Some(r) if r.bytes != bytes.len() as u64 || r.sha256 != sha => Err(format!(
                "downloaded state is {} bytes with SHA-256 {sha}; the server said {} bytes, {}",
                bytes.len(),
                r.bytes,
                r.sha256
            )),
            _ => serde_json::from_slice::<Value>(bytes).map_err(|e| e.to_string()),
        };
        match value {
            Ok(v) => *state = Some(v),
            Err(message) => return self.download_failed(message),
        }
        let mut ev = self.receive(joined);
        for m in after {
            ev.extend(self.receive(m));
        }
        ev
    }

    /// The download of [`download`](Self::download) failed for good: join again (a new state,
    /// or the missed edits if this replica is synced).
    pub fn download_failed(&mut self, message: String) -> Vec<Event> {
        self.download = None;
        self.download_failures += 1;
        self.link = Link::Offline;
        self.rejoin = true;
        vec![Event::Error {
            code: ErrorCode::Internal,
            message: format!("downloading the session's state: {message}; joining again"),
        }]
    }

    // ---- server messages ----

    /// Handles one server message for this session; returns what to report to the app.
    pub fn receive(&mut self, msg: ServerMessage) -> Vec<Event> {
        let mut ev = Vec::new();
        if self.undecryptable.is_some() {
            return ev;
        }
        let msg = match self.unseal(msg, &mut ev) {
            Ok(m) => m,
            Err(e) => {
                let message = e.to_string();
                self.lose(ErrorCode::BadRequest, message.clone());
                self.undecryptable = Some(e);
                ev.push(Event::Undecryptable { message });
                return ev;
            }
        };
        if let ServerMessage::Joined {
            state: None,
            state_ref: Some(_),
            ..
        } = &msg
        {
            // Held until its state is downloaded (`download`). The server counts this
            // connection in the session already: a join for a whole state leaves first.
            self.joined_here = true;
            self.download = Some(Download {
                joined: msg,
                after: VecDeque::new(),
            });
            return ev;
        }
        if let Some(d) = &mut self.download {
            if d.after.len() >= MAX_HELD_BEHIND_DOWNLOAD {
                return self.download_failed("the session moved on too far meanwhile".into());
            }
            d.after.push_back(msg);
            return ev;
        }
        match msg {
            ServerMessage::Joined {
                version,
                state,
                role,
                participants,
                ops,
                delta,
                link_role,
                title,
                ..
            } => {
                self.joined_here = true;
                self.download_failures = 0;
                self.role = Some(role);
                self.link_role = Some(link_role);
                self.title = title;
                self.participants = participants
                    .into_iter()
                    .map(|p| (p.user.clone(), p))
                    .collect();
                match (state, ops, delta) {
                    (Some(state), _, _) => {
                        if self.inflight.is_some() || !self.pending.is_empty() {
                            if self.synced && !self.needs_reset {
                                // More history missed than the server sends as ops: local
                                // edits can't be transformed without it.
                                ev.push(Event::Error {
                                    code: ErrorCode::Conflict,
                                    message: format!(
                                        "{} unacknowledged local edits dropped: the server sent a snapshot instead of the missed edits",
                                        self.unacked()
                                    ),
                                });
                            }
                            self.inflight = None;
                            self.pending.clear();
                        }
                        self.doc = state;
                        self.version = version;
                        self.undo.clear();
                        self.redo.clear();
                        self.synced = true;
                        self.needs_reset = false;
                    }
                    (None, _, Some(delta)) => {
                        // Every missed edit as one (asked for with nothing in flight).
                        let op = delta.expand();
                        if self.inflight.is_some() || delta.base_version != self.version {
                            self.needs_reset = true;
                            self.link = Link::Offline;
                            ev.push(Event::Error {
                                code: ErrorCode::Internal,
                                message: "a compact catch-up that does not fit; resyncing".into(),
                            });
                            return ev;
                        }
                        self.bridge(version, String::new(), op, &mut ev);
                    }
                    (None, ops, None) => {
                        let ops = ops.unwrap_or_default();
                        if self.inflight.is_some() {
                            self.catchup = Some(
                                ops.into_iter()
                                    .map(|e| (e.version, e.user, e.ops))
                                    .collect(),
                            );
                        } else {
                            for e in ops {
                                self.bridge(e.version, e.user, e.ops, &mut ev);
                            }
                        }
                    }
                }
                self.link = Link::Live;
                self.write_key_check();
                self.promote();
                ev.push(Event::Joined {
                    version: self.version,
                    role,
                });
            }
            ServerMessage::Ack { seq, version, .. } => {
                let mine = self.inflight.as_ref().is_some_and(|f| f.seq == seq);
                if mine && self.catchup.is_none() && version > self.version + 1 {
                    // Versions before my edit's were missed (the server sends every one before
                    // the ack): join again from this replica's version, as for a gap in `op`s.
                    // The edit stays in flight; the rejoin's catch-up and resend settle it.
                    if self.link == Link::Live {
                        self.link = Link::Offline;
                        self.rejoin = true;
                    }
                    return ev;
                }
                if mine {
                    let held = self.catchup.take().unwrap_or_default();
                    let mut acked = false;
                    for (v, user, op) in held {
                        if v == version {
                            // My own edit, applied before the drop: the ack stands for it.
                            self.acked(seq, version, &mut ev);
                            acked = true;
                        } else {
                            if v > version && !acked {
                                self.acked(seq, version, &mut ev);
                                acked = true;
                            }
                            self.bridge(v, user, op, &mut ev);
                        }
                    }
                    if !acked {
                        self.acked(seq, version, &mut ev);
                    }
                }
            }
            ServerMessage::Op {
                from,
                version,
                user,
                ops,
                ..
            } => {
                let first = from.unwrap_or(version);
                let gap = match &self.catchup {
                    // Held until the resend's ack (which never asked for ranges).
                    Some(_) => first != version,
                    None => first > version || first != self.version + 1,
                };
                if gap && version > self.version {
                    // Versions that do not start right after this replica's (a range, or one
                    // `op` after a missed one): some were lost on the way. The replica is still
                    // right as of its version, so it joins again from there (`since`) and gets
                    // the missed ones; local edits stay. Frames until that answer are dropped:
                    // the answer carries them.
                    if self.link == Link::Live {
                        self.link = Link::Offline;
                        self.rejoin = true;
                    }
                    return ev;
                }
                if let Some(held) = &mut self.catchup {
                    held.push_back((version, user, ops));
                } else {
                    self.bridge(version, user, ops, &mut ev);
                }
            }
            ServerMessage::Presence { user, data, .. } => {
                if let Some(p) = self.participants.get_mut(&user) {
                    p.presence = Some(data.clone());
                }
                ev.push(Event::Presence { user, data })
            }
            ServerMessage::ParticipantJoined {
                user,
                role,
                name,
                color,
                ..
            } => {
                self.participants.insert(
                    user.clone(),
                    Participant {
                        user: user.clone(),
                        role,
                        online: true,
                        name,
                        color,
                        presence: None,
                    },
                );
                ev.push(Event::ParticipantJoined { user, role });
            }
            ServerMessage::ParticipantLeft { user, .. } => {
                if let Some(p) = self.participants.get_mut(&user) {
                    p.online = false;
                    p.presence = None;
                }
                ev.push(Event::ParticipantLeft { user });
            }
            ServerMessage::RoleChanged { user, role, .. } => {
                if let Some(p) = self.participants.get_mut(&user) {
                    p.role = role;
                }
                ev.push(Event::RoleChanged { user, role });
            }
            ServerMessage::Error { code, message, .. } => ev.push(Event::Error { code, message }),
            ServerMessage::CommentAdded { comment, .. } => ev.push(Event::CommentAdded(comment)),
            ServerMessage::CommentUpdated { comment, .. } => {
                ev.push(Event::CommentUpdated(comment))
            }
            ServerMessage::SuggestionAdded { suggestion, .. } => {
                ev.push(Event::SuggestionAdded(suggestion))
            }
            ServerMessage::SuggestionUpdated { suggestion, .. } => {
                ev.push(Event::SuggestionUpdated(suggestion))
            }
            ServerMessage::Task { task, .. } => ev.push(Event::Task(task)),
            ServerMessage::LinkRoleChanged { role, .. } => {
                self.link_role = Some(role);
                ev.push(Event::LinkRoleChanged { role })
            }
            ServerMessage::SessionDeleted { .. } => {
                self.lose(ErrorCode::NotFound, "the session was deleted".into());
                ev.push(Event::SessionDeleted)
            }
            ServerMessage::Tier { .. }
            | ServerMessage::KeyRotated { .. }
            | ServerMessage::Notification { .. }
            | ServerMessage::Preview { .. }
            | ServerMessage::Authed { .. }
            | ServerMessage::TokenExpiring { .. } => {}
        }
        ev
    }

    /// An encrypted session's message made plain (anything else as it is): sealed edits opened
    /// and their chain checked, a join's snapshot and entries turned into the state or the
    /// ops the rest of the core takes, my acks' chain values checked, comments opened.
    fn unseal(
        &mut self,
        mut msg: ServerMessage,
        ev: &mut Vec<Event>,
    ) -> std::result::Result<ServerMessage, SealError> {
        let session = self.session.clone();
        let encrypted_join = matches!(
            msg,
            ServerMessage::Joined {
                encrypted: true,
                ..
            }
        );
        let Some(e) = &mut self.e2e else {
            if encrypted_join {
                return Err(SealError::Malformed(format!(
                    "session {session} is end-to-end encrypted: join it with its key"
                )));
            }
            return Ok(msg);
        };
        let open_op = |e: &mut E2e, version, key_epoch, data: &str, chain: Option<&str>| {
            let plain = e.open_edit(&session, version, key_epoch, data, chain)?;
            serde_json::from_slice::<Op>(&plain).map_err(|err| {
                SealError::Malformed(format!("version {version} opened to no edit: {err}"))
            })
        };
        Ok(match msg {
            ServerMessage::Joined {
                session: s,
                version,
                role,
                participants,
                ops,
                link_role,
                title,
                encrypted,
                snapshot,
                whole,
                key_epoch,
                ..
            } => {
                if !encrypted {
                    return Err(SealError::Malformed(format!(
                        "session {session} is not end-to-end encrypted: join it without keys"
                    )));
                }
                e.key_epoch = key_epoch.unwrap_or(0);
                let mut doc = None;
                if let Some(snap) = &snapshot {
                    let plain = e.open_snapshot(&session, snap)?;
                    let v =
                        Value::from_json_str(&String::from_utf8_lossy(&plain)).map_err(|err| {
                            SealError::Malformed(format!(
                                "the snapshot opened to no document: {err}"
                            ))
                        })?;
                    doc = Some(v);
                } else if whole {
                    // The whole session from nothing: the chain starts at the genesis value.
                    // (Without `whole` the entries follow what this replica has: a `since`
                    // join, or a repeated join with none.)
                    e.record(0, montage_protocol::sealed::GENESIS_CHAIN);
                    doc = Some(Value::new_document());
                }
                let mut entries = Vec::new();
                for entry in ops.unwrap_or_default() {
                    let Some(data) = &entry.data else { continue };
                    let op = open_op(
                        e,
                        entry.version,
                        entry.key_epoch.unwrap_or(0),
                        data,
                        entry.chain.as_deref(),
                    )?;
                    entries.push(OpEntry {
                        ops: op,
                        data: None,
                        chain: None,
                        key_epoch: None,
                        ..entry
                    });
                }
                let (state, ops) = match doc {
                    // The state at `version`: the snapshot (or the empty document) and every
                    // entry after it.
                    Some(mut d) => {
                        for en in &entries {
                            en.ops.apply(&mut d).map_err(|err| {
                                SealError::Malformed(format!(
                                    "version {} does not apply: {err}",
                                    en.version
                                ))
                            })?;
                        }
                        (Some(d), None)
                    }
                    None => (None, Some(entries)),
                };
                ServerMessage::Joined {
                    session: s,
                    version,
                    state,
                    state_ref: None,
                    role,
                    participants,
                    ops,
                    delta: None,
                    link_role,
                    title,
                    encrypted,
                    snapshot: None,
                    key_epoch,
                    whole: false,
                }
            }
            ServerMessage::Op {
                session: s,
                version,
                user,
                data: Some(data),
                key_epoch,
                chain,
                ..
            } => {
                let ops = open_op(e, version, key_epoch.unwrap_or(0), &data, chain.as_deref())?;
                ServerMessage::Op {
                    session: s,
                    from: None,
                    version,
                    user,
                    ops,
                    data: None,
                    key_epoch: None,
                    chain: None,
                }
            }
            ServerMessage::Ack {
                seq,
                version,
                ref chain,
                ..
            } => {
                if let Some(f) = &self.inflight
                    && f.seq == seq
                    && let Some((data, epoch)) = &f.sealed
                {
                    e.acked(version, *epoch, data, chain.as_deref())?;
                }
                msg
            }
            ServerMessage::KeyRotated { key_epoch, .. } => {
                e.key_epoch = e.key_epoch.max(key_epoch);
                ev.push(Event::KeyRotated {
                    key_epoch,
                    have_key: e.keys.get(key_epoch).is_some(),
                });
                msg
            }
            ServerMessage::CommentAdded {
                ref mut comment, ..
            }
            | ServerMessage::CommentUpdated {
                ref mut comment, ..
            } => {
                open_comment_in(&e.keys, &session, comment, ev);
                msg
            }
            other => other,
        })
    }

    /// The server refused the edit numbered `seq` for good (`forbidden`, `bad_request`, …).
    /// The replica holds it and everything typed on top of it, so it is reset from the server:
    /// the next join fetches the whole state. Returns true if that edit was in flight.
    pub fn refused(&mut self, seq: u64) -> bool {
        if self.inflight.as_ref().is_none_or(|f| f.seq != seq) {
            return false;
        }
        self.inflight = None;
        self.pending.clear();
        self.catchup = None;
        self.needs_reset = true;
        self.link = Link::Offline;
        true
    }

    /// The server refused the in-flight edit `seq` as too costly to rebase there (`conflict`
    /// carrying the head version, docs/PROTOCOL.md "Limits"): it was not applied. Server edits held since a
    /// rejoin are applied now (none of them is this edit), and the edit, already transformed
    /// locally past every version this replica has, goes out again on the newest base under a
    /// new seq. Returns false if `seq` is not in flight.
    pub fn rebase_inflight(&mut self, seq: u64, ev: &mut Vec<Event>) -> bool {
        if self.inflight.as_ref().is_none_or(|f| f.seq != seq) {
            return false;
        }
        for (v, user, op) in self.catchup.take().unwrap_or_default() {
            self.bridge(v, user, op, ev);
        }
        // An encrypted session's key check beaten by another's: that one serves.
        if self.e2e.is_some()
            && self.inflight.as_ref().is_some_and(|f| f.local.is_noop())
            && self.version > 0
        {
            self.inflight = None;
            self.promote();
        }
        // A failed bridge took the link down for a reset; the edit waits for it like any other.
        if let Some(f) = &mut self.inflight {
            f.seq = self.next_seq;
            self.next_seq += 1;
            f.base = self.version;
            f.sent = f.local.clone();
            f.sealed = None;
        }
        self.sent_on_link = None;
        true
    }

    /// The server refused this session's join with `code`: retry, resync or give up (then the
    /// session is [`gone`](Self::gone) and the app hears [`Event::JoinRefused`]).
    pub fn join_refused(&mut self, code: ErrorCode, message: String) -> (Refusal, Vec<Event>) {
        self.link = Link::Offline;
        match code {
            ErrorCode::RateLimited | ErrorCode::Internal => (Refusal::Retry, Vec::new()),
            ErrorCode::BadRequest if self.joined_since.is_some() => {
                self.needs_reset = true;
                (Refusal::Resync, Vec::new())
            }
            _ => {
                self.lose(code, message.clone());
                (Refusal::Final, vec![Event::JoinRefused { code, message }])
            }
        }
    }

    /// The server took me out of the session (link access closed, removed, scope changed).
    pub fn access_lost(&mut self, message: String) -> Vec<Event> {
        self.lose(ErrorCode::Forbidden, message.clone());
        vec![Event::AccessLost { message }]
    }

    fn lose(&mut self, code: ErrorCode, message: String) {
        self.link = Link::Offline;
        self.sent_on_link = None;
        self.catchup = None;
        self.gone = Some((code, message));
    }

    /// Whether the replica must be refetched (after a refused edit or a divergence).
    pub fn needs_reset(&self) -> bool {
        self.needs_reset
    }

    fn acked(&mut self, seq: u64, version: u64, ev: &mut Vec<Event>) {
        self.inflight = None;
        self.version = version;
        self.promote();
        ev.push(Event::Ack { seq, version });
    }

    /// An edit the server ordered first: transformed past the in-flight edit and then each
    /// pending edit one at a time (never past a composition of them, OT.md §13 Q1), which are
    /// transformed past it in turn; then applied and reported.
    fn bridge(&mut self, version: u64, user: String, op: Op, ev: &mut Vec<Event>) {
        if version <= self.version {
            return; // seen already (a duplicate after a rejoin)
        }
        let mut incoming = op;
        if let Some(f) = &mut self.inflight {
            let (a, b) = incoming.transform_x(&f.local, Side::Left);
            incoming = a;
            f.local = b;
        }
        for p in self.pending.iter_mut() {
            let (a, b) = incoming.transform_x(p, Side::Left);
            incoming = a;
            *p = b;
        }
        if let Err(e) = incoming.apply_unchecked(&mut self.doc) {
            // Can't happen while TP1 holds; if it does, refetch rather than drift.
            ev.push(Event::Error {
                code: ErrorCode::Internal,
                message: format!("version {version} did not apply locally ({e}); resyncing"),
            });
            self.needs_reset = true;
            self.link = Link::Offline;
            return;
        }
        self.transform_stacks(&incoming);
        self.version = version;
        ev.push(Event::Edit {
            version,
            user,
            op: incoming,
        });
    }
}

/// What an encrypted session's comment holds inside its sealed `content`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SealedComment {
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<montage_protocol::Annotation>,
}

/// Opens a comment's sealed content in place (content and annotations); a comment that does
/// not open keeps its sealed text and the app hears why.
pub(crate) fn open_comment_in(
    keys: &Keyring,
    session: &str,
    comment: &mut montage_protocol::Comment,
    ev: &mut Vec<Event>,
) {
    let Some(opened) = crate::sealed::open_comment(keys, session, &comment.content) else {
        return;
    };
    match opened.and_then(|plain| {
        serde_json::from_slice::<SealedComment>(&plain)
            .map_err(|e| SealError::Malformed(format!("a comment opened to nothing readable: {e}")))
    }) {
        Ok(c) => {
            comment.content = c.content;
            comment.annotations = c.annotations;
        }
        Err(e) => ev.push(Event::Error {
            code: ErrorCode::BadRequest,
            message: format!("comment {}: {e}", comment.id),
        }),
    }
}

fn push_bounded(stack: &mut Vec<Op>, op: Op) {
    if stack.len() >= UNDO_LIMIT {
        stack.remove(0);
    }
    stack.push(op);
}

/// The inverse for undo: exact, except where the exact inverse deletes a container the edit
/// created (OT.md §13 Q3). Undoing the first rotation of a layer rotates back (`rotate −D`)
/// instead of deleting `rotation`, and undoing the first adjustment deletes that one
/// parameter instead of all of `adjust`, so a colleague's later rotation or contrast change
/// survives my undo.
pub fn narrow_inverse(op: &Op, before: &Value) -> montage_ot::Result<Op> {
    let mut scratch = before.clone();
    let mut parts: Vec<Vec<Component>> = Vec::with_capacity(op.len());
    for c in op.components() {
        let exact = Op::new(vec![c.clone()]).apply_unchecked(&mut scratch)?;
        let narrowed = match c {
            Component::Rotate { path, by } => vec![Component::Rotate {
                path: path.clone(),
                by: -by,
            }],
            Component::Adjust { path, param, .. } => {
                let container = path.child("adjust");
                exact
                    .components()
                    .iter()
                    .map(|ic| match ic {
                        Component::Del { path: p } if *p == container => {
                            Component::del(container.child(param.as_str()))
                        }
                        other => other.clone(),
                    })
                    .collect()
            }
            _ => exact.components().to_vec(),
        };
        parts.push(narrowed);
    }
    Ok(Op::new(parts.into_iter().rev().flatten().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use montage_ot::path;
    use montage_protocol::OpEntry;

    fn title(c: &SessionCore) -> String {
        c.doc()
            .get("title")
            .and_then(Value::as_text)
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    fn typ(pos: usize, s: &str) -> Op {
        Op::new(vec![Component::text_insert(path!["title"], pos, s)])
    }

    fn joined(version: u64, state: Option<Value>, ops: Option<Vec<OpEntry>>) -> ServerMessage {
        ServerMessage::Joined {
            session: "s".into(),
            version,
            state,
            state_ref: None,
            role: Role::Editor,
            participants: vec![],
            ops,
            delta: None,
            link_role: Role::Removed,
            title: None,
            encrypted: false,
            snapshot: None,
            key_epoch: None,
            whole: false,
        }
    }

    fn remote(version: u64, op: Op) -> ServerMessage {
        ServerMessage::Op {
            session: "s".into(),
            from: None,
            version,
            user: "bob".into(),
            ops: op,
            data: None,
            key_epoch: None,
            chain: None,
        }
    }

    fn ack(seq: u64, version: u64) -> ServerMessage {
        ServerMessage::Ack {
            session: "s".into(),
            seq,
            version,
            chain: None,
        }
    }

    fn live() -> SessionCore {
        let mut c = SessionCore::new("s", "c1");
        c.join_message();
        c.receive(joined(0, Some(Value::new_document()), None));
        c
    }

    fn sent(c: &mut SessionCore, _link: &mut Option<u64>) -> Option<(u64, u64, Op)> {
        c.poll_send().map(|(m, _)| match m {
            ClientMessage::Op { base, seq, ops, .. } => (base, seq, ops),
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn one_in_flight_rest_composed() {
        let mut c = live();
        let mut link = None;
        c.edit(typ(0, "a")).unwrap();
        assert_eq!(sent(&mut c, &mut link), Some((0, 1, typ(0, "a"))));
        c.edit(typ(1, "b")).unwrap();
        c.edit(typ(2, "c")).unwrap();
        assert_eq!(sent(&mut c, &mut link), None, "one in flight");
        assert_eq!(c.unacked(), 2);
        c.receive(ack(1, 1));
        assert_eq!(sent(&mut c, &mut link), Some((1, 2, typ(1, "bc"))));
        assert_eq!(title(&c), "abc");
    }

    #[test]
    fn incoming_is_bridged_past_inflight_and_pending() {
        let mut c = live();
        let mut link = None;
        c.edit(typ(0, "ab")).unwrap();
        sent(&mut c, &mut link);
        c.edit(typ(2, "cd")).unwrap();
        // Bob typed "X" at 0 on version 0, ordered first.
        c.receive(remote(1, typ(0, "X")));
        assert_eq!(title(&c), "Xabcd");
        c.receive(ack(1, 2));
        // The pending edit now sits after X and ab.
        assert_eq!(sent(&mut c, &mut link), Some((2, 2, typ(3, "cd"))));
    }

    #[test]
    fn invalid_edit_is_refused_and_changes_nothing() {
        let mut c = live();
        let bad = Op::new(vec![Component::del(path!["canvas", "layers", 3])]);
        assert!(matches!(c.edit(bad), Err(Error::InvalidEdit(_))));
        assert_eq!(c.unacked(), 0);
        assert_eq!(c.doc(), &Value::new_document());
    }

    #[test]
    fn resend_after_drop_uses_original_base_and_seq_and_skips_own_version() {
        let mut c = live();
        let mut link = None;
        c.edit(typ(0, "a")).unwrap();
        let first = sent(&mut c, &mut link).unwrap();
        c.edit(typ(1, "b")).unwrap();
        // Drop: the server applied "a" as version 2 after bob's version 1; the ack was lost.
        c.disconnected();
        link = None;
        match c.join_message() {
            ClientMessage::Join { since, compact, .. } => {
                assert_eq!(since, Some(0));
                assert!(
                    !compact,
                    "an edit in flight needs the missed edits one by one"
                );
            }
            other => panic!("{other:?}"),
        }
        let entries = vec![
            OpEntry {
                version: 1,
                user: "bob".into(),
                ops: typ(0, "X"),
                time: None,
                data: None,
                key_epoch: None,
                chain: None,
            },
            OpEntry {
                version: 2,
                user: "me".into(),
                ops: typ(1, "a"),
                time: None,
                data: None,
                key_epoch: None,
                chain: None,
            },
        ];
        c.receive(joined(2, None, Some(entries)));
        assert_eq!(
            sent(&mut c, &mut link),
            Some(first),
            "same base, seq and op"
        );
        c.receive(remote(3, typ(0, "Y")));
        c.receive(ack(1, 2));
        assert_eq!(c.version(), 3);
        assert_eq!(title(&c), "YXab");
        // "b" went in flight at the ack, based on version 2; the server moves it past Y.
        assert_eq!(sent(&mut c, &mut link), Some((2, 2, typ(2, "b"))));
    }

    #[test]
    fn a_range_applies_as_one_edit_and_a_gap_rejoins_from_the_replicas_version() {
        let mut c = live();
        match c.join_message() {
            ClientMessage::Join { ranges, .. } => assert!(ranges, "nothing in flight"),
            other => panic!("{other:?}"),
        }
        c.receive(joined(0, Some(Value::new_document()), None));
        // Versions 1..=3 composed into one (docs/PROTOCOL.md "Ranges").
        let mut range = remote(3, typ(0, "abc"));
        if let ServerMessage::Op { from, .. } = &mut range {
            *from = Some(1);
        }
        let ev = c.receive(range);
        assert!(
            ev.iter()
                .any(|e| matches!(e, Event::Edit { version: 3, .. })),
            "{ev:?}"
        );
        assert_eq!((c.version(), title(&c)), (3, "abc".to_owned()));
        // A local edit, then version 5 without 4: nothing is applied or dropped; the replica
        // joins again from version 3 and keeps its edit.
        c.edit(typ(3, "!")).unwrap();
        let ev = c.receive(remote(5, typ(0, "z")));
        assert!(ev.is_empty(), "{ev:?}");
        assert!(!c.is_live() && c.needs_rejoin());
        assert_eq!((c.version(), title(&c)), (3, "abc!".to_owned()));
        match c.join_message() {
            ClientMessage::Join { since, .. } => assert_eq!(since, Some(3)),
            other => panic!("{other:?}"),
        }
        assert!(!c.needs_rejoin());
        assert_eq!(c.unacked(), 1);
    }

    #[test]
    fn an_ack_past_a_missed_version_rejoins_and_keeps_the_edit_in_flight() {
        let mut c = live();
        let mut link = None;
        c.edit(typ(0, "a")).unwrap();
        let first = sent(&mut c, &mut link).unwrap();
        // Version 1 (bob's) never came; my edit is acked as 2.
        let ev = c.receive(ack(1, 2));
        assert!(ev.is_empty(), "{ev:?}");
        assert!(!c.is_live() && c.needs_rejoin());
        assert_eq!((c.version(), c.unacked()), (0, 1));
        match c.join_message() {
            ClientMessage::Join { since, .. } => assert_eq!(since, Some(0)),
            other => panic!("{other:?}"),
        }
        let entries = [(1, "bob", typ(0, "X")), (2, "me", typ(1, "a"))]
            .into_iter()
            .map(|(version, user, ops)| OpEntry {
                version,
                user: user.into(),
                ops,
                time: None,
                data: None,
                key_epoch: None,
                chain: None,
            })
            .collect();
        c.receive(joined(2, None, Some(entries)));
        assert_eq!(sent(&mut c, &mut link), Some(first), "resent as it was");
        c.receive(ack(1, 2));
        assert_eq!((c.version(), c.unacked()), (2, 0));
        assert_eq!(title(&c), "Xa");
    }

    /// A `joined` naming a large state to download (`state_ref`).
    fn joined_by_ref(version: u64, state: &str) -> ServerMessage {
        let mut m = joined(version, None, None);
        if let ServerMessage::Joined { state_ref, .. } = &mut m {
            *state_ref = Some(StateRef {
                bytes: state.len() as u64,
                sha256: sha256_hex(state.as_bytes()),
            });
        }
        m
    }

    #[test]
    fn a_large_state_is_downloaded_then_the_ops_held_behind_it_apply() {
        let mut c = SessionCore::new("s", "c1");
        match c.join_message() {
            ClientMessage::Join { state_ref, .. } => assert!(state_ref),
            other => panic!("{other:?}"),
        }
        let mut doc = Value::new_document();
        typ(0, "big").apply(&mut doc).unwrap();
        let text = serde_json::to_string(&doc).unwrap();
        assert!(c.receive(joined_by_ref(7, &text)).is_empty());
        let (v, r) = c.download().expect("a download");
        assert_eq!((v, r.bytes), (7, text.len() as u64));
        // Not joined yet: what follows is held.
        assert!(!c.is_synced() && !c.is_live());
        assert!(c.receive(remote(8, typ(3, "!"))).is_empty());
        // Bytes that are not the announced ones: join again.
        let ev = c.downloaded(text.replace("big", "bag").as_bytes());
        assert!(matches!(ev.as_slice(), [Event::Error { .. }]), "{ev:?}");
        assert!(c.download().is_none() && c.needs_rejoin());
        // The join again leaves first (the server counts this connection in): a new answer.
        assert!(c.leave_for_reset().is_some());
        c.join_message();
        c.receive(joined_by_ref(7, &text));
        c.receive(remote(8, typ(3, "!")));
        let ev = c.downloaded(text.as_bytes());
        assert!(
            matches!(
                ev.as_slice(),
                [
                    Event::Joined { version: 7, .. },
                    Event::Edit { version: 8, .. }
                ]
            ),
            "{ev:?}"
        );
        assert!(c.is_live() && c.download().is_none());
        assert_eq!((c.version(), title(&c)), (8, "big!".to_owned()));

        // Downloads that keep failing (a proxy that blocks them): after two in a row the join
        // asks for the state inline; a join resets the count.
        let asks = |c: &mut SessionCore| match c.join_message() {
            ClientMessage::Join { state_ref, .. } => state_ref,
            other => panic!("{other:?}"),
        };
        let mut c = SessionCore::new("s", "c1");
        for _ in 0..2 {
            assert!(asks(&mut c));
            c.receive(joined_by_ref(7, &text));
            c.download_failed("blocked".into());
        }
        assert!(!asks(&mut c), "a third try asks for it inline");
        c.receive(joined(7, Some(doc.clone()), None));
        assert!(c.is_live());
        c.disconnected();
        assert!(asks(&mut c));
    }

    #[test]
    fn a_compact_catch_up_applies_as_one_edit_under_local_pending_ones() {
        let mut c = live();
        c.edit(typ(0, "a")).unwrap();
        let mut link = None;
        sent(&mut c, &mut link);
        c.receive(ack(1, 1));
        c.disconnected();
        match c.join_message() {
            ClientMessage::Join { since, compact, .. } => {
                assert_eq!(since, Some(1));
                assert!(compact, "nothing in flight");
            }
            other => panic!("{other:?}"),
        }
        // Typed while rejoining: pending, not in flight.
        c.edit(typ(1, "!")).unwrap();
        let missed: Vec<Op> = (0..20).map(|i| typ(i, "x")).collect();
        let delta = montage_ot::MediaDelta::new(1, missed).compress();
        let mut msg = joined(21, None, None);
        if let ServerMessage::Joined { delta: d, .. } = &mut msg {
            *d = Some(delta);
        }
        let ev = c.receive(msg);
        assert!(
            ev.iter()
                .any(|e| matches!(e, Event::Edit { version: 21, user, .. } if user.is_empty())),
            "{ev:?}"
        );
        assert_eq!(c.version(), 21);
        assert_eq!(title(&c), format!("{}a!", "x".repeat(20)));
        // The pending edit goes out on the new head, moved past the catch-up.
        assert_eq!(sent(&mut c, &mut link), Some((21, 2, typ(21, "!"))));

        // A delta from another base than the replica's can't be applied: resync.
        c.disconnected();
        c.join_message();
        let mut msg = joined(30, None, None);
        if let ServerMessage::Joined { delta: d, .. } = &mut msg {
            *d = Some(montage_ot::MediaDelta::new(5, vec![typ(0, "z")]).compress());
        }
        c.receive(msg);
        assert!(c.needs_reset());
    }

    #[test]
    fn resend_applied_fresh_after_rejoin() {
        let mut c = live();
        let mut link = None;
        c.edit(typ(0, "a")).unwrap();
        sent(&mut c, &mut link);
        c.disconnected();
        link = None;
        c.join_message();
        let entries = vec![OpEntry {
            version: 1,
            user: "bob".into(),
            ops: typ(0, "X"),
            time: None,
            data: None,
            key_epoch: None,
            chain: None,
        }];
        c.receive(joined(1, None, Some(entries)));
        assert!(sent(&mut c, &mut link).is_some());
        c.receive(ack(1, 2));
        assert_eq!((c.version(), title(&c)), (2, "Xa".to_owned()));
    }

    #[test]
    fn duplicated_acks_and_joins_change_nothing() {
        let mut c = live();
        let mut link = None;
        c.edit(typ(0, "a")).unwrap();
        sent(&mut c, &mut link);
        c.receive(ack(1, 1));
        c.receive(ack(1, 1));
        c.edit(typ(1, "b")).unwrap();
        assert_eq!(sent(&mut c, &mut link).map(|s| s.1), Some(2));
        c.receive(ack(1, 1)); // a stale duplicate: not the edit in flight
        assert_eq!((c.unacked(), c.version()), (1, 1));
        // The join was duplicated on the wire: a second answer with the same catch-up.
        let again = vec![OpEntry {
            version: 1,
            user: "me".into(),
            ops: typ(0, "a"),
            time: None,
            data: None,
            key_epoch: None,
            chain: None,
        }];
        c.receive(joined(1, None, Some(again)));
        c.receive(remote(2, typ(0, "X")));
        c.receive(ack(2, 3));
        assert_eq!(
            (c.version(), title(&c), c.unacked()),
            (3, "Xab".to_owned(), 0)
        );
    }

    #[test]
    fn undo_redo_selective() {
        let mut c = live();
        c.edit(typ(0, "abc")).unwrap();
        c.receive(remote(1, typ(0, "X"))); // before ack: bridged
        c.edit(typ(4, "d")).unwrap();
        assert_eq!(title(&c), "Xabcd");
        assert!(c.undo().unwrap());
        assert_eq!(title(&c), "Xabc");
        assert!(c.undo().unwrap());
        assert_eq!(title(&c), "X");
        assert!(c.redo().unwrap());
        assert_eq!(title(&c), "Xabc");
        assert!(!c.can_redo() || c.redo().unwrap());
        assert_eq!(title(&c), "Xabcd");
    }

    #[test]
    fn undo_of_first_rotate_and_adjust_is_narrow() {
        let mut c = live();
        let layer = Value::from_json(&serde_json::json!({
            "id":"l1","kind":"image","asset":"a","x":0,"y":0,"w":10,"h":10}));
        let mut link = None;
        c.edit(Op::new(vec![Component::ins(
            path!["canvas", "layers", 0],
            layer,
        )]))
        .unwrap();
        sent(&mut c, &mut link);
        c.receive(ack(1, 1));
        let l = path!["canvas", "layers", 0];
        c.edit(Op::new(vec![
            Component::Rotate {
                path: l.clone(),
                by: 90.0,
            },
            Component::Adjust {
                path: l.clone(),
                param: "contrast".into(),
                value: 0.5,
            },
        ]))
        .unwrap();
        sent(&mut c, &mut link);
        // A colleague rotates too and changes brightness, ordered before my edit.
        c.receive(remote(
            2,
            Op::new(vec![
                Component::Rotate {
                    path: l.clone(),
                    by: 10.0,
                },
                Component::Adjust {
                    path: l.clone(),
                    param: "brightness".into(),
                    value: 0.2,
                },
            ]),
        ));
        assert!(c.undo().unwrap());
        let layer = c.doc().at(l.segs()).unwrap();
        assert_eq!(layer.get("rotation").and_then(Value::as_f64), Some(10.0));
        let adjust = layer.get("adjust").unwrap();
        assert_eq!(adjust.get("brightness").and_then(Value::as_f64), Some(0.2));
        assert!(adjust.get("contrast").is_none());
    }

    #[test]
    fn refused_inflight_resets_from_server() {
        let mut c = live();
        let mut link = None;
        c.edit(typ(0, "a")).unwrap();
        let (_, seq, _) = sent(&mut c, &mut link).unwrap();
        c.edit(typ(1, "b")).unwrap();
        assert!(c.refused(seq));
        // The connection is still in the session: a join alone would bring no state.
        assert!(matches!(
            c.leave_for_reset(),
            Some(ClientMessage::Leave { .. })
        ));
        assert!(c.leave_for_reset().is_none(), "one leave");
        match c.join_message() {
            ClientMessage::Join { since, .. } => assert_eq!(since, None),
            other => panic!("{other:?}"),
        }
        c.receive(joined(0, Some(Value::new_document()), None));
        assert_eq!((title(&c), c.unacked()), (String::new(), 0));
    }

    #[test]
    fn an_edit_over_the_transform_budget_is_rebased_locally_and_resent() {
        let mut c = live();
        let mut link = None;
        c.edit(typ(0, "a")).unwrap();
        let (_, seq, _) = sent(&mut c, &mut link).unwrap();
        c.edit(typ(1, "b")).unwrap();
        // Bob's edit is ordered first; the server finds mine too costly to rebase.
        c.receive(remote(1, typ(0, "X")));
        let mut ev = Vec::new();
        assert!(c.rebase_inflight(seq, &mut ev));
        assert!(
            !c.rebase_inflight(seq, &mut ev),
            "the refused seq is not reused"
        );
        let (base, seq2, ops) = sent(&mut c, &mut link).expect("resent");
        assert_eq!((base, ops), (1, typ(1, "a")));
        assert!(seq2 > seq);
        c.receive(ack(seq2, 2));
        let (base, _, ops) = sent(&mut c, &mut link).expect("the pending edit follows");
        assert_eq!((base, ops), (2, typ(2, "b")));
        assert_eq!((title(&c), c.unacked()), ("Xab".to_string(), 1));
    }

    #[test]
    fn a_rebase_after_a_rejoin_applies_the_held_catch_up_first() {
        let mut c = live();
        let mut link = None;
        c.edit(typ(0, "a")).unwrap();
        let (_, seq, _) = sent(&mut c, &mut link).unwrap();
        c.disconnected();
        c.join_message();
        // The catch-up is held: it might contain my own edit, applied before the drop.
        let entry = |version, op| OpEntry {
            version,
            user: "bob".into(),
            ops: op,
            time: None,
            data: None,
            key_epoch: None,
            chain: None,
        };
        c.receive(joined(
            2,
            None,
            Some(vec![entry(1, typ(0, "X")), entry(2, typ(0, "Y"))]),
        ));
        sent(&mut c, &mut link).expect("resent as first sent");
        let mut ev = Vec::new();
        assert!(c.rebase_inflight(seq, &mut ev));
        assert_eq!(ev.len(), 2, "both held edits applied: {ev:?}");
        let (base, _, ops) = sent(&mut c, &mut link).expect("resent rebased");
        assert_eq!((base, ops), (2, typ(2, "a")));
        assert_eq!(title(&c), "YXa");
    }

    #[test]
    fn join_refusals_retry_resync_or_let_the_session_go() {
        let mut c = SessionCore::new("s", "c1");
        c.join_message();
        let (what, ev) = c.join_refused(ErrorCode::RateLimited, "slow down".into());
        assert_eq!((what, ev), (Refusal::Retry, vec![]));
        c.join_message();
        c.receive(joined(3, Some(Value::new_document()), None));
        c.edit(typ(0, "a")).unwrap();
        // A rejoin whose `since` the server can't serve: the whole state next time.
        c.disconnected();
        assert!(matches!(
            c.join_message(),
            ClientMessage::Join { since: Some(3), .. }
        ));
        let (what, _) = c.join_refused(ErrorCode::BadRequest, "since 3 is ahead".into());
        assert_eq!(what, Refusal::Resync);
        assert!(matches!(
            c.join_message(),
            ClientMessage::Join { since: None, .. }
        ));
        // No access: for good.
        let msg = "no access to session s: ask its owner to share it";
        let (what, ev) = c.join_refused(ErrorCode::Forbidden, msg.into());
        assert_eq!(what, Refusal::Final);
        assert_eq!(
            ev,
            vec![Event::JoinRefused {
                code: ErrorCode::Forbidden,
                message: msg.into()
            }]
        );
        assert_eq!(c.gone().map(|g| g.0), Some(ErrorCode::Forbidden));
        assert!(matches!(
            c.edit(typ(0, "b")),
            Err(Error::Server {
                code: ErrorCode::Forbidden,
                ..
            })
        ));
        assert_eq!(c.poll_send(), None);
    }

    #[test]
    fn link_role_title_and_deletion_are_tracked() {
        let mut c = SessionCore::new("s", "c1");
        c.join_message();
        let mut j = joined(0, Some(Value::new_document()), None);
        if let ServerMessage::Joined {
            link_role, title, ..
        } = &mut j
        {
            *link_role = Role::Viewer;
            *title = Some("Trailer".into());
        }
        c.receive(j);
        assert_eq!(
            (c.link_role(), c.title()),
            (Some(Role::Viewer), Some("Trailer"))
        );
        let ev = c.receive(ServerMessage::LinkRoleChanged {
            session: "s".into(),
            role: Role::Removed,
        });
        assert_eq!(
            ev,
            vec![Event::LinkRoleChanged {
                role: Role::Removed
            }]
        );
        assert_eq!(c.link_role(), Some(Role::Removed));
        assert!(c.gone().is_none(), "the owner is still in");
        let ev = c.receive(ServerMessage::SessionDeleted {
            session: "s".into(),
        });
        assert_eq!(ev, vec![Event::SessionDeleted]);
        assert_eq!(c.gone().map(|g| g.0), Some(ErrorCode::NotFound));
        assert!(!c.is_live());
    }

    #[test]
    fn saved_core_round_trips_through_json() {
        let mut c = live();
        let mut link = None;
        c.edit(typ(0, "a")).unwrap();
        sent(&mut c, &mut link);
        c.edit(typ(1, "b")).unwrap();
        let json = serde_json::to_string(&c.save()).unwrap();
        let back = SessionCore::restore(serde_json::from_str(&json).unwrap());
        assert_eq!(back.doc(), c.doc());
        assert_eq!(back.unacked(), 2);
        assert_eq!(back.inflight(), c.inflight());
    }
}
