#!/usr/bin/env bash
# The Rust tests of feature `python` (tests/wsgi.rs and the unit tests), embedding PYTHON.
#
#   packaging/rust-tests.sh PYTHON [cargo test args...]
#
# PYO3_PYTHON picks the interpreter pyo3 builds and links against; its shared libpython is
# found at run time through LD_LIBRARY_PATH (cargo's test executables carry no rpath). With
# the free-threaded 3.14t, the in-process servers' worker threads run Python without a GIL.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
python="${1:?usage: packaging/rust-tests.sh PYTHON [cargo test args...]}"
shift
libdir="$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')"
"$python" -c 'import sys, sysconfig; print(sys.version, "| free-threaded:", bool(sysconfig.get_config_var("Py_GIL_DISABLED")))' >&2
export PYO3_PYTHON="$python"
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec cargo test --release --features python "$@"
