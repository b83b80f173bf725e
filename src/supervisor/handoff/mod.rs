//! The connection handoff: with worker processes, the supervisor accepts every connection and
//! hands it to one worker, on every platform.
//!
//! Why the supervisor accepts, instead of every worker accepting on shared listeners: a burst
//! of new connections on a shared listen queue goes to whichever process wakes first, and
//! keep-alive connections never move afterwards, so one worker could hold all of a client's
//! connections while the other cores idle (measured: 16 connections opened at once went 14/2
//! or 1/15 over two workers). One acceptor that chooses sees every worker and spreads a burst
//! evenly. It is also the only design that works on Windows, where several processes
//! accepting on one listener is where servers go wrong (Granian forces one worker there;
//! `socket.share` of a listener has a trail of bugs), so the two platforms share one shape.
//! The cost is the supervisor's accept and one message per new connection, never per request.
//!
//! Owns moving accepted connections between processes: the supervisor's accept loop
//! ([`dispatch`]) and its choice of worker ([`roster`]), the platform transport (Unix:
//! [`unix`], the descriptor beside a `socket` line on the worker's standard input, a Unix
//! socket pair; Windows: [`winsock`], the socket duplicated for the worker's process id and
//! written into the line), and the worker's taking of a handed connection ([`receive`]).
//! Never spawns a process or decides a worker's life (the arbiter does) and never runs the
//! engine.

#[cfg(any(unix, windows))]
pub(crate) mod dispatch;
#[cfg(any(unix, windows))]
pub(crate) mod receive;
pub(crate) mod roster;
#[cfg(unix)]
pub(crate) mod unix;
pub(crate) mod winsock;

#[cfg(unix)]
pub(crate) use unix::Parcel;
#[cfg(windows)]
pub(crate) use winsock::Parcel;

/// Tests of the transports: `client` and `adopted` are the two ends of one connection (bytes
/// cross both ways).
#[cfg(test)]
pub(crate) fn assert_one_connection(
    client: &mut (impl std::io::Read + std::io::Write),
    adopted: &mut (impl std::io::Read + std::io::Write),
) {
    client.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    adopted.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    adopted.write_all(b"pong").unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
}
