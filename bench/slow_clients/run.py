#!/usr/bin/env python3
"""Slow-client acceptance run for issue 11: slowhttptest against maitred at its defaults.

For every (mode, connection count) case this script starts a fresh `maitred` (defaults, except
`--listen 127.0.0.1:0`) serving a temporary directory with a small page and a 1 MiB file, runs
`slowhttptest` in that mode for `--duration` seconds, and meanwhile:

* a normal client makes one GET per second, each on a new TCP connection (open loop: every
  request runs in its own thread, so a hung request does not delay the next), and records
  status, body length, latency, and resets / refusals / timeouts;
* a sampler reads the server's /proc status (VmRSS, VmHWM, Threads, open descriptors) every
  0.5 s and, with `ss`, the ESTABLISHED connections on the server port and its accept queue.

Afterwards it reads slowhttptest's CSV (`-g -o`) for the "Service Available" column, prints one
result block per case and a markdown table, and exits non-zero if any acceptance criterion
failed: service unavailable at any sample, any normal request failed, or normal-client
p99 >= 100 ms. Python 3 standard library only; Linux only (/proc, ss).

    bench/slow_clients/run.py                      # all six cases, about 7-8 minutes
    bench/slow_clients/run.py --modes H --conns 2000 --duration 20   # one quick case
    bench/slow_clients/run.py --binary target/release/maitred --no-build

See bench/slow_clients/README.md.
"""

import argparse
import csv
import datetime
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

SMALL_PATH = "/index.html"
BIG_PATH = "/1m.bin"
BIG_SIZE = 1024 * 1024
P99_LIMIT_MS = 100.0

MODE_NAMES = {"H": "slowloris (-H)", "B": "slow body (-B)", "X": "slow read (-X)"}


def fail(msg, code=2):
    print(f"slow_clients: {msg}", file=sys.stderr)
    sys.exit(code)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Setup


