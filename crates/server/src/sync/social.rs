//! The session actor's side of Social: membership and roles come from the actor, the rules
//! from `crate::social`. Every record is durable in the store before its event goes out;
//! accepted suggestions go through the same path as any edit.

use std::sync::Arc;

use crate::sync::Frame;
use montage_ot::Op;
use montage_protocol::{
    ErrorCode, NotificationKind, ServerMessage, Suggestion, encode, encode_with_rid,
};
use serde_json::Value as Json;

use super::ConnHandle;
use super::actor::{Action, Actor, EditRequest};
use crate::clock::{new_id, now_rfc3339};
use crate::social::notifications::{self, Notifier};
use crate::social::suggestions::edit_client;
use crate::social::{Request, Social, SocialError, SocialWrite};

impl Actor {
    /// Loads the session's comments and suggestions on first use.
    pub(super) async fn ensure_social(&mut self) -> Result<(), SocialError> {
        if self.social.is_some() {
            return Ok(());
        }
        let internal = |what: String| {
            tracing::error!(session = %self.id, error = %what, "social load failed");
            crate::social::refuse(ErrorCode::Internal, "could not read comments")
        };
        let Some(store) = self.store.social() else {
            return Err(crate::social::refuse(
                ErrorCode::NotSupported,
                "this server's store keeps no comments",
            ));
        };
        let comments = store
            .comments(&self.id)
            .await
            .map_err(|e| internal(e.to_string()))?;
        let suggestions = store
            .suggestions(&self.id)
            .await
            .map_err(|e| internal(e.to_string()))?;
        let mut social = Social::load(comments, suggestions).map_err(internal)?;
        let head = self.state.as_ref().map_or(0, |d| d.version);
        let mut writes = Vec::new();
        for id in social.repair(head) {
            if let Some(s) = social.suggestion(&id) {
                writes.push(SocialWrite::suggestion(s));
            }
        }
        // Edits made while a failed write was being recovered: bring anchors up to date.
        if let Some(doc) = &self.state {
            for id in social.follow_anchors(&doc.doc) {
                if let Some(r) = social.comment(&id) {
                    writes.push(SocialWrite::comment(r));
                }
            }
        }
        self.social = Some(social);
        self.persist(&writes).await
    }

    /// Writes records durably; a failure leaves memory ahead of the store, so the session
    /// reloads.
    async fn persist(&mut self, writes: &[SocialWrite]) -> Result<(), SocialError> {
        let owner = self.store.clone();
        let Some(store) = owner.social() else {
            return Ok(());
        };
        let head = self.state.as_ref().map_or(0, |d| d.version);
        for w in writes {
            let r = match w {
                SocialWrite::Comment { id, record } => {
                    match store.put_comment(&self.id, id, record).await {
                        // Its state as of this version, for restoring its thread later.
                        Ok(()) => store.keep_comment_state(&self.id, id, head, record).await,
                        e => e,
                    }
                }
                SocialWrite::Suggestion { id, record } => {
                    store.put_suggestion(&self.id, id, record).await
                }
            };
            if let Err(e) = r {
                tracing::error!(session = %self.id, error = %e, "social write failed");
                self.social = None;
                self.abandon();
                return Err(crate::social::refuse(ErrorCode::Internal, "not stored"));
            }
        }
        Ok(())
    }

    /// Sends `msg` to everyone in the session once `version` is durable, with `rid` to `conn`.
    fn notify(&mut self, conn: u64, msg: &ServerMessage, rid: Option<&Json>, version: u64) {
        let to_all = Frame::from(encode(msg));
        let to_sender = match rid {
            Some(r) => Frame::from(encode_with_rid(msg, Some(r))),
            None => to_all.clone(),
        };
        self.when_committed(
            version,
            Action::Notify {
                conn,
                to_sender,
                to_all,
            },
        );
    }

