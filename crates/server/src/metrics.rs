//! Prometheus metrics of one server, in a registry of its own (tests run several servers in one
//! process), written in the text exposition format by the `prometheus` crate.

use std::time::Duration;

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntGauge, Registry, TextEncoder};

/// Bucket bounds of the ack latency histogram, in seconds.
const ACK_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub connections: IntGauge,
    pub connections_total: IntCounter,
    pub sessions_loaded: IntGauge,
    pub edits_total: IntCounter,
    pub commit_batches_total: IntCounter,
    pub commit_failures_total: IntCounter,
    pub rate_limited_total: IntCounter,
    pub dropped_slow_total: IntCounter,
    /// Versions composed into a range already held for a slow or low-tier connection.
    pub range_merged_total: IntCounter,
    pub state_download_bytes: IntCounter,
    /// Measured tier changes of connections, down and up.
    pub tier_down_total: IntCounter,
    pub tier_up_total: IntCounter,
    /// Edits sequenced again after another node committed their version first.
    pub conflict_retries_total: IntCounter,
    /// Edits sent to their session's home node (DESIGN §9.7).
    pub forwarded_edits_total: IntCounter,
    /// Sessions this node is the home of (holds the lease of), as of the last renewal.
    pub home_sessions: IntGauge,
    /// Leases of this node that another node took (this node was paused or cut off).
    pub home_leases_lost_total: IntCounter,
    /// Rebases, applies and document copies handed to the blocking pool (DESIGN §9.2).
    pub heavy_work_total: IntCounter,
    /// Sessions watched by live preview subscriptions on this node.
    pub preview_watches: IntGauge,
    /// HTTP requests refused by the per-user (or per-address) request rate.
    pub http_rate_limited_total: IntCounter,
    ack_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("a valid counter name");
            registry
                .register(Box::new(c.clone()))
                .expect("each metric is registered once");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("a valid gauge name");
            registry
                .register(Box::new(g.clone()))
                .expect("each metric is registered once");
            g
        };
        let ack_latency = Histogram::with_opts(
            HistogramOpts::new(
                "montage_ack_latency_seconds",
                "Time from receiving an edit to acking it.",
            )
            .buckets(ACK_BUCKETS.to_vec()),
        )
        .expect("valid histogram options");
        registry
            .register(Box::new(ack_latency.clone()))
            .expect("each metric is registered once");
        Metrics {
            connections: gauge("montage_connections", "Open WebSocket connections."),
            connections_total: counter(
                "montage_connections_total",
                "WebSocket connections accepted.",
            ),
            sessions_loaded: gauge("montage_sessions_loaded", "Sessions held in memory."),
            edits_total: counter("montage_edits_total", "Edits made durable and acked."),
            commit_batches_total: counter(
                "montage_commit_batches_total",
                "Group-commit transactions.",
            ),
            commit_failures_total: counter(
                "montage_commit_failures_total",
                "Failed group commits.",
            ),
            rate_limited_total: counter(
                "montage_rate_limited_total",
                "Messages refused by rate limits.",
            ),
            dropped_slow_total: counter(
                "montage_dropped_slow_total",
                "Connections dropped for a full send queue.",
            ),
            range_merged_total: counter(
                "montage_range_merged_total",
                "Edits composed into a range held for a slow or low-tier connection (one frame fewer each).",
            ),
            state_download_bytes: counter(
                "montage_state_download_bytes_total",
                "Bytes of large states downloaded by joining clients (GET /v1/sessions/{id}/state).",
            ),
            tier_down_total: counter(
                "montage_tier_down_total",
                "Connections moved to a lower bandwidth tier.",
            ),
            tier_up_total: counter(
                "montage_tier_up_total",
                "Connections moved to a higher bandwidth tier.",
            ),
            conflict_retries_total: counter(
                "montage_conflict_retries_total",
                "Edits sequenced again because another node committed their version first.",
            ),
            forwarded_edits_total: counter(
                "montage_forwarded_edits_total",
                "Edits forwarded to their session's home node.",
            ),
            home_sessions: gauge(
                "montage_home_sessions",
                "Sessions this node sequences (holds the home lease of).",
            ),
            home_leases_lost_total: counter(
                "montage_home_leases_lost_total",
                "Home leases of this node found taken by another node.",
            ),
            heavy_work_total: counter(
                "montage_heavy_work_total",
                "Edits and suggestions transformed or applied on the blocking pool.",
            ),
            preview_watches: gauge(
                "montage_preview_watches",
                "Sessions watched by live preview subscriptions.",
            ),
            http_rate_limited_total: counter(
                "montage_http_rate_limited_total",
                "HTTP requests refused by the per-user request rate.",
            ),
            ack_latency,
            registry,
        }
    }
}

impl Metrics {
    pub fn observe_ack(&self, d: Duration) {
        self.ack_latency.observe(d.as_secs_f64());
    }

    /// Every metric in the text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(4096);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// The `Content-Type` of [`render`](Metrics::render)'s text.
    pub fn content_type(&self) -> String {
        TextEncoder::new().format_type().to_owned()
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
        assert!(
            t.contains("montage_ack_latency_seconds_bucket{le=\"0.0005\"} 0"),
            "{t}"
        );
        assert!(t.contains("montage_ack_latency_seconds_bucket{le=\"0.001\"} 1"));
        assert!(t.contains("montage_ack_latency_seconds_bucket{le=\"0.025\"} 2"));
        assert!(t.contains("montage_ack_latency_seconds_count 2"));
    }

    #[test]
    fn counters_and_gauges_keep_their_names() {
        let m = Metrics::default();
        m.connections.inc();
        m.connections_total.inc();
        m.edits_total.inc_by(3);
        let t = m.render();
        assert!(
            t.contains("# TYPE montage_connections gauge\nmontage_connections 1"),
            "{t}"
        );
        assert!(t.contains("montage_connections_total 1"));
        assert!(t.contains("montage_edits_total 3"));
        // Servers in one process keep their own counts.
        assert!(
            Metrics::default()
                .render()
                .contains("montage_edits_total 0")
        );
    }
}
