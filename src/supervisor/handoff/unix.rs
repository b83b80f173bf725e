//! The Unix connection handoff: a worker's standard input is one end of a Unix stream socket
//! pair ([`pair`]); the supervisor writes control lines on its end, and a `socket <listener>`
//! line carries the accepted connection beside it as a descriptor (`SCM_RIGHTS`). The worker
//! reads lines and descriptors together ([`Input`]) and takes each descriptor with the line it
//! came with.
//!
//! Owns the two sides of that transport and nothing else: which worker gets a connection is
//! the [`super::roster`]'s choice, the accept loop is [`super::dispatch`], and what a worker
//! does with a connection is [`super::receive`]'s. No `unsafe`: `rustix` wraps `sendmsg` and
//! `recvmsg` safely, and the standard library makes the pair and hands it to the child.
//!
//! A descriptor is attached to the first byte of the line it belongs to, every `socket` line
//! carries exactly one, and each is sent in order by one writer thread per worker, so the
//! worker pairs the n-th `socket` line with the n-th descriptor received.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use log::warn;
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags,
};

use crate::engine::net::Stream;
use crate::supervisor::channel::{Down, SOCKET};

/// Descriptors one `recvmsg` may bring (the kernel stops at each message that carries one, so
/// more than one at a time is rare; room for more keeps a burst from being cut short).
const FDS_PER_READ: usize = 16;

/// The longest control line a worker accepts; a longer one is dropped whole.
const MAX_LINE_BYTES: usize = 1 << 20;

/// Received descriptors a worker holds at most while their lines are still on the way.
const MAX_PENDING_FDS: usize = 1024;

/// `sendmsg` flags: no SIGPIPE where the platform has the flag (elsewhere the Rust runtime and
/// the Python interpreter both ignore SIGPIPE, and the error comes back as `EPIPE`).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const SEND_FLAGS: SendFlags = SendFlags::NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const SEND_FLAGS: SendFlags = SendFlags::empty();

/// A new control channel: (the supervisor's end, what becomes the worker's standard input).
/// Both ends are close-on-exec; the child gets its end as descriptor 0 only.
pub(crate) fn pair() -> io::Result<(UnixStream, OwnedFd)> {
    let (ours, theirs) = UnixStream::pair()?;
    Ok((ours, theirs.into()))
}