    pub(super) async fn social_request(
        &mut self,
        conn: ConnHandle,
        req: Request,
        rid: Option<Json>,
    ) {
        let Some(p) = self.member(&conn, rid.as_ref()) else {
            return;
        };
        let pconn = p.conn.clone();
        if self.refuse_if_unavailable(&pconn, rid.as_ref()) {
            return;
        }
        if let Err(e) = self.handle_social(&pconn, req, rid.clone()).await {
            pconn.error(e.code, e.message, rid.as_ref());
        }
    }

    async fn handle_social(
        &mut self,
        pconn: &ConnHandle,
        req: Request,
        rid: Option<Json>,
    ) -> Result<(), SocialError> {
        self.ensure_social().await?;
        let (Some(doc), Some(social)) = (&self.state, &mut self.social) else {
            return Err(crate::social::refuse(ErrorCode::Internal, "not loaded"));
        };
        if doc.is_sealed() {
            sealed_social(&req)?;
        }
        let role = doc.meta.role_of(&pconn.user);
        let user = pconn.user.clone();
        let session = self.id.to_string();
        let head = doc.version;
        // Who hears of this in their inbox once it is stored, and the app event it makes.
        let mut inbox = Vec::new();
        let mut event: Option<(&str, Json)> = None;
        let (write, msg) = match req {
            Request::Comment(new) => {
                let r =
                    social.add_comment(&user, role, new, &doc.doc, new_id('c'), now_rfc3339())?;
                let c = r.comment.clone();
                let write = SocialWrite::comment(r);
                let replied_to = c
                    .parent_id
                    .as_deref()
                    .and_then(|p| social.comment(p))
                    .map(|p| {
                        let thread = p.comment.parent_id.as_deref().unwrap_or(&p.comment.id);
                        (p.comment.author_id.clone(), thread.to_owned())
                    });
                inbox = notifications::for_comment(
                    &session,
                    &user,
                    &c.id,
                    &c.mentions,
                    replied_to.as_ref().map(|(a, t)| (a.as_str(), t.as_str())),
                    |u| doc.meta.role_of(u),
                );
                event = Some((
                    "comment.created",
                    serde_json::json!({"comment_id": c.id, "author": c.author_id,
                                       "parent_id": c.parent_id}),
                ));
                let msg = ServerMessage::CommentAdded {
                    session,
                    comment: c,
                };
                (write, msg)
            }
            Request::Edit { id, content } => {
                let r = social.edit_comment(&user, role, &id, content)?;
                (SocialWrite::comment(r), updated(session, r))
            }
            Request::Delete { id } => {
                let r = social.delete_comment(&user, role, &id)?;
                (SocialWrite::comment(r), updated(session, r))
            }
            Request::Resolve { id, resolved } => {
                let r = social.resolve_comment(role, &id, resolved)?;
                if resolved && r.comment.author_id != *user {
                    self.sessions
                        .comment_resolved_by_other(&self.id, &r.comment.author_id);
                }
                if resolved {
                    event = Some((
                        "comment.resolved",
                        serde_json::json!({"comment_id": id, "author": r.comment.author_id,
                                           "resolved_by": *user}),
                    ));
                }
                (SocialWrite::comment(r), updated(session, r))
            }
            Request::React { id, emoji, on } => {
                let r = social.react(&user, role, &id, emoji, on)?;
                (SocialWrite::comment(r), updated(session, r))
            }
            Request::Suggest { base, ops, note } => {
                social.check_suggest(role, &note)?;
                self.check_applies(base, &ops).await?;
                let Some(social) = &mut self.social else {
                    return Ok(());
                };
                let s = social.add_suggestion(new_id('s'), &user, base, ops, note, now_rfc3339());
                (
                    SocialWrite::suggestion(s),
                    ServerMessage::SuggestionAdded {
                        session,
                        suggestion: s.clone(),
                    },
                )
            }
            Request::Reject { id } => {
                social.decidable(role, &id)?;
                let Some(s) = social.decide(&id, &user, None) else {
                    return Ok(());
                };
                if s.author_id != *user {
                    inbox.push(Notifier::new_item(
                        &s.author_id,
                        NotificationKind::SuggestionRejected,
                        &session,
                        &user,
                    ));
                }
                suggestion_updated(session, s)
            }
            Request::Accept { id } => {
                let s = social.decidable(role, &id)?;
                let (author, base, ops) = (
                    Arc::<str>::from(s.author_id.as_str()),
                    s.base,
                    s.ops.clone(),
                );
                let client = Arc::<str>::from(edit_client(&id));
                // Errors (the edit no longer applies) go to the editor; it stays pending.
                let Some(version) = self
                    .apply_edit(
                        pconn,
                        EditRequest::server_made(author, client, base, ops),
                        None,
                    )
                    .await
                else {
                    return Ok(());
                };
                let Some(social) = &mut self.social else {
                    return Ok(());
                };
                let Some(s) = social.decide(&id, &user, Some(version)) else {
                    return Ok(());
                };
                let (write, msg) = suggestion_updated(session.clone(), s);
                let credited = s.author_id.clone();
                self.persist(&[write]).await?;
                self.sessions.suggestion_accepted(&self.id, &credited);
                self.sessions.events.emit(
                    "suggestion.accepted",
                    Some(&self.id),
                    serde_json::json!({"suggestion_id": id, "author": credited,
                                       "accepted_by": *user, "version": version}),
                );
                if credited != *user {
                    self.sessions.notifier.send(Notifier::new_item(
                        &credited,
                        NotificationKind::SuggestionAccepted,
                        &session,
                        &user,
                    ));
                }
                // After the edit's `op`, once that version is durable.
                self.notify(pconn.id, &msg, rid.as_ref(), version);
                return Ok(());
            }
        };
        self.persist(&[write]).await?;
        self.notify(pconn.id, &msg, rid.as_ref(), head);
        for n in inbox {
            self.sessions.notifier.send(n);
        }
        if let Some((kind, data)) = event {
            self.sessions.events.emit(kind, Some(&self.id), data);
        }
        Ok(())
    }

