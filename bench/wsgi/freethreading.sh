#!/usr/bin/env bash
# Free-threading benchmark: a Flask view burning ~2 ms of pure-Python CPU, 16 connections,
# --threads 1 vs --threads 4, on CPython 3.14 (GIL) and free-threaded 3.14t; and Flask hello
# on both. See bench/wsgi/README.md ("Free-threaded Python").
#
#   bench/wsgi/freethreading.sh            # 3 rounds x 10 s per case
#   ROUNDS=5 DURATION=20 bench/wsgi/freethreading.sh
#
# The interpreters come from packaging/cpython.sh (built once, cached), the maitred wheels
# from target/wheels (packaging/build-wheels.sh; built here if missing): the abi3 wheel for
# 3.14, the cp314t wheel for 3.14t, each in its own venv under target/bench-ft/ with Flask.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
wheels="$root/target/wheels"
command -v wrk >/dev/null || { echo "freethreading.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }

py314="$("$root/packaging/cpython.sh" 3.14)"
py314t="$("$root/packaging/cpython.sh" 3.14t)"
venv() { # NAME PYTHON WHEEL_GLOB
    local dir="$root/target/bench-ft/$1" wheel
    wheel="$(ls "$wheels"/$3 2>/dev/null | head -n 1)"
    if [ -z "$wheel" ]; then
        "$root/packaging/build-wheels.sh" "$wheels" >&2
        wheel="$(ls "$wheels"/$3 | head -n 1)"
    fi
    rm -rf "$dir"
    "$2" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel" 'flask>=3,<4'
    echo "$dir/bin/python"
}
gil="$(venv py314 "$py314" 'maitred-*-cp39-abi3-manylinux*.whl')"
ft="$(venv py314t "$py314t" 'maitred-*-cp314-cp314t-manylinux*.whl')"
exec python3 "$here/freethreading.py" "3.14=$gil" "3.14t=$ft"
