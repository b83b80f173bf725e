"""Hung handlers under WSGI: a call past --worker-timeout is reported with its method, path,
duration and the stuck thread's Python stack, taken on the watchdog's thread while the
application keeps the thread busy."""

from __future__ import annotations

import os
import re
import socket
import sys
import textwrap

import pytest

from helpers import request, require_maitred, start_maitred

require_maitred()

APP = textwrap.dedent(
    """
    import threading

    release = threading.Event()

    def deep_in_the_application():
        # "Never returns" as far as the test is concerned: bounded so nothing outlives it.
        release.wait(60)

    def application(environ, start_response):
        if environ["PATH_INFO"] == "/release":
            release.set()
        elif environ["PATH_INFO"].startswith("/stuck"):
            deep_in_the_application()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]
    """
)


@pytest.fixture
def hung_app(tmp_path):
    (tmp_path / "hung_app.py").write_text(APP)
    return tmp_path


def test_the_warning_names_the_call_and_shows_the_stuck_threads_python_stack(hung_app):
    server = start_maitred(
        "--app-dir", str(hung_app), "--worker-timeout", "500ms", "--graceful-timeout", "5", "hung_app"
    )
    stuck = socket.create_connection(server.addr, timeout=10)
    try:
        stuck.sendall(b"GET /stuck/here?secret=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        server.wait_for(re.compile(rb"GET /stuck/here has been running for [0-9.]+s"), timeout=30)
        # The stack comes on the lines after the warning; wait for its innermost frame.
        server.wait_for(re.compile(rb"release\.wait\(60\)"), timeout=30)
        log = server.stderr_text()
        warning = log[log.index("GET /stuck/here has been running") :]
        assert "longer than worker_timeout" in warning
        assert "in deep_in_the_application" in warning, log
        assert "in application" in warning, log
        assert "secret=1" not in log
        # The other threads still serve, and release the stuck one.
        assert request(server.addr, target="/release").status == 200
    finally:
        stuck.close()
        assert server.stop() == 0, server.output()


@pytest.mark.skipif(sys.platform == "win32", reason="Unix signals")
def test_under_a_supervisor_the_worker_holding_a_stuck_call_is_replaced_and_others_keep_serving(hung_app):
    from test_workers import STARTED_RE, ClientLoop, started, wait_until

    server = start_maitred(
        "--app-dir", str(hung_app), "--workers", "2", "--worker-timeout", "1", "--graceful-timeout", "2",
        "--drain-delay", "0", "hung_app",
    )
    stuck = socket.create_connection(server.addr, timeout=30)
    try:
        wait_until(lambda: len(started(server)) >= 2, 30, "two workers started", server)
        with ClientLoop(server.addr, clients=2) as load:
            stuck.sendall(b"GET /stuck/forever HTTP/1.1\r\nHost: x\r\n\r\n")
            server.wait_for(re.compile(rb"GET /stuck/forever has been running for [0-9.]+s"), timeout=30)
            # A third worker starts in its place; the stuck one is stopped after graceful_timeout.
            wait_until(lambda: len(started(server)) >= 3, 30, "a replacement worker", server)
            first_two = started(server)[:2]
            wait_until(lambda: not all(_alive(pid) for pid in first_two), 30, "the stuck worker gone", server)
            # The stuck connection is closed with its worker, without an answer.
            assert stuck.recv(4096) in (b"",), "the stuck request was answered"
            served = load.count()
            wait_until(lambda: load.count() >= served + 20, 30, "requests served after the replacement", server)
        assert load.failures == [], (load.failures, server.output())
        assert STARTED_RE.search(server.stderr_text().encode())
    finally:
        stuck.close()
        assert server.stop() == 0, server.output()
    assert "timeout" in server.stderr_text(), server.output()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone as far as serving goes: read its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
