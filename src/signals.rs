//! Process signals into a graceful drain: SIGTERM, SIGINT and SIGHUP on Unix; Ctrl-C,
//! Ctrl-Break and the console close event on Windows. A second signal exits at once.
//! Owns the signal handlers. Never stops the process without the drain unless signalled twice.

use std::sync::atomic::{AtomicUsize, Ordering};

use log::{info, warn};

use crate::engine::server::Stopper;
use crate::error::Error;

/// Installs the process-wide handler; it can be installed once per process.
///
/// # Errors
///
/// [`Error::Signals`] when the handler cannot be installed (one is installed already).
pub fn drain_on_signals(stopper: Stopper) -> Result<(), Error> {
    let received = AtomicUsize::new(0);
    ctrlc::set_handler(move || {
        if received.fetch_add(1, Ordering::SeqCst) == 0 {
            info!(target: "maitred::server", "stop signal received; draining (signal again to stop at once)");
            stopper.shutdown();
        } else {
            warn!(target: "maitred::server", "second stop signal; exiting at once");
            std::process::exit(1);
        }
    })
    .map_err(|e| Error::Signals(Box::new(e)))
}
