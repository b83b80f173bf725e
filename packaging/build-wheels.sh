#!/usr/bin/env bash
# Build the three wheels of the maitred Python package into OUT (default target/wheels):
#
#   maitred-VERSION-cp39-abi3-manylinux_2_17_x86_64...whl   Linux x86_64, stable ABI, CPython >= 3.9
#   maitred-VERSION-cp39-abi3-win_amd64.whl                 Windows x86_64, stable ABI, cross-built
#   maitred-VERSION-cp314-cp314t-manylinux_2_17_x86_64...whl free-threaded CPython 3.14
#
#   packaging/build-wheels.sh [OUT]
#
# The Linux wheels link with zig (the `ziglang` package from PyPI) against glibc 2.17, so they
# carry a manylinux2014 tag; the Windows wheel links with mingw-w64 against an import library
# pyo3 generates (`generate-import-lib`, part of the `abi3` feature), so no Windows Python is
# needed. The free-threaded wheel cannot use the stable ABI (3.14t has none) and is built for
# the interpreter packaging/cpython.sh makes. Tools live in their own venv (TOOLS, default
# target/python-ci/tools); nothing is installed into the system's Python.
#
# Environment: PYTHON (the venv's base interpreter, default python3), TOOLS, PYTHON314T (a
# free-threaded interpreter; default: packaging/cpython.sh 3.14t), WHEELS (a comma-separated
# subset of linux,windows,ft; default all three).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
out="${1:-$root/target/wheels}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
tools="${TOOLS:-$root/target/python-ci/tools}"
wheels=",${WHEELS:-linux,windows,ft},"

log() { printf 'build-wheels.sh: %s\n' "$*" >&2; }

"$here/tools-venv.sh" "$tools"
# maturin finds zig as `python3 -m ziglang`, so the tools venv goes first on PATH.
export PATH="$tools/bin:$PATH"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER="${CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER:-x86_64-w64-mingw32-gcc}"

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
base_python="$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')"

if [[ $wheels == *,linux,* ]]; then
    rm -f "$out"/maitred-"$version"-cp39-abi3-manylinux*.whl
    log "Linux x86_64 abi3 (manylinux2014 via zig)"
    maturin build --release --locked --zig --compatibility manylinux2014 --features abi3 \
        --interpreter "$base_python" --out "$out"
fi
if [[ $wheels == *,windows,* ]]; then
    rm -f "$out"/maitred-"$version"-cp39-abi3-win_amd64.whl
    log "Windows x86_64 abi3 (mingw-w64 cross-build)"
    maturin build --release --locked --target x86_64-pc-windows-gnu --features abi3 --out "$out"
fi
if [[ $wheels == *,ft,* ]]; then
    py314t="${PYTHON314T:-$("$here/cpython.sh" 3.14t)}"
    rm -f "$out"/maitred-"$version"-cp314-cp314t-*.whl
    log "free-threaded CPython 3.14t ($py314t; manylinux2014 via zig)"
    maturin build --release --locked --zig --compatibility manylinux2014 \
        --interpreter "$py314t" --out "$out"
fi
ls -l "$out"/maitred-"$version"-*.whl >&2
