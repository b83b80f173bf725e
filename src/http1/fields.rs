//! Header fields as received: the request head's bytes, copied once, and where each field lies
//! in them. Owns [`HeaderFields`] (the storage) and the views a handler reads, [`Headers`] and
//! [`Header`]. Never parses: the spans come from [`crate::http1::parse::parse_head`], which
//! also checks every rule the views rely on.
//!
//! A head costs two heap allocations however many fields it has: its bytes and the list of
//! spans (parsing a head of more than 128 fields, which only a raised `max_headers` allows,
//! also borrows a temporary vector). The fields are created on the I/O loop thread and dropped on a worker thread, where
//! an allocator's per-thread cache does not help, so each allocation saved per field counts.

use std::fmt;
use std::iter::FusedIterator;
use std::ops::Range;

/// A range of a head's bytes, compact: a head is at most `max_headers_size` bytes (16 MiB at
/// most), so offsets fit in 32 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The span of `part`, a slice taken from within `bytes`, or `None` when it is not inside
    /// `bytes` or past 4 GiB. Only addresses are compared: no `unsafe` is involved.
    pub(crate) fn within(bytes: &[u8], part: &[u8]) -> Option<Span> {
        let start = (part.as_ptr() as usize).checked_sub(bytes.as_ptr() as usize)?;
        let end = start.checked_add(part.len()).filter(|&end| end <= bytes.len())?;
        Some(Span { start: u32::try_from(start).ok()?, end: u32::try_from(end).ok()? })
    }

    /// The span's bytes in `bytes` (the bytes it was taken from).
    pub(crate) fn of(self, bytes: &[u8]) -> &[u8] {
        &bytes[self.range()]
    }

    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// Where one field's name and value lie in the head's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FieldSpan {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// A head's bytes, as text when they are valid UTF-8.
///
/// The method, the target and the field names are read as `&str`, and are ASCII (the parser
/// checked: the method and names are `httparse` tokens, a target with any other byte is
/// refused), but this crate keeps `unsafe` out of request handling, so turning bytes into a
/// `&str` means a UTF-8 check. Checked on every read, that was 40 to 60 instructions a call
/// and 7 calls for the smallest request (4% of its cost, measured with callgrind). So the
/// whole head is checked once, when it is stored (one pass, in the same allocation), and those
/// ranges are then sliced from a `str`. Only a head with obs-text (bytes 0x80–0xFF that are not
/// UTF-8) in a field value stays raw; its ranges are checked each time they are read.
#[derive(Clone)]
enum HeadBytes {
    /// Valid UTF-8: nearly every head.
    Text(Box<str>),
    /// Not valid UTF-8 (obs-text in some value).
    Raw(Box<[u8]>),
}

impl HeadBytes {
    fn new(bytes: Box<[u8]>) -> Self {
        // Neither conversion copies or reallocates: the capacity is the length.
        match String::from_utf8(bytes.into_vec()) {
            Ok(text) => HeadBytes::Text(text.into_boxed_str()),
            Err(raw) => HeadBytes::Raw(raw.into_bytes().into_boxed_slice()),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            HeadBytes::Text(text) => text.as_bytes(),
            HeadBytes::Raw(bytes) => bytes,
        }
    }

    /// The text of `span`, which must be one of the ASCII ranges described above.
    fn text(&self, span: Span) -> &str {
        match self {
            HeadBytes::Text(text) => &text[span.range()],
            HeadBytes::Raw(bytes) => {
                let text = std::str::from_utf8(span.of(bytes));
                debug_assert!(text.is_ok(), "the parser lets only ASCII through here: {:?}", span.of(bytes));
                text.unwrap_or_default()
            }
        }
    }
}

/// A request's header fields: the whole head as received (request line included, so the
/// method and target can point into it too), and a span per field, in order. The bytes are
/// the ones the parser read, with one exception that keeps them consistent with it: the minor
/// version of an `HTTP/1.2`…`HTTP/1.9` request line reads `1`.
#[derive(Clone)]
pub(crate) struct HeaderFields {
    bytes: HeadBytes,
    fields: Vec<FieldSpan>,
}

impl HeaderFields {
    /// Fields of `bytes`, each span taken from within them.
    pub(crate) fn new(bytes: Box<[u8]>, fields: Vec<FieldSpan>) -> Self {
        HeaderFields { bytes: HeadBytes::new(bytes), fields }
    }

