//! The only `unsafe` code of the WSGI front end: a worker thread's interpreter thread state,
//! and duplicating the file descriptor a Python file object owns.
//!
//! Each worker thread attaches to the interpreter once, in [`attach_worker_thread`]: that
//! creates its Python thread state (`PyGILState_Ensure`) and at once releases the GIL again
//! (`PyEval_SaveThread`) while *keeping* the thread state. Every later `Python::attach` on that
//! thread (one per request, one per streamed chunk) then finds the existing thread state: CPython's
//! `PyGILState_Ensure` only swaps it back in and takes the GIL, and the matching release only
//! drops the GIL, because the counter this module holds keeps the state alive. Without it, each
//! attach would create and destroy a thread state (and lose `threading.local()` data).
//! [`detach_worker_thread`] undoes both calls in reverse order when the worker stops.
#![allow(unsafe_code)]

use std::cell::Cell;

use pyo3::ffi;
#[cfg(unix)]
use pyo3::{intern, prelude::*, sync::critical_section::with_critical_section};

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

/// A new, independent descriptor (close-on-exec) for the open file behind the Python file
/// object `filelike`, as a `File`; `None` when its `fileno()` fails or the duplication does.
///
/// Taking the owning object keeps the contract in one place: `fileno()` is called and its
/// descriptor duplicated while no other thread can close the file through `filelike`. With the
/// GIL, no Python code runs between the two; on free-threaded Python both happen inside the
/// object's critical section, which the standard file objects' `close()` also takes.
#[cfg(unix)]
pub(crate) fn duplicate_file(filelike: &Bound<'_, PyAny>) -> Option<std::fs::File> {
    use std::os::fd::BorrowedFd;
    let py = filelike.py();
    with_critical_section(filelike, || {
        let fd: i32 = filelike.call_method0(intern!(py, "fileno")).ok()?.extract().ok()?;
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is open for the whole borrow: `filelike` just returned it as its own
        // descriptor, the caller keeps `filelike` alive, and nothing can close it through
        // `filelike` before the duplicate exists (the GIL, or the object's critical section).
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        borrowed.try_clone_to_owned().ok().map(std::fs::File::from)
    })
}
