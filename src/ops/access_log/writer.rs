//! The one writer of access log lines: a bounded queue of whole lines, drained by the
//! `maitred-access-log` thread, which hands each line to `log` (target [`super::TARGET`]; the
//! logger of [`crate::launch()`] writes it to standard output, the WSGI front end to Python's
//! `logging`).
//! Owns the queue, the thread and the count of dropped lines. Never blocks the thread that logs.
//!
//! Workers and the I/O loop only format a line and offer it to the queue: a slow or blocked
//! standard output (a full pipe, a terminal paused with Ctrl-S) stalls the access log thread
//! alone, never a request. When the queue is full ([`QUEUED_LINES`] lines), the line is
//! dropped and counted (`maitred_access_log_dropped_lines_total` in the metrics), and the
//! thread that dropped it reports how many were dropped in the error log: at the first drop,
//! then at most every `REPORT_EVERY` (10 s), and once more when the server stops. Each line is written whole by the one
//! thread, so lines never interleave.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use super::{format_line, AccessLogFormat, AccessRecord, TARGET};
use crate::http1::parse::Head;

/// Lines the queue holds at most (about 2 MiB of typical lines).
pub(crate) const QUEUED_LINES: usize = 8192;

/// Dropped lines are reported in the error log at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// How long stopping waits for the thread to write what is queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What goes through the queue: a line, or the end.
enum Message {
    Line(String),
    Stop,
}

/// What had arrived of a request the server answers itself.
#[derive(Clone, Copy)]
pub(crate) enum Refused<'a> {
    /// A parsed head (a refused body, a full queue).
    Head(&'a Head),
    /// The raw bytes of an unfinished or unparseable head (possibly none).
    Raw(&'a [u8]),
}

/// The first value of header `name` in `head`.
fn header<'a>(head: &'a Head, name: &str) -> Option<&'a [u8]> {
    head.headers.first(name).map(|h| h.value())
}

/// Method, target and version of a complete first line of `bytes` (`A B C` then CRLF or
/// LF), decoded as Latin-1 where not UTF-8; `None` when there is no such line. The line is
/// only logged (and escaped there), never trusted.
fn request_line(bytes: &[u8]) -> Option<[String; 3]> {
    let end = bytes.iter().position(|&b| b == b'\n')?;
    let line = bytes[..end].strip_suffix(b"\r").unwrap_or(&bytes[..end]);
    let mut parts = line.split(|&b| b == b' ');
    let text = |part: &[u8]| match std::str::from_utf8(part) {
        Ok(text) => text.to_string(),
        Err(_) => part.iter().map(|&b| char::from(b)).collect(),
    };
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() {
        return None;
    }
    Some([text(method), text(target), text(version)])
}

/// The access log as the server's threads see it: the format and the queue's sending end.
pub(crate) struct AccessLog {
    format: AccessLogFormat,
    queue: Option<Sender<Message>>,
    dropped: Arc<AtomicU64>,
    /// Dropped lines already reported in the error log.
    reported: AtomicU64,
    /// When the access log started; `last_report_ms` counts from here.
    epoch: Instant,
    /// When drops were last reported, in milliseconds since `epoch` (0: never).
    last_report_ms: AtomicU64,
}

/// The running `maitred-access-log` thread; [`AccessLogThread::stop`] flushes and ends it.
pub(crate) struct AccessLogThread {
    thread: JoinHandle<()>,
    done: Receiver<()>,
}

impl AccessLog {
    /// The access log in `format`; with anything but [`AccessLogFormat::Off`], also its thread.
    /// Dropped lines are counted in `dropped` (a metrics counter).
    pub(crate) fn start(
        format: AccessLogFormat,
        dropped: Arc<AtomicU64>,
    ) -> std::io::Result<(AccessLog, Option<AccessLogThread>)> {
        if format == AccessLogFormat::Off {
            let log = AccessLog {
                format,
                queue: None,
                dropped,
                reported: AtomicU64::new(0),
                epoch: Instant::now(),
                last_report_ms: AtomicU64::new(0),
            };
            return Ok((log, None));
        }
        let (queue, lines) = bounded(QUEUED_LINES);
        let (done_tx, done) = bounded(1);
        let thread = thread::Builder::new().name("maitred-access-log".into()).spawn(move || {
            drain(&lines);
            let _ = done_tx.send(());
        })?;
        let log = AccessLog {
            format,
            queue: Some(queue),
            dropped,
            reported: AtomicU64::new(0),
            epoch: Instant::now(),
            last_report_ms: AtomicU64::new(0),
        };
        Ok((log, Some(AccessLogThread { thread, done })))
    }

    /// Whether lines are written at all.
    pub(crate) fn is_on(&self) -> bool {
        self.queue.is_some()
    }

