//! PEP 3333 behaviour of the WSGI front end, against inline fixture applications compiled
//! with pyo3 and served in-process, spoken to in raw bytes. Needs `--features python`.
#![cfg(feature = "python")]

mod common;
use common::*;

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use maitred::python::WsgiHandler;
use maitred::Config;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

static MODULES: AtomicUsize = AtomicUsize::new(0);

/// Compiles `source` as a new module.
fn module(source: &str) -> Py<PyModule> {
    Python::initialize();
    Python::attach(|py| {
        let n = MODULES.fetch_add(1, Ordering::Relaxed);
        let code = CString::new(source).unwrap();
        let name = CString::new(format!("wsgi_fixture_{n}")).unwrap();
        PyModule::from_code(py, &code, c"wsgi_fixture.py", &name)
            .unwrap_or_else(|e| panic!("fixture does not compile: {e}"))
            .unbind()
    })
}

/// A fixture module's `app`, served in-process.
struct Wsgi {
    server: TestServer,
    module: Py<PyModule>,
}

fn serve(source: &str) -> Wsgi {
    serve_with(source, |_| {})
}

fn serve_with(source: &str, adjust: impl FnOnce(&mut Config)) -> Wsgi {
    let module = module(source);
    let app = Python::attach(|py| module.bind(py).getattr("app").unwrap().unbind());
    let mut config = test_config();
    adjust(&mut config);
    let handler = WsgiHandler::new(app, &config);
    let server = TestServer::with_config(move |c| *c = config, handler);
    Wsgi { server, module }
}

impl Wsgi {
    fn get(&self, target: &str) -> RawResponse {
        let mut c = self.server.client();
        c.send(format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n"));
        c.response()
    }

    /// `str(expr)` evaluated in the fixture module.
    fn eval(&self, expr: &str) -> String {
        Python::attach(|py| {
            let code = CString::new(expr).unwrap();
            let globals = self.module.bind(py).dict();
            py.eval(&code, Some(&globals), None).unwrap().str().unwrap().to_string()
        })
    }

    /// Waits up to 5 s for `expr` to be true in the fixture module.
    fn wait_for(&self, expr: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.eval(expr) == "True" {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

/// Raw bytes of a whole exchange on one connection, until the server closes it.
fn raw_exchange(server: &TestServer, request: &[u8]) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read failed after {:?}: {e}; got {:?}", start.elapsed(), String::from_utf8_lossy(&out)),
        }
    }
    (out, start.elapsed())
}

fn json(r: &RawResponse) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body_text()))
}

const ENVIRON_APP: &str = r#"
import json
calls = 0
def app(environ, start_response):
    global calls
    calls += 1
    out = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int))}
    out['wsgi.version'] = list(environ['wsgi.version'])
    out['cgi_values_are_str'] = all(type(v) is str for k, v in environ.items() if k.isupper())
    out['has_input'] = hasattr(environ['wsgi.input'], 'read')
    out['has_errors'] = hasattr(environ['wsgi.errors'], 'write')
    out['has_file_wrapper'] = callable(environ['wsgi.file_wrapper'])
    body = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
"#;

#[test]
fn environ_follows_pep_3333() {
    let w = serve(ENVIRON_APP);
    let mut c = w.server.client();
    let local_port = c.stream.local_addr().unwrap().port();
    c.send(
        b"GET /a%20b/caf%C3%A9/x%2Fy?q=%41+b&c HTTP/1.1\r\nHost: example.com:8081\r\nX-Dup: one\r\n\
          Cookie: a=1\r\nX-Dup: two\r\nCookie: b=2\r\nX_Smuggled: evil\r\nX-Latin: caf\xe9\r\n\
          Proxy: http://evil\r\nUser-Agent: t\r\n\r\n",
    );
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.body_text());
    let env = json(&r);
    let s = |k: &str| env.get(k).and_then(|v| v.as_str()).map(str::to_string);
    assert_eq!(s("REQUEST_METHOD").as_deref(), Some("GET"));
    assert_eq!(s("SCRIPT_NAME").as_deref(), Some(""));
    // Percent-decoded once, bytes as latin-1 code points, never UTF-8-decoded.
    assert_eq!(s("PATH_INFO").as_deref(), Some("/a b/caf\u{c3}\u{a9}/x/y"));
    assert_eq!(s("QUERY_STRING").as_deref(), Some("q=%41+b&c"));
    assert_eq!(s("REQUEST_URI").as_deref(), Some("/a%20b/caf%C3%A9/x%2Fy?q=%41+b&c"));
    assert_eq!(s("SERVER_PROTOCOL").as_deref(), Some("HTTP/1.1"));
    assert_eq!(s("SERVER_NAME").as_deref(), Some("example.com"));
    assert_eq!(s("SERVER_PORT").as_deref(), Some("8081"));
    assert_eq!(s("HTTP_HOST").as_deref(), Some("example.com:8081"));
    assert_eq!(s("REMOTE_ADDR").as_deref(), Some("127.0.0.1"));
    assert_eq!(s("REMOTE_PORT"), Some(local_port.to_string()));
    assert_eq!(s("HTTP_X_DUP").as_deref(), Some("one, two"));
    assert_eq!(s("HTTP_COOKIE").as_deref(), Some("a=1; b=2"));
    assert_eq!(s("HTTP_X_LATIN").as_deref(), Some("caf\u{e9}"));
    assert_eq!(s("HTTP_USER_AGENT").as_deref(), Some("t"));
    for absent in ["HTTP_X_SMUGGLED", "HTTP_PROXY", "CONTENT_LENGTH", "CONTENT_TYPE", "HTTP_CONTENT_LENGTH"] {
        assert!(env.get(absent).is_none(), "{absent} should be absent: {env}");
    }
    assert_eq!(env["wsgi.version"], serde_json::json!([1, 0]));
    assert_eq!(s("wsgi.url_scheme").as_deref(), Some("http"));
    for (key, value) in [
        ("wsgi.multithread", true),
        ("wsgi.multiprocess", false),
        ("wsgi.run_once", false),
        ("wsgi.input_terminated", true),
        ("cgi_values_are_str", true),
        ("has_input", true),
        ("has_errors", true),
        ("has_file_wrapper", true),
    ] {
        assert_eq!(env[key], serde_json::json!(value), "{key}");
    }

    // HTTP/1.0 without Host: the local address; a POST body's length and type.
    let mut c = w.server.client();
    c.send("POST /p HTTP/1.0\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
    let env = json(&c.response());
    assert_eq!(env["SERVER_NAME"], "127.0.0.1");
    assert_eq!(env["SERVER_PORT"], w.server.addr.port().to_string());
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/1.0");
    assert_eq!(env["CONTENT_LENGTH"], "5");
    assert_eq!(env["CONTENT_TYPE"], "text/plain");
    assert!(env.get("HTTP_HOST").is_none());
}

