//! `SocialStore` in memory.

use crate::store::{SocialStore, StoreFuture};

use super::MemoryStore;

impl MemoryStore {
    fn put_social(&self, kind: u8, session: &str, id: &str, record: &str) {
        let mut g = self.social.lock().unwrap_or_else(|p| p.into_inner());
        let list = g.entry((kind, session.to_owned())).or_default();
        match list.iter_mut().find(|(i, _)| i == id) {
            Some(e) => e.1 = record.to_owned(),
            None => list.push((id.to_owned(), record.to_owned())),
        }
    }
    fn list_social(&self, kind: u8, session: &str) -> Vec<String> {
        let g = self.social.lock().unwrap_or_else(|p| p.into_inner());
        g.get(&(kind, session.to_owned()))
            .map(|l| l.iter().map(|(_, r)| r.clone()).collect())
            .unwrap_or_default()
    }
}

impl SocialStore for MemoryStore {
    fn put_comment<'a>(
        &'a self,
        session: &'a str,
        id: &'a str,
        record: &'a str,
    ) -> StoreFuture<'a, ()> {
        self.put_social(0, session, id, record);
        Box::pin(async { Ok(()) })
    }
    fn comments<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Vec<String>> {
        let r = self.list_social(0, session);
        Box::pin(async move { Ok(r) })
    }
    fn put_suggestion<'a>(
        &'a self,
        session: &'a str,
        id: &'a str,
        record: &'a str,
    ) -> StoreFuture<'a, ()> {
        self.put_social(1, session, id, record);
        Box::pin(async { Ok(()) })
    }
    fn suggestions<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Vec<String>> {
        let r = self.list_social(1, session);
        Box::pin(async move { Ok(r) })
    }
}
