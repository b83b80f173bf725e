//! Counters for the metrics path, rendered in the Prometheus text format (version 0.0.4).
//! Owns the counters, their plain-value [`Snapshot`], the [`ClusterView`] a supervisor sends
//! each worker process, and the rendering. Never blocks or allocates on the request path.
//!
//! Every counter is a relaxed atomic written by the one thread that owns the event (the loop
//! counts bytes and its own rejections, workers count responses and durations), so counting
//! costs no lock and no contention on the hot path.
//!
//! Under a supervisor, each worker process answers the metrics path for all of them: totals are
//! the cluster view's `others` (retired workers and every other live worker's last report) plus
//! this process's live counters, so they never go backwards when a worker is replaced.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
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
    /// Handler calls that ran longer than `worker_timeout`.
    pub(crate) handler_timeouts: AtomicU64,
    /// What the supervisor last said about the other worker processes; `None` in a single
    /// process.
    cluster: Mutex<Option<ClusterView>>,
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
    /// No worker thread has been free for longer than the wedge bound.
    pub(crate) wedged: bool,
}

/// Every monotone counter of [`Metrics`] as plain numbers: what a worker process reports to
/// its supervisor, and what the supervisor sums over retired and live workers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// Responses from the handler, by status class (1xx to 5xx).
    pub(crate) responses: [u64; 5],
    /// Responses from the server itself, by status class.
    pub(crate) rejections: [u64; 5],
    /// Handler durations per bucket of [`BUCKETS`] (not cumulative), then the overflow.
    pub(crate) duration_buckets: [u64; BUCKETS.len() + 1],
    pub(crate) duration_sum_us: u64,
    pub(crate) connections_accepted: u64,
    pub(crate) connections_rejected: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) access_log_dropped: u64,
    /// Evictions by [`Cut`], in `Cut::ALL` order.
    pub(crate) evictions: [u64; Cut::ALL.len()],
    pub(crate) requests_cancelled: u64,
    pub(crate) handler_timeouts: u64,
}

/// One field of a [`Snapshot`] in its text form: a key and where its numbers live.
enum Field<'a> {
    One(&'static str, &'a u64),
    Many(&'static str, &'a [u64]),
}

impl Snapshot {
    /// Adds `other` to this snapshot, counter by counter (saturating).
    pub(crate) fn add(&mut self, other: &Snapshot) {
        fn sum(into: &mut [u64], from: &[u64]) {
            into.iter_mut().zip(from).for_each(|(a, b)| *a = a.saturating_add(*b));
        }
        let Snapshot {
            responses,
            rejections,
            duration_buckets,
            duration_sum_us,
            connections_accepted,
            connections_rejected,
            bytes_in,
            bytes_out,
            access_log_dropped,
            evictions,
            requests_cancelled,
            handler_timeouts,
        } = other;
        sum(&mut self.responses, responses);
        sum(&mut self.rejections, rejections);
        sum(&mut self.duration_buckets, duration_buckets);
        sum(&mut self.evictions, evictions);
        let ones = [
            (&mut self.duration_sum_us, duration_sum_us),
            (&mut self.connections_accepted, connections_accepted),
            (&mut self.connections_rejected, connections_rejected),
            (&mut self.bytes_in, bytes_in),
            (&mut self.bytes_out, bytes_out),
            (&mut self.access_log_dropped, access_log_dropped),
            (&mut self.requests_cancelled, requests_cancelled),
            (&mut self.handler_timeouts, handler_timeouts),
        ];
        for (a, b) in ones {
            *a = a.saturating_add(*b);
        }
    }

    /// Requests the handler answered (what `--max-requests` counts).
    pub(crate) fn handled(&self) -> u64 {
        self.responses.iter().sum()
    }

