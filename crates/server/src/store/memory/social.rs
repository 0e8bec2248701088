//! `SocialStore` in memory.

use crate::store::{SocialKind, SocialStore, StoreFuture};

use super::MemoryStore;

impl SocialStore for MemoryStore {
    fn put<'a>(
        &'a self,
        kind: SocialKind,
        session: &'a str,
        id: &'a str,
        record: &'a str,
    ) -> StoreFuture<'a, ()> {
        let mut g = self.social.lock().unwrap_or_else(|p| p.into_inner());
        let list = g.entry((kind, session.to_owned())).or_default();
        match list.iter_mut().find(|(i, _)| i == id) {
            Some(e) => e.1 = record.to_owned(),
            None => list.push((id.to_owned(), record.to_owned())),
        }
        Box::pin(async { Ok(()) })
    }
    fn list<'a>(&'a self, kind: SocialKind, session: &'a str) -> StoreFuture<'a, Vec<String>> {
        let g = self.social.lock().unwrap_or_else(|p| p.into_inner());
        let r = g
            .get(&(kind, session.to_owned()))
            .map(|l| l.iter().map(|(_, r)| r.clone()).collect())
            .unwrap_or_default();
        Box::pin(async move { Ok(r) })
    }
}
