//! The status mapping: every error the server answers by itself, and its status and reason.
//!
//! Owns [`Rejection`] (the one list of the server's own refusals, each mapped to its status in
//! one `match`) and the standard reason phrases. Never writes a response or decides whether a
//! connection stays open: the engine answers a rejection and then always closes.

/// A request the server refuses by itself, before or instead of calling the handler.
///
/// Every rejection is answered with `Connection: close` and the connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Malformed or ambiguous syntax or framing (the reason is logged, not sent).
    BadRequest(&'static str),
    /// The head or the body did not arrive in time.
    Timeout,
    /// The body is larger than `max_body_size`.
    BodyTooLarge,
    /// The request line is longer than `max_request_line`.
    RequestLineTooLong,
    /// A header line, the head, or the header count exceeds its limit.
    HeadersTooLarge,
    /// An `Expect` value other than `100-continue`.
    ExpectationFailed,
    /// A transfer coding or method the server does not implement.
    NotImplemented(&'static str),
    /// The dispatch queue is full, or the server is shutting down.
    Overloaded,
    /// An HTTP version other than 1.0 or 1.1.
    VersionNotSupported,
    /// The server failed (e.g. could not spool a body to disk).
    Internal(&'static str),
}

impl Rejection {
    /// The status code this rejection is answered with.
    pub fn status(self) -> u16 {
        match self {
            Rejection::BadRequest(_) => 400,
            Rejection::Timeout => 408,
            Rejection::BodyTooLarge => 413,
            Rejection::RequestLineTooLong => 414,
            Rejection::ExpectationFailed => 417,
            Rejection::HeadersTooLarge => 431,
            Rejection::Internal(_) => 500,
            Rejection::NotImplemented(_) => 501,
            Rejection::Overloaded => 503,
            Rejection::VersionNotSupported => 505,
        }
    }

    /// A short reason for the error log.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            Rejection::BadRequest(why) | Rejection::NotImplemented(why) | Rejection::Internal(why) => why,
            Rejection::Timeout => "request not received in time",
            Rejection::BodyTooLarge => "body larger than max_body_size",
            Rejection::RequestLineTooLong => "request line longer than max_request_line",
            Rejection::HeadersTooLarge => "request head over a header limit",
            Rejection::ExpectationFailed => "unsupported Expect value",
            Rejection::Overloaded => "dispatch queue full",
            Rejection::VersionNotSupported => "unsupported HTTP version",
        }
    }
}

/// The standard reason phrase for `status`, or an empty string for an unknown code.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}
