//! The storage seam of notifications (DESIGN §9.6): each user's inbox. Implemented for SQLite
//! and PostgreSQL by `sql_records.rs` and by `memory/`.

use montage_protocol::{Notification, NotificationKind, Role};

use super::StoreFuture;

/// Items kept per user: the oldest beyond it go when a new one arrives.
pub const MAX_PER_USER: u32 = 1_000;

/// A notification to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub id: String,
    pub user: String,
    pub kind: NotificationKind,
    pub session: String,
    pub actor: String,
    pub time: i64,
    pub comment_id: Option<String>,
    pub role: Option<Role>,
    /// Items with the same key join one unread item (its `count` grows; its actor, time and
    /// comment become the newest) instead of adding another.
    pub group: Option<String>,
}

pub trait NotificationStore: Send + Sync + 'static {
    /// Stores `n` (or joins it to the unread item of its group) and returns the item as it now
    /// stands. Keeps at most [`MAX_PER_USER`] items for the user.
    fn add_notification<'a>(&'a self, n: &'a NewNotification) -> StoreFuture<'a, Notification>;
    /// The user's items, newest first: only unread ones if `unread`, older than `before` (ms)
    /// if given, at most `limit`.
    fn notifications<'a>(
        &'a self,
        user: &'a str,
        unread: bool,
        before: Option<i64>,
        limit: u32,
    ) -> StoreFuture<'a, Vec<Notification>>;
    /// Marks the user's items `ids` (all of them when `None`) read; returns how many changed.
    fn mark_read<'a>(&'a self, user: &'a str, ids: Option<&'a [String]>) -> StoreFuture<'a, u64>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn item(id: &str, user: &str, group: Option<&str>, time: i64) -> NewNotification {
        NewNotification {
            id: id.into(),
            user: user.into(),
            kind: if group.is_some() {
                NotificationKind::Reply
            } else {
                NotificationKind::Mention
            },
            session: "s".into(),
            actor: format!("actor{time}"),
            time,
            comment_id: Some(format!("c{time}")),
            role: None,
            group: group.map(str::to_owned),
        }
    }

    /// Items list newest first per user; a group joins its unread item until that is read;
    /// marking read by id and all at once.
    async fn inbox_round_trip(s: &dyn Store) {
        let n = s.notifications().expect("an inbox store");
        n.add_notification(&item("n1", "bob", None, 1))
            .await
            .unwrap();
        let first = n
            .add_notification(&item("n2", "bob", Some("t"), 2))
            .await
            .unwrap();
        assert_eq!((first.id.as_str(), first.count), ("n2", 1));
        let joined = n
            .add_notification(&item("n3", "bob", Some("t"), 3))
            .await
            .unwrap();
        assert_eq!(
            (joined.id.as_str(), joined.count, joined.actor.as_str()),
            ("n2", 2, "actor3")
        );
        n.add_notification(&item("n4", "ann", Some("t"), 4))
            .await
            .unwrap();
        let ids = |l: Vec<montage_protocol::Notification>| -> Vec<String> {
            l.into_iter().map(|i| i.id).collect()
        };
        assert_eq!(
            ids(n.notifications("bob", true, None, 10).await.unwrap()),
            ["n2", "n1"]
        );
        assert_eq!(
            ids(n.notifications("bob", true, Some(3), 10).await.unwrap()),
            ["n1"]
        );
        assert_eq!(
            n.mark_read("bob", Some(&["n2".into(), "n4".into()]))
                .await
                .unwrap(),
            1
        );
        // Read: the group starts a new item.
        let again = n
            .add_notification(&item("n5", "bob", Some("t"), 5))
            .await
            .unwrap();
        assert_eq!((again.id.as_str(), again.count), ("n5", 1));
        assert_eq!(
            ids(n.notifications("bob", true, None, 10).await.unwrap()),
            ["n5", "n1"]
        );
        assert_eq!(n.mark_read("bob", None).await.unwrap(), 2);
        assert!(
            n.notifications("bob", true, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let all = n.notifications("bob", false, None, 10).await.unwrap();
        assert!(all.iter().all(|i| i.read) && all.len() == 3);
        assert_eq!(
            ids(n.notifications("ann", false, None, 10).await.unwrap()),
            ["n4"]
        );
        // As many ids as a request may name, in one statement; none is nothing.
        n.add_notification(&item("n6", "bob", None, 6))
            .await
            .unwrap();
        assert_eq!(n.mark_read("bob", Some(&[])).await.unwrap(), 0);
        let many: Vec<String> = (0..999)
            .map(|i| format!("x{i}"))
            .chain(["n6".to_owned()])
            .collect();
        assert_eq!(n.mark_read("bob", Some(&many)).await.unwrap(), 1);
        assert!(
            n.notifications("bob", true, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn sqlite_inbox_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::SqliteStore::open(dir.path()).await.unwrap();
        inbox_round_trip(&s).await;
    }

    #[tokio::test]
    async fn postgres_inbox_round_trip() {
        crate::store::postgres::testdb::with_store("postgres_inbox_round_trip", async |s| {
            inbox_round_trip(s).await
        })
        .await;
    }

    #[tokio::test]
    async fn memory_inbox_round_trip() {
        inbox_round_trip(&crate::store::MemoryStore::new()).await;
    }
}