#[test]
fn url_prefix_is_script_name_and_outside_is_404() {
    let w = serve_with(ENVIRON_APP, |c| c.url_prefix = "/app".into());
    let env = json(&w.get("/app/x/y?z"));
    assert_eq!((env["SCRIPT_NAME"].as_str(), env["PATH_INFO"].as_str()), (Some("/app"), Some("/x/y")));
    let env = json(&w.get("/app"));
    assert_eq!((env["SCRIPT_NAME"].as_str(), env["PATH_INFO"].as_str()), (Some("/app"), Some("")));
    let env = json(&w.get("/%61pp/%2e"));
    assert_eq!(env["PATH_INFO"], "/.");
    assert_eq!(w.eval("calls"), "3");
    for outside in ["/application", "/", "/other/app", "/ap"] {
        assert_eq!(w.get(outside).status, 404, "{outside}");
    }
    assert_eq!(w.eval("calls"), "3", "the application is not called outside the prefix");
}

#[test]
fn trusted_proxy_sets_remote_addr_scheme_and_host() {
    let w = serve_with(ENVIRON_APP, |c| c.trusted_proxies = "127.0.0.1".into());
    let mut c = w.server.client();
    c.send(
        "GET / HTTP/1.1\r\nHost: internal:8080\r\nX-Forwarded-For: 203.0.113.9\r\n\
         X-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\n\r\n",
    );
    let env = json(&c.response());
    assert_eq!(env["REMOTE_ADDR"], "203.0.113.9");
    assert_eq!(env["wsgi.url_scheme"], "https");
    assert_eq!(env["HTTP_HOST"], "public.example");
    assert_eq!(env["SERVER_NAME"], "public.example");
    assert_eq!(env["SERVER_PORT"], "443");
}

const INPUT_APP: &str = r#"
import json
def app(environ, start_response):
    inp = environ['wsgi.input']
    op = environ['QUERY_STRING']
    if op == 'read': r = [inp.read(), inp.read()]
    elif op == 'read-none': r = [inp.read(None)]
    elif op == 'read-neg': r = [inp.read(-1)]
    elif op == 'read-n': r = [inp.read(4), inp.read(3), inp.read(0), inp.read(1000), inp.read(5)]
    elif op == 'readline': r = [inp.readline() for _ in range(5)]
    elif op == 'readline-n': r = [inp.readline(3), inp.readline(3), inp.readline(100), inp.readline(-1)]
    elif op == 'readlines': r = inp.readlines()
    elif op == 'readlines-5': r = inp.readlines(5)
    elif op == 'readlines-6': r = inp.readlines(6)
    elif op == 'iter': r = list(inp)
    elif op == 'mixed': r = [inp.readline(), inp.read(3)] + inp.readlines()
    out = [x.decode('latin-1') for x in r]
    out.append(environ.get('CONTENT_LENGTH'))
    out.append('HTTP_TRANSFER_ENCODING' in environ)
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(out).encode()]
"#;

