"""The same WSGI environ and response checks, run against maitred and against Waitress.

Every check is parametrised over both servers. Where maitred deliberately behaves
differently, the check is marked with ``differs(...)``: it asserts each server's own
behaviour, and the difference is listed (with the reason) in ``DIFFERENCES.md``; a test at
the end keeps that table and these marks in step.

The application is ``conformance_app.py`` (plain WSGI). Set ``CONFORMANCE_SERVERS=waitress``
to run only the Waitress side (useful while the extension is not built).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from helpers import (
    HERE,
    Connection,
    build_request,
    chunked,
    exchange,
    require_maitred,
    start_maitred,
    start_waitress,
)

SERVERS = [s.strip() for s in os.environ.get("CONFORMANCE_SERVERS", "waitress,maitred").split(",") if s.strip()]
if "maitred" in SERVERS:
    require_maitred()

import conformance_app  # noqa: E402  (after the skip: same directory as this file)

APP_SPEC = "conformance_app:app"
DIFFERENCES: dict = {}


def differs(behaviour: str, *, waitress: str, maitred: str, why: str):
    """Mark a check where maitred deliberately differs from Waitress."""
    DIFFERENCES[behaviour] = (waitress, maitred, why)
    return pytest.mark.difference(behaviour=behaviour, waitress=waitress, maitred=maitred, why=why)


class Target:
    """A running server under test, with helpers that speak to the conformance app."""

    def __init__(self, kind: str, proc):
        self.kind = kind
        self.proc = proc
        self.addr = proc.addr

    def __repr__(self):
        return f"<{self.kind} on {self.addr}>"

    def pick(self, *, waitress, maitred):
        return maitred if self.kind == "maitred" else waitress

    def get(self, target="/", mode="environ", method="GET", headers=(), body=b"", check_closed=False, **kw):
        hdrs = list(headers)
        if mode is not None:
            hdrs.append(("X-Mode", mode))
        raw = build_request(method, target, hdrs, body, **kw)
        resp, closed = exchange(self.addr, raw, method, check_closed=check_closed)
        if check_closed:
            return resp, closed
        return resp

    def environ(self, target="/", **kw):
        resp = self.get(target, **kw)
        assert resp.status == 200, resp
        return resp.json()

    def raw(self, data: bytes, method="GET", check_closed=True):
        return exchange(self.addr, data, method, check_closed=check_closed)


def _start(kind: str, *extra: str):
    if kind == "waitress":
        return start_waitress(APP_SPEC, "--threads=4", *extra)
    return start_maitred("--listen", "127.0.0.1:0", "--threads", "4", "--app-dir", str(HERE), *extra, APP_SPEC)


def _stop(kind: str, proc):
    code = proc.stop(signal.SIGTERM)
    if kind == "maitred":
        assert code == 0, f"maitred exited {code} after SIGTERM:\n{proc.output()}"


@pytest.fixture(scope="module", params=SERVERS)
def server(request):
    proc = _start(request.param)
    yield Target(request.param, proc)
    _stop(request.param, proc)


@pytest.fixture(scope="module", params=SERVERS)
def prefixed(request):
    kind = request.param
    proc = _start(kind, "--url-prefix=/app")
    yield Target(kind, proc)
    _stop(kind, proc)


def assert_no_internals(resp):
    body = resp.body.decode("latin-1")
    assert "secret" not in body and "Traceback" not in body and "0xDEADBEEF" not in body, body


# -- the environ ---------------------------------------------------------------------------


def test_method_path_and_query(server):
    env = server.environ("/plain/path?x=1&y=%20z")
    cgi = env["cgi"]
    assert cgi["REQUEST_METHOD"] == "GET"
    assert cgi["SCRIPT_NAME"] == ""
    assert cgi["PATH_INFO"] == "/plain/path"
    assert cgi["QUERY_STRING"] == "x=1&y=%20z"


def test_path_info_is_latin1_str_of_decoded_bytes(server):
    env = server.environ("/caf%C3%A9/%E2%82%AC")
    assert env["path_info_bytes_hex"] == "/caf\xc3\xa9/\xe2\x82\xac".encode("latin-1").hex()
    assert env["cgi"]["PATH_INFO"] == "/caf\u00c3\u00a9/\u00e2\u0082\u00ac"


def test_encoded_slash_and_space_are_decoded(server):
    assert server.environ("/a%2Fb%20c")["cgi"]["PATH_INFO"] == "/a/b c"


def test_query_string_is_raw_and_always_present(server):
    assert server.environ("/q?a=%41+b&c&d=")["cgi"]["QUERY_STRING"] == "a=%41+b&c&d="
    assert server.environ("/q?")["cgi"]["QUERY_STRING"] == ""
    assert server.environ("/q")["cgi"]["QUERY_STRING"] == ""


@differs(
    "Absolute-form request target (GET http://example.com:81/abs)",
    waitress="HTTP_HOST is the Host header (localhost)",
    maitred="HTTP_HOST is the target's authority (example.com:81)",
    why="RFC 9112 §3.2.2: with an absolute-form target the server must ignore Host and use the "
    "target's authority; the application then builds URLs for the host the client asked for",
)
def test_absolute_form_target(server):
    env = server.environ("http://example.com:81/abs?q=1")
    assert env["cgi"]["PATH_INFO"] == "/abs"
    assert env["cgi"]["QUERY_STRING"] == "q=1"
    assert env["http"]["HTTP_HOST"] == server.pick(waitress="localhost", maitred="example.com:81")


def test_other_methods_pass_through(server):
    for method in ("PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"):
        env = server.environ("/m", method=method)
        assert env["cgi"]["REQUEST_METHOD"] == method


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_server_protocol(server, version):
    assert server.environ("/", version=version)["cgi"]["SERVER_PROTOCOL"] == version


@differs(
    "SERVER_NAME and SERVER_PORT",
    waitress="the server's own name (`server_name`, default waitress.invalid) and the port it "
    "listens on, whatever the client asked for",
    maitred="the host and port the client asked for (Host, or an absolute target), port 80 "
    "(443 for https) when not given; the local address only without a Host",
    why="PEP 3333's URL reconstruction falls back to SERVER_NAME:SERVER_PORT without HTTP_HOST, "
    "and some frameworks read them directly: they name the URL the client used (as Gunicorn "
    "does), not a socket behind a proxy or a placeholder name",
)
@pytest.mark.parametrize("host,name,port", [("example.test:8123", "example.test", "8123"), ("example.test", "example.test", "80")])
def test_server_name_and_port(server, host, name, port):
    cgi = server.environ("/", host=host)["cgi"]
    if server.kind == "waitress":
        assert cgi["SERVER_PORT"] == str(server.addr[1])
        assert isinstance(cgi["SERVER_NAME"], str) and cgi["SERVER_NAME"]
    else:
        assert (cgi["SERVER_NAME"], cgi["SERVER_PORT"]) == (name, port)


def test_server_name_and_port_when_host_is_the_listening_address(server):
    # What a client that connects directly sends: both servers agree on the port.
    cgi = server.environ("/", host=f"127.0.0.1:{server.addr[1]}")["cgi"]
    assert cgi["SERVER_PORT"] == str(server.addr[1])
    assert isinstance(cgi["SERVER_NAME"], str) and cgi["SERVER_NAME"]


def test_remote_addr(server):
    cgi = server.environ("/")["cgi"]
    assert cgi["REMOTE_ADDR"] == "127.0.0.1"
    if "REMOTE_PORT" in cgi:
        assert cgi["REMOTE_PORT"].isdigit()


def test_wsgi_keys(server):
    env = server.environ("/")
    assert env["wsgi_version"] == [1, 0]
    assert env["wsgi"]["wsgi.url_scheme"] == "http"
    assert env["wsgi"]["wsgi.multithread"] is True
    assert env["wsgi"]["wsgi.multiprocess"] is False
    assert env["wsgi"]["wsgi.run_once"] is False
    assert env["wsgi"]["wsgi.input_terminated"] is True
    assert env["has"] == {"wsgi.input": True, "wsgi.errors": True, "wsgi.file_wrapper": True}


def test_keys_and_cgi_values_are_native_str(server):
    env = server.environ("/x?y=1", headers=[("X-Thing", "v"), ("Content-Type", "text/plain")])
    assert env["non_str_keys"] == []
    assert env["non_str_cgi_values"] == []


def test_content_type_and_length_absent_without_them(server):
    cgi = server.environ("/")["cgi"]
    assert "CONTENT_TYPE" not in cgi
    assert "CONTENT_LENGTH" not in cgi


def test_content_type_and_length_present_with_a_body(server):
    env = server.environ("/", method="POST", headers=[("Content-Type", "text/plain; charset=utf-8")], body=b"hello")
    assert env["cgi"]["CONTENT_TYPE"] == "text/plain; charset=utf-8"
    assert env["cgi"]["CONTENT_LENGTH"] == "5"
    assert env["body_latin1"] == "hello"
    assert "HTTP_CONTENT_TYPE" not in env["http"] and "HTTP_CONTENT_LENGTH" not in env["http"]


def test_zero_content_length(server):
    env = server.environ("/", method="POST", headers=[("Content-Length", "0")])
    assert env["cgi"].get("CONTENT_LENGTH", "0") == "0"
    assert env["body_length"] == 0


def test_http_headers(server):
    env = server.environ(
        "/",
        headers=[
            ("X-Custom-Header", "value"),
            ("X-Spaces", "  padded value \t"),
            ("X-Empty", ""),
            ("Accept", "text/html"),
        ],
    )
    http = env["http"]
    assert http["HTTP_X_CUSTOM_HEADER"] == "value"
    assert http["HTTP_X_SPACES"] == "padded value"
    assert http["HTTP_X_EMPTY"] == ""
    assert http["HTTP_ACCEPT"] == "text/html"
    assert http["HTTP_HOST"] == "localhost"


def test_repeated_headers_are_joined_with_comma(server):
    env = server.environ("/", headers=[("X-Dup", "a"), ("X-Other", "o"), ("X-Dup", "b")])
    assert env["http"]["HTTP_X_DUP"] == "a, b"


@differs(
    "Repeated Cookie request headers",
    waitress="joined with \", \" (HTTP_COOKIE=\"a=1, b=2\")",
    maitred="joined with \"; \" (HTTP_COOKIE=\"a=1; b=2\")",
    why="RFC 6265 §5.4 separates cookie pairs with \"; \"; joined with a comma, the first cookie's "
    "value becomes \"1, b=2\" in cookie parsers (RFC 9113 §8.2.3 requires \"; \" when an HTTP/2 "
    "gateway joins cookies too)",
)
def test_repeated_cookie_headers(server):
    env = server.environ("/", headers=[("Cookie", "a=1"), ("Cookie", "b=2")])
    assert env["http"]["HTTP_COOKIE"] == server.pick(waitress="a=1, b=2", maitred="a=1; b=2")


@differs(
    "A Proxy request header",
    waitress="passed as HTTP_PROXY",
    maitred="dropped",
    why="httpoxy (CVE-2016-5385): libraries read HTTP_PROXY as their outgoing proxy setting, so a "
    "client could route the application's own requests through a host of its choice",
)
def test_proxy_header(server):
    env = server.environ("/", headers=[("Proxy", "http://evil.example:3128")])
    assert ("HTTP_PROXY" in env["http"]) == server.pick(waitress=True, maitred=False)


@differs(
    "Leading double slash in the path (//x//y)",
    waitress="PATH_INFO /x//y (leading slashes collapsed)",
    maitred="PATH_INFO //x//y (as sent, decoded once)",
    why="maitred decodes the path once and rewrites nothing else, so PATH_INFO says what the "
    "client asked for; normalising paths is the application's or router's decision",
)
def test_leading_double_slash(server):
    cgi = server.environ("//x//y")["cgi"]
    assert cgi["PATH_INFO"] == server.pick(waitress="/x//y", maitred="//x//y")


def test_dot_segments_are_not_resolved(server):
    assert server.environ("/a/../b/./c")["cgi"]["PATH_INFO"] == "/a/../b/./c"


def test_header_names_are_case_insensitive(server):
    env = server.environ("/", headers=[("x-MiXeD-cAsE", "1")])
    assert env["http"]["HTTP_X_MIXED_CASE"] == "1"


def test_latin1_request_header_value(server):
    env = server.environ("/", headers=[("X-Name", "M\u00fcller")])
    assert env["http"]["HTTP_X_NAME"] == "M\u00fcller"


def test_header_names_with_underscore_are_dropped(server):
    # `X_Auth_User` and `X-Auth-User` would both become HTTP_X_AUTH_USER: a client could
    # spoof a header a proxy set. Both servers drop the underscore form.
    env = server.environ("/", headers=[("X_Auth_User", "mallory"), ("X-Real", "1")])
    assert "HTTP_X_AUTH_USER" not in env["http"]
    assert env["http"]["HTTP_X_REAL"] == "1"


def test_untrusted_forwarding_headers_are_removed(server):
    # No trusted proxy configured: both servers remove forwarding headers rather than let
    # the application believe a client's claim about its address or scheme.
    env = server.environ(
        "/",
        headers=[
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.example"),
            ("Forwarded", "for=203.0.113.9;proto=https"),
        ],
    )
    assert env["wsgi"]["wsgi.url_scheme"] == "http"
    assert env["cgi"]["REMOTE_ADDR"] == "127.0.0.1"
    leaked = [k for k in env["http"] if k.startswith("HTTP_X_FORWARDED") or k == "HTTP_FORWARDED"]
    assert leaked == []


# -- wsgi.input ----------------------------------------------------------------------------

BODY = b"line one\nline two\n\nlast line without newline"


@pytest.mark.parametrize(
    "how,expected",
    [
        ("read", BODY),
        ("read-minus-one", BODY),
        ("read-size", BODY),
        ("read-content-length", BODY),
        ("readline", b"line one\n|line two\n|\n|last line without newline"),
        ("readline-size", b"line| one|\n|line| two|\n|\n|last| lin|e wi|thou|t ne|wlin|e"),
        ("readlines", b"line one\n|line two\n|\n|last line without newline"),
        ("iter", b"line one\n|line two\n|\n|last line without newline"),
    ],
)
def test_input_read_variants(server, how, expected):
    env = server.environ("/", method="POST", headers=[("X-Read", how)], body=BODY)
    assert env["read"] == how
    assert env["body_latin1"].encode("latin-1") == expected


@pytest.mark.parametrize("how", ["read", "read-size", "readline", "iter"])
def test_input_of_a_chunked_body(server, how):
    raw = build_request(
        "POST",
        "/",
        [("X-Mode", "environ"), ("X-Read", how), ("Transfer-Encoding", "chunked")],
        chunked(b"line one\nli", b"ne two\n", b"\nlast line without newline"),
    )
    resp, _ = server.raw(raw, check_closed=False)
    assert resp.status == 200, resp
    env = resp.json()
    sep = b"" if how in ("read", "read-size") else b"|"
    expected = sep.join([b"line one\n", b"line two\n", b"\n", b"last line without newline"])
    assert env["body_latin1"].encode("latin-1") == expected


def test_chunked_body_environ(server):
    raw = build_request(
        "POST", "/", [("X-Mode", "environ"), ("Transfer-Encoding", "chunked")], chunked(b"abc", b"defgh")
    )
    resp, _ = server.raw(raw, check_closed=False)
    env = resp.json()
    # The body is complete when the application runs, so its length is known.
    assert env["cgi"]["CONTENT_LENGTH"] == "8"
    assert "HTTP_TRANSFER_ENCODING" not in env["http"]
    assert env["wsgi"]["wsgi.input_terminated"] is True


def test_expect_100_continue(server):
    with Connection(server.addr) as conn:
        conn.send(
            b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Mode: environ\r\nContent-Length: 4\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        line = conn.reader.line()
        assert line.startswith(b"HTTP/1.1 100"), line
        assert conn.reader.line() == b"\r\n"
        conn.send(b"data")
        resp = conn.response()
    assert resp.status == 200
    assert resp.json()["body_latin1"] == "data"


# -- connections ---------------------------------------------------------------------------


BIG_BODY = 9 * 1024 * 1024  # past maitred's default max_body_size (8 MiB), far below Waitress's 1 GiB


@differs(
    "Request body of 9 MiB with the default settings",
    waitress="200: read in full (max_request_body_size defaults to 1 GiB)",
    maitred="413 from Content-Length, before 100 Continue and before any body byte is read (max_body_size defaults to 8 MiB)",
    why="a body past body_spool_threshold (1 MiB) goes to a temporary file: disk, or memory where /tmp is a tmpfs "
    "(Debian 13, Fedora, Arch, many containers); at the default connection_limit of 1024, 1 GiB bodies let clients "
    "park up to 1 TiB there, 8 MiB bodies 8 GiB. Applications that take large uploads say so: "
    "--max-body-size 1GiB, or Waitress's --max-request-body-size",
)
def test_default_body_size_limit(server):
    head = build_request(
        "POST",
        "/",
        [("X-Mode", "body-length"), ("Content-Length", str(BIG_BODY)), ("Expect", "100-continue")],
    )
    with Connection(server.addr, timeout=30) as conn:
        conn.send(head)
        first = conn.reader.line()
        if first.startswith(b"HTTP/1.1 100"):
            assert conn.reader.line() == b"\r\n"
            conn.send(b"a" * BIG_BODY)
        else:
            conn.reader.buf = first + conn.reader.buf  # the final response: read it whole
        resp = conn.response()
    if server.kind == "maitred":
        assert first.startswith(b"HTTP/1.1 413"), first
        assert resp.status == 413 and resp.interim == []
    else:
        assert resp.status == 200, resp
        assert resp.json() == {"body_length": BIG_BODY}


def test_keep_alive_and_pipelining(server):
    with Connection(server.addr) as conn:
        conn.send(build_request("GET", "/first", [("X-Mode", "environ")]))
        assert conn.response().json()["cgi"]["PATH_INFO"] == "/first"
        conn.send(
            build_request("GET", "/second", [("X-Mode", "environ")])
            + build_request("POST", "/third", [("X-Mode", "environ")], b"xyz")
            + build_request("GET", "/fourth", [("X-Mode", "environ")])
        )
        got = [conn.response().json() for _ in range(3)]
    assert [g["cgi"]["PATH_INFO"] for g in got] == ["/second", "/third", "/fourth"]
    assert got[1]["body_latin1"] == "xyz"


def test_http10_closes_unless_keep_alive(server):
    resp, closed = server.get("/", version="HTTP/1.0", host=None, check_closed=True)
    assert resp.status == 200 and closed
    with Connection(server.addr) as conn:
        conn.send(build_request("GET", "/a", [("X-Mode", "environ"), ("Connection", "keep-alive")], version="HTTP/1.0"))
        first = conn.response()
        assert first.status == 200 and (first.header("Connection") or "").lower() == "keep-alive"
        conn.send(build_request("GET", "/b", [("X-Mode", "environ")], version="HTTP/1.0"))
        assert conn.response().json()["cgi"]["PATH_INFO"] == "/b"


def test_connection_close_request_is_honoured(server):
    resp, closed = server.get("/", headers=[("Connection", "close")], check_closed=True)
    assert resp.status == 200
    assert (resp.header("Connection") or "").lower() == "close"
    assert closed


# -- url prefix (SCRIPT_NAME) --------------------------------------------------------------


@pytest.mark.parametrize(
    "target,script_name,path_info",
    [("/app/x/y", "/app", "/x/y"), ("/app", "/app", ""), ("/app/", "/app", "/"), ("/app/x?q=1", "/app", "/x")],
)
def test_url_prefix_splits_script_name(prefixed, target, script_name, path_info):
    cgi = prefixed.environ(target)["cgi"]
    assert (cgi["SCRIPT_NAME"], cgi["PATH_INFO"]) == (script_name, path_info)


@differs(
    "Requests outside --url-prefix",
    waitress="passed to the application with SCRIPT_NAME set to the prefix and PATH_INFO unchanged "
    "(/other becomes SCRIPT_NAME=/app, PATH_INFO=/other)",
    maitred="404 from the server; the application is not called",
    why="SCRIPT_NAME + PATH_INFO must rebuild the request path; Waitress's environ names a URL that "
    "was not requested, so generated links and routing go wrong",
)
@pytest.mark.parametrize("target", ["/other", "/appx"])
def test_url_prefix_outside(prefixed, target):
    resp = prefixed.get(target)
    if prefixed.kind == "waitress":
        cgi = resp.json()["cgi"]
        assert resp.status == 200 and (cgi["SCRIPT_NAME"], cgi["PATH_INFO"]) == ("/app", target)
    else:
        assert resp.status == 404


# -- responses -----------------------------------------------------------------------------


def test_write_callable(server):
    resp = server.get("/", mode="write")
    assert resp.status == 200
    assert resp.body == b"one,two,three"


def test_lazy_start_response_in_generator(server):
    resp = server.get("/", mode="generator")
    assert resp.status == 200
    assert resp.header("Content-Type") == "text/plain"
    assert resp.body == b"alpha,beta,gamma"
    assert resp.framing == "chunked"
    assert b"" not in resp.chunks


def _closes(server):
    return server.get("/", mode="closes").json()["count"]


def _wait_closes(server, at_least, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        n = _closes(server)
        if n >= at_least or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def test_close_is_called(server):
    before = _closes(server)
    resp = server.get("/", mode="close")
    assert resp.body == b"closable body"
    assert _wait_closes(server, before + 1) == before + 1


def test_close_is_called_when_iteration_fails(server):
    before = _closes(server)
    resp, closed = server.get("/", mode="close-error", check_closed=True)
    assert closed
    assert _wait_closes(server, before + 1) == before + 1


@differs(
    "Order and spelling of response headers",
    waitress="sorted by name, names title-cased (x-lower-case becomes X-Lower-Case)",
    maitred="the application's order and spelling, then Date, Server and framing",
    why="what the application wrote is what goes out, byte for byte: the order of different "
    "names carries no meaning in HTTP, but people, tests and some clients read it; keeping it costs "
    "nothing (repeated names such as Set-Cookie keep their relative order on both servers)",
)
def test_response_header_order_and_repeats(server):
    resp = server.get("/", mode="headers")
    app_names = ["Content-Type", "X-Zeta", "X-Alpha", "Set-Cookie", "Set-Cookie", "X-Zeta", "x-lower-case"]
    names = [n for n in resp.names() if n.lower() in {a.lower() for a in app_names}]
    if server.kind == "maitred":
        assert names == app_names
    else:
        assert names == sorted((n.title() for n in app_names), key=str.lower)
    assert resp.header_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert resp.header_all("X-Zeta") == ["1", "3"]
    assert resp.header("Date") and resp.header("Server")


def test_latin1_response_header_bytes(server):
    resp = server.get("/", mode="latin1-header")
    assert resp.status == 200
    assert b"\r\nX-Name: M\xfcller\r\n" in resp.head.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")


def test_custom_reason_phrase(server):
    resp = server.get("/", mode="status")
    assert (resp.status, resp.reason) == (299, b"Custom Reason Phrase")


def test_application_content_length_is_kept(server):
    resp = server.get("/", mode="content-length")
    assert resp.framing == "length"
    assert resp.header("Content-Length") == "5"
    assert resp.header("Transfer-Encoding") is None
    assert resp.body == b"hello"


@differs(
    "Application body longer than its own Content-Length",
    waitress="cut at Content-Length; the connection stays open",
    maitred="cut at Content-Length; the connection is closed",
    why="an application that breaks its own framing may break the next response too; closing "
    "costs one reconnect and can never desynchronise the client",
)
def test_body_longer_than_content_length_is_cut(server):
    with Connection(server.addr) as conn:
        conn.send(build_request("GET", "/", [("X-Mode", "cl-long")]))
        resp = conn.response()
        assert resp.header("Content-Length") == "3"
        assert resp.body == b"012"
        assert conn.closed_soon(1.5) == server.pick(waitress=False, maitred=True)


@differs(
    "Empty bodies: 200 with an empty iterable, and 204",
    waitress="200: chunked with only the last chunk, then the connection is closed; 204: "
    "Connection: close",
    maitred="200: Content-Length: 0; 204: no framing headers; the connection stays open",
    why="an empty body's length is known; nothing about it calls for closing a keep-alive "
    "connection",
)
def test_empty_bodies_keep_the_connection(server):
    with Connection(server.addr) as conn:
        conn.send(build_request("GET", "/", [("X-Mode", "empty")]))
        resp = conn.response()
        assert resp.status == 200 and resp.body == b""
        if server.kind == "maitred":
            assert resp.header("Content-Length") == "0"
            conn.send(build_request("GET", "/", [("X-Mode", "no-content")]))
            resp = conn.response()
            assert resp.status == 204
            assert resp.header("Transfer-Encoding") is None and resp.header("Content-Length") is None
            conn.send(build_request("GET", "/after", [("X-Mode", "environ")]))
            assert conn.response().json()["cgi"]["PATH_INFO"] == "/after"
        else:
            assert resp.framing == "chunked" and conn.closed_soon(1.5)
    resp, closed = server.get("/", mode="no-content", check_closed=True)
    assert resp.status == 204 and resp.header("Transfer-Encoding") is None
    assert closed == server.pick(waitress=True, maitred=False)


def test_head_has_no_body(server):
    with Connection(server.addr) as conn:
        conn.send(build_request("HEAD", "/same", [("X-Mode", "content-length")]))
        head = conn.response("HEAD")
        assert head.status == 200
        assert head.header("Content-Length") == "5"
        # Any stray body bytes would be read as the start of the next response.
        conn.send(build_request("GET", "/after", [("X-Mode", "environ")]))
        assert conn.response().json()["cgi"]["PATH_INFO"] == "/after"


@differs(
    "HEAD answered with an empty iterable and no Content-Length",
    waitress="Transfer-Encoding: chunked and a last chunk after the head (a body on HEAD), Connection: close, then "
    "the connection is closed",
    maitred="no Content-Length and no Transfer-Encoding, no body; the connection stays open",
    why="RFC 9110 §9.3.2 and §8.6: a HEAD response's Content-Length, if sent, must be what GET "
    "would send; an empty iterable for HEAD (Werkzeug's answer for a streamed response) says "
    "nothing about that, so none is sent (Content-Length: 0 would be false), and HEAD never has a body",
)
def test_head_with_an_empty_iterable(server):
    resp = server.get("/", mode="head-empty")
    assert resp.status == 200 and resp.body == b"hello"
    head, closed = server.get("/", mode="head-empty", method="HEAD", check_closed=True)
    assert head.status == 200
    assert head.header("Content-Length") is None
    assert head.header("Transfer-Encoding") == server.pick(waitress="chunked", maitred=None)
    assert head.header("Connection") == server.pick(waitress="close", maitred=None)
    if server.kind == "maitred":
        assert closed is False


@differs(
    "OPTIONS * (asterisk-form target)",
    waitress="passed to the application with PATH_INFO=\"*\"",
    maitred="200 with an empty body from the server; the application is not called",
    why="PEP 3333 and wsgiref.validate want a PATH_INFO that starts with / (or is empty): \"*\" "
    "names no resource, and routers would treat it as a path; OPTIONS * asks about the server, "
    "which answers it (without Allow: which methods the application serves is its business)",
)
def test_options_asterisk(server):
    resp = server.get("*", method="OPTIONS")
    assert resp.status == 200
    if server.kind == "maitred":
        assert resp.body == b"" and resp.header("Content-Length") == "0"
    else:
        assert resp.json()["cgi"]["PATH_INFO"] == "*"


@pytest.mark.parametrize("mode", ["error-before", "error-after"])
def test_exception_gives_500_and_closes(server, mode):
    resp, closed = server.get("/", mode=mode, check_closed=True)
    assert resp.status == 500
    assert (resp.header("Connection") or "").lower() == "close"
    assert closed
    assert_no_internals(resp)


def test_exception_mid_body_cuts_the_connection(server):
    resp, closed = server.get("/", mode="error-mid-body", check_closed=True)
    assert resp.status == 200
    assert resp.body.startswith(b"partial ")
    # The head is out: the only honest signal left is an incomplete body and a close.
    assert not resp.complete
    assert closed
    assert_no_internals(resp)


def test_exc_info_replaces_the_head(server):
    resp = server.get("/", mode="exc-info")
    assert resp.status == 500
    assert resp.header("X-Second") == "yes"
    assert resp.header("X-First") is None
    assert resp.body == b"replaced by the application"


def test_header_injection_is_refused(server):
    resp, closed = server.get("/", mode="bad-header", check_closed=True)
    assert resp.status == 500
    assert resp.header("Injected") is None
    assert b"should not be sent" not in resp.body
    assert closed


def test_hop_by_hop_response_header_is_refused(server):
    # PEP 3333 forbids hop-by-hop headers from applications; both answer 500 and close.
    resp, closed = server.get("/", mode="hop-by-hop", check_closed=True)
    assert resp.status == 500
    assert b"hop-by-hop" not in resp.body
    assert closed


def test_file_wrapper(server):
    resp = server.get("/", mode="file-wrapper")
    assert resp.status == 200
    assert resp.header("Content-Length") == str(len(conformance_app.FILE_BYTES))
    assert resp.body == conformance_app.FILE_BYTES


# -- framing and errors the server answers itself -------------------------------------------


@differs(
    "Content-Length together with Transfer-Encoding: chunked",
    waitress="accepted: chunked wins, Content-Length is replaced",
    maitred="400 and the connection is closed",
    why="a request with both is the classic request-smuggling vector (RFC 9112 §6.3 allows a "
    "server to refuse it and requires closing after); refusing is the only safe choice behind "
    "proxies that may pick the other header",
)
def test_content_length_with_chunked(server):
    raw = build_request(
        "POST",
        "/",
        [("X-Mode", "environ"), ("Content-Length", "3"), ("Transfer-Encoding", "chunked")],
        chunked(b"abcdef"),
    )
    resp, closed = server.raw(raw)
    if server.kind == "waitress":
        assert resp.status == 200 and resp.json()["body_latin1"] == "abcdef"
    else:
        assert resp.status == 400
        assert closed


@pytest.mark.parametrize("value", ["abc", "+5", "-1", "5, 5", "0x5"])
def test_invalid_content_length(server, value):
    raw = build_request("POST", "/", [("X-Mode", "environ"), ("Content-Length", value)], b"hello")
    resp, closed = server.raw(raw)
    assert resp.status == 400
    assert closed


def test_unknown_transfer_coding(server):
    raw = build_request("POST", "/", [("X-Mode", "environ"), ("Transfer-Encoding", "gzip")], b"xx")
    resp, closed = server.raw(raw)
    assert resp.status == 501
    assert closed


@differs(
    "HTTP/1.1 request without a Host header",
    waitress="served (HTTP_HOST absent)",
    maitred="400 and the connection is closed",
    why="RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without exactly one Host",
)
def test_missing_host(server):
    resp, closed = server.raw(build_request("GET", "/", [("X-Mode", "environ")], host=None))
    if server.kind == "waitress":
        assert resp.status == 200 and "HTTP_HOST" not in resp.json()["http"]
    else:
        assert resp.status == 400 and closed


def test_whitespace_before_colon(server):
    resp, closed = server.raw(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Mode : environ\r\n\r\n")
    assert resp.status == 400
    assert closed


def test_error_responses_close_the_connection(server):
    resp, closed = server.raw(b"GET / HTTP/1.1\r\nHost: localhost\r\nBad Header Name: x\r\n\r\n")
    assert resp.status == 400
    assert (resp.header("Connection") or "").lower() == "close"
    assert closed


@differs(
    "Text of the server's own error responses",
    waitress="a reason, a sentence and \"(generated by waitress)\" (CRLF lines); Connection: close",
    maitred="one line, \"500 Internal Server Error\\n\"; Connection: close",
    why="short and uniform for every status; the details go to the error log, never to the "
    "client (tracebacks only with --expose-tracebacks)",
)
def test_500_body_text(server):
    resp = server.get("/", mode="error-before")
    assert resp.header("Content-Type") == "text/plain; charset=utf-8"
    if server.kind == "maitred":
        assert resp.body == b"500 Internal Server Error\n"
    else:
        assert b"(generated by waitress)" in resp.body


STRICT = [
    # (behaviour, raw request, Waitress's status (None: no answer), maitred's status,
    #  what Waitress does, why maitred differs)
    (
        "Two Host headers",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nX-Mode: environ\r\n\r\n",
        200,
        400,
        "200, HTTP_HOST=\"a, b\"",
        "RFC 9112 §3.2: exactly one Host; two let a proxy and the application disagree about the site",
    ),
    (
        "Obsolete line folding in a header",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Mode: environ\r\nX-A: a\r\n  b\r\n\r\n",
        200,
        400,
        "200, the lines unfolded",
        "RFC 9112 §5.2 lets a server reject obs-fold with 400; folding is a known source of disagreement between parsers",
    ),
    (
        "Fragment in the request target (/x#frag)",
        b"GET /x#frag HTTP/1.1\r\nHost: x\r\nX-Mode: environ\r\n\r\n",
        200,
        400,
        "200, the fragment dropped",
        "a conforming client never sends a fragment (RFC 9112 §3.2); it is refused, not silently cut",
    ),
    (
        "HTTP/2.0 on the request line",
        b"GET / HTTP/2.0\r\nHost: x\r\nX-Mode: environ\r\n\r\n",
        200,
        505,
        "200, answered as HTTP/1.x, then closed",
        "only HTTP/1.x is spoken here; 505 names the problem",
    ),
    (
        "Transfer-Encoding on an HTTP/1.0 request",
        b"POST / HTTP/1.0\r\nHost: x\r\nX-Mode: environ\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        200,
        400,
        "200; the header and the body are ignored, then closed",
        "HTTP/1.0 has no chunked coding (RFC 9112 §6.1): the framing of the body would be ambiguous",
    ),
    (
        "Expect other than 100-continue",
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Mode: environ\r\nExpect: something\r\nContent-Length: 1\r\n\r\nx",
        200,
        417,
        "200, the expectation ignored",
        "RFC 9110 §10.1.1: a server may answer 417 to an expectation it cannot meet",
    ),
    (
        "CONNECT",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-Mode: environ\r\n\r\n",
        200,
        501,
        "200, passed to the application (PATH_INFO=443)",
        "tunnels are not served; a WSGI application cannot take over the socket",
    ),
    (
        "Header line longer than 8 KiB",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Mode: environ\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
        200,
        431,
        "200 (only the whole head is limited, to 256 KiB)",
        "max_header_line (8 KiB, configurable) bounds memory per connection as the bytes arrive",
    ),
    (
        "Head with bare LF line endings",
        b"GET / HTTP/1.1\nHost: x\nX-Mode: environ\n\n",
        None,
        400,
        "no answer: waits for a CRLF CRLF until its channel timeout",
        "a bare LF is refused at once instead of holding the connection",
    ),
    (
        "Lower-case method (get)",
        b"get / HTTP/1.1\r\nHost: x\r\nX-Mode: environ\r\n\r\n",
        400,
        200,
        "400 (malformed method)",
        "methods are case-sensitive tokens (RFC 9110 §9.1): `get` is a valid, unknown method, passed to the application, which can answer 405",
    ),
]

STRICT_PARAMS = [
    pytest.param(
        raw,
        w,
        m,
        id=behaviour,
        marks=differs(
            behaviour,
            waitress=waitress_does,
            maitred=f"{m}, passed to the application" if m < 400 else f"{m}, connection closed",
            why=why,
        ),
    )
    for behaviour, raw, w, m, waitress_does, why in STRICT
]


@pytest.mark.parametrize("raw,waitress_status,maitred_status", STRICT_PARAMS)
def test_strictness(server, raw, waitress_status, maitred_status):
    expected = server.pick(waitress=waitress_status, maitred=maitred_status)
    if expected is None:
        with Connection(server.addr, timeout=2) as conn:
            conn.send(raw)
            with pytest.raises(OSError):  # socket.timeout
                conn.response()
        return
    resp, closed = server.raw(raw)
    assert resp.status == expected, resp
    if expected >= 400:
        assert closed


# -- the differences table -----------------------------------------------------------------


def test_differences_are_documented():
    """Every `differs(...)` mark has a row in DIFFERENCES.md, and no row is stale."""
    text = (Path(__file__).parent / "DIFFERENCES.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| behaviour")]
    rows = [r for r in rows if not set(r) <= set("|- ")]
    documented = {r.split("|")[1].strip() for r in rows}
    assert documented == set(DIFFERENCES), (
        f"missing from DIFFERENCES.md: {sorted(set(DIFFERENCES) - documented)}; "
        f"stale rows: {sorted(documented - set(DIFFERENCES))}"
    )
