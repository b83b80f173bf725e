//! Access log lines: Apache's Common and Combined formats, or one JSON object per request.
//! Owns the line formats and the one writer of lines ([`AccessLog`]). Never decides whether a
//! request is logged and never blocks the thread that logs: the worker (for requests a handler
//! answered) and the I/O loop (for requests the server answered itself) hand a record to
//! [`AccessLog::write`], which formats it and queues the line for the `maitred-access-log`
//! thread (see [`writer`]).
//!
//! [`format_line`] appends one line, without the trailing newline, for one [`AccessRecord`].
//! The formats, in Apache `LogFormat` notation (every time is UTC):
//!
//! | format | fields |
//! |---|---|
//! | `common` | `%h - - %t "%r" %>s %b %D` |
//! | `combined` | `%h - - %t "%r" %>s %b "%{Referer}i" "%{User-agent}i" %D` |
//! | `json` | `{"time":…,"client":…,"method":…,"target":…,"version":…,"status":…,"bytes":…,"referer":…,"user_agent":…,"duration_us":…}` (plus `"answered_by":"server"`, see below) |
//!
//! That is, Apache's own Common and Combined formats with the request time in microseconds
//! (`%D`) appended as a last field, for example
//!
//! ```text
//! 192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] "GET /x HTTP/1.1" 200 2326 1234
//! 192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] "GET /x HTTP/1.1" 200 2326 "https://a.example/" "curl/8.5.0" 1234
//! ```
//!
//! Requests the server answers itself, before or instead of the handler (400, 408, 413, 414,
//! 431, 501, 503, 505, ...), are logged too, marked: in Common and Combined the ident field
//! (`%l`, the second field, otherwise always `-`) is `maitred`; in JSON the object ends with
//! `"answered_by":"server"` (absent on lines for requests a handler answered). Their client is
//! the peer address (forwarding headers are not read for a refused request); when no complete
//! request line had arrived, the request line is `"-"` (Apache's way) and JSON's `method`,
//! `target` and `version` are `null`. For example:
//!
//! ```text
//! 192.0.2.7 maitred - [10/Oct/2000:13:55:36 +0000] "POST /upload HTTP/1.1" 413 28 211
//! 192.0.2.7 maitred - [10/Oct/2000:13:55:46 +0000] "-" 408 26 10000154
//! ```
//!
//! In Common and Combined, `%b` is `-` when no body bytes were sent or the count is unknown,
//! and a missing or empty Referer or User-Agent is `"-"`. The request line, Referer and
//! User-Agent are escaped as Apache does, so a line can always be split on its quotes: `"` and
//! `\` get a backslash, and control characters and bytes from 0x80 up become `\xhh`.
//!
//! In JSON, `time` is RFC 3339 with microseconds (`2026-11-25T18:04:24.144123Z`), `status`,
//! `bytes` and `duration_us` are numbers (`bytes`, `referer` and `user_agent` may be `null`),
//! and the line is always valid UTF-8 JSON: bytes that are not UTF-8 are read as Latin-1 (each
//! byte becomes the code point of the same value), and `"`, `\`, control characters (C0, DEL
//! and C1) and U+2028/U+2029 are escaped.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http1::date;

mod writer;
pub(crate) use writer::{AccessLog, AccessLogThread, Refused};

/// The `log` target of access log records. The logger set up by [`crate::launch()`] writes
/// them, unprefixed, to standard output.
pub const TARGET: &str = "maitred::access";

/// The format of the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// No access log.
    Off,
    /// Apache Common Log Format, plus the request time in microseconds.
    Common,
    /// Apache Combined Log Format, plus the request time in microseconds.
    Combined,
    /// One JSON object per line.
    Json,
}

impl AccessLogFormat {
    /// Every format, in the order the choices are listed.
    const ALL: [AccessLogFormat; 4] =
        [AccessLogFormat::Off, AccessLogFormat::Common, AccessLogFormat::Combined, AccessLogFormat::Json];

    /// The name as written in the configuration: `off`, `common`, `combined` or `json`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccessLogFormat::Off => "off",
            AccessLogFormat::Common => "common",
            AccessLogFormat::Combined => "combined",
            AccessLogFormat::Json => "json",
        }
    }
}

impl FromStr for AccessLogFormat {
    type Err = String;

    /// Parses `off`, `common`, `combined` or `json`, in any case.
    fn from_str(text: &str) -> Result<Self, String> {
        AccessLogFormat::ALL.into_iter().find(|format| text.eq_ignore_ascii_case(format.as_str())).ok_or_else(|| {
            let choices: Vec<&str> = AccessLogFormat::ALL.iter().map(AccessLogFormat::as_str).collect();
            format!("unknown access log format {text:?}: expected one of {}", choices.join(", "))
        })
    }
}

impl fmt::Display for AccessLogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the access log records about one request and its response.
#[derive(Clone, Copy, Debug)]
pub struct AccessRecord<'a> {
    /// The client's address (after any trusted proxy resolution).
    pub client: IpAddr,
    /// When the request arrived.
    pub time: SystemTime,
    /// The request method, e.g. `GET`.
    pub method: &'a str,
    /// The request target as sent, e.g. `/x?y=1`.
    pub target: &'a str,
    /// The protocol version, e.g. `HTTP/1.1`.
    pub version: &'a str,
    /// The response status code.
    pub status: u16,
    /// Body bytes sent; `None` when unknown.
    pub bytes: Option<u64>,
    /// The `Referer` field value, if the request had one.
    pub referer: Option<&'a [u8]>,
    /// The `User-Agent` field value, if the request had one.
    pub user_agent: Option<&'a [u8]>,
    /// How long the request took, from its arrival until the response was sent.
    pub duration: Duration,
    /// The server answered the request itself (an error or a 503), not a handler.
    pub by_server: bool,
}

