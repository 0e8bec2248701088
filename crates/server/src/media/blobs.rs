//! Uploaded asset bytes behind [`BlobStore`], and the decoded-asset cache the renderer reads.
//!
//! The store is synchronous on purpose: it is only called from the blocking pool (uploads are
//! probed there, renders run there), and the renderer's `AssetSource` is synchronous too. The
//! real one, [`ObjectBlobStore`], goes through the `object_store` crate: a local directory by
//! default, S3 (or anything S3-compatible) by `--blob-url s3://bucket/prefix`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use montage_media::{Asset, AssetSource, Limits, MediaError};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::byte_lru::ByteLru;
use crate::error::{Error, Result};

/// Asset ids are 128 random bits as 32 lowercase hex digits: unguessable, and safe as a file name.
pub fn new_asset_id() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Whether `id` has the shape [`new_asset_id`] gives. Anything else is never looked up, so no
/// path from a client reaches the file system.
pub fn valid_asset_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Where asset bytes live. Ids passed in are always [`valid_asset_id`].
pub trait BlobStore: Send + Sync {
    fn put(&self, id: &str, bytes: &[u8]) -> Result<()>;
    /// `Ok(None)` when there is no such blob.
    fn get(&self, id: &str) -> Result<Option<Vec<u8>>>;
    /// Removes a blob (an upload whose record could not be stored); no such blob is not an error.
    fn delete(&self, id: &str) -> Result<()>;
    /// A local file holding the blob, for tools that read files (ffmpeg); `None` when there is
    /// none (no such blob, or a store that is not on disk).
    fn local_path(&self, _id: &str) -> Option<PathBuf> {
        None
    }
}

/// Asset bytes through the `object_store` crate: a local directory by default
/// ([`ObjectBlobStore::local`]), or S3 / an S3-compatible service ([`ObjectBlobStore::from_url`]
/// with `s3://bucket/prefix`, credentials from the usual `AWS_*` variables).
///
/// `object_store` is async and [`BlobStore`] is not (its callers run on the blocking pool), so
/// each call runs its future to completion on the runtime handle taken at construction. Calling
/// it from an async task would block a runtime worker; nothing does.
pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    /// Prepended to every id (`prefix/<id>`); empty for a local directory.
    prefix: ObjectPath,
    /// The directory of a local store: files are fsynced after a put, and ffmpeg reads them.
    local_dir: Option<PathBuf>,
    rt: tokio::runtime::Handle,
    /// `file:///…` or `s3://bucket/prefix`, for logs.
    describe: String,
}

impl ObjectBlobStore {
    /// Files `<dir>/<id>`, written by `object_store` to a staging file (`<id>#<n>`) that is
    /// renamed into place, so a reader never sees half a file. Needs a tokio runtime.
    pub fn local(dir: impl Into<PathBuf>) -> Result<ObjectBlobStore> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| Error::Blob {
            url: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(ObjectBlobStore {
            store: Arc::new(fs),
            prefix: ObjectPath::default(),
            describe: format!("file://{}", dir.display()),
            local_dir: Some(dir),
            rt: runtime()?,
        })
    }

    /// A store named by URL: `s3://bucket[/prefix]` (endpoint, region and credentials from the
    /// environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`,
    /// `AWS_ALLOW_HTTP`, …) or `file:///absolute/dir`. Needs a tokio runtime. Building it does
    /// no I/O: a wrong bucket or credentials show on the first upload.
    pub fn from_url(url: &str) -> Result<ObjectBlobStore> {
        let bad = |reason: String| Error::Blob {
            url: url.to_owned(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        match parsed.scheme() {
            "file" => {
                let dir = parsed
                    .to_file_path()
                    .map_err(|_| bad("not an absolute file path".into()))?;
                ObjectBlobStore::local(dir)
            }
            "s3" | "s3a" => {
                let bucket = parsed
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| bad("no bucket: use s3://bucket/prefix".into()))?;
                let s3 = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                let prefix = ObjectPath::parse(parsed.path().trim_matches('/'))
                    .map_err(|e| bad(e.to_string()))?;
                Ok(ObjectBlobStore {
                    store: Arc::new(s3),
                    prefix,
                    local_dir: None,
                    rt: runtime()?,
                    describe: format!("s3://{bucket}/{}", parsed.path().trim_matches('/')),
                })
            }
            other => Err(bad(format!(
                "unsupported scheme {other:?}: use s3://bucket/prefix or file:///dir"
            ))),
        }
    }

    /// Any `object_store` implementation (tests use `object_store::memory::InMemory`).
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<ObjectBlobStore> {
        Ok(ObjectBlobStore {
            store,
            prefix: ObjectPath::parse(prefix).map_err(|e| Error::Blob {
                url: prefix.to_owned(),
                reason: e.to_string(),
            })?,
            local_dir: None,
            rt: runtime()?,
            describe: "custom object store".into(),
        })
    }

    /// Where the blobs go, for the startup log.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    fn path(&self, id: &str) -> ObjectPath {
        self.prefix.clone().join(id)
    }

