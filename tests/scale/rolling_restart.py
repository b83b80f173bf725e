#!/usr/bin/env python3
"""Replicas behind nginx, for real: `docker-compose --profile prod up`, then restarts and a kill.

    python3 tests/scale/rolling_restart.py --image maitred-api:local --nginx-image nginx:1.28-alpine
                                           [--threads 8] [--phase1-secs 20] [--phase2-secs 15]

Starts docker-compose.yml's `prod` profile (nginx and its dependency api-prod: 3 replicas of
the api image running maitred, read-only root, no capabilities, tmpfs /tmp) with nginx on an
ephemeral 127.0.0.1 port, and checks, failing (exit 1) when one does not hold:

- hardening: each replica runs with a read-only root (a write to /app fails with EROFS), no
  capabilities (CapEff 0), no_new_privs, as UID 10001, and /tmp is a tmpfs that works: a body
  past the 1 MiB spool threshold is spooled there (a /tmp file open in maitred while the
  body arrives) and echoed back intact, and a 700 KiB upload through nginx (below its 1 MiB
  body limit) answers 200;
- phase 1: client threads do keep-alive GETs and POSTs through nginx for at least --phase1-secs while
  every replica in turn gets `docker stop` (SIGTERM: drain) and `docker start`: ZERO failed
  requests, every replica exits 0 within its stop_grace_period (`docker stop` uses the
  container's own stop timeout), comes back healthy and gets
  requests from nginx again;
- phase 2: GET and POST clients through nginx; one replica's process gets SIGKILL (from the
  host, like the OOM killer) and Docker's restart policy brings it back: failed GETs must be 0 (nginx retries them) and failed
  POSTs at most one per POST client thread (only a POST in flight on the killed replica can
  fail: nginx never resends a POST it has sent), as docker/README.md says.

The replicas, nginx and the network are removed at the end (`docker-compose down`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dockerlib import (  # noqa: E402
    CheckFailed,
    compose_base,
    docker,
    expect,
    http_request,
    inspect,
    log,
    proc_status,
    published,
    wait_health,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPLICAS = 3
STOP_GRACE = 30  # for `docker-compose down` at the end (docker-compose.yml: stop_grace_period)
UID = 10001
SPOOL_BODY = 1536 * 1024  # past maitred's 1 MiB spool threshold (sent to the replica directly)
NGINX_BODY = 700 * 1024  # below nginx's 1 MiB body limit
REQUEST_TIMEOUT = 15.0
MAX_REQUESTS_PER_THREAD = 1_000_000  # a bound the time limit reaches first


# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------
@dataclass
class Stats:
    ok: int = 0
    failures: List[Tuple[float, str]] = field(default_factory=list)


class Load:
    """Client threads doing keep-alive requests through nginx until stopped (or the bounds)."""

    def __init__(self, port: int, kinds: List[str], max_secs: float):
        self.port = port
        self.kinds = kinds
        self.stop_event = threading.Event()
        self.deadline = time.time() + max_secs
        self.stats = [Stats() for _ in kinds]
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(len(kinds))]

    def start(self) -> "Load":
        self.started = time.time()
        for t in self.threads:
            t.start()
        return self

    def run(self, i: int) -> None:
        stats, kind = self.stats[i], self.kinds[i]
        conn = None
        for n in range(MAX_REQUESTS_PER_THREAD):
            if self.stop_event.is_set() or time.time() >= self.deadline:
                break
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            try:
                if kind == "GET":
                    conn.request("GET", "/api/items")
                    expected = b'"count":3'
                else:
                    payload = json.dumps({"thread": i, "n": n}).encode()
                    conn.request("POST", "/api/echo", body=payload, headers={"Content-Type": "application/json"})
                    expected = f'"n":{n}'.encode()
                resp = conn.getresponse()
                body = resp.read()
                if resp.status == 200 and expected in body.replace(b" ", b""):
                    stats.ok += 1
                else:
                    stats.failures.append((time.time(), f"{kind}: HTTP {resp.status} {body[:80]!r}"))
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                stats.failures.append((time.time(), f"{kind}: {type(e).__name__}: {e}"))
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def stop(self) -> float:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=REQUEST_TIMEOUT + 5)
        return time.time() - self.started

    def group(self, kind: str) -> Stats:
        total = Stats()
        for k, s in zip(self.kinds, self.stats):
            if k == kind or kind == "":
                total.ok += s.ok
                total.failures.extend(s.failures)
        total.failures.sort()
        return total


def fmt_failures(failures: List[Tuple[float, str]], ref: float, limit: int = 8) -> str:
    lines = [f"      {t - ref:+7.3f}s  {what}" for t, what in failures[:limit]]
    if len(failures) > limit:
        lines.append(f"      ... and {len(failures) - limit} more")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# nginx's access log (deploy/nginx/default.conf: log_format maitred_upstream)
# ---------------------------------------------------------------------------------------------
ACCESS = re.compile(r'^(\d+\.\d+) (\d{3}) "([^"]*)" "([^"]*)" "(\S+) (\S+)')


def read_access(nginx: str, since: float) -> List[Tuple[float, int, List[str], List[str]]]:
    """(time, status, upstream addresses tried, their statuses) per request nginx logged."""
    proc = subprocess.run(["docker", "logs", "--since", f"{int(since) - 1}", nginx], capture_output=True, timeout=60)
    entries = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        m = ACCESS.match(line.strip())
        if m:
            addrs = [a.strip() for a in m.group(3).replace(" : ", ", ").split(",") if a.strip()]
            statuses = [s.strip() for s in m.group(4).replace(" : ", ", ").split(",") if s.strip()]
            entries.append((float(m.group(1)), int(m.group(2)), addrs, statuses))
    return entries


def per_upstream(entries, since: float, until: float) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for t, _, addrs, statuses in entries:
        if since <= t <= until and addrs and statuses and statuses[-1] == "200":
            counts[addrs[-1]] = counts.get(addrs[-1], 0) + 1
    return counts


def retried(entries, since: float, until: float) -> int:
    return sum(1 for t, _, addrs, _ in entries if since <= t <= until and len(addrs) > 1)


# ---------------------------------------------------------------------------------------------
# Hardening
# ---------------------------------------------------------------------------------------------
# Runs inside a replica (docker exec, as the image's user): a POST whose body passes the spool
# threshold, held back near the end while maitred's (PID 1) open files are listed; then the rest,
# and the echo must come back intact. Also: writing to the read-only root fails.
PROBE = r"""
import errno, json, os, socket, time
total, first = int(os.environ["TOTAL"]), int(os.environ["FIRST"])
out = {}
try:
    open("/app/.probe", "w")
    out["rootfs_write"] = "succeeded"
