//! The storage seam of Social: comments and suggestions of a session, each a JSON record the
//! server owns (`social::CommentRecord`, `montage_protocol::Suggestion`), kept in creation order.
//! A write returns once it is durable, so the server broadcasts only what a crash can't take back.

use super::StoreFuture;

/// Which list a social record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocialKind {
    Comments,
    Suggestions,
}

impl SocialKind {
    /// Its table in the SQL stores.
    pub fn table(self) -> &'static str {
        match self {
            SocialKind::Comments => "comments",
            SocialKind::Suggestions => "suggestions",
        }
    }
}

/// Durable comments and suggestions. `put` inserts or replaces a record by id and keeps the
/// position of its first insert; `list` gives a session's records in that order. A backend
/// implements those two; the named forms below are for callers.
pub trait SocialStore: Send + Sync + 'static {
    fn put<'a>(
        &'a self,
        kind: SocialKind,
        session: &'a str,
        id: &'a str,
        record: &'a str,
    ) -> StoreFuture<'a, ()>;
    fn list<'a>(&'a self, kind: SocialKind, session: &'a str) -> StoreFuture<'a, Vec<String>>;
    /// Keeps `record` as comment `id`'s state from session version `version` on (restoring a
    /// thread to a version reads it back).
    fn keep_comment_state<'a>(
        &'a self,
        session: &'a str,
        id: &'a str,
        version: u64,
        record: &'a str,
    ) -> StoreFuture<'a, ()>;
    /// Every comment of the session with kept states: its last record kept at or before
    /// `version`, or `None` if it was made after.
    fn comments_at<'a>(
        &'a self,
        session: &'a str,
        version: u64,
    ) -> StoreFuture<'a, Vec<(String, Option<String>)>>;

    fn put_comment<'a>(
        &'a self,
        session: &'a str,
        id: &'a str,
        record: &'a str,
    ) -> StoreFuture<'a, ()> {
        self.put(SocialKind::Comments, session, id, record)
    }
    fn comments<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Vec<String>> {
        self.list(SocialKind::Comments, session)
    }
    fn put_suggestion<'a>(
        &'a self,
        session: &'a str,
        id: &'a str,
        record: &'a str,
    ) -> StoreFuture<'a, ()> {
        self.put(SocialKind::Suggestions, session, id, record)
    }
    fn suggestions<'a>(&'a self, session: &'a str) -> StoreFuture<'a, Vec<String>> {
        self.list(SocialKind::Suggestions, session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upserts keep the first position; sessions and kinds are kept apart.
    async fn exercise(db: &dyn SocialStore) {
        db.put_comment("s", "c1", r#"{"v":1}"#).await.unwrap();
        db.put_comment("s", "c2", r#"{"v":2}"#).await.unwrap();
        db.put_comment("s", "c1", r#"{"v":3}"#).await.unwrap();
        db.put_comment("t", "c1", r#"{"v":4}"#).await.unwrap();
        db.put_suggestion("s", "c1", r#"{"s":1}"#).await.unwrap();
        assert_eq!(
            db.comments("s").await.unwrap(),
            vec![r#"{"v":3}"#, r#"{"v":2}"#]
        );
        assert_eq!(db.comments("t").await.unwrap(), vec![r#"{"v":4}"#]);
        assert_eq!(db.suggestions("s").await.unwrap(), vec![r#"{"s":1}"#]);
        assert!(db.suggestions("t").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn sqlite_social_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::SqliteStore::open(dir.path()).await.unwrap();
        exercise(&db).await;
    }

    #[tokio::test]
    async fn postgres_social_semantics() {
        crate::store::postgres::testdb::with_store("postgres_social_semantics", async |db| {
            exercise(db).await
        })
        .await;
    }
}
