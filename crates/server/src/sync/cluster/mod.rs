//! Sequencing across gateway nodes (DESIGN §5), as an extension of the session actor.
//!
//! Every node's actor for a session keeps doing what it does alone: transform an edit against
//! the history it knows, apply it, and hand version head+1 to the group committer. The shared
//! store's unique `(session, version)` key decides between nodes. When another node took the
//! version first, the committer reports a conflict and this module:
//!
//! 1. rolls the document back to the last committed version (each unconfirmed edit kept its
//!    inverse and the edit as the client sent it),
//! 2. catches up from the store (`ops_after`), forwarding those versions to its own clients,
//! 3. runs the unconfirmed edits again from their original base — the ordinary edit path
//!    transforms them past everything since — up to [`MAX_CONFLICT_RETRIES`] times each.
//!
//! Nothing is acked or broadcast before it is committed, so no client ever saw a rolled-back
//! version. Presence follows the same rule: carets and selections an unconfirmed edit moved get
//! their old values back with the rollback (unless the user sent a newer one since), so the
//! retry moves them once more and each committed edit moves them exactly once. A user who sent
//! presence after their own edit was first applied already shows it: its retry skips them. Commits of other nodes arrive on the bus and are applied in version order; a gap
//! (a lost bus message) or a base this node has not seen yet is filled from the store, so the bus
//! is never the only copy. Joins and state reads wait until nothing is unconfirmed and read the
//! store's head first, so a client that moves to another node finds every edit it was acked.

mod home;

pub use home::{ForwardOutcome, HomeReply, Homes, spawn_forward_dispatcher, spawn_renewals};

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use crate::sync::Frame;
use montage_ot::Op;
use montage_protocol::{
    ErrorCode, Participant as WireParticipant, Role, ServerMessage, encode, encode_stored_op,
    encode_with_rid,
};
use serde_json::Value as Json;

use super::actor::{Action, Actor, EditRequest};
use super::{SessionMsg, Sessions};
use crate::bus::{Bus, BusEvent};
use crate::error::{Error, Result};
use crate::presence::Moved;
use crate::store::{Store, StoredOp, Write};

/// Times one edit is re-sequenced after losing its version to another node before the client
/// gets `conflict` (and resends it from a fresh base).
pub const MAX_CONFLICT_RETRIES: u32 = 32;
/// Versions read from the store per catch-up query.
const CATCH_UP_PAGE: u64 = 1_000;
/// Out-of-order bus commits held while this node's own writes are in flight; past it they are
/// dropped and read from the store instead.
const MAX_BUFFERED: usize = 4_096;

/// An edit applied locally whose version is not committed yet.
pub(super) struct Unconfirmed {
    version: u64,
    /// Undoes the edit on the document right after it.
    inverse: Op,
    /// What the client sent, to run again from its base.
    base: u64,
    original: Op,
    conn: u64,
    seq: u64,
    rid: Option<Json>,
    received: Instant,
    attempts: u32,
    /// Who made it, and the presence it moved as it was before (put back on rollback).
    author: Arc<str>,
    presence_before: Vec<Moved>,
    /// The author sent presence after this edit was applied: it reflects the edit already.
    author_presence_after: bool,
}

/// The actor's cross-node state; `None` on a single node with its own store.
pub(super) struct Cluster {
    pub(super) bus: Arc<dyn Bus>,
    unconfirmed: VecDeque<Unconfirmed>,
    /// Commits of other nodes that arrived ahead of this node's head.
    buffered: BTreeMap<u64, StoredOp>,
    /// Messages that need a settled document (nothing unconfirmed).
    deferred: VecDeque<SessionMsg>,
    /// A write of ours lost its version: roll back, catch up and retry.
    resync_due: bool,
    /// Attempts of the edit being re-run (0 for a fresh one).
    retry_attempts: u32,
    /// The edit being re-run is one whose author's presence already reflects it.
    retry_author_presence_after: bool,
    /// Who is online on each other node (by node id), from their `Roster` events.
    remote: HashMap<String, Vec<WireParticipant>>,
    /// When each of those rosters last came: one not repeated in time is a dead node's.
    remote_seen: HashMap<String, Instant>,
    /// Home nodes (`home.rs`); `None` when every node sequences.
    pub(super) home: Option<home::HomeState>,
}