except OSError as e:
    out["rootfs_write"] = errno.errorcode.get(e.errno, str(e.errno))
out["tmp_mount"] = [l.split()[2] for l in open("/proc/mounts") if l.split()[1] == "/tmp"]
s = socket.create_connection(("127.0.0.1", 8080), timeout=10)
s.sendall(b"POST /api/echo HTTP/1.1\r\nHost: probe\r\nContent-Type: application/octet-stream\r\n"
          b"Content-Length: %d\r\nConnection: close\r\n\r\n" % total)
s.sendall(b"a" * first)
spooled, deadline = [], time.time() + 10
while not spooled and time.time() < deadline:
    for fd in os.listdir("/proc/1/fd"):
        try:
            target = os.readlink("/proc/1/fd/" + fd)
        except OSError:
            continue
        if target.startswith("/tmp/"):
            spooled.append(target)
    time.sleep(0.02)
out["spool_files"] = spooled
s.sendall(b"b" * (total - first))
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
out["status"] = head.split(b" ")[1].decode() if head else "none"
out["echo_intact"] = body == b"a" * first + b"b" * (total - first)
print(json.dumps(out))
"""


def check_hardening(replicas: List[str], nginx_port: int) -> None:
    for cid in replicas:
        info = inspect(cid)
        name = info["Name"].lstrip("/")
        # What the process can do first (the spool needs a writable /tmp), then how it was set up.
        out = docker("exec", "-e", f"TOTAL={SPOOL_BODY}", "-e", f"FIRST={SPOOL_BODY - 16 * 1024}", cid, "python3", "-c", PROBE, timeout=60)
        probe = json.loads(out.strip().splitlines()[-1])
        expect(probe["status"] == "200" and probe["echo_intact"],
               f"{name}: {SPOOL_BODY}-byte upload answered {probe['status']}, echo intact: {probe['echo_intact']}")
        expect(bool(probe["spool_files"]), f"{name}: no /tmp file open in maitred while a {SPOOL_BODY}-byte body arrived (not spooled)")
        expect(probe["tmp_mount"] == ["tmpfs"], f"{name}: /tmp is mounted as {probe['tmp_mount']}, expected tmpfs")
        expect(probe["rootfs_write"] == "EROFS", f"{name}: writing to /app gave {probe['rootfs_write']}, expected EROFS")
        host = info["HostConfig"]
        expect(host.get("ReadonlyRootfs") is True, f"{name}: root filesystem not read-only")
        expect(host.get("CapDrop") == ["ALL"], f"{name}: CapDrop is {host.get('CapDrop')}, expected ['ALL']")
        expect("/tmp" in (host.get("Tmpfs") or {}), f"{name}: no tmpfs on /tmp ({host.get('Tmpfs')})")
        expect(host.get("NanoCpus", 0) > 0 and host.get("Memory", 0) > 0,
               f"{name}: no CPU or memory limit (NanoCpus {host.get('NanoCpus')}, Memory {host.get('Memory')}): deploy.resources not applied")
        status = proc_status(info["State"]["Pid"])
        expect(int(status["CapEff"], 16) == 0, f"{name}: effective capabilities {status['CapEff']}")
        expect(status.get("NoNewPrivs") == "1", f"{name}: no_new_privs not set")
        expect(status["Uid"].split() == [str(UID)] * 4, f"{name}: runs as {status['Uid']}")
        log(f"{name}: read-only root (EROFS), CapEff 0, no_new_privs, UID {UID}, "
            f"cpus {host['NanoCpus'] / 1e9:g}, memory {host['Memory'] >> 20} MiB; /tmp tmpfs; "
            f"{SPOOL_BODY}-byte body spooled to {probe['spool_files'][0]} and echoed intact")
    body = os.urandom(NGINX_BODY)
    status, _, echoed = http_request("127.0.0.1", nginx_port, "POST", "/api/echo", body=body,
                                     headers={"Content-Type": "application/octet-stream"}, timeout=30)
    expect(status == 200 and echoed == body, f"{NGINX_BODY}-byte upload through nginx: {status}, intact {echoed == body}")
    log(f"a {NGINX_BODY}-byte upload through nginx: 200, echoed intact")


# ---------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="maitred-api:local", help="the api image (docker-compose.yml's name; built beforehand)")
    parser.add_argument("--nginx-image", default=None, help="NGINX_IMAGE for docker-compose.yml (default: its own)")
    parser.add_argument("--threads", type=int, default=8, help="GET client threads (default 8)")
    parser.add_argument("--post-threads", type=int, default=2, help="POST client threads (default 2)")
    parser.add_argument("--phase1-secs", type=float, default=20.0, help="minimum load time of phase 1 (default 20)")
    parser.add_argument("--phase2-secs", type=float, default=15.0, help="load time of phase 2 (default 15)")
    parser.add_argument("--keep", action="store_true", help="leave the containers running at the end")
    args = parser.parse_args()
    if not (1 <= args.threads <= 64) or not (1 <= args.post_threads <= 16) or not (20 <= args.phase1_secs <= 300) or not (8 <= args.phase2_secs <= 120):
        parser.error("threads 1-64, post-threads 1-16, phase1-secs 20-300, phase2-secs 8-120")
    docker("image", "inspect", args.image)  # built beforehand (docker/ci.sh build)

    project = f"maitred-ci-prod-{os.getpid()}"
    env = dict(os.environ, MAITRED_NGINX_PORT="0")
    if args.nginx_image:
        env["NGINX_IMAGE"] = args.nginx_image
    compose = compose_base() + ["-p", project, "-f", os.path.join(ROOT, "docker-compose.yml"), "--profile", "prod"]

    def run(*a: str, timeout: float = 240) -> str:
        proc = subprocess.run(compose + list(a), env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise CheckFailed(f"{' '.join(a)}: {proc.stderr.strip()[-2000:]}")
        return proc.stdout

    load: Optional[Load] = None
    try:
        t0 = time.time()
        run("up", "-d", "--no-build", "nginx")
        replicas = run("ps", "-q", "api-prod").split()
        expect(len(replicas) == REPLICAS, f"docker-compose started {len(replicas)} api-prod replicas, expected {REPLICAS}")
        nginx = run("ps", "-q", "nginx").strip()
        for cid in replicas:
            wait_health(cid)
        wait_health(nginx)
        _, nginx_port = published(nginx, 8000)
        version = docker("exec", nginx, "nginx", "-v", check=False) or subprocess.run(
            ["docker", "exec", nginx, "nginx", "-v"], capture_output=True, text=True).stderr.strip()
        names = {cid: inspect(cid)["Name"].lstrip("/") for cid in replicas}

        def addr(cid: str) -> str:
            nets = inspect(cid)["NetworkSettings"]["Networks"]
            return next(iter(nets.values()))["IPAddress"] + ":8080"

        log(f"up: {REPLICAS} replicas and nginx healthy {time.time() - t0:.1f}s after docker-compose up ({version.strip()}), "
            f"nginx on 127.0.0.1:{nginx_port}; replicas {', '.join(f'{names[c]} {addr(c)}' for c in replicas)}")
        status, headers, _ = http_request("127.0.0.1", nginx_port, "GET", "/api/items")
        expect(status == 200 and headers.get("server", "").startswith("nginx"), f"GET /api/items through nginx: {status}")

        check_hardening(replicas, nginx_port)

        # ------------------------------------------------------------ phase 1: restart each
        log(f"phase 1: {args.threads} GET + {args.post_threads} POST keep-alive clients through nginx; docker stop + start of each replica in turn")
        p1_start = time.time()
        load = Load(nginx_port, ["GET"] * args.threads + ["POST"] * args.post_threads, max_secs=args.phase1_secs + 180).start()
        time.sleep(2.0)
        restarts = []
        for cid in replicas:
            before = addr(cid)
            # The container's own stop timeout: docker-compose.yml's stop_grace_period.
            grace = inspect(cid)["Config"].get("StopTimeout") or 10
            t_stop = time.time()
            docker("stop", cid, timeout=grace + 30)
            took = time.time() - t_stop
            code = inspect(cid)["State"]["ExitCode"]
            expect(code == 0, f"{names[cid]} exited {code} after docker stop (expected 0; SIGKILLed after the {grace}s stop_grace_period?)")
            expect(took < grace, f"{names[cid]} took {took:.1f}s to stop (stop_grace_period {grace}s)")
            docker("start", cid)
            t_start = time.time()
            t_healthy = wait_health(cid)
            after = addr(cid)
            log(f"{names[cid]}: exit 0 {took:.2f}s after docker stop; started, healthy {t_healthy - t_start:.2f}s later; address {before} -> {after}")
            restarts.append((cid, took, t_healthy - t_start, after, t_healthy))
        remaining = args.phase1_secs - (time.time() - p1_start)
        time.sleep(max(remaining, 3.0))
        p1_secs = load.stop()
        p1 = load.group("")
        p1_end = time.time()
        load_p1, load = load, None
        time.sleep(1.5)
        entries = read_access(nginx, p1_start)
        starved = [names[cid] for cid, _, _, a, t in restarts if per_upstream(entries, t, p1_end).get(a, 0) == 0]
        total1 = p1.ok + len(p1.failures)
        p1_posts = load_p1.group("POST")
        log(f"phase 1: {total1} requests ({p1_posts.ok + len(p1_posts.failures)} POSTs) in {p1_secs:.1f}s ({total1 / p1_secs:.0f}/s), failed {len(p1.failures)}; "
            f"nginx retried {retried(entries, p1_start, p1_end)} on another replica; 2xx by upstream {dict(sorted(per_upstream(entries, p1_start, p1_end).items()))}")
        expect(not p1.failures, f"phase 1: {len(p1.failures)} failed requests while replicas restarted in turn:\n{fmt_failures(p1.failures, p1_start)}")
        expect(not starved, f"phase 1: restarted replica(s) {starved} got no requests through nginx afterwards")

        # ------------------------------------------------------------ phase 2: kill one
        log(f"phase 2: {args.threads} GET + {args.post_threads} POST clients through nginx; SIGKILL one replica")
        time.sleep(6.0)  # nginx's fail_timeout (5 s): a clean slate for its failure counters
        p2_start = time.time()
        load = Load(nginx_port, ["GET"] * args.threads + ["POST"] * args.post_threads, max_secs=args.phase2_secs + 60).start()
        time.sleep(3.0)
        victim = replicas[1]
        restarts_before = inspect(victim)["RestartCount"]
        t_kill = time.time()
        # SIGKILL to the replica's process from outside, as the OOM killer or a crash would end it
        # (`docker kill` counts as a manual stop, which the restart policy leaves stopped).
        os.kill(inspect(victim)["State"]["Pid"], signal.SIGKILL)
        # restart: unless-stopped brings it back (Docker waits a little before restarting).
        deadline = time.time() + 30
        while True:
            info = inspect(victim)
            if info["RestartCount"] > restarts_before and info["State"]["Running"]:
                break
            expect(time.time() < deadline, f"{names[victim]} was not restarted by its restart policy within 30 s of the SIGKILL")
            time.sleep(0.1)
        t_running = time.time()
        t_healthy = wait_health(victim, timeout=60, fail_fast=False)
        log(f"{names[victim]}: SIGKILL; Docker's restart policy restarted it {t_running - t_kill:.2f}s later, healthy {t_healthy - t_kill:.2f}s after the kill")
        time.sleep(max(args.phase2_secs - (time.time() - p2_start), 3.0))
        p2_secs = load.stop()
        p2_end = time.time()
        gets, posts = load.group("GET"), load.group("POST")
        load = None
        time.sleep(1.5)
        entries = read_access(nginx, p2_start)
        for kind, stats in (("GET", gets), ("POST", posts)):
            total = stats.ok + len(stats.failures)
            log(f"phase 2 {kind}: {total} requests, failed {len(stats.failures)}" + (f":\n{fmt_failures(stats.failures, t_kill)}" if stats.failures else ""))
        log(f"phase 2: {p2_secs:.1f}s of load; nginx retried {retried(entries, t_kill, p2_end)} request(s) on another replica after the kill")
        expect(not gets.failures, f"phase 2: {len(gets.failures)} GETs failed although nginx retries them")
        expect(len(posts.failures) <= args.post_threads,
               f"phase 2: {len(posts.failures)} POSTs failed, more than the {args.post_threads} that can be in flight on the killed replica")
        print(f"rolling restart: ok (phase 1: {total1} requests, 0 failed; phase 2: GET 0 failed, POST {len(posts.failures)} failed)")
        return 0
    except CheckFailed as e:
        print(f"FAIL: {e}", file=sys.stderr, flush=True)
        return 1
    finally:
        if load is not None:
            load.stop()
        if not args.keep:
            subprocess.run(compose + ["down", "-v", "--remove-orphans", "-t", str(STOP_GRACE)], env=env, capture_output=True, timeout=180)


if __name__ == "__main__":
    sys.exit(main())
