"""The WSGI application the conformance suite runs on every server under test.

It is plain WSGI (no framework) so that what a test sees is what the server did. The
request header ``X-Mode`` picks a behaviour (default ``environ``):

environ         200, JSON describing the environ; ``X-Read`` picks how wsgi.input is read
body-length     reads wsgi.input to its end in 64 KiB pieces; JSON {"body_length": N}
write           the ``write()`` callable from start_response, then a returned item
generator       start_response called lazily, inside the iterable, with an empty item in between
close           an iterable with close(); ``closes`` reports how many close() calls were seen
close-error     an iterable that raises after its first item; close() must still be called
closes          JSON {"count": N} of close() calls so far
headers         response headers in a fixed order, with repeated names
latin1-header   a response header value with a non-ASCII latin-1 character
status          a custom reason phrase
content-length  the application sets Content-Length itself
cl-long         the application says Content-Length: 3 and returns 10 bytes
empty           200 with an empty body
no-content      204 with no body
error-before    raises before start_response
error-after     start_response, then raises before returning
error-mid-body  yields one item, then raises (the head is already on the wire)
exc-info        start_response(200), then start_response(500, ..., exc_info) before any body
bad-header      a header value containing CR LF
hop-by-hop      a hop-by-hop response header (Connection), which PEP 3333 forbids
file-wrapper    environ['wsgi.file_wrapper'] over a temporary file of known bytes
head-empty      no Content-Length; a generator for GET, an empty list for HEAD (as Werkzeug)
"""

import json
import os
import sys
import tempfile
import threading

_lock = threading.Lock()
_closes = {"count": 0}

FILE_BYTES = bytes(range(256)) * 64 + b"tail"

CGI_KEYS = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "REQUEST_URI",
)

WSGI_KEYS = (
    "wsgi.url_scheme",
    "wsgi.multithread",
    "wsgi.multiprocess",
    "wsgi.run_once",
    "wsgi.input_terminated",
)


def _json(start_response, data, status="200 OK"):
    body = json.dumps(data, sort_keys=True).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _read_body(environ):
    """Read wsgi.input the way X-Read asks; return (how, bytes)."""
    stream = environ["wsgi.input"]
    how = environ.get("HTTP_X_READ", "read")
    if how == "none":
        return how, b""
    if how == "read":
        return how, stream.read()
    if how == "read-minus-one":
        return how, stream.read(-1)
    if how == "read-size":
        parts = []
        while True:
            part = stream.read(7)
            if not part:
                break
            assert len(part) <= 7, len(part)
            parts.append(part)
        return how, b"".join(parts)
    if how == "read-content-length":
        # What frameworks do: read exactly CONTENT_LENGTH bytes.
        n = int(environ.get("CONTENT_LENGTH") or 0)
        return how, stream.read(n)
    if how == "readline":
        lines = []
        while True:
            line = stream.readline()
            if not line:
                break
            lines.append(line)
        return how, b"|".join(lines)
    if how == "readline-size":
        lines = []
        while True:
            line = stream.readline(4)
            if not line:
                break
            assert len(line) <= 4, len(line)
            lines.append(line)
        return how, b"|".join(lines)
    if how == "readlines":
        return how, b"|".join(stream.readlines())
    if how == "iter":
        return how, b"|".join(line for line in stream)
    raise ValueError(f"unknown X-Read {how!r}")


def _body_length(environ, start_response):
    stream = environ["wsgi.input"]
    total = 0
    while True:
        piece = stream.read(65536)
        if not piece:
            break
        total += len(piece)
    return _json(start_response, {"body_length": total})


def _environ(environ, start_response):
    how, body = _read_body(environ)
    cgi = {key: environ[key] for key in CGI_KEYS if key in environ}
    wsgi = {key: environ[key] for key in WSGI_KEYS if key in environ}
    http = {key: value for key, value in environ.items() if key.startswith("HTTP_")}
    errors = environ.get("wsgi.errors")
    data = {
        "cgi": cgi,
        "http": http,
        "wsgi": wsgi,
        "wsgi_version": list(environ.get("wsgi.version", ())),
        "has": {
            "wsgi.input": "wsgi.input" in environ,
            "wsgi.errors": errors is not None and hasattr(errors, "write") and hasattr(errors, "flush"),
            "wsgi.file_wrapper": callable(environ.get("wsgi.file_wrapper")),
        },
        # PEP 3333: every key and every CGI-style value is a native str.
        "non_str_keys": [repr(k) for k in environ if not isinstance(k, str)],
        "non_str_cgi_values": sorted(
            k for k, v in environ.items() if isinstance(k, str) and k.isupper() and not isinstance(v, str)
        ),
        # PATH_INFO must be the decoded bytes as a latin-1 str; show the bytes it stands for.
        "path_info_bytes_hex": environ.get("PATH_INFO", "").encode("latin-1").hex(),
        "read": how,
        "body_latin1": body.decode("latin-1"),
        "body_length": len(body),
    }
    return _json(start_response, data)


