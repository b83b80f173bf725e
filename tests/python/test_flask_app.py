"""The Flask example (examples/flask_app) served by the installed maitred package.

The server runs as `python -m maitred --listen 127.0.0.1:0 --app-dir examples/flask_app
app:app`; its port comes from the `listening on http://...` log line, and it is stopped by
PID with SIGTERM, which must drain it and exit 0.
"""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from helpers import FLASK_DIR, Connection, build_request, chunked, exchange, require_maitred, start_maitred

require_maitred()

FLASK_ARGS = ("--listen", "127.0.0.1:0", "--app-dir", str(FLASK_DIR), "app:app")
SAMPLE = (FLASK_DIR / "static" / "sample.bin").read_bytes()


@pytest.fixture(scope="module")
def flask_server():
    server = start_maitred(*FLASK_ARGS)
    yield server
    code = server.stop(signal.SIGTERM)
    assert code == 0, f"exit {code} after SIGTERM:\n{server.output()}"


def get(server, target, headers=(), method="GET", check_closed=False):
    resp, closed = exchange(server.addr, build_request(method, target, headers), method, check_closed=check_closed)
    return (resp, closed) if check_closed else resp


def test_hello(flask_server):
    resp = get(flask_server, "/")
    assert resp.status == 200
    assert resp.body == b"Hello from Flask on maitred!\n"
    assert resp.header("Content-Type").startswith("text/plain")
    assert resp.header("Server") == "maitred"


def test_json(flask_server):
    resp = get(flask_server, "/api/items")
    assert resp.status == 200
    assert resp.header("Content-Type") == "application/json"
    data = resp.json()
    assert data["count"] == 3
    assert [i["name"] for i in data["items"]] == ["espresso", "cappuccino", "crème brûlée"]


def test_post_json_echo(flask_server):
    body = json.dumps({"order": ["espresso", 2], "note": "ünïcode"}).encode()
    resp, _ = exchange(
        flask_server.addr, build_request("POST", "/api/echo", [("Content-Type", "application/json")], body)
    )
    assert resp.status == 200
    assert resp.json() == {"echo": {"order": ["espresso", 2], "note": "ünïcode"}, "bytes": len(body)}


