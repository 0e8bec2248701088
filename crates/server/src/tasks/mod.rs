//! The Task Manager: durable background work with retries.
//!
//! A task is a row in the store (`store::tasks`): pending → running → succeeded, or failed and
//! retried after an exponential backoff with jitter (capped), or dead after its last attempt or a
//! permanent failure. Its idempotency key makes creating it twice return the first one. A bounded
//! pool of workers claims due tasks; a claim is a lease, so a task whose worker vanished runs
//! again when the lease expires, and at boot every task left `running` by this node's previous
//! process is put back to pending: on SQLite every running task (one process owns the file), on
//! PostgreSQL only those this node claimed (other nodes may be running theirs; a dead node's come
//! back when their leases expire). Delivery is therefore at least once; the
//! webhook's delivery id lets receivers drop duplicates.
//!
//! Every state change is handed to a listener; the server's pushes a `task` frame to the
//! participants of the task's session.

pub mod connectors;
pub mod events;

use std::sync::Arc;
use std::time::Duration;

use montage_protocol::TaskInfo;
use serde_json::{Value as Json, json};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::store::tasks::{NewTask, TaskOutcome, TaskRecord, TaskState};
use crate::store::{MemoryTaskStore, Store, TaskStore};
use crate::tasks::connectors::{Connector, ConnectorConfig, SendOutcome, Webhook, WebhookSender};

/// Tunables of the Task Manager (`--task-*` flags).
#[derive(Debug, Clone)]
pub struct TaskConfig {
    /// Attempts running at once.
    pub workers: usize,
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles per failure up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A claimed task not finished within this is claimed again. Longer than a delivery timeout.
    pub lease: Duration,
    /// Longest sleep between looks at the store when nothing is due.
    pub poll_max: Duration,
}

impl Default for TaskConfig {
    fn default() -> TaskConfig {
        TaskConfig {
            workers: 4,
            max_attempts: 8,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            lease: Duration::from_secs(120),
            poll_max: Duration::from_secs(5),
        }
    }
}

use crate::clock::{now_ms, random_below, random_id};

/// The wait before attempt `attempts + 1`: base·2^(attempts−1), capped, then "equal jitter"
/// (half fixed, half random) so a receiver that comes back is not hit by every retry at once.
pub fn backoff(cfg: &TaskConfig, attempts: u32) -> Duration {
    let base = u64::try_from(cfg.backoff_base.as_millis()).unwrap_or(u64::MAX);
    let cap = u64::try_from(cfg.backoff_max.as_millis()).unwrap_or(u64::MAX);
    let exp = attempts.saturating_sub(1).min(40);
    let full = base.saturating_mul(1u64 << exp).min(cap).max(1);
    Duration::from_millis(full / 2 + random_below(full / 2 + 1))
}

/// What the `task` frame and the HTTP answers show of a task.
pub fn task_info(t: &TaskRecord) -> TaskInfo {
    TaskInfo {
        id: t.id.clone(),
        kind: t.kind.clone(),
        state: t.state.as_str().to_owned(),
        attempts: t.attempts,
        max_attempts: t.max_attempts,
        session: t.session.clone(),
        created_by: t.created_by.clone(),
        created_at: t.created_at_ms,
        updated_at: t.updated_at_ms,
        next_run_at: matches!(t.state, TaskState::Pending | TaskState::Failed)
            .then_some(t.next_run_at_ms),
        last_error: t.last_error.clone(),
        connector: serde_json::from_str::<Json>(&t.payload)
            .ok()
            .and_then(|p| p.get("connector").cloned()),
    }
}

/// [`task_info`] as JSON, for the HTTP answers.
pub fn task_json(t: &TaskRecord) -> Json {
    serde_json::to_value(task_info(t)).unwrap_or(Json::Null)
}

/// Called with every task whose state changed.
pub type TaskListener = Box<dyn Fn(&TaskRecord) + Send + Sync>;

/// What a caller asks for; the manager fills in the id, attempts and timing.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    pub key: String,
    pub kind: String,
    pub session: Option<String>,
    pub created_by: String,
    pub connector: Connector,
    /// The webhook body, stored so every attempt sends the same bytes.
    pub body: Json,
}

pub struct TaskManager {
    store: Arc<dyn Store>,
    /// Used when the store has no task tables.
    fallback: MemoryTaskStore,
    cfg: TaskConfig,
    connectors: ConnectorConfig,
    sender: Arc<dyn WebhookSender>,
    wake: Notify,
    listener: Option<TaskListener>,
}

