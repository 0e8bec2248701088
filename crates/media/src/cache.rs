//! Caching and coalescing of rendered previews. Synchronous (std `Mutex`), so the server can use
//! them from async tasks and blocking-pool workers alike, and tests need no runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::encode::PreviewFormat;
use crate::render::Size;
use crate::tier::Tier;

/// An encoded preview of one session version at one tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub version: u64,
    pub tier: Tier,
    pub size: Size,
    pub format: PreviewFormat,
    pub bytes: Vec<u8>,
}

struct Entry {
    preview: Arc<Preview>,
    used: u64,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<(String, Tier), Entry>,
    bytes: usize,
    clock: u64,
}

/// Previews by (session, version, tier). Only the newest version per (session, tier) is kept —
/// an older one is never asked for again once a newer exists — and the total size is bounded by
/// evicting the least recently used entries.
pub struct PreviewCache {
    inner: Mutex<CacheInner>,
    max_bytes: usize,
}

impl PreviewCache {
    /// A cache holding at most `max_bytes` of encoded previews.
    pub fn new(max_bytes: usize) -> Self {
        PreviewCache {
            inner: Mutex::new(CacheInner::default()),
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheInner> {
        // A panic elsewhere while holding the lock leaves the map consistent (every mutation is
        // a single insert/remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The preview of exactly this version, if cached.
    pub fn get(&self, session: &str, version: u64, tier: Tier) -> Option<Arc<Preview>> {
        self.latest(session, tier).filter(|p| p.version == version)
    }

    /// The newest cached preview of the session at this tier, whatever its version.
    pub fn latest(&self, session: &str, tier: Tier) -> Option<Arc<Preview>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let e = inner.map.get_mut(&(session.to_owned(), tier))?;
        e.used = now;
        Some(e.preview.clone())
    }

    /// Stores a preview unless a newer version is already cached. Returns whether it was kept.
    pub fn insert(&self, session: &str, preview: Arc<Preview>) -> bool {
        let len = preview.bytes.len();
        if len > self.max_bytes {
            return false;
        }
        let mut inner = self.lock();
        let key = (session.to_owned(), preview.tier);
        if let Some(old) = inner.map.get(&key)
            && old.preview.version > preview.version
        {
            return false;
        }
        inner.clock += 1;
        let used = inner.clock;
        if let Some(old) = inner.map.insert(key, Entry { preview, used }) {
            inner.bytes -= old.preview.bytes.len();
        }
        inner.bytes += len;
        while inner.bytes > self.max_bytes {
            let Some(oldest) = inner
                .map
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = inner.map.remove(&oldest) {
                inner.bytes -= e.preview.bytes.len();
            }
        }
        true
    }

    /// Drops every preview of a session (closed or deleted).
    pub fn remove_session(&self, session: &str) {
        let mut inner = self.lock();
        let mut freed = 0;
        inner.map.retain(|(s, _), e| {
            let keep = s != session;
            if !keep {
                freed += e.preview.bytes.len();
            }
            keep
        });
        inner.bytes -= freed;
    }

    /// Bytes of encoded previews held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Slot<J> {
    pending: Option<J>,
    running: bool,
}

/// Latest-value-wins job slot. Under a burst of edits only the newest job is rendered: a submit
/// replaces whatever was pending, and one worker at a time drains the slot.
///
/// ```
/// use montage_media::Coalescer;
/// let c = Coalescer::new();
/// let start_worker = c.submit(1u64);
/// assert!(start_worker);
/// assert!(!c.submit(2)); // a worker is already due: 2 replaces 1
/// assert!(!c.submit(3));
/// assert_eq!(c.take(), Some(3)); // the worker renders only the newest
/// assert_eq!(c.take(), None); // and stops; the next submit asks for a new worker
/// assert!(c.submit(4));
/// ```
pub struct Coalescer<J> {
    slot: Mutex<Slot<J>>,
}

impl<J> Default for Coalescer<J> {
    fn default() -> Self {
        Self::new()
    }
}

impl<J> Coalescer<J> {
    pub fn new() -> Self {
        Coalescer {
            slot: Mutex::new(Slot {
                pending: None,
                running: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot<J>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `job` the pending one (replacing an older pending job). Returns `true` when no
    /// worker is running, so the caller must start one (e.g. on a blocking pool) that loops on
    /// [`Coalescer::take`].
    pub fn submit(&self, job: J) -> bool {
        let mut s = self.lock();
        s.pending = Some(job);
        let start = !s.running;
        s.running = true;
        start
    }

    /// For the worker: the newest pending job, or `None` — and then the worker must stop; the
    /// next [`Coalescer::submit`] returns `true` again. Both happen under one lock, so no job
    /// is left behind between a worker's last `take` and a new submit.
    pub fn take(&self) -> Option<J> {
        let mut s = self.lock();
        let job = s.pending.take();
        if job.is_none() {
            s.running = false;
        }
        job
    }

    /// Whether a job is waiting.
    pub fn has_pending(&self) -> bool {
        self.lock().pending.is_some()
    }
}
