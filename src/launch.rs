//! A complete `main` for a server binary: settings from flags, environment and file, logging,
//! binding, signals, the drain, and exit codes. The `maitred` binary and the examples use it.
//! Owns the process-level glue: logging set-up and exit codes. Never handles a request.

use std::process::ExitCode;
use std::time::Duration;

use log::{info, warn};

use crate::cli::{self, Command};
use crate::config::Config;
use crate::engine::server::Server;
use crate::handler::Handler;

/// Error log records go to `env_logger` (stderr, `RUST_LOG` or `log_level`); access log
/// records go to standard output as they are, one line each, whatever the log level.
struct Logger {
    errors: env_logger::Logger,
    access: bool,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        if metadata.target() == crate::ops::access_log::TARGET {
            return self.access;
        }
        self.errors.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.target() == crate::ops::access_log::TARGET {
            if self.access {
                use std::io::Write;
                let _ = writeln!(std::io::stdout().lock(), "{}", record.args());
            }
            return;
        }
        self.errors.log(record);
    }

    fn flush(&self) {
        use std::io::Write;
        self.errors.flush();
        let _ = std::io::stdout().flush();
    }
}

fn init_logging(level: &str, access: bool) {
    let env = env_logger::Env::default().default_filter_or(level);
    let errors = env_logger::Builder::from_env(env).format_timestamp_millis().build();
    let max = errors.filter().max(if access { log::LevelFilter::Info } else { log::LevelFilter::Off });
    if log::set_boxed_logger(Box::new(Logger { errors, access })).is_ok() {
        log::set_max_level(max);
    }
}

fn program_name() -> String {
    std::env::args()
        .next()
        .and_then(|p| std::path::Path::new(&p).file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "maitred".into())
}

/// Runs `handler` as a server configured from the command line, `MAITRED_*` variables and an
/// optional `--config` file; blocks until SIGTERM/SIGINT (Ctrl-C, Ctrl-Break) has drained it.
/// Positional arguments are refused. See [`launch_with`] for exit codes.
pub fn launch<H: Handler>(about: &str, handler: H) -> ExitCode {
    launch_with(about, "", move |_config, args| match args.first() {
        Some(extra) => Err(format!("unexpected argument {extra:?} (see --help)")),
        None => Ok(handler),
    })
}

