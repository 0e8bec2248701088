//! `AssetStore` on SQLite.

use crate::store::rows::{ASSET_COLUMNS, asset_row, i64_of};
use crate::store::{AssetRecord, AssetStore, AssetUsage, StoreFuture};

use super::SqliteStore;

/// The SQLite table, created with the rest of `sqlite::SCHEMA` (`IF NOT EXISTS`: additive).
pub(super) const ASSET_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS assets (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    format TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    duration REAL,
    bytes INTEGER NOT NULL,
    uploader TEXT NOT NULL,
    session TEXT,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
-- The per-user asset quota sums a user's assets (#15).
CREATE INDEX IF NOT EXISTS assets_by_uploader ON assets (uploader);
"#;

impl AssetStore for SqliteStore {
    fn put_asset<'a>(&'a self, r: &'a AssetRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(&format!(
                "INSERT OR REPLACE INTO assets ({ASSET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .bind(&r.id)
            .bind(&r.kind)
            .bind(&r.format)
            .bind(r.width.map(i64::from))
            .bind(r.height.map(i64::from))
            .bind(r.duration)
            .bind(i64_of(r.bytes))
            .bind(&r.uploader)
            .bind(&r.session)
            .bind(i64_of(r.created_at))
            .execute(self.pool())
            .await?;
            Ok(())
        })
    }

    fn asset<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<AssetRecord>> {
        Box::pin(async move {
            let row = sqlx::query(&format!("SELECT {ASSET_COLUMNS} FROM assets WHERE id = ?"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(asset_row).transpose()
        })
    }

    fn usage<'a>(&'a self, uploader: &'a str) -> StoreFuture<'a, AssetUsage> {
        Box::pin(async move {
            let (count, bytes): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM assets WHERE uploader = ?",
            )
            .bind(uploader)
            .fetch_one(self.pool())
            .await?;
            Ok(AssetUsage {
                count: u64::try_from(count).unwrap_or(0),
                bytes: u64::try_from(bytes).unwrap_or(0),
            })
        })
    }
}
