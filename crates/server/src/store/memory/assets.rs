//! `AssetStore` in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{AssetRecord, AssetStore, AssetUsage, StoreFuture};

use super::MemoryStore;

/// The in-memory double's records (a field of [`MemoryStore`]).
#[derive(Default)]
pub struct MemoryAssets(Mutex<HashMap<String, AssetRecord>>);

impl MemoryAssets {
    /// Forgets the records of a session's assets; answers their ids.
    pub(super) fn remove_session(&self, session: &str) -> Vec<String> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let ids: Vec<String> = m
            .values()
            .filter(|r| r.session.as_deref() == Some(session))
            .map(|r| r.id.clone())
            .collect();
        for id in &ids {
            m.remove(id);
        }
        ids
    }
}

impl AssetStore for MemoryStore {
    fn put_asset<'a>(&'a self, r: &'a AssetRecord) -> StoreFuture<'a, ()> {
        let mut m = self.assets.0.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(r.id.clone(), r.clone());
        Box::pin(async { Ok(()) })
    }

    fn asset<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<AssetRecord>> {
        let m = self.assets.0.lock().unwrap_or_else(|p| p.into_inner());
        let r = m.get(id).cloned();
        Box::pin(async move { Ok(r) })
    }

    fn usage<'a>(&'a self, uploader: &'a str) -> StoreFuture<'a, AssetUsage> {
        let m = self.assets.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut u = AssetUsage::default();
        for r in m.values().filter(|r| r.uploader == uploader) {
            u.count += 1;
            u.bytes = u.bytes.saturating_add(r.bytes);
        }
        Box::pin(async move { Ok(u) })
    }
}
