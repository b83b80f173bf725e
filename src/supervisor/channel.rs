//! The control channel between the supervisor and a worker process: one line of text per
//! message. Down (supervisor to worker): the worker's standard input (on Unix one end of a Unix
//! socket pair, so that a `socket` line can carry the connection it hands over). Up (worker to
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
/// Worker to supervisor: `report <Report>` ([`crate::ops::report::Report`]), about twice a
/// second and once at exit.
pub(crate) const REPORT: &str = "report";
/// Supervisor to worker: `cluster <ClusterView>`, what the other workers reported (for the
/// metrics path), about twice a second.
pub(crate) const CLUSTER: &str = "cluster";
/// Supervisor to worker: stop accepting and drain (health 503, `drain_delay`,
/// `graceful_timeout`), then exit. End of input means the same: the supervisor is gone.
pub(crate) const DRAIN: &str = "drain";

/// Supervisor to worker: `socket <listener-index> ...`, a connection the supervisor accepted
/// and hands over ([`super::handoff`]).
pub(crate) const SOCKET: &str = "socket";

/// One message down to a worker: a control line (without its newline) and, for a `socket`
/// line on Unix, the connection it hands over, travelling beside it as a descriptor.
#[derive(Debug)]
pub(crate) struct Down {
    pub(crate) line: String,
    #[cfg(unix)]
    pub(crate) connection: Option<std::os::fd::OwnedFd>,
}

impl From<String> for Down {
    fn from(line: String) -> Down {
        Down {
            line,
            #[cfg(unix)]
            connection: None,
        }
    }
}

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
}
