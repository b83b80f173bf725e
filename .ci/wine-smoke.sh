#!/usr/bin/env bash
# Windows smoke test: cross-build the `echo` example for x86_64-pc-windows-gnu, run it under
# Wine on 127.0.0.1 with an OS-assigned port, and drive it with .ci/smoke_client.py.
#
# A pass under Wine exercises the Windows code paths (cfg(windows), Winsock, IOCP polling); it is
# a smoke test, not proof of correctness on real Windows.
#
# Needs: the x86_64-pc-windows-gnu rustup target, gcc-mingw-w64-x86-64, wine (64-bit) and python3.
# The ProcessPrng shim Wine needs is built from .ci/windows/processprng_shim.c (override with
# PRNG_SHIM=...).
# Wine runs in a dedicated prefix under target/ so nothing else is disturbed; the first start in
# a fresh prefix is slow (it is created once and reused).
#
# Then the worker-process test (section "Worker processes" below): `--workers 2`, both workers
# serve, Ctrl-C drains both, the supervisor exits 0.
#
# Exit status: 0 when the smoke client's checks and the worker-process test passed; non-zero on
# any failure, including setup.
set -euo pipefail

ROOT="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel 2>/dev/null \
        || (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd))"
cd "$ROOT"

TRIPLE=x86_64-pc-windows-gnu
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
EXE_DIR="$TARGET_DIR/$TRIPLE/release/examples"
EXE="$EXE_DIR/echo.exe"
PRNG_SHIM="${PRNG_SHIM:-$ROOT/.ci/windows/processprng_shim.c}"
START_TIMEOUT="${SMOKE_START_TIMEOUT:-60}"   # seconds to wait for the "listening on" line
WORK="$TARGET_DIR/wine-smoke"
LOG="$WORK/echo-server.log"

export WINEPREFIX="$WORK/prefix"
export WINEARCH=win64
export WINEDEBUG=-all
# No Mono/Gecko install prompts: a console server needs neither .NET nor a browser engine.
export WINEDLLOVERRIDES="mscoree,mshtml="
# The server logs its bound address at info level (target maitred::server); keep whatever else
# the caller asked for.
export RUST_LOG="${RUST_LOG:+$RUST_LOG,}maitred::server=info"

