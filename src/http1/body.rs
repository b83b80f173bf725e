//! Request bodies: the Content-Length and chunked readers, and the buffer that spools to disk.
//!
//! Both readers share one small protocol: [`BodyReader::received`] takes the bytes that have
//! arrived, passes body data to a sink, and says how many input bytes it consumed; it never
//! looks back at a byte twice and keeps no more state than a few counters.

use std::fs::File;
use std::io::{self, Write};

use crate::http1::parse::Limits;
use crate::http1::request::RequestBody;
use crate::http1::status::Rejection;

/// Reads one request body from the bytes that follow its head.
#[derive(Clone, Debug)]
pub enum BodyReader {
    /// `Content-Length`: this many bytes are still to come.
    Length {
        /// Bytes still expected.
        remaining: u64,
    },
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkedDecoder),
}

impl BodyReader {
    /// A reader for a body of exactly `len` bytes.
    pub fn length(len: u64) -> Self {
        BodyReader::Length { remaining: len }
    }

    /// A reader for a chunked body within `limits`.
    pub fn chunked(limits: &Limits) -> Self {
        BodyReader::Chunked(ChunkedDecoder::new(limits))
    }

    /// Feeds `input`; body data goes to `sink`. Returns how many bytes of `input` were
    /// consumed (the rest belongs to the next request).
    pub fn received(
        &mut self,
        input: &[u8],
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Rejection>,
    ) -> Result<usize, Rejection> {
        match self {
            BodyReader::Length { remaining } => {
                let n = (*remaining).min(input.len() as u64) as usize;
                if n > 0 {
                    sink(&input[..n])?;
                }
                *remaining -= n as u64;
                Ok(n)
            }
            BodyReader::Chunked(decoder) => decoder.received(input, sink),
        }
    }

