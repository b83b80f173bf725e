//! Where the server listens, and the sockets behind it: TCP everywhere, Unix domain sockets on
//! Unix. The acceptor owns [`Listener`]s; the I/O loop owns [`Stream`]s.
//! Owns addresses, listeners and streams. Never reads a request.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::str::FromStr;

/// An address to listen on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// A TCP address such as `127.0.0.1:8080` or `[::1]:8080` (port 0: any free port).
    Tcp(SocketAddr),
    /// A Unix domain socket path, written `unix:/run/maitred.sock` (Unix only). A stale socket
    /// file left by a dead server is replaced; the file is removed when the server stops.
    Unix(PathBuf),
    /// A TCP address that speaks TLS (HTTPS), written `https://0.0.0.0:8443`, with the
    /// `tls_cert` and `tls_key` settings.
    Tls(SocketAddr),
}

impl ListenAddr {
    /// The TCP address, if this is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Tcp(addr) | ListenAddr::Tls(addr) => Some(*addr),
            ListenAddr::Unix(_) => None,
        }
    }

    /// Whether connections to this address speak TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, ListenAddr::Tls(_))
    }

    /// How to reach it: `http://127.0.0.1:8080`, `https://127.0.0.1:8443` or `unix:/path`.
    pub fn url(&self) -> String {
        match self {
            ListenAddr::Tcp(addr) => format!("http://{addr}"),
            ListenAddr::Tls(addr) => format!("https://{addr}"),
            ListenAddr::Unix(path) => format!("unix:{}", path.display()),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Tls(addr) => write!(f, "https://{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> Self {
        ListenAddr::Tcp(addr)
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    /// `HOST:PORT`, `[V6]:PORT`, Waitress's `*:PORT` (every IPv4 interface), or `unix:PATH`;
    /// `https://` before a TCP address makes it a TLS one, `http://` changes nothing.
    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(rest) = text.strip_prefix("https://") {
            return match rest.parse()? {
                ListenAddr::Tcp(addr) => Ok(ListenAddr::Tls(addr)),
                _ => Err(format!("{text:?}: https:// needs a TCP address like https://0.0.0.0:8443")),
            };
        }
        if let Some(rest) = text.strip_prefix("http://") {
            return match rest.parse()? {
                ListenAddr::Tcp(addr) => Ok(ListenAddr::Tcp(addr)),
                _ => Err(format!("{text:?}: http:// needs a TCP address like http://0.0.0.0:8080")),
            };
        }
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, like unix:/run/maitred.sock".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        let wildcard = text.strip_prefix("*:").map(|port| format!("0.0.0.0:{port}"));
        wildcard.as_deref().unwrap_or(text).parse::<SocketAddr>().map(ListenAddr::Tcp).map_err(|_| {
            format!("{text:?} is not an address like 127.0.0.1:8080, [::1]:8080, *:8080 or unix:/run/maitred.sock")
        })
    }
}

/// The address a Unix-socket peer is reported as: the socket has no IP address.
#[cfg(unix)]
pub(crate) const UNIX_PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// A listening socket.
pub(crate) enum Listener {
    Tcp(TcpListener),
    /// The socket, its path, and whether dropping it removes the file (false in a worker
    /// process: the supervisor that bound it owns the file).
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener, PathBuf, bool),
}

impl Listener {
    /// Binds `addr` with `backlog`, non-blocking.
    pub(crate) fn bind(addr: &ListenAddr, backlog: usize) -> io::Result<Listener> {
        match addr {
            ListenAddr::Tcp(addr) | ListenAddr::Tls(addr) => bind_tcp(*addr, backlog).map(Listener::Tcp),
            #[cfg(unix)]
            ListenAddr::Unix(path) => bind_unix(path).map(|l| Listener::Unix(l, path.clone(), true)),
            #[cfg(not(unix))]
            ListenAddr::Unix(_) => {
                Err(io::Error::new(io::ErrorKind::Unsupported, "Unix sockets are not available on this platform"))
            }
        }
    }

    /// Another handle on the same listening socket (a Unix socket's copy never removes its
    /// file: the original's owner does).
    pub(crate) fn try_clone(&self) -> io::Result<Listener> {
        match self {
            Listener::Tcp(l) => l.try_clone().map(Listener::Tcp),
            #[cfg(unix)]
            Listener::Unix(l, path, _) => Ok(Listener::Unix(l.try_clone()?, path.clone(), false)),
        }
    }

    /// The bound address (with the real port when port 0 was asked for).
    pub(crate) fn local_addr(&self) -> io::Result<ListenAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(ListenAddr::Tcp),
            #[cfg(unix)]
            Listener::Unix(_, path, _) => Ok(ListenAddr::Unix(path.clone())),
        }
    }

    /// Accepts one connection, set non-blocking (and TCP_NODELAY for TCP), with its send
    /// buffer bounded to `send_buffer_size` bytes when that is not 0.
    pub(crate) fn accept(&self, send_buffer_size: usize) -> io::Result<(Stream, SocketAddr)> {
        let (stream, peer) = self.accept_unready()?;
        Ok((stream.ready(send_buffer_size)?, peer))
    }

    /// Accepts one connection as it comes, for another process to ready
    /// ([`Stream::ready`]): the supervisor's, which hands each connection to a worker.
    pub(crate) fn accept_unready(&self) -> io::Result<(Stream, SocketAddr)> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(stream, peer)| (Stream::Tcp(stream), peer)),
            #[cfg(unix)]
            Listener::Unix(l, _, _) => l.accept().map(|(stream, _)| (Stream::Unix(stream), UNIX_PEER)),
        }
    }
}

