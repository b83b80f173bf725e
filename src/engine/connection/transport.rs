//! The socket under a connection in the server: plain, or TLS ([`crate::tls::stream`]).
//! Owns the choice between the two. Never reads a request: it moves bytes.
//!
//! One enum instead of two connection types: the plain path pays one predictable branch per
//! system call, and the loop's connection table stays one type.

use std::io;
use std::net::Shutdown;
use std::sync::Arc;

use polling::Event;

use super::Transport;
use crate::engine::net::Stream;
use crate::engine::sys::Registered;
use crate::tls::stream::TlsStream;
use crate::tls::TlsInfo;

/// A registered client socket, plain or TLS.
pub(crate) enum Io {
    Plain(Registered<Stream>),
    Tls(Box<TlsStream>),
}

impl Io {
    /// Changes what the poller watches this socket for (see [`Registered::rearm`]).
    pub(crate) fn rearm(&self, interest: Event) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.rearm(interest),
            Io::Tls(t) => t.socket().rearm(interest),
        }
    }
}

impl Transport for Io {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::Read;
        match self {
            Io::Plain(s) => s.get().read(buf),
            Io::Tls(t) => t.read(buf),
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        use std::io::Write;
        match self {
            Io::Plain(s) => s.get().write(buf),
            Io::Tls(t) => t.write(buf),
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.get().shutdown(Shutdown::Write),
            Io::Tls(t) => t.shutdown_write(),
        }
    }

    fn pending_output(&self) -> bool {
        match self {
            Io::Plain(_) => false,
            Io::Tls(t) => t.pending_output(),
        }
    }

    fn flush_output(&self) -> io::Result<bool> {
        match self {
            Io::Plain(_) => Ok(true),
            Io::Tls(t) => t.flush_output(),
        }
    }

    fn queue_close_notify(&self) {
        if let Io::Tls(t) = self {
            t.queue_close_notify();
        }
    }

    fn buffered_input(&self) -> bool {
        match self {
            Io::Plain(_) => false,
            Io::Tls(t) => t.buffered_input(),
        }
    }

    fn tls_info(&self) -> Option<Arc<TlsInfo>> {
        match self {
            Io::Plain(_) => None,
            Io::Tls(t) => t.info(),
        }
    }

    /// `sendfile(2)` on Linux, for plain TCP and Unix sockets; TLS cannot (the bytes must be
    /// encrypted in user space), so its file bodies are read and written in pieces.
    #[cfg(target_os = "linux")]
    fn send_file(&self, file: &std::fs::File, len: usize) -> Option<io::Result<usize>> {
        match self {
            Io::Plain(s) => Some(rustix::fs::sendfile(s.get(), file, None, len).map_err(io::Error::from)),
            Io::Tls(_) => None,
        }
    }

    /// `send(MSG_MORE)` on Linux plain TCP sockets (the head and the start of the file then
    /// share packets, as nginx's `tcp_nopush` does).
    #[cfg(target_os = "linux")]
    fn write_before_file(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => match s.get() {
                Stream::Tcp(tcp) => rustix::net::send(tcp, buf, rustix::net::SendFlags::MORE).map_err(io::Error::from),
                _ => self.write(buf),
            },
            Io::Tls(_) => self.write(buf),
        }
    }
}
