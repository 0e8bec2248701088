//! The session actor: owns one session's document, history, roles and participants.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use montage_ot::Op;
use montage_protocol::{
    ErrorCode, OpEntry, Participant as WireParticipant, Role, ServerMessage, encode,
    encode_with_rid,
};
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};

use crate::bus::Bus;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::presence::PresenceTable;
use crate::store::{Loaded, Store, StoredOp, Write};

use super::cluster;
use super::core::{Applied, CoreConfig, Edit, Refusal, SeqCheck, SeqKey, SessionCore};
use super::{CommitItem, CommitResult, ConnHandle, SessionMsg, Sessions};
use crate::access::check_permission;

pub(super) struct Participant {
    pub(super) conn: ConnHandle,
    pub(super) client: Arc<str>,
    /// Versions up to this one were in the state this participant joined with.
    pub(super) from_version: u64,
    /// Its `joined` went out; until then it gets no presence.
    pub(super) ready: bool,
}

pub(super) enum Action {
    Edit {
        conn: u64,
        user: Arc<str>,
        seq: u64,
        rid: Option<Json>,
        received: Instant,
        broadcast: Utf8Bytes,
        /// Users whose presence this edit moved: sent again after the edit.
        moved: Vec<Arc<str>>,
    },
    Reply {
        conn: u64,
        frame: Utf8Bytes,
    },
    State {
        reply: oneshot::Sender<Result<(u64, String), ErrorCode>>,
        state: String,
    },
    /// A social event: `to_sender` (with its `rid`) to `conn`, `to_all` to everyone else, on
    /// this node and (through the bus) on the others.
    Notify {
        conn: u64,
        to_sender: Utf8Bytes,
        to_all: Utf8Bytes,
    },
}

pub(super) struct Actor {
    pub(super) id: Arc<str>,
    pub(super) generation: u64,
    /// The generation the committer knows this actor's writes by; a conflict retry renews it.
    pub(super) epoch: u64,
    /// Cross-node sequencing, when the store is shared.
    pub(super) cluster: Option<cluster::Cluster>,
    pub(super) sessions: Arc<Sessions>,
    pub(super) config: Arc<Config>,
    pub(super) store: Arc<dyn Store>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) rx: mpsc::Receiver<SessionMsg>,
    pub(super) committer: mpsc::Sender<CommitItem>,
    pub(super) done_tx: mpsc::UnboundedSender<CommitResult>,
    pub(super) done_rx: mpsc::UnboundedReceiver<CommitResult>,
    /// The document, history, pending edits and idempotency table (`core.rs`); `None` until
    /// the session exists.
    pub(super) state: Option<SessionCore<Action>>,
    pub(super) participants: HashMap<u64, Participant>,
    /// Names, colours and latest presence of the users online here.
    pub(super) presence: PresenceTable,
    pub(super) inflight: usize,
    pub(super) snapshot_due: bool,
    /// A snapshot write is with the committer.
    pub(super) snapshot_in_flight: bool,
    /// A write failed or the session could not load: refuse everything, unload when empty.
    pub(super) broken: bool,
    /// Broken by a failed write: a fresh load will be consistent, so joins wait for it.
    pub(super) reload: bool,
    /// Joins that arrived after a failed write, handed to the next actor on unload.
    pub(super) deferred: Vec<SessionMsg>,
    pub(super) shutting_down: bool,
    pub(super) idle_since: Instant,
    /// Comments and suggestions, loaded on first use.
    pub(super) social: Option<crate::social::Social>,
}

impl Actor {
    pub(super) fn new(
        id: Arc<str>,
        generation: u64,
        sessions: Arc<Sessions>,
        rx: mpsc::Receiver<SessionMsg>,
        committer: mpsc::Sender<CommitItem>,
    ) -> Actor {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Actor {
            id,
            generation,
            epoch: generation,
            cluster: sessions.bus.clone().map(cluster::Cluster::new),
            config: sessions.config.clone(),
            store: sessions.store.clone(),
            metrics: sessions.metrics.clone(),
            sessions,
            rx,
            committer,
            done_tx,
            done_rx,
            state: None,
            participants: HashMap::new(),
            presence: PresenceTable::default(),
            inflight: 0,
            snapshot_due: false,
            snapshot_in_flight: false,
            broken: false,
            reload: false,
            deferred: Vec::new(),
            shutting_down: false,
            idle_since: Instant::now(),
            social: None,
        }
    }

