//! The owner's settings of a session (DESIGN §9.1): link access and title (`set_link_role`,
//! `PATCH /v1/sessions/{id}`) and deletion. Whoever is left without access is taken out at once,
//! on this node and, through the bus, on every other.

use std::time::Duration;

use crate::sync::Frame;
use montage_protocol::{ErrorCode, Role, ServerMessage, encode, encode_with_rid};
use serde_json::Value as Json;
use tokio::sync::oneshot;

use super::ConnHandle;
use super::actor::Actor;
use crate::access::Principal;
use crate::bus::BusEvent;
use crate::store::{MAX_TITLE_CHARS, SessionUpdate};

/// How long a delete waits for the session's writes in flight before it goes ahead anyway.
const DRAIN_BEFORE_DELETE: Duration = Duration::from_secs(10);

/// A session's settings after a change (the `PATCH` answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Configured {
    pub link_role: Role,
    pub title: Option<String>,
    pub version: u64,
}

type Refused = (ErrorCode, String);

/// Checks a settings change before anything is stored.
pub fn validate(update: &SessionUpdate) -> Result<(), Refused> {
    if update.link_role == Some(Role::Owner) {
        return Err((
            ErrorCode::BadRequest,
            "link_role must be none, viewer, commenter or editor".into(),
        ));
    }
    if let Some(t) = &update.title
        && (t.chars().count() > MAX_TITLE_CHARS || t.chars().any(char::is_control))
    {
        return Err((
            ErrorCode::BadRequest,
            format!("a title is at most {MAX_TITLE_CHARS} characters, without control characters"),
        ));
    }
    Ok(())
}

impl Actor {
    /// The owner's check for a settings change or a delete.
    fn owner_check(&self, who: &Principal, what: &str) -> Result<(), Refused> {
        let Some(doc) = &self.state else {
            return Err((ErrorCode::NotFound, format!("no session {}", self.id)));
        };
        if self.broken || self.shutting_down {
            return Err((ErrorCode::Internal, "session unavailable, try again".into()));
        }
        if who.role_in(&self.id, &doc.meta) < Role::Owner {
            return Err((ErrorCode::Forbidden, format!("only an owner may {what}")));
        }
        Ok(())
    }

    /// `set_link_role` from a participant's socket.
    pub(super) async fn set_link_role(&mut self, conn: ConnHandle, role: Role, rid: Option<Json>) {
        let Some(p) = self.member(&conn, rid.as_ref()) else {
            return;
        };
        let pconn = p.conn.clone();
        let update = SessionUpdate {
            link_role: Some(role),
            ..SessionUpdate::default()
        };
        let checked = validate(&update)
            .and_then(|()| self.owner_check(&pconn.principal(), "change link access"));
        if let Err((code, message)) = checked {
            pconn.error(code, message, rid.as_ref());
            return;
        }
        if let Err((code, message)) = self.apply_settings(update, Some((&pconn, rid))).await {
            pconn.error(code, message, None);
        }
    }

    /// `PATCH /v1/sessions/{id}`.
    pub(super) async fn configure(
        &mut self,
        who: Principal,
        update: SessionUpdate,
        reply: oneshot::Sender<Result<Configured, Refused>>,
    ) {
        let checked = validate(&update).and_then(|()| self.owner_check(&who, "change settings"));
        let answer = match checked {
            Ok(()) => self.apply_settings(update, None).await,
            Err(e) => Err(e),
        };
        let _ = reply.send(answer);
    }

    /// Stores a change, tells everyone here and on other nodes, and takes out whoever lost
    /// access. `sender` gets the `link_role_changed` with its `rid`.
    async fn apply_settings(
        &mut self,
        mut update: SessionUpdate,
        sender: Option<(&ConnHandle, Option<Json>)>,
    ) -> Result<Configured, Refused> {
        // Narrowing link access in an encrypted session retires its key (DESIGN §9.4).
        if let (Some(doc), Some(to)) = (&self.state, update.link_role)
            && doc.is_sealed()
            && to < doc.meta.link_role
        {
            update.key_epoch = Some(doc.meta.key_epoch + 1);
        }
        if let Err(e) = self.store.update_session(&self.id, &update).await {
            tracing::error!(session = %self.id, error = %e, "settings update failed");
            return Err((ErrorCode::Internal, "could not store the settings".into()));
        }
        let frame = self.settings_changed(&update);
        if let Some(cl) = &self.cluster {
            cl.bus.publish(BusEvent::Settings {
                session: self.id.to_string(),
                link_role: update.link_role.map(|r| r.as_str().to_owned()),
                title: update.title.clone(),
                key_epoch: update.key_epoch,
            });
        }
        if let Some(k) = update.key_epoch {
            self.key_rotated(k);
        }
        if let Some(frame) = frame {
            let except = sender.map(|(conn, rid)| {
                let msg = ServerMessage::LinkRoleChanged {
                    session: self.id.to_string(),
                    role: update.link_role.unwrap_or(Role::Removed),
                };
                conn.send(encode_with_rid(&msg, rid.as_ref()));
                conn.id
            });
            self.announce(&frame, except);
        }
        self.revoke_lost_access();
        let doc = self
            .state
            .as_ref()
            .ok_or((ErrorCode::NotFound, String::new()))?;
        Ok(Configured {
            link_role: doc.meta.link_role,
            title: doc.meta.title.clone(),
            version: doc.version,
        })
    }

