//! A worker process's side of the handoff: the control message `socket <listener> ...` becomes
//! a connection of this process's engine, admitted exactly as its own acceptor would admit one
//! ([`crate::engine::acceptor::admit`]).
//!
//! Owns turning one such message into one admitted connection. Never reads from the
//! connection (the I/O loop does) and never talks back to the supervisor.

use log::{debug, warn};

use crate::engine::acceptor::admit;
use crate::engine::Shared;
use crate::supervisor::channel::{Down, SOCKET};

/// Takes the connection of one `socket` message into the engine. A failure is logged and the
/// connection closed: the client sees its connection end, never a hang.
pub(crate) fn take_connection(shared: &Shared, message: Down) {
    let args = message.line.strip_prefix(SOCKET).unwrap_or_default().trim_start();
    #[cfg(unix)]
    let unpacked = super::unix::unpack(args, message.connection);
    #[cfg(windows)]
    let unpacked = super::winsock::unpack(args);
    let (listener, stream) = match unpacked {
        Ok(received) => received,
        Err(e) => {
            warn!(target: "maitred::server", "cannot take a connection from the supervisor: {e}");
            return;
        }
    };
    if let Err(e) = admit(shared, stream, listener) {
        warn!(target: "maitred::server", "a connection on listener {listener} closed: {e}");
        return;
    }
    debug!(target: "maitred::server", "took a connection on listener {listener}");
}
