//! HTTP/1.1 as data: bytes in, requests out; responses in, bytes out.
//!
//! Owns the head parser, the header fields of a request ([`fields`]: one copy of the head's
//! bytes, a span per field), the body decoders, [`request::Request`], [`response::Response`], the
//! encoder that frames a response, the status mapping of the server's own errors, the shared
//! grammar (tokens, field values, authority) and HTTP dates. Never does I/O, never reads the
//! [`crate::Config`] (limits arrive as [`parse::Limits`]), never spawns or blocks.

pub(crate) mod body;
pub(crate) mod date;
pub(crate) mod encode;
pub(crate) mod fields;
pub(crate) mod grammar;
pub(crate) mod parse;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod status;
