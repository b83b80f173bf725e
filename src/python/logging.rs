//! The bridge from the `log` crate to Python's `logging`, installed by `run` and `serve`.
//!
//! A record with target `maitred::server` goes to `logging.getLogger("maitred.server")` (`::`
//! becomes `.`, so every logger of the server sits under `"maitred"`), at the matching level:
//! error 40, warn 30, info 20, debug 10, trace 5. Access log lines (target `maitred::access`)
//! go to `logging.getLogger("maitred.access")` at INFO, when `access_log` is on. `wsgi.errors`
//! lines and application tracebacks are target `maitred::wsgi`, so logger `maitred.wsgi`.
//! Where records end up (stderr, a file, nowhere) is Python's configuration.
//!
//! Filtering happens in two steps. The `log_level` setting (or `RUST_LOG` when it is a bare
//! level name) bounds what the server produces at all, checked without the GIL. A record that
//! passes needs the GIL, because the Python logger decides (`isEnabledFor`); a "no" is
//! remembered for a second per logger and level, so a disabled logger costs no GIL
//! acquisition on the hot path (an access line per request). A level changed in Python takes
//! effect within that second.
//!
//! The GIL: a record logged on a worker, which has its own interpreter thread state, costs
//! one GIL acquisition. Records from the I/O loop, the acceptor or the signal thread are
//! rare (start-up, shutdown, errors): those threads wait for the GIL briefly, which cannot
//! deadlock, because no thread holding the GIL ever waits for them (workers hold it only
//! while running Python code, never while handing output to the I/O loop).
//!
//! Never formats access lines (that is `ops::access_log`) and never holds the GIL while waiting.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::intern;
use pyo3::prelude::*;

use crate::config::Config;
use crate::ops::access_log::AccessLogFormat;

/// How long a logger's "not enabled" answer is believed.
const REMEMBER_DISABLED: Duration = Duration::from_secs(1);

struct Bridge {
    /// The server's own level (a `LevelFilter` as a number).
    level: AtomicU8,
    /// Whether access lines are forwarded.
    access: AtomicBool,
    /// Python loggers by name, and disabled (name, level) pairs with when they were seen.
    cache: Mutex<Cache>,
}

struct Cache {
    loggers: Vec<(String, Py<PyAny>)>,
    disabled: Vec<(String, i32, Instant)>,
}

static BRIDGE: Bridge = Bridge {
    level: AtomicU8::new(0),
    access: AtomicBool::new(false),
    cache: Mutex::new(Cache { loggers: Vec::new(), disabled: Vec::new() }),
};

/// Whether the bridge is the process's `log` logger.
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn filter_to_u8(filter: LevelFilter) -> u8 {
    filter as usize as u8
}

fn u8_to_filter(n: u8) -> LevelFilter {
    LevelFilter::iter().nth(n as usize).unwrap_or(LevelFilter::Trace)
}

fn python_level(level: Level) -> i32 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug => 10,
        Level::Trace => 5,
    }
}

/// Makes Python's `logging` the destination of the server's log records (see the module
/// documentation), at the level `config.log_level` sets (`RUST_LOG` wins when it is a bare
/// level such as `debug`), with access lines when `config.access_log` is on. The bridge is
/// installed once per process, unless another `log` logger already is; a later call only
/// changes the levels.
pub fn install_logging(config: &Config) {
    let level = effective_level(config);
    let access = config.access_log != AccessLogFormat::Off;
    BRIDGE.level.store(filter_to_u8(level), Ordering::Relaxed);
    BRIDGE.access.store(access, Ordering::Relaxed);
    if log::set_logger(&BRIDGE).is_ok() {
        INSTALLED.store(true, Ordering::Relaxed);
    }
    if INSTALLED.load(Ordering::Relaxed) {
        log::set_max_level(level.max(if access { LevelFilter::Info } else { LevelFilter::Off }));
    }
}

/// The level the server logs at: `RUST_LOG` when it is a bare level such as `debug`, else
/// `config.log_level`.
pub(crate) fn effective_level(config: &Config) -> LevelFilter {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.trim().parse::<LevelFilter>().ok())
        .or_else(|| config.log_level.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Info)
}

/// The Python `logging` level matching `filter` (`off` is above `CRITICAL`).
pub(crate) fn python_level_of(filter: LevelFilter) -> i32 {
    filter.to_level().map_or(100, python_level)
}

impl Bridge {
    /// The Python logger name and level for `record`, or `None` when the server's own level
    /// filters it out.
    fn route(&self, target: &str, level: Level) -> Option<(String, i32)> {
        if target == crate::ops::access_log::TARGET {
            return self.access.load(Ordering::Relaxed).then(|| ("maitred.access".to_string(), 20));
        }
        if level > u8_to_filter(self.level.load(Ordering::Relaxed)) {
            return None;
        }
        Some((target.replace("::", "."), python_level(level)))
    }

    fn known_disabled(&self, name: &str, level: i32) -> bool {
        let Ok(cache) = self.cache.lock() else { return false };
        cache.disabled.iter().any(|(n, l, at)| *l == level && n == name && at.elapsed() < REMEMBER_DISABLED)
    }

    fn remember_disabled(&self, name: &str, level: i32) {
        let Ok(mut cache) = self.cache.lock() else { return };
        let now = Instant::now();
        match cache.disabled.iter_mut().find(|(n, l, _)| *l == level && n == name) {
            Some(entry) => entry.2 = now,
            None => cache.disabled.push((name.to_string(), level, now)),
        }
    }

    /// The Python logger `name` (loggers live as long as the interpreter, so they are kept).
    /// The cache lock is never held while Python code runs.
    fn logger<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|cache| cache.loggers.iter().find(|(n, _)| n == name).map(|(_, l)| l.clone_ref(py)));
        if let Some(logger) = cached {
            return Ok(logger.into_bound(py));
        }
        let logger = py.import(intern!(py, "logging"))?.call_method1(intern!(py, "getLogger"), (name,))?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.loggers.push((name.to_string(), logger.clone().unbind()));
        }
        Ok(logger)
    }

    fn emit(&self, py: Python<'_>, name: &str, level: i32, message: &str) -> PyResult<()> {
        let logger = self.logger(py, name)?;
        if !logger.call_method1(intern!(py, "isEnabledFor"), (level,))?.is_truthy()? {
            self.remember_disabled(name, level);
            return Ok(());
        }
        logger.call_method1(intern!(py, "log"), (level, message))?;
        Ok(())
    }
}

impl Log for Bridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.route(metadata.target(), metadata.level()).is_some_and(|(name, level)| !self.known_disabled(&name, level))
    }

    fn log(&self, record: &Record<'_>) {
        let Some((name, level)) = self.route(record.target(), record.level()) else { return };
        if self.known_disabled(&name, level) {
            return;
        }
        let message = record.args().to_string();
        // No interpreter (not started, or shutting down): the record is dropped. A failing
        // Python handler is reported by `logging` itself.
        let _ = Python::try_attach(|py| self.emit(py, &name, level, &message));
    }

    fn flush(&self) {}
}
