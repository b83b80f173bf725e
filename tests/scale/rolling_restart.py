#!/usr/bin/env python3
"""Rolling restart and replica death behind nginx: the scale-out acceptance test.

    python3 tests/scale/rolling_restart.py [--binary target/release/maitred] [--nginx PATH]
                                           [--threads 8] [--phase1-secs 20] [--phase2-secs 14]

Starts 3 maitred static-file servers (the Rust binary) on 127.0.0.1 with
``--health-path /healthz --drain-delay 1s --graceful-timeout 10s``, and nginx on 127.0.0.1 with a
generated configuration in a temporary directory (its own pid file, error and access logs) that
balances over them with ``proxy_next_upstream error timeout http_502 http_503``, retries and
passive health (``max_fails``/``fail_timeout``). Client threads do keep-alive GETs through nginx
for a bounded time.

Phase 1 (asserted): every replica in turn gets SIGTERM while the load runs; it must exit 0
within its grace period, a new one is started on the same port and must become healthy, and
the clients must see ZERO failed requests (any non-2xx or connection error).

Phase 2 (reported, not asserted): one replica is killed with SIGKILL mid-load and restarted a
few seconds later. Half of the clients go through a location with nginx's retries (the
production setting), half through one with ``proxy_next_upstream off``, to show what the
retries save. The report gives failed requests per group, the time from the kill to the last
failure, how often nginx tried the dead replica (passive health: one try per fail_timeout),
and how long the restarted replica took to get traffic again.

Python 3 standard library only; network traffic only to 127.0.0.1; every process it starts is
stopped by its PID at the end. Exit status 0 when phase 1 passes, 1 otherwise, 2 when the
set-up fails (no binary, no nginx).
"""

from __future__ import annotations

import argparse
import grp
import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRAIN_DELAY = 1.0
GRACEFUL_TIMEOUT = 10.0
MAX_FAILS = 1
FAIL_TIMEOUT = 2.0
REPLICAS = 3
REQUEST_TIMEOUT = 10.0
MAX_REQUESTS_PER_THREAD = 2_000_000  # a bound that the time limit reaches first
T0 = time.time()


def log(message: str) -> None:
    print(f"[{time.time() - T0:7.2f}s] {message}", flush=True)


