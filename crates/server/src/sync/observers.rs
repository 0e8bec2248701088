//! What hangs off an edit, in one place. The edit path (`actor.rs`, `cluster/`) calls these
//! hooks and nothing else for side concerns:
//!
//! - [`Actor::after_apply`]: an edit was applied to the document (ours, not yet durable, or
//!   another node's, durable already). Carets and selections follow it.
//! - [`Actor::after_commit`]: one of this node's edits is durable and acked. Every
//!   [`EditObserver`] hears of it (Social counts it towards badges), and presence it moved goes
//!   out again after the `op`. Resolved comments and accepted suggestions reach the same
//!   observers (`social.rs`): everything a session credits goes one way.
//!
//! Comment anchors follow the edit too (`social.rs`, `anchors_after_edit`): they write to the
//! store, so they run after the edit is handed to the committer.

use std::sync::Arc;

use montage_ot::Op;

use super::actor::Actor;
use crate::presence::Moved;

/// Told of what a session did that others count: every edit that became durable on this node,
/// and the social events that earn credit. Implemented outside Media Sync (the contribution
/// tally) and registered with `Sessions::observe_edits`, so Media Sync needs no type of theirs.
/// Called on the session's actor: it must not block.
pub trait EditObserver: Send + Sync + 'static {
    fn edit_committed(&self, session: &str, user: &str, version: u64);
    /// `author`'s comment was resolved by somebody else.
    fn comment_resolved_by_other(&self, _session: &str, _author: &str) {}
    /// `author`'s suggestion was accepted and is durable.
    fn suggestion_accepted(&self, _session: &str, _author: &str) {}
}

impl Actor {
    /// Carets and selections follow the edit just applied (the core's head). `skip` leaves one
    /// user's presence alone (a retried edit's author who sent presence since). Returns the
    /// values it moved, so a rollback can put them back.
    pub(super) fn after_apply(&mut self, user: &Arc<str>, inverse: &Op, skip: bool) -> Vec<Moved> {
        let Some(core) = &self.state else {
            return Vec::new();
        };
        let Some(op) = core.head_op() else {
            return Vec::new();
        };
        self.presence
            .transform(op, inverse, user, &core.doc, skip.then_some(&**user))
    }

    /// `user`'s edit is durable as `version` and its `op` went out: observers hear of it, and
    /// the presence it moved is sent again.
    pub(super) fn after_commit(&mut self, version: u64, user: &str, moved: Vec<Arc<str>>) {
        self.sessions.edit_committed(&self.id, user, version);
        for u in moved {
            self.send_presence_of(&u);
        }
    }
}
