"""Worker processes (`--workers`) for the Python command and `maitred.serve()`: each worker is
the interpreter started again, importing the application itself. Real processes, real
sockets, every wait bounded. Unix only: signals by PID."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import List

import pytest

from helpers import ServerProcess, clean_env, maitred_argv, require_maitred, start_maitred

require_maitred()

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix signals")

STARTED_RE = re.compile(rb"worker (\d+) \(pid (\d+)\) started")


def write_app(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(body))


def started(server: ServerProcess) -> List[int]:
    """PIDs of the workers the supervisor said started, in order."""
    return [int(m.group(2)) for m in STARTED_RE.finditer(server.stderr_text().encode())]


def wait_until(condition, timeout: float, what: str, server: ServerProcess) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout}s:\n{server.output()}")
        time.sleep(0.05)


class ClientLoop:
    """Keep-alive clients sending GET / until stopped. A request whose reused connection
    the server closed as idle before answering is retried on a new connection, as HTTP
    clients do for a GET (RFC 9112 section 9.3.1); every other failure is counted."""

    def __init__(self, addr, clients: int = 4):
        self.addr = addr
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.bodies: List[bytes] = []
        self.failures: List[str] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> "ClientLoop":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def count(self) -> int:
        with self.lock:
            return len(self.bodies)

    def _run(self) -> None:
        conn, reused = None, False
        while not self.stop.is_set():
            if conn is None:
                conn, reused = http.client.HTTPConnection(*self.addr, timeout=20), False
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                conn.close()
                conn = None
                if not reused:
                    with self.lock:
                        self.failures.append(repr(e))
                continue
            except Exception as e:  # noqa: BLE001 - every other failure is one to report
                conn.close()
                conn = None
                with self.lock:
                    self.failures.append(repr(e))
                continue
            with self.lock:
                if resp.status == 200:
                    self.bodies.append(body)
                else:
                    self.failures.append(f"status {resp.status}")
            reused = True
            if resp.will_close:
                conn.close()
                conn = None


def test_sighup_under_a_20s_client_loop_serves_the_new_code_with_zero_failed_requests(tmp_path):
    write_app(
        tmp_path,
        "versioned",
        """
        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"version one"]
        """,
    )
    server = start_maitred(
        "--listen", "127.0.0.1:0", "--workers", "2", "--threads", "4", "--app-dir", str(tmp_path), "versioned:app"
    )
    try:
        wait_until(lambda: len(started(server)) == 2, 30, "two workers", server)
        begin = time.monotonic()
        with ClientLoop(server.addr) as loop:
            wait_until(lambda: loop.count() >= 50, 30, "first responses", server)
            time.sleep(3)  # load before the reload, as a client loop would see it
            write_app(
                tmp_path,
                "versioned",
                """
                def app(environ, start_response):
                    start_response("200 OK", [("Content-Type", "text/plain")])
                    return [b"version two, loaded on SIGHUP"]
                """,
            )
            server.send_signal(signal.SIGHUP)
            wait_until(lambda: len(started(server)) == 4, 60, "two new workers", server)
            while time.monotonic() - begin < 20:
                time.sleep(0.2)
        assert time.monotonic() - begin >= 20
        assert loop.failures == [], loop.failures[:10]
        bodies = loop.bodies
        assert b"version one" in bodies and bodies[-1] == b"version two, loaded on SIGHUP", set(bodies)
        # Once the old workers are gone, only the new code answers.
        assert set(bodies[-50:]) == {b"version two, loaded on SIGHUP"}
        assert server.stop(signal.SIGTERM) == 0, server.output()
        assert "workers replaced: reload 2" in server.stderr_text(), server.output()
    finally:
        server.kill_if_running()


CRASHING_APP = """
    import ctypes
    import os

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/exit":
            os._exit(1)
        if path == "/segfault":
            ctypes.string_at(0)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    """


def get(addr, path: str = "/") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(*addr, timeout=20)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.body = resp.read()
        return resp
    finally:
        conn.close()


@pytest.mark.parametrize(
    "path, logged",
    [("/exit", "exit status 1"), ("/segfault", "killed by signal 11 (SIGSEGV)")],
)
def test_a_worker_that_dies_inside_a_request_is_replaced_and_the_exit_logged(tmp_path, path, logged):
    write_app(tmp_path, "crashing", CRASHING_APP)
    server = start_maitred(
        "--listen", "127.0.0.1:0", "--workers", "2", "--threads", "2", "--app-dir", str(tmp_path), "crashing:app"
    )
    try:
        wait_until(lambda: len(started(server)) == 2, 30, "two workers", server)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            get(server.addr, path)
        wait_until(lambda: f"exited unexpectedly: {logged}; replacing it" in server.stderr_text(), 20, "the exit", server)
        wait_until(lambda: len(started(server)) == 3, 20, "a replacement", server)
        dead = int(re.search(r"\(pid (\d+)\) exited unexpectedly", server.stderr_text()).group(1))
        live = set(started(server)) - {dead}
        pids = {int(get(server.addr).body) for _ in range(20)}
        assert pids <= live, (pids, live)
        assert server.stop(signal.SIGTERM) == 0, server.output()
        assert "workers replaced: crash 1" in server.stderr_text(), server.output()
    finally:
        server.kill_if_running()


def test_an_app_that_fails_to_import_stops_the_supervisor_with_one_line_and_no_respawn(tmp_path):
    write_app(tmp_path, "unimportable", "import no_such_dependency_for_workers\n")
    began = time.monotonic()
    out = subprocess.run(
        maitred_argv("--listen", "127.0.0.1:0", "--workers", "3", "--app-dir", str(tmp_path), "unimportable:app"),
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 2, out
    err = out.stderr.decode()
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("maitred: cannot load unimportable:app: ModuleNotFoundError"), err
    assert time.monotonic() - began < 60


def test_sigterm_with_requests_in_flight_completes_them_all_and_exits_0(tmp_path):
    write_app(
        tmp_path,
        "slow",
        """
        import time

        def app(environ, start_response):
            time.sleep(1.5)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"finished"]
        """,
    )
    server = start_maitred(
        "--listen", "127.0.0.1:0", "--workers", "2", "--threads", "4", "--app-dir", str(tmp_path), "slow:app"
    )
    try:
        wait_until(lambda: len(started(server)) == 2, 30, "two workers", server)
        results: List[object] = []

        def one() -> None:
            try:
                resp = get(server.addr)
                results.append((resp.status, resp.body))
            except Exception as e:  # noqa: BLE001
                results.append(repr(e))

        clients = [threading.Thread(target=one) for _ in range(6)]
        for t in clients:
            t.start()
        time.sleep(0.7)  # the requests are at the workers (each takes 1.5 s)
        server.send_signal(signal.SIGTERM)
        for t in clients:
            t.join(30)
        assert results == [(200, b"finished")] * 6, results
        assert server.wait(30) == 0, server.output()
    finally:
        server.kill_if_running()


def test_serve_with_workers_runs_the_script_again_in_each_worker(tmp_path):
    script = textwrap.dedent(
        """
        import os
        import maitred

        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(os.getpid()).encode()]

        if __name__ == "__main__":
            maitred.serve(app, listen="127.0.0.1:0", threads=2, workers=2)
        """
    )
    (tmp_path / "serve_workers.py").write_text(script)
    server = ServerProcess([sys.executable, str(tmp_path / "serve_workers.py")], env=clean_env()).start()
    try:
        server.wait_listening()
        wait_until(lambda: len(started(server)) == 2, 30, "two workers", server)
        pids = {int(get(server.addr).body) for _ in range(10)}
        assert pids <= set(started(server)) and server.pid not in pids, (pids, started(server))
        assert server.stop(signal.SIGTERM) == 0, server.output()
    finally:
        server.kill_if_running()


def usable_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 quota (rounded down)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return cpus


def test_workers_auto_starts_one_worker_per_usable_cpu(tmp_path):
    write_app(tmp_path, "plain_auto", CRASHING_APP)
    server = start_maitred(
        "--listen", "127.0.0.1:0", "--app-dir", str(tmp_path), "plain_auto:app", env=clean_env(MAITRED_WORKERS="auto")
    )
    try:
        expected = usable_cpus()
        if expected == 1:
            # One CPU: `auto` is one worker, served by this process itself.
            assert started(server) == []
        else:
            wait_until(lambda: len(started(server)) == expected, 30, f"{expected} workers", server)
        assert server.stop(signal.SIGTERM) == 0, server.output()
    finally:
        server.kill_if_running()