    pub(super) async fn run(mut self) {
        /// Undoes an actor's [`Bus::watch`] when the actor ends.
        struct Watching(Arc<dyn Bus>, Arc<str>);
        impl Drop for Watching {
            fn drop(&mut self) {
                self.0.unwatch(&self.1);
            }
        }
        self.metrics.sessions_loaded.fetch_add(1, Relaxed);
        // Hear other nodes' commits before reading the store, so none falls in between. The
        // guard unwatches however this task ends (a panic included).
        let _watching = match self.sessions.bus.clone() {
            Some(bus) => {
                bus.watch(&self.id).await;
                Some(Watching(bus, self.id.clone()))
            }
            None => None,
        };
        match self.store.load(&self.id).await {
            Ok(Some(l)) => match self.load(l) {
                Ok(core) => self.state = Some(core),
                Err(reason) => {
                    tracing::error!(session = %self.id, %reason, "session could not be loaded");
                    self.broken = true;
                }
            },
            Ok(None) => {}
            Err(e) => {
                tracing::error!(session = %self.id, error = %e, "session could not be loaded");
                self.broken = true;
            }
        }
        let period = self.config.snapshot_interval.max(Duration::from_millis(10));
        let mut snapshot_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let refresh = self.config.roster_refresh.max(Duration::from_millis(10));
        let mut roster_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + refresh, refresh);
        loop {
            // With several nodes a session also stays loaded while someone here watches its live
            // previews: only a loaded session hears other nodes' commits.
            let idle = self.participants.is_empty()
                && self.idle()
                && self.inflight == 0
                && !(self.cluster.is_some() && self.sessions.has_version_watchers(&self.id));
            // A session that does not exist (a read of a missing id) goes at once.
            let linger = if self.state.is_none() {
                Duration::ZERO
            } else {
                self.config.idle_unload
            };
            let deadline = tokio::time::Instant::from_std(self.idle_since + linger);
            tokio::select! {
                biased;
                Some(r) = self.done_rx.recv() => self.on_commit(r),
                m = self.rx.recv() => match m {
                    Some(SessionMsg::Shutdown) => self.shutting_down = true,
                    Some(m) => self.handle(m).await,
                    None => break,
                },
                _ = snapshot_tick.tick() => {
                    self.snapshot_due = true;
                    self.maybe_snapshot().await;
                }
                _ = roster_tick.tick(), if self.cluster.is_some() => self.cluster_heartbeat(),
                _ = tokio::time::sleep_until(deadline), if idle => {
                    if self.unload().await {
                        break;
                    }
                }
            }
            self.cluster_tick().await;
            if self.shutting_down && self.idle() && self.inflight == 0 {
                self.save_snapshot_now().await;
                break;
            }
        }
        self.sessions.remove_if(&self.id, self.generation);
        self.metrics.sessions_loaded.fetch_sub(1, Relaxed);
    }

    /// The in-memory session from what the store holds.
    pub(super) fn load(&self, l: Loaded) -> Result<SessionCore<Action>, String> {
        let config = CoreConfig {
            history_keep: self.config.history_keep,
            snapshot_every_ops: self.config.snapshot_every_ops,
        };
        SessionCore::load(self.id.clone(), l, config)
    }

    /// The newest durable version (0 before the session exists).
    pub(super) fn committed(&self) -> u64 {
        self.state.as_ref().map_or(0, |c| c.committed())
    }

    /// Nothing waits for a commit.
    pub(super) fn idle(&self) -> bool {
        self.state.as_ref().is_none_or(|c| c.idle())
    }

    pub(super) async fn handle(&mut self, m: SessionMsg) {
        let Some(m) = self.cluster_gate(m).await else {
            return;
        };
        match m {
            SessionMsg::Join {
                conn,
                client,
                since,
                rid,
            } => self.join(conn, client, since, rid).await,
            SessionMsg::Op {
                conn,
                base,
                seq,
                ops,
                rid,
                received,
            } => self.edit(conn, base, seq, ops, rid, received).await,
            SessionMsg::Presence { conn, data, rid } => self.presence(conn, data, rid),
            SessionMsg::SetRole {
                conn,
                user,
                role,
                rid,
            } => self.set_role(conn, user, role, rid).await,
            SessionMsg::Leave { conn } | SessionMsg::Disconnect { conn } => self.leave(conn),
            SessionMsg::GetState { user, reply } => self.get_state(user, reply),
            SessionMsg::Social { conn, req, rid } => self.social_request(conn, req, rid).await,
            SessionMsg::Notify { frame } => {
                // Best effort: a joiner still waiting for `joined` reads tasks over HTTP.
                for p in self.participants.values().filter(|p| p.ready) {
                    p.conn.send(frame.clone());
                }
            }
            SessionMsg::Grant { user, role, reply } => self.grant(user, role, reply).await,
            SessionMsg::Shutdown => self.shutting_down = true,
            SessionMsg::Remote(_) => {}
        }
    }

    pub(super) fn online(&self, user: &str) -> bool {
        self.participants.values().any(|p| &*p.conn.user == user)
    }

    /// Roster and role events: a joiner still waiting for its `joined` gets them right after it,
    /// so what it learns later is never overwritten by the older `joined`.
    pub(super) fn announce(&mut self, frame: &Utf8Bytes, except: Option<u64>) {
        let head = self.state.as_ref().map_or(0, |d| d.version);
        let mut later = Vec::new();
        for (id, p) in &self.participants {
            if Some(*id) == except {
                continue;
            }
            if p.ready {
                p.conn.send(frame.clone());
            } else {
                later.push(*id);
            }
        }
        for conn in later {
            self.when_committed(
                head,
                Action::Reply {
                    conn,
                    frame: frame.clone(),
                },
            );
        }
    }

    /// Runs `action` once `version` is durable: now, or when the committer says so.
    pub(super) fn when_committed(&mut self, version: u64, action: Action) {
        let ready = match &mut self.state {
            Some(core) => core.when_committed(version, action),
            None => Some(action),
        };
        if let Some(action) = ready {
            self.run_action(version, action);
        }
    }

    pub(super) async fn join(
        &mut self,
        conn: ConnHandle,
        client: String,
        since: Option<u64>,
        rid: Option<Json>,
    ) {
        if self.reload && !self.shutting_down {
            self.deferred.push(SessionMsg::Join {
                conn,
                client,
                since,
                rid,
            });
            return;
        }
        if self.broken || self.shutting_down {
            conn.error(
                ErrorCode::Internal,
                "session unavailable, try again",
                rid.as_ref(),
            );
            return;
        }
        if self.state.is_none() {
            // The first joiner creates the session and owns it.
            if let Err(e) = self.store.create_session(&self.id, &conn.user).await {
                tracing::error!(session = %self.id, error = %e, "create session failed");
                conn.error(
                    ErrorCode::Internal,
                    "could not create session",
                    rid.as_ref(),
                );
                return;
            }
            match self.store.load(&self.id).await {
                Ok(Some(l)) => match self.load(l) {
                    Ok(core) => self.state = Some(core),
                    Err(reason) => {
                        tracing::error!(session = %self.id, %reason, "created session unreadable");
                        conn.error(
                            ErrorCode::Internal,
                            "could not create session",
                            rid.as_ref(),
                        );
                        return;
                    }
                },
                _ => {
                    conn.error(
                        ErrorCode::Internal,
                        "could not create session",
                        rid.as_ref(),
                    );
                    return;
                }
            }
        }
        let Some(doc) = &self.state else { return };
        let version = doc.version;
        let role = doc.meta.role_of(&conn.user);
        if role < Role::Viewer {
            conn.error(
                ErrorCode::Forbidden,
                format!("removed from session {}", self.id),
                rid.as_ref(),
            );
            return;
        }
        let mut state = Some(doc.doc.clone());
        let mut ops = None;
        if let Some(since) = since {
            if since > version {
                conn.error(
                    ErrorCode::BadRequest,
                    format!("since {since} is ahead of the head {version}"),
                    rid.as_ref(),
                );
                return;
            }
            if version - since <= self.config.limits.max_catch_up {
                match self.entries_after(since, version).await {
                    Ok(list) => {
                        ops = Some(list);
                        state = None;
                    }
                    Err(e) => {
                        tracing::error!(session = %self.id, error = %e, "catch-up read failed");
                        conn.error(ErrorCode::Internal, "could not read history", rid.as_ref());
                        return;
                    }
                }
            }
        }
        let Some(doc) = &self.state else { return };
        let rejoin = self.participants.contains_key(&conn.id);
        let was_online = self
            .participants
            .values()
            .any(|p| p.conn.user == conn.user && p.conn.id != conn.id);
        let user = conn.user.clone();
        let conn_id = conn.id;
        let name = conn.name.clone();
        self.presence.enter(&user, name.clone());
        self.participants.insert(
            conn.id,
            Participant {
                conn,
                client: Arc::from(client),
                from_version: version,
                ready: false,
            },
        );
        let mut roster: Vec<WireParticipant> = Vec::new();
        let mut seen = HashSet::new();
        for p in self.participants.values() {
            if seen.insert(p.conn.user.clone()) {
                let rec = self.presence.get(&p.conn.user);
                roster.push(WireParticipant {
                    user: p.conn.user.to_string(),
                    role: doc.meta.role_of(&p.conn.user),
                    online: true,
                    name: rec.and_then(|r| r.name.as_deref().map(str::to_owned)),
                    color: rec.map(|r| r.colour.clone()),
                    presence: rec.and_then(|r| r.data.clone()),
                });
            }
        }
        // Users online on other nodes of a cluster.
        for p in self.remote_online() {
            seen.insert(Arc::from(p.user.as_str()));
            roster.push(p);
        }
        for (u, r) in &doc.meta.roles {
            if !seen.contains(u.as_str()) && *r >= Role::Viewer {
                roster.push(WireParticipant {
                    user: u.clone(),
                    role: *r,
                    online: false,
                    name: None,
                    color: Some(crate::presence::colour(u)),
                    presence: None,
                });
            }
        }
        roster.sort_by(|a, b| a.user.cmp(&b.user));
        let joined = ServerMessage::Joined {
            session: self.id.to_string(),
            version,
            state,
            role,
            participants: roster,
            ops,
        };
        let frame = Utf8Bytes::from(encode_with_rid(&joined, rid.as_ref()));
        if !rejoin && !was_online {
            let ev = encode(&ServerMessage::ParticipantJoined {
                session: self.id.to_string(),
                user: user.to_string(),
                role,
                name: name.as_deref().map(str::to_owned),
                color: Some(crate::presence::colour(&user)),
            });
            // The other nodes learn it from the roster; the first participant here also asks
            // them for theirs.
            self.cluster_roster(self.participants.len() == 1);
            if !self.online_elsewhere(&user) {
                self.announce(&Utf8Bytes::from(ev), Some(conn_id));
            }
        }
        self.when_committed(
            version,
            Action::Reply {
                conn: conn_id,
                frame,
            },
        );
    }

    /// `{"version","user","ops"}` entries for versions `after+1 ..= head`.
    pub(super) async fn entries_after(
        &self,
        after: u64,
        head: u64,
    ) -> crate::error::Result<Vec<OpEntry>> {
        let Some(core) = &self.state else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity((head - after) as usize);
        if let Some((from, count)) = core.missing_history(after) {
            for o in self.store.ops_after(&self.id, from, count).await? {
                out.push(parse_entry(&self.id, o)?);
            }
        }
        out.extend(core.entries_in_memory(after));
        Ok(out)
    }

    /// The version `user`'s `(client, seq)` was applied as, if it was: memory first, then the
    /// store when the core says it must.
    pub(super) async fn lookup_seq(
        &mut self,
        key: &SeqKey,
        seq: u64,
    ) -> crate::error::Result<Option<u64>> {
        let (user, client) = key;
        loop {
            let Some(core) = &mut self.state else {
                return Ok(None);
            };
            match core.check_seq(key, seq) {
                SeqCheck::Applied(v) => return Ok(Some(v)),
                SeqCheck::New => return Ok(None),
                SeqCheck::NeedStoreFind => {
                    return self.store.find_seq(&self.id, user, client, seq).await;
                }
                SeqCheck::NeedStoreMax => {
                    let max = self.store.max_seq(&self.id, user, client).await?;
                    if let Some(core) = &mut self.state {
                        core.note_store_max(key, max);
                    }
                }
            }
        }
    }

    /// The ops after `base` that the core no longer keeps in memory, from the store.
    pub(super) async fn older_ops(&self, base: u64) -> Result<Vec<Op>, Refusal> {
        let Some((after, count)) = self.state.as_ref().and_then(|c| c.missing_history(base)) else {
            return Ok(Vec::new());
        };
        let storage = |what: &str, e: &dyn std::fmt::Display| {
            tracing::error!(session = %self.id, base, error = %e, "{what}");
            Refusal {
                code: ErrorCode::Internal,
                message: "storage error".into(),
                broken: false,
            }
        };
        let stored = self
            .store
            .ops_after(&self.id, after, count)
            .await
            .map_err(|e| storage("history read failed", &e))?;
        stored
            .iter()
            .map(|o| {
                serde_json::from_str::<Op>(&o.ops).map_err(|e| storage("stored op unreadable", &e))
            })
            .collect()
    }

    /// The participant behind `conn`, or a `not_found` reply when it is not (or no longer) in.
    pub(super) fn member(&self, conn: &ConnHandle, rid: Option<&Json>) -> Option<&Participant> {
        let p = self.participants.get(&conn.id);
        if p.is_none() {
            conn.error(
                ErrorCode::NotFound,
                format!("not joined to session {}", self.id),
                rid,
            );
        }
        p
    }

    pub(super) async fn edit(
        &mut self,
        conn: ConnHandle,
        base: u64,
        seq: u64,
        ops: Op,
        rid: Option<Json>,
        received: Instant,
    ) {
        let Some(p) = self.member(&conn, rid.as_ref()) else {
            return;
        };
        let (pconn, client) = (p.conn.clone(), p.client.clone());
        let conn = conn.id;
        let Some(doc) = &self.state else { return };
        if !check_permission(&doc.meta, &pconn.user, Role::Editor) {
            pconn.error(
                ErrorCode::Forbidden,
                format!("{} may not edit", doc.meta.role_of(&pconn.user).as_str()),
                rid.as_ref(),
            );
            return;
        }
        if self.broken || self.shutting_down {
            pconn.error(
                ErrorCode::Internal,
                "session unavailable, join again",
                rid.as_ref(),
            );
            return;
        }
        let user = pconn.user.clone();
        self.apply_edit(
            &pconn,
            user,
            client,
            seq,
            base,
            ops,
            Some(conn),
            rid,
            received,
        )
        .await;
    }

    /// Transforms an edit past the versions after `base`, applies it as `user`'s and hands it
    /// to the committer; `ack` (when set) gets the ack, everyone else the `op`. Errors go to
    /// `pconn`. Returns the version it was (or, for a resend, had been) applied as.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn apply_edit(
        &mut self,
        pconn: &ConnHandle,
        user: Arc<str>,
        client: Arc<str>,
        seq: u64,
        base: u64,
        ops: Op,
        ack: Option<u64>,
        rid: Option<Json>,
        received: Instant,
    ) -> Option<u64> {
        // No participant has this id: an edit without an ack (an accepted suggestion).
        let conn = ack.unwrap_or(u64::MAX);
        // Comments load before the head moves, so their anchors and suggestions see it move.
        if self.social.is_none() {
            let _ = self.ensure_social().await;
        }
        let seq_key: SeqKey = (user.clone(), client.clone());
        match self.lookup_seq(&seq_key, seq).await {
            Ok(Some(v)) => {
                // A resend of an applied edit: ack it again with its version, once durable.
                let frame = ack_frame(&self.id, seq, v, rid.as_ref());
                self.when_committed(v, Action::Reply { conn, frame });
                return Some(v);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(session = %self.id, error = %e, "seq lookup failed");
                pconn.error(ErrorCode::Internal, "storage error", rid.as_ref());
                return None;
            }
        }
        let refused = |r: Refusal| {
            pconn.error(r.code, r.message, rid.as_ref());
        };
        let core = self.state.as_ref()?;
        if let Err(r) = core.check_base(base) {
            refused(r);
            return None;
        }
        let older = match self.older_ops(base).await {
            Ok(older) => older,
            Err(r) => {
                refused(r);
                return None;
            }
        };
        // Kept to run again if another node takes this version first.
        let original = self.cluster.is_some().then(|| ops.clone());
        // A retry whose author sent presence since the first try: that presence shows it already.
        let skip_author = self.retry_presence_seen();
        let core = self.state.as_mut()?;
        let edit = Edit {
            user: user.clone(),
            client,
            seq,
            base,
            ops,
        };
        let applied = match core.apply(edit, &older) {
            Ok(applied) => applied,
            Err(r) if r.broken => {
                tracing::error!(session = %self.id, base, "the OT engine panicked on an edit");
                refused(r);
                self.abandon();
                return None;
            }
            Err(r) => {
                refused(r);
                return None;
            }
        };
        let Applied {
            version,
            inverse,
            write,
            broadcast,
        } = applied;
        // Carets and selections follow the edit (sent again once it is broadcast). Across nodes
        // a rollback puts the old values back, so each committed edit moves them once.
        let moved_before = match core.head_op() {
            Some(op) => self.presence.transform(
                op,
                &inverse,
                &user,
                &core.doc,
                skip_author.then_some(&*user),
            ),
            None => Vec::new(),
        };
        let moved = moved_before.iter().map(|(u, _)| u.clone()).collect();
        let snapshot_overdue = core.snapshot_overdue();
        if let Some(original) = original {
            self.track_unconfirmed(
                version,
                inverse,
                base,
                original,
                conn,
                seq,
                rid.clone(),
                received,
                user.clone(),
                moved_before,
            );
        }
        let action = Action::Edit {
            conn,
            user: pconn.user.clone(),
            seq,
            rid,
            received,
            broadcast: Utf8Bytes::from(broadcast),
            moved,
        };
        if let Some(core) = &mut self.state {
            core.after_applied(version, action);
        }
        self.submit(write, version, false).await;
        // Bound what a load replays: snapshot after this many edits, whatever the clock says.
        if snapshot_overdue {
            self.maybe_snapshot().await;
        }
        self.anchors_after_edit(version).await;
        Some(version)
    }

    pub(super) async fn submit(&mut self, write: Write, version: u64, snapshot: bool) {
        self.inflight += 1;
        let item = CommitItem {
            generation: self.epoch,
            write,
            done: self.done_tx.clone(),
        };
        if self.committer.send(item).await.is_err() {
            // The writer is gone (shutting down): report it like a failed write.
            self.on_commit(CommitResult {
                version,
                snapshot,
                ok: false,
                conflict: false,
                epoch: self.epoch,
            });
        }
    }

    pub(super) fn on_commit(&mut self, r: CommitResult) {
        self.inflight = self.inflight.saturating_sub(1);
        if r.epoch != self.epoch {
            // A write given up after a conflict: its edit is being sequenced again.
            if r.snapshot {
                self.snapshot_in_flight = false;
            }
            return;
        }
        if !r.ok {
            if r.conflict && self.cluster.is_some() {
                self.on_conflict();
                return;
            }
            self.fail();
            return;
        }
        if r.snapshot {
            self.snapshot_in_flight = false;
            if let Some(core) = &mut self.state {
                core.snapshot_written(r.version);
            }
            return;
        }
        let Some(core) = &mut self.state else { return };
        let ready = core.committed_through(r.version);
        self.sessions.publish_version(&self.id, core.committed());
        for (version, action) in ready {
            self.run_action(version, action);
        }
    }

    pub(super) fn run_action(&mut self, version: u64, action: Action) {
        match action {
            Action::Edit {
                conn,
                user,
                seq,
                rid,
                received,
                broadcast,
                moved,
            } => {
                self.sessions.record_contribution(
                    &self.id,
                    &user,
                    crate::social::service::ContributionKind::EditAccepted,
                );
                if let Some(p) = self.participants.get(&conn) {
                    p.conn.send(ack_frame(&self.id, seq, version, rid.as_ref()));
                }
                self.metrics.edits_total.fetch_add(1, Relaxed);
                self.metrics.observe_ack(received.elapsed());
                for (id, p) in &self.participants {
                    if *id != conn && p.from_version < version {
                        p.conn.send(broadcast.clone());
                    }
                }
                for user in moved {
                    self.send_presence_of(&user);
                }
            }
            Action::Reply { conn, frame } => {
                if let Some(p) = self.participants.get_mut(&conn) {
                    p.ready = true;
                    p.conn.send(frame);
                }
            }
            Action::State { reply, state } => {
                let _ = reply.send(Ok((version, state)));
            }
            Action::Notify {
                conn,
                to_sender,
                to_all,
            } => {
                for (id, p) in &self.participants {
                    if !p.ready {
                        continue;
                    }
                    p.conn.send(if *id == conn {
                        to_sender.clone()
                    } else {
                        to_all.clone()
                    });
                }
                self.cluster_social(&to_all);
            }
        }
    }

    /// A write failed: nothing applied since the last durable version may be shown to anyone.
    /// Everyone waiting is told, participants are let go, and the session unloads so the next
    /// join reloads what the store really holds.
    pub(super) fn fail(&mut self) {
        if !self.broken {
            tracing::error!(session = %self.id, "session write failed; unloading");
        }
        self.broken = true;
        self.reload = true;
        let pending = self
            .state
            .as_mut()
            .map(|c| c.take_pending())
            .unwrap_or_default();
        for (_, action) in pending {
            match action {
                Action::Edit { conn, rid, .. } => {
                    if let Some(pp) = self.participants.get(&conn) {
                        pp.conn.error(
                            ErrorCode::Internal,
                            "edit not stored; join again",
                            rid.as_ref(),
                        );
                    }
                }
                Action::Reply { .. } | Action::Notify { .. } => {}
                Action::State { reply, .. } => {
                    let _ = reply.send(Err(ErrorCode::Internal));
                }
            }
        }
        self.abandon();
    }

    /// Lets everyone go and refuses new work, so the session unloads and the next join reloads
    /// it from the store. Writes already in flight still complete.
    pub(super) fn abandon(&mut self) {
        self.broken = true;
        self.reload = true;
        let frame = Utf8Bytes::from(encode(&ServerMessage::error(
            ErrorCode::Internal,
            format!("session {} failed; join again", self.id),
        )));
        for p in self.participants.values() {
            p.conn.send(frame.clone());
        }
        self.participants.clear();
        self.idle_since = Instant::now() - self.config.idle_unload;
    }

    pub(super) fn presence(&mut self, conn: ConnHandle, data: Json, rid: Option<Json>) {
        let Some(p) = self.member(&conn, rid.as_ref()) else {
            return;
        };
        let conn = conn.id;
        let Some(doc) = &self.state else { return };
        if !check_permission(&doc.meta, &p.conn.user, Role::Viewer) {
            p.conn
                .error(ErrorCode::Forbidden, "no access", rid.as_ref());
            return;
        }
        let msg = ServerMessage::Presence {
            session: self.id.to_string(),
            user: p.conn.user.to_string(),
            data,
        };
        let frame = encode(&msg);
        if frame.len() > self.config.limits.max_presence_bytes {
            let max = self.config.limits.max_presence_bytes;
            p.conn.error(
                ErrorCode::TooLarge,
                format!("presence is limited to {max} bytes"),
                rid.as_ref(),
            );
            return;
        }
        let user = p.conn.user.clone();
        // Kept for late joiners and to follow edits.
        if let ServerMessage::Presence { data, .. } = msg {
            self.presence.set(&user, data);
            self.cluster_presence_set(&user, conn);
        }
        self.cluster_relay(&frame, true);
        let frame = Utf8Bytes::from(frame);
        for (id, p) in &self.participants {
            if *id != conn && p.ready {
                p.conn.send_presence(&self.id, &user, frame.clone());
            }
        }
    }

    /// A user removed from the session: every connection of theirs here leaves it now (they got
    /// the `role_changed`; their next message here is `not_found`, a new join `forbidden`).
    pub(super) fn remove_user_connections(&mut self, user: &str) {
        let gone: Vec<u64> = self
            .participants
            .iter()
            .filter(|(_, p)| &*p.conn.user == user)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.leave(id);
        }
    }

    /// Relays another node's presence frame to this node's connections, paced like our own.
    pub(super) fn relay_remote_presence(&self, frame: Utf8Bytes) {
        let user: Option<Arc<str>> = serde_json::from_str::<Json>(&frame)
            .ok()
            .and_then(|v| v.get("user")?.as_str().map(Arc::from));
        let Some(user) = user else { return };
        for p in self.participants.values() {
            if p.ready && p.conn.user != user {
                p.conn.send_presence(&self.id, &user, frame.clone());
            }
        }
    }

    /// Sends a user's current presence to every ready connection of the other users, paced.
    pub(super) fn send_presence_of(&self, user: &Arc<str>) {
        let Some(data) = self.presence.get(user).and_then(|r| r.data.clone()) else {
            return;
        };
        let frame = Utf8Bytes::from(encode(&ServerMessage::Presence {
            session: self.id.to_string(),
            user: user.to_string(),
            data,
        }));
        // Other nodes hold no record of this node's users: they get the adjusted value too.
        self.cluster_relay(&frame, true);
        for p in self.participants.values() {
            if p.ready && p.conn.user != *user {
                p.conn.send_presence(&self.id, user, frame.clone());
            }
        }
    }

    pub(super) async fn set_role(
        &mut self,
        conn: ConnHandle,
        user: String,
        role: Role,
        rid: Option<Json>,
    ) {
        let Some(p) = self.member(&conn, rid.as_ref()) else {
            return;
        };
        let pconn = p.conn.clone();
        let conn = conn.id;
        let Some(doc) = &self.state else { return };
        if !check_permission(&doc.meta, &pconn.user, Role::Owner) {
            pconn.error(
                ErrorCode::Forbidden,
                "only an owner may change roles",
                rid.as_ref(),
            );
            return;
        }
        let owners = doc
            .meta
            .roles
            .values()
            .filter(|r| **r == Role::Owner)
            .count();
        if doc.meta.role_of(&user) == Role::Owner && role < Role::Owner && owners <= 1 {
            pconn.error(
                ErrorCode::Conflict,
                "a session keeps at least one owner",
                rid.as_ref(),
            );
            return;
        }
        if let Err(e) = self.store.set_role(&self.id, &user, role).await {
            tracing::error!(session = %self.id, error = %e, "set_role failed");
            pconn.error(
                ErrorCode::Internal,
                "could not store the role",
                rid.as_ref(),
            );
            return;
        }
        let Some(doc) = &mut self.state else { return };
        // From here on every message of `user` is checked against the new role.
        doc.meta.roles.insert(user.clone(), role);
        let target = user.clone();
        let msg = ServerMessage::RoleChanged {
            session: self.id.to_string(),
            user,
            role,
        };
        if let Some(p) = self.participants.get(&conn) {
            p.conn.send(encode_with_rid(&msg, rid.as_ref()));
        }
        let frame = encode(&msg);
        if let ServerMessage::RoleChanged { user, role, .. } = &msg {
            self.cluster_role(user, *role, &frame);
        }
        self.announce(&Utf8Bytes::from(frame), Some(conn));
        if role == Role::Removed {
            self.remove_user_connections(&target);
        }
    }

    pub(super) async fn grant(
        &mut self,
        user: String,
        role: Role,
        reply: oneshot::Sender<Result<Role, ErrorCode>>,
    ) {
        let Some(doc) = &self.state else {
            let _ = reply.send(Err(if self.broken {
                ErrorCode::Internal
            } else {
                ErrorCode::NotFound
            }));
            return;
        };
        let held = doc.meta.role_of(&user);
        if self.broken || self.shutting_down || held >= role {
            let _ = reply.send(if self.broken || self.shutting_down {
                Err(ErrorCode::Internal)
            } else {
                Ok(held)
            });
            return;
        }
        if let Err(e) = self.store.set_role(&self.id, &user, role).await {
            tracing::error!(session = %self.id, error = %e, "set_role failed");
            let _ = reply.send(Err(ErrorCode::Internal));
            return;
        }
        let Some(doc) = &mut self.state else { return };
        doc.meta.roles.insert(user.clone(), role);
        let msg = ServerMessage::RoleChanged {
            session: self.id.to_string(),
            user,
            role,
        };
        self.announce(&Utf8Bytes::from(encode(&msg)), None);
        let _ = reply.send(Ok(role));
    }

    pub(super) fn leave(&mut self, conn: u64) {
        let Some(p) = self.participants.remove(&conn) else {
            return;
        };
        p.conn.forget_presence(&self.id, None);
        if !self.online(&p.conn.user) {
            // Gone with the user: a presence still held for someone must not follow the
            // `participant_left` and bring it back.
            self.presence.remove(&p.conn.user);
            for q in self.participants.values() {
                q.conn.forget_presence(&self.id, Some(&p.conn.user));
            }
            self.cluster_roster(false);
            if !self.online_elsewhere(&p.conn.user) {
                let ev = encode(&ServerMessage::ParticipantLeft {
                    session: self.id.to_string(),
                    user: p.conn.user.to_string(),
                });
                self.announce(&Utf8Bytes::from(ev), None);
            }
        }
        if self.participants.is_empty() {
            self.idle_since = Instant::now();
        }
    }

    pub(super) fn get_state(
        &mut self,
        user: String,
        reply: oneshot::Sender<Result<(u64, String), ErrorCode>>,
    ) {
        if self.reload && !self.shutting_down {
            self.deferred.push(SessionMsg::GetState { user, reply });
            return;
        }
        if self.broken {
            let _ = reply.send(Err(ErrorCode::Internal));
            return;
        }
        let Some(doc) = &self.state else {
            let _ = reply.send(Err(ErrorCode::NotFound));
            return;
        };
        if !check_permission(&doc.meta, &user, Role::Viewer) {
            let _ = reply.send(Err(ErrorCode::Forbidden));
            return;
        }
        let state = serde_json::to_string(&doc.doc).unwrap_or_else(|_| "null".to_owned());
        let version = doc.version;
        if self.participants.is_empty() {
            self.idle_since = Instant::now();
        }
        self.when_committed(version, Action::State { reply, state });
    }

    /// Periodic snapshot through the committer, ordered after the appends it covers.
    pub(super) async fn maybe_snapshot(&mut self) {
        if self.broken || self.snapshot_in_flight {
            return;
        }
        let Some(snapshot) = self
            .state
            .as_ref()
            .and_then(|c| c.snapshot_if_due(self.snapshot_due))
        else {
            return;
        };
        let version = snapshot.version;
        self.snapshot_due = false;
        self.snapshot_in_flight = true;
        let write = Write::Snapshot {
            session: self.id.to_string(),
            snapshot,
        };
        self.submit(write, version, true).await;
    }

    /// A direct snapshot, when nothing of this session is in flight (idle unload, shutdown).
    pub(super) async fn save_snapshot_now(&mut self) {
        if self.broken || self.inflight > 0 || !self.idle() {
            return;
        }
        let Some(snapshot) = self.state.as_ref().and_then(|c| c.snapshot_if_moved()) else {
            return;
        };
        match self.store.save_snapshot(&self.id, &snapshot).await {
            Ok(()) => {
                if let Some(core) = &mut self.state {
                    core.snapshot_written(snapshot.version);
                }
            }
            Err(e) => tracing::warn!(session = %self.id, error = %e, "snapshot failed"),
        }
    }

    /// Leaves memory when no one is here. Messages that raced with leaving are handed to the
    /// registry, which loads the session afresh for them.
    pub(super) async fn unload(&mut self) -> bool {
        self.save_snapshot_now().await;
        if !self.rx.is_empty() {
            return false;
        }
        self.sessions.remove_if(&self.id, self.generation);
        self.rx.close();
        let mut waiting = std::mem::take(&mut self.deferred);
        while let Ok(m) = self.rx.try_recv() {
            waiting.push(m);
        }
        for m in waiting {
            // Only joins and reads can be waiting: nobody is a participant any more.
            if matches!(
                m,
                SessionMsg::Join { .. } | SessionMsg::GetState { .. } | SessionMsg::Grant { .. }
            ) {
                let sessions = self.sessions.clone();
                let id = self.id.clone();
                tokio::spawn(async move {
                    let _ = sessions.send(&id, m, true).await;
                });
            }
        }
        tracing::debug!(session = %self.id, "unloaded");
        true
    }
}

pub(super) fn ack_frame(session: &str, seq: u64, version: u64, rid: Option<&Json>) -> Utf8Bytes {
    Utf8Bytes::from(encode_with_rid(
        &ServerMessage::Ack {
            session: session.to_owned(),
            seq,
            version,
        },
        rid,
    ))
}

pub(super) fn parse_entry(session: &str, o: StoredOp) -> crate::error::Result<OpEntry> {
    let ops = serde_json::from_str::<Op>(&o.ops).map_err(|e| crate::error::Error::Corrupt {
        session: session.to_owned(),
        reason: format!("op {}: {e}", o.version),
    })?;
    Ok(OpEntry {
        version: o.version,
        user: o.user,
        ops,
    })
}
