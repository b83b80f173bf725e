//! The extension module `maitred._maitred`: [`run`] (the `maitred` command) and [`serve`]
//! (programmatic use), both blocking the calling thread until a SIGINT/SIGTERM drain.
//!
//! Owns the command line and `serve()`'s settings for WSGI; never serves requests itself (the
//! engine does) and never prints a traceback for an error a user can cause.

use std::time::Duration;

use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::handler::WsgiHandler;
use super::logging::{effective_level, install_logging, python_level_of};
use crate::cli::{self, Command};
use crate::config::{Config, Scope, Setting, SETTINGS};

/// The `--help` text's first paragraph.
const ABOUT: &str = "maitred: serve a Python WSGI application (PEP 3333) over HTTP/1.1.

MODULE:APP names the application: the module to import and the callable in it, as in
myproject.wsgi:application.";

/// The settings WSGI applications start from: `Config::default()` with 4 worker threads.
pub fn wsgi_defaults() -> Config {
    Config { threads: 4, ..Config::default() }
}

/// Whether `setting` means anything to a WSGI application: every setting but the static file
/// app's ([`Scope::StaticFiles`]), which the Python front end neither lists nor accepts.
pub fn applies_to_wsgi(setting: &Setting) -> bool {
    setting.scope == Scope::Server
}

/// Why the Python command refuses `setting`, if it does (see [`cli::parse_from`]).
fn wsgi_refusal(setting: &Setting) -> Option<String> {
    (!applies_to_wsgi(setting)).then(|| {
        "does not apply to WSGI applications: it configures the static file server (the Rust maitred binary); \
         see maitred --help"
            .to_string()
    })
}

/// The settings a WSGI application can use, in the order of [`SETTINGS`].
fn wsgi_settings_iter() -> impl Iterator<Item = &'static Setting> {
    SETTINGS.iter().filter(|s| applies_to_wsgi(s))
}