    fn blob_error(&self, e: object_store::Error) -> Error {
        Error::Blob {
            url: self.describe.clone(),
            reason: e.to_string(),
        }
    }
}

fn runtime() -> Result<tokio::runtime::Handle> {
    tokio::runtime::Handle::try_current().map_err(|e| Error::Blob {
        url: String::new(),
        reason: format!("the blob store needs a tokio runtime: {e}"),
    })
}

impl BlobStore for ObjectBlobStore {
    fn local_path(&self, id: &str) -> Option<PathBuf> {
        let path = self.local_dir.as_ref()?.join(id);
        (valid_asset_id(id) && path.is_file()).then_some(path)
    }

    fn put(&self, id: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(id);
        let payload = PutPayload::from(bytes.to_vec());
        self.rt
            .block_on(self.store.put(&path, payload))
            .map_err(|e| self.blob_error(e))?;
        if let Some(dir) = &self.local_dir {
            // object_store renames a staging file into place but does not fsync: an asset an
            // acked edit refers to must survive a power cut like the edit does.
            let file = dir.join(id);
            std::fs::File::open(&file)
                .and_then(|f| f.sync_all())
                .map_err(io(&file))?;
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(id);
        let got = self.rt.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        got.map(|b| b.map(|b| b.to_vec()))
            .map_err(|e| self.blob_error(e))
    }

    fn delete(&self, id: &str) -> Result<()> {
        let path = self.path(id);
        match self.rt.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.blob_error(e)),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Blobs in memory, for tests.
#[derive(Default)]
pub struct MemoryBlobStore {
    map: Mutex<HashMap<String, Vec<u8>>>,
}

impl BlobStore for MemoryBlobStore {
    fn put(&self, id: &str, bytes: &[u8]) -> Result<()> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(id.to_owned(), bytes.to_vec());
        Ok(())
    }
    fn get(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        Ok(m.get(id).cloned())
    }
    fn delete(&self, id: &str) -> Result<()> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(id);
        Ok(())
    }
}

/// Decoded assets over a [`BlobStore`], least-recently-used beyond `max_bytes` of RGBA (a 24 MP
/// photo is ~130 MB with its pyramid, so the bound matters more than a count would).
pub struct DecodedAssets {
    store: Arc<dyn BlobStore>,
    limits: Limits,
    cache: ByteLru<Arc<Asset>>,
}

impl DecodedAssets {
    pub fn new(store: Arc<dyn BlobStore>, limits: Limits, max_bytes: usize) -> DecodedAssets {
        DecodedAssets {
            store,
            limits,
            cache: ByteLru::new(max_bytes as u64),
        }
    }

    /// Forgets an asset (an upload whose blob was deleted again).
    pub fn remove(&self, id: &str) {
        self.cache.remove(id);
    }

    /// Keeps a freshly decoded asset (an upload about to be used), evicting the least recent.
    pub fn insert(&self, id: &str, asset: Arc<Asset>) {
        let bytes = asset.retained_bytes();
        self.cache.insert(id, asset, bytes);
    }

