//! Counters for the metrics path, rendered in the Prometheus text format (version 0.0.4).
//! Owns the counters and their rendering. Never blocks or allocates on the request path.
//!
//! Every counter is a relaxed atomic written by the one thread that owns the event (the loop
//! counts bytes and its own rejections, workers count responses and durations), so counting
//! costs no lock and no contention on the hot path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::connection::Cut;

/// Upper bounds of the request duration histogram, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The server's counters.
#[derive(Default)]
pub(crate) struct Metrics {
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    responses: [AtomicU64; 5],
    /// Requests answered by the server itself (errors, 503), by status class.
    rejections: [AtomicU64; 5],
    /// Handler durations: one counter per bucket (not cumulative), plus the overflow.
    duration_buckets: [AtomicU64; BUCKETS.len() + 1],
    duration_sum_us: AtomicU64,
    busy_workers: AtomicU64,
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) connections_rejected: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    /// Access log lines dropped because the access log queue was full (shared with the
    /// access log writer).
    pub(crate) access_log_dropped: Arc<AtomicU64>,
    /// Connections closed to make room at the cap, by [`Cut`] (in `Cut::ALL` order).
    evictions: [AtomicU64; Cut::ALL.len()],
    /// Queued requests dropped because their client was gone before a worker took them.
    pub(crate) requests_cancelled: AtomicU64,
}

fn class(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

/// A snapshot of gauges owned elsewhere, taken when the metrics are rendered.
pub(crate) struct Gauges {
    pub(crate) open_connections: usize,
    pub(crate) queue_depth: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) threads: usize,
    pub(crate) draining: bool,
}

impl Metrics {
    /// A worker answered a request with `status` after `duration` (from the request being
    /// complete to the response being handed to the loop).
    pub(crate) fn record_response(&self, status: u16, duration: Duration) {
        self.responses[class(status)].fetch_add(1, Relaxed);
        let seconds = duration.as_secs_f64();
        let bucket = BUCKETS.iter().position(|&b| seconds <= b).unwrap_or(BUCKETS.len());
        self.duration_buckets[bucket].fetch_add(1, Relaxed);
        self.duration_sum_us.fetch_add(duration.as_micros() as u64, Relaxed);
    }

    /// Responses the workers gave (every status class): requests the handler answered.
    pub(crate) fn responses_total(&self) -> u64 {
        self.responses.iter().map(|n| n.load(Relaxed)).sum()
    }

    /// Protection closed a connection (`cut`) to make room for a new client.
    pub(crate) fn record_eviction(&self, cut: Cut) {
        if let Some(i) = Cut::ALL.iter().position(|&c| c == cut) {
            self.evictions[i].fetch_add(1, Relaxed);
        }
        self.connections_rejected.fetch_add(1, Relaxed);
    }

    /// The server answered a request by itself with `status`.
    pub(crate) fn record_rejection(&self, status: u16) {
        self.rejections[class(status)].fetch_add(1, Relaxed);
    }

    pub(crate) fn worker_busy(&self) {
        self.busy_workers.fetch_add(1, Relaxed);
    }

    pub(crate) fn worker_idle(&self) {
        self.busy_workers.fetch_sub(1, Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        out.push_str("# HELP maitred_requests_total Requests answered, by status class and by who answered.\n");
        out.push_str("# TYPE maitred_requests_total counter\n");
        for (i, class) in classes.iter().enumerate() {
            let handler = self.responses[i].load(Relaxed);
            let server = self.rejections[i].load(Relaxed);
            let _ = writeln!(out, "maitred_requests_total{{class=\"{class}\",by=\"handler\"}} {handler}");
            let _ = writeln!(out, "maitred_requests_total{{class=\"{class}\",by=\"server\"}} {server}");
        }
        out.push_str("# HELP maitred_request_duration_seconds Time from a complete request to its response leaving the worker.\n");
        out.push_str("# TYPE maitred_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.duration_buckets[i].load(Relaxed);
            let _ = writeln!(out, "maitred_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.duration_buckets[BUCKETS.len()].load(Relaxed);
        let _ = writeln!(out, "maitred_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.duration_sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "maitred_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "maitred_request_duration_seconds_count {cumulative}");
        out.push_str("# HELP maitred_connections_evicted_total Connections closed to make room for new clients when the table was full, by what they were doing (least progress first).\n");
        out.push_str("# TYPE maitred_connections_evicted_total counter\n");
        for (cut, n) in Cut::ALL.iter().zip(&self.evictions) {
            let _ = writeln!(out, "maitred_connections_evicted_total{{reason=\"{}\"}} {}", cut.name(), n.load(Relaxed));
        }
        let gauges_and_counters: [(&str, &str, &str, u64); 12] = [
            ("maitred_queue_depth", "gauge", "Complete requests waiting for a worker.", gauges.queue_depth as u64),
            ("maitred_queue_capacity", "gauge", "Size of the dispatch queue.", gauges.queue_capacity as u64),
            ("maitred_busy_workers", "gauge", "Workers running the handler now.", self.busy_workers.load(Relaxed)),
            ("maitred_worker_threads", "gauge", "Size of the worker pool.", gauges.threads as u64),
            ("maitred_open_connections", "gauge", "Client connections open now.", gauges.open_connections as u64),
            (
                "maitred_connections_accepted_total",
                "counter",
                "Connections accepted.",
                self.connections_accepted.load(Relaxed),
            ),
            (
                "maitred_connections_rejected_total",
                "counter",
                "Connections closed to make room at the cap, or lost to accept failures.",
                self.connections_rejected.load(Relaxed),
            ),
            (
                "maitred_requests_cancelled_total",
                "counter",
                "Queued requests dropped because their client was gone before a worker took them.",
                self.requests_cancelled.load(Relaxed),
            ),
            ("maitred_received_bytes_total", "counter", "Bytes read from clients.", self.bytes_in.load(Relaxed)),
            ("maitred_sent_bytes_total", "counter", "Bytes written to clients.", self.bytes_out.load(Relaxed)),
            ("maitred_draining", "gauge", "1 while the server shuts down.", u64::from(gauges.draining)),
            (
                "maitred_access_log_dropped_lines_total",
                "counter",
                "Access log lines dropped because the output was too slow.",
                self.access_log_dropped.load(Relaxed),
            ),
        ];
        for (name, kind, help, value) in gauges_and_counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let m = Metrics::default();
        m.record_response(200, Duration::from_micros(500));
        m.record_response(404, Duration::from_millis(30));
        m.record_response(500, Duration::from_secs(20));
        m.record_rejection(503);
        let gauges = Gauges { open_connections: 3, queue_depth: 1, queue_capacity: 64, threads: 4, draining: false };
        let text = m.render(&gauges);
        assert!(text.contains("maitred_request_duration_seconds_bucket{le=\"0.001\"} 1\n"), "{text}");
        assert!(text.contains("maitred_request_duration_seconds_bucket{le=\"0.05\"} 2\n"), "{text}");
        assert!(text.contains("maitred_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("maitred_request_duration_seconds_count 3\n"));
        assert!(text.contains("maitred_requests_total{class=\"5xx\",by=\"server\"} 1\n"));
        assert!(text.contains("maitred_requests_total{class=\"2xx\",by=\"handler\"} 1\n"));
        assert!(text.contains("maitred_open_connections 3\n"));
        m.access_log_dropped.fetch_add(2, Relaxed);
        assert!(m.render(&gauges).contains("\nmaitred_access_log_dropped_lines_total 2\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
