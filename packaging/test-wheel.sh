#!/usr/bin/env bash
# Install a built wheel as a user would and run the Python test suite against it.
#
#   packaging/test-wheel.sh PYTHON WHEEL
#
# A fresh venv of PYTHON (target/python-ci/venv-<interpreter tag>), `pip install WHEEL` plus
# requirements-test.txt, and no Rust toolchain on PATH (every PATH entry holding `cargo` or
# `rustc` is dropped, and the script checks neither can be found), so the wheel has to stand on
# its own. Then it checks that `maitred` is imported from the venv, not from the checkout, and
# on a free-threaded interpreter that importing it leaves the GIL disabled (the extension
# declares itself free-threading-safe; otherwise CPython would turn the GIL back on with a
# RuntimeWarning). Then `pytest tests/python`: the CLI, the Flask example and the PEP 3333
# conformance suite against Waitress.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
python="${1:?usage: packaging/test-wheel.sh PYTHON WHEEL}"
wheel="${2:?usage: packaging/test-wheel.sh PYTHON WHEEL}"
[ -f "$wheel" ] || { echo "test-wheel.sh: no wheel at $wheel" >&2; exit 1; }
wheel="$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")"

tag="$("$python" -c 'import sys, sysconfig; print(sys.implementation.cache_tag + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""))')"
venv="$root/target/python-ci/venv-$tag"
log() { printf 'test-wheel.sh [%s]: %s\n' "$tag" "$*" >&2; }

# PATH without any directory that provides cargo or rustc.
clean_path=""
IFS=: read -r -a entries <<<"$PATH"
for dir in "${entries[@]}"; do
    [ -n "$dir" ] || continue
    if [ -e "$dir/cargo" ] || [ -e "$dir/rustc" ] || [ -e "$dir/rustup" ]; then
        continue
    fi
    clean_path="${clean_path:+$clean_path:}$dir"
done

rm -rf "$venv"
"$python" -m venv "$venv"
export PATH="$venv/bin:$clean_path"
export VIRTUAL_ENV="$venv"
unset PYTHONPATH PYTHONHOME PYTHON_GIL
hash -r
if command -v cargo >/dev/null 2>&1 || command -v rustc >/dev/null 2>&1; then
    log "a Rust toolchain is still on PATH; the test would not prove the wheel needs none"
    exit 1
fi

log "pip install $(basename "$wheel") and the test requirements (no Rust on PATH)"
python -m pip install --quiet --disable-pip-version-check "$wheel" -r "$here/requirements-test.txt"

cd "$root"
python - "$venv" <<'PY'
import os, sys, sysconfig
venv = os.path.realpath(sys.argv[1])
import maitred, maitred._maitred
where = os.path.realpath(maitred._maitred.__file__)
assert where.startswith(venv + os.sep), f"maitred imported from {where}, not from the venv {venv}"
print(f"maitred {maitred._maitred.__version__} from {where}")
if sysconfig.get_config_var("Py_GIL_DISABLED"):
    assert not sys._is_gil_enabled(), "importing maitred turned the GIL back on"
    print("free-threaded interpreter: the GIL stays disabled after importing maitred")
PY
log "pytest tests/python"
python -m pytest tests/python -q -p no:cacheprovider
