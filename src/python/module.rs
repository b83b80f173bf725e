//! The extension module `maitred._maitred`: [`run`] (the `maitred` command) and [`serve`]
//! (programmatic use), both blocking the calling thread until a SIGINT/SIGTERM drain.

use std::time::Duration;

use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::handler::WsgiHandler;
use super::logging::install_logging;
use crate::cli::{self, Command};
use crate::config::Config;

/// The `--help` text's first paragraph.
const ABOUT: &str = "maitred: serve a Python WSGI application (PEP 3333) over HTTP/1.1.

MODULE:APP names the application: the module to import and the callable in it, as in
myproject.wsgi:application.";

/// The settings WSGI applications start from: `Config::default()` with 4 worker threads.
pub fn wsgi_defaults() -> Config {
    Config { threads: 4, ..Config::default() }
}

/// Writes `text` to Python's `sys.stdout` or `sys.stderr` (so it interleaves with what Python
/// printed, and test capture sees it), falling back to the process's own stream.
fn emit(py: Python<'_>, stream: &str, text: &str) {
    let written = py.import(intern!(py, "sys")).and_then(|sys| {
        let stream = sys.getattr(stream)?;
        if stream.is_none() {
            return Err(PyOSError::new_err("no stream"));
        }
        stream.call_method1(intern!(py, "write"), (text,))?;
        stream.call_method0(intern!(py, "flush"))?;
        Ok(())
    });
    if written.is_err() {
        if stream == "stdout" {
            print!("{text}");
        } else {
            eprint!("{text}");
        }
    }
}

/// One `maitred: ...` line on stderr.
fn error_line(py: Python<'_>, message: &str) {
    emit(py, "stderr", &format!("maitred: {message}\n"));
}

/// `ExcType: message` on one line.
fn one_line(py: Python<'_>, err: &PyErr) -> String {
    let name = err.get_type(py).name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    let message = err.value(py).str().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if message.is_empty() {
        name
    } else {
        format!("{name}: {message}")
    }
}

/// Serves `handler` until a SIGINT/SIGTERM drain, with the GIL released.
fn serve_blocking(py: Python<'_>, config: Config, app: Py<PyAny>) -> Result<(), crate::Error> {
    install_logging(&config);
    let handler = WsgiHandler::new(app, &config);
    py.detach(move || crate::launch::serve_until_signal(config, handler))
}

/// `run(argv, load_app) -> int`: the `maitred` command. `argv` is the command line without
/// the program name; `load_app(spec)` imports and returns the application named by the one
/// positional argument `MODULE:APP`. Returns the exit status: 0 after a drain, `--help`,
/// `--version`, `--check-config`, `--print-config` or a healthy `--healthcheck`; 1 when the
/// server cannot start or the health check fails; 2 for a usage error or an application that
/// cannot be loaded. Messages are one line on stderr, prefixed `maitred: `.
///
/// Settings come from flags, `MAITRED_*` variables and `--config` as for the `maitred`
/// binary, over [`wsgi_defaults`]. While serving, the GIL is released and SIGINT and SIGTERM
/// start the drain (the server's handler replaces Python's `KeyboardInterrupt` one).
#[pyfunction]
pub fn run(py: Python<'_>, argv: Vec<String>, load_app: &Bound<'_, PyAny>) -> PyResult<i32> {
    let command = match cli::parse_from(wsgi_defaults(), argv, |k| std::env::var(k).ok()) {
        Ok(command) => command,
        Err(e) => {
            error_line(py, &e);
            return Ok(2);
        }
    };
    let (config, args) = match &command {
        Command::Help => {
            emit(py, "stdout", &cli::help("maitred", ABOUT, " MODULE:APP"));
            return Ok(0);
        }
        Command::Version => {
            emit(py, "stdout", &format!("maitred {}\n", env!("CARGO_PKG_VERSION")));
            return Ok(0);
        }
        Command::Healthcheck { url } => {
            let url = url.clone();
            let probe = py.detach(|| crate::healthcheck::probe(&url, Duration::from_secs(5)));
            return Ok(match probe {
                Ok(status) if (200..300).contains(&status) => 0,
                Ok(status) => {
                    error_line(py, &format!("{url} answered {status}"));
                    1
                }
                Err(e) => {
                    error_line(py, &e);
                    1
                }
            });
        }
        Command::Run { config, args }
        | Command::CheckConfig { config, args }
        | Command::PrintConfig { config, args } => (config.clone(), args.clone()),
    };
    let spec = match args.as_slice() {
        [spec] => spec,
        [] => {
            error_line(py, "missing the application: give MODULE:APP (see --help)");
            return Ok(2);
        }
        [_, extra, ..] => {
            error_line(py, &format!("unexpected argument {extra:?} (see --help)"));
            return Ok(2);
        }
    };
    let app = match load_app.call1((spec,)) {
        Ok(app) => app,
        Err(e) if e.is_instance_of::<PyKeyboardInterrupt>(py) => return Err(e),
        Err(e) => {
            error_line(py, &format!("cannot load {spec}: {}", one_line(py, &e)));
            return Ok(2);
        }
    };
    if !app.is_callable() {
        let what = app.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        error_line(
            py,
            &format!("cannot load {spec}: TypeError: a {what} object is not a WSGI application (not callable)"),
        );
        return Ok(2);
    }
    match command {
        Command::CheckConfig { .. } => {
            emit(py, "stdout", "maitred: configuration ok\n");
            Ok(0)
        }
        Command::PrintConfig { .. } => {
            emit(py, "stdout", &cli::print_config(&config));
            Ok(0)
        }
        _ => match serve_blocking(py, config, app.unbind()) {
            Ok(()) => Ok(0),
            Err(e) => {
                error_line(py, &e.to_string());
                Ok(1)
            }
        },
    }
}

