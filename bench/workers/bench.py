"""Worker processes benchmark for issue 12: maitred --workers 1 and 2 against Gunicorn (gthread)
and Granian with 2 workers each, on a CPU-bound Flask view and Flask hello.

    bench/workers/run.sh                       # 3 rounds x 10 s per server and app
    ROUNDS=5 DURATION=10 bench/workers/run.sh
    SERVERS=maitred-w1,maitred-w2 APPS=cpu bench/workers/run.sh

Apps (bench/wsgi/ft_apps.py): `cpu` is a Flask view burning about 2 ms of pure-Python CPU per
request, at 16 wrk connections; `hello` is Flask hello, at 50 connections. Servers, each with 4
threads per worker process:

    maitred-w1  python -m maitred --workers 1 --threads 4
    maitred-w2  python -m maitred --workers 2 --threads 4
    gunicorn    gunicorn -k gthread -w 2 --threads 4
    granian     granian --interface wsgi --workers 2 --blocking-threads 4

Nothing is pinned: the servers get both cores (that is the point of worker processes) and wrk
shares them, the same for every server. Each measurement starts the server fresh, waits until
it answers, warms up (WARMUP s), runs `wrk -t1` for DURATION s, and reads the CPU time of the
server's whole process tree (supervisor included) and the resident memory (VmRSS) of each of
its processes. Rounds alternate the order of servers. Reported: medians over rounds of req/s,
p50/p99, server CPU µs per request, RSS per worker process and of the parent, the paired
ratios (within a round) the targets are stated in, and how much other work ran on the machine
during each run (all busy CPU time minus the server's and wrk's), because the machine may be
shared.

Environment: DURATION (10), WARMUP (2), ROUNDS (3), SERVERS, APPS, JSON_OUT (raw results).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WSGI = os.path.join(os.path.dirname(HERE), "wsgi")
sys.path.insert(0, WSGI)

# The WSGI benchmark's helpers: free port, readiness, process tree CPU, wrk and its parsing.
import bench as wsgi_bench  # noqa: E402
from bench import cpu_ticks, free_port, process_tree, stop, wait_ready  # noqa: E402
from freethreading import busy_ticks  # noqa: E402

PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
DURATION = int(os.environ.get("DURATION", "10"))
WARMUP = int(os.environ.get("WARMUP", "2"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
THREADS = 4

APPS = {
    # name: (WSGI spec, wrk connections, title)
    "cpu": ("ft_apps:flask_cpu", 16, "Flask, 2 ms of Python CPU"),
    "hello": ("ft_apps:flask_hello", 50, "Flask hello"),
}
SERVERS = ["maitred-w1", "maitred-w2", "gunicorn", "granian"]


def server_argv(server: str, spec: str, port: int) -> list:
    if server.startswith("maitred-w"):
        workers = server[len("maitred-w") :]
        return [PY, "-m", "maitred", "--listen", f"127.0.0.1:{port}", "--workers", workers,
                "--threads", str(THREADS), "--app-dir", WSGI, spec]
    if server == "gunicorn":
        return [PY, "-m", "gunicorn", "-k", "gthread", "-w", "2", "--threads", str(THREADS), "--chdir", WSGI,
                "-b", f"127.0.0.1:{port}", "--log-level", "warning", spec]
    if server == "granian":
        return [PY, "-m", "granian", "--interface", "wsgi", "--workers", "2", "--blocking-threads", str(THREADS),
                "--http", "1", "--no-ws", "--working-dir", WSGI, "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", spec]
    raise ValueError(server)


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory(root: int) -> dict:
    """RSS of the parent and of each worker process (the parent's descendants; the parent
    itself when it has none: a single process serves)."""
    tree = process_tree(root)
    children = [pid for pid in tree if pid != root]
    parent = rss_kib(root)
    workers = [rss_kib(pid) for pid in children] if children else [parent]
    return {
        "processes": len(tree),
        "parent_rss_mib": parent / 1024 if children else 0.0,
        "worker_rss_mib": statistics.mean(workers) / 1024 if workers else float("nan"),
        "total_rss_mib": (sum(workers) + (parent if children else 0)) / 1024,
    }


def measure(server: str, app: str, log_dir: str) -> dict:
    spec, conns, _ = APPS[app]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAITRED_") and k != "RUST_LOG"}
    log = open(os.path.join(log_dir, f"{server}-{app}.log"), "w")
    proc = subprocess.Popen(server_argv(server, spec, port), cwd=WSGI, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(port, proc, timeout=60)
        wsgi_bench.wrk(port, conns, WARMUP)
        wait_ready(port, proc)
        t0, c0, b0 = time.monotonic(), cpu_ticks(proc.pid), busy_ticks()
        res = wsgi_bench.wrk(port, conns, DURATION)
        elapsed = time.monotonic() - t0
        server_s = (cpu_ticks(proc.pid) - c0) / CLK_TCK
        busy_s = (busy_ticks() - b0) / CLK_TCK
        res.update(memory(proc.pid))
    finally:
        stop(proc, grace=30)
        log.close()
    res.pop("raw", None)
    res["cpu_us_per_req"] = server_s * 1e6 / res["requests"] if res["requests"] else float("nan")
    res["server_cores"] = server_s / elapsed
    # wrk's own CPU is not measured separately here; "other" is everything else but the server,
    # wrk included (about one core's worth at most).
    res["non_server_cores"] = max(busy_s - server_s, 0.0) / elapsed
    return res


def fmt(x: float, digits: int = 1) -> str:
    return "-" if x != x else f"{x:,.{digits}f}"


def main() -> int:
    import tempfile

    servers = [s for s in os.environ.get("SERVERS", ",".join(SERVERS)).split(",") if s]
    apps = [a for a in os.environ.get("APPS", ",".join(APPS)).split(",") if a]
    log_dir = tempfile.mkdtemp(prefix="maitred-workers-bench.")
    with open("/proc/loadavg") as f:
        load0 = " ".join(f.read().split()[:3])
    print(f"# workers benchmark: {ROUNDS} rounds x {DURATION} s (+{WARMUP} s warm-up), wrk -t1, unpinned, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {THREADS} threads per worker; logs in {log_dir}")
    print(f"# load average at start: {load0}", flush=True)
    results: dict = {(s, a): [] for s in servers for a in apps}
    for rnd in range(1, ROUNDS + 1):
        for app in apps:
            order = servers if rnd % 2 else list(reversed(servers))
            for server in order:
                try:
                    res = measure(server, app, log_dir)
                except Exception as e:  # a failed run is reported, the rest goes on
                    print(f"round {rnd} {app:5} {server:10} FAILED: {e}", flush=True)
                    continue
                res["round"] = rnd
                results[(server, app)].append(res)
                print(f"round {rnd} {app:5} {server:10} {res['rps']:9,.0f} req/s  {fmt(res['cpu_us_per_req'], 0)} µs "
                      f"CPU/req  worker RSS {fmt(res['worker_rss_mib'])} MiB x {res['processes']} processes  "
                      f"server {res['server_cores']:.2f} cores, rest of the machine {res['non_server_cores']:.2f}"
                      + (f"  errors {res['errors'] + res['non2xx']}" if res["errors"] + res["non2xx"] else ""),
                      flush=True)
    with open("/proc/loadavg") as f:
        print(f"# load average at end: {' '.join(f.read().split()[:3])}")

    def med(server, app, key):
        vals = [r[key] for r in results[(server, app)] if r[key] == r[key]]
        return statistics.median(vals) if vals else float("nan")

    def paired(a, b, app, key="rps"):
        mine = {r["round"]: r[key] for r in results.get((a, app), ())}
        theirs = {r["round"]: r[key] for r in results.get((b, app), ())}
        ratios = [mine[k] / theirs[k] for k in mine if k in theirs and theirs[k]]
        return statistics.median(ratios) if ratios else float("nan")

    print()
    print("| app | server | req/s | p50 ms | p99 ms | server CPU µs/req | RSS per worker MiB | parent RSS MiB | "
          "processes | rest of machine, cores | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for app in apps:
        for server in servers:
            errs = sum(r["errors"] + r["non2xx"] for r in results[(server, app)])
            print(f"| {APPS[app][2]} | {server} | {fmt(med(server, app, 'rps'), 0)} | {fmt(med(server, app, 'p50'), 2)} | "
                  f"{fmt(med(server, app, 'p99'), 2)} | {fmt(med(server, app, 'cpu_us_per_req'), 0)} | "
                  f"{fmt(med(server, app, 'worker_rss_mib'))} | {fmt(med(server, app, 'parent_rss_mib'))} | "
                  f"{fmt(med(server, app, 'processes'), 0)} | {fmt(med(server, app, 'non_server_cores'), 2)} | {errs} |")
    print()
    print("Targets (paired ratios: median over rounds of the ratio within a round):")
    checks = [("maitred-w2", "maitred-w1", "cpu", 1.7)]
    for app in apps:
        checks += [("maitred-w2", "gunicorn", app, 1.0), ("maitred-w2", "granian", app, 1.0)]
    for a, b, app, want in checks:
        if (a, app) not in results or (b, app) not in results:
            continue
        r = paired(a, b, app)
        state = "n/a" if r != r else ("holds" if r >= want else "MISSED")
        print(f"  {a} >= {want}x {b} on {APPS[app][2]}: {fmt(r, 2)}x  {state}")
    if os.environ.get("JSON_OUT"):
        with open(os.environ["JSON_OUT"], "w") as f:
            json.dump({f"{s}/{a}": rs for (s, a), rs in results.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