impl TaskManager {
    pub fn new(
        store: Arc<dyn Store>,
        cfg: TaskConfig,
        connectors: ConnectorConfig,
        sender: Arc<dyn WebhookSender>,
        listener: Option<TaskListener>,
    ) -> Result<TaskManager> {
        if !connectors.urls.is_empty() && connectors.secret.is_empty() {
            return Err(Error::Config(
                "connector URLs are set but no webhook secret (--webhook-secret)".into(),
            ));
        }
        if store.task_store().is_none() {
            tracing::warn!("this store keeps no tasks: tasks, invites and awards live in memory");
        }
        Ok(TaskManager {
            store,
            fallback: MemoryTaskStore::new(),
            cfg,
            connectors,
            sender,
            wake: Notify::new(),
            listener,
        })
    }

    pub fn db(&self) -> &dyn TaskStore {
        self.store.task_store().unwrap_or(&self.fallback)
    }

    pub fn config(&self) -> &TaskConfig {
        &self.cfg
    }

    pub fn has_connector(&self, c: Connector) -> bool {
        self.connectors.urls.contains_key(&c)
    }

    fn changed(&self, t: &TaskRecord) {
        if let Some(l) = &self.listener {
            l(t);
        }
    }

    /// Stores a task (or finds the one with the same key: then `false`) and wakes a worker.
    pub async fn submit(&self, req: TaskRequest) -> Result<(TaskRecord, bool)> {
        let payload = json!({"connector": req.connector.as_str(), "body": req.body}).to_string();
        let new = NewTask {
            id: random_id(),
            key: req.key,
            kind: req.kind,
            session: req.session,
            created_by: req.created_by,
            payload,
            max_attempts: self.cfg.max_attempts.max(1),
            now_ms: now_ms(),
        };
        let (rec, fresh) = self.db().create_task(&new).await?;
        if fresh {
            self.changed(&rec);
            self.wake.notify_one();
        }
        Ok((rec, fresh))
    }