def _write(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"one,")
    write(b"two,")
    return [b"three"]


def _generator(environ, start_response):
    def body():
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"alpha,"
        yield b""  # an empty item must not end (or corrupt) the body
        yield b"beta,"
        yield b"gamma"

    return body()


class _Closing:
    def __init__(self, items, fail_after=None):
        self.items = list(items)
        self.fail_after = fail_after

    def __iter__(self):
        for i, item in enumerate(self.items):
            if self.fail_after is not None and i >= self.fail_after:
                raise RuntimeError("iterable failed on purpose (secret: 0xC0FFEE)")
            yield item

    def close(self):
        with _lock:
            _closes["count"] += 1


def _close(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return _Closing([b"closable ", b"body"])


def _close_error(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return _Closing([b"first ", b"second"], fail_after=1)


def _closes_count(environ, start_response):
    with _lock:
        return _json(start_response, {"count": _closes["count"]})


def _headers(environ, start_response):
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("X-Zeta", "1"),
            ("X-Alpha", "2"),
            ("Set-Cookie", "a=1; Path=/"),
            ("Set-Cookie", "b=2; Path=/"),
            ("X-Zeta", "3"),
            ("x-lower-case", "kept"),
        ],
    )
    return [b"ordered"]


def _latin1_header(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Name", "M\u00fcller")])
    return [b"latin-1"]


def _status(environ, start_response):
    start_response("299 Custom Reason Phrase", [("Content-Type", "text/plain")])
    return [b"custom"]


def _content_length(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"he", b"llo"]


def _cl_long(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"0123456789"]


def _empty(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return []


def _no_content(environ, start_response):
    start_response("204 No Content", [])
    return []


def _error_before(environ, start_response):
    raise RuntimeError("failed before start_response (secret: 0xDEADBEEF)")


def _error_after(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    raise RuntimeError("failed after start_response (secret: 0xDEADBEEF)")


def _error_mid_body(environ, start_response):
    def body():
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"partial "
        raise RuntimeError("failed mid-body (secret: 0xDEADBEEF)")

    return body()


def _exc_info(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "yes")])
    try:
        raise ValueError("handled by the application")
    except ValueError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain"), ("X-Second", "yes")], sys.exc_info())
    return [b"replaced by the application"]


def _bad_header(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Evil", "a\r\nInjected: yes")])
    return [b"should not be sent"]


def _hop_by_hop(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])
    return [b"hop-by-hop"]


def _head_empty(environ, start_response):
    # Werkzeug's way with a streamed response: no Content-Length, and nothing at all for HEAD.
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["REQUEST_METHOD"] == "HEAD":
        return []
    return (chunk for chunk in [b"hel", b"lo"])


def _file_wrapper(environ, start_response):
    f = tempfile.TemporaryFile()
    f.write(FILE_BYTES)
    f.seek(0)
    start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(FILE_BYTES)))]
    )
    return environ["wsgi.file_wrapper"](f, 4096)


MODES = {
    "environ": _environ,
    "write": _write,
    "generator": _generator,
    "close": _close,
    "close-error": _close_error,
    "closes": _closes_count,
    "headers": _headers,
    "latin1-header": _latin1_header,
    "status": _status,
    "content-length": _content_length,
    "cl-long": _cl_long,
    "body-length": _body_length,
    "empty": _empty,
    "no-content": _no_content,
    "error-before": _error_before,
    "error-after": _error_after,
    "error-mid-body": _error_mid_body,
    "exc-info": _exc_info,
    "bad-header": _bad_header,
    "hop-by-hop": _hop_by_hop,
    "file-wrapper": _file_wrapper,
    "head-empty": _head_empty,
}


def app(environ, start_response):
    mode = environ.get("HTTP_X_MODE", "environ")
    handler = MODES.get(mode)
    if handler is None:
        return _json(start_response, {"error": f"unknown mode {mode!r}"}, "400 Bad Request")
    return handler(environ, start_response)


application = app

if __name__ == "__main__":  # pragma: no cover - manual runs
    from wsgiref.simple_server import make_server

    make_server("127.0.0.1", int(os.environ.get("PORT", "8000")), app).serve_forever()
