//! A worker process's side of the Windows handoff: the control line `socket <listener> <hex>`
//! becomes a connection of this process's engine, admitted exactly as its own acceptor would
//! admit one ([`crate::engine::acceptor::admit`]).
//!
//! Owns turning one control line into one admitted connection. Never reads from the
//! connection (the I/O loop does) and never talks back to the supervisor.

use log::{debug, warn};

use super::handoff::{adopt, SocketLine};
use crate::engine::acceptor::admit;
use crate::engine::Shared;

/// Takes the connection of one `socket` line (`args`: what follows `socket `) into the engine.
/// A failure is logged and the connection closed: the client sees its connection end, never
/// a hang.
pub(crate) fn take_connection(shared: &Shared, args: &str) {
    let Some(line) = SocketLine::decode_args(args) else {
        warn!(target: "maitred::server", "malformed socket line from the supervisor ignored");
        return;
    };
    let stream = match adopt(&line.payload) {
        Ok(stream) => stream,
        Err(e) => {
            warn!(target: "maitred::server", "cannot take a connection from the supervisor: {e}");
            return;
        }
    };
    let peer = stream.peer_addr().ok();
    if let Err(e) = admit(shared, stream, line.listener) {
        warn!(target: "maitred::server", "connection from {peer:?} (listener {}) closed: {e}", line.listener);
        return;
    }
    debug!(target: "maitred::server", "took connection from {peer:?} on listener {}", line.listener);
}
