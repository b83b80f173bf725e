#!/usr/bin/env bash
# Build the Python package (the `maitred` wheel: the Rust extension plus python/maitred) from the
# current checkout into OUT_DIR with maturin. The Dockerfile's builder stage runs this and the
# `api-venv` stage installs the wheel with plain pip (no Rust toolchain in the final image); it
# works outside Docker too.
#
#   docker/build-wheel.sh OUT_DIR
#
# Needs maturin (pip install 'maturin>=1.9.4,<2') and the Python the wheel is for: the wheel is
# built for the interpreter found as `python3` (or $PYTHON). Any wheel already in OUT_DIR for
# this version is replaced, so OUT_DIR holds exactly one maitred wheel per interpreter.
set -euo pipefail

out="${1:?usage: docker/build-wheel.sh OUT_DIR}"
python="${PYTHON:-python3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

command -v maturin >/dev/null 2>&1 || { echo "build-wheel.sh: maturin not found (pip install 'maturin>=1.9.4,<2')" >&2; exit 1; }
mkdir -p "$out"
# Absolute, so it still means the same directory after maturin changes into the project.
out="$(cd "$out" && pwd)"
tag="$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
rm -f "$out"/maitred-*-"$tag"-*.whl
maturin build --release --locked --interpreter "$python" --out "$out"
ls -l "$out"/maitred-*-"$tag"-*.whl
