//! The WSGI `environ` dictionary of one request (PEP 3333, with CGI's variables as Waitress
//! and Gunicorn fill them in).
//!
//! Text follows PEP 3333's rule for native strings: every byte from the wire becomes the
//! code point of the same number (ISO-8859-1), so applications recover the exact bytes with
//! `value.encode("latin-1")`. Nothing is ever decoded as UTF-8.
//!
//! The keys and their values are listed in the documentation of [`crate::python`].
//!
//! Dropped headers: names containing `_` (after the CGI mapping `X-User` and `X_User` would
//! both be `HTTP_X_USER`, a way to smuggle a header past a proxy that filters one spelling),
//! `Transfer-Encoding` (the body is already de-chunked and its length is in
//! `CONTENT_LENGTH`), `Content-Length` (in `CONTENT_LENGTH`), and `Proxy` (httpoxy: it would
//! become `HTTP_PROXY`, which some libraries read as their proxy setting).
//!
//! Builds the dictionary only; never parses HTTP (the request arrives parsed) and never
//! touches a socket.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString, PyTuple};
use pyo3::{intern, IntoPyObjectExt};

use crate::http1::request::Request;

/// The entries every request shares, copied into each new environ.
pub(crate) fn template<'py>(py: Python<'py>, script_name: &str) -> PyResult<Bound<'py, PyDict>> {
    let environ = PyDict::new(py);
    environ.set_item(intern!(py, "SCRIPT_NAME"), latin1(py, script_name.as_bytes()))?;
    environ.set_item(intern!(py, "SERVER_SOFTWARE"), concat!("maitred/", env!("CARGO_PKG_VERSION")))?;
    environ.set_item(intern!(py, "wsgi.version"), PyTuple::new(py, [1, 0])?)?;
    environ.set_item(intern!(py, "wsgi.multithread"), PyBool::new(py, true))?;
    environ.set_item(intern!(py, "wsgi.multiprocess"), PyBool::new(py, false))?;
    environ.set_item(intern!(py, "wsgi.run_once"), PyBool::new(py, false))?;
    environ.set_item(intern!(py, "wsgi.input_terminated"), PyBool::new(py, true))?;
    environ.set_item(intern!(py, "wsgi.file_wrapper"), py.get_type::<super::response::FileWrapper>())?;
    Ok(environ)
}

/// The per-request objects that go into the environ.
pub(crate) struct Streams<'a, 'py> {
    pub(crate) input: &'a Bound<'py, PyAny>,
    pub(crate) errors: &'a Bound<'py, PyAny>,
}

/// Builds the environ of `request` from `template`; `path_info` is the decoded path after
/// the prefix, `body_len` the length of the (complete) body.
pub(crate) fn build<'py>(
    py: Python<'py>,
    template: &Bound<'py, PyDict>,
    request: &Request,
    path_info: &[u8],
    body_len: u64,
    streams: Streams<'_, 'py>,
) -> PyResult<Bound<'py, PyDict>> {
    let environ = template.copy()?;
    let set = |key: &Bound<'py, PyString>, value: Bound<'py, PyAny>| environ.set_item(key, value);
    set(intern!(py, "REQUEST_METHOD"), latin1(py, request.method().as_bytes()).into_any())?;
    set(intern!(py, "PATH_INFO"), latin1(py, path_info).into_any())?;
    set(intern!(py, "QUERY_STRING"), latin1(py, request.query().unwrap_or("").as_bytes()).into_any())?;
    set(intern!(py, "REQUEST_URI"), latin1(py, request.target().as_bytes()).into_any())?;
    set(intern!(py, "SERVER_PROTOCOL"), intern_version(py, request).into_any())?;
    let (name, port) = server_name_port(request);
    set(intern!(py, "SERVER_NAME"), latin1(py, name.as_bytes()).into_any())?;
    set(intern!(py, "SERVER_PORT"), PyString::new(py, &port).into_any())?;
    let client = request.client_addr();
    set(intern!(py, "REMOTE_ADDR"), PyString::new(py, &client.ip().to_string()).into_any())?;
    set(intern!(py, "REMOTE_PORT"), PyString::new(py, &client.port().to_string()).into_any())?;
    let scheme = if request.scheme() == "https" { intern!(py, "https") } else { intern!(py, "http") };
    set(intern!(py, "wsgi.url_scheme"), scheme.clone().into_any())?;
    if let Some(tls) = request.tls() {
        // mod_ssl's names (Apache, and what Gunicorn and uWSGI apps read).
        set(intern!(py, "HTTPS"), intern!(py, "on").clone().into_any())?;
        set(intern!(py, "SSL_PROTOCOL"), PyString::new(py, tls.protocol()).into_any())?;
        set(intern!(py, "SSL_CIPHER"), PyString::new(py, tls.cipher_suite()).into_any())?;
        let verify = match tls.client_subject() {
            Some(subject) => {
                set(intern!(py, "SSL_CLIENT_S_DN"), PyString::new(py, subject).into_any())?;
                intern!(py, "SUCCESS")
            }
            None => intern!(py, "NONE"),
        };
        set(intern!(py, "SSL_CLIENT_VERIFY"), verify.clone().into_any())?;
    }
    set(intern!(py, "wsgi.input"), streams.input.clone())?;
    set(intern!(py, "wsgi.errors"), streams.errors.clone())?;

    let mut has_length = false;
    for (key, value) in cgi_headers(request, &mut has_length) {
        environ.set_item(key.into_bound_py_any(py)?, latin1(py, &value))?;
    }
    if has_length {
        set(intern!(py, "CONTENT_LENGTH"), PyString::new(py, &body_len.to_string()).into_any())?;
    }
    if let Some(host) = request.host() {
        set(intern!(py, "HTTP_HOST"), latin1(py, host.as_bytes()).into_any())?;
    }
    Ok(environ)
}