    /// Partial restore of a comment thread (DESIGN §9.3): the thread rooted at comment `root`
    /// as it was at `version` — comments then take back their state, comments made since
    /// become tombstones — stored and announced as `comment_updated`, by an editor; replies
    /// with the head version (comments are not in the document: no edit is made).
    pub(super) async fn restore_thread(
        &mut self,
        conn: ConnHandle,
        version: u64,
        root: &str,
        reply: tokio::sync::oneshot::Sender<Result<(u64, String), ErrorCode>>,
    ) {
        if let Err(e) = self.ensure_social().await {
            conn.error(e.code, e.message, None);
            return;
        }
        let not_found = || {
            format!(
                "no layer, track, clip or comment {root} in the head or that version (or its track is gone)"
            )
        };
        if self
            .social
            .as_ref()
            .is_none_or(|s| s.comment(root).is_none())
        {
            conn.error(ErrorCode::NotFound, not_found(), None);
            return;
        }
        let Some(store) = self.store.social() else {
            return;
        };
        let then = match store.comments_at(&self.id, version).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(session = %self.id, error = %e, "reading comment history failed");
                conn.error(ErrorCode::Internal, "could not read comment history", None);
                return;
            }
        };
        let mut old = std::collections::HashMap::new();
        for (id, record) in then {
            let record = match record.map(|r| serde_json::from_str(&r)).transpose() {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(session = %self.id, comment = %id, error = %e, "kept comment state unreadable");
                    conn.error(ErrorCode::Internal, "could not read comment history", None);
                    return;
                }
            };
            old.insert(id, record);
        }
        let (Some(doc), Some(social)) = (&self.state, &mut self.social) else {
            return;
        };
        let head = doc.version;
        let changed = match social.restore_thread(root, &old) {
            Ok(c) => c,
            Err(e) => {
                conn.error(e.code, e.message, None);
                return;
            }
        };
        let writes: Vec<_> = changed.iter().map(|r| SocialWrite::comment(r)).collect();
        let session = self.id.to_string();
        let msgs: Vec<_> = changed
            .iter()
            .map(|r| updated(session.clone(), r))
            .collect();
        if self.persist(&writes).await.is_err() {
            let _ = reply.send(Err(ErrorCode::Internal));
            return;
        }
        for m in &msgs {
            self.notify(u64::MAX, m, None, head);
        }
        tracing::info!(session = %self.id, thread = root, version, by = %conn.user, comments = msgs.len(), "comment thread restored");
        let _ = reply.send(Ok((head, String::new())));
    }

    /// Refuses ops that would not apply at the head once transformed past the versions after
    /// `base` (checked on a copy; nothing changes).
    async fn check_applies(&mut self, base: u64, ops: &Op) -> Result<(), SocialError> {
        let Some(core) = &self.state else {
            return Ok(());
        };
        if let Err(r) = core.check_base(base) {
            return Err(match r.code {
                ErrorCode::Conflict => {
                    crate::social::refuse(ErrorCode::Conflict, format!("base {base} is too old"))
                }
                code => crate::social::refuse(code, r.message),
            });
        }
        if let Err(r) = core.check_work(base, ops, None) {
            return Err(crate::social::refuse(r.code, r.message));
        }
        let older = self
            .older_ops(base)
            .await
            .map_err(|r| crate::social::refuse(r.code, r.message))?;
        let Some(core) = &self.state else {
            return Ok(());
        };
        // Suggestions take the edit's path: the same budget, and off the runtime when heavy.
        let heavy = core.is_heavy(base, ops, &older, true);
        let ops = ops.clone();
        let checked = self
            .with_core(heavy, move |core| core.try_apply(base, ops, &older))
            .await
            .ok_or_else(|| {
                crate::social::refuse(ErrorCode::Internal, "session unavailable, join again")
            })?;
        checked.map_err(|r| match r.code {
            ErrorCode::BadRequest => {
                crate::social::bad(format!("the suggested edit: {}", r.message))
            }
            code => crate::social::refuse(code, r.message),
        })
    }

    /// After edit `version` was applied: anchors follow their targets; the changes are stored
    /// and announced as `comment_updated` after that version's `op`.
    pub(super) async fn anchors_after_edit(&mut self, version: u64) {
        let (Some(doc), Some(social)) = (&self.state, &mut self.social) else {
            return;
        };
        if !social.has_targets() {
            return;
        }
        let mut writes = Vec::new();
        let mut msgs = Vec::new();
        for id in social.follow_anchors(&doc.doc) {
            if let Some(r) = social.comment(&id) {
                writes.push(SocialWrite::comment(r));
                msgs.push(updated(self.id.to_string(), r));
            }
        }
        if writes.is_empty() || self.persist(&writes).await.is_err() {
            return;
        }
        for m in msgs {
            self.notify(u64::MAX, &m, None, version);
        }
    }
}