/// The `--help` text of the Python command: the settings that apply to WSGI with their WSGI
/// defaults, then the other flags and Waitress's names.
fn wsgi_help() -> String {
    cli::help("maitred", ABOUT, " MODULE:APP", Some(&wsgi_defaults()), &wsgi_refusal)
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

/// Whether `config` asks for worker processes and this process is to supervise them (not
/// one of them already).
fn supervises(config: &Config) -> bool {
    config.worker_count() > 1 && !crate::supervisor::is_worker()
}

/// Supervises worker processes, each started as `program` (a Python interpreter and what it
/// runs, so every worker imports the application itself), with the GIL released; `reload`
/// re-reads the settings on SIGHUP. Returns the exit status as [`crate::supervisor::supervise`].
fn supervise_blocking(
    py: Python<'_>,
    config: Config,
    program: Vec<String>,
    reload: Box<dyn FnMut() -> Result<Config, String> + Send>,
) -> Result<u8, crate::Error> {
    let Some((command, args)) = program.split_first() else {
        return Err(crate::Error::Worker("no program to start the worker processes with".into()));
    };
    install_logging(&config);
    let program = crate::supervisor::Program { command: command.into(), args: args.iter().map(Into::into).collect() };
    let result = py.detach(move || crate::supervisor::supervise(config, program, reload));
    // The signal handlers chained Python's own SIGINT handler, which left a KeyboardInterrupt
    // pending: the signal was the supervisor's to act on, and it did.
    if let Err(e) = py.check_signals() {
        if !e.is_instance_of::<PyKeyboardInterrupt>(py) {
            return Err(crate::Error::Worker(one_line(py, &e)));
        }
    }
    result
}

/// `run(argv, load_app) -> int`: the `maitred` command. `argv` is the command line without
/// the program name; `load_app(spec, log_level)` imports and returns the application named by
/// the one positional argument `MODULE:APP`; `log_level` is the Python `logging` level the
/// server logs at (`--log-level`, or `RUST_LOG` when it is a bare level; 100 for `off`), so
/// the loader can keep tracebacks for debug level. Returns the exit status: 0 after a drain,
/// `--help`, `--version`, `--check-config`, `--print-config` or a healthy `--healthcheck`; 1
/// when the server cannot start or the health check fails; 2 for a usage error or an
/// application that cannot be loaded. Messages are one line on stderr, prefixed `maitred: `.
///
/// Settings come from flags, `MAITRED_*` variables and `--config` as for the `maitred`
/// binary, over [`wsgi_defaults`]; the static file app's settings ([`Scope::StaticFiles`])
/// are refused as flags and `--config` keys, and ignored, with a warning, as variables. While serving, the GIL is
/// released and SIGINT and SIGTERM start the drain (the server's handler replaces Python's
/// `KeyboardInterrupt` one).
///
/// With more than one worker (`--workers`), this process supervises them and loads no
/// application: each worker is `program` (this interpreter running the `maitred` command
/// again with the same arguments), which imports the application itself. If `load_app` has
/// an `apply_log_level(level)` attribute, the supervisor calls it instead, so its own records
/// show at the level loading would have set.
#[pyfunction]
#[pyo3(signature = (argv, load_app, program = None))]
pub fn run(
    py: Python<'_>,
    argv: Vec<String>,
    load_app: &Bound<'_, PyAny>,
    program: Option<Vec<String>>,
) -> PyResult<i32> {
    let reparse_argv = argv.clone();
    let command = match cli::parse_from(wsgi_defaults(), &wsgi_refusal, argv, |k| std::env::var(k).ok()) {
        Ok(command) => command,
        Err(e) => {
            error_line(py, &e);
            return Ok(2);
        }
    };
    let (config, args) = match &command {
        Command::Help => {
            emit(py, "stdout", &wsgi_help());
            return Ok(0);
        }
        Command::Version => {
            emit(py, "stdout", &format!("maitred {}\n", env!("CARGO_PKG_VERSION")));
            return Ok(0);
        }
        Command::Healthcheck { url } => {
            let url = url.clone();
            let probe = py.detach(|| crate::ops::healthcheck::probe(&url, Duration::from_secs(5)));
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
    for setting in SETTINGS.iter().filter(|s| !applies_to_wsgi(s)) {
        let var = setting.env_var();
        if std::env::var_os(&var).is_some() {
            emit(py, "stderr", &format!("maitred: warning: {var} is ignored: it configures the static file server\n"));
        }
    }
    let log_level = python_level_of(effective_level(&config));
    if let (Command::Run { .. }, Some(program)) = (&command, program) {
        if supervises(&config) {
            // The loader's hook for the level the application's loading would have set.
            if let Ok(apply) = load_app.getattr(intern!(py, "apply_log_level")) {
                let _ = apply.call1((log_level,));
            }
            let reload = Box::new(move || {
                match cli::parse_from(wsgi_defaults(), &wsgi_refusal, reparse_argv.clone(), |k| std::env::var(k).ok())?
                {
                    Command::Run { config, .. } => config.validate().map(|()| config).map_err(|e| e.to_string()),
                    _ => Err("the command line no longer asks to run a server".into()),
                }
            });
            return Ok(match supervise_blocking(py, config, program, reload) {
                Ok(code) => i32::from(code),
                Err(e) => {
                    error_line(py, &e.to_string());
                    1
                }
            });
        }
    }
    let app = match load_app.call1((spec, log_level)) {
        Ok(app) => app,
        Err(e) if e.is_instance_of::<PyKeyboardInterrupt>(py) => return Err(e),
        Err(e) => {
            // The loader's own errors are one sentence already; anything else gets its type.
            let own = e.get_type(py).name().is_ok_and(|n| n == "AppLoadError");
            let message = if own {
                e.value(py).str().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
            } else {
                one_line(py, &e)
            };
            error_line(py, &format!("cannot load {spec}: {message}"));
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
    // A missing, unreadable or mismatched certificate or key is a usage error, as a bad flag.
    if let Err(e) = crate::tls::check(&config) {
        error_line(py, &e);
        return Ok(2);
    }
    match command {
        Command::CheckConfig { .. } => {
            emit(py, "stdout", "maitred: configuration ok\n");
            Ok(0)
        }
        Command::PrintConfig { .. } => {
            // Without the static file app's settings, which the command refuses.
            emit(py, "stdout", &cli::print_config_of(&config, &wsgi_refusal));
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

/// The configuration `serve` runs with: [`wsgi_defaults`] and then each of `settings`, named
/// as settings or with Waitress's names, as on the command line: `host` and `port` combine
/// into `listen` (the host defaults to 127.0.0.1, the port to 8080), and `listen` may also be
/// Waitress's space-separated list.
fn config_from(settings: Option<&Bound<'_, PyDict>>) -> PyResult<Config> {
    let mut config = wsgi_defaults();
    let (mut host, mut port, mut listen) = (None, None, None);
    if let Some(settings) = settings {
        for (key, value) in settings.iter() {
            let key = key
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("setting names must be str"))?
                .to_cow()?
                .into_owned();
            let text = setting_text(&key, &value, false)?;
            match key.replace('-', "_").as_str() {
                "host" => host = Some(text),
                "port" => port = Some(text),
                _ => {
                    let setting = cli::lookup(&key).ok_or_else(|| {
                        PyValueError::new_err(format!("unknown setting {key:?} (help(maitred.serve) lists them)"))
                    })?;
                    if let Some(reason) = wsgi_refusal(setting) {
                        return Err(PyValueError::new_err(format!("setting {key:?} {reason}")));
                    }
                    if setting.name == "listen" {
                        let parts: Vec<&str> =
                            text.split(|c: char| c == ',' || c.is_whitespace()).filter(|p| !p.is_empty()).collect();
                        listen = Some(parts.join(","));
                    } else {
                        setting.apply(&mut config, &text).map_err(|e| PyValueError::new_err(e.0))?;
                    }
                }
            }
        }
    }
    if host.is_some() || port.is_some() {
        if listen.is_some() {
            return Err(PyValueError::new_err("conflicting settings: give listen or host/port, not both"));
        }
        listen = Some(cli::host_port(host, port));
    }
    if let Some(listen) = listen {
        let setting = Config::setting("listen").expect("listen is a setting");
        setting.apply(&mut config, &listen).map_err(|e| PyValueError::new_err(e.0))?;
    }
    config.validate().map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(config)
}

/// `wsgi_settings() -> list[tuple[str, str, str, str]]`: `(name, unit, default, summary)` of
/// every setting a WSGI application can use, with the WSGI defaults, in `--help` order. The
/// Python package builds `help(maitred.serve)` from it.
#[pyfunction]
pub fn wsgi_settings() -> Vec<(String, String, String, String)> {
    let defaults = wsgi_defaults();
    wsgi_settings_iter().map(|s| (s.name.to_string(), s.unit.to_string(), s.show(&defaults), s.summary())).collect()
}

/// `waitress_names() -> list[tuple[str, str]]`: Waitress's setting names that `serve` and the
/// command line accept, each with the setting it sets (`host` and `port` combine into
/// `listen`).
#[pyfunction]
pub fn waitress_names() -> Vec<(String, String)> {
    let mut names = vec![("host".to_string(), "listen".to_string()), ("port".to_string(), "listen".to_string())];
    names.extend(cli::ALIASES.iter().map(|(alias, setting)| (alias.replace('-', "_"), setting.to_string())));
    names
}

/// `serve(app, settings={})`: serves the WSGI application `app` until SIGINT or SIGTERM has
/// drained the server, with the GIL released meanwhile. `settings` maps setting names
/// (`"listen"`, `"threads"`, `"url_prefix"`, ... as in `--print-config`; `-` or `_`, or
/// Waitress's names from [`waitress_names`]) to values: text, numbers, booleans, or lists
/// (joined with `,`, for `listen`). Defaults are
/// [`wsgi_defaults`]; no flags or environment variables are read. An invalid setting raises
/// `ValueError` (`TypeError` for a value of the wrong type); a server that cannot start (an
/// address in use) raises `OSError`.
///
/// With more than one worker (`workers`), this process supervises them and does not serve
/// `app`: each worker is `program` (this interpreter running the same script again), which
/// reaches `serve` itself and serves its own `app`. A worker that cannot start raises
/// `OSError` here.
#[pyfunction]
#[pyo3(signature = (app, settings = None, program = None))]
pub fn serve(
    py: Python<'_>,
    app: Py<PyAny>,
    settings: Option<&Bound<'_, PyDict>>,
    program: Option<Vec<String>>,
) -> PyResult<()> {
    let config = config_from(settings)?;
    if let Some(program) = program.filter(|_| supervises(&config)) {
        drop(app);
        let same = config.clone();
        let reload = Box::new(move || Ok(same.clone()));
        return match supervise_blocking(py, config, program, reload) {
            Ok(0) => Ok(()),
            Ok(code) => Err(PyOSError::new_err(format!("a worker process could not start (exit status {code})"))),
            Err(e) => Err(PyOSError::new_err(e.to_string())),
        };
    }
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
    use super::{run, serve, waitress_names, wsgi_settings};

    #[pymodule_export]
    use crate::python::response::FileWrapper;

    #[pymodule_export]
    #[allow(non_upper_case_globals)]
    const __version__: &str = env!("CARGO_PKG_VERSION");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// What the command line parser makes of `argv` for the Python command (no environment).
    fn parse(argv: &[&str]) -> Result<Command, String> {
        cli::parse_from(wsgi_defaults(), &wsgi_refusal, args(argv), |_| None)
    }

    #[test]
    fn static_file_flags_are_refused_by_name() {
        for argv in [
            &["--check-config", "--root", "/nonexistent", "app:app"][..],
            &["--root=/srv", "app:app"],
            &["--directory-listing", "app:app"],
            &["--threads", "2", "--follow-symlinks=false", "app:app"],
            &["--serve-dotfiles", "app:app"],
        ] {
            let message = parse(argv).err().unwrap_or_else(|| panic!("{argv:?} accepted"));
            assert!(message.contains("does not apply to WSGI") && !message.contains('\n'), "{message}");
        }
    }

    /// A `--config` file key is refused like the flag (it used to be accepted and ignored).
    #[test]
    fn static_file_keys_in_a_config_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, "threads = 2\nroot = \"/srv\"\n").unwrap();
        let e = parse(&["--config", path.to_str().unwrap(), "app:app"]).unwrap_err();
        assert!(e.contains("setting \"root\" does not apply to WSGI") && e.contains("m.toml"), "{e}");
    }

    #[test]
    fn values_and_arguments_that_look_like_static_flags_are_not_refused() {
        for argv in [
            &["--server-header", "--root", "app:app"][..],
            &["--host", "--root", "app:app"],
            &["--", "--root"],
            &["--threads=2", "--access-log", "json", "app:app"],
        ] {
            // Other errors may follow (`--host --root` is no address); never the refusal.
            let refused = parse(argv).err().is_some_and(|e| e.contains("does not apply"));
            assert!(!refused, "{argv:?}: {:?}", parse(argv).err());
        }
    }

    /// A setting added for the static file app (its help says so) must be scoped to it, or the
    /// Python command would list it and accept it silently.
    #[test]
    fn every_static_file_setting_is_kept_from_wsgi() {
        for setting in SETTINGS {
            if setting.help.contains("static file") {
                assert!(!applies_to_wsgi(setting), "{} is a static file setting", setting.name);
            }
        }
        let kept: Vec<&str> = SETTINGS.iter().filter(|s| !applies_to_wsgi(s)).map(|s| s.name).collect();
        assert_eq!(kept, ["root", "directory_listing", "follow_symlinks", "serve_dotfiles"]);
    }

    #[test]
    fn help_shows_wsgi_defaults_and_only_wsgi_settings() {
        let text = wsgi_help();
        let threads = text.find("  --threads <threads>\n").expect("--threads listed");
        assert!(text[threads..].lines().nth(1).unwrap().ends_with("default 4"), "{text}");
        assert!(!text.contains("CPUs"), "the binary's thread rule leaked into the WSGI help");
        for setting in SETTINGS.iter().filter(|s| !applies_to_wsgi(s)) {
            assert!(!text.contains(&setting.flag()), "{} listed", setting.flag());
        }
        assert!(text.contains("--max-body-size <bytes>") && text.contains("Other flags:"), "{text}");
        assert!(text.contains("--channel-timeout = --keepalive-timeout"), "{text}");
    }

    #[test]
    fn waitress_names_are_settings() {
        for (alias, setting) in waitress_names() {
            assert!(Config::setting(&setting).is_some(), "{alias} = {setting}");
            assert!(alias == "host" || alias == "port" || cli::lookup(&alias).is_some(), "{alias}");
        }
    }
}
