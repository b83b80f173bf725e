//! The Windows connection handoff: a connection the supervisor accepted becomes a socket of a
//! worker process. `share` (in the supervisor) duplicates the socket for the worker's pid
//! with `WSADuplicateSocketW`; the resulting protocol description travels as the control line
//! `socket <listener-index> <hex>` ([`SocketLine`]); `adopt` (in the worker) re-creates the
//! socket from it with `WSASocketW(FROM_PROTOCOL_INFO, ...)`.
//!
//! Owns the two Winsock calls (the only `unsafe` of the supervisor, Windows only) and the text
//! form of the payload (every platform, so it is tested everywhere). Never decides which worker
//! gets a connection and never reads from the socket.
#![cfg_attr(windows, allow(unsafe_code))]
// The text form is compiled and tested on every platform; only Windows uses it.
#![cfg_attr(not(windows), allow(dead_code))]

use std::fmt::Write as _;

/// A socket duplicated for one worker process: the bytes of the `WSAPROTOCOL_INFOW` that
/// `WSADuplicateSocketW` filled in (little-endian, field by field, the protocol name cut at
/// its terminating NUL). Only the process it was made for can `adopt` it, and only once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Payload(Vec<u8>);

/// The control line that hands a connection to a worker: `socket <listener-index> <hex>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SocketLine {
    /// Which of the server's listeners (in the order of `config.listen`) accepted it.
    pub(crate) listener: usize,
    pub(crate) payload: Payload,
}

/// The first word of the control line.
const COMMAND: &str = crate::supervisor::channel::SOCKET;

/// The longest payload accepted from a control line: the fixed fields and a protocol name of at
/// most 256 UTF-16 units.
const MAX_PAYLOAD_BYTES: usize = FIXED_BYTES + 512;

/// The fixed-size fields of `WSAPROTOCOL_INFOW` before its protocol name.
const FIXED_BYTES: usize = 116;

impl SocketLine {
    /// The whole line, without the trailing newline.
    pub(crate) fn encode(&self) -> String {
        let mut line = String::with_capacity(COMMAND.len() + 24 + 2 * self.payload.0.len());
        let _ = write!(line, "{COMMAND} {} ", self.listener);
        for byte in &self.payload.0 {
            let _ = write!(line, "{byte:02x}");
        }
        line
    }

    /// Parses the arguments after `socket ` (`<listener-index> <hex>`); `None` if malformed.
    pub(crate) fn decode_args(args: &str) -> Option<SocketLine> {
        let (index, hex) = args.trim_end_matches(['\r', '\n']).split_once(' ')?;
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let listener = index.parse().ok()?;
        if hex.len() % 2 != 0 || hex.len() / 2 < FIXED_BYTES || hex.len() / 2 > MAX_PAYLOAD_BYTES {
            return None;
        }
        let bytes = hex
            .as_bytes()
            .chunks_exact(2)
            .map(|pair| Some((hex_digit(pair[0])? << 4) | hex_digit(pair[1])?))
            .collect::<Option<Vec<u8>>>()?;
        Some(SocketLine { listener, payload: Payload(bytes) })
    }

    /// Parses a whole line (`socket <listener-index> <hex>`); `None` if it is not one.
    #[cfg(test)]
    pub(crate) fn decode(line: &str) -> Option<SocketLine> {
        SocketLine::decode_args(line.strip_prefix(COMMAND)?.strip_prefix(' ')?)
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(windows)]
pub(crate) use calls::{adopt, share};

/// A connection on its way to a worker process: the accepted socket, duplicated for the
/// worker it is offered to.
#[cfg(windows)]
pub(crate) struct Parcel(std::net::TcpStream);

#[cfg(windows)]
impl Parcel {
    /// Wraps a connection the supervisor accepted.
    pub(crate) fn new(stream: crate::engine::net::Stream) -> Parcel {
        let crate::engine::net::Stream::Tcp(tcp) = stream;
        Parcel(tcp)
    }

    /// The message that hands the connection to the worker with process id `pid`: the socket
    /// duplicated for that process, in the line. `listener`: the index in `listen`.
    pub(crate) fn letter(&mut self, listener: usize, pid: u32) -> std::io::Result<crate::supervisor::channel::Down> {
        Ok(SocketLine { listener, payload: share(&self.0, pid)? }.encode().into())
    }

    /// A message that could not be queued: nothing to take back (the supervisor's own socket
    /// stays in the parcel; a duplicate is made per worker offered).
    pub(crate) fn returned(&mut self, _letter: crate::supervisor::channel::Down) {}
}

/// The connection a `socket` line handed over, as `(listener index, stream)`: `args` is what
/// follows `socket `.
#[cfg(windows)]
pub(crate) fn unpack(args: &str) -> std::io::Result<(usize, crate::engine::net::Stream)> {
    let line = SocketLine::decode_args(args)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed socket line"))?;
    Ok((line.listener, crate::engine::net::Stream::Tcp(adopt(&line.payload)?)))
}

#[cfg(windows)]
mod calls {
    use std::io;
    use std::net::TcpStream;
    use std::os::windows::io::{AsRawSocket, FromRawSocket};
    use std::sync::OnceLock;

