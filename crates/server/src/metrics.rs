//! Prometheus metrics, kept as atomics and written in the text exposition format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Bucket bounds of the ack latency histogram, in seconds.
const ACK_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub sessions_loaded: AtomicU64,
    pub edits_total: AtomicU64,
    pub commit_batches_total: AtomicU64,
    pub commit_failures_total: AtomicU64,
    pub rate_limited_total: AtomicU64,
    pub dropped_slow_total: AtomicU64,
    /// Measured tier changes of connections, down and up.
    pub tier_down_total: AtomicU64,
    pub tier_up_total: AtomicU64,
    ack_buckets: [AtomicU64; ACK_BUCKETS.len()],
    ack_count: AtomicU64,
    ack_sum_micros: AtomicU64,
}

impl Metrics {
    pub fn observe_ack(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, le) in ACK_BUCKETS.iter().enumerate() {
            if s <= *le {
                self.ack_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.ack_count.fetch_add(1, Relaxed);
        self.ack_sum_micros.fetch_add(d.as_micros() as u64, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut s = String::with_capacity(2048);
        let mut one = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        one(
            "montage_connections",
            "gauge",
            "Open WebSocket connections.",
            self.connections.load(Relaxed),
        );
        one(
            "montage_connections_total",
            "counter",
            "WebSocket connections accepted.",
            self.connections_total.load(Relaxed),
        );
        one(
            "montage_sessions_loaded",
            "gauge",
            "Sessions held in memory.",
            self.sessions_loaded.load(Relaxed),
        );
        one(
            "montage_edits_total",
            "counter",
            "Edits made durable and acked.",
            self.edits_total.load(Relaxed),
        );
        one(
            "montage_commit_batches_total",
            "counter",
            "Group-commit transactions.",
            self.commit_batches_total.load(Relaxed),
        );
        one(
            "montage_commit_failures_total",
            "counter",
            "Failed group commits.",
            self.commit_failures_total.load(Relaxed),
        );
        one(
            "montage_rate_limited_total",
            "counter",
            "Messages refused by rate limits.",
            self.rate_limited_total.load(Relaxed),
        );
        one(
            "montage_dropped_slow_total",
            "counter",
            "Connections dropped for a full send queue.",
            self.dropped_slow_total.load(Relaxed),
        );
        one(
            "montage_tier_down_total",
            "counter",
            "Connections moved to a lower bandwidth tier.",
            self.tier_down_total.load(Relaxed),
        );
        one(
            "montage_tier_up_total",
            "counter",
            "Connections moved to a higher bandwidth tier.",
            self.tier_up_total.load(Relaxed),
        );
        let name = "montage_ack_latency_seconds";
        let _ = writeln!(
            s,
            "# HELP {name} Time from receiving an edit to acking it.\n# TYPE {name} histogram"
        );
        for (i, le) in ACK_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "{name}_bucket{{le=\"{le}\"}} {}",
                self.ack_buckets[i].load(Relaxed)
            );
        }
        let count = self.ack_count.load(Relaxed);
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            s,
            "{name}_sum {}",
            self.ack_sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "{name}_count {count}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe_ack(Duration::from_micros(700));
        m.observe_ack(Duration::from_millis(20));
        let t = m.render();
        assert!(t.contains("montage_ack_latency_seconds_bucket{le=\"0.0005\"} 0"));
        assert!(t.contains("montage_ack_latency_seconds_bucket{le=\"0.001\"} 1"));
        assert!(t.contains("montage_ack_latency_seconds_bucket{le=\"0.025\"} 2"));
        assert!(t.contains("montage_ack_latency_seconds_count 2"));
    }
}