def raise_fd_limit():
    """Raises the soft descriptor limit to the hard one; children (server, slowhttptest) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def find_binary(args):
    if args.binary:
        path = os.path.abspath(args.binary)
        if not os.access(path, os.X_OK):
            fail(f"{path} is not an executable file")
        return path
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    path = os.path.join(target, "release", "maitred")
    if not args.no_build:
        log("cargo build --release --bin maitred")
        r = subprocess.run(["cargo", "build", "--release", "--bin", "maitred"], cwd=REPO)
        if r.returncode != 0:
            fail("cargo build failed")
    if not os.access(path, os.X_OK):
        fail(f"no binary at {path}; build it or pass --binary")
    return path


def make_site(root):
    with open(os.path.join(root, SMALL_PATH.lstrip("/")), "w") as f:
        f.write("<!doctype html><title>maitred</title><p>hello from the normal client's page\n")
    with open(os.path.join(root, BIG_PATH.lstrip("/")), "wb") as f:
        f.write(os.urandom(BIG_SIZE))


# ---------------------------------------------------------------------------------------------
# The server


class Server:
    def __init__(self, binary, site, log_path, extra_args, start_timeout=30):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAITRED_") and k != "RUST_LOG"}
        self.log_path = log_path
        self.log_file = open(log_path, "wb")
        cmd = [binary, "--listen", "127.0.0.1:0", *extra_args, site]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        deadline = time.monotonic() + start_timeout
        self.addr = None
        while time.monotonic() < deadline:
            with open(log_path, "rb") as f:
                m = re.search(rb"listening on http://([0-9.]+):([0-9]+)", f.read())
            if m:
                self.addr = (m.group(1).decode(), int(m.group(2)))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if self.addr is None:
            self.stop()
            with open(log_path, "rb") as f:
                tail = f.read()[-2000:].decode(errors="replace")
            fail(f"server did not report 'listening on http://ADDR' (log: {tail!r})")

    def fd_limit(self):
        try:
            with open(f"/proc/{self.pid}/limits") as f:
                for line in f:
                    if line.startswith("Max open files"):
                        parts = line.split()
                        return int(parts[3]), int(parts[4]) if parts[4].isdigit() else parts[4]
        except OSError:
            pass
        return None, None

    def stop(self, grace=10.0):
        """SIGTERM, then SIGKILL after `grace` seconds. Returns how it ended."""
        if self.proc.poll() is not None:
            self.log_file.close()
            return f"had exited ({self.proc.returncode})"
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
            how = f"exit {self.proc.returncode} after SIGTERM"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            how = f"SIGKILLed ({grace:.0f} s after SIGTERM)"
        self.log_file.close()
        return how


# ---------------------------------------------------------------------------------------------
# Samplers


def read_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


def tcp_kernel_mem_kib():
    """Kernel memory charged to TCP sockets, system-wide (/proc/net/sockstat `TCP: ... mem P`,
    in pages): the send queues a slow reader leaves in the kernel, which no RSS shows."""
    try:
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    parts = line.split()
                    return int(parts[parts.index("mem") + 1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        pass
    return None


def ss_counts(port):
    """(ESTABLISHED connections on the server port, listen socket accept queue now, its limit)."""
    est = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    lst = subprocess.run(["ss", "-Hltn", f"( sport = :{port} )"], capture_output=True, text=True).stdout
    queue, limit = None, None
    for line in lst.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            queue, limit = int(parts[1]), int(parts[2])
    return len([l for l in est.splitlines() if l.strip()]), queue, limit


class Sampler(threading.Thread):
    def __init__(self, pid, port, t0, interval=0.5):
        super().__init__(daemon=True)
        self.pid, self.port, self.t0, self.interval = pid, port, t0, interval
        self.samples = []
        self.stopping = threading.Event()

    def run(self):
        n = 0
        while not self.stopping.is_set():
            t = time.monotonic() - self.t0
            try:
                st = read_status(self.pid)
                fds = len(os.listdir(f"/proc/{self.pid}/fd"))
            except (OSError, ValueError):
                break
            sample = {"t": round(t, 2), "rss_kib": st.get("VmRSS"), "hwm_kib": st.get("VmHWM"),
                      "threads": st.get("Threads"), "fds": fds, "tcp_mem_kib": tcp_kernel_mem_kib()}
            if n % 2 == 0:  # ss once a second
                est, queue, qlimit = ss_counts(self.port)
                sample.update(established=est, accept_queue=queue, accept_queue_limit=qlimit)
            self.samples.append(sample)
            n += 1
            self.stopping.wait(self.interval)


# ---------------------------------------------------------------------------------------------
# The normal client


def one_request(addr, path, timeout):
    """One GET on a new connection; returns a dict with status/latency/error."""
    start = time.monotonic()
    deadline = start + timeout
    result = {"status": None, "error": None, "bytes": 0}
    sock = None
    try:
        sock = socket.create_connection(addr, timeout=timeout)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\nConnection: close\r\n\r\n".encode())
        data = bytearray()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("response deadline")
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, sep, body = bytes(data).partition(b"\r\n\r\n")
        if not sep:
            result["error"] = "closed before a full head" if data else "closed without a response"
        else:
            status_line = head.split(b"\r\n", 1)[0].split()
            result["status"] = int(status_line[1]) if len(status_line) >= 2 else None
            m = re.search(rb"(?im)^content-length:\s*([0-9]+)\s*$", head)
            result["bytes"] = len(body)
            if result["status"] != 200:
                result["error"] = f"status {result['status']}"
            elif m and int(m.group(1)) != len(body):
                result["error"] = f"short body ({len(body)} of {int(m.group(1))})"
    except ConnectionResetError:
        result["error"] = "reset"
    except ConnectionRefusedError:
        result["error"] = "refused"
    except socket.timeout:
        result["error"] = "timeout"
    except OSError as e:
        result["error"] = f"error {e.errno}: {e.strerror}"
    finally:
        if sock is not None:
            sock.close()
    result["latency_ms"] = (time.monotonic() - start) * 1000
    return result


class NormalClient(threading.Thread):
    """One request per second on fresh connections until stopped (open loop)."""

    def __init__(self, addr, path, t0, timeout):
        super().__init__(daemon=True)
        self.addr, self.path, self.t0, self.timeout = addr, path, t0, timeout
        self.results = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []

    def _run_one(self, sent_at):
        r = one_request(self.addr, self.path, self.timeout)
        r["t"] = round(sent_at, 2)
        with self.lock:
            self.results.append(r)

    def run(self):
        i = 0
        while not self.stopping.is_set():
            at = self.t0 + i
            now = time.monotonic()
            if at > now and self.stopping.wait(at - now):
                break
            th = threading.Thread(target=self._run_one, args=(at - self.t0,), daemon=True)
            th.start()
            self.threads.append(th)
            i += 1

    def finish(self):
        self.stopping.set()
        self.join()
        for th in self.threads:
            th.join(self.timeout + 5)
        return sorted(self.results, key=lambda r: r["t"])


def percentile(sorted_values, p):
    """Nearest-rank percentile."""
    if not sorted_values:
        return None
    k = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(k) - 1]


# ---------------------------------------------------------------------------------------------
# slowhttptest


def slowhttptest_cmd(mode, conns, args, url_base, prefix):
    cmd = ["slowhttptest", f"-{mode}", "-c", str(conns), "-r", str(args.rate), "-l", str(args.duration),
           "-p", str(args.probe_timeout), "-g", "-o", prefix]
    if mode == "H":
        cmd += ["-i", "10", "-x", "24", "-u", url_base + SMALL_PATH]
    elif mode == "B":
        cmd += ["-i", "10", "-x", "10", "-s", "8192", "-u", url_base + SMALL_PATH]
    elif mode == "X":
        cmd += ["-w", "512", "-y", "1024", "-n", "5", "-z", "32", "-k", "3", "-u", url_base + BIG_PATH]
    return cmd


def read_csv(path):
    """slowhttptest's CSV: one row per second (Seconds, Closed, Pending, Connected,
    Service Available); rows as dicts keyed by the header, values as ints where possible."""
    rows = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = None
        for raw in reader:
            if not raw or not any(c.strip() for c in raw):
                continue
            if header is None:
                header = [c.strip() for c in raw]
                continue
            row = {}
            for key, value in zip(header, raw):
                value = value.strip()
                row[key] = int(value) if re.fullmatch(r"-?[0-9]+", value) else value
            rows.append(row)
    return header, rows


def availability(header, rows):
    """Seconds at which slowhttptest's probe said the service was unavailable."""
    col = next((h for h in header if "service" in h.lower()), None)
    if col is None:
        return None, []
    # slowhttptest writes the target connection count when the probe got an answer in time
    # and 0 when it did not.
    down = [r.get("Seconds") for r in rows if not r.get(col)]
    return col, down


