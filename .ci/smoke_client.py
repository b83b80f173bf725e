#!/usr/bin/env python3
"""Raw-socket smoke test for the `echo` example (python3 standard library only).

Usage: smoke_client.py HOST:PORT

The echo example answers every method and path with 200, `Content-Type: text/plain`,
a Content-Length-framed body of exactly b"METHOD TARGET\\n\\n" + request_body, and the header
`X-Body-Length: N` (the number of request-body bytes it received).

Checks, one connection each:
  (a) a plain GET with a query string;
  (b) a chunked POST with two chunks, one carrying a chunk extension;
  (c) two requests pipelined in a single send(), read back in order.

Prints one line per check and a final `smoke: P passed, F failed`; exits 0 only if all passed.
"""

import socket
import sys

TIMEOUT = 10.0  # seconds, applied to every socket operation
MAX_HEAD = 64 * 1024  # refuse response heads larger than this rather than reading forever
MAX_BODY = 16 * 1024 * 1024


class SmokeFailure(Exception):
    """A check did not get what the spec says it should."""


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in wire order, as str
        self.body = body

    def header_values(self, name):
        name = name.lower()
        return [v for (n, v) in self.headers if n.lower() == name]

    def header(self, name):
        """The single value of header `name`; fails if it is absent or repeated."""
        values = self.header_values(name)
        if not values:
            raise SmokeFailure("response has no %s header; headers were %r" % (name, self.headers))
        if len(values) > 1:
            raise SmokeFailure("response has %d %s headers: %r" % (len(values), name, values))
        return values[0]

    def describe(self):
        return "%s %d %s, headers %r, body %r" % (
            self.version, self.status, self.reason, self.headers, self.body)


class ResponseReader:
    """Reads Content-Length-framed HTTP/1.1 responses from a byte source.

    `recv` is a callable returning the next bytes (b"" at end of stream). Responses may be
    split across reads anywhere, and one read may hold several responses; leftover bytes stay
    in the buffer for the next call.
    """

    def __init__(self, recv):
        self._recv = recv
        self.buf = b""

    def _fill(self, what):
        data = self._recv()
        if not data:
            raise SmokeFailure("connection closed by server while reading %s; %d unparsed bytes: %r"
                               % (what, len(self.buf), self.buf[:500]))
        self.buf += data

    def read_response(self):
        # Head: status line and headers, ended by an empty line.
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buf) > MAX_HEAD:
                raise SmokeFailure("no end of response head within %d bytes: %r"
                                   % (MAX_HEAD, self.buf[:500]))
            self._fill("the response head")
        head = self.buf[:end]
        self.buf = self.buf[end + 4:]

        lines = head.split(b"\r\n")
        status_line = lines[0]
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit() \
                or len(parts[1]) != 3:
            raise SmokeFailure("malformed status line: %r" % status_line)
        version = parts[0].decode("ascii", "replace")
        status = int(parts[1])
        reason = parts[2].decode("latin-1") if len(parts) > 2 else ""

        headers = []
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t"):
                raise SmokeFailure("obsolete header line folding in response: %r" % line)
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise SmokeFailure("malformed response header line: %r" % line)
            headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))

        # Body: Content-Length framing only (the echo example always sends Content-Length).
        te = [v for (n, v) in headers if n.lower() == "transfer-encoding"]
        if te:
            raise SmokeFailure("unexpected Transfer-Encoding %r in response (expected "
                               "Content-Length framing); head: %r" % (te, head))
        cls = [v for (n, v) in headers if n.lower() == "content-length"]
        if len(cls) != 1:
            raise SmokeFailure("expected exactly one Content-Length header, got %r; head: %r"
                               % (cls, head))
        if not cls[0].isdigit():
            raise SmokeFailure("invalid Content-Length %r" % cls[0])
        length = int(cls[0])
        if length > MAX_BODY:
            raise SmokeFailure("Content-Length %d is implausibly large" % length)
        while len(self.buf) < length:
            self._fill("a %d-byte response body (have %d)" % (length, len(self.buf)))
        body = self.buf[:length]
        self.buf = self.buf[length:]
        return Response(version, status, reason, headers, body)


