//! The storage seam of asset metadata: what each uploaded asset is (kind, format, size, duration),
//! who uploaded it and when. The bytes live in the blob store (`crate::assets`); this is the
//! record beside them, written once on upload and read by `GET /v1/assets/{id}/meta`.
//!
//! Implemented here for all three stores, so the feature stays in one file: SQLite (the table is
//! created with the rest of its schema), PostgreSQL (migration step "assets" in
//! `postgres::MIGRATIONS`) and the in-memory double.

use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::Row;

use super::{MemoryStore, PgStore, SqliteStore, StoreFuture};
use crate::error::Result;

/// What is known of one stored asset.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetRecord {
    /// 32 hex digits (`crate::assets::new_asset_id`).
    pub id: String,
    /// `image`, `video` or `audio`.
    pub kind: String,
    /// `png`, `jpeg`, `webp`, `mp4`, `webm`, `mov`, `mkv`, `mp3`, …
    pub format: String,
    /// Pixels, for images and videos.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Seconds, for videos and audio.
    pub duration: Option<f64>,
    /// Size of the stored bytes.
    pub bytes: u64,
    /// The uploading user (the token's `sub`).
    pub uploader: String,
    /// The session named by `?session=` on upload, if any.
    pub session: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
}

impl AssetRecord {
    /// The JSON answer of `GET /v1/assets/{id}/meta`: absent fields are left out.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "id": self.id,
            "kind": self.kind,
            "format": self.format,
            "bytes": self.bytes,
            "uploader": self.uploader,
            "created_at": self.created_at,
        });
        let opt = [
            ("width", self.width.map(serde_json::Value::from)),
            ("height", self.height.map(serde_json::Value::from)),
            ("duration", self.duration.map(serde_json::Value::from)),
            ("session", self.session.clone().map(serde_json::Value::from)),
        ];
        for (k, x) in opt {
            if let Some(x) = x {
                v[k] = x;
            }
        }
        v
    }
}

/// Durable asset records. `put_asset` inserts a record; ids are random, so a second put of one
/// id replaces it (a retried upload of the same id).
pub trait AssetStore: Send + Sync + 'static {
    fn put_asset<'a>(&'a self, record: &'a AssetRecord) -> StoreFuture<'a, ()>;
    fn asset<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<AssetRecord>>;
}

/// The SQLite table, created with the rest of `sqlite::SCHEMA` (`IF NOT EXISTS`: additive).
pub(super) const SQLITE_SCHEMA: &str = r#"
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
"#;

/// The PostgreSQL migration step's SQL.
pub(super) const PG_SCHEMA: &str = r#"
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

const COLUMNS: &str =
    "id, kind, format, width, height, duration, bytes, uploader, session, created_at";

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn record_of<'r, R: Row>(row: &'r R) -> Result<AssetRecord>
where
    usize: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let dim = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    Ok(AssetRecord {
        id: row.try_get(0)?,
        kind: row.try_get(1)?,
        format: row.try_get(2)?,
        width: dim(row.try_get(3)?),
        height: dim(row.try_get(4)?),
        duration: row.try_get(5)?,
        bytes: u64::try_from(row.try_get::<i64, _>(6)?).unwrap_or(0),
        uploader: row.try_get(7)?,
        session: row.try_get(8)?,
        created_at: u64::try_from(row.try_get::<i64, _>(9)?).unwrap_or(0),
    })
}

impl AssetStore for SqliteStore {
    fn put_asset<'a>(&'a self, r: &'a AssetRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(&format!(
                "INSERT OR REPLACE INTO assets ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
            let row = sqlx::query(&format!("SELECT {COLUMNS} FROM assets WHERE id = ?"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(record_of).transpose()
        })
    }
}

impl AssetStore for PgStore {
    fn put_asset<'a>(&'a self, r: &'a AssetRecord) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            sqlx::query(&format!(
                "INSERT INTO assets ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
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
            let row = sqlx::query(&format!("SELECT {COLUMNS} FROM assets WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(record_of).transpose()
        })
    }
}

/// The in-memory double's records (a field of [`MemoryStore`]).
#[derive(Default)]
pub struct MemoryAssets(Mutex<HashMap<String, AssetRecord>>);

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store as _;

    fn record(id: &str) -> AssetRecord {
        AssetRecord {
            id: id.to_owned(),
            kind: "video".into(),
            format: "mp4".into(),
            width: Some(640),
            height: Some(480),
            duration: Some(2.0),
            bytes: 12_345,
            uploader: "u1".into(),
            session: Some("film".into()),
            created_at: 1_700_000_000,
        }
    }

    async fn round_trip(s: &dyn AssetStore) -> Result<()> {
        let a = record(&"a".repeat(32));
        s.put_asset(&a).await?;
        assert_eq!(s.asset(&a.id).await?, Some(a.clone()));
        assert_eq!(s.asset(&"b".repeat(32)).await?, None);
        // An image without duration or session.
        let b = AssetRecord {
            id: "c".repeat(32),
            kind: "image".into(),
            format: "png".into(),
            duration: None,
            session: None,
            ..a.clone()
        };
        s.put_asset(&b).await?;
        assert_eq!(s.asset(&b.id).await?, Some(b.clone()));
        let j = b.to_json();
        assert!(j.get("duration").is_none() && j.get("session").is_none());
        assert_eq!(j["width"], 640);
        Ok(())
    }

    #[tokio::test]
    async fn memory_and_sqlite_keep_records() -> Result<()> {
        round_trip(&MemoryStore::new()).await?;
        let dir = tempfile::tempdir().map_err(|e| crate::Error::Io {
            path: "tmp".into(),
            source: e,
        })?;
        let s = SqliteStore::open(dir.path()).await?;
        round_trip(&s).await?;
        // Reopened: still there.
        drop(s);
        let s = SqliteStore::open(dir.path()).await?;
        assert!(s.asset(&"a".repeat(32)).await?.is_some());
        Ok(())
    }

    #[tokio::test]
    async fn postgres_keeps_records() -> Result<()> {
        let Some(db) = super::super::postgres::testdb::create("postgres_keeps_records").await
        else {
            return Ok(());
        };
        let s = PgStore::connect(&db.url, 2).await?;
        let r = round_trip(&s).await;
        s.close().await?;
        db.drop_db().await;
        r
    }
}
