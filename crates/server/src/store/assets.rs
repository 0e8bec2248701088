//! The storage seam of asset metadata: what each uploaded asset is (kind, format, size, duration),
//! who uploaded it and when. The bytes live in the blob store (`crate::media::blobs`); this is the
//! record beside them, written once on upload and read by `GET /v1/assets/{id}/meta`.
//!
//! Implemented for SQLite and PostgreSQL by `sql.rs` (the table is in each one's `schema.rs`) and
//! by `memory/assets.rs`.

use super::StoreFuture;

/// What is known of one stored asset.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetRecord {
    /// 32 hex digits (`crate::media::blobs::new_asset_id`).
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
    /// What `uploader` has stored, counted from the records (so every node sees the same).
    fn usage<'a>(&'a self, uploader: &'a str) -> StoreFuture<'a, AssetUsage>;
}

/// The assets one user has stored: how many, and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssetUsage {
    pub count: u64,
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use crate::store::{MemoryStore, SqliteStore};

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
        assert_eq!(
            s.usage("u1").await?,
            AssetUsage {
                count: 2,
                bytes: 2 * 12_345
            }
        );
        assert_eq!(s.usage("u2").await?, AssetUsage::default());
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
    async fn postgres_keeps_records() {
        super::super::postgres::testdb::with_store("postgres_keeps_records", async |s| {
            round_trip(s).await.unwrap()
        })
        .await;
    }
}
