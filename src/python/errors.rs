//! `wsgi.errors`: a text stream whose lines become error log records.
//!
//! Each complete line written is one record at error level with target `maitred::wsgi` (so
//! `print(..., file=environ["wsgi.errors"])`, which writes the text and the newline
//! separately, still makes one record). `flush()`, and the end of the request, log what is
//! left of an unfinished line. Where records go is up to the installed `log` logger: with the
//! Python front end, Python's `logging` (logger `maitred.wsgi`).
//!
//! Never writes to stdout or stderr itself, and never blocks a worker on the log's output.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyString;

/// Log target of `wsgi.errors` lines and application tracebacks.
pub(crate) const TARGET: &str = "maitred::wsgi";

/// The `wsgi.errors` stream of one request. Safe to share between threads: the lock is never
/// held while a record is logged (logging may run Python code and release the GIL).
#[pyclass(module = "maitred._maitred", name = "Errors", frozen)]
#[derive(Default)]
pub(crate) struct Errors {
    /// Text of a line not yet ended by `\n`.
    partial: Mutex<String>,
}

impl Errors {
    /// Appends `text` and takes out the lines it completes (all that is left with `flush`).
    fn take_lines(&self, text: &str, flush: bool) -> Vec<String> {
        let mut partial = self.partial.lock().unwrap_or_else(|e| e.into_inner());
        partial.push_str(text);
        let mut lines = Vec::new();
        while let Some(end) = partial.find('\n') {
            let line: String = partial.drain(..=end).collect();
            lines.push(line.trim_end_matches(['\n', '\r']).to_string());
        }
        if flush && !partial.is_empty() {
            lines.push(std::mem::take(&mut *partial));
        }
        lines
    }

    fn log(lines: Vec<String>) {
        for line in lines {
            log::error!(target: TARGET, "{line}");
        }
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        Errors::log(self.take_lines("", true));
    }
}

#[pymethods]
impl Errors {
    /// Writes `text`; every completed line is logged. Returns the number of characters.
    fn write(&self, text: &Bound<'_, PyString>) -> PyResult<usize> {
        let text = text.to_cow()?;
        Errors::log(self.take_lines(&text, false));
        Ok(text.chars().count())
    }

    /// Writes each string of `lines`.
    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(line?.cast::<PyString>()?)?;
        }
        Ok(())
    }

    /// Logs what is left of an unfinished line.
    fn flush(&self) {
        Errors::log(self.take_lines("", true));
    }

    /// Always true.
    fn writable(&self) -> bool {
        true
    }
}
