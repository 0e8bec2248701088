//! The session actor: owns one session's document, history, roles and participants.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sync::Frame;
use montage_ot::Op;
use montage_protocol::{ErrorCode, OpEntry, Role, ServerMessage, encode, encode_with_rid};
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};

use crate::bus::Bus;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::presence::PresenceTable;
use crate::store::{Loaded, Store, StoredOp, Write};

use super::cluster;
use super::core::{Applied, CoreConfig, Edit, Refusal, SealedEdit, SeqCheck, SeqKey, SessionCore};
use super::{CommitItem, CommitResult, ConnHandle, SessionMsg, Sessions};
use crate::access::check_permission;

pub(super) struct Participant {
    pub(super) conn: ConnHandle,
    pub(super) client: Arc<str>,
    /// Versions up to this one were in the state this participant joined with.
    pub(super) from_version: u64,
    /// Its `joined` went out; until then it gets no presence.
    pub(super) ready: bool,
    /// It takes `op` frames of composed ranges (a plain session, `join.ranges`).
    pub(super) ranges: bool,
}

/// An edit as its sender asked for it: a client, an accepted suggestion, a restore, or another
/// node forwarding its client's edit.
#[derive(Debug)]
pub(super) struct EditRequest {
    pub(super) user: Arc<str>,
    pub(super) client: Arc<str>,
    pub(super) seq: u64,
    pub(super) base: u64,
    pub(super) ops: Op,
    /// An encrypted session's sealed edit (then `ops` is empty).
    pub(super) sealed: Option<SealedEdit>,
    pub(super) rid: Option<Json>,
    pub(super) received: Instant,
}

impl EditRequest {
    /// An edit made on the server's side (a suggestion accepted, a version restored): the first
    /// of its `client`, at `base`, now.
    pub(super) fn server_made(user: Arc<str>, client: Arc<str>, base: u64, ops: Op) -> Self {
        EditRequest {
            user,
            client,
            seq: 1,
            base,
            ops,
            sealed: None,
            rid: None,
            received: Instant::now(),
        }
    }
}

pub(super) enum Action {
    Edit {
        conn: u64,
        user: Arc<str>,
        seq: u64,
        rid: Option<Json>,
        received: Instant,
        broadcast: Frame,
        /// Users whose presence this edit moved: sent again after the edit.
        moved: Vec<Arc<str>>,
    },
    Reply {
        conn: u64,
        frame: Frame,
    },
    State {
        reply: oneshot::Sender<Result<(u64, String), ErrorCode>>,
        state: String,
    },
    /// A state a joiner will download (`joined.state_ref`), kept for `GET …/state` once its
    /// version is durable.
    KeepState {
        state: Arc<str>,
        sha256: Arc<str>,
    },
    /// A social event: `to_sender` (with its `rid`) to `conn`, `to_all` to everyone else, on
    /// this node and (through the bus) on the others.
    Notify {
        conn: u64,
        to_sender: Frame,
        to_all: Frame,
    },
    /// The answer to the node that forwarded this version's edit (`cluster::home`).
    Forwarded {
        reply: cluster::HomeReply,
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
    /// The JSON text of a durable version of the document (see `encoded_state`).
    pub(super) state_json: Option<(u64, Arc<str>)>,
    /// Its SHA-256, once a joiner downloads it (`joined.state_ref`).
    pub(super) state_sha: Option<(u64, Arc<str>)>,
}

impl Actor {
    /// The `ack` of my edit `seq` as `version`, with that version's chain value in an
    /// encrypted session.
    pub(super) fn ack_frame(&self, seq: u64, version: u64, rid: Option<&Json>) -> Frame {
        Frame::from(encode_with_rid(
            &ServerMessage::Ack {
                session: self.id.to_string(),
                seq,
                version,
                chain: self.state.as_ref().and_then(|c| c.chain_at(version)),
            },
            rid,
        ))
    }

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
            cluster: sessions
                .bus
                .clone()
                .map(|bus| cluster::Cluster::new(bus, sessions.homes.clone())),
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
            state_json: None,
            state_sha: None,
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
        self.metrics.sessions_loaded.inc();
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
        if self.state.is_some() && !self.broken {
            // The first node to load a session becomes its home (DESIGN §9.7).
            self.resolve_home().await;
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
        self.release_home().await;
        self.sessions.remove_if(&self.id, self.generation);
        self.metrics.sessions_loaded.dec();
    }

