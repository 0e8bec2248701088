//! Who is in a session: joins (with the state or the ops since a version), leaves, presence,
//! role changes and grants. The actor's side of membership; every reply that shows state waits
//! for that state to be durable.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use crate::sync::Frame;
use montage_protocol::sealed::SealedSnapshot;
use montage_protocol::{
    ErrorCode, OpEntry, Participant as WireParticipant, Role, ServerMessage, StateRef, encode,
    encode_with_rid,
};
use serde_json::Value as Json;
use tokio::sync::oneshot;

use super::{ConnHandle, SessionMsg};
use crate::access::check_permission;

/// How a connection asked to join (`join`'s options).
#[derive(Debug, Clone, Copy, Default)]
pub struct JoinAs {
    pub since: Option<u64>,
    /// It may take the missed edits composed (`joined.delta`).
    pub compact: bool,
    /// It takes `op` frames of composed ranges.
    pub ranges: bool,
    /// It can download a large state over HTTP (`joined.state_ref`).
    pub state_ref: bool,
    /// Create the session end-to-end encrypted if it is missing.
    pub encrypted: bool,
}
use crate::store::NewSession;

use super::actor::{Action, Actor, Participant, parse_entry};

impl Actor {
    pub(super) fn online(&self, user: &str) -> bool {
        self.participants.values().any(|p| &*p.conn.user == user)
    }

