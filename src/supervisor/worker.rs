//! The worker-process side: serve the connections the supervisor hands over, say `ready`,
//! report about twice a second and at exit, drain when told to or when the supervisor is
//! gone (end of standard input).
//!
//! Owns the worker's end of the control channel. Never decides when a worker is replaced
//! (the supervisor does) and never binds a listener.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use log::{debug, info};

use super::channel::{self, Down};
use crate::config::Config;
use crate::engine::handoff::ToLoop;
use crate::engine::server::{Server, Stopper};
use crate::engine::Shared;
use crate::error::Error;
use crate::handler::Handler;
use crate::ops::metrics::ClusterView;

/// How often a worker sends its report.
const REPORT_EVERY: Duration = Duration::from_millis(500);

/// Writes one control line to standard output, whole (the stdout lock keeps access log
/// lines from this process out of it).
fn send(message: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(channel::up_line(message).as_bytes());
    let _ = out.flush();
}

fn send_report(shared: &Shared) {
    send(&format!("{} {}", channel::REPORT, shared.report().encode()));
}

/// This process's standard input, where the supervisor's messages arrive.
#[cfg(unix)]
fn control_input() -> std::io::Result<impl FnMut() -> Option<Down> + Send> {
    let mut input = super::handoff::unix::Input::stdin()?;
    Ok(move || input.next_message())
}

/// This process's standard input, where the supervisor's messages arrive.
#[cfg(windows)]
fn control_input() -> std::io::Result<impl FnMut() -> Option<Down> + Send> {
    let stdin = std::io::stdin();
    Ok(move || {
        let mut line = String::new();
        match stdin.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(Down::from(line.trim_end_matches(['\n', '\r']).to_string())),
        }
    })
}

/// Reads the supervisor's messages until the end of input, then drains the server: `drain`
/// starts the drain, `socket` is a connection handed over (taken into the engine), `cluster`
/// is what the metrics path knows of the other workers. After `drain` the messages are still
/// read until the end of input, because when no other worker is left the supervisor keeps
/// handing connections over for `drain_delay` (the health path says 503 meanwhile), and its
/// accept loop may hand one over that chose this worker just before it was told to drain.
/// The I/O loop stops only after the end of input (or `graceful_timeout`), so such a
/// connection is served with `Connection: close` rather than closed unread.
fn follow_supervisor(stopper: Stopper, shared: Arc<Shared>, mut next: impl FnMut() -> Option<Down>) {
    let mut drained = false;
    while let Some(message) = next() {
        let text = message.line.trim_end();
        let word = text.split_once(' ').map_or(text, |(word, _)| word);
        match word {
            channel::DRAIN => {
                drained = true;
                stopper.shutdown();
            }
            channel::SOCKET => super::handoff::receive::take_connection(&shared, message),
            channel::CLUSTER => match ClusterView::decode(text[word.len()..].trim_start()) {
                Some(view) => shared.metrics.set_cluster(view),
                None => debug!(target: "maitred::server", "ignoring a malformed cluster line"),
            },
            _ => debug!(target: "maitred::server", "ignoring control line {text:?}"),
        }
    }
    if !drained {
        info!(target: "maitred::server", "supervisor gone; draining");
    }
    // Behind every connection taken above in the loop's mailbox: the loop may stop once
    // drained, as nothing more can be handed over.
    shared.waker.send(ToLoop::ArrivalsEnded);
    stopper.shutdown();
}

