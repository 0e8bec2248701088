//! `TaskStore` in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::StoreFuture;
use crate::store::tasks::*;

/// An in-memory `TaskStore`: for unit tests, and the fallback of stores without task tables
/// (tasks then live as long as the process).
#[derive(Default)]
pub struct MemoryTaskStore {
    inner: Mutex<Mem>,
}

#[derive(Default)]
struct Mem {
    tasks: HashMap<String, (TaskRecord, Option<i64>)>,
    keys: HashMap<String, String>,
    invites: HashMap<String, Invite>,
    invite_uses: std::collections::HashSet<(String, String)>,
    contributions: std::collections::BTreeMap<(String, String, String), u64>,
    awards: Vec<Award>,
    /// Published entries with their documents, in publishing order.
    showcase: Vec<(ShowcaseEntry, String)>,
    /// Issues' times, by number - 1.
    newsletters: Vec<i64>,
}

impl Mem {
    fn newsletter(&self, issue: u64) -> Option<Newsletter> {
        let at_ms = *self
            .newsletters
            .get(usize::try_from(issue).ok()?.checked_sub(1)?)?;
        let mut entries: Vec<_> = self
            .showcase
            .iter()
            .filter(|(e, _)| e.newsletter == Some(issue))
            .map(|(e, _)| e.clone())
            .collect();
        entries.sort_by(|a, b| (a.at_ms, &a.award).cmp(&(b.at_ms, &b.award)));
        Some(Newsletter {
            issue,
            at_ms,
            entries,
        })
    }
}

impl MemoryTaskStore {
    pub fn new() -> MemoryTaskStore {
        MemoryTaskStore::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Mem) -> T) -> T {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> StoreFuture<'a, T> {
    Box::pin(async move { Ok(v) })
}

impl TaskStore for MemoryTaskStore {
    fn create_task<'a>(&'a self, t: &'a NewTask) -> StoreFuture<'a, (TaskRecord, bool)> {
        ready(self.with(|m| {
            if let Some(id) = m.keys.get(&t.key)
                && let Some((rec, _)) = m.tasks.get(id)
            {
                return (rec.clone(), false);
            }
            let rec = TaskRecord {
                id: t.id.clone(),
                key: t.key.clone(),
                kind: t.kind.clone(),
                session: t.session.clone(),
                created_by: t.created_by.clone(),
                payload: t.payload.clone(),
                state: TaskState::Pending,
                attempts: 0,
                max_attempts: t.max_attempts,
                next_run_at_ms: t.now_ms,
                last_error: None,
                created_at_ms: t.now_ms,
                updated_at_ms: t.now_ms,
            };
            m.keys.insert(t.key.clone(), t.id.clone());
            m.tasks.insert(t.id.clone(), (rec.clone(), None));
            (rec, true)
        }))
    }

    fn task<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<TaskRecord>> {
        ready(self.with(|m| m.tasks.get(id).map(|(r, _)| r.clone())))
    }