    /// Roster and role events: a joiner still waiting for its `joined` gets them right after it,
    /// so what it learns later is never overwritten by the older `joined`.
    pub(super) fn announce(&mut self, frame: &Frame, except: Option<u64>) {
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

    pub(super) async fn join(
        &mut self,
        conn: ConnHandle,
        client: String,
        how: JoinAs,
        rid: Option<Json>,
    ) {
        if self.reload && !self.shutting_down {
            self.deferred.push(SessionMsg::Join {
                conn,
                client,
                how,
                rid,
            });
            return;
        }
        let JoinAs {
            since,
            compact,
            ranges,
            state_ref,
            encrypted,
        } = how;
        if self.broken || self.shutting_down {
            conn.error(
                ErrorCode::Internal,
                "session unavailable, try again",
                rid.as_ref(),
            );
            return;
        }
        if self.state.is_none() {
            // The first joiner creates the session and owns it, where this server and the
            // joiner's token allow it.
            if !self.config.create_on_join {
                conn.error(
                    ErrorCode::NotFound,
                    format!(
                        "no session {}: sessions are created with POST /v1/sessions here",
                        self.id
                    ),
                    rid.as_ref(),
                );
                return;
            }
            if !conn.principal().may_create(&self.id) {
                conn.error(
                    ErrorCode::Forbidden,
                    format!("no session {} and this token may not create it", self.id),
                    rid.as_ref(),
                );
                return;
            }
            if let Err(message) = self.sessions.may_create_session(&conn.user) {
                conn.error(ErrorCode::RateLimited, message, rid.as_ref());
                return;
            }
            let new = NewSession {
                encrypted,
                ..NewSession::new(&conn.user, self.config.default_link_role)
            };
            let created = self.store.create_session(&self.id, new).await;
            if let Ok(true) = created {
                self.sessions.events.emit(
                    "session.created",
                    Some(&self.id),
                    serde_json::json!({"owner": *conn.user, "title": null}),
                );
            }
            if let Err(e) = created {
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
                    Ok(core) => {
                        self.state = Some(core);
                        // Where it was created (or first loaded) is its home (DESIGN §9.7).
                        self.resolve_home().await;
                    }
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
                Ok(None) => {
                    // Deleted: its id is not used again.
                    conn.error(
                        ErrorCode::NotFound,
                        format!("no session {}: it was deleted", self.id),
                        rid.as_ref(),
                    );
                    return;
                }
                Err(e) => {
                    tracing::error!(session = %self.id, error = %e, "created session unreadable");
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
        let mut role = conn.role_in(&self.id, &doc.meta);
        if role < Role::Viewer && self.cluster.is_some() {
            // Another node may have just opened access and its bus event not be here yet: the
            // store is the record, so a refusal is only given after reading it.
            if let Ok(Some(meta)) = self.store.meta(&self.id).await
                && let Some(d) = &mut self.state
            {
                d.meta = meta;
                role = conn.role_in(&self.id, &d.meta);
            }
        }
        let Some(doc) = &self.state else { return };
        if role < Role::Viewer {
            let why = if conn.link().scope().is_some() {
                "this token does not name it"
            } else if doc.meta.roles.get(&*conn.user) == Some(&Role::Removed) {
                "you were removed; only its owner can add you back"
            } else {
                "ask its owner to share it"
            };
            conn.error(
                ErrorCode::Forbidden,
                format!("no access to session {}: {why}", self.id),
                rid.as_ref(),
            );
            return;
        }
        // A repeated join of a session this connection is in: it holds the state and gets
        // every op after it (those not yet durable are queued ahead of this answer), so the
        // answer is the head with no ops rather than a second copy of the document.
        let previous = self
            .participants
            .get(&conn.id)
            .map(|p| (p.from_version, p.ready));
        let repeat = previous.is_some() && since.is_none();
        let mut state = !repeat;
        let mut ops = repeat.then(Vec::new);
        let mut delta = None;
        let mut snapshot = None;
        let mut whole = false;
        if let Some(s) = since.filter(|s| *s > version) {
            conn.error(
                ErrorCode::BadRequest,
                format!("since {s} is ahead of the head {version}"),
                rid.as_ref(),
            );
            return;
        }
        let sealed = doc.is_sealed();
        if sealed && !repeat {
            // No readable state: the newest client snapshot and the sealed entries after it,
            // or only those after `since` when that is not far behind.
            match self.sealed_catch_up(since, version).await {
                Ok((snap, list, w)) => {
                    (snapshot, ops, whole) = (snap, Some(list), w);
                }
                Err(message) => {
                    conn.error(ErrorCode::Internal, message, rid.as_ref());
                    return;
                }
            }
            state = false;
        } else if let Some(since) = since
            && version - since <= self.config.limits.max_catch_up
        {
            match self.entries_after(since, version).await {
                // Behind the history kept (`--history-days`): the whole state instead.
                Ok(list) if !is_complete(&list, since, version) => {}
                Ok(list) if compact && list.len() >= COMPACT_AFTER => {
                    // If composing failed the joiner gets the whole state.
                    delta = compact_entries(since, list).await;
                    state = delta.is_none();
                }
                Ok(list) => {
                    ops = Some(list);
                    state = false;
                }
                Err(e) => {
                    tracing::error!(session = %self.id, error = %e, "catch-up read failed");
                    conn.error(ErrorCode::Internal, "could not read history", rid.as_ref());
                    return;
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
        // A repeat without the state keeps getting the ops its state lacks.
        let (from_version, ready) = match previous {
            Some(p) if repeat => p,
            _ => (version, false),
        };
        self.participants.insert(
            conn.id,
            Participant {
                conn,
                client: Arc::from(client),
                from_version,
                ready,
                ranges: ranges && !sealed,
            },
        );
        let mut roster: Vec<WireParticipant> = Vec::new();
        let mut seen = HashSet::new();
        for p in self.participants.values() {
            if seen.insert(p.conn.user.clone()) {
                let rec = self.presence.get(&p.conn.user);
                roster.push(WireParticipant {
                    user: p.conn.user.to_string(),
                    role: p.conn.role_in(&self.id, &doc.meta),
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
        let mut state = state.then(|| self.encoded_state());
        // A large state for a client that can download it: its size and hash instead, the bytes
        // kept for `GET …/state` (resumable, on any node) once the version is durable.
        let mut download = None;
        if let Some(s) =
            state.take_if(|s| state_ref && s.len() > self.config.limits.inline_state_bytes)
        {
            let sha256 = self.state_hash(version, &s).await;
            download = Some(StateRef {
                bytes: s.len() as u64,
                sha256: sha256.to_string(),
            });
            self.when_committed(version, Action::KeepState { state: s, sha256 });
        }
        let Some(doc) = &self.state else { return };
        let joined = ServerMessage::Joined {
            session: self.id.to_string(),
            version,
            state: None,
            state_ref: download,
            role,
            participants: roster,
            ops,
            delta,
            link_role: doc.meta.link_role,
            title: doc.meta.title.clone(),
            encrypted: sealed,
            snapshot,
            whole,
            key_epoch: sealed.then_some(doc.meta.key_epoch),
        };
        let frame = Frame::from(with_state(
            encode_with_rid(&joined, rid.as_ref()),
            state.as_deref(),
        ));
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
                self.announce(&Frame::from(ev), Some(conn_id));
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

    /// The head as JSON text. Joiners and HTTP reads of the same durable version share one
    /// encoding instead of each copying and serializing the document; a durable version never
    /// changes (only versions not yet durable roll back), so only those are cached.
    pub(super) fn encoded_state(&mut self) -> Arc<str> {
        let Some(core) = &self.state else {
            return Arc::from("null");
        };
        if let Some((v, s)) = &self.state_json
            && *v == core.version
        {
            return s.clone();
        }
        let s: Arc<str> =
            Arc::from(serde_json::to_string(&core.doc).unwrap_or_else(|_| "null".to_owned()));
        if core.settled() {
            self.state_json = Some((core.version, s.clone()));
        }
        s
    }

    /// The SHA-256 of `state`, the JSON of `version` (cached like `encoded_state`).
    async fn state_hash(&mut self, version: u64, state: &Arc<str>) -> Arc<str> {
        if let Some((v, h)) = &self.state_sha
            && *v == version
        {
            return h.clone();
        }
        // Megabytes of hashing: off the async workers.
        let s = state.clone();
        let h = tokio::task::spawn_blocking(move || super::history::sha256_hex(s.as_bytes()))
            .await
            .unwrap_or_else(|_| super::history::sha256_hex(state.as_bytes()));
        if self
            .state
            .as_ref()
            .is_some_and(|c| c.settled() && c.version == version)
        {
            self.state_sha = Some((version, h.clone()));
        }
        h
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

    /// What an encrypted session's join answers instead of a state: the entries after `since`
    /// when they are all still stored and not too many, else the newest client snapshot and
    /// every entry after it (`whole`). `Err`: what to tell the joiner.
    async fn sealed_catch_up(
        &self,
        since: Option<u64>,
        head: u64,
    ) -> Result<(Option<SealedSnapshot>, Vec<OpEntry>, bool), String> {
        let snap = self
            .state
            .as_ref()
            .and_then(|c| c.client_snapshot().cloned());
        let read = |from: u64| async move {
            match self.entries_after(from, head).await {
                Ok(list) => Ok(is_complete(&list, from, head).then_some(list)),
                Err(e) => {
                    tracing::error!(session = %self.id, error = %e, "catch-up read failed");
                    Err("could not read history".to_owned())
                }
            }
        };
        if let Some(s) = since {
            // Far behind a newer snapshot, or behind trimmed history: the whole session.
            let far = snap
                .as_ref()
                .is_some_and(|p| s < p.version && head - s > self.config.limits.max_catch_up);
            if !far && let Some(list) = read(s).await? {
                return Ok((None, list, false));
            }
        }
        let from = snap.as_ref().map_or(0, |p| p.version);
        match read(from).await? {
            Some(list) => Ok((snap, list, true)),
            None => Err("the history after the last snapshot is incomplete".to_owned()),
        }
    }

    /// Tells `conn` the session can't take requests (its store failed, or it is shutting down)
    /// and says whether it did.
    pub(super) fn refuse_if_unavailable(&self, conn: &ConnHandle, rid: Option<&Json>) -> bool {
        let refused = self.broken || self.shutting_down;
        if refused {
            conn.error(ErrorCode::Internal, "session unavailable, join again", rid);
        }
        refused
    }

    /// The participant behind `conn`, or a `not_found` reply when it is not (or no longer) in.
    /// A connection taken out for lost access hears `forbidden` (DESIGN §9.1), others `not_found`.
    pub(super) fn member(&self, conn: &ConnHandle, rid: Option<&Json>) -> Option<&Participant> {
        let p = self.participants.get(&conn.id);
        if p.is_none() {
            let denied = self
                .state
                .as_ref()
                .is_some_and(|d| conn.role_in(&self.id, &d.meta) < Role::Viewer);
            if denied {
                conn.error(
                    ErrorCode::Forbidden,
                    format!("no access to session {}", self.id),
                    rid,
                );
            } else {
                conn.error(
                    ErrorCode::NotFound,
                    format!("not joined to session {}", self.id),
                    rid,
                );
            }
        }
        p
    }

    pub(super) fn presence(&mut self, conn: ConnHandle, data: Json, rid: Option<Json>) {
        let Some(p) = self.member(&conn, rid.as_ref()) else {
            return;
        };
        let conn = conn.id;
        let Some(doc) = &self.state else { return };
        if !check_permission(&doc.meta, &self.id, &p.conn.principal(), Role::Viewer) {
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
        if let ServerMessage::Presence { data, .. } = &msg
            && let Some(t) = playhead_of(data)
        {
            self.sessions.publish_playhead(&self.id, &user, t);
        }
        // Kept for late joiners and to follow edits.
        if let ServerMessage::Presence { data, .. } = msg {
            self.presence.set(&user, data);
            self.cluster_presence_set(&user, conn);
        }
        self.cluster_relay(&frame, true);
        let frame = Frame::from(frame);
        for (id, p) in &self.participants {
            if *id != conn && p.ready {
                p.conn.send_presence(&self.id, &user, frame.clone());
            }
        }
    }

    /// Relays another node's presence frame to this node's connections, paced like our own.
    pub(super) fn relay_remote_presence(&self, frame: Frame) {
        let msg = serde_json::from_str::<Json>(&frame).ok();
        let user: Option<Arc<str>> = msg
            .as_ref()
            .and_then(|v| v.get("user")?.as_str().map(Arc::from));
        let Some(user) = user else { return };
        if let Some(t) = msg.as_ref().and_then(|m| playhead_of(m.get("data")?)) {
            self.sessions.publish_playhead(&self.id, &user, t);
        }
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
        let frame = Frame::from(encode(&ServerMessage::Presence {
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
        if !check_permission(&doc.meta, &self.id, &pconn.principal(), Role::Owner) {
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
        self.announce(&Frame::from(frame), Some(conn));
        if role == Role::Removed {
            tracing::info!(session = %self.id, user = %target, "user removed");
            self.rotate_key().await;
        }
        if target != *pconn.user {
            let mut n = crate::social::notifications::Notifier::new_item(
                &target,
                montage_protocol::NotificationKind::RoleChanged,
                &self.id,
                &pconn.user,
            );
            n.role = Some(role);
            self.sessions.notifier.send(n);
        }
        self.revoke_lost_access();
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
        if doc.meta.roles.get(&user) == Some(&Role::Removed) {
            // Removal sticks: no invite brings a removed user back, only the owner's set_role.
            let _ = reply.send(Err(ErrorCode::Forbidden));
            return;
        }
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
        let frame = encode(&ServerMessage::RoleChanged {
            session: self.id.to_string(),
            user: user.clone(),
            role,
        });
        self.cluster_role(&user, role, &frame);
        self.announce(&Frame::from(frame), None);
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
                self.announce(&Frame::from(ev), None);
            }
        }
        if self.participants.is_empty() {
            self.idle_since = Instant::now();
        }
    }
}

/// A `joined` frame encoded without its state, with `state` (JSON text) put in: the document is
/// copied into the frame once, never into an intermediate tree.
fn with_state(encoded: String, state: Option<&str>) -> String {
    let Some(state) = state else { return encoded };
    match encoded.strip_prefix('{') {
        Some(rest) => format!("{{\"state\":{state},{rest}"),
        None => encoded,
    }
}

/// Missed edits from which a `compact` join gets them composed into one `delta` rather than
/// listed: below it the per-edit authors and times are worth the few bytes more.
pub(super) const COMPACT_AFTER: usize = 8;

/// Whether `list` holds every version after `since` up to `head`, in order. History trimmed by
/// `--history-days` leaves a gap that a catch-up must not paper over.
fn is_complete(list: &[OpEntry], since: u64, head: u64) -> bool {
    list.len() as u64 == head - since
        && list
            .iter()
            .zip(since + 1..)
            .all(|(e, want)| e.version == want)
}

/// The missed edits composed into one and compressed (`MediaDelta`, docs/OT.md §10.2); on the
/// blocking pool, as composing thousands of edits is real work.
async fn compact_entries(since: u64, list: Vec<OpEntry>) -> Option<montage_ot::CompressedDelta> {
    let compose = move || {
        let ops: Vec<_> = list.into_iter().map(|e| e.ops).collect();
        let composed = montage_ot::Op::compose_all(&ops);
        montage_ot::MediaDelta::new(since, vec![composed]).compress()
    };
    tokio::task::spawn_blocking(compose)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "composing a catch-up failed"))
        .ok()
}

/// The timeline playhead a presence `data` names (`{"playhead": SECONDS}`), if it is a usable
/// time.
pub(crate) fn playhead_of(data: &Json) -> Option<f64> {
    data.get("playhead")?
        .as_f64()
        .filter(|t| t.is_finite() && (0.0..=1.0e7).contains(t))
}