#[test]
fn wsgi_input_read_variants_in_memory_spooled_and_chunked() {
    let body: &[u8] = b"line1\nline two\n\xffend";
    let expected: [(&str, Vec<&[u8]>); 11] = [
        ("read", vec![body, b""]),
        ("read-none", vec![body]),
        ("read-neg", vec![body]),
        ("read-n", vec![b"line", b"1\nl", b"", b"ine two\n\xffend", b""]),
        ("readline", vec![b"line1\n", b"line two\n", b"\xffend", b"", b""]),
        ("readline-n", vec![b"lin", b"e1\n", b"line two\n", b"\xffend"]),
        ("readlines", vec![b"line1\n", b"line two\n", b"\xffend"]),
        ("readlines-5", vec![b"line1\n"]),
        ("readlines-6", vec![b"line1\n", b"line two\n"]),
        ("iter", vec![b"line1\n", b"line two\n", b"\xffend"]),
        ("mixed", vec![b"line1\n", b"lin", b"e two\n", b"\xffend"]),
    ];
    for spool in [false, true] {
        let w = serve_with(INPUT_APP, |c| c.body_spool_threshold = if spool { 0 } else { 1 << 20 });
        for chunked in [false, true] {
            for (op, want) in &expected {
                let mut request = format!("POST /?{op} HTTP/1.1\r\nHost: t\r\n").into_bytes();
                if chunked {
                    request.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n5\r\nline1\r\n");
                    request.extend_from_slice(b"e\r\n\nline two\n\xffend\r\n0\r\n\r\n");
                } else {
                    request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                    request.extend_from_slice(body);
                }
                let mut c = w.server.client();
                c.send(&request);
                let r = c.response();
                assert_eq!(r.status, 200, "{op}: {}", r.body_text());
                let got = json(&r);
                let mut want_json: Vec<serde_json::Value> =
                    want.iter().map(|b| b.iter().map(|&x| char::from(x)).collect::<String>().into()).collect();
                want_json.push(body.len().to_string().into());
                want_json.push(false.into());
                assert_eq!(got, serde_json::Value::Array(want_json), "{op}, spooled {spool}, chunked {chunked}");
            }
        }
    }
}

#[test]
fn start_response_validates_status_and_headers() {
    let w = serve(
        r#"
import json
CASES = {
    'status-int': (200, []),
    'status-short': ('20 OK', []),
    'status-no-reason': ('200', []),
    'status-no-space': ('200OK', []),
    'status-letters': ('abc OK', []),
    'status-crlf': ('200 OK\r\nX-Injected: 1', []),
    'status-1xx': ('101 Switching Protocols', []),
    'status-600': ('600 Nope', []),
    'headers-tuple': ('200 OK', (('A', 'b'),)),
    'header-list': ('200 OK', [['A', 'b']]),
    'header-triple': ('200 OK', [('A', 'b', 'c')]),
    'value-bytes': ('200 OK', [('A', b'b')]),
    'name-bytes': ('200 OK', [(b'A', 'b')]),
    'name-space': ('200 OK', [('X A', 'b')]),
    'name-colon': ('200 OK', [('X:A', 'b')]),
    'name-empty': ('200 OK', [('', 'b')]),
    'value-crlf': ('200 OK', [('X-A', 'a\r\nX-Injected: 1')]),
    'value-lf': ('200 OK', [('X-A', 'a\nb')]),
    'value-nul': ('200 OK', [('X-A', 'a\x00b')]),
    'value-euro': ('200 OK', [('X-A', '\u20ac')]),
    'hop-connection': ('200 OK', [('Connection', 'close')]),
    'hop-keep-alive': ('200 OK', [('Keep-Alive', 'timeout=5')]),
    'hop-te': ('200 OK', [('TE', 'trailers')]),
    'hop-trailer': ('200 OK', [('Trailer', 'X')]),
    'hop-transfer-encoding': ('200 OK', [('Transfer-Encoding', 'chunked')]),
    'hop-upgrade': ('200 OK', [('Upgrade', 'h2c')]),
    'hop-proxy': ('200 OK', [('Proxy-Authenticate', 'Basic')]),
    'bad-length': ('200 OK', [('Content-Length', '12a')]),
    'two-lengths': ('200 OK', [('Content-Length', '1'), ('Content-Length', '2')]),
}
def app(environ, start_response):
    results = {}
    for name, (status, headers) in CASES.items():
        try:
            start_response(status, headers)
            results[name] = 'accepted'
        except Exception as e:
            results[name] = type(e).__name__
    start_response('200 OK', [('Content-Type', 'application/json'), ('X-Fine', 'tab\there')])
    try:
        start_response('200 OK', [])
        results['second-call'] = 'accepted'
    except Exception as e:
        results['second-call'] = type(e).__name__
    return [json.dumps(results).encode()]
"#,
    );
    let r = w.get("/");
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(r.header("x-fine"), Some("tab\there"));
    let got = json(&r);
    let expect = |names: &[&str], exception: &str| {
        for name in names {
            assert_eq!(got[*name], exception, "{name}: {got}");
        }
    };
    expect(&["status-int", "headers-tuple", "header-list", "header-triple", "value-bytes", "name-bytes"], "TypeError");
    expect(
        &[
            "status-short",
            "status-no-reason",
            "status-no-space",
            "status-letters",
            "status-crlf",
            "status-1xx",
            "status-600",
            "name-space",
            "name-colon",
            "name-empty",
            "value-crlf",
            "value-lf",
            "value-nul",
            "value-euro",
            "bad-length",
            "two-lengths",
        ],
        "ValueError",
    );
    expect(
        &[
            "hop-connection",
            "hop-keep-alive",
            "hop-te",
            "hop-trailer",
            "hop-transfer-encoding",
            "hop-upgrade",
            "hop-proxy",
            "second-call",
        ],
        "AssertionError",
    );
}

