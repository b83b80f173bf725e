//! The report a worker process sends its supervisor: its counters, gauges, memory, and whether
//! it asks to be replaced. Owns the [`Report`] data and its one-line text form. Never sends it
//! (the supervisor's control channel does) and never decides what the supervisor does with it.

use std::fmt::Write as _;

use crate::ops::metrics::Snapshot;

/// Why a worker process asks to be replaced. The words the report carries; anything else
/// decodes as `None`, so a newer worker cannot make an older supervisor act on a word it does
/// not know.
pub(crate) const REPLACE_REASONS: [&str; 1] = ["timeout"];

/// What a worker process tells its supervisor, about once every 500 ms and once at exit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Report {
    /// Every monotone counter of `ops::metrics`, for this process since it started.
    pub(crate) counters: Snapshot,
    /// Worker threads running the handler now.
    pub(crate) busy_threads: u64,
    /// Client connections open now (for Windows load balancing and the metrics).
    pub(crate) open_connections: u64,
    /// Resident memory in bytes, 0 if unknown.
    pub(crate) resident_bytes: u64,
    /// Requests the handler answered since the process started (for `--max-requests`).
    pub(crate) requests_handled: u64,
    /// No worker thread has been free for longer than the wedge bound.
    pub(crate) wedged: bool,
    /// The process drains: its supervisor told it to, or a stop signal reached it alone (the
    /// supervisor then stops handing it connections and replaces it).
    pub(crate) draining: bool,
    /// The worker asks to be replaced, and why (`Some("timeout")` once a handler call ran
    /// longer than `worker_timeout`).
    pub(crate) replace: Option<&'static str>,
}

impl Report {
    /// One line, no `\n`: space-separated `key=value` tokens. Unknown keys are ignored by
    /// [`Report::decode`], so a supervisor and a worker of neighbouring versions still agree.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::with_capacity(512);
        let _ = write!(
            out,
            "v=1 busy={} open={} rss={} handled={} wedged={} draining={}",
            self.busy_threads,
            self.open_connections,
            self.resident_bytes,
            self.requests_handled,
            u8::from(self.wedged),
            u8::from(self.draining)
        );
        if let Some(reason) = self.replace {
            let _ = write!(out, " replace={reason}");
        }
        self.counters.encode_into(&mut out);
        out
    }

    /// Parses [`Report::encode`]'s line; `None` if a known field does not parse.
    pub(crate) fn decode(line: &str) -> Option<Report> {
        let mut report = Report::default();
        for token in line.split_ascii_whitespace() {
            let (key, value) = token.split_once('=')?;
            let number = || value.parse::<u64>().ok();
            match key {
                "v" => {}
                "busy" => report.busy_threads = number()?,
                "open" => report.open_connections = number()?,
                "rss" => report.resident_bytes = number()?,
                "handled" => report.requests_handled = number()?,
                "wedged" => report.wedged = number()? != 0,
                "draining" => report.draining = number()? != 0,
                "replace" => report.replace = REPLACE_REASONS.iter().find(|r| **r == value).copied(),
                _ => {
                    report.counters.decode_token(key, value)?;
                }
            }
        }
        Some(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::metrics::{ClusterView, WorkerGauge};

    /// A snapshot whose every counter differs, so a field encoded under one key and decoded
    /// under another cannot go unnoticed.
    fn distinct_snapshot(base: u64) -> Snapshot {
        let mut s = Snapshot::default();
        let mut n = base;
        let mut next = || {
            n += 1;
            n
        };
        s.responses.iter_mut().for_each(|x| *x = next());
        s.rejections.iter_mut().for_each(|x| *x = next());
        s.duration_buckets.iter_mut().for_each(|x| *x = next());
        s.evictions.iter_mut().for_each(|x| *x = next());
        s.duration_sum_us = next();
        s.connections_accepted = next();
        s.connections_rejected = next();
        s.bytes_in = next();
        s.bytes_out = next();
        s.access_log_dropped = next();
        s.requests_cancelled = next();
        s.handler_timeouts = u64::MAX;
        s
    }

    #[test]
    fn report_round_trips_through_its_line() {
        let report = Report {
            counters: distinct_snapshot(100),
            busy_threads: 3,
            open_connections: 17,
            resident_bytes: 52 << 20,
            requests_handled: 12345,
            wedged: true,
            draining: true,
            replace: Some("timeout"),
        };
        let line = report.encode();
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(Report::decode(&line), Some(report.clone()));
        let calm = Report { wedged: false, draining: false, replace: None, ..report };
        assert_eq!(Report::decode(&calm.encode()), Some(calm));
    }

    #[test]
    fn report_decode_ignores_unknown_keys_and_refuses_bad_numbers() {
        let r = Report::decode("v=2 busy=1 future=abc replace=reload open=2").unwrap();
        assert_eq!((r.busy_threads, r.open_connections, r.replace), (1, 2, None));
        assert_eq!(Report::decode("busy=x"), None);
        assert_eq!(Report::decode("busy"), None);
        assert_eq!(Report::decode("resp=1,x"), None);
    }

    #[test]
    fn cluster_view_round_trips_through_its_line() {
        let view = ClusterView {
            others: distinct_snapshot(7),
            workers: vec![
                WorkerGauge {
                    id: 1,
                    pid: 4242,
                    busy_threads: 2,
                    open_connections: 9,
                    resident_bytes: 1 << 30,
                    requests_handled: 77,
                },
                WorkerGauge { id: 2, pid: 4243, ..WorkerGauge::default() },
            ],
            restarts: vec![("crash".into(), 2), ("timeout".into(), 1)],
        };
        let line = view.encode();
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(ClusterView::decode(&line), Some(view));
        assert_eq!(ClusterView::decode("w=1,2,3"), None);
        assert_eq!(ClusterView::decode("r=crash"), None);
    }

    /// The cluster's totals are `others` plus this process's live counters: when the
    /// supervisor moves a replaced worker's last report into the retired sum, the totals a
    /// worker renders do not go backwards.
    #[test]
    fn totals_stay_monotone_across_a_replacement() {
        let old_worker = distinct_snapshot(1000);
        let mine = distinct_snapshot(10);
        let mut before = mine.clone();
        before.add(&old_worker);
        // The old worker is replaced: its last report moves to the retired sum; the new one
        // starts from zero and reports a little.
        let mut retired = Snapshot::default();
        retired.add(&old_worker);
        let mut others = retired.clone();
        others.add(&distinct_snapshot(0));
        let mut after = mine.clone();
        after.add(&others);
        let (b, a) = (before.encode_line(), after.encode_line());
        for (x, y) in b.iter().zip(&a) {
            assert!(y >= x, "a total went backwards: {b:?} -> {a:?}");
        }
        assert_eq!(after.handler_timeouts, u64::MAX, "sums saturate");
    }

    impl Snapshot {
        /// Every number in the snapshot, in encoding order.
        fn encode_line(&self) -> Vec<u64> {
            let mut line = String::new();
            self.encode_into(&mut line);
            line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect()
        }
    }
}