/// Writes one message (its line and a newline) on the supervisor's end, with its connection's
/// descriptor attached to the first byte. Blocks while the worker's input is full.
pub(crate) fn send(socket: &UnixStream, message: &Down) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(message.line.len() + 1);
    bytes.extend_from_slice(message.line.as_bytes());
    bytes.push(b'\n');
    let fds: Vec<BorrowedFd<'_>> = message.connection.iter().map(AsFd::as_fd).collect();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("no room for the descriptor"));
    }
    let mut sent = 0;
    while sent < bytes.len() {
        match sendmsg(socket, &[IoSlice::new(&bytes[sent..])], &mut control, SEND_FLAGS) {
            Ok(n) => {
                sent += n;
                // The descriptor went with the first part.
                control.clear();
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A connection on its way to a worker process: the accepted socket's descriptor, moved into
/// the message that hands it over, and taken back if that message was not delivered.
pub(crate) struct Parcel(Option<OwnedFd>);

impl Parcel {
    /// Wraps a connection the supervisor accepted.
    pub(crate) fn new(stream: Stream) -> Parcel {
        Parcel(Some(match stream {
            Stream::Tcp(s) => s.into(),
            Stream::Unix(s) => s.into(),
        }))
    }

    /// The message that hands the connection to a worker (any worker: a descriptor is not
    /// addressed to a process). `listener`: the index in `listen` it arrived on.
    pub(crate) fn letter(&mut self, listener: usize, _pid: u32) -> io::Result<Down> {
        let fd = self.0.take().ok_or_else(|| io::Error::other("the connection was handed over already"))?;
        Ok(Down { line: format!("{SOCKET} {listener}"), connection: Some(fd) })
    }

    /// Takes the descriptor back from a message that could not be queued.
    pub(crate) fn returned(&mut self, letter: Down) {
        if let Some(fd) = letter.connection {
            self.0 = Some(fd);
        }
    }
}

/// The connection a `socket` line handed over, as `(listener index, stream)`: `args` is what
/// follows `socket `, `fd` the descriptor that came with it.
pub(crate) fn unpack(args: &str, fd: Option<OwnedFd>) -> io::Result<(usize, Stream)> {
    let listener = args
        .trim()
        .parse::<usize>()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("malformed socket line {args:?}")))?;
    let fd =
        fd.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a socket line came without its descriptor"))?;
    let socket = socket2::Socket::from(fd);
    if !matches!(socket.r#type(), Ok(socket2::Type::STREAM)) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "the descriptor is not a stream socket"));
    }
    let stream = if socket.local_addr()?.as_socket().is_some() {
        Stream::Tcp(socket.into())
    } else {
        Stream::Unix(OwnedFd::from(socket).into())
    };
    Ok((listener, stream))
}

/// A worker's standard input: control lines, each with the descriptor that came with it.
pub(crate) struct Input {
    fd: OwnedFd,
    /// Standard input is no socket (a worker started by hand): lines only.
    plain: bool,
    /// Bytes read and not yet a whole line.
    pending: Vec<u8>,
    /// Descriptors received and not yet claimed by their `socket` line.
    fds: VecDeque<OwnedFd>,
    /// Descriptors held at most in `fds` (`MAX_PENDING_FDS`); any more are closed at once.
    max_fds: usize,
    /// Dropping an over-long line until its newline.
    skipping: bool,
    ended: bool,
}

impl Input {
    /// This process's standard input (a duplicate of descriptor 0).
    pub(crate) fn stdin() -> io::Result<Input> {
        Ok(Input::from_fd(io::stdin().as_fd().try_clone_to_owned()?))
    }

    /// Control lines read from `fd` (a socket, or anything `read` works on).
    fn from_fd(fd: OwnedFd) -> Input {
        Input {
            fd,
            plain: false,
            pending: Vec::new(),
            fds: VecDeque::new(),
            max_fds: MAX_PENDING_FDS,
            skipping: false,
            ended: false,
        }
    }

    /// The next message, or `None` at the end of input (the supervisor closed its end or is
    /// gone) or on a read error.
    pub(crate) fn next_message(&mut self) -> Option<Down> {
        loop {
            if let Some(at) = self.pending.iter().position(|b| *b == b'\n') {
                let rest = self.pending.split_off(at + 1);
                let mut line = std::mem::replace(&mut self.pending, rest);
                line.pop();
                if std::mem::take(&mut self.skipping) || line.len() > MAX_LINE_BYTES {
                    warn!(target: "maitred::server", "a control line longer than {MAX_LINE_BYTES} bytes was dropped");
                    continue;
                }
                let line = String::from_utf8_lossy(&line).into_owned();
                let is_socket = line.split(' ').next() == Some(SOCKET);
                let connection = if is_socket { self.fds.pop_front() } else { None };
                return Some(Down { line, connection });
            }
            if self.pending.len() > MAX_LINE_BYTES {
                self.pending.clear();
                self.skipping = true;
            }
            if self.ended {
                return None;
            }
            match self.fill() {
                Ok(0) | Err(_) => self.ended = true,
                Ok(_) => {}
            }
        }
    }

    /// Reads more bytes (and the descriptors beside them) into `pending`.
    fn fill(&mut self) -> io::Result<usize> {
        let mut buf = [0u8; 8192];
        if self.plain {
            let n = rustix::io::read(&self.fd, &mut buf)?;
            self.pending.extend_from_slice(&buf[..n]);
            return Ok(n);
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_PER_READ))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = loop {
            match recvmsg(&self.fd, &mut [IoSliceMut::new(&mut buf)], &mut control, RECV_FLAGS) {
                Ok(r) => break r,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::NOTSOCK) => {
                    self.plain = true;
                    return self.fill();
                }
                Err(e) => return Err(e.into()),
            }
        };
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                for fd in fds {
                    close_on_exec(&fd);
                    if self.fds.len() < self.max_fds {
                        self.fds.push_back(fd);
                    }
                }
            }
        }
        if received.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
            warn!(target: "maitred::server", "descriptors from the supervisor were cut short; those connections are lost");
        }
        self.pending.extend_from_slice(&buf[..received.bytes]);
        Ok(received.bytes)
    }
}

/// `recvmsg` flags: received descriptors close-on-exec at once where the platform can.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const RECV_FLAGS: RecvFlags = RecvFlags::CMSG_CLOEXEC;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const RECV_FLAGS: RecvFlags = RecvFlags::empty();

