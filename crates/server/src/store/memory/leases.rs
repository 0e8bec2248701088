//! Home-node leases in memory (the test double of `postgres/leases.rs`), on this process's
//! clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::store::{Lease, LeaseStore, StoreFuture, Write};

#[derive(Default)]
pub struct MemoryLeases {
    /// session → (holder, epoch, expiry); a released lease has no holder.
    held: Mutex<HashMap<String, (String, u64, Instant)>>,
}

impl MemoryLeases {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, u64, Instant)>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Fenced` when an append's epoch is not its session's lease epoch.
    pub(super) fn check_fences(&self, batch: &[Write]) -> Result<()> {
        let held = self.held();
        for w in batch {
            if let Write::Op {
                session,
                fence: Some(epoch),
                ..
            } = w
                && held.get(session).map(|l| l.1) != Some(*epoch)
            {
                return Err(Error::Fenced {
                    session: session.clone(),
                    epoch: *epoch,
                });
            }
        }
        Ok(())
    }
}

impl LeaseStore for MemoryLeases {
    fn acquire<'a>(
        &'a self,
        session: &'a str,
        node: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Lease> {
        let now = Instant::now();
        let mut held = self.held();
        let l = held
            .entry(session.to_owned())
            .or_insert_with(|| (String::new(), 0, now));
        if l.2 <= now || l.0 == node {
            *l = (node.to_owned(), l.1 + 1, now + ttl);
        }
        let lease = Lease {
            node: l.0.clone(),
            epoch: l.1,
        };
        Box::pin(async move { Ok(lease) })
    }

    fn renew<'a>(
        &'a self,
        node: &'a str,
        sessions: &'a [String],
        ttl: Duration,
    ) -> StoreFuture<'a, Vec<(String, u64)>> {
        let now = Instant::now();
        let renewed = self
            .held()
            .iter_mut()
            .filter(|(s, l)| l.0 == node && sessions.contains(s))
            .map(|(s, l)| {
                l.2 = now + ttl;
                (s.clone(), l.1)
            })
            .collect();
        Box::pin(async move { Ok(renewed) })
    }

    fn release<'a>(&'a self, session: &'a str, node: &'a str, epoch: u64) -> StoreFuture<'a, ()> {
        if let Some(l) = self.held().get_mut(session)
            && l.0 == node
            && l.1 == epoch
        {
            *l = (String::new(), epoch, Instant::now());
        }
        Box::pin(async { Ok(()) })
    }
}
