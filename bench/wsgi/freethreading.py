"""Free-threading benchmark: maitred's thread pool on CPython 3.14 (GIL) and 3.14t (no GIL).

Run through bench/wsgi/freethreading.sh, which prepares one venv per interpreter. Each
measurement starts `python -m maitred --threads T ft_apps:APP` fresh, waits until it answers,
runs `wrk -t1 -c16` for WARMUP seconds (not counted), then DURATION seconds measured.

    python freethreading.py LABEL=PYTHON [LABEL=PYTHON ...]

Cases, per interpreter: the ~2 ms pure-Python CPU view with --threads 1 and --threads 4, and
Flask hello with --threads 4. Rounds alternate the order of interpreters and cases. Reported:
median requests/s over rounds; the paired ratio threads 4 / threads 1 (median over rounds of
the ratio within a round); the server's CPU time per request (utime + stime from
/proc/PID/stat); and how busy the machine was with other work during each measured run
((all CPU time from /proc/stat) - server - wrk), in cores, so contention is visible.

Environment: CASES (default cpu-t1,cpu-t4,hello-t4; also generic-t1,generic-t4, the CPU view
with an operation CPython does not specialise, see ft_apps.py), DURATION (default 10), WARMUP
(2), ROUNDS (3), CONNS (16), SERVER_CPUS and
WRK_CPUS (taskset CPU lists; default: unpinned), JSON_OUT (raw results as JSON).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time

# The helpers the WSGI benchmark already has (the same folder is on sys.path).
from bench import free_port, to_ms, wait_ready  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
DURATION = int(os.environ.get("DURATION", "10"))
WARMUP = int(os.environ.get("WARMUP", "2"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CONNS = int(os.environ.get("CONNS", "16"))
SERVER_CPUS = os.environ.get("SERVER_CPUS", "")
WRK_CPUS = os.environ.get("WRK_CPUS", "")

ALL_CASES = [
    # name, app, threads
    ("cpu-t1", "ft_apps:flask_cpu", 1),
    ("cpu-t4", "ft_apps:flask_cpu", 4),
    ("hello-t4", "ft_apps:flask_hello", 4),
    ("generic-t1", "ft_apps:flask_cpu_generic", 1),
    ("generic-t4", "ft_apps:flask_cpu_generic", 4),
]
_wanted = os.environ.get("CASES", "cpu-t1,cpu-t4,hello-t4").split(",")
CASES = [case for case in ALL_CASES if case[0] in _wanted]


def pinned(cpus: str, argv: list) -> list:
    return ["taskset", "-c", cpus, *argv] if cpus else argv




def proc_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def busy_ticks() -> int:
    with open("/proc/stat") as f:
        cpu = f.readline().split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in cpu[:8])
    return user + nice + system + irq + softirq + steal






def wrk(port: int, seconds: int) -> dict:
    argv = pinned(WRK_CPUS, ["wrk", "-t1", f"-c{CONNS}", f"-d{seconds}s", "--timeout", "10s", "--latency",
                             f"http://127.0.0.1:{port}/"])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{out}")
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(m.group(1)) if m else 0
    p50 = re.search(r"^\s*50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
    return {
        "requests": reqs,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "errors": errors,
        "p50_ms": to_ms(p50.group(1)) if p50 else None,
        "p99_ms": to_ms(p99.group(1)) if p99 else None,
        "wrk_cpu_s": usage.ru_utime + usage.ru_stime,
    }


def measure(python: str, app: str, threads: int) -> dict:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAITRED_") and k not in ("RUST_LOG", "PYTHON_GIL")}
    argv = pinned(SERVER_CPUS, [python, "-m", "maitred", "--listen", f"127.0.0.1:{port}", "--threads", str(threads),
                                "--app-dir", HERE, app])
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, server)
        wrk(port, WARMUP)
        t0, s0, b0 = time.monotonic(), proc_ticks(server.pid), busy_ticks()
        res = wrk(port, DURATION)
        elapsed = time.monotonic() - t0
        server_s = (proc_ticks(server.pid) - s0) / CLK_TCK
        busy_s = (busy_ticks() - b0) / CLK_TCK
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    res["server_cpu_us_per_req"] = server_s / max(res["requests"], 1) * 1e6
    res["server_cores"] = server_s / elapsed
    res["other_cores"] = max(busy_s - server_s - res["wrk_cpu_s"], 0.0) / elapsed
    return res


def burn_ms(python: str, name: str = "burn") -> float:
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); import ft_apps; f = getattr(ft_apps, sys.argv[2]); "
        "f(); t = time.thread_time(); [f() for _ in range(100)]; print((time.thread_time() - t) * 10)"
    )
    return float(subprocess.check_output([python, "-c", code, HERE, name], text=True))


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> int:
    if len(sys.argv) < 2 or any("=" not in a for a in sys.argv[1:]):
        print(__doc__, file=sys.stderr)
        return 2
    pythons = dict(a.split("=", 1) for a in sys.argv[1:])
    print(f"# free-threading benchmark: {ROUNDS} rounds x {DURATION} s (+{WARMUP} s warm-up), wrk -t1 -c{CONNS}, "
          f"server CPUs {SERVER_CPUS or 'any'}, wrk CPUs {WRK_CPUS or 'any'}, {os.cpu_count()} CPUs")
    print(f"# load average at start: {load()}")
    for label, python in pythons.items():
        version = subprocess.check_output([python, "-c", "import sys; print(sys.version.split(chr(10))[0])"], text=True)
        print(f"# {label}: {python}: {version.strip()}; burn() = {burn_ms(python):.2f} ms, "
              f"burn_generic() = {burn_ms(python, 'burn_generic'):.2f} ms of CPU on one thread")
    results: dict = {label: {case[0]: [] for case in CASES} for label in pythons}
    for rnd in range(ROUNDS):
        order = [(label, case) for label in pythons for case in CASES]
        if rnd % 2:
            order.reverse()
        for label, (name, app, threads) in order:
            res = measure(pythons[label], app, threads)
            results[label][name].append(res)
            print(f"round {rnd + 1} {label:6} {name:9} {res['rps']:8.1f} req/s  errors {res['errors']}  "
                  f"server {res['server_cores']:.2f} cores, other work {res['other_cores']:.2f} cores", file=sys.stderr)
    print(f"# load average at end: {load()}")
    print()
    print("| interpreter | case | req/s (median) | p50 ms | p99 ms | server CPU µs/req | server cores | other work, cores | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for label in pythons:
        for name, _, _ in CASES:
            runs = results[label][name]
            med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
            print(f"| {label} | {name} | {med('rps'):.1f} | {med('p50_ms'):.1f} | {med('p99_ms'):.1f} | "
                  f"{med('server_cpu_us_per_req'):.0f} | {med('server_cores'):.2f} | {med('other_cores'):.2f} | "
                  f"{sum(r['errors'] for r in runs)} |")
    print()
    for label in pythons:
        for kind, title in (("cpu", "2 ms CPU view"), ("generic", "2 ms CPU view with %")):
            if f"{kind}-t1" not in results[label] or f"{kind}-t4" not in results[label]:
                continue
            pairs = zip(results[label][f"{kind}-t1"], results[label][f"{kind}-t4"])
            ratios = [t4["rps"] / t1["rps"] for t1, t4 in pairs]
            print(f"{label}: {title}, --threads 4 / --threads 1 = {statistics.median(ratios):.2f}x "
                  f"(per round: {', '.join(f'{r:.2f}' for r in ratios)})")
    if os.environ.get("JSON_OUT"):
        with open(os.environ["JSON_OUT"], "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
