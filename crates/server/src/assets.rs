//! Uploaded asset bytes behind [`BlobStore`], and the decoded-asset cache the renderer reads.
//!
//! The store is synchronous on purpose: it is only called from the blocking pool (uploads are
//! probed there, renders run there), and the renderer's `AssetSource` is synchronous too. The
//! local-directory store is hand-written (temp file + rename); an `object_store`-backed one for
//! S3 would implement the same trait.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use montage_media::{Asset, AssetSource, Limits, MediaError};

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
    /// A local file holding the blob, for tools that read files (ffmpeg); `None` when there is
    /// none (no such blob, or a store that is not on disk).
    fn local_path(&self, _id: &str) -> Option<PathBuf> {
        None
    }
}

/// One file per asset, `<dir>/<id>`, written to a temp file and renamed, so a reader never sees
/// half a file and a crash leaves at most a stray `.tmp-*`.
pub struct DirBlobStore {
    dir: PathBuf,
}

impl DirBlobStore {
    pub fn open(dir: impl Into<PathBuf>) -> Result<DirBlobStore> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(DirBlobStore { dir })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

impl BlobStore for DirBlobStore {
    fn local_path(&self, id: &str) -> Option<PathBuf> {
        let path = self.dir.join(id);
        (valid_asset_id(id) && path.is_file()).then_some(path)
    }

    fn put(&self, id: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(id);
        let tmp = self.dir.join(format!(".tmp-{id}"));
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    fn get(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let path = self.dir.join(id);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
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
}

struct Cached {
    asset: Arc<Asset>,
    bytes: usize,
    used: u64,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<String, Cached>,
    bytes: usize,
    clock: u64,
}

/// Decoded assets over a [`BlobStore`], least-recently-used beyond `max_bytes` of RGBA (a 24 MP
/// photo is ~130 MB with its pyramid, so the bound matters more than a count would).
pub struct DecodedAssets {
    store: Arc<dyn BlobStore>,
    limits: Limits,
    max_bytes: usize,
    inner: Mutex<CacheInner>,
}

impl DecodedAssets {
    pub fn new(store: Arc<dyn BlobStore>, limits: Limits, max_bytes: usize) -> DecodedAssets {
        DecodedAssets {
            store,
            limits,
            max_bytes,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheInner> {
        // Every mutation is a single insert/remove with its byte count: a poisoned map is whole.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a freshly decoded asset (an upload about to be used), evicting the least recent.
    pub fn insert(&self, id: &str, asset: Arc<Asset>) {
        // RGBA8 plus the mip pyramid (a third more).
        let bytes = (asset.width() as usize)
            .saturating_mul(asset.height() as usize)
            .saturating_mul(4)
            .saturating_mul(4)
            / 3;
        if bytes > self.max_bytes {
            return;
        }
        let mut inner = self.lock();
        inner.clock += 1;
        let used = inner.clock;
        if let Some(old) = inner
            .map
            .insert(id.to_owned(), Cached { asset, bytes, used })
        {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        while inner.bytes > self.max_bytes {
            let Some(oldest) = inner
                .map
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(c) = inner.map.remove(&oldest) {
                inner.bytes -= c.bytes;
            }
        }
    }

    /// Decoded assets held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl AssetSource for DecodedAssets {
    fn asset(&self, id: &str) -> Result<Option<Arc<Asset>>, MediaError> {
        if !valid_asset_id(id) {
            return Ok(None);
        }
        {
            let mut inner = self.lock();
            inner.clock += 1;
            let now = inner.clock;
            if let Some(c) = inner.map.get_mut(id) {
                c.used = now;
                return Ok(Some(c.asset.clone()));
            }
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

    #[test]
    fn dir_store_round_trips_and_misses() -> Result<()> {
        let dir = tempfile::tempdir().map_err(io(Path::new("tmp")))?;
        let s = DirBlobStore::open(dir.path().join("assets"))?;
        s.put("ab", b"hello")?;
        assert_eq!(s.get("ab")?, Some(b"hello".to_vec()));
        assert_eq!(s.get("cd")?, None);
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("assets"))
            .map_err(io(dir.path()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("ab")]);
        Ok(())
    }

    #[test]
    fn decoded_assets_decode_once_and_stay_bounded() -> Result<()> {
        let store = Arc::new(MemoryBlobStore::default());
        let (a, b) = ("a".repeat(32), "b".repeat(32));
        store.put(&a, &png(100, 100))?;
        store.put(&b, &png(100, 100))?;
        // Room for one 100×100 asset (53 kB with its pyramid), not two.
        let cache = DecodedAssets::new(store.clone(), Limits::default(), 60_000);
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
