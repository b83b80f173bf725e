//! The only `unsafe` code of the WSGI front end: a worker thread's interpreter thread state,
//! and duplicating the file descriptor of a built-in Python file object ([`duplicate_file`]).
//!
//! Each worker thread attaches to the interpreter once, in [`attach_worker_thread`]: that
//! creates its Python thread state (`PyGILState_Ensure`) and at once releases the GIL again
//! (`PyEval_SaveThread`) while *keeping* the thread state. Every later `Python::attach` on that
//! thread (one per request, one per streamed chunk) then finds the existing thread state: CPython's
//! `PyGILState_Ensure` only swaps it back in and takes the GIL, and the matching release only
//! drops the GIL, because the counter this module holds keeps the state alive. Without it, each
//! attach would create and destroy a thread state (and lose `threading.local()` data).
//! [`detach_worker_thread`] undoes both calls in reverse order when the worker stops.
//!
//! Holds no state of its own beyond the per-thread counter; never called from the I/O loop.
#![allow(unsafe_code)]

use std::cell::Cell;

use pyo3::ffi;
#[cfg(unix)]
use pyo3::sync::critical_section::with_critical_section;

thread_local! {
    /// What `attach_worker_thread` took on this thread, to give back in `detach_worker_thread`.
    static WORKER_STATE: Cell<Option<(ffi::PyGILState_STATE, *mut ffi::PyThreadState)>> = const { Cell::new(None) };
}

/// Creates this thread's interpreter thread state and keeps it, detached, until
/// [`detach_worker_thread`]. Does nothing if the interpreter is not running or the thread is
/// already set up. Must be called while this thread is not attached (pyo3 holds no guard).
pub(crate) fn attach_worker_thread() {
    if WORKER_STATE.with(Cell::get).is_some() {
        return;
    }
    // SAFETY: `Py_IsInitialized` may be called at any time, attached or not.
    if unsafe { ffi::Py_IsInitialized() } == 0 {
        return;
    }
    // SAFETY: the interpreter is initialized and this thread is not attached (the worker pool
    // calls this before its first job, outside any `Python::attach`), so `PyGILState_Ensure`
    // creates this thread's state and takes the GIL; `PyEval_SaveThread` then releases the
    // GIL and returns that state, which stays registered for this thread.
    let saved = unsafe {
        let gstate = ffi::PyGILState_Ensure();
        let tstate = ffi::PyEval_SaveThread();
        (gstate, tstate)
    };
    WORKER_STATE.with(|cell| cell.set(Some(saved)));
}

/// Gives back what [`attach_worker_thread`] took: the thread state is deleted. Does nothing on a
/// thread that was not set up.
pub(crate) fn detach_worker_thread() {
    let Some((gstate, tstate)) = WORKER_STATE.with(Cell::take) else { return };
    // SAFETY: `tstate` came from `PyEval_SaveThread` on this thread and has not been restored
    // since (every `Python::attach` in between restored and saved it in pairs); restoring it
    // retakes the GIL, and `PyGILState_Release` with the state `PyGILState_Ensure` returned
    // drops the last reference, deleting the thread state and releasing the GIL.
    unsafe {
        ffi::PyEval_RestoreThread(tstate);
        ffi::PyGILState_Release(gstate);
    }
}

/// A new, independent descriptor (close-on-exec) for the open file behind `filelike`, when
/// it is exactly a built-in `io.FileIO`, or exactly an `io.BufferedReader` or
/// `io.BufferedRandom` over one (what `open(path, "rb")` and `tempfile.TemporaryFile()`
/// return); `None` for anything else, which the caller then reads through Python.
///
/// Only those exact types are trusted, because only for them does `fileno()` run no Python
/// code: it is CPython's C method, which fails on a closed file and otherwise returns the
/// descriptor the object holds. The GIL is held from that call to the duplication and no
/// Python code runs in between, so no thread can close the descriptor (and no other file can
/// take its number) before the duplicate exists. On free-threaded Python, where the GIL does not
/// stop other threads, the call and the duplication happen inside the file object's critical
/// section, which `FileIO.close()` also takes. A subclass or a file-like object of its own could
/// return any number from `fileno()`, or close the file in a `tell()` or `__index__`.
#[cfg(unix)]
pub(crate) fn duplicate_file(filelike: &pyo3::Bound<'_, pyo3::PyAny>) -> Option<std::io::Result<std::fs::File>> {
    use pyo3::prelude::*;
    use pyo3::types::PyInt;
    use std::os::fd::BorrowedFd;

    let py = filelike.py();
    let io = py.import(pyo3::intern!(py, "io")).ok()?;
    let is_exactly =
        |object: &Bound<'_, PyAny>, name: &str| io.getattr(name).is_ok_and(|class| object.get_type().is(&class));
    let raw = if is_exactly(filelike, "FileIO") {
        filelike.clone()
    } else if is_exactly(filelike, "BufferedReader") || is_exactly(filelike, "BufferedRandom") {
        // `raw` is a C getter of the buffered object.
        let raw = filelike.getattr(pyo3::intern!(py, "raw")).ok()?;
        if !is_exactly(&raw, "FileIO") {
            return None;
        }
        raw
    } else {
        return None;
    };
    with_critical_section(&raw, || {
        let fd = raw.call_method0(pyo3::intern!(py, "fileno")).ok()?;
        // Exactly an `int` (FileIO's C `fileno` returns one): extracting it runs no Python code.
        let fd: i32 = fd.cast_exact::<PyInt>().ok()?.extract().ok()?;
        if fd < 0 {
            return Some(Err(std::io::Error::from(std::io::ErrorKind::InvalidInput)));
        }
        // SAFETY: `fd` is open for the whole borrow: `FileIO.fileno()` (C code) just returned
        // it from an open file object that `filelike` keeps alive, and since then this thread
        // has run no Python code and holds the GIL (or, free-threaded, the object's critical
        // section, which `close()` needs), so nothing has closed it (see the function docs).
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        Some(borrowed.try_clone_to_owned().map(std::fs::File::from))
    })
}