impl Cluster {
    pub(super) fn new(bus: Arc<dyn Bus>, homes: Option<Arc<Homes>>) -> Cluster {
        Cluster {
            home: homes.map(home::HomeState::new),
            bus,
            unconfirmed: VecDeque::new(),
            buffered: BTreeMap::new(),
            deferred: VecDeque::new(),
            resync_due: false,
            retry_attempts: 0,
            retry_author_presence_after: false,
            remote: HashMap::new(),
            remote_seen: HashMap::new(),
        }
    }
}

/// Commits `writes` as one transaction. A session whose append lost its version to another node
/// is taken out and the rest committed again, so one session's conflict never fails another
/// session's edits. Returns the outcome for the remaining writes and the sessions taken out.
pub(super) async fn commit_isolating_conflicts(
    store: &dyn Store,
    writes: &mut Vec<Write>,
) -> (Result<()>, HashSet<String>) {
    let mut conflicted = HashSet::new();
    loop {
        if writes.is_empty() {
            return (Ok(()), conflicted);
        }
        match store.commit(writes).await {
            Err(Error::VersionConflict { session, .. } | Error::Fenced { session, .. })
                if !conflicted.contains(&session) =>
            {
                writes.retain(|w| w.session() != session);
                conflicted.insert(session);
            }
            r => return (r, conflicted),
        }
    }
}

/// Forwards events from other nodes to the actors of sessions loaded here. A session that is not
/// loaded needs nothing: loading reads the store.
pub fn spawn_bus_dispatcher(sessions: Arc<Sessions>, bus: &dyn Bus) {
    let Some(mut rx) = bus.take_events() else {
        return;
    };
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if let BusEvent::Notification {
                user,
                session,
                frame,
            } = ev
            {
                sessions.notifier.deliver(&user, &session, frame);
                continue;
            }
            let id = ev.session().to_owned();
            let _ = sessions.send(&id, SessionMsg::Remote(ev), false).await;
        }
    });
}

impl Actor {
    fn settled(&self) -> bool {
        self.state.as_ref().is_none_or(|c| c.settled())
    }

    /// Looks at a message before the actor handles it: applies bus events, holds joins and reads
    /// until the document is settled, and reads the store's newer versions first for them (and
    /// for edits based on a version this node has not seen). Returns the message to handle.
    pub(super) async fn cluster_gate(&mut self, m: SessionMsg) -> Option<SessionMsg> {
        if self.cluster.is_none() {
            return (!matches!(m, SessionMsg::Remote(_))).then_some(m);
        }
        let m = match m {
            SessionMsg::Remote(ev) => {
                self.on_bus_event(ev).await;
                return None;
            }
            m => m,
        };
        let needs_head = match &m {
            // A restore's difference is taken from the head: the newest one there is.
            SessionMsg::Join { .. } | SessionMsg::GetState { .. } | SessionMsg::Restore { .. } => {
                true
            }
            SessionMsg::Op { base, .. } => self.state.as_ref().is_some_and(|d| *base > d.version),
            _ => false,
        };
        if !needs_head || self.broken || self.state.is_none() {
            return Some(m);
        }
        if !self.settled() {
            if let Some(cl) = &mut self.cluster {
                cl.deferred.push_back(m);
            }
            return None;
        }
        self.catch_up().await;
        Some(m)
    }