/// A setting's value as the text the settings table parses.
fn setting_text(key: &str, value: &Bound<'_, PyAny>, nested: bool) -> PyResult<String> {
    if value.is_instance_of::<PyBool>() {
        return Ok(if value.is_truthy()? { "true" } else { "false" }.to_string());
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text.to_cow()?.into_owned());
    }
    if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>() {
        return Ok(value.str()?.to_cow()?.into_owned());
    }
    if !nested && (value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>()) {
        let parts: PyResult<Vec<String>> = value.try_iter()?.map(|item| setting_text(key, &item?, true)).collect();
        return Ok(parts?.join(","));
    }
    let what = value.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    Err(PyTypeError::new_err(format!("setting {key}: expected str, int, float, bool or a list of them, not {what}")))
}

/// The configuration `serve` runs with: [`wsgi_defaults`] and then each of `settings`.
fn config_from(settings: Option<&Bound<'_, PyDict>>) -> PyResult<Config> {
    let mut config = wsgi_defaults();
    if let Some(settings) = settings {
        for (key, value) in settings.iter() {
            let key = key
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("setting names must be str"))?
                .to_cow()?
                .into_owned();
            let setting =
                Config::setting(&key).ok_or_else(|| PyValueError::new_err(format!("unknown setting {key:?}")))?;
            let text = setting_text(&key, &value, false)?;
            setting.apply(&mut config, &text).map_err(PyValueError::new_err)?;
        }
    }
    config.validate().map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(config)
}

/// `serve(app, settings={})`: serves the WSGI application `app` until SIGINT or SIGTERM has
/// drained the server, with the GIL released meanwhile. `settings` maps setting names
/// (`"listen"`, `"threads"`, `"url_prefix"`, ... as in `--print-config`; `-` or `_`) to
/// values: text, numbers, booleans, or lists (joined with `,`, for `listen`). Defaults are
/// [`wsgi_defaults`]; no flags or environment variables are read. An invalid setting raises
/// `ValueError` (`TypeError` for a value of the wrong type); a server that cannot start (an
/// address in use) raises `OSError`.
#[pyfunction]
#[pyo3(signature = (app, settings = None))]
pub fn serve(py: Python<'_>, app: Py<PyAny>, settings: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
    let config = config_from(settings)?;
    serve_blocking(py, config, app).map_err(|e| PyOSError::new_err(e.to_string()))
}

/// The extension module, imported as `maitred._maitred`.
///
/// Declared free-threading-safe (`gil_used = false`): on free-threaded CPython (3.14t)
/// importing it leaves the GIL off, and the worker threads run Python in parallel. What that
/// rests on (audited for the 3.14t wheel):
///
/// * shared state is `Sync` Rust: the logging bridge is atomics plus a `Mutex` never held
///   while Python code runs; `wsgi.errors` is a frozen class around a `Mutex`; the handler's
///   application and environ template are only read (the template is copied per request,
///   and a dict copy locks the source dict);
/// * per-request objects (`wsgi.input`, `start_response`) are mutable classes whose borrows
///   pyo3 checks atomically: an application using one from two threads at once gets a
///   `RuntimeError`, never a data race; `FileWrapper` is frozen (immutable);
/// * the `unsafe` code: each worker's thread state is thread-local and attached and detached
///   only by its own thread; a file's descriptor is duplicated under the file object's
///   critical section, so another thread cannot close it through that object meanwhile.
#[pymodule(name = "_maitred", gil_used = false)]
pub mod extension {
    #[pymodule_export]
    use super::{run, serve};

    #[pymodule_export]
    use crate::python::response::FileWrapper;

    #[pymodule_export]
    #[allow(non_upper_case_globals)]
    const __version__: &str = env!("CARGO_PKG_VERSION");
}