    /// Fields made from `(name, value)` pairs as given, for tests of code that reads fields:
    /// no rule is checked and no whitespace trimmed, so a test can hand over values the parser
    /// would refuse. The names must be ASCII.
    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &[u8])]) -> Self {
        let mut bytes = b"GET / HTTP/1.1\r\n".to_vec();
        let mut spans = Vec::with_capacity(pairs.len());
        let at = |bytes: &Vec<u8>| u32::try_from(bytes.len()).expect("a small test head");
        for (name, value) in pairs {
            assert!(name.is_ascii(), "header name {name:?} is not ASCII");
            let name_start = at(&bytes);
            bytes.extend_from_slice(name.as_bytes());
            let name = Span { start: name_start, end: at(&bytes) };
            bytes.extend_from_slice(b": ");
            let value_start = at(&bytes);
            bytes.extend_from_slice(value);
            spans.push(FieldSpan { name, value: Span { start: value_start, end: at(&bytes) } });
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        HeaderFields::new(bytes.into_boxed_slice(), spans)
    }

    /// The head's bytes, which every span points into.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        self.bytes.bytes()
    }

    /// The text of `span`: the method's, the target's or a field name's.
    pub(crate) fn text(&self, span: Span) -> &str {
        self.bytes.text(span)
    }

    /// Every field, in order.
    pub(crate) fn iter(&self) -> Headers<'_> {
        Headers { bytes: &self.bytes, spans: self.fields.iter() }
    }

    /// The first field called `name` (case-insensitive).
    pub(crate) fn first(&self, name: &str) -> Option<Header<'_>> {
        self.iter().find(|h| h.is_named(name))
    }

    /// The value of every field called `name` (case-insensitive), in order.
    pub(crate) fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter().filter(move |h| h.is_named(name)).map(|h| h.value)
    }

    /// Keeps only the fields for which `keep` says yes, in order (the bytes stay as they are).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(Header<'_>) -> bool) {
        let bytes = &self.bytes;
        self.fields.retain(|span| keep(Header::at(bytes, span)));
    }
}

impl fmt::Debug for HeaderFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.iter(), f)
    }
}

/// One header field as received: the name as sent (case kept) and the value bytes, with
/// surrounding whitespace removed. Values never contain CR, LF or NUL. A view into the
/// request, from [`crate::Request::headers`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header<'a> {
    name: &'a str,
    value: &'a [u8],
}

impl<'a> Header<'a> {
    fn at(bytes: &'a HeadBytes, span: &FieldSpan) -> Self {
        Header { name: bytes.text(span.name), value: span.value.of(bytes.bytes()) }
    }

    /// The field name, as sent by the client (a token: ASCII letters, digits and
    /// ``!#$%&'*+-.^_`|~``).
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The value bytes (may hold obs-text bytes 0x80–0xFF).
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The value as text, if it is valid UTF-8.
    pub fn value_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.value).ok()
    }

    /// Whether the name is `name`, ignoring ASCII case.
    pub(crate) fn is_named(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

impl fmt::Debug for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("name", &self.name)
            .field("value", &format_args!("b\"{}\"", self.value.escape_ascii()))
            .finish()
    }
}

/// The header fields of a request, in the order received, duplicates kept: an iterator of
/// [`Header`] views, from [`crate::Request::headers`]. Cheap to clone, and it knows how many
/// fields are left ([`ExactSizeIterator::len`]).
///
/// ```
/// # fn handle(req: &maitred::Request) {
/// for field in req.headers() {
///     println!("{}: {}", field.name(), String::from_utf8_lossy(field.value()));
/// }
/// let cookies = req.headers().filter(|h| h.name().eq_ignore_ascii_case("cookie")).count();
/// println!("{cookies} cookie fields of {}", req.headers().len());
/// # }
/// ```
#[derive(Clone)]
pub struct Headers<'a> {
    bytes: &'a HeadBytes,
    spans: std::slice::Iter<'a, FieldSpan>,
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        self.spans.next().map(|span| Header::at(self.bytes, span))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }

    fn nth(&mut self, n: usize) -> Option<Header<'a>> {
        self.spans.nth(n).map(|span| Header::at(self.bytes, span))
    }
}

impl DoubleEndedIterator for Headers<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.spans.next_back().map(|span| Header::at(self.bytes, span))
    }
}

impl ExactSizeIterator for Headers<'_> {}

impl FusedIterator for Headers<'_> {}

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_is_taken_only_from_within_its_bytes() {
        let bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let span = Span::within(bytes, &bytes[16..20]).expect("a slice of the bytes");
        assert_eq!(span.of(bytes), b"Host");
        assert_eq!(Span::within(bytes, &bytes[bytes.len()..]).map(|s| s.of(bytes).len()), Some(0));
        // Anything else is refused (`parse_head` then answers 400), never sliced.
        let elsewhere = bytes.to_vec();
        assert_eq!(Span::within(bytes, &elsewhere[16..20]), None, "a slice of another buffer");
        assert_eq!(Span::within(&bytes[..18], &bytes[16..20]), None, "a slice running past the end");
        assert_eq!(Span::within(&bytes[17..], &bytes[16..20]), None, "a slice starting before them");
    }
}