fn intern_version<'py>(py: Python<'py>, request: &Request) -> Bound<'py, PyString> {
    match request.version() {
        crate::http1::request::Version::Http10 => intern!(py, "HTTP/1.0").clone(),
        _ => intern!(py, "HTTP/1.1").clone(),
    }
}

/// The request's headers as CGI variables (`CONTENT_TYPE`, `HTTP_*`), duplicates joined,
/// in the order first seen. Sets `has_length` when the body length was framed by the client
/// (`Content-Length` or chunked).
fn cgi_headers(request: &Request, has_length: &mut bool) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(request.headers().len());
    for header in request.headers() {
        let name = header.name();
        if name.contains('_') {
            continue;
        }
        let key = if name.eq_ignore_ascii_case("content-type") {
            "CONTENT_TYPE".to_string()
        } else if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding") {
            *has_length = true;
            continue;
        } else if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("proxy") {
            continue;
        } else {
            let mut key = String::with_capacity(5 + name.len());
            key.push_str("HTTP_");
            key.extend(name.chars().map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() }));
            key
        };
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, value)) => {
                let separator: &[u8] = if key == "HTTP_COOKIE" { b"; " } else { b", " };
                value.extend_from_slice(separator);
                value.extend_from_slice(header.value());
            }
            None => out.push((key, header.value().to_vec())),
        }
    }
    out
}

/// `SERVER_NAME` and `SERVER_PORT`: from the host the client asked for, else the local
/// address.
fn server_name_port(request: &Request) -> (String, String) {
    let default_port = if request.scheme() == "https" { "443" } else { "80" };
    match request.host().filter(|h| !h.is_empty()) {
        Some(host) => {
            let (name, port) = split_host(host);
            (name.to_string(), port.unwrap_or(default_port).to_string())
        }
        None => {
            let local = request.local_addr();
            (local.ip().to_string(), local.port().to_string())
        }
    }
}

/// Splits `host[:port]` (an IPv6 literal keeps its brackets).
fn split_host(host: &str) -> (&str, Option<&str>) {
    let split_at = match host.rfind(']') {
        Some(close) => host[close..].find(':').map(|i| close + i),
        None => host.rfind(':'),
    };
    match split_at {
        Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) && i + 1 < host.len() => {
            (&host[..i], Some(&host[i + 1..]))
        }
        Some(i) if i + 1 == host.len() => (&host[..i], None),
        _ => (host, None),
    }
}

/// `bytes` as a native string: each byte is the code point of the same number.
pub(crate) fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.is_ascii() => PyString::new(py, text),
        _ => PyString::new(py, &bytes.iter().map(|&b| char::from(b)).collect::<String>()),
    }
}

/// Decodes every `%XX` once; a `%` not followed by two hex digits is kept as it is.
pub(crate) fn percent_decode(raw: &[u8]) -> Vec<u8> {
    percent_encoding::percent_decode(raw).collect()
}

/// `PATH_INFO` for `path` (still percent-encoded) under `prefix` (`""` or like `/app`): the
/// decoded path after the prefix, or `None` when the path is outside it. The prefix is
/// matched on whole segments of the decoded path, as Waitress does. A path not starting with
/// `/` is outside every prefix.
pub(crate) fn path_info(prefix: &str, path: &str) -> Option<Vec<u8>> {
    let decoded = percent_decode(path.as_bytes());
    // Never a PATH_INFO that does not start with `/` (only `*` could, and the handler
    // answers `OPTIONS *` itself).
    if !decoded.starts_with(b"/") {
        return None;
    }
    if prefix.is_empty() {
        return Some(decoded);
    }
    let rest = decoded.strip_prefix(prefix.as_bytes())?;
    if rest.is_empty() || rest[0] == b'/' {
        Some(rest.to_vec())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_is_lenient_and_single() {
        assert_eq!(percent_decode(b"/a%20b/%2541%zz%4"), b"/a b/%41%zz%4");
        assert_eq!(percent_decode(b"/caf%C3%A9"), b"/caf\xc3\xa9");
        assert_eq!(percent_decode(b"%"), b"%");
        assert_eq!(percent_decode(b"%4"), b"%4");
        assert_eq!(percent_decode(b"%41"), b"A");
    }

    #[test]
    fn prefix_matches_whole_segments() {
        assert_eq!(path_info("", "/x%2Fy"), Some(b"/x/y".to_vec()));
        assert_eq!(path_info("/app", "/app"), Some(Vec::new()));
        assert_eq!(path_info("/app", "/app/x"), Some(b"/x".to_vec()));
        assert_eq!(path_info("/app", "/%61pp/x"), Some(b"/x".to_vec()));
        assert_eq!(path_info("/app", "/application"), None);
        assert_eq!(path_info("/app", "/"), None);
        assert_eq!(path_info("", "*"), None);
        assert_eq!(path_info("/app", "*"), None);
    }

    #[test]
    fn hosts_split_into_name_and_port() {
        assert_eq!(split_host("example.com:8080"), ("example.com", Some("8080")));
        assert_eq!(split_host("example.com"), ("example.com", None));
        assert_eq!(split_host("[::1]:8080"), ("[::1]", Some("8080")));
        assert_eq!(split_host("[::1]"), ("[::1]", None));
        assert_eq!(split_host("example.com:"), ("example.com", None));
    }
}
