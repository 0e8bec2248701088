//! `NotificationStore` in memory.

use montage_protocol::Notification;

use super::MemoryStore;
use crate::store::notifications::MAX_PER_USER;
use crate::store::{NewNotification, NotificationStore, StoreFuture};

impl NotificationStore for MemoryStore {
    fn add_notification<'a>(&'a self, n: &'a NewNotification) -> StoreFuture<'a, Notification> {
        let mut all = self.notifications.lock().unwrap_or_else(|p| p.into_inner());
        let grouped = n.group.as_ref().and_then(|g| {
            all.iter_mut()
                .find(|(u, k, item)| *u == n.user && k.as_ref() == Some(g) && !item.read)
        });
        let item = match grouped {
            Some((_, _, item)) => {
                item.count += 1;
                item.actor = n.actor.clone();
                item.time = n.time;
                item.comment_id = n.comment_id.clone();
                item.clone()
            }
            None => {
                let item = Notification {
                    id: n.id.clone(),
                    kind: n.kind,
                    session: n.session.clone(),
                    actor: n.actor.clone(),
                    time: n.time,
                    read: false,
                    comment_id: n.comment_id.clone(),
                    role: n.role,
                    count: 1,
                };
                all.push((n.user.clone(), n.group.clone(), item.clone()));
                item
            }
        };
        let mut times: Vec<i64> = all
            .iter()
            .filter(|(u, ..)| *u == n.user)
            .map(|(.., i)| i.time)
            .collect();
        if times.len() > MAX_PER_USER as usize {
            times.sort_unstable_by(|a, b| b.cmp(a));
            let keep_from = times[MAX_PER_USER as usize - 1];
            all.retain(|(u, _, i)| *u != n.user || i.time >= keep_from);
        }
        Box::pin(async move { Ok(item) })
    }

    fn notifications<'a>(
        &'a self,
        user: &'a str,
        unread: bool,
        before: Option<i64>,
        limit: u32,
    ) -> StoreFuture<'a, Vec<Notification>> {
        let all = self.notifications.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Notification> = all
            .iter()
            .filter(|(u, _, i)| {
                u == user && !(unread && i.read) && i.time < before.unwrap_or(i64::MAX)
            })
            .map(|(.., i)| i.clone())
            .collect();
        out.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
        out.truncate(limit as usize);
        Box::pin(async move { Ok(out) })
    }

    fn mark_read<'a>(&'a self, user: &'a str, ids: Option<&'a [String]>) -> StoreFuture<'a, u64> {
        let mut all = self.notifications.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = 0;
        for (u, _, i) in all.iter_mut() {
            if u == user && !i.read && ids.is_none_or(|ids| ids.contains(&i.id)) {
                i.read = true;
                changed += 1;
            }
        }
        Box::pin(async move { Ok(changed) })
    }
}
