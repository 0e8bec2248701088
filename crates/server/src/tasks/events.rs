//! App events (DESIGN §9.6): what happened in the deployment, for the app's own backend —
//! `session.created`, `session.deleted`, `version.named`, `comment.created`, `comment.resolved`,
//! `suggestion.accepted`, `award.granted`. Each is appended to one numbered log in the store
//! (`store::events`; `GET /v1/events?after=SEQ` replays it) and, with `--events-url`, handed to
//! the Task Manager as a signed webhook keyed by the event id: retried with backoff, one delivery
//! id per event (docs/WEBHOOKS.md "App events").
//!
//! Producers never wait: a bounded queue feeds one writer, so the log's order is the order the
//! events were emitted on this node. Under overload an event is logged and dropped.
//!
//! The log and the webhook tasks are two writes: an event appended just before a stop (or while
//! the task store failed) has no task. At start the newest [`REDELIVER`] events are handed to the
//! Task Manager again; their task keys make that a no-op for those already handed over.

use std::sync::{Arc, OnceLock};

use serde_json::Value as Json;
use tokio::sync::mpsc;

use super::{TaskManager, TaskRequest};
use crate::clock::{new_id, now_ms};
use crate::store::{NewEvent, Store, StoredEvent};
use crate::tasks::connectors::Connector;

/// Events waiting for the writer; more are dropped (and logged).
pub const QUEUE: usize = 4_096;
/// The newest events handed to the Task Manager again at start.
pub const REDELIVER: u64 = 256;

pub struct EventLog {
    store: Arc<dyn Store>,
    queue: mpsc::Sender<NewEvent>,
    /// Set once the Task Manager runs; events before it are only logged in the store.
    tasks: Arc<OnceLock<Arc<TaskManager>>>,
}

impl EventLog {
    /// A log appending to `store` (nothing happens if it keeps no event log).
    pub fn start(store: Arc<dyn Store>) -> Arc<EventLog> {
        let log_store = store.clone();
        let (queue, mut rx) = mpsc::channel::<NewEvent>(QUEUE);
        let tasks: Arc<OnceLock<Arc<TaskManager>>> = Arc::default();
        let deliver = tasks.clone();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let Some(log) = store.events() else { continue };
                let seq = match log.append_event(&e).await {
                    Ok(seq) => seq,
                    Err(err) => {
                        tracing::warn!(event = %e.kind, error = %err, "appending an app event failed");
                        continue;
                    }
                };
                let Some(tasks) = deliver.get().filter(|t| t.has_connector(Connector::Events))
                else {
                    continue;
                };
                submit(tasks, StoredEvent { seq, event: e }).await;
            }
        });
        Arc::new(EventLog {
            store: log_store,
            queue,
            tasks,
        })
    }

    /// From now on events also go out as webhooks through `tasks` (when `--events-url` is set),
    /// starting with the newest [`REDELIVER`] already in the log.
    pub fn deliver_through(&self, tasks: Arc<TaskManager>) {
        if self.tasks.set(tasks.clone()).is_err() || !tasks.has_connector(Connector::Events) {
            return;
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            let Some(log) = store.events() else { return };
            let recent = match log.last_event_seq().await {
                Ok(last) => {
                    log.events_after(last.saturating_sub(REDELIVER), REDELIVER as u32)
                        .await
                }
                Err(e) => Err(e),
            };
            match recent {
                Ok(events) => {
                    for e in events {
                        submit(&tasks, e).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading the newest app events failed"),
            }
        });
    }

    /// Records an event of `kind` with `data`; never waits.
    pub fn emit(&self, kind: &str, session: Option<&str>, data: Json) {
        let e = NewEvent {
            id: new_id('e'),
            kind: kind.to_owned(),
            session: session.map(str::to_owned),
            data: data.to_string(),
            time: now_ms(),
        };
        if self.queue.try_send(e).is_err() {
            tracing::warn!(event = kind, "app event dropped: queue full");
        }
    }
}

/// Hands an appended event to the Task Manager as its webhook (once per event id).
async fn submit(tasks: &TaskManager, stored: StoredEvent) {
    let seq = stored.seq;
    let req = TaskRequest {
        key: format!("event:{}", stored.event.id),
        kind: "app.event".into(),
        // Not a session's task: its participants are not told of it.
        session: None,
        created_by: "montage".into(),
        connector: Connector::Events,
        body: stored.to_json(),
    };
    if let Err(err) = tasks.submit(req).await {
        tracing::warn!(seq, error = %err, "queueing an app event's webhook failed");
    }
}
