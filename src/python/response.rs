//! From the application's return value to a [`Response`]: the status and headers it gave
//! `start_response`, and its iterable as the body.
//!
//! PEP 3333 lets an application call `start_response` lazily, from inside its iterable, so
//! the head is known only once the first non-empty chunk has been produced (or the iterable
//! is exhausted). The worker pulls that far while the handler runs; the rest of the iterable
//! becomes a [`Body::Stream`] whose iterator ([`AppIter`]) runs on the same worker thread,
//! holding the GIL only while it asks the application for the next chunk, and is handed to
//! the I/O loop in bounded pieces.
//!
//! Shortcuts, each sending exactly what the plain iteration would:
//!
//! * an exact `list` or `tuple` is already in memory: it is joined into one body;
//! * once the chunks reach the application's `Content-Length`, iteration stops (PEP 3333:
//!   "should stop iterating over the response when enough data has been sent"), so a
//!   framework's usual one-chunk body is answered without a stream;
//! * [`FileWrapper`] over a built-in regular file object (`open(path, "rb")`; Unix): the file
//!   is handed to the I/O loop, which reads it in blocks; no worker, no GIL and no copy through Python.
//!
//! Errors: an exception or a non-`bytes` chunk before the head is sent is a 500 with
//! `Connection: close`, the traceback going to the error log (`maitred::wsgi`) and, with
//! `expose_tracebacks`, to the client. After the head is sent it aborts the response: the
//! stream yields an error, and the server closes the connection, so the client sees a body
//! cut short (a missing last chunk, or fewer bytes than `Content-Length`).
//!
//! The application's `Content-Length`, when it set one, is the stream's length, so the server
//! enforces it: a shorter body closes the connection after the bytes that exist, a longer one
//! is cut at the declared length and the connection closed; neither can hang the client.
//!
//! `close()` on the iterable is always called, exactly once: when it is exhausted, when it
//! fails, when iteration stops early, and when the stream is dropped because the client went
//! away (the drop takes the GIL to call it).
//!
//! Never writes to a socket: the body goes to the I/O loop in bounded pieces.

use std::io;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator, PyList, PyTuple};

use super::errors::TARGET;
use super::start_response::{Head, StartResponse};
use crate::http1::response::{Body, Response};

/// Default block size of [`FileWrapper`].
const FILE_BLOCK: usize = 64 * 1024;

/// What the response code needs to know about the request.
pub(crate) struct Context<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    pub(crate) expose_tracebacks: bool,
}

impl Context<'_> {
    fn label(&self) -> String {
        format!("{} {}", self.method, self.target)
    }
}

/// `wsgi.file_wrapper(filelike, block_size=65536)`: an iterable over `filelike.read(block_size)`
/// whose `close()` closes `filelike`. Returned by an application, a wrapper around a built-in
/// regular file object (see `raw::duplicate_file`) is sent by the server straight from the file (Unix), starting at the
/// file's current position (`tell()`) and ending at its end or at the `Content-Length`.
#[pyclass(module = "maitred._maitred", name = "FileWrapper", frozen)]
pub(crate) struct FileWrapper {
    filelike: Py<PyAny>,
    block_size: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, block_size = FILE_BLOCK))]
    fn new(filelike: Py<PyAny>, block_size: usize) -> Self {
        FileWrapper { filelike, block_size: block_size.max(1) }
    }

    /// The wrapped file object.
    #[getter]
    fn filelike(&self, py: Python<'_>) -> Py<PyAny> {
        self.filelike.clone_ref(py)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let data = self.filelike.bind(py).call_method1(intern!(py, "read"), (self.block_size,))?;
        Ok(if data.is_truthy()? { Some(data) } else { None })
    }

    /// Closes the wrapped file, if it has a `close()`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let filelike = self.filelike.bind(py);
        if filelike.hasattr(intern!(py, "close"))? {
            filelike.call_method0(intern!(py, "close"))?;
        }
        Ok(())
    }
}

/// The traceback of `err`, as Python prints it.
pub(crate) fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py.import(intern!(py, "traceback")).and_then(|tb| {
        let lines =
            tb.call_method1(intern!(py, "format_exception"), (err.get_type(py), err.value(py), err.traceback(py)))?;
        let mut text = String::new();
        for line in lines.try_iter()? {
            text.push_str(&line?.str()?.to_cow()?);
        }
        Ok::<_, PyErr>(text)
    });
    formatted.unwrap_or_else(|_| format!("{err}\n")).trim_end().to_string()
}