    /// Applies a stored change to this node's copy; the `link_role_changed` frame when the link
    /// role changed.
    fn settings_changed(&mut self, update: &SessionUpdate) -> Option<Frame> {
        let doc = self.state.as_mut()?;
        if let Some(t) = &update.title {
            doc.meta.title = (!t.is_empty()).then(|| t.clone());
        }
        let role = update.link_role?;
        doc.meta.link_role = role;
        Some(Frame::from(encode(&ServerMessage::LinkRoleChanged {
            session: self.id.to_string(),
            role,
        })))
    }

    /// A member of an encrypted session was removed: its key epoch moves on (stored, told to
    /// everyone here and on other nodes), so the removed user's key opens nothing new.
    pub(super) async fn rotate_key(&mut self) {
        let Some(doc) = &self.state else { return };
        if !doc.is_sealed() {
            return;
        }
        let update = SessionUpdate {
            key_epoch: Some(doc.meta.key_epoch + 1),
            ..SessionUpdate::default()
        };
        // A store failure is logged there; the removal it follows stands either way.
        let _ = self.apply_settings(update, None).await;
    }

    /// The key epoch is `key_epoch` now (stored): payloads under older ones are refused, and
    /// everyone here hears `key_rotated`.
    pub(super) fn key_rotated(&mut self, key_epoch: u64) {
        let Some(doc) = &mut self.state else { return };
        if key_epoch <= doc.meta.key_epoch {
            return;
        }
        doc.set_key_epoch(key_epoch);
        tracing::info!(session = %self.id, key_epoch, "key epoch moved");
        let frame = Frame::from(encode(&ServerMessage::KeyRotated {
            session: self.id.to_string(),
            key_epoch,
        }));
        self.announce(&frame, None);
    }

    /// Another node changed the settings (stored already).
    pub(super) fn on_remote_settings(&mut self, link_role: Option<String>, title: Option<String>) {
        let link_role = match link_role.as_deref().map(Role::parse) {
            Some(None) => {
                tracing::warn!(session = %self.id, "bus settings event with an unknown role");
                return;
            }
            Some(r) => r,
            None => None,
        };
        let update = SessionUpdate {
            link_role,
            title,
            ..SessionUpdate::default()
        };
        if let Some(frame) = self.settings_changed(&update) {
            self.announce(&frame, None);
        }
        self.revoke_lost_access();
    }

    /// Every connection whose effective role here fell below viewer leaves now, told why (a
    /// removal, a closed link, a token whose scope no longer names the session).
    pub(super) fn revoke_lost_access(&mut self) {
        let Some(doc) = &self.state else { return };
        let gone: Vec<u64> = self
            .participants
            .iter()
            .filter(|(_, p)| p.conn.role_in(&self.id, &doc.meta) < Role::Viewer)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(p) = self.participants.get(&id) {
                p.conn.link().stop_previews(&self.id);
                p.conn.send(encode(&ServerMessage::Error {
                    code: ErrorCode::Forbidden,
                    message: format!(
                        "no longer has access to session {}: ask its owner to share it",
                        self.id
                    ),
                    retry_after_ms: None,
                    session: Some(self.id.to_string()),
                    version: None,
                }));
            }
            self.leave(id);
        }
    }

    /// `DELETE /v1/sessions/{id}`: waits for the writes in flight, deletes everything of the
    /// session from the store, tells everyone, and leaves nothing loaded.
    pub(super) async fn delete(
        &mut self,
        who: Principal,
        reply: oneshot::Sender<Result<Vec<String>, Refused>>,
    ) {
        if let Err(e) = self.owner_check(&who, "delete the session") {
            let _ = reply.send(Err(e));
            return;
        }
        // A write landing after the delete would leave rows behind: drain the committer first.
        let deadline = tokio::time::Instant::now() + DRAIN_BEFORE_DELETE;
        while self.inflight > 0 || self.snapshot_in_flight {
            match tokio::time::timeout_at(deadline, self.done_rx.recv()).await {
                Ok(Some(r)) => self.on_commit(r),
                _ => break,
            }
        }
        let assets = match self.store.delete_session(&self.id).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(session = %self.id, error = %e, "delete failed");
                let _ = reply.send(Err((ErrorCode::Internal, "could not delete".into())));
                return;
            }
        };
        if let Some(cl) = &self.cluster {
            cl.bus.publish(BusEvent::Deleted {
                session: self.id.to_string(),
            });
        }
        self.forget_deleted();
        tracing::info!(session = %self.id, by = %who.user, assets = assets.len(), "session deleted");
        self.sessions.events.emit(
            "session.deleted",
            Some(&self.id),
            serde_json::json!({"by": *who.user}),
        );
        let _ = reply.send(Ok(assets));
    }

    /// The session is gone (deleted here or on another node): everyone is told and let go.
    pub(super) fn forget_deleted(&mut self) {
        let frame = Frame::from(encode(&ServerMessage::SessionDeleted {
            session: self.id.to_string(),
        }));
        for (_, p) in self.participants.drain() {
            p.conn.forget_presence(&self.id, None);
            p.conn.link().stop_previews(&self.id);
            p.conn.send(frame.clone());
        }
        self.state = None;
        self.social = None;
        self.idle_since = std::time::Instant::now();
    }
}
