#!/usr/bin/env bash
# WSGI server benchmark: maitred vs Waitress, Gunicorn (gthread) and Granian, on a plain WSGI
# hello, a Flask hello and a handler that sleeps 50 ms. See bench/wsgi/README.md.
#
#   bench/wsgi/run.sh                      # 3 rounds x 5 s per server and app
#   DURATION=10 ROUNDS=5 bench/wsgi/run.sh
#   SERVERS=maitred,waitress APPS=hello bench/wsgi/run.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PYTHON=${PYTHON:-python3}

for tool in wrk taskset; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed (apt-get install wrk util-linux)" >&2; exit 1; }
done
if [ "$(nproc)" -lt 2 ]; then
    echo "run.sh: needs at least 2 CPUs (server and wrk are pinned to different cores)" >&2
    exit 1
fi

# The peers, installed with pip when missing.
missing=()
for pkg in waitress gunicorn granian flask; do
    "$PYTHON" -c "import $pkg" 2>/dev/null || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "run.sh: installing ${missing[*]}" >&2
    "$PYTHON" -m pip install --quiet "${missing[@]}"
fi

# maitred itself: the installed package (pip install . at the repository root).
if ! "$PYTHON" -c "import maitred._maitred" 2>/dev/null; then
    echo "run.sh: the maitred Python package is not installed; run: pip install $root" >&2
    exit 1
fi

# BENCH: another benchmark script with the same needs (bench/workers/run.sh sets it).
exec "$PYTHON" "${BENCH:-$here/bench.py}"
