//! The group committer: one writer task drains the appends of every session into one
//! transaction, so concurrent edits share one fsync.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::bus::{Bus, BusEvent};
use crate::metrics::Metrics;
use crate::store::{Store, Write};

use super::cluster;

/// A write for the group committer, with where to report the outcome.
#[derive(Debug)]
pub struct CommitItem {
    pub generation: u64,
    pub write: Write,
    pub done: mpsc::UnboundedSender<CommitResult>,
}

#[derive(Debug, Clone, Copy)]
pub struct CommitResult {
    pub version: u64,
    pub snapshot: bool,
    pub ok: bool,
    /// Not written because another node holds the version (shared store only).
    pub conflict: bool,
    /// The `generation` of the item.
    pub epoch: u64,
}

/// The writer task: drains whatever appends are queued — from any number of sessions — into one
/// transaction, so concurrent edits share one fsync.
pub async fn run_committer(
    store: Arc<dyn Store>,
    rx: mpsc::Receiver<CommitItem>,
    metrics: Arc<Metrics>,
    max_batch: usize,
) {
    run_committer_with_bus(store, rx, metrics, max_batch, None).await
}

/// `run_committer` that also publishes every committed version on the fan-out bus.
pub async fn run_committer_with_bus(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<CommitItem>,
    metrics: Arc<Metrics>,
    max_batch: usize,
    bus: Option<Arc<dyn Bus>>,
) {
    // A session whose write failed must not get later versions in (that would leave a gap):
    // its actor generation is poisoned, and a reload (or a conflict retry) starts a new one.
    // Generations only grow, so one entry per session — the newest poisoned one — is enough,
    // and it goes when a newer generation writes. The flag says whether it was a conflict.
    let mut poisoned: HashMap<String, (u64, bool)> = HashMap::new();
    let mut items = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut items, max_batch).await > 0 {
        let mut writes = Vec::with_capacity(items.len());
        let mut notify = Vec::with_capacity(items.len());
        for item in items.drain(..) {
            let (version, snapshot) = match &item.write {
                Write::Op { op, .. } => (op.version, false),
                Write::Snapshot { snapshot, .. } => (snapshot.version, true),
            };
            let key = (item.write.session().to_owned(), item.generation);
            match poisoned.get(&key.0) {
                Some(&(g, conflict)) if key.1 <= g => {
                    let _ = item.done.send(CommitResult {
                        version,
                        snapshot,
                        ok: false,
                        conflict,
                        epoch: key.1,
                    });
                    continue;
                }
                Some(_) => {
                    poisoned.remove(&key.0);
                }
                None => {}
            }
            notify.push((key, item.done, version, snapshot));
            writes.push(item.write);
        }
        if writes.is_empty() {
            continue;
        }
        let (result, conflicted) = cluster::commit_isolating_conflicts(&*store, &mut writes).await;
        let ok = match result {
            Ok(()) => {
                metrics.commit_batches_total.inc();
                true
            }
            Err(e) => {
                metrics.commit_failures_total.inc();
                tracing::error!(error = %e, writes = writes.len(), "group commit failed");
                false
            }
        };
        if ok && let Some(bus) = &bus {
            for w in &writes {
                if let Write::Op { session, op, .. } = w {
                    bus.publish(BusEvent::committed(session, op));
                }
            }
        }
        for ((session, generation), done, version, snapshot) in notify {
            let conflict = conflicted.contains(&session);
            if !ok || conflict {
                let e = poisoned.entry(session).or_insert((generation, conflict));
                *e = (e.0.max(generation), conflict);
            }
            let _ = done.send(CommitResult {
                version,
                snapshot,
                ok: ok && !conflict,
                conflict,
                epoch: generation,
            });
        }
    }
}