    use windows_sys::Win32::Networking::WinSock::{
        WSADuplicateSocketW, WSASocketW, WSAStartup, FROM_PROTOCOL_INFO, INVALID_SOCKET, SOCKET, WSADATA,
        WSAPROTOCOL_INFOW, WSA_FLAG_NO_HANDLE_INHERIT, WSA_FLAG_OVERLAPPED,
    };

    use super::Payload;

    /// Duplicates `stream` for the process `target_pid`. The caller sends the payload to that
    /// process and may then close its own `stream`: the connection stays open in the target
    /// until the target closes it (or exits, if it never adopts it).
    pub(crate) fn share(stream: &TcpStream, target_pid: u32) -> io::Result<Payload> {
        let mut info = WSAPROTOCOL_INFOW::default();
        // SAFETY: the socket is open and owned by `stream`, which is borrowed for the whole
        // call; `info` is a valid, writable WSAPROTOCOL_INFOW that the call fills in.
        let rc = unsafe { WSADuplicateSocketW(stream.as_raw_socket() as SOCKET, target_pid, &mut info) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut writer = Writer(Vec::with_capacity(super::MAX_PAYLOAD_BYTES));
        fields(&mut info, &mut writer);
        Ok(Payload(writer.0))
    }

    /// Re-creates in this process the socket that [`share`] duplicated for it.
    pub(crate) fn adopt(payload: &Payload) -> io::Result<TcpStream> {
        winsock_started()?;
        let mut info = WSAPROTOCOL_INFOW::default();
        let mut reader = Reader { bytes: &payload.0, short: false };
        fields(&mut info, &mut reader);
        if reader.short {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "socket payload too short"));
        }
        // SAFETY: `info` is a valid WSAPROTOCOL_INFOW that lives across the call, which only
        // reads it; no group is asked for (0).
        let socket = unsafe {
            WSASocketW(
                FROM_PROTOCOL_INFO,
                FROM_PROTOCOL_INFO,
                FROM_PROTOCOL_INFO,
                &info,
                0,
                WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT,
            )
        };
        if socket == INVALID_SOCKET {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `socket` was just created by WSASocketW, is valid, and nothing else owns it:
        // the TcpStream becomes its only owner and closes it.
        Ok(unsafe { TcpStream::from_raw_socket(socket as _) })
    }

    /// Winsock must be started in a process before `WSASocketW`. The standard library starts it
    /// lazily on its own first socket call, which a worker that only adopts may never make.
    fn winsock_started() -> io::Result<()> {
        static STARTED: OnceLock<i32> = OnceLock::new();
        let rc = *STARTED.get_or_init(|| {
            let mut data = WSADATA::default();
            // SAFETY: `data` is a valid, writable WSADATA for the call to fill in. Winsock counts
            // starts; this one is never paired with WSACleanup, so Winsock stays up for the
            // process's life, as the standard library's own start does.
            unsafe { WSAStartup(0x0202, &mut data) }
        });
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    }

    /// One pass over the fields of the protocol description, shared by the encoder and the decoder
    /// so the two can never disagree on the order.
    trait Fields {
        fn u32(&mut self, value: &mut u32);
        fn u16(&mut self, value: &mut u16);
        fn u8(&mut self, value: &mut u8);
        /// The protocol name: up to its terminating NUL.
        fn name(&mut self, name: &mut [u16]);
        fn i32(&mut self, value: &mut i32) {
            let mut word = *value as u32;
            self.u32(&mut word);
            *value = word as i32;
        }
    }

    /// Writes the fields, little-endian.
    struct Writer(Vec<u8>);

    impl Fields for Writer {
        fn u32(&mut self, value: &mut u32) {
            self.0.extend_from_slice(&value.to_le_bytes());
        }
        fn u16(&mut self, value: &mut u16) {
            self.0.extend_from_slice(&value.to_le_bytes());
        }
        fn u8(&mut self, value: &mut u8) {
            self.0.push(*value);
        }
        fn name(&mut self, name: &mut [u16]) {
            for unit in name.iter_mut().take_while(|u| **u != 0) {
                self.u16(unit);
            }
        }
    }

    /// Reads the fields back; `short` is set if the bytes ran out before the fixed fields did.
    struct Reader<'a> {
        bytes: &'a [u8],
        short: bool,
    }

