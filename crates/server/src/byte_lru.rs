//! A map of values with a byte size, least-recently-used beyond a byte budget: the decoded-asset
//! cache, the frame endpoint's temp copies of remote videos and the states of past versions
//! are bound by bytes, not count.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

struct Slot<V> {
    value: V,
    bytes: u64,
    used: u64,
}

struct Inner<V> {
    map: HashMap<String, Slot<V>>,
    bytes: u64,
    clock: u64,
}

pub struct ByteLru<V> {
    max_bytes: u64,
    inner: Mutex<Inner<V>>,
}

impl<V: Clone> ByteLru<V> {
    pub fn new(max_bytes: u64) -> ByteLru<V> {
        ByteLru {
            max_bytes,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                bytes: 0,
                clock: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        // Every mutation is a single insert/remove with its byte count: a poisoned map is whole.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value under `key`, now the most recently used.
    pub fn get(&self, key: &str) -> Option<V> {
        let mut g = self.lock();
        g.clock += 1;
        let now = g.clock;
        let slot = g.map.get_mut(key)?;
        slot.used = now;
        Some(slot.value.clone())
    }

    /// Keeps `value` (`bytes` big) under `key`, evicting the least recently used to stay within
    /// the budget. A value larger than the whole budget is not kept (`false`).
    pub fn insert(&self, key: &str, value: V, bytes: u64) -> bool {
        if bytes > self.max_bytes {
            return false;
        }
        let mut g = self.lock();
        if let Some(old) = g.map.remove(key) {
            g.bytes -= old.bytes;
        }
        while g.bytes + bytes > self.max_bytes {
            let Some(oldest) = g
                .map
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(s) = g.map.remove(&oldest) {
                g.bytes -= s.bytes;
            }
        }
        g.clock += 1;
        let used = g.clock;
        g.bytes += bytes;
        g.map.insert(key.to_owned(), Slot { value, bytes, used });
        true
    }

    pub fn remove(&self, key: &str) -> Option<V> {
        let mut g = self.lock();
        let old = g.map.remove(key)?;
        g.bytes -= old.bytes;
        Some(old.value)
    }

    /// Drops every value.
    pub fn clear(&self) {
        let mut g = self.lock();
        g.map.clear();
        g.bytes = 0;
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held.
    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_within_the_budget() {
        let lru = ByteLru::new(10);
        assert!(lru.insert("a", 1, 4));
        assert!(lru.insert("b", 2, 4));
        assert_eq!(lru.get("a"), Some(1)); // b is now the oldest
        assert!(lru.insert("c", 3, 4));
        assert_eq!((lru.get("b"), lru.len(), lru.bytes()), (None, 2, 8));
        // Replacing counts the new size only; too big for the budget is refused.
        assert!(lru.insert("a", 10, 6));
        assert_eq!((lru.get("a"), lru.bytes()), (Some(10), 10));
        assert!(!lru.insert("z", 0, 11));
        assert_eq!(lru.remove("a"), Some(10));
        assert_eq!(lru.bytes(), 4);
    }
}