def free_port(taken: set) -> int:
    """A port that was free a moment ago: bind port 0 on 127.0.0.1, read it, close."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port
    raise RuntimeError("no free port found")


def http_get(port: int, path: str, timeout: float = 2.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def children_of(pid: int) -> List[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


# ---------------------------------------------------------------------------------------------
# Replicas
# ---------------------------------------------------------------------------------------------
class Replica:
    def __init__(self, index: int, binary: str, www: str, port: int, logdir: str):
        self.index = index
        self.binary = binary
        self.www = www
        self.port = port
        self.logdir = logdir
        self.generation = 0
        self.proc: Optional[subprocess.Popen] = None
        self.logfile = None
        self.started_at = 0.0

    def argv(self) -> List[str]:
        return [
            self.binary,
            self.www,
            "--listen",
            f"127.0.0.1:{self.port}",
            "--health-path",
            "/healthz",
            "--drain-delay",
            f"{DRAIN_DELAY:g}s",
            "--graceful-timeout",
            f"{GRACEFUL_TIMEOUT:g}s",
            # Above nginx's upstream keepalive_timeout (10 s), so nginx closes idle upstream
            # connections first and never reuses one that maitred has just closed.
            "--keepalive-timeout",
            "30s",
        ]

    def log_path(self) -> str:
        return os.path.join(self.logdir, f"replica{self.index}.gen{self.generation}.log")

    def start(self) -> None:
        self.generation += 1
        self.logfile = open(self.log_path(), "wb")
        self.proc = subprocess.Popen(self.argv(), stdout=self.logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.started_at = time.time()

    def wait_healthy(self, timeout: float = 10.0) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if http_get(self.port, "/healthz", timeout=1.0) == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def start_healthy(self, attempts: int = 3) -> None:
        """Start and wait for /healthz; retry when the port was briefly unavailable."""
        for attempt in range(1, attempts + 1):
            self.start()
            if self.wait_healthy():
                log(f"replica {self.index} gen {self.generation}: pid {self.proc.pid} healthy on 127.0.0.1:{self.port}")
                return
            self.kill()
            with open(self.log_path(), "rb") as f:
                tail = f.read()[-600:].decode(errors="replace")
            log(f"replica {self.index}: attempt {attempt} did not become healthy: {tail.strip()}")
            time.sleep(0.5)
        raise RuntimeError(f"replica {self.index} did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.logfile:
            self.logfile.close()
            self.logfile = None


# ---------------------------------------------------------------------------------------------
# nginx
# ---------------------------------------------------------------------------------------------
NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;

events {{
    worker_connections 4096;
}}

http {{
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    log_format scale '$msec $status "$upstream_addr" "$upstream_status" $request_uri';
    access_log {tmp}/access.log scale buffer=64k flush=1s;

    upstream maitred {{
{servers}
        keepalive 32;
        keepalive_timeout 10s;
        keepalive_requests 10000;
    }}

    server {{
        listen 127.0.0.1:{port};
        keepalive_timeout 60s;
        keepalive_requests 1000000;

        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_connect_timeout 1s;
        proxy_send_timeout 10s;
        proxy_read_timeout 10s;

        # The production setting: a failed connect, an upstream connection closed before the
        # response head, a timeout, 502 or 503 go to the next replica. nginx does this only
        # for idempotent methods (GETs here), and only before anything reached the client.
        location / {{
            proxy_pass http://maitred;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 3;
            proxy_next_upstream_timeout 5s;
        }}

        # The same upstream without retries: what clients would see otherwise (phase 2).
        location /noretry/ {{
            proxy_pass http://maitred/;
            proxy_next_upstream off;
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, binary: str, tmp: str, port: int, upstream_ports: List[int]):
        self.binary = binary
        self.tmp = tmp
        self.port = port
        self.proc: Optional[subprocess.Popen] = None
        user = ""
        if os.geteuid() == 0:
            # As root nginx switches its workers to an unprivileged user; Debian has no group
            # "nobody" (nginx's default), so name nobody's real group.
            nobody = pwd.getpwnam("nobody")
            user = f"user nobody {grp.getgrgid(nobody.pw_gid).gr_name};"
            os.chmod(tmp, 0o755)
        servers = "\n".join(
            f"        server 127.0.0.1:{p} max_fails={MAX_FAILS} fail_timeout={FAIL_TIMEOUT:g}s;" for p in upstream_ports
        )
        self.conf = os.path.join(tmp, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=tmp, port=port, servers=servers, user=user))

    def start(self) -> None:
        check = subprocess.run(
            [self.binary, "-t", "-p", self.tmp, "-c", self.conf, "-e", f"{self.tmp}/error.log"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{check.stdout}{check.stderr}")
        self.stdout = open(os.path.join(self.tmp, "nginx.stdout"), "wb")
        self.proc = subprocess.Popen(
            [self.binary, "-p", self.tmp, "-c", self.conf, "-e", f"{self.tmp}/error.log"],
            stdout=self.stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}; see {self.tmp}/error.log")
            try:
                if http_get(self.port, "/", timeout=1.0) == 200:
                    log(f"nginx pid {self.proc.pid} on 127.0.0.1:{self.port} proxies to the replicas")
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("nginx did not answer within 10 s")

    def stop(self) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        workers = children_of(self.proc.pid)
        self.proc.send_signal(signal.SIGQUIT)  # graceful: finish requests, flush logs
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for pid in workers:  # only this master's own workers, by PID
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.stdout.close()


def find_nginx(given: Optional[str]) -> Optional[str]:
    for candidate in (given, shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------
@dataclass
class Stats:
    ok: int = 0
    failures: List[Tuple[float, str]] = field(default_factory=list)


class Load:
    """Client threads doing keep-alive GETs through nginx until stopped (or the bounds)."""

    def __init__(self, port: int, paths: List[str], threads: int, max_secs: float):
        self.port = port
        self.stop_event = threading.Event()
        self.deadline = time.time() + max_secs
        self.stats: List[Stats] = [Stats() for _ in range(threads)]
        self.paths = [paths[i % len(paths)] for i in range(threads)]
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def start(self) -> "Load":
        self.started = time.time()
        for t in self.threads:
            t.start()
        return self

    def run(self, i: int) -> None:
        stats = self.stats[i]
        path = self.paths[i]
        conn = None
        for _ in range(MAX_REQUESTS_PER_THREAD):
            if self.stop_event.is_set() or time.time() >= self.deadline:
                break
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                if 200 <= resp.status < 300:
                    stats.ok += 1
                else:
                    stats.failures.append((time.time(), f"HTTP {resp.status} for {path}"))
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                stats.failures.append((time.time(), f"{type(e).__name__}: {e} for {path}"))
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def stop(self) -> float:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=REQUEST_TIMEOUT + 5)
        self.stopped = time.time()
        return self.stopped - self.started

    def group(self, path_prefix: str) -> Stats:
        total = Stats()
        for path, s in zip(self.paths, self.stats):
            if path.startswith(path_prefix):
                total.ok += s.ok
                total.failures.extend(s.failures)
        total.failures.sort()
        return total

    def total(self) -> Stats:
        return self.group("")


# ---------------------------------------------------------------------------------------------
# nginx's logs
# ---------------------------------------------------------------------------------------------
ACCESS = re.compile(r'^(\d+\.\d+) (\d{3}) "([^"]*)" "([^"]*)" (\S+)$')


def read_access(tmp: str) -> List[Tuple[float, int, List[str], List[str], str]]:
    """(time, status, upstream addresses tried, their statuses, uri) per request."""
    entries = []
    try:
        with open(os.path.join(tmp, "access.log")) as f:
            for line in f:
                m = ACCESS.match(line.strip())
                if not m:
                    continue
                addrs = [a.strip() for a in m.group(3).replace(" : ", ", ").split(",") if a.strip()]
                statuses = [s.strip() for s in m.group(4).replace(" : ", ", ").split(",") if s.strip()]
                entries.append((float(m.group(1)), int(m.group(2)), addrs, statuses, m.group(5)))
    except OSError:
        pass
    return entries


def count_error_log(tmp: str, since: float, until: float) -> Dict[str, int]:
    """Counts of upstream problems nginx logged between two times (its log has 1 s resolution)."""
    kinds = {
        "connect() failed": "connect refused",
        "upstream prematurely closed": "upstream closed early",
        "recv() failed": "recv failed",
        "upstream timed out": "upstream timed out",
        "no live upstreams": "no live upstreams",
        "upstream server temporarily disabled": "server temporarily disabled",
    }
    counts: Dict[str, int] = {}
    try:
        with open(os.path.join(tmp, "error.log")) as f:
            for line in f:
                m = re.match(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)", line)
                if not m:
                    continue
                t = time.mktime(time.strptime(m.group(1), "%Y/%m/%d %H:%M:%S"))
                if t < int(since) or t > until + 1:
                    continue
                for needle, name in kinds.items():
                    if needle in line:
                        counts[name] = counts.get(name, 0) + 1
    except OSError:
        pass
    return counts


def per_upstream(entries, since: float, until: float) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for t, status, addrs, statuses, _ in entries:
        if since <= t <= until and addrs and statuses and statuses[-1].isdigit() and 200 <= int(statuses[-1]) < 300:
            counts[addrs[-1]] = counts.get(addrs[-1], 0) + 1
    return counts


def retried(entries, since: float, until: float) -> int:
    return sum(1 for t, _, addrs, _, _ in entries if since <= t <= until and len(addrs) > 1)


def fmt_failures(failures: List[Tuple[float, str]], ref: float, limit: int = 10) -> str:
    lines = [f"      {t - ref:+7.3f}s  {what}" for t, what in failures[:limit]]
    if len(failures) > limit:
        lines.append(f"      ... and {len(failures) - limit} more")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "maitred"))
    parser.add_argument("--nginx", default=None, help="nginx executable (default: from PATH or /usr/sbin/nginx)")
    parser.add_argument("--threads", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--phase1-secs", type=float, default=20.0, help="minimum load time of phase 1 (default 20)")
    parser.add_argument("--phase2-secs", type=float, default=14.0, help="load time of phase 2 (default 14)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) for inspection")
    args = parser.parse_args()
    if not (1 <= args.threads <= 64) or not (5 <= args.phase1_secs <= 120) or not (8 <= args.phase2_secs <= 120):
        parser.error("threads 1-64, phase1-secs 5-120, phase2-secs 8-120")

    if not os.access(args.binary, os.X_OK):
        print(f"rolling_restart: no maitred binary at {args.binary} (cargo build --release)", file=sys.stderr)
        return 2
    nginx_bin = find_nginx(args.nginx)
    if not nginx_bin:
        print("rolling_restart: nginx not found (apt-get install nginx)", file=sys.stderr)
        return 2

    tmp = tempfile.mkdtemp(prefix="maitred-scale-")
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("<!doctype html><title>maitred</title><p>served by a replica</p>\n" + "x" * 512 + "\n")
    os.chmod(www, 0o755)

    replicas: List[Replica] = []
    nginx: Optional[Nginx] = None
    load: Optional[Load] = None
    ok = True
    try:
        taken: set = set()
        for i in range(REPLICAS):
            for attempt in range(5):  # a port taken between the probe and the bind: pick again
                r = Replica(i + 1, args.binary, www, free_port(taken), tmp)
                try:
                    r.start_healthy(attempts=1)
                    replicas.append(r)
                    break
                except RuntimeError:
                    r.kill()
            else:
                raise RuntimeError(f"could not start replica {i + 1}")
        nginx_port = free_port(taken)
        nginx = Nginx(nginx_bin, tmp, nginx_port, [r.port for r in replicas])
        nginx.start()
        version = subprocess.run([nginx_bin, "-v"], capture_output=True, text=True).stderr.strip()

        # ---------------------------------------------------------------- phase 1: SIGTERM each
        log(f"phase 1: {args.threads} keep-alive client threads through nginx; SIGTERM each replica in turn")
        p1_start = time.time()
        load = Load(nginx_port, ["/index.html"], args.threads, max_secs=args.phase1_secs + 60).start()
        time.sleep(2.0)
        restarts = []
        for r in replicas:
            old_pid = r.proc.pid
            t_term = time.time()
            log(f"replica {r.index}: SIGTERM to pid {old_pid}")
            r.proc.send_signal(signal.SIGTERM)
            limit = GRACEFUL_TIMEOUT + DRAIN_DELAY + 5
            try:
                code = r.proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                code = None
            took = time.time() - t_term
            r.logfile.close()
            if code != 0:
                ok = False
                log(f"replica {r.index}: FAIL: exit {code} after {took:.2f}s (expected 0 within {limit:g}s)")
                if code is None:
                    r.kill()
            else:
                log(f"replica {r.index}: pid {old_pid} exited 0 after {took:.2f}s (drain delay {DRAIN_DELAY:g}s)")
            r.start_healthy()
            restarts.append((r.index, took, code, r.started_at))
            # Let nginx's passive health put the port back in rotation (fail_timeout) before the
            # next one goes down, as a rolling update waits for readiness.
            time.sleep(FAIL_TIMEOUT + 1.0)
        remaining = args.phase1_secs - (time.time() - p1_start)
        time.sleep(max(remaining, 2.0))
        p1_secs = load.stop()
        p1 = load.total()
        p1_end = time.time()
        time.sleep(1.2)  # nginx flushes its access log buffer every second
        entries = read_access(tmp)
        # Each replacement must have served requests through nginx after it started.
        starved = []
        for r in replicas:
            served = per_upstream(entries, r.started_at, p1_end).get(f"127.0.0.1:{r.port}", 0)
            if served == 0:
                starved.append(r.index)
        p1_retried = retried(entries, p1_start, p1_end)
        p1_errors = count_error_log(tmp, p1_start, p1_end)
        p1_per_upstream = per_upstream(entries, p1_start, p1_end)
        if p1.failures:
            ok = False
        if starved:
            ok = False
        load = None

        # ---------------------------------------------------------------- phase 2: SIGKILL one
        log("phase 2: half the clients with nginx retries (/), half without (/noretry/); SIGKILL one replica")
        time.sleep(FAIL_TIMEOUT + 0.5)  # a clean slate for nginx's failure counters
        p2_start = time.time()
        load = Load(nginx_port, ["/index.html", "/noretry/index.html"], args.threads, max_secs=args.phase2_secs + 30).start()
        time.sleep(3.0)
        victim = replicas[1]
        t_kill = time.time()
        log(f"replica {victim.index}: SIGKILL to pid {victim.proc.pid} (port {victim.port})")
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=10)
        victim.logfile.close()
        time.sleep(5.0)
        t_restart = time.time()
        victim.start_healthy()
        remaining = args.phase2_secs - (time.time() - p2_start)
        time.sleep(max(remaining, 3.0))
        p2_secs = load.stop()
        p2_end = time.time()
        with_retry = load.group("/index.html")
        no_retry = load.group("/noretry/")
        load = None
        time.sleep(1.2)
        entries = read_access(tmp)
        dead = f"127.0.0.1:{victim.port}"
        tries_dead = [t for t, _, addrs, _, _ in entries if t_kill <= t < t_restart and dead in addrs]
        retried_after_kill = retried(entries, t_kill, p2_end)
        back = sorted(
            t
            for t, _, addrs, statuses, _ in entries
            if t >= t_restart and addrs and addrs[-1] == dead and statuses and statuses[-1] == "200"
        )
        p2_errors = count_error_log(tmp, t_kill, p2_end)

        # ---------------------------------------------------------------- summary
        print()
        print("=" * 78)
        print(f"rolling restart summary ({version}, maitred {args.binary})")
        print(
            f"  replicas: {REPLICAS} on 127.0.0.1 ports {', '.join(str(r.port) for r in replicas)}; "
            f"--drain-delay {DRAIN_DELAY:g}s --graceful-timeout {GRACEFUL_TIMEOUT:g}s"
        )
        print(
            f"  nginx: max_fails={MAX_FAILS} fail_timeout={FAIL_TIMEOUT:g}s, proxy_next_upstream error timeout "
            f"http_502 http_503, tries 3, upstream keepalive 32 (timeout 10s)"
        )
        print(f"  clients: {args.threads} threads, keep-alive GETs")
        print()
        print("phase 1: SIGTERM each replica in turn under load (asserted: zero failures)")
        total1 = p1.ok + len(p1.failures)
        print(f"  requests: {total1} in {p1_secs:.1f}s ({total1 / p1_secs:.0f}/s); ok {p1.ok}; FAILED {len(p1.failures)}")
        for index, took, code, _ in restarts:
            print(f"  replica {index}: exit {code} {took:.2f}s after SIGTERM; replacement healthy, serving")
        print(f"  nginx retried {p1_retried} request(s) on another replica; upstream errors logged: {p1_errors or 'none'}")
        print(f"  2xx by upstream: {dict(sorted(p1_per_upstream.items()))}")
        if p1.failures:
            print("  failures:")
            print(fmt_failures(p1.failures, p1_start))
        if starved:
            print(f"  FAIL: replacement(s) {starved} got no requests from nginx after starting")
        print()
        print("phase 2: SIGKILL one replica under load, restarted 5 s later (reported, not asserted)")
        for name, stats in (("with retries (/)", with_retry), ("without retries (/noretry/)", no_retry)):
            total = stats.ok + len(stats.failures)
            last = f"last failure {stats.failures[-1][0] - t_kill:+.3f}s after the kill" if stats.failures else "no failures"
            print(f"  {name:28} requests {total:6d}, ok {stats.ok:6d}, failed {len(stats.failures):3d}; {last}")
            if stats.failures:
                print(fmt_failures(stats.failures, t_kill, limit=6))
        burst = [t for t in tries_dead if t - t_kill < 0.5]
        later = [t for t in tries_dead if t - t_kill >= 0.5]
        print(
            f"  nginx sent {len(tries_dead)} request(s) to the dead replica during its {t_restart - t_kill:.1f}s down: "
            f"{len(burst)} at the kill (in flight, or sent on its kept-alive connections)"
            + (
                f", then {len(later)} re-try(s) after fail_timeout at {', '.join(f'{t - t_kill:+.2f}s' for t in later[:10])}"
                if later
                else ", then none (marked down: max_fails/fail_timeout)"
            )
        )
        print(f"  nginx retried {retried_after_kill} request(s) on another replica after the kill; errors logged: {p2_errors or 'none'}")
        if back:
            print(f"  restarted replica served its first request through nginx {back[0] - t_restart:.2f}s after it was healthy")
        else:
            print("  restarted replica got no requests through nginx before the load ended")
        print(f"  phase 2 load: {p2_secs:.1f}s")
        print()
        print(f"result: phase 1 {'PASS' if ok else 'FAIL'}")
        print("=" * 78)
        return 0 if ok else 1
    except RuntimeError as e:
        print(f"rolling_restart: set-up failed: {e}", file=sys.stderr)
        return 2
    finally:
        if load is not None:
            load.stop()
        if nginx is not None:
            nginx.stop()
        for r in replicas:
            if r.proc and r.proc.poll() is None:
                r.proc.send_signal(signal.SIGTERM)
        for r in replicas:
            if r.proc:
                try:
                    r.proc.wait(timeout=GRACEFUL_TIMEOUT + DRAIN_DELAY + 5)
                except subprocess.TimeoutExpired:
                    r.kill()
            if r.logfile:
                r.logfile.close()
        if args.keep:
            print(f"rolling_restart: logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