def parse_addr(arg):
    host, sep, port = arg.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected HOST:PORT, got %r" % arg)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def connect(addr):
    sock = socket.create_connection(addr, timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def exchange(addr, raw, count):
    """Send `raw` in one send() call on a fresh connection and read `count` responses."""
    sock = connect(addr)
    try:
        sent = sock.send(raw)
        if sent != len(raw):
            # One send() is the point of the pipelining check; a short send on loopback with a
            # few hundred bytes would be very surprising, but finish the job if it happens.
            sock.sendall(raw[sent:])
        reader = ResponseReader(lambda: sock.recv(65536))
        responses = [reader.read_response() for _ in range(count)]
        if reader.buf:
            raise SmokeFailure("%d unexpected bytes after response %d: %r"
                               % (len(reader.buf), count, reader.buf[:500]))
        return responses
    finally:
        sock.close()


def expect_echo(resp, method, target, body, label=""):
    """Check one response against the echo spec for a request `method target` with `body`."""
    where = (label + ": ") if label else ""
    if resp.status != 200:
        raise SmokeFailure("%sexpected status 200, got %d; response: %s"
                           % (where, resp.status, resp.describe()))
    ctype = resp.header("Content-Type")
    if ctype.split(";", 1)[0].strip().lower() != "text/plain":
        raise SmokeFailure("%sexpected Content-Type text/plain, got %r" % (where, ctype))
    expected = ("%s %s\n\n" % (method, target)).encode("latin-1") + body
    if resp.body != expected:
        raise SmokeFailure("%sbody mismatch: expected %r, got %r"
                           % (where, expected, resp.body))
    xbl = resp.header("X-Body-Length")
    if xbl != str(len(body)):
        raise SmokeFailure("%sexpected X-Body-Length: %d, got %r" % (where, len(body), xbl))


def check_get(addr, host_header):
    raw = ("GET /hello?x=1 HTTP/1.1\r\nHost: %s\r\nUser-Agent: maitred-smoke\r\n\r\n"
           % host_header).encode("latin-1")
    (resp,) = exchange(addr, raw, 1)
    expect_echo(resp, "GET", "/hello?x=1", b"")
    return "200, body %r, X-Body-Length 0" % resp.body


def check_chunked(addr, host_header):
    raw = (("POST /upload HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: text/plain\r\n\r\n" % host_header).encode("latin-1")
           + b"6;note=first\r\nhello \r\n"
           + b"5\r\nworld\r\n"
           + b"0\r\n\r\n")
    (resp,) = exchange(addr, raw, 1)
    expect_echo(resp, "POST", "/upload", b"hello world")
    return "200, body %r, X-Body-Length 11" % resp.body


def check_pipelined(addr, host_header):
    body = b"ping=1&pong=2"
    raw = (("GET /one HTTP/1.1\r\nHost: %s\r\n\r\n" % host_header).encode("latin-1")
           + ("POST /two HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded"
              "\r\nContent-Length: %d\r\n\r\n" % (host_header, len(body))).encode("latin-1")
           + body)
    first, second = exchange(addr, raw, 2)
    expect_echo(first, "GET", "/one", b"", "response 1 (GET /one)")
    expect_echo(second, "POST", "/two", body, "response 2 (POST /two)")
    return "2 responses in order: %r, %r" % (first.body, second.body)


def self_test():
    """Exercise ResponseReader with reads split at every possible byte boundary."""
    wire = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
            b"X-Body-Length: 0\r\n\r\nabcde"
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    for size in range(1, len(wire) + 1):
        chunks = [wire[i:i + size] for i in range(0, len(wire), size)]
        it = iter(chunks)
        reader = ResponseReader(lambda: next(it, b""))
        a, b = reader.read_response(), reader.read_response()
        got = (a.status, a.body, a.header("x-body-length"), b.status, b.body, reader.buf)
        if got != (200, b"abcde", "0", 404, b"", b""):
            raise SystemExit("self-test FAILED with reads of %d bytes: %r" % (size, got))
    print("self-test: ok")
    return 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) != 2:
        sys.stderr.write("usage: %s HOST:PORT\n" % argv[0])
        return 2
    try:
        addr = parse_addr(argv[1])
    except ValueError as e:
        sys.stderr.write("smoke: %s\n" % e)
        return 2
    host_header = argv[1]

    checks = [
        ("a", "GET /hello?x=1", check_get),
        ("b", "chunked POST /upload", check_chunked),
        ("c", "pipelined GET /one + POST /two", check_pipelined),
    ]
    passed = failed = 0
    for key, name, fn in checks:
        try:
            detail = fn(addr, host_header)
        except SmokeFailure as e:
            failed += 1
            print("FAIL (%s) %s: %s" % (key, name, e), flush=True)
        except socket.timeout:
            failed += 1
            print("FAIL (%s) %s: timed out after %.0f s waiting for the server"
                  % (key, name, TIMEOUT), flush=True)
        except OSError as e:
            failed += 1
            print("FAIL (%s) %s: socket error: %s" % (key, name, e), flush=True)
        except Exception as e:  # a bug here must still be reported as a failure, loudly
            failed += 1
            print("FAIL (%s) %s: unexpected %s: %s" % (key, name, type(e).__name__, e),
                  flush=True)
        else:
            passed += 1
            print("PASS (%s) %s: %s" % (key, name, detail), flush=True)
    print("smoke: %d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