    /// Decoded assets held.
    pub fn len(&self) -> usize {
        self.cache.len()
    }
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

impl AssetSource for DecodedAssets {
    fn asset(&self, id: &str) -> Result<Option<Arc<Asset>>, MediaError> {
        if !valid_asset_id(id) {
            return Ok(None);
        }
        if let Some(asset) = self.cache.get(id) {
            return Ok(Some(asset));
        }
        // Decoded outside the lock: two renders missing the same asset may both decode it, which
        // the render semaphore keeps to at most its permit count.
        let Some(bytes) = self.store.get(id).map_err(|e| MediaError::Store {
            reason: e.to_string(),
        })?
        else {
            return Ok(None);
        };
        let asset =
            Arc::new(
                Asset::decode(&bytes, &self.limits).map_err(|e| MediaError::Store {
                    reason: format!("stored asset {id} does not decode: {e}"),
                })?,
            );
        self.insert(id, asset.clone());
        Ok(Some(asset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let img = montage_media::RgbaImage::from_pixel(w, h, image_pixel());
        let _ = img.write_to(&mut out, image::ImageFormat::Png);
        out.into_inner()
    }

    fn image_pixel() -> image::Rgba<u8> {
        image::Rgba([10, 20, 30, 255])
    }

    #[test]
    fn ids_are_unique_hex_and_validated() -> std::io::Result<()> {
        let a = new_asset_id()?;
        let b = new_asset_id()?;
        assert_ne!(a, b);
        assert!(valid_asset_id(&a));
        for bad in [
            "",
            "../etc/passwd",
            &a.to_uppercase(),
            &a[..31],
            &format!("{a}0"),
        ] {
            assert!(!valid_asset_id(bad), "{bad:?}");
        }
        Ok(())
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    }

    #[test]
    fn local_object_store_round_trips_and_misses() -> Result<()> {
        let rt = rt();
        let dir = tempfile::tempdir().map_err(io(Path::new("tmp")))?;
        let s = {
            let _g = rt.enter();
            ObjectBlobStore::local(dir.path().join("assets"))?
        };
        let (a, b) = ("a".repeat(32), "b".repeat(32));
        s.put(&a, b"hello")?;
        assert_eq!(s.get(&a)?, Some(b"hello".to_vec()));
        assert_eq!(s.get(&b)?, None);
        // A real file, where ffmpeg can read it; and no staging file is left behind.
        let file = dir.path().join("assets").join(&a);
        assert_eq!(s.local_path(&a), Some(file.clone()));
        assert_eq!(std::fs::read(&file).map_err(io(&file))?, b"hello");
        assert_eq!(s.local_path(&b), None);
        assert_eq!(s.local_path("../x"), None);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("assets"))
            .map_err(io(dir.path()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(&a)]);
        // The same directory named by URL reads the same blob.
        let url = format!("file://{}", dir.path().join("assets").display());
        let again = {
            let _g = rt.enter();
            ObjectBlobStore::from_url(&url)?
        };
        assert_eq!(again.get(&a)?, Some(b"hello".to_vec()));
        Ok(())
    }

    #[test]
    fn object_store_adapter_prefixes_ids() -> Result<()> {
        let rt = rt();
        let mem = Arc::new(object_store::memory::InMemory::new());
        let s = {
            let _g = rt.enter();
            ObjectBlobStore::with_store(mem.clone(), "tenant/assets")?
        };
        let a = "c".repeat(32);
        s.put(&a, b"bytes")?;
        assert_eq!(s.get(&a)?, Some(b"bytes".to_vec()));
        let raw = rt
            .block_on(async {
                mem.get(&ObjectPath::from(format!("tenant/assets/{a}")))
                    .await?
                    .bytes()
                    .await
            })
            .map_err(|e| s.blob_error(e))?;
        assert_eq!(&raw[..], b"bytes");
        assert_eq!(s.local_path(&a), None, "not on disk");
        Ok(())
    }

    /// S3 is only configured here (no S3 service on these machines): the URL is parsed into the
    /// bucket and prefix, and building does no I/O.
    #[test]
    fn s3_url_is_parsed_without_io() -> Result<()> {
        let rt = rt();
        let _g = rt.enter();
        let s = ObjectBlobStore::from_url("s3://media-bucket/montage/assets/")?;
        assert_eq!(s.describe(), "s3://media-bucket/montage/assets");
        assert_eq!(
            s.path(&"d".repeat(32)).as_ref(),
            format!("montage/assets/{}", "d".repeat(32))
        );
        assert_eq!(s.local_path(&"d".repeat(32)), None);
        for bad in [
            "ftp://host/x",
            "s3:///prefix-only",
            "not a url",
            "file://relative",
        ] {
            assert!(
                matches!(ObjectBlobStore::from_url(bad), Err(Error::Blob { .. })),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn decoded_assets_decode_once_and_stay_bounded() -> Result<()> {
        let store = Arc::new(MemoryBlobStore::default());
        let (a, b) = ("a".repeat(32), "b".repeat(32));
        store.put(&a, &png(100, 100))?;
        store.put(&b, &png(100, 100))?;
        // Room for one 100×100 asset (63 kB with its pyramid and resized crops), not two.
        let cache = DecodedAssets::new(store.clone(), Limits::default(), 70_000);
        let first = cache.asset(&a).ok().flatten().map(|x| x.width());
        assert_eq!(first, Some(100));
        let again = cache.asset(&a).ok().flatten();
        let cached = cache.asset(&a).ok().flatten();
        assert!(matches!((again, cached), (Some(x), Some(y)) if Arc::ptr_eq(&x, &y)));
        assert!(cache.asset(&b).ok().flatten().is_some());
        assert_eq!(cache.len(), 1, "the older asset was evicted");
        assert!(matches!(cache.asset(&"c".repeat(32)), Ok(None)));
        assert!(matches!(cache.asset("../x"), Ok(None)));
        // Stored garbage is a store error, not a missing asset.
        store.put(&"d".repeat(32), b"not an image")?;
        assert!(matches!(
            cache.asset(&"d".repeat(32)),
            Err(MediaError::Store { .. })
        ));
        Ok(())
    }
}