    /// Whether the whole body has been read.
    pub fn is_complete(&self) -> bool {
        match self {
            BodyReader::Length { remaining } => *remaining == 0,
            BodyReader::Chunked(decoder) => decoder.is_complete(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex digits of a chunk size.
    Size,
    /// Reading a chunk extension, up to CR.
    Extension,
    /// Expecting the LF that ends a chunk-size line.
    SizeLf,
    /// Reading chunk data.
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line, or of the final empty line.
    TrailerStart,
    /// Inside a trailer field's name.
    TrailerName,
    /// Inside a trailer field's value.
    TrailerValue,
    /// Expecting the LF that ends a trailer line.
    TrailerLf,
    /// Expecting the LF of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
}

/// A strict, incremental decoder of the chunked transfer coding (RFC 9112, 7.1).
///
/// Chunk sizes are plain hex (at most 16 digits); extensions are bounded and may hold no
/// control characters; every CRLF must be exactly CRLF; trailers are bounded, checked and
/// dropped; the decoded size is held to `max_body_size` (413).
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: Chunk,
    size: u64,
    size_digits: usize,
    line_len: usize,
    remaining: u64,
    total: u64,
    trailer_bytes: usize,
    trailers: usize,
    max_line: usize,
    max_trailer_bytes: usize,
    max_trailers: usize,
    max_body: u64,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new(limits: &Limits) -> Self {
        ChunkedDecoder {
            state: Chunk::Size,
            size: 0,
            size_digits: 0,
            line_len: 0,
            remaining: 0,
            total: 0,
            trailer_bytes: 0,
            trailers: 0,
            max_line: limits.max_header_line,
            max_trailer_bytes: limits.max_headers_size,
            max_trailers: limits.max_headers,
            max_body: limits.max_body_size,
        }
    }

    /// Whether the final chunk and the trailer section have been read.
    pub fn is_complete(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Decoded body bytes so far.
    pub fn decoded_len(&self) -> u64 {
        self.total
    }

    /// See [`BodyReader::received`].
    pub fn received(
        &mut self,
        input: &[u8],
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Rejection>,
    ) -> Result<usize, Rejection> {
        let bad = Rejection::BadRequest;
        let mut i = 0;
        while i < input.len() && self.state != Chunk::Done {
            if self.state == Chunk::Data {
                let n = self.remaining.min((input.len() - i) as u64) as usize;
                sink(&input[i..i + n])?;
                self.remaining -= n as u64;
                i += n;
                if self.remaining == 0 {
                    self.state = Chunk::DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = match self.state {
                Chunk::Size => {
                    self.bump_line()?;
                    match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            self.size_digits += 1;
                            if self.size_digits > 16 {
                                return Err(bad("chunk size has too many digits"));
                            }
                            self.size = (self.size << 4) | u64::from((b as char).to_digit(16).unwrap_or(0));
                            Chunk::Size
                        }
                        b';' if self.size_digits > 0 => Chunk::Extension,
                        b'\r' if self.size_digits > 0 => Chunk::SizeLf,
                        _ => return Err(bad("invalid chunk size")),
                    }
                }
                Chunk::Extension => {
                    self.bump_line()?;
                    match b {
                        b'\r' => Chunk::SizeLf,
                        b'\t' => Chunk::Extension,
                        0..=0x1f | 0x7f => return Err(bad("control character in chunk extension")),
                        _ => Chunk::Extension,
                    }
                }
                Chunk::SizeLf => {
                    if b != b'\n' {
                        return Err(bad("chunk size line not ended by CRLF"));
                    }
                    self.line_len = 0;
                    if self.size == 0 {
                        Chunk::TrailerStart
                    } else {
                        self.total = self.total.checked_add(self.size).ok_or(Rejection::BodyTooLarge)?;
                        if self.total > self.max_body {
                            return Err(Rejection::BodyTooLarge);
                        }
                        self.remaining = self.size;
                        Chunk::Data
                    }
                }
                Chunk::Data => unreachable!("handled above"),
                Chunk::DataCr if b == b'\r' => Chunk::DataLf,
                Chunk::DataLf if b == b'\n' => {
                    self.size = 0;
                    self.size_digits = 0;
                    Chunk::Size
                }
                Chunk::DataCr | Chunk::DataLf => return Err(bad("chunk data not followed by CRLF")),
                Chunk::TrailerStart => match b {
                    b'\r' => Chunk::EndLf,
                    _ if crate::http1::grammar::is_token(&[b]) => {
                        self.trailers += 1;
                        if self.trailers > self.max_trailers {
                            return Err(Rejection::HeadersTooLarge);
                        }
                        self.line_len = 0;
                        self.bump_trailer()?;
                        Chunk::TrailerName
                    }
                    _ => return Err(bad("invalid trailer field")),
                },
                Chunk::TrailerName => {
                    self.bump_trailer()?;
                    match b {
                        b':' => Chunk::TrailerValue,
                        _ if crate::http1::grammar::is_token(&[b]) => Chunk::TrailerName,
                        _ => return Err(bad("invalid trailer field name")),
                    }
                }
                Chunk::TrailerValue => {
                    self.bump_trailer()?;
                    match b {
                        b'\r' => Chunk::TrailerLf,
                        b'\t' => Chunk::TrailerValue,
                        0..=0x1f | 0x7f => return Err(bad("control character in trailer")),
                        _ => Chunk::TrailerValue,
                    }
                }
                Chunk::TrailerLf if b == b'\n' => Chunk::TrailerStart,
                Chunk::TrailerLf => return Err(bad("trailer line not ended by CRLF")),
                Chunk::EndLf if b == b'\n' => Chunk::Done,
                Chunk::EndLf => return Err(bad("chunked body not ended by CRLF")),
                Chunk::Done => Chunk::Done,
            };
        }
        Ok(i)
    }

    fn bump_line(&mut self) -> Result<(), Rejection> {
        self.line_len += 1;
        if self.line_len > self.max_line {
            return Err(Rejection::BadRequest("chunk size line too long"));
        }
        Ok(())
    }

    fn bump_trailer(&mut self) -> Result<(), Rejection> {
        self.line_len += 1;
        self.trailer_bytes += 1;
        if self.line_len > self.max_line || self.trailer_bytes > self.max_trailer_bytes {
            return Err(Rejection::HeadersTooLarge);
        }
        Ok(())
    }
}

/// Body bytes held in memory up to a threshold, then in an anonymous temporary file.
///
/// A body of announced length that fits under the threshold gets its whole memory buffer
/// reserved at once, and the connection can read the socket straight into it
/// ([`SpoolBuffer::room`]) instead of copying from its input buffer. The room offered grows
/// with what has arrived (at most as much again, and at least `ROOM_STEP`), so memory in use
/// follows the bytes received, not the length announced.
#[derive(Debug)]
pub struct SpoolBuffer {
    /// In memory: `memory[..len]` is the body so far; bytes past it are room already offered.
    memory: Vec<u8>,
    file: Option<File>,
    len: u64,
    threshold: usize,
    /// The announced length, when the memory buffer was reserved for it (else 0).
    reserved: usize,
}

/// The least room [`SpoolBuffer::room`] offers at a time.
const ROOM_STEP: usize = 64 * 1024;

impl SpoolBuffer {
    /// An empty buffer that spools past `threshold` bytes. `expected` (a Content-Length)
    /// reserves the memory buffer up front when it fits under the threshold; a body announced
    /// larger goes to the file from its first byte, so no memory is filled only to be copied
    /// out.
    pub fn new(threshold: usize, expected: Option<u64>) -> Self {
        let (reserved, threshold) = match expected {
            Some(n) if n > threshold as u64 => (0, 0),
            Some(n) => (n as usize, threshold),
            None => (0, threshold),
        };
        SpoolBuffer { memory: Vec::with_capacity(reserved), file: None, len: 0, threshold, reserved }
    }

    /// Appends body bytes, moving to a temporary file when the threshold is crossed.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let held = self.len as usize;
        if self.file.is_none() && held + data.len() > self.threshold {
            let mut file = tempfile::tempfile()?;
            file.write_all(&self.memory[..held])?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(data)?,
            None if held + data.len() <= self.memory.len() => {
                self.memory[held..held + data.len()].copy_from_slice(data);
            }
            None => {
                self.memory.truncate(held);
                self.memory.extend_from_slice(data);
            }
        }
        self.len += data.len() as u64;
        Ok(())
    }

    /// Room in a reserved memory buffer to read body bytes into directly (then
    /// [`SpoolBuffer::filled`]); `None` when there is none (a spooled body, one of unknown
    /// length, or a full buffer).
    pub fn room(&mut self) -> Option<&mut [u8]> {
        let held = self.len as usize;
        if self.file.is_some() || held >= self.reserved {
            return None;
        }
        if self.memory.len() == held {
            let step = held.max(ROOM_STEP).min(self.reserved - held);
            self.memory.resize(held + step, 0);
        }
        Some(&mut self.memory[held..])
    }

    /// `n` bytes were read into [`SpoolBuffer::room`].
    pub fn filled(&mut self, n: usize) {
        debug_assert!(self.file.is_none() && self.len as usize + n <= self.memory.len());
        self.len += n as u64;
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The finished body, readable from its start.
    pub fn finish(mut self) -> io::Result<RequestBody> {
        match self.file {
            Some(file) => RequestBody::from_spooled(file, self.len),
            None => {
                self.memory.truncate(self.len as usize);
                Ok(RequestBody::from_bytes(self.memory))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8], limits: &Limits) -> Result<(Vec<u8>, usize), Rejection> {
        let mut out = Vec::new();
        let mut reader = BodyReader::chunked(limits);
        let n = reader.received(input, &mut |d| {
            out.extend_from_slice(d);
            Ok(())
        })?;
        assert!(reader.is_complete(), "incomplete: {:?}", String::from_utf8_lossy(input));
        Ok((out, n))
    }

    #[test]
    fn decodes_valid_bodies() {
        let limits = Limits::default();
        let cases: &[(&[u8], &[u8])] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5;name=value\r\nhello\r\n6;a;b=\"q\"\r\n world\r\n0\r\n\r\n", b"hello world"),
            (b"A\r\n0123456789\r\n0\r\nX-Trailer: yes\r\nOther: 1\r\n\r\n", b"0123456789"),
            (b"000005\r\nhello\r\n0000\r\n\r\n", b"hello"),
        ];
        for (input, body) in cases {
            let (out, n) = decode(input, &limits).unwrap();
            assert_eq!(out, *body);
            assert_eq!(n, input.len());
        }
    }

    #[test]
    fn stops_at_the_end_of_the_body() {
        let (_, n) = decode(b"1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n", &Limits::default()).unwrap();
        assert_eq!(n, 11);
    }

    #[test]
    fn byte_at_a_time_equals_all_at_once() {
        let input = b"5;x=y\r\nhello\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n";
        let mut reader = BodyReader::chunked(&Limits::default());
        let mut out = Vec::new();
        for b in input.iter() {
            let n = reader.received(std::slice::from_ref(b), &mut |d| {
                out.extend_from_slice(d);
                Ok(())
            });
            assert_eq!(n, Ok(1));
        }
        assert!(reader.is_complete());
        assert_eq!(out, b"helloabc");
    }

    #[test]
    fn refuses_hostile_bodies() {
        let limits = Limits { max_body_size: 100, max_header_line: 64, ..Limits::default() };
        let cases: &[(&[u8], u16)] = &[
            (b"5\nhello\r\n0\r\n\r\n", 400),
            (b"5\r\nhello\n0\r\n\r\n", 400),
            (b"5\r\nhelloXX0\r\n\r\n", 400),
            (b" 5\r\nhello\r\n0\r\n\r\n", 400),
            (b"5 \r\nhello\r\n0\r\n\r\n", 400),
            (b"+5\r\nhello\r\n0\r\n\r\n", 400),
            (b"0x5\r\nhello\r\n0\r\n\r\n", 400),
            (b"\r\nhello\r\n0\r\n\r\n", 400),
            (b"5;\nx\r\nhello\r\n0\r\n\r\n", 400),
            (b"5;a\rb\r\nhello\r\n0\r\n\r\n", 400),
            (b"5;a\0\r\nhello\r\n0\r\n\r\n", 400),
            (b"10000000000000000\r\n", 400),
            (b"fffffffffffffff\r\n", 413),
            (b"65\r\n", 413),
            (b"0\r\n folded: x\r\n\r\n", 400),
            (b"0\r\nbad trailer\r\n\r\n", 400),
            (b"0\r\nT: a\nb\r\n\r\n", 400),
            (b"0\r\n\n", 400),
        ];
        for (input, status) in cases {
            let mut reader = BodyReader::chunked(&limits);
            let got = reader.received(input, &mut |_| Ok(())).map_err(Rejection::status);
            assert_eq!(got.err(), Some(*status), "{:?}", String::from_utf8_lossy(input));
        }
        let long_ext = [b"1;".as_slice(), &[b'a'; 80], b"\r\n"].concat();
        let mut reader = BodyReader::chunked(&limits);
        assert!(reader.received(&long_ext, &mut |_| Ok(())).is_err());
    }

    #[test]
    fn a_body_of_known_length_is_read_into_its_buffer_or_spooled_from_the_first_byte() {
        use std::io::Read;
        let mut spool = SpoolBuffer::new(64, Some(20));
        spool.write(b"abc").unwrap();
        let room = spool.room().expect("a reserved buffer");
        assert_eq!(room.len(), 17);
        room[..17].copy_from_slice(b"defghijklmnopqrst");
        spool.filled(17);
        assert!(spool.room().is_none());
        let body = spool.finish().unwrap();
        assert!(!body.is_spooled());
        assert_eq!(body.into_bytes().unwrap(), b"abcdefghijklmnopqrst");

        let mut spool = SpoolBuffer::new(8, Some(20));
        assert!(spool.room().is_none(), "announced past the threshold: no memory buffer");
        spool.write(b"12345").unwrap();
        let mut body = spool.finish().unwrap();
        assert!(body.is_spooled(), "spooled from the first byte");
        let mut text = String::new();
        body.read_to_string(&mut text).unwrap();
        assert_eq!(text, "12345");

        // The room offered grows with what has arrived: never the whole announced length at once.
        let mut large = SpoolBuffer::new(1 << 20, Some(1 << 20));
        let mut offered = Vec::new();
        while let Some(room) = large.room() {
            offered.push(room.len());
            let n = room.len();
            large.filled(n);
        }
        assert_eq!(offered, [64 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10]);
        assert_eq!(large.len(), 1 << 20);
        assert!(!large.finish().unwrap().is_spooled());
    }

    #[test]
    fn spool_moves_to_disk_past_threshold() {
        use std::io::Read;
        let mut spool = SpoolBuffer::new(8, None);
        spool.write(b"12345").unwrap();
        spool.write(b"67890abcdef").unwrap();
        let mut body = spool.finish().unwrap();
        assert!(body.is_spooled());
        assert_eq!(body.len(), 16);
        let mut text = String::new();
        body.read_to_string(&mut text).unwrap();
        assert_eq!(text, "1234567890abcdef");
    }
}