/// Appends the log line for `record` in `format` to `out`, without a trailing newline. With
/// [`AccessLogFormat::Off`] nothing is appended.
pub fn format_line(format: AccessLogFormat, record: &AccessRecord<'_>, out: &mut String) {
    match format {
        AccessLogFormat::Off => {}
        AccessLogFormat::Common => {
            push_common(record, out);
            push_duration(record.duration, out);
        }
        AccessLogFormat::Combined => {
            push_common(record, out);
            for value in [record.referer, record.user_agent] {
                out.push_str(" \"");
                match value {
                    Some(value) if !value.is_empty() => push_apache_escaped(value, out),
                    _ => out.push('-'),
                }
                out.push('"');
            }
            push_duration(record.duration, out);
        }
        AccessLogFormat::Json => push_json(record, out),
    }
}

/// `%h - - %t "%r" %>s %b`
fn push_common(record: &AccessRecord<'_>, out: &mut String) {
    let t = Civil::from_system_time(record.time);
    let month = date::MONTHS.get(t.month.wrapping_sub(1) as usize).copied().unwrap_or("???");
    let _ = write!(
        out,
        "{} {} - [{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000] \"",
        record.client,
        if record.by_server { "maitred" } else { "-" },
        t.day,
        t.year,
        t.hour,
        t.minute,
        t.second
    );
    if record.method.is_empty() {
        out.push('-');
    } else {
        push_apache_escaped(record.method.as_bytes(), out);
        out.push(' ');
        push_apache_escaped(record.target.as_bytes(), out);
        out.push(' ');
        push_apache_escaped(record.version.as_bytes(), out);
    }
    let _ = write!(out, "\" {} ", record.status);
    match record.bytes {
        None | Some(0) => out.push('-'),
        Some(bytes) => {
            let _ = write!(out, "{bytes}");
        }
    }
}

/// ` %D`: the duration in whole microseconds.
fn push_duration(duration: Duration, out: &mut String) {
    let _ = write!(out, " {}", duration.as_micros());
}

/// Apache's log escaping: `"` and `\` backslash-escaped; controls, DEL and non-ASCII as `\xhh`.
fn push_apache_escaped(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
}

fn push_json(record: &AccessRecord<'_>, out: &mut String) {
    let t = Civil::from_system_time(record.time);
    let _ = write!(
        out,
        "{{\"time\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z\",\"client\":\"{}\",\"method\":",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.micros, record.client
    );
    for (key, value) in [("method", record.method), ("target", record.target), ("version", record.version)] {
        if key != "method" {
            let _ = write!(out, ",\"{key}\":");
        }
        if record.method.is_empty() {
            out.push_str("null");
        } else {
            push_json_string(value.as_bytes(), out);
        }
    }
    let _ = write!(out, ",\"status\":{},\"bytes\":", record.status);
    match record.bytes {
        Some(bytes) => {
            let _ = write!(out, "{bytes}");
        }
        None => out.push_str("null"),
    }
    for (key, value) in [("referer", record.referer), ("user_agent", record.user_agent)] {
        let _ = write!(out, ",\"{key}\":");
        match value {
            Some(value) => push_json_string(value, out),
            None => out.push_str("null"),
        }
    }
    let _ = write!(out, ",\"duration_us\":{}", record.duration.as_micros());
    out.push_str(if record.by_server { ",\"answered_by\":\"server\"}" } else { "}" });
}

/// A JSON string of `bytes`: UTF-8 sequences as they are, any other byte as Latin-1.
fn push_json_string(bytes: &[u8], out: &mut String) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        chunk.valid().chars().for_each(|c| push_json_char(c, out));
        chunk.invalid().iter().for_each(|&b| push_json_char(char::from(b), out));
    }
    out.push('"');
}

fn push_json_char(c: char, out: &mut String) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        // C0, DEL and C1 controls; U+2028 and U+2029 end lines in some readers.
        c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// A UTC calendar date and time of day, proleptic Gregorian.
#[derive(Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
}

impl Civil {
    /// The UTC time of `time`, which may be before 1970.
    fn from_system_time(time: SystemTime) -> Civil {
        let micros: i128 = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i128::try_from(after.as_micros()).unwrap_or(i128::MAX),
            Err(before) => i128::try_from(before.duration().as_micros()).map_or(i128::MIN, |m| -m),
        };
        let seconds = micros.div_euclid(1_000_000);
        let days = i64::try_from(seconds.div_euclid(86_400)).unwrap_or(0);
        let second_of_day = seconds.rem_euclid(86_400) as u32;
        let (year, month, day) = date::civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: second_of_day / 3600,
            minute: second_of_day / 60 % 60,
            second: second_of_day % 60,
            micros: micros.rem_euclid(1_000_000) as u32,
        }
    }
}

#[cfg(test)]
mod tests;
