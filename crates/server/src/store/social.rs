//! The storage seam of Social: comments and suggestions of a session, each a JSON record the
//! server owns (`social::CommentRecord`, `montage_protocol::Suggestion`), kept in creation order.
//! A write returns once it is durable, so the server broadcasts only what a crash can't take back.

use super::StoreFuture;

/// Durable comments and suggestions. `put_*` inserts or replaces a record by id and keeps the
/// position of its first insert; the lists come back in that order.
pub trait SocialStore: Send + Sync + 'static {
    fn put_comment<'a>(
        &'a self,
        session: &'a str,
        id: &'a str,
        record: &'a str,
    ) -> StoreFuture<'a, ()>;
    fn comments<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Vec<String>>;
    fn put_suggestion<'a>(
        &'a self,
        session: &'a str,
        id: &'a str,
        record: &'a str,
    ) -> StoreFuture<'a, ()>;
    fn suggestions<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Vec<String>>;
}
