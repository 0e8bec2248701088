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
    fn keep_comment_state<'a>(
        &'a self,
        session: &'a str,
        id: &'a str,
        version: u64,
        record: &'a str,
    ) -> StoreFuture<'a, ()> {
        self.comment_states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((
                session.to_owned(),
                id.to_owned(),
                version,
                record.to_owned(),
            ));
        Box::pin(async { Ok(()) })
    }
    fn comments_at<'a>(
        &'a self,
        session: &'a str,
        version: u64,
    ) -> StoreFuture<'a, Vec<(String, Option<String>)>> {
        let g = self
            .comment_states
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        for (s, id, v, record) in g.iter() {
            if s != session {
                continue;
            }
            let i = match out.iter().position(|(o, _)| o == id) {
                Some(i) => i,
                None => {
                    out.push((id.clone(), None));
                    out.len() - 1
                }
            };
            if *v <= version {
                out[i].1 = Some(record.clone());
            }
        }
        Box::pin(async move { Ok(out) })
    }
}