/// Like [`launch`], but the handler is built by `build` from the configuration and the
/// positional arguments (`usage_args` describes them in `--help`, e.g. `" [DIR]"`). `build`
/// may adjust the configuration before the server binds.
///
/// Exit codes: 0 after a drain (or for `--help`, `--check-config`, `--print-config`, and a
/// healthy `--healthcheck`); 1 when the server cannot start or the health check fails; 2 for
/// a usage error. Errors are one line on stderr.
pub fn launch_with<H, F>(about: &str, usage_args: &str, build: F) -> ExitCode
where
    H: Handler,
    F: FnOnce(&mut Config, &[String]) -> Result<H, String>,
{
    let program = program_name();
    let fail = |code: u8, message: &str| {
        eprintln!("{program}: {message}");
        ExitCode::from(code)
    };
    let (mut config, args, action) = match cli::parse(std::env::args().skip(1), |k| std::env::var(k).ok()) {
        Ok(Command::Run { config, args }) => (config, args, "run"),
        Ok(Command::CheckConfig { config, args }) => (config, args, "check"),
        Ok(Command::PrintConfig { config, args }) => (config, args, "print"),
        Ok(Command::Healthcheck { url }) => {
            return match crate::ops::healthcheck::probe(&url, Duration::from_secs(5)) {
                Ok(status) if (200..300).contains(&status) => ExitCode::SUCCESS,
                Ok(status) => fail(1, &format!("{url} answered {status}")),
                Err(e) => fail(1, &e),
            };
        }
        Ok(Command::Help) => {
            print!("{}", cli::help(&program, about, usage_args, None, &cli::accept_all));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("maitred {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(2, &e),
    };
    let handler = match build(&mut config, &args) {
        Ok(handler) => handler,
        Err(e) => return fail(2, &e),
    };
    if let Err(e) = config.validate() {
        return fail(2, &e.to_string());
    }
    // A missing, unreadable or mismatched certificate or key is a usage error, as a bad flag.
    if let Err(e) = crate::tls::check(&config) {
        return fail(2, &e);
    }
    match action {
        "check" => {
            println!("{program}: configuration ok");
            return ExitCode::SUCCESS;
        }
        "print" => {
            print!("{}", cli::print_config(&config));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    serve_configured(&program, config, handler)
}

/// Starts `handler` with `config` (already validated and final) and blocks until it has
/// drained, as [`serve_until_signal`]; a start-up failure is one line on stderr prefixed with
/// `program` and exit status 1, a drain exit status 0. `launch_with` ends here.
///
/// With more than one worker (`workers`), this process becomes their supervisor: it binds
/// the listeners, drops `handler` unused, and runs this program again (same arguments) as
/// each worker; SIGHUP re-reads the settings from this process's arguments, environment and
/// `--config` file. A worker that cannot start makes the supervisor exit with the worker's
/// status after the worker's own one-line reason.
pub fn serve_configured<H: Handler>(program: &str, config: Config, handler: H) -> ExitCode {
    init_logging(&config.log_level, config.access_log != crate::ops::access_log::AccessLogFormat::Off);
    if config.worker_count() > 1 && !crate::supervisor::is_worker() {
        drop(handler);
        let supervised = crate::supervisor::Program::current()
            .map_err(crate::Error::from)
            .and_then(|me| crate::supervisor::supervise(config, me, Box::new(reread_settings)));
        return match supervised {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("{program}: {e}");
                ExitCode::from(1)
            }
        };
    }
    match serve_until_signal(config, handler) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::from(1)
        }
    }
}

/// The settings again, from this process's arguments, `MAITRED_*` variables and `--config`
/// file, as `launch` read them (a supervisor's SIGHUP).
fn reread_settings() -> Result<Config, String> {
    match cli::parse(std::env::args().skip(1), |k| std::env::var(k).ok())? {
        Command::Run { config, .. } => config.validate().map(|()| config).map_err(|e| e.to_string()),
        _ => Err("the command line no longer asks to run a server".into()),
    }
}

/// Installs the drain on SIGTERM/SIGINT (Ctrl-C, Ctrl-Break, console close), binds and
/// starts `handler` with `config`, logs where it listens, and blocks until the drain is done.
/// The handler is in place before the listeners exist, so a signal that comes while the server
/// starts drains it once it runs instead of killing the process. Logging is whatever `log`
/// logger the caller installed (the WSGI front end forwards records to Python's `logging`).
///
/// Always one process: `workers` is for [`serve_configured`] (and so [`launch`]). In a
/// process a supervisor started as its worker, it serves the connections the supervisor hands
/// it over its control channel instead of binding.
pub fn serve_until_signal<H: Handler>(config: Config, handler: H) -> Result<(), crate::Error> {
    if crate::supervisor::is_worker() {
        return crate::supervisor::worker::serve_as_worker(config, handler);
    }
    let threads = config.threads;
    let signals = crate::signals::SignalDrain::install();
    if let Err(e) = &signals {
        warn!(target: "maitred::server", "{e}; stop the process with SIGKILL");
    }
    let handle = Server::bind(config, handler)?.start()?;
    if let Ok(signals) = &signals {
        signals.arm(handle.stopper());
    }
    // Announced only once every thread runs, so whoever waits for this line finds a server
    // that is fully up.
    for addr in handle.local_addrs() {
        info!(target: "maitred::server", "listening on {}", addr.url());
    }
    let how = if cfg!(windows) { "press Ctrl-C or Ctrl-Break" } else { "send SIGTERM or press Ctrl-C" };
    info!(target: "maitred::server", "{threads} worker threads; {how} to stop");
    if handle.wait() {
        info!(target: "maitred::server", "stopped");
    } else {
        warn!(target: "maitred::server", "stopped with a handler still running after graceful_timeout");
    }
    Ok(())
}