    /// Formats `record` and queues the line; never waits. A full queue drops the line and
    /// counts it.
    pub(crate) fn write(&self, record: &AccessRecord<'_>) {
        let Some(queue) = &self.queue else { return };
        let mut line = String::with_capacity(256);
        format_line(self.format, record, &mut line);
        match queue.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Relaxed);
                self.report_drops(false);
            }
        }
    }

    /// Reports lines dropped since the last report in the error log: at once for the first
    /// drop, then at most every `REPORT_EVERY`, or whenever `force` is set. Whichever thread
    /// dropped a line reports (the access log thread may be the one that is stuck).
    fn report_drops(&self, force: bool) {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX).max(1);
        let last = self.last_report_ms.load(Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= REPORT_EVERY.as_millis() as u64;
        if !(force || due) || self.last_report_ms.compare_exchange(last, now_ms, Relaxed, Relaxed).is_err() {
            return;
        }
        let total = self.dropped.load(Relaxed);
        let new = total.saturating_sub(self.reported.swap(total, Relaxed));
        if new > 0 {
            log::warn!(
                target: "maitred::access_log",
                "{new} access log lines dropped: standard output is slower than the requests \
                 ({total} in total, metric maitred_access_log_dropped_lines_total; reported at most every {}s)",
                REPORT_EVERY.as_secs()
            );
        }
    }

    /// Logs a request the server answered itself with an error of `body_len` body bytes (see
    /// the module docs of [`super`] for how such lines are marked). `request` is what had
    /// arrived of it; `duration` runs from its first byte to the answer.
    pub(crate) fn write_refusal(
        &self,
        client: IpAddr,
        status: u16,
        body_len: u64,
        request: Refused<'_>,
        duration: Duration,
    ) {
        if !self.is_on() {
            return;
        }
        let raw_line;
        let (method, target, version, referer, user_agent) = match request {
            Refused::Head(head) => (
                head.method(),
                head.target(),
                head.version.as_str(),
                header(head, "referer"),
                header(head, "user-agent"),
            ),
            Refused::Raw(bytes) => {
                raw_line = request_line(bytes);
                match &raw_line {
                    Some([method, target, version]) => (method.as_str(), target.as_str(), version.as_str(), None, None),
                    None => ("", "", "", None, None),
                }
            }
        };
        self.write(&AccessRecord {
            client,
            time: SystemTime::now() - duration,
            method,
            target,
            version,
            status,
            bytes: Some(body_len),
            referer,
            user_agent,
            duration,
            by_server: true,
        });
    }

    /// Lines dropped so far because the queue was full.
    #[cfg(test)]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

impl AccessLogThread {
    /// Lets the thread write every line queued so far, then ends it. Waits at most
    /// `FLUSH_TIMEOUT` (5 s) for a blocked output; after that the thread is left behind and
    /// what it still holds is lost.
    pub(crate) fn stop(self, log: &AccessLog) {
        log.report_drops(true);
        if let Some(queue) = &log.queue {
            if queue.send_timeout(Message::Stop, FLUSH_TIMEOUT).is_err() {
                log::warn!(target: "maitred::access_log", "the access log output is blocked; queued lines are lost");
                return;
            }
        }
        if self.done.recv_timeout(FLUSH_TIMEOUT).is_ok() {
            let _ = self.thread.join();
        } else {
            log::warn!(target: "maitred::access_log", "the access log output is blocked; queued lines are lost");
        }
    }
}

/// The thread's loop: write each line until told to stop or every sender is gone.
fn drain(lines: &Receiver<Message>) {
    while let Ok(Message::Line(line)) = lines.recv() {
        log::info!(target: TARGET, "{line}");
    }
    log::logger().flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn record() -> AccessRecord<'static> {
        AccessRecord {
            client: "192.0.2.7".parse().unwrap(),
            time: SystemTime::now(),
            method: "GET",
            target: "/",
            version: "HTTP/1.1",
            status: 200,
            bytes: None,
            referer: None,
            user_agent: None,
            duration: Duration::ZERO,
            by_server: false,
        }
    }

    #[test]
    fn request_lines_of_raw_heads() {
        let line = |raw: &[u8]| request_line(raw).map(|[m, t, v]| format!("{m}|{t}|{v}"));
        assert_eq!(line(b"GET /x HTTP/1.1\r\nHost: a\r\n"), Some("GET|/x|HTTP/1.1".into()));
        assert_eq!(line(b"GET /\xe9 HTTP/1.0\n"), Some("GET|/\u{e9}|HTTP/1.0".into()));
        for raw in [&b""[..], b"GET /x HTTP/1.1", b"GET /x\r\n", b"GET  /x HTTP/1.1\r\n", b"\r\n", b" / HTTP/1.1\r\n"] {
            assert_eq!(line(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn off_starts_no_thread_and_writes_nothing() {
        let (log, thread) = AccessLog::start(AccessLogFormat::Off, Arc::default()).unwrap();
        assert!(thread.is_none() && !log.is_on());
        log.write(&record());
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        // A queue nobody drains: the writer must neither block nor lose count.
        let (queue, _lines) = bounded(2);
        let (mut log, _) = AccessLog::start(AccessLogFormat::Off, Arc::default()).unwrap();
        log.format = AccessLogFormat::Common;
        log.queue = Some(queue);
        let started = Instant::now();
        for _ in 0..10 {
            log.write(&record());
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(log.dropped(), 8);
    }
}