def spans(seconds):
    """[1,2,3,7,8] -> '1-3, 7-8'."""
    out = []
    for s in seconds:
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)


# ---------------------------------------------------------------------------------------------
# One case


def run_case(mode, conns, args, binary, site, outdir):
    name = f"{mode}-{conns}"
    prefix = os.path.join(outdir, name)
    log(f"case {name}: {MODE_NAMES[mode]}, {conns} connections, {args.duration} s")
    load_before = os.getloadavg()
    server = Server(binary, site, prefix + ".server.log", args.server_arg)
    url_base = f"http://{server.addr[0]}:{server.addr[1]}"
    fd_soft, fd_hard = server.fd_limit()

    # Sanity: the page and the 1 MiB file are served before the attack starts.
    for path, size in ((SMALL_PATH, None), (BIG_PATH, BIG_SIZE)):
        r = one_request(server.addr, path, 5)
        if r["error"] or (size is not None and r["bytes"] != size):
            how = server.stop()
            fail(f"{name}: pre-check GET {path} failed: {r} (server {how})")

    t0 = time.monotonic()
    sampler = Sampler(server.pid, server.addr[1], t0)
    sampler.start()
    client = NormalClient(server.addr, SMALL_PATH, t0 + 0.5, args.request_timeout)
    cmd = slowhttptest_cmd(mode, conns, args, url_base, prefix)
    attack = None
    try:
        with open(prefix + ".slowhttptest.log", "wb") as out:
            attack = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            client.start()
            try:
                attack.wait(args.duration + 60)
                attack_rc = attack.returncode
            except subprocess.TimeoutExpired:
                attack.kill()
                attack.wait()
                attack_rc = "killed (overran duration + 60 s)"
        attack_secs = time.monotonic() - t0
        # slowhttptest stops early once the server has closed all its connections; the normal
        # client still runs for the whole duration.
        left = t0 + args.duration - time.monotonic()
        if left > 0:
            time.sleep(left)
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM): stop what this case started, by PID, and pass it on.
        if attack is not None and attack.poll() is None:
            attack.kill()
            attack.wait()
        server.stop(grace=2.0)
        raise
    results = client.finish()
    sampler.stopping.set()
    sampler.join()
    try:
        final = read_status(server.pid)
    except OSError:
        final = {}
    how = server.stop()
    load_after = os.getloadavg()

    # slowhttptest's verdicts.
    csv_path = prefix + ".csv"
    header, rows, avail_col, down = None, [], None, []
    if os.path.exists(csv_path):
        header, rows = read_csv(csv_path)
        avail_col, down = availability(header, rows)
    with open(prefix + ".slowhttptest.log", "rb") as f:
        attack_log = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", f.read().decode(errors="replace"))
    exit_reason = re.findall(r"Exit status: ([^\n\r]*)", attack_log)
    max_connected = max((r.get("Connected", 0) for r in rows), default=None)

    # The normal client.
    answered = [r for r in results if not r["error"]]
    failed = [r for r in results if r["error"]]
    lat = sorted(r["latency_ms"] for r in answered)
    all_lat = sorted(r["latency_ms"] for r in results)
    kinds = {}
    for r in failed:
        kinds[r["error"]] = kinds.get(r["error"], 0) + 1

    samples = sampler.samples
    peak_rss = max((s["rss_kib"] for s in samples if s.get("rss_kib")), default=None)
    hwm = final.get("VmHWM") or max((s["hwm_kib"] for s in samples if s.get("hwm_kib")), default=None)
    threads = sorted({s["threads"] for s in samples if s.get("threads")})
    max_fds = max((s["fds"] for s in samples), default=None)
    tcp_mem = [s["tcp_mem_kib"] for s in samples if s.get("tcp_mem_kib") is not None]
    max_est = max((s.get("established") or 0 for s in samples), default=None)
    max_queue = max((s.get("accept_queue") or 0 for s in samples), default=None)
    qlimit = next((s.get("accept_queue_limit") for s in samples if s.get("accept_queue_limit")), None)
    with open(prefix + ".server.log", "rb") as f:
        server_log = f.read().decode(errors="replace")
    warnings = {}
    for line in server_log.splitlines():
        if " WARN " in line or " ERROR " in line:
            key = re.sub(r"[0-9]+(\.[0-9]+)?", "N", line.split("]", 1)[-1].strip())[:120]
            warnings[key] = warnings.get(key, 0) + 1

    criteria = {
        "slowhttptest CSV read": bool(rows) and avail_col is not None,
        "service available throughout": bool(rows) and avail_col is not None and not down,
        "every normal request answered": bool(results) and not failed,
        f"normal p99 < {P99_LIMIT_MS:.0f} ms": bool(all_lat) and percentile(all_lat, 99) < P99_LIMIT_MS,
    }
    passed = all(criteria.values())
    res = {
        "case": name, "mode": mode, "mode_name": MODE_NAMES[mode], "connections": conns,
        "command": " ".join(cmd), "server_command": " ".join(server.cmd),
        "attack_exit": attack_rc, "attack_seconds": round(attack_secs, 1),
        "slowhttptest_exit_reason": exit_reason[-1].strip() if exit_reason else None,
        "csv_rows": len(rows), "max_connected": max_connected,
        "unavailable_seconds": down, "unavailable_spans": spans([d for d in down if isinstance(d, int)]),
        "normal_sent": len(results), "normal_answered": len(answered), "normal_failed": len(failed),
        "normal_fail_kinds": kinds,
        "normal_failures": [{"t": r["t"], "error": r["error"], "ms": round(r["latency_ms"], 1)} for r in failed],
        # Latency over every request (a failure counts with the time it took to fail), and
        # over the answered ones alone.
        "p50_ms": percentile(all_lat, 50), "p99_ms": percentile(all_lat, 99), "max_ms": all_lat[-1] if all_lat else None,
        "answered_p50_ms": percentile(lat, 50), "answered_p99_ms": percentile(lat, 99),
        "answered_max_ms": lat[-1] if lat else None,
        "slow_requests": [{"t": r["t"], "ms": round(r["latency_ms"], 1)} for r in results
                          if r["latency_ms"] >= P99_LIMIT_MS and not r["error"]],
        "rss_peak_sampled_kib": peak_rss, "vmhwm_kib": hwm, "threads_seen": threads,
        "max_fds": max_fds,
        "tcp_mem_kib_start": tcp_mem[0] if tcp_mem else None, "tcp_mem_kib_max": max(tcp_mem, default=None), "max_established": max_est, "max_accept_queue": max_queue,
        "accept_queue_limit": qlimit, "server_fd_limit": [fd_soft, fd_hard],
        "server_warnings": warnings, "server_stop": how,
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after],
        "criteria": criteria, "passed": passed,
    }
    with open(prefix + ".json", "w") as f:
        json.dump({"result": res, "requests": results, "samples": samples}, f, indent=1)
    print_case(res)
    return res


