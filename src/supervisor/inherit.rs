//! Unix: listening sockets passed from the supervisor to its workers by inheritance. The
//! supervisor clears close-on-exec on the sockets it bound, so every worker it spawns starts
//! with them open, and names their descriptors in [`super::LISTEN_FDS_VAR`]; the worker
//! adopts them.
//!
//! Owns the one `unsafe` step of that: taking ownership of an inherited descriptor. Never
//! binds or accepts.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::engine::net::Listener;

/// Clears close-on-exec on `listeners` (so workers inherit them) and returns the value of
/// [`super::LISTEN_FDS_VAR`] that names them.
pub(crate) fn share(listeners: &[Listener]) -> io::Result<String> {
    let mut fds = Vec::with_capacity(listeners.len());
    for listener in listeners {
        socket2::SockRef::from(listener).set_cloexec(false)?;
        fds.push(listener.as_raw_fd().to_string());
    }
    Ok(fds.join(","))
}

/// Parses [`super::LISTEN_FDS_VAR`]'s value.
fn parse_fds(text: &str) -> Result<Vec<RawFd>, String> {
    text.split(',')
        .map(|part| part.trim().parse::<RawFd>().ok().filter(|fd| *fd > 2))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("{} = {text:?} is not a list of descriptors", super::LISTEN_FDS_VAR))
}

/// Whether `fd` is an open listening stream socket of this process (so adopting it cannot
/// take over a descriptor something else owns).
fn is_listening_socket(fd: RawFd) -> bool {
    // SAFETY: the borrow lives only for this check, during which nothing in this process
    // closes `fd`: it is one of the descriptors the supervisor named, which nothing else in a
    // starting worker knows about. An fd that is not open makes the socket calls fail (EBADF).
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let socket = socket2::SockRef::from(&borrowed);
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let listening = socket.is_listener().unwrap_or(false);
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let listening = true; // no SO_ACCEPTCONN: the type check is what there is
    matches!(socket.r#type(), Ok(socket2::Type::STREAM)) && listening
}

/// Adopts the listeners named by `text` ([`super::LISTEN_FDS_VAR`]), in order, as the
/// worker's own: non-blocking, close-on-exec again (so what the application spawns does not
/// hold them), and a Unix socket's file left to the supervisor.
pub(crate) fn adopt(text: &str) -> Result<Vec<Listener>, String> {
    let fds = parse_fds(text)?;
    let mut listeners = Vec::with_capacity(fds.len());
    for fd in fds {
        if !is_listening_socket(fd) {
            return Err(format!("inherited descriptor {fd} is not a listening socket"));
        }
        // SAFETY: `fd` is open and a listening socket (checked above), was inherited from the
        // supervisor for this purpose, and is adopted exactly once (`parse_fds` order, each
        // named once by the supervisor): from here the `OwnedFd` is its only owner.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        listeners.push(listener_from(owned).map_err(|e| format!("inherited descriptor {fd}: {e}"))?);
    }
    Ok(listeners)
}

fn listener_from(owned: OwnedFd) -> io::Result<Listener> {
    let socket = socket2::Socket::from(owned);
    socket.set_cloexec(true)?;
    socket.set_nonblocking(true)?;
    if socket.local_addr()?.as_socket().is_some() {
        return Ok(Listener::Tcp(socket.into()));
    }
    let unix: std::os::unix::net::UnixListener = std::os::unix::net::UnixListener::from(OwnedFd::from(socket));
    let path = unix
        .local_addr()?
        .as_pathname()
        .map(std::path::Path::to_path_buf)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "an inherited Unix socket has no path"))?;
    Ok(Listener::Unix(unix, path, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_lists_parse_and_standard_streams_are_refused() {
        assert_eq!(parse_fds("3,4, 7").unwrap(), vec![3, 4, 7]);
        for bad in ["", "x", "3,,4", "1", "-5"] {
            assert!(parse_fds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_descriptor_that_is_no_listener_is_refused() {
        let file = tempfile::tempfile().unwrap();
        let fd = file.as_raw_fd();
        assert!(!is_listening_socket(fd));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(is_listening_socket(listener.as_raw_fd()));
    }
}
