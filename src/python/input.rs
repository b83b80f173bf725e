//! `wsgi.input`: the request body as a read-only binary stream.
//!
//! The body is complete before the application runs (in memory, or spooled to a temporary
//! file past `body_spool_threshold`), so no read ever waits for the client; reads stop at the
//! end of the body, which is why `wsgi.input_terminated` is true. Reading a spooled body
//! releases the GIL while the disk is read.
//!
//! Never reads from the client's socket: the body was received by the I/O loop.

use std::io::{self, BufRead, BufReader, Read};

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::http1::request::RequestBody;

/// Read buffer for a spooled body.
const FILE_BUFFER: usize = 64 * 1024;

enum Source {
    /// The whole body, and how much of it was read.
    Memory { data: Vec<u8>, pos: usize },
    /// A spooled body, and how many bytes are left in it.
    File { reader: BufReader<RequestBody>, left: u64 },
}

/// The request body: `read(size=-1)`, `readline(size=-1)`, `readlines(hint=-1)` and line
/// iteration, as PEP 3333 asks of `wsgi.input`. A negative or `None` size means "to the end".
#[pyclass(module = "maitred._maitred", name = "Input")]
pub(crate) struct Input {
    source: Source,
}

impl Input {
    /// Wraps a complete request body.
    pub(crate) fn new(body: RequestBody) -> io::Result<Input> {
        let left = body.len();
        let source = if body.is_spooled() {
            Source::File { reader: BufReader::with_capacity(FILE_BUFFER, body), left }
        } else {
            Source::Memory { data: body.into_bytes()?, pos: 0 }
        };
        Ok(Input { source })
    }
}

/// `None` or a negative size: no limit.
fn limit(size: Option<i64>) -> Option<usize> {
    size.and_then(|n| usize::try_from(n).ok())
}

fn os_error(e: io::Error) -> PyErr {
    PyOSError::new_err(format!("cannot read the request body: {e}"))
}

impl Source {
    fn is_file(&self) -> bool {
        matches!(self, Source::File { .. })
    }

    /// Up to `max` bytes (all that is left with `None`).
    fn read(&mut self, max: Option<usize>) -> io::Result<Vec<u8>> {
        match self {
            Source::Memory { data, pos } => {
                let start = (*pos).min(data.len());
                let end = max.map_or(data.len(), |n| start.saturating_add(n).min(data.len()));
                *pos = end;
                Ok(data[start..end].to_vec())
            }
            Source::File { reader, left } => {
                let want = max.map_or(*left, |n| (n as u64).min(*left));
                let mut out = Vec::with_capacity(want as usize);
                reader.by_ref().take(want).read_to_end(&mut out)?;
                *left -= out.len() as u64;
                Ok(out)
            }
        }
    }

    /// One line, with its `\n`, of at most `max` bytes; empty at the end.
    fn readline(&mut self, max: Option<usize>) -> io::Result<Vec<u8>> {
        match self {
            Source::Memory { data, pos } => {
                let start = (*pos).min(data.len());
                let window_end = max.map_or(data.len(), |n| start.saturating_add(n).min(data.len()));
                let window = &data[start..window_end];
                let end = window.iter().position(|&b| b == b'\n').map_or(window_end, |i| start + i + 1);
                *pos = end;
                Ok(data[start..end].to_vec())
            }
            Source::File { reader, left } => {
                let mut out = Vec::new();
                let mut room = max.unwrap_or(usize::MAX);
                while room > 0 {
                    let available = reader.fill_buf()?;
                    if available.is_empty() {
                        break;
                    }
                    let window = &available[..available.len().min(room)];
                    let (take, done) = match window.iter().position(|&b| b == b'\n') {
                        Some(i) => (i + 1, true),
                        None => (window.len(), false),
                    };
                    out.extend_from_slice(&window[..take]);
                    reader.consume(take);
                    room -= take;
                    if done {
                        break;
                    }
                }
                *left -= out.len() as u64;
                Ok(out)
            }
        }
    }

    /// Lines until the end, or until their total size exceeds `hint` (when positive), as
    /// `io.IOBase.readlines` does.
    fn readlines(&mut self, hint: Option<usize>) -> io::Result<Vec<Vec<u8>>> {
        let mut lines = Vec::new();
        let mut total = 0usize;
        loop {
            let line = self.readline(None)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.push(line);
            if hint.is_some_and(|h| h > 0 && total > h) {
                break;
            }
        }
        Ok(lines)
    }
}

impl Input {
    /// Runs `op` on the body, without the GIL when it reads from disk.
    fn with_source<T: Send>(
        &mut self,
        py: Python<'_>,
        op: impl FnOnce(&mut Source) -> io::Result<T> + Send,
    ) -> PyResult<T> {
        let source = &mut self.source;
        let result = if source.is_file() { py.detach(move || op(source)) } else { op(source) };
        result.map_err(os_error)
    }
}

#[pymethods]
impl Input {
    /// Reads up to `size` bytes; all that is left when `size` is negative or `None`.
    #[pyo3(signature = (size = None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.with_source(py, |s| s.read(limit(size)))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Reads one line (up to and including `\n`), at most `size` bytes when `size` is given.
    #[pyo3(signature = (size = None))]
    fn readline<'py>(&mut self, py: Python<'py>, size: Option<i64>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.with_source(py, |s| s.readline(limit(size)))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Reads the remaining lines; stops once their total size exceeds `hint` when `hint` is
    /// positive (as `io.IOBase.readlines`).
    #[pyo3(signature = (hint = None))]
    fn readlines<'py>(&mut self, py: Python<'py>, hint: Option<i64>) -> PyResult<Bound<'py, PyList>> {
        let lines = self.with_source(py, |s| s.readlines(limit(hint)))?;
        PyList::new(py, lines.iter().map(|line| PyBytes::new(py, line)))
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.with_source(py, |s| s.readline(None))?;
        Ok(if line.is_empty() { None } else { Some(PyBytes::new(py, &line)) })
    }

    /// Always true.
    fn readable(&self) -> bool {
        true
    }

    /// Not seekable.
    fn seekable(&self) -> bool {
        false
    }

    /// Not writable.
    fn writable(&self) -> bool {
        false
    }

    /// Does nothing: the server owns the body.
    fn close(&self) {}
}