/// Readies an accepted TCP connection for the I/O loop: non-blocking, TCP_NODELAY, and its
/// send buffer bounded to `send_buffer_size` bytes when that is not 0.
fn tcp_stream(stream: TcpStream, send_buffer_size: usize) -> io::Result<Stream> {
    stream.set_nonblocking(true)?;
    let _ = stream.set_nodelay(true);
    if send_buffer_size > 0 {
        // Bounds kernel memory per slow reader and makes what the socket accepts
        // track what the client takes (autotuning grows it to megabytes).
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(send_buffer_size);
    }
    Ok(Stream::Tcp(stream))
}

#[cfg(unix)]
impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path, true) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn bind_tcp(addr: SocketAddr, backlog: usize) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // On Windows SO_REUSEADDR lets another process steal the port; there the default is right.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(unix)]
fn bind_unix(path: &std::path::Path) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::net::{UnixListener, UnixStream};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "a file that is not a socket is in the way"));
        }
        // A socket nobody answers on was left by a server that died: replace it.
        match UnixStream::connect(path) {
            Ok(_) => return Err(io::Error::from(io::ErrorKind::AddrInUse)),
            Err(_) => std::fs::remove_file(path)?,
        }
    }
    let listener = UnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A client connection.
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

impl Stream {
    /// Readies an accepted connection for the I/O loop: non-blocking, and for TCP
    /// TCP_NODELAY and the send buffer bound of [`tcp_stream`].
    pub(crate) fn ready(self, send_buffer_size: usize) -> io::Result<Stream> {
        match self {
            Stream::Tcp(tcp) => tcp_stream(tcp, send_buffer_size),
            #[cfg(unix)]
            Stream::Unix(unix) => {
                unix.set_nonblocking(true)?;
                Ok(Stream::Unix(unix))
            }
        }
    }

    /// The server-side address of the connection.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().ok(),
            #[cfg(unix)]
            Stream::Unix(_) => None,
        }
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(how),
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => (&*s).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(unix)]
mod fd {
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

    use super::{Listener, Stream};

    impl AsFd for Stream {
        fn as_fd(&self) -> BorrowedFd<'_> {
            match self {
                Stream::Tcp(s) => s.as_fd(),
                Stream::Unix(s) => s.as_fd(),
            }
        }
    }

    impl AsRawFd for Stream {
        fn as_raw_fd(&self) -> RawFd {
            self.as_fd().as_raw_fd()
        }
    }

    impl AsFd for Listener {
        fn as_fd(&self) -> BorrowedFd<'_> {
            match self {
                Listener::Tcp(l) => l.as_fd(),
                Listener::Unix(l, _, _) => l.as_fd(),
            }
        }
    }

    impl AsRawFd for Listener {
        fn as_raw_fd(&self) -> RawFd {
            self.as_fd().as_raw_fd()
        }
    }
}

#[cfg(windows)]
mod socket {
    use std::os::windows::io::{AsRawSocket, AsSocket, BorrowedSocket, RawSocket};

    use super::{Listener, Stream};

    impl AsSocket for Stream {
        fn as_socket(&self) -> BorrowedSocket<'_> {
            match self {
                Stream::Tcp(s) => s.as_socket(),
            }
        }
    }

    impl AsRawSocket for Stream {
        fn as_raw_socket(&self) -> RawSocket {
            self.as_socket().as_raw_socket()
        }
    }

    impl AsSocket for Listener {
        fn as_socket(&self) -> BorrowedSocket<'_> {
            match self {
                Listener::Tcp(l) => l.as_socket(),
            }
        }
    }

    impl AsRawSocket for Listener {
        fn as_raw_socket(&self) -> RawSocket {
            self.as_socket().as_raw_socket()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse_and_print_back() {
        for text in ["127.0.0.1:8080", "[::1]:8080", "unix:/tmp/m.sock", "https://127.0.0.1:8443", "https://[::1]:8443"]
        {
            let addr: ListenAddr = text.parse().unwrap();
            assert_eq!(addr.to_string(), text);
        }
        assert_eq!("*:81".parse::<ListenAddr>().unwrap(), ListenAddr::Tcp("0.0.0.0:81".parse().unwrap()));
        assert_eq!(
            "http://127.0.0.1:80".parse::<ListenAddr>().unwrap(),
            ListenAddr::Tcp("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!("https://*:443".parse::<ListenAddr>().unwrap(), ListenAddr::Tls("0.0.0.0:443".parse().unwrap()));
        for bad in
            ["", "localhost", "unix:", "1.2.3.4", "[::1]", "https://unix:/x", "https://", "https://https://1.2.3.4:1"]
        {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
    }
}