fn updated(session: String, r: &crate::social::CommentRecord) -> ServerMessage {
    ServerMessage::CommentUpdated {
        session,
        comment: r.comment.clone(),
    }
}

/// A decided suggestion's row and the frame that tells the session.
fn suggestion_updated(session: String, s: &Suggestion) -> (SocialWrite, ServerMessage) {
    let msg = ServerMessage::SuggestionUpdated {
        session,
        suggestion: s.clone(),
    };
    (SocialWrite::suggestion(s), msg)
}

/// What an encrypted session refuses of the social requests (DESIGN §9.4): suggestions, which
/// the server would have to read and apply, and annotations outside the sealed content.
/// Comments keep their ids, author, time and parent in the clear; the content is the client's
/// opaque string (a sealed one holds no `@`, so nobody is mentioned).
fn sealed_social(req: &Request) -> Result<(), SocialError> {
    let why = match req {
        Request::Suggest { .. } | Request::Accept { .. } | Request::Reject { .. } => {
            "suggestions are not available in an end-to-end encrypted session: the server can't read or apply them"
        }
        Request::Comment(c) if !c.annotations.is_empty() => {
            "in an end-to-end encrypted session a comment's annotations travel inside its sealed content"
        }
        _ => return Ok(()),
    };
    Err(crate::social::refuse(ErrorCode::BadRequest, why))
}
