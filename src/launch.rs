//! A complete `main` for a server binary: logging, settings from flags and environment,
//! binding, signals, the drain, and exit codes. The `maitred` binary and the examples use it.

use std::process::ExitCode;

use log::{info, warn};

use crate::cli::{self, Command};
use crate::handler::Handler;
use crate::server::Server;

fn init_logging() {
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env).format_timestamp_millis().try_init();
}

/// Runs `handler` as a server configured from the command line and `MAITRED_*` variables;
/// blocks until SIGTERM/SIGINT (Ctrl-C, Ctrl-Break) has drained it. Bad flags and bind
/// failures print one line to stderr and give a non-zero exit status (2 for usage, 1 for
/// start-up failures). `about` opens the help text.
pub fn launch<H: Handler>(about: &str, handler: H) -> ExitCode {
    let mut argv = std::env::args();
    let program = argv
        .next()
        .and_then(|p| std::path::Path::new(&p).file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "maitred".into());
    let config = match cli::parse(argv, |k| std::env::var(k).ok()) {
        Ok(Command::Run { config, args }) => {
            if let Some(extra) = args.first() {
                eprintln!("{program}: unexpected argument {extra:?} (see --help)");
                return ExitCode::from(2);
            }
            config
        }
        Ok(Command::Help) => {
            print!("{}", cli::help(&program, about));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("maitred {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{program}: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    let threads = config.threads;
    let server = match Server::bind(config, handler) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("{program}: {e}");
            return ExitCode::from(1);
        }
    };
    let handle = match server.start() {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("{program}: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = crate::signals::drain_on_signals(handle.stopper()) {
        warn!(target: "maitred::server", "{e}; stop the process with SIGKILL");
    }
    // Announced only once every thread runs, so whoever waits for this line finds a server
    // that is fully up.
    for addr in handle.local_addrs() {
        info!(target: "maitred::server", "listening on http://{addr}");
    }
    let how = if cfg!(windows) { "press Ctrl-C or Ctrl-Break" } else { "send SIGTERM or press Ctrl-C" };
    info!(target: "maitred::server", "{threads} worker threads; {how} to stop");
    if handle.wait() {
        info!(target: "maitred::server", "stopped");
    } else {
        warn!(target: "maitred::server", "stopped with a handler still running after graceful_timeout");
    }
    ExitCode::SUCCESS
}
