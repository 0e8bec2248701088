//! When a session's state is written whole, and when the session leaves memory: periodic
//! snapshots through the committer (ordered after the appends they cover), a direct snapshot
//! when nothing is in flight, and unloading once no one is here.

use montage_protocol::{ErrorCode, Role, encode_with_rid};
use serde_json::Value as Json;

use crate::access::check_permission;
use crate::store::Write;

use super::actor::Actor;
use super::core::SealedEdit;
use super::{ConnHandle, SessionMsg};

impl Actor {
    /// An encrypted session's client snapshot (`snapshot`, editors): checked by the core and
    /// written through the committer, after the appends it covers. Joins start from it once
    /// taken. Success has no reply; refusals go to the sender.
    pub(super) async fn client_snapshot(
        &mut self,
        conn: ConnHandle,
        version: u64,
        payload: SealedEdit,
        rid: Option<Json>,
    ) {
        let Some(p) = self.member(&conn, rid.as_ref()) else {
            return;
        };
        let pconn = p.conn.clone();
        let Some(core) = &self.state else { return };
        if !check_permission(&core.meta, &self.id, &pconn.principal(), Role::Editor) {
            let role = pconn.role_in(&self.id, &core.meta);
            let message = format!("{} may not store snapshots", role.as_str());
            pconn.error(ErrorCode::Forbidden, message, rid.as_ref());
            return;
        }
        if self.refuse_if_unavailable(&pconn, rid.as_ref()) {
            return;
        }
        let Some(core) = &mut self.state else { return };
        match core.take_client_snapshot(version, payload) {
            Ok(snapshot) => {
                let write = Write::Snapshot {
                    session: self.id.to_string(),
                    snapshot,
                };
                self.submit(write, version, true).await;
            }
            Err(r) => {
                pconn.send(encode_with_rid(&r.to_message(), rid.as_ref()));
            }
        }
    }

    /// Periodic snapshot through the committer, ordered after the appends it covers.
    pub(super) async fn maybe_snapshot(&mut self) {
        if self.broken || self.snapshot_in_flight {
            return;
        }
        let Some(snapshot) = self
            .state
            .as_ref()
            .and_then(|c| c.snapshot_if_due(self.snapshot_due))
        else {
            return;
        };
        let version = snapshot.version;
        self.snapshot_due = false;
        self.snapshot_in_flight = true;
        let write = Write::Snapshot {
            session: self.id.to_string(),
            snapshot,
        };
        self.submit(write, version, true).await;
    }

    /// A direct snapshot, when nothing of this session is in flight (idle unload, shutdown).
    pub(super) async fn save_snapshot_now(&mut self) {
        if self.broken || self.inflight > 0 || !self.idle() {
            return;
        }
        let Some(snapshot) = self.state.as_ref().and_then(|c| c.snapshot_if_moved()) else {
            return;
        };
        match self.store.save_snapshot(&self.id, &snapshot).await {
            Ok(()) => {
                if let Some(core) = &mut self.state {
                    core.snapshot_written(snapshot.version);
                }
            }
            Err(e) => tracing::warn!(session = %self.id, error = %e, "snapshot failed"),
        }
    }

    /// Leaves memory when no one is here. Messages that raced with leaving are handed to the
    /// registry, which loads the session afresh for them.
    pub(super) async fn unload(&mut self) -> bool {
        self.save_snapshot_now().await;
        if !self.rx.is_empty() {
            return false;
        }
        self.sessions.remove_if(&self.id, self.generation);
        self.rx.close();
        let mut waiting = std::mem::take(&mut self.deferred);
        while let Ok(m) = self.rx.try_recv() {
            waiting.push(m);
        }
        for m in waiting {
            // Only joins, reads and HTTP requests can be waiting: nobody is a participant any more.
            if matches!(
                m,
                SessionMsg::Join { .. }
                    | SessionMsg::GetState { .. }
                    | SessionMsg::Restore { .. }
                    | SessionMsg::Grant { .. }
                    | SessionMsg::Configure { .. }
                    | SessionMsg::Delete { .. }
            ) {
                let sessions = self.sessions.clone();
                let id = self.id.clone();
                tokio::spawn(async move {
                    let _ = sessions.send(&id, m, true).await;
                });
            }
        }
        tracing::debug!(session = %self.id, "unloaded");
        true
    }
}