def fmt_ms(v):
    return "-" if v is None else (f"{v:.1f}" if v < 100 else f"{v:.0f}")


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f}"


def print_case(r):
    verdict = "PASS" if r["passed"] else "FAIL"
    print(f"\n== {r['case']}: {r['mode_name']}, {r['connections']} connections: {verdict}")
    print(f"   slowhttptest: {r['command']}")
    print(f"   slowhttptest exit {r['attack_exit']} after {r['attack_seconds']} s"
          f" (its reason: {r['slowhttptest_exit_reason']}); CSV rows {r['csv_rows']}, max connected {r['max_connected']}")
    down = r["unavailable_seconds"]
    print(f"   service available: {'throughout' if not down else 'NO at seconds ' + r['unavailable_spans']}")
    print(f"   normal client: {r['normal_answered']}/{r['normal_sent']} answered, {r['normal_failed']} failed {r['normal_fail_kinds'] or ''}")
    print(f"   latency (all requests) p50 {fmt_ms(r['p50_ms'])} ms, p99 {fmt_ms(r['p99_ms'])} ms, max {fmt_ms(r['max_ms'])} ms;"
          f" answered only: p99 {fmt_ms(r['answered_p99_ms'])}, max {fmt_ms(r['answered_max_ms'])}")
    if r["normal_failures"]:
        print(f"   failures (t = s after the first normal request: kind, ms): "
              + ", ".join(f"{f['t']:.0f}: {f['error']} {f['ms']:.0f}" for f in r["normal_failures"][:20]))
    if r["slow_requests"]:
        print(f"   answered >= {P99_LIMIT_MS:.0f} ms: " + ", ".join(f"{s['t']:.0f}: {s['ms']:.0f}" for s in r["slow_requests"][:20]))
    print(f"   server: VmHWM {mib(r['vmhwm_kib'])} MiB, sampled peak VmRSS {mib(r['rss_peak_sampled_kib'])} MiB,"
          f" threads {r['threads_seen']}, max fds {r['max_fds']}, max ESTABLISHED {r['max_established']},"
          f" max accept queue {r['max_accept_queue']}/{r['accept_queue_limit']}, fd limit {r['server_fd_limit'][0]}")
    print(f"   kernel TCP memory (system-wide): {mib(r['tcp_mem_kib_start'])} MiB at start, {mib(r['tcp_mem_kib_max'])} MiB at most")
    if r["server_warnings"]:
        for k, v in list(r["server_warnings"].items())[:8]:
            print(f"   server log x{v}: {k}")
    print(f"   server stop: {r['server_stop']}; loadavg before {r['loadavg_before']} after {r['loadavg_after']}")
    for k, ok in r["criteria"].items():
        print(f"   [{'ok' if ok else 'FAIL'}] {k}")


