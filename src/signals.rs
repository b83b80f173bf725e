//! Process signals into a graceful drain: SIGTERM and SIGINT on Unix; Ctrl-C, Ctrl-Break and
//! the console close event on Windows. A second signal exits at once. SIGHUP reloads the TLS
//! certificates of a server in this process ([`crate::reload_certificates`]).
//! Owns the signal handlers. Never stops the process without the drain unless signalled twice.

use std::sync::{Arc, Mutex, PoisonError};

use log::{info, warn};

use crate::engine::server::Stopper;
use crate::error::Error;

/// What the handler does with a stop signal, as the server comes up.
enum Target {
    /// No server yet, no signal yet.
    Waiting,
    /// A signal came before the server started: it drains as soon as it is armed.
    Signalled,
    /// The running server's stopper, and how many signals arrived.
    Armed(Stopper, usize),
}

/// The process-wide stop-signal handler, installed before the server binds (so no signal
/// between binding and starting can kill the process) and armed once it runs.
pub(crate) struct SignalDrain {
    target: Arc<Mutex<Target>>,
}

impl SignalDrain {
    /// Installs the handler. Until [`SignalDrain::arm`], a signal is remembered; a second one
    /// exits at once.
    pub(crate) fn install() -> Result<SignalDrain, Error> {
        let target = Arc::new(Mutex::new(Target::Waiting));
        let shared = Arc::clone(&target);
        // Unix: through signal-hook, to tell SIGHUP (reload the TLS certificates) from the stop
        // signals; ctrlc's `termination` would drain on SIGHUP too.
        #[cfg(unix)]
        {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            static INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            if INSTALLED.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Err(Error::Signals("a signal handler is installed already (one per process)".into()));
            }
            let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
                .map_err(|e| Error::Signals(Box::new(e)))?;
            std::thread::Builder::new().name("maitred-signals".into()).spawn(move || {
                for signal in signals.forever() {
                    match signal {
                        SIGHUP => crate::tls::reload_certificates(),
                        _ => on_stop_signal(&shared),
                    }
                }
            })?;
        }
        #[cfg(not(unix))]
        ctrlc::set_handler(move || on_stop_signal(&shared)).map_err(|e| Error::Signals(Box::new(e)))?;
        Ok(SignalDrain { target })
    }

    /// Points the handler at the running server; drains it at once if a signal came first.
    pub(crate) fn arm(&self, stopper: Stopper) {
        let mut target = self.target.lock().unwrap_or_else(PoisonError::into_inner);
        let signalled = matches!(*target, Target::Signalled);
        if signalled {
            stopper.shutdown();
        }
        *target = Target::Armed(stopper, usize::from(signalled));
    }
}

/// A stop signal: drain the server (or remember it until the server is armed); the second
/// one exits at once.
fn on_stop_signal(shared: &Mutex<Target>) {
    let mut target = shared.lock().unwrap_or_else(PoisonError::into_inner);
    match &mut *target {
        Target::Waiting => {
            info!(target: "maitred::server", "stop signal received while starting; draining once started");
            *target = Target::Signalled;
        }
        Target::Armed(stopper, received) if *received == 0 => {
            *received = 1;
            info!(target: "maitred::server", "stop signal received; draining (signal again to stop at once)");
            stopper.shutdown();
        }
        Target::Signalled | Target::Armed(..) => {
            warn!(target: "maitred::server", "second stop signal; exiting at once");
            std::process::exit(1);
        }
    }
}

/// Installs the process-wide handler; it can be installed once per process.
///
/// # Errors
///
/// [`Error::Signals`] when the handler cannot be installed (one is installed already).
pub fn drain_on_signals(stopper: Stopper) -> Result<(), Error> {
    SignalDrain::install()?.arm(stopper);
    Ok(())
}