    fn session_tasks<'a>(
        &'a self,
        session: &'a str,
        limit: u32,
    ) -> StoreFuture<'a, Vec<TaskRecord>> {
        ready(self.with(|m| {
            let mut v: Vec<TaskRecord> = m
                .tasks
                .values()
                .filter(|(r, _)| r.session.as_deref() == Some(session))
                .map(|(r, _)| r.clone())
                .collect();
            v.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
            v.truncate(limit.min(MAX_LIST_ROWS) as usize);
            v
        }))
    }

    fn claim_due(&self, now: i64, lease: i64, limit: u32) -> StoreFuture<'_, Vec<TaskRecord>> {
        ready(self.with(|m| {
            let mut due: Vec<&mut (TaskRecord, Option<i64>)> = m
                .tasks
                .values_mut()
                .filter(|(r, l)| match r.state {
                    TaskState::Pending | TaskState::Failed => r.next_run_at_ms <= now,
                    TaskState::Running => l.is_some_and(|l| l < now),
                    _ => false,
                })
                .collect();
            due.sort_by_key(|(r, _)| r.next_run_at_ms);
            due.into_iter()
                .take(limit as usize)
                .map(|(r, l)| {
                    r.state = TaskState::Running;
                    r.attempts += 1;
                    r.updated_at_ms = now;
                    *l = Some(lease);
                    r.clone()
                })
                .collect()
        }))
    }

    fn finish_task<'a>(
        &'a self,
        id: &'a str,
        outcome: &'a TaskOutcome,
        now: i64,
    ) -> StoreFuture<'a, Option<TaskRecord>> {
        ready(self.with(|m| {
            let (r, l) = m.tasks.get_mut(id)?;
            if r.state != TaskState::Running {
                return None;
            }
            match outcome {
                TaskOutcome::Succeeded => r.state = TaskState::Succeeded,
                TaskOutcome::Retry { at_ms, error } => {
                    r.state = TaskState::Failed;
                    r.next_run_at_ms = *at_ms;
                    r.last_error = Some(error.clone());
                }
                TaskOutcome::Dead { error } => {
                    r.state = TaskState::Dead;
                    r.last_error = Some(error.clone());
                }
            }
            *l = None;
            r.updated_at_ms = now;
            Some(r.clone())
        }))
    }

    fn reset_running(&self, now: i64) -> StoreFuture<'_, u64> {
        ready(self.with(|m| {
            let mut n = 0;
            for (r, l) in m.tasks.values_mut() {
                if r.state == TaskState::Running {
                    r.state = TaskState::Pending;
                    r.next_run_at_ms = now;
                    *l = None;
                    n += 1;
                }
            }
            n
        }))
    }

    fn next_due(&self) -> StoreFuture<'_, Option<i64>> {
        ready(self.with(|m| {
            m.tasks
                .values()
                .filter_map(|(r, l)| match r.state {
                    TaskState::Pending | TaskState::Failed => Some(r.next_run_at_ms),
                    TaskState::Running => *l,
                    _ => None,
                })
                .min()
        }))
    }

    fn create_invite<'a>(&'a self, i: &'a Invite) -> StoreFuture<'a, ()> {
        self.with(|m| m.invites.insert(i.id.clone(), i.clone()));
        ready(())
    }

    fn invite<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Invite>> {
        ready(self.with(|m| m.invites.get(id).cloned()))
    }

    fn session_invites<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Vec<Invite>> {
        ready(self.with(|m| {
            m.invites
                .values()
                .filter(|i| i.session == session)
                .cloned()
                .collect()
        }))
    }

    fn accept_invite<'a>(
        &'a self,
        id: &'a str,
        user: &'a str,
        now: i64,
    ) -> StoreFuture<'a, std::result::Result<Invite, InviteRefusal>> {
        ready(self.with(|m| {
            let used = m.invite_uses.contains(&(id.to_owned(), user.to_owned()));
            let Some(inv) = m.invites.get_mut(id) else {
                return Err(InviteRefusal::NotFound);
            };
            if let Err(r) = usable(inv, user, now) {
                return if used && r == InviteRefusal::Exhausted {
                    Ok(inv.clone())
                } else {
                    Err(r)
                };
            }
            if !used {
                inv.uses += 1;
            }
            let inv = inv.clone();
            m.invite_uses.insert((id.to_owned(), user.to_owned()));
            Ok(inv)
        }))
    }

    fn revoke_invite<'a>(&'a self, id: &'a str) -> StoreFuture<'a, bool> {
        ready(self.with(|m| m.invites.get_mut(id).map(|i| i.revoked = true).is_some()))
    }

    fn add_contributions<'a>(
        &'a self,
        adds: &'a [Contribution],
    ) -> StoreFuture<'a, Vec<Contribution>> {
        ready(self.with(|m| {
            adds.iter()
                .map(|c| {
                    let n = m
                        .contributions
                        .entry((c.session.clone(), c.user.clone(), c.kind.clone()))
                        .or_default();
                    *n += c.count;
                    Contribution {
                        count: *n,
                        ..c.clone()
                    }
                })
                .collect()
        }))
    }

    fn contributions<'a>(
        &'a self,
        session: Option<&'a str>,
        user: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<Contribution>> {
        ready(self.with(|m| {
            m.contributions
                .iter()
                .filter(|((s, u, _), _)| {
                    session.is_none_or(|x| x == s.as_str()) && user.is_none_or(|x| x == u.as_str())
                })
                .take(MAX_LIST_ROWS as usize)
                .map(|((s, u, k), n)| Contribution {
                    session: s.clone(),
                    user: u.clone(),
                    kind: k.clone(),
                    count: *n,
                })
                .collect()
        }))
    }

    fn insert_award<'a>(&'a self, a: &'a Award) -> StoreFuture<'a, bool> {
        ready(self.with(|m| {
            if m.awards.iter().any(|x| x.key == a.key) {
                return false;
            }
            m.awards.push(a.clone());
            true
        }))
    }

    fn awards<'a>(
        &'a self,
        session: Option<&'a str>,
        user: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<Award>> {
        ready(self.with(|m| {
            m.awards
                .iter()
                .filter(|a| {
                    session.is_none_or(|x| x == a.session) && user.is_none_or(|x| x == a.user)
                })
                .take(MAX_LIST_ROWS as usize)
                .cloned()
                .collect()
        }))
    }

    fn publish<'a>(&'a self, entry: &'a ShowcaseEntry, state: &'a str) -> StoreFuture<'a, bool> {
        ready(self.with(|m| {
            if m.showcase.iter().any(|(e, _)| e.award == entry.award) {
                return false;
            }
            m.showcase.push((entry.clone(), state.to_owned()));
            true
        }))
    }

    fn showcase(&self, before_ms: i64, limit: u32) -> StoreFuture<'_, Vec<ShowcaseEntry>> {
        ready(self.with(|m| {
            let mut list: Vec<_> = m
                .showcase
                .iter()
                .filter(|(e, _)| e.at_ms < before_ms)
                .map(|(e, _)| e.clone())
                .collect();
            list.sort_by(|a, b| (b.at_ms, &b.award).cmp(&(a.at_ms, &a.award)));
            list.truncate(limit as usize);
            list
        }))
    }

    fn showcase_state<'a>(
        &'a self,
        session: &'a str,
        version: u64,
    ) -> StoreFuture<'a, Option<String>> {
        ready(self.with(|m| {
            m.showcase
                .iter()
                .find(|(e, _)| e.session == session && e.version == version)
                .map(|(_, s)| s.clone())
        }))
    }

    fn issue_newsletter(&self, now_ms: i64, limit: u32) -> StoreFuture<'_, Option<Newsletter>> {
        ready(self.with(|m| {
            let mut fresh: Vec<usize> = (0..m.showcase.len())
                .filter(|&i| m.showcase[i].0.newsletter.is_none())
                .collect();
            if fresh.is_empty() {
                return None;
            }
            fresh.sort_by(|&a, &b| {
                let (a, b) = (&m.showcase[a].0, &m.showcase[b].0);
                (a.at_ms, &a.award).cmp(&(b.at_ms, &b.award))
            });
            fresh.truncate(limit as usize);
            m.newsletters.push(now_ms);
            let issue = m.newsletters.len() as u64;
            for i in fresh {
                m.showcase[i].0.newsletter = Some(issue);
            }
            m.newsletter(issue)
        }))
    }

    fn latest_newsletter(&self) -> StoreFuture<'_, Option<Newsletter>> {
        ready(self.with(|m| m.newsletter(m.newsletters.len() as u64)))
    }
}
