#!/usr/bin/env bash
# Smoke test of a built server, run the way the image runs it: start COMMAND with the image's
# settings (MAITRED_HEALTH_PATH=/healthz) but on 127.0.0.1 and a free port, wait until
# `maitred --healthcheck` (the image's HEALTHCHECK) passes, GET the given paths, then stop it
# with SIGTERM and check the drain: the health check fails at once (503) while the drain delay
# runs, the process exits 0 within its grace period, and afterwards the health check fails.
#
#   docker/smoke.sh [--probe PROGRAM] [--get PATH]... [--timeout SECS] -- COMMAND [ARGS...]
#
#   --probe PROGRAM  the maitred executable that runs `--healthcheck` (default: COMMAND itself)
#   --get PATH       also GET PATH and require a 2xx (repeatable)
#   --timeout SECS   seconds to wait for the server to become healthy (default 30)
#
# Examples (what .ci/run runs):
#   docker/smoke.sh --get / -- "$OUT/maitred" examples/flask_app/static
#   docker/smoke.sh --get /api/items -- "$VENV/bin/maitred" --app-dir examples/flask_app app:app
#
# Only 127.0.0.1 is used. The server is stopped by its PID on any exit.
set -euo pipefail

probe=""
gets=()
timeout=30
while [ $# -gt 0 ]; do
    case "$1" in
        --probe) probe="$2"; shift 2 ;;
        --get) gets+=("$2"); shift 2 ;;
        --timeout) timeout="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "smoke.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "smoke.sh: missing COMMAND after --" >&2; exit 2; }
probe="${probe:-$1}"

GRACEFUL=10   # MAITRED_GRACEFUL_TIMEOUT below
DRAIN=2       # MAITRED_DRAIN_DELAY below
log="$(mktemp)"
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -f "$log"
}
trap cleanup EXIT

fail() {
    echo "smoke.sh: FAIL: $*" >&2
    echo "---- server output ----" >&2
    cat "$log" >&2 || true
    echo "-----------------------" >&2
    exit 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

now_ms() { date +%s%3N; }

# Start the server; retry with another port if the one picked was taken meanwhile.
for attempt in 1 2 3; do
    port="$(free_port)"
    url="http://127.0.0.1:$port/healthz"
    : > "$log"
    MAITRED_LISTEN="127.0.0.1:$port" MAITRED_HEALTH_PATH=/healthz \
        MAITRED_DRAIN_DELAY="${DRAIN}s" MAITRED_GRACEFUL_TIMEOUT="${GRACEFUL}s" \
        "$@" >"$log" 2>&1 &
    pid=$!
    echo "smoke.sh: started pid $pid on 127.0.0.1:$port: $*"
    deadline=$(( $(now_ms) + timeout * 1000 ))
    healthy=0
    while [ "$(now_ms)" -lt "$deadline" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        if "$probe" --healthcheck "$url" >/dev/null 2>&1; then healthy=1; break; fi
        sleep 0.2
    done
    if [ "$healthy" -eq 1 ]; then break; fi
    if ! kill -0 "$pid" 2>/dev/null && grep -qi "in use" "$log" && [ "$attempt" -lt 3 ]; then
        wait "$pid" 2>/dev/null || true
        pid=""
        echo "smoke.sh: port $port was taken; retrying"
        continue
    fi
    fail "not healthy at $url within ${timeout}s"
done
echo "smoke.sh: healthy: $probe --healthcheck $url exits 0"

for path in "${gets[@]}"; do
    python3 - "http://127.0.0.1:$port$path" <<'EOF' || fail "GET $path"
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    body = r.read()
    assert 200 <= r.status < 300, r.status
    print(f"smoke.sh: GET {sys.argv[1]} -> {r.status}, {len(body)} bytes")
EOF
done

# Drain: SIGTERM, then the health check must fail while the server still runs (drain delay).
stop_at=$(now_ms)
kill -TERM "$pid"
if "$probe" --healthcheck "$url" >/dev/null 2>&1; then
    fail "the health check still passed after SIGTERM (expected 503 during the drain delay)"
fi
echo "smoke.sh: after SIGTERM the health check fails (draining)"

limit=$(( (GRACEFUL + DRAIN + 5) * 1000 ))
while kill -0 "$pid" 2>/dev/null; do
    if [ $(( $(now_ms) - stop_at )) -gt "$limit" ]; then
        fail "still running $((limit / 1000)) s after SIGTERM"
    fi
    sleep 0.1
done
set +e
wait "$pid"
rc=$?
set -e
pid=""
[ "$rc" -eq 0 ] || fail "exit status $rc after SIGTERM (expected 0)"
echo "smoke.sh: exited 0, $(( $(now_ms) - stop_at )) ms after SIGTERM"

if "$probe" --healthcheck "$url" >/dev/null 2>&1; then
    fail "the health check passed with no server running"
fi
echo "smoke.sh: with the server gone the health check exits 1"
echo "smoke.sh: ok"
