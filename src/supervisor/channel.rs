//! The control channel between the supervisor and a worker process: one line of text per
//! message. Down (supervisor to worker): the worker's standard input. Up (worker to
//! supervisor): the worker's standard output, which also carries the worker's access log; a
//! control line starts with [`MARK`], any other line is output the supervisor relays to its
//! own standard output whole, so lines from several workers never interleave mid-line.
//!
//! Owns the message names and their text form. Never does I/O (the two sides do).

/// What starts a control line on a worker's standard output: a byte no log line carries
/// (the ASCII unit separator) and a word no application prints by chance.
pub(crate) const MARK: &str = "\u{1f}maitred-control ";

/// Worker to supervisor: the worker accepts connections.
pub(crate) const READY: &str = "ready";
/// Worker to supervisor: `report <fields>`, about twice a second and once at exit.
pub(crate) const REPORT: &str = "report";
/// Supervisor to worker: stop accepting and drain (health 503, `drain_delay`,
/// `graceful_timeout`), then exit. End of input means the same: the supervisor is gone.
pub(crate) const DRAIN: &str = "drain";

/// A message from a worker, or a line of its output to relay.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Up<'a> {
    /// The worker accepts connections.
    Ready,
    /// A report's payload (after `report `).
    Report(&'a str),
    /// A control line this supervisor does not know (from a newer or older worker).
    Unknown(&'a str),
}

/// The text of control line `message` (its payload, if any, after one space).
pub(crate) fn up_line(message: &str) -> String {
    format!("{MARK}{message}\n")
}

/// Splits one line of a worker's output (without its newline) into what to relay and the
/// control message it carries. A control line normally stands alone; one that follows output
/// the application left without a newline still counts, and that output is relayed.
pub(crate) fn parse_up(line: &str) -> (Option<&str>, Option<Up<'_>>) {
    let Some(at) = line.find(MARK) else { return (Some(line), None) };
    let before = (at > 0).then(|| &line[..at]);
    let body = &line[at + MARK.len()..];
    let (word, rest) = body.split_once(' ').unwrap_or((body, ""));
    let message = match word {
        READY => Up::Ready,
        REPORT => Up::Report(rest),
        _ => Up::Unknown(body),
    };
    (before, Some(message))
}

/// What a worker process reports about itself: the minimal set the supervisor acts on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WorkerReport {
    /// Requests answered by the application (for `max_requests`).
    pub(crate) requests_handled: u64,
    /// Connections open now.
    pub(crate) open_connections: u64,
    /// Resident memory in bytes, 0 when unknown (for `max_worker_memory`).
    pub(crate) resident_bytes: u64,
}

impl WorkerReport {
    /// `key=value` pairs separated by spaces, one line.
    pub(crate) fn encode(&self) -> String {
        format!("handled={} open={} resident={}", self.requests_handled, self.open_connections, self.resident_bytes)
    }

    /// Reads [`WorkerReport::encode`]'s form; unknown keys are skipped (a newer worker may
    /// send more), a malformed value makes the whole report `None`.
    pub(crate) fn decode(text: &str) -> Option<WorkerReport> {
        let mut report = WorkerReport::default();
        for pair in text.split_whitespace() {
            let (key, value) = pair.split_once('=')?;
            let field = match key {
                "handled" => &mut report.requests_handled,
                "open" => &mut report.open_connections,
                "resident" => &mut report.resident_bytes,
                _ => continue,
            };
            *field = value.parse().ok()?;
        }
        Some(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_lines_are_told_from_output_and_output_before_them_is_kept() {
        assert_eq!(parse_up("GET / 200"), (Some("GET / 200"), None));
        let ready = up_line(READY);
        assert_eq!(parse_up(ready.trim_end()), (None, Some(Up::Ready)));
        let glued = format!("partial{}", up_line("report handled=1").trim_end());
        assert_eq!(parse_up(&glued), (Some("partial"), Some(Up::Report("handled=1"))));
        assert_eq!(parse_up(&format!("{MARK}hello there")), (None, Some(Up::Unknown("hello there"))));
    }

    #[test]
    fn reports_round_trip_and_malformed_ones_are_refused() {
        let report = WorkerReport { requests_handled: 12, open_connections: 3, resident_bytes: 40 << 20 };
        assert_eq!(WorkerReport::decode(&report.encode()), Some(report));
        assert_eq!(
            WorkerReport::decode("handled=5 future=x"),
            Some(WorkerReport { requests_handled: 5, ..Default::default() })
        );
        assert_eq!(WorkerReport::decode("handled=five"), None);
        assert_eq!(WorkerReport::decode("handled"), None);
    }
}