#[test]
fn header_injection_is_a_500_without_the_injected_header() {
    let w = serve(
        r#"
def app(environ, start_response):
    start_response('200 OK', [('X-A', 'a\r\nX-Injected: 1')])
    return [b'never']
"#,
    );
    let (raw, _) = raw_exchange(&w.server, b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 500 "), "{text}");
    assert!(!text.to_ascii_lowercase().contains("x-injected") && !text.contains("never"), "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert_eq!(text.matches("HTTP/1.1").count(), 1, "closed after the 500: {text}");
}

#[test]
fn exc_info_replaces_headers_before_they_are_sent() {
    let w = serve(
        r#"
import sys
def app(environ, start_response):
    start_response('200 OK', [('X-First', '1')])
    try:
        raise RuntimeError('boom')
    except RuntimeError:
        start_response('503 Try Later', [('X-Second', '2')], sys.exc_info())
    return [b'replaced']
"#,
    );
    let r = w.get("/");
    assert_eq!((r.status, r.reason.as_str()), (503, "Try Later"));
    assert_eq!(r.header("x-second"), Some("2"));
    assert!(r.header("x-first").is_none());
    assert_eq!(r.body_text(), "replaced");
}

#[test]
fn exc_info_is_reraised_once_headers_are_sent() {
    let w = serve(
        r#"
import sys
seen = []
def app(environ, start_response):
    start_response('200 OK', [])
    def body():
        yield b'first;'
        try:
            raise KeyError('late')
        except KeyError as e:
            try:
                start_response('500 Oops', [], sys.exc_info())
                seen.append('not raised')
            except KeyError as again:
                seen.append('same' if again is e else 'other')
        yield b'second'
    return body()
"#,
    );
    let r = w.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.body_text(), "first;second");
    assert_eq!(w.eval("seen"), "['same']");
}

#[test]
fn write_callable_data_comes_before_the_iterable() {
    let w = serve(
        r#"
def app(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    write(b'hello ')
    write(b'')
    if environ['QUERY_STRING'] == 'gen':
        def body():
            write(b'big ')
            yield b'world'
            write(b', again')
            yield b''
        return body()
    return [b'world', b'!']
"#,
    );
    assert_eq!(w.get("/").body_text(), "hello world!");
    assert_eq!(w.get("/?gen").body_text(), "hello big world, again");
}

#[test]
fn a_generator_may_call_start_response_lazily() {
    let w = serve(
        r#"
def app(environ, start_response):
    yield b''
    start_response('201 Created', [('X-Lazy', 'yes')])
    yield b'lazy '
    yield b''
    yield b'body'
"#,
    );
    let r = w.get("/");
    assert_eq!((r.status, r.header("x-lazy"), r.framing), (201, Some("yes"), "chunked"));
    assert_eq!(r.body_text(), "lazy body");
}

const CLOSE_APP: &str = r#"
closed = []
class Body:
    def __init__(self, name, chunks, fail=False, endless=False):
        self.name, self.chunks, self.fail, self.endless = name, chunks, fail, endless
    def __iter__(self):
        for c in self.chunks:
            yield c
        if self.fail:
            raise RuntimeError('failed while iterating')
        while self.endless:
            yield b'x' * 65536
    def close(self):
        closed.append(self.name)
def app(environ, start_response):
    q = environ['QUERY_STRING']
    if q == 'raise-first':
        start_response('200 OK', [])
        return Body(q, [], fail=True)
    start_response('200 OK', [('Content-Length', '2')] if q == 'sized' else [])
    if q == 'endless':
        return Body(q, [b'start'], endless=True)
    if q == 'fail':
        return Body(q, [b'a'], fail=True)
    if q == 'sized':
        return Body(q, [b'ab', b'never pulled'], endless=True)
    return Body(q, [b'a', b'b'])
"#;

#[test]
fn close_is_always_called() {
    let w = serve(CLOSE_APP);
    assert_eq!(w.get("/?normal").body_text(), "ab");
    assert!(w.wait_for("'normal' in closed"));
    // Iteration stops once Content-Length is reached: the endless iterable is not drained.
    let r = w.get("/?sized");
    assert_eq!((r.body_text().as_str(), r.framing), ("ab", "length"));
    assert!(w.wait_for("'sized' in closed"));
    assert_eq!(w.get("/?raise-first").status, 500);
    assert!(w.wait_for("'raise-first' in closed"));
    let (raw, _) = raw_exchange(&w.server, b"GET /?fail HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 200"));
    assert!(w.wait_for("'fail' in closed"));
    let mut c = w.server.client();
    c.send("HEAD /?head HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.head_response().status, 200);
    assert!(w.wait_for("'head' in closed"));

    // The client goes away in the middle of an endless body.
    let mut stream = TcpStream::connect(w.server.addr).unwrap();
    stream.write_all(b"GET /?endless HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 100_000];
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut got = 0;
    while got < 100_000 {
        got += stream.read(&mut buf[got..]).unwrap();
    }
    assert!(String::from_utf8_lossy(&buf[..got]).contains("start"));
    let _ = stream.shutdown(Shutdown::Both);
    drop(stream);
    assert!(w.wait_for("'endless' in closed"), "close() after the client left: {}", w.eval("closed"));
    assert_eq!(w.eval("sorted(closed)"), "['endless', 'fail', 'head', 'normal', 'raise-first', 'sized']");
}

const FAILING_APP: &str = r#"
def app(environ, start_response):
    q = environ['QUERY_STRING']
    if q == 'raise':
        1 / 0
    if q == 'no-start-response':
        return [b'orphan']
    if q == 'str-first':
        start_response('200 OK', [])
        return ['text']
    if q == 'bytes-result':
        start_response('200 OK', [])
        return b'not an iterable of bytes'
    start_response('200 OK', [])
    def body():
        yield b'partial'
        if q == 'str-later':
            yield 'text'
        raise ValueError('after the head')
    return body()
"#;

#[test]
fn an_exception_before_the_head_is_a_500_that_closes() {
    let w = serve(FAILING_APP);
    for q in ["raise", "no-start-response", "str-first", "bytes-result"] {
        let mut c = w.server.client();
        c.send(format!("GET /?{q} HTTP/1.1\r\nHost: t\r\n\r\n"));
        let r = c.response();
        assert_eq!(r.status, 500, "{q}");
        assert!(r.closes(), "{q}: {}", r.head);
        assert!(!r.body_text().contains("Traceback") && !r.body_text().contains("Error:"), "{q}: {}", r.body_text());
        assert!(c.closed_within(Duration::from_secs(2)), "{q}");
    }
    let w = serve_with(FAILING_APP, |c| c.expose_tracebacks = true);
    let r = w.get("/?raise");
    assert_eq!(r.status, 500);
    assert!(r.body_text().contains("Traceback") && r.body_text().contains("ZeroDivisionError"), "{}", r.body_text());
}

#[test]
fn an_exception_after_the_head_aborts_the_connection() {
    let w = serve(FAILING_APP);
    for q in ["after", "str-later"] {
        let request = format!("GET /?{q} HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n");
        let (raw, elapsed) = raw_exchange(&w.server, request.as_bytes());
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{q}: {text}");
        assert!(text.contains("Transfer-Encoding: chunked\r\n") && text.ends_with("7\r\npartial\r\n"), "{q}: {text:?}");
        assert!(!text.contains("0\r\n\r\n"), "no last chunk: {text:?}");
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{q}: the pipelined request is not answered");
        assert!(elapsed < Duration::from_secs(3), "{q}: {elapsed:?}");
    }
}

#[test]
fn a_content_length_mismatch_closes_and_never_hangs() {
    let w = serve(
        r#"
def app(environ, start_response):
    declared, sent, shape = environ['QUERY_STRING'].split('-')
    start_response('200 OK', [('Content-Length', declared)])
    data = b'abcdefghij'[:int(sent)]
    if shape == 'list':
        return [data]
    def body():
        yield data[:2]
        yield data[2:]
    return body()
"#,
    );
    for shape in ["list", "gen"] {
        // Shorter than declared: the bytes that exist, then the connection closes.
        let request = format!("GET /?10-3-{shape} HTTP/1.1\r\nHost: t\r\n\r\n");
        let (raw, elapsed) = raw_exchange(&w.server, request.as_bytes());
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Content-Length: 10\r\n") && text.ends_with("\r\n\r\nabc"), "{shape}: {text:?}");
        assert!(elapsed < Duration::from_secs(3), "{shape}: {elapsed:?}");
        // Longer than declared: cut at the declared length, then closed (the pipelined
        // request is not answered from the rest).
        let request =
            format!("GET /?3-10-{shape} HTTP/1.1\r\nHost: t\r\n\r\nGET /?2-2-list HTTP/1.1\r\nHost: t\r\n\r\n");
        let (raw, elapsed) = raw_exchange(&w.server, request.as_bytes());
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Content-Length: 3\r\n") && text.ends_with("\r\n\r\nabc"), "{shape}: {text:?}");
        assert!(elapsed < Duration::from_secs(3), "{shape}: {elapsed:?}");
        // Exact: keep-alive goes on.
        let mut c = w.server.client();
        for _ in 0..2 {
            c.send(format!("GET /?4-4-{shape} HTTP/1.1\r\nHost: t\r\n\r\n"));
            let r = c.response();
            assert_eq!((r.body_text().as_str(), r.closes()), ("abcd", false), "{shape}");
        }
    }
    // HEAD: the application's Content-Length is kept, without a body.
    let mut c = w.server.client();
    c.send("HEAD /?7-0-list HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.head_response();
    assert_eq!(r.header("content-length"), Some("7"));
}

/// Werkzeug answers HEAD of a streamed response with an empty iterable and no length: the
/// server must not add `Content-Length: 0` (GET sends a body); the app's own length is kept.
#[test]
fn head_with_an_empty_iterable_sends_no_length_of_its_own() {
    let w = serve(
        r#"
def app(environ, start_response):
    headers = [('Content-Type', 'text/plain')]
    if 'declared' in environ['QUERY_STRING']:
        headers.append(('Content-Length', '5'))
    start_response('200 OK', headers)
    if environ['REQUEST_METHOD'] == 'HEAD':
        return []
    return (chunk for chunk in [b'hel', b'lo'])
"#,
    );
    let mut c = w.server.client();
    c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().body_text(), "hello");
    c.send("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.head_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), None, "head {:?}", r.head);
    assert_eq!(r.header("transfer-encoding"), None, "head {:?}", r.head);
    c.send("HEAD /?declared HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.head_response().header("content-length"), Some("5"));
    c.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(c.response().body_text(), "hello");
}

#[test]
fn latin1_header_values_round_trip() {
    let w = serve(
        r#"
def app(environ, start_response):
    value = environ['HTTP_X_ECHO']
    start_response('200 OK', [('X-Name', 'caf\u00e9'), ('X-Echo', value), ('Content-Length', '0')])
    return []
"#,
    );
    let (raw, _) =
        raw_exchange(&w.server, b"GET / HTTP/1.1\r\nHost: t\r\nX-Echo: \xfcber\r\nConnection: close\r\n\r\n");
    assert!(find(&raw, b"\r\nX-Name: caf\xe9\r\n").is_some(), "{:?}", String::from_utf8_lossy(&raw));
    assert!(find(&raw, b"\r\nX-Echo: \xfcber\r\n").is_some(), "{:?}", String::from_utf8_lossy(&raw));
}

#[test]
fn file_wrapper_sends_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    let data: Vec<u8> = (0..(1 << 20) + 7).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let w = serve(
        r#"
import io
files = []
def app(environ, start_response):
    mode, path = environ['QUERY_STRING'].split(':', 1)
    f = open(path, 'rb')
    files.append(f)
    headers = [('Content-Type', 'application/octet-stream')]
    if mode == 'seek':
        f.seek(5)
    if mode == 'length':
        headers.append(('Content-Length', '4'))
    if mode == 'bytesio':
        f.close()
        f = io.BytesIO(b'in memory')
        files.append(f)
    start_response('200 OK', headers)
    return environ['wsgi.file_wrapper'](f, 3)
"#,
    );
    let p = path.to_str().unwrap();
    let r = w.get(&format!("/?whole:{p}"));
    assert_eq!((r.status, r.framing, r.body.len()), (200, "length", data.len()));
    assert!(r.body == data);
    let r = w.get(&format!("/?seek:{p}"));
    assert!(r.body == data[5..], "starts at the file's position");
    let r = w.get(&format!("/?length:{p}"));
    assert_eq!(r.body, data[..4], "ends at Content-Length");
    let r = w.get(&format!("/?bytesio:{p}"));
    assert_eq!(r.body_text(), "in memory", "a file object without fileno() is read in blocks");
    assert!(w.wait_for("all(f.closed for f in files) and len(files) == 5"), "{}", w.eval("[f.closed for f in files]"));
}

/// A file-like object of its own whose `tell()` closes its file and opens another (which takes
/// the freed descriptor number) must not get that other file sent: only built-in file objects
/// have their descriptor duplicated; this one is read through its own `read()`.
#[cfg(unix)]
#[test]
fn file_wrapper_never_duplicates_a_descriptor_its_object_gave_up() {
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("public.txt");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&public, "public").unwrap();
    std::fs::write(&secret, "SECRET-CONTENT").unwrap();
    let w = serve(&format!(
        r#"
reused = []
class Sneaky:
    def __init__(self):
        self.f = open({public:?}, 'rb')
        self.done = False
    def fileno(self):
        return self.f.fileno()
    def tell(self):
        fd = self.f.fileno()
        self.f.close()
        self.g = open({secret:?}, 'rb')
        reused.append(self.g.fileno() == fd)
        return 0
    def read(self, n):
        if self.done:
            return b''
        self.done = True
        return b'read through Python'
    def close(self):
        self.f.close()
        if hasattr(self, 'g'):
            self.g.close()
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return environ['wsgi.file_wrapper'](Sneaky(), 4096)
"#,
        public = public.to_str().unwrap(),
        secret = secret.to_str().unwrap(),
    ));
    let r = w.get("/");
    assert_eq!((r.status, r.body_text().as_str()), (200, "read through Python"));
    // The trap is real here: after tell(), the secret file holds the number fileno() gave.
    assert_eq!(w.eval("[s := Sneaky(), s.tell(), s.close(), reused[-1]][-1]"), "True");
}

/// `OPTIONS *` is about the server, not a resource: answered by the front end, never with
/// a `PATH_INFO` of `*` (which `wsgiref.validate` refuses).
#[test]
fn options_asterisk_is_answered_without_the_application() {
    let w = serve(
        r#"
from wsgiref.validate import validator
calls = []
def _app(environ, start_response):
    calls.append(environ['PATH_INFO'])
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '3')])
    return [b'app']
app = validator(_app)
"#,
    );
    let mut c = w.server.client();
    c.send("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response();
    assert_eq!((r.status, r.header("content-length"), r.body_text().as_str()), (200, Some("0"), ""));
    assert!(!r.closes(), "head {:?}", r.head);
    c.send("OPTIONS /x HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response().body_text(), "app");
    assert_eq!(w.eval("calls"), "['/x']");
}

/// The GIL is released while an application blocks: requests sleep at the same time. Measured
/// as the most calls asleep at once (the app counts them), not as a rate, so a loaded machine
/// cannot make it fail; with the GIL held across the sleep it would be 1.
#[test]
fn blocking_applications_run_in_parallel() {
    let w = serve(
        r#"
import threading, time
lock = threading.Lock()
active = 0
peak = 0
def app(environ, start_response):
    global active, peak
    with lock:
        active += 1
        peak = max(peak, active)
    time.sleep(0.05)
    with lock:
        active -= 1
    start_response('200 OK', [('Content-Length', '2')])
    return [b'ok']
"#,
    );
    assert_eq!(w.get("/").status, 200);
    let (clients, per_client) = (8, 10);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let addr = w.server.addr;
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for _ in 0..per_client {
                    c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n");
                    assert_eq!(c.response().status, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let peak: usize = w.eval("peak").parse().unwrap();
    eprintln!("50 ms sleeps, 4 threads, {clients} clients: at most {peak} asleep at once");
    // 4 threads: at most 4 at once; 1 would mean the GIL is held across the sleep.
    assert!(
        (2..=4).contains(&peak),
        "{peak} calls asleep at once: the GIL is not released while the application sleeps"
    );
}

#[test]
fn a_worker_keeps_its_thread_state_between_requests() {
    let w = serve_with(
        r#"
import threading
local = threading.local()
def app(environ, start_response):
    local.n = getattr(local, 'n', 0) + 1
    start_response('200 OK', [])
    return [str(local.n).encode()]
"#,
        |c| c.threads = 1,
    );
    let got: Vec<String> = (0..5).map(|_| w.get("/").body_text()).collect();
    assert_eq!(got, ["1", "2", "3", "4", "5"]);
}

#[test]
fn logging_goes_to_python_logging() {
    let w = serve_with(
        r#"
import logging
records = []
class Capture(logging.Handler):
    def emit(self, record):
        records.append((record.name, record.levelno, record.getMessage()))
logging.getLogger('maitred').addHandler(Capture())
logging.getLogger('maitred').setLevel(logging.DEBUG)
def app(environ, start_response):
    print('to wsgi.errors', file=environ['wsgi.errors'])
    environ['wsgi.errors'].write('unfinished')
    environ['wsgi.errors'].flush()
    start_response('200 OK', [('Content-Length', '2')])
    return [b'ok']
"#,
        |c| c.access_log = maitred::AccessLogFormat::Common,
    );
    let mut config = test_config();
    config.access_log = maitred::AccessLogFormat::Common;
    maitred::python::install_logging(&config);
    assert_eq!(w.get("/logged").status, 200);
    assert!(w.wait_for("('maitred.wsgi', 40, 'to wsgi.errors') in records"), "{}", w.eval("records"));
    assert!(w.wait_for("('maitred.wsgi', 40, 'unfinished') in records"), "{}", w.eval("records"));
    assert!(
        w.wait_for("any(n == 'maitred.access' and l == 20 and 'GET /logged HTTP/1.1' in m for n, l, m in records)"),
        "{}",
        w.eval("records")
    );
}

/// Calls `maitred._maitred.run(argv, load_app)` with Python's stdout and stderr captured.
fn run_cli(argv: &[&str], loader: &Bound<'_, PyAny>) -> (i32, String, String) {
    let py = loader.py();
    let sys = py.import("sys").unwrap();
    let io = py.import("io").unwrap();
    let (out, err) = (io.call_method0("StringIO").unwrap(), io.call_method0("StringIO").unwrap());
    let (old_out, old_err) = (sys.getattr("stdout").unwrap(), sys.getattr("stderr").unwrap());
    sys.setattr("stdout", &out).unwrap();
    sys.setattr("stderr", &err).unwrap();
    let code = maitred::python::run(py, argv.iter().map(|s| s.to_string()).collect(), loader, None);
    sys.setattr("stdout", old_out).unwrap();
    sys.setattr("stderr", old_err).unwrap();
    let text = |s: &Bound<'_, PyAny>| s.call_method0("getvalue").unwrap().extract::<String>().unwrap();
    (code.unwrap(), text(&out), text(&err))
}

#[test]
fn the_command_line_front_end() {
    let target = serve_with(ENVIRON_APP, |c| c.url_prefix = "/app".into());
    let m = module(
        r#"
def application(environ, start_response):
    start_response('200 OK', [])
    return [b'']
def load(spec, log_level):
    module, _, name = spec.partition(':')
    if module == 'broken':
        raise ImportError("No module named 'broken'\n(second line)")
    if module == 'number':
        return 42
    return application
"#,
    );
    Python::attach(|py| {
        let loader = m.bind(py).getattr("load").unwrap();
        let (code, out, _) = run_cli(&["--help"], &loader);
        assert_eq!(code, 0);
        assert!(out.contains("Usage: maitred [OPTIONS] MODULE:APP") && out.contains("--threads"), "{out}");
        let (code, out, _) = run_cli(&["--version"], &loader);
        assert_eq!((code, out.as_str()), (0, concat!("maitred ", env!("CARGO_PKG_VERSION"), "\n")));
        let (code, _, err) = run_cli(&["--bogus", "m:app"], &loader);
        assert_eq!((code, err.as_str()), (2, "maitred: unknown flag --bogus (see --help)\n"));
        let (code, _, err) = run_cli(&["--threads", "0", "m:app"], &loader);
        assert!(code == 2 && err.starts_with("maitred: threads") && err.matches('\n').count() == 1, "{err}");
        let (code, _, err) = run_cli(&[], &loader);
        assert_eq!((code, err.as_str()), (2, "maitred: missing the application: give MODULE:APP (see --help)\n"));
        let (code, _, err) = run_cli(&["a:b", "c:d"], &loader);
        assert_eq!((code, err.as_str()), (2, "maitred: unexpected argument \"c:d\" (see --help)\n"));
        let (code, _, err) = run_cli(&["broken:app"], &loader);
        assert_eq!(
            (code, err.as_str()),
            (2, "maitred: cannot load broken:app: ImportError: No module named 'broken' (second line)\n")
        );
        let (code, _, err) = run_cli(&["number:app"], &loader);
        assert!(
            code == 2
                && err.starts_with("maitred: cannot load number:app: TypeError")
                && err.matches('\n').count() == 1
        );
        let (code, out, _) = run_cli(&["--check-config", "m:application"], &loader);
        assert_eq!((code, out.as_str()), (0, "maitred: configuration ok\n"));
        let (code, out, _) = run_cli(&["--print-config", "m:application"], &loader);
        assert!(code == 0 && out.contains("\nthreads = 4\n"), "WSGI default threads: {out}");
        let (code, out, _) =
            run_cli(&["--print-config", "--threads", "3", "--url-prefix", "/x", "m:application"], &loader);
        assert!(code == 0 && out.contains("\nthreads = 3\n") && out.contains("url_prefix = \"/x\""), "{out}");
        let healthy = format!("http://{}/app/", target.server.addr);
        let (code, _, err) = run_cli(&["--healthcheck", &healthy], &loader);
        assert_eq!((code, err.as_str()), (0, ""));
        let missing = format!("http://{}/elsewhere", target.server.addr);
        let (code, _, err) = run_cli(&["--healthcheck", &missing], &loader);
        assert_eq!((code, err), (1, format!("maitred: {missing} answered 404\n")));
    });
}

#[test]
fn serve_refuses_bad_settings_and_busy_addresses() {
    let m = module("def app(environ, start_response):\n    return []\n");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    Python::attach(|py| {
        let app = m.bind(py).getattr("app").unwrap().unbind();
        let attempt = |settings: &[(&str, Bound<'_, PyAny>)]| {
            let dict = PyDict::new(py);
            for (k, v) in settings {
                dict.set_item(k, v).unwrap();
            }
            let err = maitred::python::serve(py, app.clone_ref(py), Some(&dict), None).unwrap_err();
            format!("{}: {}", err.get_type(py).name().unwrap(), err.value(py))
        };
        let int = |n: i64| n.into_pyobject(py).unwrap().into_any();
        let text = |s: &str| s.into_pyobject(py).unwrap().into_any();
        let e = attempt(&[("threads", int(0))]);
        assert!(e.starts_with("ValueError: threads"), "{e}");
        let e = attempt(&[("bogus", int(1))]);
        assert!(e.starts_with("ValueError: unknown setting"), "{e}");
        let e = attempt(&[("threads", text("many"))]);
        assert!(e.starts_with("ValueError: invalid value \"many\" for threads"), "{e}");
        let nested = PyList::new(py, [PyList::new(py, [1]).unwrap()]).unwrap().into_any();
        let e = attempt(&[("listen", nested)]);
        assert!(e.starts_with("TypeError: setting listen"), "{e}");
        // serve() installs the logging bridge before it binds: access lines stay on, as the
        // logging test (same process) wants them.
        let list = PyList::new(py, [busy_addr.as_str()]).unwrap().into_any();
        let yes = true.into_pyobject(py).unwrap().to_owned().into_any();
        let e = attempt(&[
            ("listen", list),
            ("max-body-size", text("1MiB")),
            ("expose_tracebacks", yes),
            ("access_log", text("common")),
        ]);
        assert!(e.starts_with("OSError: cannot listen on") && e.contains("already in use"), "{e}");
    });
    drop(busy);
}
