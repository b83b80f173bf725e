//! Rate-limited warnings: what the operator must hear about (refusals the server answers
//! itself, connections cut to protect the server) without a flood filling the log.
//! Owns the per-kind clocks and the counts suppressed between lines. Never blocks, never
//! allocates unless a line is written.
//!
//! Each kind logs at most one line per [`INTERVAL`]; the next line says how many more there
//! were in between. Owned by the I/O loop (one thread), so no lock.

use std::time::{Duration, Instant};

use log::warn;

use crate::config::Config;
use crate::engine::connection::Cut;
use crate::http1::status::Rejection;

/// At most one line per kind this often.
pub(crate) const INTERVAL: Duration = Duration::from_secs(10);

/// One kind of warning: when it was last logged and how many were held back since.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// Counts one event; returns `Some(events held back since the last line)` when a line may
    /// be logged now.
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|t| now.saturating_duration_since(t) < INTERVAL) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The refusals that name a setting, in the order of [`LoopWarnings::refusals`].
const REFUSALS: usize = 6;

/// The I/O loop's rate-limited warnings.
#[derive(Debug, Default)]
pub(crate) struct LoopWarnings {
    refusals: [Throttle; REFUSALS],
    cuts: Throttle,
    cut_counts: [u64; Cut::ALL.len()],
    table_full: Throttle,
    slow_readers: Throttle,
}

/// ` (and 12 more like it in the last 10s)`, or nothing.
fn more(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" (and {suppressed} more like it in the last {}s)", INTERVAL.as_secs())
    }
}

impl LoopWarnings {
    /// The server answered `rejection` itself. Refusals that a setting decides (413, 414, 431,
    /// 408, 503) are warned about, naming the setting; `timeout_setting` names the deadline
    /// that passed for a 408. Malformed requests (400, 501, 505) are the client's fault and
    /// stay at debug level.
    pub(crate) fn refused(&mut self, config: &Config, rejection: Rejection, timeout_setting: &str, now: Instant) {
        let (index, what, settings): (usize, &str, &[&str]) = match rejection {
            Rejection::BodyTooLarge => (0, "request body too large", &["max_body_size"]),
            Rejection::RequestLineTooLong => (1, "request line too long", &["max_request_line"]),
            Rejection::HeadersTooLarge => {
                (2, "request head too large", &["max_header_line", "max_headers_size", "max_headers"])
            }
            Rejection::Timeout if timeout_setting == "body_timeout" => {
                (3, "request body not received in time", &["body_timeout", "min_transfer_rate"])
            }
            Rejection::Timeout => (4, "request head not received in time", &["header_timeout"]),
            Rejection::Overloaded => (5, "dispatch queue full", &["max_queued_requests", "threads"]),
            _ => return,
        };
        let Some(suppressed) = self.refusals[index].allow(now) else { return };
        let limits: Vec<String> = settings.iter().map(|name| setting_line(config, name)).collect();
        warn!(
            target: "maitred::reject",
            "answered {} ({what}) by the server: limit {}{}",
            rejection.status(),
            limits.join("; "),
            more(suppressed)
        );
    }

    /// Protection cut a connection to make room for a new client.
    pub(crate) fn evicted(&mut self, config: &Config, cut: Cut, now: Instant) {
        if let Some(i) = Cut::ALL.iter().position(|&c| c == cut) {
            self.cut_counts[i] += 1;
        }
        if self.cuts.allow(now).is_none() {
            return;
        }
        let counts = std::mem::take(&mut self.cut_counts);
        let parts: Vec<String> =
            Cut::ALL.iter().zip(counts).filter(|(_, n)| *n > 0).map(|(c, n)| format!("{n} {}", c.name())).collect();
        warn!(
            target: "maitred::protect",
            "connection table full ({}): closed the connections making the least progress to make room \
             for new clients: {} (least progress first: partial heads, silent new connections, idle \
             keep-alive, bodies and readers below min_transfer_rate); header and body deadlines are \
             {}× shorter while the table is nearly full",
            setting_line(config, "connection_limit"),
            parts.join(", "),
            crate::engine::connection::PRESSURE_DIVISOR,
        );
    }

    /// The table is full and every connection is making progress: new clients wait.
    pub(crate) fn table_full(&mut self, config: &Config, now: Instant) {
        if let Some(suppressed) = self.table_full.allow(now) {
            warn!(
                target: "maitred::protect",
                "connection table full and no connection can give way (all are at a worker or moving \
                 at min_transfer_rate): new clients wait in the backlog; limit {}{}",
                setting_line(config, "connection_limit"),
                more(suppressed)
            );
        }
    }

    /// A client that did not read its response in time was cut.
    pub(crate) fn slow_reader_cut(&mut self, config: &Config, now: Instant) {
        if let Some(suppressed) = self.slow_readers.allow(now) {
            warn!(
                target: "maitred::protect",
                "closed a connection whose client did not read its response in time: limits {}; {}{}",
                setting_line(config, "write_timeout"),
                setting_line(config, "min_transfer_rate"),
                more(suppressed)
            );
        }
    }
}

/// `name = value (raise it with --flag or MAITRED_NAME)`.
fn setting_line(config: &Config, name: &str) -> String {
    match Config::setting(name) {
        Some(s) => format!("{name} = {} (change it with {} or {})", s.show(config), s.flag(), s.env_var()),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_lets_one_line_through_per_interval_and_counts_the_rest() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(t.allow(t0), Some(0));
        for i in 1..=100 {
            assert_eq!(t.allow(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(t.allow(t0 + INTERVAL), Some(100), "the next line counts what was held back");
        assert_eq!(t.allow(t0 + INTERVAL), None);
    }
}
