"""Compare WSGI servers with wrk, in alternating rounds (run through bench/wsgi/run.sh).

Environment:
  DURATION   seconds per measured wrk run (default 5)
  WARMUP     seconds of wrk before each measured run, not counted (default 1)
  ROUNDS     rounds; each round runs every app on every server once (default 3)
  SERVERS    comma-separated subset of maitred,waitress,gunicorn,granian
  APPS       comma-separated subset of hello,flask,sleep
  SERVER_CPU core the server is pinned to (default 1); WRK_CPU core for wrk (default 0)
  JSON_OUT   if set, raw results are written there as JSON

Each measurement starts the server fresh, pinned with taskset, waits until it answers,
warms up, runs wrk, and reads the CPU time (utime + stime from /proc/PID/stat) of the
server's whole process tree before and after the measured run. Medians over rounds are
reported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")

DURATION = int(os.environ.get("DURATION", "5"))
WARMUP = int(os.environ.get("WARMUP", "1"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SERVER_CPU = os.environ.get("SERVER_CPU", "1")
WRK_CPU = os.environ.get("WRK_CPU", "0")
THREADS = 4

APPS = {
    # name: (WSGI spec, wrk connections)
    "hello": ("apps:hello", 50),
    "flask": ("apps:flask_hello", 50),
    "sleep": ("apps:sleep", 100),
}
APP_TITLES = {"hello": "plain WSGI hello", "flask": "Flask hello", "sleep": "sleep 50 ms"}


def server_argv(server: str, spec: str, port: int) -> list:
    if server == "maitred":
        return [PY, "-m", "maitred", "--listen", f"127.0.0.1:{port}", "--threads", str(THREADS), spec]
    if server == "waitress":
        return [PY, "-m", "waitress", f"--listen=127.0.0.1:{port}", f"--threads={THREADS}", spec]
    if server == "gunicorn":
        return [
            PY, "-m", "gunicorn", "-k", "gthread", "--threads", str(THREADS), "-w", "1",
            "-b", f"127.0.0.1:{port}", "--log-level", "warning", spec,
        ]
    if server == "granian":
        return [
            PY, "-m", "granian", "--interface", "wsgi", "--workers", "1", "--blocking-threads", str(THREADS),
            "--http", "1", "--no-ws", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", spec,
        ]
    raise ValueError(server)


SERVERS = ["maitred", "waitress", "gunicorn", "granian"]

# Each server's output goes to a file here (the last run of each server and app).
LOG_DIR = tempfile.mkdtemp(prefix="maitred-wsgi-bench.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=15) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not answer within 30 s")


def process_tree(root: int) -> list:
    children: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def cpu_ticks(root: int) -> int:
    """utime + stime of every live process in the tree (all threads included)."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read()
        except OSError:
            continue
        rest = fields[fields.rindex(")") + 2 :].split()
        total += int(rest[11]) + int(rest[12])  # fields 14 and 15: utime, stime
    return total


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def to_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(port: int, conns: int, seconds: int) -> dict:
    cmd = [
        "taskset", "-c", WRK_CPU, "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "--latency",
        f"http://127.0.0.1:{port}/",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    res = {"raw": out}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+(\S+)", out, re.M)
        res[f"p{pct}"] = to_ms(m.group(1)) if m else float("nan")
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    return res


def measure(server: str, app: str) -> dict:
    spec, conns = APPS[app]
    port = free_port()
    argv = ["taskset", "-c", SERVER_CPU, *server_argv(server, spec, port)]
    log = open(os.path.join(LOG_DIR, f"{server}-{app}.log"), "w")
    proc = subprocess.Popen(argv, cwd=HERE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(port, proc)
        if WARMUP:
            wrk(port, conns, WARMUP)
            # wrk leaves up to `conns` requests queued in the server when it stops (the sleep
            # app needs over a second to work them off); one more request waits behind them,
            # so the measured run starts with an empty queue.
            wait_ready(port, proc)
        before = cpu_ticks(proc.pid)
        res = wrk(port, conns, DURATION)
        after = cpu_ticks(proc.pid)
        cpu_s = (after - before) / CLK_TCK
        res["cpu_us_per_req"] = cpu_s * 1e6 / res["requests"] if res["requests"] else float("nan")
        res["processes"] = len(process_tree(proc.pid))
        return res
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen, grace: float = 15) -> None:
    """Stops a server started in its own session by PID: SIGTERM, then SIGKILL to its process
    group after `grace` seconds (gunicorn, granian and maitred's supervisor stop their workers
    themselves on SIGTERM)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def fmt(x: float, digits: int = 1) -> str:
    return "-" if x != x else f"{x:,.{digits}f}"


def main() -> int:
    servers = [s for s in os.environ.get("SERVERS", ",".join(SERVERS)).split(",") if s]
    apps = [a for a in os.environ.get("APPS", ",".join(APPS)).split(",") if a]
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            print(f"bench: {tool} is needed", file=sys.stderr)
            return 1
    ncpu = os.cpu_count() or 1
    print(
        f"WSGI benchmark: {ROUNDS} rounds x {DURATION}s (+{WARMUP}s warm-up), {THREADS} threads per server, "
        f"server on CPU {SERVER_CPU}, wrk on CPU {WRK_CPU} ({ncpu} CPUs), Python {sys.version.split()[0]}",
        flush=True,
    )
    load = os.getloadavg()[0]
    print(f"load average at the start: {load:.2f} (1 min)" + ("  -- the machine is busy; expect noise" if load > 0.5 else ""), flush=True)
    results: dict = {(s, a): [] for s in servers for a in apps}
    for rnd in range(1, ROUNDS + 1):
        for app in apps:
            # Alternate the order between rounds so no server always runs first.
            order = servers if rnd % 2 else list(reversed(servers))
            for server in order:
                try:
                    res = measure(server, app)
                except Exception as e:  # a failed run is reported, the rest goes on
                    print(f"  round {rnd} {app:6} {server:9} FAILED: {e} (log in {LOG_DIR})", flush=True)
                    continue
                res["round"] = rnd
                results[(server, app)].append(res)
                print(
                    f"  round {rnd} {app:6} {server:9} {res['rps']:10,.0f} req/s  p50 {fmt(res['p50'], 2)} ms  "
                    f"p99 {fmt(res['p99'], 2)} ms  {fmt(res['cpu_us_per_req'])} us CPU/req"
                    + (f"  errors {res['errors']}" if res["errors"] else "")
                    + (f"  non-2xx {res['non2xx']}" if res["non2xx"] else ""),
                    flush=True,
                )

    def med(server, app, key):
        vals = [r[key] for r in results[(server, app)] if r[key] == r[key]]
        return statistics.median(vals) if vals else float("nan")

    def paired(server, app, key, versus="waitress"):
        """Median over rounds of server/versus, each ratio from runs of the same round (close
        in time, so drift in the machine's load cancels out)."""
        mine = {r["round"]: r[key] for r in results.get((server, app), ())}
        theirs = {r["round"]: r[key] for r in results.get((versus, app), ())}
        ratios = [mine[k] / theirs[k] for k in mine if k in theirs and theirs[k] and mine[k] == mine[k]]
        return statistics.median(ratios) if ratios else float("nan")

    print()
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")
    print()
    print("Medians over rounds; ratios are medians of same-round ratios.")
    print("| app | server | req/s | p50 ms | p99 ms | CPU µs/req | req/s vs Waitress | CPU vs Waitress | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    summary = {}
    for app in apps:
        for server in servers:
            rps, cpu = med(server, app, "rps"), med(server, app, "cpu_us_per_req")
            errs = sum(r["errors"] + r["non2xx"] for r in results[(server, app)])
            summary[(server, app)] = (rps, cpu)
            print(
                f"| {APP_TITLES[app]} | {server} | {fmt(rps, 0)} | {fmt(med(server, app, 'p50'), 2)} | "
                f"{fmt(med(server, app, 'p99'), 2)} | {fmt(cpu)} | {fmt(paired(server, app, 'rps'), 2)}× | "
                f"{fmt(paired(server, app, 'cpu_us_per_req'), 2)}× | {errs} |"
            )

    print()
    print("Targets:")

    def target(label, ok):
        state = "n/a" if ok is None else ("holds" if ok else "MISSED")
        print(f"  {label}: {state}")

    def ratio(app):
        if ("maitred", app) not in summary or ("waitress", app) not in summary:
            return float("nan")
        return paired("maitred", app, "rps")

    for app, want in (("hello", 2.5), ("flask", 1.5)):
        r = ratio(app)
        target(
            f"maitred >= {want}x Waitress req/s on {APP_TITLES[app]} (measured {fmt(r, 2)}x)",
            None if r != r else r >= want,
        )
    for app in apps:
        if ("maitred", app) in summary and ("gunicorn", app) in summary:
            m, g = summary[("maitred", app)][1], summary[("gunicorn", app)][1]
            r = paired("maitred", app, "cpu_us_per_req", versus="gunicorn")
            target(
                f"maitred CPU per request below Gunicorn's on {APP_TITLES[app]} "
                f"({fmt(m)} vs {fmt(g)} us, {fmt(r, 2)}x)",
                None if r != r else r < 1,
            )

    out = os.environ.get("JSON_OUT")
    if out:
        with open(out, "w") as f:
            json.dump(
                {f"{s}/{a}": [{k: v for k, v in r.items() if k != "raw"} for r in rs] for (s, a), rs in results.items()},
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
