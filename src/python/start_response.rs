//! `start_response(status, headers, exc_info=None)` and the `write(data)` callable it returns.
//!
//! The validation rules, `exc_info` and `write()` are documented in [`crate::python`].
//!
//! Validates and records what the application says; never sends anything itself.

use pyo3::exceptions::{PyAssertionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

/// A validated response head.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// The application's reason phrase when it is printable ASCII and not empty.
    pub(crate) reason: Option<String>,
    pub(crate) headers: Fields,
    /// The application's `Content-Length`, if it set one.
    pub(crate) content_length: Option<u64>,
}

/// The `start_response` callable of one request, and what the application told it.
#[pyclass(module = "maitred._maitred", name = "StartResponse")]
#[derive(Default)]
pub(crate) struct StartResponse {
    /// The head from the last accepted call.
    pub(crate) head: Option<Head>,
    /// Whether the head counts as sent (see the module documentation).
    pub(crate) headers_sent: bool,
    /// Data given to `write()`, not yet handed to the server.
    pub(crate) written: Vec<u8>,
}

/// Header names an application must not send (PEP 3333: hop-by-hop headers).
fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 7] = ["connection", "keep-alive", "te", "trailer", "trailers", "transfer-encoding", "upgrade"];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) || name.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("proxy-"))
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// Validates `"NNN reason"`.
fn parse_status(status: &Bound<'_, PyAny>) -> PyResult<(u16, Option<String>)> {
    let text = status
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("status must be a str, not {}", type_name(status))))?
        .to_cow()?;
    if text.chars().any(|c| c < ' ' || c == '\x7f') {
        return Err(PyValueError::new_err(format!("status {text:?} contains a control character")));
    }
    if text.chars().any(|c| c > '\u{ff}') {
        return Err(PyValueError::new_err(format!("status {text:?} is not ISO-8859-1 text")));
    }
    let bytes = text.as_bytes();
    let well_formed = bytes.len() >= 4 && bytes[..3].iter().all(u8::is_ascii_digit) && bytes[3] == b' ';
    if !well_formed {
        return Err(PyValueError::new_err(format!("status {text:?} is not a 3-digit code, a space and a reason")));
    }
    let code: u16 = text[..3].parse().unwrap_or(0);
    if !(200..=599).contains(&code) {
        return Err(PyValueError::new_err(format!("status {code} is not a final status (200-599)")));
    }
    let reason = &text[4..];
    let reason = (!reason.is_empty() && reason.is_ascii()).then(|| reason.to_string());
    Ok((code, reason))
}

/// Header fields as the server sends them: name, and value bytes.
type Fields = Vec<(String, Vec<u8>)>;

/// Validates the header list; returns it and the `Content-Length` it declares.
fn parse_headers(headers: &Bound<'_, PyAny>) -> PyResult<(Fields, Option<u64>)> {
    let not_a_list =
        || PyTypeError::new_err(format!("headers must be a list of (name, value) tuples, not {}", type_name(headers)));
    let list = headers.cast::<PyList>().map_err(|_| not_a_list())?;
    let mut out = Vec::with_capacity(list.len());
    let mut content_length = None;
    for item in list.iter() {
        let pair = item.cast::<PyTuple>().ok().filter(|t| t.len() == 2).ok_or_else(|| {
            PyTypeError::new_err(format!("each header must be a (name, value) tuple, not {}", type_name(&item)))
        })?;
        let (name, value) = (pair.get_item(0)?, pair.get_item(1)?);
        let name = name
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("header name must be a str, not {}", type_name(&name))))?
            .to_cow()?
            .into_owned();
        let value = value
            .cast::<PyString>()
            .map_err(|_| {
                PyTypeError::new_err(format!("value of header {name:?} must be a str, not {}", type_name(&value)))
            })?
            .to_cow()?;
        if !crate::http1::grammar::is_token(name.as_bytes()) {
            return Err(PyValueError::new_err(format!("header name {name:?} is not a valid HTTP token")));
        }
        if is_hop_by_hop(&name) {
            return Err(PyAssertionError::new_err(format!(
                "{name} is a hop-by-hop header; a WSGI application must not set it (PEP 3333)"
            )));
        }
        let mut bytes = Vec::with_capacity(value.len());
        for c in value.chars() {
            if (c < ' ' && c != '\t') || c == '\x7f' {
                return Err(PyValueError::new_err(format!(
                    "value of header {name:?} contains a control character (CR, LF, NUL, ...)"
                )));
            }
            let byte = u8::try_from(u32::from(c))
                .map_err(|_| PyValueError::new_err(format!("value of header {name:?} is not ISO-8859-1 text")))?;
            bytes.push(byte);
        }
        if name.eq_ignore_ascii_case("content-length") {
            let parsed = std::str::from_utf8(&bytes)
                .ok()
                .filter(|t| !t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| PyValueError::new_err(format!("Content-Length {value:?} is not a number")))?;
            if content_length.is_some_and(|n| n != parsed) {
                return Err(PyValueError::new_err("conflicting Content-Length headers"));
            }
            content_length = Some(parsed);
        }
        out.push((name, bytes));
    }
    Ok((out, content_length))
}

/// Whether `exc_info` was really given (not `None`, not `(None, None, None)`).
fn given<'py>(exc_info: Option<&Bound<'py, PyAny>>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(info) = exc_info.filter(|i| !i.is_none()) else { return Ok(None) };
    Ok(if info.get_item(0)?.is_none() { None } else { Some(info.clone()) })
}

#[pymethods]
impl StartResponse {
    /// `start_response(status, headers, exc_info=None)`; returns `write`.
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match given(exc_info)? {
            Some(info) => {
                if slf.borrow().headers_sent {
                    return Err(PyErr::from_value(info.get_item(1)?));
                }
            }
            None => {
                if slf.borrow().head.is_some() {
                    return Err(PyAssertionError::new_err("start_response() called a second time without exc_info"));
                }
            }
        }
        let (status, reason) = parse_status(status)?;
        let (headers, content_length) = parse_headers(headers)?;
        slf.borrow_mut().head = Some(Head { status, reason, headers, content_length });
        slf.getattr("write")
    }

    /// The `write(data)` callable: `data` is sent before the iterable's chunks.
    fn write(&mut self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.head.is_none() {
            return Err(PyAssertionError::new_err("write() called before start_response()"));
        }
        let data = data
            .cast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err(format!("write() takes bytes, not {}", type_name(data))))?;
        let bytes = data.as_bytes();
        if !bytes.is_empty() {
            self.written.extend_from_slice(bytes);
            self.headers_sent = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_names() {
        for name in ["Connection", "keep-alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Authenticate"]
        {
            assert!(is_hop_by_hop(name), "{name}");
        }
        for name in ["Content-Type", "Proxy", "Tex", "X-Connection"] {
            assert!(!is_hop_by_hop(name), "{name}");
        }
    }
}
