//! Per-user HTTP request rates (DESIGN §9.2): a token bucket per token subject, or per peer
//! address for requests without a valid token, answered past it with 429, `Retry-After` and the
//! API's JSON error (carrying `retry_after_ms`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use montage_protocol::{ErrorCode, ServerMessage, encode};

use super::limits::TokenBucket;
use super::listener::PeerAddr;
use crate::App;
use crate::config::HttpLimits;

/// Buckets remembered at most; past it the idle ones (full again) are swept.
const MAX_KEYS: usize = 100_000;

/// Whose budget a request spends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    User(String),
    /// A peer address; IPv6 by its /64, which one host may hold whole.
    Addr(IpAddr),
    /// Newcomers while every bucket is in use: they share one budget rather than anyone's
    /// bucket being forgotten.
    Overflow,
}

impl RateKey {
    pub fn addr(ip: IpAddr) -> RateKey {
        RateKey::Addr(super::listener::host(ip))
    }
}

/// The request buckets of one node.
#[derive(Debug)]
pub struct RequestRates {
    rate: f64,
    burst: f64,
    /// A bucket untouched this long is full again: forgetting it loses nothing.
    refill: Duration,
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    map: HashMap<RateKey, (TokenBucket, Instant)>,
    /// When the map was last swept: at most once a refill, so a full map costs no scan per
    /// request.
    swept: Option<Instant>,
}

impl RequestRates {
    pub fn new(l: &HttpLimits) -> RequestRates {
        let rate = l.requests_per_sec.max(0.001);
        let burst = l.requests_burst.max(1.0);
        RequestRates {
            rate,
            burst,
            refill: Duration::from_secs_f64((burst / rate).min(86_400.0)),
            buckets: Mutex::new(Buckets::default()),
        }
    }

    /// Takes one request from `key`'s budget, or says how long until one is there.
    pub fn take(&self, mut key: RateKey, now: Instant) -> Result<(), Duration> {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.map.len() >= MAX_KEYS && !b.map.contains_key(&key) {
            let due = b
                .swept
                .is_none_or(|t| now.saturating_duration_since(t) >= self.refill);
            if due {
                let refill = self.refill;
                b.map
                    .retain(|_, (_, last)| now.saturating_duration_since(*last) < refill);
                b.swept = Some(now);
            }
            if b.map.len() >= MAX_KEYS {
                key = RateKey::Overflow;
            }
        }
        let (bucket, last) = b
            .map
            .entry(key)
            .or_insert_with(|| (TokenBucket::new(self.rate, self.burst, now), now));
        *last = now;
        bucket.try_take(1.0, now)
    }
}

/// Middleware: spends one request of the caller's budget. `/healthz` and `/metrics` are free, and
/// so is `/v1/ws`: its token is in the query, and sockets have their own per-user cap and rates.
pub async fn limit(
    State((app, rates)): State<(Arc<App>, Arc<RequestRates>)>,
    req: Request,
    next: Next,
) -> Response {
    if matches!(req.uri().path(), "/healthz" | "/metrics" | "/v1/ws") {
        return next.run(req).await;
    }
    let user = crate::api::bearer(req.headers()).and_then(|t| app.auth.verify(t).ok());
    let key = match (user, req.extensions().get::<PeerAddr>()) {
        (Some(claims), _) => RateKey::User(claims.sub),
        (None, Some(PeerAddr(a))) => RateKey::addr(a.ip()),
        // Served without the listener (no peer): nothing to key on.
        (None, None) => return next.run(req).await,
    };
    match rates.take(key, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            app.metrics.http_rate_limited_total.inc();
            too_many(wait)
        }
    }
}

/// 429 with `Retry-After` (whole seconds, rounded up) and the error body with `retry_after_ms`.
pub fn too_many(wait: Duration) -> Response {
    let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
    let body = encode(&ServerMessage::Error {
        code: ErrorCode::RateLimited,
        message: "too many requests".into(),
        retry_after_ms: Some(ms),
        session: None,
        version: None,
    });
    let mut r = crate::api::json(StatusCode::TOO_MANY_REQUESTS, body);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000)));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_and_address_has_its_own_budget() {
        let l = HttpLimits {
            requests_per_sec: 1.0,
            requests_burst: 2.0,
            ..HttpLimits::default()
        };
        let r = RequestRates::new(&l);
        let t0 = Instant::now();
        let alice = || RateKey::User("alice".into());
        assert!(r.take(alice(), t0).is_ok());
        assert!(r.take(alice(), t0).is_ok());
        let wait = r.take(alice(), t0).expect_err("alice's burst is spent");
        assert_eq!(wait, Duration::from_secs(1));
        assert!(r.take(RateKey::User("bob".into()), t0).is_ok());
        assert!(r.take(RateKey::Addr([127, 0, 0, 1].into()), t0).is_ok());
        assert!(
            r.take(alice(), t0 + wait).is_ok(),
            "waiting as told is enough"
        );
    }

    #[test]
    fn a_host_is_one_key_whatever_address_of_its_v6_block_it_uses() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(RateKey::addr(a), RateKey::addr(b));
        assert_ne!(RateKey::addr(a), RateKey::addr(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(RateKey::addr(mapped), RateKey::Addr([10, 0, 0, 1].into()));
    }

    #[test]
    fn when_every_bucket_is_in_use_newcomers_share_one_and_nobody_is_forgotten() {
        let l = HttpLimits {
            requests_per_sec: 1.0,
            requests_burst: 1.0,
            ..HttpLimits::default()
        };
        let r = RequestRates::new(&l);
        let t0 = Instant::now();
        let user = |i: usize| RateKey::User(format!("u{i}"));
        for i in 0..MAX_KEYS {
            assert!(r.take(user(i), t0).is_ok());
        }
        // u0 spent its budget; a flood of new keys must not reset it.
        assert!(r.take(user(0), t0).is_err());
        assert!(r.take(user(MAX_KEYS), t0).is_ok(), "the first newcomer");
        assert!(
            r.take(user(MAX_KEYS + 1), t0).is_err(),
            "shares the overflow"
        );
        assert!(r.take(user(0), t0).is_err(), "u0 is still limited");
        // Once the buckets are idle for a refill they are swept and newcomers get their own.
        let later = t0 + Duration::from_secs(2);
        assert!(r.take(user(MAX_KEYS + 2), later).is_ok());
        assert!(r.take(user(MAX_KEYS + 3), later).is_ok());
    }
}
