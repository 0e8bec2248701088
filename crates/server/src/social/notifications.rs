//! Notifications (DESIGN §9.6): a durable inbox per user, and a `notification` frame to every
//! open connection of the user on every node, joined to that session or not.
//!
//! Producers (session actors, the award writer, invites) hand a [`NewNotification`] to
//! [`Notifier::send`], which never waits: a bounded queue feeds one writer task that stores the
//! item (grouping a burst of replies in one thread into one unread item), then delivers it here
//! and publishes it on the bus for the other nodes. Under overload the queue refuses and the
//! item is logged and dropped — an inbox is not worth stalling a session for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::sync::Frame;
use montage_protocol::{NotificationKind, Role, ServerMessage, encode};
use tokio::sync::mpsc;

use crate::bus::{Bus, BusEvent};
use crate::clock::{new_id, now_ms};
use crate::store::{NewNotification, Store};
use crate::sync::conn::ConnHandle;

/// Items waiting for the writer; more are dropped (and logged).
pub const QUEUE: usize = 4_096;

/// The bus "session" that carries notifications to every node: a name no session can have
/// (session ids are printable).
pub const BUS_CHANNEL: &str = "\u{1}notifications";

pub struct Notifier {
    /// Open connections on this node, by user.
    conns: Mutex<HashMap<Arc<str>, Vec<ConnHandle>>>,
    queue: mpsc::Sender<NewNotification>,
}

impl Notifier {
    /// A notifier writing to `store` (nothing is stored or sent if it keeps no inboxes) and
    /// telling the other nodes through `bus`.
    pub fn start(store: Arc<dyn Store>, bus: Option<Arc<dyn Bus>>) -> Arc<Notifier> {
        let (queue, mut rx) = mpsc::channel::<NewNotification>(QUEUE);
        let notifier = Arc::new(Notifier {
            conns: Mutex::default(),
            queue,
        });
        let weak = Arc::downgrade(&notifier);
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                let Some(inbox) = store.notifications() else {
                    continue;
                };
                let item = match inbox.add_notification(&n).await {
                    Ok(item) => item,
                    Err(e) => {
                        tracing::warn!(user = %n.user, error = %e, "storing a notification failed");
                        continue;
                    }
                };
                let frame = encode(&ServerMessage::Notification { notification: item });
                if let Some(bus) = &bus {
                    bus.publish(BusEvent::Notification {
                        user: n.user.clone(),
                        session: n.session.clone(),
                        frame: frame.clone(),
                    });
                }
                match weak.upgrade() {
                    Some(notifier) => notifier.deliver(&n.user, &n.session, frame),
                    None => return,
                }
            }
        });
        notifier
    }

    /// Queues `n` for its user; never waits.
    pub fn send(&self, n: NewNotification) {
        if let Err(e) = self.queue.try_send(n) {
            let n = match &e {
                mpsc::error::TrySendError::Full(n) | mpsc::error::TrySendError::Closed(n) => n,
            };
            tracing::warn!(user = %n.user, kind = n.kind.as_str(), "notification dropped: queue full");
        }
    }

    /// A notification of `kind` for `user` about `session`, caused by `actor`.
    pub fn new_item(
        user: &str,
        kind: NotificationKind,
        session: &str,
        actor: &str,
    ) -> NewNotification {
        NewNotification {
            id: new_id('n'),
            user: user.to_owned(),
            kind,
            session: session.to_owned(),
            actor: actor.to_owned(),
            time: now_ms(),
            comment_id: None,
            role: None,
            group: None,
        }
    }

    /// Sends `frame` (about `session`) to every connection of `user` on this node, except those
    /// whose token is scoped to other sessions (DESIGN §9.1: such a token reaches only what it
    /// names).
    pub fn deliver(&self, user: &str, session: &str, frame: String) {
        let frame = Frame::from(frame);
        let conns = self.lock();
        for c in conns.get(user).into_iter().flatten() {
            let scope = c.link().scope();
            if scope.is_none_or(|s| s.role_in(session).is_some_and(|r| r >= Role::Viewer)) {
                c.send_unordered(frame.clone());
            }
        }
    }

    /// A connection opened: it hears its user's notifications from now on.
    pub fn attach(&self, conn: &ConnHandle) {
        self.lock()
            .entry(conn.user.clone())
            .or_default()
            .push(conn.clone());
    }

    /// A connection closed.
    pub fn detach(&self, conn: &ConnHandle) {
        let mut conns = self.lock();
        if let Some(list) = conns.get_mut(&conn.user) {
            list.retain(|c| c.id != conn.id);
            if list.is_empty() {
                conns.remove(&conn.user);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Vec<ConnHandle>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Who a new comment notifies: each user it mentions who can see the session (`role_of` at
/// least viewer), and the author of the comment it replies to (grouped per thread), never its
/// own author and nobody twice (a mention wins over a reply).
pub fn for_comment(
    session: &str,
    author: &str,
    comment_id: &str,
    mentions: &[String],
    replied_to: Option<(&str, &str)>,
    role_of: impl Fn(&str) -> Role,
) -> Vec<NewNotification> {
    let mut out: Vec<NewNotification> = Vec::new();
    for m in mentions {
        if m != author && role_of(m) >= Role::Viewer && !out.iter().any(|n| n.user == *m) {
            let mut n = Notifier::new_item(m, NotificationKind::Mention, session, author);
            n.comment_id = Some(comment_id.to_owned());
            out.push(n);
        }
    }
    if let Some((parent_author, thread)) = replied_to
        && parent_author != author
        && role_of(parent_author) >= Role::Viewer
        && !out.iter().any(|n| n.user == parent_author)
    {
        let mut n = Notifier::new_item(parent_author, NotificationKind::Reply, session, author);
        n.comment_id = Some(comment_id.to_owned());
        // (PostgreSQL text can't hold NUL; thread ids are the server's, so `:` is unambiguous.)
        n.group = Some(format!("reply:{thread}:{session}"));
        out.push(n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comment_notifies_who_can_see_it_once_each_and_never_its_author() {
        let role = |u: &str| match u {
            "stranger" => Role::Removed,
            _ => Role::Editor,
        };
        let mentions = ["bob", "stranger", "ann", "bob", "carol"].map(String::from);
        let got = for_comment("s", "ann", "c9", &mentions, Some(("carol", "c1")), role);
        let who: Vec<_> = got.iter().map(|n| (n.user.as_str(), n.kind)).collect();
        assert_eq!(
            who,
            [
                ("bob", NotificationKind::Mention),
                ("carol", NotificationKind::Mention)
            ]
        );
        let got = for_comment("s", "ann", "c9", &[], Some(("carol", "c1")), role);
        assert_eq!(got[0].kind, NotificationKind::Reply);
        assert_eq!(got[0].group.as_deref(), Some("reply:c1:s"));
        assert!(for_comment("s", "ann", "c9", &[], Some(("ann", "c1")), role).is_empty());
        assert!(for_comment("s", "ann", "c9", &[], Some(("stranger", "c1")), role).is_empty());
    }
}
