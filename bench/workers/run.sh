#!/usr/bin/env bash
# Worker processes benchmark (issue 12): maitred --workers 1/2 vs Gunicorn gthread and Granian
# with 2 workers, on a 2 ms CPU-bound Flask view and Flask hello. See bench/workers/bench.py.
#
#   bench/workers/run.sh
#   ROUNDS=5 DURATION=10 bench/workers/run.sh
#   PYTHON=target/venv/bin/python bench/workers/run.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PYTHON=${PYTHON:-python3}

command -v wrk >/dev/null || { echo "run.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }
missing=()
for pkg in gunicorn granian flask; do
    "$PYTHON" -c "import $pkg" 2>/dev/null || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "run.sh: installing ${missing[*]}" >&2
    "$PYTHON" -m pip install --quiet "${missing[@]}"
fi
if ! "$PYTHON" -c "import maitred._maitred" 2>/dev/null; then
    echo "run.sh: the maitred Python package is not installed; run: pip install $root" >&2
    exit 1
fi
exec "$PYTHON" "$here/bench.py"