/// Calls `result.close()` if it has one; an exception is logged.
fn close_result(py: Python<'_>, label: &str, result: &Bound<'_, PyAny>) {
    if result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>() {
        return;
    }
    let Ok(close) = result.getattr(intern!(py, "close")) else { return };
    if let Err(e) = close.call0() {
        log::error!(target: TARGET, "{label}: close() of the application's iterable raised:\n{}", format_exception(py, &e));
    }
}

/// The response for a validated head and a body.
fn with_head(head: &Head, body: Body) -> Response {
    let mut response = Response::new(head.status);
    if let Some(reason) = &head.reason {
        response = response.with_reason(reason.clone());
    }
    for (name, value) in &head.headers {
        response.add_header(name, value);
    }
    response.set_body(body);
    response
}

/// A body that is complete in memory: with the application's `Content-Length`, a mismatch
/// goes out as a stream of that declared length, so the server closes the connection.
fn complete_body(body: Vec<u8>, content_length: Option<u64>) -> Body {
    match content_length {
        Some(n) if n != body.len() as u64 => Body::stream_sized(std::iter::once(Ok(body)), n),
        _ => Body::Bytes(body),
    }
}

/// The answer to an exception from the application: a 500 before the head is sent, an
/// aborted response after. `result` is closed.
pub(crate) fn fail(
    py: Python<'_>,
    ctx: &Context<'_>,
    err: PyErr,
    start_response: &Bound<'_, StartResponse>,
    result: Option<&Bound<'_, PyAny>>,
) -> Response {
    let label = ctx.label();
    let traceback = format_exception(py, &err);
    log::error!(target: TARGET, "{label}: application error:\n{traceback}");
    if let Some(result) = result {
        close_result(py, &label, result);
    }
    let mut state = start_response.borrow_mut();
    if state.headers_sent {
        // write() already sent data: the head goes out with it, then the connection is cut.
        if let Some(head) = state.head.clone() {
            let written = std::mem::take(&mut state.written);
            let chunks = vec![Ok(written), Err(io::Error::other("the application raised after sending data"))];
            let body = Body::Stream { chunks: Box::new(chunks.into_iter()), len: head.content_length };
            return with_head(&head, body);
        }
    }
    let body = if ctx.expose_tracebacks {
        format!("500 Internal Server Error\n\n{traceback}\n")
    } else {
        "500 Internal Server Error\n".to_string()
    };
    Response::text(500, body).with_header("Connection", "close")
}

/// Takes what `write()` has buffered.
fn take_written(start_response: &Bound<'_, StartResponse>) -> Vec<u8> {
    let mut state = start_response.borrow_mut();
    if state.written.is_empty() {
        Vec::new()
    } else {
        std::mem::take(&mut state.written)
    }
}

fn not_bytes(item: &Bound<'_, PyAny>) -> PyErr {
    let name = item.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    PyTypeError::new_err(format!("the application's iterable must yield bytes, not {name}"))
}

/// Turns the application's return value into the response (see the module documentation).
pub(crate) fn finish(
    py: Python<'_>,
    ctx: &Context<'_>,
    result: Bound<'_, PyAny>,
    start_response: &Bound<'_, StartResponse>,
) -> Response {
    #[cfg(unix)]
    if let Some(response) = file_response(py, ctx, &result, start_response) {
        return response;
    }
    let mut iter = match result.try_iter() {
        Ok(iter) => iter,
        Err(e) => return fail(py, ctx, e, start_response, Some(&result)),
    };
    let in_memory = result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>();
    let mut body = Vec::new();
    let mut done = false;
    loop {
        let item = match iter.next() {
            None => {
                done = true;
                break;
            }
            Some(Err(e)) => return fail(py, ctx, e, start_response, Some(&result)),
            Some(Ok(item)) => item,
        };
        let Ok(chunk) = item.cast::<PyBytes>() else {
            return fail(py, ctx, not_bytes(&item), start_response, Some(&result));
        };
        body.append(&mut take_written(start_response));
        let bytes = chunk.as_bytes();
        if bytes.is_empty() {
            continue;
        }
        body.extend_from_slice(bytes);
        let declared = start_response.borrow().head.as_ref().and_then(|h| h.content_length);
        if declared.is_some_and(|n| body.len() as u64 >= n) {
            done = true;
            break;
        }
        if !in_memory {
            break;
        }
    }
    body.append(&mut take_written(start_response));
    let Some(head) = start_response.borrow().head.clone() else {
        let err = PyRuntimeError::new_err("the application returned without calling start_response()");
        return fail(py, ctx, err, start_response, Some(&result));
    };
    start_response.borrow_mut().headers_sent = true;
    if done {
        close_result(py, &ctx.label(), &result);
        return with_head(&head, complete_body(body, head.content_length));
    }
    let chunks = AppIter {
        pending: Some(body),
        iter: Some(iter.unbind()),
        result: Some(result.unbind()),
        start_response: Some(start_response.clone().unbind()),
        // `body` is counted when the stream hands it over.
        remaining: head.content_length,
        label: ctx.label(),
    };
    with_head(&head, Body::Stream { chunks: Box::new(chunks), len: head.content_length })
}

