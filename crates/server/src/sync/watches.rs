//! Keyed watch channels whose entries live exactly as long as their watches: a session's newest
//! committed version for live previews, one user's playhead for timeline previews. Publishing
//! to a key nobody watches costs a map lookup and nothing else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use prometheus::IntGauge;
use tokio::sync::watch;

type Map<T> = Mutex<HashMap<Arc<str>, watch::Sender<T>>>;

/// The watched keys and their channels.
pub struct Watches<T> {
    map: Arc<Map<T>>,
    /// Set to the number of watched keys whenever it changes.
    gauge: Option<IntGauge>,
}

impl<T> Watches<T> {
    pub fn new(gauge: Option<IntGauge>) -> Watches<T> {
        Watches {
            map: Arc::default(),
            gauge,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, watch::Sender<T>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A watch of `key`, starting from `initial` when nobody watched it yet.
    pub fn watch(&self, key: &str, initial: T) -> KeyedWatch<T> {
        let key: Arc<str> = Arc::from(key);
        let mut map = self.map();
        let rx = map
            .entry(key.clone())
            .or_insert_with(|| watch::channel(initial).0)
            .subscribe();
        if let Some(g) = &self.gauge {
            g.set(map.len() as i64);
        }
        KeyedWatch {
            rx,
            key,
            map: Arc::downgrade(&self.map),
            gauge: self.gauge.clone(),
        }
    }

    /// Keys watched now.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_watched(&self, key: &str) -> bool {
        self.map()
            .get(key)
            .is_some_and(|tx| tx.receiver_count() > 0)
    }

    /// Changes `key`'s value if it is watched; `change` says whether it changed (watchers
    /// wake only then). Never blocks.
    pub fn update(&self, key: &str, change: impl FnOnce(&mut T) -> bool) {
        let map = self.map();
        if let Some(tx) = map.get(key) {
            tx.send_if_modified(change);
        }
    }
}

/// One watch of one key; the key's entry goes with its last watch.
pub struct KeyedWatch<T> {
    pub(crate) rx: watch::Receiver<T>,
    key: Arc<str>,
    map: Weak<Map<T>>,
    gauge: Option<IntGauge>,
}

impl<T> KeyedWatch<T> {
    /// A watch of a bare channel, in no registry (unit tests of the pacing).
    #[cfg(test)]
    pub(crate) fn detached(rx: watch::Receiver<T>) -> KeyedWatch<T> {
        KeyedWatch {
            rx,
            key: Arc::from(""),
            map: Weak::new(),
            gauge: None,
        }
    }
}

impl<T> Drop for KeyedWatch<T> {
    fn drop(&mut self) {
        let Some(map) = self.map.upgrade() else {
            return;
        };
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        // Under the lock no watch is added or dropped: one receiver left is this one.
        if map
            .get(&self.key)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            map.remove(&self.key);
        }
        if let Some(g) = &self.gauge {
            g.set(map.len() as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_as_long_as_its_watches() {
        let gauge = IntGauge::new("w", "w").unwrap();
        let w: Watches<u64> = Watches::new(Some(gauge.clone()));
        w.update("a", |_| panic!("nobody watches a"));
        let one = w.watch("a", 0);
        let two = w.watch("a", 7);
        assert_eq!((*one.rx.borrow(), w.len(), gauge.get()), (0, 1, 1));
        w.update("a", |v| {
            *v = 3;
            true
        });
        assert_eq!(*two.rx.borrow(), 3);
        drop(one);
        assert!(w.is_watched("a"));
        drop(two);
        assert!(!w.is_watched("a"));
        assert_eq!((w.len(), gauge.get()), (0, 0));
    }
}