/// Where `MSG_CMSG_CLOEXEC` is missing, marks a received descriptor close-on-exec (so what the
/// application spawns does not hold client connections open).
fn close_on_exec(fd: &OwnedFd) {
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let _ = socket2::SockRef::from(fd).set_cloexec(true);
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let _ = fd;
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    use super::*;

    /// An `Input` reading from `socket` instead of standard input.
    fn input(socket: UnixStream) -> Input {
        Input::from_fd(socket.into())
    }

    #[test]
    fn a_handed_connection_arrives_with_its_line_and_is_the_same_connection() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut reader = input(theirs);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();

        send(&ours, &Down::from("cluster x".to_string())).unwrap();
        let mut parcel = Parcel::new(Stream::Tcp(accepted));
        let letter = parcel.letter(2, 0).unwrap();
        assert_eq!(letter.line, "socket 2");
        assert!(parcel.letter(2, 0).is_err(), "a parcel is handed over once");
        send(&ours, &letter).unwrap();
        drop(letter); // the supervisor's copy closes; the worker's stays open
        send(&ours, &Down::from("drain".to_string())).unwrap();
        drop(ours);

        let first = reader.next_message().unwrap();
        assert_eq!((first.line.as_str(), first.connection.is_none()), ("cluster x", true));
        let second = reader.next_message().unwrap();
        assert_eq!(second.line, "socket 2");
        let (index, stream) = unpack("2", second.connection).unwrap();
        assert_eq!(index, 2);
        let Stream::Tcp(mut adopted) = stream else { panic!("a TCP connection comes back as TCP") };
        assert_eq!(adopted.peer_addr().unwrap(), peer);
        super::super::assert_one_connection(&mut client, &mut adopted);
        assert_eq!(reader.next_message().unwrap().line, "drain");
        assert!(reader.next_message().is_none(), "the supervisor's end closed: end of input");
    }

    #[test]
    fn a_unix_socket_connection_comes_back_as_one() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut reader = input(theirs);
        let (server_end, mut client) = UnixStream::pair().unwrap();
        let mut parcel = Parcel::new(Stream::Unix(server_end));
        send(&ours, &parcel.letter(0, 0).unwrap()).unwrap();
        let message = reader.next_message().unwrap();
        let (_, stream) = unpack("0", message.connection).unwrap();
        let Stream::Unix(mut adopted) = stream else { panic!("a Unix connection comes back as one") };
        adopted.write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }

    #[test]
    fn an_undelivered_letter_gives_its_connection_back() {
        let (server_end, _client) = UnixStream::pair().unwrap();
        let mut parcel = Parcel::new(Stream::Unix(server_end));
        let letter = parcel.letter(0, 0).unwrap();
        parcel.returned(letter);
        assert!(parcel.letter(1, 0).unwrap().connection.is_some());
    }

    #[test]
    fn descriptors_no_socket_line_claims_are_held_up_to_the_cap_and_the_rest_closed() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut reader = Input { max_fds: 4, ..input(theirs) };
        // Six lines that are no `socket` line, each carrying a connection: none claims its
        // descriptor, so the worker holds them, up to its cap.
        let mut clients = Vec::new();
        for _ in 0..6 {
            let (server_end, client) = UnixStream::pair().unwrap();
            client.set_nonblocking(true).unwrap();
            clients.push(client);
            send(&ours, &Down { line: "cluster x".to_string(), connection: Some(server_end.into()) }).unwrap();
        }
        send(&ours, &Down::from("drain".to_string())).unwrap();
        drop(ours);
        for _ in 0..6 {
            assert_eq!(reader.next_message().unwrap().line, "cluster x");
        }
        assert_eq!(reader.next_message().unwrap().line, "drain");
        assert!(reader.next_message().is_none());
        assert_eq!(reader.fds.len(), 4, "held up to the cap");
        // The worker's copy is the only one left: a held connection stays open, one past the
        // cap was closed when it arrived.
        let mut byte = [0u8; 1];
        for (k, client) in clients.iter_mut().enumerate() {
            let read = client.read(&mut byte);
            if k < 4 {
                assert_eq!(read.unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "connection {k} is held open");
            } else {
                assert_eq!(read.unwrap(), 0, "connection {k} past the cap is closed");
            }
        }
    }

    #[test]
    fn malformed_socket_lines_and_missing_descriptors_are_refused() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(unpack("x", Some(a.into())).is_err());
        assert!(unpack("0", None).is_err());
        let file = tempfile::tempfile().unwrap();
        assert!(unpack("0", Some(file.into())).is_err(), "a file is no socket");
    }

    #[test]
    fn lines_split_across_reads_and_over_long_lines_are_handled() {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let mut reader = input(theirs);
        let writer = std::thread::spawn(move || {
            ours.write_all(b"clus").unwrap();
            ours.write_all(b"ter a\n").unwrap();
            ours.write_all(&vec![b'x'; MAX_LINE_BYTES + 10]).unwrap();
            ours.write_all(b"\ndrain\n").unwrap();
        });
        assert_eq!(reader.next_message().unwrap().line, "cluster a");
        let next = reader.next_message().unwrap().line;
        assert!(next == "drain", "the over-long line is dropped whole, got {} bytes", next.len());
        writer.join().unwrap();
        assert!(reader.next_message().is_none());
    }

    #[test]
    fn standard_input_that_is_no_socket_still_gives_lines() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"cluster a\ndrain\n").unwrap();
        use std::io::Seek;
        file.rewind().unwrap();
        let mut reader = Input::from_fd(file.into());
        assert_eq!(reader.next_message().unwrap().line, "cluster a");
        assert_eq!(reader.next_message().unwrap().line, "drain");
        assert!(reader.next_message().is_none());
    }
}
