#!/usr/bin/env bash
# Worker processes benchmark (issue 12): maitred --workers 1/2 vs Gunicorn gthread and Granian
# with 2 workers, on a 2 ms CPU-bound Flask view and Flask hello. See bench/workers/bench.py.
# The WSGI benchmark's runner checks the tools and installs the peers; this runs bench.py here.
#
#   bench/workers/run.sh
#   ROUNDS=5 DURATION=10 bench/workers/run.sh
#   PYTHON=target/venv/bin/python bench/workers/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BENCH="$here/bench.py" exec "$here/../wsgi/run.sh"
