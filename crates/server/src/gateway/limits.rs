//! Per-connection rate limits: token buckets that take the time as an argument, so tests
//! need no clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Limits;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate: rate.max(f64::MIN_POSITIVE),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes `n` tokens, or says how long until they would be there.
    pub fn try_take(&mut self, n: f64, now: Instant) -> Result<(), Duration> {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= n {
            self.tokens -= n;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((n - self.tokens) / self.rate))
        }
    }
}

/// What the limiter says about one incoming frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refuse with `rate_limited`.
    Limited {
        retry_after: Duration,
    },
    /// Past the limits again and again: close the socket (1008).
    Abuse,
}

/// The buckets of one connection (or, scaled by `user_rate_factor`, of one user).
#[derive(Debug, Clone)]
pub struct ConnLimiter {
    messages: TokenBucket,
    edits: TokenBucket,
    bytes: TokenBucket,
    strikes: TokenBucket,
}

impl ConnLimiter {
    pub fn new(l: &Limits, now: Instant) -> ConnLimiter {
        ConnLimiter::scaled(l, 1.0, now)
    }

    /// Every rate and burst times `k`.
    pub fn scaled(l: &Limits, k: f64, now: Instant) -> ConnLimiter {
        ConnLimiter {
            messages: TokenBucket::new(l.messages_per_sec * k, l.messages_burst * k, now),
            edits: TokenBucket::new(l.edits_per_sec * k, l.edits_burst * k, now),
            bytes: TokenBucket::new(l.bytes_per_sec * k, l.bytes_burst * k, now),
            strikes: TokenBucket::new(l.strikes_per_sec * k, l.strikes_burst * k, now),
        }
    }

    /// Any frame of `len` bytes.
    pub fn frame(&mut self, len: usize, now: Instant) -> Verdict {
        let r = self
            .messages
            .try_take(1.0, now)
            .and_then(|()| self.bytes.try_take(len as f64, now));
        self.verdict(r, now)
    }

    /// An edit, on top of `frame`.
    pub fn edit(&mut self, now: Instant) -> Verdict {
        let r = self.edits.try_take(1.0, now);
        self.verdict(r, now)
    }

    fn verdict(&mut self, r: Result<(), Duration>, now: Instant) -> Verdict {
        match r {
            Ok(()) => Verdict::Allow,
            Err(retry_after) => match self.strikes.try_take(1.0, now) {
                Ok(()) => Verdict::Limited { retry_after },
                Err(_) => Verdict::Abuse,
            },
        }
    }
}

/// The shared budget of one user: its connection count and its scaled buckets.
#[derive(Debug)]
pub struct UserEntry {
    pub connections: usize,
    pub limiter: Arc<Mutex<ConnLimiter>>,
}

/// Per-user limits across all of a user's connections.
#[derive(Debug, Default)]
pub struct UserLimits {
    users: Mutex<HashMap<Arc<str>, UserEntry>>,
}

impl UserLimits {
    /// Counts a new connection of `user`, or refuses it when the user is at its limit.
    pub fn connect(&self, user: &Arc<str>, l: &Limits) -> Option<Arc<Mutex<ConnLimiter>>> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let e = users.entry(user.clone()).or_insert_with(|| UserEntry {
            connections: 0,
            limiter: Arc::new(Mutex::new(ConnLimiter::scaled(
                l,
                l.user_rate_factor,
                Instant::now(),
            ))),
        });
        if e.connections >= l.connections_per_user {
            return None;
        }
        e.connections += 1;
        Some(e.limiter.clone())
    }

    /// Forgets a closed connection; a user with none left is dropped entirely.
    pub fn disconnect(&self, user: &str) {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = users.get_mut(user) {
            e.connections = e.connections.saturating_sub(1);
            if e.connections == 0 {
                users.remove(user);
            }
        }
    }
}

/// The worse of two verdicts.
pub fn worst(a: Verdict, b: Verdict) -> Verdict {
    match (a, b) {
        (Verdict::Abuse, _) | (_, Verdict::Abuse) => Verdict::Abuse,
        (Verdict::Limited { retry_after: x }, Verdict::Limited { retry_after: y }) => {
            Verdict::Limited {
                retry_after: x.max(y),
            }
        }
        (l @ Verdict::Limited { .. }, _) | (_, l @ Verdict::Limited { .. }) => l,
        _ => Verdict::Allow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 2.0, t0);
        assert!(b.try_take(1.0, t0).is_ok());
        assert!(b.try_take(1.0, t0).is_ok());
        let wait = b.try_take(1.0, t0).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert!(b.try_take(1.0, t0 + Duration::from_millis(100)).is_ok());
    }

    #[test]
    fn honest_client_passes_cursor_and_typing_rates() {
        // 120 presence and 30 edits a second for 10 seconds, evenly spread.
        let l = Limits::default();
        let t0 = Instant::now();
        let mut lim = ConnLimiter::new(&l, t0);
        for i in 0..1500u64 {
            let now = t0 + Duration::from_micros(i * 1_000_000 / 150);
            assert_eq!(lim.frame(300, now), Verdict::Allow, "frame {i}");
            if i % 5 == 0 {
                assert_eq!(lim.edit(now), Verdict::Allow, "edit {i}");
            }
        }
    }

    #[test]
    fn flood_is_limited_then_abuse() {
        let l = Limits::default();
        let t0 = Instant::now();
        let mut lim = ConnLimiter::new(&l, t0);
        let verdicts: Vec<Verdict> = (0..2000).map(|_| lim.frame(10, t0)).collect();
        assert_eq!(verdicts[0], Verdict::Allow);
        assert!(
            verdicts
                .iter()
                .any(|v| matches!(v, Verdict::Limited { .. }))
        );
        assert_eq!(verdicts.last(), Some(&Verdict::Abuse));
    }

    #[test]
    fn users_are_limited_across_connections() {
        let l = Limits {
            connections_per_user: 2,
            ..Limits::default()
        };
        let users = UserLimits::default();
        let u: Arc<str> = Arc::from("u");
        let a = users.connect(&u, &l).unwrap();
        let b = users.connect(&u, &l).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "one budget per user");
        assert!(users.connect(&u, &l).is_none());
        users.disconnect("u");
        assert!(users.connect(&u, &l).is_some());
    }
}
