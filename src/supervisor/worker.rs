//! The worker-process side: serve on the listeners the supervisor passed down, say `ready`,
//! report about twice a second and at exit, drain when told to or when the supervisor is
//! gone (end of standard input).
//!
//! Owns the worker's end of the control channel. Never decides when a worker is replaced
//! (the supervisor does) and never binds a listener.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use log::{debug, info};

use super::channel;
use crate::config::Config;
use crate::engine::net::Listener;
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

/// The listeners this worker was given.
fn listeners() -> Result<Vec<Listener>, Error> {
    #[cfg(unix)]
    {
        let fds = std::env::var(super::LISTEN_FDS_VAR).unwrap_or_default();
        super::inherit::adopt(&fds).map_err(Error::Worker)
    }
    // Windows: none; the supervisor accepts and hands each connection over (`socket` lines).
    #[cfg(windows)]
    {
        Ok(Vec::new())
    }
}

/// Reads the supervisor's lines until `drain` or the end of input, then drains the server;
/// a `cluster` line becomes what the metrics path knows of the other workers.
///
/// Windows: a `socket` line is a connection the supervisor hands over; it is taken into the
/// engine. After `drain` the lines are still read until the end of input, because the
/// supervisor keeps handing connections over for `drain_delay` (the health path says 503),
/// as a worker's own acceptor keeps accepting on Unix.
fn follow_supervisor(stopper: Stopper, shared: Arc<Shared>) {
    let stdin = std::io::stdin();
    let mut line = String::new();
    let mut lock = stdin.lock();
    let mut drained = false;
    loop {
        line.clear();
        match lock.read_line(&mut line) {
            Ok(0) | Err(_) => {
                if !drained {
                    info!(target: "maitred::server", "supervisor gone; draining");
                }
                break;
            }
            Ok(_) => {}
        }
        let text = line.trim_end();
        let word = text.split_once(' ').map_or(text, |(word, _)| word);
        match word {
            channel::DRAIN if cfg!(windows) => {
                drained = true;
                stopper.shutdown();
            }
            channel::DRAIN => break,
            #[cfg(windows)]
            super::windows::handoff::COMMAND => {
                super::windows::receive::take_connection(&shared, text[word.len()..].trim_start());
            }
            channel::CLUSTER => match ClusterView::decode(text[word.len()..].trim_start()) {
                Some(view) => {
                    let me = u64::from(std::process::id());
                    let fewest = view.workers.iter().filter(|w| w.pid != me).map(|w| w.open_connections).min();
                    shared.fewest_peer_connections.store(fewest.unwrap_or(u64::MAX), Ordering::Relaxed);
                    shared.metrics.set_cluster(view);
                }
                None => debug!(target: "maitred::server", "ignoring a malformed cluster line"),
            },
            _ => debug!(target: "maitred::server", "ignoring control line {text:?}"),
        }
    }
    stopper.shutdown();
}

/// Serves `handler` as one of a supervisor's workers: the engine on the inherited
/// listeners, with stop signals draining it too (a terminal's Ctrl-C reaches every process
/// of its group). Returns once drained; the report at exit is sent before.
pub(crate) fn serve_as_worker<H: Handler>(config: Config, handler: H) -> Result<(), Error> {
    let signals = crate::signals::SignalDrain::install();
    let server = Server::with_shared_listeners(config, handler, listeners()?)?;
    let handle = server.start()?;
    if let Ok(signals) = &signals {
        signals.arm(handle.stopper());
    }
    let (stopper, shared) = (handle.stopper(), Arc::clone(handle.shared()));
    let follower = Arc::clone(&shared);
    std::thread::Builder::new().name("maitred-control".into()).spawn(move || follow_supervisor(stopper, follower))?;
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
