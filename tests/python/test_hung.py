"""Hung handlers under WSGI: a call past --worker-timeout is reported with its method, path,
duration and the stuck thread's Python stack, taken on the watchdog's thread while the
application keeps the thread busy."""

from __future__ import annotations

import re
import socket
import textwrap
import threading

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
