"""Shared test support: server processes and a small raw HTTP/1.1 client.

Only the standard library: the client speaks bytes over sockets so tests see exactly what a
server put on the wire (framing, header order, raw header bytes).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FLASK_DIR = ROOT / "examples" / "flask_app"

START_TIMEOUT = 20.0  # seconds for a server to report its address
STOP_TIMEOUT = 20.0  # seconds for a drain to finish
IO_TIMEOUT = 10.0  # seconds for any socket operation

LISTENING_RE = re.compile(rb"listening on http://(127\.0\.0\.1):(\d+)")
WAITRESS_RE = re.compile(rb"Serving on http://(127\.0\.0\.1):(\d+)")


def maitred_installed() -> bool:
    try:
        import maitred._maitred  # noqa: F401
    except ImportError:
        return False
    return True


def require_maitred() -> None:
    """Skip the calling test module when the maitred package is not installed."""
    if not maitred_installed():
        pytest.skip(
            "the maitred Python package is not installed (run `pip install .` at the repository root first)",
            allow_module_level=True,
        )


def clean_env(**extra: str) -> dict:
    """The environment for a server process: no MAITRED_* or RUST_LOG from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAITRED_") and k != "RUST_LOG"}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class ServerProcess:
    """A server started as a child process, with its output collected by reader threads."""

    def __init__(self, argv: Sequence[str], *, cwd: Optional[Path] = None, env: Optional[dict] = None):
        self.argv = list(argv)
        self.cwd = str(cwd or ROOT)
        self.env = env if env is not None else clean_env()
        self.proc: Optional[subprocess.Popen] = None
        self.stdout: List[bytes] = []
        self.stderr: List[bytes] = []
        self._cond = threading.Condition()
        self._threads: List[threading.Thread] = []
        self.host: Optional[str] = None
        self.port: Optional[int] = None

    # -- process --------------------------------------------------------------------------
    def start(self) -> "ServerProcess":
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Own process group: a Ctrl-C in the terminal running pytest does not reach it;
            # tests signal it by PID only.
            start_new_session=True,
        )
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            t = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _pump(self, stream, sink: List[bytes]) -> None:
        for line in iter(stream.readline, b""):
            with self._cond:
                sink.append(line)
                self._cond.notify_all()
        stream.close()
        with self._cond:
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_for(self, pattern: "re.Pattern[bytes]", timeout: float = START_TIMEOUT, stream: str = "stderr"):
        """Wait until a line of `stream` matches `pattern`; return the match."""
        sink = self.stderr if stream == "stderr" else self.stdout
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in sink[seen:]:
                    m = pattern.search(line)
                    if m:
                        return m
                seen = len(sink)
                if self.proc.poll() is not None and all(not t.is_alive() for t in self._threads):
                    raise RuntimeError(
                        f"{self.argv[:4]}... exited with {self.proc.returncode} before printing "
                        f"{pattern.pattern!r}:\n{self.output()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {pattern.pattern!r} within {timeout}s:\n{self.output()}")
                self._cond.wait(min(left, 0.2))

    def wait_listening(self, pattern: "re.Pattern[bytes]" = LISTENING_RE, timeout: float = START_TIMEOUT):
        m = self.wait_for(pattern, timeout)
        self.host, self.port = m.group(1).decode(), int(m.group(2))
        return self

    @property
    def addr(self) -> Tuple[str, int]:
        assert self.port is not None, "server address not known yet"
        return (self.host or "127.0.0.1", self.port)

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout)
        finally:
            for t in self._threads:
                t.join(2)
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Signal by PID and wait; on timeout, kill it (still by PID) and fail."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            return self.wait(timeout)
        self.send_signal(sig)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"server {self.pid} did not exit within {timeout}s of signal {sig}:\n{self.output()}")

    def output(self) -> str:
        with self._cond:
            out = b"".join(self.stdout).decode("utf-8", "replace")
            err = b"".join(self.stderr).decode("utf-8", "replace")
        return f"--- stdout ---\n{out}\n--- stderr ---\n{err}"

    def stderr_text(self) -> str:
        with self._cond:
            return b"".join(self.stderr).decode("utf-8", "replace")

    def stdout_text(self) -> str:
        with self._cond:
            return b"".join(self.stdout).decode("utf-8", "replace")

    def kill_if_running(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def maitred_argv(*args: str) -> List[str]:
    return [sys.executable, "-m", "maitred", *args]


def start_maitred(*args: str, env: Optional[dict] = None, shell_prefix: Optional[str] = None) -> ServerProcess:
    """Start `python -m maitred ARGS` and wait for its `listening on` line.

    With `shell_prefix` (like `trap "" INT;`) it runs as `bash -c 'PREFIX exec python -m
    maitred ...'`, so the server inherits what the shell set up and has the shell's PID.
    """
    argv = maitred_argv(*args)
    if shell_prefix is not None:
        import shlex

        argv = ["bash", "-c", f"{shell_prefix} exec {' '.join(shlex.quote(a) for a in argv)}"]
    server = ServerProcess(argv, env=env).start()
    try:
        server.wait_listening()
    except BaseException:
        server.kill_if_running()
        raise
    return server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def waitress_serve() -> List[str]:
    """The `waitress-serve` command of this interpreter (`python -m waitress` is the same)."""
    exe = Path(sys.executable).with_name("waitress-serve")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "waitress"]