/// Serves `handler` as one of a supervisor's workers: the engine on the connections it is
/// handed, with stop signals draining it too (a terminal's Ctrl-C reaches every process
/// of its group). Returns once drained; the report at exit is sent before.
pub(crate) fn serve_as_worker<H: Handler>(config: Config, handler: H) -> Result<(), Error> {
    let signals = crate::signals::SignalDrain::install();
    let input = control_input()?;
    let server = Server::for_worker_process(config, handler)?;
    let handle = server.start()?;
    if let Ok(signals) = &signals {
        signals.arm(handle.stopper());
    }
    let (stopper, shared) = (handle.stopper(), Arc::clone(handle.shared()));
    let follower = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("maitred-control".into())
        .spawn(move || follow_supervisor(stopper, follower, input))?;
    send(channel::READY);
    let done = Arc::new(AtomicBool::new(false));
    let reporter = {
        let (shared, done) = (Arc::clone(&shared), Arc::clone(&done));
        std::thread::Builder::new().name("maitred-report".into()).spawn(move || {
            while !done.load(Ordering::SeqCst) {
                std::thread::park_timeout(REPORT_EVERY);
                if !done.load(Ordering::SeqCst) {
                    send_report(&shared);
                }
            }
        })?
    };
    let finished = handle.wait();
    done.store(true, Ordering::SeqCst);
    reporter.thread().unpark();
    let _ = reporter.join();
    send_report(&shared);
    if !finished {
        log::warn!(target: "maitred::server", "stopped with a handler still running after graceful_timeout");
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use crossbeam_channel::unbounded;

    use super::*;
    use crate::engine::net::Stream;
    use crate::http1::response::Response;
    use crate::supervisor::handoff::Parcel;

    /// A worker process's engine with `graceful_timeout`, following a supervisor whose lines
    /// the test sends, already told to drain.
    struct DrainedWorker {
        lines: Option<crossbeam_channel::Sender<Down>>,
        stopped: crossbeam_channel::Receiver<bool>,
        follower: std::thread::JoinHandle<()>,
    }

    impl DrainedWorker {
        fn start(graceful_timeout: Duration) -> DrainedWorker {
            let config = Config { graceful_timeout, ..Config::default() };
            let handle =
                Server::for_worker_process(config, |_| Response::text(200, "served\n")).unwrap().start().unwrap();
            let (stopper, shared) = (handle.stopper(), Arc::clone(handle.shared()));
            let (lines, input) = unbounded::<Down>();
            let follower = std::thread::spawn(move || follow_supervisor(stopper, shared, move || input.recv().ok()));
            lines.send(Down::from(channel::DRAIN.to_string())).unwrap();
            let (done, stopped) = crossbeam_channel::bounded(1);
            std::thread::spawn(move || done.send(handle.wait()).unwrap());
            DrainedWorker { lines: Some(lines), stopped, follower }
        }

        fn send(&self, line: Down) {
            self.lines.as_ref().expect("input still open").send(line).unwrap();
        }

        /// Ends the supervisor's input.
        fn end_input(&mut self) {
            self.lines = None;
        }

        /// Whether the engine stopped (every handler finished) within 10 s.
        fn stops(&self) -> bool {
            self.stopped.recv_timeout(Duration::from_secs(10)) == Ok(true)
        }

        /// Ends the input and waits for the control thread.
        fn finish(mut self) {
            self.end_input();
            self.follower.join().unwrap();
        }
    }

    /// The supervisor's accept loop takes its list of workers before it hands a connection
    /// over, so a `socket` line can follow a worker's `drain` line. The worker's I/O loop used
    /// to stop as soon as it was drained and empty: the connection then closed with its
    /// request unread, and the client saw a reset (1 request of 45,230 in CI while
    /// `max_requests` recycled workers under load).
    #[test]
    fn a_connection_handed_over_after_drain_is_served_until_the_supervisors_input_ends() {
        let mut worker = DrainedWorker::start(Duration::from_secs(20));
        // Long enough for a drained, empty loop to have stopped, had it not waited.
        std::thread::sleep(Duration::from_millis(300));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        worker.send(Parcel::new(Stream::Tcp(accepted)).letter(0, 0).unwrap());
        client.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
        assert!(answer.contains("\r\nConnection: close\r\n") && answer.ends_with("\r\n\r\nserved\n"), "{answer:?}");

        // The end of input lets the drained loop stop.
        worker.end_input();
        assert!(worker.stops(), "stops once its input ended");
        worker.finish();
    }

    /// A supervisor that says `drain` but never closes the worker's input (wedged, or its
    /// accept loop stuck) does not keep the worker forever: the drained loop stops at
    /// `graceful_timeout`, as it would with connections still open.
    #[test]
    fn a_drained_worker_whose_input_never_ends_stops_at_graceful_timeout() {
        let worker = DrainedWorker::start(Duration::from_millis(300));
        assert!(worker.stops(), "stops with its input still open");
        worker.finish();
    }
}
