//! `AssetStore` on PostgreSQL.

use crate::store::rows::{ASSET_COLUMNS, asset_row, i64_of};
use crate::store::{AssetRecord, AssetStore, AssetUsage, StoreFuture};

use super::PgStore;

/// The PostgreSQL migration step's SQL.
pub(super) const ASSET_SCHEMA: &str = r#"
CREATE TABLE assets (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    format TEXT NOT NULL,
    width BIGINT,
    height BIGINT,
    duration DOUBLE PRECISION,
    bytes BIGINT NOT NULL,
    uploader TEXT NOT NULL,
    session TEXT,
    created_at BIGINT NOT NULL
);
"#;

impl AssetStore for PgStore {
    fn put_asset<'a>(&'a self, r: &'a AssetRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(&format!(
                "INSERT INTO assets ({ASSET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, format = excluded.format, \
                 width = excluded.width, height = excluded.height, duration = excluded.duration, \
                 bytes = excluded.bytes, uploader = excluded.uploader, session = excluded.session, \
                 created_at = excluded.created_at"
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
            let row = sqlx::query(&format!("SELECT {ASSET_COLUMNS} FROM assets WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(asset_row).transpose()
        })
    }

    fn usage<'a>(&'a self, uploader: &'a str) -> StoreFuture<'a, AssetUsage> {
        Box::pin(async move {
            let (count, bytes): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM assets WHERE uploader = $1",
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
