//! [`WsgiHandler`]: a WSGI application as a [`Handler`].
//!
//! Owns the call into the application on a worker thread; never touches a socket and never
//! decides framing (`http1::encode` does).

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::environ;
use super::errors::Errors;
use super::input::Input;
use super::response::{self, Context};
use super::start_response::StartResponse;
use crate::config::Config;
use crate::handler::Handler;
use crate::http1::request::Request;
use crate::http1::response::Response;

/// Runs a WSGI application (PEP 3333) for each request, on the server's worker threads.
///
/// Each worker thread attaches to the interpreter once, when it starts, and keeps its thread
/// state until it stops; it holds the GIL only while it runs Python code (the application,
/// and each chunk of a streamed response), never while it waits for a request or for the
/// client. See the [module documentation](super) for the environ, the response and errors.
///
/// Start the server without holding the GIL (inside `py.detach`, or from a thread that is not
/// attached): each worker takes the GIL once as it starts, to create its thread state.
///
/// ```no_run
/// use maitred::python::WsgiHandler;
/// use maitred::{Config, Server};
/// use pyo3::prelude::*;
///
/// Python::initialize();
/// let app = Python::attach(|py| -> PyResult<Py<PyAny>> {
///     Ok(py.import("myproject.wsgi")?.getattr("application")?.unbind())
/// })?;
/// let config = Config::default();
/// let handler = WsgiHandler::new(app, &config);
/// // The GIL must not be held while the server runs: the workers need it.
/// let handle = Server::bind(config, handler)?.start()?;
/// handle.wait();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WsgiHandler {
    app: Py<PyAny>,
    /// The environ entries every request shares.
    template: Py<PyDict>,
    url_prefix: String,
    expose_tracebacks: bool,
    /// Each worker thread's Python thread id (`threading.get_ident()`), by worker number, so
    /// the watchdog can find a stuck thread's stack in `sys._current_frames()`.
    idents: Mutex<Vec<Option<u64>>>,
}

impl WsgiHandler {
    /// A handler calling `app(environ, start_response)`, with `SCRIPT_NAME` from
    /// `config.url_prefix` and 500 bodies as `config.expose_tracebacks` says. The interpreter
    /// must be initialized (it is when `app` exists).
    pub fn new(app: Py<PyAny>, config: &Config) -> WsgiHandler {
        let template = Python::attach(|py| {
            environ::template(py, &config.url_prefix).map(Bound::unbind).unwrap_or_else(|e| {
                // Only a failed allocation can get here.
                panic!("cannot build the WSGI environ template: {e}")
            })
        });
        WsgiHandler {
            app,
            template,
            url_prefix: config.url_prefix.clone(),
            expose_tracebacks: config.expose_tracebacks,
            idents: Mutex::new(Vec::new()),
        }
    }

    fn call(
        &self,
        py: Python<'_>,
        request: &Request,
        body: crate::http1::request::RequestBody,
        path_info: &[u8],
    ) -> Response {
        let ctx =
            Context { method: request.method(), target: request.target(), expose_tracebacks: self.expose_tracebacks };
        let start_response = match Bound::new(py, StartResponse::default()) {
            Ok(sr) => sr,
            Err(e) => return internal_error(py, &ctx, e),
        };
        let body_len = body.len();
        let prepared = (|| {
            let input = Input::new(body).map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
            let input = Bound::new(py, input)?.into_any();
            let errors = Bound::new(py, Errors::default())?.into_any();
            let streams = environ::Streams { input: &input, errors: &errors };
            environ::build(py, self.template.bind(py), request, path_info, body_len, streams)
        })();
        let environ = match prepared {
            Ok(environ) => environ,
            Err(e) => return internal_error(py, &ctx, e),
        };
        match self.app.bind(py).call1((environ, &start_response)) {
            Ok(result) => response::finish(py, &ctx, result, &start_response),
            Err(e) => response::fail(py, &ctx, e, &start_response, None),
        }
    }
}

/// A 500 for a failure of the server's own Python calls (before the application ran).
fn internal_error(py: Python<'_>, ctx: &Context<'_>, err: PyErr) -> Response {
    log::error!(
        target: super::errors::TARGET,
        "{} {}: cannot prepare the WSGI call:\n{}",
        ctx.method,
        ctx.target,
        response::format_exception(py, &err)
    );
    Response::text(500, "500 Internal Server Error\n").with_header("Connection", "close")
}

impl Handler for WsgiHandler {
    fn handle(&self, mut request: Request) -> Response {
        // `OPTIONS *` asks about the server, not a resource, and has no PATH_INFO (PEP 3333
        // and `wsgiref.validate` want one starting with `/`): answered here, without the
        // application. No `Allow`: which methods the application serves is its own business.
        if request.path() == "*" {
            return Response::new(200);
        }
        // Outside the prefix: answered without the application (and without the GIL).
        let Some(path_info) = environ::path_info(&self.url_prefix, request.path()) else {
            return Response::text(404, "404 Not Found\n");
        };
        let body = request.take_body();
        Python::try_attach(|py| self.call(py, &request, body, &path_info))
            .unwrap_or_else(|| Response::text(503, "503 Service Unavailable\n").with_header("Connection", "close"))
    }

    fn on_worker_start(&self, worker: usize) {
        super::raw::attach_worker_thread();
        // Python sees this thread as a "Dummy-N" thread; give it the name the server uses so
        // Python's logs and tracebacks say which worker ran the request.
        Python::attach(|py| {
            match py.import("threading").and_then(|t| t.call_method0("get_ident")).and_then(|i| i.extract::<u64>()) {
                Ok(ident) => {
                    let mut idents = self.idents.lock().unwrap_or_else(|e| e.into_inner());
                    if idents.len() <= worker {
                        idents.resize(worker + 1, None);
                    }
                    idents[worker] = Some(ident);
                }
                Err(e) => log::debug!(target: "maitred::wsgi", "no thread id for worker thread {worker}: {e}"),
            }
            let named = py
                .import("threading")
                .and_then(|threading| threading.call_method0("current_thread"))
                .and_then(|thread| thread.setattr("name", format!("maitred-worker-{worker}")));
            if let Err(e) = named {
                log::debug!(target: "maitred::wsgi", "cannot name worker thread {worker}: {e}");
            }
        });
    }

    fn on_worker_stop(&self, _worker: usize) {
        super::raw::detach_worker_thread();
    }

    /// The stuck thread's Python stack, innermost call last, as `traceback.format_stack`
    /// writes it. Runs on the watchdog's reporter thread: taking the GIL there is fine (the
    /// stuck thread gives it up every switch interval unless it is inside C code that holds
    /// it, and then only the reporter waits).
    fn stuck_stack(&self, worker: usize) -> Option<String> {
        let ident = self.idents.lock().unwrap_or_else(|e| e.into_inner()).get(worker).copied().flatten()?;
        Python::try_attach(|py| {
            let frames = py.import("sys").ok()?.call_method0("_current_frames").ok()?;
            let frame = frames.get_item(ident).ok()?;
            let lines = py.import("traceback").ok()?.call_method1("format_stack", (frame,)).ok()?;
            let text: Vec<String> = lines.extract().ok()?;
            Some(text.concat())
        })
        .flatten()
    }
}
