//! `HistoryStore` in memory.

use crate::store::{HistoryStore, Snapshot, StoreFuture, Trimmed, VersionInfo};

use super::MemoryStore;

impl HistoryStore for MemoryStore {
    fn base_at<'a>(&'a self, session: &'a str, version: u64) -> StoreFuture<'a, Option<Snapshot>> {
        let r = self.with(|m| {
            let e = m.get(session)?;
            let (&v, state) = e.checkpoints.range(..=version).next_back()?;
            Some(Snapshot {
                version: v,
                state: state.clone(),
            })
        });
        Box::pin(async move { Ok(r) })
    }

    fn name_version<'a>(
        &'a self,
        session: &'a str,
        version: u64,
        name: &'a str,
        by: &'a str,
        state: &'a str,
    ) -> StoreFuture<'a, bool> {
        let r = self.with(|m| match m.get_mut(session) {
            Some(e) if e.ops.contains_key(&version) => {
                e.named.insert(version, (name.to_owned(), by.to_owned()));
                e.checkpoints
                    .entry(version)
                    .or_insert_with(|| state.to_owned());
                true
            }
            _ => false,
        });
        Box::pin(async move { Ok(r) })
    }

    fn versions<'a>(
        &'a self,
        session: &'a str,
        before: u64,
        limit: u32,
    ) -> StoreFuture<'a, Vec<VersionInfo>> {
        let r = self.with(|m| {
            let Some(e) = m.get(session) else {
                return Vec::new();
            };
            let mut versions: Vec<u64> = e
                .checkpoints
                .keys()
                .chain(e.named.keys())
                .copied()
                .filter(|&v| v < before && e.ops.contains_key(&v))
                .collect();
            versions.sort_unstable_by(|a, b| b.cmp(a));
            versions.dedup();
            versions.truncate(limit as usize);
            versions
                .into_iter()
                .map(|v| {
                    let named = e.named.get(&v);
                    VersionInfo {
                        version: v,
                        time: e.ops[&v].time,
                        user: e.ops[&v].user.clone(),
                        name: named.map(|n| n.0.clone()),
                        named_by: named.map(|n| n.1.clone()),
                    }
                })
                .collect()
        });
        Box::pin(async move { Ok(r) })
    }

    fn named_count<'a>(&'a self, session: &'a str) -> StoreFuture<'a, u64> {
        let n = self.with(|m| m.get(session).map_or(0, |e| e.named.len() as u64));
        Box::pin(async move { Ok(n) })
    }

    fn trim<'a>(&'a self, cutoff: i64) -> StoreFuture<'a, Trimmed> {
        let r = self.with(|m| {
            let mut out = Trimmed::default();
            for e in m.values_mut() {
                let top = e.snapshot.as_ref().map_or(0, |s| s.version);
                let floor = e.checkpoints.keys().rev().copied().find(|v| {
                    *v <= top
                        && e.ops
                            .get(v)
                            .and_then(|o| o.time)
                            .is_some_and(|t| t < cutoff)
                });
                let Some(floor) = floor else { continue };
                let named = &e.named;
                let (ops, checkpoints) = (e.ops.len(), e.checkpoints.len());
                e.ops.retain(|v, _| *v >= floor || named.contains_key(v));
                e.checkpoints
                    .retain(|v, _| *v >= floor || named.contains_key(v));
                let removed = (ops - e.ops.len(), checkpoints - e.checkpoints.len());
                if removed != (0, 0) {
                    out.sessions += 1;
                    out.ops += removed.0 as u64;
                    out.checkpoints += removed.1 as u64;
                }
            }
            out
        });
        Box::pin(async move { Ok(r) })
    }
}