    /// Work that waits for a commit result or a settled document; runs after every event.
    pub(super) async fn cluster_tick(&mut self) {
        let committed = self.committed();
        let Some(cl) = &mut self.cluster else { return };
        while cl
            .unconfirmed
            .front()
            .is_some_and(|u| u.version <= committed)
        {
            cl.unconfirmed.pop_front();
        }
        if cl.resync_due {
            cl.resync_due = false;
            self.resync().await;
        }
        if !self.settled() || self.broken {
            return;
        }
        self.apply_buffered().await;
        loop {
            let Some(m) = self.cluster.as_mut().and_then(|c| c.deferred.pop_front()) else {
                break;
            };
            self.handle(m).await;
            if !self.settled() {
                break;
            }
        }
    }

    /// The committer says another node holds a version we wrote.
    pub(super) fn on_conflict(&mut self) {
        // Every later write of this epoch is refused by the committer; start a new one.
        self.epoch = self.sessions.next_generation.fetch_add(1, Relaxed);
        // Refused by the lease fence, most likely: ask the store who the home is now.
        self.home_unknown();
        self.snapshot_in_flight = false;
        if let Some(cl) = &mut self.cluster {
            cl.resync_due = true;
        }
    }

    /// Keeps what a conflict needs to undo and redo an edit applied as `version`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn track_unconfirmed(
        &mut self,
        version: u64,
        inverse: Op,
        base: u64,
        original: Op,
        conn: u64,
        seq: u64,
        rid: Option<Json>,
        received: Instant,
        author: Arc<str>,
        presence_before: Vec<Moved>,
    ) {
        if let Some(cl) = &mut self.cluster {
            let attempts = std::mem::take(&mut cl.retry_attempts);
            let author_presence_after = std::mem::take(&mut cl.retry_author_presence_after);
            cl.unconfirmed.push_back(Unconfirmed {
                version,
                inverse,
                base,
                original,
                conn,
                seq,
                rid,
                received,
                attempts,
                author,
                presence_before,
                author_presence_after,
            });
        }
    }

    /// Whether the edit being re-run must leave its author's presence alone.
    pub(super) fn retry_presence_seen(&self) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| c.retry_author_presence_after)
    }

    /// `user` sent new presence on `conn`: it replaces whatever unconfirmed edits moved, and it
    /// shows the unconfirmed edits that connection sent before it — not those of the user's
    /// other connections (another tab), which its caret has not seen.
    pub(super) fn cluster_presence_set(&mut self, user: &str, conn: u64) {
        let Some(cl) = &mut self.cluster else { return };
        for u in &mut cl.unconfirmed {
            u.presence_before.retain(|(x, _)| &**x != user);
            if &*u.author == user && u.conn == conn {
                u.author_presence_after = true;
            }
        }
    }

    /// Tells the other nodes' clients about a roster change or presence.
    pub(super) fn cluster_relay(&self, frame: &str, presence: bool) {
        if let Some(cl) = &self.cluster {
            cl.bus.publish(BusEvent::Relay {
                session: self.id.to_string(),
                presence,
                frame: frame.to_owned(),
            });
        }
    }

    /// Tells the other nodes who is online here, after a join or leave changed it. `query`
    /// asks them for theirs: this node just got its first participant and may know nobody.
    pub(super) fn cluster_roster(&self, query: bool) {
        let Some(cl) = &self.cluster else { return };
        let mut seen = HashSet::new();
        let participants = self
            .participants
            .values()
            .filter(|p| seen.insert(p.conn.user.clone()))
            .map(|p| {
                let rec = self.presence.get(&p.conn.user);
                WireParticipant {
                    user: p.conn.user.to_string(),
                    role: self.role_of(&p.conn.user),
                    online: true,
                    name: rec.and_then(|r| r.name.as_deref().map(str::to_owned)),
                    color: rec.map(|r| r.colour.clone()),
                    presence: None,
                }
            })
            .collect();
        cl.bus.publish(BusEvent::Roster {
            session: self.id.to_string(),
            node: cl.bus.node().to_owned(),
            participants,
            query,
        });
    }

    /// Users online on other nodes and not on this one, one entry each.
    pub(super) fn remote_online(&self) -> Vec<WireParticipant> {
        let Some(cl) = &self.cluster else {
            return Vec::new();
        };
        let mut seen = HashSet::new();
        let mut v: Vec<WireParticipant> = cl
            .remote
            .values()
            .flatten()
            .filter(|p| !self.online(&p.user) && seen.insert(p.user.as_str()))
            .map(|p| WireParticipant {
                role: self.role_of(&p.user),
                ..p.clone()
            })
            .collect();
        v.sort_by(|a, b| a.user.cmp(&b.user));
        v
    }

    /// Whether `user` is online on another node.
    pub(super) fn online_elsewhere(&self, user: &str) -> bool {
        self.cluster.as_ref().is_some_and(|cl| {
            cl.remote
                .values()
                .any(|ps| ps.iter().any(|p| p.user == user))
        })
    }

    fn role_of(&self, user: &str) -> Role {
        self.state
            .as_ref()
            .map_or(Role::Viewer, |d| d.meta.role_of(user))
    }

    /// Takes another node's roster; this node's clients hear of users who came online or went
    /// offline in the cluster as a whole.
    fn on_remote_roster(&mut self, node: String, participants: Vec<WireParticipant>, query: bool) {
        let before: HashSet<String> = self.remote_online().into_iter().map(|p| p.user).collect();
        if let Some(cl) = &mut self.cluster {
            if participants.is_empty() {
                cl.remote.remove(&node);
                cl.remote_seen.remove(&node);
            } else {
                cl.remote_seen.insert(node.clone(), Instant::now());
                cl.remote.insert(node, participants);
            }
        }
        let after = self.remote_online();
        for p in after.iter().filter(|p| !before.contains(&p.user)) {
            let ev = encode(&ServerMessage::ParticipantJoined {
                session: self.id.to_string(),
                user: p.user.clone(),
                role: p.role,
                name: p.name.clone(),
                color: p.color.clone(),
            });
            self.announce(&Frame::from(ev), None);
        }
        for user in before
            .iter()
            .filter(|u| !after.iter().any(|p| &p.user == *u))
        {
            if self.online(user) {
                continue;
            }
            let ev = encode(&ServerMessage::ParticipantLeft {
                session: self.id.to_string(),
                user: user.clone(),
            });
            self.announce(&Frame::from(ev), None);
        }
        if query && !self.participants.is_empty() {
            self.cluster_roster(false);
        }
    }

    /// Every `roster_refresh`: repeats this node's roster (while it has participants) and drops
    /// the rosters of nodes that stopped repeating theirs — a node killed without closing its
    /// sockets — so their users go offline here too.
    pub(super) fn cluster_heartbeat(&mut self) {
        let Some(cl) = &self.cluster else { return };
        let expiry = self.config.roster_refresh * 3;
        let dead: Vec<String> = cl
            .remote_seen
            .iter()
            .filter(|(_, at)| at.elapsed() > expiry)
            .map(|(node, _)| node.clone())
            .collect();
        if !self.participants.is_empty() {
            self.cluster_roster(false);
        }
        for node in dead {
            tracing::info!(session = %self.id, %node, "a node's roster expired");
            self.on_remote_roster(node, Vec::new(), false);
        }
    }

    /// Tells the other nodes a comment or suggestion changed (stored already), with the frame
    /// for their clients.
    pub(super) fn cluster_social(&self, frame: &str) {
        if let Some(cl) = &self.cluster {
            cl.bus.publish(BusEvent::Social {
                session: self.id.to_string(),
                frame: frame.to_owned(),
            });
        }
    }

    /// Tells the other nodes a role changed (stored already), with the frame for their clients.
    pub(super) fn cluster_role(&self, user: &str, role: Role, frame: &str) {
        if let Some(cl) = &self.cluster {
            cl.bus.publish(BusEvent::Role {
                session: self.id.to_string(),
                user: user.to_owned(),
                role: role.as_str().to_owned(),
                frame: frame.to_owned(),
            });
        }
    }

    async fn on_bus_event(&mut self, ev: BusEvent) {
        if self.broken || self.state.is_none() {
            return;
        }
        match ev {
            BusEvent::Committed {
                session: _,
                version,
                user,
                client,
                seq,
                ops,
                time,
            } => {
                let op = StoredOp {
                    version,
                    user,
                    client,
                    seq,
                    ops,
                    time,
                };
                let head = self.state.as_ref().map_or(0, |d| d.version);
                if version <= head {
                    // Known, or taken from one of our unconfirmed writes: that write conflicts
                    // and the retry reads the store.
                    return;
                }
                if let Some(cl) = &mut self.cluster
                    && cl.buffered.len() < MAX_BUFFERED
                {
                    cl.buffered.insert(version, op);
                }
                if self.settled() {
                    self.apply_buffered().await;
                }
            }
            BusEvent::Role {
                user, role, frame, ..
            } => {
                let Some(role) = Role::parse(&role) else {
                    tracing::warn!(session = %self.id, "bus role event with an unknown role");
                    return;
                };
                if let Some(doc) = &mut self.state {
                    doc.meta.roles.insert(user, role);
                }
                self.announce(&Frame::from(frame), None);
                self.revoke_lost_access();
            }
            BusEvent::Settings {
                link_role,
                title,
                key_epoch,
                ..
            } => {
                if let Some(k) = key_epoch {
                    self.key_rotated(k);
                }
                self.on_remote_settings(link_role, title)
            }
            BusEvent::Deleted { .. } => self.forget_deleted(),
            BusEvent::Roster {
                node,
                participants,
                query,
                ..
            } => self.on_remote_roster(node, participants, query),
            BusEvent::Social { frame, .. } => {
                // The records changed under this node's copy: read them again at next use, so
                // a change made here starts from what the other node stored.
                self.social = None;
                self.announce(&Frame::from(frame), None);
            }
            BusEvent::Relay {
                presence, frame, ..
            } => {
                let frame = Frame::from(frame);
                if presence {
                    self.relay_remote_presence(frame);
                } else {
                    self.announce(&frame, None);
                }
            }
            // Delivered by the dispatcher, never routed to a session.
            BusEvent::Notification { .. } => {}
        }
    }

    /// Applies buffered bus commits that follow the head; a gap is read from the store.
    async fn apply_buffered(&mut self) {
        loop {
            let head = self.state.as_ref().map_or(0, |d| d.version);
            let Some(cl) = &mut self.cluster else { return };
            while cl
                .buffered
                .first_key_value()
                .is_some_and(|(v, _)| *v <= head)
            {
                cl.buffered.pop_first();
            }
            let Some((&v, _)) = cl.buffered.first_key_value() else {
                return;
            };
            if v != head + 1 {
                // Missed bus messages: the store has them.
                cl.buffered.clear();
                self.catch_up().await;
                return;
            }
            let Some((_, op)) = cl.buffered.pop_first() else {
                return;
            };
            if let Err(reason) = self.apply_committed(op) {
                self.diverged(&reason);
                return;
            }
        }
    }

    /// Reads and applies every version after the head from the store. Only when settled.
    async fn catch_up(&mut self) {
        loop {
            if !self.settled() || self.broken {
                return;
            }
            let head = self.committed();
            let ops = match self.store.ops_after(&self.id, head, CATCH_UP_PAGE).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(session = %self.id, error = %e, "catch-up read failed");
                    return;
                }
            };
            let n = ops.len() as u64;
            for op in ops {
                if let Err(reason) = self.apply_committed(op) {
                    self.diverged(&reason);
                    return;
                }
            }
            if n < CATCH_UP_PAGE {
                return;
            }
        }
    }

    fn diverged(&mut self, reason: &str) {
        tracing::error!(session = %self.id, %reason, "a committed version did not apply; reloading");
        self.abandon();
    }

    /// Applies a version another node committed and forwards it to this node's clients.
    fn apply_committed(&mut self, o: StoredOp) -> std::result::Result<(), String> {
        let Some(core) = &mut self.state else {
            return Ok(());
        };
        let inverse = core.apply_committed(&o)?;
        // What waited for this version here (a restore or accepted suggestion the home
        // sequenced) runs once it is applied.
        let ready = core.committed_through(o.version);
        let version = o.version;
        let user: Arc<str> = Arc::from(o.user.as_str());
        // Carets and selections of this node's users follow the other node's edit too.
        let moved = self.after_apply(&user, &inverse, false);
        // An edit forwarded from here gets its ack instead of the `op`.
        let author = self.ack_forwarded(&o);
        let frame = Frame::from(encode_stored_op(&self.id, version, &o.user, &o.ops));
        self.broadcast_op(version, &user, &frame, author);
        for (v, action) in ready {
            self.run_action(v, action);
        }
        for (u, _) in moved {
            self.send_presence_of(&u);
        }
        self.sessions.publish_version(&self.id, version);
        Ok(())
    }

    /// Rolls back what is unconfirmed, catches up from the store and runs those edits again.
    async fn resync(&mut self) {
        let Some(cl) = &mut self.cluster else { return };
        let redo: Vec<Unconfirmed> = cl.unconfirmed.drain(..).collect();
        let committed = self.committed();
        let Some(core) = &mut self.state else { return };
        let lost = redo.iter().rev().filter(|u| u.version > committed);
        // Acks of the undone versions never went out; other replies carry no state (joins and
        // reads wait for a settled document) and go now.
        // A forwarded edit's answer is dropped with it (`not_home`: its node sends it again).
        let ready = match core.roll_back(lost.map(|u| &u.inverse), |a| {
            matches!(a, Action::Edit { .. } | Action::Forwarded { .. })
        }) {
            Ok(ready) => ready,
            Err(e) => {
                self.diverged(&format!(
                    "an unconfirmed edit could not be rolled back: {e}"
                ));
                return;
            }
        };
        // Presence those edits moved goes back too (latest first), so the retries move it once.
        for u in redo.iter().rev().filter(|u| u.version > committed) {
            for (user, before) in &u.presence_before {
                self.presence.restore(user, before);
            }
        }
        for (version, action) in ready {
            self.run_action(version, action);
        }
        self.catch_up().await;
        if self.broken {
            return;
        }
        for u in redo.into_iter().filter(|u| u.version > committed) {
            let Some(p) = self.participants.get(&u.conn) else {
                // Gone: the client resends it when it reconnects.
                continue;
            };
            let conn = p.conn.clone();
            if let Some(core) = self.state.as_ref().filter(|c| c.is_sealed()) {
                // A sealed edit is bound to the version it lost: the client seals it again.
                let refusal = super::core::Refusal {
                    version: Some(core.version),
                    ..super::core::Refusal::new(
                        ErrorCode::Conflict,
                        "another node took this version first; rebase and seal the edit again",
                    )
                };
                conn.send(encode_with_rid(&refusal.to_message(), u.rid.as_ref()));
                continue;
            }
            if u.attempts >= MAX_CONFLICT_RETRIES {
                conn.error(
                    ErrorCode::Conflict,
                    "edit lost its version to other nodes too often; resend it",
                    u.rid.as_ref(),
                );
                continue;
            }
            self.metrics.conflict_retries_total.inc();
            if let Some(cl) = &mut self.cluster {
                cl.retry_attempts = u.attempts + 1;
                cl.retry_author_presence_after = u.author_presence_after;
            }
            let req = EditRequest {
                user: conn.user.clone(),
                client: Arc::from(""),
                seq: u.seq,
                base: u.base,
                ops: u.original,
                sealed: None,
                rid: u.rid,
                received: u.received,
            };
            self.edit(conn, req).await;
            if let Some(cl) = &mut self.cluster {
                cl.retry_attempts = 0;
                cl.retry_author_presence_after = false;
            }
        }
    }
}

#[cfg(test)]
mod tests;
