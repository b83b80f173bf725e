//! One TLS connection over a non-blocking socket: rustls's state machine fed from and flushed to
//! the socket as the I/O loop finds it ready. Owns the rustls connection and its socket.
//! Never blocks and never waits: every call does what the socket allows now and says
//! `WouldBlock` otherwise.
//!
//! The handshake happens inside [`TlsStream::read`]: until it completes a read returns
//! `WouldBlock`, so the connection stays in its first idle phase, whose deadline
//! (`header_timeout` from accept) cuts a client that stalls its handshake like a slow head.
//!
//! Output: plaintext is taken only when no ciphertext waits for the socket, and at most
//! [`PLAINTEXT_PER_WRITE`] at a time, so a connection holds at most one such batch of records
//! beyond what the response writer holds. The connection asks for writability while
//! [`TlsStream::pending_output`] and finishes a response only once it is flushed.
//! Input: rustls decrypts whole records and keeps the plaintext the caller had no room for;
//! the poller cannot see it, so the loop asks [`TlsStream::buffered_input`] before it waits.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

use rustls::ServerConnection;

use crate::engine::net::Stream;
use crate::engine::sys::Registered;
use crate::tls::TlsInfo;

/// Plaintext taken per write at most (one full TLS record).
const PLAINTEXT_PER_WRITE: usize = 16 * 1024;
/// Socket reads per call that yield no plaintext (handshake messages, alerts, empty records)
/// before the call gives the other connections a turn; the poller reports the rest.
const READS_WITHOUT_PLAINTEXT: usize = 8;

/// A TLS server connection over a registered socket.
pub(crate) struct TlsStream {
    socket: Registered<Stream>,
    state: RefCell<State>,
}

struct State {
    conn: ServerConnection,
    /// What the handshake settled, once it has (computed once per connection).
    info: Option<Arc<TlsInfo>>,
    close_sent: bool,
    /// Decrypted input may be left over: the last read filled the caller's buffer, or stopped
    /// after [`READS_WITHOUT_PLAINTEXT`] with records processed. False after a read that drained
    /// everything, so the loop's check before it sleeps costs nothing on a keep-alive connection.
    maybe_buffered: bool,
}

/// Writes every pending TLS record the socket takes now; `WouldBlock` when some are left.
fn send_pending(conn: &mut ServerConnection, socket: &Stream) -> io::Result<()> {
    while conn.wants_write() {
        match conn.write_tls(&mut &*socket) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `Ok` for `WouldBlock` (what is left goes out when the socket is writable).
fn tolerate_blocking(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other,
    }
}

impl TlsStream {
    /// A server-side TLS connection with `config` over `socket` (nothing is read yet).
    pub(crate) fn new(socket: Registered<Stream>, config: Arc<rustls::ServerConfig>) -> io::Result<TlsStream> {
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsStream {
            socket,
            state: RefCell::new(State { conn, info: None, close_sent: false, maybe_buffered: false }),
        })
    }

    /// The registered socket (for re-arming the poller).
    pub(crate) fn socket(&self) -> &Registered<Stream> {
        &self.socket
    }

    /// Reads decrypted bytes: what rustls holds, else what arrives on the socket. `Ok(0)` at
    /// the client's close (with or without `close_notify`); an error for a failed handshake or
    /// a bad record, after the alert that says why has been offered to the socket.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let state = &mut *self.state.borrow_mut();
        let socket = self.socket.get();
        for _ in 0..READS_WITHOUT_PLAINTEXT {
            match state.conn.reader().read(buf) {
                Ok(n) => {
                    state.maybe_buffered = n > 0 && n == buf.len();
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match state.conn.read_tls(&mut &*socket) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Nothing decrypted is left (the reader was empty) and the socket is.
                    state.maybe_buffered = false;
                    return Err(e);
                }
            }
            let processed = state.conn.process_new_packets();
            // The handshake's answer, or the alert that explains a failure.
            let sent = tolerate_blocking(send_pending(&mut state.conn, socket));
            processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            sent?;
        }
        state.maybe_buffered = true;
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// Takes up to one record of plaintext once earlier records are out, encrypts it and
    /// sends what the socket takes. `WouldBlock` while earlier records still wait.
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let state = &mut *self.state.borrow_mut();
        let socket = self.socket.get();
        send_pending(&mut state.conn, socket)?;
        let n = state.conn.writer().write(&buf[..buf.len().min(PLAINTEXT_PER_WRITE)])?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        tolerate_blocking(send_pending(&mut state.conn, socket))?;
        Ok(n)
    }

    /// Encrypted bytes wait for the socket.
    pub(crate) fn pending_output(&self) -> bool {
        self.state.borrow().conn.wants_write()
    }

    /// Sends what waits; `Ok(true)` once nothing is left.
    pub(crate) fn flush_output(&self) -> io::Result<bool> {
        let state = &mut *self.state.borrow_mut();
        tolerate_blocking(send_pending(&mut state.conn, self.socket.get()))?;
        Ok(!state.conn.wants_write())
    }

    /// Decrypted bytes wait to be read (the poller cannot see them).
    pub(crate) fn buffered_input(&self) -> bool {
        let state = &mut *self.state.borrow_mut();
        state.maybe_buffered && state.conn.process_new_packets().is_ok_and(|io| io.plaintext_bytes_to_read() > 0)
    }

    /// Sends `close_notify` (as far as the socket takes it), then shuts the write side.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        self.close_notify();
        self.socket.get().shutdown(Shutdown::Write)
    }

    /// Queues `close_notify` (once) behind what waits; [`TlsStream::flush_output`] sends it.
    pub(crate) fn queue_close_notify(&self) {
        let state = &mut *self.state.borrow_mut();
        if !state.close_sent {
            state.close_sent = true;
            state.conn.send_close_notify();
        }
    }

    fn close_notify(&self) {
        self.queue_close_notify();
        let state = &mut *self.state.borrow_mut();
        let _ = send_pending(&mut state.conn, self.socket.get());
    }

    /// What the handshake settled (version, suite, verified client), once it is done.
    pub(crate) fn info(&self) -> Option<Arc<TlsInfo>> {
        let state = &mut *self.state.borrow_mut();
        if state.info.is_none() && !state.conn.is_handshaking() {
            state.info = Some(Arc::new(TlsInfo::of(&state.conn)));
        }
        state.info.clone()
    }
}

impl Drop for TlsStream {
    /// Every close says `close_notify`, as far as the socket takes it without waiting.
    fn drop(&mut self) {
        self.close_notify();
    }
}
