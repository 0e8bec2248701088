//! `HistoryStore` in memory.

use crate::store::{HistoryStore, Snapshot, StoreFuture, VersionInfo};

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
}
