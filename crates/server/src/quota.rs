//! Hourly quotas on what a user can make the server keep or send: sessions created, shares to
//! connectors, awards (per user, and for shares and awards per session), so no one user or busy
//! session makes the server store or post without bound. Counted per node in memory, in fixed
//! one-hour windows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window every quota counts in.
pub const QUOTA_WINDOW: Duration = Duration::from_secs(3_600);
/// Keys remembered before expired windows are swept (a bound on memory).
const MAX_KEYS: usize = 100_000;

/// Per-key counters in fixed windows.
#[derive(Debug, Default)]
pub struct Quotas {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Quotas {
    /// Takes `n` from each `(key, limit)` if every one of them has room; else takes nothing and
    /// answers how long until the fullest window starts again.
    pub fn take(&self, keys: &[(String, u32)], n: u32, now: Instant) -> Result<(), Duration> {
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() >= MAX_KEYS {
            w.retain(|_, (start, _)| now.duration_since(*start) < QUOTA_WINDOW);
            if w.len() >= MAX_KEYS {
                // Still full of live windows: refuse rather than forget someone's count.
                return Err(QUOTA_WINDOW);
            }
        }
        let mut wait = None;
        for (key, limit) in keys {
            let used = match w.get(key) {
                Some((start, used)) if now.duration_since(*start) < QUOTA_WINDOW => {
                    if used + n > *limit {
                        wait = Some(QUOTA_WINDOW - now.duration_since(*start));
                    }
                    *used
                }
                _ => 0,
            };
            if used == 0 && n > *limit {
                wait = Some(QUOTA_WINDOW);
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (key, _) in keys {
            let e = w.entry(key.clone()).or_insert((now, 0));
            if now.duration_since(e.0) >= QUOTA_WINDOW {
                *e = (now, 0);
            }
            e.1 += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_keys_must_have_room_and_windows_restart() {
        let q = Quotas::default();
        let t0 = Instant::now();
        let keys = |u: &str| vec![(format!("u:{u}"), 3), ("s:doc".to_string(), 4)];
        assert!(q.take(&keys("alice"), 2, t0).is_ok());
        // alice has 1 left, the session 2: three more are refused and nothing is taken.
        assert!(q.take(&keys("alice"), 3, t0).is_err());
        assert!(q.take(&keys("alice"), 1, t0).is_ok());
        assert!(
            q.take(&keys("alice"), 1, t0).is_err(),
            "alice's quota is used up"
        );
        assert!(q.take(&keys("bob"), 1, t0).is_ok());
        assert!(
            q.take(&keys("bob"), 1, t0).is_err(),
            "the session's quota is used up"
        );
        assert!(q.take(&keys("bob"), 1, t0 + QUOTA_WINDOW).is_ok());
    }
}