    fn fields(&self) -> [Field<'_>; 12] {
        [
            Field::Many("resp", &self.responses),
            Field::Many("rej", &self.rejections),
            Field::Many("dur", &self.duration_buckets),
            Field::One("dursum", &self.duration_sum_us),
            Field::One("acc", &self.connections_accepted),
            Field::One("refused", &self.connections_rejected),
            Field::One("in", &self.bytes_in),
            Field::One("out", &self.bytes_out),
            Field::One("logdrop", &self.access_log_dropped),
            Field::Many("evict", &self.evictions),
            Field::One("cancel", &self.requests_cancelled),
            Field::One("timeout", &self.handler_timeouts),
        ]
    }

    /// Appends the snapshot as space-separated `key=n` or `key=n,n,n` tokens.
    pub(crate) fn encode_into(&self, out: &mut String) {
        for field in self.fields() {
            match field {
                Field::One(key, n) => {
                    let _ = write!(out, " {key}={n}");
                }
                Field::Many(key, ns) => {
                    let _ = write!(out, " {key}=");
                    for (i, n) in ns.iter().enumerate() {
                        let _ = write!(out, "{}{n}", if i == 0 { "" } else { "," });
                    }
                }
            }
        }
    }

    /// Takes one `key=value` token of [`Snapshot::encode_into`]'s form. Returns `None` for a
    /// value that does not parse, `Some(false)` for a key that is not a snapshot field (the
    /// caller's own, or one from a newer version: ignored), `Some(true)` when taken.
    pub(crate) fn decode_token(&mut self, key: &str, value: &str) -> Option<bool> {
        fn set_many(into: &mut [u64], value: &str) -> Option<()> {
            // A list of another length (another version) fills what both know.
            for (slot, n) in into.iter_mut().zip(value.split(',')) {
                *slot = n.parse().ok()?;
            }
            Some(())
        }
        let one = |value: &str| value.parse::<u64>().ok();
        match key {
            "resp" => set_many(&mut self.responses, value)?,
            "rej" => set_many(&mut self.rejections, value)?,
            "dur" => set_many(&mut self.duration_buckets, value)?,
            "evict" => set_many(&mut self.evictions, value)?,
            "dursum" => self.duration_sum_us = one(value)?,
            "acc" => self.connections_accepted = one(value)?,
            "refused" => self.connections_rejected = one(value)?,
            "in" => self.bytes_in = one(value)?,
            "out" => self.bytes_out = one(value)?,
            "logdrop" => self.access_log_dropped = one(value)?,
            "cancel" => self.requests_cancelled = one(value)?,
            "timeout" => self.handler_timeouts = one(value)?,
            _ => return Some(false),
        }
        Some(true)
    }
}

/// The gauges of one live worker process, as its last report gave them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WorkerGauge {
    /// The supervisor's number for the worker slot (a replacement takes the same number).
    pub(crate) id: u64,
    pub(crate) pid: u64,
    pub(crate) busy_threads: u64,
    pub(crate) open_connections: u64,
    /// Resident memory in bytes, 0 if unknown.
    pub(crate) resident_bytes: u64,
    /// Requests its handler answered since it started.
    pub(crate) requests_handled: u64,
}

/// What the supervisor tells each worker process so its metrics path can answer for all of
/// them. Sent as one line by [`ClusterView::encode`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClusterView {
    /// Retired workers' last reports plus every other live worker's last report.
    pub(crate) others: Snapshot,
    /// One entry per live worker (this one included, as of its last report).
    pub(crate) workers: Vec<WorkerGauge>,
    /// Worker replacements by reason (`crash`, `timeout`, `max_requests`, `memory`, `reload`,
    /// `scale`, `signal`, ...), with their counts since the supervisor started.
    pub(crate) restarts: Vec<(String, u64)>,
}

/// The restart reasons always rendered (at 0 until one happens), so dashboards see the series.
pub(crate) const RESTART_REASONS: [&str; 7] =
    ["crash", "timeout", "max_requests", "memory", "reload", "scale", "signal"];