    /// Claims and runs due tasks with at most `workers` attempts at once until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        match self.db().reset_running(now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(tasks = n, "resuming tasks interrupted by the last stop"),
            Err(e) => tracing::error!(error = %e, "could not reset interrupted tasks"),
        }
        let workers = self.cfg.workers.max(1);
        let permits = Arc::new(Semaphore::new(workers));
        let running = TaskTracker::new();
        while !cancel.is_cancelled() {
            let free = permits.available_permits();
            let mut wait = self.cfg.poll_max;
            if free > 0 {
                let now = now_ms();
                let lease = now + i64::try_from(self.cfg.lease.as_millis()).unwrap_or(i64::MAX);
                match self.db().claim_due(now, lease, free as u32).await {
                    Ok(claimed) => {
                        let full = claimed.len() >= free;
                        for t in claimed {
                            let Ok(permit) = permits.clone().try_acquire_owned() else {
                                break;
                            };
                            self.changed(&t);
                            let me = self.clone();
                            running.spawn(async move {
                                me.attempt(t).await;
                                drop(permit);
                                me.wake.notify_one();
                            });
                        }
                        if full {
                            // More may be due: wait for a free worker (its finish wakes us).
                            wait = self.cfg.poll_max;
                        } else if let Ok(Some(next)) = self.db().next_due().await {
                            let ms = u64::try_from(next.saturating_sub(now_ms())).unwrap_or(0);
                            wait = wait.min(Duration::from_millis(ms));
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "claiming tasks failed"),
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        running.close();
        // Unfinished attempts stay `running` and are picked up at the next start.
        if tokio::time::timeout(Duration::from_secs(5), running.wait())
            .await
            .is_err()
        {
            tracing::warn!("some task attempts were still running at shutdown");
        }
    }

    async fn attempt(&self, t: TaskRecord) {
        let outcome = match self.deliver(&t).await {
            SendOutcome::Delivered => TaskOutcome::Succeeded,
            SendOutcome::Permanent(error) => TaskOutcome::Dead { error },
            SendOutcome::Transient(error) if t.attempts >= t.max_attempts => {
                TaskOutcome::Dead { error }
            }
            SendOutcome::Transient(error) => {
                let wait = backoff(&self.cfg, t.attempts);
                TaskOutcome::Retry {
                    at_ms: now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
                    error,
                }
            }
        };
        match self.db().finish_task(&t.id, &outcome, now_ms()).await {
            Ok(Some(rec)) => self.changed(&rec),
            Ok(None) => {}
            // The lease runs out and the task is tried again: at least once.
            Err(e) => tracing::error!(task = %t.id, error = %e, "recording a task outcome failed"),
        }
    }

    async fn deliver(&self, t: &TaskRecord) -> SendOutcome {
        let Ok(payload) = serde_json::from_str::<Json>(&t.payload) else {
            return SendOutcome::Permanent("unreadable payload".into());
        };
        let Some(connector) = payload
            .get("connector")
            .and_then(Json::as_str)
            .and_then(Connector::parse)
        else {
            return SendOutcome::Permanent("unknown connector".into());
        };
        let Some(url) = self.connectors.urls.get(&connector) else {
            // Configuration may come back after a restart: keep trying until the attempts end.
            return SendOutcome::Transient(format!("{} is not configured", connector.as_str()));
        };
        let body = payload
            .get("body")
            .cloned()
            .unwrap_or(Json::Null)
            .to_string();
        let ts = u64::try_from(now_ms() / 1000).unwrap_or(0);
        let hook = Webhook::signed(&self.connectors.secret, url, &t.id, ts, body);
        self.sender.send(&hook).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::tasks::connectors::MemorySender;

    fn manager(sender: Arc<MemorySender>, cfg: TaskConfig) -> Arc<TaskManager> {
        let mut c = ConnectorConfig::default();
        c.add_url("messenger=http://127.0.0.1:9/dm").unwrap();
        c.secret = b"k".to_vec();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        Arc::new(TaskManager::new(store, cfg, c, sender, None).unwrap())
    }

    fn request(key: &str) -> TaskRequest {
        TaskRequest {
            key: key.into(),
            kind: "share.direct_message".into(),
            session: Some("s".into()),
            created_by: "alice".into(),
            connector: Connector::Messenger,
            body: json!({"text": "hi"}),
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let cfg = TaskConfig {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1_000),
            ..TaskConfig::default()
        };
        for _ in 0..50 {
            let b1 = backoff(&cfg, 1).as_millis();
            assert!((50..=100).contains(&b1), "{b1}");
            let b3 = backoff(&cfg, 3).as_millis();
            assert!((200..=400).contains(&b3), "{b3}");
            let b30 = backoff(&cfg, 30).as_millis();
            assert!((500..=1_000).contains(&b30), "{b30}");
        }
    }

    #[tokio::test]
    async fn retries_then_succeeds_once() {
        let sender = Arc::new(MemorySender::new());
        sender.script(&[500, 503]);
        let cfg = TaskConfig {
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
            ..TaskConfig::default()
        };
        let m = manager(sender.clone(), cfg);
        let cancel = CancellationToken::new();
        let run = tokio::spawn(m.clone().run(cancel.clone()));
        let (t, fresh) = m.submit(request("k1")).await.unwrap();
        let (again, fresh_again) = m.submit(request("k1")).await.unwrap();
        assert_eq!(
            (t.id.clone(), fresh, fresh_again),
            (again.id, true, false),
            "idempotency key"
        );
        let done = loop {
            let r = m.db().task(&t.id).await.unwrap().unwrap();
            if matches!(r.state, TaskState::Succeeded | TaskState::Dead) {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        cancel.cancel();
        run.await.unwrap();
        assert_eq!((done.state, done.attempts), (TaskState::Succeeded, 3));
        let sent = sender.sent();
        assert_eq!(sent.len(), 3);
        assert!(
            sent.iter()
                .all(|h| h.delivery == t.id && h.body == sent[0].body)
        );
    }

    #[tokio::test]
    async fn permanent_failure_and_exhaustion_are_dead() {
        let sender = Arc::new(MemorySender::new());
        sender.script(&[404]);
        let cfg = TaskConfig {
            max_attempts: 2,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(1),
            ..TaskConfig::default()
        };
        let m = manager(sender.clone(), cfg);
        let cancel = CancellationToken::new();
        let run = tokio::spawn(m.clone().run(cancel.clone()));
        let (a, _) = m.submit(request("a")).await.unwrap();
        let wait_final = |id: String| {
            let m = m.clone();
            async move {
                loop {
                    let r = m.db().task(&id).await.unwrap().unwrap();
                    if matches!(r.state, TaskState::Succeeded | TaskState::Dead) {
                        return r;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        };
        let a = wait_final(a.id).await;
        assert_eq!((a.state, a.attempts), (TaskState::Dead, 1));
        sender.script(&[500, 500]);
        let (b, _) = m.submit(request("b")).await.unwrap();
        let b = wait_final(b.id).await;
        assert_eq!((b.state, b.attempts), (TaskState::Dead, 2));
        assert_eq!(b.last_error.as_deref(), Some("HTTP 500"));
        cancel.cancel();
        run.await.unwrap();
    }
}
