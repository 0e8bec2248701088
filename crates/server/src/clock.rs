//! Time and randomness, in one place: every component reads the wall clock and draws ids here.

use std::time::{SystemTime, UNIX_EPOCH};

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    since_epoch().as_secs()
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX)
}

/// Now, as RFC 3339 (UTC, milliseconds).
pub fn now_rfc3339() -> String {
    let d = since_epoch();
    let millis = d.subsec_millis() as i32;
    montage_protocol::rfc3339(d.as_secs() as i64, millis * 1_000_000)
}

/// `N` random bytes from the OS. Without OS randomness they come from the clock and the process
/// id: the ids made of them only need to be unique, never secret.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if getrandom::fill(&mut b).is_err() {
        let t = since_epoch().as_nanos() as u64 ^ (u64::from(std::process::id()) << 32);
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 8) * 8)) as u8;
        }
    }
    b
}

/// A random 128-bit id in hex.
pub fn random_id() -> String {
    hex::encode(random_bytes::<16>())
}

/// A random 64-bit id in hex after a kind letter (`c…` comments, `s…` suggestions).
pub fn new_id(kind: char) -> String {
    format!("{kind}{}", hex::encode(random_bytes::<8>()))
}

/// A random 64-bit id in hex (a process's node id on the bus).
pub fn random_node_id() -> String {
    hex::encode(random_bytes::<8>())
}

/// A random number below `n` (0 when `n` is 0).
pub fn random_below(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        u64::from_le_bytes(random_bytes::<8>()) % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_shapes_and_differ() {
        assert_eq!(random_id().len(), 32);
        assert_ne!(random_id(), random_id());
        let c = new_id('c');
        assert!(c.starts_with('c') && c.len() == 17, "{c}");
        assert_eq!(random_node_id().len(), 16);
        assert!(random_below(10) < 10);
        assert_eq!(random_below(0), 0);
    }
}