def test_post_chunked_body_is_echoed(flask_server):
    pieces = [b"first piece|", bytes(range(256)), b"", b"|" + b"x" * 70000, b"|end"]
    pieces = [p for p in pieces if p]  # a zero-size chunk would end the body
    with Connection(flask_server.addr) as conn:
        conn.send(
            b"POST /api/echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        # Send the chunks in separate writes, as a streaming client would.
        body = chunked(*pieces)
        for i in range(0, len(body), 4096):
            conn.send(body[i : i + 4096])
        resp = conn.response()
    assert resp.status == 200
    assert resp.body == b"".join(pieces)


def test_post_chunked_json(flask_server):
    raw = build_request(
        "POST",
        "/api/echo",
        [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
        chunked(b'{"a": ', b"[1, 2", b', 3]}'),
    )
    resp, _ = exchange(flask_server.addr, raw)
    assert resp.status == 200
    assert resp.json() == {"echo": {"a": [1, 2, 3]}, "bytes": 16}


def test_send_file_bytes_are_exact(flask_server):
    resp = get(flask_server, "/download")
    assert resp.status == 200
    assert resp.header("Content-Length") == str(len(SAMPLE))
    assert resp.header("Content-Disposition") == "attachment; filename=sample.bin"
    assert resp.body == SAMPLE


@pytest.mark.parametrize("n", [1, 5, 200])
def test_streaming_response_is_chunked_and_complete(flask_server, n):
    resp = get(flask_server, f"/stream?n={n}")
    assert resp.status == 200
    assert resp.framing == "chunked"
    assert resp.header("Content-Length") is None
    assert resp.complete
    expected = "".join(f"chunk {i + 1}/{n} for /stream\n" for i in range(n)).encode()
    assert resp.body == expected
    assert all(resp.chunks), "an empty chunk inside the body would end it early"


def test_exception_gives_500_closes_and_hides_the_traceback(flask_server):
    resp, closed = get(flask_server, "/boom", check_closed=True)
    assert resp.status == 500
    assert (resp.header("Connection") or "").lower() == "close"
    assert closed
    body = resp.body.decode("latin-1")
    for secret in ("Traceback", "RuntimeError", "0xDEADBEEF", "deliberate failure", "app.py"):
        assert secret not in body, body
    # The traceback goes to the log instead.
    flask_server.wait_for(__import__("re").compile(rb"deliberate failure in /boom"), timeout=5)


def test_teardown_callbacks_run_for_each_request(flask_server):
    # One request at a time, each followed by a count: the count request's own teardown adds
    # one, so each target must add exactly one more. Flask runs a streamed response's
    # teardown a second time when the stream's own context ends (stream_with_context), so
    # /stream may add two. By the time a response is complete its teardown has run: the
    # server calls the iterable's close() before the last byte goes out.
    def count():
        return get(flask_server, "/teardowns").json()

    targets = ["/", "/api/items", "/hello/x", "/stream?n=3", "/download", "/boom", "/latin1", "/no-such-route"]
    seen = count()
    for target in targets:
        status = get(flask_server, target).status
        assert status == {"/boom": 500, "/no-such-route": 404}.get(target, 200), target
        now = count()
        added = now["count"] - seen["count"] - 1
        assert added in ((1, 2) if target.startswith("/stream") else (1,)), (target, added)
        # The newest record is the target's (the count request's own comes after it answers).
        assert now["recent"][-1]["path"] == target.split("?")[0]
        seen = now
    errors = {r["path"]: r["error"] for r in seen["recent"]}
    assert errors["/boom"] == "RuntimeError"


def test_utf8_path_parameter(flask_server):
    resp = get(flask_server, "/hello/J%C3%BCrgen")
    assert resp.status == 200
    assert resp.body.decode("utf-8") == "Hello, Jürgen\n"
    resp = get(flask_server, "/hello/%E6%9D%B1%E4%BA%AC")
    assert resp.body.decode("utf-8") == "Hello, 東京\n"


def test_latin1_response_header_on_the_wire(flask_server):
    resp = get(flask_server, "/latin1")
    assert resp.status == 200
    assert (b"X-Name", b"M\xfcller") in resp.headers
    assert b"X-Name: M\xfcller\r\n" in resp.head


def test_health(flask_server):
    resp = get(flask_server, "/health")
    assert resp.status == 200 and resp.json() == {"status": "ok"}


def test_keep_alive_across_routes(flask_server):
    with Connection(flask_server.addr) as conn:
        for target in ("/", "/api/items", "/stream?n=2", "/download", "/health"):
            conn.send(build_request("GET", target))
            resp = conn.response()
            assert resp.status == 200, target
            assert (resp.header("Connection") or "").lower() != "close"


# -- stopping: each test runs its own server -------------------------------------------------


def _drain_with(sig, shell_prefix=None):
    """Start a server, have a slow request in flight, send `sig`: the request completes with
    `Connection: close`, new connections are refused, and the process exits 0."""
    server = start_maitred(*FLASK_ARGS, shell_prefix=shell_prefix)
    try:
        result = {}

        def slow():
            try:
                result["resp"], result["closed"] = exchange(
                    server.addr, build_request("GET", "/slow?ms=1500"), check_closed=True
                )
            except Exception as e:  # reported below
                result["error"] = e

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)  # let the request reach a worker
        server.send_signal(sig)
        t.join(15)
        assert not t.is_alive()
        code = server.wait()
    finally:
        server.kill_if_running()
    assert "error" not in result, f"{result.get('error')!r}\n{server.output()}"
    resp = result["resp"]
    assert resp.status == 200 and resp.json() == {"slept_ms": 1500}
    assert (resp.header("Connection") or "").lower() == "close"
    assert result["closed"]
    assert code == 0, f"exit {code} after signal {sig}:\n{server.output()}"
    return server


def test_sigterm_drains_and_exits_0():
    _drain_with(signal.SIGTERM)


def test_sigint_drains_and_exits_0():
    _drain_with(signal.SIGINT)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_background_start_with_sigint_ignored_still_drains(sig):
    # `cmd &` in a non-interactive shell starts the job with SIGINT ignored; the server must
    # still drain on SIGINT (and SIGTERM) sent to its PID.
    _drain_with(sig, shell_prefix='trap "" INT;')


def test_idle_server_stops_at_once_on_sigterm():
    server = start_maitred(*FLASK_ARGS)
    try:
        with Connection(server.addr) as conn:  # an idle keep-alive connection
            conn.send(build_request("GET", "/health"))
            assert conn.response().status == 200
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            code = server.wait(10)
            assert conn.closed_soon(5)
        assert code == 0, server.output()
        assert time.monotonic() - started < 5
    finally:
        server.kill_if_running()


def test_access_log_lines_are_clean_json_on_stdout():
    server = start_maitred("--access-log", "json", *FLASK_ARGS)
    try:
        for target in ("/", "/api/items", "/hello/J%C3%BCrgen"):
            assert get(server, target).status == 200
        deadline = time.monotonic() + 5
        while server.stdout_text().count("\n") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        code = server.stop(signal.SIGTERM)
    finally:
        server.kill_if_running()
    assert code == 0, server.output()
    lines = [line for line in server.stdout_text().splitlines() if line.strip()]
    assert len(lines) == 3, server.output()
    records = [json.loads(line) for line in lines]  # bare JSON: no logging prefix
    assert "listening on http://" not in server.stdout_text()
    assert "listening on http://" in server.stderr_text()
    text = json.dumps(records)
    assert "/api/items" in text