    impl Reader<'_> {
        fn take<const N: usize>(&mut self) -> [u8; N] {
            match self.bytes.split_first_chunk::<N>() {
                Some((head, rest)) => {
                    self.bytes = rest;
                    *head
                }
                None => {
                    self.short = true;
                    [0; N]
                }
            }
        }
    }

    impl Fields for Reader<'_> {
        fn u32(&mut self, value: &mut u32) {
            *value = u32::from_le_bytes(self.take());
        }
        fn u16(&mut self, value: &mut u16) {
            *value = u16::from_le_bytes(self.take());
        }
        fn u8(&mut self, value: &mut u8) {
            *value = self.take::<1>()[0];
        }
        fn name(&mut self, name: &mut [u16]) {
            // The name is what is left; the last unit stays the terminating NUL.
            let room = name.len().saturating_sub(1);
            for unit in name.iter_mut().take(room) {
                if self.bytes.len() < 2 {
                    break;
                }
                self.u16(unit);
            }
        }
    }

    /// The fields of `WSAPROTOCOL_INFOW` in declaration order.
    fn fields(info: &mut WSAPROTOCOL_INFOW, f: &mut impl Fields) {
        f.u32(&mut info.dwServiceFlags1);
        f.u32(&mut info.dwServiceFlags2);
        f.u32(&mut info.dwServiceFlags3);
        f.u32(&mut info.dwServiceFlags4);
        f.u32(&mut info.dwProviderFlags);
        f.u32(&mut info.ProviderId.data1);
        f.u16(&mut info.ProviderId.data2);
        f.u16(&mut info.ProviderId.data3);
        for byte in &mut info.ProviderId.data4 {
            f.u8(byte);
        }
        f.u32(&mut info.dwCatalogEntryId);
        f.i32(&mut info.ProtocolChain.ChainLen);
        for entry in &mut info.ProtocolChain.ChainEntries {
            f.u32(entry);
        }
        f.i32(&mut info.iVersion);
        f.i32(&mut info.iAddressFamily);
        f.i32(&mut info.iMaxSockAddr);
        f.i32(&mut info.iMinSockAddr);
        f.i32(&mut info.iSocketType);
        f.i32(&mut info.iProtocol);
        f.i32(&mut info.iProtocolMaxOffset);
        f.i32(&mut info.iNetworkByteOrder);
        f.i32(&mut info.iSecurityScheme);
        f.u32(&mut info.dwMessageSize);
        f.u32(&mut info.dwProviderReserved);
        f.name(&mut info.szProtocol);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(listener: usize, bytes: Vec<u8>) -> SocketLine {
        SocketLine { listener, payload: Payload(bytes) }
    }

    #[test]
    fn socket_line_round_trips_through_its_text() {
        let sent = line(3, (0..=255u8).cycle().take(FIXED_BYTES + 14).collect());
        let text = sent.encode();
        assert!(text.starts_with("socket 3 000102"), "{text}");
        assert!(!text.contains('\n'));
        assert_eq!(SocketLine::decode(&text), Some(sent.clone()));
        assert_eq!(SocketLine::decode(&format!("{text}\r\n")), Some(sent));
    }

    /// The primitive itself, within one process (the duplicate's target may be the caller):
    /// the adopted socket is the same connection, and it outlives the original.
    #[cfg(windows)]
    #[test]
    fn a_shared_connection_adopted_from_its_text_form_is_the_same_connection() {
        use std::net::{TcpListener, TcpStream};

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let line = SocketLine { listener: 7, payload: share(&accepted, std::process::id()).unwrap() }.encode();
        drop(accepted);
        let received = SocketLine::decode(&line).unwrap();
        assert_eq!(received.listener, 7);
        let mut adopted = adopt(&received.payload).unwrap();
        assert_eq!(adopted.peer_addr().unwrap(), peer);
        super::super::assert_one_connection(&mut client, &mut adopted);
        assert!(adopt(&Payload(vec![0; 4])).is_err(), "a short payload is refused");
    }

    #[test]
    fn socket_line_accepts_upper_case_hex() {
        let text = format!("socket 0 {}", "AB".repeat(FIXED_BYTES));
        assert_eq!(SocketLine::decode(&text), Some(line(0, vec![0xab; FIXED_BYTES])));
    }

    #[test]
    fn malformed_socket_lines_are_refused() {
        let ok = "00".repeat(FIXED_BYTES);
        for bad in [
            String::new(),
            "socket".to_string(),
            format!("socket  {ok}"),
            format!("socket -1 {ok}"),
            format!("socket +1 {ok}"),
            format!("socket x {ok}"),
            format!("socket 99999999999999999999999 {ok}"),
            format!("socket 0 {ok}0"),
            format!("socket 0 {}", "00".repeat(FIXED_BYTES - 1)),
            format!("socket 0 {}", "00".repeat(MAX_PAYLOAD_BYTES + 1)),
            format!("socket 0 {}zz", "00".repeat(FIXED_BYTES)),
            format!("socket 0 {ok} trailing"),
            format!("sockets 0 {ok}"),
            format!("drain 0 {ok}"),
        ] {
            assert_eq!(SocketLine::decode(&bad), None, "{bad:?}");
        }
    }
}