impl ClusterView {
    /// One line, no `\n`: the snapshot's tokens, then `w=id,pid,busy,open,resident,handled`
    /// per worker and `r=reason:count` per restart reason.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::from("v=1");
        self.others.encode_into(&mut out);
        for w in &self.workers {
            let _ = write!(
                out,
                " w={},{},{},{},{},{}",
                w.id, w.pid, w.busy_threads, w.open_connections, w.resident_bytes, w.requests_handled
            );
        }
        for (reason, count) in &self.restarts {
            // Reasons are the supervisor's own words; keep the line's syntax whatever they are.
            let reason: String = reason.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let _ = write!(out, " r={reason}:{count}");
        }
        out
    }

    /// Parses [`ClusterView::encode`]'s line; `None` if it is malformed.
    pub(crate) fn decode(line: &str) -> Option<ClusterView> {
        let mut view = ClusterView::default();
        for token in line.split_ascii_whitespace() {
            let (key, value) = token.split_once('=')?;
            match key {
                "v" => {}
                "w" => {
                    let mut n = value.split(',').map(|n| n.parse::<u64>());
                    let mut next = || n.next().and_then(Result::ok);
                    view.workers.push(WorkerGauge {
                        id: next()?,
                        pid: next()?,
                        busy_threads: next()?,
                        open_connections: next()?,
                        resident_bytes: next()?,
                        requests_handled: next()?,
                    });
                }
                "r" => {
                    let (reason, count) = value.split_once(':')?;
                    if reason.is_empty() || !reason.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        return None;
                    }
                    view.restarts.push((reason.to_string(), count.parse().ok()?));
                }
                _ => {
                    view.others.decode_token(key, value)?;
                }
            }
        }
        Some(view)
    }
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

    /// This process's counters, now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let load = |a: &[AtomicU64]| -> Vec<u64> { a.iter().map(|n| n.load(Relaxed)).collect() };
        let mut s = Snapshot {
            duration_sum_us: self.duration_sum_us.load(Relaxed),
            connections_accepted: self.connections_accepted.load(Relaxed),
            connections_rejected: self.connections_rejected.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            access_log_dropped: self.access_log_dropped.load(Relaxed),
            requests_cancelled: self.requests_cancelled.load(Relaxed),
            handler_timeouts: self.handler_timeouts.load(Relaxed),
            ..Snapshot::default()
        };
        s.responses.copy_from_slice(&load(&self.responses));
        s.rejections.copy_from_slice(&load(&self.rejections));
        s.duration_buckets.copy_from_slice(&load(&self.duration_buckets));
        s.evictions.copy_from_slice(&load(&self.evictions));
        s
    }

    /// Replaces what this process knows about the other worker processes (from the
    /// supervisor); the metrics path then answers for all of them.
    pub(crate) fn set_cluster(&self, view: ClusterView) {
        *self.cluster.lock().unwrap_or_else(|e| e.into_inner()) = Some(view);
    }

    /// Worker threads running the handler now.
    pub(crate) fn busy_threads(&self) -> u64 {
        self.busy_workers.load(Relaxed)
    }

    pub(crate) fn worker_busy(&self) {
        self.busy_workers.fetch_add(1, Relaxed);
    }

    pub(crate) fn worker_idle(&self) {
        self.busy_workers.fetch_sub(1, Relaxed);
    }

    /// The Prometheus text exposition of every metric: this process's, or, under a
    /// supervisor, totals over every worker process (retired ones included) with per-worker
    /// gauges and restarts by reason.
    pub(crate) fn render(&self, gauges: &Gauges) -> String {
        let mut total = self.snapshot();
        let cluster = self.cluster.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(view) = &cluster {
            total.add(&view.others);
        }
        let mut out = String::with_capacity(4096);
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
        out.push_str("# HELP maitred_requests_total Requests answered, by status class and by who answered.\n");
        out.push_str("# TYPE maitred_requests_total counter\n");
        for (i, class) in classes.iter().enumerate() {
            let (handler, server) = (total.responses[i], total.rejections[i]);
            let _ = writeln!(out, "maitred_requests_total{{class=\"{class}\",by=\"handler\"}} {handler}");
            let _ = writeln!(out, "maitred_requests_total{{class=\"{class}\",by=\"server\"}} {server}");
        }
        out.push_str("# HELP maitred_request_duration_seconds Time from a complete request to its response leaving the worker.\n");
        out.push_str("# TYPE maitred_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += total.duration_buckets[i];
            let _ = writeln!(out, "maitred_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += total.duration_buckets[BUCKETS.len()];
        let _ = writeln!(out, "maitred_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = total.duration_sum_us as f64 / 1e6;
        let _ = writeln!(out, "maitred_request_duration_seconds_sum {sum}");
        let _ = writeln!(out, "maitred_request_duration_seconds_count {cumulative}");
        out.push_str("# HELP maitred_connections_evicted_total Connections closed to make room for new clients when the table was full, by what they were doing (least progress first).\n");
        out.push_str("# TYPE maitred_connections_evicted_total counter\n");
        for (cut, n) in Cut::ALL.iter().zip(&total.evictions) {
            let _ = writeln!(out, "maitred_connections_evicted_total{{reason=\"{}\"}} {n}", cut.name());
        }
        let resident = crate::ops::memory::resident_bytes().unwrap_or(0);
        let gauges_and_counters: [(&str, &str, &str, u64); 15] = [
            ("maitred_queue_depth", "gauge", "Complete requests waiting for a worker.", gauges.queue_depth as u64),
            ("maitred_queue_capacity", "gauge", "Size of the dispatch queue.", gauges.queue_capacity as u64),
            ("maitred_busy_workers", "gauge", "Workers running the handler now.", self.busy_workers.load(Relaxed)),
            ("maitred_worker_threads", "gauge", "Size of the worker pool.", gauges.threads as u64),
            ("maitred_open_connections", "gauge", "Client connections open now.", gauges.open_connections as u64),
            ("maitred_connections_accepted_total", "counter", "Connections accepted.", total.connections_accepted),
            (
                "maitred_connections_rejected_total",
                "counter",
                "Connections closed to make room at the cap, or lost to accept failures.",
                total.connections_rejected,
            ),
            (
                "maitred_requests_cancelled_total",
                "counter",
                "Queued requests dropped because their client was gone before a worker took them.",
                total.requests_cancelled,
            ),
            ("maitred_received_bytes_total", "counter", "Bytes read from clients.", total.bytes_in),
            ("maitred_sent_bytes_total", "counter", "Bytes written to clients.", total.bytes_out),
            ("maitred_draining", "gauge", "1 while the server shuts down.", u64::from(gauges.draining)),
            (
                "maitred_wedged",
                "gauge",
                "1 while no worker thread of this process has been free for longer than the wedge bound (the health path answers 503).",
                u64::from(gauges.wedged),
            ),
            (
                "maitred_access_log_dropped_lines_total",
                "counter",
                "Access log lines dropped because the output was too slow.",
                total.access_log_dropped,
            ),
            (
                "maitred_handler_timeouts_total",
                "counter",
                "Handler calls that ran longer than worker_timeout.",
                total.handler_timeouts,
            ),
            ("maitred_resident_memory_bytes", "gauge", "Resident memory of this process (0 if unknown).", resident),
        ];
        for (name, kind, help, value) in gauges_and_counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        if let Some(view) = &cluster {
            render_cluster(&mut out, view);
        }
        out
    }
}

/// The per-worker gauges and restarts by reason of a supervised server.
fn render_cluster(out: &mut String, view: &ClusterView) {
    let _ = writeln!(out, "# HELP maitred_worker_processes Live worker processes.\n# TYPE maitred_worker_processes gauge\nmaitred_worker_processes {}", view.workers.len());
    type Gauge = fn(&WorkerGauge) -> u64;
    let per_worker: [(&str, &str, Gauge); 5] = [
        ("maitred_worker_process_pid", "Process id of each live worker.", |w| w.pid),
        ("maitred_worker_process_busy_threads", "Worker threads running the handler, per worker process.", |w| {
            w.busy_threads
        }),
        ("maitred_worker_process_open_connections", "Client connections open, per worker process.", |w| {
            w.open_connections
        }),
        ("maitred_worker_process_resident_memory_bytes", "Resident memory per worker process (0 if unknown).", |w| {
            w.resident_bytes
        }),
        (
            "maitred_worker_process_requests_handled",
            "Requests the handler answered since the worker process started.",
            |w| w.requests_handled,
        ),
    ];
    for (name, help, value) in per_worker {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for w in &view.workers {
            let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", w.id, value(w));
        }
    }
    out.push_str("# HELP maitred_worker_restarts_total Worker processes replaced, by reason.\n");
    out.push_str("# TYPE maitred_worker_restarts_total counter\n");
    let count = |reason: &str| view.restarts.iter().filter(|(r, _)| r == reason).map(|(_, n)| n).sum::<u64>();
    for reason in RESTART_REASONS {
        let _ = writeln!(out, "maitred_worker_restarts_total{{reason=\"{reason}\"}} {}", count(reason));
    }
    for (reason, n) in view.restarts.iter().filter(|(r, _)| !RESTART_REASONS.contains(&r.as_str())) {
        let _ = writeln!(out, "maitred_worker_restarts_total{{reason=\"{reason}\"}} {n}");
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
        let gauges = Gauges {
            open_connections: 3,
            queue_depth: 1,
            queue_capacity: 64,
            threads: 4,
            draining: false,
            wedged: false,
        };
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

    /// Under a supervisor the totals are the cluster's (others plus this process), with one
    /// gauge per live worker and every restart reason rendered.
    #[test]
    fn cluster_totals_per_worker_gauges_and_restarts() {
        let m = Metrics::default();
        m.record_response(200, Duration::from_millis(2));
        m.handler_timeouts.fetch_add(1, Relaxed);
        let gauges = Gauges {
            open_connections: 0,
            queue_depth: 0,
            queue_capacity: 64,
            threads: 4,
            draining: false,
            wedged: true,
        };
        let single = m.render(&gauges);
        assert!(!single.contains("maitred_worker_restarts_total"), "{single}");
        assert!(single.contains("\nmaitred_handler_timeouts_total 1\n"), "{single}");
        assert!(single.contains("\nmaitred_wedged 1\n"), "{single}");
        let mut others = Snapshot::default();
        others.responses[1] = 41;
        others.duration_buckets[0] = 41;
        others.handler_timeouts = 2;
        m.set_cluster(ClusterView {
            others,
            workers: vec![
                WorkerGauge { id: 0, pid: 10, busy_threads: 1, resident_bytes: 5 << 20, ..WorkerGauge::default() },
                WorkerGauge { id: 1, pid: 11, requests_handled: 9, ..WorkerGauge::default() },
            ],
            restarts: vec![("crash".into(), 3), ("odd_reason".into(), 1)],
        });
        let text = m.render(&gauges);
        for line in [
            "maitred_requests_total{class=\"2xx\",by=\"handler\"} 42",
            "maitred_request_duration_seconds_count 42",
            "maitred_handler_timeouts_total 3",
            "maitred_worker_processes 2",
            "maitred_worker_process_pid{worker=\"1\"} 11",
            "maitred_worker_process_resident_memory_bytes{worker=\"0\"} 5242880",
            "maitred_worker_process_requests_handled{worker=\"1\"} 9",
            "maitred_worker_restarts_total{reason=\"crash\"} 3",
            "maitred_worker_restarts_total{reason=\"timeout\"} 0",
            "maitred_worker_restarts_total{reason=\"odd_reason\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
