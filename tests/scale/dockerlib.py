"""Small helpers for the container checks (tests/scale/images.py, tests/scale/rolling_restart.py):
the docker CLI, health status, published ports, a process's /proc status, plain HTTP."""

from __future__ import annotations

import calendar
import http.client
import json
import os
import re
import subprocess
import sys
import time
from typing import List, Optional, Tuple

T0 = time.time()


class CheckFailed(Exception):
    """A check did not hold: one line saying what was expected and what was seen."""


def log(message: str) -> None:
    print(f"[{time.time() - T0:7.2f}s] {message}", flush=True)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def docker(*args: str, check: bool = True, timeout: float = 120, input: Optional[bytes] = None) -> str:
    """Run `docker ARGS`; return stdout (text). Raise CheckFailed with stderr on failure."""
    proc = subprocess.run(["docker", *args], capture_output=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise CheckFailed(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode(errors="replace")


def compose_base() -> List[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"]


def inspect(container: str) -> dict:
    return json.loads(docker("inspect", container))[0]


def health(container: str) -> str:
    state = inspect(container)["State"]
    return (state.get("Health") or {}).get("Status", "none")


def wait_health(container: str, want: str = "healthy", timeout: float = 90, fail_fast: bool = True) -> float:
    """Wait until Docker reports the container's health as `want`; return when (time.time()).
    With fail_fast, give up as soon as a failed check of this run made it 'unhealthy' (after a
    restart by the restart policy Docker's status can lag behind, so pass False there)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = inspect(container)["State"]
        status = (state.get("Health") or {}).get("Status", "none")
        if status == want:
            return time.time()
        if not state["Running"] and want == "healthy":
            raise CheckFailed(f"{container} exited ({state['ExitCode']}) before it was healthy:\n{logs(container)}")
        last = ((state.get("Health") or {}).get("Log") or [{}])[-1]
        # Unhealthy by a check of this run of the container (a restarted one keeps the old log).
        if (fail_fast and status == "unhealthy" and want == "healthy" and last.get("ExitCode") != 0
                and docker_time(last.get("Start", "")) > docker_time(state["StartedAt"])):
            raise CheckFailed(f"{container} is unhealthy: the health check exited {last.get('ExitCode')}: {str(last.get('Output', '')).strip()[:300]}")
        time.sleep(0.2)
    raise CheckFailed(f"{container} not {want} within {timeout:.0f}s (status {status}):\n{logs(container)}")


def docker_time(text: str) -> float:
    """Seconds since the epoch of Docker's RFC 3339 times (nanoseconds, trailing zeros cut)."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?", text)
    if not m:
        return 0.0
    whole = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return whole + float("0." + (m.group(2) or "0"))


def logs(container: str, tail: int = 15) -> str:
    proc = subprocess.run(["docker", "logs", "--tail", str(tail), container], capture_output=True, timeout=30)
    return (proc.stdout + proc.stderr).decode(errors="replace")


def published(container: str, port: int = 8080) -> Tuple[str, int]:
    """The host address Docker published the container's port on."""
    out = docker("port", container, f"{port}/tcp").split()
    expect(bool(out), f"{container}: port {port} is not published")
    host, _, p = out[0].rpartition(":")
    return host.strip("[]"), int(p)


def proc_status(host_pid: int) -> dict:
    """/proc/PID/status of a container's process, seen from the host, as a dict."""
    with open(f"/proc/{host_pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def check_pid1_uid(container: str, uid: int) -> str:
    """The container's main process is PID 1 in its namespace, runs as `uid` (real, effective,
    saved, filesystem) and is maitred; returns its command line."""
    pid = inspect(container)["State"]["Pid"]
    status = proc_status(pid)
    nspid = status.get("NSpid", "").split()
    expect(nspid and nspid[-1] == "1", f"{container}: main process has NSpid {nspid}, not PID 1 in the container")
    uids = status["Uid"].split()
    expect(uids == [str(uid)] * 4, f"{container}: main process runs as UIDs {uids}, expected {uid}")
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    expect("maitred" in cmdline, f"{container}: PID 1 is `{cmdline}`, not maitred")
    return cmdline


def http_request(host: str, port: int, method: str, path: str, body: Optional[bytes] = None,
                 headers: Optional[dict] = None, timeout: float = 10) -> Tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def wait_http(host: str, port: int, path: str, timeout: float = 60) -> float:
    """Wait until GET path answers 200; return when."""
    deadline = time.time() + timeout
    last = ""
    while time.time() < deadline:
        try:
            status, _, _ = http_request(host, port, "GET", path, timeout=2)
            if status == 200:
                return time.time()
            last = f"HTTP {status}"
        except (OSError, http.client.HTTPException) as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.1)
    raise CheckFailed(f"GET http://{host}:{port}{path} not 200 within {timeout:.0f}s (last: {last})")


def run_main(checks: dict) -> None:
    """argv[1] names the check; exit 1 with its one-line reason when it fails."""
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in checks:
        print(f"usage: {os.path.basename(sys.argv[0])} {'|'.join(checks)} [options]", file=sys.stderr)
        sys.exit(2)
    try:
        checks[name](sys.argv[2:])
    except CheckFailed as e:
        print(f"FAIL: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
