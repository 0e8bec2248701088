//! `SocialStore` on SQLite.

use crate::error::Result;
use crate::store::{SocialKind, SocialStore, StoreFuture};

use super::SqliteStore;

impl SqliteStore {
    /// Upserts one record; the row keeps its first `n`, so lists stay in creation order.
    async fn put_record(&self, table: &str, session: &str, id: &str, record: &str) -> Result<()> {
        let sql = format!(
            "INSERT INTO {table} (session, id, record) VALUES (?, ?, ?) \
             ON CONFLICT (session, id) DO UPDATE SET record = excluded.record"
        );
        sqlx::query(&sql)
            .bind(session)
            .bind(id)
            .bind(record)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn records(&self, table: &str, session: &str) -> Result<Vec<String>> {
        let sql = format!("SELECT record FROM {table} WHERE session = ? ORDER BY n");
        Ok(sqlx::query_scalar(&sql)
            .bind(session)
            .fetch_all(&self.pool)
            .await?)
    }
}

impl SocialStore for SqliteStore {
    fn put<'a>(
        &'a self,
        kind: SocialKind,
        session: &'a str,
        id: &'a str,
        record: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.put_record(kind.table(), session, id, record))
    }
    fn list<'a>(&'a self, kind: SocialKind, session: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(self.records(kind.table(), session))
    }
}