    /// The in-memory session from what the store holds.
    pub(super) fn load(&self, l: Loaded) -> Result<SessionCore<Action>, String> {
        let config = CoreConfig {
            history_keep: self.config.history_keep,
            snapshot_every_ops: self.config.snapshot_every_ops,
            max_doc_bytes: self.config.limits.max_doc_bytes,
            max_transform_work: self.config.limits.max_transform_work,
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
                how,
                rid,
            } => self.join(conn, client, how, rid).await,
            SessionMsg::Op {
                conn,
                base,
                seq,
                ops,
                sealed,
                rid,
                received,
            } => {
                let req = EditRequest {
                    user: conn.user.clone(),
                    client: Arc::from(""),
                    seq,
                    base,
                    ops,
                    sealed,
                    rid,
                    received,
                };
                self.edit(conn, req).await
            }
            SessionMsg::Snapshot {
                conn,
                version,
                payload,
                rid,
            } => self.client_snapshot(conn, version, payload, rid).await,
            SessionMsg::Presence { conn, data, rid } => self.presence(conn, data, rid),
            SessionMsg::SetRole {
                conn,
                user,
                role,
                rid,
            } => self.set_role(conn, user, role, rid).await,
            SessionMsg::Leave { conn } | SessionMsg::Disconnect { conn } => self.leave(conn),
            SessionMsg::GetState { who, reply } => self.get_state(who, reply),
            SessionMsg::Playhead { user, reply } => {
                let at = self.presence.get(&user).and_then(|r| r.data.as_ref());
                let _ = reply.send(at.and_then(super::membership::playhead_of));
            }
            SessionMsg::Restore {
                conn,
                version,
                target,
                element,
                reply,
            } => self.restore(conn, version, target, element, reply).await,
            SessionMsg::Social { conn, req, rid } => self.social_request(conn, req, rid).await,
            SessionMsg::Notify { frame } => {
                // Best effort: a joiner still waiting for `joined` reads tasks over HTTP.
                for p in self.participants.values().filter(|p| p.ready) {
                    p.conn.send(frame.clone());
                }
            }
            SessionMsg::Grant { user, role, reply } => self.grant(user, role, reply).await,
            SessionMsg::SetLinkRole { conn, role, rid } => {
                self.set_link_role(conn, role, rid).await
            }
            SessionMsg::Configure { who, update, reply } => {
                self.configure(who, update, reply).await
            }
            SessionMsg::Delete { who, reply } => self.delete(who, reply).await,
            SessionMsg::Recheck { conn } => {
                if self.participants.contains_key(&conn.id) {
                    self.revoke_lost_access();
                }
            }
            SessionMsg::Shutdown => self.shutting_down = true,
            SessionMsg::Remote(_) => {}
            SessionMsg::Forwarded { req, reply } => self.home_edit(req, reply).await,
            SessionMsg::ForwardAnswer {
                n,
                attempt,
                outcome,
            } => self.on_forward_answer(n, attempt, outcome).await,
            SessionMsg::Reforward => self.reforward().await,
            SessionMsg::ForwardCheck => self.forward_check().await,
            SessionMsg::CatchUpTo { version } => self.catch_up_to(version).await,
            SessionMsg::LeaseLost { epoch } => self.lease_lost(epoch),
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
            Refusal::new(ErrorCode::Internal, "storage error")
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

    /// A participant's edit; `req.client` is filled in from its join.
    pub(super) async fn edit(&mut self, conn: ConnHandle, mut req: EditRequest) {
        let rid = req.rid.clone();
        let Some(p) = self.member(&conn, rid.as_ref()) else {
            return;
        };
        let (pconn, client) = (p.conn.clone(), p.client.clone());
        let conn = conn.id;
        let Some(doc) = &self.state else { return };
        if !check_permission(&doc.meta, &self.id, &pconn.principal(), Role::Editor) {
            pconn.error(
                ErrorCode::Forbidden,
                format!(
                    "{} may not edit",
                    pconn.role_in(&self.id, &doc.meta).as_str()
                ),
                rid.as_ref(),
            );
            return;
        }
        if self.refuse_if_unavailable(&pconn, rid.as_ref()) {
            return;
        }
        if let Err(message) = sealed_form(doc.is_sealed(), req.sealed.is_some()) {
            pconn.error(ErrorCode::BadRequest, message, rid.as_ref());
            return;
        }
        req.user = pconn.user.clone();
        req.client = client;
        self.apply_edit(&pconn, req, Some(conn)).await;
    }

    /// Transforms an edit past the versions after `base`, applies it as `user`'s and hands it
    /// to the committer; `ack` (when set) gets the ack, everyone else the `op`. Errors go to
    /// `pconn`. Returns the version it was (or, for a resend, had been) applied as.
    pub(super) async fn apply_edit(
        &mut self,
        pconn: &ConnHandle,
        req: EditRequest,
        ack: Option<u64>,
    ) -> Option<u64> {
        // Another node sequences this session: it goes there (`cluster::home`).
        if self.forwarding().await {
            return self.forward_edit(pconn, req, ack).await;
        }
        let EditRequest {
            user,
            client,
            seq,
            base,
            ops,
            sealed,
            rid,
            received,
        } = req;
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
                let frame = self.ack_frame(seq, v, rid.as_ref());
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
            pconn.send(encode_with_rid(&r.to_message(), rid.as_ref()));
        };
        let core = self.state.as_ref()?;
        if let Err(message) = sealed_form(core.is_sealed(), sealed.is_some()) {
            pconn.error(ErrorCode::BadRequest, message, rid.as_ref());
            return None;
        }
        let edit = Edit {
            user: user.clone(),
            client,
            seq,
            base,
            ops,
            now_ms: crate::clock::now_ms(),
        };
        // Kept to run again (or, sealed, refuse again) if another node takes this version first.
        let original = self.cluster.is_some().then(|| edit.ops.clone());
        // A retry whose author sent presence since the first try: that presence shows it already.
        let skip_author = self.retry_presence_seen();
        let applied = if let Some(payload) = sealed {
            // Sealed: only on the head, nothing to transform, read or check beyond its form.
            self.state.as_mut()?.apply_sealed(edit, payload)
        } else {
            // The transform budget is checked before the store is read for older versions, too.
            if let Err(r) = core
                .check_base(base)
                .and_then(|()| core.check_work(base, &edit.ops, None))
            {
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
            let heavy = self
                .state
                .as_ref()?
                .is_heavy(base, &edit.ops, &older, false);
            self.with_core(heavy, move |core| core.apply(edit, &older))
                .await?
        };
        let applied = match applied {
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
        let snapshot_overdue = self.state.as_ref()?.snapshot_overdue();
        // Carets and selections follow the edit (sent again once it is broadcast). Across nodes
        // a rollback puts the old values back, so each committed edit moves them once.
        let moved_before = self.after_apply(&user, &inverse, skip_author);
        let moved = moved_before.iter().map(|(u, _)| u.clone()).collect();
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
            broadcast: Frame::from(broadcast),
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

    /// Runs `work` on the core: here when it is cheap, else on the blocking pool under one of
    /// a few permits, so a heavy rebase, apply or copy never holds an async worker thread
    /// (DESIGN §9.2) and heavy edits of many sessions do not take every core. The actor waits
    /// for it (its session's messages queue meanwhile). `None`: the core was lost with a
    /// panicking task; the session is abandoned and reloads.
    pub(super) async fn with_core<R: Send + 'static>(
        &mut self,
        heavy: bool,
        work: impl FnOnce(&mut SessionCore<Action>) -> R + Send + 'static,
    ) -> Option<R> {
        if !heavy {
            return self.state.as_mut().map(work);
        }
        let core = self.state.take()?;
        self.metrics.heavy_work_total.inc();
        match off_runtime(&self.sessions.heavy, core, work).await {
            Ok((core, r)) => {
                self.state = Some(core);
                Some(r)
            }
            Err(e) => {
                tracing::error!(session = %self.id, error = %e, "heavy work on the session failed");
                self.abandon();
                None
            }
        }
    }

    pub(super) async fn submit(&mut self, mut write: Write, version: u64, snapshot: bool) {
        if let Write::Op { fence, .. } = &mut write {
            *fence = self.fence();
        }
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
                if let Some(p) = self.participants.get(&conn) {
                    p.conn.send(self.ack_frame(seq, version, rid.as_ref()));
                }
                self.metrics.edits_total.inc();
                self.metrics.observe_ack(received.elapsed());
                self.broadcast_op(version, &user, &broadcast, Some(conn));
                self.after_commit(version, &user, moved);
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
            Action::KeepState { state, sha256 } => {
                (self.sessions.past_states).insert(&self.id, version, state, Some(sha256));
            }
            Action::Forwarded { reply } => {
                reply.send(crate::bus::ForwardReply::Acked { version });
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

    /// The `op` frame of `version` to every participant but `except` (its author, acked
    /// instead) whose state lacks it; those that take ranges may get it composed with the next.
    pub(super) fn broadcast_op(
        &self,
        version: u64,
        user: &Arc<str>,
        frame: &Frame,
        except: Option<u64>,
    ) {
        let op = self.state.as_ref().and_then(|c| c.op_at(version));
        for (id, p) in &self.participants {
            if Some(*id) != except && p.from_version < version {
                let op = if p.ranges { op } else { None };
                p.conn.send_op(&self.id, version, user, op, frame);
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
                // A forwarded edit's answer: `not_home` as it drops; its node sends it again.
                Action::Reply { .. }
                | Action::Notify { .. }
                | Action::Forwarded { .. }
                | Action::KeepState { .. } => {}
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
        self.give_up_home();
        let frame = Frame::from(encode(&ServerMessage::error(
            ErrorCode::Internal,
            format!("session {} failed; join again", self.id),
        )));
        for p in self.participants.values() {
            p.conn.send(frame.clone());
        }
        self.participants.clear();
        self.idle_since = Instant::now() - self.config.idle_unload;
    }

    pub(super) fn get_state(
        &mut self,
        who: crate::access::Principal,
        reply: oneshot::Sender<Result<(u64, String), ErrorCode>>,
    ) {
        if self.reload && !self.shutting_down {
            self.deferred.push(SessionMsg::GetState { who, reply });
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
        if !check_permission(&doc.meta, &self.id, &who, Role::Viewer) {
            let _ = reply.send(Err(ErrorCode::Forbidden));
            return;
        }
        if doc.is_sealed() {
            // The server holds no readable state of an encrypted session (HTTP 409).
            let _ = reply.send(Err(ErrorCode::Conflict));
            return;
        }
        let version = doc.version;
        let state = self.encoded_state().to_string();
        if self.participants.is_empty() {
            self.idle_since = Instant::now();
        }
        self.when_committed(version, Action::State { reply, state });
    }
}

/// Runs `work` on `value` on the blocking pool once one of `permits` is free, and hands both
/// back: the async worker threads stay free for every other connection meanwhile.
pub(super) async fn off_runtime<T: Send + 'static, R: Send + 'static>(
    permits: &Arc<tokio::sync::Semaphore>,
    mut value: T,
    work: impl FnOnce(&mut T) -> R + Send + 'static,
) -> Result<(T, R), tokio::task::JoinError> {
    // Never closed; if it were, the work would still run, just without a permit.
    let permit = permits.clone().acquire_owned().await.ok();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let r = work(&mut value);
        (value, r)
    })
    .await
}

/// The `ack` of `seq` as `version`; in an encrypted session with the version's chain value.
/// Why an edit of this form can't go to this session: `ops` in an encrypted one, `data` in a
/// plain one.
pub(super) fn sealed_form(session_sealed: bool, edit_sealed: bool) -> Result<(), &'static str> {
    match (session_sealed, edit_sealed) {
        (true, false) => Err(
            "this session is end-to-end encrypted: send the edit sealed as `data`; plain `ops` are refused",
        ),
        (false, true) => Err("this session is not encrypted: send `ops`, not `data`"),
        _ => Ok(()),
    }
}

/// A stored version as an op-list entry: a plain edit's `ops`, or an encrypted session's sealed
/// body (stored as a JSON object where plain edits are arrays).
pub(super) fn parse_entry(session: &str, o: StoredOp) -> crate::error::Result<OpEntry> {
    let corrupt = |e: String| crate::error::Error::Corrupt {
        session: session.to_owned(),
        reason: format!("op {}: {e}", o.version),
    };
    let mut entry = OpEntry {
        version: o.version,
        user: String::new(),
        ops: Op::default(),
        time: o.time,
        data: None,
        key_epoch: None,
        chain: None,
    };
    if o.ops.starts_with('{') {
        let s = super::core::parse_sealed(&o.ops, "sealed").map_err(corrupt)?;
        entry.data = Some(s.data);
        entry.key_epoch = Some(s.key_epoch);
        entry.chain = Some(s.chain);
    } else {
        entry.ops = serde_json::from_str::<Op>(&o.ops).map_err(|e| corrupt(e.to_string()))?;
    }
    entry.user = o.user;
    Ok(entry)
}