def start_waitress(app_spec: str, *args: str, cwd: Path = HERE, attempts: int = 5) -> ServerProcess:
    """Start `waitress-serve` on a free port. Waitress cannot report a port it chose, so
    pick one by binding port 0, close it and start Waitress there; retry if someone else
    took it in between."""
    last: Optional[BaseException] = None
    for _ in range(attempts):
        port = free_port()
        argv = [*waitress_serve(), f"--listen=127.0.0.1:{port}", *args, app_spec]
        server = ServerProcess(argv, cwd=cwd).start()
        try:
            server.wait_listening(WAITRESS_RE)
            wait_connectable(server.addr)
            return server
        except (RuntimeError, TimeoutError, OSError) as e:
            last = e
            server.kill_if_running()
    raise RuntimeError(f"waitress did not start after {attempts} attempts: {last}")


def wait_connectable(addr: Tuple[str, int], timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(addr, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# -- a raw HTTP/1.1 client ----------------------------------------------------------------


class Reader:
    """Buffered reads from a socket with a deadline on every call."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed mid-line: {self.buf!r}")
        i = self.buf.index(b"\n") + 1
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"connection closed after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def until_close(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def closed_soon(self, timeout: float = 3.0) -> bool:
        """True if the peer closes (EOF or reset) within `timeout` with nothing more sent."""
        if self.buf:
            return False
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            return not self._fill()
        except socket.timeout:
            return False
        except ConnectionResetError:
            self.eof = True
            return True
        finally:
            self.sock.settimeout(old)


class Response:
    def __init__(self):
        self.version = b""
        self.status = 0
        self.reason = b""
        self.headers: List[Tuple[bytes, bytes]] = []
        self.body = b""
        self.chunks: List[bytes] = []
        self.framing = ""  # "length", "chunked", "close" or "none"
        self.interim: List[int] = []  # 1xx statuses seen before this response
        self.complete = True  # False when the connection ended before the framing said so
        self.head = b""

    def header(self, name: str) -> Optional[str]:
        """The first value of `name` as latin-1 text, or None."""
        wanted = name.lower().encode("latin-1")
        for k, v in self.headers:
            if k.lower() == wanted:
                return v.decode("latin-1")
        return None

    def header_all(self, name: str) -> List[str]:
        wanted = name.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self.headers if k.lower() == wanted]

    def names(self) -> List[str]:
        return [k.decode("latin-1") for k, _ in self.headers]

    def json(self):
        import json

        return json.loads(self.body.decode("utf-8"))

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.framing} {self.headers!r} {self.body[:200]!r}>"


def read_response(reader: Reader, method: str = "GET") -> Response:
    r = Response()
    while True:
        head_lines = []
        line = reader.line()
        status_line = line
        while True:
            line = reader.line()
            if line in (b"\r\n", b"\n"):
                break
            head_lines.append(line)
        parts = status_line.rstrip(b"\r\n").split(b" ", 2)
        r.version = parts[0]
        status = int(parts[1])
        r.reason = parts[2] if len(parts) > 2 else b""
        r.head = status_line + b"".join(head_lines)
        if 100 <= status < 200 and status != 101:
            r.interim.append(status)
            continue
        r.status = status
        for hl in head_lines:
            name, _, value = hl.rstrip(b"\r\n").partition(b":")
            r.headers.append((name, value.strip(b" \t")))
        break

    te = (r.header("Transfer-Encoding") or "").lower()
    cl = r.header("Content-Length")
    if method == "HEAD" or r.status in (204, 304):
        r.framing = "none"
    elif "chunked" in te:
        r.framing = "chunked"
        try:
            while True:
                size_line = reader.line()
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while reader.line() not in (b"\r\n", b"\n"):
                        pass  # trailers
                    break
                data = reader.exact(size)
                r.chunks.append(data)
                assert reader.exact(2) == b"\r\n", "chunk data not followed by CRLF"
        except EOFError:
            r.complete = False
        r.body = b"".join(r.chunks)
    elif cl is not None:
        r.framing = "length"
        try:
            r.body = reader.exact(int(cl))
        except EOFError:
            r.complete = False
            r.body = reader.until_close()
    else:
        r.framing = "close"
        r.body = reader.until_close()
    return r


class Connection:
    """One client connection: send raw bytes, read responses."""

    def __init__(self, addr: Tuple[str, int], timeout: float = IO_TIMEOUT):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.settimeout(timeout)
        self.reader = Reader(self.sock)
        self.addr = addr

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self, method: str = "GET") -> Response:
        return read_response(self.reader, method)

    def closed_soon(self, timeout: float = 3.0) -> bool:
        return self.reader.closed_soon(timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_request(
    method: str = "GET",
    target: str = "/",
    headers: Sequence[Tuple[str, str]] = (),
    body: bytes = b"",
    version: str = "HTTP/1.1",
    host: Optional[str] = "localhost",
    content_length: bool = True,
) -> bytes:
    """A request as bytes. Header values are sent as latin-1; Content-Length is added for a
    body unless a Transfer-Encoding or Content-Length header is given or content_length is
    False."""
    lines = [f"{method} {target} {version}"]
    names = {k.lower() for k, _ in headers}
    if host is not None and "host" not in names:
        lines.append(f"Host: {host}")
    lines.extend(f"{k}: {v}" for k, v in headers)
    if body and content_length and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*pieces: bytes) -> bytes:
    out = b""
    for p in pieces:
        out += f"{len(p):x}\r\n".encode() + p + b"\r\n"
    return out + b"0\r\n\r\n"


def exchange(
    addr: Tuple[str, int], raw: bytes, method: str = "GET", timeout: float = IO_TIMEOUT, check_closed: bool = False
) -> Tuple[Response, Optional[bool]]:
    """Send `raw` on a new connection and read one response. With `check_closed`, also
    report whether the server closed the connection after it (within a short wait)."""
    with Connection(addr, timeout) as conn:
        conn.send(raw)
        resp = conn.response(method)
        closed = conn.closed_soon(1.5) if check_closed else None
        return resp, closed


def request(addr: Tuple[str, int], method: str = "GET", target: str = "/", **kw) -> Response:
    resp, _ = exchange(addr, build_request(method, target, **kw), method)
    return resp