log() { printf 'wine-smoke: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

for tool in cargo python3 wine wineserver x86_64-w64-mingw32-gcc; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH (see .ci/run)"
done
[ -f "$PRNG_SHIM" ] || die "ProcessPrng shim source not found at $PRNG_SHIM (set PRNG_SHIM=...)"

mkdir -p "$WORK"
# One run at a time per prefix: cleanup below ends every process in the prefix. Wine processes
# are started with fd 9 closed so a lingering wineserver can never hold the lock.
exec 9>"$WORK/lock"
if command -v flock >/dev/null 2>&1; then
    flock -w 600 9 || die "another wine-smoke run holds $WORK/lock"
fi

WINE_PID=""
SERVER_RC=""
cleanup() {
    local rc=$?
    set +e
    if [ -n "$WINE_PID" ] && kill -0 "$WINE_PID" 2>/dev/null; then
        # Wine turns SIGINT into a console Ctrl-C event, so this exercises the server's Windows
        # Ctrl-C handler and drain. (SIGTERM, by contrast, makes Wine end the process at once.)
        local sig
        for sig in INT TERM KILL; do
            kill "-$sig" "$WINE_PID" 2>/dev/null
            for _ in $(seq 100); do kill -0 "$WINE_PID" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$WINE_PID" 2>/dev/null || break
            log "server (pid $WINE_PID) still running 10 s after SIG$sig"
        done
        SERVER_RC=0
        wait "$WINE_PID" 2>/dev/null || SERVER_RC=$?
        if [ "$sig" = INT ] && [ "$SERVER_RC" -eq 0 ]; then
            log "server stopped on Ctrl-C (SIGINT) with status 0"
        else
            log "WARNING: server did not stop cleanly on Ctrl-C (last signal SIG$sig, status $SERVER_RC)"
        fi
    fi
    # The prefix is ours alone (see WINEPREFIX above), so ending its wineserver is safe.
    if [ -d "$WINEPREFIX" ]; then
        wineserver -k 9>&- 2>/dev/null
        wineserver -w 9>&- 2>/dev/null
    fi
    if [ "$rc" -ne 0 ] && [ -f "$LOG" ]; then
        log "server log ($LOG), last 40 lines:"
        tail -n 40 "$LOG" | sed 's/^/    | /' >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Worker processes (issue 12): `--workers 2` under Wine -------------------------------------
# On Windows the supervisor accepts every connection and hands it to a worker process
# (WSADuplicateSocketW / WSASocketW, src/supervisor/windows/). This starts the same echo
# example with two workers, sends concurrent requests, and checks that BOTH workers served
# (per-worker counts on the metrics path while running, and each worker's final count in the
# supervisor's "worker N (pid P) stopped after K requests" lines), that during the drain the
# health path answers 503, and that the supervisor exits 0 once both workers have drained.
#
# How Ctrl-C is delivered: Wine turns SIGINT into CTRL_C_EVENT for the process it is sent to.
#   console: SIGINT to the whole process group (supervisor and both workers), as a real console
#            Ctrl-C reaches every process attached to the console; each drains on its own event.
#   supervisor: SIGINT to the supervisor only; it drains the workers with its `drain` lines.
# Not exercised: Ctrl-Break and console close (same handler on Windows, but Wine offers no
# way to send them from here).
WORKERS_DRIVER='
import socket, sys, threading, time
host, port = sys.argv[2], int(sys.argv[3])
def get(path, keep=False, sock=None):
    s = sock or socket.create_connection((host, port), timeout=20)
    s.sendall(("GET %s HTTP/1.1\r\nHost: w\r\n%s\r\n" % (path, "" if keep else "Connection: close\r\n")).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        more = s.recv(65536)
        if not more: raise OSError("connection closed before the response head")
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
    while len(body) < length:
        more = s.recv(65536)
        if not more: raise OSError("connection closed in the body")
        body += more
    if not keep: s.close()
    return int(head.split(b" ")[1]), body, s
if sys.argv[1] == "load":
    errors, done = [], [0]
    lock = threading.Lock()
    def client(n):
        try:
            for i in range(5):
                s = None
                for j in range(2):
                    path = "/w/%d/%d/%d" % (n, i, j)
                    status, body, s = get(path, keep=(j == 0), sock=s)
                    if status != 200 or not body.startswith(("GET %s\n" % path).encode()):
                        raise OSError("%s: status %d body %r" % (path, status, body[:60]))
                    with lock: done[0] += 1
        except Exception as e:
            with lock: errors.append("client %d: %s" % (n, e))
    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads: t.start()
    for t in threads: t.join(120)
    print("workers-load: %d requests answered 200, %d errors" % (done[0], len(errors)))
    for e in errors[:5]: print("  " + e)
    sys.exit(1 if errors or done[0] != 80 else 0)
elif sys.argv[1] == "metrics":
    # Each worker reports about twice a second; whichever worker answers gives every one count.
    deadline, counts = time.time() + float(sys.argv[4]), {}
    while time.time() < deadline:
        text = get("/metrics")[1].decode()
        counts = dict((l.split("\"")[1], int(float(l.split()[-1]))) for l in text.splitlines()
                      if l.startswith("maitred_worker_process_requests_handled{"))
        if len(counts) == 2 and min(counts.values()) > 0 and sum(counts.values()) >= 80:
            break
        time.sleep(0.2)
    print("workers-metrics: requests handled per worker: %s" % counts)
    sys.exit(0 if len(counts) == 2 and min(counts.values()) > 0 else 1)
else:
    deadline = time.time() + float(sys.argv[4])
    while time.time() < deadline:
        try:
            status = get("/healthz")[0]
        except OSError as e:
            print("workers-drain: health path unreachable before it said 503: %s" % e); sys.exit(1)
        if status == 503:
            print("workers-drain: health path answers 503 during the drain"); sys.exit(0)
        time.sleep(0.05)
    print("workers-drain: health path never answered 503"); sys.exit(1)
'

# workers_smoke MODE (console | supervisor): one run of the test above; returns 0 on success.
workers_smoke() {
    local mode="$1" log="$WORK/workers-$1.log" pid="" port="" rc=0 line deadline
    : >"$log"
    log "workers ($mode): starting: wine $EXE --listen 127.0.0.1:0 --workers 2 --drain-delay 3 --health-path /healthz --metrics-path /metrics"
    # A session of its own, so a signal to its process group reaches the supervisor and its
    # workers and nothing else (the wineserver runs in a session of its own).
    setsid wine "$EXE" --listen 127.0.0.1:0 --workers 2 --drain-delay 3 --health-path /healthz --metrics-path /metrics \
        </dev/null >"$log" 2>&1 9>&- &
    pid=$!
    deadline=$(( $(date +%s) + START_TIMEOUT ))
    while :; do
        line="$(grep -aoE 'listening on http://127\.0\.0\.1:[0-9]+' "$log" | head -n 1 || true)"
        if [ -n "$line" ] && [ "$(grep -acE 'worker [0-9]+ \(pid [0-9]+\) started' "$log")" -ge 2 ]; then
            port="${line##*:}"
            break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" || rc=$?
            log "workers ($mode): supervisor exited with status $rc before both workers were ready"
            sed 's/^/    | /' "$log" >&2
            return 1
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "workers ($mode): both workers not ready after ${START_TIMEOUT}s"
            kill -KILL -- "-$pid" 2>/dev/null
            sed 's/^/    | /' "$log" >&2
            return 1
        fi
        sleep 0.2
    done
    log "workers ($mode): supervisor pid $pid, two workers ready, listening on 127.0.0.1:$port"

    python3 -c "$WORKERS_DRIVER" load 127.0.0.1 "$port" || rc=1
    python3 -c "$WORKERS_DRIVER" metrics 127.0.0.1 "$port" 20 || rc=1
    python3 "$ROOT/.ci/smoke_client.py" "127.0.0.1:$port" >/dev/null || { log "workers ($mode): smoke_client checks failed"; rc=1; }

    case "$mode" in
        console) kill -INT -- "-$pid" ;;
        supervisor) kill -INT "$pid" ;;
    esac
    python3 -c "$WORKERS_DRIVER" drain 127.0.0.1 "$port" 20 || rc=1

    local status=0
    deadline=$(( $(date +%s) + 60 ))
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "workers ($mode): supervisor still running 60 s after Ctrl-C; killing it"
        kill -KILL -- "-$pid" 2>/dev/null
        rc=1
    fi
    wait "$pid" || status=$?
    if [ "$status" -ne 0 ]; then
        log "workers ($mode): supervisor exited with status $status after Ctrl-C (expected 0)"
        rc=1
    fi

    # Both workers served: each one's own count, from its last report.
    local served
    served="$(grep -aoE 'worker [0-9]+ \(pid [0-9]+\) stopped after [0-9]+ requests \(exit status 0\)' "$log" \
              | sed -E 's/worker ([0-9]+) \(pid ([0-9]+)\) stopped after ([0-9]+) requests.*/\1:\2:\3/' || true)"
    local busy
    busy="$(printf '%s\n' "$served" | awk -F: '$3 > 0' | cut -d: -f1 | sort -u | wc -l)"
    log "workers ($mode): per worker (id:pid:requests): $(printf '%s ' $served)"
    if [ "$busy" -lt 2 ]; then
        log "workers ($mode): expected both workers to have served requests and exited 0"
        rc=1
    fi
    if [ "$rc" -eq 0 ]; then
        log "workers ($mode): PASS: both workers served, drained on Ctrl-C, supervisor exit status 0"
    else
        sed 's/^/    | /' "$log" >&2
    fi
    return "$rc"
}
# --- end of worker processes --------------------------------------------------------------------

# 1. Build the example and the ProcessPrng shim next to it (Wine 8 lacks ProcessPrng, which
#    the Rust standard library calls at start-up; real Windows needs no shim).
t0=$(now)
log "cargo build --release --target $TRIPLE --example echo"
cargo build --release --target "$TRIPLE" --example echo
[ -f "$EXE" ] || die "build succeeded but $EXE does not exist"
x86_64-w64-mingw32-gcc -shared -o "$EXE_DIR/bcryptprimitives.dll" "$PRNG_SHIM" -ladvapi32
log "build: $(since "$t0") s"

# 2. Create the dedicated Wine prefix once (slow the first time; later runs reuse it).
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    t0=$(now)
    log "creating Wine prefix $WINEPREFIX (first time only; this takes a while)"
    wineboot -i >"$WORK/wineboot.log" 2>&1 9>&- || { cat "$WORK/wineboot.log" >&2; die "wineboot failed"; }
    wineserver -w 9>&-
    log "prefix: $(since "$t0") s"
fi

# 3. Start the server on an OS-assigned port and read the port from its log.
t0=$(now)
: >"$LOG"
log "starting: wine $EXE --listen 127.0.0.1:0"
wine "$EXE" --listen 127.0.0.1:0 </dev/null >"$LOG" 2>&1 9>&- &
WINE_PID=$!

PORT=""
deadline=$(( $(date +%s) + START_TIMEOUT ))
while :; do
    line="$(grep -aoE 'listening on http://127\.0\.0\.1:[0-9]+' "$LOG" | head -n 1 || true)"
    if [ -n "$line" ]; then
        PORT="${line##*:}"
        break
    fi
    if ! kill -0 "$WINE_PID" 2>/dev/null; then
        SERVER_RC=0
        wait "$WINE_PID" || SERVER_RC=$?
        WINE_PID=""
        die "server exited with status $SERVER_RC before reporting its address"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "no 'listening on http://127.0.0.1:PORT' line in $LOG after ${START_TIMEOUT}s"
    sleep 0.2
done
log "server pid $WINE_PID listening on 127.0.0.1:$PORT (start-up: $(since "$t0") s)"

# 4. Smoke checks.
t0=$(now)
SMOKE_RC=0
python3 "$ROOT/.ci/smoke_client.py" "127.0.0.1:$PORT" || SMOKE_RC=$?
log "smoke run: $(since "$t0") s"

if ! kill -0 "$WINE_PID" 2>/dev/null; then
    log "WARNING: the server exited during the smoke run (see $LOG)"
fi

# ---------------------------------------------------------------------------------------------
# TLS (issue 14): the Windows build serves one HTTPS request. A second echo.exe, on a TLS
# listener with a certificate made now by bench/tls/cert.sh (a private CA and a leaf for
# localhost and 127.0.0.1), and one request from Python's ssl that verifies the chain, requires
# TLS 1.2 or later and ALPN http/1.1, and checks the echoed answer byte for byte. The server is
# stopped with Ctrl-C (SIGINT) like the first; the EXIT trap's `wineserver -k` ends it otherwise.
# The certificate flags for `--listen https://127.0.0.1:0`: WINE_TLS_ARGS ($CERT and $KEY are
# replaced by the files' Windows paths).
tls_smoke() {
    local dir="$WORK/tls" tls_log="$WORK/echo-tls-server.log" tls_pid line port args rc=0
    rm -rf "$dir"
    "$ROOT/bench/tls/cert.sh" "$dir" ec || { log "TLS: could not make the test certificate"; return 1; }
    args="${WINE_TLS_ARGS:-"--tls-cert \$CERT --tls-key \$KEY"}"
    args=${args//\$CERT/$(winepath -w "$dir/cert.pem" 9>&- 2>/dev/null || echo "$dir/cert.pem")}
    args=${args//\$KEY/$(winepath -w "$dir/key.pem" 9>&- 2>/dev/null || echo "$dir/key.pem")}
    : >"$tls_log"
    log "TLS: starting: wine $EXE --listen https://127.0.0.1:0 $args"
    # shellcheck disable=SC2086  # the flag list is split into words on purpose
    wine "$EXE" --listen https://127.0.0.1:0 $args </dev/null >"$tls_log" 2>&1 9>&- &
    tls_pid=$!
    local deadline=$(( $(date +%s) + START_TIMEOUT ))
    port=""
    while [ -z "$port" ]; do
        line="$(grep -aoE 'listening on https?://127\.0\.0\.1:[0-9]+' "$tls_log" | head -n 1 || true)"
        port="${line##*:}"
        [ -n "$port" ] && break
        if ! kill -0 "$tls_pid" 2>/dev/null; then
            log "TLS: server exited before reporting its address; its log:"; sed 's/^/    | /' "$tls_log" >&2
            return 1
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "TLS: no 'listening on' line after ${START_TIMEOUT}s; its log:"; sed 's/^/    | /' "$tls_log" >&2
            kill -KILL "$tls_pid" 2>/dev/null; return 1
        fi
        sleep 0.2
    done
    log "TLS: server pid $tls_pid on 127.0.0.1:$port"
    python3 - "$port" "$dir/ca.pem" <<'EOF_PY' || rc=$?
import socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
ctx.minimum_version = ssl.TLSVersion.TLSv1_2
ctx.set_alpn_protocols(["http/1.1"])
with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /tls-smoke?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while len(data) < 65536:
            try:
                chunk = tls.recv(4096)
            except ssl.SSLEOFError:  # a close without close_notify still ends a Connection: close reply
                break
            if not chunk:
                break
            data += chunk
        version, alpn, cipher = tls.version(), tls.selected_alpn_protocol(), tls.cipher()[0]
head, _, body = data.partition(b"\r\n\r\n")
status = head.split(b"\r\n", 1)[0]
want = b"GET /tls-smoke?x=1\n\n"
ok = status.startswith(b"HTTP/1.1 200 ") and body == want and alpn == "http/1.1"
print(f"tls-smoke: {version} {cipher} ALPN {alpn}: {status.decode(errors='replace')}, body {body!r}: {'PASS' if ok else 'FAIL (want 200 and ' + repr(want) + ')'}")
sys.exit(0 if ok else 1)
EOF_PY
    # Ctrl-C, as for the first server; then make sure it is gone.
    kill -INT "$tls_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$tls_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$tls_pid" 2>/dev/null || true
    wait "$tls_pid" 2>/dev/null || true
    if [ "$rc" -ne 0 ]; then log "TLS: server log:"; sed 's/^/    | /' "$tls_log" >&2; fi
    return "$rc"
}
if [ "$SMOKE_RC" -eq 0 ]; then
    t0=$(now)
    tls_smoke || SMOKE_RC=$?
    log "TLS smoke run: $(since "$t0") s"
fi

# 6. Worker processes: two workers behind the supervisor's handoff, Ctrl-C both ways.
WORKERS_RC=0
for mode in console supervisor; do
    t0=$(now)
    workers_smoke "$mode" || WORKERS_RC=1
    log "workers ($mode): $(since "$t0") s"
done
[ "$SMOKE_RC" -ne 0 ] && exit "$SMOKE_RC"
exit "$WORKERS_RC"