/// A [`FileWrapper`] around a regular file: the file itself as the body.
#[cfg(unix)]
fn file_response(
    py: Python<'_>,
    ctx: &Context<'_>,
    result: &Bound<'_, PyAny>,
    start_response: &Bound<'_, StartResponse>,
) -> Option<Response> {
    use std::io::{Seek, SeekFrom};
    let wrapper = result.cast::<FileWrapper>().ok()?;
    let head = {
        let state = start_response.borrow();
        if !state.written.is_empty() {
            return None;
        }
        state.head.clone()?
    };
    let filelike = wrapper.get().filelike.clone_ref(py).into_bound(py);
    // `tell()` first: the descriptor is taken and duplicated last, with no Python code after.
    let position: u64 = filelike.call_method0(intern!(py, "tell")).ok()?.extract().ok()?;
    let mut file = super::raw::duplicate_file(&filelike)?.ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let available = meta.len().saturating_sub(position);
    let len = match head.content_length {
        None => available,
        Some(n) if n <= available => n,
        // Declared longer than the file: the stream path closes the connection after it.
        Some(_) => return None,
    };
    file.seek(SeekFrom::Start(position)).ok()?;
    start_response.borrow_mut().headers_sent = true;
    close_result(py, &ctx.label(), result);
    Some(with_head(&head, Body::File { file, len }))
}

/// The rest of the application's iterable, pulled on the worker thread one chunk at a time.
pub(crate) struct AppIter {
    /// Bytes already pulled (the first chunk, and `write()` data before it).
    pending: Option<Vec<u8>>,
    /// `None` once exhausted, failed or stopped.
    iter: Option<Py<PyIterator>>,
    /// The iterable, until its `close()` has been called.
    result: Option<Py<PyAny>>,
    /// For `write()` calls made while iterating.
    start_response: Option<Py<StartResponse>>,
    /// Bytes left before the application's `Content-Length` is reached.
    remaining: Option<u64>,
    /// `METHOD target`, for log records.
    label: String,
}

impl AppIter {
    fn count(&mut self, chunk: Vec<u8>) -> Vec<u8> {
        if let Some(remaining) = &mut self.remaining {
            *remaining = remaining.saturating_sub(chunk.len() as u64);
        }
        chunk
    }

    /// Stops iterating and calls `close()`.
    fn finish(&mut self, py: Python<'_>) {
        self.iter = None;
        self.start_response = None;
        if let Some(result) = self.result.take() {
            close_result(py, &self.label, result.bind(py));
        }
    }

    fn pull(&mut self, py: Python<'_>) -> Option<io::Result<Vec<u8>>> {
        let mut iter = self.iter.as_ref()?.bind(py).clone();
        loop {
            let item = match iter.next() {
                None => {
                    self.finish(py);
                    return None;
                }
                Some(Ok(item)) => item,
                Some(Err(e)) => return Some(Err(self.failed(py, e))),
            };
            let Ok(chunk) = item.cast::<PyBytes>() else {
                let err = not_bytes(&item);
                return Some(Err(self.failed(py, err)));
            };
            let mut data = match &self.start_response {
                Some(sr) => take_written(sr.bind(py)),
                None => Vec::new(),
            };
            data.extend_from_slice(chunk.as_bytes());
            if !data.is_empty() {
                return Some(Ok(self.count(data)));
            }
        }
    }

    fn failed(&mut self, py: Python<'_>, err: PyErr) -> io::Error {
        log::error!(target: TARGET, "{}: application error after the response started:\n{}", self.label, format_exception(py, &err));
        self.finish(py);
        io::Error::other(format!("the application failed: {err}"))
    }
}

impl Iterator for AppIter {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(chunk) = self.pending.take() {
            return Some(Ok(self.count(chunk)));
        }
        self.iter.as_ref()?;
        if self.remaining == Some(0) {
            // Enough for the Content-Length: stop iterating (PEP 3333).
            Python::try_attach(|py| self.finish(py));
            return None;
        }
        Python::try_attach(|py| self.pull(py))
            .unwrap_or_else(|| Some(Err(io::Error::other("the Python interpreter is shutting down"))))
    }
}

impl Drop for AppIter {
    fn drop(&mut self) {
        if self.result.is_some() || self.iter.is_some() {
            Python::try_attach(|py| self.finish(py));
        }
    }
}