def markdown_table(results):
    lines = [
        "| case | service available | normal answered / sent | failed (kinds) | p50 ms | p99 ms | max ms | VmHWM MiB | kernel TCP MiB | threads | max ESTAB | max fds | slowhttptest max connected | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        avail = "throughout" if not r["unavailable_seconds"] and r["csv_rows"] else (
            "no CSV" if not r["csv_rows"] else f"NO at s {r['unavailable_spans']}")
        kinds = ", ".join(f"{k} {v}" for k, v in r["normal_fail_kinds"].items()) or "-"
        threads = "/".join(str(t) for t in r["threads_seen"]) or "-"
        lines.append(
            f"| {r['case']} | {avail} | {r['normal_answered']} / {r['normal_sent']} | {r['normal_failed']} ({kinds}) |"
            f" {fmt_ms(r['p50_ms'])} | {fmt_ms(r['p99_ms'])} | {fmt_ms(r['max_ms'])} | {mib(r['vmhwm_kib'])} |"
            f" {mib(r['tcp_mem_kib_max'])} |"
            f" {threads} | {r['max_established']} | {r['max_fds']} | {r['max_connected']} |"
            f" {'PASS' if r['passed'] else 'FAIL'} |")
    return "\n".join(lines)


def on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    p = argparse.ArgumentParser(description="slowhttptest against maitred at its defaults (issue 11 acceptance)")
    p.add_argument("--binary", help="maitred binary (default: cargo build --release, then target/release/maitred)")
    p.add_argument("--no-build", action="store_true", help="do not run cargo build; use the existing binary")
    p.add_argument("--modes", default="H,B,X", help="slowhttptest modes, comma-separated from H,B,X (default H,B,X)")
    p.add_argument("--conns", default="2000,4000", help="connection counts, comma-separated (default 2000,4000)")
    p.add_argument("--duration", type=int, default=60, help="seconds per case, slowhttptest -l (default 60)")
    p.add_argument("--rate", type=int, default=200, help="new attack connections per second, -r (default 200)")
    p.add_argument("--probe-timeout", type=int, default=3,
                   help="seconds slowhttptest's probe waits before it calls the service unavailable, -p (default 3)")
    p.add_argument("--request-timeout", type=float, default=10.0,
                   help="the normal client's total time per request, seconds (default 10)")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra maitred argument, repeatable (the acceptance run uses none: defaults)")
    p.add_argument("--results-dir", default=os.path.join(HERE, "results"),
                   help="where raw files go (default bench/slow_clients/results/, ignored by git)")
    args = p.parse_args()

    modes = [m.strip().upper().lstrip("-") for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODE_NAMES:
            fail(f"unknown mode {m!r}: choose from H, B, X")
    try:
        conns = [int(c) for c in args.conns.split(",") if c.strip()]
    except ValueError:
        fail(f"--conns: {args.conns!r} is not a comma-separated list of numbers")
    if not conns or min(conns) < 1 or args.duration < 1:
        fail("--conns and --duration must be positive")
    if sys.platform != "linux":
        fail("Linux only (/proc, ss)")
    for tool in ("slowhttptest", "ss"):
        if shutil.which(tool) is None:
            fail(f"{tool} not found (Debian: apt-get install -y {'slowhttptest' if tool == 'slowhttptest' else 'iproute2'})")

    soft, hard = raise_fd_limit()
    need = max(conns) + 200
    if soft < need:
        fail(f"descriptor limit {soft} (hard {hard}) is below the {need} slowhttptest needs for {max(conns)} connections")
    binary = find_binary(args)

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    outdir = os.path.join(os.path.abspath(args.results_dir), stamp)
    os.makedirs(outdir, exist_ok=True)
    version = subprocess.run(["slowhttptest", "-h"], capture_output=True, text=True).stdout
    version = re.search(r"version ([0-9.]+)", version)
    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    with open("/proc/loadavg") as f:
        loadavg = f.read().strip()
    header = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv), "binary": binary, "git": rev, "nproc": os.cpu_count(),
        "kernel": os.uname().release, "loadavg_start": loadavg, "fd_limit": [soft, hard],
        "slowhttptest": version.group(1) if version else None, "raw_dir": outdir,
    }
    log(f"results in {outdir}; fd limit {soft}/{hard}; load {loadavg}")
    print(f"date {header['date_utc']}, git {rev}, {os.cpu_count()} CPUs, kernel {header['kernel']}, "
          f"slowhttptest {header['slowhttptest']}, fd limit {soft}, load at start {loadavg}")
    print(f"binary {binary}")

    results = []
    with tempfile.TemporaryDirectory(prefix="maitred-slow-clients-") as site:
        make_site(site)
        for mode in modes:
            for n in conns:
                results.append(run_case(mode, n, args, binary, site, outdir))

    with open("/proc/loadavg") as f:
        header["loadavg_end"] = f.read().strip()
    table = markdown_table(results)
    print("\n" + table)
    print(f"\nload at end {header['loadavg_end']}; raw files in {outdir}")
    with open(os.path.join(outdir, "summary.json"), "w") as f:
        json.dump({"header": header, "results": results}, f, indent=1)
    with open(os.path.join(outdir, "summary.md"), "w") as f:
        f.write(table + "\n")
    failed = [r["case"] for r in results if not r["passed"]]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        sys.exit(1)
    print("all cases passed")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as e:
        print(f"slow_clients: interrupted ({e or 'Ctrl-C'}); stopped the server and slowhttptest", file=sys.stderr)
        sys.exit(130)
